"""bash's `printf`, modelled for the words a page writes into its own commands.

The gate reads what `$(printf ... | base64)` prints to tell whether a page wrote a Grafana
password into a Basic header (commands/curl.py, session._typed_value). What bash 5.2 prints
was run here, case by case, and a property test holds this model to it every run
(tests/test_command_lines.py): an optional `--`; the format's escapes; `%s`, `%b` (its
argument's escapes read too, `\\c` ending all output) and `%c`, each with flags, a width and a
precision, given or taken from the next word (`*`); `%%`; and the format used again while words
remain. Any other conversion (`%d`, `%x`, `%ls`...) is not modelled: `printed` then gives the
words joined, which are the page's text all the same.

The page controls every word, so the work is linear in them and the output is cut at
PRINTED_MAX characters, whatever the widths or the number of words.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

#: Characters of printf's output the model keeps: a page's format used again for each of its
#: words, or a width of its choosing, would otherwise fill the gate's memory.
PRINTED_MAX = 64 * 1024

#: a conversion: `%%`, or flags, a width and a precision (digits or `*`), then its letter; the
#: flags hold no digit, so a run of zeros is the width's alone (one way to read it: linear)
_CONVERSION = re.compile(r"%(?:%|([-+ #']*)(\*|\d*)(?:\.(\*|\d*))?([A-Za-z]))")
#: the escapes both the format and `%b` read (bash 5.2, run here)
_SIMPLE = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r"}
_SIMPLE |= {"t": "\t", "v": "\v", "\\": "\\", '"': '"', "'": "'"}
#: an escape of the format: octal of one to three digits; `\?` is `?`
_FORMAT_ESCAPE = re.compile(
    r"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{1,4})|U([0-9A-Fa-f]{1,8})|(.))", re.S
)
#: an escape of `%b`'s argument: octal as `\0NNN` or `\NNN`; `\c` ends all output
_B_ESCAPE = re.compile(
    r"\\(?:0([0-7]{0,3})|([1-7][0-7]{0,2})|x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{1,4})"
    r"|U([0-9A-Fa-f]{1,8})|(.))",
    re.S,
)


class _Stop(Exception):
    """`\\c` in a `%b` argument: nothing more is printed."""

    def __init__(self, text: str) -> None:
        self.text = text


def _code(number: str, base: int) -> str:
    value = int(number or "0", base)
    return chr(value) if value <= 0x10FFFF else ""


def _format_escape(m: re.Match[str]) -> str:
    octal, hexa, short, long, other = m.groups()
    if other is not None:
        return "?" if other == "?" else _SIMPLE.get(other, m[0])
    if octal is not None:
        return chr(int(octal, 8) & 0xFF)
    return _code(hexa or short or long, 16)


def _b_escape(m: re.Match[str]) -> str:
    zero, octal, hexa, short, long, other = m.groups()
    if other is not None:
        if other == "c":
            raise _Stop(m.string[: m.start()])
        return _SIMPLE.get(other, m[0])
    if zero is not None or octal is not None:
        return chr(int(zero or octal or "0", 8) & 0xFF)
    return _code(hexa or short or long, 16)


def _b_argument(text: str) -> tuple[str, bool]:
    """A `%b` argument with its escapes read, and whether a `\\c` in it ended all output."""
    try:
        return _B_ESCAPE.sub(_b_escape, text), False
    except _Stop as stop:
        return _B_ESCAPE.sub(_b_escape, stop.text), True


def printed(words: list[str]) -> str:
    """What `printf WORD...` prints, as the module's docstring says."""
    if words[:1] == ["--"]:
        words = words[1:]
    if not words:
        return ""
    form = _FORMAT_ESCAPE.sub(_format_escape, words[0])
    specs = list(_CONVERSION.finditer(form))
    stray = "%" in _CONVERSION.sub("", form)  # bash stops there: "invalid format character"
    if stray or any(_unmodelled(m) for m in specs):
        return " ".join(words)[:PRINTED_MAX]
    out: list[str] = []
    given = iter(words[1:])
    left, size = len(words) - 1, 0
    for _ in range(len(words)):  # a pass takes a word at least, or it is the only one
        text, taken, stopped = _one_pass(form, specs, given, PRINTED_MAX - size)
        out.append(text)
        left, size = left - taken, size + len(text)
        if stopped or not taken or left <= 0 or size >= PRINTED_MAX:
            break
    return "".join(out)[:PRINTED_MAX]


def _unmodelled(spec: re.Match[str]) -> bool:
    """A conversion other than `%%`, `%s`, `%b` and `%c`, or a width or precision written
    longer than PRINTED_MAX can be (compared as text: a page's digits are never made a number
    past that)."""
    if spec[0] == "%%":
        return False
    numbers = [n.lstrip("0") for n in (spec[2], spec[3] or "") if n != "*"]
    too_long = any(len(n) > len(str(PRINTED_MAX)) for n in numbers)
    return spec[4] not in ("s", "b", "c") or too_long


def _number(word: str | None) -> int:
    """A `*` width or precision's word as bash reads it: a whole number, else 0 (bash also
    says "invalid number"); its size is held to PRINTED_MAX."""
    if word is None or not re.fullmatch(r"[-+]?\d{1,12}", word.strip()):
        return 0
    return max(-PRINTED_MAX, min(PRINTED_MAX, int(word)))


def _one_pass(
    form: str, specs: list[re.Match[str]], given: Iterator[str], room: int
) -> tuple[str, int, bool]:
    """One pass of the format: its text (at most `room` characters), the words it took, and
    whether a `\\c` ended all output."""
    parts: list[str] = []
    at, taken, size = 0, 0, 0
    for spec in specs:
        parts.append(form[at : spec.start()])
        size += len(parts[-1])
        at = spec.end()
        if size >= room:
            return "".join(parts), taken, False
        if spec[0] == "%%":
            parts.append("%")
            continue
        text, used, stopped = _converted(spec, given, room - size)
        parts.append(text)
        size, taken = size + len(text), taken + used
        if stopped:
            return "".join(parts), taken, True
    parts.append(form[at:])
    return "".join(parts), taken, False


def _converted(spec: re.Match[str], given: Iterator[str], room: int) -> tuple[str, int, bool]:
    """One `%s`, `%b` or `%c`: its text, the words it took, whether `\\c` ended all output."""
    flags, letter = spec[1], spec[4]
    width, taken = _size(spec[2], given)
    precision, more = _size(spec[3], given) if spec[3] is not None else (None, 0)
    word = next(given, None)
    taken += more + (word is not None)
    value, stopped = (word or "", False)
    if letter == "b":
        value, stopped = _b_argument(value)
    raw = value.encode("utf-8", "surrogateescape")  # bash counts bytes, not characters
    if letter == "c":
        raw = raw[:1] or b"\0"  # a NUL for an empty or missing word
    if precision is not None and precision >= 0:
        raw = raw[:precision]
    pad = b" " * min(max(abs(width) - len(raw), 0), room)
    raw = (raw + pad) if "-" in flags or width < 0 else (pad + raw)
    return raw.decode("utf-8", "surrogateescape")[:room], taken, stopped


def _size(written: str, given: Iterator[str]) -> tuple[int, int]:
    """A width or precision as written (digits, checked short by `_unmodelled`) or `*` (the
    next word's): its value, and the words it took."""
    if written == "*":
        return _number(next(given, None)), 1
    return int(written or "0"), 0
