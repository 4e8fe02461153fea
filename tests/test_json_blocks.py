"""JSON blocks: what a reader copies must be JSON (RFC 8259), as the backend's Go parser
reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from betrace_dist.gate.checkers import CheckFailure, Context
from betrace_dist.gate.checkers.json_ import JsonChecker
from betrace_dist.gate.lexer import Block


def check(body: str) -> None:
    block = Block(line=1, start=0, end=len(body), indent="", language="json", body=body)
    JsonChecker().check(block, Context(page=Path("p.md"), site_root=Path()))


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_values_python_reads_but_json_has_not_are_refused(value: str) -> None:
    with pytest.raises(CheckFailure, match=f"{value} is not a JSON value"):
        check(f'{{"rate": {value}}}')


def test_a_duplicate_key_is_refused_and_plain_json_passes() -> None:
    with pytest.raises(CheckFailure, match="duplicate key 'a'"):
        check('{"a": 1, "a": 2}')
    check('{"a": 1.5e3, "b": [true, null]}')
