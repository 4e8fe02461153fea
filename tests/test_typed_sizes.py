"""A size in MiB is held to the backend's byte limits only where it speaks of the backend.

The gate's own bounds (a sandbox's disk, a command's output) are sizes in MiB that are no limit of
the backend; the contributors' threat model states them. A backend limit retyped wrong must still
fail, in a table row, in a list item, and in a paragraph wrapped over several lines."""

from __future__ import annotations

import pytest

from betrace_dist.gate import typed
from betrace_dist.release import load_release_data


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("| Limit | Value |\n| --- | --- |\n| Request body | 5 MiB |\n", 3),
        ("- The backend refuses\n  anything over 5 MiB.\n", 2),
        ("Intro.\n\nA rule may hold an expression\nof at most 5 MiB here.\n", 4),
    ],
)
def test_a_backend_limit_retyped_wrong_fails_at_its_line(text: str, line: int) -> None:
    found = typed.problems(text, load_release_data())
    assert [(p.line, "'5 MiB' is no limit of the backend" in p.reason) for p in found] == [
        (line, True)
    ]


def test_the_gates_own_bounds_are_no_claim_about_the_backend() -> None:
    text = (
        "The backend accepts requests.\n\n"
        "| Resource | Bound |\n| --- | --- |\n"
        "| Output | 8 MiB per stream of a command |\n"
        "- Reads stop at 16 MiB (an error,\n  never a silent cut).\n"
    )
    assert typed.problems(text, load_release_data()) == []
