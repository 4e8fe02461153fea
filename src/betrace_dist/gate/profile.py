"""Opt-in timing of the doc gate: where a run spends its time.

Set ``BETRACE_GATE_PROFILE=path.json`` and run the gate; at exit the file holds, per block, its
wall time and the time spent inside external programs, plus totals per checker and per external
tool (helm, helm3, docker-compose, nix, shellcheck, bash, ...). The engine's own overhead of a
block is its wall time minus the time inside it during which an external program ran (programs
that overlap, such as the live tier's backend and the page's curl, counted once). Engine phases
(sandbox copy, content-tab snapshot and restore, sandbox removal) record wall and CPU time;
`notes` say how the run made its sandboxes.

Wall time grows when other work shares the CPUs, so each block also records the CPU time the
gate's own process spent on it (``time.process_time``) and each tool the CPU time of its
processes (``RUSAGE_CHILDREN``): CPU seconds are far less sensitive to a busy machine than wall
seconds. A tool's first call is recorded apart (first-call costs: a cold disk cache, a store
built per process), and so is the time of engine phases inside blocks (a page's sandbox copy
happens inside its first block).

Off (the default), the only cost is one boolean test per block: nothing is patched or recorded.
Under pytest-xdist each worker writes its own file, ``path.gw0.json``, ``path.gw1.json``, ...
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV = "BETRACE_GATE_PROFILE"
#: The program every jailed command starts with (isolation.py): filed as a tool for its wall
#: time; the CPU time of what it runs is filed under `jailed`.
JAIL_WRAPPER = "prlimit"
#: The one bwrap the gate starts itself: a page's network-namespace holder, alive for the whole
#: page. Reaped last, the usage it is filed with is everything reaped meanwhile: not its own.
JAIL_HOLDER = "bwrap"

#: True while a profile is being recorded (read by the hooks in collect.py and session.py).
ACTIVE = False


@dataclass
class _Tool:
    calls: int = 0
    seconds: float = 0.0
    cpu: float = 0.0  # CPU time (user + system) of the program's processes
    first: float = 0.0  # wall time of the first call
    example: str = ""  # the first call's command line, paths shortened to their base name

    def add(self, seconds: float, cpu: float = 0.0, example: str = "") -> None:
        if not self.calls:
            self.first, self.example = seconds, example
        self.calls += 1
        self.seconds += seconds
        self.cpu += cpu

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "seconds": round(self.seconds, 4),
            "cpu_seconds": round(self.cpu, 4),
            "first_call_seconds": round(self.first, 4),
            "example": self.example,
        }


@dataclass
class _Block:
    page: str
    line: int
    checker: str
    language: str
    seconds: float
    external: float
    cpu: float = 0.0  # CPU time of the gate's own process during the block
    phases: float = 0.0  # time of engine phases (sandbox copy, ...) inside the block


@dataclass
class Recorder:
    """What one process recorded: tool calls, blocks and named engine phases."""

    tools: dict[str, _Tool] = field(default_factory=dict)
    blocks: list[_Block] = field(default_factory=list)
    phases: dict[str, _Tool] = field(default_factory=dict)
    #: (start, end) of each external program's life, in the order they were reaped
    spans: list[tuple[float, float]] = field(default_factory=list)
    in_phases: float = 0.0  # running total of the time inside engine phases
    notes: dict[str, str] = field(default_factory=dict)  # how the run did things (e.g. sandbox)
    #: commands run in a page's jail, by program: wall time and the CPU time of all the
    #: processes they started (from the page's cpuacct cgroup; 0 where there is none)
    jailed: dict[str, _Tool] = field(default_factory=dict)

    def tool(
        self, name: str, seconds: float, cpu: float = 0.0, example: str = "", end: float = 0.0
    ) -> None:
        """A program's life of `seconds`, ended at `end` (time.perf_counter())."""
        self.tools.setdefault(name, _Tool()).add(seconds, cpu, example)
        self.spans.append((end - seconds, end))

    def jail(self, name: str, seconds: float, cpu: float) -> None:
        self.jailed.setdefault(name, _Tool()).add(seconds, cpu)

    def phase(self, name: str, seconds: float, cpu: float = 0.0) -> None:
        self.phases.setdefault(name, _Tool()).add(seconds, cpu)
        self.in_phases += seconds

    def note(self, key: str, value: str) -> None:
        self.notes[key] = value

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
        cpu = sum(b.cpu for b in self.blocks)
        in_phases = sum(b.phases for b in self.blocks)
        return {
            "blocks": len(self.blocks),
            "block_seconds": round(wall, 4),
            "external_seconds": round(external, 4),
            "engine_seconds": round(wall - external, 4),
            "engine_ms_per_block": _per_block(wall - external, self.blocks),
            "engine_cpu_seconds": round(cpu, 4),
            "engine_cpu_ms_per_block": _per_block(cpu, self.blocks),
            "phase_seconds_in_blocks": round(in_phases, 4),
            # the jail's wrapper (prlimit) is reaped here, its programs are not: their CPU comes
            # from the page's cgroup (`jailed`), where the machine lets the gate make one
            "external_cpu_seconds": round(
                sum(
                    t.cpu
                    for name, t in self.tools.items()
                    if name not in (JAIL_WRAPPER, JAIL_HOLDER)
                )
                + sum(t.cpu for t in self.jailed.values()),
                4,
            ),
            "jailed": {k: t.as_dict() for k, t in sorted(self.jailed.items())},
            "checkers": {k: {n: round(v, 4) for n, v in c.items()} for k, c in per_checker.items()},
            "tools": {k: t.as_dict() for k, t in sorted(self.tools.items())},
            "phases": {k: t.as_dict() for k, t in sorted(self.phases.items())},
            "notes": dict(sorted(self.notes.items())),
            "per_block": [
                {
                    "page": b.page,
                    "line": b.line,
                    "checker": b.checker,
                    "language": b.language,
                    "seconds": round(b.seconds, 5),
                    "external": round(b.external, 5),
                    "cpu": round(b.cpu, 5),
                    "phases": round(b.phases, 5),
                }
                for b in self.blocks
            ],
        }


def _per_block(seconds: float, blocks: list[_Block]) -> float | None:
    return round(1000 * seconds / len(blocks), 3) if blocks else None


RECORDER = Recorder()


def _args(argv: Any) -> list[str]:
    if isinstance(argv, (str, bytes, os.PathLike)):
        argv = [argv]
    return [os.fsdecode(a) for a in argv]


def tool_name(argv: Any) -> str:
    """The name a program call is filed under: the program's base name (`bash -n` apart)."""
    args = _args(argv)
    name = Path(args[0]).name if args else "?"
    if name == "bash" and len(args) > 1 and args[1] == "-n":
        return "bash -n"
    if name.startswith("python"):
        return "python"
    return name


def example(argv: Any, limit: int = 8) -> str:
    """A call's command line for the report: paths shortened to their base name (sandbox paths
    differ per run), at most `limit` words."""
    args = _args(argv)
    words = [Path(a).name if "/" in a and " " not in a else a for a in args[:limit]]
    return " ".join(words) + (" ..." if len(args) > limit else "")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class _TimedPopen(subprocess.Popen):  # type: ignore[type-arg]
    """Popen that files its lifetime (start to reaped) under the program's name."""

    def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
        self._profile_name = tool_name(args)
        self._profile_example = example(args)
        self._profile_start = time.perf_counter()
        self._profile_cpu = _children_cpu()
        self._profile_done = False
        super().__init__(args, *rest, **kwargs)

    def wait(self, timeout: float | None = None) -> int:
        code = super().wait(timeout)
        if not self._profile_done:
            self._profile_done = True
            now = time.perf_counter()
            RECORDER.tool(
                self._profile_name,
                now - self._profile_start,
                _children_cpu() - self._profile_cpu,  # reaped children: this program's, mostly
                self._profile_example,
                now,
            )
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
    start, cpu = time.perf_counter(), time.process_time()
    first, in_phases = len(RECORDER.spans), RECORDER.in_phases
    try:
        yield
    finally:
        end = time.perf_counter()
        RECORDER.blocks.append(
            _Block(
                page,
                line,
                checker,
                language,
                end - start,
                covered(RECORDER.spans[first:], start, end),
                time.process_time() - cpu,
                RECORDER.in_phases - in_phases,
            )
        )


def covered(spans: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of [start, end] during which at least one of the spans ran. Programs overlap (the
    live tier's backend runs while the page's curl does) and one may have started before the
    block (a backend reaped in a later block): a sum would count time twice, or time outside
    the block, and leave the engine a negative share."""
    clipped = sorted((max(a, start), min(b, end)) for a, b in spans if b > start and a < end)
    total, reached = 0.0, start
    for a, b in clipped:
        if b > reached:
            total += b - max(a, reached)
            reached = b
    return total


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time an engine phase (sandbox copy, sandbox removal, ...) when recording; else nothing."""
    if not ACTIVE:
        yield
        return
    start, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        # the phase's CPU time is the gate's own (file copies happen in the gate's process)
        RECORDER.phase(name, time.perf_counter() - start, time.process_time() - cpu)


def jailed(name: str, seconds: float, cpu: float | None) -> None:
    """One command run in a page's jail, with its programs' CPU time (None: not counted)."""
    if ACTIVE:
        RECORDER.jail(name, seconds, cpu or 0.0)
        if cpu is None:
            RECORDER.note("jailed CPU", "not counted: no cpuacct cgroup could be made")


def note(key: str, value: str) -> None:
    """Say how the run did something (how sandboxes are made, ...), when recording."""
    if ACTIVE:
        RECORDER.note(key, value)


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from several (the xdist workers' files)."""
    rec = Recorder()
    for rep in reports:
        rec.notes.update(rep.get("notes", {}))
        for target, key in ((rec.tools, "tools"), (rec.phases, "phases"), (rec.jailed, "jailed")):
            for name, t in rep.get(key, {}).items():
                entry = target.setdefault(name, _Tool())
                if not entry.calls:  # the first worker's first call stands for the first call
                    entry.first = t.get("first_call_seconds", 0.0)
                    entry.example = t.get("example", "")
                entry.calls += t["calls"]
                entry.seconds += t["seconds"]
                entry.cpu += t.get("cpu_seconds", 0.0)
        for b in rep.get("per_block", []):
            rec.blocks.append(
                _Block(
                    b["page"],
                    b["line"],
                    b["checker"],
                    b["language"],
                    b["seconds"],
                    b["external"],
                    b.get("cpu", 0.0),
                    b.get("phases", 0.0),
                )
            )
    return rec.report()
