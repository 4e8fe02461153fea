"""What the backend accepts in each variable it reads: one rule per variable, called by every check
that sets one (Compose stack, chart policy, the gate's Kubernetes manifests).

The variables and their meaning come from releases.yaml (`backend.env`, and `backend.runtime_env`
for those the Go runtime reads itself, GOMAXPROCS and GOMEMLIMIT); the rules below encode
what that meaning says a value must look like, as observed on the backend built from the pinned
commit (see the release data and the project's facts): `OTEL_EXPORTER_OTLP_ENDPOINT` is host:port
with no scheme (`http://host:port` fails with "too many colons in address"), and any non-empty
`BETRACE_DEBUG` turns debug logging on, `false` and `0` included. tests/artefacts/
test_chart_backend_env.py proves every variable of the release data has a rule and that each rule
accepts the release data's own default.
"""

from __future__ import annotations

import ipaddress
import math
import re
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from . import quantity
from .artefacts.kube_enums import RESOURCE_DIVISORS
from .names import image_role
from .release import ReleaseData

#: a DNS name or IPv4 address, then a port: what the backend's OTLP gRPC exporter dials
_HOST_PORT = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?:[0-9]{1,5}")
_FALSE_WORDS = {"false", "0", "no", "off"}


#: digits as Go's strconv reads them: ASCII only (str.isdigit also takes '²' and '١٢')
_DIGITS = re.compile(r"[0-9]+")


def _port(value: str) -> str | None:
    if not _DIGITS.fullmatch(value) or not 1 <= int(value) <= 65535:
        return f"is '{value}': a TCP port number from 1 to 65535"
    return None


#: The default ports of OTLP over gRPC and over HTTP (open-telemetry/opentelemetry-proto,
#: docs/specification.md, "OTLP/gRPC" and "OTLP/HTTP"). The backend's exporter speaks gRPC only
#: (backend/internal/observability/otel.go at the pinned commit: otlptracegrpc, otlpmetricgrpc).
#: What a collector answers to gRPC on its HTTP port was not run here: the endpoint is refused
#: on the port's meaning alone.
_OTLP_GRPC_PORT, _OTLP_HTTP_PORT = 4317, 4318


def _otlp_endpoint(value: str) -> str | None:
    if "://" in value:
        parts = urlsplit(value)
        bare = parts.netloc or value.split("://", 1)[1]
        if bare.endswith(f":{_OTLP_HTTP_PORT}"):  # the form is not the only mistake
            bare = bare.removesuffix(str(_OTLP_HTTP_PORT)) + str(_OTLP_GRPC_PORT)
        return (
            f"is '{value}': the backend wants host:port with no scheme, e.g. '{bare}' "
            "(with a scheme its exporter fails: too many colons in address)"
        )
    if not _HOST_PORT.fullmatch(value):
        return f"is '{value}': the backend wants host:port with no scheme, e.g. otel-collector:4317"
    digits = value.rpartition(":")[2]
    port = int(digits)
    if not 1 <= port <= 65535 or digits.startswith("0"):
        return f"is '{value}': the port is not a number from 1 to 65535 without leading zeros"
    if port == _OTLP_HTTP_PORT:
        return (
            f"is '{value}': {port} is the port of OTLP over HTTP, and the backend exports OTLP "
            f"over gRPC, whose port is {_OTLP_GRPC_PORT} (a receiver of OTLP/HTTP does not take "
            "gRPC)"
        )
    return None


def _data_dir(value: str) -> str | None:
    return None if value.strip() else "is empty: the backend needs a writable directory"


def _debug(value: str) -> str | None:
    if value.strip().lower() in _FALSE_WORDS:
        return (
            f"is '{value}', which turns debug logging ON: any non-empty value does; leave the "
            "variable unset to keep debug logging off"
        )
    return None


def _signature_key(value: str) -> str | None:
    if not value.strip():
        return "is empty: the backend then signs with its built-in development key"
    return None


def _milliseconds(value: str) -> str | None:
    """The OpenTelemetry SDK reads a whole number of milliseconds (envconfig.WithDuration); a
    unit such as '1s' is not a number, and the SDK ignores it, keeping its 10 s."""
    if not _DIGITS.fullmatch(value.strip()) or int(value) == 0:
        return f"is '{value}': the SDK wants a whole number of milliseconds above 0, e.g. 1000"
    return None


#: variable -> rule; a rule returns what is wrong with a value ("is 'x': ..."), or None
RULES: dict[str, Callable[[str], str | None]] = {
    "BETRACE_PORT_BACKEND": _port,
    "BETRACE_PORT_GRPC": _port,
    "BETRACE_DATA_DIR": _data_dir,
    "BETRACE_SIGNATURE_KEY": _signature_key,
    "OTEL_EXPORTER_OTLP_ENDPOINT": _otlp_endpoint,
    "OTEL_EXPORTER_OTLP_TIMEOUT": _milliseconds,
    "BETRACE_DEBUG": _debug,
}


#: A whole number as the Go runtimes of both builds read it: ASCII digits, with a '-' at most.
#: The release image's Go 1.24.2 reads with the runtime's own atoi64, which takes no '+'
#: (src/runtime/string.go at golang/go@40f23463); the tests' Go 1.27.3 uses strconv.ParseInt,
#: which does. The rules take only what both take.
_GO_INT = re.compile(r"-?[0-9]+")
#: GOMEMLIMIT's units and their power of 1024 (Go's parseByteCount, src/runtime/string.go)
_BYTE_UNITS = {"B": 0, "KiB": 1, "MiB": 2, "GiB": 3, "TiB": 4}
_GOMEMLIMIT = re.compile(r"(?P<n>-?[0-9]+)(?P<unit>B|KiB|MiB|GiB|TiB)?")


def _gomaxprocs(value: str) -> str | None:
    """Go's schedinit takes a positive whole number that fits 32 bits and silently ignores any
    other value (src/runtime/proc.go of both Go versions)."""
    if _GO_INT.fullmatch(value) and 0 < int(value) < 2**31:
        return None
    return (
        f"is '{value}': Go takes a whole number above 0 and ignores any other value, so the "
        "backend runs as many threads as the node has CPUs"
    )


def _same_in_go(value: str) -> str:
    """The size a Kubernetes quantity means, written as GOMEMLIMIT takes it: Go's unit for Ki
    to Ti, else bytes; '' where the value is no such quantity or Go could not take the size."""
    unit, amount = quantity.suffix(value), quantity.parse(value)
    number = value.removesuffix(unit)
    if unit in ("", "n", "u", "m") or amount is None or not _DIGITS.fullmatch(number):
        return ""  # a size in whole bytes only: no fractions, no exponent
    candidates = [f"{number}{unit[0]}iB"] if unit in ("Ki", "Mi", "Gi", "Ti") else []
    candidates.append(str(int(amount)))
    return next((c for c in candidates if _gomemlimit(c) is None), "")


def _gomemlimit(value: str) -> str | None:
    """Go's readGOMEMLIMIT: empty or 'off' is no limit; else bytes, or a whole number with a
    unit B, KiB, MiB, GiB or TiB; anything else stops the program at start (observed: probe
    go-runtime-env)."""
    found = _GOMEMLIMIT.fullmatch(value)
    if value in ("", "off") or (
        found and 0 <= int(found["n"]) * 1024 ** _BYTE_UNITS[found["unit"] or "B"] < 2**63
    ):
        return None
    same = _same_in_go(value)
    hint = f"write {same}, the same size" if same else "e.g. 536870912 or 512MiB"
    return (
        f"is '{value}': Go takes bytes, or a whole number with B, KiB, MiB, GiB or TiB, and on "
        f"any other value the backend stops at start (fatal error: malformed GOMEMLIMIT); {hint}"
    )


#: the Go runtime's variables (releases.yaml backend.runtime_env), each with its rule
RUNTIME_RULES: dict[str, Callable[[str], str | None]] = {
    "GOMAXPROCS": _gomaxprocs,
    "GOMEMLIMIT": _gomemlimit,
}


def value_problem(name: str, value: str) -> str | None:
    """What is wrong with `value` for backend variable `name` ("is 'x': why"), or None."""
    rule = RULES.get(name) or RUNTIME_RULES.get(name)
    return rule(value) if rule else None


def name_problem(name: str, data: ReleaseData) -> str | None:
    """Why the backend ignores `name`, or None when it reads it (releases.yaml backend.env)."""
    backend = data.current.backend
    if name in backend.not_read:
        return f"is not read by the backend (releases.yaml backend.not_read); remove {name}"
    if name in backend.sdk_env.ignored:
        return (
            "is ignored: the backend's code sets what it would set (the sampler, always on; "
            "gRPC to OTEL_EXPORTER_OTLP_ENDPOINT, without TLS) (releases.yaml "
            f"backend.sdk_env.ignored); remove {name}"
        )
    if name not in backend.read and name not in backend.runtime_env.names:
        return "is not a variable the backend reads; it reads " + ", ".join(sorted(backend.read))
    return None


def env_problems(env: Mapping[str, str | None], data: ReleaseData) -> Iterator[tuple[str, str]]:
    """(name, problem) for each variable of a backend environment; None values come from a
    Secret or ConfigMap and only their name is checked."""
    found = False
    for name, value in env.items():
        problem = name_problem(name, data)
        if problem is None and value is not None:
            problem = value_problem(name, value)
        if problem:
            found = True
            yield name, problem
    if not found:
        yield from _one_port_twice(env, data)


def listening_ports(env: Mapping[str, str | None], data: ReleaseData) -> dict[str, int | None]:
    """The port each of the backend's servers (http, grpc) listens on with this environment:
    its variable, else the release's default; None where a variable is not a port or comes from
    a Secret."""
    out: dict[str, int | None] = {}
    for key, port in data.current.backend.ports.items():
        value = env[port.env] if port.env in env else str(port.port)
        out[key] = int(value) if value is not None and _port(value) is None else None
    return out


def _one_port_twice(env: Mapping[str, str | None], data: ReleaseData) -> Iterator[tuple[str, str]]:
    """Both servers on one port: the second cannot bind it, and the backend exits (release
    data, ports.grpc, probe same-port)."""
    ports = data.current.backend.ports
    listening = listening_ports(env, data)
    if listening["http"] is not None and listening["http"] == listening["grpc"]:
        grpc, http = ports["grpc"], ports["http"]
        yield (
            grpc.env,
            (
                f"is {listening['grpc']}, the port of the HTTP server too ({http.env}): the second "
                "server cannot bind it, and the backend exits"
            ),
        )


def container_env(container: Mapping[str, Any]) -> dict[str, str | None]:
    """A Kubernetes container's env as name -> value: a literal, or what the kubelet gives a
    resourceFieldRef of the container's own resources; None for any other valueFrom. Its
    envFrom is not read here: a backend container with one is refused (env_from_problem)."""
    env = container.get("env")
    entries = [e for e in env if isinstance(e, Mapping)] if isinstance(env, list) else []
    return {str(e.get("name")): _value_of(container, e) for e in entries}


def _value_of(container: Mapping[str, Any], entry: Mapping[str, Any]) -> str | None:
    """An env entry's value as the container sees it: a null value is empty, as Kubernetes
    gives it."""
    if "value" in entry:
        return "" if entry["value"] is None else str(entry["value"])
    return _value_from(container, entry)


def _amounts(resources: object, kind: str) -> Mapping[str, Any]:
    """A container's limits or requests (empty where it has none)."""
    found = resources.get(kind) if isinstance(resources, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def _value_from(container: Mapping[str, Any], entry: Mapping[str, Any]) -> str | None:
    """A model of what the kubelet gives a resourceFieldRef of the container's own resources
    (pkg/api/v1/resource/helpers.go at kubernetes/kubernetes@f9cfc9d9): the amount divided by
    the divisor (an absent or zero one is 1), rounded up. A request the container does not set
    is its limit (the API server's defaulting) or else 0. None for other sources, for a divisor
    the API server refuses, and for a limit that is absent or zero: the kubelet then gives the
    node's allocatable amount, which no manifest tells (a divisor the API server refuses is
    reported by artefacts/kube_enums.py, which holds the rule)."""
    source = entry.get("valueFrom")
    ref = source.get("resourceFieldRef") if isinstance(source, Mapping) else None
    if not isinstance(ref, Mapping) or ref.get("containerName") not in (
        None,
        container.get("name"),
    ):
        return None
    kind, _, resource = str(ref.get("resource", "")).partition(".")
    if kind not in ("limits", "requests"):
        return None
    resources = container.get("resources")
    limit = quantity.parse(_amounts(resources, "limits").get(resource))
    if kind == "requests":
        given = _amounts(resources, "requests").get(resource)
        amount = quantity.parse(given) if given is not None else (limit or 0)
    else:
        amount = limit or None
    divisor = quantity.parse(ref.get("divisor") or "1")
    if divisor == 0:
        divisor = quantity.parse("1")
    if amount is None or divisor is None or divisor not in RESOURCE_DIVISORS.get(resource, set()):
        return None
    return str(math.ceil(amount / divisor))


#: (kind, field) of an envFrom entry's source
_ENV_FROM = (("ConfigMap", "configMapRef"), ("Secret", "secretRef"))


def env_from_problem(container: Mapping[str, Any], data: ReleaseData) -> str | None:
    """Why the variables of a backend container with envFrom cannot be told ("takes variables
    from envFrom (...): ..."), None without one. envFrom makes a variable of each key of its
    ConfigMaps and Secrets, whatever the key, so the backend's port variables may come from
    there, as from a Secret under valueFrom, and any name and value the rules above would refuse
    go unchecked. Secrets the gate cannot read; ConfigMaps it does not: the pod reads one as it
    starts, and a later change of it does not reach the pod until it starts again."""
    entries = [e for e in container.get("envFrom") or [] if isinstance(e, Mapping)]
    if not entries:
        return None
    sources = [
        f"{kind} '{ref.get('name')}'"
        for e in entries
        for kind, key in _ENV_FROM
        if isinstance(ref := e.get(key), Mapping)
    ]
    variable = data.current.backend.ports["http"].env
    return (
        f"takes variables from envFrom ({', '.join(sources) or 'no source'}), which may set "
        f"{variable}: the gate cannot tell which of its ports serves HTTP, nor check the "
        "variables it sets; set each of the backend's variables by name under env (a Secret's "
        "with valueFrom)"
    )


def distribution_default_problems(env: Mapping[str, str | None], data: ReleaseData) -> list[str]:
    """Each variable to which releases.yaml gives a `distribution_default` is set to it."""
    out = []
    for var in data.current.backend.env:
        want = var.distribution_default
        if want is not None and env.get(var.name) != want:
            out.append(
                f"{var.name} is {env.get(var.name)!r}, but releases.yaml's distribution_default "
                f"is {want!r} (the value the probe stop-time proves)"
            )
    return out


def containers(node: Any) -> list[Mapping[str, Any]]:
    """Every container and init container anywhere in a Kubernetes object: a pod's, a
    workload's template, a CronJob's job template, or a custom resource that embeds one."""
    if isinstance(node, list):
        return [c for item in node for c in containers(item)]
    if not isinstance(node, Mapping):
        return []
    found = [
        c
        for key in ("initContainers", "containers")
        for c in node.get(key) or []
        if isinstance(c, Mapping)
    ]
    nested = [v for v in node.values() if isinstance(v, Mapping | list)]
    return found + [c for v in nested for c in containers(v)]


#: the path of the backend's Prometheus metrics (releases.yaml backend.endpoints names its port)
METRICS_PATH = "/metrics"


def metrics_at(data: ReleaseData) -> tuple[Literal["http", "grpc"], int, str]:
    """Where the backend serves its metrics: the port's name and number, and the path."""
    backend = data.current.backend
    metrics = next(e for e in backend.endpoints if e.path == METRICS_PATH)
    return metrics.port, backend.ports[metrics.port].port, metrics.path


def _pod_of(doc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod an object runs: a Pod itself, a workload's template, a CronJob's job's."""
    if doc.get("kind") == "Pod":
        return doc
    spec = doc.get("spec")
    if isinstance(spec, Mapping) and isinstance(spec.get("jobTemplate"), Mapping):
        spec = spec["jobTemplate"].get("spec")
    template = spec.get("template") if isinstance(spec, Mapping) else None
    return template if isinstance(template, Mapping) else None


#: which containers of an object run the backend (the object, the container)
BackendContainer = Callable[[Mapping[str, Any], Mapping[str, Any]], bool]


def by_image(data: ReleaseData) -> BackendContainer:
    """Containers of the project's backend image, by its name under the project's registry
    (names.image_role): what an object says of itself when nothing else is known."""
    registry = data.project.registry
    return lambda _doc, c: image_role(str(c.get("image", "")), registry) == "backend"


def scrape_problems(
    doc: Mapping[str, Any], data: ReleaseData, backend: BackendContainer | None = None
) -> list[str]:
    """The scrape annotations of a pod that runs the backend: Prometheus's `role: pod`
    relabelling scrapes the pod's `prometheus.io/port` at `prometheus.io/path`. The port must
    be one something of the pod serves: the backend's metrics port (its HTTP port, moved by
    the container's own BETRACE_PORT_BACKEND, as the chart's backend.ports.http does) or a
    port another container declares (a sidecar exporter); on the backend's, the path is its
    metrics path."""
    pod = _pod_of(doc)
    metadata = pod.get("metadata") if pod is not None else None
    spec = pod.get("spec") if pod is not None else None
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    if not isinstance(annotations, Mapping) or not isinstance(spec, Mapping):
        return []
    ours = backend or by_image(data)
    running = [c for c in spec.get("containers") or [] if isinstance(c, Mapping)]
    backends = [c for c in running if ours(doc, c)]
    if not backends:
        return []
    name, default, path = metrics_at(data)
    http = data.current.backend.ports[name].env
    metrics = {_moved(container_env(c).get(http), default) for c in backends}
    others = {
        str(port.get("containerPort"))
        for c in running
        if c not in backends
        for port in c.get("ports") or []
        if isinstance(port, Mapping)
    }
    port = annotations.get("prometheus.io/port")
    out = []
    where = f"the backend serves its metrics at GET {path} on port {', '.join(sorted(metrics))}"
    why = f"{where} ({name}; releases.yaml backend.endpoints and backend.ports)"
    if port is not None and str(port) not in metrics | others:
        out.append(f"pod annotation prometheus.io/port is '{port}', which nothing of the pod "
                   f"serves: {why}, and Prometheus would scrape nothing there")  # fmt: skip
    scraped = annotations.get("prometheus.io/path")
    on_backend = port is None or str(port) in metrics
    if scraped is not None and on_backend and str(scraped) != path:
        out.append(f"pod annotation prometheus.io/path is '{scraped}': {why}")
    return out


def _moved(value: str | None, default: int) -> str:
    """The port a BETRACE_PORT_* value gives (the default when unset, empty or not a number:
    env_problems refuses those)."""
    return value if value and _DIGITS.fullmatch(value) else str(default)


def manifest_problems(
    docs: Iterable[Mapping[str, Any]], data: ReleaseData, backend: BackendContainer | None = None
) -> list[str]:
    """Problems of every backend container in Kubernetes objects (a page's manifests): its
    variables by the rules above, an envFrom, which keeps them from being told, and the scrape
    annotations of its pod. `backend` says which containers run the backend (by default, those
    of the project's backend image, by_image)."""
    ours = backend or by_image(data)
    out: list[str] = []
    for doc in docs:
        where = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        out += [f"{where}: {problem}" for problem in scrape_problems(doc, data, ours)]
        for c in containers(doc):
            if not ours(doc, c):
                continue
            env_from = env_from_problem(c, data)
            if env_from is not None:
                out.append(f"{where} container {c.get('name')} {env_from}")
            for var, problem in env_problems(container_env(c), data):
                out.append(f"{where} container {c.get('name')}: {var} {problem}")
    return out


# --- the app's backend URL ----------------------------------------------------------------------

#: The port a URL without one goes to, by scheme.
DEFAULT_PORTS = {"http": 80, "https": 443}


def url_port(url: str) -> int | None:
    """The port an http(s) `url` goes to (its scheme's when it names none); None for another
    scheme, a URL urllib cannot split (`http://[::1`) or a port that is not one (a word, 0, a
    leading zero)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if port is None:
        return DEFAULT_PORTS.get(parts.scheme)
    written = parts.netloc.rpartition(":")[2]
    return port if port > 0 and not written.startswith("0") else None


def _url_host(host: str) -> bool:
    """A DNS name or IPv4 address (_HOST_PORT's host), or an IPv6 address."""
    if _HOST_PORT.fullmatch(f"{host}:1"):
        return True
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def backend_url_problem(url: str, tls: bool = False) -> str | None:
    """What keeps `url` from being the app's backendUrl, whoever checks it (a page's Grafana,
    the Compose stack, the chart): Grafana's server calls it through the app's proxy route
    (patches/grafana-betrace-app/0002), which appends the backend's own paths (/v1/...), so it
    ends at the host and port; and the backend serves plain HTTP only (release data, ports.http,
    probe plain-http). `tls` allows https, for a backend behind a proxy of the reader's.
    Inside Grafana's pod, localhost is Grafana's own pod, never the backend's."""
    if any(c.isspace() or not c.isprintable() for c in url):
        return f"{url!r} holds a space or a control character, which no URL may (RFC 3986)"
    parts = urlsplit(url) if url_port(url) is not None else None
    host = (parts.hostname if parts is not None else None) or ""
    if parts is None or parts.scheme not in DEFAULT_PORTS or not _url_host(host):
        return f"'{url}' is not an http(s) URL with a host and a port from 1 to 65535"
    if is_loopback(host):
        return (
            f"'{url}': Grafana's server calls it from Grafana's pod or container, where "
            f"{host} is Grafana itself; name the backend's Service"
        )
    if parts.scheme == "https" and not tls:
        return f"'{url}': the backend serves plain HTTP (it has no TLS setting); use http://"
    if parts.path not in ("", "/") or parts.query:
        return (
            f"'{url}': the app's route appends the backend's own paths (/v1/...) to backendUrl, "
            "so it ends at the host and port"
        )
    return None


def host_and_port(value: str) -> tuple[str, int | None]:
    """The host and port an address names: an http(s) URL's (url_port), or a bare `host:port`
    as the backend's OTLP endpoint is written (_HOST_PORT; `[::1]:port` too); else ("", None)."""
    port = url_port(value)
    if port is not None:
        return urlsplit(value).hostname or "", port
    host, _, digits = value.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if (_HOST_PORT.fullmatch(value) or bracketed) and digits.isdigit():
        return host.strip("[]"), int(digits)
    return "", None


def is_loopback(host: str) -> bool:
    """Whether a URL's host is this machine: localhost (with or without its final dot), a
    loopback or unspecified address, also written short (`127.1`, `0`, as curl reads them)."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        try:  # the short IPv4 forms curl and inet_aton take: 127.1, 0, 2130706433
            address = ipaddress.ip_address(socket.inet_aton(name))
        except OSError:
            return False
    return address.is_loopback or address.is_unspecified
