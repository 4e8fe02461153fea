"""The benchmark's report: ratios to the baselines of the same run, the cProfile summary, the
explanations drawn from the numbers, and the Markdown tables.

Seconds are a property of the machine and its load; the ratio of the gate to a baseline measured
minutes apart on the same machine mostly is not. Compare the ratio columns between machines.
"""

from __future__ import annotations

import pstats
import re
import statistics
from typing import Any

RATIO_NOTE = (
    "Seconds depend on the machine and on what else runs on it; compare the ratio columns "
    "(the gate divided by baselines measured in the same run) between machines, not the seconds."
)


def ratio(value: float | None, base: float | None) -> float | None:
    """value / base, rounded; None when either is missing or the base is not positive."""
    if value is None or not base or base <= 0:
        return None
    return round(value / base, 2)


def ratio_rows(
    figures: list[tuple[str, float | None, float | None]],
    bases: dict[str, tuple[float | None, float | None]],
) -> list[dict[str, Any]]:
    """One row per figure: its wall and CPU seconds, and each ratio to each baseline, wall to
    wall and CPU to CPU. CPU seconds hardly grow when other work shares the machine; wall
    seconds do, so the CPU ratios are the ones to compare first."""
    rows = []
    for name, wall, cpu in figures:
        row: dict[str, Any] = {"figure": name, "seconds": wall, "cpu_seconds": cpu}
        for key, (base_wall, base_cpu) in bases.items():
            row[key] = ratio(wall, base_wall)
            row[f"{key}_cpu"] = ratio(cpu, base_cpu)
        rows.append(row)
    return rows


def median_of(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 4) if present else None


def profile_summary(profiles: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the profiled gate runs of one variant."""
    keys = ("engine_ms_per_block", "engine_cpu_ms_per_block", "external_seconds")
    keys += ("engine_seconds", "engine_cpu_seconds", "external_cpu_seconds", "block_seconds")
    out: dict[str, Any] = {k: median_of([p.get(k) for p in profiles]) for k in keys}
    out["phase_seconds_in_blocks"] = median_of([p.get("phase_seconds_in_blocks") for p in profiles])
    out["blocks"] = profiles[0]["blocks"] if profiles else None
    return out


# -- cProfile ----------------------------------------------------------------------------------
_SITE = re.compile(r"site-packages/([^/]+)")
_OURS = re.compile(r"src/betrace_dist/(.+)\.py$")
_STDLIB = re.compile(r"lib/python3\.\d+/([^/]+?)(?:\.py)?(?:/|$)")


def area(filename: str, name: str) -> str:
    """Where a function's own time belongs: our module, a package, the stdlib, or a built-in."""
    if filename == "~":  # a built-in: name the kind of work
        if re.search(r"waitpid|\.poll|select|read\b|communicate", name):
            return "waiting for external programs (built-ins)"
        if re.search(r"compile|marshal|exec\b|__import__|_imp\.", name):
            return "importing and compiling modules (built-ins)"
        if re.search(r"io\.open|posix\.|_fastcopy|sendfile|copyfile", name):
            return "file system calls (sandbox copies, removal, reads; built-ins)"
        return "other built-ins"
    if "frozen importlib" in filename or "importlib" in filename:
        return "importing and compiling modules"
    if m := _OURS.search(filename):
        return "betrace_dist." + m[1].replace("/", ".")
    if m := _SITE.search(filename):
        return m[1].removesuffix(".py")
    if m := _STDLIB.search(filename):
        return f"stdlib {m[1]}"
    return filename


def cprofile_summary(path: str, top: int = 12) -> dict[str, Any]:
    """Top functions by own time, our functions by cumulative time, and own time by area."""
    stats = pstats.Stats(path)
    raw = stats.stats  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (filename, line, name), (_cc, calls, own, cumulative, _callers) in raw.items():
        where = name if filename == "~" else f"{_short(filename)}:{line}({name})"
        rows.append((where, calls, own, cumulative, area(filename, name)))
    areas: dict[str, float] = {}
    for row in rows:
        areas[row[4]] = areas.get(row[4], 0.0) + row[2]

    def fmt(r: tuple[str, int, float, float, str], key: int) -> dict[str, Any]:
        return {
            "function": r[0],
            "calls": r[1],
            "seconds": round(r[key], 3),
            "share": round(r[key] / total, 3) if total else None,
        }

    ours = [r for r in rows if "betrace_dist/" in r[0]]
    return {
        "total_s": round(total, 3),
        "top_own_time": [fmt(r, 2) for r in sorted(rows, key=lambda r: -r[2])[:top]],
        "top_engine_cumulative": [fmt(r, 3) for r in sorted(ours, key=lambda r: -r[3])[:top]],
        "own_time_by_area": [
            {"area": k, "seconds": round(v, 3), "share": round(v / total, 3) if total else None}
            for k, v in sorted(areas.items(), key=lambda kv: -kv[1])[:top]
        ],
    }


def _short(filename: str) -> str:
    for marker in ("src/", "site-packages/", "lib/python3"):
        if marker in filename:
            return filename[filename.index(marker) :]
    return filename


# -- why two machines differ -------------------------------------------------------------------
def explanations(report: dict[str, Any]) -> list[str]:
    """Sentences drawn from this run's numbers: the usual reasons two machines' seconds differ."""
    out: list[str] = []
    gate = report.get("gate", {})
    warm = gate.get("warm", {})
    machine = report.get("machine", {})
    for variant in ("first run (no project bytecode)", "no bytecode at all"):
        cold = gate.get(variant)
        if cold and warm:
            cw, ww = cold["wall"], warm["wall"]
            cpu_ratio = ratio(cw.get("cpu_median_s"), ww.get("cpu_median_s"))
            verdict = (
                "compiling costs little here; a larger wall ratio is load"
                if cpu_ratio is not None and cpu_ratio < 1.1
                else "modules first imported inside a block are compiled there"
            )
            out.append(
                f"Cold bytecode: the gate's {variant} uses {cpu_ratio}x the warm run's CPU "
                f"seconds ({ratio(cw['median_s'], ww['median_s'])}x its wall seconds); engine "
                f"CPU per block {cold['profile']['engine_cpu_ms_per_block']} ms against "
                f"{warm['profile']['engine_cpu_ms_per_block']} ms warm ({verdict})."
            )
    share = machine.get("bytecode", {}).get("compiled_share")
    if share is not None:
        out.append(
            f"The venv has compiled bytecode for {share:.0%} of its modules; a venv installed "
            "without it (uv by default, pip --no-compile) pays the compile on the first run."
        )
    prof = warm.get("profile", {})
    wall, cpu = prof.get("engine_seconds"), prof.get("engine_cpu_seconds")
    if wall and cpu:
        out.append(
            f"Waiting: the engine's wall time is {ratio(wall, cpu)}x its CPU time in the warm "
            "runs (near 1 on an idle machine with a fast disk; more means waiting for a CPU "
            "or for the disk)."
        )
    sharing = machine.get("sharing", {})
    if sharing.get("measured"):
        out.append(
            f"Other work used {sharing['other_work_cores']} of {machine.get('cores')} cores on "
            f"average while the benchmark ran (steal {sharing['steal_share']:.0%})."
        )
    phases = prof.get("phase_seconds_in_blocks")
    warm_phases = warm.get("phases", {})
    if phases is not None:
        out.append(
            f"File copies inside blocks: {phases} s per warm run (a sandbox per page, a "
            f"snapshot per content-tab group, on {machine.get('tmp_filesystem', 'unknown')}), "
            "counted as engine time; a slow disk shows up here"
            + "".join(
                f"; {k} {v['calls']}x {v['seconds']} s"
                + (f" (CPU {v['cpu_seconds']} s)" if "cpu_seconds" in v else "")
                for k, v in sorted(warm_phases.items())
            )
            + "."
        )
    out += _first_calls(report.get("profile_tools", {}))
    out += _areas(report.get("cprofile", {}))
    return out


def _areas(cprofile: dict[str, Any]) -> list[str]:
    shares = {a["area"]: a["share"] for a in cprofile.get("own_time_by_area", [])}
    files = sum(v for k, v in shares.items() if k.startswith("file system"))
    waiting = sum(v for k, v in shares.items() if k.startswith("waiting"))
    if not shares:
        return []
    return [
        f"Under cProfile, {files:.0%} of the warm run's own time went to file system calls "
        f"(sandbox copies, content-tab snapshots, removal: they follow the disk and the page "
        f"cache) and {waiting:.0%} to waiting for external programs."
    ]


def _first_calls(tools: dict[str, Any]) -> list[str]:
    slow = []
    for name, t in tools.items():
        if t["calls"] > 1:
            rest = (t["seconds"] - t["first_call_seconds"]) / (t["calls"] - 1)
            if rest > 0 and t["first_call_seconds"] > 3 * rest and t["first_call_seconds"] > 0.05:
                slow.append(f"{name} {t['first_call_seconds']:.2f} s against {rest:.3f} s")
    if not slow:
        return []
    return ["First-call costs (first call against the mean of the others): " + "; ".join(slow)]


# -- tables ------------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    return "–" if value is None else str(value)


def markdown(report: dict[str, Any]) -> str:
    out = [f"# Gate benchmark: {report['checkout']['label']}", "", RATIO_NOTE, ""]
    out += _machine_lines(report)
    out += [
        "",
        "Ratios are wall / CPU: wall seconds divided by the baseline's wall seconds, CPU seconds "
        "by its CPU seconds.",
        "",
        "| figure | wall (s) | CPU (s) | ÷ python -c pass | ÷ tool floor | ÷ Sybil parse-only |",
        "|---|---|---|---|---|---|",
    ]
    for r in report.get("ratios", []):
        cells = [
            f"{_cell(r.get(k))} / {_cell(r.get(k + '_cpu'))}"
            for k in ("python_startup", "tool_floor", "sybil_parse_only")
        ]
        out.append(
            f"| {r['figure']} | {_cell(r['seconds'])} | {_cell(r['cpu_seconds'])} | "
            + " | ".join(cells)
            + " |"
        )
    out += _budget_lines(report)
    out += _gate_lines(report) + _baseline_lines(report) + _cprofile_lines(report)
    ins = report.get("instructions")
    if ins:
        out += ["", "Instruction counts: " + ", ".join(f"{k} {v}" for k, v in ins.items())]
    if report.get("explanations"):
        out += ["", "Why figures differ between machines (from this run):", ""]
        out += [f"- {line}" for line in report["explanations"]]
    return "\n".join(out)


#: The performance issue's goals: (figure, where in the report, goal in seconds). Goals, not
#: tests: nothing asserts a speed; the table says which are met on the measured machine.
BUDGETS = (
    ("gate, every page run, 2 workers", ("budgets", "cold_2_workers", "median_s"), 10.0),
    ("gate, nothing changed (result cache)", ("budgets", "warm_cached", "median_s"), 2.0),
    ("one page while writing (slowest page)", ("budgets", "one_page", "median_s"), 2.0),
    ("engine time per block", ("gate", "warm", "profile", "engine_ms_per_block"), 0.010),
    ("mkdocs build --strict", ("budgets", "build", "median_s"), 3.0),
    ("make test, whole suite", ("suite", "median_s"), 240.0),
)


def _dig(report: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        report = report.get(key) if isinstance(report, dict) else None  # type: ignore[assignment]
    return report


def _budget_lines(report: dict[str, Any]) -> list[str]:
    rows = []
    for name, path, goal in BUDGETS:
        value = _dig(report, path)
        if value is None:
            continue
        seconds = value / 1000 if path[-1].endswith("_ms_per_block") else value
        verdict = "met" if seconds <= goal else f"missed ({seconds / goal:.1f}x the goal)"
        rows.append(f"| {name} | {seconds:.3f} | {goal:g} | {verdict} |")
    if not rows:
        return []
    slowest = _dig(report, ("budgets", "one_page", "slowest"))
    out = ["", "Budgets (goals, not tests; seconds on this machine):", ""]
    out += ["| figure | measured (s) | goal (s) | |", "|---|---|---|---|", *rows]
    return out + (["", f"Slowest single page: {slowest}"] if slowest else [])


def _machine_lines(report: dict[str, Any]) -> list[str]:
    m = report["machine"]
    iso = m["isolation"]
    sharing = m.get("sharing", {})
    return [
        f"Machine: {m['cores']} cores ({m['cores_usable']} usable), {m['cpu_model']}, "
        f"Python {m['python']}, {m['platform']}",
        f"Load average before {m.get('load_before')} after {m.get('load_after')}; other work: "
        f"{sharing.get('other_work_cores', '–')} cores on average",
        "Tools: " + ", ".join(f"{k} {v}" for k, v in m["tools"].items()),
        f"Isolation (bubblewrap) active: {iso['active']} (bwrap {iso['bwrap']}, gate code uses "
        f"it: {iso['gate_code_uses_bwrap']}, env {iso['env']})",
        f"Checkout: {report['checkout']}",
    ]


def _gate_lines(report: dict[str, Any]) -> list[str]:
    out = ["", "| gate variant | median (s) | CPU (s) | min | max | runs | engine ms/block "
           "| engine CPU ms/block | external (s) | file copies in blocks (s) |",
           "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, g in report.get("gate", {}).items():
        w, p = g["wall"], g["profile"]
        out.append(
            f"| {name} | {w['median_s']} | {_cell(w.get('cpu_median_s'))} | {w['min_s']} "
            f"| {w['max_s']} | {w['runs']} "
            f"| {_cell(p['engine_ms_per_block'])} | {_cell(p['engine_cpu_ms_per_block'])} "
            f"| {_cell(p['external_seconds'])} | {_cell(p['phase_seconds_in_blocks'])} |"
        )
    return out


def _baseline_lines(report: dict[str, Any]) -> list[str]:
    b = report.get("baselines", {})
    out = [
        "",
        "| baseline | median (s) | CPU (s) | first call (s) | gate calls | call |",
        "|---|---|---|---|---|---|",
    ]
    calls = report.get("profile_tools", {})
    if b.get("python_startup"):
        p = b["python_startup"]
        out.append(f"| python -c pass | {p['median_s']} | {p.get('cpu_median_s')} | | | |")
    if b.get("sybil_parse_only"):
        p = b["sybil_parse_only"]
        out.append(f"| plain Sybil | {p['median_s']} | {p.get('cpu_median_s')} | | | parse only |")
    for name, u in b.get("tools", {}).items():
        n = calls.get(name, {}).get("calls", 0)
        if "error" in u:
            out.append(f"| {name} | failed | | | {n} | {u['error'][:80]} |")
            continue
        note = f" ({u['note']})" if u.get("note") else ""
        out.append(
            f"| {name} | {u['median_s']} | {u.get('cpu_median_s')} | {u['first_s']} | {n} "
            f"| `{u['argv']}`{note} |"
        )
    floor = b.get("tool_floor", {})
    out.append(
        f"\nTool floor (gate calls of each program × its median call): {floor.get('floor_s')} s "
        f"wall, {floor.get('floor_cpu_s')} s CPU; each program once: "
        f"{floor.get('each_once_s')} s; no representative: {floor.get('without_representative')}"
    )
    return out


def _cprofile_lines(report: dict[str, Any]) -> list[str]:
    c = report.get("cprofile")
    if not c:
        return []
    out = [f"\ncProfile of one warm gate run ({c['total_s']} s under the profiler):", ""]
    for title, key, col in (
        ("own time by area", "own_time_by_area", "area"),
        ("engine functions by cumulative time", "top_engine_cumulative", "function"),
        ("functions by own time", "top_own_time", "function"),
    ):
        out += ["", f"| {title} | s | share |", "|---|---|---|"]
        out += [f"| {r[col]} | {r['seconds']} | {r['share']:.1%} |" for r in c[key][:10]]
    return out
