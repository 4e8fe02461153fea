"""The probes, one small function each, registered by the name releases.yaml gives (`probe:`).

Each `measure_*` runs inside the probe's network namespace (see run.py) with `params` computed
on the host from the release data (and, for the artefact probes, from the rendered artefacts).
Each `expect_*` states what the fact in releases.yaml claims, value by value; numbers come from
the release data wherever it holds them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import tools
from ..backend_run import EVALUATION_LIMIT, violation_kind
from . import Expect, Probe, at_least, at_most, contains, equal, exporter
from .lab import Answer, Backend, Receiver, grpc_status, grpc_stream_status, listening

if TYPE_CHECKING:
    from ..release import ReleaseData

#: Where a probe works inside its namespace: a private tmpfs (run.py mounts it), and a directory
#: that is read-only even for root (run.py remounts it).
WORK = Path("/tmp/probe")  # noqa: S108 (a tmpfs of the probe's own namespace)
READ_ONLY = Path("/tmp/read-only")  # noqa: S108
#: The OTLP port the lab's receiver listens on (in the probe's own namespace).
OTLP_PORT = 4317

#: The Compose guide's rule and a trace that breaks it (a large charge, fraud check skipped).
RULE = {
    "name": "no-fraud-skip-on-large-charge",
    "description": "Large charges must not skip the fraud check",
    "expression": "when { payment.charge.where(amount > 1000) } never { payment.skip_fraud_check }",
    "enabled": True,
    "severity": "HIGH",
}


def breaking_trace(trace_id: str) -> list[dict[str, Any]]:
    charge: dict[str, Any] = {
        "traceId": trace_id,
        "spanId": "00f067aa0ba902b7",
        "name": "payment.charge",
    }
    charge |= {"startTime": "1767225600000000000", "endTime": "1767225600050000000"}
    charge["attributes"] = {"amount": "1500"}
    skip: dict[str, Any] = {
        "traceId": trace_id,
        "spanId": "b7ad6b7169203331",
        "name": "payment.skip_fraud_check",
    }
    skip |= {"parentSpanId": "00f067aa0ba902b7", "startTime": "1767225600010000000"}
    skip |= {"endTime": "1767225600020000000", "attributes": {}}
    return [charge, skip]


PROBES: dict[str, Probe] = {}


def register(probe: Probe) -> Probe:
    PROBES[probe.name] = probe
    return probe


def _ports(data: ReleaseData) -> dict[str, Any]:
    ports = data.current.backend.ports
    return {"http": ports["http"].port, "grpc": ports["grpc"].port}


def backend(
    params: Mapping[str, Any],
    name: str = "data",
    offset: int = 0,
    env: Mapping[str, str] | None = None,
    to_receiver: bool = True,
) -> Backend:
    """A backend of this probe on the release's ports (+ offset), with `env`, reporting to the
    lab's OTLP receiver unless `env` names an endpoint or `to_receiver` is False."""
    sent = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"127.0.0.1:{OTLP_PORT}"} if to_receiver else {}
    sent |= dict(env or {})
    return Backend(
        Path(params["program"]),
        WORK / name,
        params["http"] + offset,
        params["grpc"] + offset,
        sent,
    )


@contextlib.contextmanager
def receiver_running() -> Iterator[Receiver]:
    """The lab's OTLP receiver, for the probe's backends to report to."""
    otlp = Receiver(OTLP_PORT).start()
    try:
        yield otlp
    finally:
        otlp.stop()


@contextlib.contextmanager
def started(params: Mapping[str, Any]) -> Iterator[Backend]:
    """The lab's receiver and this probe's backend, started; killed at the end, measurements
    taken (a probe that measures a stop makes it itself, before)."""
    with receiver_running():
        api = backend(params).start()
        try:
            yield api
        finally:
            api.stop(signal.SIGKILL)


def send_and_await(api: Backend, spans: list[dict[str, Any]]) -> Answer:
    """POST the spans, then wait until the backend has evaluated their traces and recorded what
    they broke (backend_run.traces_settled: events of its log, never a fixed pause)."""
    mark = api.log_mark()
    answer = api.post_json("/v1/spans", {"spans": spans})
    await_or_fail(api, {span["traceId"] for span in spans}, mark)
    return answer


def await_or_fail(
    api: Backend, trace_ids: set[str], mark: int, limit: float = EVALUATION_LIMIT
) -> None:
    """`api.await_traces`, and a probe that stops with the reason when the backend never said
    it evaluated them: a measurement taken then would be of nothing."""
    if not api.await_traces(trace_ids, mark, limit):
        raise RuntimeError(
            f"the backend did not log the evaluation of traces {sorted(trace_ids)} within "
            f"{limit:g} s"
        )


def violations(api: Backend, rule: str = str(RULE["name"])) -> int:
    answer = api.call("GET", f"/v1/violations?ruleId={rule}")
    return int((answer.json() or {}).get("totalCount") or 0)


def violation_messages(api: Backend, rule: str) -> list[str]:
    """The messages of a rule's violations, as the API lists them (up to 1,000)."""
    listed = api.call("GET", f"/v1/violations?ruleId={rule}&limit=1000").json() or {}
    return [str(v.get("message", "")) for v in listed.get("violations") or []]


def traffic(api: Backend) -> None:
    """API calls just before a stop: the case in which stops were slowest."""
    for n in range(3):
        api.post_json("/v1/spans", {"spans": breaking_trace(f"{n:032x}")})
        api.call("GET", "/v1/rules")


# --- bound addresses -------------------------------------------------------------------------


def measure_bound(params: Mapping[str, Any]) -> dict[str, Any]:
    with started(params):
        found = [a for a in listening() if not a.endswith(f":{OTLP_PORT}")]
    return {"listening": found}


def expect_bound(data: ReleaseData) -> dict[str, Expect]:
    ports = _ports(data)
    return {"listening": equal([f"*:{ports['http']}", f"*:{ports['grpc']}"])}


register(Probe("bound-addresses", measure_bound, expect_bound, _ports))


# --- readiness -------------------------------------------------------------------------------


def _without_uptime(text: str) -> object:
    body = json.loads(text)
    body.pop("uptimeSeconds", None)
    return body


def measure_ready(params: Mapping[str, Any]) -> dict[str, Any]:
    with receiver_running():
        api = backend(params)
        api.data = READ_ONLY
        api.start()
        health, ready = api.call("GET", "/v1/health"), api.call("GET", "/v1/ready")
        create = api.post_json("/v1/rules", RULE)
        api.stop(signal.SIGKILL)
    return {
        "ready_status": ready.status,
        "ready_equals_health": _without_uptime(ready.body) == _without_uptime(health.body),
        "ready_body_status": (ready.json() or {}).get("status"),
        "rule_write_status": create.status,
    }


def expect_ready(data: ReleaseData) -> dict[str, Expect]:
    return {
        "ready_status": equal(200),
        "ready_equals_health": equal(True),
        "ready_body_status": equal("HEALTHY"),
        "rule_write_status": equal(500),
    }


register(Probe("ready-equals-health", measure_ready, expect_ready, _ports))


def measure_query(params: Mapping[str, Any]) -> dict[str, Any]:
    """How GET /v1/violations reads its query string: one violation recorded, then asked for
    another rule's, by the API description's name, its proto spelling and a name it lacks."""
    with started(params) as api:
        api.post_json("/v1/rules", RULE)
        send_and_await(api, breaking_trace("c" * 32))

        def count(query: str) -> int:
            answer = api.call("GET", f"/v1/violations?{query}")
            return int((answer.json() or {}).get("totalCount") or 0)

        return {
            "json_name_filters": count("ruleId=other"),
            "proto_name_filters": count("rule_id=other"),
            "unknown_name_ignored": count("rule_name=other"),
        }


def expect_query(data: ReleaseData) -> dict[str, Expect]:
    # the gate's curl model refuses a parameter the endpoint does not take, and accepts both
    # spellings of one it does (commands/curl.py _check_query): these are why
    return {
        "json_name_filters": equal(0),
        "proto_name_filters": equal(0),
        "unknown_name_ignored": at_least(1, "violations"),
    }


register(Probe("query-parameters", measure_query, expect_query, _ports))


def measure_store_refused(params: Mapping[str, Any]) -> dict[str, Any]:
    """A create that rules.json cannot take, what the API then does with that rule's name, and
    what the store writes once it works again. The store writes rules.json.tmp and renames it:
    a folder of that name makes the write fail, for root too, until the probe removes it."""
    path = f"/v1/rules/{RULE['name']}"
    with receiver_running():
        api = backend(params)
        blocker = api.data / "rules.json.tmp"
        blocker.mkdir(parents=True)
        api.start()
        create = api.post_json("/v1/rules", RULE)
        read = api.call("GET", path)
        again = api.post_json("/v1/rules", RULE)
        delete = api.call("DELETE", path)
        never = api.call("DELETE", "/v1/rules/never-created")
        put_never = api.call("PUT", "/v1/rules/never-created", json.dumps(RULE))
        blocker.rmdir()
        other = api.post_json("/v1/rules", RULE | {"name": "written-later"})
        stored = json.loads((api.data / "rules.json").read_text(encoding="utf-8") or "{}")
        writable = api.post_json("/v1/rules", RULE)
        api.stop(signal.SIGKILL)
    return {
        "create": create.status,
        "create_message": create.body[:200],
        "get_after": read.status,
        "post_again": again.status,
        "delete_after": delete.status,
        "delete_message": delete.body[:200],
        "delete_never_created": never.status,
        "put_never_created": put_never.status,
        "other_rule_once_writable": other.status,
        "refused_rule_in_file": RULE["name"] in stored,
        "post_once_writable": writable.status,
    }


def expect_store_refused(data: ReleaseData) -> dict[str, Expect]:
    # the distribution's backend, with patches 0005 (the refused rule does not exist, and the
    # store still refuses it) and 0006 (an unknown rule is not found). Upstream's, measured by
    # this probe on its build: GET 404, a second POST 409 "rule already exists", DELETE 400
    # "invalid transition from validated", 400 "invalid transition from nonexistent" for a PUT
    # and a DELETE of a rule never created, the refused rule written into rules.json by the next
    # change, and a POST of it once the store works 409.
    return {
        "create": equal(500),
        "create_message": contains("failed to persist rule"),
        "get_after": equal(404),
        "post_again": equal(500),
        "delete_after": equal(404),
        "delete_message": contains("rule not found"),
        "delete_never_created": equal(404),
        "put_never_created": equal(404),
        "other_rule_once_writable": equal(200),
        "refused_rule_in_file": equal(False),
        "post_once_writable": equal(200),
    }


register(Probe("store-refused-rule", measure_store_refused, expect_store_refused, _ports))


def measure_rule_name_in_url(params: Mapping[str, Any]) -> dict[str, Any]:
    """Rule names the rule's URL (/v1/rules/{id}) cannot carry, and one it can: a slash, "..",
    and a name with dots inside."""
    with started(params) as api:
        slash = api.post_json("/v1/rules", RULE | {"name": "team/slow-query"})
        dots = api.post_json("/v1/rules", RULE | {"name": ".."})
        dotted = api.post_json("/v1/rules", RULE | {"name": "team.slow-query"})
        read = api.call("GET", "/v1/rules/team.slow-query")
        rules = (api.call("GET", "/v1/rules").json() or {}).get("rules", [])
    listed = [r.get("name") for r in rules if isinstance(r, dict)]
    return {
        "slash": slash.status,
        "slash_message": slash.body[:300],
        "dots": dots.status,
        "dotted": dotted.status,
        "dotted_read": read.status,
        "rules_listed": sorted(n for n in listed if isinstance(n, str)),
    }


def expect_rule_name_in_url(data: ReleaseData) -> dict[str, Expect]:
    # the distribution's backend, with patch 0007. The series before it, measured by hand with
    # these calls: POST of "team/slow-query" and of ".." answered 200, and GET and DELETE of
    # /v1/rules/team%2Fslow-query and /v1/rules/team/slow-query answered 404; GET of
    # /v1/rules/.. answered 307 to /v1 (only /v1/rules/%2E%2E reached the rule).
    return {
        "slash": equal(400),
        "slash_message": contains("cannot be a segment of the rule's URL"),
        "dots": equal(400),
        "dotted": equal(200),
        "dotted_read": equal(200),
        "rules_listed": equal(["team.slow-query"]),
    }


register(Probe("rule-name-in-url", measure_rule_name_in_url, expect_rule_name_in_url, _ports))


def _series(api: Backend, prefix: str) -> dict[str, str]:
    """The samples of GET /metrics whose name starts with `prefix` (name with labels -> value),
    histogram buckets left out (their count and sum say the same)."""
    text = api.call("GET", "/metrics").body
    samples = (line.rpartition(" ") for line in text.splitlines() if line.startswith(prefix))
    return {name: value for name, _, value in samples if "_bucket{" not in name}


def _betrace_series(api: Backend) -> dict[str, str]:
    return _series(api, "betrace_")


def _moved(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The samples that appeared or changed (the names, without labels)."""
    changed = {k for k, v in after.items() if before.get(k) != v}
    return sorted({k.partition("{")[0] for k in changed})


def measure_metrics_after_traffic(params: Mapping[str, Any]) -> dict[str, Any]:
    """Which `betrace_*` series of /metrics move when a rule is created, and when spans come
    in and break it (a violation recorded)."""
    with started(params) as api:
        idle = _betrace_series(api)
        api.post_json("/v1/rules", RULE)
        ruled = _betrace_series(api)
        send_and_await(api, breaking_trace("d" * 32))
        violations = (api.call("GET", "/v1/violations").json() or {}).get("violations") or []
        busy = _betrace_series(api)
        api.post_json("/v1/rules", RULE | {"name": "disabled-rule", "enabled": False})
        with_disabled = _betrace_series(api)
        for name in (RULE["name"], "disabled-rule"):
            api.call("DELETE", f"/v1/rules/{name}")
        left = (api.call("GET", "/v1/rules").json() or {}).get("totalCount")
        deleted = _betrace_series(api)
    return {
        "after_a_rule": ", ".join(_moved(idle, ruled)),
        "rules_active": ruled.get("betrace_rules_active"),
        "violations_recorded": len(violations),
        "after_spans_and_a_violation": _moved(ruled, busy),
        "rules_active_with_a_disabled_rule": with_disabled.get("betrace_rules_active"),
        "rules_listed_after_deleting_both": left,
        "rules_active_after_deleting_both": deleted.get("betrace_rules_active"),
    }


def expect_metrics_after_traffic(data: ReleaseData) -> dict[str, Expect]:
    # what the Kubernetes guide's metrics section and known issue metrics-count-no-spans say:
    # the rule series move; nothing counts spans or violations (span_service.go evaluates with
    # RuleEngine.EvaluateAll, which records no metric; the instrumented
    # EvaluateAllWithObservability is not on the path of POST /v1/spans)
    return {
        "after_a_rule": contains("betrace_rule_load_total"),
        "rules_active": equal("1"),
        "violations_recorded": at_least(1, "violations"),
        "after_spans_and_a_violation": equal([]),
        # the gauge is the number of rules compiled into the engine, set only when one is
        # compiled (engine_observability.go): a disabled rule counts, a deletion lowers nothing
        "rules_active_with_a_disabled_rule": equal("2"),
        "rules_listed_after_deleting_both": equal(0),
        "rules_active_after_deleting_both": equal("2"),
    }


register(
    Probe(
        "metrics-after-traffic",
        measure_metrics_after_traffic,
        expect_metrics_after_traffic,
        _ports,
    )
)


# --- what the log gets per span, trace and violation ------------------------------------------


def quiet_trace(trace_id: str, spans: int) -> list[dict[str, Any]]:
    """A trace of `spans` spans that breaks no rule of the probe (names RULE does not use)."""
    return [
        {
            "traceId": trace_id,
            "spanId": f"{n + 1:016x}",
            "name": "inventory.check",
            "startTime": "1767225600000000000",
            "endTime": "1767225600050000000",
            "attributes": {},
        }
        for n in range(spans)
    ]


def _lines_for(api: Backend, spans: list[dict[str, Any]]) -> int:
    """The lines the backend's log gained for these spans, from the POST until their trace was
    evaluated and its violations recorded."""
    mark = api.log_mark()
    send_and_await(api, spans)
    return len(api.text(mark).splitlines())


def measure_log_lines(params: Mapping[str, Any]) -> dict[str, Any]:
    """Lines the backend logs for a trace of one span and of three spans breaking no rule,
    and for the Compose guide's trace of two spans breaking its rule once: from which the lines
    per span, per trace and per recorded violation (the lab's receiver takes the backend's
    telemetry, so no export error lands between them)."""
    with started(params) as api:
        api.post_json("/v1/rules", RULE)
        one = _lines_for(api, quiet_trace("e" * 31 + "1", 1))
        three = _lines_for(api, quiet_trace("e" * 31 + "3", 3))
        broken = _lines_for(api, breaking_trace("e" * 31 + "b"))
        recorded = violations(api)
    per_span, rest = divmod(three - one, 2)
    per_trace = one - per_span
    return {
        "lines_per_span": per_span if rest == 0 else (three - one) / 2,
        "lines_per_trace": per_trace,
        "lines_per_violation": broken - 2 * per_span - per_trace,
        "violations_recorded": recorded,
        "lines": {"one_span": one, "three_spans": three, "two_spans_one_violation": broken},
    }


def expect_log_lines(data: ReleaseData) -> dict[str, Expect]:
    log = data.current.backend.log  # releases.yaml backend.log
    return {
        "lines_per_span": equal(log.lines_per_span),
        "lines_per_trace": equal(log.lines_per_trace),
        "lines_per_violation": equal(log.lines_per_violation),
        "violations_recorded": equal(1),
    }


register(Probe("log-lines", measure_log_lines, expect_log_lines, _ports))


# --- body sizes ------------------------------------------------------------------------------


def _body_of(size: int) -> bytes:
    """A JSON body of exactly `size` bytes: one span whose one attribute fills it."""
    span = {"traceId": "0" * 31 + "1", "spanId": "1" * 16, "name": "probe.size", "attributes": {}}
    empty = json.dumps({"spans": [span | {"attributes": {"fill": ""}}]})
    span["attributes"] = {"fill": "x" * (size - len(empty))}
    body = json.dumps({"spans": [span]}).encode()
    assert len(body) == size
    return body


def _body_params(data: ReleaseData) -> dict[str, Any]:
    backend_ = data.current.backend
    return _ports(data) | {
        "grpc_limit": backend_.limit("request_body").value,
        "http_limit": backend_.limit("http_request_body").value,
    }


def measure_body(params: Mapping[str, Any]) -> dict[str, Any]:
    margin = 64 * 1024
    sizes = {
        "below_grpc_limit": params["grpc_limit"] - margin,
        "above_grpc_limit": params["grpc_limit"] + margin,
        "below_http_limit": params["http_limit"] - margin,
        "above_http_limit": params["http_limit"] + margin,
    }
    out: dict[str, Any] = {}
    with started(params) as api:
        for key, size in sizes.items():
            answer = api.call("POST", "/v1/spans", _body_of(size))
            out[key] = answer.status
            out[f"{key}_message"] = answer.body[:200]
    return out


def expect_body(data: ReleaseData) -> dict[str, Expect]:
    return {
        "below_grpc_limit": equal(200),
        "above_grpc_limit": equal(429),
        "above_grpc_limit_message": contains("grpc: received message larger than max"),
        "below_http_limit": equal(429),
        "above_http_limit": equal(400),
        "above_http_limit_message": contains("http: request body too large"),
    }


register(Probe("body-size", measure_body, expect_body, _body_params))


# --- the OpenTelemetry SDK's variables --------------------------------------------------------

#: a loopback address with no listener in the probe's namespace (for variables to point at)
NOTHING_LISTENS_HERE = "127.0.0.1:4998"
MARKER = "probe-resource-attribute-seen"
SERVICE_NAME = "probe-service-name-seen"
TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
METRICS = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"


#: For each variable releases.yaml calls ignored (backend.sdk_env.ignored), a value that would
#: stop the export to the lab's gRPC receiver if the SDK took it
_OVERRIDDEN = {
    "OTEL_TRACES_SAMPLER": "always_off",
    "OTEL_TRACES_SAMPLER_ARG": "0",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": NOTHING_LISTENS_HERE,
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": NOTHING_LISTENS_HERE,
    "OTEL_EXPORTER_OTLP_INSECURE": "false",
    "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "false",
    "OTEL_EXPORTER_OTLP_METRICS_INSECURE": "false",
}


def measure_otel_env(params: Mapping[str, Any]) -> dict[str, Any]:
    """The backend with the SDK's variables set, the ignored ones of releases.yaml each to a
    value that would stop its export (_OVERRIDDEN: a name without one fails the probe)."""
    ignored = {name: _OVERRIDDEN[name] for name in params["ignored"]}
    env = {
        "OTEL_RESOURCE_ATTRIBUTES": f"probe.marker={MARKER}",
        "OTEL_SERVICE_NAME": SERVICE_NAME,
    } | ignored
    with receiver_running() as otlp:
        api = backend(params, env=env).start()
        traffic(api)
        api.stop()  # the SDK flushes what it holds on the way out
    return {
        "exported_over_grpc": otlp.methods(),
        "ignored_set": sorted(ignored),
        "resource_attributes_applied": otlp.payload_has(MARKER),
        "service_name_from_code": otlp.payload_has("betrace-backend"),
        "service_name_from_env": otlp.payload_has(SERVICE_NAME),
    }


def _otel_params(data: ReleaseData) -> dict[str, Any]:
    return _ports(data) | {"ignored": list(data.current.backend.sdk_env.ignored)}


def expect_otel_env(data: ReleaseData) -> dict[str, Expect]:
    return {
        # traces and metrics arrive, over gRPC, at the receiver, although every ignored
        # variable asks for something else: none of them is taken
        "exported_over_grpc": Expect(
            f"both {TRACES} and {METRICS}",
            lambda seen: isinstance(seen, list) and TRACES in seen and METRICS in seen,
        ),
        "ignored_set": equal(sorted(data.current.backend.sdk_env.ignored)),
        "resource_attributes_applied": equal(True),
        "service_name_from_code": equal(True),
        "service_name_from_env": equal(False),
    }


register(Probe("otel-variables", measure_otel_env, expect_otel_env, _otel_params))


# --- the Go runtime's variables ----------------------------------------------------------------

#: the GOMEMLIMIT the probe sets: 512 MiB, in bytes as the chart's resourceFieldRef gives it
_MEMORY_LIMIT = 512 * 1024 * 1024


def _go_settings(params: Mapping[str, Any], name: str, env: dict[str, str]) -> tuple[float, float]:
    """GOMAXPROCS and GOMEMLIMIT as the runtime of a backend started with `env` reports them
    (its own series of /metrics, from client_golang's Go collector, vendored upstream)."""
    api = backend(params, name=name, env=env).start()
    series = _series(api, "go_")
    api.stop(signal.SIGKILL)
    return (
        float(series.get("go_sched_gomaxprocs_threads", "nan")),
        float(series.get("go_gc_gomemlimit_bytes", "nan")),
    )


def _default_godebug(program: Path) -> str:
    """The GODEBUG defaults the program was built with, from the build information the Go
    linker writes into it (what `go version -m` prints as DefaultGODEBUG)."""
    found = re.search(rb"DefaultGODEBUG=([^\s]*)", program.read_bytes())
    return found[1].decode("ascii", "replace") if found else ""


def measure_go_runtime(params: Mapping[str, Any]) -> dict[str, Any]:
    """The backend with GOMAXPROCS and GOMEMLIMIT set as the chart sets them (from a container's
    limits, in bytes), in the forms the pages give (Go's unit; a GOMAXPROCS Go ignores), and
    with a GOMEMLIMIT written as a Kubernetes quantity."""
    with receiver_running():
        chart = _go_settings(params, "chart", {"GOMAXPROCS": "1", "GOMEMLIMIT": str(_MEMORY_LIMIT)})
        written = _go_settings(params, "units", {"GOMAXPROCS": "500m", "GOMEMLIMIT": "512MiB"})
        quantity = _start_refused(backend(params, name="quantity", env={"GOMEMLIMIT": "512Mi"}))
    return {
        "gomaxprocs": chart[0],
        "gomemlimit": chart[1],
        "gomemlimit_in_go_units": written[1],
        # Go's default, as without the variable: the CPUs this process may run on
        "gomaxprocs_500m_ignored": written[0] == len(os.sched_getaffinity(0)),
        "quantity_exits_with_2": quantity.startswith("the backend exited with 2:"),
        "quantity_log": quantity,
        "default_godebug": _default_godebug(Path(params["program"])),
    }


def expect_go_runtime(data: ReleaseData) -> dict[str, Expect]:
    return {
        "gomaxprocs": equal(1.0),
        "gomemlimit": equal(float(_MEMORY_LIMIT)),
        "gomemlimit_in_go_units": equal(float(_MEMORY_LIMIT)),
        "gomaxprocs_500m_ignored": equal(True),
        # Go's runtime throws at start (exit status 2) on a value parseByteCount refuses
        "quantity_exits_with_2": equal(True),
        "quantity_log": contains("malformed GOMEMLIMIT"),
        # go.mod's `go 1.24.0`: the runtime sizes GOMAXPROCS by the node, not by the cgroup
        "default_godebug": contains("containermaxprocs=0"),
    }


register(Probe("go-runtime-env", measure_go_runtime, expect_go_runtime, _ports))


# --- restarts ----------------------------------------------------------------------------------


def measure_recovered(params: Mapping[str, Any]) -> dict[str, Any]:
    with started(params) as api:
        api.post_json("/v1/rules", RULE)
        api.stop()
        api.start()
        put = api.call("PUT", f"/v1/rules/{RULE['name']}", json.dumps(RULE))
        delete = api.call("DELETE", f"/v1/rules/{RULE['name']}")
        read = api.call("GET", f"/v1/rules/{RULE['name']}")
    return {
        "read_after_delete": read.status,
        "put_after_restart": put.status,
        "put_message": put.body[:200],
        "delete_after_restart": delete.status,
        "delete_message": delete.body[:200],
    }


def expect_recovered(data: ReleaseData) -> dict[str, Expect]:
    # the distribution's backend, with patch 0003 (upstream: 400 "invalid transition from
    # nonexistent" for both, and the rule still there)
    return {
        "read_after_delete": equal(404),
        "put_after_restart": equal(200),
        "put_message": contains(f'"id":"{RULE["name"]}"'),
        "delete_after_restart": equal(200),
        "delete_message": contains('"success":true'),
    }


register(Probe("recovered-rules", measure_recovered, expect_recovered, _ports))


def measure_repost(params: Mapping[str, Any]) -> dict[str, Any]:
    with started(params) as api:
        api.post_json("/v1/rules", RULE)
        api.stop()
        api.start()
        again = api.post_json("/v1/rules", RULE)
        send_and_await(api, breaking_trace("a" * 32))
        after_repost = violations(api)
        api.stop()
        api.start()
        send_and_await(api, breaking_trace("b" * 32))
        after_next_restart = violations(api)
    return {
        "repost_status": again.status,
        "repost_message": again.body[:200],
        "violations_after_repost": after_repost,
        "violations_after_next_restart": after_next_restart,
    }


def expect_repost(data: ReleaseData) -> dict[str, Expect]:
    # the distribution's backend, with patch 0003 (upstream: 500, and 0 violations: the repost
    # had removed the rule from the engine)
    return {
        "repost_status": equal(409),
        "repost_message": contains("already exists"),
        "violations_after_repost": at_least(1, "violations"),
        "violations_after_next_restart": at_least(1, "violations"),
    }


register(Probe("repost-after-restart", measure_repost, expect_repost, _ports))


def measure_stored_broken(params: Mapping[str, Any]) -> dict[str, Any]:
    """A rule in rules.json whose expression does not compile, at start-up: what the API does
    with its name."""
    name = "stored-broken"
    broken = RULE | {"name": name, "expression": "when { payment.charge.where(amount > ) }"}
    with receiver_running():
        api = backend(params)
        api.data.mkdir(parents=True, exist_ok=True)
        stored = {name: broken | {"id": name}}
        (api.data / "rules.json").write_text(json.dumps(stored), encoding="utf-8")
        api.start()
        path = f"/v1/rules/{name}"
        read = api.call("GET", path)
        again = api.post_json("/v1/rules", broken | {"expression": RULE["expression"]})
        disable = api.call("POST", f"{path}/disable")
        delete = api.call("DELETE", path)
        kept = (api.data / "rules.json").read_text(encoding="utf-8")
        after = api.post_json("/v1/rules", broken | {"expression": RULE["expression"]})
        api.stop(signal.SIGKILL)
        # a file that is not JSON (a trailing comma, as a hand edit leaves one)
        (api.data / "rules.json").write_text('{"a": {"name": "a",}}', encoding="utf-8")
        not_json = _start_refused(api)
    return {
        "get": read.status,
        "post_same_name": again.status,
        "disable": disable.status,
        "delete": delete.status,
        "still_in_file": name in json.loads(kept or "{}"),
        "post_after_delete": after.status,
        "exits_on_a_file_that_is_not_json": not_json.startswith("the backend exited with 1:"),
        "log_on_a_file_that_is_not_json": not_json,
    }


def _start_refused(api: Backend) -> str:
    """How a start of the backend ends: its exit and log when it exits at once, else
    "started" (and it is killed)."""
    try:
        api.start()
    except RuntimeError as exc:
        return str(exc)
    api.stop(signal.SIGKILL)
    return "started"


def expect_stored_broken(data: ReleaseData) -> dict[str, Expect]:
    # the distribution's backend, with patch 0003 (upstream: DELETE 400 "invalid transition from
    # nonexistent" and POST 500 "already exists", the rule staying in the file)
    return {
        "get": equal(404),
        "post_same_name": equal(409),
        "disable": equal(404),
        "delete": equal(200),
        "still_in_file": equal(False),
        "post_after_delete": equal(200),
        # cmd/betrace-backend/main.go: log.Fatalf, whose exit status is 1
        "exits_on_a_file_that_is_not_json": equal(True),
        "log_on_a_file_that_is_not_json": contains("Failed to initialize rule store"),
    }


register(Probe("stored-broken-rule", measure_stored_broken, expect_stored_broken, _ports))


def _files(api: Backend) -> list[str]:
    return sorted(path.name for path in api.data.iterdir())


def measure_data_files(params: Mapping[str, Any]) -> dict[str, Any]:
    """What the backend keeps in its data folder: after it started on an empty one, after the
    first rule was made, and after that rule was deleted (with what the file then holds). Then
    a restore as the guides make one, the file written under the running backend: what it
    lists, what the file holds after its next rule change, and what it lists once restarted."""
    with started(params) as api:
        before = _files(api)
        api.post_json("/v1/rules", RULE)
        after = _files(api)
        rules_file = api.data / "rules.json"
        # the backend's own entry, renamed: a restore in the file's own format
        entry = json.loads(rules_file.read_text(encoding="utf-8"))[RULE["name"]]
        restore = json.dumps({"restored": entry | {"id": "restored", "name": "restored"}})
        rules_file.write_text(restore, encoding="utf-8")
        listed_while_running = _rule_names(api)
        api.post_json("/v1/rules", RULE | {"name": "made-after"})
        in_file_after_a_change = sorted(json.loads(rules_file.read_text(encoding="utf-8")))
        rules_file.write_text(restore, encoding="utf-8")
        api.stop()
        api.start()
        listed_after_a_restart = _rule_names(api)
        for name in listed_after_a_restart:
            api.call("DELETE", f"/v1/rules/{name}")
        deleted = _files(api)
        kept = rules_file.read_text(encoding="utf-8") if deleted else ""
    return {
        "before_any_rule": before,
        "after_a_rule": after,
        "listed_while_a_changed_file_lies_there": listed_while_running,
        "in_the_changed_file_after_the_next_rule": in_file_after_a_change,
        "listed_after_a_restart": listed_after_a_restart,
        "after_its_deletion": deleted,
        "rules_after_its_deletion": json.loads(kept) if kept else None,
    }


def _rule_names(api: Backend) -> list[str]:
    rules = (api.call("GET", "/v1/rules").json() or {}).get("rules") or []
    return sorted(str(r.get("name")) for r in rules if isinstance(r, dict))


def expect_data_files(data: ReleaseData) -> dict[str, Expect]:
    files = data.current.backend.data_files  # releases.yaml backend.data_files
    ours = str(RULE["name"])
    return {
        "before_any_rule": equal(files.before_any_rule),
        "after_a_rule": equal(files.after_a_rule),
        # read_at_start_only and overwritten_at_next_change, both held true by the model
        "listed_while_a_changed_file_lies_there": equal([ours]),
        "in_the_changed_file_after_the_next_rule": equal(sorted([ours, "made-after"])),
        "listed_after_a_restart": equal(["restored"]),
        "after_its_deletion": equal(files.after_a_rule),
        "rules_after_its_deletion": equal(files.rules_after_the_last_deletion),
    }


register(Probe("data-files", measure_data_files, expect_data_files, _ports))


def _traces_judged(api: Backend, rule: str) -> list[str]:
    """The traces a rule's violations name (their message says `trace '<id>'`), each once,
    sorted."""
    messages = violation_messages(api, rule)
    return sorted({m[1] for text in messages if (m := _TRACE_IN_MESSAGE.search(text))})


_TRACE_IN_MESSAGE = re.compile(r"trace '([0-9a-f]+)'")


def measure_judging(params: Mapping[str, Any]) -> dict[str, Any]:
    """When a rule judges a trace: one created without `enabled` (as stored, and against a
    trace that breaks it), and two that come after that trace was judged, one created then and
    one enabled then; a second breaking trace follows. Which traces each rule's violations
    name shows whether it looked back."""
    quiet = RULE | {"name": "created-without-enabled"}
    del quiet["enabled"]
    later = RULE | {"name": "created-later"}
    with started(params) as api:
        api.post_json("/v1/rules", quiet)
        stored = api.call("GET", f"/v1/rules/{quiet['name']}").json() or {}
        send_and_await(api, breaking_trace(EARLIER_TRACE))
        while_disabled = _traces_judged(api, str(quiet["name"]))
        created = api.post_json("/v1/rules", later)
        enabled = api.call("POST", f"/v1/rules/{quiet['name']}/enable")
        send_and_await(api, breaking_trace(NEXT_TRACE))
        created_later = _traces_judged(api, str(later["name"]))
        enabled_later = _traces_judged(api, str(quiet["name"]))
    return {
        "enabled_when_not_given": stored.get("enabled"),
        "traces_judged_while_disabled": while_disabled,
        "later_rule_created_and_enabled": [created.status, enabled.status],
        "traces_judged_by_a_rule_created_later": created_later,
        "traces_judged_by_a_rule_enabled_later": enabled_later,
    }


EARLIER_TRACE, NEXT_TRACE = "c" * 32, "d" * 32


def expect_judging(data: ReleaseData) -> dict[str, Expect]:
    judging = data.current.backend.judging  # releases.yaml backend.judging
    looked_back: list[str] = [EARLIER_TRACE] if judging.judges_earlier_traces else []
    return {
        "enabled_when_not_given": equal(judging.enabled_when_not_given),
        "traces_judged_while_disabled": equal([]),
        "later_rule_created_and_enabled": equal([200, 200]),
        "traces_judged_by_a_rule_created_later": equal([*looked_back, NEXT_TRACE]),
        "traces_judged_by_a_rule_enabled_later": equal([*looked_back, NEXT_TRACE]),
    }


register(Probe("rule-judging", measure_judging, expect_judging, _ports))


def measure_memory(params: Mapping[str, Any]) -> dict[str, Any]:
    with started(params) as api:
        api.post_json("/v1/rules", RULE)
        send_and_await(api, breaking_trace("c" * 32))
        before = violations(api)
        listed = (api.call("GET", "/v1/violations").json() or {}).get("violations") or [{}]
        fields = sorted(str(k) for k in listed[0])
        api.stop()
        api.start()
        after = violations(api)
        rule = api.call("GET", f"/v1/rules/{RULE['name']}").status
    return {
        "violations_before_stop": before,
        "violations_after_start": after,
        "rule_kept": rule,
        "signature_fields": [f for f in fields if "sig" in f.lower() or "hmac" in f.lower()],
        "violation_fields": len(fields),
    }


def expect_memory(data: ReleaseData) -> dict[str, Expect]:
    return {
        "violations_before_stop": at_least(1, "violations"),
        "violations_after_start": equal(0),
        "rule_kept": equal(200),
        # known issue signature-not-exposed: the answer holds fields, none of them a signature
        "signature_fields": equal([]),
        "violation_fields": at_least(1, "fields"),
    }


register(Probe("violations-in-memory", measure_memory, expect_memory, _ports))


# --- trace evaluation -------------------------------------------------------------------------


def measure_late_span(params: Mapping[str, Any]) -> dict[str, Any]:
    """A trace's spans sent once the trace was evaluated are judged as a trace of their own."""
    charge, skip = breaking_trace("e" * 32)
    with started(params) as api:
        api.post_json("/v1/rules", RULE)
        send_and_await(api, [charge])
        send_and_await(api, [skip])  # the same trace, after its evaluation
        in_pieces = violations(api)
        send_and_await(api, breaking_trace("f" * 32))
        whole = violations(api) - in_pieces
        send_and_await(api, breaking_trace("f" * 32))  # again, same trace id
        again = violations(api) - in_pieces
    return {"split_trace_violations": in_pieces, "whole_trace": whole, "same_trace_again": again}


def expect_late_span(data: ReleaseData) -> dict[str, Expect]:
    return {
        "split_trace_violations": equal(0),
        "whole_trace": equal(1),
        "same_trace_again": equal(2),
    }


register(Probe("late-span", measure_late_span, expect_late_span, _ports))

#: traces the probe evaluation-delay sends, an eighth of a second apart: their spans arrive at
#: eight points of the backend's one-second check, so the latest waits at least seven eighths
#: of the check's second past the quiet time (a window claimed a second too early fails)
DELAY_TRACES = 8
DELAY_STAGGER = 0.125
#: seconds added to the window's end for the probe's own poll of the log (every 50 ms) and the
#: machine's load (a check that fires late); the window's start needs none, nothing is
#: evaluated before it. Below 0.875, so that a window a second early still fails.
DELAY_MARGIN = 0.75


def _evaluated_at(api: Backend, traces: set[str], mark: int) -> dict[str, float]:
    """When the log after `mark` first showed each trace evaluated (monotonic seconds)."""
    seen: dict[str, float] = {}
    end = time.monotonic() + EVALUATION_LIMIT
    while len(seen) < len(traces) and time.monotonic() < end:
        log = api.text(mark)
        for trace in traces - seen.keys():
            if f"Trace evaluation complete: trace_id={trace} " in log:
                seen[trace] = time.monotonic()
        time.sleep(0.05)
    if len(seen) < len(traces):
        raise RuntimeError(
            f"the backend did not log the evaluation of {sorted(traces - seen.keys())}"
        )
    return seen


def measure_evaluation_delay(params: Mapping[str, Any]) -> dict[str, Any]:
    """Seconds from each trace's POST until the backend logs its evaluation: the earliest counted
    from when its POST was sent, the latest from when it was answered (its spans arrived in
    between), so neither bound is stretched by the time a POST took."""
    sent: dict[str, tuple[float, float]] = {}
    with started(params) as api:
        mark = api.log_mark()
        start = time.monotonic()
        for n in range(DELAY_TRACES):
            trace = f"{n + 10:x}" * 32
            # each POST at its own point of the check's second, however long the last one took
            time.sleep(max(start + n * DELAY_STAGGER - time.monotonic(), 0))
            before = time.monotonic()
            api.post_json("/v1/spans", {"spans": breaking_trace(trace)})
            sent[trace] = (before, time.monotonic())
        seen = _evaluated_at(api, set(sent), mark)
    return {
        "earliest_after_sent": round(min(seen[t] - sent[t][0] for t in sent), 3),
        "latest_after_answered": round(max(seen[t] - sent[t][1] for t in sent), 3),
        "each": [round(seen[t] - sent[t][0], 3) for t in sent],
    }


def expect_evaluation_delay(data: ReleaseData) -> dict[str, Expect]:
    earliest, latest = data.current.backend.evaluation.window  # releases.yaml backend.evaluation
    return {
        "earliest_after_sent": at_least(earliest),
        "latest_after_answered": at_most(latest + DELAY_MARGIN),
    }


register(Probe("evaluation-delay", measure_evaluation_delay, expect_evaluation_delay, _ports))


def _levels(api: Backend, rule: str, trace_id: str) -> dict[str, int]:
    """A rule's violations of one trace, by their kind (as the rule examples read them)."""
    mine = violation_messages(api, rule)
    kinds = [violation_kind(m) for m in mine if f"trace '{trace_id}'" in m]
    return {level: kinds.count(level) for level in ("span", "trace")}


def measure_span_level(params: Mapping[str, Any]) -> dict[str, Any]:
    """Each span is evaluated alone as it arrives: what `always` and `never` rules record then."""
    rules = {
        "always": "when { payment } always { fraud_check }",
        "never": "when { payment } never { refund }",
        "never-not": "when { payment } never { not audit_log }",
    }
    keeps, breaks = "a" * 32, "b" * 32
    spans = [
        {"traceId": keeps, "spanId": "1" * 16, "name": "payment", "attributes": {}},
        {"traceId": keeps, "spanId": "2" * 16, "name": "fraud_check", "attributes": {}},
        {"traceId": keeps, "spanId": "3" * 16, "name": "audit_log", "attributes": {}},
        {"traceId": breaks, "spanId": "4" * 16, "name": "payment", "attributes": {}},
        {"traceId": breaks, "spanId": "5" * 16, "name": "refund", "attributes": {}},
    ]
    with started(params) as api:
        for name, expression in rules.items():
            api.post_json("/v1/rules", {"name": name, "expression": expression, "enabled": True})
        send_and_await(api, spans)
        found = {
            f"{rule}_{trace}_{level}": count
            for rule in rules
            for trace, trace_id in (("keeps", keeps), ("breaks", breaks))
            for level, count in _levels(api, rule, trace_id).items()
        }
    return found


def expect_span_level(data: ReleaseData) -> dict[str, Expect]:
    """What rule-language.md says: `always` flags every `when` span, even in a trace that keeps
    the rule; `never` with different spans flags none alone, unless its block holds a `not`."""
    return {
        "always_keeps_span": equal(1),
        "always_keeps_trace": equal(0),
        "always_breaks_span": equal(1),
        "always_breaks_trace": equal(1),
        "never_keeps_span": equal(0),
        "never_keeps_trace": equal(0),
        "never_breaks_span": equal(0),
        "never_breaks_trace": equal(1),
        "never-not_keeps_span": equal(1),
        "never-not_keeps_trace": equal(0),
        "never-not_breaks_span": equal(1),
        "never-not_breaks_trace": equal(1),
    }


register(Probe("span-level", measure_span_level, expect_span_level, _ports))


# --- ingest -----------------------------------------------------------------------------------


#: seconds partial-ingest waits for the refused batch's trace to be evaluated (a few times the
#: window of releases.yaml backend.evaluation): a backend that never evaluates it, the outcome
#: if upstream changes, then fails the probe soon, not after EVALUATION_LIMIT
PARTIAL_WAIT = 15.0


def measure_partial(params: Mapping[str, Any]) -> dict[str, Any]:
    nameless = {"traceId": "d" * 32, "spanId": "c0ffee00c0ffee00", "attributes": {}}
    with started(params) as api:
        api.post_json("/v1/rules", RULE)
        mark = api.log_mark()
        answer = api.post_json("/v1/spans", {"spans": [*breaking_trace("d" * 32), nameless]})
        empty = api.post_json("/v1/spans", {})
        # the spans before the refused one are evaluated, or the wait ends: then none counts
        api.await_traces({"d" * 32}, mark, PARTIAL_WAIT)
        found = violations(api)
    return {
        "batch_status": answer.status,
        "violations_from_refused_batch": found,
        "no_spans_status": empty.status,
        "no_spans_accepted": (empty.json() or {}).get("accepted", 0),
    }


def expect_partial(data: ReleaseData) -> dict[str, Expect]:
    return {
        "batch_status": equal(400),
        "violations_from_refused_batch": at_least(1, "violations"),
        # the gate's own `required: [spans]` (releases.yaml) is not upstream's rule
        "no_spans_status": equal(200),
        "no_spans_accepted": equal(0),
    }


register(Probe("partial-ingest", measure_partial, expect_partial, _ports))


def measure_attribute_values(params: Mapping[str, Any]) -> dict[str, Any]:
    """A span whose attribute value is a JSON number, after a trace that breaks the rule: what
    the request is answered, and whether that trace was evaluated all the same (a valid trace
    sent after it is awaited in the log first: the refused one would have been evaluated by
    then)."""
    refused, valid = "a1" * 16, "a2" * 16
    number: dict[str, Any] = {"traceId": refused, "spanId": "0a0a0a0a0a0a0a0a"}
    number |= {"name": "payment.audit", "attributes": {"amount": 1500}}
    with started(params) as api:
        api.post_json("/v1/rules", RULE)
        answer = api.post_json("/v1/spans", {"spans": [*breaking_trace(refused), number]})
        send_and_await(api, breaking_trace(valid))
        listed = api.call("GET", f"/v1/violations?ruleId={RULE['name']}").json() or {}
    traces = [v.get("traceId") for v in listed.get("violations") or []]
    return {
        "status": answer.status,
        "message": str((answer.json() or {}).get("message", "")),
        "violations_of_the_refused_request": traces.count(refused),
        "violations_of_the_valid_trace": traces.count(valid),
    }


def expect_attribute_values(data: ReleaseData) -> dict[str, Expect]:
    return {
        "status": equal(400),
        # the words send-traces-to-betrace.md quotes, for the value 1500
        "message": contains("invalid value for string field value: 1500"),
        "violations_of_the_refused_request": equal(0),
        "violations_of_the_valid_trace": equal(1),
    }


register(Probe("attribute-values", measure_attribute_values, expect_attribute_values, _ports))


def measure_no_otlp(params: Mapping[str, Any]) -> dict[str, Any]:
    with started(params) as api:
        found = [a for a in listening() if not a.endswith(f":{OTLP_PORT}")]
        otlp_http = api.call("POST", "/v1/traces", b"{}").status
        otlp_grpc = grpc_status(params["grpc"], TRACES)
        spans = api.post_json("/v1/spans", {"spans": breaking_trace("e" * 32)})
    return {
        "listening": found,
        "otlp_http_traces": otlp_http,
        "otlp_grpc_traces": otlp_grpc,
        "spans_accepted": (spans.json() or {}).get("accepted"),
    }


def expect_no_otlp(data: ReleaseData) -> dict[str, Expect]:
    ports = _ports(data)
    return {
        "listening": equal([f"*:{ports['http']}", f"*:{ports['grpc']}"]),
        "otlp_http_traces": equal(404),
        "otlp_grpc_traces": equal("UNIMPLEMENTED"),
        "spans_accepted": equal(2),
    }


register(Probe("no-otlp-receiver", measure_no_otlp, expect_no_otlp, _ports))


# --- rules whose expression does not compile -----------------------------------------------------


def measure_compile_trap(params: Mapping[str, Any]) -> dict[str, Any]:
    broken = RULE | {"expression": "when { payment.charge.where(amount > ) } never { x }"}
    other = RULE | {"name": "no-fraud-skip-on-large-charge-2"}
    path = f"/v1/rules/{RULE['name']}"
    with started(params) as api:
        first = api.post_json("/v1/rules", broken)
        again = api.post_json("/v1/rules", RULE)
        read = api.call("GET", path)
        put = api.call("PUT", path, json.dumps(RULE))
        renamed = api.post_json("/v1/rules", other)
        api.stop()
        api.start()
        after_restart = api.post_json("/v1/rules", RULE)
    return {
        "broken_expression": first.status,
        "post_fixed_same_name": again.status,
        "post_fixed_message": again.body[:200],
        "get_same_name": read.status,
        "put_same_name": put.status,
        "put_message": put.body[:200],
        "post_other_name": renamed.status,
        "post_same_name_after_restart": after_restart.status,
    }


def expect_compile_trap(data: ReleaseData) -> dict[str, Expect]:
    # the distribution's backend, with patches 0003 and 0004 (upstream: the fixed POST 409, GET
    # 404, PUT 400 "invalid transition from draft", and the same name free only after a restart)
    return {
        "broken_expression": equal(400),
        "post_fixed_same_name": equal(200),
        "post_fixed_message": contains(f'"id":"{RULE["name"]}"'),
        "get_same_name": equal(200),
        "put_same_name": equal(200),
        "put_message": contains(f'"id":"{RULE["name"]}"'),
        "post_other_name": equal(200),
        "post_same_name_after_restart": equal(409),
    }


register(Probe("compile-trap", measure_compile_trap, expect_compile_trap, _ports))


def measure_frozen_rule(params: Mapping[str, Any]) -> dict[str, Any]:
    """A PUT whose expression does not compile, on a rule created in this run: what the rule is
    and does afterwards, and whether it can be changed and deleted."""
    path = f"/v1/rules/{RULE['name']}"
    broken = RULE | {"expression": "when { payment.charge.where(amount > ) } never { x }"}
    with started(params) as api:
        api.post_json("/v1/rules", RULE)
        first = api.call("PUT", path, json.dumps(broken))
        kept = (api.call("GET", path).json() or {}).get("expression")
        send_and_await(api, breaking_trace("f" * 32))
        found = violations(api)
        fixed = api.call("PUT", path, json.dumps(RULE))
        delete = api.call("DELETE", path)
    return {
        "put_broken": first.status,
        "put_broken_message": first.body[:200],
        "put_fixed": fixed.status,
        "put_fixed_message": fixed.body[:200],
        "delete": delete.status,
        "delete_message": delete.body[:200],
        "expression_kept": kept == RULE["expression"],
        "old_version_violations": found,
    }


def expect_frozen_rule(data: ReleaseData) -> dict[str, Expect]:
    # the distribution's backend, with patch 0004 (upstream: the later PUT and the DELETE 400
    # "invalid transition from draft")
    return {
        "put_broken": equal(400),
        "put_broken_message": contains("failed to compile rule"),
        "put_fixed": equal(200),
        "put_fixed_message": contains(f'"id":"{RULE["name"]}"'),
        "delete": equal(200),
        "delete_message": contains('"success":true'),
        "expression_kept": equal(True),
        "old_version_violations": at_least(1, "violations"),
    }


register(Probe("frozen-rule", measure_frozen_rule, expect_frozen_rule, _ports))


def measure_put_replaces(params: Mapping[str, Any]) -> dict[str, Any]:
    """A PUT and a POST without `enabled`."""
    path = f"/v1/rules/{RULE['name']}"
    partial = {k: v for k, v in RULE.items() if k not in ("enabled", "severity")}
    other = partial | {"name": "created-without-enabled"}
    with started(params) as api:
        api.post_json("/v1/rules", RULE)
        put = api.call("PUT", path, json.dumps(partial))
        after = api.call("GET", path).json() or {}
        api.post_json("/v1/rules", other)
        created = api.call("GET", "/v1/rules/created-without-enabled").json() or {}
    return {
        "put_status": put.status,
        "enabled_after_put": bool(after.get("enabled")),
        "severity_after_put": after.get("severity", ""),
        "enabled_after_post": bool(created.get("enabled")),
    }


def expect_put_replaces(data: ReleaseData) -> dict[str, Expect]:
    return {
        "put_status": equal(200),
        "enabled_after_put": equal(False),
        "severity_after_put": equal(""),
        "enabled_after_post": equal(False),
    }


register(Probe("put-replaces", measure_put_replaces, expect_put_replaces, _ports))

#: Three rules that differ in each thing GET /v1/rules filters by: enabled, severity, tags.
FILTERED = {
    "filter-a": {"enabled": True, "severity": "HIGH", "tags": ["payments"]},
    "filter-b": {"enabled": False, "severity": "LOW", "tags": ["checkout"]},
    "filter-c": {"enabled": True, "severity": "LOW", "tags": []},
}
#: The listings the probe asks for, by the query string each sends.
FILTER_QUERIES = {
    "all": "",
    "enabled_only": "?enabledOnly=true",
    "severity_low": "?severity=LOW",
    "one_tag": "?tags=payments",
    "two_tags": "?tags=payments&tags=checkout",
    "enabled_and_low": "?enabledOnly=true&severity=LOW",
}


def measure_rules_filters(params: Mapping[str, Any]) -> dict[str, Any]:
    """GET /v1/rules with each of its query parameters: the names listed, in name order."""
    expression = "when { ping } always { pong }"
    with started(params) as api:
        for name, fields in FILTERED.items():
            api.post_json("/v1/rules", {"name": name, "expression": expression} | fields)
        listed = {key: api.call("GET", f"/v1/rules{q}") for key, q in FILTER_QUERIES.items()}
    out: dict[str, Any] = {}
    for key, answer in listed.items():
        body = answer.json() or {}
        out[key] = sorted(str(rule.get("name")) for rule in body.get("rules") or [])
        out[f"{key}_count"] = int(body.get("totalCount") or 0)
    return out


def expect_rules_filters(data: ReleaseData) -> dict[str, Expect]:
    # ListRules in backend/internal/grpc/services/rule_service.go (read at the pinned commit):
    # enabledOnly keeps enabled rules, severity the rules of that severity, tags those with any
    # one of the tags given, and a rule is listed when it passes every filter given; totalCount
    # counts what is listed
    wanted = {
        "all": ["filter-a", "filter-b", "filter-c"],
        "enabled_only": ["filter-a", "filter-c"],
        "severity_low": ["filter-b", "filter-c"],
        "one_tag": ["filter-a"],
        "two_tags": ["filter-a", "filter-b"],
        "enabled_and_low": ["filter-c"],
    }
    out = {key: equal(names) for key, names in wanted.items()}
    return out | {f"{key}_count": equal(len(names)) for key, names in wanted.items()}


register(Probe("rules-filters", measure_rules_filters, expect_rules_filters, _ports))

#: Violations recorded for the listing probe: more than the backend's default page of 100.
RECORDED = 150


def measure_violations_cap(params: Mapping[str, Any]) -> dict[str, Any]:
    """An `always` rule and one span per trace: one span-level violation each, at once."""
    rule = {"name": "ping-needs-pong", "expression": "when { ping } always { pong }"}
    spans = [
        {"traceId": f"{n:032x}", "spanId": f"{n:016x}", "name": "ping", "attributes": {}}
        for n in range(1, RECORDED + 1)
    ]
    with started(params) as api:
        api.post_json("/v1/rules", rule | {"enabled": True, "severity": "LOW"})
        api.post_json("/v1/spans", {"spans": spans})
        default = api.call("GET", "/v1/violations").json() or {}
        large = api.call("GET", f"/v1/violations?limit={RECORDED * 10}").json() or {}
        one = api.call("GET", f"/v1/violations?traceId={1:032x}").json() or {}
    return {
        "listed_by_default": len(default.get("violations") or []),
        "total_count_by_default": int(default.get("totalCount") or 0),
        "total_count_with_limit": int(large.get("totalCount") or 0),
        "listed_for_one_trace_id": len(one.get("violations") or []),
    }


def expect_violations_cap(data: ReleaseData) -> dict[str, Expect]:
    return {
        "listed_by_default": equal(100),
        "total_count_by_default": equal(100),
        "total_count_with_limit": at_least(RECORDED, "violations"),
        "listed_for_one_trace_id": at_least(2, "violations"),
    }


register(Probe("violations-cap", measure_violations_cap, expect_violations_cap, _ports))


# --- the start-up log, gRPC, CORS -----------------------------------------------------------------


#: What the OpenTelemetry SDK logs of the OTLP endpoint in the host:port form the backend needs.
URL_WARNING = "first path segment in URL cannot contain colon"


def measure_startup_log(params: Mapping[str, Any]) -> dict[str, Any]:
    with started(params) as api:  # OTEL_EXPORTER_OTLP_ENDPOINT=127.0.0.1:<port>, the right form
        # both lines come right after the listeners start: wait for them, not for a time (a
        # line that never comes ends the wait, and the verdict says it is missing)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(
            line in api.text() for line in ("/health", URL_WARNING)
        ):
            time.sleep(0.05)
        out = {
            "log": api.text(),
            "advertised_path": api.call("GET", "/health").status,
            "health_path": api.call("GET", "/v1/health").status,
        }
        out["url_warnings"] = str(out["log"]).count(URL_WARNING)
    return out


def expect_startup_log(data: ReleaseData) -> dict[str, Expect]:
    port = _ports(data)["http"]
    return {
        "log": contains(f"http://localhost:{port}/health"),
        "advertised_path": equal(404),
        "health_path": equal(200),
        "url_warnings": at_least(1, "warnings"),
    }


register(Probe("startup-log", measure_startup_log, expect_startup_log, _ports))


#: starts the start-time probe times, of which it keeps the median: one start slowed by the
#: machine's load says less of the program than of the machine
STARTS = 3


def measure_start_time(params: Mapping[str, Any]) -> dict[str, Any]:
    """Seconds from the program's start until /v1/health answers (Backend.start polls it
    every 50 ms), each start with a new data folder, as a first start of a reader's has."""
    times = []
    with receiver_running():
        for n in range(STARTS):
            api = backend(params, name=f"start-{n}").start()
            assert api.started_in is not None  # set by start()
            times.append(api.started_in)
            api.stop(signal.SIGKILL)
    return {"listening_after": sorted(times)[STARTS // 2], "each": times}


def expect_start_time(data: ReleaseData) -> dict[str, Expect]:
    start = data.current.backend.start  # releases.yaml backend.start
    return {"listening_after": at_most(start.listening_at_most)}


register(Probe("start-time", measure_start_time, expect_start_time, _ports))

BETRACE_SERVICES = {
    "HealthService": "/betrace.v1.HealthService/Check",
    "RuleService": "/betrace.v1.RuleService/ListRules",
    "SpanService": "/betrace.v1.SpanService/IngestSpans",
    "ViolationService": "/betrace.v1.ViolationService/ListViolations",
}


def measure_grpc(params: Mapping[str, Any]) -> dict[str, Any]:
    port = params["grpc"]
    with started(params):
        out = {
            "grpc_health": grpc_status(port, "/grpc.health.v1.Health/Check"),
            "reflection_v1": grpc_stream_status(
                port, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
            ),
            "reflection_v1alpha": grpc_stream_status(
                port, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
            ),
        }
        for service, method in BETRACE_SERVICES.items():
            out[service] = grpc_status(port, method)
    return out


def expect_grpc(data: ReleaseData) -> dict[str, Expect]:
    served = Expect("served (any status but UNIMPLEMENTED)", lambda seen: seen != "UNIMPLEMENTED")
    out = {key: equal("UNIMPLEMENTED") for key in ("grpc_health", "reflection_v1")}
    out["reflection_v1alpha"] = equal("UNIMPLEMENTED")
    return out | dict.fromkeys(BETRACE_SERVICES, served)


register(Probe("grpc-services", measure_grpc, expect_grpc, _ports))


def measure_cors(params: Mapping[str, Any]) -> dict[str, Any]:
    preflight = {
        "Origin": "https://grafana.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-api-key",
    }
    with started(params) as api:
        answer = api.call("OPTIONS", "/v1/rules", headers=preflight)
        plain = api.call("GET", "/v1/rules", headers={"Origin": "https://grafana.example"})
    allowed = answer.headers.get("access-control-allow-headers", "")
    return {
        "preflight_status": answer.status,
        "allow_origin": answer.headers.get("access-control-allow-origin"),
        "allow_origin_on_get": plain.headers.get("access-control-allow-origin"),
        "allow_headers": [h.strip() for h in allowed.split(",") if h.strip()],
        "allow_methods": answer.headers.get("access-control-allow-methods"),
    }


def expect_cors(data: ReleaseData) -> dict[str, Expect]:
    cors = data.current.backend.cors
    return {
        "preflight_status": equal(200),
        "allow_origin": equal(cors.allow_origin),
        "allow_origin_on_get": equal(cors.allow_origin),
        "allow_headers": equal(list(cors.allow_headers)),
        "allow_methods": equal(", ".join(cors.allow_methods)),
    }


register(Probe("cors", measure_cors, expect_cors, _ports))


def measure_plain_http(params: Mapping[str, Any]) -> dict[str, Any]:
    """A TLS handshake on the HTTP port, then a plain request: which one the server speaks."""
    with started(params) as api:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        try:
            with (
                socket.create_connection(("127.0.0.1", params["http"]), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname="localhost"),
            ):
                handshake = "completed"
        except OSError as exc:  # ssl.SSLError is one; so are a refused connection, a timeout
            handshake = f"failed ({type(exc).__name__})"
        return {"tls_handshake": handshake, "plain_health": api.call("GET", "/v1/health").status}


def expect_plain_http(data: ReleaseData) -> dict[str, Expect]:
    # the TLS layer refuses what the server answers (plain HTTP), not the connection itself
    failed = Expect("failed in TLS (SSLError)", lambda seen: str(seen).startswith("failed (SSL"))
    return {"tls_handshake": failed, "plain_health": equal(200)}


register(Probe("plain-http", measure_plain_http, expect_plain_http, _ports))

#: What the metrics exporter logs when nothing answers on the OTLP endpoint.
UPLOAD_FAILED = "failed to upload metrics"


def measure_unreachable_otlp(params: Mapping[str, Any]) -> dict[str, Any]:
    """The log of a backend whose OTLP endpoint has no listener, read until it shows a second
    failed metrics upload (the reader exports every 10 s, otel.go) or 60 s have passed: the
    verdict depends on what is logged, not on when."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:9", "OTEL_EXPORTER_OTLP_TIMEOUT": "1000"}
    api = backend(params, env=env).start()
    try:
        deadline = time.monotonic() + 60
        while api.text().count(UPLOAD_FAILED) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        lines = [line for line in api.text().splitlines() if UPLOAD_FAILED in line]
        health = api.call("GET", "/v1/health").status
    finally:
        api.stop(signal.SIGKILL)
    stamps = [t for t in (_log_time(line) for line in lines[:2]) if t is not None]
    return {
        "failed_uploads": len(lines),
        "connection_refused": bool(lines) and all("connection refused" in x for x in lines),
        "health": health,
        # by the backend's own clock (its log's time stamps), not by when the probe read them
        "seconds_between": stamps[1] - stamps[0] if len(stamps) == 2 else None,
    }


def _log_time(line: str) -> int | None:
    """Seconds of the day of a Go log line (`2026/12/05 13:07:31 ...`), None without a stamp."""
    match = re.match(r"\d{4}/\d\d/\d\d (\d\d):(\d\d):(\d\d) ", line)
    return None if match is None else int(match[1]) * 3600 + int(match[2]) * 60 + int(match[3])


def expect_unreachable_otlp(data: ReleaseData) -> dict[str, Expect]:
    return {
        "failed_uploads": at_least(2, "lines"),
        "connection_refused": equal(True),
        "health": equal(200),  # the backend goes on serving
        # the metrics reader's interval (otel.go: metric.WithInterval(10*time.Second)); whole
        # seconds in the log, and a midnight between the two lines would show a negative gap
        "seconds_between": Expect(
            "about 10 s (9 to 12)", lambda seen: isinstance(seen, int) and 9 <= seen <= 12
        ),
    }


register(Probe("otlp-unreachable-log", measure_unreachable_otlp, expect_unreachable_otlp, _ports))


def measure_same_port(params: Mapping[str, Any]) -> dict[str, Any]:
    """The backend given one port for both servers (BETRACE_PORT_GRPC = BETRACE_PORT_BACKEND):
    whether it comes up, and what it says when it does not."""
    with receiver_running():
        api = backend(params)
        api.grpc_port = api.http_port
        try:
            api.start()
            started = True
        except RuntimeError:  # it exited before answering /v1/health
            started = False
        log = api.text()
        exit_code = api.proc.poll() if api.proc is not None else None
        if started:
            api.stop(signal.SIGKILL)
    return {
        "started": started,
        "exit_code": exit_code,
        "bind_refused": "bind: address already in use" in log,
    }


def expect_same_port(data: ReleaseData) -> dict[str, Expect]:
    return {"started": equal(False), "exit_code": equal(1), "bind_refused": equal(True)}


register(Probe("same-port", measure_same_port, expect_same_port, _ports))


def measure_duplicate_rule(params: Mapping[str, Any]) -> dict[str, Any]:
    """The pages' create step run twice with the real curl, as they write it (`curl -fsS -X POST
    ... -d @rule.json`): what the second POST answers, and what curl then does with `-f` and with
    `--fail-with-body`."""

    def curl(*more: str) -> subprocess.CompletedProcess[str]:
        argv = [params["curl"], "-sS", "-X", "POST", url, "-H", "Content-Type: application/json"]
        argv += ["-d", f"@{WORK / 'rule.json'}", *more]
        return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)

    (WORK / "rule.json").write_text(json.dumps(RULE), encoding="utf-8")
    url = f"http://127.0.0.1:{params['http']}/v1/rules"
    with started(params):
        first, again, failing = curl("-f"), curl("-w", "\\n%{http_code}"), curl("-f")
        with_body = curl("--fail-with-body")
    body, _, status = again.stdout.rpartition("\n")
    return {
        "first_exit": first.returncode,
        "second_status": int(status) if status.isdigit() else status,
        "second_body": body[:200],
        "with_f_exit": failing.returncode,
        "with_f_says": failing.stderr.strip()[:200],
        "with_f_prints_body": failing.stdout != "",
        "fail_with_body_exit": with_body.returncode,
        "fail_with_body_prints": with_body.stdout[:200],
    }


def _curl_params(data: ReleaseData) -> dict[str, Any]:
    return _ports(data) | {"curl": tools.find("curl") or "curl"}


def expect_duplicate_rule(data: ReleaseData) -> dict[str, Expect]:
    # `curl --help all` of Debian 12's curl 7.88.1: "-f, --fail  Fail fast with no output on
    # HTTP errors"; the exit code and the message are what this probe measures, not read
    return {
        "first_exit": equal(0),
        "second_status": equal(409),
        "second_body": contains("rule already exists"),
        "with_f_exit": equal(22),
        "with_f_says": contains("The requested URL returned error: 409"),
        "with_f_prints_body": equal(False),
        "fail_with_body_exit": equal(22),
        "fail_with_body_prints": contains("rule already exists"),
    }


register(Probe("duplicate-rule", measure_duplicate_rule, expect_duplicate_rule, _curl_params))


# --- stopping ------------------------------------------------------------------------------


def _timed_stop(
    params: Mapping[str, Any], name: str, offset: int, env: Mapping[str, str], to_receiver: bool
) -> float:
    api = backend(params, name, offset, env, to_receiver).start()
    traffic(api)
    return api.stop()


def _in_parallel(
    params: Mapping[str, Any], runs: Mapping[str, Mapping[str, str]], to_receiver: bool = True
) -> dict[str, Any]:
    """Each run's stop time in seconds, all runs at once on ports of their own."""
    with ThreadPoolExecutor(len(runs)) as pool:
        futures = {
            key: pool.submit(_timed_stop, params, key, 10 * (n + 1), env, to_receiver)
            for n, (key, env) in enumerate(runs.items())
        }
        return {f"{key}_s": future.result() for key, future in futures.items()}


def _stop_params(data: ReleaseData) -> dict[str, Any]:
    timeout = data.current.backend.env_var("OTEL_EXPORTER_OTLP_TIMEOUT")
    return _ports(data) | {"timeout_ms": timeout.distribution_default}


#: a loopback address with no listener in the probe's namespace
NOTHING_LISTENS = "127.0.0.1:4999"


def measure_stop(params: Mapping[str, Any]) -> dict[str, Any]:
    runs: dict[str, dict[str, str]] = {
        "with_receiver": {},
        "without_listener": {"OTEL_EXPORTER_OTLP_ENDPOINT": NOTHING_LISTENS},
        "without_listener_with_timeout": {
            "OTEL_EXPORTER_OTLP_ENDPOINT": NOTHING_LISTENS,
            "OTEL_EXPORTER_OTLP_TIMEOUT": str(params["timeout_ms"]),
        },
    }
    with receiver_running():
        return _in_parallel(params, runs)


def expect_stop(data: ReleaseData) -> dict[str, Expect]:
    stop = data.current.backend.stop  # releases.yaml backend.stop
    return {
        "with_receiver_s": at_most(stop.with_receiver_at_most),
        "without_listener_s": at_least(stop.without_listener_at_least),
        "without_listener_with_timeout_s": at_most(stop.with_distribution_timeout_at_most),
    }


register(Probe("stop-time", measure_stop, expect_stop, _stop_params, limit=90.0))


def measure_artefact_stop(params: Mapping[str, Any]) -> dict[str, Any]:
    """The backend with each artefact's own environment (`params["artefacts"]`, read from the
    rendered chart and the resolved Compose project), stopped after API traffic: as written
    (the Compose endpoint's name does not resolve here; the chart's default endpoint refuses),
    and with the endpoint on a loopback port that refuses."""
    runs: dict[str, dict[str, str]] = {}
    for artefact, env in params["artefacts"].items():
        runs[f"{artefact}_as_written"] = env
        runs[f"{artefact}_refused"] = env | {"OTEL_EXPORTER_OTLP_ENDPOINT": NOTHING_LISTENS}
    return _in_parallel(params, runs, to_receiver=False)


#: What the runner can measure: every probe, and the stop of each artefact's backend (not a fact
#: of releases.yaml: its bound is each artefact's grace period, see tests/test_probes.py).
MEASUREMENTS: dict[str, Probe] = PROBES | {
    "artefact-stop": Probe("artefact-stop", measure_artefact_stop, lambda data: {}, _ports, 90.0)
}


# --- a page's example, run against the real backend ----------------------------------------------


def measure_python_example(params: Mapping[str, Any]) -> dict[str, Any]:
    """The send-traces page's Python example, as readers see it (`params["source"]`), run
    against the real backend listening where the example sends (`params["http"]`), with the
    page's rule (`params["rule"]`) created first: what `post_spans` returned, and how many
    violations of that rule the backend then recorded."""
    import contextlib
    import io

    rule = json.loads(params["rule"])
    with started(params) as api:
        api.post_json("/v1/rules", rule)
        scope: dict[str, Any] = {"__name__": "example"}
        mark = api.log_mark()
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            exec(compile(params["source"], "example.py", "exec"), scope)  # noqa: S102 (the page's own example, in the probe's namespace)
            answer = scope["post_spans"]([scope["charge"], scope["skipped"]])
        await_or_fail(api, {str(scope[s].get("traceId")) for s in ("charge", "skipped")}, mark)
        found = api.call("GET", f"/v1/violations?ruleId={rule['name']}").json() or {}
        booleans = _booleans_as_rules_read_them(api, scope["betrace_span"], scope["post_spans"])
    return {
        "answer": answer,
        "printed": printed.getvalue(),
        "violations": found.get("totalCount"),
        "violated_rules": sorted({v.get("ruleId") for v in found.get("violations") or []}),
        "boolean_violations": booleans,
    }


#: A rule on attributes the example's betrace_span turns from Python's True and False
BOOLEAN_RULE = {
    "name": "example-booleans",
    "expression": "when { check.where(verified == true) } never { retry.where(final == false) }",
    "enabled": True,
}


def _booleans_as_rules_read_them(api: Backend, span: Any, post: Any) -> int:
    """The page says its betrace_span turns a boolean into the word a rule compares with: a
    trace made with it from True and False, which breaks BOOLEAN_RULE only if so; the number
    of violations the backend recorded (1 when the words are right)."""
    api.post_json("/v1/rules", BOOLEAN_RULE)
    trace = "b0" * 16
    spans = [
        span(trace, "1" * 16, "check", 1, 2, attributes={"verified": True}),
        span(trace, "2" * 16, "retry", 1, 2, attributes={"final": False}),
    ]
    mark = api.log_mark()
    post(spans, url=f"http://127.0.0.1:{api.http_port}/v1/spans")
    await_or_fail(api, {trace}, mark)
    return violations(api, str(BOOLEAN_RULE["name"]))


MEASUREMENTS["python-example"] = Probe(
    "python-example", measure_python_example, lambda data: {}, _ports, 60.0
)


def measure_otel_exporter(params: Mapping[str, Any]) -> dict[str, Any]:
    """The send-traces page's OpenTelemetry exporter (`params["source"]`), run as readers run
    it, against the real backend listening where it sends, with the page's rule created first:
    the spans the block itself makes with the SDK, and a trace with boolean attributes made by
    a second provider with the page's exporter. The trace ids are taken as the page's
    `to_betrace` converts spans (its batch processor exports only when the provider shuts down
    here, so the wrapper is in place before the first export)."""
    import contextlib
    import io

    from opentelemetry.sdk.trace import TracerProvider

    rule = json.loads(params["rule"])
    seen: set[str] = set()
    with started(params) as api:
        api.post_json("/v1/rules", rule)
        api.post_json("/v1/rules", BOOLEAN_RULE)
        scope: dict[str, Any] = {"__name__": "__main__"}  # run as a program, as the page says
        mark = api.log_mark()
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(params["source"], "betrace_exporter.py", "exec"), scope)  # noqa: S102 (the page's own example, in the probe's namespace)
        convert = scope["to_betrace"]

        def recording(span: Any) -> dict[str, Any]:
            out: dict[str, Any] = convert(span)
            seen.add(str(out["traceId"]))
            return out

        scope["to_betrace"] = recording
        scope["provider"].shutdown()
        await_or_fail(api, set(seen), mark)
        found = api.call("GET", f"/v1/violations?ruleId={rule['name']}").json() or {}
        own = TracerProvider()
        scope["add_betrace"](own)
        tracer = own.get_tracer("probe")
        before, mark = set(seen), api.log_mark()
        with (
            tracer.start_as_current_span("check", attributes={"verified": True}),
            tracer.start_as_current_span("retry", attributes={"final": False}),
        ):
            pass
        own.shutdown()
        await_or_fail(api, seen - before, mark)
        booleans = violations(api, str(BOOLEAN_RULE["name"]))
    return {
        "traces": len(before),
        "violations": found.get("totalCount"),
        "violation_kinds": sorted(
            violation_kind(str(v.get("message"))) for v in found.get("violations") or []
        ),
        "boolean_violations": booleans,
        "behaviour": exporter.behaviour(scope),
    }


MEASUREMENTS["otel-exporter"] = Probe(
    "otel-exporter", measure_otel_exporter, lambda data: {}, _ports, 60.0
)
