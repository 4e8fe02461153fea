"""Fixtures of the Grafana app's tests: the patched tree, the real backend, the Node tools.

The patched tree is a fresh unpack of upstream's snapshot with the project's patch series applied
(betrace_dist.plugin_build), in a temporary folder per session: nothing of upstream is written
into the project. Node is Debian's (`/usr/bin/node`); esbuild, Effect, React 19 and jsdom come
from the npm registry at the versions of this folder's package-lock.json (`make tools` installs
them with `npm ci`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from betrace_dist import plugin_build

from ..conftest import require_tool, skip_or_fail

HERE = Path(__file__).parent
NODE_MODULES = HERE / "node_modules"


def unpack_with(dest: Path, patches: list[Path]) -> Path:
    """A fresh unpack of the snapshot in dest with the given patches applied; the tree's root."""
    tarball = plugin_build.snapshot_tarball()
    if not tarball.is_file():
        skip_or_fail(f"upstream's snapshot is not beside the checkout (looked for {tarball})")
    tree = plugin_build.unpack(tarball, dest)
    plugin_build.apply_series(tree, patches)
    return tree


@pytest.fixture(scope="session")
def patched_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpack_with(tmp_path_factory.mktemp("patched"), plugin_build.series())


@pytest.fixture(scope="session")
def node() -> str:
    path = require_tool("node")
    if not (NODE_MODULES / "esbuild").is_dir():
        skip_or_fail("tests/plugin/node_modules is missing: run `make tools` (npm ci there)")
    return path
