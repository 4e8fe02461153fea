"""JSON blocks: what a reader copies must be JSON (RFC 8259), as the backend's Go parser
reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from betrace_dist.gate.checkers import CheckFailure, Context
from betrace_dist.gate.checkers.json_ import JsonChecker
from betrace_dist.gate.lexer import Block
from betrace_dist.release import load_release_data


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


def _answer(title: str, body: str) -> None:
    block = Block(
        line=1,
        start=0,
        end=len(body),
        indent="",
        language="json",
        body=body,
        attrs={"title": title},
    )
    ctx = Context(page=Path("p.md"), site_root=Path(), release=load_release_data())
    JsonChecker().check(block, ctx)


def test_an_answer_block_is_checked_against_the_endpoints_answer_fields() -> None:
    """Fields and types from upstream's API description (the release data's `response`); the
    expected words are the description's, not the checker's."""
    health = '{"status": "HEALTHY", "version": "2.0.0", "uptimeSeconds": "42", "metadata": {}}'
    _answer("Answer of GET /v1/health", health)
    with pytest.raises(CheckFailure, match=r"no field 'uptime'.*did you mean 'uptimeSeconds'"):
        _answer("Answer of GET /v1/health", health.replace("uptimeSeconds", "uptime"))
    with pytest.raises(CheckFailure, match="'uptimeSeconds' must be a JSON string"):
        _answer("Answer of GET /v1/health", health.replace('"42"', "42"))
    with pytest.raises(CheckFailure, match="serves no GET /v1/healthz"):
        _answer("Answer of GET /v1/healthz", health)


def test_an_answer_block_takes_integers_and_the_json_names_only() -> None:
    """totalCount is an integer in the API description; the gateway sends the JSON names
    (uptimeSeconds), never the .proto's snake_case, which a request may use."""
    _answer("Answer of GET /v1/rules", '{"rules": [], "totalCount": 0}')
    _answer("answer of get  /v1/violations?limit=5", '{"violations": [], "totalCount": 1}')
    with pytest.raises(CheckFailure, match="'totalCount' must be a JSON integer"):
        _answer("Answer of GET /v1/rules", '{"rules": [], "totalCount": true}')
    with pytest.raises(CheckFailure, match="no field 'uptime_seconds'"):
        _answer(
            "Answer of GET /v1/health",
            '{"status": "HEALTHY", "version": "2.0.0", "uptime_seconds": "42", "metadata": {}}',
        )
