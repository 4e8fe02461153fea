"""The gate's side of the missing-tool rule (tools.ToolMissing): a tool that is not installed
skips the block with the reason, and under BETRACE_REQUIRE_TOOLS=1 (CI) fails it with the error
type the caller gives (a checker's CheckFailure, a command model's CommandError)."""

from __future__ import annotations

from typing import NoReturn

import pytest

from .. import tools


def require(name: str, fail: type[Exception]) -> str:
    """A real tool's path; missing, skip (or raise `fail`) saying how to install it (the
    registry's hint)."""
    try:
        return tools.require(name)
    except tools.ToolMissing as exc:
        if exc.fatal:
            raise fail(str(exc)) from None
        pytest.skip(str(exc))


def absent(exc: tools.ToolMissing, what: str, fail: type[Exception]) -> NoReturn:
    """A file or tool the step needs is absent (`what` says for what): skip with the reason,
    or raise `fail` where skipping is forbidden."""
    said = f"{what}: {exc.reason}"
    if exc.fatal:
        raise fail(str(exc)) from None
    pytest.skip(said)
