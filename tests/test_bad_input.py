"""The gate under bad input: every fault names its file or page, its line, what is wrong and what
would be right, and nothing crashes or hangs.

releases.yaml faults complete those of tests/test_release.py; page faults are run through the gate
on tests/fixtures/bad-input-site (one fault per page), or through the Site API where that is
faster. Expected lines are found in the files by their content, never typed here.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from betrace_dist.errors import ProblemsError
from betrace_dist.gate.lexer import LexError, blocks
from betrace_dist.gate.render import Site, map_lines
from betrace_dist.release import RELEASES_FILE, load_release_data

from .conftest import CURRENT, FIXTURES, copy_site, line_containing, run_pytest

ORIGINAL = RELEASES_FILE.read_text(encoding="utf-8")
#: the current release's version, read: a release leaves these tests as they are
VERSION = CURRENT.version
SITE = FIXTURES / "bad-input-site"
DOCS = SITE / "docs"


# -- releases.yaml ------------------------------------------------------------------------------
def release_file(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "releases.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def replaced(old: str, new: str) -> str:
    assert old in ORIGINAL, f"releases.yaml no longer contains {old!r}: update this test"
    return ORIGINAL.replace(old, new, 1)


def only_problem(path: Path) -> str:
    with pytest.raises(ProblemsError) as info:
        load_release_data(path)
    assert len(info.value.problems) == 1, info.value
    return str(info.value.problems[0])


def test_tab_character_names_its_line_and_says_to_use_spaces(tmp_path: Path) -> None:
    path = release_file(tmp_path, replaced("  name: BeTrace", "\tname: BeTrace"))
    found = only_problem(path)
    assert found.startswith(f"{path}:{line_containing(path, 'name: BeTrace')}: invalid YAML:")
    assert "'\\t'" in found and "replace the tab by spaces" in found


def test_wrong_indentation_says_what_to_check(tmp_path: Path) -> None:
    path = release_file(tmp_path, replaced("  name: BeTrace", "     name: BeTrace"))
    found = only_problem(path)
    # The parser notices at the next key of the outer mapping: the first one after the bad line.
    assert found.startswith(f"{path}:{line_containing(path, '  repository:')}: invalid YAML:")
    assert "check the indentation" in found and "same column" in found


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "~\n"])
def test_empty_file_says_what_it_must_hold(tmp_path: Path, text: str) -> None:
    path = release_file(tmp_path, text)
    assert only_problem(path) == (
        f"{path}:1: the file holds no data; it must be a mapping with the keys schema, project "
        "and releases (schema: 1 on line one)"
    )


def test_a_list_instead_of_a_mapping_is_named(tmp_path: Path) -> None:
    path = release_file(tmp_path, "# releases\n- version: 2.0.0\n- version: 1.0.0\n")
    found = only_problem(path)
    assert found.startswith(f"{path}:2: the top level is a list, but it must be a mapping")
    assert "schema, project and releases" in found


def test_a_single_value_instead_of_a_mapping_is_named(tmp_path: Path) -> None:
    path = release_file(tmp_path, "2.0.0\n")
    assert "the top level is a single value ('2.0.0'), but it must be a mapping" in only_problem(
        path
    )


def test_non_utf8_file_names_line_column_and_the_fix(tmp_path: Path) -> None:
    text = replaced("  name: BeTrace", "  name: B\xe9Trace")
    path = release_file(tmp_path, text.encode("latin-1"))
    line = text.splitlines().index("  name: B\xe9Trace") + 1
    assert only_problem(path) == (
        f"{path}:{line}: not UTF-8 text: byte 0xe9 at column 10 (invalid continuation byte); "
        "save the file as UTF-8"
    )


def test_unquoted_two_part_version_says_yaml_read_a_number(tmp_path: Path) -> None:
    path = release_file(tmp_path, replaced(f"  - version: {VERSION}", "  - version: 2.0"))
    line = line_containing(path, "- version: 2.0")
    assert only_problem(path) == (
        f"{path}:{line}: releases[0].version: YAML reads 2.0 as the number 2.0, not a version: "
        "write MAJOR.MINOR.PATCH, such as 2.0.0"
    )


def test_quoted_two_part_version_says_what_a_version_looks_like(tmp_path: Path) -> None:
    path = release_file(tmp_path, replaced(f"  - version: {VERSION}", '  - version: "2.0"'))
    line = line_containing(path, '- version: "2.0"')
    assert only_problem(path) == (
        f"{path}:{line}: releases[0].version: '2.0' is not a version of the form "
        "MAJOR.MINOR.PATCH, such as 2.0.0"
    )


def test_unquoted_minor_version_that_yaml_shortens_is_explained(tmp_path: Path) -> None:
    """`minimum: 1.30` is the float 1.3 to YAML: the message shows both and asks for quotes."""
    path = release_file(tmp_path, replaced('minimum: "1.25"', "minimum: 1.30"))
    line = line_containing(path, "minimum: 1.30")
    assert only_problem(path) == (
        f"{path}:{line}: releases[0].kubernetes.minimum: YAML reads 1.30 as the number 1.3, not "
        'a version: write MAJOR.MINOR in quotes, such as "1.25"'
    )


def test_a_number_where_text_is_expected_asks_for_quotes(tmp_path: Path) -> None:
    path = release_file(tmp_path, replaced("  name: BeTrace", "  name: 42"))
    line = line_containing(path, "name: 42")
    found = only_problem(path)
    assert found.startswith(f"{path}:{line}: project.name: Input should be a valid string")
    assert "YAML reads 42 as a number: put it in quotes" in found


def test_impossible_date_names_its_line_instead_of_crashing(tmp_path: Path) -> None:
    date = CURRENT.date.isoformat()
    path = release_file(tmp_path, replaced(f"    date: {date}", "    date: 2026-13-45"))
    line = line_containing(path, "2026-13-45")
    assert only_problem(path) == (
        f"{path}:{line}: invalid YAML: '2026-13-45' is not a valid date (month must be in "
        "1..12); write YYYY-MM-DD"
    )


def test_control_character_names_its_line_instead_of_crashing(tmp_path: Path) -> None:
    path = release_file(tmp_path, replaced("  name: BeTrace", "  name: Be\x07Trace"))
    found = only_problem(path)
    assert found.startswith(f"{path}:{line_containing(path, 'name: Be')}: invalid YAML:")
    assert "U+0007 is not allowed" in found and "remove it" in found


def test_second_document_is_refused_at_its_line(tmp_path: Path) -> None:
    path = release_file(tmp_path, ORIGINAL + "---\nschema: 1\n")
    line = len(ORIGINAL.splitlines()) + 1
    found = only_problem(path)
    assert found.startswith(f"{path}:{line}: invalid YAML:") and "single document" in found


def test_windows_line_endings_and_a_byte_order_mark_are_accepted(tmp_path: Path) -> None:
    path = release_file(tmp_path, ("\ufeff" + ORIGINAL.replace("\n", "\r\n")).encode("utf-8"))
    assert load_release_data(path).current.version


def test_release_data_the_live_tier_cannot_load_stops_pytest_with_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live tier reads the release data before the site does: a broken releases.yaml was an
    INTERNALERROR traceback there, with the file and line deep inside it."""
    from betrace_dist import upstream
    from betrace_dist.gate.run import run_of

    path = release_file(tmp_path, ORIGINAL.replace("  - name: Docker Compose", "  - nme: x", 1))
    monkeypatch.setattr(upstream, "load_release_data", lambda: load_release_data(path))
    config = SimpleNamespace(stash=pytest.Stash(), getoption=lambda name, default=None: default)
    with pytest.raises(pytest.UsageError) as caught:
        run_of(config)  # type: ignore[arg-type]
    assert str(caught.value).startswith("the release data cannot be loaded:\n")
    assert f"{path}:" in str(caught.value)


# -- pages, through the gate --------------------------------------------------------------------
@pytest.fixture(scope="module")
def gate_run() -> str:
    result = run_pytest(["docs", "-q", "--ledger"], cwd=SITE)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "INTERNALERROR" not in result.stdout + result.stderr
    return result.stdout + "\n" + result.stderr


def reported(output: str) -> dict[str, str]:
    return {
        m[1]: m[2] for m in re.finditer(r"^docs/([\w./-]+\.md:\d+): (.+)$", output, re.MULTILINE)
    }


@pytest.mark.parametrize(
    ("page", "needle", "words"),
    [
        ("unterminated.md", "```yaml", ["is never closed", "end it with a line of ```"]),
        (
            "tab-closing-indent.md",
            "    ```yaml",
            ["closed at line 8 with a different indentation (0 spaces instead of 4)", "indent"],
        ),
        (
            "tab-outside.md",
            "  ```yaml",
            ["indented by 2 spaces", "outside the content tab opened at line 3", "by 4 spaces"],
        ),
        (
            "unknown-directive.md",
            "gate: skipp",
            ["unknown gate directive 'skipp'", "<!-- gate: skip: <reason> -->"],
        ),
        ("skip-without-reason.md", "gate: skip", ["a skip needs its reason", "<!-- gate: skip:"]),
        ("macro-typo.md", "prot(", ["'prot' is undefined", "did you mean 'port'?"]),
        ("macro-error.md", 'image("nope")', ["no BeTrace image 'nope'", "backend, grafana-plugin"]),
        ("front-matter.md", "tags: [unclosed", ["front matter is not valid YAML", "key: value"]),
    ],
)
def test_bad_page_fails_at_its_line_with_what_would_be_right(
    gate_run: str, page: str, needle: str, words: list[str]
) -> None:
    key = f"{page}:{line_containing(DOCS / page, needle)}"
    failures = reported(gate_run)
    assert key in failures, f"expected {key}; the gate reported {sorted(failures)}"
    for word in words:
        assert word in failures[key], f"{key}: {failures[key]!r} does not say {word!r}"


def test_non_utf8_page_names_the_line_and_byte(gate_run: str) -> None:
    assert reported(gate_run)["latin1.md:1"] == (
        "the page is not UTF-8 text: byte 0xe9 at line 1, column 6 (invalid continuation byte); "
        "save the file as UTF-8"
    )


def test_an_empty_page_has_no_blocks_and_passes(gate_run: str) -> None:
    """An empty page passes with zero blocks: the gate checks what pages claim, and an empty page
    claims nothing. Whether it belongs in the site is for the strict build (nav, links) to say;
    refusing it here would also refuse the placeholder a new section starts with."""
    assert "empty.md" not in gate_run
    assert blocks("") == []


def test_the_clean_page_passes_and_every_bad_page_is_one_error(gate_run: str) -> None:
    assert "index.md:" not in "\n".join(reported(gate_run))
    totals = re.search(r"^(\d+) blocks on (\d+) pages: (.*)$", gate_run, re.MULTILINE)
    assert totals and "1 verified" in totals[3] and "9 error" in totals[3], gate_run


def test_macro_errors_are_reported_once_not_logged_by_the_plugin_too(gate_run: str) -> None:
    assert "[macros] - ERROR" not in gate_run and "Traceback" not in gate_run


# -- pages, through the Site API ----------------------------------------------------------------
@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(copy_site(tmp_path, ["index.md"], source=SITE) / "mkdocs.yml")


def write(site: Site, name: str, text: str) -> Path:
    path = site.docs_dir / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_1mb_page_renders_and_maps_right(site: Site) -> None:
    """A 1 MB page with macro tables, macros in blocks and repeated lines renders, and every
    block maps to its true source line (how long the map takes: benchmarks/bench_line_map.py;
    no test asserts a speed)."""
    parts = ["# A big page", ""]
    expected: list[int] = []
    n = 0
    while sum(len(p) + 1 for p in parts) < 1_000_000:
        n += 1
        if n % 20 == 1:
            parts += ["{{ compatibility_table() }}", ""]
        parts += [f"Section {n % 7} of the text, with a sentence or two of prose in it.", ""]
        parts += ["Same line, again and again: most pages repeat some lines."] * 8
        parts += ["", "```yaml"]
        expected.append(len(parts))
        parts += ["backend:", '  port: {{ port("http") }}', "```", ""]
    page = write(site, "big.md", "\n".join(parts))
    rendered = site.render(page)
    found = blocks(rendered.text)
    assert [rendered.source_line(b.line) for b in found] == expected


def test_map_lines_on_thousands_of_identical_lines_is_right() -> None:
    source, rendered, truth = [], [], []
    for i in range(30_000):
        if i % 10 == 5:
            source.append("{{ macro }}")
            rendered += ["expanded", "expanded"]
            truth += [i + 1, i + 1]
        else:
            source.append("same" if i % 2 else "")
            rendered.append(source[-1])
            truth.append(i + 1)
    assert map_lines(source, rendered) == tuple(truth)


def test_front_matter_that_is_a_list_is_refused(site: Site) -> None:
    page = write(site, "p.md", "---\n- a\n- b\n---\n# P\n")
    with pytest.raises(Exception, match="front matter is a list, not a mapping") as info:
        site.render(page)
    assert info.value.line == 2  # type: ignore[attr-defined]


def test_unclosed_front_matter_is_refused(site: Site) -> None:
    page = write(site, "p.md", "---\ntitle: P\n\n# P\n")
    with pytest.raises(Exception, match="never closed: end it with a line of ---") as info:
        site.render(page)
    assert info.value.line == 1  # type: ignore[attr-defined]


def test_page_starting_with_a_rule_is_not_front_matter(site: Site) -> None:
    page = write(site, "p.md", "---\n\nA page that starts with a horizontal rule.\n")
    assert "horizontal rule" in site.render(page).text


def test_literal_helm_braces_suggest_raw(site: Site) -> None:
    page = write(site, "p.md", "# P\n\n```yaml\nimage: {{ .Values.image }}\n```\n")
    with pytest.raises(Exception, match=r"wrap them in \{% raw %\}") as info:
        site.render(page)
    assert info.value.line == 4  # type: ignore[attr-defined]


def test_line_separator_in_macro_output_does_not_shift_later_lines(site: Site) -> None:
    """Regression: lines were split with str.splitlines on one side of the map and on "\\n" in
    the lexer, so a U+2028 or form feed produced by a macro moved every later block by a line."""
    text = '---\nsep: "\\u2028\\f"\n---\n\n{{ "a" ~ sep ~ "b" }}\n\n```yaml\na: 1\n```\n'
    page = write(site, "p.md", text)
    rendered = site.render(page)
    (block,) = blocks(rendered.text)
    assert rendered.source_line(block.line) == 7


def test_a_directive_in_a_tab_must_precede_its_block() -> None:
    with pytest.raises(LexError) as info:
        blocks('=== "A"\n\n    <!-- gate: skip: why -->\n\n    Text.\n')
    assert info.value.line == 3 and "put it on the line right above" in info.value.reason


def test_the_macros_plugin_logger_is_silenced_while_rendering(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    page = write(site, "p.md", "# P\n\n{{ nope }}\n")
    with caplog.at_level(logging.WARNING), pytest.raises(Exception, match="'nope' is undefined"):
        site.render(page)
    assert not [r for r in caplog.records if "mkdocs_macros" in r.name]
