"""The fence lexer: attributes, nesting in tabs/admonitions/lists, directives and their errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from betrace_dist.gate.lexer import LexError, blocks, parse_info


def test_info_string_with_attributes() -> None:
    assert parse_info('yaml title="values.yaml" hl_lines="2 3"', 1) == (
        "yaml",
        {"title": "values.yaml", "hl_lines": "2 3"},
        (),
    )


def test_attribute_list_form_with_annotations() -> None:
    language, attrs, classes = parse_info('{ .yaml .annotate title="x.yaml" }', 1)
    assert (language, attrs, classes) == ("yaml", {"title": "x.yaml"}, ("annotate",))


def test_blocks_nested_in_tabs_admonitions_and_lists_are_found_and_dedented() -> None:
    text = "\n".join(
        [
            '=== "Helm"',
            "",
            '    !!! note "x"',
            "",
            '        ```yaml title="v.yaml"',
            "        a: 1",
            "        ```",
            "",
            "1. Step",
            "",
            "    ```bash",
            "    echo hi",
            "    ```",
        ]
    )
    found = blocks(text)
    assert [(b.line, b.language, b.body, b.title) for b in found] == [
        (5, "yaml", "a: 1\n", "v.yaml"),
        (11, "bash", "echo hi\n", None),
    ]


def test_longer_fence_holds_a_shorter_one() -> None:
    (block,) = blocks("````markdown\n```yaml\na: 1\n```\n````\n")
    assert block.language == "markdown" and block.body == "```yaml\na: 1\n```\n"


def test_unterminated_fence_names_its_opening_line() -> None:
    with pytest.raises(LexError) as info:
        blocks("text\n\n```yaml\na: 1\n")
    assert info.value.line == 3 and "never closed" in info.value.reason


def test_closing_fence_with_the_wrong_indentation_is_named() -> None:
    with pytest.raises(LexError) as info:
        blocks('=== "Tab"\n\n    ```yaml\n    a: 1\n```\n')
    assert info.value.line == 3
    assert "different indentation (0 spaces instead of 4)" in info.value.reason


def test_skip_directive_attaches_its_reason() -> None:
    (block,) = blocks("<!-- gate: skip: sample output -->\n```text\nok\n```\n")
    assert block.directive is not None and block.directive.reason == "sample output"


@pytest.mark.parametrize(
    ("directive", "message"),
    [
        ("<!-- gate: skip -->", "a skip needs its reason"),
        ("<!-- gate: skip: -->", "a skip needs its reason"),
        ("<!-- gate: skipp: typo -->", "unknown gate directive 'skipp'"),
        ("<!-- gate: skip: two\nlines -->", "must be one line"),
    ],
)
def test_bad_directives_are_refused(directive: str, message: str) -> None:
    with pytest.raises(LexError) as info:
        blocks(f"{directive}\n```text\nok\n```\n")
    assert info.value.line == 1 and message in info.value.reason


def test_directive_not_followed_by_a_block_is_refused() -> None:
    with pytest.raises(LexError) as info:
        blocks("<!-- gate: skip: why -->\nA paragraph.\n\n```text\nok\n```\n")
    assert info.value.line == 1 and "not followed by a code block" in info.value.reason


def test_blocks_know_the_content_tab_they_sit_in() -> None:
    text = "\n".join(
        [
            '=== "Nix"',
            "",
            "    ```bash",
            "    nix run .#build-all",
            "    ```",
            "",
            '=== "Pull"',
            "",
            "    Some text.",
            "",
            "    ```bash",
            "    docker compose pull",
            "    ```",
            "",
            "After the tabs.",
            "",
            "```bash",
            "docker compose up -d",
            "```",
            "",
            '=== "Other group"',
            "",
            "    ```bash",
            "    true",
            "    ```",
        ]
    )
    assert [b.tab for b in blocks(text)] == [(0, 0), (0, 1), None, (1, 0)]


# -- what readers are shown (Python-Markdown with the site's own extensions) --------------------

#: a page text -> (lines of fences readers do not see, lines of code readers see unclaimed)
Problems = Callable[[str], tuple[list[int], list[int]]]


@pytest.fixture(scope="module")
def shown_by_site() -> Problems:
    from betrace_dist import REPO_ROOT
    from betrace_dist.gate import display
    from betrace_dist.gate.render import Site

    renderer = display.Renderer(Site(REPO_ROOT / "mkdocs.yml").config)

    def problems(text: str) -> tuple[list[int], list[int]]:
        found = blocks(text)
        shown = renderer.displayed_page(text)
        hidden = display.hidden(text, found, shown, lambda n: n)
        return sorted(p.line for p in hidden.values()), [
            p.line for p in display.unchecked(text, found, shown)
        ]

    return problems


def test_nested_fences_readers_see_are_all_claimed(shown_by_site: Problems) -> None:
    text = (
        '=== "Tab"\n\n    ```bash\n    echo tab\n    ```\n\n'
        "!!! note\n\n    ```yaml\n    a: 1\n    ```\n\n"
        "1. Step\n\n    ```bash\n    echo step\n    ```\n\n"
        "````markdown\n```bash\necho inner\n```\n````\n"
    )
    assert shown_by_site(text) == ([], [])


def test_code_readers_see_outside_fences_and_fences_they_do_not(shown_by_site: Problems) -> None:
    text = (
        "Text\n\n    indented = True\n\n"  # line 3: an indented code block
        "> ```bash\n> echo quoted\n> ```\n\n"  # line 5: a fence in a blockquote
        "<!--\n```bash\necho hidden\n```\n-->\n"  # line 10: a fence nobody sees
    )
    assert shown_by_site(text) == ([10], [3, 5])


def test_of_two_identical_blocks_the_one_in_a_comment_is_the_hidden_one(
    shown_by_site: Problems,
) -> None:
    text = "<!--\n```bash\necho same\n```\n-->\n\n```bash\necho same\n```\n"
    assert shown_by_site(text) == ([2], [])


# -- the fence rules without a page of their own ------------------------------------------------


def test_info_ids_bare_attributes_and_a_class_as_the_language() -> None:
    assert parse_info("{ .console #first linenums }", 1) == (
        "console",
        {"id": "first", "linenums": ""},
        (),
    )
    assert parse_info("   ", 1) == ("", {}, ())


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ("yaml { .annotate", "unclosed attribute list in fence info '{ .annotate'"),
        ('yaml title="values.yaml', "fence info 'title=\"values.yaml' cannot be read ("),
    ],
)
def test_unreadable_info_string_names_the_fence_line(info: str, message: str) -> None:
    with pytest.raises(LexError) as error:
        blocks(f"text\n```{info}\na: 1\n```\n")
    assert error.value.line == 2 and message in error.value.reason


def test_two_directives_in_a_row_name_the_first() -> None:
    with pytest.raises(LexError) as error:
        blocks("<!-- gate: skip: one -->\n<!-- gate: skip: two -->\n```text\nok\n```\n")
    assert error.value.line == 1 and "not followed by a code block" in error.value.reason


def test_directive_at_the_end_of_the_page_is_refused() -> None:
    with pytest.raises(LexError) as error:
        blocks("```text\nok\n```\n\n<!-- gate: skip: why -->\n")
    assert error.value.line == 5 and "not followed by a code block" in error.value.reason


def test_inline_code_of_three_backticks_opens_no_block() -> None:
    assert blocks("```not a fence``` in a line\n") == []


def test_block_offsets_cover_the_fences_and_the_body_is_dedented() -> None:
    text = "intro\n\n- item\n\n    ```bash\n    echo hi\n\n      two\n    ```\nafter\n"
    (block,) = blocks(text)
    assert text[block.start : block.end] == "    ```bash\n    echo hi\n\n      two\n    ```"
    assert block.indent == "    " and block.body == "echo hi\n\n  two\n"
    (empty,) = blocks("```text\n```\n")
    assert empty.body == ""
