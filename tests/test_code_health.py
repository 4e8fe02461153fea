"""The engine's code is held to its promises by real tools: mypy holds the type annotations
(configured in pyproject.toml, strict for the modules everything else trusts). Each check runs
on src/ as it is, and on a copy with a fault put in on purpose, to show the check can fail."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
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


def _long_functions(tree: Path) -> list[tuple[str, int]]:
    if str(REPO_ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    import code_size  # benchmarks/code_size.py: the count the closing notes give

    return [f for f in code_size.functions(tree) if f[1] > code_size.LONG]


def test_no_function_in_src_is_over_sixty_lines() -> None:
    """docs/contributing/decisions.md holds the engine to it; only the benchmark measured it."""
    assert _long_functions(REPO_ROOT / "src") == []


def test_a_function_over_sixty_lines_is_reported(tmp_path: Path) -> None:
    body = "".join(f"    x += {n}\n" for n in range(60))
    (tmp_path / "long.py").write_text(f"def long(x: int) -> int:\n{body}    return x\n")
    assert _long_functions(tmp_path) == [("long.py:long", 62)]


# --- the locked Python packages (constraints.txt, docs/contributing/decisions.md) ------------


def lock_problems(constraints: str, installed: dict[str, str], required: list[str]) -> list[str]:
    """What makes the virtualenv differ from constraints.txt, or the lock from pyproject.toml:
    a locked package installed at another version (constraints.txt:LINE), a package installed
    that the lock does not name, and a requirement of pyproject.toml the lock lacks or pins
    outside its range. `installed`: canonical name -> version. A locked package that is not
    installed is not judged (an environment marker may leave it out on another Python)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    problems, locked = [], {}
    for number, line in enumerate(constraints.splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        pin = Requirement(text)
        if pin.marker is not None and not pin.marker.evaluate():
            continue
        version = next((s.version for s in pin.specifier if s.operator == "=="), "")
        name = canonicalize_name(pin.name)
        locked[name] = version
        have = installed.get(name)
        if have is not None and have != version:
            problems.append(
                f"constraints.txt:{number}: {pin.name} is locked at {version}, the virtualenv "
                f"has {have}: run `make setup` (or `make lock` to take {have})"
            )
    for name in sorted(set(installed) - set(locked) - _NOT_LOCKED):
        problems.append(f"{name} {installed[name]} is installed but not locked: `make lock`")
    for text in required:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name not in locked:
            problems.append(
                f"pyproject.toml names {requirement.name}, the lock does not: `make lock`"
            )
        elif not requirement.specifier.contains(locked[name], prereleases=True):
            problems.append(
                f"pyproject.toml asks for {text}, the lock pins {locked[name]}: `make lock`"
            )
    return problems


#: installed beside the locked packages: the project itself, and what Python's venv puts in
#: every virtualenv (pip is locked: `make setup` upgrades it to the lock's version)
_NOT_LOCKED = {"betrace-dist", "setuptools"}


def _installed_now() -> dict[str, str]:
    from importlib.metadata import distributions

    from packaging.utils import canonicalize_name

    return {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}


def _required() -> list[str]:
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extras = project["project"]["optional-dependencies"]
    return [*project["project"]["dependencies"], *(r for group in extras.values() for r in group)]


def test_the_virtualenv_has_the_locked_versions() -> None:
    constraints = (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8")
    assert lock_problems(constraints, _installed_now(), _required()) == []


def test_another_version_an_unlocked_package_or_a_stale_lock_is_reported() -> None:
    constraints = "# header\nmarkdown==3.11.4\npytest==9.2.0\nold==1 ; python_version < '3'\n"
    installed = {"markdown": "3.11.3", "pytest": "9.2.0", "stray": "1.0"}
    required = ["Markdown==3.11.5", "sybil>=9", "pytest>=8"]
    assert lock_problems(constraints, installed, required) == [
        "constraints.txt:2: markdown is locked at 3.11.4, the virtualenv has 3.11.3: run "
        "`make setup` (or `make lock` to take 3.11.3)",
        "stray 1.0 is installed but not locked: `make lock`",
        "pyproject.toml asks for Markdown==3.11.5, the lock pins 3.11.4: `make lock`",
        "pyproject.toml names sybil, the lock does not: `make lock`",
    ]
