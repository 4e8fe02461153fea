"""Page output is data: escaped and capped before it reaches a terminal, a report or a CI log.

What a page's commands print is the page's to choose. Shown raw, it could move the cursor, set
the terminal's title or clipboard (OSC 52), hide text, or, at the start of a line of a CI log,
be read by the runner as a workflow command (`::add-mask::`, `::set-output`, `##[group]` ...).
Every failure message of the gate passes through `as_data`: control characters and escape
sequences become visible `\\xNN` text, a line that starts like a workflow command gets a `\\`
in front, bidirectional overrides are shown by name, and the whole is capped.
"""

from __future__ import annotations

import re

#: Characters of a failure message shown at most (the rest is counted, not shown).
MESSAGE_LIMIT = 16 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f]")
#: a line a CI runner reads as a command, after any white space but a newline: the space it
#: takes never crosses a line, so a run of empty lines is read once (`\s*` went back over all
#: of them from every line, quadratic in a message of newlines)
_WORKFLOW = re.compile(r"^([^\S\n]*)(::|##\[|\[command\]|##vso\[)", re.MULTILINE)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def as_data(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text` safe to print: no control character but newline and tab, no line a CI runner
    takes as a command, at most `limit` characters."""
    cut = ""
    if len(text) > limit:
        cut = f"\n[{len(text) - limit} more characters not shown]"
        text = text[:limit]
    text = _CONTROL.sub(_escaped, text.replace("\r\n", "\n"))
    return _WORKFLOW.sub(r"\1\\\2", text) + cut
