"""The real BeTrace backend, run where it can reach no interface but loopback: the one place
that says how it is started.

The backend binds every interface (upstream's `backend/cmd/betrace-backend/main.go` listens on
`:PORT`), so the project runs it only in a network namespace of its own whose one interface is
loopback, brought up there. `loopback_argv` wraps a command line in such a namespace
(`unshare -rn`, a user and a network namespace, no privilege needed), or leaves it as it is
when this process already is in one (the gate's jail). Inside the namespace, `Backend` starts
it on loopback ports of its own, waits for its health answer, speaks HTTP to it and stops it
(the probes and the rules engine). Which program: `upstream.named_backend()`, the one named
by BETRACE_LIVE_BACKEND, else the project's build of the pinned source. The gate's live tier
starts the backend in the page's own jail instead (isolation.Jail.start), because the page's
`curl` must reach it there.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import tools

ENV_VAR = "BETRACE_LIVE_BACKEND"
#: Seconds the backend gets to answer GET /v1/health after it starts.
START_TIMEOUT = 15.0
#: Longest wait for the backend to evaluate a trace: 3 s after its last span on a 1 s tick
#: (span_service.go, trace_buffer_fsm.go at the pinned commit), plus a loaded machine's delay.
EVALUATION_LIMIT = 30.0


def traces_settled(log: str, trace_ids: Iterable[str]) -> bool:
    """Whether a backend log shows each trace evaluated and every trace-level violation it found
    recorded. At the pinned commit, `onTraceComplete` (internal/grpc/services/span_service.go)
    logs "Trace evaluation complete: trace_id=T matched_rules=N" and then, per matched rule,
    "Trace-level violation recorded: rule=R trace=T spans=S" (or "Error recording trace-level
    violation ..."): the events to wait for, where a fixed pause is a race with the machine."""
    errors = log.count("Error recording trace-level violation")
    for trace in trace_ids:
        evaluated = re.search(
            rf"Trace evaluation complete: trace_id={re.escape(trace)} matched_rules=(\d+)", log
        )
        if evaluated is None:
            return False
        after = log[evaluated.end() :]
        recorded = len(
            re.findall(rf"violation recorded: rule=\S+ trace={re.escape(trace)} ", after)
        )
        if recorded + errors < int(evaluated[1]):
            return False
    return True


class BackendError(Exception):
    """The backend cannot be run here (no namespace); the message says why."""


def loopback_only() -> bool:
    """True inside a network namespace whose only interface is loopback (the gate's jail, or
    a namespace the caller made): the backend can run there as it is."""
    try:
        return [name for _, name in socket.if_nameindex()] == ["lo"]  # this namespace's own
    except OSError:
        return False


def loopback_argv(argv: list[str]) -> list[str]:
    """`argv` run in a network namespace of its own whose one interface, loopback, is up, and
    in a PID namespace of its own, where `argv` is process 1: when it ends, the kernel kills
    every process it left behind (a backend started with `&`), and `--kill-child` ends it when
    `unshare` is killed. Unchanged where this process already has only loopback."""
    if loopback_only():
        return argv
    found = {tool: tools.find(tool) for tool in ("unshare", "ip", "sh")}
    for tool, path in found.items():
        if path is None:
            raise BackendError(
                f"'{tool}' is needed to run the backend on a private loopback "
                f"({tools.TOOLS[tool].hint})"
            )
    unshare, ip, sh = (str(found[tool]) for tool in ("unshare", "ip", "sh"))
    up = f'{shlex.quote(ip)} link set lo up && exec "$@"'
    return [unshare, "-rn", "--pid", "--fork", "--kill-child", sh, "-c", up, "sh", *argv]


@dataclass
class Answer:
    status: int
    body: str
    headers: dict[str, str]

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class Backend:
    """One run of the real backend program on loopback ports of its own."""

    program: Path
    data: Path
    http_port: int
    grpc_port: int
    env: dict[str, str] = field(default_factory=dict)
    #: where its output goes (default: a new file beside the data folder at each start)
    log_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    #: seconds from its last start until /v1/health answered
    started_in: float | None = None

    def start(self) -> Backend:
        self.data.mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.data)}
        env |= {"BETRACE_DATA_DIR": str(self.data)}
        env |= {"BETRACE_PORT_BACKEND": str(self.http_port)}
        env |= {"BETRACE_PORT_GRPC": str(self.grpc_port)} | self.env
        new = f"{self.data.name}-{self.http_port}-{time.monotonic_ns()}.log"
        self.log = self.log_file or self.data.parent / new
        begun = time.monotonic()
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(self.program)],
                cwd=self.data,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self._wait_healthy()
        self.started_in = round(time.monotonic() - begun, 3)
        return self

    def _wait_healthy(self) -> None:
        assert self.proc is not None
        end = time.monotonic() + START_TIMEOUT
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the backend exited with {self.proc.returncode}: {self.text()}")
            with contextlib.suppress(OSError):
                if self.call("GET", "/v1/health").status == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"the backend did not answer /v1/health in {START_TIMEOUT:g} s")

    def call(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30)
        try:
            data = body.encode() if isinstance(body, str) else body
            sent = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=sent | (headers or {}))
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
            return Answer(resp.status, text, {k.lower(): v for k, v in resp.getheaders()})
        finally:
            conn.close()

    def post_json(self, path: str, value: object) -> Answer:
        return self.call("POST", path, json.dumps(value))

    def stop(self, sig: int = signal.SIGTERM, limit: float = 90.0) -> float:
        """Send `sig` and wait for the exit; the seconds it took (the process is killed past
        `limit`, and the time returned is then `limit`)."""
        if self.proc is None:
            return 0.0
        start = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        return round(time.monotonic() - start, 2)

    def text(self, since: int = 0) -> str:
        """Its log (from byte `since`)."""
        if self.log is None or not self.log.is_file():
            return ""
        with self.log.open("rb") as read:
            read.seek(since)
            return read.read().decode("utf-8", "replace")

    def log_mark(self) -> int:
        """Where its log ends now: take it before sending spans, for `await_traces`."""
        return self.log.stat().st_size if self.log is not None and self.log.is_file() else 0

    def await_traces(
        self, trace_ids: Iterable[str], since: int = 0, limit: float = EVALUATION_LIMIT
    ) -> bool:
        """Wait until the log after `since` shows each trace evaluated and its violations
        recorded (`traces_settled`); False if that took longer than `limit` seconds."""
        wanted = set(trace_ids)
        end = time.monotonic() + limit
        while not traces_settled(self.text(since), wanted):
            if time.monotonic() >= end:
                return False
            time.sleep(0.1)
        return True


def violation_kind(message: str) -> str:
    """The kind of a recorded violation, from its message: every span is evaluated alone on
    arrival ("span") and every trace as a whole once complete ("trace"), each with its own
    message (`IngestSpans` and `onTraceComplete` in internal/grpc/services/span_service.go)."""
    return "trace" if "' matched trace '" in message else "span"
