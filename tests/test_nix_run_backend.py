"""What `nix run` of BeTrace's backend package does with the rest of its line, and with the
commands after it."""

from __future__ import annotations

from betrace_dist.gate.shellwords import split


def test_an_and_or_list_ended_by_an_ampersand_runs_in_the_background() -> None:
    """`a && b &`: bash runs the whole list in the background; only `b` was marked so."""
    commands = split("a && b &\nc | d &\ne; f\n")
    assert [(c.argv[0], c.background) for c in commands] == [
        ("a", True),
        ("b", True),
        ("c", True),
        ("d", True),
        ("e", False),
        ("f", False),
    ]
