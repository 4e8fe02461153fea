"""The Grafana app as the distribution ships it: upstream's snapshot plus the patch series.

`patches/grafana-betrace-app/NNNN-*.patch` is applied in order with `git apply` from the root of a
fresh unpack of the snapshot (betrace_dist.upstream: `../shared/upstream/betrace-<commit>/
source.tar.gz`, or the folder in BETRACE_UPSTREAM_DIR; a build checks its sha256 against
releases.yaml first). Each patch starts with a header in the DEP-3 manner (HEADER_FIELDS).

`python -m betrace_dist.plugin_build build` (what `make plugin` runs) then builds the app with
Debian's Node and npm: `npm ci` and `npm run build` (webpack), both under `nice -n 10`. Upstream's
lock file takes one package, react-data-grid (a dependency of @grafana/ui), from a GitHub git URL,
which a build with only the npm registry cannot fetch: the build rewrites that one lock entry to
the same version from the npm registry (REGISTRY_PINS). The registry tarball is not byte-identical
to Grafana's fork at that commit (its integrity differs), which is why the build says so and the
patch series does not carry it: it is a build-environment choice, not a fix for upstream.

The output goes to `.cache/plugin-build/<key>/dist`, where the key is a sha256 over the snapshot,
every patch and the pins: a second run with the same inputs reuses it (`--force` rebuilds).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from . import REPO_ROOT, patch_series, tools, upstream
from .patch_series import PatchError, apply_series
from .tools import ToolMissing

PATCH_DIR = REPO_ROOT / "patches" / "grafana-betrace-app"
APP_DIR = "grafana-betrace-app"
CACHE_ENV = "BETRACE_PLUGIN_CACHE"
#: Lock entries moved from a git URL to the npm registry: package -> (version, integrity).
REGISTRY_PINS = {
    "react-data-grid": (
        "7.0.0-beta.56",
        "sha512-sET7KFAP2oMz3LlXXg4J6fb3EzHKIckVaXuV+uyx5JRHjPoEDaAc4yrDc6usVeCi//QSZvUX85S0AS/E3uiaMw==",
    ),
}
NPM_TIMEOUT = 3600


def series(patch_dir: Path = PATCH_DIR) -> list[Path]:
    """The app's patches in order (patch_series.series)."""
    return patch_series.series(patch_dir)


def release_problems(recorded: list[tuple[str, str]], patches: list[Path]) -> list[str]:
    """The release data's app series (releases[0].plugin.patches) against the files."""
    return patch_series.release_problems(recorded, patches, "plugin.patches")


def snapshot_tarball() -> Path:
    """Where the snapshot's tarball is (it may be absent: callers say so)."""
    return upstream.snapshot_dir() / "source.tar.gz"


#: the app's manifest inside upstream's tree
MANIFEST = f"{APP_DIR}/src/plugin.json"


@functools.cache
def patched_manifest() -> dict[str, object]:
    """The app's plugin.json as the distribution ships it: upstream's (kept beside the snapshot,
    ../shared/upstream) with the series' changes to that one file (`git apply --include`), so
    its `routes` are the ones patch 0002 adds, read from the patch rather than typed again."""
    source = upstream.snapshot_dir() / "plugin.json"
    if not source.is_file():  # the missing-tool rule: a skip locally, a failure in CI
        raise ToolMissing(f"{upstream.SNAPSHOT_HINT} (looked for {source})")
    with tempfile.TemporaryDirectory(prefix="plugin-manifest-") as work:
        tree = Path(work) / "tree"
        target = tree / MANIFEST
        target.parent.mkdir(parents=True)
        shutil.copyfile(source, target)
        env = {**os.environ, "GIT_CEILING_DIRECTORIES": work}
        for patch in series():
            done = subprocess.run(
                ["git", "apply", f"--include={MANIFEST}", str(patch)],
                cwd=tree, env=env, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                raise PatchError(f"{patch}:1: does not apply to {MANIFEST}: {done.stderr.strip()}")
        manifest = json.loads(target.read_text(encoding="utf-8"))
    if not isinstance(manifest, dict):
        raise PatchError(f"{MANIFEST}: not a JSON object after the series")
    return manifest


def unpack(tarball: Path, dest: Path) -> Path:
    """Unpack the snapshot into dest and return the tree's root (the archive's one top folder)."""
    with tarfile.open(tarball) as archive:
        archive.extractall(dest, filter="data")
    (root,) = [p for p in dest.iterdir() if p.is_dir()]
    return root


def pin_registry_dependencies(lock_path: Path) -> list[str]:
    """Point REGISTRY_PINS' git entries of package-lock.json at the npm registry; say which."""
    lock = json.loads(lock_path.read_text(encoding="utf-8"))
    changed = []
    for name, (version, integrity) in REGISTRY_PINS.items():
        entry = lock["packages"][f"node_modules/{name}"]
        if entry["version"] != version:
            raise PatchError(f"{lock_path}: {name} is {entry['version']}, the pin is {version}")
        entry["resolved"] = f"https://registry.npmjs.org/{name}/-/{name}-{version}.tgz"
        entry["integrity"] = integrity
        for package in lock["packages"].values():
            deps = package.get("dependencies", {})
            if str(deps.get(name, "")).startswith(("github:", "git+")):
                deps[name] = version
        changed.append(f"{name}@{version}")
    lock_path.write_text(json.dumps(lock, indent=2) + "\n", encoding="utf-8")
    return changed


def cache_key(tarball: Path, patches: list[Path]) -> str:
    """The build's inputs: the snapshot, the series and the registry pins."""
    pins = json.dumps(REGISTRY_PINS, sort_keys=True).encode()
    return patch_series.digest(patches, tarball.read_bytes(), pins)[:16]


def cache_root() -> Path:
    override = os.environ.get(CACHE_ENV)
    return Path(override) if override else REPO_ROOT / ".cache" / "plugin-build"


def built_dist() -> Path:
    """Where the build of the current snapshot and series is (or would be)."""
    return cache_root() / cache_key(snapshot_tarball(), series()) / "dist"


def _timed(cmd: list[str], cwd: Path, log: Path) -> float:
    start = time.monotonic()
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        done = subprocess.run(
            [tools.require("nice"), "-n", "10", *cmd], cwd=cwd, stdout=out,
            stderr=subprocess.STDOUT, timeout=NPM_TIMEOUT, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise PatchError(f"{' '.join(cmd)} failed with {done.returncode}: see {log}")
    return round(time.monotonic() - start, 1)


def build(force: bool = False) -> Path:
    """Build the patched app once per key; return its dist folder."""
    tarball, _ = upstream.verified_tarball()
    patches = series()
    target = cache_root() / cache_key(tarball, patches)
    if (target / "dist" / "module.js").is_file() and not force:
        print(f"patched app already built: {target / 'dist'} (--force rebuilds)")
        return target / "dist"
    target.mkdir(parents=True, exist_ok=True)
    log = target / "build.log"
    log.write_text("", encoding="utf-8")
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        tree = unpack(tarball, Path(tmp))
        apply_series(tree, patches)
        app = tree / APP_DIR
        pinned = pin_registry_dependencies(app / "package-lock.json")
        print(f"lock entries moved to the npm registry: {', '.join(pinned)}")
        npm = [tools.require("npm"), "--no-audit", "--no-fund", "--loglevel=error"]
        times = {"npm_ci_s": _timed([*npm, "ci"], app, log)}
        times["webpack_s"] = _timed([*npm, "run", "build"], app, log)
        shutil.rmtree(target / "dist", ignore_errors=True)
        shutil.move(str(app / "dist"), target / "dist")
    times["patches"] = [p.name for p in patches]  # type: ignore[assignment]
    (target / "build-times.json").write_text(json.dumps(times, indent=2) + "\n", encoding="utf-8")
    print(f"built {target / 'dist'}: {times}")
    return target / "dist"


def check() -> int:
    """Apply the series to a fresh unpack in a temporary folder; print each problem."""
    try:
        patches = series()
        with tempfile.TemporaryDirectory() as tmp:
            apply_series(unpack(snapshot_tarball(), Path(tmp)), patches)
    except PatchError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{len(patches)} patches apply to {snapshot_tarball()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m betrace_dist.plugin_build")
    parser.add_argument("command", choices=["build", "check", "where"])
    parser.add_argument("--force", action="store_true", help="rebuild even if the key is built")
    args = parser.parse_args(argv)
    if args.command == "check":
        return check()
    if args.command == "where":
        print(built_dist())
        return 0
    try:
        build(force=args.force)
    except (PatchError, upstream.UpstreamError, ToolMissing) as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
