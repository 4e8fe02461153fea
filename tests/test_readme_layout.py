"""README.md's layout table says where things live: every path it names exists, every module it
names stands in its row's folder, every top-level folder of the repository has a row, and the
`macros/` row names each hook the entry point defines (one of them installs the page sandbox).
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

from betrace_dist import REPO_ROOT

HEADER = "| Path | What lives there |"
_CODE = re.compile(r"`([^`]+)`")


def rows(text: str) -> list[tuple[int, list[str], str]]:
    """(line, paths, description) of each row of the layout table."""
    lines = text.splitlines()
    start = lines.index(HEADER) + 2
    out = []
    for number, line in enumerate(lines[start:], start + 1):
        if not line.startswith("|"):
            break
        path_cell, description = (cell.strip() for cell in line.strip("|").split("|", 1))
        out.append((number, _CODE.findall(path_cell), description))
    return out


def top_level_folders(root: Path) -> set[str]:
    files = subprocess.run(
        ["git", "-C", str(root), "ls-files"], capture_output=True, text=True, check=True
    ).stdout.split()
    return {f.split("/", 1)[0] for f in files if "/" in f}


def macros_hooks(root: Path) -> list[str]:
    module = ast.parse((root / "macros" / "__init__.py").read_text(encoding="utf-8"))
    return [n.name for n in module.body if isinstance(n, ast.FunctionDef)]


def problems(text: str, root: Path) -> list[str]:
    found = []
    named: set[str] = set()
    for line, paths, description in rows(text):
        for path in paths:
            named.add(path.rstrip("/").split("/", 1)[0])
            if not (root / path).exists():
                found.append(f"README.md:{line}: '{path}' does not exist")
        folder = paths[0] if len(paths) == 1 and paths[0].endswith("/") else None
        for name in _CODE.findall(description):
            if folder and name.endswith(".py") and not (root / folder / name).is_file():
                found.append(f"README.md:{line}: '{name}' is not in {folder}")
        if paths == ["macros/"]:
            for hook in macros_hooks(root):
                if f"`{hook}`" not in description:
                    found.append(f"README.md:{line}: the macros/ row does not name `{hook}`")
    for folder in sorted(top_level_folders(root) - named):
        found.append(f"README.md: the layout table has no row for {folder}/")
    return found


def test_the_layout_table_is_true() -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert problems(text, REPO_ROOT) == []


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def test_a_row_that_hides_a_hook_fails_at_its_line() -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `macros/` |"))
    broken = text.replace(row, "| `macros/` | mkdocs-macros entry point (`define_env` only) |")
    line = _line_of(broken, "| `macros/` |")
    assert problems(broken, REPO_ROOT) == [
        f"README.md:{line}: the macros/ row does not name `on_pre_page_macros`"
    ]


def test_a_module_in_the_wrong_folder_fails_at_its_line() -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    row = next(
        line for line in text.splitlines() if line.startswith("| `src/betrace_dist/artefacts/`")
    )
    broken = text.replace(row, row[:-2] + "; `bump.py` moves a release |")
    line = _line_of(broken, "| `src/betrace_dist/artefacts/`")
    assert f"README.md:{line}: 'bump.py' is not in src/betrace_dist/artefacts/" in problems(
        broken, REPO_ROOT
    )


def test_a_missing_path_and_a_folder_without_a_row_fail() -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    broken = text.replace("| `patches/` |", "| `patch/` |")
    line = _line_of(broken, "| `patch/` |")
    found = problems(broken, REPO_ROOT)
    assert f"README.md:{line}: 'patch/' does not exist" in found
    assert "README.md: the layout table has no row for patches/" in found


def test_the_readme_names_the_python_the_project_needs() -> None:
    """README.md is no page the macros fill: its "Python X.Y+" is held to pyproject.toml's
    requires-python here (a review found it typed by hand beside the pages' macro)."""
    from betrace_dist import needed_python

    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"\bPython (\d+\.\d+)\+", text))
    assert named == {needed_python()}, named
