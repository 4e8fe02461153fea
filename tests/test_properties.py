"""Property tests: the fence lexer, the rendered-to-source line map and the shell splitter hold on
random documents, not only on the examples the other tests spell out.

Documents are built from content tabs, admonitions, lists (4-space nesting, as Python-Markdown
nests), paragraphs and fenced blocks (random fence, language, attributes, bodies holding shorter
fences and backticks), with the truth about every block recorded as they are built.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from betrace_dist.gate.lexer import LexError, blocks
from betrace_dist.gate.render import map_lines
from betrace_dist.gate.shellwords import split

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Whole documents cost many draws each: fewer of them keep the file under 20 s.
DOCUMENTS = settings(PROPERTY, max_examples=100)


# -- random documents ----------------------------------------------------------------------------
@dataclass
class Fence:
    line: int  # 1-based line of the opening fence
    language: str
    body: str  # dedented, as the lexer must return it
    reason: str | None  # the skip directive's reason, if any


@dataclass
class Doc:
    lines: list[str] = field(default_factory=list)
    fences: list[Fence] = field(default_factory=list)

    def add(self, indent: int, text: str) -> None:
        self.lines.append(" " * indent + text if text else "")


WORDS = st.text(string.ascii_letters + string.digits, min_size=1, max_size=8)
PROSE = st.lists(WORDS, min_size=1, max_size=6).map(" ".join)
#: Lines of text that are neither fences nor directives (inline code and `````x````` included).
TEXT_LINE = st.one_of(
    PROSE,
    PROSE.map(lambda s: f"Use `{s}` here"),
    PROSE.map(lambda s: f"```{s}``` is inline code, not a fence"),
    PROSE.map(lambda s: f"| {s} | value |"),
)
LANGUAGES = st.sampled_from(["yaml", "YAML", "bash", "shell", "python", "json", "text", "toml", ""])


@st.composite
def info_string(draw: st.DrawFn, fence_char: str) -> tuple[str, str]:
    """An info string and the language the lexer must read from it."""
    language = draw(LANGUAGES)
    title = draw(st.lists(WORDS, min_size=1, max_size=3).map(" ".join))
    form = draw(st.sampled_from(["bare", "attrs", "braces", "braces-only-class"]))
    if form == "bare" or not language:
        info = language
    elif form == "attrs":
        info = f'{language} title="{title}" hl_lines="1 2"'
    elif form == "braces":
        info = f'{language} {{ .annotate title="{title}" }}'
    else:
        info = f'{{ .{language} .annotate #id-{draw(WORDS)} linenums="1" }}'
    return info, language.lower()


@st.composite
def fence_body(draw: st.DrawFn, fence: str) -> list[str]:
    """Body lines (relative to the fence indent), with shorter fences and backticks inside."""
    shorter = fence[0] * (len(fence) - 1)
    other = "~" if fence[0] == "`" else "`"
    line = st.one_of(
        TEXT_LINE,
        st.just(""),
        st.tuples(st.integers(0, 3), PROSE).map(lambda t: "  " * t[0] + t[1]),
        st.just(shorter) if len(shorter) >= 3 else st.just("``"),
        st.just(shorter + "yaml") if len(shorter) >= 3 else st.just("`x`"),
        st.sampled_from([other * 3, other * 5 + "python", "    " + other * 4]),
    )
    return draw(st.lists(line, max_size=6))


@st.composite
def fence_block(draw: st.DrawFn, doc: Doc, indent: int) -> None:
    char = draw(st.sampled_from("`~"))
    fence = char * draw(st.integers(3, 5))
    info, language = draw(info_string(char))
    body = draw(fence_body(fence))
    reason = None
    if draw(st.booleans()) and draw(st.booleans()):
        reason = draw(PROSE)
        doc.add(indent, f"<!-- gate: skip: {reason} -->")
    doc.add(indent, fence + info)
    line = len(doc.lines)
    for text in body:
        doc.add(indent, text)
    closing = fence + char * draw(st.integers(0, 2))
    doc.add(indent, closing)
    joined = "".join(t + "\n" for t in body)
    doc.fences.append(Fence(line, language, joined, reason))


@st.composite
def element(draw: st.DrawFn, doc: Doc, indent: int, depth: int) -> None:
    kinds = ["text", "fence"] + (["tab", "note", "list"] if depth < 3 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "text":
        for text in draw(st.lists(TEXT_LINE, min_size=1, max_size=3)):
            doc.add(indent, text)
    elif kind == "fence":
        draw(fence_block(doc, indent))
    else:
        for index in range(draw(st.integers(1, 2))):
            if kind == "tab":
                doc.add(indent, f'=== "{draw(PROSE)}"')
            elif kind == "note":
                doc.add(indent, draw(st.sampled_from(["!!! note", "??? tip", "???+ warning"])))
            else:
                doc.add(indent, f"{index + 1}. {draw(PROSE)}" if draw(st.booleans()) else "- x")
            doc.add(0, "")
            draw(children(doc, indent + 4, depth + 1))
    doc.add(0, "")


@st.composite
def children(draw: st.DrawFn, doc: Doc, indent: int, depth: int) -> None:
    for _ in range(draw(st.integers(1, 2 if depth else 4))):
        draw(element(doc, indent, depth))


@st.composite
def documents(draw: st.DrawFn) -> Doc:
    doc = Doc()
    doc.add(0, "# " + draw(PROSE))
    doc.add(0, "")
    draw(children(doc, 0, 0))
    return doc


# -- (a) the lexer fails only with LexError ------------------------------------------------------
NOISE = st.lists(
    st.one_of(
        st.text(" \t`~<!->{}=\"'.#gatesk:x\n", max_size=30),
        st.sampled_from(
            ["```", "~~~", "````yaml", "    ```", "<!-- gate: skip: x -->", "<!-- gate:", '=== "a"']
        ),
    ),
    max_size=30,
).map("\n".join)


@PROPERTY
@given(NOISE)
def test_the_lexer_fails_only_with_lex_error_on_noise(text: str) -> None:
    try:
        found = blocks(text)
    except LexError as exc:
        assert 1 <= exc.line <= text.count("\n") + 1 and exc.reason
    else:
        for block in found:
            assert 1 <= block.line <= text.count("\n") + 1


@DOCUMENTS
@given(documents(), st.data())
def test_the_lexer_fails_only_with_lex_error_on_damaged_documents(
    doc: Doc, data: st.DataObject
) -> None:
    lines = list(doc.lines)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["drop", "indent", "dedent", "duplicate"]))
        if action == "drop":
            del lines[at]
        elif action == "indent":
            lines[at] = "  " + lines[at]
        elif action == "dedent":
            lines[at] = lines[at][2:]
        else:
            lines.insert(at, lines[at])
        if not lines:
            lines = [""]
    try:
        blocks("\n".join(lines))
    except LexError as exc:
        assert 1 <= exc.line <= len(lines) and exc.reason


# -- (b) every fence is found once, with its language, body, line and skip -----------------------
@DOCUMENTS
@given(documents())
def test_every_generated_fence_is_found_once_with_language_body_and_line(doc: Doc) -> None:
    found = blocks("\n".join(doc.lines) + "\n")
    assert [(b.line, b.language, b.body) for b in found] == [
        (f.line, f.language, f.body) for f in doc.fences
    ]
    assert [b.directive.reason if b.directive else None for b in found] == [
        f.reason for f in doc.fences
    ]


# -- (c) the line map ----------------------------------------------------------------------------
#: Source lines from a small alphabet, so that lines repeat as blank lines and fences do.
SOURCE_LINE = st.sampled_from(["", "text", "```yaml", "```", "a: 1", "- item", "    b: 2"])


@st.composite
def expansion(draw: st.DrawFn) -> tuple[list[str], list[str], list[int], set[int]]:
    """Source lines, rendered lines, the true source line of each rendered line, and the
    source lines that are macros (each replaced by 0..5 lines nothing else produces)."""
    source = draw(st.lists(SOURCE_LINE, min_size=0, max_size=40))
    macros: set[int] = set()
    for index in range(len(source)):
        if draw(st.integers(0, 3)) == 0:
            source[index] = f"{{{{ macro_{index} }}}}"
            macros.add(index)
    rendered: list[str] = []
    truth: list[int] = []
    for index, text in enumerate(source):
        if index in macros:
            count = draw(st.integers(0, 5))
            rendered += [f"produced by {index}, line {k}" for k in range(count)]
            truth += [index + 1] * count
        else:
            rendered.append(text)
            truth.append(index + 1)
    return source, rendered, truth, macros


@PROPERTY
@given(expansion())
def test_the_line_map_follows_every_rendered_line_to_its_source(
    case: tuple[list[str], list[str], list[int], set[int]],
) -> None:
    source, rendered, truth, macros = case
    found = map_lines(source, rendered)
    assert len(found) == len(rendered)
    for j, (got, want) in enumerate(zip(found, truth, strict=True)):
        if want - 1 not in macros:
            assert got == want, f"unchanged rendered line {j + 1} ({rendered[j]!r})"
            continue
        # A line a macro produced maps to that macro's line, unless several macros stand next
        # to each other: then which of them produced it cannot be told, only that one of them did.
        run = _adjacent_run(macros, want - 1)
        if len(run) == 1:
            assert got == want, f"line {j + 1} was produced by the macro at line {want}"
        else:
            assert got - 1 in run, f"line {j + 1} maps to {got}, outside the macros {run}"


def _adjacent_run(macros: set[int], index: int) -> range:
    start, end = index, index + 1
    while start - 1 in macros:
        start -= 1
    while end in macros:
        end += 1
    return range(start, end)


@PROPERTY
@given(st.lists(SOURCE_LINE, max_size=60))
def test_unchanged_lines_map_to_themselves(lines: list[str]) -> None:
    assert map_lines(lines, list(lines)) == tuple(range(1, len(lines) + 1))


# -- (d) a fence after multi-line macro expansions maps to its true line -------------------------
#: What macros render to: tables, blank lines, prose, repeated lines; never a fence.
MACRO_OUTPUT = st.lists(
    st.sampled_from(["", "| Component | Version |", "|---|---|", "| a | 1 |", "text", "a: 1"]),
    max_size=8,
)


@DOCUMENTS
@given(documents(), st.data())
def test_a_fence_after_macro_expansions_maps_to_its_source_line(
    doc: Doc, data: st.DataObject
) -> None:
    source: list[str] = []
    rendered: list[str] = []
    for index, text in enumerate(doc.lines):
        after_directive = index > 0 and doc.lines[index - 1].lstrip().startswith("<!--")
        if not after_directive and data.draw(st.integers(0, 4)) == 0:  # a macro line here
            source.append(f"{{{{ table_{index}() }}}}")
            rendered += data.draw(MACRO_OUTPUT)
        source.append(text)
        rendered.append(text)
    fence_lines = {f.line for f in doc.fences}
    where = [n for n, text in enumerate(source, 1) if not text.startswith("{{")]
    true_lines = [where[f.line - 1] for f in doc.fences]
    assert len(fence_lines) == len(doc.fences)
    line_map = map_lines(source, rendered)
    found = blocks("\n".join(rendered))
    assert [line_map[b.line - 1] for b in found] == true_lines


# -- the shell splitter --------------------------------------------------------------------------
ARG = st.one_of(
    st.from_regex(r"-{0,2}[a-z][a-z0-9]{0,6}(=[a-z0-9./]{1,6})?", fullmatch=True),
    PROSE.map(lambda s: f"'{s}'"),
    PROSE.map(lambda s: f'"{s} $HOME"'),
    st.sampled_from(["./x.sh", "out/dir", "${NAME}", "a.yaml", "--set=x.y=1"]),
)
PROGRAM = st.sampled_from(["echo", "helm", "kubectl", "curl", "docker", "grep", "cat", "nix"])


@st.composite
def scripts(draw: st.DrawFn) -> tuple[str, list[tuple[int, list[str]]]]:
    """A script and, for each simple command, its line and its words."""
    parts: list[str] = []
    expected: list[tuple[int, list[str]]] = []
    line = 1
    for index in range(draw(st.integers(1, 8))):
        if index:
            joint = draw(st.sampled_from(["\n", " && ", " | ", " &&\n", " |\n", "\n\n"]))
            parts.append(joint)
            line += joint.count("\n")
        words = [draw(PROGRAM)]
        expected.append((line, words))
        text = words[0]
        for arg in draw(st.lists(ARG, max_size=4)):
            if draw(st.integers(0, 3)) == 0:
                text += " \\\n  " + arg
                line += 1
            else:
                text += " " + arg
            words.append(arg)
        parts.append(text)
    return "".join(parts), expected


@PROPERTY
@given(scripts())
def test_the_shell_splitter_finds_every_command_at_its_line(
    case: tuple[str, list[tuple[int, list[str]]]],
) -> None:
    script, expected = case
    assert [(c.line, c.words) for c in split(script)] == expected, script


# -- regressions found by the properties ---------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "rendered", "expected"),
    [
        # a macro expanding to nothing between identical lines
        (["", "{{ m }}", ""], ["", ""], (1, 3)),
        # thousands of identical lines keep their places (the budgeted greedy alignment)
        (
            ["x"] * 3000 + ["{{ m }}"] + ["x"] * 3000,
            ["x"] * 3000 + ["y", "z"] + ["x"] * 3000,
            (*range(1, 3001), 3001, 3001, *range(3002, 6002)),
        ),
    ],
)
def test_line_map_examples(
    source: list[str], rendered: list[str], expected: tuple[int, ...]
) -> None:
    assert map_lines(source, rendered) == expected
