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
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import REPO_ROOT, upstream
from .tools import ToolMissing

PATCH_DIR = REPO_ROOT / "patches" / "grafana-betrace-app"
APP_DIR = "grafana-betrace-app"
CACHE_ENV = "BETRACE_PLUGIN_CACHE"
#: DEP-3 fields every patch header must carry (Evidence is this project's addition).
HEADER_FIELDS = ("Description", "Author", "Forwarded", "Last-Update", "Evidence")
PATCH_NAME = re.compile(r"^(\d{4})-[a-z0-9][a-z0-9-]*\.patch$")
#: Lock entries moved from a git URL to the npm registry: package -> (version, integrity).
REGISTRY_PINS = {
    "react-data-grid": (
        "7.0.0-beta.56",
        "sha512-sET7KFAP2oMz3LlXXg4J6fb3EzHKIckVaXuV+uyx5JRHjPoEDaAc4yrDc6usVeCi//QSZvUX85S0AS/E3uiaMw==",
    ),
}
NPM_TIMEOUT = 3600


class PatchError(Exception):
    """A patch of the series is malformed or does not apply: named by file and line."""


@dataclass(frozen=True)
class Header:
    path: Path
    fields: dict[str, str]
    lines: dict[str, int]


def series(patch_dir: Path = PATCH_DIR) -> list[Path]:
    """The patches in order; a file that is not named NNNN-name.patch, or a gap, is an error."""
    found = sorted(p for p in patch_dir.iterdir() if p.suffix == ".patch")
    for index, path in enumerate(found, start=1):
        match = PATCH_NAME.match(path.name)
        if not match:
            raise PatchError(f"{path}:1: name must be NNNN-lowercase-words.patch")
        if int(match.group(1)) != index:
            raise PatchError(f"{path}:1: expected number {index:04d} (the series has a gap)")
    if not found:
        raise PatchError(f"{patch_dir}: no patch in the series")
    return found


def read_header(path: Path) -> Header:
    """The DEP-3 header: `Field: value` lines (continuations indented) before `---`."""
    fields: dict[str, str] = {}
    lines: dict[str, int] = {}
    current = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith(("---", "diff --git")):
            break
        if line.startswith(" ") and current:
            fields[current] += "\n" + line.strip()
            continue
        name, sep, value = line.partition(":")
        if sep and re.fullmatch(r"[A-Za-z][A-Za-z-]*", name):
            current = name
            fields[name] = value.strip()
            lines[name] = number
    return Header(path, fields, lines)


def header_problems(path: Path) -> list[str]:
    """Every missing or empty header field and malformed value, as `file:line: reason`."""
    header = read_header(path)
    problems = []
    for name in HEADER_FIELDS:
        if not header.fields.get(name, "").strip():
            problems.append(f"{path}:1: header field {name} is missing or empty")
    date = header.fields.get("Last-Update", "")
    if date and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        problems.append(f"{path}:{header.lines['Last-Update']}: Last-Update must be YYYY-MM-DD")
    forwarded = header.fields.get("Forwarded", "")
    if forwarded and not re.match(r"(no|not-needed|yes|https?://)", forwarded):
        problems.append(f"{path}:{header.lines['Forwarded']}: Forwarded must be no, yes or a URL")
    return problems


def release_problems(recorded: list[tuple[str, str]], patches: list[Path]) -> list[str]:
    """The release data's patch list ((file, forwarded) pairs, releases.yaml
    releases[0].plugin.patches) against the series on disk and each patch's Forwarded field."""
    files = [str(p.relative_to(REPO_ROOT)) if p.is_absolute() else str(p) for p in patches]
    listed = [file for file, _ in recorded]
    problems = []
    if listed != files:
        problems.append(f"releases.yaml plugin.patches lists {listed}; the series is {files}")
    for (file, forwarded), path in zip(recorded, patches, strict=False):
        header = read_header(path).fields.get("Forwarded", "")
        if not header.startswith(forwarded):
            problems.append(
                f"releases.yaml plugin.patches {file}: forwarded is {forwarded!r}, "
                f"the patch says {header!r}"
            )
    return problems


def snapshot_tarball() -> Path:
    """Where the snapshot's tarball is (it may be absent: callers say so)."""
    return upstream.snapshot_dir() / "source.tar.gz"


def unpack(tarball: Path, dest: Path) -> Path:
    """Unpack the snapshot into dest and return the tree's root (the archive's one top folder)."""
    with tarfile.open(tarball) as archive:
        archive.extractall(dest, filter="data")
    (root,) = [p for p in dest.iterdir() if p.is_dir()]
    return root


def apply_series(tree: Path, patches: list[Path]) -> None:
    """`git apply` each patch in order from the tree's root; the first failure is an error."""
    # Inside another git work tree (a cache folder of this checkout), `git apply` would take
    # paths from that repository's root and silently skip every file of the tree: keep git from
    # looking above the tree, and count what it applied.
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(tree.parent)}
    for path in patches:
        problems = header_problems(path)
        if problems:
            raise PatchError("\n".join(problems))
        done = subprocess.run(
            ["git", "apply", "--verbose", str(path)],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise PatchError(f"{path}:1: does not apply to {tree.name}:\n{done.stderr.strip()}")
        files = path.read_text(encoding="utf-8").count("\ndiff --git ")
        applied = done.stderr.count("Applied patch ")
        if applied != files or "Skipped patch" in done.stderr:
            raise PatchError(
                f"{path}:1: git applied {applied} of its {files} files to {tree}:\n"
                + done.stderr.strip()
            )


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
    digest = hashlib.sha256()
    digest.update(tarball.read_bytes())
    for path in patches:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(json.dumps(REGISTRY_PINS, sort_keys=True).encode())
    return digest.hexdigest()[:16]


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
            ["nice", "-n", "10", *cmd], cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
            timeout=NPM_TIMEOUT, check=False,
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
        npm = ["npm", "--no-audit", "--no-fund", "--loglevel=error"]
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
