"""Links into the two repositories the gate holds offline: the distribution's own (its checkout)
and upstream's at the pinned commit (the snapshot's tarball).

A page's link is hostile input, so neither is followed as the page wrote it:

- a path with '..', '.', an empty part or a NUL is refused before anything is looked at;
- a path into the checkout must be one a clone of it holds (git's list: tracked, or new and not
  ignored; so neither `.git/` nor an ignored file is there), then it is opened beneath a
  descriptor of the checkout's root (`safefs.open_beneath`): a symbolic link leading out of it
  is refused, never followed; a file is read only to count its lines (regular files, bounded);
- upstream's tree is the snapshot's member list (and its files' line counts), read from the
  tarball in memory once: nothing is extracted, no path of a page is made on disk.

Checked: `/blob/`, `/tree/`, `/blame/` and `/raw/` links of github.com, and
raw.githubusercontent.com links, into the distribution at `main` or the release's tag (against
the checkout: a page describes the tree it ships with), and into upstream at the pinned commit
(full or short). A link into the distribution at any other ref is refused (it cannot be checked
here); one into upstream at another ref (`main`, a tag) is left unchecked. A line anchor
(`#L10`, `#L10-L20`) must fall within the file.

A path a page writes in code in its prose is looked up in both lists too (named_path_problem);
a `:LINE` after it is checked as a link's anchor is, the checkout's file read beneath its root.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from .. import tools, upstream
from ..names import closest
from ..release import ReleaseData
from . import safefs

#: GitHub's line anchors: `#L10`, `#L10-L20` (a column, `C5`, may follow a line).
_LINES = re.compile(r"^L(\d+)(?:C\d+)?(?:-L(\d+)(?:C\d+)?)?$")
#: The kinds of GitHub page that show a path at a ref.
_KINDS = frozenset({"blob", "tree", "blame", "raw"})


@dataclass(frozen=True)
class Target:
    """Where a link goes: which repository (its URL), at which ref, which path and lines."""

    repository: str
    ref: str
    path: str  # '' for the repository's root
    lines: tuple[int, ...]


def target_of(href: str, repositories: tuple[str, ...]) -> Target | str | None:
    """The repository path a link names (None: not a link into one of `repositories`), or why
    its path cannot be taken as one."""
    parts = urlsplit(href)
    host = parts.netloc.lower()
    if parts.scheme.lower() not in ("http", "https") or host not in (
        "github.com",
        "raw.githubusercontent.com",
    ):
        return None
    words = unquote(parts.path).split("/")[1:]  # decoded: '%2F..' is judged as '/..'
    repository = next(
        (r for r in repositories if [w.lower() for w in words[:2]] == _owner_name(r)), None
    )
    if repository is None:
        return None
    rest = words[2:]
    if host == "github.com":
        if not rest or rest[0] not in _KINDS:
            return None  # the repository's root, its issues, releases...: no file
        rest = rest[1:]
    if rest[:2] in (["refs", "heads"], ["refs", "tags"]):
        rest = rest[2:]
    if not rest or not rest[0]:
        return None
    ref, path = rest[0], rest[1:]
    if path and path[-1] == "":
        path = path[:-1]  # a folder's trailing slash
    if any(w in ("", ".", "..") or "\0" in w for w in path):
        return (
            f"the link '{href}' names a path with '..', '.' or an empty part: name the file "
            "by its path from the repository's root"
        )
    found = _LINES.match(unquote(parts.fragment))
    lines = tuple(int(n) for n in found.groups() if n) if found else ()
    return Target(repository, ref, "/".join(path), lines)


def _owner_name(repository: str) -> list[str]:
    return [w.lower() for w in urlsplit(repository).path.strip("/").split("/")[:2]]


@dataclass
class RepoLinks:
    """The checker of links into the distribution (`checkout`) and upstream (the snapshot)."""

    data: ReleaseData
    checkout: Path
    _lines: dict[str, int | None] = field(default_factory=dict)  # checkout file -> lines
    _upstream: dict[str, int | None] | str | None = None  # path -> lines, or why none
    _clone: frozenset[str] | None = None  # what a clone holds: its files and their folders

    def problem(self, href: str) -> str | None:
        """Why a link into either repository goes nowhere (None: it does, or is not checked)."""
        project = self.data.project
        found = target_of(href, (project.distribution_repository, project.repository))
        if not isinstance(found, Target):
            return found
        if found.repository == project.distribution_repository:
            return self._distribution(href, found)
        return self._upstream_problem(href, found)

    # -- the distribution: the checkout ------------------------------------------------------
    def _distribution(self, href: str, target: Target) -> str | None:
        tag = f"v{self.data.current.version}"
        if target.ref not in ("main", tag):
            return (
                f"the link '{href}' goes to this repository at '{target.ref}', which cannot be "
                f"checked here: link at main or at {tag}, the release's tag, which the checkout "
                "is checked as"
            )
        clone = self._clone_paths()
        if clone and target.path and target.path not in clone:
            return (
                f"the link '{href}' goes to no file of this repository at {target.ref} "
                f"(there is no {target.path} in the checkout)"
            )
        try:
            lines = self._checkout_lines(target.path)
        except safefs.UnsafePath as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return (
                    f"the link '{href}' goes to no file of this repository at {target.ref} "
                    f"(there is no {target.path} in the checkout)"
                )
            return f"the link '{href}' is not followed: {_refusal(exc)}"
        return _line_problem(href, target, lines)

    def _clone_paths(self) -> frozenset[str]:
        """The files a clone of the checkout holds (git's: tracked, or new and not ignored),
        with their folders; empty where the checkout is no git work tree (then its files)."""
        if self._clone is None:
            done = subprocess.run(
                ["git", "-c", "core.excludesFile=/dev/null", "-C", str(self.checkout),
                 "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                capture_output=True, text=True, check=False, timeout=60,
            )  # fmt: skip
            files = [f for f in done.stdout.split("\0") if f] if done.returncode == 0 else []
            folders = {str(parent) for f in files for parent in PurePosixPath(f).parents}
            self._clone = frozenset(files) | (folders - {"."})
        return self._clone

    def _checkout_lines(self, path: str) -> int | None:
        """The lines of a file of the checkout (None: a folder); UnsafePath if none is there."""
        if path not in self._lines:
            root = os.open(self.checkout, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                self._lines[path] = _lines_beneath(root, path or ".")
            finally:
                os.close(root)
        return self._lines[path]

    # -- paths a page names in its prose -----------------------------------------------------
    def named_path_problem(self, span: str, made: frozenset[str] = frozenset()) -> str | None:
        """Why a code span of prose that names a path in a folder of either repository
        (`docker/rules.yaml`, `backend/internal/dsl/evaluator.go`) names no file of either, or
        None. Not judged: a path whose folder neither has, or a file directly in a folder
        many projects have (`src/main.rs`: other projects' files, which pages cite too); one
        the checkout's ignore rules cover (a file the reader or a tool makes, such as
        `docker/.env`); and one of `made`, the files the page's own blocks write (their
        titles). A `:LINE` (or `:A-B`) after the path must be a line of the file: upstream's
        counted in the snapshot, the checkout's read beneath its root to count lines, as for
        links (never through a link leading out). Only git's list and the snapshot's decide
        what exists."""
        path = named_path(span)
        if path is None or path in made:
            return None
        clone = self._clone_paths()
        tree = self._upstream_tree()
        theirs = tree if isinstance(tree, dict) else {}
        parent = path.rpartition("/")[0]
        if parent in _COMMON_FOLDERS or (parent not in clone and parent not in theirs):
            return None
        if path in theirs or path in clone:
            return self._named_line_problem(span, path, theirs)
        if self._ignored(path):
            return None
        hint = closest(path, sorted(clone | set(theirs)))
        short = self.data.current.upstream.short
        return (
            f"`{span}` names no file of this repository or of upstream at {short}{hint} "
            "(a path in a folder of either is looked up in both)"
        )

    def _named_line_problem(
        self, span: str, path: str, theirs: dict[str, int | None]
    ) -> str | None:
        """A `path:LINE` span whose line the file (upstream's, else the checkout's) lacks."""
        line = named_last_line(span)
        if line is None:
            return None
        try:
            lines = theirs[path] if path in theirs else self._checkout_lines(path)
        except safefs.UnsafePath:
            return None  # the link check's reading refuses it; a path is not followed here
        if lines is None:
            return f"`{span}` names lines of {path}, a folder"
        if line > lines:
            return f"`{span}` names line {line} of {path}, which has {lines} lines"
        return None

    def _ignored(self, path: str) -> bool:
        """Whether the checkout's own ignore rules cover the path (`git check-ignore`, without
        the machine's global excludes file, so that the verdict is the same everywhere)."""
        argv = ["git", "-c", "core.excludesFile=/dev/null", "-C", str(self.checkout)]
        done = subprocess.run(
            [*argv, "check-ignore", "-q", "--no-index", "--", path],
            capture_output=True, check=False, timeout=60,
        )  # fmt: skip
        return done.returncode == 0

    # -- upstream: the snapshot at the pinned commit -----------------------------------------
    def _upstream_problem(self, href: str, target: Target) -> str | None:
        commit = self.data.current.upstream.commit
        if len(target.ref) < 7 or not commit.startswith(target.ref):
            return None  # another ref (main, a tag): not in the snapshot, not checked
        tree = self._upstream_tree()
        if tree is None:
            return None  # no snapshot here, and skipping is allowed: left unchecked
        if isinstance(tree, str):
            return tree.format(href=href)
        if target.path and target.path not in tree:
            short = self.data.current.upstream.short
            return (
                f"the link '{href}' goes to no file of upstream at {short} (the snapshot of "
                f"that commit has no {target.path})"
            )
        return _line_problem(href, target, tree.get(target.path))

    def _upstream_tree(self) -> dict[str, int | None] | str | None:
        """Upstream's paths at the pinned commit, each with its lines (None: a folder); a
        message with `{href}` when the snapshot cannot be read; None when it is absent and
        skipping is allowed (such links are then left unchecked)."""
        if self._upstream is None:
            try:
                path, _ = upstream.verified_tarball(self.data.current)
                self._upstream = snapshot_index(path)
            except tools.ToolMissing as exc:
                if not exc.fatal:
                    return None
                self._upstream = "the link '{href}' cannot be checked: " + str(exc)
            except (upstream.UpstreamError, OSError, tarfile.TarError) as exc:
                self._upstream = "the link '{href}' cannot be checked: " + str(exc)
        return self._upstream


#: A repository path as a page writes one in code: two or more parts, a `:LINE` or `:A-B` after
_NAMED_PATH = re.compile(
    r"([A-Za-z0-9_.][A-Za-z0-9_.+@-]*(?:/[A-Za-z0-9_.+@-]+)+)/?(?::\d+(?:-\d+)?)?"
)


#: Folders of these repositories that many other projects have at their root: a file directly
#: in one of them, named in prose, is as likely another project's (`src/main.rs` of an action)
_COMMON_FOLDERS = frozenset({"src", "tests", "docs", "api", "lib", "pkg", "cmd", "scripts"})


def named_path(span: str) -> str | None:
    """The repository path a code span of prose names, or None (not a relative path of two
    parts or more: a command, an absolute path, a placeholder, a glob)."""
    match = _NAMED_PATH.fullmatch(span.strip())
    if match is None:
        return None
    parts = match[1].split("/")
    return None if {".", ".."} & set(parts) else match[1]


def named_last_line(span: str) -> int | None:
    """The last line a `path:LINE` or `path:A-B` span names, or None."""
    match = re.search(r":(\d+)(?:-(\d+))?$", span.strip())
    return int(match[2] or match[1]) if match else None


def _lines_beneath(root: int, path: str) -> int | None:
    """Lines of a regular file beneath the directory `root` (None: a folder), read without
    following a link out of it; UnsafePath for anything else."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY
    fd = safefs.open_beneath(root, path, flags)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            return None
        if not stat.S_ISREG(info.st_mode):
            raise safefs.UnsafePath(errno.EINVAL, "it is not a regular file", path)
        if info.st_size > safefs.READ_LIMIT:
            raise safefs.UnsafePath(errno.EFBIG, "it is too large to count its lines", path)
        return _count_lines(lambda size: os.read(fd, size))
    finally:
        os.close(fd)


def _refusal(exc: safefs.UnsafePath) -> str:
    if exc.errno in (errno.EXDEV, errno.ELOOP):
        return "its path leads out of the checkout (a symbolic link, or another file system)"
    return f"{exc.strerror} ({exc.filename})"


def _line_problem(href: str, target: Target, lines: int | None) -> str | None:
    if not target.lines:
        return None
    if lines is None:
        return f"the link '{href}' goes to lines of {target.path or 'the root'}, a folder"
    past = [n for n in target.lines if not 1 <= n <= lines]
    if not past:
        return None
    return (
        f"the link '{href}' goes to line {past[0]} of {target.path}, which has "
        f"{lines} line{'s' if lines != 1 else ''}"
    )


def snapshot_index(tarball: Path) -> dict[str, int | None]:
    """The paths of upstream's tree in the snapshot (its members below the one top folder),
    each with its lines (None: a folder). The members are read in memory, never extracted;
    a link or other special member counts as a one-line file (GitHub shows its target)."""
    index: dict[str, int | None] = {}
    with tarfile.open(tarball) as archive:
        for member in archive:
            _top, _, inside = member.name.strip("/").partition("/")
            if not inside:
                continue
            if member.isdir():
                index[inside] = None
                continue
            index[inside] = _member_lines(archive, member)
            parent = inside.rpartition("/")[0]
            while parent and parent not in index:  # folders the archive does not list
                index[parent] = None
                parent = parent.rpartition("/")[0]
    return index


def _member_lines(archive: tarfile.TarFile, member: tarfile.TarInfo) -> int:
    handle = archive.extractfile(member) if member.isfile() else None
    return 1 if handle is None else _count_lines(handle.read)


def _count_lines(read: Callable[[int], bytes]) -> int:
    """Lines as GitHub numbers them: a last line without its newline counts too."""
    count, last = 0, b""
    while chunk := read(1 << 20):
        count += chunk.count(b"\n")
        last = chunk[-1:]
    return count + (1 if last and last != b"\n" else 0)
