"""Policy of the BeTrace chart: render it with the real Helm, then check what Kubernetes would get.

Each check returns readable violations ("<template> <Kind>/<name> container x: what is wrong,
what was expected"), so the chart tests and the doc gate can share them.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from .. import backend_env, grafana_env, yamlio
from ..errors import ProblemsError
from ..names import BETRACE_IMAGES, image_tag, is_floating_tag, looks_secret
from ..release import Plugin, ReleaseData
from . import crd_schemas, ingress_nginx, kube_enums


class HelmError(Exception):
    """Helm exited non-zero; the message is its own output."""


@dataclass(frozen=True)
class Manifest:
    """One rendered Kubernetes object and the template it came from."""

    source: str
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.doc.get("metadata") or {}).get("name", ""))

    def __str__(self) -> str:
        return f"{self.source} {self.kind}/{self.name}"


def helm_env(home: Path) -> dict[str, str]:
    """Environment for Helm with its cache, config and data under `home` (nothing of the user's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HELM_", "KUBE"))}
    for name in ("CACHE", "CONFIG", "DATA"):
        folder = home / name.lower()
        folder.mkdir(parents=True, exist_ok=True)
        env[f"HELM_{name}_HOME"] = str(folder)
    # No kube context: client-side commands must never reach a cluster.
    env["KUBECONFIG"] = str(home / "no-kubeconfig")
    return env


class Helm:
    """The Helm CLI with an isolated home; every call is offline (template, lint, show)."""

    def __init__(self, binary: str, home: Path) -> None:
        self.binary = binary
        self.home = home
        self.env = helm_env(self.home)

    def run(self, *args: str) -> str:
        proc = subprocess.run(
            [self.binary, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            raise HelmError((proc.stderr or proc.stdout).strip())
        return proc.stdout

    @staticmethod
    def _values_args(values_files: Iterable[Path], set_values: Sequence[str]) -> list[str]:
        args: list[str] = []
        for path in values_files:
            args += ["--values", str(path)]
        for item in set_values:
            args += ["--set", item]
        return args

    def template(
        self,
        chart: Path,
        values_files: Iterable[Path] = (),
        set_values: Sequence[str] = (),
        release: str = "betrace",
        namespace: str = "betrace",
    ) -> list[Manifest]:
        out = self.run(
            "template",
            release,
            str(chart),
            "--namespace",
            namespace,
            *self._values_args(values_files, set_values),
        )
        return parse_manifests(out)

    def lint(self, chart: Path, values_files: Iterable[Path] = ()) -> str:
        return self.run("lint", "--strict", str(chart), *self._values_args(values_files, ()))


def parse_manifests(text: str) -> list[Manifest]:
    """Split `helm template` output into objects, each with its `# Source:` template path."""
    out: list[Manifest] = []
    for chunk in text.split("\n---"):
        source = ""
        for line in chunk.splitlines():
            if line.startswith("# Source: "):
                source = line.removeprefix("# Source: ").strip()
                break
        try:
            doc = yamlio.fast_safe_load(chunk + "\n")  # the split took the final line break
        except yamlio.YAML_ERRORS as exc:
            raise HelmError(f"{source or 'rendered output'}: not valid YAML: {exc}") from None
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise HelmError(f"{source or 'rendered output'}: not a Kubernetes object: {doc!r:.80}")
        out.append(Manifest(source, doc))
    return out


# --- walking rendered objects -------------------------------------------------------------------

_POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def pod_specs(manifests: Iterable[Manifest]) -> Iterator[tuple[Manifest, dict[str, Any]]]:
    """Every pod spec the chart renders: Deployments' templates and bare Pods (test hooks)."""
    for m in manifests:
        if m.kind in _POD_TEMPLATE_KINDS:
            yield m, ((m.doc.get("spec") or {}).get("template") or {}).get("spec") or {}
        elif m.kind == "Pod":
            yield m, m.doc.get("spec") or {}


def containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, container) for init containers and containers of one pod spec."""
    for field_name, label in (("initContainers", "init container"), ("containers", "container")):
        for c in spec.get(field_name) or []:
            yield f"{label} {c.get('name')}", c


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env") or []}


def _find(manifests: Iterable[Manifest], kind: str, name: str) -> Manifest | None:
    return next((m for m in manifests if m.kind == kind and m.name == name), None)


def _image_name(image: str, registry: str) -> str | None:
    """'backend' for '<registry>/backend:tag', None for an image of another registry."""
    if not image.startswith(registry + "/"):
        return None
    return re.split(r"[:@]", image[len(registry) + 1 :], maxsplit=1)[0]


def _pods_with_image(
    manifests: list[Manifest], registry: str, name: str
) -> Iterator[tuple[Manifest, dict[str, Any], dict[str, Any]]]:
    for m, spec in pod_specs(manifests):
        for c in spec.get("containers") or []:
            if _image_name(str(c.get("image", "")), registry) == name:
                yield m, spec, c


# --- the checks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Container:
    """One container (init and test ones too) and its pod's security context."""

    where: str  # "<manifest> container <name>", for messages
    c: dict[str, Any]
    pod_sc: dict[str, Any]

    @property
    def sc(self) -> dict[str, Any]:
        sc: dict[str, Any] = self.c.get("securityContext") or {}
        return sc

    def effective(self, key: str) -> Any:
        """A security setting of the container, or else of its pod."""
        return self.sc.get(key, self.pod_sc.get(key))


def _runs_as_non_root(ct: _Container) -> list[str]:
    out = []
    if ct.effective("runAsNonRoot") is not True:
        out.append(f"{ct.where}: runAsNonRoot must be true")
    if ct.effective("runAsUser") in (None, 0):
        out.append(f"{ct.where}: runAsUser must be a non-zero user id")
    return out


def _root_filesystem_is_read_only(ct: _Container) -> list[str]:
    if ct.sc.get("readOnlyRootFilesystem") is True:
        return []
    return [f"{ct.where}: readOnlyRootFilesystem must be true"]


def _no_privilege(ct: _Container) -> list[str]:
    out = []
    if ct.sc.get("allowPrivilegeEscalation") is not False:
        out.append(f"{ct.where}: allowPrivilegeEscalation must be false")
    if ct.sc.get("privileged") is True:
        out.append(f"{ct.where}: privileged must not be true")
    return out


def _capabilities_dropped(ct: _Container) -> list[str]:
    out = []
    caps = ct.sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        out.append(f"{ct.where}: capabilities.drop must contain ALL")
    if caps.get("add"):
        out.append(f"{ct.where}: capabilities.add must be empty, found {caps['add']}")
    return out


def _seccomp_profile_set(ct: _Container) -> list[str]:
    seccomp = (ct.effective("seccompProfile") or {}).get("type")
    if seccomp in ("RuntimeDefault", "Localhost"):
        return []
    return [f"{ct.where}: seccompProfile.type must be RuntimeDefault, found {seccomp}"]


def _resources_bounded(ct: _Container) -> list[str]:
    resources = ct.c.get("resources") or {}
    return [
        f"{ct.where}: resources.{part}.{res} is missing"
        for part in ("requests", "limits")
        for res in ("cpu", "memory")
        if res not in (resources.get(part) or {})
    ]


#: The hardening rules of every container, in the order they report.
_CONTAINER_RULES: list[Callable[[_Container], list[str]]] = [
    _runs_as_non_root,
    _root_filesystem_is_read_only,
    _no_privilege,
    _capabilities_dropped,
    _seccomp_profile_set,
    _resources_bounded,
]


def check_hardening(manifests: list[Manifest]) -> list[str]:
    """Every container (init and test ones too) is non-root, read-only, unprivileged, bounded."""
    out: list[str] = []
    for m, spec in pod_specs(manifests):
        pod_sc = spec.get("securityContext") or {}
        if spec.get("automountServiceAccountToken") is not False:
            out.append(f"{m}: automountServiceAccountToken must be false (nothing calls the API)")
        for label, c in containers(spec):
            container = _Container(f"{m} {label}", c, pod_sc)
            out += [problem for rule in _CONTAINER_RULES for problem in rule(container)]
    return out


def check_images(manifests: list[Manifest], data: ReleaseData) -> list[str]:
    """BeTrace images come from the release registry at the release's tag; others are pinned."""
    registry = data.project.registry
    pinned = {img.ref for img in data.current.observability.__dict__.values()}
    out: list[str] = []
    for m, spec in pod_specs(manifests):
        test_hook = _is_test_hook(m)
        for label, c in containers(spec):
            image = str(c.get("image", ""))
            where = f"{m} {label}"
            tag = image_tag(image)
            if not tag or is_floating_tag(tag):
                out.append(f"{where}: image '{image}' is not pinned to a version tag")
                continue
            name = _image_name(image, registry)
            if name is not None:
                try:
                    expected = data.image_ref(name)
                except KeyError as exc:
                    out.append(f"{where}: image '{image}': {exc.args[0]}")
                    continue
                if image != expected:
                    out.append(
                        f"{where}: image '{image}' differs from the release's '{expected}' "
                        "(releases.yaml)"
                    )
            elif image not in pinned and not test_hook:
                # A `helm test` pod runs no part of BeTrace: a small pinned image (tests.image)
                # is allowed there; everything else comes from the release data.
                out.append(
                    f"{where}: image '{image}' is neither a BeTrace image under '{registry}/' nor "
                    "a pinned image of releases.yaml observability"
                )
    return out


def _is_test_hook(m: Manifest) -> bool:
    annotations = (m.doc.get("metadata") or {}).get("annotations") or {}
    return m.kind == "Pod" and annotations.get("helm.sh/hook") == "test"


def _http_get(probe: dict[str, Any] | None) -> tuple[str | None, Any]:
    get = (probe or {}).get("httpGet") or {}
    return get.get("path"), get.get("port")


def check_backend(manifests: list[Manifest], data: ReleaseData) -> list[str]:
    """One replica, Recreate, the real ports, probes, env vars and OTLP endpoint format."""
    out: list[str] = []
    found = list(_pods_with_image(manifests, data.project.registry, "backend"))
    if not found:
        return ["no pod runs the backend image"]
    for m, spec, c in found:
        where = f"{m} container {c.get('name')}"
        out += _grace_period(m, spec)
        if m.kind == "Deployment":
            out += _backend_rollout(m, data.current.backend.replicas)
        out += _backend_ports(where, c, data)
        # One rule per variable, shared with the Compose checks and the gate (backend_env.py).
        for name, problem in backend_env.env_problems(backend_env.container_env(c), data):
            out.append(f"{where}: env {name} {problem}")
        env_from = backend_env.env_from_problem(c, data)
        out += [f"{where} {env_from}"] if env_from is not None else []
        out += _backend_env(where, c)
        defaults = backend_env.distribution_default_problems(backend_env.container_env(c), data)
        out += [f"{where}: env {problem}" for problem in defaults]
    return out


def _backend_rollout(m: Manifest, wanted_replicas: int) -> list[str]:
    """One replica, replaced with Recreate: the backend keeps its state on one volume."""
    out: list[str] = []
    replicas = (m.doc.get("spec") or {}).get("replicas", 1)
    if replicas != wanted_replicas:
        out.append(
            f"{m}: replicas is {replicas}, must be {wanted_replicas} (rules on disk, "
            "violations in memory: a second pod diverges)"
        )
    strategy = ((m.doc.get("spec") or {}).get("strategy") or {}).get("type")
    if strategy != "Recreate":
        out.append(
            f"{m}: strategy is {strategy}, must be Recreate (a ReadWriteOnce volume "
            "cannot be shared by two pods during a rolling update)"
        )
    return out


def _backend_ports(where: str, c: dict[str, Any], data: ReleaseData) -> list[str]:
    """The container ports and the probes' paths and ports, against releases.yaml."""
    backend = data.current.backend
    out: list[str] = []
    ports = {name: p.port for name, p in backend.ports.items()}
    health = {
        kind: next(e.path for e in backend.endpoints if e.purpose.startswith(kind))
        for kind in ("Liveness", "Readiness")
    }
    declared = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    for name, port in ports.items():
        if declared.get(name) != port:
            out.append(
                f"{where}: port '{name}' is {declared.get(name)}, the backend listens on "
                f"{port} (releases.yaml backend.ports.{name})"
            )
    for probe_name, kind in (("livenessProbe", "Liveness"), ("readinessProbe", "Readiness")):
        path, probe_port = _http_get(c.get(probe_name))
        if path != health[kind]:
            out.append(f"{where}: {probe_name} path is {path}, expected {health[kind]}")
        if probe_port not in ("http", ports["http"]):
            out.append(f"{where}: {probe_name} port is {probe_port}, expected http")
    return out


def _backend_env(where: str, c: dict[str, Any]) -> list[str]:
    """The port variables match the container ports; the data directory is a mounted volume."""
    out: list[str] = []
    env = env_of(c)
    declared = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    for var, port_name in (("BETRACE_PORT_BACKEND", "http"), ("BETRACE_PORT_GRPC", "grpc")):
        value = (env.get(var) or {}).get("value")
        if value != str(declared.get(port_name)):
            out.append(
                f"{where}: env {var} is {value!r}, but the container port "
                f"'{port_name}' is {declared.get(port_name)}"
            )
    data_dir = (env.get("BETRACE_DATA_DIR") or {}).get("value")
    mounts = {vm.get("mountPath") for vm in c.get("volumeMounts") or []}
    if data_dir not in mounts:
        out.append(f"{where}: BETRACE_DATA_DIR {data_dir!r} is not a mounted volume")
    return out


#: above the slowest clean stop observed without an OTLP timeout (10 s or more, probe stop-time, is
#: why the chart sets one) and well above the stop with it
MIN_GRACE_SECONDS = 30


def _grace_period(m: Manifest, spec: dict[str, Any]) -> list[str]:
    grace = spec.get("terminationGracePeriodSeconds")
    if not isinstance(grace, int) or grace < MIN_GRACE_SECONDS:
        return [
            f"{m}: terminationGracePeriodSeconds is {grace}, must be set to at least "
            f"{MIN_GRACE_SECONDS}: the backend took 10 s or more to stop when nothing listened on "
            "its OTLP endpoint and no OTLP timeout was set, and a shorter grace period ends the "
            "stop in SIGKILL"
        ]
    return []


def _selects(policy: Manifest, labels: dict[str, Any]) -> bool:
    selector = ((policy.doc.get("spec") or {}).get("podSelector") or {}).get("matchLabels") or {}
    return selector.items() <= labels.items()


def check_network_policies(manifests: list[Manifest], data: ReleaseData) -> list[str]:
    """A NetworkPolicy that selects the backend admits only listed sources: every ingress rule
    has a non-empty `from` (a rule without one admits every pod, and the backend has no auth)."""
    out: list[str] = []
    backend_labels = [
        ((m.doc.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
        for m, _spec, _c in _pods_with_image(manifests, data.project.registry, "backend")
        if m.kind != "Pod"
    ]
    for policy in (m for m in manifests if m.kind == "NetworkPolicy"):
        if not any(_selects(policy, labels) for labels in backend_labels):
            continue
        for index, rule in enumerate((policy.doc.get("spec") or {}).get("ingress") or []):
            if not rule.get("from"):
                out.append(
                    f"{policy}: spec.ingress[{index}] has no 'from', so it admits every pod of the "
                    "cluster to the backend, which has no authentication; list the sources "
                    "(networkPolicy.backendFrom)"
                )
    return out


def check_secret_env(manifests: list[Manifest]) -> list[str]:
    """Passwords and keys reach containers from Secrets, never as literal values."""
    out: list[str] = []
    for m, spec in pod_specs(manifests):
        for label, c in containers(spec):
            for name, var in env_of(c).items():
                if looks_secret(name) and "value" in var:
                    out.append(f"{m} {label}: env {name} is a literal; use valueFrom.secretKeyRef")
    return out


def _load_yaml(text: str, where: str, out: list[str]) -> Any:
    try:  # bounded, as every YAML text a check reads
        return yamlio.safe_load(text, where)
    except ProblemsError as exc:  # any parse error is a finding, not a crash
        out.append(f"{where}: not YAML ({exc.problems[0].message})")
        return None


@dataclass(frozen=True)
class _GrafanaPod:
    """A pod with a container named grafana, as the Grafana rules see it."""

    manifests: list[Manifest]
    m: Manifest
    spec: dict[str, Any]
    c: dict[str, Any]
    plugin: Plugin
    registry: str

    @property
    def where(self) -> str:
        return f"{self.m} container grafana"

    @property
    def env(self) -> dict[str, dict[str, Any]]:
        return env_of(self.c)

    @property
    def plugins_dir(self) -> Any:
        return (self.env.get("GF_PATHS_PLUGINS") or {}).get("value", self.plugin.plugins_dir)

    @property
    def mounts(self) -> dict[str, Any]:
        """Grafana's volume mounts: mount path to volume name."""
        return {vm.get("mountPath"): vm.get("name") for vm in self.c.get("volumeMounts") or []}

    def images(self, kind: str) -> list[dict[str, Any]]:
        """The pod's init containers that run one BeTrace image (e.g. plugin-init)."""
        return [
            i
            for i in self.spec.get("initContainers") or []
            if _image_name(str(i.get("image", "")), self.registry) == kind
        ]


def _grafana_variables(pod: _GrafanaPod) -> list[str]:
    """The shared rules of grafana_env, each variable set explicitly (the chart's Grafana image
    is the reader's choice, so nothing is assumed of it)."""
    env = {name: (var or {}).get("value") for name, var in pod.env.items()}
    names = (grafana_env.UNSIGNED, grafana_env.ANONYMOUS)
    return [f"{pod.where}: {problem}" for problem in grafana_env.problems(env, pod.plugin, names)]


def _no_anonymous_role(pod: _GrafanaPod) -> list[str]:
    if "GF_AUTH_ANONYMOUS_ORG_ROLE" not in pod.env:
        return []
    return [f"{pod.where}: GF_AUTH_ANONYMOUS_ORG_ROLE must not be set"]


#: Grafana's plugin preinstaller, on by default ([plugins] preinstall_disabled false, read in
#: grafana/grafana's pkg/setting/setting_plugins.go at commit 0a8a924, not at the pinned tag),
#: replaces bundled data-source plugins at each start; on a read-only root filesystem it
#: unloads one, fails to write, and leaves it unregistered (grafana/grafana#132528, reported on
#: 13.2; not run here).
PREINSTALL = "GF_PLUGINS_PREINSTALL_DISABLED"


def _no_preinstall_on_a_read_only_root(pod: _GrafanaPod) -> list[str]:
    # readOnlyRootFilesystem is a container field only (Kubernetes' SecurityContext)
    if ((pod.c.get("securityContext") or {}).get("readOnlyRootFilesystem")) is not True:
        return []
    if str((pod.env.get(PREINSTALL) or {}).get("value", "")).lower() == "true":
        return []
    return [
        f"{pod.where}: the root filesystem is read-only, so {PREINSTALL} must be 'true': "
        "Grafana's plugin preinstaller would unload bundled data sources it cannot replace"
    ]


def _admin_password_from_a_secret(pod: _GrafanaPod) -> list[str]:
    password = pod.env.get("GF_SECURITY_ADMIN_PASSWORD") or {}
    if "secretKeyRef" in (password.get("valueFrom") or {}):
        return []
    return [f"{pod.where}: GF_SECURITY_ADMIN_PASSWORD must come from a Secret"]


def _plugin_is_installed(pod: _GrafanaPod) -> list[str]:
    """Baked into the grafana-plugin image (and not hidden), or copied in by plugin-init."""
    if _image_name(str(pod.c.get("image", "")), pod.registry) != "grafana-plugin":
        return _plugin_init_installs_it(pod)
    if pod.plugins_dir in pod.mounts:
        return [
            f"{pod.where}: volume '{pod.mounts[pod.plugins_dir]}' is mounted over "
            f"{pod.plugins_dir} and hides the plugin inside the grafana-plugin image"
        ]
    return []


def _plugin_init_installs_it(pod: _GrafanaPod) -> list[str]:
    """A plugin-init container writes into the volume Grafana mounts, at the plugin's folder."""
    init = pod.images("plugin-init")
    plugins_dir = pod.plugins_dir
    shared = pod.mounts.get(plugins_dir)
    if not init:
        return [
            f"{pod.where}: the image has no plugin inside and no plugin-init container installs it"
        ]
    if not any(
        vm.get("name") == shared and vm.get("mountPath") == plugins_dir
        for i in init
        for vm in i.get("volumeMounts") or []
    ):
        return [
            f"{pod.where}: the plugin-init container does not write into the volume Grafana "
            f"mounts at {plugins_dir}"
        ]
    # plugin-init copies to its first argument (or $BETRACE_PLUGIN_TARGET).
    target = f"{plugins_dir}/{pod.plugin.id}"
    out: list[str] = []
    for i in init:
        given = (i.get("args") or [None])[0] or (env_of(i).get("BETRACE_PLUGIN_TARGET") or {}).get(
            "value"
        )
        if given != target:
            out.append(
                f"{pod.m} init container {i.get('name')}: copies the plugin to {given}, "
                f"Grafana looks for it in {target}"
            )
    return out


def _plugin_app_is_provisioned(pod: _GrafanaPod) -> list[str]:
    """The ConfigMap mounted at provisioning/plugins enables the app with a backend URL."""
    volumes = {v.get("name"): v for v in pod.spec.get("volumes") or []}
    volume = volumes.get(pod.mounts.get("/etc/grafana/provisioning/plugins")) or {}
    cm_name = (volume.get("configMap") or {}).get("name")
    cm = _find(pod.manifests, "ConfigMap", cm_name) if cm_name else None
    if cm is None:
        return [f"{pod.where}: no rendered ConfigMap is mounted at provisioning/plugins"]
    out: list[str] = []
    apps: list[Any] = []
    for key, text in (cm.doc.get("data") or {}).items():
        doc = _load_yaml(text, f"{cm} {key}", out) or {}
        if doc.get("apiVersion") != 1:
            out.append(f"{cm} {key}: apiVersion must be 1")
        apps += doc.get("apps") or []
    plugin_id = pod.plugin.id
    app = next((a for a in apps if a.get("type") == plugin_id), None)
    if app is None:
        out.append(f"{cm}: no app of type '{plugin_id}' is provisioned")
    else:
        url = str((app.get("jsonData") or {}).get("backendUrl", ""))
        problem = _backend_url_problem(pod.manifests, url)
        if problem is not None:
            out.append(f"{cm}: jsonData.backendUrl of '{plugin_id}': {problem}")
    return out


def _backend_url_problem(manifests: list[Manifest], url: str) -> str | None:
    """The shared backendUrl rule (backend_env); a URL naming a Service of the release must
    reach the backend's container port `http` through it. A host the release does not render
    is an external backend: its form only, https allowed (a proxy of the reader's)."""
    name = (urlsplit(url).hostname or "").split(".")[0]
    service = _find(manifests, "Service", name)
    form = backend_env.backend_url_problem(url, tls=service is None)
    if form is not None or service is None:
        return form
    port = backend_env.url_port(url)
    spec = service.doc.get("spec") or {}
    entry = next((p for p in spec.get("ports") or [] if p.get("port") == port), None)
    component = (spec.get("selector") or {}).get("app.kubernetes.io/component")
    if entry is None or component != "backend" or entry.get("targetPort") != "http":
        return f"port {port} of Service '{name}' does not lead to the backend's container port http"
    return None


#: The Grafana pod's rules, in the order they report.
_GRAFANA_RULES: list[Callable[[_GrafanaPod], list[str]]] = [
    _grafana_variables,
    _no_anonymous_role,
    _admin_password_from_a_secret,
    _plugin_is_installed,
    _plugin_app_is_provisioned,
    _no_preinstall_on_a_read_only_root,
]


def check_grafana(manifests: list[Manifest], data: ReleaseData) -> list[str]:
    """Only the BeTrace plugin may load unsigned, no anonymous access, plugin really installed."""
    pods = [
        _GrafanaPod(manifests, m, spec, c, data.current.plugin, data.project.registry)
        for m, spec in pod_specs(manifests)
        for c in spec.get("containers") or []
        if c.get("name") == "grafana"
    ]
    if not pods:
        return ["no pod has a container named grafana"]
    return [problem for pod in pods for rule in _GRAFANA_RULES for problem in rule(pod)]


_GRAFANA_COMPONENT = "grafana"


def check_no_grafana(manifests: list[Manifest]) -> list[str]:
    """With grafana.enabled false, nothing of the chart's own Grafana is rendered."""
    out: list[str] = []
    for m in manifests:
        meta = m.doc.get("metadata") or {}
        component = (meta.get("labels") or {}).get("app.kubernetes.io/component")
        selected = (((m.doc.get("spec") or {}).get("podSelector") or {}).get("matchLabels")) or {}
        if component == _GRAFANA_COMPONENT or re.search(r"-grafana(-|$)", m.name):
            out.append(f"{m}: a Grafana object is rendered although grafana.enabled is false")
        elif selected.get("app.kubernetes.io/component") == _GRAFANA_COMPONENT:
            out.append(f"{m}: selects Grafana pods although grafana.enabled is false")
    for m, spec in pod_specs(manifests):
        for label, c in containers(spec):
            if c.get("name") == "grafana" or "GF_PATHS_PLUGINS" in env_of(c):
                out.append(f"{m} {label}: runs Grafana although grafana.enabled is false")
    return out


@dataclass(frozen=True)
class _Rendered:
    """What a pod may refer to: the rendered objects, and those named as existing already."""

    manifests: list[Manifest]
    given: set[tuple[str, str]]

    def exists(self, kind: str, name: str) -> bool:
        return (kind, name) in self.given or _find(self.manifests, kind, name) is not None

    def has_key(self, kind: str, name: str, key: str) -> bool:
        if (kind, name) in self.given:
            return True
        m = _find(self.manifests, kind, name)
        return m is not None and key in {
            **(m.doc.get("data") or {}),
            **(m.doc.get("stringData") or {}),
        }


def _volume_sources_exist(rendered: _Rendered, m: Manifest, spec: dict[str, Any]) -> list[str]:
    """Each volume's PersistentVolumeClaim, ConfigMap or Secret."""
    out = []
    for name, v in _volumes(spec).items():
        refs = [
            ("PersistentVolumeClaim", (v.get("persistentVolumeClaim") or {}).get("claimName")),
            ("ConfigMap", (v.get("configMap") or {}).get("name")),
            ("Secret", (v.get("secret") or {}).get("secretName")),
        ]
        out += [
            f"{m}: volume '{name}' uses {kind} '{ref}', which is not rendered"
            for kind, ref in refs
            if ref and not rendered.exists(kind, ref)
        ]
    return out


def _mounts_are_declared(
    label: str, c: dict[str, Any], m: Manifest, spec: dict[str, Any]
) -> list[str]:
    volumes = _volumes(spec)
    return [
        f"{m} {label}: mounts volume '{vm.get('name')}', not declared"
        for vm in c.get("volumeMounts") or []
        if vm.get("name") not in volumes
    ]


def _env_keys_exist(rendered: _Rendered, label: str, c: dict[str, Any], m: Manifest) -> list[str]:
    """Each env var read from a key of a Secret or ConfigMap."""
    out = []
    for var in c.get("env") or []:
        source = var.get("valueFrom") or {}
        for kind, field_name in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
            ref = source.get(field_name)
            if ref and not rendered.has_key(kind, ref.get("name"), ref.get("key")):
                out.append(
                    f"{m} {label}: env {var.get('name')} reads key '{ref.get('key')}' of "
                    f"{kind} '{ref.get('name')}', which is not rendered"
                )
    return out


def _volumes(spec: dict[str, Any]) -> dict[str, Any]:
    return {v.get("name"): v for v in spec.get("volumes") or []}


def check_references(
    manifests: list[Manifest], external: Iterable[tuple[str, str]] = ()
) -> list[str]:
    """Every PVC, ConfigMap and Secret a pod uses is rendered by the chart or named as external."""
    rendered = _Rendered(manifests, set(external))
    out: list[str] = []
    for m, spec in pod_specs(manifests):
        out += _volume_sources_exist(rendered, m, spec)
        for label, c in containers(spec):
            out += _mounts_are_declared(label, c, m, spec)
            out += _env_keys_exist(rendered, label, c, m)
    return out


def check_services(manifests: list[Manifest]) -> list[str]:
    """Every Service selects a rendered pod and targets a port that pod declares."""
    out: list[str] = []
    pods = [
        (((m.doc.get("spec") or {}).get("template") or {}).get("metadata") or {}, spec)
        for m, spec in pod_specs(manifests)
        if m.kind != "Pod"
    ]
    for svc in (m for m in manifests if m.kind == "Service"):
        selector = (svc.doc.get("spec") or {}).get("selector") or {}
        matched = [
            spec
            for meta, spec in pods
            if selector and selector.items() <= (meta.get("labels") or {}).items()
        ]
        if not matched:
            out.append(f"{svc}: selector {selector} matches no rendered pod")
            continue
        declared = {
            p.get(k)
            for spec in matched
            for c in spec.get("containers") or []
            for p in c.get("ports") or []
            for k in ("name", "containerPort")
        }
        for port in (svc.doc.get("spec") or {}).get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            if target not in declared:
                out.append(
                    f"{svc}: port '{port.get('name')}' targets {target}, no container has it"
                )
    return out


def _route_targets(m: Manifest) -> Iterator[tuple[Any, Any]]:
    """(Service name, port) of each backend an Ingress or an HTTPRoute sends requests to: an
    Ingress names the port by name or number, an HTTPRoute by number."""
    spec = m.doc.get("spec") or {}
    if m.kind == "Ingress":
        for rule in spec.get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                service = (path.get("backend") or {}).get("service") or {}
                port = service.get("port") or {}
                yield service.get("name"), port.get("name", port.get("number"))
    elif m.kind == "HTTPRoute":
        for rule in spec.get("rules") or []:
            for ref in rule.get("backendRefs") or []:
                if ref.get("kind", "Service") == "Service" and not ref.get("group"):
                    yield ref.get("name"), ref.get("port")


def check_routes(manifests: list[Manifest]) -> list[str]:
    """Every Ingress and HTTPRoute sends requests to a rendered Service, at a port it has: one
    that names another answers 503 through the controller, with nothing said at install."""
    services = {
        m.name: {
            v
            for p in (m.doc.get("spec") or {}).get("ports") or []
            for v in (p.get("name"), p.get("port"))
        }
        for m in manifests
        if m.kind == "Service"
    }
    out: list[str] = []
    for m in (m for m in manifests if m.kind in ("Ingress", "HTTPRoute")):
        for name, port in _route_targets(m):
            if name not in services:
                out.append(f"{m}: sends requests to Service '{name}', which is not rendered")
            elif port not in services[name]:
                out.append(
                    f"{m}: sends requests to port {port} of Service '{name}', which has none"
                )
    return out


def check_monitors(manifests: list[Manifest]) -> list[str]:
    """Every ServiceMonitor selects a rendered Service by its labels and scrapes a port that
    Service names: the Prometheus Operator finds no target otherwise, and says so nowhere an
    operator looks first."""
    services = [m for m in manifests if m.kind == "Service"]
    out: list[str] = []
    for monitor in (m for m in manifests if m.kind == "ServiceMonitor"):
        spec = monitor.doc.get("spec") or {}
        wanted = (spec.get("selector") or {}).get("matchLabels") or {}
        selected = [
            svc
            for svc in services
            if wanted
            and wanted.items() <= ((svc.doc.get("metadata") or {}).get("labels") or {}).items()
        ]
        if not selected:
            out.append(f"{monitor}: selects no rendered Service (matchLabels {wanted})")
            continue
        for endpoint in spec.get("endpoints") or []:
            for svc in selected:
                names = {p.get("name") for p in (svc.doc.get("spec") or {}).get("ports") or []}
                port = endpoint.get("port")
                if port not in names:
                    out.append(f"{monitor}: scrapes port '{port}', which {svc} does not name")
    return out


def check_backend_service(manifests: list[Manifest], data: ReleaseData) -> list[str]:
    """The backend Service publishes the backend's real ports under their names."""
    out: list[str] = []
    services = [m for m in manifests if m.kind == "Service" and m.name.endswith("-backend")]
    if not services:
        return ["no backend Service (a Service whose name ends in -backend) is rendered"]
    for svc in services:
        ports = {p.get("name"): p.get("port") for p in svc.doc["spec"].get("ports") or []}
        for name, port in data.current.backend.ports.items():
            if ports.get(name) != port.port:
                out.append(
                    f"{svc}: port '{name}' is {ports.get(name)}, expected {port.port} "
                    f"(releases.yaml backend.ports.{name})"
                )
    return out


def check_all(
    manifests: list[Manifest],
    data: ReleaseData,
    external: Iterable[tuple[str, str]] = (),
    grafana: bool = True,
) -> list[str]:
    """Every policy above, on one rendering of the chart; `grafana` is grafana.enabled."""
    return [
        *check_hardening(manifests),
        *check_images(manifests, data),
        *check_backend(manifests, data),
        *check_backend_service(manifests, data),
        *check_network_policies(manifests, data),
        *check_secret_env(manifests),
        *(check_grafana(manifests, data) if grafana else check_no_grafana(manifests)),
        *check_references(manifests, external),
        *check_services(manifests),
        *check_routes(manifests),
        *check_monitors(manifests),
    ]


def load_values(path: Path) -> dict[str, Any]:
    """A values file as plain data ({} for an empty file)."""
    return YAML(typ="safe").load(Path(path).read_text(encoding="utf-8")) or {}


def external_secrets(values: dict[str, Any]) -> set[tuple[str, str]]:
    """Secrets and claims a scenario's values name as created outside the chart."""
    out: set[tuple[str, str]] = set()
    backend = values.get("backend") or {}
    grafana = values.get("grafana") or {}
    for section, key in (
        ((backend.get("signatureKey") or {}), "existingSecret"),
        ((grafana.get("admin") or {}), "existingSecret"),
    ):
        if section.get(key):
            out.add(("Secret", section[key]))
    for component in (backend, grafana):
        claim = (component.get("persistence") or {}).get("existingClaim")
        if claim:
            out.add(("PersistentVolumeClaim", claim))
    return out


def grafana_enabled(values: dict[str, Any]) -> bool:
    """grafana.enabled of a values file (true unless the file turns it off)."""
    return (values.get("grafana") or {}).get("enabled", True) is not False


# Values that name a Secret created outside the chart. The first two replace a Secret the chart
# would generate itself; the TLS and pull Secrets are never generated but must not clash either.
EXISTING_SECRET_VALUES = ("backend.signatureKey.existingSecret", "grafana.admin.existingSecret")
_OTHER_SECRET_VALUES = ("backend.ingress.tlsSecret", "grafana.ingress.tlsSecret")


def _value_at(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for key in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def existing_secret_names(values: dict[str, Any]) -> dict[str, str]:
    """Value path -> name of every Secret a values file says exists outside the chart."""
    out: dict[str, str] = {}
    for path in (*EXISTING_SECRET_VALUES, *_OTHER_SECRET_VALUES):
        name = _value_at(values, path)
        if name:
            out[path] = str(name)
    for index, name in enumerate(_value_at(values, "image.pullSecrets") or []):
        out[f"image.pullSecrets[{index}]"] = str(name)
    return out


def generated_secret_names(
    helm: Helm,
    chart: Path,
    values_files: Iterable[Path] = (),
    release: str = "betrace",
    namespace: str = "betrace",
) -> set[str]:
    """Names of the Secrets the chart generates for `release` with these values, with Grafana
    on and no existing Secret named: every Secret name an install of the release may own."""
    unset = [f"{path}=" for path in EXISTING_SECRET_VALUES]
    manifests = helm.template(
        chart, values_files, [*unset, "grafana.enabled=true"], release, namespace
    )
    return {m.name for m in manifests if m.kind == "Secret"}


def check_existing_secret_names(
    existing: dict[str, str], generated: Iterable[str], release: str = "betrace"
) -> list[str]:
    """No Secret a values file names as existing has the name of a Secret the chart generates.

    Such a name cannot be created next to an install that generated it (`kubectl create secret`
    fails), and an upgrade to values naming it stops rendering the generated Secret, so Helm
    deletes the very Secret the values point at.
    """
    owned = set(generated)
    return [
        f"{path} names the existing Secret '{name}', which is also the name of a Secret the "
        f"chart generates for release '{release}'; choose a name the chart never generates "
        f"(e.g. '{name}-credentials')"
        for path, name in sorted(existing.items())
        if name in owned
    ]


def _artifacthub_images(
    chart_file: Path, annotations: dict[str, Any], values: dict[str, Any], data: ReleaseData
) -> list[str]:
    """artifacthub.io/images lists every image the chart runs: BeTrace's, Grafana's and the
    helm test pod's (tests.image in values.yaml)."""
    listed = {
        i.get("image")
        for i in YAML(typ="safe").load(annotations.get("artifacthub.io/images", "[]"))
    }
    expected = {data.image_ref(n) for n in BETRACE_IMAGES}
    expected.add(data.current.observability.grafana.ref)
    test_image = (values.get("tests") or {}).get("image") or {}
    expected.add(f"{test_image.get('repository')}:{test_image.get('tag')}")
    if listed == expected:
        return []
    return [
        f"{chart_file}: artifacthub.io/images lists {sorted(listed)}, expected {sorted(expected)}"
    ]


def _artifacthub_changes(
    chart_file: Path, annotations: dict[str, Any], data: ReleaseData
) -> list[str]:
    """artifacthub.io/changes is a YAML list of {kind, description} in a string (Artifact
    Hub's documentation of its Helm annotations), and lists this version's changes as the
    release data does, in its order."""
    chart = data.current.chart
    expected = [
        {"kind": c.kind, "description": " ".join(c.description.split())}
        for c in chart.changes_of(chart.version)
    ]
    text = annotations.get("artifacthub.io/changes")
    if not isinstance(text, str):
        return [f"{chart_file}: artifacthub.io/changes must be a YAML list in a string"]
    try:
        listed = YAML(typ="safe").load(text)
    except YAMLError as exc:
        return [f"{chart_file}: artifacthub.io/changes is not YAML: {exc}"]
    found = [
        {"kind": item.get("kind"), "description": " ".join(str(item.get("description")).split())}
        for item in (listed if isinstance(listed, list) else [])
        if isinstance(item, dict)
    ]
    if found == expected:
        return []
    return [
        f"{chart_file}: artifacthub.io/changes lists {found}, releases.yaml "
        f"(releases[0].chart.changes of {chart.version}) says {expected}"
    ]


def check_chart_metadata(chart_dir: Path, data: ReleaseData) -> list[str]:
    """Chart.yaml and the values defaults agree with releases.yaml."""
    out: list[str] = []
    chart_file = Path(chart_dir) / "Chart.yaml"
    chart = YAML(typ="safe").load(chart_file.read_text(encoding="utf-8"))
    release = data.current
    for key, expected in (
        ("name", release.chart.name),
        ("version", release.chart.version),
        ("appVersion", release.chart.app_version),
        ("kubeVersion", f">={release.kubernetes.minimum}.0-0"),
    ):
        if str(chart.get(key)) != expected:
            out.append(
                f"{chart_file}: {key} is {chart.get(key)!r}, releases.yaml says {expected!r}"
            )
    if chart.get("home") != data.project.site_url:
        out.append(
            f"{chart_file}: home is {chart.get('home')!r}, releases.yaml project.site_url says "
            f"{data.project.site_url!r} (NOTES.txt links the guides below it)"
        )
    annotations = chart.get("annotations") or {}
    if annotations.get("artifacthub.io/license") != data.project.license:
        out.append(f"{chart_file}: artifacthub.io/license must be {data.project.license}")
    values_file = Path(chart_dir) / "values.yaml"
    values = YAML(typ="safe").load(values_file.read_text(encoding="utf-8"))
    out += _artifacthub_images(chart_file, annotations, values, data)
    out += _artifacthub_changes(chart_file, annotations, data)
    value_facts: list[tuple[str, object, object]] = [
        ("image.registry", values["image"]["registry"], data.project.registry),
        (
            "backend.ports.http",
            values["backend"]["ports"]["http"],
            release.backend.ports["http"].port,
        ),
        (
            "backend.ports.grpc",
            values["backend"]["ports"]["grpc"],
            release.backend.ports["grpc"].port,
        ),
        ("backend.replicas", values["backend"]["replicas"], release.backend.replicas),
        (
            "grafana.image",
            f"{values['grafana']['image']['repository']}:{values['grafana']['image']['tag']}",
            release.observability.grafana.ref,
        ),
    ]
    for path, found, fact in value_facts:
        if found != fact:
            out.append(f"{values_file}: {path} is {found!r}, releases.yaml says {fact!r}")
    return out


def _hint(exc: Exception) -> str:
    """What a reader most likely meant where a string field holds a boolean: Kubernetes'
    YAML library reads an unquoted yes, no, on, off (and y, n, true, false) as one."""
    if isinstance(getattr(exc, "instance", None), bool) and "'string'" in str(exc):
        return (
            " (Kubernetes reads an unquoted yes, no, on, off, true or false as a boolean: quote it)"
        )
    return ""


def validate_kubernetes(manifests: list[Manifest], versions: Sequence[str]) -> list[str]:
    """Strict Kubernetes schema validation (unknown fields rejected) for each version given, or
    for a kind Kubernetes does not define, its CRD's schema (crd_schemas); then the values of
    the fields the API server takes from a fixed set (kube_enums), which the schemas do not
    hold."""
    import kubernetes_validate  # imported here: loading its schemas is only needed by this check

    out: list[str] = []
    plain = [m for m in manifests if not crd_schemas.modelled(m.doc)]
    for m in (m for m in manifests if crd_schemas.modelled(m.doc)):
        out += [f"{m}: {problem}" for problem in crd_schemas.schema_problems(m.doc)]
    for version in versions:
        for m in plain:
            try:
                kubernetes_validate.validate(m.doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path) or "(root)"
                out.append(f"{m} (Kubernetes {version}): {path}: {exc.message}{_hint(exc)}")
            except kubernetes_validate.SchemaNotFoundError:
                out.append(f"{m} (Kubernetes {version}): unknown kind or apiVersion")
    for m in manifests:
        out += [f"{m}: {problem}" for problem in kube_enums.problems(m.doc)]
        out += [f"{m}: {problem}" for problem in ingress_nginx.problems(m.doc)]
    return out


# --- links to the published site ----------------------------------------------------------------

_URL = re.compile(r"https?://[^\s)\"'<>`\]]+")


def site_page_paths(docs_dir: Path) -> set[str]:
    """URL path of every page of the site, as mkdocs builds it with use_directory_urls:
    docs/guides/x.md -> guides/x/, docs/index.md -> '' (the version's home)."""
    out = set()
    for page in Path(docs_dir).rglob("*.md"):
        rel = page.relative_to(docs_dir)
        folder = rel.parent.as_posix()
        folder = "" if folder == "." else folder + "/"
        out.add(folder if rel.name == "index.md" else f"{folder}{rel.stem}/")
    return out


def site_versions(data: ReleaseData) -> set[str]:
    """Folders mike serves the site under: the `latest` alias and the current release's."""
    return {"latest", data.current.site_folder}


def check_site_links(texts: dict[str, str], data: ReleaseData, docs_dir: Path) -> list[str]:
    """Every URL below project.site_url in `texts` (name -> text) is a page of the built site.

    The site root redirects to the default version; any other address must name a version folder
    and a page that docs/ holds, or the reader gets the site's 404.
    """
    site = data.project.site_url
    pages = site_page_paths(docs_dir)
    versions = sorted(site_versions(data))
    out: list[str] = []
    for name, text in texts.items():
        for number, line in enumerate(text.splitlines(), start=1):
            for url in _URL.findall(line):
                url = url.rstrip(".,;:")
                if not url.startswith(site) or url == site:
                    continue
                rest = url[len(site) :].partition("#")[0].partition("?")[0]
                version, _, page = rest.partition("/")
                if version not in versions:
                    out.append(
                        f"{name}:{number}: {url} names no version folder of the site; mike "
                        f"serves it under {', '.join(site + v + '/' for v in versions)}"
                    )
                elif page not in pages:
                    out.append(
                        f"{name}:{number}: {url} is not a page of the site: docs/ has no page "
                        f"for '{page}' (pages are docs/<path>.md -> <path>/)"
                    )
    return out
