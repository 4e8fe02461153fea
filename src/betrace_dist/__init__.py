"""BeTrace Distribution: release data, site rendering and the doc-correctness gate."""

import re
import tomllib
from functools import cache
from pathlib import Path

#: Root of the repository (the folder that holds mkdocs.yml and releases.yaml).
REPO_ROOT = Path(__file__).resolve().parents[2]
#: The folder this package is imported from (`src/`): the page jail shows it read-only, so the
#: gate's own helpers (the Python block runner) run from it, whatever the install.
GATE_SOURCE = Path(__file__).resolve().parents[1]


@cache
def project_table() -> dict[str, object]:
    """pyproject.toml's [project] table, read once (where the project's files are: not in a
    probe's jail, which shows src/ only)."""
    text = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    table: dict[str, object] = tomllib.loads(text)["project"]
    return table


@cache
def needed_python() -> str:
    """The oldest Python the project runs on: pyproject.toml's requires-python (">=3.11")."""
    found = re.fullmatch(r">=\s*(\d+\.\d+)", str(project_table()["requires-python"]).strip())
    if found is None:
        raise ValueError("pyproject.toml: requires-python is not of the form >=X.Y")
    return found[1]
