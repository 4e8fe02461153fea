"""The gate's own file work on a page's sandbox, which never follows what the page made.

Between and during a page's commands, the page's user owns its sandbox: any folder of it may
have become a symbolic link to /etc, a file a FIFO or a link to /proc/self/environ. The gate
runs as root outside the jail, so a plain `open`, `mkdir`, `chown` or `copytree` on a sandbox
path would act wherever the page pointed it. Everything here starts from a directory descriptor
the gate opened itself on the sandbox's root (whose parent is the gate's, out of the page's
reach) and resolves the rest beneath it:

- `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)` where the kernel has it
  (Linux 5.6): links that stay inside the sandbox are followed, any step leading out of it
  (`..`, an absolute link, a /proc magic link, another mount) fails; elsewhere a walk one
  component at a time with `O_NOFOLLOW`, refusing every link;
- files are opened `O_NONBLOCK` (a FIFO never blocks the gate), then `fstat` must show a regular
  file (no FIFO, device or socket is read or written), and reads stop at a size limit;
- ownership changes and removal walk from descriptors with `dir_fd` and `follow_symlinks=False`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

#: Largest file the gate reads from a sandbox (a page's Compose file, manifest, result).
READ_LIMIT = 16 * 1024 * 1024

_SYS_OPENAT2 = 437  # the same number on x86_64 and aarch64
_RESOLVE_NO_XDEV, _RESOLVE_NO_MAGICLINKS, _RESOLVE_BENEATH = 0x01, 0x02, 0x08
_RESOLVE = _RESOLVE_NO_XDEV | _RESOLVE_NO_MAGICLINKS | _RESOLVE_BENEATH


class UnsafePath(OSError):
    """A sandbox path leads out of the sandbox, or is not what the gate may touch."""


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_openat2_works: bool | None = None


def _openat2(dirfd: int, rel: str, flags: int, mode: int) -> int:
    how = _OpenHow(flags | os.O_CLOEXEC, mode if flags & os.O_CREAT else 0, _RESOLVE)
    fd = int(
        _libc.syscall(_SYS_OPENAT2, dirfd, os.fsencode(rel), ctypes.byref(how), ctypes.sizeof(how))
    )
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), rel)
    return fd


def _walk_open(dirfd: int, rel: str, flags: int, mode: int) -> int:
    """openat one component at a time, refusing every link and every `..` (no openat2)."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePath(errno.EXDEV, "'..' in a sandbox path", rel)
    current = os.dup(dirfd)
    try:
        for part in parts[:-1]:
            step = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=current)
            os.close(current)
            current = step
        last = parts[-1] if parts else "."
        return os.open(last, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=current)
    finally:
        os.close(current)


def open_beneath(root_fd: int, rel: str, flags: int, mode: int = 0o644) -> int:
    """A descriptor of `rel` resolved beneath the directory `root_fd`, never outside it."""
    global _openat2_works
    rel = rel.lstrip("/") or "."
    if _openat2_works is not False:
        try:
            return _openat2_retried(root_fd, rel, flags, mode)
        except OSError as exc:
            if exc.errno not in (errno.ENOSYS, errno.EPERM) or _openat2_works:
                raise UnsafePath(exc.errno, why(exc.errno or 0), rel) from None
            _openat2_works = False  # no openat2 (old kernel, seccomp): the strict walk
    try:
        return _walk_open(root_fd, rel, flags, mode)
    except UnsafePath:
        raise
    except OSError as exc:
        raise UnsafePath(exc.errno, why(exc.errno or 0), rel) from None


#: times openat2 is asked again when it answers EAGAIN
OPENAT2_TRIES = 64


def _openat2_retried(root_fd: int, rel: str, flags: int, mode: int) -> int:
    """openat2, asked again on EAGAIN: with RESOLVE_BENEATH, a path with `..` (a link to
    `../kept`) fails with EAGAIN when any rename or mount happened on the machine during the
    lookup ("The caller may choose to retry", openat2(2)); a busy machine made a page's path
    unreadable now and then. Each try is a new lookup; the last EAGAIN is raised."""
    for _ in range(OPENAT2_TRIES - 1):
        try:
            return _openat2(root_fd, rel, flags, mode)
        except OSError as exc:
            if exc.errno != errno.EAGAIN:
                raise
    return _openat2(root_fd, rel, flags, mode)


def why(code: int) -> str:
    if code in (errno.EXDEV, errno.ELOOP):
        return "it leads out of the page's sandbox (a link, '..' or another file system)"
    if code == errno.ENOTDIR:
        return "a folder on its way is a link or a file (the gate follows no link there)"
    return os.strerror(code)


class Tree:
    """The gate's handle on one sandbox: a descriptor of its root, opened by the gate."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def relative(self, path: Path) -> str:
        """`path` (absolute, as the page names it) relative to the root; refused outside."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            raise UnsafePath(errno.EXDEV, "it is outside the page's sandbox", str(path)) from None

    @contextlib.contextmanager
    def opened(self, path: Path, flags: int, mode: int = 0o644) -> Iterator[int]:
        fd = open_beneath(self.fd, self.relative(path), flags | os.O_NONBLOCK | os.O_NOCTTY, mode)
        try:
            yield fd
        finally:
            os.close(fd)

    def read(self, path: Path, limit: int = READ_LIMIT) -> bytes:
        """A regular file's bytes, at most `limit` of them (more is an error, not a cut)."""
        with self.opened(path, os.O_RDONLY) as fd:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise UnsafePath(errno.EINVAL, "it is not a regular file", str(path))
            chunks, size = [], 0
            while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise UnsafePath(errno.EFBIG, f"it is larger than {limit >> 20} MiB", str(path))
            return b"".join(chunks)

    def write(self, path: Path, data: bytes, append: bool = False, uid: int = -1) -> None:
        """Create or replace (or append to) a regular file, given to `uid` if not -1."""
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else 0)
        with self.opened(path, flags) as fd:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
                raise UnsafePath(errno.EINVAL, "it is not a regular file of its own", str(path))
            if not append:
                os.ftruncate(fd, 0)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if uid >= 0 and info.st_uid != uid:
                os.fchown(fd, uid, uid)

    def makedirs(self, path: Path, uid: int = -1) -> None:
        """Make `path` and the folders above it that are missing, each given to `uid`."""
        parts = [p for p in self.relative(path).split("/") if p not in ("", ".")]
        current = os.dup(self.fd)
        try:
            for part in parts:
                if part == "..":
                    raise UnsafePath(errno.EXDEV, "'..' in a folder the gate makes", str(path))
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=current)
                step = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=current)
                os.close(current)
                current = step
                if uid >= 0 and os.fstat(current).st_uid != uid:
                    os.fchown(current, uid, uid)
        except OSError as exc:
            if isinstance(exc, UnsafePath):
                raise
            raise UnsafePath(exc.errno, why(exc.errno or 0), str(path)) from None
        finally:
            os.close(current)

    def _parent(self, path: Path) -> tuple[int, str]:
        """A descriptor of `path`'s folder (resolved beneath the root) and its last name."""
        rel = self.relative(path)
        parent, _, name = rel.rpartition("/")
        if name in ("", ".", ".."):
            raise UnsafePath(errno.EINVAL, "not a name the gate changes", str(path))
        return open_beneath(self.fd, parent or ".", os.O_RDONLY | os.O_DIRECTORY), name

    def chown_tree(self, path: Path, uid: int, keep: frozenset[str] = frozenset()) -> None:
        """Give `path` and everything under it (links themselves, never what they point at)
        to `uid`; entries named in `keep` (at any depth) are left as they are."""
        if path == self.root:
            os.fchown(self.fd, uid, uid)
            _chown_below(self.fd, uid, keep)
            return
        dirfd, name = self._parent(path)
        try:
            _chown_entry(dirfd, name, uid, keep)
        finally:
            os.close(dirfd)

    def chown_one(self, path: Path, uid: int) -> None:
        """Give one path (a link itself, never what it points at) to `uid`."""
        if path == self.root:
            os.fchown(self.fd, uid, uid)
            return
        dirfd, name = self._parent(path)
        try:
            if os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_uid != uid:
                os.chown(name, uid, uid, dir_fd=dirfd, follow_symlinks=False)
        finally:
            os.close(dirfd)


def _chown_entry(dirfd: int, name: str, uid: int, keep: frozenset[str]) -> None:
    info = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    _chown_if_safe(dirfd, name, info, uid)
    if stat.S_ISDIR(info.st_mode):
        _chown_below(_open_dir(dirfd, name), uid, keep, close=True)


def _chown_if_safe(dirfd: int, name: str, info: os.stat_result, uid: int) -> None:
    """chown one entry (a link itself); a file with other hard links is left alone: it may be
    a file of the machine the page linked in (where the sandbox is not a file system of its
    own), and handing it to the page would give the page that file."""
    if info.st_uid == uid or (stat.S_ISREG(info.st_mode) and info.st_nlink > 1):
        return
    os.chown(name, uid, uid, dir_fd=dirfd, follow_symlinks=False)


def _open_dir(dirfd: int, name: str) -> int:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(name, flags, dir_fd=dirfd)
    except OSError:  # replaced meanwhile by something else: not followed
        return -1


#: Folders nested deeper than this are refused when the gate hands a tree over.
MAX_DEPTH = 256


def _chown_below(top: int, uid: int, keep: frozenset[str], close: bool = False) -> None:
    """Every entry below the folder `top`, depth first with one descriptor per level (a page
    may nest folders deeply: past MAX_DEPTH the hand-over is refused, not recursed)."""
    if top < 0:
        return
    stack: list[tuple[int, bool, Iterator[os.DirEntry[str]]]] = [(top, close, os.scandir(top))]
    try:
        while stack:
            dirfd, _, entries = stack[-1]
            entry = next(entries, None)
            if entry is None:
                _pop(stack)
                continue
            if entry.name in keep:
                continue
            info = entry.stat(follow_symlinks=False)
            _chown_if_safe(dirfd, entry.name, info, uid)
            if stat.S_ISDIR(info.st_mode):
                if len(stack) >= MAX_DEPTH:
                    raise UnsafePath(errno.ELOOP, f"folders nested deeper than {MAX_DEPTH}", "")
                sub = _open_dir(dirfd, entry.name)
                if sub >= 0:
                    stack.append((sub, True, os.scandir(sub)))
    finally:
        while stack:
            _pop(stack)


def _pop(stack: list[tuple[int, bool, Iterator[os.DirEntry[str]]]]) -> None:
    dirfd, owned, entries = stack.pop()
    close_entries = getattr(entries, "close", None)
    if close_entries is not None:
        close_entries()
    if owned:
        os.close(dirfd)


def remove_tree(path: Path) -> None:
    """Remove a folder whatever is in it: links are removed, never followed (shutil.rmtree walks
    from descriptors on Linux); folders the page made unwritable or unreadable are opened up
    (by their descriptor's parent, never through a link) and the removal goes on. What still
    cannot be removed is an error, never silently left behind."""
    if not path.is_symlink() and not path.exists():
        return
    assert shutil.rmtree.avoids_symlink_attacks, "a removal that could follow a page's links"

    def opened_up(func: object, failed: str, info: object) -> None:
        broken = Path(failed)
        with contextlib.suppress(OSError):  # a folder the page made unwritable or unreadable
            for folder in (broken.parent, broken):
                if folder.is_dir() and not folder.is_symlink():
                    folder.chmod(0o700, follow_symlinks=False)
        if broken.is_dir() and not broken.is_symlink():
            shutil.rmtree(broken)
        elif broken.is_symlink() or broken.exists():
            broken.unlink()

    for _ in range(3):
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(path, onerror=opened_up)
        if not path.is_symlink() and not path.exists():
            return
    raise OSError(errno.ENOTEMPTY, "the gate could not remove a page's sandbox", str(path))
