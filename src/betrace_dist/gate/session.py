"""A page's sandbox: a copy of the repository, a clean environment, and what the page deployed.

Blocks of one page run top to bottom in one session, so a page keeps its working directory,
exported variables and the files earlier blocks wrote. Commands that only touch files (cd,
export, cp, sed, cat > f <<EOF, ...) run for real inside the sandbox; commands that would reach
a cluster, a Docker daemon or the network go to a command model that checks them against the
real tools run offline and against the page's world.

Every process a page starts, models' tools included, runs in the page's jail (isolation.py):
read-only filesystem but the sandbox, no network but the page's own loopback, nothing outlives
its command, limits on time, memory and output. The argument checks below (`confine`, the
writes the gate itself makes in `save`) are the second line of defence, not the first.
"""

from __future__ import annotations

import atexit
import copy
import errno
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .. import GATE_SOURCE, REPO_ROOT, tools
from ..release import ReleaseData, load_release_data
from . import live, missing, profile, randomness, result_cache, safefs
from .failure import CheckFailure
from .isolation import Done, JailError, startup_variable
from .sandbox import Sandbox
from .shellwords import Command, constant_base64, single_quoted, with_typed
from .snapshots import Manifest, Snapshots, scan
from .world import World

#: Characters of output the gate keeps for one block's commands in all.
PRINTED_LIMIT = 32 * 1024 * 1024
#: Wall-clock time one page may take in all (each command has its own, shorter limit too).
PAGE_TIMEOUT = 600.0

#: Parts of the repository a page's sandbox gets (the reader's clone, minus tooling state).
_IGNORE = shutil.ignore_patterns(
    ".git", ".venv*", ".tools", "site", "__pycache__", "*.egg-info", ".hypothesis", "benchmarks"
)

#: Commands that only read, write or print files: run for real in the sandbox, never modelled.
FILE_COMMANDS = frozenset(
    {"cp", "mv", "mkdir", "cat", "sed", "echo", "printf", "ls", "chmod", "touch", "rm", "openssl"}
    | {"tee", "head", "tail", "grep", "true", "base64", "jq", "test", "diff", "wc", "sort", "cut"}
    | {"mktemp", "pwd", "basename", "dirname"}
)
#: Real commands that write to the paths they are given
WRITERS = frozenset({"cp", "mv", "mkdir", "touch", "rm", "tee", "sed", "chmod"})
#: Commands that may follow a model command in a pipeline: they only format its output.
FILTERS = frozenset({"jq", "base64", "grep", "head", "tail", "sort", "less", "wc", "cut", "tee"})


#: The bash every block runs in: the system's, by its full path.
BASH = "/bin/bash"

#: A name a page may give a variable.
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: A word bash leaves as it is: no quotes, parameters, globs, braces, tilde or comment.
PLAIN_WORD = re.compile(r"[A-Za-z0-9_./:=,@%+-]+")


class CommandError(Exception):
    """A command does not hold; the message says what exists instead."""


def _entry_exists(name: str, folder: int) -> bool:
    """Whether `name` is an entry of the folder `folder` (a link is not followed)."""
    try:
        os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


@dataclass
class Invocation:
    argv: list[str]  # expanded as bash would (command substitutions stand as placeholders)
    command: Command
    session: Session
    #: run inside $(...): what it prints becomes a word of another command, never the reader's
    substituted: bool = False

    def never_returns(self, what: str) -> None:
        """`what` (a server, a port-forward) runs in the foreground until stopped: a command
        after it in the same block never runs. The guides end the block with it and go on in
        the next one (another terminal), or start it with `&`."""
        if self.command.background or not self.session.following:
            return
        after = self.session.following[0].text.split("\n")[0]
        raise CommandError(
            f"{what} in the foreground and does not return: `{after}` after it in this block "
            "never runs; end the block with it and run the rest from another terminal (the next "
            "block), or start it in the background with &"
        )


#: A command model checks one command and raises CommandError when it does not hold. It may return
#: what the command would print (a Done or its stdout as a str): console blocks compare
#: their shown output with it (a live backend can answer for curl this way). None: the model
#: checked the command but cannot say what it prints, and the output shown is not compared.
Model = Callable[[Invocation], "Done | str | None"]


@dataclass
class _Snapshot:
    files: Manifest  # the sandbox's tree; changed files' content is kept in the page's store
    world: World
    env: dict[str, str]
    exported: set[str]
    cwd: Path


class Session:
    def __init__(
        self,
        release: ReleaseData | None = None,
        timeout: float | None = None,
        page_timeout: float = PAGE_TIMEOUT,
        live_tier: live.LiveTier | None = None,
    ) -> None:
        self.release = release or load_release_data()
        # The operator (never a page) may shorten the limit: BETRACE_COMMAND_TIMEOUT seconds.
        self.timeout = timeout or float(os.environ.get("BETRACE_COMMAND_TIMEOUT") or 60)
        self.page_timeout = page_timeout
        #: the page's folders and the gate's handle on them (sandbox.py)
        self.sandbox = Sandbox(deadline=time.monotonic() + page_timeout)
        try:
            self._set_up(live_tier)
        except BaseException:  # nothing of a session that never started stays on the machine
            self.sandbox.close()
            raise

    def _set_up(self, live_tier: live.LiveTier | None) -> None:
        """Everything of the session beyond its sandbox: the page's clone, home and world."""
        self.tmp = self.sandbox.root
        self.jail = self.sandbox.jail
        #: the run's live tier (off unless the run passes one in), and the page's real backend
        #: when the tier has a program (see live.py)
        self.live_tier = live_tier or live.LiveTier()
        self.live = live.LiveBackend(self, self.live_tier) if self.live_tier.program else None
        self.page = ""  # the page this session runs (for reports), set by its first block
        #: what a model worked out once for this page and asks again (Compose resolves a
        #: project once per distinct file, text and environment; Nix shows a flake once)
        self.resolved: dict[tuple[str, ...], Any] = {}
        self.home = self.tmp / "home"
        self.repo = self.tmp / "distribution"
        self.home.mkdir()
        (self.tmp / "tmp").mkdir()
        with profile.phase("sandbox copy"):  # a no-op unless profiling
            _copy_clone(self.repo)
        self.hand_over()  # the page runs as nobody (isolation.py): its files are nobody's
        self.cwd = self.repo
        #: the reader's clone in the sandbox and the page's copies of it (`git clone`)
        self.views = [self.repo]
        self._read: set[str] = set()  # names of the clone's files read so far (reads())
        #: each view's files as laid out (inode, change time): a file changed since is counted
        #: as read too, since some commands put a file's access time back after reading it
        self._laid_out = {self.repo: self._signatures(self.repo)}
        self.world = World()
        self.env = self._clean_env()
        self._inherited = frozenset(self.env)  # exported to every program, as a login's are
        self.exported: set[str] = set()  # variables the page itself exported
        self._tab: tuple[int, int] | None = None
        self._before: dict[int, _Snapshot] = {}
        self._after_first: dict[int, _Snapshot] = {}
        # the sandbox as laid out: content tabs' states keep only what changed since
        self._snapshots = Snapshots(
            self.tmp, {self.repo.name: _pristine()}, self.sandbox.gate / "states"
        )
        #: what each command run since the last reset printed (None: a model that cannot say)
        self.printed: list[Done | str | None] = []
        self._printed_size: tuple[list[Done | str | None], int] = (self.printed, 0)
        #: the commands of the block after the one running: what a command that never returns
        #: (a server started in the foreground) keeps from running
        self.following: list[Command] = []

    def _clean_env(self) -> dict[str, str]:
        path = page_path()
        unreachable = "http://127.0.0.1:9"  # the discard port: any proxied request fails at once
        return {
            "PATH": path,
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "KUBECONFIG": str(self.home / ".kube" / "config"),
            "DOCKER_HOST": f"unix://{self.tmp / 'no-docker-daemon.sock'}",
            "DOCKER_CONFIG": str(self.home / ".docker"),
            "HELM_CACHE_HOME": str(self.home / ".cache" / "helm"),
            "HELM_CONFIG_HOME": str(self.home / ".config" / "helm"),
            "HELM_DATA_HOME": str(self.home / ".local" / "share" / "helm"),
            "HTTP_PROXY": unreachable,
            "HTTPS_PROXY": unreachable,
            "http_proxy": unreachable,
            "https_proxy": unreachable,
            "NO_PROXY": "",
            "NIX_CONFIG": "substituters =\nexperimental-features = nix-command flakes",
            "TMPDIR": str(self.tmp / "tmp"),
        }

    def hand_over(self, path: Path | None = None) -> None:
        """Give what the gate wrote in the sandbox to the page's user (sandbox.py): the whole
        sandbox, or one path the gate just wrote and the folders it made for it; by descriptors,
        never through a link the page made."""
        try:
            self.sandbox.hand_over(path)
        except OSError as exc:
            what = "the sandbox" if path is None else f"'{path}'"
            raise CommandError(f"the gate will not hand over {what}: {_reason(exc)}") from None

    def copy_clone(self, target: Path) -> None:
        """Copy the page's clone to `target` (the project's `git clone`); the copy is one more
        place where the page may read the clone's files (result_cache.py). The page has had the
        clone in its hands: the copy runs in its jail, as its user, so a link, FIFO or device it
        planted there leads nowhere the page could not already reach."""
        runner = (
            f"import shutil, sys; sys.path.insert(0, {str(GATE_SOURCE)!r}); "
            "from betrace_dist.gate.result_cache import copy2_unread; "
            "shutil.copytree(sys.argv[1], sys.argv[2], symlinks=True, copy_function=copy2_unread)"
        )
        # the gate's own code (python -I: no variable or file of the page's changes it), not
        # filtered: it reads with O_NOATIME, which the seccomp filter refuses pages, so that
        # copying is not counted as the page reading
        argv = [sys.executable, "-I", "-c", runner, str(self.repo), str(target)]
        done = self.process(argv, filtered=False)
        if done.returncode != 0:
            said = " ".join(done.stderr.strip().splitlines()[-1:])
            raise CommandError(f"git clone: the copy of the clone failed: {said}")
        self.views.append(target)
        self._laid_out[target] = self._signatures(target)

    def _harvest(self) -> None:
        """Note the files read so far: before the gate puts files back (content tabs), which
        replaces them, stamps and all. A file changed since it was laid out counts as read.
        A link that leads to a file of the clone counts as read when that file was (reading
        through it stamps the file, not the link); any other link always counts."""
        links = _links()
        seen = {view: {n: self._lstat(view / n) for n in _layout()[1]} for view in self.views}
        for view, stats in seen.items():  # files first: a link counts when its file does
            laid_out = self._laid_out.get(view, {})
            self._read.update(
                name
                for name, stat in stats.items()
                if name not in links
                and (
                    result_cache.was_read(stat)
                    or result_cache.signature(stat) != laid_out.get(name)
                )
            )
        for view, stats in seen.items():
            laid_out = self._laid_out.get(view, {})
            self._read.update(
                name
                for name, target in links.items()
                if target is None
                or target in self._read
                or result_cache.signature(stats[name]) != laid_out.get(name)
            )

    def _signatures(self, view: Path) -> dict[str, tuple[int, int] | None]:
        return {name: result_cache.signature(self._lstat(view / name)) for name in _layout()[1]}

    def _lstat(self, path: Path) -> os.stat_result | None:
        """lstat of a file of the page's, its folders resolved beneath the sandbox: a folder
        the page swapped for a link leading out is never followed (None, as for a file gone)."""
        tree = self.sandbox.tree
        flags = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
        try:
            folder = safefs.open_beneath(tree.fd, tree.relative(path.parent), flags)
        except OSError:
            return None
        try:
            return os.stat(path.name, dir_fd=folder, follow_symlinks=False)
        except OSError:
            return None
        finally:
            os.close(folder)

    def reads(self) -> dict[str, str]:
        """Files of the reader's clone this page read (any of its commands, or the gate for
        it) in its sandbox or a copy of it, with the digest of their content as laid out
        (result_cache.py); where the file system keeps no access times, every file."""
        source = _pristine()
        files = _layout()[1]
        if result_cache.access_times_work(str(self.tmp)):
            self._harvest()
            files = tuple(sorted(self._read))
        return {name: result_cache.file_digest(source / name) or "-" for name in files}

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
        try:
            self.sandbox.close()  # the jail, then every file of the page, whatever it did
        finally:
            self._snapshots.close()

    def time_up(self) -> str | None:
        """Why no further block of the page may run: its time limit has passed. The jail
        refuses a command after it; this says so before a block, whose content tab the gate
        may first restore with its own work (which costs time with every file of the page)."""
        if time.monotonic() < self.sandbox.jail.deadline:
            return None
        return (
            f"the page used up its time limit ({self.page_timeout:.0f} s, the gate's own work "
            "for it included): the gate stopped here, and no block after this one was run"
        )

    # -- content tabs: alternatives run from the same state --------------------------------
    def enter(self, tab: tuple[int, int] | None) -> None:
        """Called before each block with its content tab. Tabs of one group are alternatives:
        each runs from the state the page had before the group; after the group the page goes
        on from the state its first tab left (the tab a reader sees first)."""
        previous = self._tab
        if tab == previous:
            return
        if previous is not None and previous[1] > 0 and (tab is None or tab[0] != previous[0]):
            self._restore(self._after_first[previous[0]])
        if tab is not None:
            group, index = tab
            if index == 0 and group not in self._before:
                self._before[group] = self._snapshot()
            elif index > 0:
                if group not in self._before:  # the first tab has no block
                    self._before[group] = self._snapshot()
                    self._after_first[group] = self._before[group]
                elif group not in self._after_first:
                    self._after_first[group] = self._snapshot()
                self._restore(self._before[group])
        self._tab = tab

    def _snapshot(self) -> _Snapshot:
        with profile.phase("content-tab snapshot"):  # a no-op unless profiling
            files = self._snapshots.take()  # copies only files changed since the last state
        return _Snapshot(
            files, copy.deepcopy(self.world), dict(self.env), set(self.exported), self.cwd
        )

    def _restore(self, snapshot: _Snapshot) -> None:
        if self.live is not None:
            self.live.stop()  # its data dir goes back with the files; it restarts from there
        self._harvest()
        with profile.phase("content-tab restore"):  # a no-op unless profiling
            self._snapshots.restore(snapshot.files)  # removes what is new, copies back changes
        self.hand_over()  # what the restore copied is the gate's: give it back to the page
        self.world = copy.deepcopy(snapshot.world)
        self.env = dict(snapshot.env)
        self.exported = set(snapshot.exported)
        self.cwd = snapshot.cwd

    # -- files -------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """A path as the page's shell would resolve it (~ is the sandbox home)."""
        if name == "~" or name.startswith("~/"):
            name = str(self.home) + name[1:]
        p = Path(name)
        return p if p.is_absolute() else self.cwd / p

    def reader_path(self, path: Path) -> str:
        """A sandbox path as the reader would write it."""
        for base, label in ((self.cwd, ""), (self.repo, "<clone>/"), (self.home, "~/")):
            try:
                return label + path.relative_to(base).as_posix()
            except ValueError:
                continue
        return str(path)

    def real_path(self, path: Path, verb: str = "write", leads_out_only: bool = False) -> Path:
        """`path` with its links followed, as the kernel resolves it beneath the page's sandbox
        (see beneath(): nothing outside is looked at, and a path leading out is refused in the
        same words whatever lies there). A path that does not exist yet is the real folder that
        would hold it and the plain names still missing; what is missing cannot be '..' (the
        kernel would not pass there either) nor a link to nothing (its name exists).
        `leads_out_only`: refuse only a path leading out, where the kernel says so or where
        its '..' climb out by text (`mkdir -p m/../../x` makes `m`, then climbs); `path`
        itself if it is missing."""
        try:
            real = self._real(path)
        except safefs.UnsafePath as exc:
            if not (leads_out_only and exc.errno in (errno.ENOENT, errno.ENOTDIR)):
                raise CommandError(
                    f"the gate will not {verb} '{self.reader_path(path)}': {exc.strerror}"
                ) from None
            real = path
        climbed = Path(os.path.normpath(real))
        if climbed != self.tmp and self.tmp not in climbed.parents:
            why = safefs.why(errno.EXDEV)
            raise CommandError(f"the gate will not {verb} '{self.reader_path(path)}': {why}")
        return real

    def _real(self, path: Path) -> Path:
        tree = self.sandbox.tree
        missing: list[str] = []  # innermost first
        found = path
        while True:  # the longest part of the path that exists, found by the kernel
            try:  # O_PATH: nothing is opened for reading; /proc names what the kernel found
                fd = safefs.open_beneath(tree.fd, tree.relative(found), os.O_PATH | os.O_CLOEXEC)
                break
            except safefs.UnsafePath as exc:
                if exc.errno != errno.ENOENT or found == tree.root:
                    raise
                missing.append(found.name)
                found = found.parent
        try:
            if ".." in missing:
                raise safefs.UnsafePath(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
            if missing and _entry_exists(missing[-1], fd):  # a link to nothing
                raise safefs.UnsafePath(errno.ENOENT, "it is a link to nothing", str(path))
            return Path(f"/proc/self/fd/{fd}").readlink().joinpath(*reversed(missing))
        finally:
            os.close(fd)

    def where(self, name: str, verb: str = "read") -> Path:
        """A path the page names, for a model to look at with the gate's rights (is it a file, a
        directory?): see beneath()."""
        return self.beneath(self.path(name), verb)

    def beneath(self, path: Path, verb: str = "read") -> Path:
        """`path`, once it is known to resolve beneath the page's sandbox, for a model to look
        at with the gate's rights (real_path: the kernel resolves it from the sandbox's
        descriptor; a path or link leading out is refused in the same words whether what lies
        beyond exists or not, and nothing outside is looked at, as Path.resolve would)."""
        self.real_path(path, verb, leads_out_only=True)
        return path

    def read(self, name: str) -> str:
        """A file of the page, read by the gate itself: resolved beneath the sandbox (never
        through a link leading out), a regular file only (never a FIFO or a device), at most
        safefs.READ_LIMIT bytes."""
        path = self.path(name)
        try:
            data = self.sandbox.read(path)
        except OSError as exc:
            raise CommandError(f"the gate will not read '{name}': {_reason(exc)}") from None
        return data.decode("utf-8", errors="replace")

    def is_projects(self, path: Path, relative: str, free: frozenset[str] = frozenset()) -> bool:
        """True where the page's file or folder `path` holds what the project's `relative` holds
        (the reader's clone as every sandbox is laid out from it, which no page can change): the
        same names, every file the same bytes, but the files `free` names at its top. A name
        or a copy says nothing of what a chart or a Dockerfile the page may have changed runs.
        The page's side is read as the page's files are (beneath the sandbox, never through a
        link leading out, a regular file only, no more bytes than the project's file has):
        what is missing, larger, of another kind or leads out is not the project's."""
        try:
            return self._holds(path, _pristine() / relative, free)
        except OSError:
            return False

    def _holds(self, path: Path, project: Path, free: frozenset[str]) -> bool:
        if not project.is_dir():
            expected = project.read_bytes()
            return self.sandbox.read(path, limit=len(expected)) == expected
        names = sorted(entry.name for entry in project.iterdir())
        with (
            self.sandbox.tree.opened(path, os.O_RDONLY | os.O_DIRECTORY) as folder,
            os.scandir(folder) as entries,
        ):
            if sorted(entry.name for entry in entries) != names:
                return False
        return all(n in free or self._holds(path / n, project / n, frozenset()) for n in names)

    def write(self, name: str, text: str, append: bool = False) -> Path:
        """Write (or append) what a model printed to a file the page names (a redirect): the
        gate's own write, so only beneath the sandbox, never through a link, only a file."""
        target = self.path(name)
        try:
            self.sandbox.write(target, text.encode("utf-8"), append=append)
        except OSError as exc:
            raise CommandError(f"cannot write '{name}': {_reason(exc)}") from None
        return target

    def save(self, name: str, text: str) -> Path:
        """Write a file the page gives (a titled block): only beneath the sandbox."""
        target = self.path(name)
        try:
            self.sandbox.makedirs(target.parent)
            self.sandbox.write(target, text.encode("utf-8"))
        except OSError as exc:
            raise CommandError(f"'{name}' cannot be written: {_reason(exc)}") from None
        return target

    def scratch(self) -> Path:
        """A fresh folder of the page's user for files the gate hands to a jailed tool."""
        return self.sandbox.scratch()

    def write_scratch(self, folder: Path, name: str, text: str) -> Path:
        """One file the gate writes in a scratch folder (see `scratch`)."""
        target = folder / name
        self.sandbox.write(target, text.encode("utf-8"))
        return target

    def _keep(self, out: Done | str | None) -> None:
        """Keep what a command printed, for the block's comparison: at most PRINTED_LIMIT
        characters for one block in all (each command's own output is capped in the jail; a
        block of many commands must not fill the gate's memory)."""
        kept, size = self._printed_size
        if kept is not self.printed:  # the list was reset for a new block
            size = 0
        size += len(out) if isinstance(out, str) else 0
        size += len(out.stdout) + len(out.stderr) if isinstance(out, Done) else 0
        if size > PRINTED_LIMIT:
            raise CommandError(
                f"the block's commands printed more than {PRINTED_LIMIT >> 20} MiB in all; "
                "the gate keeps no more of one block"
            )
        self._printed_size = (self.printed, size)
        self.printed.append(out)

    # -- running -----------------------------------------------------------------------------
    def process(
        self,
        argv: list[str],
        env: dict[str, str] | None = None,
        shown: tuple[Path, ...] = (),
        filtered: bool = True,
    ) -> Done:
        """Run a program in the page's jail (see isolation.py), in the page's directory
        (`filtered`: see Jail.run)."""
        if not self.jail.available:
            missing.require("bwrap", CheckFailure)  # skip; a failure in CI
        try:
            return self.jail.run(
                argv, self.cwd, env or self.program_env(), self.timeout, shown, filtered
            )
        except JailError as exc:
            raise CommandError(str(exc)) from None

    def program_env(self) -> dict[str, str]:
        """What a program the page starts sees: the environment it was given and what it
        exported, not its plain assignments, which stay in its shell (as in bash)."""
        return {k: v for k, v in self.env.items() if k in self._inherited or k in self.exported}

    def exported_env(self) -> dict[str, str]:
        """What the page itself exported (program_env without the environment it was given)."""
        return {k: v for k, v in self.env.items() if k in self.exported}

    def assignments(self, cmd: Command) -> dict[str, str]:
        """A command's own `NAME=value` words, expanded: what it alone gets beside
        program_env."""
        assigned = self.expand(self.real_words(cmd, 0, len(cmd.assignments)))
        return dict(word.partition("=")[::2] for word in assigned)

    def bash(self, script: str, check: bool = True) -> Done:
        # the system's bash (never one the page put on its PATH), no rc file, no profile;
        # pipefail: a pipeline fails when any member fails, not only the last. The page's plain
        # assignments are the shell's own again: set first, not exported to what it starts.
        given = self.program_env()
        own = [f"{k}={shlex.quote(v)}" for k, v in self.env.items() if k not in given]
        script = "; ".join([*own, script]) if own else script
        done = self.process([BASH, "--norc", "--noprofile", "-o", "pipefail", "-c", script])
        if check and done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise CommandError(f"failed with exit code {done.returncode}: {' '.join(detail[-3:])}")
        return done

    def expand(self, words: list[str]) -> list[str]:
        """Words expanded as bash expands them, in the page's environment and directory."""
        if all(PLAIN_WORD.fullmatch(word) for word in words):
            return list(words)  # nothing bash would change: no jailed bash for them
        done = self.bash('printf "%s\\0" ' + " ".join(words), check=False)
        if done.returncode != 0:
            raise CommandError(f"cannot expand the arguments: {done.stderr.strip()}")
        return done.stdout.split("\0")[:-1]

    def run(
        self, commands: list[Command], models: dict[str, Model], later: Sequence[Command] = ()
    ) -> None:
        """Run a block's commands in order; the first that does not hold raises CommandError.
        `later`: what the block runs after these (a transcript's next steps), for a command
        that never returns."""
        index = 0
        while index < len(commands):
            cmd = commands[index]
            position, length = cmd.pipeline
            members = commands[index : index + length] if position == 0 else [cmd]
            index += len(members)
            self.following = [*commands[index:], *later]
            try:
                self._run_pipeline(members, models)
            except CommandError as exc:
                exc.line = cmd.line  # type: ignore[attr-defined]
                raise
            except OSError as exc:  # the gate's own look at a path the page made: refused
                error = CommandError(f"the gate will not follow '{exc.filename}': {exc.strerror}")
                error.line = cmd.line  # type: ignore[attr-defined]
                raise error from None

    def _run_pipeline(self, members: list[Command], models: dict[str, Model]) -> None:
        heads = [m.argv[0] if m.argv else "" for m in members]
        if all(h in FILE_COMMANDS for h in heads):
            for member in members:
                if problem := randomness.substitution_problem(_given_words(member)):
                    raise CommandError(problem)
            for sub in (s for m in members for s in m.substitutions):
                self._check_substitution(sub, models)
            for member in members:
                self._file_command(member)
            self._keep(self.bash(" | ".join(m.text for m in members)))
            return
        first = members[0]
        for head in heads[1:]:
            if head not in FILTERS:
                raise CommandError(
                    f"'{head}' after a pipe is not modelled; filters: {', '.join(sorted(FILTERS))}"
                )
        before = len(self.printed)
        self._run_one(first, models)
        if len(members) > 1 and len(self.printed) == before + 1:
            self._run_filters(members[1:])

    def _run_filters(self, filters: list[Command]) -> None:
        """Run a pipeline's filters for real on what its modelled first member printed; the
        pipeline fails when one of them fails (pipefail). When the model cannot say what it
        printed (None), nothing runs and the block's output stays unknown, never real."""
        out = self.printed[-1]
        if out is None:
            return
        for member in filters:
            self.confine(member, self.expand(member.model_words[len(member.assignments) :]))
        text = out if isinstance(out, str) else out.stdout
        source = self.write_scratch(self.scratch(), "stdin", text)
        script = " | ".join(
            [f"{filters[0].text} < {shlex.quote(str(source))}", *(m.text for m in filters[1:])]
        )
        self.printed.pop()
        done = self.bash(script, check=False)
        self._keep(done)
        if done.returncode != 0:
            names = " | ".join(m.argv[0] for m in filters if m.argv)
            raise CommandError(
                f"the pipeline fails: its filters ({names}) exited with code {done.returncode} "
                f"on what the command printed"
            )

    def confine(self, cmd: Command, argv: list[str]) -> None:
        """Refuse a file command that would write outside the page's sandbox."""
        targets = [t for _, t in cmd.redirects]
        if argv and argv[0] in WRITERS:
            targets += [a for a in argv[1:] if not a.startswith("-")]
        for raw in targets:
            expanded = self.expand_target(raw) if raw not in argv else raw
            if expanded.startswith(("s/", "/dev/null")) or "=" in expanded.split("/")[0]:
                continue  # a sed expression or an assignment, not a path
            # refused only where it leads out (a word that is no path: the command says)
            self.real_path(self.path(expanded), "write", leads_out_only=True)

    def _check_substitution(self, sub: Command, models: dict[str, Model]) -> None:
        head = sub.argv[0] if sub.argv else ""
        if head not in FILE_COMMANDS:
            self._run_one(sub, models, substituted=True)
        else:
            self._file_command(sub)

    def _file_command(self, cmd: Command) -> None:
        """What the gate asks of a file command before it runs for real: it writes nowhere
        outside the sandbox (confine), and a secret it makes is not too short (randomness.py)."""
        argv = self.expand(cmd.model_words[len(cmd.assignments) :])
        self.confine(cmd, argv)
        targets = [self.expand_target(t) for _, t in cmd.redirects if "$(" not in t]
        if problem := randomness.rand_problem(argv, targets):
            raise CommandError(problem)

    def expand_target(self, raw: str) -> str:
        """A redirect's target, expanded; one a command substitution makes is refused, since
        the command would run for real to name it (the target is not among its words)."""
        if "$(" in raw or "`" in raw:
            raise CommandError(
                f"the redirect target {raw} is made by a command substitution: not modelled; "
                "write the file's name"
            )
        return self.expand([raw])[0]

    @staticmethod
    def real_words(cmd: Command, start: int = 0, stop: int | None = None) -> list[str]:
        """`cmd.words[start:stop]` as bash may expand them for real: as written when every
        command substitution in the command is a file command (`$(openssl rand ...)`,
        `$(mktemp -d)`), which runs in the jail as it would for the reader; otherwise with each
        substitution a placeholder, since its command was only checked against a model and
        must never run for real (`$(kubectl get secret ...)` would look for an API server)."""
        runnable = all(
            sub.argv and sub.argv[0] in FILE_COMMANDS and Session.real_words(sub) == sub.words
            for sub in cmd.substitutions
        )
        return (cmd.words if runnable else cmd.model_words)[start:stop]

    def _run_one(self, cmd: Command, models: dict[str, Model], substituted: bool = False) -> None:
        if problem := randomness.substitution_problem(_given_words(cmd)):
            raise CommandError(problem)
        for sub in cmd.substitutions:
            self._check_substitution(sub, models)
        if not cmd.argv:  # plain assignments: shell variables for the next commands
            raw = self.real_words(cmd, 0, len(cmd.assignments))
            self._assign(self.expand(raw), raw=raw)
            return
        head = cmd.argv[0]
        argv = self.expand(cmd.model_words[len(cmd.assignments) :])
        builtin = _BUILTINS.get(head)
        if builtin is not None:
            builtin(self, cmd, argv)
        elif head in FILE_COMMANDS:
            self._file_command(cmd)
            self._keep(self.bash(cmd.text))
        else:
            self._run_model(head, cmd, argv, models, substituted)

    def _assign(
        self, assignments: list[str], export: bool = False, raw: list[str] | None = None
    ) -> None:
        """NAME=value words (expanded): variables of the commands that follow. As in bash, the
        programs they start see one only once it is exported (`export`, or an earlier export of
        the same name): a plain assignment is the shell's own. `raw`: the words as written,
        which say whether the page typed the value itself (World.typed_variables)."""
        aligned = raw is not None and len(raw) == len(assignments)
        typed = self.world.typed_variables
        for assignment, written in zip(
            assignments, raw if raw is not None and aligned else assignments, strict=True
        ):
            name, _, value = assignment.partition("=")
            kept = _typed_value(written, value, typed) if aligned else None
            if kept is None:
                typed.pop(name, None)
            else:
                typed[name] = kept
        for assignment in assignments:
            name, _, value = assignment.partition("=")
            if not VARIABLE_NAME.fullmatch(name) or startup_variable(name):
                raise CommandError(
                    f"'{name}' changes how programs start, not what a command does: the gate "
                    "runs every block in an environment it builds itself and does not take it "
                    "from a page"
                )
            self.env[name] = value
            if export:
                self.exported.add(name)

    def _cd(self, cmd: Command, argv: list[str]) -> None:
        """`cd DIR` (`cd` alone: home), only to a directory that exists inside the sandbox.
        As bash's `cd` (-L): '..' is taken by text first, so `cd link/..` stays where it was;
        the folder kept is that logical one (the page's $PWD), and the files under it resolve
        as the kernel finds them. `cd -P`: the kernel's way, links followed first."""
        words, physical = argv[1:], False
        while words and words[0] in ("-L", "-P", "--"):  # bash's options, the last one wins
            option = words.pop(0)
            if option == "--":
                break
            physical = option == "-P"
        target = self.path(words[0] if words else str(self.home))
        logical = Path(os.path.normpath(target))
        # a guide works in the reader's clone or home: the gate reads files relative to cwd;
        # whether a place outside exists is not looked at (nor said)
        real = self.real_path(target if physical else logical, "change to")
        if not real.is_dir():
            raise CommandError(
                f"cd: there is no directory '{self.reader_path(target)}' at this point of the page"
            )
        self.cwd = real if physical else logical

    def _export(self, cmd: Command, argv: list[str]) -> None:
        """`export NAME=value ...`, or `export NAME` of a variable the page set before (as in
        bash, it then reaches the programs the page starts); a bare NAME never set is refused."""
        raw = self.real_words(cmd, 1)
        words = self.expand(raw)
        for i, assignment in enumerate(words):
            if "=" in assignment:
                written = [raw[i]] if len(words) == len(raw) else None
                self._assign([assignment], export=True, raw=written)
            elif assignment in self.env and VARIABLE_NAME.fullmatch(assignment):
                self.exported.add(assignment)
            else:
                raise CommandError(
                    f"export: '{assignment}' was not set earlier on this page: it exports nothing "
                    "(write NAME=value)"
                )

    def _run_model(
        self,
        head: str,
        cmd: Command,
        argv: list[str],
        models: dict[str, Model],
        substituted: bool = False,
    ) -> None:
        model = models.get(head) or models.get(head.rsplit("/", 1)[-1])
        if model is not None and "/" in head:
            self._program_is_there(head)
        if model is None:
            raise CommandError(
                f"no command model for '{head}': add one to the gate, or skip the block with "
                "<!-- gate: skip: <reason> -->"
            )
        self._keep(model(Invocation(argv, cmd, self, substituted)))

    def clone_of(self, path: Path) -> Path | None:
        """The clone of the project a path of the page lies in (self.views: the reader's, and
        the copies `git clone` made), compared as the kernel resolves the path beneath the
        sandbox; None when it lies in none."""
        real = self.real_path(path, "read", leads_out_only=True)
        roots = [self.real_path(view, "read", leads_out_only=True) for view in self.views]
        return next((r for r in roots if real == r or r in real.parents), None)

    def _is_file(self, path: Path) -> bool:
        """A regular file of the page at `path`, found as the kernel resolves it beneath the
        sandbox (a link leading out is no file of the page's; nothing outside is looked at)."""
        fd = self._opened_path(path, 0)
        if fd is None:
            return False
        try:
            return stat.S_ISREG(os.fstat(fd).st_mode)
        finally:
            os.close(fd)

    def _link_target(self, path: Path) -> str | None:
        """What a link of the page at `path` holds (its text, never followed), read through its
        folder opened beneath the sandbox; None when it is no link."""
        folder = self._opened_path(path.parent, os.O_DIRECTORY)
        if folder is None:
            return None
        try:
            return os.readlink(path.name, dir_fd=folder)
        except OSError:
            return None
        finally:
            os.close(folder)

    def _opened_path(self, path: Path, flags: int) -> int | None:
        """An O_PATH descriptor of `path` resolved beneath the sandbox (as _real opens one:
        openat2 takes no other flags with O_PATH), or None where there is none."""
        tree = self.sandbox.tree
        try:
            return safefs.open_beneath(
                tree.fd, tree.relative(path), os.O_PATH | os.O_CLOEXEC | flags
            )
        except OSError:
            return None

    def _program_is_there(self, head: str) -> None:
        """A program the page names by its path is there: where the project's set-up puts it
        in the reader's clone (tools.clone_programs: `.tools/bin/helm`, `.venv/bin/python`),
        or a page-made clone's, or a file the page made (a build's `result/bin/...`), or the
        machine's /usr/bin and /bin. Another path outside the clone and the home names the
        reader's own machine, which the gate cannot see."""
        path = Path(os.path.normpath(self.path(head)))
        root = self.clone_of(path) if path.is_relative_to(self.tmp) else None
        if root is not None:
            real = self.real_path(path, "read", leads_out_only=True)
            if real.relative_to(root).as_posix() in tools.clone_programs():
                return
        if path.parent in _SYSTEM_BIN:  # the machine's own, as the page's PATH finds it
            return
        if not path.is_relative_to(self.tmp):
            raise CommandError(
                f"'{head}' is a program of the reader's machine, which the gate cannot see: "
                "name it as the PATH finds it, or by where the project's set-up puts it"
            )
        if self._is_file(path):
            return
        first = head.removeprefix("./").split("/", 1)[0]
        target = self._link_target(self.path(first))
        built = Path(target).name.split("-", 1)[-1] if target else ""
        made = ", ".join(sorted(tools.clone_programs()))
        raise CommandError(
            f"there is no '{head}' at this point of the page"
            + (
                f": '{first}' is the build of {built}, not of {head.rsplit('/', 1)[-1]}"
                if built
                else f" (the project's set-up makes {made})"
            )
        )


def _typed_value(written: str, value: str, typed: dict[str, str]) -> str | None:
    """What an assignment as written (`NAME=...`) gives its variable when the page typed the
    value itself, or None (the reader's: a variable or command the shell expands). Typed: in
    single quotes; with no `$` or backquote once the variables the page typed are put in
    (`CREDS="admin:$PW"` after `PW=x`); a `$(printf TEXT | base64)` of the page's text, kept as
    written (what it prints is read where it is used)."""
    raw = written.partition("=")[2]
    if single_quoted(raw) is not None:  # the shell expands nothing in it
        return value
    bare = raw.strip('"')
    if bare.startswith("$(") and constant_base64(bare) is not None:
        return bare
    put_in = with_typed(raw, typed)
    return value if "$" not in put_in and "`" not in put_in else None


def _given_words(cmd: Command) -> list[str]:
    """The words a command sets things with: its own, and its here-document's (`cat > .env
    <<EOF` with `NAME=$(...)` lines, which bash expands)."""
    return [*cmd.words, *(cmd.heredoc or "").splitlines()]


#: where a Debian machine keeps its programs, on every page's PATH (page_path)
_SYSTEM_BIN = (Path("/usr/bin"), Path("/bin"))


#: shell builtins that change the session itself (its directory, its variables)
_BUILTINS: dict[str, Callable[[Session, Command, list[str]], None]] = {
    "cd": Session._cd,
    "export": Session._export,
}


def page_path() -> str:
    """The PATH of a page's commands: the project's tools, Python's folder, /usr/bin, /bin."""
    python_bin = str(Path(tools.find("python3") or "/usr/bin/python3").parent)
    tools_bin = str(tools.TOOLS_BIN.resolve())  # not through links the jail may hide
    return os.pathsep.join((tools_bin, python_bin, "/usr/bin", "/bin"))


@cache
def clone_files() -> tuple[str, ...] | None:
    """What a fresh clone holds: the files git tracks, plus new files it does not ignore."""
    if not (REPO_ROOT / ".git").exists():
        return None
    done = subprocess.run(
        [
            "git",
            "-C",
            str(REPO_ROOT),
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        return None
    return tuple(sorted({f for f in done.stdout.split("\0") if f}))


@cache
def _pristine() -> Path:
    """The reader's clone, copied once per run (removed at exit): every page's sandbox is laid
    out from it, and content tabs' states take the content of unchanged files from it. It lies
    outside every page's writable directory, so no page command can change it."""
    # named as sandboxes are (betrace-page-<PID>-...), so a killed run's copy is swept with them
    root = Path(tempfile.mkdtemp(prefix=f"betrace-page-{os.getpid()}-clone")).resolve()
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    pristine = root / "distribution"
    files = clone_files()
    if files is None:  # not a git checkout (an unpacked archive): copy all but tool state
        shutil.copytree(REPO_ROOT, pristine, ignore=_IGNORE, symlinks=True)
        return pristine
    pristine.mkdir()
    for folder in sorted({str(Path(name).parent) for name in files}):
        (pristine / folder).mkdir(parents=True, exist_ok=True)
    for name in files:
        source = REPO_ROOT / name
        if source.exists() or source.is_symlink():  # else deleted in the working tree
            shutil.copy2(source, pristine / name, follow_symlinks=False)
    return pristine


@cache
def _links() -> dict[str, str | None]:
    """The pristine clone's links, each with the clone's regular file it leads to (through any
    chain of links), or None when it leads to a folder, outside the clone or nowhere."""
    root = _pristine()
    files = set(_layout()[1])
    links: dict[str, str | None] = {}
    for name in files:
        if not (root / name).is_symlink():
            continue
        target = Path(os.path.realpath(root / name))
        inside = target.is_relative_to(root) and target.is_file()
        relative = str(target.relative_to(root)) if inside else None
        links[name] = relative if relative in files else None
    return links


@cache
def _layout() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The pristine clone's folders (parents first) and its other entries (files, links)."""
    tree = scan(_pristine())  # links to folders are entries of their own, never followed
    folders = sorted(path for path, entry in tree.items() if entry.kind == "d")
    return tuple(folders), tuple(path for path, entry in tree.items() if entry.kind != "d")


def _copy_clone(target: Path) -> None:
    """Lay out the reader's clone in the sandbox (working-tree contents of the clone's files, as
    they were when the run's first page began): one mkdir per folder, one copy per file."""
    source = _pristine()
    folders, others = _layout()
    profile.note("sandbox", "each page's own copy of the run's pristine clone (no overlay mount)")
    profile.note("content-tab states", "manifests; only files changed since the last are copied")
    target.mkdir()
    for folder in folders:
        (target / folder).mkdir()
    for name in others:
        if (source / name).is_symlink():
            (target / name).symlink_to((source / name).readlink())
        else:  # unread: its first read stamps it (result_cache.py)
            result_cache.copy2_unread(source / name, target / name)
