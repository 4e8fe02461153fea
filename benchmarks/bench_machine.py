"""What a benchmark ran on: the machine, its load, the tools, and the checkout measured.

Seconds measured on two machines differ for reasons that have nothing to do with the code (core
count, CPU model, other work sharing the CPUs, a venv without compiled bytecode, a slow disk
under the temporary directory), so every report starts with this record.
"""

from __future__ import annotations

import os
import platform
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Environment variable through which the gate's isolation of page commands can be switched;
#: recorded as found (the isolation itself lives in the gate, not here).
ISOLATION_ENV = "BETRACE_GATE_ISOLATION"

#: Tools the gate runs, with the arguments that print their version.
TOOL_VERSIONS = {
    "helm": ["version", "--short"],
    "helm3": ["version", "--short"],
    "docker-compose": ["version", "--short"],
    "nix": ["--version"],
    "nix-instantiate": ["--version"],
    "shellcheck": ["--version"],
    "bash": ["--version"],
    "git": ["--version"],
    "bwrap": ["--version"],
    "valgrind": ["--version"],
}

#: Labels of how the measured checkout was obtained.
FRESH = "fresh clone"
IN_PLACE = "not a fresh clone (--in-place): the working tree as it is, caches and all"


def _first_line(cmd: list[str], env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"failed: {exc}"
    text = (done.stdout or done.stderr).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return f"exit {done.returncode}, no output"
    if cmd[-1] == "--version" and Path(cmd[0]).name == "shellcheck":
        return next((ln for ln in lines if ln.startswith("version:")), lines[0])
    return lines[0]


def tool_versions(path: str) -> dict[str, str]:
    """The version line of each tool the gate runs, looked up on `path` ("missing" if absent)."""
    out = {}
    for name, args in TOOL_VERSIONS.items():
        binary = shutil.which(name, path=path)
        out[name] = _first_line([binary, *args]) if binary else "missing"
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


@dataclass(frozen=True)
class CpuTimes:
    """Machine-wide CPU jiffies (/proc/stat) and this process's and its children's CPU seconds:
    the difference of two samples says how much of the machine other work used meanwhile."""

    busy: float  # seconds, all CPUs: user, nice, system, irq, softirq, steal
    total: float  # seconds, all CPUs, idle and iowait included
    steal: float  # seconds the hypervisor gave to other guests
    ours: float  # seconds of CPU used by this process and its reaped children

    @classmethod
    def sample(cls) -> CpuTimes:
        tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self_, kids = (
            resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        )
        ours = self_.ru_utime + self_.ru_stime + kids.ru_utime + kids.ru_stime
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return cls(0.0, 0.0, 0.0, ours)
        user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
        busy = user + nice + system + irq + softirq + steal
        return cls(busy / tick, (busy + idle + iowait) / tick, steal / tick, ours)


def sharing(before: CpuTimes, after: CpuTimes, cores: int) -> dict[str, Any]:
    """How busy the machine was between two samples, and how much of that was not us."""
    total = after.total - before.total
    if total <= 0:
        return {"measured": False}
    busy = after.busy - before.busy
    ours = after.ours - before.ours
    others = max(busy - ours, 0.0)
    return {
        "measured": True,
        "elapsed_cpu_seconds": round(total, 1),
        "busy_share": round(busy / total, 3),
        "our_cpu_seconds": round(ours, 1),
        "other_work_cpu_seconds": round(others, 1),
        "other_work_share": round(others / total, 3),
        "other_work_cores": round(cores * others / total, 2),
        "steal_share": round((after.steal - before.steal) / total, 3),
    }


def isolation(path: str, root: Path) -> dict[str, Any]:
    """Whether the gate runs page commands under bubblewrap: the switch, the binary, and whether
    the measured checkout's gate code uses it at all (isolation costs a few ms per command)."""
    bwrap = shutil.which("bwrap", path=path)
    gate = root / "src" / "betrace_dist" / "gate"
    uses = any("bwrap" in p.read_text(encoding="utf-8") for p in gate.rglob("*.py"))
    switch = os.environ.get(ISOLATION_ENV)
    off = (switch or "").lower() in {"0", "off", "no", "false"}
    return {
        "env": {ISOLATION_ENV: switch},
        "bwrap": bwrap or "missing",
        "gate_code_uses_bwrap": uses,
        "active": bool(bwrap and uses and not off),
    }


def bytecode_state(site_packages: Path, sample: int = 4000) -> dict[str, Any]:
    """How many of the venv's modules have compiled bytecode next to them. pip compiles on
    install; installers that do not (uv by default, pip --no-compile) leave every first import
    to compile, which a first gate run pays for."""
    tag = sys.implementation.cache_tag
    sources = [p for _, p in zip(range(sample), site_packages.rglob("*.py"), strict=False)]
    compiled = sum((p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc").exists() for p in sources)
    return {
        "site_packages": str(site_packages),
        "modules_sampled": len(sources),
        "compiled_share": round(compiled / len(sources), 3) if sources else None,
    }


def filesystem(path: Path) -> str:
    """The file system type under `path` (the sandbox copies are made in the temporary folder)."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    resolved = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) > 2 and resolved.startswith(parts[1]) and len(parts[1]) > len(best):
            best, kind = parts[1], f"{parts[2]} on {parts[1]}"
    return kind


def record(path: str, root: Path, checkout: str) -> dict[str, Any]:
    """The machine record written at the top of every report."""
    cores = os.cpu_count() or 1
    return {
        "checkout": checkout,
        "cores": cores,
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores,
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "bytecode": bytecode_state(Path(sysconfig.get_paths()["purelib"])),
        "tmp_filesystem": filesystem(Path(tempfile.gettempdir())),
        "tools": tool_versions(path),
        "isolation": isolation(path, root),
    }
