"""A text read as one line: a statement wrapped across lines reads as one."""

from __future__ import annotations

import re


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
