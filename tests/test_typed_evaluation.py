"""When the backend evaluates a trace, typed into a page by hand in any wording, is held to
releases.yaml backend.evaluation (gate/typed.py): the window after a trace's last span, the
quiet time, how often the backend checks, and how far apart spans are judged apart.

The wrong wordings are those a review of the gate passed before this check read them: a
single time, "between N and M", minutes, an en dash, a statement wrapped across lines, the
quiet time and the check interval stated on their own."""

from __future__ import annotations

import pytest

from betrace_dist.gate import typed
from betrace_dist.release import load_release_data

DATA = load_release_data()
QUIET, LATEST = DATA.current.backend.evaluation.window
EVERY = DATA.current.backend.evaluation.check_every_seconds


def evaluation_problems(text: str) -> list[str]:
    return [
        f"{p.line}: {p.reason}"
        for p in typed.problems(text, DATA)
        if "backend.evaluation" in p.reason
    ]


WRONG = [
    f"A trace is evaluated {LATEST + 1} seconds after its last span.",
    f"A trace is evaluated between {LATEST + 1} and {LATEST + 2} seconds after its last span.",
    f"A trace is evaluated {LATEST + 1} s to {LATEST + 2} s after its last span.",
    f"A trace is evaluated {LATEST + 1} to {LATEST + 2} sec after its last span.",
    f"A trace is evaluated {LATEST + 1}&ndash;{LATEST + 2} seconds after its last span.",
    f"A trace is evaluated {LATEST + 1} or {LATEST + 2} seconds after its last span.",
    f"A trace is evaluated {QUIET} to {LATEST} minutes after its last span.",
    f"A trace is evaluated {LATEST + 1} to {LATEST + 2} seconds after the final span.",
    f"A trace is evaluated {LATEST + 1} to {LATEST + 2} seconds after the last of its spans.",
    f"A trace is evaluated {LATEST + 1} to {LATEST + 2} seconds after its last\n  span.",
    f"A trace is evaluated {QUIET} to {LATEST} seconds after its first span arrived.",
    f"It evaluates them once no span of that trace has arrived for {QUIET * 10} seconds.",
    f"It waits for {QUIET * 10} seconds without a span.",
    f"Traces are checked every {EVERY * 5} seconds.",
    "The backend looks for finished traces once a minute.",
    f"Spans of one trace sent {QUIET * 10} seconds or more apart are judged apart.",
    f"A trace is evaluated at least {QUIET + 1} seconds after its last span.",
    f"A trace is evaluated within {LATEST + 5} seconds after its last span.",
]


@pytest.mark.parametrize("text", WRONG)
def test_a_wrong_evaluation_time_is_refused_at_its_line(text: str) -> None:
    found = evaluation_problems(f"# Page\n\n{text}\n")
    assert found and found[0].startswith("3: "), found
    assert "write {{ evaluation_delay() }}" in found[0]


RIGHT = [
    f"A trace is evaluated {QUIET} to {LATEST} seconds after its last span.",
    f"A trace is evaluated between {QUIET} and {LATEST} seconds after its\n  last span.",
    f"A trace is evaluated at least {QUIET} seconds after its last span.",
    f"A trace is evaluated within {LATEST} seconds after its last span.",
    f"It evaluates them once no span of that trace has arrived for {QUIET} seconds.",
    f"Spans sent {QUIET} seconds or more apart may be split, {LATEST} seconds or more apart are.",
    "A stop takes 10 seconds or more.",
]


@pytest.mark.parametrize("text", RIGHT)
def test_the_release_s_evaluation_times_pass(text: str) -> None:
    assert evaluation_problems(f"# Page\n\n{text}\n") == []
