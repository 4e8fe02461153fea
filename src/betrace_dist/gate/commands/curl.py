"""`curl` (and URLs): the host and port must reach something the page started or forwarded, and
the path must be an endpoint that component serves; JSON bodies must be JSON."""

from __future__ import annotations

import base64
import json
import math
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from ... import backend_env, plugin_build
from ...names import closest, is_number
from ...release import Release
from ...tools import ToolMissing
from .. import grafana_app, grafana_http, live, missing
from ..grafana_chart import GRAFANA_PORT, GRAFANA_PORT_VARIABLE
from ..session import CommandError, Invocation
from ..shellwords import constant_base64, single_quoted, with_typed
from ..world import Listener
from . import proxied
from .flags import Options, options, split_flag

#: OTLP/HTTP paths the collector receives on 4318
_OTLP_HTTP = {("POST", "/v1/traces"), ("POST", "/v1/metrics"), ("POST", "/v1/logs")}


def path_pattern(path: str) -> re.Pattern[str]:
    """A path of the API description (`/v1/rules/{id}`) as a pattern of the paths it takes."""
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "/?$")


def served(inv: Invocation, listener: Listener) -> list[tuple[str, str]]:
    """(method, path) pairs a component serves on one of its ports, by what runs there
    (`listener.role`: a Compose service's image or build target, a port-forward's container
    image; never a name)."""
    release = inv.session.release.current
    role, target_port = listener.role, listener.target_port
    if role == "backend":
        # the HTTP server's port as the backend's own variables set it
        http = backend_env.listening_ports(listener.env, inv.session.release)["http"]
        if http is None:
            variable = release.backend.ports["http"].env
            raise CommandError(
                f"the backend's {variable} comes from a Secret (or is not a port): the gate "
                "cannot tell which of its ports serves HTTP"
            )
        if target_port != http:
            raise CommandError(
                f"port {target_port} of the backend is not its HTTP server's; HTTP is on {http}"
            )
        return [(e.method, e.path) for e in release.backend.endpoints]
    if role == "grafana":
        given = listener.env.get(GRAFANA_PORT_VARIABLE)
        port = int(given) if given and is_number(given) else GRAFANA_PORT
        if target_port != port:
            raise CommandError(
                f"Grafana listens on {port} ({GRAFANA_PORT_VARIABLE}, else its default "
                f"{GRAFANA_PORT}), not on port {target_port}"
            )
        return grafana_http.paths()
    if role == "otel-collector" and target_port == 4318:
        return sorted(_OTLP_HTTP)
    raise CommandError(
        f"nothing known is served over HTTP by {listener.component} on port {target_port}"
    )


def _split(url: str) -> SplitResult:
    """An http(s) URL's parts, or CommandError saying why curl would not take it."""
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 - `http://[::1/` fails here: curl refuses it too
    except ValueError as exc:
        raise CommandError(f"'{url}' is not a URL curl can read ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise CommandError(f"'{url}' is not an http(s) URL")
    return parts


#: How long a client must keep retrying a backend that `nix run` builds first: the first
#: build of upstream's backend took minutes here (about a minute idle, longer under load;
#: upstream.py BUILD_TIMEOUT allows 20), so five minutes, a belief rather than a measure.
BUILD_WAIT = 300.0
#: How long a client must keep retrying a Compose service other than the backend that was just
#: started and that nothing waited for (no healthcheck, or no --wait): Grafana prepares its
#: database on its first start. Not observed (no Grafana runs here): it is the wait the Compose
#: guide gives it (30 tries, 2 s apart), a belief rather than a measure.
CONTAINER_WAIT = 60.0


def _needed(listener: Listener, started: float) -> tuple[float, bool]:
    """How long a client must wait for a listener that may not answer yet, and whether only
    --retry-all-errors retries what it meets (Listener.starting). A Compose container's port
    is Docker's: its userland proxy accepts the connection and, while nothing listens in the
    container, closes it (TCPProxy.clientLoop in moby's cmd/docker-proxy, read in its source,
    not run here: no Docker daemon), so curl gets an empty reply (exit 52), which
    --retry-connrefused does not retry (curl's manual). The backend listens `started` seconds
    after its start (releases.yaml backend.start, re-measured by the probe start-time), any
    other service within CONTAINER_WAIT; what a page starts in the background is given the
    backend's time (kubectl port-forward's, to open its local port, is not measured)."""
    if listener.starting == "build":
        return BUILD_WAIT, False
    if listener.starting == "container":
        return (started if listener.role == "backend" else CONTAINER_WAIT), True
    return started, False


def _retry_seconds(request: _Request, all_errors: bool = False) -> float:
    """How long curl keeps retrying a refused connection (0: it does not): --retry N with
    --retry-connrefused or --retry-all-errors (curl's manual: --retry alone does not retry a
    refused connection; with `all_errors`, only --retry-all-errors counts), N waits of
    --retry-delay, or without it one second doubling up to ten minutes (curl's manual), all
    within --retry-max-time when given."""
    if not request.retry_refused or request.retry <= 0:
        return 0.0
    if all_errors and not request.retry_all:
        return 0.0
    if request.retry_delay is not None:
        total = request.retry * request.retry_delay
    else:
        total = float(sum(min(2**i, 600) for i in range(min(request.retry, 64))))
    if request.retry_max_time:
        total = min(total, request.retry_max_time)
    return total


def _started(listener: Listener, port: int, request: _Request | None, started: float) -> None:
    """A program started in the background may not listen yet: the page waits for it (a
    `sleep`, or curl retrying long enough), or its reader's curl is refused the connection."""
    if not listener.starting:
        return
    needed, all_errors = _needed(listener, started)
    waits = _retry_seconds(request, all_errors) if request is not None else 0.0
    if waits >= needed:
        listener.starting = ""  # this curl waited until it answered
        return
    raise CommandError(_not_waited(listener, port, needed, request))


def _not_waited(
    listener: Listener, port: int, needed: float, request: _Request | None = None
) -> str:
    """What a curl that does not wait for a starting listener meets, and how to wait."""
    if listener.starting == "container":
        sleep = f", or `sleep {math.ceil(needed)}` first" if listener.role == "backend" else ""
        if request is not None and request.retry > 0 and not request.retry_all:
            fix = "add --retry-all-errors to its --retry: only that one retries an empty reply"
        else:
            fix = (
                f"wait for it: `curl --retry {math.ceil(needed / 2)} --retry-delay 2 "
                f"--retry-all-errors ...`{sleep}"
            )
        return (
            f"`{listener.source}` was just started and nothing waited for it to answer (no "
            f"healthcheck that `up --wait` waits for): Docker's port {port} may close the "
            "connection at once (curl: empty reply, which --retry-connrefused does not retry), "
            f"and this curl does not retry it for {needed:g} s; {fix}"
        )
    if listener.starting == "build":
        advice = "`curl --retry 300 --retry-delay 1 --retry-connrefused ...`"
        first = " (it builds the package first, which can take minutes)"
    else:
        advice = (
            "`curl --retry 30 --retry-delay 1 --retry-connrefused ...`, or "
            f"`sleep {math.ceil(needed)}` first"
        )
        first = ""
    return (
        f"`{listener.source}` was started in the background{first}: nothing may listen on port "
        f"{port} yet when curl connects, and this curl does not wait {needed:g} s for it; "
        f"wait for it: {advice}"
    )


def check_url(
    inv: Invocation, url: str, method: str, request: _Request | None = None
) -> tuple[str | None, str | None]:
    """The component that answers the URL (None for a URL off this machine) and, for a call of
    the app's proxy route, the backend path Grafana forwards it to; or CommandError. `request`:
    the curl command's, for how long it retries."""
    parts = _split(url)
    host = parts.hostname or ""
    if not backend_env.is_loopback(host):
        return None, None  # a URL on the reader's own domain (ingress): checked by the chart
    port = backend_env.url_port(url)
    if port is None:
        raise CommandError(f"'{url}': the port is not a number from 1 to 65535")
    listeners = inv.session.world.listeners
    if port not in listeners:
        known = ", ".join(
            f"{p} ({lst.component}, {lst.source})" for p, lst in sorted(listeners.items())
        )
        raise CommandError(
            f"nothing answers on {host}:{port} at this point of the page; "
            + (f"listening: {known}" if known else "no port was published or forwarded yet")
        )
    listener = listeners[port]
    ended = inv.session.world.ended(listener)
    if ended is not None:
        raise CommandError(ended)
    path = parts.path or "/"
    endpoints = served(inv, listener)  # first: what answers there at all
    _started(listener, port, request, inv.session.release.current.backend.start.listening_at_most)
    role = listener.role
    if role == "grafana":
        if path.startswith(_PLUGIN_PROXY):
            forwarded = _through_plugin_proxy(inv, method, path)
            _proxied_backend_runs(inv, listener)
            return role, forwarded
        if grafana_http.served(method, path):
            return role, None
    elif any(m == method and path_pattern(p).match(path) for m, p in endpoints):
        return role, None
    same_path = [m for m, p in endpoints if path_pattern(p).match(path)]
    if same_path:
        raise CommandError(
            f"{listener.component} serves {path} with {', '.join(same_path)}, not {method}"
        )
    names = [p for _, p in endpoints]
    raise CommandError(
        f"{listener.component} (port {port}) serves no {path}{closest(path, names)}; "
        f"it serves: {', '.join(sorted(set(names)))}"
    )


#: where Grafana serves an app's proxy routes (pkg/api/api.go: apiRoute.Any("/plugin-proxy/
#: :pluginId/*", ..., hs.ProxyPluginRequest), read in grafana/grafana's source, not run)
_PLUGIN_PROXY = "/api/plugin-proxy/"


def _route_forwards(route_path: str, rest: str) -> str | None:
    """What a plugin.json route forwards of `rest`, as Grafana matches a route's path: the path
    joined to "/" (path.Join in plugin_proxy.go), then web.Tree, which trims the slashes at
    both ends of the pattern and the path. A plain path matches only itself and forwards
    nothing; `p/*` matches what lies below p and forwards it; `*` forwards the whole path. The
    cases are worked out, and this function held to them, in tests/plugin/
    test_grafana_proxy_model.py. Other patterns and percent-escapes are not modelled: refused."""
    pattern = route_path.removesuffix("/").removeprefix("/")
    wild = pattern == "*" or pattern.endswith("/*")
    if re.search(r"[:?()]|\*\.", pattern) or pattern.count("*") > int(wild):
        raise CommandError(f"the app's plugin.json route path '{route_path}' is not modelled")
    if "%" in rest:
        raise CommandError(f"a percent-escape in the proxy path '{rest}' is not modelled")
    url = posixpath.normpath("/" + rest).strip("/")  # Go's Clean leaves no "//" to trim
    if not wild:
        return "" if url == pattern else None
    below = pattern.removesuffix("*")
    return url[len(below) :] if url.startswith(below) else None


def _proxied_backend_runs(inv: Invocation, listener: Listener) -> None:
    """Grafana's server calls the backend's Service for the app's proxy route (the backendUrl
    of the app's provisioning, grafana_app.called_backends): while the backend's pods were made
    anew and nothing waited for them (World.not_running; the chart's backend Deployment is
    Recreate, so its old pod is gone first), the Service has no ready endpoint, the call is
    refused, and Grafana's proxy answers 502 Bad Gateway (errorHandler of grafana/grafana's
    pkg/util/proxyutil/reverse_proxy.go, read in its source, not run: any error but a cancel or
    a timeout). Told for a Grafana reached through a port-forward."""
    grafana, world = listener.pod_of, inv.session.world
    if grafana is None:
        return
    for workload in grafana_app.called_backends(
        world, grafana, inv.session.release.current.plugin.id
    ):
        problem = world.not_running(workload)
        if problem is not None:
            raise CommandError(
                f"Grafana calls the backend for the app's proxy route, but {problem}: the "
                "Service has no ready endpoint and Grafana answers 502 Bad Gateway; wait "
                f"first: `kubectl rollout status {workload.kind.lower()}/{workload.name} "
                f"--namespace {workload.namespace}`"
            )


def _through_plugin_proxy(inv: Invocation, method: str, path: str) -> str:
    """A call of the app's proxy route: the app's id, a route of the patched plugin.json that
    takes the method and the path, and a backend endpoint at what it forwards (to backendUrl,
    whose path the guides leave empty): the backend path it reaches."""
    data = inv.session.release.current
    plugin_id, _, rest = path.removeprefix(_PLUGIN_PROXY).partition("/")
    if plugin_id != data.plugin.id:
        raise CommandError(
            f"Grafana proxies for no app '{plugin_id}': the app's id is {data.plugin.id}"
        )
    try:
        given = plugin_build.patched_manifest().get("routes")
    except ToolMissing as exc:
        missing.absent(
            exc, "the app's proxy routes are read from upstream's plugin.json", CommandError
        )
    routes: list[dict[str, Any]] = given if isinstance(given, list) else []
    for route in routes:
        if route.get("method") not in (None, "", "*", method):
            continue
        forwarded = _route_forwards(str(route.get("path", "")), rest)
        if forwarded is None:
            continue
        backend = "/" + forwarded
        endpoints = [(e.method, e.path) for e in data.backend.endpoints]
        if any(m == method and path_pattern(p).match(backend) for m, p in endpoints):
            return backend
        raise CommandError(
            f"Grafana forwards {path} to the backend's {backend} (route '{route['path']}' of the "
            f"app's plugin.json), which the backend does not serve with {method}"
            f"{closest(backend, [p for _, p in endpoints])}"
        )
    shown = ", ".join(f"{r.get('method') or 'any'} {r.get('path')}" for r in routes)
    raise CommandError(
        f"Grafana answers 404 'plugin route match not found': no route of the app's plugin.json "
        f"takes {method} {rest}; its routes: {shown or 'none'}"
    )


_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": (int, float),
    "array": list,
    "object": dict,
}


def _is_a(value: object, kind: str) -> bool:
    """JSON's kinds as Python reads them: true is no number and 1.5 no integer."""
    return isinstance(value, _TYPES[kind]) and (kind == "boolean" or not isinstance(value, bool))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


#: what happens to a field the backend does not know, said after its name
_DROPPED = "(unknown fields are dropped silently)"


def check_fields(body: object, spec: dict[str, Any], where: str, answer: bool = False) -> None:
    """Field names and types of a JSON body against the backend's definitions. A request may
    spell a field as the .proto does (snake_case: protojson reads both); an answer uses the JSON
    names only (the gateway's default marshaller), so `answer` compares them as they are."""
    if not isinstance(body, dict):
        raise CommandError(f"{where}: the body must be a JSON object")
    fields = spec.get("fields", {})
    unknown = "(upstream's API description lists no such field)" if answer else _DROPPED
    for name, value in body.items():
        known = str(name) if answer else _camel(name)
        if known not in fields:
            raise CommandError(
                f"{where}: the backend has no field '{name}'{closest(name, list(fields))} "
                f"{unknown}; fields: {', '.join(fields)}"
            )
        if not _is_a(value, fields[known]):
            raise CommandError(f"{where}: '{name}' must be a JSON {fields[known]}")
        _check_values(value, spec.get("values", {}).get(known), f"{where}: '{name}'")
        item_spec = spec.get("items", {}).get(known)
        if item_spec is not None and isinstance(value, list):  # items are specified for arrays
            for index, item in enumerate(value):
                check_fields(item, item_spec, f"{where} {name}[{index}]", answer)
    present = {str(n) if answer else _camel(n) for n in body}
    missing = [n for n in spec.get("required", []) if n not in present]
    if missing:
        raise CommandError(f"{where}: required field(s) missing: {', '.join(missing)}")


def _check_values(value: object, kind: str | None, where: str) -> None:
    """Every value of a map field is of its one type (protojson refuses the whole body
    otherwise: 400, "invalid value for string field")."""
    if kind is None or not isinstance(value, dict):
        return
    for key, item in value.items():
        if not _is_a(item, kind):
            raise CommandError(
                f"{where} maps names to JSON {kind}s, and '{key}' is {json.dumps(item)[:40]}: "
                f"the backend refuses the whole request (400)"
            )


def _requests(release: Release) -> dict[str, dict[str, object]]:
    """Request bodies the backend defines, by "METHOD /path", from the release data
    (releases.yaml backend.endpoints[].request, taken from upstream's API description)."""
    return {
        f"{e.method} {e.path}": e.request.spec()
        for e in release.backend.endpoints
        if e.request is not None
    }


def _check_request(release: Release, method: str, path: str, body: object) -> None:
    for key, spec in _requests(release).items():
        want_method, _, pattern = key.partition(" ")
        if want_method == method and path_pattern(pattern).match(path):
            check_fields(body, spec, f"{method} {path}")


def _body(inv: Invocation, value: str) -> object:
    if value.startswith("@"):
        if not inv.session.where(value[1:]).is_file():
            raise CommandError(f"curl reads the body from '{value[1:]}', which does not exist here")
        value = inv.session.read(value[1:])  # only the page's own files
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"the request body is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None


@dataclass
class _Request:
    """What a curl command line asks for: method, body, whether the body is JSON, the URLs."""

    method: str | None = None
    body: str | None = None
    is_json: bool = False
    signed_in: bool = False  # credentials given: -u, a cookie or an Authorization header
    retry: int = 0  # --retry N
    retry_delay: float | None = None  # --retry-delay SECONDS
    retry_max_time: float | None = None  # --retry-max-time SECONDS
    retry_refused: bool = False  # --retry-connrefused or --retry-all-errors
    retry_all: bool = False  # --retry-all-errors
    urls: list[str] = field(default_factory=list)


def _set_method(request: _Request, flag: str, value: str | None) -> None:
    request.method = value


def _set_body(request: _Request, flag: str, value: str | None) -> None:
    request.body = value
    request.is_json = request.is_json or flag == "--json"


def _set_header(request: _Request, flag: str, value: str | None) -> None:
    if value and value.lower().startswith("content-type:"):
        request.is_json = request.is_json or "json" in value.lower()
    if value and value.lower().startswith(("authorization:", "cookie:")):
        request.signed_in = True


def _set_signed_in(request: _Request, flag: str, value: str | None) -> None:
    request.signed_in = True


def _number(flag: str, value: str | None) -> float:
    try:
        number = float(value or "")
    except ValueError:
        raise CommandError(f"curl: {flag} takes a number, not '{value}'") from None
    if not 0 <= number < 10**9:
        raise CommandError(f"curl: {flag} {value} is out of range")
    return number


def _set_retry(request: _Request, flag: str, value: str | None) -> None:
    if flag == "--retry":
        request.retry = int(_number(flag, value))
    elif flag == "--retry-delay":
        request.retry_delay = _number(flag, value)
    elif flag == "--retry-max-time":
        request.retry_max_time = _number(flag, value)
    else:
        request.retry_refused = True
        request.retry_all = request.retry_all or flag == "--retry-all-errors"


#: the curl options the model reads, by name; every other option is only checked to exist
_HANDLERS = {
    "-X": _set_method,
    "--request": _set_method,
    **dict.fromkeys(("-d", "--data", "--data-raw", "--data-binary", "--json"), _set_body),
    "-H": _set_header,
    "--header": _set_header,
    **dict.fromkeys(("-u", "--user", "-b", "--cookie", "--oauth2-bearer"), _set_signed_in),
    **dict.fromkeys(
        (
            "--retry",
            "--retry-delay",
            "--retry-max-time",
            "--retry-connrefused",
            "--retry-all-errors",
        ),
        _set_retry,
    ),
}


@dataclass(frozen=True)
class _Word:
    """One option of a curl command line as curl reads it, or a URL (`flag` None, the URL in
    `value`), and the arguments it takes up: args[start:end]. `before`: the short options
    written before it in its argument ("-fsS" of "-fsSu"), or ""."""

    flag: str | None
    value: str | None
    start: int
    end: int
    before: str = ""


def _short(arg: str, known: Options) -> tuple[list[str], str | None]:
    """The options of one argument of short options (`-fsS` is -f, -s and -S), as curl reads
    them: one that takes a value takes the rest of the argument (`-uadmin`, `-XPOST`), or the
    next argument when nothing is left (value None)."""
    flags: list[str] = []
    for index, letter in enumerate(arg[1:], 1):
        flag = f"-{letter}"
        if flag not in known.names:
            raise CommandError(f"curl has no option '{flag}'")
        flags.append(flag)
        if flag in known.valued:
            return flags, arg[index + 1 :] or None
    return flags, None


def _words(args: list[str], known: Options) -> list[_Word]:
    """The command line's options and URLs, in order (the last of combined options takes the
    value)."""
    words: list[_Word] = []
    i = 0
    while i < len(args):
        start, arg = i, args[i]
        i += 1
        if not arg.startswith("-") or arg == "-":
            words.append(_Word(None, arg, start, i))
            continue
        before = ""
        if arg.startswith("--"):
            flag, value = split_flag(arg)
            if flag not in known.names:
                raise CommandError(f"curl has no option '{flag}'")
        else:
            flags, value = _short(arg, known)
            flag, before = flags[-1], arg[: len(flags)] if len(flags) > 1 else ""
        if flag in known.valued and value is None:
            value = args[i] if i < len(args) else ""
            i += 1
        words.append(_Word(flag, value, start, i, before))
    return words


def _parse(args: list[str]) -> _Request:
    """The request of curl's arguments."""
    request = _Request()
    known = options("curl")  # curl's own `--help all`: which options exist, which take a value
    for word in _words(args, known):
        if word.flag is None:
            request.urls.append(str(word.value))
            continue
        handler = _HANDLERS.get(word.flag)
        if handler is not None:
            handler(request, word.flag, word.value)
    if not request.urls:
        raise CommandError("curl: no URL")
    return request


def _check_target(
    inv: Invocation, url: str, verb: str, parsed: object, request: _Request
) -> tuple[str | None, str | None]:
    """The component answering the URL, and the backend path Grafana's app proxy forwards it
    to (check_url), with a JSON body and the query string checked against the backend's."""
    listener, forwarded = check_url(inv, url, verb, request)
    parts = urlsplit(url)
    reaches = listener
    if listener is None:  # the reader's own host (an ingress): a path of the backend's is one
        reaches = _backend_off_machine(inv.session.release.current, verb, parts.path)
    if forwarded is not None:
        if not request.signed_in:
            raise CommandError(
                "Grafana answers 401 to an API call from no signed-in user (its /api routes need "
                "one, and anonymous access is off): give -u USER, and curl asks for the password"
            )
        parts, reaches = parts._replace(path=forwarded), "backend"
    if reaches == "backend" and parsed is not None:
        _check_request(inv.session.release.current, verb, parts.path, parsed)
    if reaches == "backend":
        _check_query(inv.session.release.current, verb, parts)
    return listener, forwarded


#: the backend's paths that other services serve too (an OTel Collector's health check, any
#: Prometheus exporter's /metrics): off this machine they say nothing of which service answers
_SHARED_PATHS = frozenset({"/v1/health", "/v1/ready"})


def _backend_off_machine(release: Release, method: str, path: str) -> str | None:
    """A URL off this machine whose path is one the backend serves is taken as a call to the
    backend behind the reader's ingress: its method, body and query are the backend's to
    check (which paths the reader's ingress passes is the chart's to check). Another path is
    another service's (an OTLP collector's /v1/traces), not checked here; so are the paths
    other services share with the backend (/metrics, the health and readiness checks)."""
    if not path.startswith("/v1/") or path in _SHARED_PATHS:
        return None
    methods = [e.method for e in release.backend.endpoints if path_pattern(e.path).match(path)]
    if not methods:
        return None
    if method not in methods:
        raise CommandError(
            f"the backend serves {path} with {', '.join(methods)}, not {method} (a host off "
            "this machine, with a path of the backend's, is taken as the backend behind an "
            "ingress)"
        )
    return "backend"


def _check_query(release: Release, method: str, url: SplitResult) -> None:
    """Every query parameter is one the endpoint takes: the backend answers 200 to one it does
    not know and ignores it, so `?rule_name=x` lists every violation, not x's (run on the real
    backend). Names as upstream's API description spells them, or their proto spelling
    (`rule_id` for `ruleId`), which the gateway takes too."""
    names = [name for name, _ in parse_qsl(url.query, keep_blank_values=True)]
    if not names:
        return
    endpoint = next(
        (e for e in release.backend.endpoints
         if e.method == method and path_pattern(e.path).match(url.path)),
        None,
    )  # fmt: skip
    if endpoint is None:
        return  # check_url has said what is served
    known = (
        sorted(set(endpoint.query.fields) - set(endpoint.query_ignored)) if endpoint.query else []
    )
    spelled = set(known) | {re.sub(r"(?<!^)([A-Z])", r"_\1", k).lower() for k in known}
    for name in names:
        if name in endpoint.query_ignored:
            raise CommandError(
                f"{method} {url.path} ignores the query parameter '{name}' although upstream's "
                "API description lists it (releases.yaml backend.endpoints[].query_ignored, "
                "known issue violations-list-capped): the answer is not filtered by it"
            )
        if name not in spelled:
            takes = f"takes: {', '.join(known)}" if known else "takes none"
            raise CommandError(
                f"{method} {url.path} has no query parameter '{name}'{closest(name, known)} "
                f"(releases.yaml backend.endpoints[].query; it {takes}); the backend would "
                "ignore it and answer as if it were not there"
            )


def _written_password(raw: list[str], typed: dict[str, str]) -> str | None:
    """Why a sign-in (-u USER:PASSWORD, a URL's USER:PASSWORD@, a Basic Authorization header)
    writes Grafana's password into the page, or None. No Grafana of these guides has a password
    a page could know: the Compose stack takes GRAFANA_ADMIN_PASSWORD from the reader's .env,
    the chart generates one at install (or takes the reader's Secret), an existing Grafana has
    its own. A password the shell expands (a variable, a command) is the reader's, unless the
    variable is one the page typed the value of itself (`typed`, World.typed_variables) or the
    command prints text of the page's (`$(printf USER:PASSWORD | base64)`); in single quotes
    a `$` is text; -u USER alone makes curl ask for it."""
    for word in _words(raw, options("curl")):
        value, literal = _credentials(word, typed)
        user, colon, password = value.partition(":")
        expanded = not literal and ("$" in password or "`" in password)
        if colon and password and not expanded:
            return (
                "curl signs in to Grafana with a password written into the page "
                f"({user}:{password}), which is no Grafana's here: the Compose stack's is the "
                "reader's GRAFANA_ADMIN_PASSWORD, the chart's is generated at install; write "
                f'-u {user} (curl asks for it) or -u "{user}:$VARIABLE" of a value the reader '
                "sets"
            )
    return None


def _credentials(word: _Word, typed: dict[str, str]) -> tuple[str, bool]:
    """The USER:PASSWORD a word of curl's command line signs in with, as written ("" if none):
    -u's value, a URL's user information, a Basic Authorization header's decoded value; the
    variables in it the page typed the value of stand for what it typed. True: the word is in
    single quotes, where the shell expands nothing."""
    written = str(word.value)
    quoted = single_quoted(written)
    literal = quoted is not None
    value = quoted if quoted is not None else with_typed(written.strip("'\""), typed)
    if word.flag is None:  # a URL's own user information: http://USER:PASSWORD@host
        return value.partition("://")[2].split("/")[0].rpartition("@")[0], literal
    if word.flag in ("-H", "--header"):
        return _basic(value), True
    return (value if word.flag in ("-u", "--user") else ""), literal


def _basic(header: str) -> str:
    """The USER:PASSWORD a Basic Authorization header carries, when the page wrote it: in
    base64, or through a `$(printf ... | base64)` of text of its own ("" otherwise)."""
    name, _, given = header.partition(":")
    scheme, _, token = given.strip().partition(" ")
    if name.strip().lower() != "authorization" or scheme.lower() != "basic":
        return ""
    printed = constant_base64(token)
    if printed is not None:
        return printed.strip()
    try:
        return base64.b64decode(token.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


def curl(inv: Invocation) -> str | None:
    args = inv.argv[1:]
    request = _parse(args)
    problem = _written_password(inv.command.argv[1:], inv.session.world.typed_variables)
    if problem is not None:
        raise CommandError(problem)
    body = request.body
    parsed = _body(inv, body) if body is not None and request.is_json else None
    verb = request.method or ("POST" if body is not None else "GET")
    live_urls: list[_Live] = []
    rewrites: dict[str, str] = {}
    for url in request.urls:
        reaches, forwarded = _check_target(inv, url, verb, parsed, request)
        if (reaches != "backend" and forwarded is None) or inv.session.live is None:
            continue  # only the backend runs here, on the live tier
        if reaches == "backend":
            port = backend_env.url_port(url) or 80
            live_urls.append(_Live(verb, url, inv.session.world.listeners[port]))
        elif forwarded is not None:
            through = _behind_grafana(inv, url, verb, forwarded)
            rewrites[url] = through.url
            live_urls.append(through)
    if live_urls:  # what the real backend answered: a console block compares it
        argv = [inv.argv[0], *_to_backend(args, rewrites)] if rewrites else list(inv.argv)
        return _run_live(inv, argv, live_urls, writes_out=any(a in _OUTPUT_FLAGS for a in args))
    return None


@dataclass(frozen=True)
class _Live:
    """A URL of the page's curl as the live tier sends it: to the real backend, on the port of
    the listener it stands for (`proxied`: a call of Grafana's app proxy route, rewritten)."""

    method: str
    url: str
    listener: Listener
    proxied: bool = False


def _behind_grafana(inv: Invocation, url: str, method: str, forwarded: str) -> _Live:
    """A call of Grafana's app proxy route as the live tier sends it: to the backend Grafana's
    server calls for the route (proxied.backend_behind), at the path the route forwards
    (`forwarded`) with the call's query, as `http://localhost:PORT/PATH?QUERY`."""
    world = inv.session.world
    grafana = world.listeners[backend_env.url_port(url) or 80]
    listener = proxied.backend_behind(world, grafana, inv.session.release)
    if listener is None:
        raise CommandError(
            "live tier: the backend Grafana's server calls for the app's proxy route cannot be "
            f"told ({grafana.source}), so the call cannot be sent to the real backend"
        )
    query = urlsplit(url).query
    backend = f"http://localhost:{listener.port}{forwarded}" + (f"?{query}" if query else "")
    return _Live(method, backend, listener, proxied=True)


#: curl options for Grafana alone, which the live tier leaves out of a call of the app's proxy
#: route that it sends to the backend: the sign-in Grafana takes (-u), and cookies, which the
#: proxy deletes before it calls the backend (NewApiPluginProxy's director in grafana/grafana's
#: pkg/api/pluginproxy/pluginproxy.go: req.Header.Del("Cookie"), read in its source, not run)
_GRAFANA_ONLY = frozenset({"-u", "--user", "-b", "--cookie"})


def _to_backend(args: list[str], rewrites: dict[str, str]) -> list[str]:
    """The page's curl arguments as the live tier runs them for calls of the app's proxy
    route: each such URL the backend's (`rewrites`), Grafana's own options left out (a short
    one with the options written before it in its argument kept: `-fsSu admin` is `-fsS`),
    everything else as the page wrote it."""
    out: list[str] = []
    for word in _words(args, options("curl")):
        if word.flag is None:
            out.append(rewrites.get(str(word.value), str(word.value)))
        elif word.flag in _GRAFANA_ONLY:
            out += [word.before] if word.before else []
        else:
            out += args[word.start : word.end]
    return out


#: curl options whose output the live tier leaves alone (it then does not read the status)
_OUTPUT_FLAGS = {"-w", "--write-out", "-o", "--output", "-O", "--remote-name", "-I", "--head"}
_MARK = "\n__betrace_gate_status__"


def _run_live(inv: Invocation, argv: list[str], urls: list[_Live], writes_out: bool) -> str:
    """The page's curl (`argv`: as written, or with its calls of Grafana's app proxy route
    rewritten, _to_backend), run for real against the real backend (the live tier, live.py),
    in the page's jail as every command of the page. A call through the proxy route counts
    as the backend's answer: Grafana's reverse proxy passes the backend's status and body
    through (httputil.ReverseProxy; its ModifyResponse only drops Set-Cookie and sets
    Content-Security-Policy: sandbox, pkg/util/proxyutil/reverse_proxy.go and proxyutil.go of
    grafana/grafana, read in its source, not run here). What Grafana adds is not run: its
    sign-in (a wrong password is a 401 no run here shows), the headers it adds to the call
    (X-Grafana-Context, the route's X-API-Key, which the backend is believed to ignore), and
    its own errors when the backend cannot be reached (502, 504; modelled, check_url)."""
    session = inv.session
    assert session.live is not None
    for live_url in urls:
        try:
            session.live.ensure(live_url.listener)
        except live.LiveError as exc:
            raise CommandError(f"live tier: {exc}") from None
    if not writes_out:
        argv = [*argv, "--write-out", _MARK + "%{http_code}"]
    done = session.process(argv, env=live.client_env(session.env))
    out, _, status_text = done.stdout.rpartition(_MARK)
    if writes_out or not is_number(status_text):
        out, status = done.stdout, None
    else:
        status = int(status_text)
    ok = done.returncode == 0 and (status is None or status < 400)
    session.live_tier.ran.append(
        live.Ran(inv.command.line, inv.command.text, status, ok, session.page)
    )
    if not ok:
        said = (out.strip() or done.stderr.strip())[-300:]  # the answer's body, else curl's
        shown = f"HTTP {status}" if status else f"exit code {done.returncode}"
        via = " (through Grafana's app proxy route)" if any(u.proxied for u in urls) else ""
        raise CommandError(f"the real backend answered {shown}{via}: {said}")
    if status is not None and len(urls) == 1:
        _check_answer(inv, urls[0].method, urlsplit(urls[0].url).path, out)
    return out


def _check_answer(inv: Invocation, method: str, path: str, out: str) -> None:
    """A JSON answer has no field the release data does not document for the endpoint."""
    answer = live.json_fields(out)
    endpoints = inv.session.release.current.backend.endpoints
    endpoint = next(
        (e for e in endpoints if e.method == method and path_pattern(e.path).match(path)), None
    )
    if answer is None or endpoint is None or endpoint.response is None:
        return
    documented = sorted(endpoint.response.fields)
    extra = sorted(set(answer) - set(documented))
    if extra:
        raise CommandError(
            f"the real backend's answer to {method} {path} has field(s) the release data does "
            f"not document: {', '.join(extra)} (releases.yaml lists {', '.join(documented)})"
        )


MODELS = {"curl": curl}
