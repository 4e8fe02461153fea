"""Containment of a page by the operating system: every process a page starts runs in a jail.

A page is untrusted input (anyone can open a pull request), so the argument checks in
`session.py` are only a second line. The first is bubblewrap (`bwrap`), with these walls:

- filesystem: built from an allow-list, never from the machine's root: the programs (/usr and
  the links into it, the Nix store but not the rest of /nix) and the entries of /etc programs
  need (ETC_ENTRIES; private keys hidden), read-only; the folders and program files the gate's
  tools live in (its Python, virtualenv, the project and its tools), read-only; the page's own
  sandbox directory, writable; a private, empty /tmp. Nothing else of the machine exists in the
  jail: not the homes, /run (Docker and other daemon sockets), /var, /opt, /srv, /mnt, /nix/var
  (a Nix daemon's socket), the rest of /etc or whatever else a machine keeps at its root; the
  programs that build the jail start at /, and the page's working folder is entered inside the
  jail as the page's user, never with the gate's rights;
- network: one network namespace per page with nothing in it but its own loopback, so a page
  reaches no host, no proxy and no listener of the machine, while the page's own steps (and the
  live tier's real backend) can still talk to each other on 127.0.0.1;
- processes: a PID namespace per command, so nothing it starts outlives it (`setsid`, `nohup`
  and double forks included), all capabilities dropped, resource limits (rlimits, which hold
  whatever the cgroup version) on address space, file size, core dumps and the number of
  processes of the page's user, plus cgroups where the machine lets the gate make them (v1
  `pids` and `memory`, or v2 `pids.max` and `memory.max`);
- environment: the programs that build the jail (prlimit, nsenter, bwrap, setpriv) run by
  their full path with the gate's own environment; the page's variables are set only inside,
  after the drop to the page's user (`env -i`), so nothing a page exports (PATH, LD_PRELOAD)
  reaches a program that runs with the gate's rights;
- time and output: a wall-clock limit per command and per page, and a cap on what a command
  prints (the gate reads at most OUTPUT_LIMIT bytes of each stream, then stops the command).

Where `bwrap` is missing, the missing-tool rule holds: blocks that run commands are skipped
with the reason, and under BETRACE_REQUIRE_TOOLS=1 (CI) they fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO

from .. import GATE_SOURCE, REPO_ROOT, tools
from . import profile, python_minimum, safefs, seccomp

#: Bytes of stdout (and of stderr) a command may print before it is stopped.
OUTPUT_LIMIT = 8 * 1024 * 1024
#: Address space of every process in the jail. Generous for helm, nix and Compose (Go, Boehm GC).
MEMORY_LIMIT = 4 * 1024 * 1024 * 1024
#: Largest file a page may write.
FILE_LIMIT = 512 * 1024 * 1024
#: Processes (and threads) one page may have at once, where a pids cgroup can be made.
PROCESS_LIMIT = 1024
#: Memory of all the processes of one page together, where a memory cgroup can be made.
PAGE_MEMORY = 6 * 1024 * 1024 * 1024
#: Size of each RAM-backed folder of the jail (its /tmp and /dev/shm).
TMPFS_SIZE = 256 * 1024 * 1024
#: Attempts at the holder of a page's network namespace, and how long each may take to start.
HOLDER_TRIES = 3
HOLDER_START_TIMEOUT = 30.0
#: Seconds a command's PID namespace may take to end after its command did (or was killed).
END_WAIT = 10.0
#: Attempts at a command whose jail bwrap could not build because a mount went away meanwhile.
SETUP_TRIES = 3
#: The user a page runs as: nobody. Root without capabilities could still write /proc/sys
#: (core_pattern runs a program as the host's root) and read root's files; nobody cannot.
PAGE_UID = PAGE_GID = 65534
#: Drops to the page's user inside the jail, after bwrap set it up; no_new_privs keeps set-uid
#: programs from giving any privilege back.
#: Processes (and threads) the page's user may have at once, counted across the machine
#: (RLIMIT_NPROC): the bound on fork bombs that holds without a cgroup.
USER_PROCESS_LIMIT = 4096


def _program(name: str) -> str:
    """A program the gate runs with its own rights, by its full path, found on the system's
    folders (never on a PATH a page could have set)."""
    for folder in ("/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        if os.access(Path(folder, name), os.X_OK):
            return str(Path(folder, name))
    return name


#: The environment of the programs that build the jail: the gate's, never the page's.
#: Their working folder: the root, never a folder of the page's (see run_bounded).
OUTSIDE_CWD = "/"
OUTER_ENV = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}
DROP = [_program("setpriv"), f"--reuid={PAGE_UID}", f"--regid={PAGE_GID}", "--clear-groups"]
#: and no capability left to raise again, in any set (the bounding set needs CAP_SETPCAP to
#: empty, which bwrap keeps for setpriv with the two it needs to change user)
DROP += ["--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--"]
#: Enters the page's working folder as the page's user, after the drop, then runs the rest.
#: Never bwrap's --chdir: bwrap changes folder as root, still holding a descriptor of the
#: machine's /proc (its fd 3), so a working folder swapped for a link to /proc/self/fd/3 led
#: a page into the machine's /proc, and from there into any process's root.
ENTER = [_program("sh"), "-c", 'cd -P -- "$1" || exit 125; shift; exec "$@"', "sh"]
#: The machine's folders a page sees (read-only), whole: programs, their libraries and their
#: configuration. Everything else of the machine's root is absent from the jail, but for the
#: folders the gate's own tools live in (`_shown_again`). On a merged-/usr system /bin, /lib
#: and the rest are links into /usr, made as the same links in the jail.
SYSTEM_DIRS = ("/usr", "/nix/store", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: The entries of /etc a page sees: what programs read to start, name users and hosts, load
#: libraries, pick a program (Debian's alternatives), check certificates and tell the time.
#: An allow-list: /etc also holds what machines keep secret from nobody's eyes only by habit
#: (pip.conf, npmrc, gitconfig and apt sources with tokens in URLs, environment, nix.conf,
#: netrc, host keys), so nothing else of it exists in the jail.
ETC_ENTRIES = (
    *("passwd", "group", "nsswitch.conf", "hosts", "host.conf", "resolv.conf", "gai.conf"),
    *("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "ssl", "pki"),
    *("ca-certificates", "ca-certificates.conf", "localtime", "timezone", "mime.types"),
    *("protocols", "services", "networks", "rpc", "os-release", "debian_version", "mtab"),
    *("locale.alias", "magic", "magic.mime", "terminfo", "shells", "netconfig"),
)
#: Inside those, what holds secrets of the machine: hidden (an empty folder).
HIDDEN_DIRS = ("/etc/ssl/private", "/etc/pki/tls/private")

#: Replaced by an empty tmpfs of the jail's own: a page sees nothing of the host's /tmp.
PRIVATE_TMP = "/tmp"  # noqa: S108 - named to be hidden, never written


#: Variables that change how bash (or any program) starts rather than what a command does: a
#: page that sets one could make a later block's failing commands pass (BASH_ENV runs a file
#: before every script, SHELLOPTS/BASHOPTS switch errors off, an exported function replaces a
#: command, LD_PRELOAD loads code into every program). The gate never takes them from a page.
STARTUP_VARIABLES = frozenset(
    {"BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "PROMPT_COMMAND", "PS4", "IFS", "GLOBIGNORE"}
    | {"BASH_XTRACEFD", "EXECIGNORE", "POSIXLY_CORRECT", "CDPATH", "INPUTRC", "HISTFILE"}
    | {"PYTHONSTARTUP", "PYTHONPATH", "PYTHONHOME", "PYTHONINSPECT", "PERL5OPT", "GCONV_PATH"}
)
#: Prefixes of such variables (exported functions, the dynamic loader, allocator hooks).
STARTUP_PREFIXES = ("BASH_FUNC_", "LD_", "MALLOC_", "GLIBC_TUNABLES")


def startup_variable(name: str) -> bool:
    """True for a variable the gate never takes from a page (see STARTUP_VARIABLES)."""
    return name in STARTUP_VARIABLES or name.startswith(STARTUP_PREFIXES)


class JailError(Exception):
    """A command broke a limit of the jail (time, output); the message says which."""


@dataclass
class Done:
    """A finished command: exit status and what it printed (decoded, invalid bytes replaced)."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def _system() -> list[str]:
    """bwrap arguments showing SYSTEM_DIRS and /etc's ETC_ENTRIES as they are, with the
    secrets in them hidden."""
    argv: list[str] = []
    for name in SYSTEM_DIRS:  # /nix of /nix/store made reachable by all first
        argv += _traversable_parents(Path(name), set(), set()) + _as_it_is(Path(name))
    argv += ["--perms", "0755", "--dir", "/etc"]
    for name in ETC_ENTRIES:
        argv += _as_it_is(Path("/etc", name))
    for hidden in HIDDEN_DIRS:
        if Path(hidden).is_dir() and not Path(hidden).is_symlink():
            argv += ["--tmpfs", hidden]
    return argv


def _as_it_is(path: Path) -> list[str]:
    """bwrap arguments showing a system path: a link made again as the same link, anything
    else bound read-only; nothing for what this machine lacks."""
    if path.is_symlink():
        return ["--symlink", str(path.readlink()), str(path)]
    return ["--ro-bind", str(path), str(path)] if path.exists() else []


def _in_system(path: Path) -> bool:
    """True for a path the jail shows anyway (under a folder of SYSTEM_DIRS, or a link of
    them into /usr)."""
    return any(path == Path(d) or Path(d) in path.parents for d in SYSTEM_DIRS)


def _shown_again() -> list[Path]:
    """Read-only paths outside SYSTEM_DIRS that the tools need: the Python installation the
    gate runs on (pyenv keeps it under /root), its virtualenv, the project and its tools; and
    the program files (never their folders) that the tools' links lead to (a test may run the
    gate on a copy of the project under /tmp whose tools are links to another checkout's) or
    that the gate found on its PATH (a user's bin folder, a Nix profile), or the page would be
    blamed for a program it cannot see. A path inside another of them is shown with it; one
    that would show a folder the jail hides (a home, the machine's root) is refused."""
    wanted = {Path(sys.base_prefix), Path(sys.prefix), REPO_ROOT, tools.TOOLS_BIN.resolve()}
    wanted.add(GATE_SOURCE)
    # the older Pythons a page's Python example is run with (python_minimum.py)
    wanted.update(program.parents[1] for _, program in python_minimum.older_pythons())
    if tools.TOOLS_BIN.is_dir():
        wanted.update(entry.resolve() for entry in tools.TOOLS_BIN.iterdir())
    for name in tools.JAIL_PROGRAMS:
        if found := tools.find(name):
            wanted.update((Path(found), Path(found).resolve()))
    outside = sorted(p for p in wanted if not _in_system(p) and p.exists())
    shown = [p for p in outside if not any(o in p.parents for o in outside)]
    for path in shown:
        _refuse_to_show(path)
    return shown


def _refuse_to_show(path: Path) -> None:
    """A shown path must not hold what the jail hides: the machine's root, a home, /tmp, /run,
    /var, /etc or a hidden path (binding it would show them again)."""
    hidden = (*HIDDEN_DIRS, "/etc", PRIVATE_TMP, "/root", "/home", "/run", "/var")
    protected = [Path(h) for h in hidden] + [Path.home()]
    if path == Path("/") or any(path == q or path in q.parents for q in protected):
        raise JailError(
            f"the gate will not show '{path}' to pages: it holds folders their jail hides "
            "(a tool, Python or the project lies there; move it into a folder of its own)"
        )


def project_git_dirs() -> list[Path]:
    """The project checkout's git folders: its `.git`, or for a worktree (whose `.git` is a
    file naming its folder) the repository's own. A checkout may keep its remote's credentials
    there (`.git/config`); pages never need it (their clone is a copy without it)."""
    dot_git = REPO_ROOT / ".git"
    if dot_git.is_dir():
        return [dot_git]
    try:
        named = dot_git.read_text(encoding="utf-8", errors="replace").partition("gitdir:")[2]
    except OSError:
        return []
    if not named.strip():
        return []
    git_dir = (REPO_ROOT / named.strip()).resolve()
    return [git_dir.parents[1] if git_dir.parent.name == "worktrees" else git_dir]


def _traversable_parents(path: Path, made: set[Path], bound: set[Path]) -> list[str]:
    """bwrap arguments making the folders between the jail's root (or its /tmp) and `path`,
    mode 0755, so that the page's user can reach what is bound at `path` (bwrap would make
    them 0700, for root alone). `made`, `bound`: the folders made and bound so far (what is
    inside a bound one exists)."""
    argv: list[str] = []
    for parent in reversed(path.parents[:-1]):
        if parent in made or parent == Path(PRIVATE_TMP) or _in_system(parent):
            continue
        if any(b == parent or b in parent.parents for b in bound):
            continue
        argv += ["--perms", "0755", "--dir", str(parent)]
        made.add(parent)
    return argv


def _own_cgroup(controller: str) -> Path | None:
    """Where this process sits in a cgroup v1 hierarchy (children may be made below it)."""
    base = Path("/sys/fs/cgroup") / controller
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return base / path.lstrip("/")
    return None


#: a page's cgroup, as `Jail` names it: the gate's process id, then the holder's
_PAGE_GROUP = re.compile(r"betrace-page-(\d+)-\d+")


def _group_parents() -> list[Path]:
    """Where this process makes its pages' cgroups: its own group of each hierarchy."""
    if (Path("/sys/fs/cgroup") / "cgroup.controllers").is_file():
        v2 = _cgroup_v2_parent()
        return [] if v2 is None else [v2]
    found = (_own_cgroup(controller) for controller in _CONTROLLERS)
    return [parent for parent in found if parent is not None]


def remove_stale_cgroups() -> list[Path]:
    """Remove the pages' cgroups that a gate process left when it ended before its pages
    closed (a run killed, or a task the kernel had not yet reaped when the page closed): only
    groups named as `Jail` names them, in this process's own groups, whose gate process no
    longer runs. The kernel refuses to remove a group that still has a task, so a group in use
    stays."""
    removed = []
    for parent in _group_parents():
        try:
            children = [entry for entry in parent.iterdir() if entry.is_dir()]
        except OSError:
            continue
        for group in children:
            found = _PAGE_GROUP.fullmatch(group.name)
            if found is None or process_running(int(found[1])):
                continue
            try:
                group.rmdir()
            except OSError:
                continue
            removed.append(group)
    return removed


def _cgroup_v2_parent() -> Path | None:
    """This process's own group of the unified hierarchy, if that is mounted."""
    base = Path("/sys/fs/cgroup")
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    own = next((line[3:] for line in lines if line.startswith("0::")), None)
    if own is None or not (base / "cgroup.controllers").is_file():
        return None
    return base / own.lstrip("/")


def _cgroup_v2(name: str) -> list[Path]:
    """A cgroup v2 group for one page, where the unified hierarchy is mounted and writable."""
    parent = _cgroup_v2_parent()
    if parent is None:
        return []
    group = parent / name
    try:
        group.mkdir(exist_ok=True)
        for knob, value in (("pids.max", PROCESS_LIMIT), ("memory.max", PAGE_MEMORY)):
            with contextlib.suppress(OSError):  # a controller not delegated here
                (group / knob).write_text(str(value))
    except OSError:
        with contextlib.suppress(OSError):
            group.rmdir()
        return []
    return [group]


#: the cgroup v1 controllers a page gets a group of, and the limit each sets
_CONTROLLERS: dict[str, tuple[str, int] | None] = {
    "pids": ("pids.max", PROCESS_LIMIT),
    "memory": ("memory.limit_in_bytes", PAGE_MEMORY),
    "cpuacct": None,  # no limit: it counts the CPU time of the page's programs (profile.py)
}


def _cgroups(name: str) -> list[Path]:
    """Cgroups (v1) for one page: at most PROCESS_LIMIT tasks and PAGE_MEMORY bytes in all,
    where the machine lets the gate make them; each missing one is said in the docstring of the
    module (then the per-process limits and the time limit are the bounds)."""
    made: list[Path] = []
    if (Path("/sys/fs/cgroup") / "cgroup.controllers").is_file():
        return _cgroup_v2(name)
    for controller, knob in _CONTROLLERS.items():
        parent = _own_cgroup(controller)
        if parent is None or not (parent / "cgroup.procs").exists():
            continue
        group = parent / name
        try:
            group.mkdir(exist_ok=True)
            if knob is not None:
                (group / knob[0]).write_text(str(knob[1]))
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()
            continue
        made.append(group)
    return made


def _limits(cgroups: list[Path]) -> list[str]:
    """The command prefix that applies the resource limits (and joins the page's cgroups) before
    anything of the page runs: programs, not a preexec hook, so no lock of the gate is involved."""
    prefix = [_program("prlimit"), f"--as={MEMORY_LIMIT}", f"--fsize={FILE_LIMIT}", "--core=0"]
    prefix += [f"--nproc={USER_PROCESS_LIMIT}", "--"]
    if cgroups:
        joins = " && ".join(f'echo $$ > "${i}"' for i in range(1, len(cgroups) + 1))
        files = [str(group / "cgroup.procs") for group in cgroups]
        script = f'{joins} && shift {len(cgroups)} && exec "$@"'
        prefix += [_program("sh"), "-c", script, "join-cgroups", *files]
    return prefix


def _settable(name: str, value: str) -> bool:
    return bool(name) and "=" not in name and "\0" not in name + value


def inner_env(env: dict[str, str]) -> list[str]:
    """`env -i NAME=value ...`: the page's environment, set inside the jail after the drop to
    the page's user, and nothing else (no variable of the gate's own)."""
    names = [k for k in env if _settable(k, env[k])]
    return [_program("env"), "-i", "--", *(f"{k}={env[k]}" for k in names)]


def hand_over(root: Path) -> None:
    """Give a folder the gate made, and all under it, to the page's user (descriptor walk,
    links themselves changed, never what they point at); it stays traversable (0755)."""
    tree = safefs.Tree(root)
    try:
        tree.chown_tree(root, PAGE_UID)
        os.fchmod(tree.fd, 0o755)
    finally:
        tree.close()


@dataclass
class Jail:
    """The walls of one page: its writable directory, its network namespace, its limits."""

    writable: Path
    deadline: float  # time.monotonic() after which no command of the page may run
    bwrap: str = field(default_factory=lambda: tools.find("bwrap") or "")
    _holder: subprocess.Popen[bytes] | None = None
    _netns: str | None = None
    _cgroups: list[Path] = field(default_factory=list)

    @cached_property
    def _shown_again(self) -> list[Path]:
        """_shown_again() once per jail (a page): it asks the tool registry for every program
        (18 ms), which would otherwise be paid by every command of the page."""
        return _shown_again()

    @property
    def available(self) -> bool:
        return bool(self.bwrap)

    def _walls(
        self, shown: tuple[Path, ...], info_fd: int | None, seccomp_fd: int | None
    ) -> list[str]:
        argv = [self.bwrap, *_system()]
        if info_fd is not None:  # bwrap writes the PID of the namespace's first process there
            argv += ["--info-fd", str(info_fd)]
        if seccomp_fd is not None:  # the system calls no page makes (seccomp.py)
            argv += ["--seccomp", str(seccomp_fd)]
        argv += ["--perms", "1777", "--size", str(TMPFS_SIZE), "--tmpfs", PRIVATE_TMP]
        made: set[Path] = set()
        bound: set[Path] = set()
        for path in (*self._shown_again, *shown):  # after the private /tmp, before the sandbox
            argv += _traversable_parents(path, made, bound)
            argv += ["--ro-bind", str(path), str(path)]
            bound.add(path)
        for git_dir in project_git_dirs():  # after the project was shown, where it is
            if any(b == git_dir or b in git_dir.parents for b in bound):
                argv += ["--tmpfs", str(git_dir)]
        argv += _traversable_parents(self.writable, made, bound)
        argv += ["--bind", str(self.writable), str(self.writable)]
        argv += ["--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys", "--dev", "/dev"]
        argv += ["--perms", "1777", "--size", str(TMPFS_SIZE), "--tmpfs", "/dev/shm"]  # noqa: S108
        argv += ["--hostname", "betrace-page"]
        argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        # every capability dropped but the three setpriv needs to become nobody, right after
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        argv += ["--cap-add", "CAP_SETPCAP"]
        argv += ["--die-with-parent", "--new-session"]
        return [*argv, "--chdir", "/"]  # the page's folder: entered as its user (ENTER)

    def _network(self) -> str:
        """The page's network namespace: made once by a holder process that only sleeps.

        bubblewrap reports the holder's PID as soon as it is cloned, before its set-up (mounts,
        loopback) is done, and a set-up can fail on a busy machine (a mount that goes away while
        it is remounted read-only). So the holder says "ready" only when it runs, and a holder
        that died first is made again, at most HOLDER_TRIES times, then the error is bwrap's."""
        if self._netns is None:
            said = ""
            for _ in range(HOLDER_TRIES):
                child, said = self._start_holder()
                if child is not None:
                    self._netns = f"/proc/{child}/ns/net"
                    self._cgroups = _cgroups(f"betrace-page-{os.getpid()}-{child}")
                    break
            else:
                raise JailError(f"bubblewrap could not make a network namespace: {said}")
        assert self._netns is not None
        if self._holder is not None and self._holder.poll() is not None:
            raise JailError("the page's network namespace went away (its holder process died)")
        return self._netns

    def _start_holder(self) -> tuple[int | None, str]:
        """Start the holder; its namespace PID once it runs, or None and what bwrap said."""
        read, write = os.pipe()
        holder = [self.bwrap, *_system(), "--unshare-net", "--unshare-pid"]
        holder += ["--die-with-parent", "--info-fd", str(write), _program("sh"), "-c"]
        proc = subprocess.Popen(
            [*holder, f"echo ready && exec {_program('sleep')} infinity"],
            env=OUTER_ENV,
            pass_fds=(write,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        os.close(write)
        assert proc.stdout is not None and proc.stderr is not None
        with os.fdopen(read, "rb") as info:
            text = info.read(4096).decode("utf-8", "replace")
        ready = _read_line(proc.stdout, HOLDER_START_TIMEOUT)
        proc.stdout.close()
        try:
            child = int(json.loads(text)["child-pid"])
        except (ValueError, KeyError, TypeError):
            child = None
        if ready == b"ready\n" and child is not None and proc.poll() is None:
            proc.stderr.close()
            self._holder = proc
            return child, ""
        _kill_group(proc)
        said = proc.stderr.read(4096).decode("utf-8", "replace").strip()
        proc.stderr.close()
        return None, said or text.strip() or f"the holder exited with {proc.returncode}"

    def wrap(
        self,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        shown: tuple[Path, ...] = (),
        info_fd: int | None = None,
        seccomp_fd: int | None = None,
    ) -> list[str]:
        """The command line that runs argv inside the jail with exactly `env` as its environment
        (`shown`: extra read-only paths; `info_fd`: where bwrap says its child's PID, see
        run_bounded). Run it with OUTER_ENV."""
        netns = self._network()
        enter = [_program("nsenter"), f"--net={netns}", "--"]
        walls = self._walls(shown, info_fd, seccomp_fd)
        # PWD: the folder as the page named it (a link kept), as a reader's shell has it
        inside = [*DROP, *ENTER, str(cwd), *inner_env({**env, "PWD": str(cwd)}), *argv]
        return [*_limits(self._cgroups), *enter, *walls, "--", *inside]

    def run(
        self,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        timeout: float,
        shown: tuple[Path, ...] = (),
        filtered: bool = True,
    ) -> Done:
        """Run argv in the jail (`shown`: extra read-only paths, such as the live tier's backend
        program); past its time or output limit its whole jail is killed. `filtered=False`:
        without the seccomp filter, for the gate's own code only (it runs nothing of the
        page's), where it needs what the filter refuses pages."""
        done = self._run_once(argv, cwd, env, timeout, shown, filtered)
        for _ in range(SETUP_TRIES - 1):
            if not _set_up_failed(done):
                break
            done = self._run_once(argv, cwd, env, timeout, shown, filtered)
        return done

    def _run_once(
        self,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        timeout: float,
        shown: tuple[Path, ...],
        filtered: bool,
    ) -> Done:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise JailError("the page used up its time limit; later commands were not run")
        with _info_pipe() as info, _filter() if filtered else contextlib.nullcontext(()) as kept:
            wrapped = self.wrap(argv, cwd, env, shown, info[1], *kept)
            if not profile.ACTIVE:
                return run_bounded(wrapped, OUTER_ENV, min(timeout, left), info, kept)
            # jailed programs are reaped inside their PID namespace, so their CPU time never
            # reaches this process's children's usage: the page's cpuacct group counts it
            before, start = self._cpu_used(), time.perf_counter()
            try:
                return run_bounded(wrapped, OUTER_ENV, min(timeout, left), info, kept)
            finally:
                after = self._cpu_used()
                used = after - before if before is not None and after is not None else None
                profile.jailed(profile.tool_name(argv), time.perf_counter() - start, used)

    def _cpu_used(self) -> float | None:
        """CPU seconds the page's programs used so far (None where no cpuacct group exists)."""
        for group in self._cgroups:
            if "cpuacct" in group.parts:
                with contextlib.suppress(OSError, ValueError):
                    return int((group / "cpuacct.usage").read_text()) / 1e9
        return None

    def start(
        self, argv: list[str], cwd: Path, env: dict[str, str], log: Path, shown: list[Path]
    ) -> subprocess.Popen[bytes]:
        """Start a long-running program (the live tier's backend) in the page's namespace; it
        is stopped by the caller or, at the latest, with the page (its jail dies with the gate).
        Its log is a file of the gate's own (outside the sandbox), capped at FILE_LIMIT."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        with os.fdopen(os.open(log, flags, 0o600), "wb") as out, _filter() as kept:
            return subprocess.Popen(
                self.wrap(argv, cwd, env, tuple(shown), None, *kept),
                cwd=OUTSIDE_CWD,  # the jail enters `cwd` (see run_bounded)
                env=OUTER_ENV,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=kept,
            )

    def close(self) -> None:
        if self._holder is not None:
            _kill_group(self._holder)
            self._holder = None
        for group in self._cgroups:
            for _ in range(50):  # the kernel frees a group once its last task is reaped
                try:
                    group.rmdir()
                    break
                except OSError:
                    time.sleep(0.02)
        self._cgroups = []
        self._netns = None


def _set_up_failed(done: Done) -> bool:
    """bwrap failed while it built the jail, before the page's command ran (so running it
    again is safe; see tools.bwrap_lost_a_mount). A page that prints that line itself only gets
    its command run again, within its time limit."""
    return tools.bwrap_lost_a_mount(done.returncode, done.stdout, done.stderr)


def _read_line(stream: IO[bytes], limit: float) -> bytes:
    """The first line a process prints, read for at most `limit` seconds (b"" if none)."""
    got = b""
    end = time.monotonic() + limit
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        while not got.endswith(b"\n") and len(got) < 64 and time.monotonic() < end:
            if not sel.select(timeout=max(end - time.monotonic(), 0.01)):
                continue
            data = os.read(stream.fileno(), 64)
            if not data:
                break
            got += data
    return got


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _drain(proc: subprocess.Popen[bytes], limit: float = 10.0) -> None:
    """Read the pipes of a killed jail to their end: they close once every process that holds
    them is gone. (Processes that do not hold them are waited for in run_bounded.)"""
    assert proc.stdout is not None and proc.stderr is not None
    end = time.monotonic() + limit
    with selectors.DefaultSelector() as sel:
        for stream in (proc.stdout, proc.stderr):
            if not stream.closed:
                sel.register(stream, selectors.EVENT_READ)
        while sel.get_map() and time.monotonic() < end:
            for key, _ in sel.select(timeout=0.2):
                if not os.read(key.fd, 65536):
                    sel.unregister(key.fileobj)
    proc.stdout.close()
    proc.stderr.close()


def run_bounded(
    argv: list[str],
    env: dict[str, str],
    timeout: float,
    info: tuple[int, int] | None = None,
    kept: tuple[int, ...] = (),
) -> Done:
    """Run argv, reading at most OUTPUT_LIMIT bytes of each stream; past the time or output
    limit the whole process group is killed, so nothing is left running.

    `info` is a pipe (read end, write end) whose write end argv's bwrap got as `--info-fd`:
    bwrap writes the PID of the namespace's first process there. bwrap returns as soon as the
    page's command has ended (or is killed), while the kernel ends the rest of the namespace
    (a `setsid` child, a killed process not yet scheduled) only as that first process exits,
    which it does last. So, given `info`, this returns only once the namespace is empty.

    argv starts at the root: the page's working folder is entered inside the jail by the
    page's user (ENTER), never with the gate's rights (a folder the page swapped for a link
    would be followed on the machine, and could block there)."""
    proc = subprocess.Popen(
        argv,
        cwd=OUTSIDE_CWD,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        pass_fds=(*(info[1:] if info else ()), *kept),
    )
    try:
        return _bounded(proc, argv, timeout)
    except BaseException:  # stopped from outside (the gate's processor budget, Ctrl-C)
        if proc.returncode is None:  # the command goes with it, never on past its page
            _kill_group(proc)
            _drain(proc)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        raise
    finally:
        if info is not None:
            _await_namespace(info[0])


def _bounded(proc: subprocess.Popen[bytes], argv: list[str], timeout: float) -> Done:
    """What proc printed and its exit code; see run_bounded."""
    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    chunks: dict[int, list[bytes]] = {out_fd: [], err_fd: []}
    sizes = dict.fromkeys(chunks, 0)
    broke: str | None = None
    end = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        for stream in (proc.stdout, proc.stderr):
            sel.register(stream, selectors.EVENT_READ)
        while sel.get_map() and broke is None:
            left = end - time.monotonic()
            if left <= 0:
                broke = f"did not finish within {timeout:g} s; it was stopped"
                break
            for key, _ in sel.select(timeout=min(left, 1.0)):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                sizes[key.fd] += len(data)
                if sizes[key.fd] > OUTPUT_LIMIT:
                    broke = f"printed more than {OUTPUT_LIMIT // (1024 * 1024)} MiB; it was stopped"
                    break
                chunks[key.fd].append(data)
    if broke is not None:
        _kill_group(proc)
        _drain(proc)
        raise JailError(broke)
    try:
        code = proc.wait(timeout=max(end - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        _drain(proc)
        raise JailError(f"did not finish within {timeout:g} s; it was stopped") from None
    finally:
        proc.stdout.close()
        proc.stderr.close()
    out, err = b"".join(chunks[out_fd]), b"".join(chunks[err_fd])
    return Done(argv, code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


@contextlib.contextmanager
def _filter() -> Iterator[tuple[int, ...]]:
    """The seccomp filter (seccomp.py) in a file of memory, for bwrap's --seccomp: one per
    command, since bwrap reads it from where the descriptor stands. Nothing where no filter
    is written for the machine."""
    program = seccomp.program()
    if program is None:
        yield ()
        return
    fd = os.memfd_create("betrace-seccomp")
    try:
        os.write(fd, program)
        os.lseek(fd, 0, os.SEEK_SET)
        yield (fd,)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _info_pipe() -> Iterator[tuple[int, int]]:
    """A pipe for bwrap's `--info-fd` (see run_bounded), closed on the way out."""
    read, write = os.pipe()
    try:
        yield read, write
    finally:
        for fd in (read, write):
            os.close(fd)


def _await_namespace(info: int) -> None:
    """Wait, at most END_WAIT seconds, until the first process of a command's PID namespace
    (the PID bwrap wrote to the pipe `info` before it started the command) has exited."""
    os.set_blocking(info, False)
    try:
        said = os.read(info, 4096).decode("utf-8", "replace")
        first = int(json.JSONDecoder().raw_decode(said.lstrip())[0]["child-pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # bwrap stopped before it made the namespace: nothing of the page ran
    end = time.monotonic() + END_WAIT
    while time.monotonic() < end and process_running(first):
        time.sleep(0.01)


def process_running(pid: int) -> bool:
    """Whether a process exists and has not exited (a zombie has), whoever's it is."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :][:1] not in ("Z", "X")  # the name may hold ")"
