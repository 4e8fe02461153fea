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

from .. import REPO_ROOT, tools

#: Bytes of stdout (and of stderr) a command may print before it is stopped.
OUTPUT_LIMIT = 8 * 1024 * 1024
#: Address space of every process in the jail. Generous for helm, nix and Compose (Go, Boehm GC).
MEMORY_LIMIT = 4 * 1024 * 1024 * 1024
#: Largest file a page may write.
FILE_LIMIT = 512 * 1024 * 1024
#: Processes (and threads) one page may have at once, where a pids cgroup can be made.
PROCESS_LIMIT = 1024
#: Paths that hold secrets of the machine or sockets of daemons: never visible to a page.
HIDDEN_DIRS = ("/root", "/home", "/run", "/var/run", "/etc/ssh", "/var/lib/docker", "/srv")
HIDDEN_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/sudoers")

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
    its tools (a test may run the gate on a copy of the project under /tmp)."""
    wanted = {Path(sys.base_prefix), Path(sys.prefix), REPO_ROOT, tools.TOOLS_BIN.resolve()}
    hidden = [Path(d) for d in (*HIDDEN_DIRS, PRIVATE_TMP)] + [Path.home()]
    return sorted(p for p in wanted if any(p == h or h in p.parents for h in hidden))


def _pids_cgroup(name: str) -> Path | None:
    """A pids cgroup (v1 or v2) limiting the page to PROCESS_LIMIT tasks, or None where the
    machine does not let the gate make one (then the time limit is the only bound)."""
    for base in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
        if not (base / "cgroup.procs").exists() or not os.access(base, os.W_OK):
            continue
        group = base / name
        try:
            group.mkdir(exist_ok=True)
            (group / "pids.max").write_text(str(PROCESS_LIMIT))
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()
            continue
        return group
    return None


def _limits(cgroup: Path | None) -> list[str]:
    """The command prefix that applies the resource limits (and joins the pids cgroup) before
    anything of the page runs: programs, not a preexec hook, so no lock of the gate is involved."""
    prefix = ["prlimit", f"--as={MEMORY_LIMIT}", f"--fsize={FILE_LIMIT}", "--core=0", "--"]
    if cgroup is not None:
        prefix += ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cgroup / "cgroup.procs")]
    return prefix


@dataclass
class Jail:
    """The walls of one page: its writable directory, its network namespace, its limits."""

    writable: Path
    deadline: float  # time.monotonic() after which no command of the page may run
    bwrap: str = field(default_factory=lambda: tools.find("bwrap") or "")
    _holder: subprocess.Popen[bytes] | None = None
    _netns: str | None = None
    _cgroup: Path | None = None

    @property
    def available(self) -> bool:
        return bool(self.bwrap)

    def _walls(self, cwd: Path, shown: tuple[Path, ...] = ()) -> list[str]:
        argv = [self.bwrap, "--ro-bind", "/", "/"]
        for hidden in (*HIDDEN_DIRS, str(Path.home()), PRIVATE_TMP):
            if Path(hidden).is_dir() and not Path(hidden).is_symlink():
                argv += ["--tmpfs", hidden]
        for hidden in HIDDEN_FILES:
            if Path(hidden).exists():
                argv += ["--ro-bind", "/dev/null", hidden]
        for path in (*_shown_again(), *shown):  # after the tmpfs that hid them, before the sandbox
            argv += ["--ro-bind", str(path), str(path)]
        argv += ["--bind", str(self.writable), str(self.writable)]
        argv += ["--proc", "/proc", "--dev", "/dev", "--hostname", "betrace-page"]
        argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        argv += ["--cap-drop", "ALL", "--die-with-parent", "--new-session"]
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
            self._cgroup = _pids_cgroup(f"betrace-page-{os.getpid()}-{child}")
        return self._netns

    def wrap(self, argv: list[str], cwd: Path, shown: tuple[Path, ...] = ()) -> list[str]:
        """The command line that runs argv inside the jail (`shown`: extra read-only paths)."""
        netns = self._network()
        enter = ["nsenter", f"--net={netns}", "--"]
        return [*_limits(self._cgroup), *enter, *self._walls(cwd, shown), "--", *argv]

    def run(self, argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> Done:
        """Run argv in the jail; past its time or output limit its whole jail is killed."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise JailError("the page used up its time limit; later commands were not run")
        wrapped = self.wrap(argv, cwd)
        return run_bounded(wrapped, cwd, env, min(timeout, left))

    def start(
        self, argv: list[str], cwd: Path, env: dict[str, str], log: Path, shown: list[Path]
    ) -> subprocess.Popen[bytes]:
        """Start a long-running program (the live tier's backend) in the page's namespace; it
        is stopped by the caller or, at the latest, with the page (its jail dies with the gate)."""
        with log.open("wb") as out:
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
        if self._cgroup is not None:
            for _ in range(50):  # the kernel frees the group once its last task is reaped
                try:
                    self._cgroup.rmdir()
                    break
                except OSError:
                    time.sleep(0.02)
            self._cgroup = None
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
