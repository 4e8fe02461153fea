"""What answers on a port the page forwarded or started: read from the container there (its
image, its own variables), as the Compose model reads a service, never from a Service's name or
a label; and a backend started by hand listens where its own variables say."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.gate.grafana_app import backend_url_problem
from betrace_dist.gate.session import CommandError, Session
from betrace_dist.gate.world import K8sObject, MixedPods

from .conftest import backend_image, run

REGISTRY = "registry.example.com/betrace"
#: what a page does before it reaches a pod it made: wait for it to run (tests/test_readiness.py)
READY = (
    "kubectl rollout status deployment -n betrace -l app.kubernetes.io/instance=betrace\n"
    "kubectl wait --for=condition=Ready pod --all -n betrace\n"
)


pytestmark = pytest.mark.gate_session(tools=("helm", "kubectl"), timeout=60)


def _install(session: Session, *values: str) -> str:
    """The Kubernetes guide's build of the backend image and the chart's install."""
    sets = "".join(f" --set {v}" for v in values)
    return backend_image(session, REGISTRY) + (
        f"helm install betrace ./helm/betrace --namespace betrace --create-namespace "
        f"--set image.registry={REGISTRY}{sets}\n"
    )


def _forward_backend(ports: str) -> str:
    """Wait for the pods, then forward LOCAL:REMOTE to the backend's Service in the background."""
    return READY + f"kubectl -n betrace port-forward svc/betrace-backend {ports} &\nsleep 1\n"


def _written(name: str, text: str) -> str:
    """The page's lines that write `text` to the file `name` (a quoted heredoc: nothing in it
    is expanded)."""
    return f"cat > {name} <<'YAML'\n{text}YAML\n"


def _forwarded_pod(image: str, port: int = 12011) -> str:
    """A pod `own` of the page's, running `image` with `port` declared, applied, forwarded
    from local port 12011, and the backend's health asked of it there."""
    container = f"{{name: web, image: {image}, ports: [{{containerPort: {port}}}]}}"
    pod = (
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: own}}\nspec: {{containers: [{container}]}}\n"
    )
    return (
        _written("pod.yaml", pod)
        + "kubectl apply -f pod.yaml\n"
        + "kubectl wait --for=condition=Ready pod/own\n"
        + f"kubectl port-forward pod/own 12011:{port} &\nsleep 1\n"
        + "curl -fsS http://localhost:12011/v1/health\n"
    )


def test_a_port_forward_reaches_the_http_port_the_values_set(session: Session) -> None:
    """The chart's backend.ports.http moves the server and the Service together; the model took
    the release's default port for every port-forward and refused the page."""
    run(
        session,
        _install(session, "backend.ports.http=9000")
        + _forward_backend("9000:9000")
        + "curl -fsS http://localhost:9000/v1/health\n",
    )


def test_a_port_forward_to_the_grpc_port_is_not_http(session: Session) -> None:
    grpc = session.release.current.backend.ports["grpc"].port
    with pytest.raises(CommandError, match=f"port {grpc} of the backend is not its HTTP server"):
        run(
            session,
            _install(session)
            + _forward_backend(f"{grpc}:{grpc}")
            + f"curl -fsS http://localhost:{grpc}/v1/health\n",
        )


#: a Deployment and Service labelled as the backend's, running nginx
_NGINX_MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: betrace-backend
  labels: {app.kubernetes.io/component: backend}
spec:
  selector: {matchLabels: {app: fake}}
  template:
    metadata:
      labels: {app: fake, app.kubernetes.io/component: backend}
    spec:
      containers:
        - name: backend
          image: nginx:1.27
          ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: betrace-backend
  labels: {app.kubernetes.io/component: backend}
spec:
  selector: {app: fake}
  ports: [{port: 12011, targetPort: 80}]
"""
NGINX = _written("fake.yaml", _NGINX_MANIFEST) + "kubectl apply -f fake.yaml\n"


def test_the_charts_backend_with_another_tag_and_grafana_from_a_mirror_are_known(
    session: Session,
) -> None:
    """In a release of the project's chart, what a container runs is what the chart's template
    says, whatever registry or tag the values give: taken by its image alone, a backend with
    its own tag and a Grafana mirrored to a private registry were not known."""
    run(
        session,
        _install(
            session,
            "backend.image.tag=2.0.0-patched",
            "grafana.image.repository=registry.example.com/mirror/grafana/grafana",
        )
        + _forward_backend("12011:12011")
        + "curl -fsS http://localhost:12011/v1/health\n"
        + READY
        + "kubectl -n betrace port-forward svc/betrace-grafana 3000:80 &\nsleep 1\n"
        + "curl -fsS http://localhost:3000/api/health\n",
    )
    with pytest.raises(CommandError, match="it runs exactly one replica"):
        run(session, "kubectl -n betrace scale deploy/betrace-backend --replicas=2\n")


def test_exec_through_a_service_reaches_the_backends_image(session: Session) -> None:
    """kubectl exec svc/NAME runs in one of the Service's pods: the backend's image there has
    no shell tools (the check read only a workload's own pods)."""
    with pytest.raises(CommandError, match="the backend image has no 'cat'"):
        run(
            session,
            _install(session)
            + READY
            + "kubectl -n betrace exec svc/betrace-backend -- cat /var/lib/betrace/rules.json\n",
        )


def test_a_port_forward_to_a_service_without_a_selector_is_refused(session: Session) -> None:
    """A Service without a selector selected every workload of its namespace."""
    with pytest.raises(CommandError, match="'proxy' has no selector"):
        run(
            session,
            _install(session)
            + _written(
                "proxy.yaml",
                "apiVersion: v1\nkind: Service\nmetadata: {name: proxy}\n"
                "spec: {ports: [{port: 12011}]}\n",
            )
            + "kubectl -n betrace apply -f proxy.yaml\n"
            + READY
            + "kubectl -n betrace port-forward svc/proxy 12011:12011 &\nsleep 1\n",
        )


def test_a_workloads_named_port_and_a_missing_local_port(session: Session) -> None:
    """kubectl resolves a pod's named port; the gate failed on it with a ValueError, and on
    `:PORT`, where kubectl picks the local port itself."""
    run(
        session,
        _install(session)
        + READY
        + "kubectl -n betrace port-forward deploy/betrace-backend 12011:http &\nsleep 1\n"
        + "curl -fsS http://localhost:12011/v1/health\n",
    )
    with pytest.raises(CommandError, match="name the local port"):
        run(
            session,
            READY + "kubectl -n betrace port-forward deploy/betrace-backend :12011 &\nsleep 1\n",
        )
    with pytest.raises(CommandError, match="declares no port named 'htp', did you mean 'http'"):
        run(
            session,
            READY + "kubectl -n betrace port-forward deploy/betrace-backend 12011:htp &\nsleep 1\n",
        )


def test_a_service_named_and_labelled_backend_that_runs_nginx_is_not_the_backend(
    session: Session,
) -> None:
    """A port-forward's role came from its Service's component label, or its name."""
    with pytest.raises(CommandError, match=r"nothing known is served .*image nginx:1\.27"):
        run(
            session,
            NGINX
            + "kubectl rollout status deployment/betrace-backend\n"
            + "kubectl port-forward svc/betrace-backend 12011:12011 &\nsleep 1\n"
            + "curl -fsS http://localhost:12011/v1/health\n",
        )


def test_scaling_is_refused_for_the_backends_image_not_for_a_label(session: Session) -> None:
    run(session, NGINX + "kubectl scale deploy/betrace-backend --replicas=2\n")
    with pytest.raises(CommandError, match="it runs exactly one replica"):
        run(
            session,
            _install(session) + "kubectl -n betrace scale deploy/betrace-backend --replicas=2\n",
        )


def test_a_backend_started_on_another_port_serves_http_there(session: Session) -> None:
    """The Nix model recorded the release's default as the port behind the listener, so a
    backend started with BETRACE_PORT_BACKEND=9000 was refused as not serving HTTP on 9000."""
    commit = session.release.current.upstream.commit
    run(
        session,
        f"nix build github:betrace-hq/betrace/{commit}#backend\n"
        "BETRACE_PORT_BACKEND=9000 ./result/bin/betrace-backend &\n"
        "sleep 1\ncurl -fsS http://localhost:9000/v1/health\n",
    )


def test_a_plain_assignment_does_not_reach_the_backend(session: Session) -> None:
    """As in bash, a variable the page sets without `export` stays in the shell: the backend
    started next listens on its default port, not on the one the variable names."""
    commit = session.release.current.upstream.commit
    run(session, f"nix build github:betrace-hq/betrace/{commit}#backend\n")
    with pytest.raises(CommandError, match="nothing answers on localhost:9000"):
        run(
            session,
            "BETRACE_PORT_BACKEND=9000\n./result/bin/betrace-backend &\n"
            "curl -fsS http://localhost:9000/v1/health\n",
        )


def test_an_exported_variable_of_the_backend_is_checked_as_an_inline_one(session: Session) -> None:
    commit = session.release.current.upstream.commit
    grpc = session.release.current.backend.ports["grpc"].env
    http = session.release.current.backend.ports["http"].port
    run(session, f"nix build github:betrace-hq/betrace/{commit}#backend\n")
    with pytest.raises(
        CommandError, match=rf"{grpc} is {http}, the port of the HTTP server.*\(exported\)"
    ):
        run(session, f"export {grpc}={http}\n./result/bin/betrace-backend &\n")


def test_the_live_backend_takes_a_grpc_port_of_its_own(backend_program: Path) -> None:
    """The live backend was given the chart's gRPC port while its HTTP server took the page's
    local port: with both 9000 it exited ("address already in use")."""
    from betrace_dist.gate.live import LiveTier

    s = Session(timeout=120, live_tier=LiveTier(program=backend_program, off_reason=None))
    try:
        run(
            s,
            _install(s, "backend.ports.grpc=9000")
            + _forward_backend("9000:12011")
            + "curl -fsS http://localhost:9000/v1/health\n",
        )
    finally:
        s.close()


def test_grafana_answers_on_its_own_port_only(session: Session) -> None:
    """Any port of Grafana's pod was taken to serve Grafana's API."""
    run(session, _install(session))
    with pytest.raises(CommandError, match=r"Grafana listens on 3000 .*not on port 8080"):
        run(
            session,
            READY + "kubectl -n betrace port-forward deploy/betrace-grafana 8080:8080 &\nsleep 1\n"
            "curl -fsS http://localhost:8080/api/health\n",
        )


def test_scaling_the_backend_in_either_form_and_to_none(session: Session) -> None:
    """`scale deployment NAME` escaped the check, and --replicas=0, which stops the backend
    and is no second replica, was refused."""
    run(
        session,
        _install(session) + "kubectl -n betrace scale deploy/betrace-backend --replicas=0\n",
    )
    with pytest.raises(CommandError, match="it runs exactly one replica"):
        run(session, "kubectl -n betrace scale deployment betrace-backend --replicas=3\n")


def test_exec_checks_the_container_it_enters(session: Session) -> None:
    """`kubectl exec -c CONTAINER` skipped the check of the backend's image."""
    with pytest.raises(CommandError, match="the backend image has no 'cat'"):
        run(
            session,
            _install(session)
            + READY
            + "kubectl -n betrace exec deploy/betrace-backend -c backend -- cat /etc/hostname\n",
        )


def _two_container_pod(session: Session, annotation: str, backend_first: bool = False) -> str:
    """A pod of the page's own: a busybox sidecar and a container of the backend's image, built
    and pushed as the Kubernetes guide does (the release's images are not published: a pod of
    the project's would not pull), the sidecar first unless `backend_first`, the
    default-container annotation naming `annotation`."""
    registry = "registry.example.com/betrace"
    image = f"{registry}/backend:{session.release.current.version}"
    containers = [
        "  - {name: sidecar, image: busybox:1.37}\n",
        f"  - {{name: backend, image: {image}}}\n",
    ]
    pod = (
        "apiVersion: v1\nkind: Pod\n"
        f"metadata: {{name: two, annotations: {{kubectl.kubernetes.io/default-container: "
        f"{annotation}}}}}\n"
        "spec:\n  containers:\n" + "".join(containers[::-1] if backend_first else containers)
    )
    return (
        backend_image(session, registry) + _written("pod.yaml", pod) + "kubectl apply -f pod.yaml\n"
    )


def test_exec_enters_the_container_the_annotation_names(session: Session) -> None:
    """Without -c, kubectl exec enters the container the pod's default-container annotation
    names (kubectl's podcmd), here the backend's, whose image has no cat."""
    with pytest.raises(CommandError, match="the backend image has no 'cat'"):
        run(
            session,
            _two_container_pod(session, "backend")
            + "kubectl wait --for=condition=Ready pod/two\nkubectl exec pod/two -- cat x\n",
        )


def test_an_annotation_naming_no_container_falls_back_to_the_first(session: Session) -> None:
    """kubectl ignores a default-container annotation that names no container of the pod and
    enters the first; the model entered none, and so checked nothing by accident."""
    with pytest.raises(CommandError, match="the backend image has no 'cat'"):
        run(
            session,
            _two_container_pod(session, "gone", True)
            + "kubectl wait --for=condition=Ready pod/two\nkubectl exec pod/two -- cat x\n",
        )


def test_exec_into_a_container_the_pods_lack_is_refused(session: Session) -> None:
    """`kubectl exec -c NAME` of a container the pods do not have fails ("container NAME not
    found in pod"); the model took it for one that runs nothing it knows."""
    with pytest.raises(CommandError, match="has no container 'backnd'"):
        run(
            session,
            _install(session)
            + READY
            + "kubectl -n betrace exec deploy/betrace-backend -c backnd -- ls\n",
        )


def test_a_chart_of_the_pages_named_betrace_is_not_the_projects(session: Session) -> None:
    """A chart the page wrote, whose Chart.yaml is named like the project's, was trusted as the
    project's chart: its pods' roles came from their component labels, so nginx labelled
    `backend` was taken for the backend."""
    chart = "apiVersion: v2\nname: betrace\nversion: 1.2.0\n"
    with pytest.raises(CommandError, match=r"nothing known is served .*image nginx:1\.27"):
        run(
            session,
            "mkdir -p mine/templates\n"
            + _written("mine/Chart.yaml", chart)
            + _written("mine/templates/all.yaml", _NGINX_MANIFEST)
            + "helm install betrace ./mine --namespace betrace --create-namespace\n"
            + "kubectl rollout status deployment/betrace-backend -n betrace\n"
            + _forward_backend("12011:12011")
            + "curl -fsS http://localhost:12011/v1/health\n",
        )


def _copied_chart(session: Session, change: str, *values: str) -> str:
    """The project's chart copied to ./copy, `change` run on the copy, then installed from
    it with the page's own backend image (the Kubernetes guide's build)."""
    return change + _install(session, *values).replace("./helm/betrace", "./copy")


def test_a_modified_copy_of_the_projects_chart_runs_what_its_images_are(
    session: Session,
) -> None:
    """A copy with a template changed is not the project's chart: what its pods run is their
    images', so the page's own build of the backend is still the backend, and a backend tag
    built nowhere on the page is not known."""
    change = "cp -r helm/betrace copy\necho '# changed' >> copy/templates/NOTES.txt\n"
    run(
        session,
        _copied_chart(session, change)
        + _forward_backend("12011:12011")
        + "curl -fsS http://localhost:12011/v1/health\n",
    )
    run(session, "helm uninstall betrace --namespace betrace\n")
    with pytest.raises(CommandError, match=r"nothing known is served .*:2\.0\.0-patched"):
        run(
            session,
            _copied_chart(session, "", "backend.image.tag=2.0.0-patched")
            + _forward_backend("12011:12011")
            + "curl -fsS http://localhost:12011/v1/health\n",
        )


def test_a_copy_of_the_projects_chart_with_other_values_is_the_projects(
    session: Session,
) -> None:
    """Values are the page's to give: a copy whose values.yaml alone differs renders what the
    project's chart renders with those values, so its template still says what runs."""
    change = "cp -r helm/betrace copy\necho 'nameOverride: betrace' >> copy/values.yaml\n"
    run(
        session,
        _copied_chart(session, change, "backend.image.tag=2.0.0-patched")
        + _forward_backend("12011:12011")
        + "curl -fsS http://localhost:12011/v1/health\n",
    )


def test_a_copy_reaching_the_projects_chart_through_a_link_out_is_not_the_projects(
    session: Session,
) -> None:
    """The chart is compared as the page's files are read: a folder that is a link leading out
    of the sandbox is never followed, even to the project's own templates; a link that stays
    inside is followed, as Helm follows it."""
    run(session, "cp -r helm/betrace copy\ncp -r helm/betrace/templates kept\n")
    copy, free = session.repo / "copy", frozenset({"values.yaml"})
    assert session.is_projects(copy, "helm/betrace", free)
    shutil.rmtree(copy / "templates")
    (copy / "templates").symlink_to(REPO_ROOT / "helm" / "betrace" / "templates")
    assert not session.is_projects(copy, "helm/betrace", free)
    (copy / "templates").unlink()
    (copy / "templates").symlink_to("../kept")
    assert session.is_projects(copy, "helm/betrace", free)


def _built_and_forwarded(session: Session, dockerfile: str) -> str:
    """`dockerfile` (commands that write ./own/Dockerfile) built for the target `backend` as
    the project's backend image, run in a pod of the page's, and forwarded."""
    image = f"{session.release.project.registry}/backend:{session.release.current.version}"
    return (
        dockerfile
        + f"docker build --target backend -t {image} own/\ndocker push {image}\n"
        + _forwarded_pod(image, 80)
    )


@pytest.mark.parametrize(
    "dockerfile",
    [
        "mkdir own\nprintf 'FROM nginx:1.27 AS backend\\n' > own/Dockerfile\n",
        "mkdir own\ncp docker/Dockerfile own/\n"
        "printf 'FROM nginx:1.27 AS backend\\n' >> own/Dockerfile\n",
    ],
    ids=["own", "changed-copy"],
)
def test_an_image_built_from_a_dockerfile_of_the_pages_is_unknown(
    session: Session, dockerfile: str
) -> None:
    """A stage named `backend` in a Dockerfile the page wrote, or changed, made the tag the
    backend's (its target's role), whatever the stage runs: here nginx, listening on 80."""
    with pytest.raises(CommandError, match=r"nothing known is served .*image ghcr\.io/"):
        run(session, _built_and_forwarded(session, dockerfile))


def _service_of(selector: str, pod: str = "") -> str:
    """A Service `both` on port 12011 with `selector`, and `pod` (a pod's YAML) beside it."""
    service = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: both}\n"
        f"spec: {{selector: {{{selector}}}, ports: [{{port: 12011, targetPort: 12011}}]}}\n"
    )
    return _written("both.yaml", pod + service) + "kubectl -n betrace apply -f both.yaml\n"


def test_a_port_forward_to_a_service_over_the_backend_and_grafana_is_refused(
    session: Session,
) -> None:
    """kubectl port-forward svc/NAME forwards to one pod the Service selects, the one kubectl's
    GetFirstPod sorts first (the most ready), never the one that declares the port: over the
    backend's and Grafana's pods, the model took the backend's."""
    with pytest.raises(
        CommandError,
        match=r"Service 'both' selects pods that run different things: .*backend.*grafana"
        r".*a selector that picks one workload",
    ):
        run(
            session,
            _install(session)
            + _service_of("app.kubernetes.io/instance: betrace")
            + READY
            + "kubectl -n betrace port-forward svc/both 12011:12011 &\nsleep 1\n",
        )


def _backend_pod(session: Session, name: str, env: str = "") -> str:
    image = f"{REGISTRY}/backend:{session.release.current.version}"
    return (
        "apiVersion: v1\nkind: Pod\n"
        f"metadata: {{name: {name}, labels: {{app: pair}}}}\n"
        f"spec: {{containers: [{{name: backend, image: {image}, {env}"
        "ports: [{containerPort: 12011}]}]}\n---\n"
    )


def _pair_is_refused(session: Session, one: str, two: str) -> None:
    """Two backend pods with these environments (`env: [...], ` or nothing) behind one Service
    are refused as set up differently."""
    pods = _backend_pod(session, "one", one) + _backend_pod(session, "two", two)
    with pytest.raises(CommandError, match="selects pods whose containers are set up differently"):
        run(
            session,
            _install(session)
            + _service_of("app: pair", pods)
            + READY
            + "kubectl -n betrace port-forward svc/both 12011:12011 &\nsleep 1\n",
        )


def test_a_service_over_pods_that_all_run_the_backend_reaches_the_backend(
    session: Session,
) -> None:
    """Whichever pod kubectl picks, where all of them run the backend alike, it answers."""
    pods = _backend_pod(session, "one") + _backend_pod(session, "two")
    run(
        session,
        _install(session)
        + _service_of("app: pair", pods)
        + READY
        + "kubectl -n betrace port-forward svc/both 12011:12011 &\nsleep 1\n"
        + "curl -fsS http://localhost:12011/v1/health\n",
    )


def test_a_service_over_backends_set_up_differently_is_refused(session: Session) -> None:
    """Two backends behind one Service, one told to listen elsewhere: the model took the first
    one's environment, where kubectl may pick either pod."""
    moved = "env: [{name: BETRACE_PORT_BACKEND, value: '9000'}], "
    _pair_is_refused(session, "", moved)


def test_a_helm_tests_pod_is_not_among_the_pods_a_service_reaches(session: Session) -> None:
    """The chart's test pod runs only while `helm test` does (deleted once it succeeds): a
    Service over the release's pods reaches the backend's alone when Grafana is off."""
    run(
        session,
        _install(session, "grafana.enabled=false")
        + _service_of("app.kubernetes.io/instance: betrace")
        + READY
        + "kubectl -n betrace port-forward svc/both 12011:12011 &\nsleep 1\n"
        + "curl -fsS http://localhost:12011/v1/health\n",
    )


def test_grafana_given_a_service_over_the_backend_and_grafana_is_refused(
    session: Session,
) -> None:
    """A Service sends each connection to any pod it selects: as a backend URL, one over the
    backend's and Grafana's pods was taken to reach the backend, the one declaring the port."""
    run(session, _install(session) + _service_of("app.kubernetes.io/instance: betrace"))
    url = "http://both:12011"
    problem = backend_url_problem(session.world, "betrace", url, session.release)
    assert problem is not None and "selects pods that run different things" in problem, problem
    assert "a selector that picks the backend's pods only" in problem


@pytest.mark.parametrize(
    ("step", "said"),
    [
        (
            READY + "kubectl -n betrace port-forward svc/betrace-backend ²:12011",
            "name the local port",
        ),
        (
            READY + "kubectl -n betrace port-forward deploy/betrace-backend 8080:²",
            "no port named '²'",
        ),
        # kubectl's own parse of the flag refuses it (and the model's count never reads it)
        (
            "kubectl -n betrace scale deploy/betrace-backend --replicas=²",
            'invalid argument "²" for "--replicas" flag: strconv.ParseInt',
        ),
    ],
)
def test_numbers_are_ascii_digits(session: Session, step: str, said: str) -> None:
    """'²' passed str.isdigit() and then crashed int(): an internal error, not a verdict."""
    run(session, _install(session))
    with pytest.raises(CommandError, match=said):
        run(session, step + "\n")


def test_the_projects_chart_runs_what_the_page_built_under_its_image_name(
    session: Session,
) -> None:
    """A tag the page built from its own Dockerfile, under the backend's image name, run by the
    project's chart: the chart's label made it the backend, so a port-forward reached the real
    one and an exec was checked against the backend's image."""
    version = session.release.current.version
    run(
        session,
        "mkdir mine\nprintf 'FROM nginx:1.27\\n' > mine/Dockerfile\n"
        f"docker build -t {REGISTRY}/backend:{version} mine\n"
        f"docker push {REGISTRY}/backend:{version}\n"
        f"helm install betrace ./helm/betrace --namespace betrace --create-namespace "
        f"--set image.registry={REGISTRY}\n"
        + READY
        + "kubectl -n betrace exec deploy/betrace-backend -- sh -c 'nginx -v'\n",
    )
    with pytest.raises(CommandError, match="built on this page, not from a target of the project"):
        run(
            session,
            READY + "kubectl -n betrace port-forward svc/betrace-backend 12011:12011 &\nsleep 1\n"
            "curl -fsS http://localhost:12011/v1/health\n",
        )


def test_an_image_built_with_other_patches_is_unknown(session: Session) -> None:
    """The project's Dockerfile given another folder as its `patches` context builds upstream
    with other patches (here one left out): the gate's live backend, built with the project's
    series, says nothing of what it runs."""
    version = session.release.current.version
    image = f"{session.release.project.registry}/backend:{version}"
    build = (
        "cp -r patches mine\nrm mine/betrace-backend/0006-*.patch\n"
        + f"docker build --target backend --build-context patches=mine -t {image} docker/\n"
        + f"docker push {image}\n"
    )
    forward = _forwarded_pod(image)
    with pytest.raises(CommandError, match=r"nothing known is served .*image ghcr\.io/"):
        run(session, build + forward)
    # the same steps with the project's own series reach the backend
    again = Session(timeout=60)
    try:
        run(again, build.replace("=mine", "=patches") + forward)
    finally:
        again.close()


@pytest.mark.parametrize(
    "build",
    [
        # buildx keys `patches:latest` and `docker.io/library/patches` as `patches`: the last wins
        "--build-context patches=patches --build-context patches:latest=mine",
        "--build-context patches=patches --build-context docker.io/library/patches=mine",
        # other code than the release's
        "--build-context patches=patches --build-arg BETRACE_COMMIT=" + "0" * 40,
        "--build-context patches=patches --build-arg BETRACE_VERSION=9.9.9",
        "--build-context patches=patches --build-arg BETRACE_COMMIT",
        # Docker Hub's name without library/, and in its index form
        "--build-context patches=patches --build-context docker.io/patches=mine",
        "--build-context patches=patches --build-context index.docker.io/patches:latest=mine",
        # a context that replaces a stage, or a FROM image, of the same name
        "--build-context patches=patches --build-context backend-build=mine",
        "--build-context patches=patches --build-context golang:1.24.2-bookworm=mine",
    ],
    ids=[
        "name-tag",
        "name-registry",
        "commit",
        "version",
        "arg-from-env",
        "name-hub",
        "name-index",
        "stage",
        "from-image",
    ],
)
def test_a_build_of_other_patches_or_code_under_another_spelling_is_unknown(
    session: Session, build: str
) -> None:
    """The project's Dockerfile built with the project's patches under one spelling of the
    context's name and a trimmed copy under another, or with another commit or version: the
    model took the first spelling and ignored the build args."""
    version = session.release.current.version
    image = f"{session.release.project.registry}/backend:{version}"
    script = (
        "cp -r patches mine\nrm mine/betrace-backend/0006-*.patch\n"
        + f"docker build --target backend {build} -t {image} docker/\n"
        + f"docker push {image}\n"
        + _forwarded_pod(image)
    )
    with pytest.raises(CommandError, match=r"nothing known is served .*image ghcr\.io/"):
        run(session, script)


@pytest.mark.parametrize(
    ("context", "said"),
    [("patches", "expected NAME=VALUE"), ("PATCHES=patches", "must be lowercase")],
)
def test_build_context_words_buildx_refuses_are_refused(
    session: Session, context: str, said: str
) -> None:
    with pytest.raises(CommandError, match=said):
        run(session, f"docker build --target backend --build-context {context} -t x:1 docker/\n")


#: the chart's backend Deployment, as `helm template` renders it, running nginx: the same
#: labels, container name, ports and variables
_TWIN_MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: betrace-backend
  labels: &labels
    app.kubernetes.io/name: betrace
    app.kubernetes.io/instance: betrace
    app.kubernetes.io/component: backend
spec:
  selector:
    matchLabels: *labels
  template:
    metadata:
      labels: *labels
    spec:
      containers:
        - name: backend
          image: nginx:1.27
          env:
            - {name: BETRACE_PORT_BACKEND, value: "12011"}
            - {name: BETRACE_PORT_GRPC, value: "12012"}
            - {name: BETRACE_DATA_DIR, value: /var/lib/betrace}
            - name: BETRACE_SIGNATURE_KEY
              valueFrom: {secretKeyRef: {name: betrace-backend, key: signature-key}}
            - {name: OTEL_EXPORTER_OTLP_TIMEOUT, value: "1000"}
          ports:
            - {name: http, containerPort: 12011}
            - {name: grpc, containerPort: 12012}
"""
_TWIN = _written("twin.yaml", _TWIN_MANIFEST)


def test_applying_over_a_releases_object_is_refused(session: Session) -> None:
    """kubectl apply of the chart's Deployment by its own name joined the world as a second
    object beside the release's: the port-forward reached the release's backend, where the
    reader's cluster runs what the apply made of it (nginx here). kubectl apply merges a
    manifest into an object without its last-applied configuration, which Helm's are."""
    with pytest.raises(
        CommandError,
        match=r"Deployment 'betrace-backend' belongs to Helm release 'betrace'.*"
        r"should only be used on resources created declaratively",
    ):
        run(
            session,
            _install(session)
            + _TWIN
            + "kubectl -n betrace apply -f twin.yaml\n"
            + _forward_backend("12011:12011")
            + "curl -fsS http://localhost:12011/v1/health\n",
        )


def test_two_workloads_of_one_kind_and_name_behind_a_service_are_two(session: Session) -> None:
    """World.serving told the workloads behind a Service apart by kind and name: of a release's
    backend and a twin of the same name running nginx, the second's role overwrote the first's,
    so the pods were taken to run one thing, the backend."""
    run(session, _install(session))
    world = session.world
    chart = world.find("betrace", "Deployment", "betrace-backend")
    service = world.find("betrace", "Service", "betrace-backend")
    assert chart is not None and service is not None
    doc = copy.deepcopy(chart.doc)
    doc["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27"
    world.objects.append(K8sObject(chart.kind, chart.name, chart.namespace, doc, "test"))
    with pytest.raises(
        MixedPods,
        match=r"Deployment 'betrace-backend' \(backend\), Deployment 'betrace-backend' "
        r"\(not known\)",
    ):
        world.serving("betrace", service, 12011, session.release)


def _from_config_map(session: Session, image: str) -> str:
    """A ConfigMap that moves the backend's HTTP server to 9000, read by a pod of `image`
    through envFrom, behind the Service `both` on 12011."""
    http = session.release.current.backend.ports["http"].env
    config = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: moved}\n"
        f"data: {{{http}: '9000'}}\n---\n"
    )
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: one, labels: {app: pair}}\n"
        f"spec: {{containers: [{{name: server, image: {image}, "
        "envFrom: [{configMapRef: {name: moved}}], ports: [{containerPort: 12011}]}]}\n---\n"
    )
    return _service_of("app: pair", config + pod)


def test_a_backend_that_takes_variables_from_env_from_is_refused(session: Session) -> None:
    """envFrom was not read: the backend behind the port-forward was taken to listen on its
    default port, where its ConfigMap moves it to 9000. As for a port variable from a Secret,
    the gate cannot tell where it listens, and refuses it, naming the container: at the apply
    now, which holds a page-built backend image's variables to the backend's (before, at the
    port-forward; World.serving's own refusal stays for objects no manifest check saw)."""
    image = f"{REGISTRY}/backend:{session.release.current.version}"
    with pytest.raises(
        CommandError,
        match=r"Pod/one container server takes variables "
        r"from envFrom \(ConfigMap 'moved'\).*cannot tell which of its ports serves HTTP",
    ):
        run(
            session,
            _install(session)
            + _from_config_map(session, image)
            + READY
            + "kubectl -n betrace port-forward svc/both 12011:12011 &\nsleep 1\n"
            + "curl -fsS http://localhost:12011/v1/health\n",
        )


def test_a_manifest_of_the_backend_image_with_env_from_is_refused(session: Session) -> None:
    """The backend's variables in a manifest are checked one by one (backend_env.py): through
    envFrom, any name and value went unchecked."""
    image = f"{session.release.project.registry}/backend:{session.release.current.version}"
    with pytest.raises(
        CommandError, match=r"Pod/one container server takes variables from envFrom"
    ):
        run(session, "kubectl create namespace betrace\n" + _from_config_map(session, image))


#: two variables the backend reads, whose values the tests below may set freely (a page-built
#: backend image's variables are held to the backend's, backend_env.py)
A, B = "BETRACE_DATA_DIR", "BETRACE_DEBUG"


@pytest.mark.parametrize(
    ("one", "two"),
    [
        (f"[{{name: {A}, value: '1'}}, {{name: {B}, value: '2'}}]",
         f"[{{name: {B}, value: '2'}}, {{name: {A}, value: '1'}}]"),
        (f"[{{name: {A}, value: '0'}}, {{name: {A}, value: '1'}}]", f"[{{name: {A}, value: '1'}}]"),
        (f"[{{name: {B}, value: ''}}]", f"[{{name: {B}}}]"),
    ],
    ids=["order", "later-name-wins", "empty-value"],
)  # fmt: skip
def test_backends_whose_variables_resolve_alike_are_set_up_alike(
    session: Session, one: str, two: str
) -> None:
    """The pods' environments were compared as written: the same variables in another order,
    or a name given twice whose later value is the other pod's, made MixedPods, where each
    container's process gets the same variables (kubelet takes a name's last entry)."""
    pods = _backend_pod(session, "one", f"env: {one}, ") + _backend_pod(
        session, "two", f"env: {two}, "
    )
    run(
        session,
        _install(session)
        + _service_of("app: pair", pods)
        + READY
        + "kubectl -n betrace port-forward svc/both 12011:12011 &\nsleep 1\n"
        + "curl -fsS http://localhost:12011/v1/health\n",
    )


def test_backends_whose_references_read_variables_in_another_order_differ(
    session: Session,
) -> None:
    """$(NAME) in a value reads the variables defined before it: in another order, B is '1' in
    one pod and '$(A)' in the other, so the order of such a list counts."""
    one = f"env: [{{name: {A}, value: '1'}}, {{name: {B}, value: '$({A})'}}], "
    two = f"env: [{{name: {B}, value: '$({A})'}}, {{name: {A}, value: '1'}}], "
    _pair_is_refused(session, one, two)


def test_a_build_with_the_legacy_builder_is_refused(session: Session) -> None:
    """DOCKER_BUILDKIT=0 builds without BuildKit, which the named patches context needs."""
    with pytest.raises(CommandError, match="legacy builder, which has no named build contexts"):
        run(
            session,
            "DOCKER_BUILDKIT=0 docker build --target backend --build-context patches=patches "
            "-t x:1 docker/\n",
        )


@pytest.mark.parametrize(
    ("kind", "spec"),
    [
        ("ReplicaSet", "selector: {matchLabels: {app.kubernetes.io/component: backend}}"),
        ("ReplicationController", "selector: {app.kubernetes.io/component: backend}"),
        ("Deployment", "selector: {matchLabels: {app.kubernetes.io/component: backend}}"),
        (
            "StatefulSet",
            "serviceName: x\n  selector: {matchLabels: {app.kubernetes.io/component: backend}}",
        ),
        ("DaemonSet", "selector: {matchLabels: {app.kubernetes.io/component: backend}}"),
    ],
)
def test_nginx_of_any_workload_kind_behind_the_charts_service_is_seen(
    session: Session, kind: str, spec: str
) -> None:
    """A ReplicaSet's or ReplicationController's pods were invisible behind a Service, so nginx
    carrying the backend's labels was not among the pods kubectl may forward to."""
    api = "v1" if kind == "ReplicationController" else "apps/v1"
    labels = (
        "{app.kubernetes.io/name: betrace, app.kubernetes.io/instance: betrace, "
        "app.kubernetes.io/component: backend, test: impostor}"
    )
    manifest = (
        f"apiVersion: {api}\nkind: {kind}\nmetadata: {{name: impostor}}\nspec:\n  {spec}\n"
        f"  template:\n    metadata: {{labels: {labels}}}\n"
        "    spec: {containers: [{name: web, image: 'nginx:1.27', ports: [{containerPort: 80}]}]}\n"
    )
    with pytest.raises(CommandError, match=f"selects pods that run different things: .*{kind}"):
        run(
            session,
            _install(session)
            + READY
            + _written("rs.yaml", manifest)
            + "kubectl -n betrace apply -f rs.yaml\n"
            + "kubectl -n betrace wait --for=create pod -l test=impostor\n"
            + _forward_backend("12011:12011"),
        )


def test_a_port_forward_to_a_port_the_backend_holds_is_refused(session: Session) -> None:
    """kubectl cannot listen where the backend listens already ("address already in use"):
    the model let the forward take the port from the backend."""
    commit = session.release.current.upstream.commit
    http = session.release.current.backend.ports["http"].port
    with pytest.raises(CommandError, match=f"port {http} is held already .*betrace-backend"):
        run(
            session,
            f"nix build github:betrace-hq/betrace/{commit}#backend\n"
            "./result/bin/betrace-backend &\nsleep 1\n"
            + _install(session)
            + _forward_backend(f"{http}:{http}"),
        )


def test_a_backend_started_where_a_port_forward_listens_is_refused(session: Session) -> None:
    commit = session.release.current.upstream.commit
    http = session.release.current.backend.ports["http"].port
    with pytest.raises(CommandError, match=f"port {http} is held already .*kubectl port-forward"):
        run(
            session,
            _install(session)
            + _forward_backend(f"{http}:{http}")
            + f"nix build github:betrace-hq/betrace/{commit}#backend\n"
            "./result/bin/betrace-backend &\n",
        )
