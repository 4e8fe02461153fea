"""BeTrace Distribution: release data, site rendering and the doc-correctness gate."""

from pathlib import Path

#: Root of the repository (the folder that holds mkdocs.yml and releases.yaml).
REPO_ROOT = Path(__file__).resolve().parents[2]
#: The folder this package is imported from (`src/`): the page jail shows it read-only, so the
#: gate's own helpers (the Python block runner) run from it, whatever the install.
GATE_SOURCE = Path(__file__).resolve().parents[1]
