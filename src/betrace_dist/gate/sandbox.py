"""A page's sandbox on the machine: the folder its commands may write, and the gate's side of it.

Layout, made fresh for every page:

    betrace-page-PID-XXXX/  the gate's (root, 0700): the page can neither rename nor replace it;
                            PID is the gate process's, so a later run removes what a killed
                            run left (`sweep_stale`)
      page/                 the page's writable folder, the only one its jail binds writable: a
                            RAM-backed file system of SANDBOX_SIZE bytes where the gate may mount
                            one (then its disk use is bounded, and detaching it removes it all
                            once the jail's processes are gone)
      gate/                 the gate's own files (live-tier logs, content tabs' states): never
                            visible to the page

The gate reaches into page/ only through `safefs.Tree` (descriptors, nothing followed out of the
sandbox, no FIFO or device opened, reads bounded), or by running the work inside the jail as
the page's user. Removal never follows a link, opens up what the page locked and fails loudly
rather than leave anything behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import stat
import subprocess
import tempfile
from functools import cache
from pathlib import Path

from .. import tools
from . import safefs
from .isolation import PAGE_UID, Jail, process_running, remove_stale_cgroups

#: Bytes a page's sandbox may hold in all (RAM-backed: only what the page writes is used).
SANDBOX_SIZE = 1024 * 1024 * 1024
#: Files and folders a page's sandbox may hold in all.
SANDBOX_INODES = 100_000
#: The program that mounts the sandbox's file system (found once, on the gate's own PATH).
_MOUNT = tools.find("mount")


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


def _unescaped(field: bytes) -> str:
    """A path as /proc/self/mountinfo shows it (space, tab, newline and backslash in octal),
    decoded as the file system's bytes are (os.fsdecode: a name that is no UTF-8 stays itself)."""
    return os.fsdecode(re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m[1], 8) & 0xFF]), field))


def page_mounts() -> list[tuple[Path, int]]:
    """Every sandbox file system mounted on the machine, as the kernel's mount table lists it:
    (mount point, device number), each a tmpfs named `betrace-page`, whoever's."""
    try:
        table = Path("/proc/self/mountinfo").read_bytes()
    except OSError:
        return []
    found = []
    for line in table.splitlines():
        mine, _, theirs = line.partition(b" - ")
        fields, kind = mine.split(b" "), theirs.split(b" ")
        if len(fields) < 5 or kind[:2] != [b"tmpfs", b"betrace-page"]:
            continue
        major, _, minor = fields[2].partition(b":")
        if major.isdigit() and minor.isdigit():
            found.append((Path(_unescaped(fields[4])), os.makedev(int(major), int(minor))))
    return found


def _stale_mounts() -> list[tuple[Path, int]]:
    """The sandbox file systems of gate processes that no longer run, wherever their temporary
    folder was: those on a `betrace-page-<PID>-*/page` folder whose PID runs no process. Read
    from the kernel's mount table, not from a folder listing, because a run with another
    TMPDIR (a test's own, say) is swept by no later run in that folder; and a mount left there
    makes every removal of the folder above it fail (EBUSY)."""
    stale = []
    for page, device in page_mounts():
        found = _STALE.fullmatch(page.parent.name)
        if page.name == "page" and found and not process_running(int(found[1])):
            stale.append((page, device))
    return stale


_libc = ctypes.CDLL(None, use_errno=True)
#: umount2(2)'s flag: detach the mount from the tree at once, free it when nothing uses it
_MNT_DETACH = 2


def _detach(fd: int) -> bool:
    """Detach the mount whose root the descriptor `fd` holds, through the descriptor itself
    (/proc/self/fd/N): the folders on the way are not looked up again, so no link or folder
    can be swapped in there. A mount stacked on that same folder since would be taken instead
    (the kernel follows mounts on the last step); only one with mount rights in the gate's
    namespace, root, can stack one, and a page cannot."""
    return int(_libc.umount2(f"/proc/self/fd/{fd}".encode(), _MNT_DETACH)) == 0


def _open_unlinked(path: Path) -> tuple[int, int]:
    """Descriptors (O_PATH) of the folder `path` and of its parent, every component opened
    without following a link: OSError if one is a link, or missing."""
    flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    parent, fd = -1, os.open("/", flags)
    try:
        for part in path.parts[1:]:
            step = os.open(part, flags, dir_fd=fd)
            if parent >= 0:
                os.close(parent)
            parent, fd = fd, step
    except OSError:
        for held in (parent, fd):
            if held >= 0:
                os.close(held)
        raise
    return parent, fd


def _detach_stale(page: Path, device: int) -> bool:
    """Detach a stale sandbox's file system, if `page` still leads to it with no link on the
    way, and its folder above is this user's: a user who may write a folder on the way cannot
    turn the gate's rights on another mount by swapping a link in."""
    try:
        parent, fd = _open_unlinked(page)
    except OSError:
        return False
    try:
        ours = os.fstat(parent).st_uid == os.geteuid() and os.fstat(fd).st_dev == device
        detached = ours and _detach(fd)
    finally:
        os.close(parent)
        os.close(fd)
    return detached and all(found != device for _, found in page_mounts())


@cache
def sweep_stale() -> tuple[Path, ...]:
    """Remove the sandboxes of gate processes that no longer run (a run killed before its pages
    closed left them, their RAM-backed folders still mounted): once per process, before its
    first sandbox. Their file systems are detached wherever they are (`unmount_stale`); the
    folders are removed where this process makes its own: only folders of this user, named
    as the gate names them, whose process is gone, and nothing in them is followed. The
    pages' cgroups such a process left are removed too (`isolation.remove_stale_cgroups`)."""
    unmount_stale()
    remove_stale_cgroups()
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
        try:  # another gate process may sweep it at the same time; what stays, a later one takes
            safefs.remove_tree(base)
        except OSError:
            continue
        removed.append(base)
    return tuple(removed)


def unmount_stale() -> list[Path]:
    """Detach the file systems of sandboxes whose gate process is gone (`_stale_mounts`)."""
    return [page for page, device in _stale_mounts() if _detach_stale(page, device)]


class Sandbox:
    """The folders of one page and the gate's handle on them (see the module's docstring)."""

    def __init__(self, deadline: float) -> None:
        sweep_stale()
        made = tempfile.mkdtemp(prefix=f"betrace-page-{os.getpid()}-")
        self.base = Path(made).resolve()
        self.root = self.base / "page"
        self.gate = self.base / "gate"
        #: the mount's root, held from the start (it is detached through this descriptor),
        #: and its device; -1 and 0 where nothing is mounted
        self._mount_fd, self._device = -1, 0
        try:
            self.root.mkdir(mode=0o755)
            self.mounted = _mount_tmpfs(self.root)
            if self.mounted:
                flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
                self._mount_fd = os.open(self.root, flags)
                self._device = os.fstat(self._mount_fd).st_dev
            self.gate.mkdir(mode=0o700)
            self.tree = safefs.Tree(self.root)
            self.jail = Jail(self.root, deadline=deadline)
        except BaseException:  # a sandbox that never started leaves nothing
            self._release_mount()
            with contextlib.suppress(OSError):
                safefs.remove_tree(self.base)
            raise

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
        """Stop the jail and remove everything: detach the sandbox's file system (its content
        goes with it whatever the page did, its memory once the jail's last process is gone),
        then remove the folders, never through a link. The file system is detached even when
        stopping the jail fails."""
        try:
            self.jail.close()
        finally:
            try:
                self.tree.close()
            finally:
                self._release_mount()
        with contextlib.suppress(FileNotFoundError):
            safefs.remove_tree(self.base)

    def _release_mount(self) -> None:
        """Detach the file system through the descriptor held since it was mounted, and close
        the descriptor. A detach that fails while the file system is still in the mount table
        is an error; one that fails because it is gone already (someone detached it) is not."""
        if self._mount_fd < 0:
            return
        fd, self._mount_fd = self._mount_fd, -1
        try:
            detached = _detach(fd)
            code = ctypes.get_errno()
        finally:
            os.close(fd)
        self.mounted = False
        if not detached and any(device == self._device for _, device in page_mounts()):
            raise OSError(code, f"the sandbox's file system stays mounted: {os.strerror(code)}")
