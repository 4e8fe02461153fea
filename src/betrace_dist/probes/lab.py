"""What a probe runs with, inside its own network namespace (only loopback exists there).

A `Lab` starts the real backend program on loopback ports of its own, speaks HTTP to it, and can
stand up a real OTLP gRPC receiver (grpcio's server, answering every Export with an empty
response, which is the protocol's success) that records what the backend exported. Nothing here
runs on the host's interfaces: `run.py` starts the probe's process in a namespace first.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backend_run import Answer, Backend

__all__ = ["Answer", "Backend", "Receiver"]


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
