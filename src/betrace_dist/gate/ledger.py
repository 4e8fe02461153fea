"""The block ledger: every fenced block of every page, with exactly one checker or a skip reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from .checkers import Checker, claim
from .escape import as_data
from .lexer import Block

#: "modelled": a console block whose shown output comes from a command model, which cannot
#: produce it offline: its commands are checked, the output shown is not compared.
STATUSES = ("run", "verified", "modelled", "skipped", "unclaimed", "failed", "error")


@dataclass(frozen=True)
class Entry:
    page: str
    line: int  # source line of the opening fence
    language: str
    checker: str  # checker name, "-" for skipped or unclaimed
    status: str  # one of STATUSES
    reason: str = ""

    def with_outcome(self, passed: bool) -> Entry:
        if self.status in ("skipped", "unclaimed", "error") or passed:
            return self
        return replace(self, status="failed")


def entry_for(
    page: str, line: int, block: Block, checkers: list[Checker]
) -> tuple[Entry, Checker | None]:
    if block.directive is not None:
        return Entry(
            page, line, block.language or "-", "-", "skipped", block.directive.reason
        ), None
    checker = claim(block, checkers)
    if checker is None:
        reason = (
            f"no checker for language '{block.language}'"
            if block.language
            else "the block names no language"
        )
        return Entry(page, line, block.language or "-", "-", "unclaimed", reason), None
    plan = getattr(checker, "plan", None)  # a checker may say a block is checked less fully
    planned = plan(block) if plan is not None else None
    if planned is not None:
        return Entry(page, line, block.language, checker.name, *planned), checker
    return Entry(page, line, block.language, checker.name, checker.status), checker


def format_table(entries: list[Entry]) -> str:
    headers = ("page", "line", "language", "checker", "status", "reason")
    # a skip reason and a language are a page's text: shown as data, on one line (escape.py)
    raw = [(e.page, str(e.line), e.language, e.checker, e.status, e.reason) for e in entries]
    rows = [tuple(as_data(c).replace("\n", "\\n") for c in row) for row in raw]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers[:-1])]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers[:-1], widths, strict=True)) + "  reason"]
    for row in rows:
        out.append(
            "  ".join(
                c.rjust(w) if i == 1 else c.ljust(w)
                for i, (c, w) in enumerate(zip(row[:-1], widths, strict=True))
            )
            + ("  " + row[-1] if row[-1] else "")
        )
    out.append(totals(entries))
    return "\n".join(out)


def totals(entries: list[Entry]) -> str:
    counts = Counter(e.status for e in entries)
    pages = len({e.page for e in entries})
    parts = [
        f"{counts.get(s, 0)} {s}"
        for s in STATUSES
        if counts.get(s, 0) or s in ("run", "verified", "skipped", "unclaimed")
    ]
    by_checker = Counter(e.checker for e in entries if e.checker != "-")
    checkers = ", ".join(f"{name} {n}" for name, n in sorted(by_checker.items()))
    return (
        f"{len(entries)} blocks on {pages} pages: "
        + ", ".join(parts)
        + (f" (by checker: {checkers})" if checkers else "")
    )


def relative(page: Path, root: Path) -> str:
    try:
        return page.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(page)
