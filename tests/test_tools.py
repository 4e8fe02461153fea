"""The one missing-tool rule: `tools.require` raises ToolMissing, and the two adapters (this
suite's conftest, the gate's checkers) skip with its reason or, under BETRACE_REQUIRE_TOOLS=1,
fail with it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from betrace_dist import tools
from betrace_dist.gate.checkers import CheckFailure, require_tool

from .conftest import missing

ABSENT = "betrace-no-such-tool"


def test_a_missing_tool_raises_with_its_name_and_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tools.REQUIRE_TOOLS_ENV, raising=False)
    with pytest.raises(tools.ToolMissing) as caught:
        tools.require(ABSENT, "install it")
    assert str(caught.value) == f"'{ABSENT}' is not installed (install it)"
    assert not caught.value.fatal


def test_under_required_tools_the_error_is_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tools.REQUIRE_TOOLS_ENV, "1")
    with pytest.raises(tools.ToolMissing) as caught:
        tools.require(ABSENT, "install it")
    assert caught.value.fatal
    assert str(caught.value).endswith("; BETRACE_REQUIRE_TOOLS=1 forbids skipping")


def test_the_tests_adapter_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tools.REQUIRE_TOOLS_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        missing(tools.ToolMissing(f"'{ABSENT}' is not installed"))
    monkeypatch.setenv(tools.REQUIRE_TOOLS_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="forbids skipping"):
        missing(tools.ToolMissing(f"'{ABSENT}' is not installed"))


def test_the_gates_adapter_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tools.REQUIRE_TOOLS_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_tool(ABSENT, "install it")
    monkeypatch.setenv(tools.REQUIRE_TOOLS_ENV, "1")
    with pytest.raises(CheckFailure, match="forbids skipping"):
        require_tool(ABSENT, "install it")
    with pytest.raises(KeyError, match="forbids skipping"):  # a command model's own error type
        require_tool(ABSENT, "install it", fail=KeyError)


def test_tools_does_not_import_pytest() -> None:
    code = "import sys, betrace_dist.tools; sys.exit('pytest' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_a_project_tool_is_found_as_the_program_itself_not_through_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy of the project whose .tools links to a checkout whose .tools links elsewhere:
    a page's jail shows the folder the program lies in, never the links on the way."""
    real = tmp_path / "real" / "bin"
    real.mkdir(parents=True)
    (real / "helm").write_text("#!/bin/sh\n")
    (real / "helm").chmod(0o755)
    (tmp_path / "checkout").mkdir()
    (tmp_path / "checkout" / ".tools").symlink_to(real.parent)
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / ".tools").symlink_to(tmp_path / "checkout" / ".tools")
    monkeypatch.setattr(tools, "TOOLS_BIN", tmp_path / "copy" / ".tools" / "bin")
    assert tools.find("helm") == str((real / "helm").resolve())


def test_every_tool_the_engine_asks_for_is_declared_in_the_registry() -> None:
    """A tool is declared once (tools.TOOLS); every place that finds or requires one by name
    names a declared tool, so its hint, source and flags are the registry's."""
    src = Path(tools.__file__).parent
    asked = {
        name
        for path in src.rglob("*.py")
        for name in re.findall(
            r"(?:tools\.find|tools\.require|missing\.require|require_tool)\(\s*\"([\w.-]+)\"",
            path.read_text(encoding="utf-8"),
        )
    }
    assert {"helm", "helm3", "kubectl", "nix", "git", "bwrap"} <= asked  # the search works
    assert asked - set(tools.TOOLS) == set()
    installed = [t.name for t in tools.TOOLS.values() if t.layer is not None]
    assert installed == ["helm", "helm3", "kubectl"]  # what `make tools` installs


def test_a_tool_outside_the_registry_has_no_hint_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(tools.REQUIRE_TOOLS_ENV, raising=False)
    with pytest.raises(tools.ToolMissing, match=r"\(not a tool of the registry\)$"):
        tools.require(ABSENT)
    monkeypatch.setitem(tools.TOOLS, ABSENT, tools.Tool(ABSENT, "nowhere", "apt-get install x"))
    with pytest.raises(tools.ToolMissing, match=r"\(apt-get install x\)$"):
        tools.require(ABSENT)
