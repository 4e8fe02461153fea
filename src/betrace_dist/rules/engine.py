"""The real BeTrace engine, as a throwaway backend on a private loopback.

`betrace-dist rules check` and the gate's rule blocks need the engine's own verdict on a rule
(does it compile? does it record a violation for these spans?). Two ways were measured on the
pinned commit: building a small Go program from the snapshot's `internal/dsl` package took
2 min 34 s cold (24 s of CPU on a loaded 2-core machine) and 2.1 s warm; the real backend answers
its health check about 0.1 s after it starts. The backend also applies what the parser alone
does not (the name and length limits of CreateRule, the trace buffer, the evaluator), so the
check starts the backend itself: one program, no second build to keep in step with it.

The backend binds every interface and has no setting for the address, so it runs only inside a
network namespace of its own whose only interface is loopback (backend_run.py), with a data
folder in a temporary directory that is deleted afterwards. The whole conversation (start, wait
for health, post rules, post spans, wait for their evaluation, read the violations) runs in that
namespace as `python -m betrace_dist.rules.engine`, reading a request and writing a result as
JSON, so nothing outside it can reach the backend.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import backend_run, upstream
from ..backend_run import Answer, Backend

#: the backend's OTLP export gives up after 1 s (no collector runs here)
_QUIET_EXPORT = {"OTEL_EXPORTER_OTLP_TIMEOUT": "1000"}
#: Wall-clock seconds one run (a backend started, its rules and traces sent, its answers read)
#: may take.
RUN_TIMEOUT = 120.0
#: the longest wait for a trace's evaluation (backend_run.EVALUATION_LIMIT says why)
EVALUATION_TIMEOUT = backend_run.EVALUATION_LIMIT


class EngineError(Exception):
    """The engine could not be run (no program, no namespace, no start); the message says why."""


def run(
    request: dict[str, Any], program: Path | None = None, bounds: Sequence[str] = ()
) -> dict[str, Any]:
    """Run one request on a fresh backend in a private network namespace; its result. `bounds`
    (a `prlimit ... --` prefix) hold the run and the backend it starts."""
    try:
        program = program or upstream.named_backend()
        engine = [sys.executable, "-m", "betrace_dist.rules.engine"]
        command = [*bounds, *backend_run.loopback_argv(engine)]
    except (upstream.UpstreamError, backend_run.BackendError) as exc:
        raise EngineError(str(exc)) from None
    src = str(Path(__file__).resolve().parents[2])
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    payload = json.dumps(request | {"program": str(program)})
    try:
        done = subprocess.run(
            command, input=payload, capture_output=True, text=True, env=env,
            timeout=RUN_TIMEOUT, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise EngineError(f"the run did not finish within {RUN_TIMEOUT:g} s") from None
    if done.returncode != 0:
        detail = done.stderr.strip()[-800:]
        raise EngineError(f"the engine run failed ({done.returncode}): {detail}")
    result: dict[str, Any] = json.loads(done.stdout)
    if "error" in result:
        raise EngineError(result["error"])
    return result


# ---- inside the namespace ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _message(answer: Answer) -> str:
    value = answer.json()
    return str(value.get("message", value)) if isinstance(value, dict) else answer.body.strip()


def _post_rules(api: Backend, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for rule in rules:
        answer = api.post_json("/v1/rules", rule)
        out.append({"name": rule["name"], "status": answer.status, "message": _message(answer)})
    return out


def _post_spans(api: Backend, traces: list[list[dict[str, Any]]]) -> dict[str, Any]:
    spans = [span for trace in traces for span in trace]
    if not spans:
        return {"accepted": 0, "violations": []}
    mark = api.log_mark()
    answer = api.post_json("/v1/spans", {"spans": spans})
    if answer.status != 200:
        return {"spans_error": f"POST /v1/spans answered {answer.status}: {_message(answer)}"}
    # the trace-level evaluation and its violations, as events of the backend's log
    evaluated = api.await_traces({span["traceId"] for span in spans}, mark, EVALUATION_TIMEOUT)
    listed = api.call("GET", "/v1/violations?limit=1000").json()
    found = listed.get("violations", []) if isinstance(listed, dict) else []
    return {"evaluated": evaluated, "violations": [_violation(v) for v in found]}


def _violation(listed: dict[str, Any]) -> dict[str, Any]:
    """A recorded violation, and its kind (backend_run.violation_kind)."""
    message = str(listed.get("message", ""))
    return {
        "ruleId": listed.get("ruleId"),
        "traceId": listed.get("traceId"),
        "message": message,
        "kind": backend_run.violation_kind(message),
    }


def serve(request: dict[str, Any]) -> dict[str, Any]:
    """Start the backend, post the request's rules, then its traces; what the engine said."""
    folder = Path(tempfile.mkdtemp(prefix="betrace-rules-"))
    # a data folder the caller keeps across runs (a restart), else a throwaway one
    data = Path(request["data_dir"]) if request.get("data_dir") else folder / "data"
    data.mkdir(exist_ok=True)
    if request.get("rules_json") is not None:
        (data / "rules.json").write_text(request["rules_json"], encoding="utf-8")
    log = folder / "backend.log"
    program = Path(request["program"])
    api = Backend(program, data, _free_port(), _free_port(), _QUIET_EXPORT, log_file=log)
    try:
        api.start()
        result: dict[str, Any] = {"rules": _post_rules(api, request.get("rules", []))}
        listed = api.call("GET", "/v1/rules").json()
        result["listed"] = listed.get("rules", []) if isinstance(listed, dict) else []
        result |= _post_spans(api, request.get("traces", []))
        return result
    except RuntimeError as exc:  # the backend did not start (backend_run.Backend)
        raise EngineError(str(exc)) from None
    finally:
        # a throwaway data folder: nothing to flush, unless the caller watches the way out
        api.stop(signal.SIGTERM if request.get("graceful_stop") else signal.SIGKILL)
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
