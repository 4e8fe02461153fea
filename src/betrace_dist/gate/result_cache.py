"""Warm runs: a page whose every input is unchanged since it last passed is not run again.

A page's blocks share one sandbox, so a block's outcome depends on the blocks before it: the
unit of reuse is the page. Its key has two parts.

The fixed part is a digest of each input the whole page depends on:

- ``page``: the page as readers see it (rendered, macros filled; every block and its order);
- ``release``: the release data and site configuration files the models and macros read, and
  the project's ``pyproject.toml`` (pytest's and ruff's settings: ruff lints Python blocks);
- ``code``: the gate's own code and data (the ``betrace_dist`` package, the conftest that loads
  it, the stand-ins under ``tests/artefacts``) and the versions of every installed package;
- ``tools``: where each program the gate or a page may run resolves (a page's by the jail's
  ``PATH``), with its size, modification time and inode, and ``PATH``;
- ``settings``: the ``BETRACE_*`` environment variables that change what the gate does, and
  the warning filters;
- ``tree``: the names and modes of every file of the reader's clone (where its links point,
  which are gone), so a file added, removed or made executable anywhere, which a listing or a
  glob would see, changes every page.

The second part is the content of each file of the clone that the page's run read. A page's
sandbox is laid out with every file's access time set to zero; the file system then stamps a
file when it is first read (`relatime` always updates a time older than a day), so after the
page, the files with a stamp are the ones it read; a file whose inode or change time moved
counts as read too (`tar --atime-preserve` puts the access time back, which moves the change
time). Where the file system does not update access
times (`noatime`), every file of the clone counts as read: correct, only less reuse.

Only a page whose blocks all ran and passed is stored; a failure, a skip at run time or a run
of part of a page (``-k``, one node id) stores nothing; a page any of whose reports failed, in
any phase (a teardown, an exception in a thread), is forgotten. Limits, said in the
contributing guide: a check that looks only at a file's size or time without reading it
(`wc -c`, `test -s`, `ls -l`), a read with O_NOATIME, or a command that reads the checkout
through its absolute path instead of the sandbox, is not seen.

Entries live in pytest's cache folder (``.pytest_cache/d/betrace-gate``: ``pytest
--cache-clear`` empties it). ``--no-cache`` runs every page; so do CI (the ``CI`` environment
variable), the live tier and ``--update-outputs``, whose point is to run.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

from .. import GATE_SOURCE, REPO_ROOT, tools

#: Bumped when the layout of an entry changes.
FORMAT = 1
#: Programs the gate runs, or a page's commands may run inside the jail, by name.
PROGRAMS = tools.JAIL_PROGRAMS
#: Environment variables that do not change an outcome (where timings go).
UNRELATED_SETTINGS = frozenset({"BETRACE_GATE_PROFILE"})
#: The order in which a changed input is named when a page runs again.
PARTS = ("code", "tools", "settings", "release", "tree", "page")
_WHY = {
    "code": "the gate's code or an installed package changed",
    "tools": "a program the gate runs changed",
    "settings": "a BETRACE_* setting changed",
    "release": "the release data or the site configuration changed",
    "tree": "files of the checkout were added or removed",
    "page": "the page changed",
}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str | None:
    """Digest of a file's content (a link: of where it points), None if it is gone."""
    try:
        if path.is_symlink():
            return digest(b"link:" + str(path.readlink()).encode())
        return digest(path.read_bytes())
    except OSError:
        return None


def _tree_digest(root: Path, suffixes: Iterable[str] = ()) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        if suffixes and path.suffix not in suffixes:
            continue
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update((file_digest(path) or "-").encode() + b"\n")
    return h.hexdigest()


@cache
def code_digest(conftest: Path | None = None) -> str:
    """The gate's own code and data, the conftest that loads it, and every installed package."""
    h = hashlib.sha256(f"{FORMAT} {sys.version}".encode())
    h.update(_tree_digest(GATE_SOURCE / "betrace_dist").encode())
    stand_ins = REPO_ROOT / "tests" / "artefacts"
    if stand_ins.is_dir():
        h.update(_tree_digest(stand_ins).encode())
    if conftest is not None:
        h.update((file_digest(conftest) or "-").encode())
    packages = sorted(
        f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions() if d.metadata
    )
    h.update("\n".join(packages).encode())
    return h.hexdigest()


@cache
def tools_digest(page_path: str = "", page_programs: tuple[str, ...] = ()) -> str:
    """Where each program resolves, with its size, time and inode: the gate's own (by the
    gate's PATH) and those a page's commands run in its jail (by the jail's PATH)."""
    rows = [f"PATH={os.environ.get('PATH', '')}"]
    rows += [_program_row(name, tools.find(name)) for name in PROGRAMS]
    rows += [
        "jail " + _program_row(name, shutil.which(name, path=page_path))
        for name in sorted(page_programs)
    ]
    return digest("\n".join(rows).encode())


def _program_row(name: str, found: str | None) -> str:
    if found is None:
        return f"{name}: missing"
    program = Path(found).resolve()
    info = program.stat()
    return f"{name}: {program} {info.st_size} {info.st_mtime_ns} {info.st_ino}"


def settings_digest(environ: Mapping[str, str], warnings: Iterable[str] = ()) -> str:
    """The BETRACE_* settings, and the warning filters (`-W`, PYTHONWARNINGS): a warning made an
    error fails a block that passed."""
    rows = sorted(
        f"{k}={v}"
        for k, v in environ.items()
        if (k.startswith("BETRACE_") and k not in UNRELATED_SETTINGS) or k == "PYTHONWARNINGS"
    )
    rows += [f"-W {w}" for w in warnings]
    return digest("\n".join(rows).encode())


def files_digest(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(str(path).encode() + b"\0" + (file_digest(path) or "-").encode() + b"\n")
    return h.hexdigest()


def manifest_digest(root: Path, names: Iterable[str]) -> str:
    """The clone's file names, each file's mode (a file made executable, or unreadable,
    changes what a page can do with it), where its links point, and which listed files are
    gone (deleted without `git rm`: git still lists them, a fresh clone's copy lacks them)."""
    h = hashlib.sha256()
    for name in sorted(names):
        path = root / name
        try:
            info = os.lstat(path)
        except OSError:
            h.update(f"{name}\0missing\n".encode())
            continue
        target = str(path.readlink()) if stat.S_ISLNK(info.st_mode) else ""
        h.update(f"{name}\0{info.st_mode:o}\0{target}\n".encode())
    return h.hexdigest()


def signature(info: os.stat_result | None) -> tuple[int, int] | None:
    """A file's inode and change time (from its lstat): any write, rename over it, chmod or
    time reset moves them (a page cannot set a change time). None when it is gone."""
    return None if info is None else (info.st_ino, info.st_ctime_ns)


def _write(path: Path, value: object) -> None:
    """Write the entry whole or not at all (a temporary file renamed over the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(value, out, indent=1, sort_keys=True)
    Path(name).replace(path)


# -- which files a page read ------------------------------------------------------------------


def forget_reads(path: Path) -> None:
    """Clear a file's access time (its modification time kept): its next read stamps it."""
    info = os.lstat(path)
    if stat.S_ISREG(info.st_mode):
        os.utime(path, ns=(0, info.st_mtime_ns), follow_symlinks=False)


def copy_unread(source: Path, target: Path) -> None:
    """Copy a file's content without stamping it as read (O_NOATIME: the gate may, as the
    owner or as root); the copy looks unread too. For the gate's own copies: what they read
    is not the page's doing. The target is replaced if it exists; its mode is the source's."""
    _copy(source, target, keep_time=False)


def copy2_unread(source: str | Path, target: str | Path) -> None:
    """`shutil.copy2` (content, mode, modification time) by `copy_unread`, for copytree."""
    source, target = Path(source), Path(target)
    if target.is_dir():
        target = target / source.name
    _copy(source, target, keep_time=True)


def _copy(source: Path, target: Path, keep_time: bool) -> None:
    """Copy one regular file: a FIFO, device or socket in its place is refused (and opened
    without blocking, so a FIFO never hangs the copy), a link never followed."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
    try:
        src = os.open(source, flags | getattr(os, "O_NOATIME", 0))
    except PermissionError:  # O_NOATIME needs ownership: fall back to a read the stamp sees
        src = os.open(source, flags)
    try:
        info = os.fstat(src)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file: not copied", str(source))
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        dst = os.open(target, flags, stat.S_IMODE(info.st_mode))
        try:
            offset = 0
            while offset < info.st_size:  # in the kernel, as shutil does on Linux
                sent = os.sendfile(dst, src, offset, info.st_size - offset)
                if sent == 0:
                    break
                offset += sent
        finally:
            os.close(dst)
    finally:
        os.close(src)
    mtime = info.st_mtime_ns if keep_time else os.lstat(target).st_mtime_ns
    os.utime(target, ns=(0, mtime), follow_symlinks=False)  # unread: its first read stamps it


def was_read(info: os.stat_result | None) -> bool:
    """True once a file (its lstat) has been read since `forget_reads`; a link, or a file the
    page removed (None: it may have read it first), counts as read."""
    return info is None or not stat.S_ISREG(info.st_mode) or info.st_atime_ns != 0


@cache
def access_times_work(where: str) -> bool:
    """Whether the file system under `where` stamps a file's access time when it is read."""
    fd, name = tempfile.mkstemp(prefix="betrace-atime-", dir=where)
    try:
        os.write(fd, b"probe")
        os.close(fd)
        forget_reads(Path(name))
        Path(name).read_bytes()
        return was_read(os.lstat(name))  # the gate's own file
    finally:
        Path(name).unlink()


# -- entries ----------------------------------------------------------------------------------


@dataclass
class Lookup:
    """The outcome of looking a page up: reusable or not, and why it must run."""

    hit: bool
    why: str


@dataclass
class PageKey:
    page: str  # the page, relative to the site root
    parts: dict[str, str]  # part name -> digest
    #: files of the clone the page read (relative names), filled in when its run ends
    reads: dict[str, str] = field(default_factory=dict)


class ResultCache:
    """Passed pages, one JSON file each, in `directory`; None: nothing is kept or reused."""

    def __init__(self, directory: Path | None, checkout: Path = REPO_ROOT) -> None:
        self.directory = directory
        self.checkout = checkout

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    def _entry(self, page: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{digest(page.encode())[:32]}.json"

    def lookup(self, key: PageKey) -> Lookup:
        if self.directory is None:
            return Lookup(False, "the cache is off")
        try:
            stored = json.loads(self._entry(key.page).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return Lookup(False, "it has not passed since the cache was last cleared")
        if not isinstance(stored, dict) or stored.get("format") != FORMAT:
            return Lookup(False, "the cache entry is from another version of the gate")
        old = stored.get("parts", {})
        for part in PARTS:
            if old.get(part) != key.parts.get(part):
                return Lookup(False, _WHY[part])
        for name, old_digest in sorted(stored.get("reads", {}).items()):
            if file_digest(self.checkout / name) != old_digest:
                return Lookup(False, f"{name}, which it reads, changed")
        return Lookup(True, "unchanged since it last passed")

    def store(self, key: PageKey) -> None:
        if self.directory is not None:
            entry = {"format": FORMAT, "page": key.page, "parts": key.parts, "reads": key.reads}
            _write(self._entry(key.page), entry)

    def keep(self, kind: str, key: str, value: object) -> None:
        """A derived value (what readers are shown of a rendered page), under its input's key."""
        if self.directory is not None:
            _write(self.directory / kind / f"{key}.json", {"format": FORMAT, "value": value})

    def load(self, kind: str, key: str) -> object:
        if self.directory is None:
            return None
        try:
            kept = json.loads((self.directory / kind / f"{key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return (
            kept.get("value") if isinstance(kept, dict) and kept.get("format") == FORMAT else None
        )

    def forget(self, page: str) -> None:
        if self.directory is not None:
            self._entry(page).unlink(missing_ok=True)
