"""What the gate prints of a page (gate/escape.py) is data: no control character, no line a CI
runner takes as a command, bounded. The attack found the command pattern's leading white space
crossing newlines: a message of 16,384 newlines took seconds to escape, outside every budget."""

from __future__ import annotations

from betrace_dist.gate import escape


def test_a_workflow_command_is_escaped_after_any_white_space() -> None:
    text = "ok\n::error::x\n  \t::warning::y\n\u2003##[group]z\n[command]w\n##vso[task]v"
    shown = escape.as_data(text)
    assert all(
        not line.lstrip().startswith(("::", "##[", "[command]", "##vso["))
        for line in shown.splitlines()
    ), shown


def test_the_command_pattern_never_reads_across_a_line() -> None:
    """Linear by construction: the white space before a command is one line's, so the pattern
    does not go back over earlier lines (the quadratic form matched '\\n\\n  ::' from the first
    empty line)."""
    text = "a\n\n\n  ::error::x\n"
    found = list(escape._WORKFLOW.finditer(text))
    assert found and all("\n" not in m[1] for m in found), [m[1] for m in found]
    assert escape.as_data(text).splitlines()[3] == "  \\::error::x"
