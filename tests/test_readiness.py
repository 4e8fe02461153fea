"""A program that was just started answers only once it listens: the gate refuses a page that
calls it before it waits for it. After `helm install`, `upgrade` or `rollback` without --wait
the new pods may still be Pending (kubectl port-forward and exec fail, and so does the chart's
test), until `kubectl rollout status` or `kubectl wait` has seen them run. After `docker compose
up` a service with no healthcheck (or any, without --wait) may not listen yet, and Docker's port
closes the connection, which only curl's --retry-all-errors retries."""

from __future__ import annotations

import pytest

from betrace_dist.gate.session import CommandError, Session

from .conftest import backend_image, require_tool, run

REGISTRY = "registry.example.com/betrace"
PENDING = "unable to forward port because pod is not running"
STACK = "cd docker\nprintf 'BETRACE_SIGNATURE_KEY=k\\nGRAFANA_ADMIN_PASSWORD=p\\n' > .env\n"
RETRY = "--retry 30 --retry-delay 2 --retry-all-errors"

pytestmark = pytest.mark.gate_session(tools=("helm", "kubectl"), timeout=60)


def _install(session: Session, flags: str = "") -> str:
    """The Kubernetes guide's build of the backend image and the chart's install."""
    return backend_image(session, REGISTRY) + (
        f"helm install betrace ./helm/betrace --namespace betrace --create-namespace "
        f"--set image.registry={REGISTRY}{flags}\n"
    )


def _forward(port: int, local: int | None = None) -> str:
    local = local or port
    return (
        f"kubectl -n betrace port-forward svc/betrace-backend {local}:{port} &\nsleep 1\n"
        f"curl -fsS http://localhost:{local}/v1/health\n"
    )


def _runs_or_pends(session: Session, script: str, waits: bool) -> None:
    """The script runs (its wait counted), or its port-forward finds the pod Pending."""
    if waits:
        run(session, script)
        return
    with pytest.raises(CommandError, match=PENDING):
        run(session, script)


def _http(session: Session) -> int:
    return session.release.current.backend.ports["http"].port


def test_a_port_forward_right_after_an_install_is_refused(session: Session) -> None:
    with pytest.raises(CommandError, match=f"{PENDING}.*kubectl rollout status deployment/betrace"):
        run(session, _install(session) + _forward(_http(session)))


@pytest.mark.parametrize(
    "wait",
    [
        "kubectl rollout status deploy/betrace-backend -n betrace --timeout=5m\n",
        "kubectl wait --for=condition=Available deployment/betrace-backend -n betrace\n",
        "kubectl wait --for=create pod -n betrace -l app.kubernetes.io/component=backend\n"
        "kubectl wait --for=condition=Ready pod -n betrace "
        "-l app.kubernetes.io/component=backend\n",
        "kubectl rollout status deployment -n betrace -l app.kubernetes.io/instance=betrace\n",
    ],
)
def test_a_port_forward_after_a_wait_for_the_pods_answers(session: Session, wait: str) -> None:
    run(session, _install(session) + wait + _forward(_http(session)))


def test_helm_wait_waits(session: Session) -> None:
    run(session, _install(session, " --wait") + _forward(_http(session)))


@pytest.mark.parametrize(
    ("flags", "waits"),
    [
        (["--wait"], True),
        (["--wait=watcher"], True),
        (["--wait=legacy"], True),
        (["--wait=true"], True),
        (["--wait=hookOnly"], False),  # Helm 4's default strategy
        (["--wait=false"], False),
        (["--wait", "--wait=false"], False),
        (["--atomic"], True),  # Helm 3: sets --wait
        (["--rollback-on-failure"], True),  # Helm 4: sets --wait
        (["--atomic=false"], False),
        ([], False),
    ],
)
def test_which_helm_flags_wait_for_the_pods(flags: list[str], waits: bool) -> None:
    from betrace_dist.gate.commands.flags import CommandLine
    from betrace_dist.gate.commands.helm import _waits

    line = CommandLine(["upgrade", "betrace", "./helm/betrace", *flags], set(), 1)
    assert _waits(line) is waits


def test_a_wait_that_says_nothing_of_running_pods_does_not_count(session: Session) -> None:
    with pytest.raises(CommandError, match=PENDING):
        run(
            session,
            _install(session)
            + "kubectl rollout status deploy/betrace-backend -n betrace --watch=false\n"
            + "kubectl wait --for=condition=Progressing deploy/betrace-backend -n betrace\n"
            + _forward(_http(session)),
        )


def test_an_upgrade_keeps_the_pods_it_does_not_change_and_not_the_others(
    session: Session,
) -> None:
    wait = "kubectl rollout status deploy/betrace-backend -n betrace\n"
    upgrade = "helm upgrade betrace ./helm/betrace -n betrace --reuse-values"
    run(session, _install(session) + wait)
    run(session, f"{upgrade} --set grafana.podAnnotations.a=b\n" + _forward(_http(session)))
    with pytest.raises(CommandError, match=PENDING):
        run(session, f"{upgrade} --set backend.debug=true\n" + _forward(_http(session), 9000))


def test_a_rollback_and_a_restart_make_new_pods(session: Session) -> None:
    wait = "kubectl rollout status deploy/betrace-backend -n betrace\n"
    run(session, _install(session) + wait)
    run(session, "helm upgrade betrace ./helm/betrace -n betrace --reuse-values "
        "--set backend.debug=true\n" + wait)  # fmt: skip
    with pytest.raises(CommandError, match=PENDING):
        run(session, "helm rollback betrace 1 -n betrace\n" + _forward(_http(session)))
    with pytest.raises(CommandError, match=PENDING):
        run(session, wait + "kubectl rollout restart deploy/betrace-backend -n betrace\n"
            + _forward(_http(session)))  # fmt: skip


def test_helm_test_waits_for_the_service_its_pod_calls(session: Session) -> None:
    """The chart's test pod calls the backend's Service once (wget, no retry): Grafana's pods
    need not run for it."""
    with pytest.raises(CommandError, match="helm test betrace: Deployment 'betrace-backend'"):
        run(session, _install(session) + "helm test betrace -n betrace\n")
    run(session, "kubectl rollout status deploy/betrace-backend -n betrace\n")
    run(session, "helm test betrace -n betrace\n")


def test_helm_wait_waits_for_pods_it_did_not_make_anew(session: Session) -> None:
    """Helm's --wait waits for every resource of the new manifest (KubeClient.Build of the whole
    manifest, then Wait or WaitWithJobs on it: pkg/action/upgrade.go at helm/helm v3.11.1 and
    v4.1.4), pods an earlier install left unwaited included."""
    run(
        session,
        _install(session)
        + "helm upgrade betrace ./helm/betrace -n betrace --reuse-values --wait\n"
        + _forward(_http(session)),
    )


@pytest.mark.parametrize(
    ("wait", "waits"),
    [
        ("--for=condition=Available=True deployment/betrace-backend", True),
        ("--for=condition=available=true deployment/betrace-backend", True),
        ("--for condition=Available deployment/betrace-backend", True),
        ("--for=condition=Available=false deployment/betrace-backend", False),
        ("--for=condition=Ready=False pod -l app.kubernetes.io/component=backend", False),
    ],
)
def test_a_wait_counts_only_where_its_condition_is_true(
    session: Session, wait: str, waits: bool
) -> None:
    """kubectl wait reads --for=condition=NAME[=VALUE], VALUE true by default, both compared
    case-insensitively (conditionFuncFor, pkg/cmd/wait/wait.go, and ConditionalWait.checkCondition,
    pkg/cmd/wait/condition.go, kubernetes/kubectl v0.35.0)."""
    made = "kubectl wait --for=create pod -l app.kubernetes.io/component=backend -n betrace\n"
    script = _install(session) + made + f"kubectl wait {wait} -n betrace\n"
    _runs_or_pends(session, script + _forward(_http(session)), waits)


@pytest.mark.parametrize(
    ("wait", "waits"),
    [
        ("--for=jsonpath='{.status.phase}'=Running pod/helper", True),
        ("--for=jsonpath=.status.phase=Running pod/helper", True),
        (
            "--for='jsonpath={.status.conditions[?(@.type==\"Ready\")].status}=True' pod/helper",
            True,
        ),
        ("--for=jsonpath='{.status.phase}'=running pod/helper", False),
        ("--for=jsonpath='{.status.phase}'=Pending pod/helper", False),
    ],
)
def test_a_jsonpath_wait_for_a_running_pod_counts(session: Session, wait: str, waits: bool) -> None:
    """kubectl's own examples wait for a pod so (`kubectl wait --help`); the value is compared as
    written (compareResults, pkg/cmd/wait/json.go of kubernetes/kubectl v0.35.0), and port-forward
    and exec need the pod's phase to be Running (portforward.go)."""
    script = POD + f"kubectl wait {wait} -n work\nkubectl exec pod/helper -n work -- ls\n"
    if waits:
        run(session, script)
    else:
        with pytest.raises(CommandError, match=r"kubectl exec: Pod 'helper'"):
            run(session, script)


@pytest.mark.parametrize(
    "wait",
    [
        "--for=condition=Ready deployment/betrace-backend",
        "--for=condition=Ready deploy -l app.kubernetes.io/component=backend",
        "--for=condition=Available pod -l app.kubernetes.io/component=backend",
    ],
)
def test_a_wait_for_a_condition_its_kind_never_has_times_out(session: Session, wait: str) -> None:
    """A Deployment's conditions are Available, Progressing and ReplicaFailure, a pod's Ready,
    ContainersReady and the like: kubectl wait for one the object never has waits until its
    --timeout (30 s) and fails."""
    with pytest.raises(CommandError, match="timed out waiting for the condition"):
        run(session, _install(session) + f"kubectl wait {wait} -n betrace\n")


@pytest.mark.parametrize(
    "wait",
    [
        "--for=condition=Ready pod -l app.kubernetes.io/component=nothing -n betrace",
        "--for=condition=Available deploy -l app.kubernetes.io/component=nothing -n betrace",
        "--for=condition=Ready pods --all -n default",
    ],
)
def test_a_wait_whose_selector_matches_nothing_fails(session: Session, wait: str) -> None:
    """kubectl wait that visits no object fails with "no matching resources found" (RunWait,
    errNoMatchingResources, pkg/cmd/wait/wait.go of kubernetes/kubectl v0.35.0), where it waits
    for anything but a delete."""
    run(session, _install(session, " --wait"))
    with pytest.raises(CommandError, match="no matching resources found"):
        run(session, f"kubectl wait {wait}\n")
    run(
        session, "kubectl wait --for=delete pod -l app.kubernetes.io/component=nothing -n betrace\n"
    )


@pytest.mark.parametrize(
    "first",
    [
        "",
        "sleep 10\n",  # no time is known to be enough for a controller
        "kubectl wait --for=create pod -n betrace -l app.kubernetes.io/instance=betrace\n",
    ],
)
def test_a_wait_for_pods_right_after_their_workload_was_made_is_refused(
    session: Session, first: str
) -> None:
    """kubectl wait lists pods once, when it starts: right after `helm install` their
    Deployment's controller may not have made them yet, and kubectl fails with "no matching
    resources found". A wait for `create` over one workload's pods waits for them; over two, it
    returns once the first exists."""
    wait = "kubectl wait --for=condition=Ready pod -n betrace -l app.kubernetes.io/instance=betrace"
    with pytest.raises(
        CommandError,
        match=r"pods of Deployment 'betrace-\w+' .*may not exist yet.*no matching resources found"
        r".*kubectl rollout status deployment/betrace-",
    ):
        run(session, _install(session) + first + wait + "\n")


def test_a_wait_for_pods_made_earlier_is_not_a_race(session: Session) -> None:
    """Pods a Deployment had before an upgrade that changed its template are there to list."""
    run(session, _install(session, " --wait"))
    run(
        session,
        "helm upgrade betrace ./helm/betrace -n betrace --reuse-values "
        "--set grafana.podAnnotations.a=b\n"
        "kubectl wait --for=condition=Ready pod -n betrace -l app.kubernetes.io/instance=betrace\n",
    )


def test_a_selector_picks_workloads_by_their_own_labels(session: Session) -> None:
    """kubectl matches -l against the labels of the kind it lists: a Deployment's own, not its
    pods'."""
    run(session, DEPLOYMENT)
    with pytest.raises(CommandError, match="no matching resources found"):
        run(session, "kubectl wait --for=condition=Available deploy -l role=pod -n work\n")
    run(session, "kubectl wait --for=condition=Available deploy -l role=deployment -n work\n")
    run(session, "kubectl exec deploy/helper -n work -- ls\n")


@pytest.mark.parametrize(
    "wait",
    [
        "kubectl rollout status -f deployment.yaml -n work",
        "kubectl wait --for=condition=Available -f deployment.yaml -n work",
    ],
)
def test_a_wait_for_the_objects_of_a_manifest_counts(session: Session, wait: str) -> None:
    """kubectl rollout status and wait take -f, as every resource builder does (FilenameParam in
    rollout_status.go and wait.go of kubernetes/kubectl v0.35.0)."""
    run(session, DEPLOYMENT + wait + "\nkubectl exec deploy/helper -n work -- ls\n")


DEPLOYMENT = """\
cat > deployment.yaml <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: helper
  labels: {role: deployment}
spec:
  selector:
    matchLabels: {role: pod}
  template:
    metadata:
      labels: {role: pod}
    spec:
      containers:
        - name: helper
          image: docker.io/library/busybox:1.36
          command: [sleep, "3600"]
YAML
kubectl create namespace work
kubectl apply -f deployment.yaml -n work
"""


@pytest.mark.parametrize(("watch", "waits"), [("-w=false", False), ("-w=true", True)])
def test_rollout_status_reads_a_short_watch_flag_with_its_value(
    session: Session, watch: str, waits: bool
) -> None:
    """pflag reads `-w=false` as the value of -w (parseSingleShortArg, flag.go of spf13/pflag
    v1.0.9, the version kubectl v0.35.0's go.mod pins); kubectl takes it."""
    script = (
        _install(session)
        + f"kubectl rollout status deploy/betrace-backend -n betrace {watch}\n"
        + _forward(_http(session))
    )
    _runs_or_pends(session, script, waits)


@pytest.mark.parametrize(
    ("command", "said"),
    [
        ("rollout status svc/betrace-backend", "no status viewer has been implemented for Service"),
        ("rollout restart svc/betrace-backend", "restarting is not supported"),
        ("rollout undo svc/betrace-backend", "no rollbacker has been implemented for"),
    ],
)
def test_a_rollout_of_a_kind_without_rollouts_fails(
    session: Session, command: str, said: str
) -> None:
    """kubectl rollout works on Deployments, DaemonSets and StatefulSets only
    (pkg/polymorphichelpers rollout_status.go, objectrestarter.go, rollback.go of
    kubernetes/kubectl v0.35.0)."""
    run(session, _install(session, " --wait"))
    with pytest.raises(CommandError, match=said):
        run(session, f"kubectl {command} -n betrace\n")


POD = """\
cat > pod.yaml <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: helper
spec:
  containers:
    - name: helper
      image: docker.io/library/busybox:1.36
      command: [sleep, "3600"]
YAML
kubectl create namespace work
kubectl apply -f pod.yaml -n work
"""


def test_kubectl_exec_into_a_pod_just_applied_is_refused_until_it_is_ready(
    session: Session,
) -> None:
    with pytest.raises(CommandError, match=r"kubectl exec: Pod 'helper'.*kubectl wait"):
        run(session, POD + "kubectl exec pod/helper -n work -- ls\n")
    run(session, "kubectl wait --for=condition=Ready pod/helper -n work\n")
    run(session, "kubectl exec pod/helper -n work -- ls\n")


# -- Compose --------------------------------------------------------------------------------


@pytest.mark.gate_session(timeout=120)
@pytest.mark.parametrize(
    ("client", "said"),
    [
        ("curl -fsS {url}", "empty reply"),
        ("curl -fsS --retry 30 --retry-delay 2 --retry-connrefused {url}", "empty reply"),
        ("curl -fsS --retry 30 --retry-delay 2 --retry-all-errors {url}", None),
        ("sleep 1\ncurl -fsS {url}", None),
    ],
)
def test_the_compose_backend_answers_a_client_that_waits(
    session: Session, client: str, said: str | None
) -> None:
    """Compose's --wait waits for a service with no healthcheck to run, not to listen."""
    require_tool("docker-compose")
    url = f"http://localhost:{_http(session)}/v1/health"
    run(session, STACK + "docker compose up --build --wait\n")
    if said is None:
        run(session, client.format(url=url) + "\n")
        return
    with pytest.raises(CommandError, match=rf"compose service backend.*{said}.*--retry-all"):
        run(session, client.format(url=url) + "\n")


@pytest.mark.gate_session(timeout=120)
def test_compose_grafana_needs_a_retrying_client_not_a_sleep(session: Session) -> None:
    require_tool("docker-compose")
    url = "http://localhost:3000/api/health"
    run(session, STACK + "docker compose up --build --wait\n")
    with pytest.raises(CommandError, match="does not retry it for 60 s"):
        run(session, f"sleep 5\ncurl -fsS {url}\n")
    with pytest.raises(CommandError, match="does not retry it for 60 s"):
        run(session, f"curl -fsS --retry 5 --retry-delay 2 --retry-all-errors {url}\n")
    run(session, f"curl -fsS {RETRY} {url}\ncurl -fsS {url}\n")


@pytest.mark.gate_session(timeout=120)
def test_an_up_that_changes_nothing_leaves_what_answers_answering(session: Session) -> None:
    require_tool("docker-compose")
    url = f"http://localhost:{_http(session)}/v1/health"
    run(session, STACK + f"docker compose up --build --wait\ncurl -fsS {RETRY} {url}\n")
    run(session, f"docker compose up --wait\ncurl -fsS {url}\n")
    with pytest.raises(CommandError, match="empty reply"):
        run(session, f"docker compose restart backend\ncurl -fsS {url}\n")
    with pytest.raises(CommandError, match="empty reply"):
        run(session, f"docker compose up --wait --force-recreate\ncurl -fsS {url}\n")


@pytest.mark.gate_session(timeout=120)
def test_compose_start_leaves_running_services_answering(session: Session) -> None:
    """`docker compose start` starts only the containers that do not run (startService filters
    isNotRunning, pkg/compose/convergence.go of docker/compose v5.5.0): a running one goes on
    answering, a stopped one starts anew."""
    require_tool("docker-compose")
    url = f"http://localhost:{_http(session)}/v1/health"
    run(session, STACK + f"docker compose up --build --wait\ncurl -fsS {RETRY} {url}\n")
    run(session, f"docker compose start\ncurl -fsS {url}\n")
    with pytest.raises(CommandError, match="empty reply"):
        run(
            session, f"docker compose stop backend\ndocker compose start backend\ncurl -fsS {url}\n"
        )


@pytest.mark.gate_session(timeout=120)
def test_compose_unpause_resumes_only_what_was_paused(session: Session) -> None:
    """`docker compose unpause` unpauses the project's running containers (getContainers without
    stopped ones, pkg/compose/pause.go of docker/compose v5.5.0): a paused one answers again at
    once, a stopped one stays stopped."""
    require_tool("docker-compose")
    url = f"http://localhost:{_http(session)}/v1/health"
    run(session, STACK + f"docker compose up --build --wait\ncurl -fsS {RETRY} {url}\n")
    run(session, f"docker compose pause backend\ndocker compose unpause backend\ncurl -fsS {url}\n")
    with pytest.raises(CommandError, match="nothing answers"):
        run(session, f"docker compose stop backend\ndocker compose unpause\ncurl -fsS {url}\n")


def test_a_call_through_grafanas_proxy_route_needs_the_backends_pods(session: Session) -> None:
    """Grafana's server calls the backend's Service for the app's proxy route: while the backend's
    pods, made anew by an upgrade (its Deployment's strategy is Recreate, so the old pod is gone
    first), are not running, the Service has no endpoint, and Grafana answers 502."""
    app = session.release.current.plugin.id
    curl = f"curl -fsS -u admin http://localhost:3000/api/plugin-proxy/{app}/backend/v1/health\n"
    forward = "kubectl -n betrace port-forward svc/betrace-grafana 3000:80 &\nsleep 1\n"
    run(session, _install(session, " --wait") + forward + curl)
    upgrade = "helm upgrade betrace ./helm/betrace -n betrace --reuse-values"
    with pytest.raises(CommandError, match=r"Deployment 'betrace-backend'.*502"):
        run(session, f"{upgrade} --set backend.debug=true\n" + curl)
    run(session, "kubectl rollout status deploy/betrace-backend -n betrace\n" + curl)


@pytest.mark.parametrize("timeout", ["--timeout=0", "--timeout 0s", "--timeout=0m0s"])
def test_a_wait_with_no_timeout_checks_once(session: Session, timeout: str) -> None:
    """kubectl wait's --timeout of zero "means check once and don't wait" (its --help, and
    pkg/cmd/wait/wait.go of kubernetes/kubectl v0.35.0): over pods nothing waited for it fails,
    over running ones it passes."""
    wait = f"kubectl wait --for=condition=Ready pod/helper -n work {timeout}\n"
    with pytest.raises(CommandError, match="timed out waiting for the condition on pods/helper"):
        run(session, POD + wait)
    run(session, "kubectl wait --for=condition=Ready pod/helper -n work\n" + wait)


@pytest.mark.parametrize("where", ["-A", "--all-namespaces"])
def test_a_wait_over_all_namespaces_waits_for_each(session: Session, where: str) -> None:
    """kubectl wait -A lists the kind in every namespace (its --all-namespaces flag)."""
    run(
        session,
        POD.replace("work", "other")
        + POD
        + f"kubectl wait --for=condition=Ready pods --all {where} --timeout=5m\n"
        + "kubectl exec pod/helper -n other -- ls\nkubectl exec pod/helper -n work -- ls\n",
    )


@pytest.mark.gate_session(timeout=120)
def test_compose_grafana_answers_after_a_sleep_as_long_as_the_retries(session: Session) -> None:
    """A sleep waits as long as the retries the gate asks of a curl (curl.CONTAINER_WAIT): after
    it, Grafana answers as it does after those retries."""
    require_tool("docker-compose")
    url = "http://localhost:3000/api/health"
    run(session, STACK + "docker compose up --build --wait\n")
    with pytest.raises(CommandError, match="does not retry it for 60 s"):
        run(session, f"sleep 59\ncurl -fsS {url}\n")
    run(session, f"sleep 60\ncurl -fsS {url}\n")


@pytest.mark.parametrize(
    "fed",
    [
        "kubectl exec pod/helper -n work -- sh -c 'cat > /tmp/x' < rules.json\n",
        "kubectl exec pod/helper -n work -- sh -c 'cat > /tmp/x' <<'EOF'\n{}\nEOF\n",
    ],
    ids=["redirect", "heredoc"],
)
def test_input_fed_to_kubectl_exec_without_stdin_is_refused(session: Session, fed: str) -> None:
    """Without -i, kubectl passes no standard input: a restore that pipes a file into
    `cat > FILE` inside the pod writes an empty file over the rules, and passed."""
    run(
        session,
        POD + "kubectl wait --for=condition=Ready pod/helper -n work\necho {} > rules.json\n",
    )
    with pytest.raises(CommandError, match=r"kubectl exec without -i \(--stdin\) passes no"):
        run(session, fed)
    for given in ("-i", "--stdin", "-it", "--stdin=true"):
        run(session, fed.replace("kubectl exec ", f"kubectl exec {given} "))
    with pytest.raises(CommandError, match=r"without -i"):
        run(session, fed.replace("kubectl exec ", "kubectl exec --stdin=false "))


@pytest.mark.parametrize(
    ("line", "said"),
    [
        (
            "kubectl rollout status deploy/betrace-backend -n betrace --timeout=5\n",
            r'kubectl rollout: invalid argument "5" for "--timeout" flag: .*missing unit',
        ),
        (
            "kubectl wait --for=condition=Available deploy/betrace-backend -n betrace "
            "--timeout 5 minutes\n",
            r'invalid argument "5" for "--timeout" flag',
        ),
        (
            "kubectl logs deploy/betrace-backend -n betrace --tail=fifty\n",
            r'kubectl logs: invalid argument "fifty" for "--tail" flag',
        ),
        (
            f"helm upgrade betrace ./helm/betrace -n betrace --set image.registry={REGISTRY} "
            "--timeout 10\n",
            r'helm upgrade: invalid argument "10" for "--timeout" flag',
        ),
    ],
    ids=["rollout-timeout", "wait-timeout", "logs-tail", "helm-timeout"],
)
def test_a_flag_value_the_real_tool_cannot_parse_is_refused(
    session: Session, line: str, said: str
) -> None:
    """Flag values are parsed by the real kubectl and Helm (their --help, which parses every
    flag first): `--timeout=5` has no unit, and passed; the same lines with a right value pass."""
    run(session, _install(session, " --wait"))
    with pytest.raises(CommandError, match=said):
        run(session, line)
    fixed = line.replace("=5\n", "=5m\n").replace("5 minutes", "5m").replace("fifty", "50")
    run(session, fixed.replace("--timeout 10\n", "--timeout 10m\n"))


#: the Kubernetes guide's rules-access pod, reduced: the backend's claim, mounted
CLAIM_POD = """\
cat > access.yaml <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: access
spec:
  containers:
    - name: access
      image: docker.io/library/busybox:1.36
      command: [sleep, "3600"]
      volumeMounts: [{name: data, mountPath: /data}]
  volumes:
    - name: data
      persistentVolumeClaim: {claimName: betrace-backend}
YAML
"""


@pytest.mark.parametrize(
    "wait",
    [
        "kubectl wait --for=condition=Ready pod/access -n {ns} --timeout=2m\n",
        "kubectl wait --for=jsonpath='{{.status.phase}}'=Running pod/access -n {ns}\n",
    ],
    ids=["condition", "jsonpath"],
)
def test_a_wait_for_a_pod_whose_claim_is_in_another_namespace_fails(
    session: Session, wait: str
) -> None:
    """The guide's helper pod applied in `default` while the backend's claim is in `betrace`:
    the API server takes it, it stays Pending, and the wait times out; the wait passed."""
    run(session, _install(session, " --wait") + CLAIM_POD)
    run(session, "kubectl apply -f access.yaml --namespace default\n")
    with pytest.raises(
        CommandError,
        match=r"kubectl wait: Pod 'access' needs PersistentVolumeClaim 'betrace-backend', "
        r"which is not in namespace 'default'.*never start",
    ):
        run(session, wait.format(ns="default"))
    run(session, "kubectl apply -f access.yaml --namespace betrace\n" + wait.format(ns="betrace"))


def test_a_rollout_of_pods_that_read_a_missing_secret_key_fails(session: Session) -> None:
    """A workload of the page's whose pods read a key its Secret lacks never gets a ready pod
    (CreateContainerConfigError): the rollout's wait times out."""
    deployment = (
        "cat > web.yaml <<'YAML'\napiVersion: apps/v1\nkind: Deployment\n"
        "metadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n"
        "  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n"
        "        - name: web\n          image: docker.io/library/nginx:1.27\n"
        "          env: [{name: P, valueFrom: {secretKeyRef: {name: creds, key: pass}}}]\n"
        "YAML\n"
    )
    run(
        session,
        "kubectl create namespace work\n"
        "kubectl create secret generic creds -n work --from-literal=user=u\n"
        + deployment
        + "kubectl apply -f web.yaml -n work\n",
    )
    with pytest.raises(
        CommandError,
        match=r"kubectl rollout status: Deployment 'web' reads key 'pass' of Secret 'creds' in "
        r"namespace 'work', which has only: user",
    ):
        run(session, "kubectl rollout status deployment/web -n work --timeout=2m\n")


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            "      image: docker.io/library/busybox:1.36\n",
            r"container 'access': '\$REGISTRY/busybox:1.36' is no valid image reference",
        ),
        (
            '      command: [sleep, "3600"]\n',
            r"container 'access' runs as user 0 under runAsNonRoot: true",
        ),
    ],
    ids=["image-reference", "root-under-non-root"],
)
def test_a_wait_for_a_container_that_cannot_start_fails(
    session: Session, change: str, said: str
) -> None:
    """A literal `$REGISTRY` left in an image (a quoted sed), or runAsUser 0 under
    runAsNonRoot: the API server takes the pod, the kubelet never starts it, and the wait
    passed."""
    replacement = {
        "image-reference": "      image: $REGISTRY/busybox:1.36\n",
        "root-under-non-root": change
        + "      securityContext: {runAsNonRoot: true, runAsUser: 0}\n",
    }["image-reference" if "image" in change else "root-under-non-root"]
    run(session, _install(session, " --wait") + CLAIM_POD.replace(change, replacement))
    run(session, "kubectl apply -f access.yaml --namespace betrace\n")
    with pytest.raises(CommandError, match=said):
        run(session, "kubectl wait --for=condition=Ready pod/access -n betrace --timeout=2m\n")


def test_a_wait_for_a_job_whose_pod_cannot_start_fails(session: Session) -> None:
    """The existing-Grafana guide's pre-load Job with runAsUser 0 under runAsNonRoot: its pod
    never starts, so the Job never completes; the wait for condition=complete passed."""
    job = (
        "cat > job.yaml <<'YAML'\napiVersion: batch/v1\nkind: Job\nmetadata: {name: load}\n"
        "spec:\n  template:\n    spec:\n      restartPolicy: Never\n"
        "      securityContext: {runAsNonRoot: true, runAsUser: USER}\n"
        "      containers: [{name: load, image: docker.io/library/busybox:1.37}]\nYAML\n"
        "kubectl apply -f job.yaml -n work\n"
    )
    wait = "kubectl wait --for=condition=complete job/load -n work --timeout=5m\n"
    run(session, "kubectl create namespace work\n" + job.replace("USER", "0"))
    with pytest.raises(CommandError, match=r"Job 'load': container 'load' runs as user 0 under"):
        run(session, wait)
    run(session, "kubectl delete job/load -n work\n" + job.replace("USER", "472") + wait)


@pytest.mark.parametrize(
    ("workdir", "line", "said"),
    [
        ("/data", "cat rules.json", None),  # the guide's pod: its working folder is the claim
        ("/data", "cat /data/rules.json", None),
        ("/data", "cat /var/lib/betrace/rules.json", r"reads /var/lib/betrace/rules\.json, but "
         r"this container mounts the backend's data volume at /data: no such file there"),
        ("/data", "cat data/rules.json", r"data folder, /data here, holds rules\.json at its "
         r"top .*so it has no 'data/rules\.json'"),
        ("/", "cat rules.json", r"reads /rules\.json, but this container mounts .* at /data"),
        ("/", "cat /data/data/rules.json", r"data folder, /data here, holds rules\.json .*no "
         r"'data/rules\.json'"),
        # no working folder: the image's own WORKDIR is not known here, so a bare name is not
        # judged (an absolute path still is)
        (None, "cat rules.json", None),
        (None, "cat /var/lib/betrace/rules.json", r"mounts the backend's data volume at /data"),
    ],
)  # fmt: skip
def test_a_backup_through_a_helper_pod_reads_the_backends_file_where_it_lies(
    session: Session, workdir: str | None, line: str, said: str | None
) -> None:
    """The Kubernetes guide's backup reads rules.json in a helper pod that mounts the
    backend's claim at /data, its working folder: a reviewer moved it to the backend's own
    path, which is in no mount of the helper, and the gate passed (the reader's `cat` fails and
    leaves an empty backup)."""
    pod = CLAIM_POD
    if workdir is not None:
        pod = pod.replace("      command:", f"      workingDir: {workdir}\n      command:")
    run(session, _install(session, " --wait") + pod)
    run(session, "kubectl apply -f access.yaml -n betrace\nkubectl wait --for=condition=Ready "
        "pod/access -n betrace --timeout=2m\n")  # fmt: skip
    command = f"kubectl exec pod/access -n betrace -- {line} > backup.json\n"
    if said is None:
        run(session, command)
    else:
        with pytest.raises(CommandError, match=said):
            run(session, command)


def test_a_restore_through_a_helper_pod_is_followed_by_a_restart_of_the_backend(
    session: Session,
) -> None:
    """A restore writes rules.json while the backend runs: it reads the file only when it
    starts, and writes its own rules over it at its next change. A reviewer restarted Grafana
    instead of the backend after the guide's restore, and the gate passed."""
    run(session, _install(session, " --wait") + CLAIM_POD)
    run(session, "kubectl apply -f access.yaml -n betrace\nkubectl wait --for=condition=Ready "
        "pod/access -n betrace --timeout=2m\necho '{}' > backup.json\n")  # fmt: skip
    restore = (
        "kubectl exec -i pod/access -n betrace -- sh -c 'cat > /data/rules.json' < backup.json\n"
    )
    with pytest.raises(CommandError, match=r"nothing after it in the block restarts the backend "
                       r"\(deployment/betrace-backend\)"):  # fmt: skip
        run(session, restore + "kubectl rollout restart deploy/betrace-grafana -n betrace\n")
    run(session, restore + "kubectl rollout restart deploy/betrace-backend -n betrace\n")
    run(session, restore + "kubectl rollout restart deployment betrace-backend -n betrace\n")


@pytest.mark.gate_session(timeout=120)
def test_a_retry_without_retry_all_errors_is_told_to_add_it(session: Session) -> None:
    """The attack dropped --retry-all-errors from the Compose guide's --retry 30 --retry-delay 2:
    caught, with advice to write a whole new curl and words about `up` having no --wait. The
    fix is the one flag: the message now says so."""
    require_tool("docker-compose")
    url = "http://localhost:3000/api/health"
    run(session, STACK + "docker compose up --build --wait\n")
    with pytest.raises(CommandError, match="add --retry-all-errors to its --retry"):
        run(session, f"curl -fsS --retry 30 --retry-delay 2 {url}\n")
