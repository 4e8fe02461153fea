"""What a reader is shown: the page's HTML as Python-Markdown renders it with the site's own
markdown extensions, so the gate decides from real behaviour, never from a guess, whether a piece
of text is displayed as code, and which ids and links a page has.

Three guarantees rest on it:
- every code element shown (a `<pre>`) is one of the fenced blocks
  the lexer found, so none escapes its checker: indented code blocks, fences inside blockquotes,
  raw `<pre>` in HTML fail with their line;
- every block the lexer found is shown: a fence inside an HTML comment is invisible, so the gate
  refuses it rather than run commands a reader never sees;
- every internal link points at a page of the site, and every anchor at an id of that page
  (headings get the ids the site's `toc` extension gives them); a link into the distribution's
  repository or upstream's at the pinned commit, at a file and line that exist (repo_links.py).
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import markdown

from ..names import close_to
from ..site import active_content, limits
from ..site.snippets import is_snippets
from .lexer import Block

#: Extensions that change the page text before Python-Markdown sees it; the gate has already
#: applied them (snippets are inserted by the renderer).
_APPLIED = frozenset({"pymdownx.snippets"})


@dataclass
class Shown:
    """The displayed page: its code elements (text, from raw HTML?), ids and link targets."""

    code: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    links: list[str] = field(default_factory=list)
    inline: list[str] = field(default_factory=list)  # code spans outside <pre>
    active: list[active_content.Active] = field(default_factory=list)  # would run in a browser


class _Reader(HTMLParser):
    """Collects code elements, ids and hrefs; comments are not content, so they are skipped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.shown = Shown()
        self._pre = 0
        self._code = 0  # depth of <code> outside <pre>
        self._skip = 0  # inside a line-number column (pygments' table mode)
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("id", "name"):
            if values.get(key) and (key == "id" or tag == "a"):
                self.shown.ids.add(str(values[key]))
        classes = (values.get("class") or "").split()
        if tag == "td" and "linenos" in classes:
            self._skip += 1
        elif tag == "pre" and not self._skip:
            self._pre += 1
            if self._pre == 1:
                self._text = []
        elif tag == "code" and not self._pre and not self._skip:
            self._code += 1
            if self._code == 1:
                self._text = []
        elif tag == "a" and values.get("href") and not (self._pre or self._code):
            self.shown.links.append(str(values["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._skip:
            self._skip -= 1
        elif tag == "pre" and self._pre and not self._skip:
            self._pre -= 1
            if self._pre == 0:
                self.shown.code.append("".join(self._text))
        elif tag == "code" and self._code and not self._pre:
            # <code> outside <pre> is inline: browsers fold its line breaks into spaces, so a
            # code span that wraps in the Markdown source is prose, never a block of code
            self._code -= 1
            if self._code == 0:
                self.shown.inline.append("".join(self._text))

    def handle_data(self, data: str) -> None:
        if self._pre or self._code:
            self._text.append(data)


class Renderer:
    """One Python-Markdown instance configured like the site's (minus what the gate applied)."""

    def __init__(self, config: Any) -> None:
        extensions = [
            e for e in config["markdown_extensions"] if e not in _APPLIED and not is_snippets(e)
        ]
        configs = {k: v for k, v in config["mdx_configs"].items() if k not in _APPLIED}
        self._md = markdown.Markdown(extensions=extensions, extension_configs=configs)

    def displayed_page(self, text: str, page: str = "the page") -> Shown:
        """What a reader is shown of a page's Markdown: its code elements, ids and links.
        Bounded in size and time (limits.markdown_to_html)."""
        self._md.reset()
        return shown_in_html(limits.markdown_to_html(self._md.convert, text, page))


def shown_in_html(html: str) -> Shown:
    """The code elements, ids and links of a page's HTML (mkdocs' own, or the Renderer's)."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    reader.shown.active = active_content.found_in(html)
    return reader.shown


def active_problems(text: str, shown: Shown) -> list[Problem]:
    """Each piece of the page's HTML that would run in a reader's browser, at its line."""
    return [
        Problem(active_content.line_of(text, a.needle), active_content.reason(a))
        for a in shown.active
    ]


def _key(text: str) -> tuple[str, ...]:
    """Code text compared as a reader reads it: non-empty lines, whitespace runs as one space."""
    return tuple(" ".join(line.split()) for line in text.split("\n") if line.strip())


@dataclass(frozen=True)
class Problem:
    line: int  # rendered line, 1-based
    reason: str


def _comment_opened(text: str, offset: int) -> int | None:
    """Rendered line of the HTML comment still open at `offset`, if any."""
    opened = text.rfind("<!--", 0, offset)
    if opened < 0 or text.find("-->", opened, offset) >= 0:
        return None
    return text.count("\n", 0, opened) + 1


def hidden(
    text: str, found: list[Block], shown: Shown, source_line: Callable[[int], int]
) -> dict[int, Problem]:
    """Blocks the lexer found that no reader sees, by their index in `found`."""
    remaining: dict[tuple[str, ...], int] = {}
    for code in shown.code:
        remaining[_key(code)] = remaining.get(_key(code), 0) + 1
    out = {}
    comments = {i: _comment_opened(text, b.start) for i, b in enumerate(found)}
    # blocks outside comments claim the shown code first: of two identical blocks, one in a
    # comment, the one in the comment is the hidden one
    for index in sorted(range(len(found)), key=lambda i: (comments[i] is not None, i)):
        block = found[index]
        key = _key(block.body)
        if remaining.get(key, 0) > 0:
            remaining[key] -= 1
            continue
        comment = comments[index]
        if comment is not None:
            reason = (
                "this code block is inside the HTML comment opened at line "
                f"{source_line(comment)}: readers never see it, so the gate does not run it; "
                "delete it or end the comment before it"
            )
        else:
            reason = (
                "the site's Markdown does not show this fence as a code block: readers never "
                "see it, so the gate does not run it"
            )
        out[index] = Problem(block.line, reason)
    return dict(sorted(out.items()))


_RAW_TAG = re.compile(r"\s*<(pre|code)\b", re.IGNORECASE)
_QUOTED_FENCE = re.compile(r"\s*(>\s*)+(`{3,}|~{3,})")


def _kind(line: str) -> str:
    stripped = line.lstrip()
    if stripped.startswith(">"):
        return "a code block inside a blockquote (> ```)"
    if _RAW_TAG.match(line):
        return "a raw HTML code block"
    if line.startswith(("    ", "\t")):
        return "an indented code block (4 spaces)"
    return "a code block the gate's lexer does not see"


def unchecked(text: str, found: list[Block], shown: Shown) -> list[Problem]:
    """Code elements readers see that are none of the lexed blocks, each at its line."""
    remaining: dict[tuple[str, ...], int] = {}
    for block in found:
        remaining[_key(block.body)] = remaining.get(_key(block.body), 0) + 1
    lines = text.split("\n")
    inside = {n for b in found for n in range(b.line, b.line + b.body.count("\n") + 2)}
    out = []
    for code in shown.code:
        key = _key(code)
        if remaining.get(key, 0) > 0:
            remaining[key] -= 1
            continue
        first = key[0] if key else ""
        line = next(
            (
                n
                for n, raw in enumerate(lines, 1)
                if n not in inside and first and first in " ".join(raw.split())
            ),
            1,
        )
        if line > 1 and (_RAW_TAG.match(lines[line - 2]) or _QUOTED_FENCE.match(lines[line - 2])):
            line -= 1  # the text starts on the line after its <pre> tag or its quoted fence
        out.append(
            Problem(
                line,
                f"readers see {_kind(lines[line - 1])} here that no checker claims: write it as "
                "a fenced block (```LANGUAGE) at the page's level or in a list, tab or "
                "admonition, so the gate checks it, or skip it with <!-- gate: skip: <why> --> "
                "on the line above a fence",
            )
        )
    return out


#: A line Python-Markdown makes a heading although it has no space after its `#`s (CommonMark
#: would not): "#108478 and ..." reflowed to the start of a line cuts a sentence in two.
_STRAY_HEADING = re.compile(r"^#{1,6}[^\s#]", re.MULTILINE)


def stray_headings(text: str, found: list[Block]) -> list[Problem]:
    """Lines outside code blocks and HTML comments that Python-Markdown shows as a heading by
    accident."""
    code = sorted((b.start, b.end) for b in found)
    hidden = sorted(code + _comments(text, code))
    starts = [start for start, _ in hidden]
    reach = list(itertools.accumulate((end for _, end in hidden), max))  # spans may nest
    problems = []
    line, counted = 1, 0  # lines counted on from the last match (once per match: quadratic)
    for match in _STRAY_HEADING.finditer(text):
        before = bisect.bisect_right(starts, match.start())
        if before and reach[before - 1] > match.start():
            continue  # inside a block or a comment
        line += text.count("\n", counted, match.start())
        counted = match.start()
        problems.append(
            Problem(
                line,
                "this line starts with '#' and no space, which Python-Markdown shows as a "
                "heading in the middle of the text: reflow it, or write '# ' if it is a heading",
            )
        )
    return problems


def _comments(text: str, code: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans of the HTML comments that start a line outside code blocks (`code`: sorted,
    not overlapping). Python-Markdown keeps those as raw HTML up to its comment end, `-->` or
    `--!>` (its `commentclose`); a `<!--` mid-line or in a code block hides nothing, so a `#x`
    line after it is still a heading. An unclosed one runs to the text's end. Found with
    str.find in one pass (a regular expression would search on from every `<!--`)."""
    starts = [begin for begin, _ in code]
    spans = []
    closes = {"-->": -2, "--!>": -2}  # the next of each at or after the last search (-1: none)

    def next_close(after: int) -> int:
        for mark, at in closes.items():
            if at != -1 and at < after:  # searched again only once passed: one pass in all
                closes[mark] = text.find(mark, after)
        found = [(at, len(mark)) for mark, at in closes.items() if at >= 0]
        return min(at + length for at, length in found) if found else len(text)

    start = text.find("<!--")
    while start != -1:
        block = bisect.bisect_right(starts, start) - 1
        if block >= 0 and start < code[block][1]:  # in a code block: on after it
            start = text.find("<!--", code[block][1])
            continue
        if start and text[start - 1] != "\n":
            start = text.find("<!--", start + 4)
            continue
        end = next_close(start + 4)
        spans.append((start, end))
        start = text.find("<!--", end)
    return spans


#: Broken links of a page that get a "did you mean" (a page of thousands took minutes).
SUGGESTED = 20


def span_problems(text: str, shown: Shown, problem: Callable[[str], str | None]) -> list[Problem]:
    """Code spans of the prose that `problem` refuses, at their line."""
    lines = text.split("\n")
    return [
        Problem(_line_of(lines, span), said)
        for span in dict.fromkeys(shown.inline)
        if (said := problem(span))
    ]


def link_problems(
    text: str,
    page: Path,
    docs_dir: Path,
    shown: Shown,
    ids_of: Any,
    external: Callable[[str], str | None] | None = None,
) -> list[Problem]:
    """Internal links whose page does not exist, or whose anchor is no id of that page; and,
    with `external` (why a link with a scheme goes nowhere, None if it does or is not checked:
    repo_links.py), links into the repositories the gate holds.

    `ids_of(path)` gives the ids of another page of the site (None when it cannot be read).
    """
    lines = text.split("\n")
    out = []
    for href in shown.links:
        parts = urlsplit(href)
        if parts.scheme or parts.netloc:
            said = external(href) if external is not None else None
            if said:
                out.append(Problem(_line_of(lines, href), said))
            continue
        if href.startswith("/"):
            continue  # absolute (the strict build warns about those)
        target = page
        if parts.path:
            target = (page.parent / unquote(parts.path)).resolve()
            if not target.is_relative_to(docs_dir.resolve()):
                # said before anything is looked at: whether it exists is not the page's to learn
                reason = f"the link '{href}' leaves the site's pages (docs/)"
                out.append(Problem(_line_of(lines, href), reason))
                continue
            if not target.exists():
                shown_path = (
                    target.relative_to(docs_dir.parent).as_posix()
                    if target.is_relative_to(docs_dir.parent)
                    else str(target)
                )
                reason = f"the link '{href}' goes to no file of the site (there is no {shown_path})"
                out.append(Problem(_line_of(lines, href), reason))
                continue
        anchor = unquote(parts.fragment)
        if not anchor or target.suffix != ".md":
            continue
        ids = shown.ids if target == page else ids_of(target)
        if ids is not None and anchor not in ids:
            name = "this page" if target == page else target.relative_to(docs_dir).as_posix()
            # suggestions for the first few only: each compares with every id of the page
            close = _closest(anchor, ids) if len(out) < SUGGESTED else ""
            out.append(
                Problem(
                    _line_of(lines, href),
                    f"the link '{href}' goes to '#{anchor}', which is no heading or id of "
                    f"{name}{close}",
                )
            )
    return out


def _closest(word: str, ids: set[str]) -> str:
    match = close_to(word, [i for i in ids if not i.startswith("__")])
    return f" (did you mean '#{match}'?)" if match else ""


def _line_of(lines: list[str], href: str) -> int:
    for n, raw in enumerate(lines, 1):
        if f"]({href}" in raw or f'"{href}"' in raw or f"]: {href}" in raw:
            return n
    return next((n for n, raw in enumerate(lines, 1) if href in raw), 1)
