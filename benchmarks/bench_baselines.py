"""Baselines measured in the same run as the gate, so that the gate's figures can be given as
ratios that carry over between machines:

- `python -c pass`: the interpreter's start-up;
- the tool floor: one representative call of each external program the gate runs, timed outside
  the gate; times the number of calls the gate's profile recorded, it is the time those calls
  cannot go below on this machine;
- instruction counts (callgrind) of the engine's in-process work, which do not depend on load.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SNIPPET = 'name="world"\necho "hello, $name"\n'


@dataclass(frozen=True)
class ToolCall:
    """A representative call of one program the gate runs (a tool name of the gate's profile)."""

    tool: str
    argv: list[str]  # argv[0] is looked up on PATH
    stdin: str = ""
    note: str = ""


def tool_calls(root: Path, scratch: Path, python: str) -> list[ToolCall]:
    """One call per program, on the checkout's own artefacts, as the gate's calls are."""
    chart = str(root / "helm" / "betrace")
    compose = str(root / "docker" / "docker-compose.yml")
    nix_file = scratch / "floor.nix"
    nix_file.write_text("{ a = 1; b = [ 2 3 ]; }\n", encoding="utf-8")
    return [
        ToolCall("helm", ["helm", "template", "betrace", chart]),
        ToolCall("helm3", ["helm3", "template", "betrace", chart]),
        ToolCall(
            "docker-compose",
            ["docker-compose", "-f", compose, "config", "-q", "--no-interpolate"],
            note="without interpolation: the stack's required secrets are not set here",
        ),
        ToolCall("shellcheck", ["shellcheck", "-f", "json1", "-s", "bash", "-"], SNIPPET),
        ToolCall("nix-instantiate", ["nix-instantiate", "--parse", str(nix_file)]),
        ToolCall("nix", ["nix", "--version"], note="start-up only; the gate's calls evaluate"),
        ToolCall("bash -n", ["bash", "-n"], SNIPPET),
        ToolCall("bash", ["bash", "-c", "true"]),
        ToolCall("git", ["git", "-C", str(root), "ls-files", "--cached"]),
        ToolCall("curl", ["curl", "--version"], note="start-up only"),
        ToolCall("python", [python, "-m", "betrace_dist.cli", "release", "check"]),
    ]


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's reaped children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_call(call: ToolCall, env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one call."""
    binary = shutil.which(call.argv[0], path=env.get("PATH"))
    if binary is None:
        raise FileNotFoundError(call.argv[0])
    cpu = children_cpu()
    start = time.perf_counter()
    done = subprocess.run(
        [binary, *call.argv[1:]],
        input=call.stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(call.argv)}: exit {done.returncode}: {done.stderr[-500:]}")
    return elapsed, children_cpu() - cpu


def tool_units(
    calls: list[ToolCall], env: dict[str, str], cwd: Path, runs: int
) -> dict[str, dict[str, Any]]:
    """Median wall and CPU seconds of one call of each program (the first call is a warm-up,
    not counted: the floor is what a call costs once the disk cache holds the binary)."""
    units: dict[str, dict[str, Any]] = {}
    for call in calls:
        try:
            first, _ = time_call(call, env, cwd)
            times = [time_call(call, env, cwd) for _ in range(max(runs, 3))]
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            units[call.tool] = {"error": str(exc), "argv": call.argv}
            continue
        units[call.tool] = {
            "median_s": round(statistics.median(t[0] for t in times), 4),
            "cpu_median_s": round(statistics.median(t[1] for t in times), 4),
            "first_s": round(first, 4),
            "runs": len(times),
            "argv": " ".join(Path(a).name if "/" in a else a for a in call.argv),
            "note": call.note,
        }
    return units


def tool_floor(units: dict[str, dict[str, Any]], profile: dict[str, Any]) -> dict[str, Any]:
    """The gate's tool calls priced at the bare cost of one call: the sum of calls times unit.
    Programs the gate ran without a representative are listed, not guessed."""
    floor, floor_cpu, once, missing = 0.0, 0.0, 0.0, []
    for name, tool in profile.get("tools", {}).items():
        unit = units.get(name, {})
        if unit.get("median_s") is None:
            missing.append(name)
            continue
        floor += tool["calls"] * unit["median_s"]
        floor_cpu += tool["calls"] * unit.get("cpu_median_s", 0.0)
    for unit in units.values():
        once += unit.get("median_s", 0.0)
    return {
        "floor_s": round(floor, 3),
        "floor_cpu_s": round(floor_cpu, 3),
        "each_once_s": round(once, 3),
        "without_representative": sorted(missing),
    }


def python_startup(python: str, env: dict[str, str], runs: int = 15) -> dict[str, Any]:
    """`python -c pass`, median wall and CPU seconds of `runs` (after one warm-up)."""
    call = ToolCall("python -c pass", [python, "-c", "pass"])
    time_call(call, env, Path.cwd())
    times = [time_call(call, env, Path.cwd()) for _ in range(runs)]
    return {
        "median_s": round(statistics.median(t[0] for t in times), 4),
        "cpu_median_s": round(statistics.median(t[1] for t in times), 4),
        "runs": runs,
    }


# -- instruction counts ---------------------------------------------------------------------------
#: The engine's in-process work between two markers: a call of getppid() (which nothing else in
#: the process makes) makes callgrind dump its counters, so the parts are counted apart.
#: The page whose ledger is counted: the one `make check` runs. The ledger of every page took
#: over 40 minutes under callgrind on 2 cores (about 12 s without it), too long for a benchmark.
COUNTED_PAGE = "docs/guides/deploy-with-docker-compose.md"
LEDGER_SCRIPT = """\
import os, sys
from pathlib import Path
from betrace_dist.gate.collect import Gate
gate = Gate(Path(sys.argv[1]))
gate.prepare()
os.getppid()
result = gate.analyse(Path(sys.argv[2]))
os.getppid()
print(len(result.items))
"""
#: Seconds callgrind may take for one count before it is stopped and the report says so.
CALLGRIND_TIMEOUT = 1200
EMPTY_SCRIPT = "import os\nos.getppid()\nos.getppid()\n"


def callgrind_available(path: str) -> str | None:
    return shutil.which("valgrind", path=path)


def callgrind_parts(valgrind: str, argv: list[str], env: dict[str, str], cwd: Path) -> list[int]:
    """Instructions executed (Ir) before the first marker, between the markers, and after."""
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as out:
        cmd = [
            valgrind,
            "--tool=callgrind",
            f"--callgrind-out-file={out}/cg.out",
            "--dump-before=getppid",
            *argv,
        ]
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            check=False,
            timeout=CALLGRIND_TIMEOUT,
        )
        if done.returncode != 0:
            raise RuntimeError(f"callgrind failed: {done.stderr[-800:]}")
        files = sorted(Path(out).glob("cg.out*"), key=_dump_order)
        return [_total_ir(f.read_text(errors="replace")) for f in files]


def _dump_order(path: Path) -> int:
    """cg.out.1, cg.out.2, ... are the dumps in order; cg.out (no number) is the final part."""
    suffix = path.name.rsplit(".", 1)[-1]
    return int(suffix) if suffix.isdigit() else 1 << 30


def _total_ir(text: str) -> int:
    match = re.search(r"^(?:totals|summary):\s+(\d+)", text, re.M)
    if not match:
        raise ValueError("no totals line in the callgrind output")
    return int(match[1])


def instruction_counts(
    valgrind: str, python: str, site: Path, env: dict[str, str], cwd: Path
) -> dict[str, Any]:
    """Ir of the ledger of one page (COUNTED_PAGE: render, lex, checker lookup; no external tool
    runs) and of an empty interpreter, both with a fixed hash seed and warm bytecode (run once
    before). Past CALLGRIND_TIMEOUT the count is stopped and the result says so."""
    env = dict(env, PYTHONHASHSEED="0")
    ledger_argv = [python, "-c", LEDGER_SCRIPT, str(site), str(cwd / COUNTED_PAGE)]
    subprocess.run(ledger_argv, env=env, cwd=cwd, capture_output=True, check=True)  # warm caches
    start = time.perf_counter()
    try:
        setup, ledger, _ = callgrind_parts(valgrind, ledger_argv, env, cwd)
    except subprocess.TimeoutExpired:
        return {"tool": "valgrind --tool=callgrind", "stopped_after_s": CALLGRIND_TIMEOUT}
    seconds = time.perf_counter() - start
    empty = callgrind_parts(valgrind, [python, "-c", EMPTY_SCRIPT], env, cwd)
    python_ir = sum(empty)
    return {
        "tool": "valgrind --tool=callgrind",
        "page": COUNTED_PAGE,
        "ledger_ir": ledger,
        "imports_and_site_load_ir": setup,
        "python_pass_ir": python_ir,
        "ledger_per_python_pass": round(ledger / python_ir, 2),
        "seconds_under_callgrind": round(seconds, 1),
    }


def perf_instructions(path: str) -> str:
    """Whether `perf stat -e instructions` counts here (it does not in many virtual machines)."""
    perf = shutil.which("perf", path=path)
    if perf is None:
        return "perf not installed"
    done = subprocess.run(
        [perf, "stat", "-x,", "-e", "instructions", "true"],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, LC_ALL="C"),
    )
    text = done.stderr.strip()
    if "not supported" in text or "not counted" in text or done.returncode != 0:
        return f"not supported here ({text.splitlines()[-1] if text else done.returncode})"
    return "supported"


_JAIL_SCRIPT = """
import json, statistics, sys, tempfile, time
from pathlib import Path
from betrace_dist.gate.isolation import Jail, hand_over, run_bounded
runs = int(sys.argv[1])
box = Path(tempfile.mkdtemp(prefix="bench-jail-"))
hand_over(box)
jail = Jail(box, time.monotonic() + 600)
env = {"PATH": "/usr/bin:/bin"}
jail.run(["true"], box, env, 30)  # warm-up: makes the page's network namespace and cgroups
def timed(run):
    started = time.perf_counter()
    run()
    return time.perf_counter() - started
jailed = [timed(lambda: jail.run(["true"], box, env, 30)) for _ in range(runs)]
plain = [timed(lambda: run_bounded(["true"], env, 30)) for _ in range(runs)]
jail.close()
print(json.dumps({"runs": runs, "jailed_ms": 1000 * statistics.median(jailed),
                  "plain_ms": 1000 * statistics.median(plain)}))
"""


def jail_overhead(python: str, env: dict[str, str], cwd: Path, runs: int = 30) -> dict[str, Any]:
    """What the isolation adds to one command: `true` run in the page's jail (bwrap, nsenter,
    prlimit, setpriv, cgroups) against `true` run plainly, medians of `runs` each."""
    done = subprocess.run(
        [python, "-c", _JAIL_SCRIPT, str(runs)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip()[-300:]}
    result: dict[str, Any] = json.loads(done.stdout)
    result["overhead_ms"] = round(result["jailed_ms"] - result["plain_ms"], 2)
    return result


def isolation_per_block(jail: dict[str, Any], tools: dict[str, Any], blocks: int) -> float | None:
    """Milliseconds the isolation adds per block: its overhead per command times the jailed
    commands of the gate run (every jailed command starts with prlimit), divided by blocks."""
    calls = (tools.get("prlimit") or {}).get("calls")
    if "overhead_ms" not in jail or not calls or not blocks:
        return None
    return round(jail["overhead_ms"] * calls / blocks, 2)
