"""Markdown blocks (a page shown in a page): their fences and gate directives must be sound."""

from __future__ import annotations

from typing import ClassVar

from ..lexer import Block, LexError, blocks
from . import CheckFailure, Context, Status, save_titled


class MarkdownChecker:
    name: ClassVar[str] = "markdown"
    status: ClassVar[Status] = "verified"
    languages: ClassVar[frozenset[str]] = frozenset({"markdown", "md"})

    def check(self, block: Block, ctx: Context) -> None:
        try:
            blocks(block.body)
        except LexError as exc:
            raise CheckFailure(
                f"the Markdown example is malformed: {exc.reason}", exc.line
            ) from None
        save_titled(block, ctx)
