"""The real BeTrace engine, as a throwaway backend on a private loopback.

`betrace-dist rules check` and the gate's rule blocks need the engine's own verdict on a rule
(does it compile? does it record a violation for these spans?). Two ways were measured on the
pinned commit: building a small Go program from the snapshot's `internal/dsl` package took
2 min 34 s cold (24 s of CPU on a loaded 2-core machine) and 2.1 s warm; the real backend answers
its health check about 0.1 s after it starts. The backend also applies what the parser alone
does not (the name and length limits of CreateRule, the trace buffer, the evaluator), so the
check starts the backend itself: one program, no second build to keep in step with it.

The backend binds every interface and has no setting for the address, so it runs only inside a
network namespace of its own whose only interface is loopback (`unshare -rn`), with a data
folder in a temporary directory that is deleted afterwards. The whole conversation (start, wait
for health, post rules, post spans, wait for their evaluation, read the violations) runs in that
namespace as `python -m betrace_dist.rules.engine`, reading a request and writing a result as
JSON, so nothing outside it can reach the backend.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .. import upstream
from ..tools import ToolMissing

#: the HTTP and gRPC ports of the throwaway backend: free ones, chosen in its namespace
PORTS = {"http": 0, "grpc": 0}
START_TIMEOUT = 15.0
#: the backend evaluates a trace 3 s after its last span, on a 1 s tick
#: (`internal/grpc/services/span_service.go`, `internal/services/trace_buffer_fsm.go`)
EVALUATION_TIMEOUT = 10.0
ENV_VAR = "BETRACE_LIVE_BACKEND"


class EngineError(Exception):
    """The engine could not be run (no program, no namespace, no start); the message says why."""


def backend_program() -> Path:
    """The backend program: BETRACE_LIVE_BACKEND, else the project's build of the pinned source
    (betrace_dist.upstream, built once into the ignored cache)."""
    named = os.environ.get(ENV_VAR)
    if named:
        path = Path(named).expanduser()
    else:
        try:
            path = upstream.backend_program()
        except (upstream.UpstreamError, ToolMissing) as exc:
            raise EngineError(f"the backend could not be built: {exc}") from None
    if not path.is_file() or not os.access(path, os.X_OK):
        raise EngineError(f"no BeTrace backend program at {path} (set {ENV_VAR})")
    return path


def loopback_only() -> bool:
    """True inside a network namespace whose only interface is loopback (the gate's jail, or
    a namespace the caller made): the backend can run there as it is."""
    try:
        return [name for _, name in socket.if_nameindex()] == ["lo"]  # this namespace's own
    except OSError:
        return False


def run(request: dict[str, Any], program: Path | None = None) -> dict[str, Any]:
    """Run one request on a fresh backend in a private network namespace; its result."""
    program = program or backend_program()
    src = str(Path(__file__).resolve().parents[2])
    command = [sys.executable, "-m", "betrace_dist.rules.engine"]
    if not loopback_only():
        for tool in ("unshare", "ip"):
            if shutil.which(tool) is None:
                raise EngineError(f"'{tool}' is needed to run the backend on a private loopback")
        command = ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *command]
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    payload = json.dumps(request | {"program": str(program)})
    done = subprocess.run(
        command, input=payload, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    if done.returncode != 0:
        detail = done.stderr.strip()[-800:]
        raise EngineError(f"the engine run failed ({done.returncode}): {detail}")
    result: dict[str, Any] = json.loads(done.stdout)
    if "error" in result:
        raise EngineError(result["error"])
    return result


# ---- inside the namespace ----------------------------------------------------------------


def _call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    url = f"http://127.0.0.1:{PORTS['http']}{path}"
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as answer:  # noqa: S310 - loopback only
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(program: str, data: Path, folder: Path) -> subprocess.Popen[bytes]:
    PORTS.update(http=_free_port(), grpc=_free_port())
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BETRACE_DATA_DIR": str(data),
        "BETRACE_PORT_BACKEND": str(PORTS["http"]),
        "BETRACE_PORT_GRPC": str(PORTS["grpc"]),
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1000",
    }
    log = (folder / "backend.log").open("wb")
    proc = subprocess.Popen([program], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=data)
    end = time.monotonic() + START_TIMEOUT
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise EngineError(f"the backend exited with {proc.returncode}: {_tail(folder)}")
        with contextlib.suppress(OSError):
            if _call("GET", "/v1/health")[0] == 200:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise EngineError(f"the backend did not answer /v1/health within {START_TIMEOUT:g} s")


def _tail(folder: Path) -> str:
    log = folder / "backend.log"
    text = log.read_text(errors="replace") if log.is_file() else ""
    return " | ".join(text.splitlines()[-3:])


def _message(answer: Any) -> str:
    if isinstance(answer, dict):
        return str(answer.get("message", answer))
    return str(answer).strip()


def _post_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for rule in rules:
        status, answer = _call("POST", "/v1/rules", rule)
        out.append({"name": rule["name"], "status": status, "message": _message(answer)})
    return out


def _evaluated(folder: Path, trace_ids: set[str]) -> bool:
    log = folder / "backend.log"
    text = log.read_text(errors="replace") if log.is_file() else ""
    return all(f"Trace evaluation complete: trace_id={t} " in text for t in trace_ids)


def _post_spans(folder: Path, traces: list[list[dict[str, Any]]]) -> dict[str, Any]:
    spans = [span for trace in traces for span in trace]
    if not spans:
        return {"accepted": 0, "violations": []}
    status, answer = _call("POST", "/v1/spans", {"spans": spans})
    if status != 200:
        return {"spans_error": f"POST /v1/spans answered {status}: {_message(answer)}"}
    ids = {span["traceId"] for span in spans}
    end = time.monotonic() + EVALUATION_TIMEOUT
    while not _evaluated(folder, ids) and time.monotonic() < end:
        time.sleep(0.2)
    time.sleep(0.2)  # violations are stored just after the log line
    _, listed = _call("GET", "/v1/violations?limit=1000")
    found = listed.get("violations", []) if isinstance(listed, dict) else []
    return {
        "evaluated": _evaluated(folder, ids),
        "violations": [_violation(v) for v in found],
    }


def _violation(listed: dict[str, Any]) -> dict[str, Any]:
    """A recorded violation, and its kind: every span is evaluated alone on arrival ("span") and
    every trace as a whole once complete ("trace"), each with its own message
    (`IngestSpans` and `onTraceComplete` in internal/grpc/services/span_service.go)."""
    message = str(listed.get("message", ""))
    kind = "trace" if "' matched trace '" in message else "span"
    return {
        "ruleId": listed.get("ruleId"),
        "traceId": listed.get("traceId"),
        "message": message,
        "kind": kind,
    }


def serve(request: dict[str, Any]) -> dict[str, Any]:
    """Start the backend, post the request's rules, then its traces; what the engine said."""
    folder = Path(tempfile.mkdtemp(prefix="betrace-rules-"))
    # a data folder the caller keeps across runs (a restart), else a throwaway one
    data = Path(request["data_dir"]) if request.get("data_dir") else folder / "data"
    data.mkdir(exist_ok=True)
    if request.get("rules_json") is not None:
        (data / "rules.json").write_text(request["rules_json"], encoding="utf-8")
    proc = None
    try:
        proc = _start(request["program"], data, folder)
        result: dict[str, Any] = {"rules": _post_rules(request.get("rules", []))}
        _, listed = _call("GET", "/v1/rules")
        result["listed"] = listed.get("rules", []) if isinstance(listed, dict) else []
        result |= _post_spans(folder, request.get("traces", []))
        return result
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGKILL)  # a throwaway data folder: nothing to flush
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    try:
        result = serve(json.loads(sys.stdin.read()))
    except EngineError as exc:
        result = {"error": str(exc)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
