"""BeTrace Distribution: release data, site rendering and the doc-correctness gate."""

from pathlib import Path

#: Root of the repository (the folder that holds mkdocs.yml and releases.yaml).
REPO_ROOT = Path(__file__).resolve().parents[2]
