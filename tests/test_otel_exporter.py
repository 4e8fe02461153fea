"""The send-traces page's OpenTelemetry exporter, as the page writes it, with the real SDK
against a loopback HTTP server this test starts: what it posts, and when. test_probes.py runs
it on the real backend; here each claim of the page about grouping, strings and failures is
taken apart where the backend's verdict could not show it (a trace posted in one piece and a
trace posted in two look alike when both pieces arrive within a second)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from .test_probes import EXPORTER, SEND_TRACES, block


class Catcher(ThreadingHTTPServer):
    bodies: list[dict[str, Any]]
    status: int


class _Handler(BaseHTTPRequestHandler):
    server: Catcher

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"accepted": 0, "rejected": 0, "errors": []}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def page() -> dict[str, Any]:
    """The page's block run as a module (its `__main__` part, which sends spans, left out)."""
    scope: dict[str, Any] = {"__name__": "betrace_exporter"}
    exec(compile(block(SEND_TRACES, "python", EXPORTER), EXPORTER, "exec"), scope)  # noqa: S102 (this project's page)
    return scope


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    server = Catcher(("127.0.0.1", 0), _Handler)
    server.bodies, server.status = [], 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _tracer(page: dict[str, Any], catcher: Catcher) -> tuple[Any, TracerProvider]:
    """A provider that hands each span to the page's exporter as it ends (no batching: the
    grouping under test is the exporter's own)."""
    exporter = page["BeTraceExporter"](f"http://127.0.0.1:{catcher.server_port}/v1/spans")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), provider


def test_a_trace_is_posted_once_its_first_span_here_ends(page: dict[str, Any], catcher: Catcher):
    tracer, provider = _tracer(page, catcher)
    with tracer.start_as_current_span("payment.charge", attributes={"amount": 1500}) as root:
        with tracer.start_as_current_span("payment.skip_fraud_check"):
            pass
        assert catcher.bodies == [], "the child was posted before its trace was complete"
    (body,) = catcher.bodies
    child, charge = body["spans"]
    trace_id = f"{root.get_span_context().trace_id:032x}"
    assert {child["traceId"], charge["traceId"]} == {trace_id}
    assert child["parentSpanId"] == charge["spanId"] and "parentSpanId" not in charge
    assert charge["attributes"] == {"amount": "1500"}
    assert int(charge["endTime"]) >= int(child["endTime"]) > int(charge["startTime"]) > 0
    provider.shutdown()


def test_a_span_whose_parent_is_in_another_process_closes_its_trace_here(
    page: dict[str, Any], catcher: Catcher
) -> None:
    tracer, provider = _tracer(page, catcher)
    remote = trace.SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=trace.TraceFlags(1))
    with tracer.start_as_current_span(
        "handle", context=trace.set_span_in_context(trace.NonRecordingSpan(remote))
    ):
        pass
    (body,) = catcher.bodies
    assert body["spans"][0]["parentSpanId"] == f"{0xDEF:016x}"
    provider.shutdown()


def test_values_become_the_strings_the_backend_reads(page: dict[str, Any], catcher: Catcher):
    tracer, provider = _tracer(page, catcher)
    given = {"verified": True, "final": False, "tags": ["a", "b"], "ratio": 0.5}
    with tracer.start_as_current_span("check", attributes=given):
        pass
    (body,) = catcher.bodies
    assert body["spans"][0]["attributes"] == {
        "verified": "true",
        "final": "false",
        "tags": "a,b",
        "ratio": "0.5",
    }
    provider.shutdown()


def test_a_large_trace_goes_in_requests_of_max_spans(page: dict[str, Any], catcher: Catcher):
    tracer, provider = _tracer(page, catcher)
    with tracer.start_as_current_span("root"):
        for n in range(page["MAX_SPANS"] + 1):
            with tracer.start_as_current_span(f"step_{n}"):
                pass
    assert [len(b["spans"]) for b in catcher.bodies] == [page["MAX_SPANS"], 2]
    provider.shutdown()


def test_a_refused_request_is_a_failure_and_not_sent_again(page: dict[str, Any], catcher: Catcher):
    catcher.status = 400
    exporter = page["BeTraceExporter"](f"http://127.0.0.1:{catcher.server_port}/v1/spans")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("alone") as span:
        pass
    assert exporter.export([span]) is SpanExportResult.FAILURE  # type: ignore[list-item]
    assert len(catcher.bodies) == 1


def test_spans_waiting_for_their_trace_are_sent_at_shutdown(page: dict[str, Any], catcher: Catcher):
    exporter = page["BeTraceExporter"](f"http://127.0.0.1:{catcher.server_port}/v1/spans")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("root"), tracer.start_as_current_span("child") as child:
        pass
    assert exporter.export([child]) is SpanExportResult.SUCCESS  # type: ignore[list-item]
    assert catcher.bodies == []
    exporter.shutdown()
    assert [s["name"] for s in catcher.bodies[0]["spans"]] == ["child"]


def test_a_url_that_is_not_http_is_refused(page: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not an http"):
        page["BeTraceExporter"]("file:///etc/passwd")
