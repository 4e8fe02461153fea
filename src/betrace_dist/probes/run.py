"""Run probes: each in a fresh network namespace with only loopback, several at once.

`run_probe` starts `python -m betrace_dist.probes.run NAME` under bubblewrap with its own network
and PID namespaces (the backend binds every interface: here the only one is the namespace's
loopback), a private /tmp and a read-only directory for the probes that need one; the probe's
measurement comes back as one JSON line on stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import GATE_SOURCE, tools
from ..release import ReleaseData
from ..yamlio import field_path, load_with_lines
from . import disagreements
from .catalogue import MEASUREMENTS, PROBES, READ_ONLY, WORK

#: probes running at once: most of their time is spent waiting (evaluation delays, slow stops)
PARALLEL = 6


class ProbeError(Exception):
    """A probe could not measure (no bubblewrap, the backend did not start, ...)."""


@dataclass
class Outcome:
    name: str
    measured: dict[str, Any]
    seconds: float


def namespace_argv(argv: list[str], program: Path) -> list[str]:
    bwrap = tools.find("bwrap")
    if not bwrap:
        raise ProbeError("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
    walls = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    walls += ["--tmpfs", "/tmp", "--dir", str(WORK), "--tmpfs", str(READ_ONLY)]  # noqa: S108
    walls += ["--remount-ro", str(READ_ONLY)]
    # shown again where they lie under /tmp (a checkout there, as CI's may be): the program, the
    # Python the probe runs on and its packages, and the project the probe is imported from
    for shown in sorted({program, Path(sys.prefix), Path(sys.base_prefix), GATE_SOURCE}):
        if shown == Path("/tmp") or Path("/tmp") in shown.parents:  # noqa: S108
            walls += ["--ro-bind", str(shown), str(shown)]
    walls += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent"]
    return [*walls, "--", *argv]


def run_probe(
    name: str, program: Path, data: ReleaseData, extra: Mapping[str, Any] | None = None
) -> Outcome:
    """Measure with probe `name` against `program` (`extra`: more parameters); raises
    ProbeError when it cannot."""
    import time

    probe = MEASUREMENTS[name]
    params = {"program": str(program)} | probe.params(data) | dict(extra or {})
    argv = namespace_argv([sys.executable, "-m", "betrace_dist.probes.run", name], program)
    start = time.monotonic()
    for _ in range(3):  # again only when bwrap lost a mount while it built the namespace
        try:
            done = subprocess.run(
                argv,
                input=json.dumps(params),
                capture_output=True,
                text=True,
                timeout=probe.limit,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ProbeError(f"probe {name} took more than {probe.limit:g} s") from None
        if not tools.bwrap_lost_a_mount(done.returncode, done.stdout, done.stderr):
            break
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-4:])
        raise ProbeError(f"probe {name} failed (exit {done.returncode}): {tail}")
    return Outcome(name, json.loads(lines[-1]), round(time.monotonic() - start, 1))


@dataclass(frozen=True)
class Job:
    """One probe to run: its name, the release data it reads, more parameters."""

    probe: str
    data: ReleaseData
    extra: Mapping[str, Any] | None = None


def run_all(jobs: Mapping[str, Job], program: Path) -> dict[str, Outcome | str]:
    """Every job, PARALLEL at a time, slowest first: its outcome, or why it could not measure."""

    def one(key: str) -> Outcome | str:
        job = jobs[key]
        try:
            return run_probe(job.probe, program, job.data, job.extra)
        except ProbeError as exc:
            return str(exc)

    order = sorted(jobs, key=lambda key: -MEASUREMENTS[jobs[key].probe].limit)
    with ThreadPoolExecutor(PARALLEL) as pool:
        return dict(zip(order, pool.map(one, order), strict=True))


def verdict(name: str, data: ReleaseData, measured: Mapping[str, Any]) -> list[str]:
    """What the probe's facts claim and the measurement contradicts."""
    return disagreements(PROBES[name].expect(data), measured)


def _inside(name: str) -> None:
    """The probe's side of the namespace: params on stdin, the measurement on stdout."""
    params = json.loads(sys.stdin.read())
    measured = MEASUREMENTS[name].measure(params)
    print(json.dumps(measured))


if __name__ == "__main__":
    _inside(sys.argv[1])


@dataclass(frozen=True)
class Fact:
    """An observed fact of releases.yaml and the probe it names."""

    line: int
    field: str
    probe: str
    observed: str


def observed_facts(path: Path) -> list[Fact]:
    """Every mapping of the release data with `observed:`, in file order."""
    found: list[Fact] = []

    def walk(node: object, loc: tuple[int | str, ...]) -> None:
        if isinstance(node, dict):
            if "observed" in node:
                line = node.lc.key("observed")[0] + 1  # type: ignore[attr-defined]
                probe = str(node.get("probe") or "")
                found.append(
                    Fact(line, field_path(loc), probe, " ".join(str(node["observed"]).split()))
                )
            for key, value in node.items():
                walk(value, (*loc, str(key)))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*loc, index))

    walk(load_with_lines(path), ())
    return found


def report(facts: Iterable[Fact], probe: str, problems: list[str], file: str) -> list[str]:
    """The failure lines for a probe that disagrees: every fact naming it, with its line."""
    out = []
    for fact in (f for f in facts if f.probe == probe):
        out.append(f"{file}:{fact.line}: {fact.field} (probe {probe}) says: {fact.observed}")
        out += [f"    {problem}" for problem in problems]
    return out
