"""A page's sandbox on the machine: the folder its commands may write, and the gate's side of it.

Layout, made fresh for every page:

    betrace-page-PID-XXXX/  the gate's (root, 0700): the page can neither rename nor replace it;
                            PID is the gate process's, so a later run removes what a killed
                            run left (`sweep_stale`)
      page/                 the page's writable folder, the only one its jail binds writable: a
                            RAM-backed file system of SANDBOX_SIZE bytes where the gate may mount
                            one (then its disk use is bounded and unmounting removes it all)
      gate/                 the gate's own files (live-tier logs, content tabs' states): never
                            visible to the page

The gate reaches into page/ only through `safefs.Tree` (descriptors, nothing followed out of the
sandbox, no FIFO or device opened, reads bounded), or by running the work inside the jail as
the page's user. Removal never follows a link, opens up what the page locked and fails loudly
rather than leave anything behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import subprocess
import tempfile
import time
from functools import cache
from pathlib import Path

from .. import tools
from . import safefs
from .isolation import PAGE_UID, Jail, process_running

#: Bytes a page's sandbox may hold in all (RAM-backed: only what the page writes is used).
SANDBOX_SIZE = 1024 * 1024 * 1024
#: Files and folders a page's sandbox may hold in all.
SANDBOX_INODES = 100_000
#: The program that mounts the sandbox's file system (found once, on the gate's own PATH).
_MOUNT, _UMOUNT = tools.find("mount"), tools.find("umount")


def _gate_env() -> dict[str, str]:
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def _mount_tmpfs(where: Path) -> bool:
    """Mount a size-limited tmpfs on `where` (root only; False where the machine refuses)."""
    if os.geteuid() != 0 or not _MOUNT or os.environ.get("BETRACE_SANDBOX_TMPFS") == "0":
        return False
    options = f"size={SANDBOX_SIZE},nr_inodes={SANDBOX_INODES},mode=0755,nosuid,nodev"
    done = subprocess.run(
        [_MOUNT, "-t", "tmpfs", "-o", options, "betrace-page", str(where)],
        env=_gate_env(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.returncode == 0


#: A sandbox's folder names the gate process that made it: betrace-page-<PID>-<random>.
_STALE = re.compile(r"betrace-page-(\d+)-[\w]+")


def _unescaped(field: str) -> str:
    """A path as /proc/self/mountinfo shows it: space, tab, newline and backslash as octal."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def _stale_mounts() -> list[Path]:
    """The sandbox file systems of gate processes that no longer run, wherever their temporary
    folder was: each is a tmpfs named `betrace-page` on a `betrace-page-<PID>-*/page` folder
    of this user. Read from the kernel's mount table, not from a folder listing, because a run
    with another TMPDIR (a test's own, say) is swept by no later run in that folder; and a
    mount left there makes every removal of the folder above it fail (EBUSY)."""
    try:
        table = Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    stale = []
    for line in table.splitlines():
        mine, _, theirs = line.partition(" - ")
        fields, kind = mine.split(" "), theirs.split(" ")
        if len(fields) < 5 or kind[:2] != ["tmpfs", "betrace-page"]:
            continue
        page = Path(_unescaped(fields[4]))
        found = _STALE.fullmatch(page.parent.name)
        if page.name != "page" or not found or process_running(int(found[1])):
            continue
        with contextlib.suppress(OSError):
            if page.parent.lstat().st_uid == os.geteuid():
                stale.append(page)
    return stale


@cache
def sweep_stale() -> tuple[Path, ...]:
    """Remove the sandboxes of gate processes that no longer run (a run killed before its pages
    closed left them, their RAM-backed folders still mounted): once per process, before its
    first sandbox. Their file systems are unmounted wherever they are (`_stale_mounts`); the
    folders are removed where this process makes its own: only folders of this user, named
    as the gate names them, whose process is gone, and nothing in them is followed."""
    unmount_stale()
    removed = []
    for base in Path(tempfile.gettempdir()).glob("betrace-page-*-*"):
        found = _STALE.fullmatch(base.name)
        try:
            info = base.lstat()
        except OSError:
            continue
        if not found or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            continue
        if process_running(int(found[1])):
            continue
        page = base / "page"
        if not page.is_symlink() and os.path.ismount(page):
            _unmount(page, lazy=True)
        try:  # another gate process may sweep it at the same time; what stays, a later one takes
            safefs.remove_tree(base)
        except OSError:
            continue
        removed.append(base)
    return tuple(removed)


def unmount_stale() -> list[Path]:
    """Unmount the file systems of sandboxes whose gate process is gone (`_stale_mounts`)."""
    return [page for page in _stale_mounts() if _unmount(page, lazy=True)]


def _unmount(where: Path, lazy: bool = False) -> bool:
    """Unmount `where` (lazily: at once from the tree, the rest when no process uses it)."""
    if not _UMOUNT:
        return False
    argv = [_UMOUNT, *(["-l"] if lazy else []), str(where)]
    done = subprocess.run(argv, env=_gate_env(), capture_output=True, timeout=30, check=False)
    return done.returncode == 0


class Sandbox:
    """The folders of one page and the gate's handle on them (see the module's docstring)."""

    def __init__(self, deadline: float) -> None:
        sweep_stale()
        made = tempfile.mkdtemp(prefix=f"betrace-page-{os.getpid()}-")
        self.base = Path(made).resolve()
        self.root = self.base / "page"
        self.root.mkdir(mode=0o755)
        self.mounted = _mount_tmpfs(self.root)
        self.gate = self.base / "gate"
        self.gate.mkdir(mode=0o700)
        self.tree = safefs.Tree(self.root)
        self.jail = Jail(self.root, deadline=deadline)

    # -- the gate's file work, beneath the root --------------------------------------------
    def read(self, path: Path, limit: int = safefs.READ_LIMIT) -> bytes:
        return self.tree.read(path, limit)

    def write(self, path: Path, data: bytes, append: bool = False) -> None:
        self.tree.write(path, data, append=append, uid=PAGE_UID)

    def makedirs(self, path: Path) -> None:
        self.tree.makedirs(path, uid=PAGE_UID)

    def hand_over(self, path: Path | None = None) -> None:
        """Give `path` (and what is under it; default: the whole sandbox) to the page's user."""
        target = self.root if path is None else path
        for parent in reversed(target.parents):  # folders the gate made on the way
            if self.root in parent.parents:
                self.tree.chown_one(parent, PAGE_UID)
        self.tree.chown_tree(target, PAGE_UID)
        if path is None:
            os.fchmod(self.tree.fd, 0o755)

    def scratch(self) -> Path:
        """A new folder of the page's user at the sandbox's top, for files the gate hands to a
        jailed tool: made where no link can lead (the root is held by descriptor)."""
        while True:
            name = f".gate-scratch-{secrets.token_hex(6)}"
            try:
                os.mkdir(name, 0o755, dir_fd=self.tree.fd)
            except FileExistsError:  # the page guessed a name: take another
                continue
            os.chown(name, PAGE_UID, PAGE_UID, dir_fd=self.tree.fd, follow_symlinks=False)
            return self.root / name

    def remove(self, path: Path) -> None:
        """Remove a folder directly under the root (a scratch folder), links not followed."""
        if path.parent != self.root:
            raise safefs.UnsafePath(0, "only top-level folders are removed this way", str(path))
        safefs.remove_tree(path)

    # -- the end ----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the jail and remove everything: unmount the sandbox's file system (its content
        goes with it whatever the page did), then remove the folders, never through a link."""
        self.jail.close()
        self.tree.close()
        if self.mounted and _UMOUNT:
            for _ in range(20):
                if _unmount(self.root):
                    break
                time.sleep(0.05)  # the kernel tears the jail's namespaces down asynchronously
            else:
                _unmount(self.root, lazy=True)
            self.mounted = False
        with contextlib.suppress(FileNotFoundError):
            safefs.remove_tree(self.base)
