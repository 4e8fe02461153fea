"""Sizes typed on a page (gate/typed.py): the pages about the gate itself (docs/contributing/)
state the gate's own limits, held to the constants of its code; on every other page a size said
of the backend must be one of the backend's limits. The amounts below are the ones
docs/contributing/threat-model.md states."""

from __future__ import annotations

import pytest

from betrace_dist.gate import typed
from betrace_dist.release import ReleaseData

PAGE = "Intro.\n\n| Gate's reads | 16 MiB per file | `safefs.READ_LIMIT` |\n"


def test_a_page_about_the_gate_may_state_the_gates_limits(release_data: ReleaseData) -> None:
    assert typed.problems(PAGE, release_data, about_the_gate=True) == []


def test_a_guide_may_not_give_the_gates_limit_as_the_backends(release_data: ReleaseData) -> None:
    page = PAGE.replace("Gate's reads", "Backend request bodies")
    [problem] = typed.problems(page, release_data)
    assert problem.line == 3
    assert "'16 MiB' is no limit of the backend (" in problem.reason
    assert "nor of the gate" not in problem.reason


def test_a_size_that_is_no_limit_of_either_fails_on_a_page_about_the_gate(
    release_data: ReleaseData,
) -> None:
    [problem] = typed.problems(PAGE.replace("16 MiB", "20 MiB"), release_data, True)
    assert problem.line == 3
    assert "'20 MiB' is no limit of the backend (" in problem.reason
    assert "nor of the gate (" in problem.reason and "safefs.READ_LIMIT = 16 MiB" in problem.reason


def test_when_the_gates_limit_changes_the_old_number_fails(
    release_data: ReleaseData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(typed.GATE_SIZES, "safefs.READ_LIMIT", 24 * 1024 * 1024)
    [problem] = typed.problems(PAGE, release_data, about_the_gate=True)
    assert "'16 MiB' is no limit" in problem.reason
    assert "safefs.READ_LIMIT = 24 MiB" in problem.reason
