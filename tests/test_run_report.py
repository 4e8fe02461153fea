"""The end of a gate run says why a run that checked no block is no pass. The attack on the
pages found a page whose blocks all run on the live tier (the rule-language reference) failing
under --no-live with "install what is missing", which sends the reader after tools they have."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from betrace_dist.gate import plugin
from betrace_dist.gate.live import NO_LIVE, LiveTier
from betrace_dist.gate.run import GateRun

NODE = "docs/reference/rule-language.md::line:20,yaml"


def _live_off_reason() -> str:
    """The reason a block is skipped with under --no-live, as the live tier gives it."""
    with pytest.raises(pytest.skip.Exception) as skipped:
        LiveTier(None, NO_LIVE).program_or_skip("rule examples run", RuntimeError)
    return str(skipped.value)


def _skipped(reason: str) -> SimpleNamespace:
    """A skipped block's report, as pytest gives it (longrepr: file, line, "Skipped: why")."""
    longrepr = ("live.py", 93, f"Skipped: {reason}")
    return SimpleNamespace(nodeid=NODE, skipped=True, when="setup", longrepr=longrepr)


def test_a_run_whose_blocks_all_need_the_live_tier_says_to_turn_it_on() -> None:
    run = GateRun()
    for _ in range(3):
        plugin._note_skip_or_check(run, _skipped(_live_off_reason()))  # type: ignore[arg-type]
    said = plugin.nothing_checked(run)
    assert said is not None and "all 3 run on the live tier" in said and "without --no-live" in said


def test_a_run_skipped_for_a_missing_program_says_to_install_it() -> None:
    run = GateRun()
    plugin._note_skip_or_check(run, _skipped(_live_off_reason()))  # type: ignore[arg-type]
    plugin._note_skip_or_check(
        run, _skipped("'nix-instantiate' is not installed (apt-get install nix-bin)")
    )  # type: ignore[arg-type]
    said = plugin.nothing_checked(run)
    assert said is not None and "install what is missing" in said
