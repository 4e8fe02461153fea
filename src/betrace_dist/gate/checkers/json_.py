"""JSON blocks: must parse, with no duplicate keys (json.loads would keep the last silently)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from ..lexer import Block
from . import CheckFailure, Context, Status, save_titled


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key '{key}'")
        seen[key] = value
    return seen


def _no_constant(name: str) -> Any:
    """Python reads NaN and Infinity; JSON (RFC 8259) has neither, and Go's parser refuses them."""
    raise ValueError(f"{name} is not a JSON value (RFC 8259 has no NaN or Infinity)")


class JsonChecker:
    name: ClassVar[str] = "json"
    status: ClassVar[Status] = "verified"
    languages: ClassVar[frozenset[str]] = frozenset({"json"})

    def check(self, block: Block, ctx: Context) -> None:
        try:
            json.loads(block.body, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise CheckFailure(f"invalid JSON: {exc.msg}", exc.lineno) from None
        except ValueError as exc:
            raise CheckFailure(f"invalid JSON: {exc}") from None
        save_titled(block, ctx)
