"""The offline gate reaches no Docker daemon, no Kubernetes API server and no network, even on a
machine where all three are configured; and it leaves the repository as it found it.

The test plays such a machine: it listens on 127.0.0.1 (a Kubernetes API server named by
$KUBECONFIG, another named by ~/.kube/config, a Docker daemon named by $DOCKER_HOST, a Docker
daemon on a unix socket named by the current Docker context, an HTTP proxy named by the proxy
variables), runs the gate in a child process with that environment, and requires that no
connection ever arrived. A control test first proves each trap catches the real tool.
The same run is traced with strace: no process it starts may connect to any IP address.

The gate runs in a git copy of the work tree (with the copy's own source on PYTHONPATH), so the
repository check sees only what the gate did, never a concurrent edit.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT, tools
from betrace_dist.gate import sandbox
from betrace_dist.gate.isolation import process_running
from betrace_dist.gate.render import Site
from betrace_dist.release import ReleaseData

from .conftest import FIXTURES, copy_site, line_containing, require_tool, skip_or_fail

pytestmark = pytest.mark.slow

GIT = ["git", "-c", "user.name=gate test", "-c", "user.email=gate@example.invalid"]
GIT += ["-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null"]


class Listener:
    """A socket that records every connection made to it (and its first bytes)."""

    def __init__(self, name: str, family: int, address: str | tuple[str, int]) -> None:
        self.name = name
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(address)
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.hits: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:  # recorded before the close, which may let the client exit
                conn.settimeout(0.5)
                try:
                    first = conn.recv(120)
                except OSError:
                    first = b""
                self.hits.append(f"{peer!r} sent {first!r}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@dataclass
class Trap:
    """A developer machine with a cluster, two Docker daemons and a proxy configured."""

    root: Path
    home: Path
    env: dict[str, str]
    listeners: dict[str, Listener] = field(default_factory=dict)

    def hits(self) -> dict[str, list[str]]:
        return {name: list(lst.hits) for name, lst in self.listeners.items() if lst.hits}

    def clear(self) -> None:
        for listener in self.listeners.values():
            listener.hits.clear()

    def home_files(self) -> dict[str, bytes]:
        return {
            p.relative_to(self.home).as_posix(): p.read_bytes()
            for p in sorted(self.home.rglob("*"))
            if p.is_file() and not p.is_socket()
        }


def kubeconfig(port: int, name: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": f"https://127.0.0.1:{port}"}}],
            "users": [{"name": name, "user": {"token": "trap"}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
        }
    )


@pytest.fixture(scope="module")
def trap() -> Iterator[Trap]:
    # A short directory of our own: a unix socket path must stay under 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="trap-"))
    home = root / "home"
    listeners = {
        name: Listener(name, socket.AF_INET, ("127.0.0.1", 0))
        for name in ("kube-env", "kube-home", "docker-tcp", "proxy")
    }
    listeners["docker-unix"] = Listener("docker-unix", socket.AF_UNIX, str(root / "docker.sock"))
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text(kubeconfig(listeners["kube-home"].port, "home"))
    (root / "kubeconfig").write_text(kubeconfig(listeners["kube-env"].port, "env"))
    context = "trap"
    meta = home / ".docker" / "contexts" / "meta" / hashlib.sha256(context.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(
        json.dumps(
            {
                "Name": context,
                "Metadata": {},
                "Endpoints": {"docker": {"Host": f"unix://{root / 'docker.sock'}"}},
            }
        )
    )
    (home / ".docker" / "config.json").write_text(json.dumps({"currentContext": context}))
    proxy = f"http://127.0.0.1:{listeners['proxy'].port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "BETRACE_"))}
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    env |= {
        "HOME": str(home),
        "KUBECONFIG": str(root / "kubeconfig"),
        "DOCKER_HOST": f"tcp://127.0.0.1:{listeners['docker-tcp'].port}",
        "DOCKER_CONFIG": str(home / ".docker"),
        "HTTP_PROXY": proxy,
        "HTTPS_PROXY": proxy,
        "http_proxy": proxy,
        "https_proxy": proxy,
        "ALL_PROXY": proxy,
    }
    yield Trap(root, home, env, listeners)
    for listener in listeners.values():
        listener.close()
    shutil.rmtree(root, ignore_errors=True)


def _work_tree_files() -> list[str]:
    """Tracked files and new ones not ignored, as they are now (others' tool state excluded)."""
    args = ["ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    done = subprocess.run(
        ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=60, check=True
    )
    names = [n for n in done.stdout.split("\0") if n]
    return [n for n in names if not n.split("/", 1)[0].startswith(".venv")]


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed git copy of the work tree; its gate runs the copy's own engine."""
    copy = tmp_path_factory.mktemp("repo") / "distribution"
    for name in _work_tree_files():
        source = REPO_ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name, follow_symlinks=False)
    subprocess.run([*GIT, "init", "-q", str(copy)], check=True, timeout=60)
    if tools.TOOLS_BIN.is_dir():  # the real Helm binaries, without copying them
        (copy / ".tools").symlink_to(tools.TOOLS_BIN.parent)
        (copy / ".git" / "info" / "exclude").write_text("/.tools\n")
    subprocess.run([*GIT, "-C", str(copy), "add", "-A"], check=True, timeout=60)
    subprocess.run([*GIT, "-C", str(copy), "commit", "-qm", "copy"], check=True, timeout=60)
    return copy


def git_status(repo: Path) -> str:
    done = subprocess.run(
        [*GIT, "-C", str(repo), "status", "--porcelain", "--ignored", "--untracked-files=all"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout


def run_gate(
    args: list[str], cwd: Path, env: dict[str, str], tmpdir: Path, prefix: list[str] | None = None
) -> tuple[subprocess.CompletedProcess[str], int]:
    """pytest on pages in a child process, with exactly `env` (plus the copy's source first),
    in a session of its own: the run, and the session's id (the child's process id).

    Python's own bytecode cache is kept out of the copy (PYTHONDONTWRITEBYTECODE): the copy's
    engine is imported from its src/, and the interpreter's __pycache__ there is not something
    the gate wrote. Without it the repository check fails wherever the variable is unset, as
    on CI's runners."""
    tmpdir.mkdir(parents=True, exist_ok=True)
    child = env | {"TMPDIR": str(tmpdir), "PYTHONPATH": str(cwd / "src")}
    child["PYTHONDONTWRITEBYTECODE"] = "1"
    argv = [*(prefix or []), sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    with subprocess.Popen(
        argv, cwd=cwd, env=child, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    ) as started:  # fmt: skip
        try:
            out, err = started.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            end_session(started.pid, tmpdir)
            raise
    return subprocess.CompletedProcess(argv, started.returncode, out, err), started.pid


def end_session(session: int, tmpdir: Path) -> None:
    """Kill every process of the session `session` whose TMPDIR is `tmpdir` (a run strace let
    go of goes on in it) and wait until each has ended (a zombie has; bounded: 60 s). The
    session's number alone could be another's by then (its leader is reaped), but no other
    process has this run's TMPDIR; each is held by a pidfd before it is read, so a process id
    taken again meanwhile is never signalled; the scan repeats until it finds none (a child
    forked during one is found by the next)."""
    mark = f"TMPDIR={tmpdir}".encode()
    held: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = [pid for pid in _pids() if pid not in held and _signal_if(pid, session, mark)]
        held.update(found)
        if not found and not any(map(process_running, held)):
            return
        time.sleep(0.1)


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _signal_if(pid: int, session: int, mark: bytes) -> bool:
    """SIGKILL to `pid` if it is in `session` and has `mark` among its environment's entries."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if int(stat[stat.rfind(")") + 2 :].split()[3]) != session or mark not in environ:
            return False
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        return True
    except (OSError, ValueError, IndexError):
        return False
    finally:
        os.close(pidfd)


def processes_mentioning(marker: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{proc.name}: {shown}")
    return found


def test_the_traps_catch_the_real_tools(trap: Trap, tmp_path: Path) -> None:
    """Control: outside the gate's sandbox, each planted setting does reach its listener."""
    trap.clear()
    helm = require_tool("helm")
    compose = require_tool("docker-compose")
    without = {name: {k: v for k, v in trap.env.items() if k != name} for name in trap.env}
    # $KUBECONFIG, then ~/.kube/config; $DOCKER_HOST, then the current context's unix socket
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: busybox\n")
    runs = [
        ([helm, "list"], trap.env),
        ([helm, "list"], without["KUBECONFIG"]),
        ([compose, "ps"], trap.env),
        ([compose, "ps"], without["DOCKER_HOST"]),
    ]
    procs = [
        subprocess.Popen(
            argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for argv, env in runs
    ]
    # Helm retries a refused cluster for ~10 s: once every listener has its connection, the
    # retries can prove nothing more, so the tools are stopped there (or after 120 s)
    tools_reach = {"kube-env", "kube-home", "docker-tcp", "docker-unix"}
    deadline = time.monotonic() + 120
    while not tools_reach <= set(trap.hits()) and time.monotonic() < deadline:
        if all(proc.poll() is not None for proc in procs):
            break
        time.sleep(0.05)
    ended = [proc.poll() for proc in procs]  # None: still running, stopped below
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=30)
    proxies = urllib.request.ProxyHandler({"https": trap.env["HTTPS_PROXY"]})
    with pytest.raises(OSError):
        urllib.request.build_opener(proxies).open("https://example.invalid/", timeout=5)
    expected = {"proxy", "kube-env", "kube-home", "docker-tcp", "docker-unix"}
    missing = sorted(expected - set(trap.hits()))
    assert not missing, f"not reached: {missing}; exit codes {ended} of {[a for a, _ in runs]}"
    assert set(trap.hits()) == expected, trap.hits()
    trap.clear()


@dataclass
class GateRun:
    result: subprocess.CompletedProcess[str]
    hits: dict[str, list[str]]
    status_before: str
    status_after: str
    home_before: dict[str, bytes]
    home_after: dict[str, bytes]
    tmpdir: Path
    left: list[str]
    mounted: list[Path]  # the run's page file systems still mounted after it ended
    running: list[str]
    traced: str | None  # strace's log of every connect() and execve(), or why there is none
    why_untraced: str = ""


@pytest.fixture(scope="module")
def whole_gate(trap: Trap, repo_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    """One run of the gate on every page of the site, on the hostile machine, traced by strace
    where it can trace (every connect() and execve() of every process the gate starts; with
    --seccomp-bpf only those calls stop the process, so the trace costs little)."""
    trap.clear()
    strace, why_untraced = _strace()
    status_before, home_before = git_status(repo_copy), trap.home_files()
    tmpdir, result, traced, session = _traced_gate(trap, repo_copy, tmp_path_factory, strace)
    if traced is not None and STRACE_FAILED.search(result.stderr):
        # strace itself failed: the measuring tool, not the gate, so the run is made again,
        # once, after every process of the first run has ended and its mounts are detached
        end_session(session, tmpdir)
        sandbox.unmount_stale()
        tmpdir, result, traced, session = _traced_gate(trap, repo_copy, tmp_path_factory, strace)
    # every page file system under the run's TMPDIR, its process alive or not, is reported;
    # then those whose process is gone are detached: one left in pytest's temporary root
    # fails later sessions' pruning of it
    mounted = [page for page, _ in sandbox.page_mounts() if page.is_relative_to(tmpdir.resolve())]
    sandbox.unmount_stale()
    return GateRun(
        result,
        trap.hits(),
        status_before,
        git_status(repo_copy),
        home_before,
        trap.home_files(),
        tmpdir,
        # pytest-of-<user> is pytest's own temporary root, which pytest itself prunes
        sorted(p.name for p in tmpdir.iterdir() if not p.name.startswith("pytest-of-")),
        mounted,
        processes_mentioning(str(tmpdir)),
        traced,
        why_untraced,
    )


def _traced_gate(
    trap: Trap, repo_copy: Path, factory: pytest.TempPathFactory, strace: str | None
) -> tuple[Path, subprocess.CompletedProcess[str], str | None, int]:
    """The gate on every page with a TMPDIR of its own, under strace where it can trace: the
    TMPDIR, the run, strace's log and the run's session."""
    tmpdir = factory.mktemp("gate-tmp")
    log = factory.mktemp("gate-trace") / "connect.log"
    prefix = [strace, *TRACE[1:], str(log)] if strace else None
    args = ["docs", "-q", "-p", "no:randomly", "-rs"]
    result, session = run_gate(args, repo_copy, trap.env, tmpdir, prefix)
    traced = log.read_text(encoding="utf-8", errors="replace") if strace else None
    return tmpdir, result, traced, session


#: strace's own failure, as it prints it: in one fresh-clone run of several, strace stopped
#: with `strace: ptrace(PTRACE_LISTEN,<pid>,...): Input/output error`, and the run's verdicts
#: (three tests here) were strace's, not the gate's
STRACE_FAILED = re.compile(r"^strace: ptrace\(", re.MULTILINE)


#: how the gate's run is traced (the log's path follows -o)
TRACE = ["strace", "-f", "--seccomp-bpf", "-qq", "-e", "trace=connect,execve", "-o"]


def _strace() -> tuple[str | None, str]:
    """strace, if it is installed and can trace here with --seccomp-bpf; else why not."""
    strace = tools.find("strace")
    if strace is None:
        return None, f"strace is not installed ({tools.TOOLS['strace'].hint})"
    probe = subprocess.run(
        [strace, "-f", "--seccomp-bpf", "-o", "/dev/null", "true"],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        return None, f"strace cannot trace here: {probe.stderr.decode().strip()}"
    return strace, ""


def test_the_gate_passes_on_the_hostile_machine(whole_gate: GateRun) -> None:
    out = whole_gate.result.stdout
    assert whole_gate.result.returncode == 0, out[-4000:] + whole_gate.result.stderr[-2000:]
    assert re.search(r"\d+ passed", out)


def test_the_gate_reaches_no_cluster_daemon_or_proxy(whole_gate: GateRun) -> None:
    assert whole_gate.hits == {}, f"the gate connected to: {whole_gate.hits}"


#: how strace shows a connect() to the proxy the gate sets for page processes (127.0.0.1:9)
DISCARD_PROXY = 'sin_port=htons(9), sin_addr=inet_addr("127.0.0.1")'


def test_the_gate_opens_no_network_connection_at_all(whole_gate: GateRun) -> None:
    """Beyond the listeners: every connect() of every process of the run, traced. A Unix socket
    is fine (local IPC); any IPv4 or IPv6 address is not, loopback included, and a name lookup
    would show as a connection to a DNS server. (The run has no live tier: its copy of the
    repository has no upstream snapshot beside it, so no backend is started.) One address is
    the gate's own: the proxy it gives the page's processes, the discard port of loopback
    (Session._clean_env), where any proxied request a page's code makes ends at once (the
    send-traces page's exporter posts its spans when its program exits)."""
    if whole_gate.traced is None:
        skip_or_fail(whole_gate.why_untraced)
    traced = whole_gate.traced
    for tool in ("helm", "docker-compose", "nix"):  # the trace saw the real tools run
        assert re.search(rf'execve\("[^"]*/{re.escape(tool)}"', traced), f"{tool} never ran"
    programs: dict[str, str] = {}  # process id -> the program it runs
    inet = []
    for line in traced.splitlines():
        pid = line.split(" ", 1)[0]
        if ran := re.search(r'execve\("([^"]*)", \[(.{0,160})', line):
            programs[pid] = f"{ran[1]} {ran[2]}"
        elif re.search(r"AF_INET6?\b", line) and DISCARD_PROXY not in line:
            inet.append(
                f"{line.strip()}\n    by {programs.get(pid, 'a process whose exec was not seen')}"
            )
    assert inet == [], "network connections:\n" + "\n".join(inet[:20])


def test_a_run_strace_failed_in_is_ended_before_it_is_made_again(tmp_path: Path) -> None:
    """The whole-gate run is made again only when strace printed its own failure, and only
    after every process of the first run is gone: those of its session with its TMPDIR. A
    process of another session, or of the session with another TMPDIR, is left alone."""
    said = "strace: ptrace(PTRACE_LISTEN,4711,NULL,0): Input/output error\n"
    assert STRACE_FAILED.search("pytest said this\n" + said)
    assert not STRACE_FAILED.search("E   AssertionError: strace: ptrace( in a page's output\n")
    env = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path)}
    # a run whose first process is gone, its children going on in the session (strace's case):
    # one with the run's TMPDIR, one started with another
    script = (
        "sleep 120 >/dev/null 2>&1 & echo $!; TMPDIR=/elsewhere sleep 120 >/dev/null 2>&1 & echo $!"
    )
    run = subprocess.Popen(
        ["sh", "-c", script], stdout=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    left, elsewhere = map(int, run.communicate(timeout=30)[0].split())
    other = subprocess.Popen(["sleep", "120"], env=env, start_new_session=True)
    try:
        assert process_running(left)
        end_session(run.pid, tmp_path)
        assert not process_running(left)
        assert process_running(elsewhere) and other.poll() is None
    finally:
        other.kill()
        other.wait()
        os.kill(elsewhere, signal.SIGKILL)


def test_the_trace_sees_a_connection_to_loopback(trap: Trap, tmp_path: Path) -> None:
    """Control: the same trace of a child that connects to one of the trap's listeners (through
    a shell, as the gate's programs run) shows an AF_INET connect() and an execve()."""
    strace, why = _strace()
    if strace is None:
        skip_or_fail(why)
    log = tmp_path / "connect.log"
    port = trap.listeners["proxy"].port
    code = f"import socket; socket.create_connection(('127.0.0.1', {port})).close()"
    command = [strace, *TRACE[1:], str(log), "sh", "-c", f'"{sys.executable}" -c "{code}"']
    subprocess.run(command, check=True, timeout=60)
    traced = log.read_text()
    assert re.search(r'execve\("[^"]*python', traced), traced[:2000]
    assert re.search(rf"AF_INET.*\b{port}\b", traced), traced[:2000]


def test_the_gate_leaves_the_repository_and_home_as_they_were(whole_gate: GateRun) -> None:
    assert whole_gate.status_after == whole_gate.status_before, "the gate changed the repository"
    assert whole_gate.home_after == whole_gate.home_before, "the gate wrote into the home"


def test_the_gate_leaves_no_process_running(whole_gate: GateRun) -> None:
    assert whole_gate.running == []


def test_the_gate_removes_its_page_sandboxes(whole_gate: GateRun) -> None:
    assert whole_gate.left == [], f"left behind in TMPDIR: {whole_gate.left}"
    assert whole_gate.mounted == [], f"left mounted: {whole_gate.mounted}"


def test_the_gate_removes_its_nix_store(whole_gate: GateRun) -> None:
    left = [n for n in whole_gate.left if n.startswith("gate-nix-")]
    assert left == [], f"left behind in TMPDIR: {left}"


# --- a missing optional tool ------------------------------------------------------------------


def _gate_without_nix(
    tmp_path: Path, require: bool, path: str | None = None, *extra: str
) -> subprocess.CompletedProcess[str]:
    """The gate on a one-page site with a Nix block; PATH holds no Nix unless `path` is given."""
    site = copy_site(tmp_path / ("required" if require else "optional"), ["index.md"], MISSING)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("bash", "sh", "git"):  # what a minimal machine has; Nix it has not
        found = shutil.which(name)
        if found and not (bin_dir / name).exists():
            (bin_dir / name).symlink_to(found)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "BETRACE_"))}
    env["PATH"] = path or str(bin_dir)
    if require:
        env["BETRACE_REQUIRE_TOOLS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--no-live", "docs", "-rs",
         "-q", *extra],
        cwd=site, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


MISSING = FIXTURES / "missing-tool-site"
NIX_REASON = (
    "'nix-instantiate' is not installed "
    "(apt-get install nix-bin: evaluates the flakes and the nixpkgs expressions)"
)


def test_without_nix_a_nix_block_is_skipped_with_the_reason(tmp_path: Path) -> None:
    """The block is skipped with the reason, the end of the run names the program and the
    command that installs it, and since the gate then checked no block at all, the run fails."""
    assert tools.find("nix-instantiate") in (None, shutil.which("nix-instantiate"))
    result = _gate_without_nix(tmp_path, False, None, "--ledger")
    out = result.stdout
    assert re.search(r"^SKIPPED \[1\] .*" + re.escape(NIX_REASON) + "$", out, re.M), out
    # the ledger keeps the block's planned status: a skipped block is not a failed one
    assert re.search(r"^docs/index\.md\s+\d+\s+nix\s+nix\s+verified", out, re.M), out
    assert re.search(r"\b1 skipped\b", out)
    assert re.search(r"^\s+1 skipped: " + re.escape(NIX_REASON) + "$", out, re.M), out
    assert "install them all with: sudo scripts/install-system-deps" in out
    assert result.returncode == 1, out[-3000:] + result.stderr[-2000:]
    assert "FAILED: the doc gate checked no block: all 1 were skipped" in out


def test_without_nix_and_required_tools_a_nix_block_fails(tmp_path: Path) -> None:
    result = _gate_without_nix(tmp_path, require=True)
    out = result.stdout
    assert result.returncode == 1, out[-3000:]
    line = line_containing(MISSING / "docs" / "index.md", "```nix")
    expected = f"docs/index.md:{line}: nix block (nix): {NIX_REASON}; BETRACE_REQUIRE_TOOLS=1 "
    assert expected + "forbids skipping" in out, out[-3000:]
    assert "skipped" not in out


def test_with_nix_the_same_block_passes(tmp_path: Path) -> None:
    nix = require_tool("nix-instantiate")
    path = os.pathsep.join([str(Path(nix).parent), "/usr/bin", "/bin"])
    result = _gate_without_nix(tmp_path, require=True, path=path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"\b1 passed\b", result.stdout)


# --- what we publish: BeTrace images only through the release data ----------------------------

DIGEST = "sha256:" + "5e" * 32
BETRACE_IMAGES = ("backend", "grafana-plugin", "plugin-init")
#: Pages that show an artefact as it is, not the release data: the artefact's own test ties it
#: to releases.yaml, so a digest there without the artefact updated fails that test instead.
ARTEFACT_VIEWS = {
    "docs/reference/compose-stack.md": "its table shows docker/docker-compose.yml, pinned to "
    "releases.yaml by tests/artefacts/test_compose.py::test_images_are_the_ones_releases_yaml_pins",
}


def _doc_sources() -> list[Path]:
    docs = REPO_ROOT / "docs"
    return sorted(p for p in docs.rglob("*") if p.suffix in (".md", ".html") and p.is_file())


def test_no_page_hard_codes_a_betrace_image(release_data: ReleaseData) -> None:
    """Pages name BeTrace images with {{ image("...") }}: then a digest, once published in
    releases.yaml, reaches every page, and a registry rename is one line."""
    registry = release_data.project.registry
    owner = registry.split("/")[1]
    versions = "|".join(re.escape(r.version) for r in release_data.releases)
    shapes = [
        re.compile(rf"{re.escape(registry.split('/')[0])}/{re.escape(owner)}\b"),
        re.compile(rf"\b(?:{'|'.join(BETRACE_IMAGES)}):(?:{versions})\b"),
    ]
    found = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in _doc_sources()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(s.search(line) for s in shapes)
    ]
    assert found == [], 'write {{ image("...") }} instead:\n' + "\n".join(found)


def test_a_published_digest_reaches_every_page(tmp_path: Path, release_data: ReleaseData) -> None:
    text = (REPO_ROOT / "releases.yaml").read_text(encoding="utf-8")
    tags = {name: release_data.image_ref(name).rsplit(":", 1)[1] for name in BETRACE_IMAGES}
    for name in BETRACE_IMAGES:
        block = f"      {name}:\n        tag: {tags[name]}\n"
        assert block in text, f"releases.yaml no longer spells {name} as expected: update this"
        text = text.replace(block, block + f"        digest: {DIGEST}\n", 1)
    (tmp_path / "releases.yaml").write_text(text, encoding="utf-8")
    site_root = copy_site(tmp_path, [])
    config = site_root / "mkdocs.yml"
    config.write_text(
        re.sub(r"release_data: .*", f"release_data: {tmp_path / 'releases.yaml'}",
               config.read_text(encoding="utf-8")),
        encoding="utf-8",
    )  # fmt: skip
    for page in (REPO_ROOT / "docs").rglob("*.md"):
        target = site_root / "docs" / page.relative_to(REPO_ROOT / "docs")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(page, target)
    site = Site(config)
    registry = re.escape(release_data.project.registry)
    reference = re.compile(rf"{registry}/({'|'.join(BETRACE_IMAGES)})(\S*)")
    seen, without = 0, []
    for page in sorted((site_root / "docs").rglob("*.md")):
        if page.relative_to(site_root).as_posix() in ARTEFACT_VIEWS:
            continue
        rendered = site.render(page).text
        for match in reference.finditer(rendered):
            seen += 1
            if not match[2].startswith(f":{tags[match[1]]}@{DIGEST}"):
                without.append(f"{page.relative_to(site_root)}: {match[0]}")
    assert seen >= 5, f"only {seen} BeTrace image references rendered: the check sees too little"
    assert without == [], "image references without the published digest:\n" + "\n".join(without)


# -- what reaches the reader and the log: snippets, rendering, output ------------------------


@pytest.fixture
def snippet_repo(tmp_path: Path) -> Path:
    """A repository with a .git folder, a dotfile and links, beside a file of 'the machine'."""
    repo = tmp_path / "repo"
    for folder in ("docs", ".git", ".github/workflows", "helm"):
        (repo / folder).mkdir(parents=True)
    (repo / ".git" / "config").write_text("[core]\n\tsecret-of-the-checkout = 1\n")
    (repo / "docs" / ".hidden").write_text("hidden dotfile\n")
    (repo / "docs" / "shown.txt").write_text("allowed snippet\n")
    (repo / ".github" / "workflows" / "ci.yml").write_text("name: ci\n")
    (repo / "pyproject.toml").write_text("[project]\n")
    (tmp_path / "machine.txt").write_text("file of the machine\n")
    (repo / "docs" / "to-git").symlink_to("../.git/config")
    (repo / "helm" / "to-machine").symlink_to(tmp_path / "machine.txt")
    return repo


def _snippet(repo: Path, path: str) -> str:
    import markdown

    from betrace_dist.site import snippets

    configs = {"pymdownx.snippets": {"base_path": [str(repo)], "check_paths": True}}
    md = markdown.Markdown(extensions=snippets.replace_in(["pymdownx.snippets"], configs))
    return str(md.convert(f'--8<-- "{path}"\n'))


@pytest.mark.parametrize(
    "path",
    [
        *(".git/config", "../machine.txt", "docs/../.git/config", "docs/.hidden", "docs/to-git"),
        *("helm/to-machine", "pyproject.toml", ".github/../.git/config"),
    ],
)
def test_a_snippet_outside_the_allowed_folders_is_refused(snippet_repo: Path, path: str) -> None:
    from pymdownx.snippets import SnippetMissingError

    with pytest.raises(SnippetMissingError):
        _snippet(snippet_repo, path)


def test_a_snippet_of_an_allowed_folder_is_included(snippet_repo: Path) -> None:
    assert "allowed snippet" in _snippet(snippet_repo, "docs/shown.txt")
    assert "name: ci" in _snippet(snippet_repo, ".github/workflows/ci.yml")


def test_the_site_build_uses_the_allow_listed_snippets() -> None:
    """mkdocs.yml names pymdownx.snippets; the build hook swaps in the checked one."""
    from mkdocs.config import load_config

    from betrace_dist.site import hooks, snippets

    config = load_config(str(REPO_ROOT / "mkdocs.yml"))
    config = hooks.on_config(config)
    kinds = [type(e).__name__ for e in config.markdown_extensions if not isinstance(e, str)]
    assert kinds == [snippets.AllowListedSnippets.__name__]
    assert "pymdownx.snippets" not in config.markdown_extensions
    # and the gate, which runs the same on_config chain, still inserts the snippets
    site = Site(REPO_ROOT / "mkdocs.yml")
    page = REPO_ROOT / "docs" / "guides" / "deploy-on-kubernetes.md"
    assert "--8<--" in page.read_text(encoding="utf-8")
    assert "--8<--" not in site.render(page).text


def test_markdown_that_never_finishes_is_stopped_at_the_render_bound() -> None:
    """Event-based: the conversion never ends by itself, so only the bound can end it."""
    from betrace_dist.site import limits

    def endless(text: str) -> str:
        while True:
            text = text[::-1]

    with pytest.raises(limits.LimitError, match="took longer than"):
        limits.markdown_to_html(endless, "x", "page.md")
    with pytest.raises(limits.LimitError, match="at most"):
        limits.markdown_to_html(str.upper, "x" * (limits.MAX_MARKDOWN + 1), "page.md")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b]52;c;aGk=\x07", "\\x1b]52;c;aGk=\\x07"),
        ("a\n::add-mask::x", "a\n\\::add-mask::x"),
        ("  ##[group]x", "  \\##[group]x"),
        ("\x9b31m\u202eevil", "\\x9b31m\\u202eevil"),
        ("line\r\nnext\rover", "line\nnext\\x0dover"),
    ],
)
def test_page_output_is_shown_as_data(raw: str, shown: str) -> None:
    from betrace_dist.gate.escape import as_data

    assert as_data(raw) == shown


def test_page_output_in_a_report_is_capped() -> None:
    from betrace_dist.gate.escape import MESSAGE_LIMIT, as_data

    shown = as_data("x" * (MESSAGE_LIMIT + 10))
    assert shown.endswith("[10 more characters not shown]")
    assert len(shown) < MESSAGE_LIMIT + 100
