"""The send-traces page's OpenTelemetry exporter (its block titled TITLE), measured against the
page's claims: what it posts and when. The exporter probe measures it beside the real backend,
posting to a loopback server of its own (tests/test_probes.py); the page's gate measures it in
the page's jail when it runs the block (gate/pyrun.py), so that `pytest docs/` fails the block,
at its line, where the exporter breaks what the page says of it. There the posts never reach a
socket: urllib's opener is one whose handler keeps each request's body (the gate opens no
network connection at all, tests/test_safety.py), which measures an exporter that posts with
urllib, as the page's does. The page's code runs in the process that measures it, never in the
gate's or the tests'.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import urllib.error
import urllib.request
import urllib.response
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..release import ReleaseData

#: The title of the send-traces page's exporter block: a Python block of that title is measured
TITLE = "betrace_exporter.py"


class _Inbox(Protocol):
    """Where the posted bodies go, and the status the posts are answered with."""

    bodies: list[dict[str, Any]]
    status: int


class _Kept:
    """An inbox in the measuring process itself, for the posts to `url`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.bodies: list[dict[str, Any]] = []
        self.status = 200


class _Keeping(urllib.request.BaseHandler):
    """urllib's handler of http(s) requests that keeps each body in the inbox and answers with
    its status (urllib's error processor turns one of 400 into HTTPError, as from a server)."""

    handler_order = 100  # before urllib's own HTTP handlers

    def __init__(self, inbox: _Kept) -> None:
        self.inbox = inbox

    def http_open(self, request: urllib.request.Request) -> urllib.response.addinfourl:
        if request.full_url != self.inbox.url:  # as a URL where nothing listens
            raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
        self.inbox.bodies.append(json.loads(request.data or b"{}"))  # type: ignore[arg-type]
        answer = urllib.response.addinfourl(
            io.BytesIO(b"{}"), Message(), request.full_url, self.inbox.status
        )
        answer.msg = "OK" if self.inbox.status < 400 else "Bad Request"  # type: ignore[attr-defined]
        return answer

    https_open = http_open


@contextlib.contextmanager
def _receiving(in_process: bool) -> Iterator[tuple[str, _Inbox]]:
    """A URL to post to and the inbox behind it: a loopback server of this process, or
    (`in_process`) urllib's opener, which keeps the posts without a socket."""
    if in_process:
        inbox = _Kept("http://betrace.invalid/v1/spans")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _Keeping(inbox))
        urllib.request.install_opener(opener)
        try:
            yield inbox.url, inbox
        finally:
            urllib.request.install_opener(None)
        return
    server = _Catcher(("127.0.0.1", 0), _Catch)
    server.bodies = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1/spans", server
    finally:
        server.shutdown()
        server.server_close()


class _Catcher(ThreadingHTTPServer):
    """A loopback HTTP server of the probe's own namespace that keeps each JSON body posted to
    it and answers with `status`."""

    bodies: list[dict[str, Any]]
    status: int = 200


class _Catch(BaseHTTPRequestHandler):
    server: _Catcher

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(self.server.status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def behaviour(scope: dict[str, Any], in_process: bool = False) -> dict[str, Any]:
    """What the page's BeTraceExporter posts, and when (_receiving: to a loopback server, or
    kept by urllib's opener); each span handed to it as it ends, no batching: the grouping
    measured is the exporter's:
    whether a child went out before its trace's first span here ended, the requests of one
    trace, attribute values as sent, a trace of MAX_SPANS + 1 spans, a refused request, spans
    left waiting at shutdown, and a span whose parent is in another process."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    out: dict[str, Any] = {}
    with _receiving(in_process) as (url, server):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(scope["BeTraceExporter"](url)))
        tracer = provider.get_tracer("probe")
        values: dict[str, Any] = {"verified": True, "final": False, "tags": ["a", "b"]}
        values["ratio"] = 0.5
        with tracer.start_as_current_span("payment.charge", attributes=values):
            with tracer.start_as_current_span("payment.skip_fraud_check"):
                pass
            out["posted_before_the_trace_ended"] = len(server.bodies)
        out["requests_of_one_trace"] = len(server.bodies)
        spans = server.bodies[0]["spans"] if server.bodies else []
        out["parent_linked"] = bool(spans) and spans[0].get("parentSpanId") == spans[-1]["spanId"]
        out["attributes"] = spans[-1]["attributes"] if spans else {}
        out["times"] = [span.get(k) for span in spans for k in ("startTime", "endTime")]
        server.bodies.clear()
        with tracer.start_as_current_span("root"):
            for n in range(int(scope["MAX_SPANS"]) + 1):
                with tracer.start_as_current_span(f"step_{n}"):
                    pass
        out["request_sizes"] = [len(b["spans"]) for b in server.bodies]
        out["largest_body"] = max((len(json.dumps(b)) for b in server.bodies), default=0)
        out["max_spans"] = int(scope["MAX_SPANS"])
        server.bodies.clear()
        remote = trace.SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=trace.TraceFlags(1))
        context = trace.set_span_in_context(trace.NonRecordingSpan(remote))
        with tracer.start_as_current_span("handle", context=context):
            pass
        out["remote_parent_posted"] = len(server.bodies)
        out |= _exporter_shutdown_and_refusal(scope["BeTraceExporter"](url), server)
        out["add_betrace_posted"] = _posted_by_add_betrace(scope["add_betrace"], url, server)
    return out


def _posted_by_add_betrace(add_betrace: Any, url: str, server: _Inbox) -> int:
    """The page's add_betrace given a URL (the probe's server, not the page's default): the
    spans posted there once its provider shuts down."""
    from opentelemetry.sdk.trace import TracerProvider

    server.bodies.clear()
    server.status = 200
    provider = TracerProvider()
    add_betrace(provider, url)
    with provider.get_tracer("probe").start_as_current_span("given_url"):
        pass
    provider.shutdown()
    return sum(len(b["spans"]) for b in server.bodies)


def _exporter_shutdown_and_refusal(exporter: Any, server: _Inbox) -> dict[str, Any]:
    """The page's exporter handed spans directly: one left waiting for its trace (sent at
    shutdown), then one the server refuses (a failure, not sent again)."""
    from opentelemetry.sdk.trace import TracerProvider

    out: dict[str, Any] = {}
    server.bodies.clear()
    loose = TracerProvider().get_tracer("probe")
    with loose.start_as_current_span("root"), loose.start_as_current_span("child") as child:
        pass
    exporter.export([child])
    out["waiting_before_shutdown"] = len(server.bodies)
    exporter.shutdown()
    out["sent_at_shutdown"] = [s["name"] for b in server.bodies for s in b["spans"]]
    server.bodies.clear()
    server.status = 400
    with loose.start_as_current_span("alone") as alone:
        pass
    out["refused_result"] = exporter.export([alone]).name
    out["refused_requests"] = len(server.bodies)
    return out


def size_disagreements(found: dict[str, Any], data: ReleaseData) -> list[str]:
    """The exporter's requests against the backend's limits in the release data (spans per
    request, request body), and add_betrace's URL."""
    backend = data.current.backend
    spans, body = backend.limit("spans_per_request").value, backend.limit("request_body").value
    out = []
    if found["max_spans"] > spans:
        out.append(
            f"MAX_SPANS is {found['max_spans']}: the backend answers 400 to more than "
            f"{spans} spans in one request (releases.yaml "
            "backend.limits spans_per_request), and the trace is lost"
        )
    if found["largest_body"] > body:
        out.append(
            f"a request of MAX_SPANS spans with no attributes was {found['largest_body']} "
            f"bytes, over the backend's {body} (request_body): the page says "
            "it stays well under"
        )
    if found["add_betrace_posted"] != 1:
        out.append(
            "add_betrace(provider, url) did not post to the URL it was given: "
            f"{found['add_betrace_posted']} span(s) arrived there"
        )
    return out


def disagreements(found: dict[str, Any], data: ReleaseData) -> list[str]:
    """Each claim of the page the measured behaviour breaks, in the page's words."""
    out = size_disagreements(found, data)
    if found["posted_before_the_trace_ended"] != 0 or found["requests_of_one_trace"] != 1:
        out.append(
            "the page says the exporter keeps a trace's spans until its first span here ends, "
            f"then posts them in one request; measured {found['posted_before_the_trace_ended']} "
            f"request(s) before it ended and {found['requests_of_one_trace']} in all"
        )
    if not all(_nanoseconds(t) for t in found["times"]):
        out.append(
            f"span times were sent as {found['times'][:2]}: the page's field table says "
            "nanoseconds since the epoch, as strings (the backend reads them so)"
        )
    if not found["parent_linked"]:
        out.append("the child span was not posted with its parent's span id")
    if found["attributes"] != {"verified": "true", "final": "false", "tags": "a,b", "ratio": "0.5"}:
        out.append(f"attribute values were sent as {found['attributes']}")
    if found["request_sizes"] != [found["max_spans"], 2]:
        out.append(f"a trace of MAX_SPANS + 2 spans went in requests of {found['request_sizes']}")
    if found["remote_parent_posted"] != 1:
        out.append("a span whose parent is in another process did not close its trace here")
    if (found["waiting_before_shutdown"], found["sent_at_shutdown"]) != (0, ["child"]):
        out.append("spans waiting for their trace were not sent at shutdown")
    if (found["refused_result"], found["refused_requests"]) != ("FAILURE", 1):
        out.append("a refused request was not a failure, or was sent again")
    return out


#: nanoseconds since the epoch have 19 digits from 2001-09-09 to 2286; microseconds 16
_NS_DIGITS = 19


def _nanoseconds(value: object) -> bool:
    """A span time as the page says the exporter sends it: nanoseconds since the epoch, as a
    string of digits."""
    return isinstance(value, str) and value.isdigit() and len(value) == _NS_DIGITS
