"""The gate's own scans of page text stay linear in it: the page controls that text.

A console block's shown output against what its command printed (`...` lines): the page controls
both sides, and a regular expression of `.*?` for each `...` backtracked without end on a few
lines of output. The expected results come from that regular expression, the old definition of
a match, kept here as the model. The scan for variables a page defines is held the same way.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from betrace_dist.gate.checkers.shell import matches_with_ellipses


def by_regular_expression(shown: list[str], actual: list[str]) -> bool:
    pattern = "\n".join(".*?" if line == "..." else re.escape(line) for line in shown)
    return re.fullmatch(pattern, "\n".join(actual), re.DOTALL) is not None


LINES = st.sampled_from(["a", "b", "", "..."])


@given(st.lists(LINES, max_size=8), st.lists(st.sampled_from(["a", "b", ""]), max_size=10))
def test_ellipses_match_as_the_regular_expression_did(shown: list[str], actual: list[str]) -> None:
    assert matches_with_ellipses(shown, actual) == by_regular_expression(shown, actual)


def test_examples() -> None:
    assert matches_with_ellipses(["a", "...", "c"], ["a", "b", "b", "c"])
    assert not matches_with_ellipses(["a", "...", "c"], ["a", "c"])  # `...` is a line at least
    assert matches_with_ellipses(["..."], [])
    assert matches_with_ellipses(["...", "x", "...", "y"], ["x", "x", "q", "y"])


def test_output_that_made_the_old_comparison_backtrack_is_answered() -> None:
    """Eight `...` between `a` lines against 3,000 printed `a` lines and no `b`: the regular
    expression ran for hours. Run in a thread, so a return to it fails instead of hanging."""
    answer: list[bool] = []
    shown = ["...", "a"] * 8 + ["b"]
    worker = threading.Thread(
        target=lambda: answer.append(matches_with_ellipses(shown, ["a"] * 3000)), daemon=True
    )
    worker.start()
    worker.join(120)
    assert answer == [False], "the comparison did not return"


def test_a_page_of_blank_lines_is_scanned_for_variables_at_once() -> None:
    """The scan for variables a page defines (typed.defined_variables) split each run of blank
    lines every way from each line start: 3,000 blank lines took 80 s, 10,000 over five minutes.
    Run in a thread, so a return to that fails instead of hanging."""
    from betrace_dist.gate import typed

    text = "# A page\n\nA short page." + "\n" * 20_000 + "export BETRACE_DEBUG=1\n"
    found: list[set[str]] = []
    worker = threading.Thread(
        target=lambda: found.append(typed.defined_variables(text)), daemon=True
    )
    worker.start()
    worker.join(120)
    assert found == [{"BETRACE_DEBUG"}], "the scan did not return"


def test_snippets_that_include_each_other_are_stopped_at_the_pages_budget(tmp_path: Path) -> None:
    """Four small files, each including the next 40 times, made 189 MB of Markdown (four
    minutes, 0.9 GB) before the page's size limit was looked at: the inclusions count now."""
    import markdown

    from betrace_dist.site.snippets import AllowListedSnippets

    folder = tmp_path / "docs" / "s"
    folder.mkdir(parents=True)

    def including(name: str) -> str:
        return f'--8<-- "docs/s/{name}.txt"\n' * 40

    for name, following in zip("abc", "bcd", strict=True):
        (folder / f"{name}.txt").write_text(including(following))
    (folder / "d.txt").write_text("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n")
    snippets = AllowListedSnippets(base_path=[str(tmp_path)], check_paths=True)
    md = markdown.Markdown(extensions=[snippets])
    with pytest.raises(Exception, match="more than 400,000 characters"):
        md.convert('--8<-- "docs/s/a.txt"\n')  # 40^3 inclusions of d.txt: 3.6 MB
    md.reset()
    assert "Lorem ipsum" in md.convert('--8<-- "docs/s/d.txt"\n')  # one inclusion is fine
