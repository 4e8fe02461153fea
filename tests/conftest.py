"""Shared fixtures: the release data and the real external tools.

A missing tool skips its tests with the reason (a contributor's laptop may lack Nix); with
BETRACE_REQUIRE_TOOLS=1, as CI sets it, a missing tool fails instead, so CI runs every check.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT, tools
from betrace_dist.release import ReleaseData, load_release_data


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def release_data() -> ReleaseData:
    return load_release_data()


def require_tool(name: str, hint: str) -> str:
    """Path of a real tool, or a skip (a failure under BETRACE_REQUIRE_TOOLS=1) naming the fix."""
    path = tools.find(name)
    if path:
        return path
    message = f"'{name}' is not installed ({hint})"
    if os.environ.get("BETRACE_REQUIRE_TOOLS") == "1":
        pytest.fail(message + "; BETRACE_REQUIRE_TOOLS=1 forbids skipping", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def tool() -> Callable[[str, str], str]:
    return require_tool
