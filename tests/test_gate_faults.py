"""The gate on a site with one deliberate fault per page: each fails at its page:line, with why.

Expected lines are found in the fixture pages by their content, never typed here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import FIXTURES, copy_site, line_containing, run_mkdocs, run_pytest

pytestmark = pytest.mark.slow  # gate runs in child processes

SITE = FIXTURES / "faulty-site"
DOCS = SITE / "docs"


@pytest.fixture(scope="module")
def gate_run() -> str:
    result = run_pytest(["docs", "-q", "--ledger"], cwd=SITE)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "INTERNALERROR" not in result.stdout + result.stderr
    return result.stdout


def failure_lines(output: str) -> dict[str, str]:
    """`docs/page.md:LINE: reason` lines of the gate's output, by `page.md:LINE`; the reasons of
    one line (a page named by two known issues fails twice at line 1) joined by newlines."""
    found: dict[str, str] = {}
    for match in re.finditer(r"^(docs/[\w./-]+\.md:\d+): (.+)$", output, re.MULTILINE):
        found[match[1]] = f"{found[match[1]]}\n{match[2]}" if match[1] in found else match[2]
    return found


def expect(output: str, page: str, line: int, *words: str) -> None:
    failures = failure_lines(output)
    key = f"docs/{page}:{line}"
    assert key in failures, f"expected a failure at {key}; the gate reported {sorted(failures)}"
    for word in words:
        assert word in failures[key], f"{key}: {failures[key]!r} does not say {word!r}"


def test_unclaimed_block_fails_with_page_line(gate_run: str) -> None:
    line = line_containing(DOCS / "unclaimed.md", "```toml")
    expect(gate_run, "unclaimed.md", line, "no checker for language 'toml'", "gate: skip")


def test_bad_yaml_inside_a_content_tab_fails_at_its_line(gate_run: str) -> None:
    line = line_containing(DOCS / "tabs.md", "tag: [unclosed")
    expect(gate_run, "tabs.md", line, "invalid YAML")


def test_macro_typo_fails_at_its_source_line(gate_run: str) -> None:
    line = line_containing(DOCS / "macro-typo.md", "relase.version")
    expect(gate_run, "macro-typo.md", line, "'relase' is undefined")


def test_failing_python_example_is_a_failure_not_an_internal_error(gate_run: str) -> None:
    expect(
        gate_run,
        "python-fails.md",
        line_containing(DOCS / "python-fails.md", "#> 3"),
        "the page says '#> 3'",
        "printed '#> 2'",
    )
    expect(
        gate_run, "python-fails.md", line_containing(DOCS / "python-fails.md", '"prot"'), "KeyError"
    )


def test_block_after_a_multi_line_macro_maps_to_the_source_line(gate_run: str) -> None:
    line = line_containing(DOCS / "after-table.md", "adminPassword: two")
    expect(gate_run, "after-table.md", line, "duplicate key", "adminPassword")


def test_clean_page_passes_and_the_ledger_counts_every_block(gate_run: str) -> None:
    assert "docs/index.md:" not in gate_run
    totals = re.search(r"^(\d+) blocks on (\d+) pages: (.*)$", gate_run, re.MULTILINE)
    assert totals, gate_run
    # fences in the fixture pages, counted from their text
    fences = sum(
        len(re.findall(r"^\s*```[a-z]", page.read_text(encoding="utf-8"), re.MULTILINE))
        for page in DOCS.glob("*.md")
    )
    # pages that cannot be rendered (the macro typo, the front matter override) stand in the
    # ledger as one error entry each; so do the code readers see that no fence holds (3 on
    # unseen-code.md: a quoted fence, which the count above does not see, an indented block and
    # raw HTML), the broken links (3) and the line that is a heading by accident (1)
    assert int(totals[1]) == fences + 2 + 3 + 3 + 1
    # errors: those 9, and the fence hidden in a comment
    assert "1 unclaimed" in totals[3] and "10 error" in totals[3]
    assert "1 modelled" in totals[3]  # the console block whose output a cluster would print


def test_code_readers_see_outside_fences_fails_at_its_line(gate_run: str) -> None:
    page = DOCS / "unseen-code.md"
    expect(gate_run, "unseen-code.md", line_containing(page, "> ```bash"), "inside a blockquote")
    expect(
        gate_run,
        "unseen-code.md",
        line_containing(page, "    echo"),
        "an indented code block",
        "no checker claims",
    )
    expect(gate_run, "unseen-code.md", line_containing(page, "<pre><code>"), "raw HTML code")


def test_a_line_that_is_a_heading_by_accident_fails_at_its_line(gate_run: str) -> None:
    line = line_containing(DOCS / "unseen-code.md", "#108478 and")
    expect(gate_run, "unseen-code.md", line, "starts with '#' and no space", "reflow it")
    hidden = line_containing(DOCS / "unseen-code.md", "#hidden:")
    assert f"docs/unseen-code.md:{hidden}" not in failure_lines(gate_run)  # inside a comment


def test_fence_inside_an_html_comment_fails_and_never_runs(gate_run: str) -> None:
    from betrace_dist.gate.collect import Gate

    page = DOCS / "unseen-code.md"
    line = line_containing(page, "touch hidden-command-ran") - 1  # its opening fence
    expect(
        gate_run,
        "unseen-code.md",
        line,
        f"inside the HTML comment opened at line {line_containing(page, '<!--')}",
        "does not run it",
    )
    result = Gate(SITE / "mkdocs.yml").analyse(page)
    hidden = [(e, c) for b, e, c in result.items if "hidden-command-ran" in b.body]
    assert hidden and hidden[0][1] is None and hidden[0][0].status == "error"  # no checker: no run
    visible = [c for b, _, c in result.items if "checked" in b.body]
    assert visible and visible[0] is not None


def test_broken_internal_links_and_anchors_fail_in_the_gate(gate_run: str) -> None:
    links = DOCS / "links.md"
    expect(gate_run, "links.md", line_containing(links, "no-such-page.md"), "no file of the site")
    expect(gate_run, "links.md", line_containing(links, "#no-such-section"), "no heading or id")
    anchor = DOCS / "anchor.md"
    expect(gate_run, "anchor.md", line_containing(anchor, "#no-such-heading"), "of index.md")
    assert "docs/links.md:3:" not in gate_run  # links to a page and a heading that exist


def test_failing_python_example_is_reported_plainly_under_every_traceback_style() -> None:
    for style in ("auto", "long", "short", "line", "native", "no"):
        result = run_pytest(["docs/python-fails.md", "-q", f"--tb={style}"], cwd=SITE)
        assert result.returncode == 1, (style, result.stdout[-2000:])
        assert "INTERNALERROR" not in result.stdout + result.stderr, style


def test_broken_anchor_fails_the_strict_build(tmp_path: Path) -> None:
    site = copy_site(tmp_path, ["index.md", "anchor.md"])
    result = run_mkdocs(["build", "--strict", "-d", str(tmp_path / "out")], cwd=site)
    assert result.returncode != 0
    assert "anchor.md" in result.stderr and "#no-such-heading" in result.stderr, result.stderr


def test_site_without_faults_builds_and_passes(tmp_path: Path) -> None:
    site = copy_site(tmp_path, ["index.md"])
    assert run_mkdocs(["build", "--strict", "-d", str(tmp_path / "out")], cwd=site).returncode == 0
    result = run_pytest(["docs", "-q"], cwd=site)
    assert result.returncode == 0, result.stdout


def test_console_output_is_compared_with_what_the_command_printed(gate_run: str) -> None:
    page = DOCS / "console.md"
    expect(gate_run, "console.md", line_containing(page, "three"), "shows 'three'", "printed 'two'")
    assert f"docs/console.md:{line_containing(page, 'first')}" not in gate_run  # `...` matched


def test_console_output_from_a_model_is_reported_as_not_compared(gate_run: str) -> None:
    line = line_containing(DOCS / "console.md", "kubectl create namespace demo") - 1
    ledger = re.search(
        rf"^docs/console\.md\s+{line}\s+console\s+shell\s+(\w+)\s+(.*)$", gate_run, re.M
    )
    assert ledger, gate_run[-3000:]
    assert ledger[1] == "modelled" and "output shown is not compared" in ledger[2]


def test_front_matter_cannot_override_the_release_data(gate_run: str) -> None:
    page = DOCS / "front-matter.md"
    expect(
        gate_run,
        "front-matter.md",
        line_containing(page, "release:"),
        "macro variable",
        "'release'",
    )
