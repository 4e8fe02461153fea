"""pytest plugin of the gate: `--ledger` prints every block, its checker and its outcome."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from . import live, update
from .collect import GATES
from .ledger import format_table

_NODE = re.compile(r"^(?P<page>[^:]+)::line:(?P<line>\d+)")
#: (page relative to the rootdir, source line) -> passed, filled as reports arrive (xdist too).
OUTCOMES: dict[tuple[str, int], bool] = {}
#: one line per command a block sent to the live backend, from the blocks' reports (xdist too)
LIVE: list[str] = []
#: page -> (reused or ran, why it ran), from the blocks' reports (gate/result_cache.py)
CACHE: dict[str, tuple[str, str]] = {}
#: gate blocks reported in this run: how many were checked (passed or failed) and how many not
BLOCKS = {"checked": 0, "skipped": 0}
#: reason -> number of tests (gate blocks or not) skipped for a tool that is not installed
MISSING: dict[str, int] = {}
#: the command that installs every system program the tests use (scripts/install-system-deps)
FIX = "sudo scripts/install-system-deps"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("betrace-gate", "BeTrace doc gate")
    group.addoption(
        "--ledger",
        action="store_true",
        default=False,
        help="after the run, print the block ledger: page, line, language, checker, status",
    )
    group.addoption(
        "--update-outputs",
        action="store_true",
        default=False,
        help="rewrite the output console blocks show from what their commands really printed "
        "(with --live-backend, also the backend's answers); macros and '...' are kept",
    )
    group.addoption(
        "--no-cache",
        action="store_true",
        default=False,
        help="run every page, even one whose inputs are all as when it last passed "
        "(the gate's result cache, kept in pytest's cache folder; CI never uses it)",
    )
    group.addoption(
        "--live-backend",
        default=None,
        metavar="PATH",
        help="live tier: run the pages' backend steps for real against this betrace-backend "
        "program (also BETRACE_LIVE_BACKEND); by default the one built from upstream's snapshot",
    )
    group.addoption(
        "--no-live",
        action="store_true",
        default=False,
        help="turn the live tier off (a fast local loop; pages' backend steps are then checked "
        "against a model only, and the gate's result cache can reuse pages)",
    )


def pytest_configure(config: pytest.Config) -> None:
    update.enable(bool(config.getoption("--update-outputs")))

    try:
        live.configure(config.getoption("--live-backend"), off=config.getoption("--no-live"))
    except live.LiveError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_sessionstart(session: pytest.Session) -> None:
    OUTCOMES.clear()
    CACHE.clear()
    LIVE.clear()
    MISSING.clear()
    BLOCKS.update(checked=0, skipped=0)


def _note_skip_or_check(report: pytest.TestReport) -> None:
    """Count the gate's blocks by what happened to them, and every skip for a missing tool."""
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        if "is not installed" in reason:
            MISSING[reason] = MISSING.get(reason, 0) + 1
    if _NODE.match(report.nodeid) is None:
        return
    if report.skipped:
        BLOCKS["skipped"] += 1
    elif report.when == "call":
        BLOCKS["checked"] += 1


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _note_skip_or_check(report)
    if report.failed:  # in any phase: the result cache keeps nothing of the page
        page = Path(str(report.fspath))
        for gate in GATES:
            gate.failed(page)
    for name, value in report.user_properties:
        if name == "betrace-live" and report.when == "call":
            LIVE.append(str(value))
        if name == "betrace-gate-cache":
            outcome, why = (str(part) for part in value)  # type: ignore[attr-defined]
            CACHE.setdefault(report.nodeid.split("::", 1)[0], (outcome, why))
    match = _NODE.match(report.nodeid)
    if match is None or report.skipped or (report.when != "call" and report.passed):
        return  # a skipped block keeps its planned status; only failures change it
    key = (match["page"], int(match["line"]))
    OUTCOMES[key] = OUTCOMES.get(key, True) and not report.failed


def nothing_checked() -> str | None:
    """Why this run is no pass although nothing failed: the doc gate checked no block."""
    if BLOCKS["checked"] or not BLOCKS["skipped"]:
        return None
    return (
        f"the doc gate checked no block: all {BLOCKS['skipped']} were skipped, so no page was "
        f"verified; install what is missing ({FIX}) and run again"
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    if update.enabled():
        for line in update.apply():
            print(line)
    if nothing_checked() and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def cache_summary() -> list[str]:
    """What the result cache did in this run: pages reused, pages run and why."""
    reused = sorted(page for page, (outcome, _) in CACHE.items() if outcome == "reused")
    ran = sorted((page, why) for page, (outcome, why) in CACHE.items() if outcome == "ran")
    lines = [f"{len(reused)} page(s) reused: every input as when they last passed"]
    lines += [f"  {page}" for page in reused]
    lines += [f"{len(ran)} page(s) run:"] + [f"  {page}: {why}" for page, why in ran]
    return [*lines, "pytest --no-cache runs every page; CI always does"]


def _missing_summary(terminalreporter: Any) -> None:
    """What did not run for a missing program, the one command that fixes it, and whether the
    doc gate checked anything at all."""
    if MISSING:
        terminalreporter.section("not run: programs that are not installed")
        for reason, count in sorted(MISSING.items()):
            terminalreporter.write_line(f"{count:5d} skipped: {reason}")
        terminalreporter.write_line(f"install them all with: {FIX}")
    why = nothing_checked()
    if why:
        terminalreporter.write_line(f"FAILED: {why}", red=True, bold=True)


def _live_summary(terminalreporter: Any) -> None:
    """The live tier's closing list: every command sent to the real backend, or why none was."""
    pages = any(gate.pages_seen for gate in GATES)
    if live.program() is not None and (LIVE or pages):
        terminalreporter.section(f"live tier: commands run against {live.program()}")
        for line in LIVE or ["none: no page started the backend"]:
            terminalreporter.write_line(line)
        if LIVE:
            terminalreporter.write_line(f"{len(LIVE)} command(s) sent to the real backend")
    elif live.off_reason() and pages:
        terminalreporter.section("live tier")
        terminalreporter.write_line(f"off: {live.off_reason()}")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    off = sorted({gate.cache_off for gate in GATES if gate.cache_off and gate.pages_seen})
    if CACHE or off:
        terminalreporter.section("gate result cache")
        for line in cache_summary() if CACHE else [f"off: {why}" for why in off]:
            terminalreporter.write_line(line)

    _missing_summary(terminalreporter)
    _live_summary(terminalreporter)
    if not config.getoption("--ledger"):
        return
    for gate in GATES:
        entries = []
        for entry in gate.ledger():
            page = (gate.site.root / entry.page).resolve()
            try:
                node_page = page.relative_to(config.rootpath).as_posix()
            except ValueError:
                node_page = entry.page
            passed = OUTCOMES.get((node_page, entry.line))
            entries.append(entry if passed is None else entry.with_outcome(passed))
        terminalreporter.section(f"block ledger of {gate.site.config_file}")
        terminalreporter.write_line(format_table(entries))
