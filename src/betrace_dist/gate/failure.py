"""The failure of a block: the reason and, where the checker knows it, the line inside the block;
the gate turns it into `page.md:LINE: reason`. It sits below every module of the gate (the
session, the snapshots and the checkers raise it), so it imports none of them."""

from __future__ import annotations


class CheckFailure(Exception):
    def __init__(self, reason: str, body_line: object = None) -> None:
        super().__init__(reason)
        self.reason = reason
        # 1-based line inside the block body, when known; a line a page's own code reported
        # may be anything, and only a positive whole number is taken (the gate checks it
        # against the block's length where it reports it)
        valid = isinstance(body_line, int) and not isinstance(body_line, bool) and body_line > 0
        self.body_line: int | None = body_line if valid else None  # type: ignore[assignment]
