"""The live tier's mechanism: given a backend program, the gate starts it in the page's jail
when the page's model has the backend running, runs the page's curl for real and compares.

These tests give the gate tests/fixtures/live-site/programs/stand-in-backend, a small HTTP
program of the test's own: the real betrace-backend is built from upstream's source by hand
and never in tests (see docs/contributing/how-the-docs-are-verified.md, "The live tier").
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import FIXTURES, copy_site, line_containing, require_tool, run_pytest

pytestmark = pytest.mark.slow

LIVE = FIXTURES / "live-site"
STAND_IN = LIVE / "programs" / "stand-in-backend"
READY_OUTPUT = '"uptimeSeconds":"...","metadata":{"storage":"in-memory"}}'


def live_site(tmp_path: Path, mode: str | None = None, output: str | None = None) -> Path:
    site = copy_site(tmp_path, ["index.md"], source=LIVE)
    page = site / "docs" / "index.md"
    text = page.read_text(encoding="utf-8")
    if mode:
        text = text.replace(
            "docker compose up --wait", f"docker compose up --wait\necho {mode} > ~/stand-in-mode"
        )
    if output:
        text = text.replace(READY_OUTPUT, output)
    page.write_text(text, encoding="utf-8")
    return site


def gate(site: Path, *args: str) -> str:
    require_tool("bwrap")
    done = run_pytest(["docs", "-q", "-p", "no:randomly", *args], site)
    return done.stdout + done.stderr


def test_without_a_program_the_output_is_not_compared(tmp_path: Path) -> None:
    out = gate(live_site(tmp_path, output='"uptimeSeconds":"...","wrong":true}'))
    assert re.search(r"\b2 passed\b", out), out[-2000:]


def stand_ins_left() -> list[str]:
    """Stand-in backends still running (not this session's own processes)."""
    left = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            # a gate run naming the stand-in (this project's or a concurrent one) is no stand-in
            own = str(os.getpid()).encode() in cmdline
            if b"stand-in-backend" in cmdline and b"pytest" not in cmdline and not own:
                left.append(cmdline.replace(b"\0", b" ").decode())
    return left


@dataclass(frozen=True)
class StandInRun:
    output: str
    left: list[str]  # stand-ins running the moment the gate returned


@pytest.fixture(scope="module")
def stand_in_run(tmp_path_factory: pytest.TempPathFactory) -> StandInRun:
    """The page as it is, against the stand-in: one run, which two tests inspect."""
    site = live_site(tmp_path_factory.mktemp("stand-in"))
    output = gate(site, "--live-backend", str(STAND_IN))
    return StandInRun(output, stand_ins_left())


def test_the_stand_in_answers_and_the_shown_output_is_compared(stand_in_run: StandInRun) -> None:
    assert re.search(r"\b2 passed\b", stand_in_run.output), stand_in_run.output[-2000:]


def test_a_wrong_shown_output_fails_at_its_line_against_the_live_backend(tmp_path: Path) -> None:
    site = live_site(tmp_path, output='"uptimeSeconds":"...","metadata":{"storage":"disk"}}')
    out = gate(site, "--live-backend", str(STAND_IN))
    line = line_containing(site / "docs" / "index.md", '"storage":"disk"')
    assert f"index.md:{line}: shell block (console): the page shows" in out, out[-3000:]


def test_an_undocumented_field_in_a_real_answer_names_the_release_data(tmp_path: Path) -> None:
    out = gate(live_site(tmp_path, mode="extra-field"), "--live-backend", str(STAND_IN))
    assert "has field(s) the release data does not document: uptime" in out, out[-3000:]


def test_an_error_status_of_the_live_backend_fails_the_block(tmp_path: Path) -> None:
    out = gate(live_site(tmp_path, mode="error"), "--live-backend", str(STAND_IN))
    assert "the real backend answered" in out and "500" in out, out[-3000:]


def test_a_program_that_is_not_executable_is_a_usage_error(tmp_path: Path) -> None:
    out = gate(live_site(tmp_path), "--live-backend", str(tmp_path / "missing"))
    assert "--live-backend: " in out and "is not an executable file" in out


def test_the_live_backend_does_not_outlive_the_run(stand_in_run: StandInRun) -> None:
    assert stand_in_run.left == []


def test_update_outputs_rewrites_the_shown_output_and_keeps_macros(tmp_path: Path) -> None:
    site = live_site(tmp_path, output='"uptimeSeconds":"...","metadata":{"storage":"disk"}}')
    page = site / "docs" / "index.md"
    before = page.read_text(encoding="utf-8")
    out = gate(site, "--live-backend", str(STAND_IN), "--update-outputs", "-n", "0")
    after = page.read_text(encoding="utf-8")
    assert re.search(r"\b2 passed\b", out), out[-2000:]
    assert '"metadata":{"storage":"disk"}' in before and '"storage":"disk"' not in after
    expected = (
        '{"status":"HEALTHY","version":"{{ release.backend.version }}",'
        '"uptimeSeconds":"...","metadata":{"storage":"in-memory"}}'
    )
    assert expected in after.splitlines(), after
    assert before.replace('{"storage":"disk"}', '{"storage":"in-memory"}') == after
    # the rewritten page now passes as it is
    assert re.search(r"\b2 passed\b", gate(site, "--live-backend", str(STAND_IN)))


def test_update_outputs_refuses_nothing_it_can_compare_without_a_program(tmp_path: Path) -> None:
    """Offline, curl's output comes from a model: nothing is compared, nothing rewritten."""
    site = live_site(tmp_path, output='"uptimeSeconds":"...","metadata":{"storage":"disk"}}')
    page = site / "docs" / "index.md"
    before = page.read_text(encoding="utf-8")
    gate(site, "--update-outputs", "-n", "0")
    assert page.read_text(encoding="utf-8") == before


def test_no_live_wins_over_a_backend_named_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--no-live` is the fast loop: a BETRACE_LIVE_BACKEND left in the shell must not turn the
    tier back on (it did: the variable was read first)."""
    from betrace_dist.gate import live

    program = tmp_path / "backend"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setenv(live.ENV_VAR, str(program))
    assert live.configure(None, off=True).program is None
    assert live.configure(None, off=False).program == program.resolve()
