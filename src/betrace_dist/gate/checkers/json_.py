"""JSON blocks: must parse, with no duplicate keys (json.loads would keep the last silently).

A block titled `Answer of METHOD PATH` shows what the backend answers there: its fields and
their types are checked against the answer upstream's API description gives (the release
data's endpoint `response`). That is a check against a description, not against the running
backend: a page shows an answer the live tier compares as a console transcript (`$ curl ...`
followed by the output).
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from ..commands.curl import check_fields, path_pattern
from ..lexer import Block
from ..session import CommandError
from . import CheckFailure, Context, Status, save_titled

_ANSWER = re.compile(r"answer of (get|post|put|delete|patch) (/[^\s?#]*)(?:[?#]\S*)?", re.I)


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
        answer = _ANSWER.fullmatch(" ".join((block.title or "").split()))
        if answer is not None:
            _check_answer(ctx, answer.group(1).upper(), answer.group(2), block.body)
        save_titled(block, ctx)


def _check_answer(ctx: Context, method: str, path: str, body: str) -> None:
    endpoints = ctx.release.current.backend.endpoints
    endpoint = next(
        (e for e in endpoints if e.method == method and path_pattern(e.path).match(path)), None
    )
    if endpoint is None:
        served = ", ".join(f"{e.method} {e.path}" for e in endpoints)
        raise CheckFailure(f"title: the backend serves no {method} {path}; it serves: {served}")
    if endpoint.response is None:
        raise CheckFailure(
            f"title: the release data gives no answer fields for {method} {endpoint.path} (its "
            "response), so the answer shown cannot be checked; show it as a console transcript"
        )
    try:
        check_fields(
            json.loads(body), endpoint.response.spec(), f"the answer of {method} {path}", True
        )
    except CommandError as exc:
        raise CheckFailure(str(exc)) from None
