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
def needed_python() -> str:
    """The oldest Python the project runs on: pyproject.toml's requires-python (">=3.11")."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    found = re.fullmatch(r">=\s*(\d+\.\d+)", project["project"]["requires-python"].strip())
    if found is None:
        raise ValueError("pyproject.toml: requires-python is not of the form >=X.Y")
    return found[1]
