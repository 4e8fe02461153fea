"""Symbolic links that leave the repository: refused before any page is rendered.

Pages include files (pymdownx.snippets, Jinja's `include`), and both follow links. A link
committed in a pull request (`docs/assets/x.txt -> /etc/...` or `-> ~/.ssh/...`) would pull a
file of the machine that builds the site into a page: into the gate's output and the published
site. So the site refuses to build, and the gate to start, while any link under the site's root
or the repository resolves outside it.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Tool state and build output: not the reader's clone, never included by a page.
_SKIP = {".git", ".tools", "site", "build", "node_modules", "__pycache__", ".hypothesis"}
_SKIP |= {".mypy_cache", ".ruff_cache", ".pytest_cache"}


def links_leaving(root: Path) -> list[str]:
    """`path -> target` for every symbolic link under root that resolves outside it."""
    root = root.resolve()
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIP and not d.startswith(".venv")]
        for name in (*dirs, *files):
            path = Path(folder, name)
            if not path.is_symlink():
                continue
            target = path.resolve()
            if target != root and root not in target.parents:
                found.append(f"{path.relative_to(root)} -> {path.readlink()}")
    return sorted(found)
