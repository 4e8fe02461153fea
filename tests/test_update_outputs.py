"""--update-outputs: what it writes back, and what it keeps (macros, the page's wildcards)."""

from __future__ import annotations

from pathlib import Path

import pytest

from betrace_dist.gate import update


@pytest.fixture
def updates() -> update.Updates:
    return update.Updates()


def test_json_keeps_the_pages_wildcards() -> None:
    shown = ['{"a":"...","b":1,"...":"..."}']
    printed = ['{"a":"x","b":2,"c":3}']
    assert update.new_output(shown, printed) == ['{"a":"...","b":2,"...":"..."}']


def test_a_value_rendered_from_a_macro_is_written_back_as_the_macro(
    tmp_path: Path, updates: update.Updates
) -> None:
    page = tmp_path / "p.md"
    page.write_text('x\n{"version":"{{ release.version }}","n":1}\ny\n', encoding="utf-8")
    updates.queue(page, 2, 2, ['{"version":"2.0.0","n":1}'], ['{"version":"2.0.0","n":2}'])
    updates.apply()
    assert page.read_text(encoding="utf-8") == 'x\n{"version":"{{ release.version }}","n":2}\ny\n'


def test_plain_lines_are_replaced_and_pages_rewritten_bottom_up(
    tmp_path: Path, updates: update.Updates
) -> None:
    page = tmp_path / "p.md"
    page.write_text("a\nold1\nb\nold2\nc\n", encoding="utf-8")
    updates.queue(page, 2, 2, ["old1"], ["new1", "more"])
    updates.queue(page, 4, 4, ["old2"], ["new2"])
    updates.apply()
    assert page.read_text(encoding="utf-8") == "a\nnew1\nmore\nb\nnew2\nc\n"


def test_the_same_lines_are_not_rewritten_twice(tmp_path: Path, updates: update.Updates) -> None:
    page = tmp_path / "p.md"
    page.write_text("a\nold\nc\n", encoding="utf-8")
    updates.queue(page, 2, 2, ["old"], ["first"])
    updates.queue(page, 2, 2, ["old"], ["second"])
    said = updates.apply()
    assert any("not rewritten: these lines were rewritten once" in line for line in said)
    assert page.read_text(encoding="utf-8").count("old") == 0


def test_output_that_does_not_map_line_for_line_is_refused(
    tmp_path: Path, updates: update.Updates
) -> None:
    with pytest.raises(update.UpdateError, match="line for line"):
        updates.queue(tmp_path / "p.md", 2, 5, ["one", "two"], ["x"])
