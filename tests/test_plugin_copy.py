"""Where a Grafana of the Grafana chart finds the BeTrace app: the plugin-init copy must land in
the volume, and at the path of it, that Grafana mounts as the app's folder (gate/plugin_copy.py).

Two lies passed before: the existing-Grafana guide's init container copying to the plugins
folder itself (outside the one volume it mounts: the copy is lost with the container), and its
Job copying to the claim's root while Grafana mounts the claim's `betrace-app` sub folder.
"""

from __future__ import annotations

import pytest

from betrace_dist.gate import plugin_copy
from betrace_dist.gate.session import CommandError, Session

from .conftest import REPO_ROOT, run

pytestmark = pytest.mark.gate_session(tools=("helm", "kubectl"), timeout=20)

APP = "/var/lib/grafana/plugins/betrace-app"
SECURE = (
    "securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, "
    "seccompProfile: {type: RuntimeDefault}, runAsNonRoot: true, runAsUser: 472}"
)


def _grafana(session: Session, values: str, verb: str = "install") -> str:
    chart = session.release.current.grafana_chart
    return (
        f"cat > v.yaml <<'YAML'\n{values}YAML\n"
        f"helm {verb} grafana {chart.repo_name}/grafana --version {chart.version} "
        "-n monitoring --create-namespace -f v.yaml\n"
    )


def _repo(session: Session) -> str:
    chart = session.release.current.grafana_chart
    return f"helm repo add {chart.repo_name} {chart.repo_url}\n"


def _init_values(target: str, mount: str = APP) -> str:
    init = (
        f"{{name: install, image: registry.example.com/plugin-init:2.0.0, args: [{target}], "
        f"volumeMounts: [{{name: app, mountPath: {mount}}}], {SECURE}}}"
    )
    return (
        f"extraInitContainers: [{init}]\n"
        "extraVolumes: [{name: app, emptyDir: {sizeLimit: 64Mi}}]\n"
        f"extraVolumeMounts: [{{name: app, mountPath: {APP}, readOnly: true}}]\n"
    )


@pytest.mark.parametrize(
    ("target", "mount", "said"),
    [
        (APP, APP, None),
        ("/out", "/out", None),  # the volume's root, which Grafana mounts as the app's folder
        ("/var/lib/grafana/plugins", APP, "copies the app to /var/lib/grafana/plugins, which "
         "none of its volumes holds: the copy is lost with the container"),
        ("/out/betrace-app", "/out", r"reads the app from volume 'app' at '/' .*"
         r"\(init container 'install' to 'betrace-app'\): Grafana starts without the app"),
    ],
)  # fmt: skip
def test_an_init_container_must_copy_into_the_folder_grafana_mounts(
    session: Session, target: str, mount: str, said: str | None
) -> None:
    script = _repo(session) + _grafana(session, _init_values(target, mount))
    if said is None:
        run(session, script)
    else:
        with pytest.raises(CommandError, match=said):
            run(session, script)


JOB = """apiVersion: batch/v1
kind: Job
metadata: {name: load}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: copy
          image: registry.example.com/plugin-init:2.0.0
          args: [TARGET]
          volumeMounts: [{name: plugin, mountPath: /plugins}]
      volumes: [{name: plugin, persistentVolumeClaim: {claimName: betrace-plugin}}]
"""
CLAIM = """apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: betrace-plugin}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 64Mi}}}
"""
CLAIM_VALUES = (
    "extraVolumes: [{name: app, existingClaim: betrace-plugin}]\n"
    f"extraVolumeMounts: [{{name: app, mountPath: {APP}, subPath: betrace-app, readOnly: true}}]\n"
)


@pytest.mark.parametrize(("target", "fine"), [("/plugins/betrace-app", True), ("/plugins", False)])
def test_a_job_must_copy_into_the_claims_sub_folder_grafana_mounts(
    session: Session, target: str, fine: bool
) -> None:
    (session.cwd / "m.yaml").write_text(CLAIM + "---\n" + JOB.replace("TARGET", target))
    script = (
        "kubectl create namespace monitoring\nkubectl apply -f m.yaml -n monitoring\n"
        + _repo(session)
        + _grafana(session, CLAIM_VALUES)
    )
    if fine:
        run(session, script)
        return
    with pytest.raises(
        CommandError,
        match=r"Grafana reads the app from claim 'betrace-plugin' at 'betrace-app' .*"
        r"Job 'load' to '/'\): Grafana starts without the app",
    ):
        run(session, script)


def test_a_claim_no_job_of_the_page_fills_is_not_judged(session: Session) -> None:
    """The page may fill the claim some other way the gate does not see."""
    (session.cwd / "claim.yaml").write_text(CLAIM, encoding="utf-8")
    made = "kubectl create namespace monitoring\nkubectl apply -f claim.yaml -n monitoring\n"
    run(session, made + _repo(session) + _grafana(session, CLAIM_VALUES))


def test_the_default_target_is_plugin_init_shs() -> None:
    script = (REPO_ROOT / "docker" / "plugin-init.sh").read_text(encoding="utf-8")
    assert f"${{BETRACE_PLUGIN_TARGET:-{plugin_copy.DEFAULT_TARGET}}}" in script


def _init(fields: str, mount: str = "/out") -> str:
    return (
        f"{{name: install, image: registry.example.com/plugin-init:2.0.0, {fields}"
        f"volumeMounts: [{{name: app, mountPath: {mount}}}], {SECURE}}}"
    )


ROOT_MOUNT = f"extraVolumeMounts: [{{name: app, mountPath: {APP}}}]\n"


@pytest.mark.parametrize(
    ("init", "volumes", "said"),
    [
        # the image's own entrypoint, named, with its argument: judged as the image runs
        (_init(f"command: [{plugin_copy.ENTRYPOINT}], args: [/out], "), "- {name: app}", None),
        (_init(f"command: [{plugin_copy.ENTRYPOINT}], args: [/out/x], "), "- {name: app}",
         "init container 'install' to 'x'"),
        # a command of its own: what it copies is not followed, so not judged
        (_init("command: [sh, -c], args: ['cp -R /opt/betrace/betrace-app/. /out/x/'], "),
         "- {name: app}", None),
        # $(NAME) from the container's env, as Kubernetes expands it
        (_init("env: [{name: D, value: /out}], args: ['$(D)/x'], "), "- {name: app}",
         "init container 'install' to 'x'"),
        (_init("env: [{name: D, value: /out}], args: ['$(D)'], "), "- {name: app}", None),
        (_init("args: ['$(UNSET)/x'], "), "- {name: app}", None),
        # no source the chart knows: an empty emptyDir, still filled by the init container
        (_init("args: [/out/x], "), "- {name: app}", "init container 'install' to 'x'"),
        # persistentVolumeClaim is no key of the chart's extraVolumes: an emptyDir again
        (_init("args: [/out], "), "- {name: app, persistentVolumeClaim: {claimName: c}}", None),
        # the image mirrored under another repository name
        (_init("args: [/out/x], ").replace("/plugin-init:", "/betrace-plugin-init:"),
         "- {name: app}", "to 'x'"),
        # mounted at /
        (_init("args: [/x], ", mount="/"), "- {name: app}", "to 'x'"),
        (_init("args: ['/'], ", mount="/"), "- {name: app}", None),
    ],
)  # fmt: skip
def test_init_containers_as_the_chart_and_kubernetes_run_them(
    session: Session, init: str, volumes: str, said: str | None
) -> None:
    values = f"extraInitContainers: [{init}]\nextraVolumes:\n  {volumes}\n" + ROOT_MOUNT
    script = _repo(session) + _grafana(session, values)
    if said is None:
        run(session, script)
    else:
        with pytest.raises(CommandError, match=said):
            run(session, script)


def test_an_empty_dir_mount_nothing_fills_leaves_grafana_without_the_app(
    session: Session,
) -> None:
    """extraEmptyDirMounts makes an empty folder, which nothing here fills."""
    values = f"extraEmptyDirMounts: [{{name: app, mountPath: {APP}}}]\n"
    with pytest.raises(CommandError, match=r"volume 'app' at '/'.*nothing copies the app there"):
        run(session, _repo(session) + _grafana(session, values))


def test_grafanas_plugins_path_comes_from_its_ini(session: Session) -> None:
    """grafana.ini's paths.plugins moves the folder Grafana reads: a mount at the default
    folder then holds nothing Grafana looks at, and is not judged."""
    values = (
        "grafana.ini: {paths: {plugins: /srv/plugins}}\n"
        f"extraEmptyDirMounts: [{{name: app, mountPath: {APP}}}]\n"
    )
    run(session, _repo(session) + _grafana(session, values))
    moved = values.replace(APP, "/srv/plugins/betrace-app")
    with pytest.raises(CommandError, match=r"\(/srv/plugins/betrace-app\), and nothing copies"):
        run(session, _repo(session) + _grafana(session, moved, verb="upgrade"))


def test_an_emptydir_smaller_than_the_app_is_refused(session: Session) -> None:
    """The attack wrote the existing-Grafana guide's sizeLimit 64Mi as 64Ki and it passed: the
    app the release builds is about 11 MiB, and the kubelet evicts a pod whose emptyDir grows
    over its sizeLimit. Held to the size of the app built here (plugin_build), not a figure."""
    size = plugin_copy.app_bytes()
    assert size is not None, "the patched app is not built here: `make plugin-build`"
    small = _init_values(APP).replace("sizeLimit: 64Mi", f"sizeLimit: {size // 1024 - 1}Ki")
    with pytest.raises(CommandError, match=r"emptyDir of sizeLimit \d+Ki, and the app copied"):
        run(session, _repo(session) + _grafana(session, small))
    enough = _init_values(APP).replace("sizeLimit: 64Mi", f"sizeLimit: {size // 1024 + 1}Ki")
    run(session, _grafana(session, enough, "upgrade"))  # the refused install left a release
