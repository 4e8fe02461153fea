"""The engine's code is held to its promises by real tools: mypy holds the type annotations
(configured in pyproject.toml, strict for the modules everything else trusts). Each check runs
on src/ as it is, and on a copy with a fault put in on purpose, to show the check can fail."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT

pytestmark = pytest.mark.slow


def _mypy(root: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    """mypy as `make lint` runs it: the files and flags come from root/pyproject.toml."""
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(cache), "--no-color-output"],
        cwd=root, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(REPO_ROOT / "src", root / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    shutil.copy2(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module's mypy runs: the copy with a fault reuses what the run on src/
    learnt about the unchanged modules and the libraries (mypy checks each file's hash)."""
    return tmp_path_factory.mktemp("mypy-cache")


def test_mypy_passes_on_src(mypy_cache: Path) -> None:
    result = _mypy(REPO_ROOT, mypy_cache)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_mypy_catches_a_type_error_and_an_unannotated_function(
    tmp_path: Path, mypy_cache: Path
) -> None:
    root = _copy(tmp_path)
    release = root / "src/betrace_dist/release.py"
    text = release.read_text(encoding="utf-8")
    text += '\n\ndef _broken() -> int:\n    return "not a number"\n'
    release.write_text(text, encoding="utf-8")
    bad_line = text.count("\n")  # the `return` line, 1-based
    tools = root / "src/betrace_dist/tools.py"
    tools.write_text(tools.read_text(encoding="utf-8") + "\n\ndef untyped(x):\n    return x\n")

    result = _mypy(root, mypy_cache)

    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert f"src/betrace_dist/release.py:{bad_line}: error: Incompatible return value" in out, out
    assert re.search(r"src/betrace_dist/tools\.py:\d+: error: Function is missing a type", out), out


def _ruff_complexity(root: Path, *paths: str) -> subprocess.CompletedProcess[str]:
    """ruff's complexity rule (C901) with the project's limit from root/pyproject.toml."""
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "C901",
         "--output-format", "concise", *paths],
        cwd=root, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_no_function_in_src_is_over_the_complexity_limit() -> None:
    """Not even one excused with `# noqa: C901`: a function over the limit is split instead."""
    result = _ruff_complexity(REPO_ROOT, "--ignore-noqa", "src")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_function_over_the_limit_is_reported(tmp_path: Path) -> None:
    shutil.copy2(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    branches = "".join(f"    if x == {n}:\n        return {n}\n" for n in range(10))
    (tmp_path / "tangled.py").write_text(f"def tangled(x: int) -> int:\n{branches}    return -1\n")
    result = _ruff_complexity(tmp_path, "tangled.py")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "tangled.py:1:5: C901 `tangled` is too complex (11 > 10)" in result.stdout


# --- the locked Python packages (constraints.txt, docs/contributing/decisions.md) ------------


def lock_problems(
    constraints: str, installed: Callable[[str], str | None], required: list[str]
) -> list[str]:
    """constraints.txt:LINE for each locked package installed at another version, and each
    dependency of pyproject.toml the lock does not name. A locked package that is not
    installed is not judged (an environment marker may leave it out on another Python)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    problems, locked = [], set()
    for number, line in enumerate(constraints.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, _, version = line.partition("==")
        locked.add(canonicalize_name(name))
        have = installed(name)
        if have is not None and have != version.strip():
            problems.append(
                f"constraints.txt:{number}: {name} is locked at {version.strip()}, the "
                f"virtualenv has {have}: run `make setup` (or `make lock` to take {have})"
            )
    for requirement in required:
        name = Requirement(requirement).name
        if canonicalize_name(name) not in locked:
            problems.append(f"pyproject.toml names {name}, constraints.txt does not: `make lock`")
    return problems


def _installed(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _required() -> list[str]:
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["tests"],
    ]


def test_the_virtualenv_has_the_locked_versions() -> None:
    constraints = (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8")
    assert lock_problems(constraints, _installed, _required()) == []


def test_another_version_or_an_unlocked_dependency_is_reported() -> None:
    constraints = "# header\nMarkdown==3.11.4\npytest==9.2.0\n"
    found = lock_problems(constraints, {"Markdown": "3.11.3"}.get, ["Markdown>=3", "sybil>=9"])
    assert found == [
        "constraints.txt:2: Markdown is locked at 3.11.4, the virtualenv has 3.11.3: run "
        "`make setup` (or `make lock` to take 3.11.3)",
        "pyproject.toml names sybil, constraints.txt does not: `make lock`",
    ]
