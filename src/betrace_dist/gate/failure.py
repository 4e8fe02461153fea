"""The failure of a block: the reason and, where the checker knows it, the line inside the block;
the gate turns it into `page.md:LINE: reason`. It sits below every module of the gate (the
session, the snapshots and the checkers raise it), so it imports none of them."""

from __future__ import annotations


class CheckFailure(Exception):
    def __init__(self, reason: str, body_line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.body_line = body_line  # 1-based line inside the block body, when known
