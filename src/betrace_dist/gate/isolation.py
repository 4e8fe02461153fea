"""Containment of a page by the operating system: every process a page starts runs in a jail.

A page is untrusted input (anyone can open a pull request), so the argument checks in
`session.py` are only a second line. The first is bubblewrap (`bwrap`), with these walls:

- filesystem: everything read-only but the page's own sandbox directory; a private, empty /tmp;
  the homes (/root, /home, the gate's $HOME), /run (Docker and other daemon sockets), host keys
  and password hashes hidden; only the Python installation under a home is shown again, read-only;
- network: one network namespace per page with nothing in it but its own loopback, so a page
  reaches no host, no proxy and no listener of the machine, while the page's own steps (and the
  live tier's real backend) can still talk to each other on 127.0.0.1;
- processes: a PID namespace per command, so nothing it starts outlives it (`setsid`, `nohup`
  and double forks included), all capabilities dropped, a process-count cap (cgroup `pids`,
  where the machine lets the gate create one), and resource limits on address space, file size
  and core dumps;
- time and output: a wall-clock limit per command and per page, and a cap on what a command
  prints (the gate reads at most OUTPUT_LIMIT bytes of each stream, then stops the command).

Where `bwrap` is missing, the missing-tool rule holds: blocks that run commands are skipped
with the reason, and under BETRACE_REQUIRE_TOOLS=1 (CI) they fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import GATE_SOURCE, REPO_ROOT, tools
from . import profile

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
#: The user a page runs as: nobody. Root without capabilities could still write /proc/sys
#: (core_pattern runs a program as the host's root) and read root's files; nobody cannot.
PAGE_UID = PAGE_GID = 65534
#: Drops to the page's user inside the jail, after bwrap set it up; no_new_privs keeps set-uid
#: programs from giving any privilege back.
DROP = ["setpriv", f"--reuid={PAGE_UID}", f"--regid={PAGE_GID}", "--clear-groups"]
DROP += ["--no-new-privs", "--"]
#: Paths that hold secrets of the machine or sockets of daemons: never visible to a page.
HIDDEN_DIRS = ("/root", "/home", "/run", "/var/run", "/etc/ssh", "/var/lib/docker", "/srv")
HIDDEN_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/sudoers")

#: The gate's own folder in a page's sandbox (live-tier logs): the page's user cannot write it.
GATE_DIR = ".gate"
#: Replaced by an empty tmpfs of the jail's own: a page sees nothing of the host's /tmp.
PRIVATE_TMP = "/tmp"  # noqa: S108 - named to be hidden, never written
BWRAP_HINT = "apt-get install bubblewrap: pages run only inside its jail"


class JailError(Exception):
    """A command broke a limit of the jail (time, output); the message says which."""


@dataclass
class Done:
    """A finished command: exit status and what it printed (decoded, invalid bytes replaced)."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def _shown_again() -> list[Path]:
    """Read-only paths under the hidden homes or /tmp that the tools need: the Python
    installation the gate runs on (pyenv keeps it under /root), its virtualenv, the project and
    its tools, and the folders the tools' links lead to (a test may run the gate on a copy of
    the project under /tmp whose tools are links to another checkout's)."""
    wanted = {Path(sys.base_prefix), Path(sys.prefix), REPO_ROOT, tools.TOOLS_BIN.resolve()}
    wanted.add(GATE_SOURCE)
    if tools.TOOLS_BIN.is_dir():
        wanted.update(entry.resolve().parent for entry in tools.TOOLS_BIN.iterdir())
    hidden = [Path(d) for d in (*HIDDEN_DIRS, PRIVATE_TMP)] + [Path.home()]
    return sorted(p for p in wanted if any(p == h or h in p.parents for h in hidden))


def _traversable_parents(path: Path, made: set[Path]) -> list[str]:
    """bwrap arguments making the folders between a hidden root (a tmpfs) and `path`, mode
    0755, so that the page's user can reach what is bound at `path` (bwrap would make them
    0700, for root alone)."""
    roots = {Path(d) for d in (*HIDDEN_DIRS, PRIVATE_TMP)} | {Path.home()}
    argv: list[str] = []
    for parent in reversed(path.parents[:-1]):
        if parent in made or parent in roots or not any(r in parent.parents for r in roots):
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


def _cgroups(name: str) -> list[Path]:
    """Cgroups (v1) for one page: at most PROCESS_LIMIT tasks and PAGE_MEMORY bytes in all,
    where the machine lets the gate make them; each missing one is said in the docstring of the
    module (then the per-process limits and the time limit are the bounds)."""
    wanted = {
        "pids": ("pids.max", PROCESS_LIMIT),
        "memory": ("memory.limit_in_bytes", PAGE_MEMORY),
        "cpuacct": None,  # no limit: it counts the CPU time of the page's programs (profile.py)
    }
    made = []
    for controller, knob in wanted.items():
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
    prefix = ["prlimit", f"--as={MEMORY_LIMIT}", f"--fsize={FILE_LIMIT}", "--core=0", "--"]
    if cgroups:
        joins = " && ".join(f'echo $$ > "${i}"' for i in range(1, len(cgroups) + 1))
        files = [str(group / "cgroup.procs") for group in cgroups]
        script = f'{joins} && shift {len(cgroups)} && exec "$@"'
        prefix += ["sh", "-c", script, "join-cgroups", *files]
    return prefix


def give(path: Path) -> None:
    """One path (a link itself, never what it points at) to the page's user."""
    if os.lstat(path).st_uid != PAGE_UID:
        os.lchown(path, PAGE_UID, PAGE_GID)


def hand_over(root: Path, keep: frozenset[str] = frozenset()) -> None:
    """Give what the gate wrote under `root` to the page's user, so the page can change it as
    it would change files of its own; directories stay traversable by the gate (0755). Entries
    whose name is in `keep` (the gate's own folder) stay the gate's."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in keep]
        for name in [*dirs, *files]:
            path = Path(folder, name)
            info = os.lstat(path)
            if info.st_uid != PAGE_UID:
                os.lchown(path, PAGE_UID, PAGE_GID)
    if os.lstat(root).st_uid != PAGE_UID:
        os.lchown(root, PAGE_UID, PAGE_GID)
    root.chmod(0o755)


@dataclass
class Jail:
    """The walls of one page: its writable directory, its network namespace, its limits."""

    writable: Path
    deadline: float  # time.monotonic() after which no command of the page may run
    bwrap: str = field(default_factory=lambda: tools.find("bwrap") or "")
    _holder: subprocess.Popen[bytes] | None = None
    _netns: str | None = None
    _cgroups: list[Path] = field(default_factory=list)

    @property
    def available(self) -> bool:
        return bool(self.bwrap)

    def _walls(self, cwd: Path, shown: tuple[Path, ...] = ()) -> list[str]:
        argv = [self.bwrap, "--ro-bind", "/", "/"]
        for hidden in (*HIDDEN_DIRS, str(Path.home())):
            if Path(hidden).is_dir() and not Path(hidden).is_symlink():
                argv += ["--tmpfs", hidden]
        argv += ["--perms", "1777", "--size", str(TMPFS_SIZE), "--tmpfs", PRIVATE_TMP]
        for hidden in HIDDEN_FILES:
            if Path(hidden).exists():
                argv += ["--ro-bind", "/dev/null", hidden]
        made: set[Path] = set()
        for path in (*_shown_again(), *shown):  # after the tmpfs that hid them, before the sandbox
            argv += _traversable_parents(path, made)
            argv += ["--ro-bind", str(path), str(path)]
        argv += _traversable_parents(self.writable, made)
        argv += ["--bind", str(self.writable), str(self.writable)]
        argv += ["--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys", "--dev", "/dev"]
        argv += ["--perms", "1777", "--size", str(TMPFS_SIZE), "--tmpfs", "/dev/shm"]  # noqa: S108
        argv += ["--hostname", "betrace-page"]
        argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        # every capability dropped but the two setpriv needs to become nobody, right after
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        argv += ["--die-with-parent", "--new-session"]
        return [*argv, "--chdir", str(cwd)]

    def _network(self) -> str:
        """The page's network namespace: made once by a holder process that only sleeps."""
        if self._netns is None:
            read, write = os.pipe()
            holder = [self.bwrap, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid"]
            holder += ["--die-with-parent", "--info-fd", str(write), "sleep", "infinity"]
            self._holder = subprocess.Popen(
                holder,
                pass_fds=(write,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            os.close(write)
            with os.fdopen(read, "rb") as info:
                text = info.read(4096).decode("utf-8", "replace")
            try:
                child = json.loads(text)["child-pid"]
            except (ValueError, KeyError):
                raise JailError(f"bubblewrap could not make a network namespace: {text}") from None
            self._netns = f"/proc/{child}/ns/net"
            self._cgroups = _cgroups(f"betrace-page-{os.getpid()}-{child}")
        return self._netns

    def wrap(self, argv: list[str], cwd: Path, shown: tuple[Path, ...] = ()) -> list[str]:
        """The command line that runs argv inside the jail (`shown`: extra read-only paths)."""
        netns = self._network()
        enter = ["nsenter", f"--net={netns}", "--"]
        return [*_limits(self._cgroups), *enter, *self._walls(cwd, shown), "--", *DROP, *argv]

    def run(
        self,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        timeout: float,
        shown: tuple[Path, ...] = (),
    ) -> Done:
        """Run argv in the jail (`shown`: extra read-only paths, such as the live tier's backend
        program); past its time or output limit its whole jail is killed."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise JailError("the page used up its time limit; later commands were not run")
        wrapped = self.wrap(argv, cwd, shown)
        if not profile.ACTIVE:
            return run_bounded(wrapped, cwd, env, min(timeout, left))
        # jailed programs are reaped inside their PID namespace, so their CPU time never
        # reaches this process's children's usage: the page's cpuacct group counts it
        before, start = self._cpu_used(), time.perf_counter()
        try:
            return run_bounded(wrapped, cwd, env, min(timeout, left))
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
        is stopped by the caller or, at the latest, with the page (its jail dies with the gate)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        with os.fdopen(os.open(log, flags, 0o644), "wb") as out:
            return subprocess.Popen(
                self.wrap(argv, cwd, tuple(shown)),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
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


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _drain(proc: subprocess.Popen[bytes], limit: float = 10.0) -> None:
    """Read the pipes of a killed jail to their end: the kernel tears a PID namespace down
    asynchronously, and only when its last process is gone do the pipes close. Returning after
    that means nothing of the command is left when the caller goes on."""
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
    cwd: Path,
    env: dict[str, str],
    timeout: float,
) -> Done:
    """Run argv, reading at most OUTPUT_LIMIT bytes of each stream; past the time or output
    limit the whole process group is killed, so nothing is left running."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
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
