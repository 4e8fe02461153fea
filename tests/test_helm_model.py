"""The Helm model keeps a release as Helm keeps it: in the namespace HELM_NAMESPACE names when
no -n is given, with the values an upgrade reuses, each revision's objects for a rollback, and
the test pod only once `helm test` made it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from betrace_dist.gate.commands import helm as helm_model
from betrace_dist.gate.session import CommandError, Session

from .conftest import require_tool, run

REGISTRY = "registry.example.com/betrace"
INSTALL = (
    f"helm install betrace ./helm/betrace --create-namespace --wait --set image.registry={REGISTRY}"
)


pytestmark = pytest.mark.gate_session(tools=("helm", "kubectl"), timeout=60)


def test_helm_namespace_exported_is_where_helm_installs(session: Session) -> None:
    """Helm takes HELM_NAMESPACE as -n's default: the release, its objects and the commands
    that name it without -n are in that namespace (the model put them in "default")."""
    run(
        session,
        f"export HELM_NAMESPACE=betrace\n{INSTALL}\nhelm status betrace\n"
        "kubectl -n betrace get deploy betrace-backend\n",
    )
    assert ("betrace", "betrace") in session.world.releases


def test_kubectl_does_not_read_helm_namespace(session: Session) -> None:
    run(session, f"export HELM_NAMESPACE=betrace\n{INSTALL}\n")
    with pytest.raises(
        CommandError, match="no Deployment 'betrace-backend' in namespace 'default'"
    ):
        run(session, "kubectl get deploy betrace-backend\n")


def test_helm_namespace_reaches_helm_only_as_bash_passes_it(session: Session) -> None:
    """`HELM_NAMESPACE=x helm ...` is for that command alone; a plain assignment stays in the
    shell, so a later helm works in "default"."""
    run(session, f"HELM_NAMESPACE=betrace {INSTALL}\nhelm status betrace -n betrace\n")
    with pytest.raises(CommandError, match="no release 'betrace' in namespace 'default'"):
        run(session, "helm status betrace\n")
    run(
        session,
        "HELM_NAMESPACE=betrace\nhelm install other ./helm/betrace --set image.registry=r/b\n",
    )
    assert ("default", "other") in session.world.releases


def _backend(session: Session, namespace: str = "betrace") -> dict[str, Any]:
    """The backend container of the release as the world has it now."""
    deployment = session.world.find(namespace, "Deployment", "betrace-backend")
    assert deployment is not None
    return deployment.running()[0]


def _ports(container: dict[str, Any]) -> set[int]:
    return {p["containerPort"] for p in container.get("ports") or []}


UPGRADE = "helm upgrade betrace ./helm/betrace -n betrace --wait"


def test_reuse_values_keeps_the_values_given_at_install(session: Session) -> None:
    """--reuse-values puts the values given now over the previous revision's: the registry set
    at install stays (the model rendered the upgrade with the chart's defaults), the port set
    again takes the new value."""
    run(
        session,
        f"{INSTALL} -n betrace --set backend.ports.http=9000\n"
        f"{UPGRADE} --reuse-values --set backend.ports.http=9100\n",
    )
    backend = _backend(session)
    assert backend["image"].startswith(f"{REGISTRY}/backend:")
    assert 9100 in _ports(backend) and 9000 not in _ports(backend)
    assert session.world.releases[("betrace", "betrace")].values == {
        "image": {"registry": REGISTRY},
        "backend": {"ports": {"http": 9100}},
    }


def test_an_upgrade_without_values_takes_the_previous_ones(session: Session) -> None:
    """Helm's rule without --reuse-values: an upgrade that gives no values at all takes the
    previous revision's; one that gives any starts from the chart's defaults, which the gate
    refuses unless the page says it means it (--reset-values)."""
    run(session, f"{INSTALL} -n betrace --set backend.ports.http=9000\n{UPGRADE}\n")
    assert 9000 in _ports(_backend(session))
    dropped = r"drops values the release has .* \(values: backend\.ports\.http\)"
    with pytest.raises(CommandError, match=dropped):
        run(session, f"{UPGRADE} --set image.registry={REGISTRY}\n")
    assert 9000 in _ports(_backend(session))  # refused: the release is as it was
    run(session, f"{UPGRADE} --set image.registry={REGISTRY} --set backend.ports.http=9000\n")
    run(session, f"{UPGRADE} --reset-values --set image.registry={REGISTRY}\n")
    assert 9000 not in _ports(_backend(session))


def test_an_upgrade_of_the_grafana_chart_that_drops_its_values_is_refused(
    session: Session,
) -> None:
    """The existing-Grafana guide's upgrade for real without the --reuse-values of its dry run:
    the page's Grafana loses the values it was installed with (a reviewer's edit the gate
    passed before)."""
    chart = session.release.current.grafana_chart
    ref = f"{chart.repo_name}/grafana --version {chart.version} -n monitoring"
    install = f"helm install grafana {ref} --create-namespace --set adminUser=ops\n"
    run(session, f"helm repo add {chart.repo_name} {chart.repo_url}\n{install}")
    upgrade = f"helm upgrade grafana {ref} --set replicas=1"
    with pytest.raises(CommandError, match=r"\(values: adminUser\)"):
        run(session, upgrade + "\n")
    run(session, upgrade + " --reuse-values\n")


PREVIOUS = {"a": {"b": 1, "kept": 1}, "x": 1}
GIVEN = {"a": {"b": 2, "kept": None, "gone": None}}


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("--reset-values", GIVEN),
        # the previous values also stand for the chart's defaults: `kept`, nulled now, stays
        ("--reuse-values", {"a": {"b": 2, "kept": 1, "gone": None}, "x": 1}),
        ("--reset-then-reuse-values", {"a": {"b": 2, "gone": None}, "x": 1}),
    ],
)
def test_upgrade_values_follow_helms_reuse_rule(flag: str, expected: dict[str, Any]) -> None:
    """Helm's Upgrade.reuseValues and CoalesceTables, on the values alone: a null given where
    the previous revision had a value drops the key; one it did not have stays null."""
    line = helm_model.command_line(["upgrade", "r", "./c", flag], require_tool("helm"))
    assert helm_model._upgrade_values(line, PREVIOUS, GIVEN) == expected


def test_rollback_restores_the_objects_and_values_of_a_revision(session: Session) -> None:
    """A rollback is a new revision with an earlier one's objects and values (the model only
    counted it): without a number, the revision before the current one."""
    run(session, f"{INSTALL} -n betrace\n{UPGRADE} --reuse-values --set backend.ports.http=9000\n")
    run(session, "helm rollback betrace -n betrace\n")
    release = session.world.releases[("betrace", "betrace")]
    assert release.revision == 3 and release.values == {"image": {"registry": REGISTRY}}
    assert 9000 not in _ports(_backend(session))
    run(session, "helm rollback betrace 2 -n betrace\n")
    assert session.world.releases[("betrace", "betrace")].revision == 4
    assert 9000 in _ports(_backend(session))
    # the values an upgrade reuses are the rolled-back-to revision's
    run(session, f"helm rollback betrace 1 -n betrace\n{UPGRADE} --reuse-values\n")
    assert 9000 not in _ports(_backend(session))


def test_rollback_needs_a_revision_the_release_has(session: Session) -> None:
    run(session, f"{INSTALL} -n betrace\n")
    with pytest.raises(CommandError, match=r"has no revision 0 \(it has 1\)"):
        run(session, "helm rollback betrace -n betrace\n")
    with pytest.raises(CommandError, match="has no revision 7"):
        run(session, "helm rollback betrace 7 -n betrace\n")
    with pytest.raises(CommandError, match="the revision is a number, not 'latest'"):
        run(session, "helm rollback betrace latest -n betrace\n")


def test_the_test_pod_exists_only_once_helm_test_ran(session: Session) -> None:
    """Helm creates a `helm.sh/hook: test` pod when `helm test` runs: a page that reads it
    before passed, since the model put it in the world at install. A pod its delete policy
    keeps after the test stays after an upgrade."""
    run(session, f"{INSTALL} -n betrace\n")
    for read in ("kubectl logs pod/betrace-test-health", "kubectl get pod betrace-test-health"):
        with pytest.raises(CommandError, match="no Pod 'betrace-test-health'"):
            run(session, f"{read} -n betrace\n")
    _small_chart(session, "")
    run(session, "helm install r ./mine\nhelm test r\nkubectl logs pod/mine-test\n")
    run(session, "helm upgrade r ./mine\nkubectl get pod mine-test\n")


def test_a_rollback_is_checked_as_an_install_is(session: Session) -> None:
    """The revision a rollback restores may need what was deleted since: its pods' Secret.
    The model restored it unchecked; Helm would apply it and its pods would not start."""
    run(
        session,
        "kubectl create namespace betrace\n"
        "kubectl -n betrace create secret generic key --from-literal=signature-key=k\n"
        f"{INSTALL} -n betrace --set backend.signatureKey.existingSecret=key\n"
        f"{UPGRADE} --reuse-values --set backend.signatureKey.existingSecret=\n"
        "kubectl -n betrace delete secret key\n",
    )
    with pytest.raises(CommandError, match="needs Secret 'key', which neither the release"):
        run(session, "helm rollback betrace 1 -n betrace\n")


def test_a_revision_is_ascii_digits(session: Session) -> None:
    """'²' passed str.isdigit() and then crashed int() (an internal error, not a verdict)."""
    run(session, f"{INSTALL} -n betrace\n")
    with pytest.raises(CommandError, match="the revision is a number, not '²'"):
        run(session, "helm rollback betrace ² -n betrace\n")


def test_reuse_values_renders_with_the_old_charts_values(session: Session) -> None:
    """With --reuse-values Helm renders with the previous revision's chart values in place of
    the new chart's (tried with both Helm binaries on a stub API server): the model rendered
    with the new chart's, so a port moved in the chart's values.yaml moved the Service."""
    run(session, f"{INSTALL} -n betrace\n")
    run(session, "sed -i 's/^    http: 12011$/    http: 9000/' helm/betrace/values.yaml\n")
    run(session, f"{UPGRADE} --reuse-values\n")
    run(session, "kubectl -n betrace port-forward svc/betrace-backend 12011:12011\n")
    with pytest.raises(CommandError, match="has no port 9000"):
        run(session, "kubectl -n betrace port-forward svc/betrace-backend 9000:9000\n")
    # without it, the new chart's values are the defaults
    run(session, f"{UPGRADE} --set image.registry={REGISTRY}\n")
    run(session, "kubectl -n betrace port-forward svc/betrace-backend 9001:9000\n")


def test_a_long_number_is_no_number(session: Session) -> None:
    """int() refuses strings over 4300 digits: an internal error, not a verdict."""
    run(session, f"{INSTALL} -n betrace\n")
    with pytest.raises(CommandError, match="the revision is a number"):
        run(session, "helm rollback betrace " + "9" * 5000 + " -n betrace\n")


def test_a_date_in_a_charts_values_goes_back_to_helm_as_text(session: Session) -> None:
    """YAML reads a date as a date, which json.dumps refused when a reuse wrote the chart's
    values for Helm: an internal error (found by an attack)."""
    chart = (
        "mkdir -p mine/templates\n"
        "printf 'apiVersion: v2\\nname: mine\\nversion: 0.1.0\\n' > mine/Chart.yaml\n"
        "printf 'released: 2024-01-01\\n' > mine/values.yaml\n"
        "printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: mine}\\n"
        'data: {released: "{{ .Values.released }}"}\\n\' > mine/templates/cm.yaml\n'
    )
    run(session, chart + "helm install mine ./mine -n default\n")
    run(session, "helm upgrade mine ./mine -n default --reuse-values\n")
    config = session.world.find("default", "ConfigMap", "mine")
    assert config is not None and config.doc["data"]["released"] == "2024-01-01"


def _revisions(session: Session, name: str = "r", namespace: str = "default") -> list[int]:
    release = session.world.releases[(namespace, name)]
    return [r.revision for r in [*release.history, release]]


def _small_chart(session: Session, test_hook: str | None = None) -> None:
    """A chart of the page's own in ./mine: one ConfigMap, and with `test_hook` (the YAML of
    its annotations past helm.sh/hook: test) a test Pod named mine-test."""
    root = session.cwd / "mine"
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: mine\nversion: 0.1.0\n")
    (root / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine\ndata:\n  a: b\n"
    )
    if test_hook is not None:
        (root / "templates" / "test.yaml").write_text(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: mine-test\n  annotations:\n"
            f"    helm.sh/hook: test\n{test_hook}spec:\n  restartPolicy: Never\n"
            "  containers:\n    - name: t\n      image: busybox\n"
        )


@pytest.mark.parametrize(
    ("template", "said"),
    [
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: mine}\n"
            "spec: {type: {{ .Values.type }}, ports: [{port: 80}]}\n",
            'Service/mine: spec.type: Unsupported value: "Internal": supported values: '
            '"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
        ),
        (
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: mine}\n"
            "spec: {accessModes: [{{ .Values.mode }}], resources: {requests: {storage: 1Gi}}}\n",
            'PersistentVolumeClaim/mine: spec.accessModes: Unsupported value: "RWX": supported '
            'values: "ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"',
        ),
    ],
    ids=["service-type", "access-mode"],
)
def test_a_render_with_a_value_the_api_server_does_not_support_is_refused(
    session: Session, template: str, said: str
) -> None:
    """The JSON Schemas have no enums: a rendered object is checked against the API server's
    set of values as kubectl apply's manifest is, and a supported value installs."""
    _small_chart(session)
    (session.cwd / "mine" / "templates" / "cm.yaml").write_text(template)
    with pytest.raises(CommandError, match=re.escape(f"the release's {said}")):
        run(session, "helm install mine ./mine -n default --set type=Internal,mode=RWX\n")
    run(session, "helm install mine ./mine -n default --set type=NodePort,mode=ReadWriteOnce\n")
    assert ("default", "mine") in session.world.releases


def test_history_max_prunes_the_oldest_revisions(session: Session) -> None:
    """Each upgrade keeps the newest --history-max revisions (the model kept them all), so a
    rollback to a pruned one fails, naming the revisions the release still has."""
    _small_chart(session)
    run(session, "helm install r ./mine\n" + "helm upgrade r ./mine --history-max 3\n" * 3)
    assert _revisions(session) == [2, 3, 4]
    with pytest.raises(
        CommandError,
        match=r"release 'r' no longer has revision 1: the helm upgrade that made revision 4 "
        r"pruned it \(--history-max 3\); it has 2, 3, 4",
    ):
        run(session, "helm rollback r 1\n")
    run(session, "helm rollback r 2 --history-max=2\n")  # a rollback prunes by its own flag
    assert _revisions(session) == [4, 5]
    with pytest.raises(CommandError, match=r"no longer has revision 3: the helm rollback that"):
        run(session, "helm rollback r 3\n")


def test_helm_keeps_ten_revisions_by_default(session: Session) -> None:
    """Without --history-max an upgrade keeps Helm's default, 10 revisions; HELM_MAX_HISTORY
    stands for the flag's default, and 0 (or less) keeps every revision."""
    _small_chart(session)
    run(session, "helm install r ./mine\n" + "helm upgrade r ./mine\n" * 10)
    assert _revisions(session) == list(range(2, 12))
    with pytest.raises(CommandError, match=r"revision 1: .*\(--history-max not given: 10\)"):
        run(session, "helm rollback r 1\n")
    run(session, "export HELM_MAX_HISTORY=3\nhelm upgrade r ./mine\n")
    assert _revisions(session) == [10, 11, 12]
    run(
        session,
        "helm upgrade r ./mine --history-max 0\nHELM_MAX_HISTORY=-1 helm upgrade r ./mine\n",
    )
    assert _revisions(session) == [10, 11, 12, 13, 14]


def test_history_max_1_keeps_the_deployed_revision_too(session: Session) -> None:
    """Helm never prunes the deployed revision: with --history-max 1 the one before the new one
    stays, and it is the one a plain `helm rollback` goes back to."""
    _small_chart(session)
    run(
        session,
        "helm install r ./mine\nhelm upgrade r ./mine\nhelm upgrade r ./mine --history-max 1\n",
    )
    assert _revisions(session) == [2, 3]
    run(session, "helm rollback r\n")
    assert _revisions(session) == [2, 3, 4]


def test_history_max_is_a_number(session: Session) -> None:
    _small_chart(session)
    run(session, "helm install r ./mine\n")
    with pytest.raises(
        CommandError,
        match=r'helm upgrade: invalid argument "five" for "--history-max" flag: '
        r'strconv.ParseInt: parsing "five": invalid syntax',
    ):
        run(session, "helm upgrade r ./mine --history-max five\n")


def test_history_max_is_read_as_helms_flags_read_an_int(session: Session) -> None:
    """--history-max is a pflag int, which Go reads with its base prefixes (0x, 0o, 0b, and a
    leading 0 for octal) and underscores: the model read decimal digits alone, so it refused
    0x3, and read 010 as ten where Helm keeps eight; 09 is no octal number, and Helm refuses it."""
    _small_chart(session)
    run(session, "helm install r ./mine\n" + "helm upgrade r ./mine\n" * 10)
    run(session, "helm upgrade r ./mine --history-max 0x3\n")
    assert _revisions(session) == [10, 11, 12]
    run(session, "helm upgrade r ./mine --history-max=0b1_1\nhelm rollback r --history-max 0o3\n")
    assert _revisions(session) == [12, 13, 14]
    run(
        session,
        "helm upgrade r ./mine --history-max 0\n" * 8 + "helm upgrade r ./mine --history-max 010\n",
    )
    assert len(_revisions(session)) == 8
    with pytest.raises(
        CommandError,
        match=r'invalid argument "09" for "--history-max" flag: strconv.ParseInt: parsing "09": '
        "invalid syntax",
    ):
        run(session, "helm upgrade r ./mine --history-max 09\n")
    with pytest.raises(CommandError, match=r'parsing "0x8000000000000000": value out of range'):
        run(session, "helm rollback r --history-max 0x8000000000000000\n")


def test_helm_max_history_is_read_as_strconv_atoi(session: Session) -> None:
    """HELM_MAX_HISTORY is read with strconv.Atoi (decimal, a sign, any number of digits); where
    Atoi refuses it, the default 10 holds. The model refused more than 19 digits."""
    _small_chart(session)
    run(session, "helm install r ./mine\n" + "helm upgrade r ./mine\n" * 4)
    run(session, "HELM_MAX_HISTORY=000000000000000000003 helm upgrade r ./mine\n")
    assert _revisions(session) == [4, 5, 6]
    run(session, "HELM_MAX_HISTORY=+2 helm upgrade r ./mine\n")
    assert _revisions(session) == [6, 7]
    run(session, "HELM_MAX_HISTORY=0x2 helm upgrade r ./mine\n")  # not Atoi's: 10
    assert _revisions(session) == [6, 7, 8]


def test_a_rollback_revision_is_read_as_strconv_atoi(session: Session) -> None:
    """Helm reads the revision with strconv.Atoi, so +1 is 1, and refuses a negative one."""
    _small_chart(session)
    run(session, "helm install r ./mine\nhelm upgrade r ./mine\nhelm rollback r +1\n")
    assert _revisions(session) == [1, 2, 3]
    with pytest.raises(CommandError, match="invalid release revision"):
        run(session, "helm rollback r -- -1\n")


def test_a_passed_test_pod_is_gone_under_hook_succeeded(session: Session) -> None:
    """The chart's test pod has hook-succeeded: Helm deletes it once the test passed, which is
    how the gate runs `helm test` (the model kept it, and a page read its log)."""
    run(session, f"{INSTALL} -n betrace\nhelm test betrace -n betrace\n")
    for read in ("kubectl logs pod/betrace-test-health", "kubectl get pod betrace-test-health"):
        with pytest.raises(
            CommandError,
            match=r"no Pod 'betrace-test-health' in namespace 'betrace'.*Helm deleted it when "
            r"`helm test` passed \(its helm.sh/hook-delete-policy has hook-succeeded\).*"
            r"a failed test.s pod is kept",
        ):
            run(session, f"{read} -n betrace\n")
    # still gone after an upgrade; a new `helm test` runs it again
    run(session, f"{UPGRADE} --reuse-values\nhelm test betrace -n betrace\n")
    with pytest.raises(CommandError, match="Helm deleted it when `helm test` passed"):
        run(session, "kubectl logs pod/betrace-test-health -n betrace\n")


@pytest.mark.parametrize(
    "policy",
    [
        "",  # none: Helm's default, before-hook-creation
        "    helm.sh/hook-delete-policy: before-hook-creation\n",
        "    helm.sh/hook-delete-policy: ' Before-Hook-Creation , hook-failed'\n",
    ],
)
def test_a_test_pod_without_hook_succeeded_stays_and_is_replaced(
    session: Session, policy: str
) -> None:
    """Without hook-succeeded a passed test's pod stays; before-hook-creation (Helm's default,
    the policies read trimmed and in any case) deletes it when the next `helm test` makes it."""
    _small_chart(session, policy)
    run(session, "helm install r ./mine\nhelm test r\nkubectl logs pod/mine-test\n")
    run(session, "helm test r\nkubectl get pod mine-test\n")
    release = session.world.releases[("default", "r")]
    assert [o.name for o in release.tested] == ["mine-test"]


def test_a_kept_test_pod_blocks_the_next_run_without_before_hook_creation(
    session: Session,
) -> None:
    """hook-failed alone keeps a passed test's pod, and nothing deletes it before the next run
    makes it again."""
    _small_chart(session, "    helm.sh/hook-delete-policy: hook-failed\n")
    run(session, "helm install r ./mine\nhelm test r\nkubectl logs pod/mine-test\n")
    with pytest.raises(CommandError, match=r"Pod 'mine-test', left by the earlier `helm test`"):
        run(session, "helm test r\n")


def test_helm_test_logs_is_refused_where_helm_3_deletes_the_pod_first(session: Session) -> None:
    """--logs reads each test hook's pod after the run: Helm 3 (through 3.21) and Helm 4 before
    4.0.5 have deleted a passed test's pod under hook-succeeded by then, and the command fails
    there (the model accepted it, and the Kubernetes guide showed it)."""
    run(session, f"{INSTALL} -n betrace\n")
    with pytest.raises(
        CommandError,
        match=r"helm test --logs: the test hook Pod 'betrace-test-health' has hook-succeeded .*"
        r"unable to get pod logs for betrace-test-health.*`helm test` alone.*"
        r"kubectl logs pod/betrace-test-health --namespace betrace",
    ):
        run(session, "helm test betrace -n betrace --logs\n")
    run(session, "helm test betrace -n betrace\n")


def test_helm_test_logs_reads_the_pods_a_test_leaves(session: Session) -> None:
    """Without hook-succeeded the pod outlives the run, and --logs reads it with every Helm."""
    _small_chart(session, "    helm.sh/hook-delete-policy: before-hook-creation\n")
    run(session, "helm install r ./mine\nhelm test r --logs\n")


def test_helm_test_logs_needs_a_pod_by_each_test_hooks_name(session: Session) -> None:
    """--logs asks for the log of a Pod named as each test hook, whatever the hook's kind: a
    ConfigMap test hook has no such pod, and every Helm fails."""
    _small_chart(session, "    helm.sh/hook-delete-policy: before-hook-creation\n")
    (session.cwd / "mine" / "templates" / "data.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mine-data\n  annotations:\n"
        "    helm.sh/hook: test\n    helm.sh/hook-delete-policy: before-hook-creation\n"
    )
    run(session, "helm install r ./mine\nhelm test r\n")
    with pytest.raises(CommandError, match=r"test hook ConfigMap 'mine-data' is no Pod"):
        run(session, "helm test r --logs\n")


def test_a_release_uninstalled_with_keep_history_can_be_rolled_back(session: Session) -> None:
    """--keep-history keeps the revisions, the last marked uninstalled: status and history read
    them, and `helm rollback` makes a new revision from one (the model dropped the release and
    refused the rollback)."""
    _small_chart(session)
    run(session, "helm install r ./mine\nhelm upgrade r ./mine\nhelm uninstall r --keep-history\n")
    assert session.world.find("default", "ConfigMap", "mine") is None
    with pytest.raises(CommandError, match=r"uninstalled with --keep-history.*helm rollback"):
        run(session, "helm test r\n")
    # without a revision, the one before the last (uninstalling made no revision)
    run(session, "helm status r\nhelm history r\nhelm rollback r\n")
    assert _revisions(session) == [1, 2, 3]
    assert session.world.releases[("default", "r")].history[-1].revision == 2
    assert session.world.find("default", "ConfigMap", "mine") is not None
    run(session, "helm upgrade r ./mine\n")


def test_a_kept_history_keeps_the_name(session: Session) -> None:
    """After --keep-history, `helm install` of the name fails but with --replace, which numbers
    on from the kept revisions; `helm upgrade --install` fails on Helm before 3.14.4 and installs
    on later ones, so it is refused; a second --keep-history uninstall fails."""
    _small_chart(session)
    run(session, "helm install r ./mine\nhelm uninstall r --keep-history\n")
    with pytest.raises(CommandError, match=r"cannot reuse a name that is still in use.*--replace"):
        run(session, "helm install r ./mine\n")
    with pytest.raises(CommandError, match=r"Helm 3 before 3.14.4"):
        run(session, "helm upgrade --install r ./mine\n")
    with pytest.raises(CommandError, match=r"has no deployed releases"):
        run(session, "helm upgrade r ./mine\n")
    with pytest.raises(CommandError, match=r'the release named "r" is already deleted'):
        run(session, "helm uninstall r --keep-history\n")
    run(session, "helm install r ./mine --replace\n")
    assert _revisions(session) == [1, 2]


def test_uninstall_without_keep_history_purges_a_kept_release(session: Session) -> None:
    _small_chart(session)
    run(
        session,
        "helm install r ./mine\nhelm uninstall r --keep-history\nhelm uninstall r\n"
        "helm install r ./mine\n",
    )
    assert _revisions(session) == [1]


def test_a_rollback_of_an_uninstalled_release_prunes_with_no_deployed_revision(
    session: Session,
) -> None:
    """Helm's pruning spares the deployed revision; after --keep-history none is deployed, so
    --history-max 1 leaves the new revision alone (removeLeastRecent in pkg/storage)."""
    _small_chart(session)
    run(
        session,
        "helm install r ./mine\nhelm upgrade r ./mine\nhelm upgrade r ./mine\n"
        "helm uninstall r --keep-history\nhelm rollback r 3 --history-max 1\n",
    )
    assert _revisions(session) == [4]


def test_helm_install_over_an_object_the_page_made_is_refused(session: Session) -> None:
    """Helm takes over no object it did not make ("exists and cannot be imported into the
    current release: invalid ownership metadata"): the model installed the chart's Service
    beside the page's of the same name, two objects where the cluster has one."""
    service = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: betrace-backend}\n"
        "spec: {selector: {app: mine}, ports: [{port: 12011}]}\n"
    )
    with pytest.raises(
        CommandError, match=r"Service 'betrace-backend' exists already .*cannot be imported"
    ):
        run(
            session,
            "kubectl create namespace betrace\n"
            f"kubectl -n betrace apply -f - <<'YAML'\n{service}YAML\n"
            f"{INSTALL} -n betrace\n",
        )


@pytest.mark.parametrize(
    ("owner", "adopted"),
    [
        ("{app.kubernetes.io/managed-by: Helm}", "betrace/betrace"),
        ("{app.kubernetes.io/managed-by: Helm}", "betrace/other"),  # another release's
        ("{app.kubernetes.io/managed-by: Helm}", "default/betrace"),  # another namespace's
        ("{app.kubernetes.io/managed-by: kubectl}", "betrace/betrace"),  # the label is Helm's
    ],
)
def test_helm_takes_over_an_object_that_carries_its_ownership_metadata(
    session: Session, owner: str, adopted: str
) -> None:
    """Helm 3.2 and later adopt an object the page made that carries the release's ownership
    label and annotations (checkOwnership): the model refused it as any other object's twin."""
    namespace, release = adopted.split("/")
    service = (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: betrace-backend\n"
        f"  labels: {owner}\n  annotations: {{meta.helm.sh/release-name: {release}, "
        f"meta.helm.sh/release-namespace: {namespace}}}\n"
        "spec: {selector: {app: mine}, ports: [{port: 12011}]}\n"
    )
    script = (
        "kubectl create namespace betrace\n"
        f"kubectl -n betrace apply -f - <<'YAML'\n{service}YAML\n"
        f"{INSTALL} -n betrace\n"
    )
    if adopted != "betrace/betrace" or "kubectl" in owner:
        with pytest.raises(CommandError, match="cannot be imported"):
            run(session, script)
        return
    run(session, script)
    services = [o for o in session.world.all_objects("betrace") if o.name == "betrace-backend"]
    assert [o.source for o in services if o.kind == "Service"] == ["helm release betrace"]


def test_a_reinstall_takes_over_the_claims_the_uninstall_kept(session: Session) -> None:
    """A claim the chart keeps (helm.sh/resource-policy: keep) outlives `helm uninstall` with
    the release's ownership metadata, so installing the release again takes it over: one
    claim, the release's, where the model held two."""
    run(session, f"{INSTALL} -n betrace\nhelm uninstall betrace -n betrace\n")
    kept = [o.name for o in session.world.objects if o.kind == "PersistentVolumeClaim"]
    assert "betrace-backend" in kept
    run(session, f"{INSTALL} -n betrace\n")
    claims = [o for o in session.world.all_objects("betrace") if o.kind == "PersistentVolumeClaim"]
    assert sorted(o.name for o in claims) == sorted(kept)
    assert not session.world.objects


@pytest.mark.parametrize(
    "dry_run", ["--dry-run", "--dry-run=client", "--dry-run=server", "--dry-run=true"]
)
@pytest.mark.parametrize("none", ["--dry-run=none", "--dry-run=false", "--dry-run=0"])
def test_a_dry_run_installs_nothing(session: Session, dry_run: str, none: str) -> None:
    """`helm install --dry-run` renders and checks the release and sends nothing: the model
    recorded it as installed, so a later step that needs the release passed. Helm 4 reads a
    value it does not name as a Go boolean (cmdGetDryRunFlagStrategy)."""
    run(session, f"{INSTALL} {dry_run}\n")
    assert ("default", "betrace") not in session.world.releases
    run(session, f"{INSTALL} {none}\n")
    assert ("default", "betrace") in session.world.releases


def test_a_dry_run_value_helm_does_not_read_is_refused(session: Session) -> None:
    with pytest.raises(CommandError, match=r'invalid dry-run value \("bogus"\)'):
        run(session, f"{INSTALL} --dry-run=bogus\n")


def test_the_charts_backend_is_known_by_its_template_in_any_registry(session: Session) -> None:
    """The backend of a release of the project's chart is the container its template says runs
    the backend, whatever registry the values move the images to: a mirror the page did not
    build into has its backend's pod checked too (the check once knew the backend only by the
    project's registry or a tag the page built, and let this port pass)."""
    with pytest.raises(
        CommandError,
        match=r"^the release would give the backend Deployment/betrace-backend: pod annotation "
        r"prometheus\.io/port is '9090', which nothing of the pod serves",
    ):
        run(
            session,
            f"{INSTALL} -n betrace "
            "--set-string 'backend.podAnnotations.prometheus\\.io/port=9090'\n",
        )


def test_helm_template_into_a_folder_is_not_read_as_manifests(session: Session) -> None:
    """`helm template --output-dir` prints the files it wrote, not the objects: the check of
    rendered objects (added for the security page's source ranges) read those lines as a
    manifest and called it Helm's refusal. It reads only what Helm printed as objects."""
    run(
        session,
        f"helm template betrace ./helm/betrace --namespace betrace --set image.registry={REGISTRY} "
        "--output-dir rendered\nls rendered/betrace/templates\n",
    )
