"""The BeTrace app in a Grafana the page installs with the Grafana chart: the backend URL its
provisioning file gives it, checked against what the page has deployed.

The Grafana chart mounts the ConfigMaps its values name (`extraConfigmapMounts`, read in the
chart's templates/_pod.tpl at the commit the values schema names). Grafana provisions apps
from the files of `<provisioning>/plugins` (`paths.provisioning` of grafana.ini). When such a
file comes from a ConfigMap the page created and provisions the BeTrace app, its
`jsonData.backendUrl` is where Grafana's SERVER calls the backend (the app's proxy route,
patches/grafana-betrace-app/0002): a Service of the page's world, by a DNS name Grafana's pod
resolves, on a Service port that leads to the backend's HTTP port.

Names a pod resolves (Kubernetes' "DNS for Services and Pods", kubernetes/website
content/en/docs/concepts/services-networking/dns-pod-service.md): `<service>` in the pod's own
namespace, `<service>.<namespace>`, and `<service>.<namespace>.svc` followed by the cluster
domain or not. The cluster domain (`cluster.local` unless the cluster is set up otherwise)
is not checked: the page cannot know the reader's.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from .. import backend_env, yamlio
from ..errors import ProblemsError
from ..names import close_to, closest
from ..release import ReleaseData
from . import grafana_chart, grafana_settings, plugin_copy
from .world import K8sObject, MixedPods, World, listing


def _provisioning(values: dict[str, Any]) -> str:
    return grafana_settings.ini_path(values, "provisioning", grafana_chart.PROVISIONING)


def _plugin_files(values: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(ConfigMap, key, file path in the pod) of each file a ConfigMap mount puts directly in
    the plugins provisioning folder: a subPath mount is one key at its mountPath; a whole mount
    of the folder is every key (or the `items` it lists) under the folder."""
    folder = f"{_provisioning(values)}/plugins"
    mounts = values.get("extraConfigmapMounts")
    for mount in mounts if isinstance(mounts, list) else []:
        if not isinstance(mount, dict) or "{{" in str(mount.get("configMap", "{{")):
            continue
        name, path = str(mount["configMap"]), str(mount.get("mountPath", "")).rstrip("/")
        items = mount.get("items")
        if mount.get("subPath") and posixpath.dirname(path) == folder:
            yield name, str(mount["subPath"]), path
        elif path == folder and isinstance(items, list) and items:
            for item in items:
                if not isinstance(item, dict) or "key" not in item or "path" not in item:
                    raise ValueError(
                        f"extraConfigmapMounts '{name}': each of its items needs a key and a path"
                    )
                yield name, str(item["key"]), f"{folder}/{item['path']}"
        elif path == folder:
            yield name, "*", folder


def _files(cm: K8sObject, key: str, path: str) -> list[tuple[str, str]]:
    """(file path, text) of what the mount shows; a missing key is refused (no file appears)."""
    given = cm.doc.get("data")
    data = {str(k): str(v) for k, v in given.items()} if isinstance(given, dict) else {}
    if key == "*":
        return [(f"{path}/{k}", v) for k, v in data.items()]
    if key not in data:
        raise ValueError(
            f"ConfigMap '{cm.name}' has no key '{key}', so nothing appears at {path}; it has: "
            f"{', '.join(sorted(data)) or 'no keys'}"
        )
    return [(path, data[key])]


def _apps(cm: K8sObject, path: str, text: str, plugin_id: str) -> list[dict[str, Any]]:
    try:  # bounded: the ConfigMap is the page's text
        doc = yamlio.safe_load(text, f"ConfigMap '{cm.name}' ({path})")
    except ProblemsError as exc:
        raise ValueError(str(exc.problems[0])) from None
    apps = doc.get("apps") if isinstance(doc, dict) else None
    if apps is not None and not isinstance(apps, list):
        raise ValueError(f"ConfigMap '{cm.name}' ({path}): apps must be a list of apps")
    mine = [a for a in apps or [] if isinstance(a, dict) and a.get("type") == plugin_id]
    meant = [
        a
        for a in apps or []
        if isinstance(a, dict)
        and (_names_a_backend(a) or close_to(str(a.get("type")), [plugin_id]) is not None)
    ]
    if meant and not mine:  # an app given the backend's URL, or a near id, means this one
        raise ValueError(
            f"ConfigMap '{cm.name}' ({path}): the app meant to be BeTrace's has type "
            f"{meant[0].get('type')!r}, which provisions another plugin: an app's type is the "
            f"plugin's id, {plugin_id} (releases.yaml plugin.id)"
        )
    if mine and doc.get("apiVersion") != 1:
        raise ValueError(
            f"ConfigMap '{cm.name}' ({path}): apiVersion is {doc.get('apiVersion')!r}; Grafana's "
            "plugin provisioning files say apiVersion: 1"
        )
    return mine


def _names_a_backend(app: dict[str, Any]) -> bool:
    settings = app.get("jsonData")
    return isinstance(settings, dict) and "backendUrl" in settings


def _service(world: World, host: str, namespace: str) -> tuple[str, str] | None:
    """(Service, namespace) a host name resolves to from a pod in `namespace`, or None."""
    parts = host.split(".")
    if len(parts) == 1:
        return parts[0], namespace
    if len(parts) == 2 or parts[2] == "svc":
        return parts[0], parts[1]
    return None


def backend_url_problem(world: World, namespace: str, url: str, data: ReleaseData) -> str | None:
    """What keeps Grafana's pod in `namespace` from reaching the backend at `url`, or None."""
    form = backend_env.backend_url_problem(url)
    if form is not None:
        return form
    host, port = urlsplit(url).hostname or "", backend_env.url_port(url)
    assert port is not None  # the form rule refuses a URL without one
    found = _service(world, host, namespace)
    if found is None:
        return (
            f"'{host}' is not a Service name Grafana's pod resolves (SERVICE, SERVICE.NAMESPACE "
            "or SERVICE.NAMESPACE.svc); the gate checks only Services the page deployed"
        )
    name, ns = found
    service = world.find(ns, "Service", name)
    if service is None:
        names = world.names(ns, "Service")
        return (
            f"no Service '{name}' in namespace '{ns}'{closest(name, names)}; "
            + listing(f"Services in '{ns}'", names)
            + " (the URL is checked when Grafana's release is installed or upgraded: deploy the "
            "backend before it)"
        )
    return _port_problem(world, ns, service, port, data)


def _port_problem(
    world: World, ns: str, service: K8sObject, port: int, data: ReleaseData
) -> str | None:
    """The Service's port leads to the HTTP server of a backend: the container behind it runs
    the backend's image (World.role), and listens for HTTP there by its own variables, which
    it sets under env (with envFrom, they cannot be told: backend_env.env_from_problem)."""
    entry = next((p for p in service.service_ports() if p.get("port") == port), None)
    have = ", ".join(str(p.get("port")) for p in service.service_ports())
    if entry is None:
        return f"Service '{service.name}' has no port {port}; it has: {have or 'none'}"
    named = entry.get("targetPort", port)
    target = world.target_port(ns, service, named)
    if target is None:
        return (
            f"Service '{service.name}' targets the port '{named}', which no pod it selects declares"
        )
    try:
        serving = world.serving(ns, service, target, data)
    except MixedPods as exc:
        return (
            f"{exc}: a Service sends each connection to any of its pods, so whether the backend "
            "answers cannot be told; give it a selector that picks the backend's pods only"
        )
    if serving is None:
        return (
            f"port {port} of Service '{service.name}' leads to port {target} of no pod the gate "
            "can tell (the Service selects none, or several containers and none declares it)"
        )
    workload, container = serving
    if world.role(workload, container, data) != "backend":
        return (
            f"port {port} of Service '{service.name}' leads to port {target} of {workload.kind} "
            f"'{workload.name}', whose container '{container.get('name')}' (image "
            f"{container.get('image')}) the gate does not know for the backend"
        )
    env_from = backend_env.env_from_problem(container, data)
    if env_from is not None:
        return (
            f"port {port} of Service '{service.name}' leads to the backend's container "
            f"'{container.get('name')}' of {workload.kind} '{workload.name}': it {env_from}"
        )
    http = backend_env.listening_ports(backend_env.container_env(container), data)["http"]
    if target != http:
        return (
            f"port {port} of Service '{service.name}' leads to port {target}, not to the "
            f"backend's HTTP port {http}"
        )
    return None


def _app_urls(
    world: World, namespace: str, values: dict[str, Any], plugin_id: str
) -> Iterator[tuple[str, str]]:
    """(where, backendUrl) of each app of the plugin's id in a provisioning file the values
    mount from a ConfigMap of the page; ValueError for a file that is not one."""
    for cm_name, key, path in _plugin_files(values):
        cm = world.find(namespace, "ConfigMap", cm_name)
        if cm is None:
            continue  # the missing ConfigMap itself is the references check's to report
        for file, text in _files(cm, key, path):
            for app in _apps(cm, file, text, plugin_id):
                settings = app.get("jsonData")
                where = f"ConfigMap '{cm.name}' ({file})"
                if not isinstance(settings, dict):
                    raise ValueError(f"{where}: the app's jsonData must be a map")
                if app.get("disabled") is True:
                    raise ValueError(
                        f"{where}: the app {plugin_id} is provisioned with disabled: true: "
                        "Grafana keeps it off, with no pages, and no call reaches the backend"
                    )
                yield where, str(settings.get("backendUrl", ""))
    _misplaced(world, namespace, values, plugin_id)


def _misplaced(world: World, namespace: str, values: dict[str, Any], plugin_id: str) -> None:
    """A ConfigMap file that provisions the app but is mounted outside the plugins folder of
    Grafana's provisioning (datasources/, dashboards/...): Grafana reads app provisioning only
    from `<provisioning>/plugins`, so the app is never provisioned (ValueError)."""
    folder = f"{_provisioning(values)}/plugins"
    mounts = values.get("extraConfigmapMounts")
    for mount in mounts if isinstance(mounts, list) else []:
        if not isinstance(mount, dict) or "{{" in str(mount.get("configMap", "{{")):
            continue
        path = str(mount.get("mountPath", "")).rstrip("/")
        placed = posixpath.dirname(path) if mount.get("subPath") else path
        cm = world.find(namespace, "ConfigMap", str(mount["configMap"]))
        if placed == folder or cm is None:
            continue
        key = str(mount.get("subPath") or "")
        texts = [v for k, v in dict(cm.doc.get("data") or {}).items() if not key or k == key]
        for text in texts:
            if _apps(cm, path, str(text), plugin_id):
                raise ValueError(
                    f"ConfigMap '{cm.name}' provisions the app {plugin_id} but is mounted at "
                    f"{path}: Grafana reads app provisioning only from {folder}/"
                )


def provisioning_problem(
    world: World, namespace: str, values: dict[str, Any], data: ReleaseData
) -> str | None:
    """The first problem of the BeTrace app's provisioning in a Grafana release's values."""
    plugin_id = data.current.plugin.id
    try:
        for where, url in _app_urls(world, namespace, values, plugin_id):
            problem = backend_url_problem(world, namespace, url, data)
            if problem is not None:
                return f"{where}: the app {plugin_id}'s jsonData.backendUrl: {problem}"
    except ValueError as exc:
        return str(exc)
    return None


def _loading_problem(
    world: World, namespace: str, values: dict[str, Any], data: ReleaseData
) -> str | None:
    """Why the Grafana of these values, which provisions the app, would not load it, or None.
    Asked only where the values provision the app: a Grafana without it loads nothing of it."""
    plugin_id = data.current.plugin.id
    if next(_app_urls(world, namespace, values, plugin_id), None) is None:
        return None
    return grafana_settings.unsigned_problem(values, plugin_id)


def world_problem(world: World, data: ReleaseData) -> tuple[str, str] | None:
    """(release, problem) of the first Grafana release of the page whose app provisioning the
    world no longer serves: checked again after every step that changes the world (a Service,
    a workload's ports, the ConfigMap itself, another release)."""
    for release in world.releases.values():
        if release.modelled:
            found = provisioning_problem(world, release.namespace, release.values, data)
            found = found or plugin_copy.problem(world, release.namespace, release.values, data)
            found = found or _loading_problem(world, release.namespace, release.values, data)
            if found is not None:
                return release.name, found
    return None


def called_backends(world: World, grafana: K8sObject, plugin_id: str) -> Iterator[K8sObject]:
    """The workloads behind the Services that the app's provisioning, in the ConfigMaps a
    Grafana workload's pods mount, names as its backendUrl: what Grafana's server calls for
    the app's proxy route. A file the gate cannot read names none (the install checked it)."""
    ns = grafana.namespace
    for kind, name, _ in grafana.references():
        cm = world.find(ns, "ConfigMap", name) if kind == "ConfigMap" else None
        for path, text in _files(cm, "*", name) if cm is not None else []:
            try:
                apps = _apps(cm, path, text, plugin_id)  # type: ignore[arg-type]
            except ValueError:
                continue
            for app in apps:
                settings = app.get("jsonData")
                url = settings.get("backendUrl") if isinstance(settings, dict) else None
                found = _service(world, urlsplit(str(url)).hostname or "", ns) if url else None
                service = world.find(found[1], "Service", found[0]) if found else None
                yield from world.behind(found[1], service) if found and service else []
