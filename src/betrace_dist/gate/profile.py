"""Opt-in timing of the doc gate: where a run spends its time.

Set ``BETRACE_GATE_PROFILE=path.json`` and run the gate; at exit the file holds, per block, its
wall time and the time spent inside external programs, plus totals per checker and per external
tool (helm, helm3, docker-compose, nix, shellcheck, bash, ...). The engine's own overhead of a
block is its wall time minus the external time inside it.

Off (the default), the only cost is one boolean test per block: nothing is patched or recorded.
Under pytest-xdist each worker writes its own file, ``path.gw0.json``, ``path.gw1.json``, ...
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV = "BETRACE_GATE_PROFILE"

#: True while a profile is being recorded (read by the hooks in collect.py and session.py).
ACTIVE = False


@dataclass
class _Tool:
    calls: int = 0
    seconds: float = 0.0


@dataclass
class _Block:
    page: str
    line: int
    checker: str
    language: str
    seconds: float
    external: float


@dataclass
class Recorder:
    """What one process recorded: tool calls, blocks and named engine phases."""

    tools: dict[str, _Tool] = field(default_factory=dict)
    blocks: list[_Block] = field(default_factory=list)
    phases: dict[str, _Tool] = field(default_factory=dict)
    external: float = 0.0  # running total of the time inside external programs

    def tool(self, name: str, seconds: float) -> None:
        entry = self.tools.setdefault(name, _Tool())
        entry.calls += 1
        entry.seconds += seconds
        self.external += seconds

    def phase(self, name: str, seconds: float) -> None:
        entry = self.phases.setdefault(name, _Tool())
        entry.calls += 1
        entry.seconds += seconds

    def report(self) -> dict[str, Any]:
        per_checker: dict[str, dict[str, float]] = {}
        for b in self.blocks:
            c = per_checker.setdefault(
                b.checker, {"blocks": 0, "seconds": 0.0, "external": 0.0, "engine": 0.0}
            )
            c["blocks"] += 1
            c["seconds"] += b.seconds
            c["external"] += b.external
            c["engine"] += b.seconds - b.external
        wall = sum(b.seconds for b in self.blocks)
        external = sum(b.external for b in self.blocks)
        return {
            "blocks": len(self.blocks),
            "block_seconds": round(wall, 4),
            "external_seconds": round(external, 4),
            "engine_seconds": round(wall - external, 4),
            "engine_ms_per_block": round(1000 * (wall - external) / len(self.blocks), 3)
            if self.blocks
            else None,
            "checkers": {k: {n: round(v, 4) for n, v in c.items()} for k, c in per_checker.items()},
            "tools": {
                k: {"calls": t.calls, "seconds": round(t.seconds, 4)}
                for k, t in sorted(self.tools.items())
            },
            "phases": {
                k: {"calls": t.calls, "seconds": round(t.seconds, 4)}
                for k, t in sorted(self.phases.items())
            },
            "per_block": [
                {
                    "page": b.page,
                    "line": b.line,
                    "checker": b.checker,
                    "language": b.language,
                    "seconds": round(b.seconds, 5),
                    "external": round(b.external, 5),
                }
                for b in self.blocks
            ],
        }


RECORDER = Recorder()


def tool_name(argv: Any) -> str:
    """The name a program call is filed under: the program's base name (`bash -n` apart)."""
    if isinstance(argv, (str, bytes, os.PathLike)):
        argv = [argv]
    args = [os.fsdecode(a) for a in argv]
    name = Path(args[0]).name if args else "?"
    if name == "bash" and len(args) > 1 and args[1] == "-n":
        return "bash -n"
    if name.startswith("python"):
        return "python"
    return name


class _TimedPopen(subprocess.Popen):  # type: ignore[type-arg]
    """Popen that files its lifetime (start to reaped) under the program's name."""

    def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
        self._profile_name = tool_name(args)
        self._profile_start = time.perf_counter()
        self._profile_done = False
        super().__init__(args, *rest, **kwargs)

    def wait(self, timeout: float | None = None) -> int:
        code = super().wait(timeout)
        if not self._profile_done:
            self._profile_done = True
            RECORDER.tool(self._profile_name, time.perf_counter() - self._profile_start)
        return code


def install(path: str | None = None) -> bool:
    """Start recording when BETRACE_GATE_PROFILE (or `path`) names a file; idempotent."""
    global ACTIVE
    target = path or os.environ.get(ENV)
    if not target or ACTIVE:
        return ACTIVE
    ACTIVE = True
    # every subprocess.run / Popen of the gate, its checkers and the artefact code goes through
    # subprocess.Popen, so one substitution times all external programs
    subprocess.Popen = _TimedPopen  # type: ignore[misc]
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    out = Path(target)
    if worker:
        out = out.with_name(f"{out.stem}.{worker}{out.suffix or '.json'}")
    atexit.register(write, out)
    return True


def write(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(RECORDER.report(), indent=2) + "\n", encoding="utf-8")


@contextmanager
def block(page: str, line: int, checker: str, language: str) -> Iterator[None]:
    """Time one block's check (only called while ACTIVE)."""
    start = time.perf_counter()
    external = RECORDER.external
    try:
        yield
    finally:
        RECORDER.blocks.append(
            _Block(
                page,
                line,
                checker,
                language,
                time.perf_counter() - start,
                RECORDER.external - external,
            )
        )


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time an engine phase (sandbox copy, sandbox removal, ...) when recording; else nothing."""
    if not ACTIVE:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        RECORDER.phase(name, time.perf_counter() - start)


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from several (the xdist workers' files)."""
    rec = Recorder()
    for rep in reports:
        for name, t in rep.get("tools", {}).items():
            entry = rec.tools.setdefault(name, _Tool())
            entry.calls += t["calls"]
            entry.seconds += t["seconds"]
        for name, t in rep.get("phases", {}).items():
            entry = rec.phases.setdefault(name, _Tool())
            entry.calls += t["calls"]
            entry.seconds += t["seconds"]
        for b in rep.get("per_block", []):
            rec.blocks.append(
                _Block(
                    b["page"], b["line"], b["checker"], b["language"], b["seconds"], b["external"]
                )
            )
    return rec.report()
