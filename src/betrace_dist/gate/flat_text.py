"""A text read as one line: a statement wrapped across lines reads as one; and the line of an
offset of the text, for the problems found on it."""

from __future__ import annotations

import bisect
import functools
import re


def line_of(text: str, offset: int) -> int:
    """The line of an offset, by bisection over the text's line starts (counted once a text:
    a hostile page of many wrong values must not have its newlines counted for each)."""
    return bisect.bisect_right(_line_starts(text), offset)


@functools.lru_cache(maxsize=2)
def _line_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in re.finditer("\n", text)]


#: one page's reading at a time: the false claims and the typed checks each read the page as
#: one line, and the list of offsets is as long as the page (callers only read it)
@functools.lru_cache(maxsize=1)
def flatten(text: str) -> tuple[str, list[int]]:
    """The text as one line, each run of white space (with a comment's `#` that starts a line)
    one space, so that a claim wrapped across lines or comment lines reads as one; and where
    each character of it stands in `text`."""
    flat: list[str] = []
    where: list[int] = []
    for match in re.finditer(r"(?:\s*\n[ \t]*#*)+\s*|\s+|\S+", text):
        if match[0].isspace() or "\n" in match[0]:
            flat.append(" ")
            where.append(match.start())
        else:
            flat.append(match[0])
            where.extend(range(match.start(), match.end()))
    return "".join(flat), where
