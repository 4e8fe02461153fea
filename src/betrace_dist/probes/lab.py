"""What a probe runs with, inside its own network namespace (only loopback exists there).

A `Lab` starts the real backend program on loopback ports of its own, speaks HTTP to it, and can
stand up a real OTLP gRPC receiver (grpcio's server, answering every Export with an empty
response, which is the protocol's success) that records what the backend exported. Nothing here
runs on the host's interfaces: `run.py` starts the probe's process in a namespace first.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Seconds the backend gets to answer GET /v1/health after it starts.
START_TIMEOUT = 15.0


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
class Receiver:
    """A real OTLP gRPC receiver on loopback: every call succeeds with an empty message (an
    empty ExportTraceServiceResponse or ExportMetricsServiceResponse), and is recorded."""

    port: int
    calls: list[tuple[str, bytes]] = field(default_factory=list)
    _server: Any = None

    def start(self) -> Receiver:
        import grpc

        receiver = self

        class Anything(grpc.GenericRpcHandler):  # type: ignore[misc]
            def service(self, details: Any) -> Any:
                method = details.method

                def answer(request: bytes, context: Any) -> bytes:
                    receiver.calls.append((method, request))
                    return b""

                return grpc.unary_unary_rpc_method_handler(answer)

        from concurrent.futures import ThreadPoolExecutor

        self._server = grpc.server(ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers((Anything(),))
        self._server.add_insecure_port(f"127.0.0.1:{self.port}")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(0)

    def methods(self) -> list[str]:
        return sorted({method for method, _ in self.calls})

    def payload_has(self, text: str) -> bool:
        return any(text.encode() in body for _, body in self.calls)


@dataclass
class Backend:
    """One run of the real backend program on loopback ports of its own."""

    program: Path
    data: Path
    http_port: int
    grpc_port: int
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self) -> Backend:
        self.data.mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.data)}
        env |= {"BETRACE_DATA_DIR": str(self.data)}
        env |= {"BETRACE_PORT_BACKEND": str(self.http_port)}
        env |= {"BETRACE_PORT_GRPC": str(self.grpc_port)} | self.env
        self.log = self.data.parent / f"{self.data.name}-{self.http_port}-{time.monotonic_ns()}.log"
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

    def text(self) -> str:
        if self.log is None or not self.log.is_file():
            return ""
        return self.log.read_text(encoding="utf-8", errors="replace")


def grpc_status(port: int, method: str, request: bytes = b"") -> str:
    """The status name a unary gRPC call of `method` gets on loopback (OK, UNIMPLEMENTED, ...)."""
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(method)
        try:
            call(request, timeout=5)
        except grpc.RpcError as exc:
            return str(exc.code().name)
    return "OK"


def grpc_stream_status(port: int, method: str) -> str:
    """The status a bidirectional-stream call gets after one empty message (server reflection)."""
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.stream_stream(method)
        try:
            for _ in call(iter([b""]), timeout=5):
                break
        except grpc.RpcError as exc:
            return str(exc.code().name)
    return "OK"


def listening() -> list[str]:
    """Every listening TCP socket of this namespace as `address:port` (address `*` for all
    interfaces), read from /proc/net/tcp and /proc/net/tcp6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                cols = row.split()
                if cols[3] != "0A":  # TCP_LISTEN
                    continue
                address, port = cols[1].split(":")
                shown = "*" if set(address) == {"0"} else _address(address)
                found.add(f"{shown}:{int(port, 16)}")
    return sorted(found)


def _address(hexed: str) -> str:
    if len(hexed) == 8:
        return ".".join(str(int(hexed[i : i + 2], 16)) for i in (6, 4, 2, 0))
    return "ipv6:" + hexed.lower()
