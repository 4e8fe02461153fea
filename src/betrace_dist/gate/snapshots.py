"""States of a page's sandbox that content tabs go back to, copying only what changed.

Tabs of one group are alternatives: each runs from the state the page had before the group (see
`Session.enter`). Copying the whole sandbox for every state, and copying it back for every tab,
made content tabs the gate's largest file cost; and 20 groups over one large file kept 20
copies of it. Here a state is a *manifest*: every path of the sandbox with its type, mode and
status signature (size, mtime, ctime, inode) and, for a file, where its content is kept. Content
is kept once, in the page's store, and only when it changed since the last recorded state; the
files of the reader's clone as laid out keep theirs in the run's pristine copy (never written by a
page: it lies outside the page's writable directory). Going back to a state removes what was
made since, and copies back only the files whose signature differs.

Deciding "unchanged" from a signature is sound because a page cannot set a file's ctime (only the
kernel does, to the current time, on every write, chmod or rename), with one exception handled as
git handles its index: a file changed within the same clock tick as the recording could change
again without its ctime moving, so such a file is marked *racy* and is never trusted unchanged.
The clock is read from a marker file written just before the recording, on the same filesystem.

Disk use is bounded: a page's store may hold at most SNAPSHOT_LIMIT bytes; past it, the block
that needs one more state fails with the sizes.
"""

from __future__ import annotations

import itertools
import os
import shutil
import stat
from dataclasses import dataclass, replace
from pathlib import Path

from . import result_cache
from .failure import CheckFailure

#: Bytes of file copies one page's content-tab states may keep (shared between its states).
SNAPSHOT_LIMIT = 1024 * 1024 * 1024


class SnapshotLimitError(CheckFailure):
    """Keeping one more state of the page would pass SNAPSHOT_LIMIT."""


@dataclass(frozen=True)
class Entry:
    """One path of the sandbox as recorded."""

    kind: str  # "d" directory, "f" regular file, "l" symbolic link, "o" other (not kept)
    mode: int  # permission bits
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    link: str = ""  # a symbolic link's target
    stored: str = ""  # where a file's content is kept ("": not kept yet)
    racy: bool = False  # changed in the clock tick of the recording: never trusted unchanged

    def same(self, now: Entry) -> bool:
        """True when the path still holds what was recorded (its content included)."""
        return not self.racy and (
            self.kind,
            self.mode,
            self.size,
            self.mtime_ns,
            self.ctime_ns,
            self.ino,
            self.link,
        ) == (now.kind, now.mode, now.size, now.mtime_ns, now.ctime_ns, now.ino, now.link)


#: A state of the sandbox: relative POSIX path -> entry.
Manifest = dict[str, Entry]


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "d"
    if stat.S_ISREG(mode):
        return "f"
    return "l" if stat.S_ISLNK(mode) else "o"


def scan(root: Path, clock_ns: int | None = None) -> Manifest:
    """Every path under root (links not followed); with `clock_ns`, entries changed at or after
    that time are marked racy."""
    out: Manifest = {}
    pending = [""]
    while pending:
        rel = pending.pop()
        with os.scandir(root / rel if rel else root) as entries:
            for found in entries:
                path = f"{rel}/{found.name}" if rel else found.name
                st = found.stat(follow_symlinks=False)
                kind = _kind(st.st_mode)
                out[path] = Entry(
                    kind,
                    stat.S_IMODE(st.st_mode),
                    st.st_size,
                    st.st_mtime_ns,
                    st.st_ctime_ns,
                    st.st_ino,
                    str(Path(found.path).readlink()) if kind == "l" else "",
                    racy=clock_ns is not None and st.st_ctime_ns >= clock_ns,
                )
                if kind == "d":
                    pending.append(path)
    return out


def _under(path: str, removed: set[str]) -> bool:
    parts = path.split("/")
    return any("/".join(parts[:n]) in removed for n in range(1, len(parts)))


def _remove(path: Path, kind: str) -> None:
    if kind == "d":
        shutil.rmtree(path)
    else:
        path.unlink()


class Snapshots:
    """The recorded states of one sandbox and the store that keeps their files' content."""

    def __init__(
        self, root: Path, pristine: dict[str, Path], store: Path, limit: int | None = None
    ) -> None:
        """Record the sandbox as laid out: files under `pristine`'s keys (top-level folders of
        the sandbox) keep their content in the folder each maps to, a copy no page can write.
        The states' files go to `store`, made here: a folder of the sandbox's gate side, so it
        goes with the sandbox, also when a killed gate leaves it to the next run's sweep."""
        self.root = root
        self.limit = SNAPSHOT_LIMIT if limit is None else limit
        store.mkdir(mode=0o700)
        self.store = store.resolve()
        self.used = 0  # bytes of content in the store
        self._names = itertools.count()
        known = scan(root, self._clock())
        for path, entry in known.items():
            top, _, rest = path.partition("/")
            if entry.kind == "f" and rest and top in pristine:
                known[path] = replace(entry, stored=str(pristine[top] / rest))
        self.known = known  # the sandbox as last recorded or restored

    def _clock(self) -> int:
        """The filesystem's current time: the ctime a write made now receives."""
        fd = os.open(self.store / "clock", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"t")
            return os.fstat(fd).st_ctime_ns
        finally:
            os.close(fd)

    def take(self) -> Manifest:
        """The sandbox's state now; the content of files changed since the last state is kept."""
        state = scan(self.root, self._clock())
        for path, entry in state.items():
            if entry.kind != "f":
                continue
            before = self.known.get(path)
            if before is not None and before.stored and before.same(entry):
                state[path] = replace(entry, stored=before.stored)
            else:
                state[path] = replace(entry, stored=self._keep(path, entry.size))
        self.known = state
        return state

    def _keep(self, path: str, size: int) -> str:
        if self.used + size > self.limit:
            mib = 1024 * 1024
            raise SnapshotLimitError(
                f"content tabs: keeping the page's state before a tab group needs "
                f"{(self.used + size) / mib:.1f} MiB of copies of files the page changed (the "
                f"last: '{path}', {size / mib:.1f} MiB), over the limit of {self.limit // mib} "
                "MiB a page may keep; make large files before the tabs smaller, or not needed"
            )
        target = self.store / str(next(self._names))
        result_cache.copy_unread(self.root / path, target)  # keeping is not the page reading
        self.used += target.stat().st_size
        return str(target)

    def restore(self, state: Manifest) -> None:
        """Put the sandbox back in `state`: remove what it did not hold, copy back what changed."""
        now = scan(self.root)
        removed: set[str] = set()
        for path in sorted(now):
            have, want = now[path], state.get(path)
            if _under(path, removed):
                continue
            if want is None or want.kind != have.kind or want.link != have.link:
                _remove(self.root / path, have.kind)
                removed.add(path)
        for path, want in sorted(state.items()):
            current = None if path in removed or _under(path, removed) else now.get(path)
            self._put(path, want, current)
        known = scan(self.root, self._clock())
        for path, entry in known.items():
            if entry.kind == "f":  # every file now holds the content its state kept
                known[path] = replace(entry, stored=state[path].stored)
        self.known = known

    def _put(self, path: str, want: Entry, have: Entry | None) -> None:
        target = self.root / path
        if want.kind == "d":
            if have is None:
                target.mkdir(mode=want.mode)
            if have is None or have.mode != want.mode:
                target.chmod(want.mode)
        elif want.kind == "l" and have is None:
            target.symlink_to(want.link)
        elif want.kind == "f" and not (have is not None and want.same(have)):
            if have is not None:
                target.unlink()
            result_cache.copy_unread(Path(want.stored), target)
            target.chmod(want.mode)
            os.utime(target, ns=(0, want.mtime_ns), follow_symlinks=False)  # and unread

    def close(self) -> None:
        shutil.rmtree(self.store, ignore_errors=True)
