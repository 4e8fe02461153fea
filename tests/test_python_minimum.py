"""The oldest Python an example needs: vermin's reading, and the real older interpreters."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from betrace_dist import tools
from betrace_dist.gate import python_minimum
from betrace_dist.gate.python_minimum import Need, needed, page_problem

from .conftest import FIXTURES, line_containing

#: A union annotation in a signature: evaluated when the function is defined, so Python 3.9
#: raises TypeError, while vermin (reading only) reports an older Python (3.0 with vermin 1.9).
UNION = "def f(a: str | None = None) -> None:\n    pass\n\nf()\n"


def run_real(program: Path, tmp_path: Path) -> str | None:
    example = tmp_path / "example.py"
    example.write_text(UNION, encoding="utf-8")
    done = subprocess.run(
        [str(program), "-I", str(example)], capture_output=True, text=True, check=False
    )
    return None if done.returncode == 0 else done.stderr.strip().splitlines()[-1]


def test_vermin_alone_misses_a_union_annotation() -> None:
    found = python_minimum.vermin_minimum(UNION)
    assert found is not None and found < (3, 10), found


def test_a_vermin_crash_is_no_answer_not_any_python() -> None:
    """A 400-deep sum makes vermin fail (RecursionError) where Python runs it: read as "no
    minimum", it let a page state 3.6 for an example using itertools.pairwise (3.10)."""
    source = "import itertools\n\nitertools.pairwise\ntotal = 1" + " + 1" * 400 + "\n"
    with pytest.raises(python_minimum.VerminError, match="RecursionError"):
        python_minimum.vermin_minimum(source)


def test_code_that_needs_no_newer_python_is_an_answer_not_a_crash() -> None:
    """vermin says `~3` (no rule of a newer Python 3 applies) for plain code: Python 3.0."""
    assert python_minimum.vermin_minimum("total = 1 + 2\n") == (3, 0)


def test_vermin_out_of_its_memory_is_no_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """vermin reads the page's code with the gate's rights, so within tools.CHECK_MEMORY: one
    that could not run is no minimum (and so a failure of the block), never "any Python"."""
    monkeypatch.setattr(tools, "CHECK_MEMORY", 2 * 1024 * 1024)  # Python cannot even start
    with pytest.raises(python_minimum.VerminError, match="vermin could not read the example"):
        python_minimum.vermin_minimum("import itertools\n\nitertools.pairwise\n")


def test_running_the_older_pythons_finds_what_vermin_misses(tmp_path: Path) -> None:
    versions = dict(python_minimum.older_pythons())
    if (3, 9) not in versions or (3, 10) not in versions:
        pytest.skip(f"needs Python 3.9 and 3.10 under {python_minimum.PYENV_VERSIONS}")
    need = needed(UNION, lambda program: run_real(program, tmp_path))
    assert need is not None
    assert need.version == (3, 10)
    assert "Python 3.9 failed it: TypeError" in need.why


def test_a_run_stopped_by_a_missing_package_answers_by_the_packages_requires_python() -> None:
    """An older Python without the example's own dependency (the OpenTelemetry SDK is installed
    for the gate's Python only) stops at its import whatever its version. That run fails the
    version when the package's Requires-Python excludes it (a review found an example of this
    project's package, which needs 3.11, passing a page that stated 3.9), and says nothing
    otherwise. A standard module the older Python lacks (tomllib before 3.11) fails it."""
    third_party = "ModuleNotFoundError: No module named 'opentelemetry'"
    assert python_minimum.missing_package(third_party) == "opentelemetry"
    assert python_minimum.missing_package("ModuleNotFoundError: No module named 'tomllib'") is None
    assert python_minimum.package_refuses("opentelemetry", (3, 9)) is not None
    assert python_minimum.package_refuses("opentelemetry", (3, 10)) is None
    refused = python_minimum.package_refuses("betrace_dist", (3, 10))
    assert refused is not None and "requires Python >=3.11" in refused, refused
    versions = dict(python_minimum.older_pythons())
    if (3, 9) not in versions or (3, 10) not in versions:
        pytest.skip(f"needs Python 3.9 and 3.10 under {python_minimum.PYENV_VERSIONS}")
    own = "ModuleNotFoundError: No module named 'betrace_dist'"
    need = needed("import json\n", lambda program: own)
    assert need is not None and need.version == (3, 11), need
    assert "requires Python >=3.11" in need.why, need
    sdk = needed("import json\n", lambda program: third_party)
    assert sdk is not None and sdk.version == (3, 10), sdk
    stdlib = needed("import json\n", lambda program: "ModuleNotFoundError: No module named 'json'")
    assert stdlib is not None and "failed it: ModuleNotFoundError" in stdlib.why, stdlib


def test_page_stating_less_than_needed_fails() -> None:
    need = Need((3, 10), "Python 3.9 failed it: TypeError")
    problem = page_problem("3.9", need, "## Send\n\nThis needs Python 3.9 or later.\n")
    assert problem is not None
    assert "the page says Python 3.9, but the example needs Python 3.10" in problem
    said = page_problem("3.10", need, "## Send\n\nNeeds Python 3.10; tried on Python 3.8.\n")
    assert said is not None and "says Python 3.8" in said
    assert page_problem("3.10", need, "## Send\n\nThis needs Python 3.10 or later.\n") is None


def test_page_without_the_minimum_fails() -> None:
    problem = page_problem("3.10", None, "## Send\n\nNeeds a recent Python.\n")
    assert problem is not None and "does not state the Python it needs" in problem


def test_gate_fails_an_example_newer_than_the_stated_minimum() -> None:
    from .conftest import run_pytest

    site = FIXTURES / "guide-mistakes"
    result = run_pytest(["docs/python-minimum.md", "-q", "-p", "no:randomly"], cwd=site)
    line = line_containing(site / "docs" / "python-minimum.md", "```python")
    assert result.returncode == 1, result.stdout[-2000:]
    expected = (
        f"docs/python-minimum.md:{line}: python block (python): the page says Python 3.10, "
        "but the example needs Python 3.11 (vermin 3.11)"
    )
    assert expected in result.stdout, result.stdout[-2000:]


def test_ruff_findings_fail_the_block_at_their_line() -> None:
    from betrace_dist.gate.checkers import CheckFailure
    from betrace_dist.gate.checkers.python import _lint

    with pytest.raises(CheckFailure) as failed:
        _lint("x = 1\nimport os\n")
    assert failed.value.body_line == 2
    assert failed.value.reason.startswith("ruff: E402 Module level import not at top of file")
    assert "(and 1 more)" in failed.value.reason  # F401: `os` unused


def test_ruff_out_of_its_memory_fails_the_block_never_passes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ruff reads the page's code with the gate's rights, so within tools.CHECK_MEMORY (as
    pytest-examples' own ruff call is not): one that could not run fails the block."""
    from betrace_dist.gate.checkers import CheckFailure
    from betrace_dist.gate.checkers.python import _lint

    _lint("x = 1\n")  # clean code passes with the normal bound
    monkeypatch.setattr(tools, "CHECK_MEMORY", 2 * 1024 * 1024)
    with pytest.raises(CheckFailure, match=r"^ruff could not check this block \(exit "):
        _lint("x = 1\n")


def test_a_novermin_comment_on_the_page_does_not_lower_the_minimum() -> None:
    """vermin skips a line marked `# novermin` unless told not to read such comments: a page
    could then state 3.10 for `import tomllib` (3.11) where no older Python is installed."""
    found = python_minimum.vermin_minimum("import tomllib  # novermin\n")
    assert found == (3, 11), found


def test_a_pages_tests_get_the_projects_own_fixtures() -> None:
    """The fixtures pyrun gives a page's tests are the project's (tests/conftest.py), beside
    pytest's tmp_path: a page's test is written as the project's tests are."""
    import ast

    from betrace_dist import REPO_ROOT
    from betrace_dist.gate import pyrun

    conftest = ast.parse((REPO_ROOT / "tests" / "conftest.py").read_text(encoding="utf-8"))
    defined = {n.name for n in conftest.body if isinstance(n, ast.FunctionDef)}
    assert set(pyrun.FIXTURES) - {"tmp_path"} <= defined
