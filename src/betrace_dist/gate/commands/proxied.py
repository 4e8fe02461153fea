"""The backend behind Grafana's app proxy route, for the live tier: no Grafana runs here, but
the backend Grafana's server calls for the route can, so a call through the route is sent to
the real backend that stands for that one (curl.py `_run_live`).

Which backend: for a Compose stack, the service the Grafana service's BETRACE_BACKEND_URL
names (the stack's provisioning file gives it to the app as its backendUrl); for a Grafana in
Kubernetes, the workload behind the Service the app's backendUrl names
(grafana_app.called_backends). Where the page reaches that backend on a port of its own too
(a published port, a port-forward), the live tier serves it there, so that the two kinds of
call meet one backend and what one wrote the other reads; otherwise on a port of the jail's
loopback that nothing of the page holds, with the environment its artefact gives it, as a
port-forward to it would.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from ... import backend_env
from ...release import ReleaseData
from .. import grafana_app
from ..world import K8sObject, Listener, World
from .compose import BACKEND_URL_VARIABLE


def backend_behind(world: World, grafana: Listener, data: ReleaseData) -> Listener | None:
    """The listener of the backend Grafana's server calls for the app's proxy route, or None
    where the page's Grafana names none the models can tell."""
    if grafana.pod_of is not None:
        return _kubernetes(world, grafana.pod_of, data)
    if grafana.owner:
        return _compose(world, grafana, data)
    return None


def _http(env: Mapping[str, str | None], data: ReleaseData) -> int:
    port = backend_env.listening_ports(env, data)["http"]
    return port if port is not None else data.current.backend.ports["http"].port


def _compose(world: World, grafana: Listener, data: ReleaseData) -> Listener | None:
    services = (world.compose_projects.get(grafana.owner) or {}).get("services") or {}
    own = services.get(grafana.source.removeprefix("compose service ")) or {}
    url = (own.get("environment") or {}).get(BACKEND_URL_VARIABLE)
    host = (urlsplit(str(url)).hostname or "").lower() if url else ""
    name = next((n for n in services if n.lower() == host), None)  # DNS names ignore case
    if name is None:
        return None  # the stack's rules (compose._stack_problem) said what is wrong
    given = services[name].get("environment") or {}
    env = {k: str(v) for k, v in given.items() if v is not None}
    source = f"compose service {name}"
    published = [
        lst
        for lst in world.listeners.values()
        if lst.owner == grafana.owner and lst.source == source and lst.role == "backend"
    ]
    return _served(world, published, source, env, data)


def _kubernetes(world: World, grafana: K8sObject, data: ReleaseData) -> Listener | None:
    for workload in grafana_app.called_backends(world, grafana, data.current.plugin.id):
        container = next(
            (c for c in workload.running() if world.role(workload, c, data) == "backend"), None
        )
        if container is None:
            continue
        forwarded = [
            lst
            for lst in world.listeners.values()
            if lst.pod_of is not None
            and lst.pod_of.identity == workload.identity
            and lst.role == "backend"
        ]
        source = f"{workload.kind} '{workload.name}'"
        return _served(world, forwarded, source, backend_env.container_env(container), data)
    return None


def _served(
    world: World,
    reached: list[Listener],
    source: str,
    env: Mapping[str, str | None],
    data: ReleaseData,
) -> Listener:
    """The page's own listener of the backend on its HTTP port, or one on a free port of the
    jail's loopback (its gRPC port beside it free too: live.LiveBackend.ensure)."""
    http = _http(env, data)
    mine = next((lst for lst in reached if lst.target_port == http), None)
    if mine is not None:
        return mine
    port = http
    while (port in world.listeners or port + 1 in world.listeners) and port < 65533:
        port += 2
    return Listener(port, "backend", http, f"{source}, behind Grafana", env, role="backend")
