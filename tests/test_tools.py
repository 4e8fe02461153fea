"""The one missing-tool rule: `tools.require` raises ToolMissing, and the two adapters (this
suite's conftest, the gate's checkers) skip with its reason or, under BETRACE_REQUIRE_TOOLS=1,
fail with it."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from betrace_dist import REPO_ROOT, tools
from betrace_dist.gate.checkers import CheckFailure, Context, require_tool
from betrace_dist.gate.checkers.nix import NixChecker
from betrace_dist.gate.lexer import Block

from .conftest import missing

ABSENT = "betrace-no-such-tool"


@pytest.fixture(autouse=True)
def absent(monkeypatch: pytest.MonkeyPatch) -> None:
    """A declared tool that no machine has."""
    monkeypatch.setitem(tools.TOOLS, ABSENT, tools.Tool(ABSENT, "nowhere", "install it"))


def test_a_missing_tool_raises_with_its_name_and_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tools.REQUIRE_TOOLS_ENV, raising=False)
    with pytest.raises(tools.ToolMissing) as caught:
        tools.require(ABSENT)
    assert str(caught.value) == f"'{ABSENT}' is not installed (install it)"
    assert not caught.value.fatal


def test_under_required_tools_the_error_is_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tools.REQUIRE_TOOLS_ENV, "1")
    with pytest.raises(tools.ToolMissing) as caught:
        tools.require(ABSENT)
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
        require_tool(ABSENT)
    monkeypatch.setenv(tools.REQUIRE_TOOLS_ENV, "1")
    with pytest.raises(CheckFailure, match="forbids skipping"):
        require_tool(ABSENT)
    with pytest.raises(KeyError, match="forbids skipping"):  # a command model's own error type
        require_tool(ABSENT, fail=KeyError)


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


#: The calls that ask for a tool by name (the registry, the adapters, the tests' fixture).
ASKING = {"tools.find", "tools.require", "missing.require", "gate_missing.require"}
ASKING |= {"require_tool", "tool"}


def _called(func: ast.expr) -> str:
    """`name` or `module.name` of a call's function ("" for anything else)."""
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return func.id if isinstance(func, ast.Name) else ""


def tools_asked(root: Path) -> tuple[set[str], list[str]]:
    """The tool names the Python files under root ask for, and each place that looks a program
    up on its own (`shutil.which("name")`) instead of asking the registry, as path:LINE."""
    asked: set[str] = set()
    own: list[str] = []
    for path in sorted(root.rglob("*.py")):
        if "node_modules" in path.parts or path.name == "tools.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            first, func = node.args[0], node.func
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            if _called(func) in {"shutil.which", "which"}:
                own.append(f"{path.relative_to(root.parent)}:{node.lineno}")
            elif _called(func) in ASKING:
                asked.add(first.value)
    return asked, own


@pytest.mark.parametrize("folder", ["src", "tests"])
def test_every_tool_asked_for_is_declared_once_in_the_registry(folder: str) -> None:
    """A tool is declared once (tools.TOOLS): every place that finds or requires one names a
    declared tool and gives no hint of its own (the signatures take none), and nothing looks a
    program up by name past the registry."""
    asked, own = tools_asked(REPO_ROOT / folder)
    assert {"helm", "bwrap", "nix-instantiate"} <= asked  # the search works
    assert asked - set(tools.TOOLS) - {ABSENT} == set()
    if folder == "src":  # a test may look a program up on its own, to check the registry
        assert own == [], "ask tools.find instead"
    installed = [t.name for t in tools.TOOLS.values() if t.layer is not None]
    assert installed == ["helm", "helm3", "kubectl"]  # what `make tools` installs


def test_the_registry_check_finds_an_undeclared_tool_and_a_lookup_of_its_own(
    tmp_path: Path,
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.py").write_text(
        'import shutil\nfrom x import tools\ntools.find("helm"); tools.require("bwrap")\n'
        'tools.find("nix-instantiate"); tools.require("frobnicate")\nshutil.which("jq")\n'
    )
    asked, own = tools_asked(tmp_path / "src")
    assert asked - set(tools.TOOLS) == {"frobnicate"}
    assert own == ["src/m.py:5"]


def test_the_system_packages_are_the_registrys(tmp_path: Path) -> None:
    """scripts/install-system-deps installs the Debian package of each registry tool the machine
    lacks: on a PATH with nothing but Python and the programs the script itself uses, it names
    them all (and no apt-get is reachable, so it only lists them)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(Path(sys.executable).resolve())
    for program in ("id", "dirname", "bash"):
        (bin_dir / program).symlink_to(shutil.which(program) or "/bin/false")
    script = REPO_ROOT / "scripts" / "install-system-deps"
    env = {"PATH": str(bin_dir), "LANG": "C.UTF-8"}
    listed = subprocess.run(
        [str(bin_dir / "bash"), str(script)], env=env, capture_output=True, text=True, check=False
    )
    assert listed.returncode == 0, listed.stderr
    first = listed.stderr.splitlines()[0]
    assert first.startswith("missing system packages: "), listed.stderr
    packages = set(first.split(": ", 1)[1].split())
    # what the tests need of the machine (the jail, Nix, the browser tests, the app's build)
    assert {"bubblewrap", "nix-bin", "chromium", "nodejs", "npm", "strace"} <= packages
    assert "bash" not in packages  # on the PATH, so not missing
    required = subprocess.run(
        [str(bin_dir / "bash"), str(script), "--require"], env=env, capture_output=True,
        check=False,
    )  # fmt: skip
    assert required.returncode == 1


def test_a_tool_outside_the_registry_has_no_hint_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(tools.REQUIRE_TOOLS_ENV, raising=False)
    monkeypatch.delitem(tools.TOOLS, ABSENT)
    with pytest.raises(tools.ToolMissing, match=r"\(not a tool of the registry\)$"):
        tools.require(ABSENT)


def test_a_checker_reads_no_configuration_from_the_gates_folder(
    tool: Callable[[str], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkers read page text with the gate's rights: ShellCheck took `.shellcheckrc` from its
    working folder up (where a pull request can add one, with `external-sources=true` making it
    read the files a script sources as root). They run in an empty folder now."""
    shellcheck = tool("shellcheck")
    (tmp_path / ".shellcheckrc").write_text("enable=require-variable-braces\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    done = tools.run_checker([shellcheck, "-s", "bash", "-"], 'echo "$x"\n', 30)
    assert "SC2250" not in done.stdout, done.stdout
    assert (tmp_path / ".shellcheckrc").exists()


def test_the_nix_parser_reads_a_page_within_the_checkers_limits(
    tool: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nix blocks were parsed with the gate's rights and no memory or processor bound, unlike
    every other checker that reads a page's text. With the bound too small for Nix to start,
    the block fails: it never passes unparsed."""
    tool("nix-instantiate")
    body = "{ a = 1; }\n"
    block = Block(line=1, start=0, end=len(body), indent="", language="nix", body=body)
    ctx = Context(page=Path("p.md"), site_root=Path())
    NixChecker().check(block, ctx)  # within the usual bound it parses
    monkeypatch.setattr(tools, "CHECK_MEMORY", 4 * 1024 * 1024)
    with pytest.raises(CheckFailure, match="Nix cannot parse it"):
        NixChecker().check(block, ctx)


def test_the_nix_parser_keeps_its_state_in_a_folder_of_its_own(
    tool: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run by root, nix-instantiate --parse opened the machine's store database
    (/nix/var/nix/db, with its lock) and read its nix.conf for each Nix block of a page. Its
    state, logs and settings are given a temporary folder, gone after the parse."""
    tool("nix-instantiate")
    seen: list[dict[str, str]] = []
    real = tools.run_checker

    def spy(argv: list[str], text: str | None, timeout: float, extra_env: Any = None) -> Any:
        seen.append(dict(extra_env or {}))
        return real(argv, text, timeout, extra_env)

    monkeypatch.setattr(tools, "run_checker", spy)
    body = "{ a = 1; }\n"
    block = Block(line=1, start=0, end=len(body), indent="", language="nix", body=body)
    NixChecker().check(block, Context(page=Path("p.md"), site_root=Path()))
    folders = {seen[0].get(f"NIX_{k}_DIR", "") for k in ("STATE", "LOG", "CONF")}
    assert all(f.startswith(tempfile.gettempdir()) for f in folders), seen
    assert not any(Path(f).exists() for f in folders)  # removed with the parse


def test_the_programs_of_a_clone_are_where_the_makefile_puts_them() -> None:
    """The paths a page may name a program by (Session._program_is_there) are the Makefile's:
    its virtualenv, and the folder `make tools` installs into."""
    makefile = (REPO_ROOT / "Makefile").read_text()
    venv = re.search(r"^VENV\s*:=\s*(\S+)", makefile, re.M)
    assert venv and venv.group(1) == tools.VENV
    assert "-m betrace_dist.tools" in makefile  # `make tools` is the registry's install()
    made = tools.clone_programs()
    assert {".tools/bin/helm", ".tools/bin/kubectl", ".venv/bin/betrace-dist"} <= made
    assert ".tools/bin/curl" not in made  # the machine's curl: found on the PATH, not there
