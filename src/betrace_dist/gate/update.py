"""`--update-outputs`: rewrite the output a console block shows from what really ran.

Like pytest-examples' `--update-examples`: while the gate runs, a console step whose shown output
differs from what its command printed (a real command, the project's own, or a curl against the
live backend) is queued instead of failing; when the run ends, each page is rewritten bottom-up,
so earlier line numbers stay true, and no lines are rewritten twice. What the page wrote through
a macro stays a macro: a value the old line rendered from `{{ ... }}` is written back as that
macro. In a JSON line, `"..."` values and `"...": "..."` members the page used for what varies
are kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

ELLIPSIS = "..."
_MACRO = re.compile(r"\{\{.*?\}\}")


class UpdateError(Exception):
    """An output cannot be rewritten (its lines do not map one to one to the source)."""


@dataclass(frozen=True)
class Update:
    page: Path
    first: int  # source line of the first output line (1-based)
    old_rendered: tuple[str, ...]  # the output lines as the page showed them
    new_rendered: tuple[str, ...]  # what the command printed, wildcards kept


def keep_wildcards(shown: object, actual: object) -> object:
    """The printed JSON, with the page's `"..."` values and members kept where they match."""
    if shown == ELLIPSIS:
        return ELLIPSIS
    if isinstance(shown, dict) and isinstance(actual, dict):
        open_ended = shown.get(ELLIPSIS) == ELLIPSIS
        out = {
            k: keep_wildcards(shown[k], v) if k in shown else v
            for k, v in actual.items()
            if not open_ended or k in shown
        }
        if open_ended:
            out[ELLIPSIS] = ELLIPSIS
        return out
    if isinstance(shown, list) and isinstance(actual, list):
        if shown and shown[-1] == ELLIPSIS:
            head = shown[:-1]
            return [*(keep_wildcards(s, a) for s, a in zip(head, actual, strict=False)), ELLIPSIS]
        return [keep_wildcards(s, a) for s, a in zip(shown, actual, strict=False)] + actual[
            len(shown) :
        ]
    return actual


def new_output(shown: list[str], printed: list[str]) -> list[str]:
    """The lines to show: what was printed, a JSON line keeping the page's wildcards."""
    if len(shown) != len(printed):
        return printed
    out = []
    for old, new in zip(shown, printed, strict=True):
        try:
            merged = keep_wildcards(json.loads(old), json.loads(new))
        except ValueError:
            out.append(new)
            continue
        out.append(json.dumps(merged, separators=(",", ":"), ensure_ascii=False))
    return out


class Updates:
    """The rewrites one run (`--update-outputs`) queued, applied when it ends."""

    def __init__(self) -> None:
        self.pending: list[Update] = []

    def queue(
        self, page: Path, first: int, last: int, shown: list[str], printed: list[str]
    ) -> None:
        """Queue a rewrite of source lines first..last (the output a step shows)."""
        if last - first != len(shown) - 1:
            raise UpdateError(
                "the output shown does not map line for line to the page source (a macro "
                "writes several lines); update it by hand"
            )
        self.pending.append(Update(page, first, tuple(shown), tuple(new_output(shown, printed))))

    def apply(self) -> list[str]:
        """Rewrite every queued output, page by page, bottom-up; what was done, one line each."""
        by_page: dict[Path, list[Update]] = {}
        for item in self.pending:
            by_page.setdefault(item.page, []).append(item)
        self.pending = []
        return [line for page, items in by_page.items() for line in _rewrite(page, items)]


def _macro_values(source: str, rendered: str) -> list[tuple[str, str]]:
    """(macro, the value it rendered to) for each `{{ ... }}` of a source line."""
    macros = _MACRO.findall(source)
    if not macros:
        return []
    literal = _MACRO.split(source)
    pattern = "(.*?)".join(re.escape(part) for part in literal)
    match = re.fullmatch(pattern, rendered, re.DOTALL)
    if match is None:
        return []
    return [(m, v) for m, v in zip(macros, match.groups(), strict=True) if len(v) >= 2]


def _with_macros(line: str, values: list[tuple[str, str]]) -> str:
    for macro, value in sorted(values, key=lambda mv: -len(mv[1])):
        line = line.replace(value, macro)
    return line


def _rewrite(page: Path, items: list[Update]) -> list[str]:
    """One page's queued outputs rewritten, bottom-up; what was done, one line each."""
    done = []
    lines = page.read_text(encoding="utf-8").split("\n")
    taken: set[int] = set()
    for item in sorted(items, key=lambda u: -u.first):
        span = set(range(item.first, item.first + len(item.old_rendered)))
        if span & taken:
            done.append(f"{page}:{item.first}: not rewritten: these lines were rewritten once")
            continue
        taken |= span
        start = item.first - 1
        old_source = lines[start : start + len(item.old_rendered)]
        values = [
            mv
            for src, shown in zip(old_source, item.old_rendered, strict=True)
            for mv in _macro_values(src, shown)
        ]
        first_line = old_source[0] if old_source else ""
        indent = first_line[: len(first_line) - len(first_line.lstrip())]
        new = [indent + _with_macros(line, values) for line in item.new_rendered]
        lines[start : start + len(item.old_rendered)] = new
        done.append(f"{page}:{item.first}: output rewritten ({len(new)} line(s))")
    page.write_text("\n".join(lines), encoding="utf-8")
    return done
