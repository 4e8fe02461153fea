"""Fenced code blocks as pymdownx.superfences sees them, wherever they are nested.

Blocks may sit inside content tabs, admonitions and lists (indented), carry attributes in their
info string (```` ```yaml title="values.yaml" hl_lines="2" ````, ```` ``` { .yaml .annotate } ````),
and be preceded by a gate directive comment (`<!-- gate: skip: why -->`).
"""

from __future__ import annotations

import bisect
import re
import shlex
from dataclasses import dataclass, field, replace

from ..errors import LineError

OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
DIRECTIVE = re.compile(r"^\s*<!--\s*gate:(?P<body>.*?)-->\s*$")
DIRECTIVE_START = re.compile(r"^\s*<!--\s*gate\b")
#: Lines that open a block whose content is indented by 4 more spaces: content tabs,
#: admonitions (collapsible too) and list items.
CONTAINER = re.compile(
    r"^(?:(?P<tab>===\+?)|(?P<note>!!!|\?\?\?\+?)|(?P<item>[-*+]|\d+\.))(?:[ \t]|$)"
)
_CONTAINER_KINDS = {"tab": "content tab", "note": "admonition", "item": "list item"}

NOT_FOLLOWED = (
    "this gate directive is not followed by a code block: put it on the line right above the "
    "opening fence of the block it skips"
)


class LexError(LineError):
    """A fenced block that cannot be read: an unclosed fence, a broken attribute list."""


@dataclass(frozen=True)
class Directive:
    """`<!-- gate: skip: <reason> -->`, the only directive: the next block is skipped."""

    line: int  # rendered line, 1-based
    reason: str


@dataclass(frozen=True)
class Block:
    line: int  # rendered line of the opening fence, 1-based
    start: int  # character offsets in the rendered text (opening fence .. end of closing fence)
    end: int
    indent: str
    language: str
    attrs: dict[str, str] = field(default_factory=dict)
    classes: tuple[str, ...] = ()
    body: str = ""
    directive: Directive | None = None
    #: (group, index) of the innermost content tab holding the block: tabs of one group are
    #: alternatives a reader chooses between, so the gate runs each from the same state
    tab: tuple[int, int] | None = None

    @property
    def first_body_line(self) -> int:
        return self.line + 1

    @property
    def title(self) -> str | None:
        return self.attrs.get("title")


def parse_info(info: str, line: int) -> tuple[str, dict[str, str], tuple[str, ...]]:
    """Language, attributes and classes from a fence info string."""
    info = info.strip()
    if not info:
        return "", {}, ()
    language = ""
    if not info.startswith("{"):
        language, _, info = info.partition(" ")
        language = language.strip().lstrip(".")
        info = info.strip()
    attrs, classes = _read_attributes(_attribute_tokens(info, line))
    if not language and classes:
        language, classes = classes[0], classes[1:]
    return language.lower(), attrs, tuple(classes)


def _attribute_tokens(info: str, line: int) -> list[str]:
    """The words of an info string after its language, `{ ... }` unwrapped, quotes honoured."""
    if info.startswith("{"):
        if not info.endswith("}"):
            raise LexError(
                line,
                f"unclosed attribute list in fence info '{info}': end it with '}}', "
                "e.g. ``` { .yaml .annotate }",
            )
        info = info[1:-1]
    try:
        return shlex.split(info)
    except ValueError as exc:
        raise LexError(
            line,
            f"fence info '{info}' cannot be read ({exc}): write attributes as "
            'key="value" with both quotes, e.g. ```yaml title="values.yaml"',
        ) from None


def _read_attributes(tokens: list[str]) -> tuple[dict[str, str], list[str]]:
    """`.class`, `#id`, `key=value` and bare `key` words, as attributes and classes."""
    attrs: dict[str, str] = {}
    classes: list[str] = []
    for token in tokens:
        if token.startswith("."):
            classes.append(token[1:])
        elif token.startswith("#"):
            attrs["id"] = token[1:]
        elif "=" in token:
            key, _, value = token.partition("=")
            attrs[key] = value
        else:
            attrs[token] = ""
    return attrs, classes


def parse_directive(text: str, line: int) -> Directive:
    match = DIRECTIVE.match(text)
    if not match:
        raise LexError(line, "a gate directive must be one line: <!-- gate: skip: <reason> -->")
    body = match["body"].strip()
    action, _, reason = body.partition(":")
    action = action.strip()
    if action != "skip":
        raise LexError(
            line,
            f"unknown gate directive '{action}'; the only one is <!-- gate: skip: <reason> -->",
        )
    if not reason.strip():
        raise LexError(
            line, "a skip needs its reason: <!-- gate: skip: <why this block is not checked> -->"
        )
    return Directive(line, reason.strip())


def _closes(line: str, indent: str, fence: str) -> bool:
    stripped = line.strip()
    return (
        line.startswith(indent)
        and len(line) - len(line.lstrip()) == len(indent)
        and len(stripped) >= len(fence)
        and set(stripped) == {fence[0]}
    )


def _width(indent: str) -> int:
    """Columns of an indentation, tabs expanded as Python-Markdown expands them (4)."""
    return len(indent.expandtabs(4))


class Shallower:
    """The non-blank lines outside blocks read so far, as a stack of strictly growing depths:
    a line makes every line above it at its depth or deeper unreachable (for any width, it is
    nearer and no deeper), so the nearest line shallower than a width is found by bisection.
    Each line is read once, whatever the widths of the fences that ask (a walk back from each
    fence read the page again for each: 50,000 lines under 32,000 fences held the gate for its
    whole budget)."""

    def __init__(self) -> None:
        self.depths: list[int] = []
        self.indices: list[int] = []

    def push(self, index: int, line: str) -> None:
        """Line `index` of the page, read outside any block (blank lines are passed over)."""
        expanded = line.expandtabs(4)
        stripped = expanded.lstrip()
        if not stripped:
            return
        depth = len(expanded) - len(stripped)
        while self.depths and self.depths[-1] >= depth:
            self.depths.pop()
            self.indices.pop()
        self.depths.append(depth)
        self.indices.append(index)

    def nearest(self, width: int) -> int:
        """The nearest line read so far indented by less than `width` (-1: none)."""
        at = bisect.bisect_left(self.depths, width) - 1
        return self.indices[at] if at >= 0 else -1


def _outside_container(lines: list[str], i: int, width: int, read: Shallower) -> LexError | None:
    """A fence indented too little to be inside the tab, admonition or list item above it.

    Python-Markdown nests content by 4 spaces: a fence at 2 spaces under `=== "Tab"` is not
    in the tab (the tab renders empty and the block below it), which is never what was meant.
    `read`: the lines above the fence, outside earlier blocks.
    """
    if width % 4 == 0:
        return None
    k = read.nearest(width)
    if k < 0:
        return None
    line = lines[k].expandtabs(4)
    stripped = line.lstrip()
    depth = len(line) - len(stripped)
    match = CONTAINER.match(stripped)
    if match is None or width >= depth + 4:
        return None
    kind = _CONTAINER_KINDS[str(match.lastgroup)]
    return LexError(
        i + 1,
        f"this code block is indented by {width} spaces, which puts it outside the "
        f"{kind} opened at line {k + 1} (its content is indented by {depth + 4} "
        f"spaces): indent both fences and the body by {depth + 4} spaces",
    )


def _opening_fence(raw: str) -> re.Match[str] | None:
    """The fence a line opens, if any: a backtick fence with a backtick in its info is inline
    code, not a fence."""
    match = OPEN.match(raw)
    if not match or (match["fence"][0] == "`" and "`" in match["info"]):
        return None
    return match


def _closing_line(lines: list[str], i: int, indent: str, fence: str) -> int:
    """The index of the line that closes the block opened at line index `i`.

    A fence of the same character at another indentation, or none at all, is an error named at
    the opening line."""
    j = i + 1
    while j < len(lines) and not _closes(lines[j], indent, fence):
        stripped = lines[j].strip()
        if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
            raise LexError(
                i + 1,
                f"the code block opened here is closed at line {j + 1} with a different "
                f"indentation ({len(lines[j]) - len(lines[j].lstrip())} spaces instead of "
                f"{len(indent)}); in tabs, admonitions and lists both fences share one "
                f"indent: indent the closing {fence} like the opening one",
            )
        j += 1
    if j >= len(lines):
        where = f"indented by {len(indent)} spaces" if indent else "at the start of a line"
        raise LexError(
            i + 1,
            f"the code block opened here with {fence} is never closed: end it with a line "
            f"of {fence} {where}, like the opening fence",
        )
    return j


def _body(lines: list[str], indent: str) -> str:
    """The lines between two fences, without the fences' indentation."""
    body_lines = [ln[len(indent) :] if ln.startswith(indent) else ln.lstrip() for ln in lines]
    return "\n".join(body_lines) + ("\n" if body_lines else "")


def _line_offsets(lines: list[str]) -> list[int]:
    """The character offset of the start of each line (and one past the last)."""
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln) + 1)
    return offsets


def blocks(text: str) -> list[Block]:
    """Every fenced block of a rendered page, in order."""
    lines = text.split("\n")
    offsets = _line_offsets(lines)
    found: list[Block] = []
    read = Shallower()  # the lines outside blocks, for _outside_container
    pending: Directive | None = None
    i = 0
    while i < len(lines):
        raw = lines[i]
        if DIRECTIVE_START.match(raw):
            if pending is not None:
                raise LexError(pending.line, NOT_FOLLOWED)
            pending = parse_directive(raw, i + 1)
            read.push(i, raw)
            i += 1
            continue
        match = _opening_fence(raw)
        if match is None:
            if pending is not None and raw.strip():
                raise LexError(pending.line, NOT_FOLLOWED)
            read.push(i, raw)
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        language, attrs, classes = parse_info(match["info"], i + 1)
        misplaced = _outside_container(lines, i, _width(indent), read)
        if misplaced is not None:
            raise misplaced
        read.push(i, raw)  # the opening fence is read; its body and closing fence are not
        j = _closing_line(lines, i, indent, fence)
        found.append(
            Block(
                line=i + 1,
                start=offsets[i],
                end=offsets[j] + len(lines[j]),
                indent=indent,
                language=language,
                attrs=attrs,
                classes=classes,
                body=_body(lines[i + 1 : j], indent),
                directive=pending,
            )
        )
        pending = None
        i = j + 1
    if pending is not None:
        raise LexError(pending.line, NOT_FOLLOWED)
    return _with_tabs(lines, found)


TAB = re.compile(r"^===[+!]?[ \t]")


def _with_tabs(lines: list[str], found: list[Block]) -> list[Block]:
    """Each block with the content tab it sits in: (group number, index of the tab in it)."""
    starts = {b.line - 1: b for b in found}
    ends = {b.line - 1: b.line - 1 + b.body.count("\n") + 1 for b in found}
    stack: list[tuple[int, int, int]] = []  # open tabs: (marker indent, group, index)
    sibling: dict[int, tuple[int, int]] = {}  # indent -> (group, index) of the last tab there
    groups = 0
    out: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i].expandtabs(4)
        stripped = line.lstrip()
        if not stripped:
            i += 1
            continue
        depth = len(line) - len(stripped)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        is_tab = TAB.match(stripped) is not None
        for indent in [k for k in sibling if k > depth or (k == depth and not is_tab)]:
            del sibling[indent]
        if is_tab:
            if depth in sibling:
                group, index = sibling[depth][0], sibling[depth][1] + 1
            else:
                group, index = groups, 0
                groups += 1
            sibling[depth] = (group, index)
            stack.append((depth, group, index))
        if i in starts:
            block = starts[i]
            tab = (stack[-1][1], stack[-1][2]) if stack else None
            out.append(replace(block, tab=tab))
            i = ends[i] + 1
            continue
        i += 1
    return out
