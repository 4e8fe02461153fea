"""pytest plugin of the gate: `--ledger` prints every block, its checker and its outcome."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .ledger import format_table
from .live import LIVE_OFF
from .run import GateRun, run_of

_NODE = re.compile(r"^(?P<page>[^:]+)::line:(?P<line>\d+)")
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
    """The run's state (run.py, on config.stash; a bad --live-backend stops here), and the
    hooks that report on it, registered for this config only."""
    config.pluginmanager.register(RunReport(run_of(config)), "betrace-gate-run")


class RunReport:
    """The hooks of one run's report: they count what its blocks did and close the run."""

    def __init__(self, run: GateRun) -> None:
        self.run = run

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        _logreport(self.run, report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.run.updates is not None:
            for line in self.run.updates.apply():
                print(line)
        if nothing_checked(self.run) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        _terminal_summary(self.run, terminalreporter, config)


def _note_skip_or_check(run: GateRun, report: pytest.TestReport) -> None:
    """Count the gate's blocks by what happened to them, and every skip for a missing tool."""
    reason = ""
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        if "is not installed" in reason:
            run.missing[reason] = run.missing.get(reason, 0) + 1
    if _NODE.match(report.nodeid) is None:
        return
    if report.skipped:
        run.skipped += 1
        run.skipped_live_off += reason.endswith(LIVE_OFF)
    elif report.when == "call":
        run.checked += 1


def _logreport(run: GateRun, report: pytest.TestReport) -> None:
    _note_skip_or_check(run, report)
    if report.failed:  # in any phase: the result cache keeps nothing of the page
        page = Path(str(report.fspath))
        for gate in run.gates:
            gate.failed(page)
    for name, value in report.user_properties:
        if name == "betrace-live" and report.when == "call":
            run.live_lines.append(str(value))
        if name == "betrace-gate-cache":
            outcome, why = (str(part) for part in value)  # type: ignore[attr-defined]
            run.cache.setdefault(report.nodeid.split("::", 1)[0], (outcome, why))
    match = _NODE.match(report.nodeid)
    if match is None or report.skipped or (report.when != "call" and report.passed):
        return  # a skipped block keeps its planned status; only failures change it
    key = (match["page"], int(match["line"]))
    run.outcomes[key] = run.outcomes.get(key, True) and not report.failed


def nothing_checked(run: GateRun) -> str | None:
    """Why this run is no pass although nothing failed: the doc gate checked no block."""
    if run.checked or not run.skipped:
        return None
    if run.skipped_live_off == run.skipped:
        return (
            f"the doc gate checked no block: all {run.skipped} run on the live tier, which "
            "--no-live turned off, so no page was verified; run without --no-live"
        )
    return (
        f"the doc gate checked no block: all {run.skipped} were skipped, so no page was "
        f"verified; install what is missing ({FIX}) and run again"
    )


def cache_summary(cache: dict[str, tuple[str, str]]) -> list[str]:
    """What the result cache did in this run: pages reused, pages run and why."""
    reused = sorted(page for page, (outcome, _) in cache.items() if outcome == "reused")
    ran = sorted((page, why) for page, (outcome, why) in cache.items() if outcome == "ran")
    lines = [f"{len(reused)} page(s) reused: every input as when they last passed"]
    lines += [f"  {page}" for page in reused]
    lines += [f"{len(ran)} page(s) run:"] + [f"  {page}: {why}" for page, why in ran]
    return [*lines, "pytest --no-cache runs every page; CI always does"]


def _missing_summary(run: GateRun, terminalreporter: Any) -> None:
    """What did not run for a missing program, the one command that fixes it, and whether the
    doc gate checked anything at all."""
    if run.missing:
        terminalreporter.section("not run: programs that are not installed")
        for reason, count in sorted(run.missing.items()):
            terminalreporter.write_line(f"{count:5d} skipped: {reason}")
        terminalreporter.write_line(f"install them all with: {FIX}")
    why = nothing_checked(run)
    if why:
        terminalreporter.write_line(f"FAILED: {why}", red=True, bold=True)


def _live_summary(run: GateRun, terminalreporter: Any) -> None:
    """The live tier's closing list: every command sent to the real backend, or why none was."""
    pages = any(gate.pages_seen for gate in run.gates)
    sent = run.live_lines
    if run.live.program is not None and (sent or pages):
        terminalreporter.section(f"live tier: commands run against {run.live.program}")
        for line in sent or ["none: no page started the backend"]:
            terminalreporter.write_line(line)
        if sent:
            terminalreporter.write_line(f"{len(sent)} command(s) sent to the real backend")
    elif run.live.off_reason and pages:
        terminalreporter.section("live tier")
        terminalreporter.write_line(f"off: {run.live.off_reason}")


def _terminal_summary(run: GateRun, terminalreporter: Any, config: pytest.Config) -> None:
    off = sorted({gate.cache_off for gate in run.gates if gate.cache_off and gate.pages_seen})
    if run.cache or off:
        terminalreporter.section("gate result cache")
        for line in cache_summary(run.cache) if run.cache else [f"off: {why}" for why in off]:
            terminalreporter.write_line(line)

    _missing_summary(run, terminalreporter)
    _live_summary(run, terminalreporter)
    if not config.getoption("--ledger"):
        return
    for gate in run.gates:
        entries = []
        for entry in gate.ledger():
            page = (gate.site.root / entry.page).resolve()
            try:
                node_page = page.relative_to(config.rootpath).as_posix()
            except ValueError:
                node_page = entry.page
            passed = run.outcomes.get((node_page, entry.line))
            entries.append(entry if passed is None else entry.with_outcome(passed))
        terminalreporter.section(f"block ledger of {gate.site.config_file}")
        terminalreporter.write_line(format_table(entries))
