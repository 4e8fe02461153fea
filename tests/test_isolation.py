"""The jail every command of a page runs in (gate/isolation.py), wall by wall.

The hostile corpus (tests/test_hostile_pages.py) proves containment end to end; these tests
name each wall on its own, so a regression says which one fell.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import re
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from betrace_dist import tools
from betrace_dist.gate import isolation, safefs, seccomp
from betrace_dist.gate.checkers import CheckFailure
from betrace_dist.gate.isolation import Jail, JailError
from betrace_dist.gate.session import CommandError, Session

from .conftest import require_tool

ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


@pytest.fixture
def jail(tmp_path: Path) -> Iterator[Jail]:
    require_tool("bwrap")
    box = tmp_path / "sandbox"
    box.mkdir()
    isolation.hand_over(box)  # the page runs as nobody: its sandbox is nobody's
    jail = Jail(box, deadline=time.monotonic() + 120)
    yield jail
    jail.close()


def sh(jail: Jail, script: str, timeout: float = 20) -> isolation.Done:
    return jail.run(["bash", "-c", script], jail.writable, ENV, timeout)


def test_the_sandbox_is_writable_and_nothing_else(jail: Jail, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    done = sh(jail, f"echo in > inside.txt; echo out > {outside}; touch /etc/escaped")
    assert (jail.writable / "inside.txt").read_text() == "in\n"
    assert not outside.exists() and not Path("/etc/escaped").exists()
    # the machine's folders are bound read-only; those the jail makes belong to root
    assert done.stderr.count("Read-only file system") + done.stderr.count("Permission denied") == 2


def test_the_jail_shows_an_allow_list_of_the_machine(jail: Jail) -> None:
    """The jail's root is made, not the machine's: /var, /opt, /srv, /mnt, the homes and /run
    (daemon sockets) are absent, whatever a machine keeps there for every user to read."""
    # /nix/var: a Nix daemon's socket lives there, and a Unix socket crosses the network wall
    for folder in ("/var", "/opt", "/srv", "/mnt", "/home", "/run", "/boot", "/nix/var"):
        assert sh(jail, f"test -e {folder} || echo absent").stdout == "absent\n", folder
    # the root holds the system's folders, the jail's own, and the first folder of each path
    # the gate's tools live in: nothing of the machine's root besides
    tops = {"usr", "etc", "nix", "bin", "sbin", "lib", "lib32", "lib64", "libx32"}
    tops |= {"tmp", "proc", "dev"}
    tops |= {p.parts[1] for p in isolation._shown_again()} | {jail.writable.parts[1]}
    assert set(sh(jail, "ls -A /").stdout.split()) <= tops
    # only what the gate shows again (the Python installation, under a home) is in the home
    shown_again = {p.relative_to(Path.home()).parts[0] for p in isolation._shown_again()
                   if Path.home() in p.parents}  # fmt: skip
    assert set(sh(jail, f"ls -A {Path.home()} 2>/dev/null").stdout.split()) <= shown_again
    # /etc is an allow-list too: what programs need, not what a machine keeps there
    etc = set(sh(jail, "ls -A /etc").stdout.split())
    assert etc <= set(isolation.ETC_ENTRIES), etc - set(isolation.ETC_ENTRIES)
    assert {"passwd", "hosts"} <= etc
    assert "root:" not in sh(jail, "cat /etc/shadow").stdout


#: What the seccomp filter refuses (gate/seccomp.py), each as a page would try it.
REFUSED_CALLS = {
    "a user namespace": "unshare -U true",
    "a key in nobody's keyring": (
        'python3 -c "import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); '
        "libc.syscall(248, b'user', b'k', b'v', 1, -4) == -1 "
        'and print(os.strerror(ctypes.get_errno()))"'
    ),
    "a read that stamps no access time": (
        "echo x > f; python3 -c \"import os; os.open('f', os.O_RDONLY | os.O_NOATIME)\""
    ),
    "O_NOATIME set later": (
        'echo x > f; python3 -c "import fcntl, os; '
        "fcntl.fcntl(os.open('f', os.O_RDONLY), fcntl.F_SETFL, os.O_NOATIME)\""
    ),
}


@pytest.mark.parametrize("what", sorted(REFUSED_CALLS))
def test_the_system_calls_no_page_needs_are_refused(jail: Jail, what: str) -> None:
    """A user namespace (root with every capability inside it), nobody's keyring (shared by
    every page and run on the machine) and O_NOATIME (a read the result cache would miss):
    each worked in the jail before the seccomp filter."""
    if seccomp.program() is None:
        pytest.skip(f"no seccomp filter is written for {platform.machine()} (gate/seccomp.py)")
    done = sh(jail, REFUSED_CALLS[what])
    assert "Operation not permitted" in done.stdout + done.stderr, (what, done)


def test_a_page_holds_no_capability_in_any_set(jail: Jail) -> None:
    """Effective, permitted and ambient were empty already; the bounding and inheritable sets
    kept every capability (harmless while no_new_privs holds, and now empty too)."""
    status = sh(jail, "grep -E '^(Cap|NoNewPrivs)' /proc/self/status").stdout
    sets = dict(line.split(":\t") for line in status.splitlines())
    assert {name: int(value, 16) for name, value in sets.items()} == {
        "CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0, "NoNewPrivs": 1
    }  # fmt: skip


def test_threads_and_child_processes_still_start_under_the_filter(jail: Jail) -> None:
    """clone3 fails with ENOSYS, so that glibc falls back to clone: threads, child processes
    and Go programs (helm, kubectl) still start."""
    script = (
        'python3 -c "import subprocess, threading; t = threading.Thread(target=print, '
        "args=('thread',)); t.start(); t.join(); subprocess.run(['echo', 'child'])\""
    )
    assert sorted(sh(jail, script).stdout.split()) == ["child", "thread"]
    helm = require_tool("helm")
    assert sh(jail, f"{helm} version --short").returncode == 0


def test_the_filters_numbers_are_the_kernels() -> None:
    """The system call numbers and flags in gate/seccomp.py, against the kernel's headers."""
    headers = Path("/usr/include")
    unistd = headers / "x86_64-linux-gnu" / "asm" / "unistd_64.h"
    if not unistd.is_file():
        pytest.skip(f"the kernel's headers are not installed here ({unistd})")
    defined = dict(re.findall(r"#define __NR_(\w+) (\d+)", unistd.read_text()))
    assert {name: int(defined[name]) for name in seccomp.NR} == seccomp.NR
    sched = (headers / "linux" / "sched.h").read_text()
    assert re.search(rf"#define CLONE_NEWUSER\s+{seccomp.CLONE_NEWUSER:#010x}\b", sched)
    fcntl_h = (headers / "asm-generic" / "fcntl.h").read_text()
    assert re.search(rf"#define O_NOATIME\s+0{seccomp.O_NOATIME:o}\b", fcntl_h)
    assert re.search(rf"#define F_SETFL\s+{seccomp.F_SETFL}\b", fcntl_h)
    audit = (headers / "linux" / "elf-em.h").read_text()
    machine = int(re.search(r"#define EM_X86_64\s+(\d+)", audit).group(1))  # type: ignore[union-attr]
    assert machine | 0x80000000 | 0x40000000 == seccomp.AUDIT_ARCH_X86_64


def test_only_the_pages_own_loopback_exists(jail: Jail) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.5)
        port = server.getsockname()[1]
        done = sh(jail, f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected")
        with pytest.raises(TimeoutError):
            server.accept()
    assert "connected" not in done.stdout
    # /proc/net/dev lists the interfaces of the network namespace the command is in
    devices = [
        ln.split(":")[0].strip() for ln in sh(jail, "cat /proc/net/dev").stdout.split("\n")[2:]
    ]
    assert [d for d in devices if d] == ["lo"]


def test_the_page_keeps_one_network_namespace_across_commands(jail: Jail) -> None:
    """A server one command starts is reachable by the next (the live tier relies on it)."""
    server = jail.start(
        ["python3", "-m", "http.server", "--bind", "127.0.0.1", "18765"],
        jail.writable,
        ENV,
        jail.writable / "server.log",
        shown=[],
    )
    try:
        for _ in range(50):
            done = sh(jail, "exec 3<>/dev/tcp/127.0.0.1/18765 && echo connected")
            if "connected" in done.stdout:
                break
            time.sleep(0.1)
        assert "connected" in done.stdout
    finally:
        os.killpg(server.pid, 9)
        server.wait()


def test_nothing_a_command_starts_outlives_it(jail: Jail) -> None:
    sh(jail, "(setsid sleep 4711 &); nohup sleep 4712 >/dev/null 2>&1 &")
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _alive(p)]
    assert left == [], "a process the command started still ran when the gate went on"


def test_a_command_returns_only_once_its_namespace_has_ended(
    jail: Jail, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bwrap returns when the page's command ends; the kernel ends the rest of the PID
    namespace with its first process, after that. The gate waits for that process, whose PID
    bwrap reports through the wrappers (prlimit, sh, nsenter): without the report there would
    be nothing to wait for, and this test fails."""
    seen: list[tuple[int, bool]] = []
    real = isolation.process_running

    def running(pid: int) -> bool:
        seen.append((pid, answer := real(pid)))
        return answer

    monkeypatch.setattr(isolation, "process_running", running)
    sh(jail, "(setsid sleep 4713 &); true")
    with pytest.raises(JailError, match="did not finish"):
        sh(jail, "sleep 4714 | cat", timeout=1)
    firsts = {pid for pid, _ in seen}
    assert len(firsts) == 2, f"bwrap's report of the namespace's first process: {seen}"
    assert not any(real(pid) for pid in firsts)
    assert [answer for pid, answer in seen if pid in firsts][-1] is False


def test_waiting_for_a_namespace_waits_for_its_first_process() -> None:
    """The wait itself, on a process of this test's own standing in for the first process."""
    first = subprocess.Popen(["sleep", "0.3"])
    read, write = os.pipe()
    try:
        os.write(write, json.dumps({"child-pid": first.pid}).encode())
        isolation._await_namespace(read)
        assert first.poll() is not None or not isolation.process_running(first.pid)
        isolation._await_namespace(read)  # bwrap stopped before it made one: nothing said
    finally:
        os.close(read)
        os.close(write)
        first.wait()


def test_time_and_output_are_bounded(jail: Jail) -> None:
    with pytest.raises(JailError, match="did not finish within 1 s"):
        sh(jail, "sleep 30", timeout=1)
    with pytest.raises(JailError, match="printed more than 8 MiB"):
        sh(jail, "head -c 50000000 /dev/zero")


def test_binary_output_is_decoded_with_replacement(jail: Jail) -> None:
    assert "\ufffd" in sh(jail, r"printf '\xff\xfe'").stdout


def test_the_environment_is_only_what_the_gate_gives(
    jail: Jail, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTER_TOKEN", "outer-secret")
    assert "outer-secret" not in sh(jail, "env").stdout


def test_the_page_has_a_time_limit_of_its_own(tmp_path: Path) -> None:
    require_tool("bwrap")
    jail = Jail(tmp_path, deadline=time.monotonic() - 1)
    with pytest.raises(JailError, match="the page used up its time limit"):
        jail.run(["true"], tmp_path, ENV, 10)


def test_without_bubblewrap_a_page_command_is_skipped_or_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_find = tools.find
    monkeypatch.setattr(tools, "find", lambda name: None if name == "bwrap" else real_find(name))
    session = Session()
    try:
        assert not session.jail.available
        monkeypatch.setenv("BETRACE_REQUIRE_TOOLS", "1")
        with pytest.raises(CheckFailure, match="'bwrap' is not installed"):
            session.process(["true"])
        monkeypatch.delenv("BETRACE_REQUIRE_TOOLS")
        with pytest.raises(pytest.skip.Exception, match="bubblewrap"):
            session.process(["true"])
    finally:
        session.close()


def test_a_jail_failure_reaches_the_page_as_a_command_error() -> None:
    session = Session(timeout=1)
    try:
        require_tool("bwrap")
        with pytest.raises(CommandError, match="did not finish within 1 s"):
            session.process(["sleep", "30"])
    finally:
        session.close()


def _alive(proc: Path) -> bool:
    """A sleep of this test that is not yet reaped (zombies, already dead, do not count)."""
    try:
        state = (proc / "stat").read_text().split(")")[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and b"sleep 471" in _cmdline(proc)


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return b""


def test_a_tool_found_on_the_gates_path_runs_in_the_jail(
    jail: Jail, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kubectl found on the operator's PATH, in a folder the jail does not show (a user's bin
    folder, a Nix profile): the page was blamed, '/usr/bin/env: ...kubectl: No such file'."""
    real = require_tool("kubectl")
    folder = tmp_path / "bin"  # under the host's /tmp: hidden in the jail
    folder.mkdir()
    (folder / "kubectl").symlink_to(real)
    monkeypatch.setattr(tools, "TOOLS_BIN", tmp_path / "no-tools")
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")
    found = tools.find("kubectl")
    assert found == str(folder / "kubectl")
    done = jail.run([found, "version", "--client"], jail.writable, ENV, 30)
    assert done.returncode == 0, done.stderr
    assert "Client Version" in done.stdout


def test_tools_linked_from_a_hidden_folder_are_shown_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A checkout whose .tools/bin links to another checkout's binaries under /tmp (as a test's
    copy of the project has): the folder they lead to is shown read-only in the jail."""
    import shutil
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(dir=isolation.PRIVATE_TMP))  # under the hidden /tmp
    elsewhere = tmp_path / "other-checkout" / "bin"
    elsewhere.mkdir(parents=True)
    (elsewhere / "helm").write_text("#!/bin/sh\n")
    links = tmp_path / "copy" / ".tools" / "bin"
    links.mkdir(parents=True)
    (links / "helm").symlink_to(elsewhere / "helm")
    monkeypatch.setattr(tools, "TOOLS_BIN", links)
    try:
        shown = isolation._shown_again()
    finally:
        shutil.rmtree(tmp_path)
    # the program file, not its folder: a link into a home would have shown the whole home
    assert (elsewhere / "helm").resolve() in shown and links.resolve() in shown
    assert elsewhere.resolve() not in shown


def test_a_tool_in_a_home_shows_its_file_and_nothing_else_of_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kubectl on the gate's PATH as ~/.local/bin/kubectl, a link to ~/kubectl: the folders
    were shown, and with them the home's other files (.npmrc, .gitconfig)."""
    real = require_tool("kubectl")
    home = tmp_path / "home" / "alice"
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".npmrc").write_text("//registry.npmjs.org/:_authToken=secret\n")
    (home / "kubectl").symlink_to(real)
    (home / ".local" / "bin" / "kubectl").symlink_to(home / "kubectl")
    monkeypatch.setattr(tools, "TOOLS_BIN", tmp_path / "no-tools")
    monkeypatch.setenv("PATH", f"{home / '.local' / 'bin'}:/usr/bin:/bin")
    shown = [p for p in isolation._shown_again() if home == p or home in p.parents]
    assert shown == [home / ".local" / "bin" / "kubectl"], shown  # its file, at its name


def test_a_tool_that_would_show_the_machines_root_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    links = tmp_path / ".tools" / "bin"
    links.mkdir(parents=True)
    (links / "helm").symlink_to("/")  # a link that ends at the root (as /kubectl would)
    monkeypatch.setattr(tools, "TOOLS_BIN", links)
    with pytest.raises(JailError, match="the gate will not show '/' to pages"):
        isolation._shown_again()


# -- round 2: the gate never follows what a page made (gate/safefs.py, gate/sandbox.py) --------


@pytest.fixture
def page() -> Iterator[Session]:
    require_tool("bwrap")
    session = Session(timeout=30)
    yield session
    session.close()


def as_page(session: Session, script: str) -> isolation.Done:
    """What a page's own process does (a Python block, say): it runs as the page's user."""
    return session.bash(script, check=False)


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    folder = tmp_path / "canary"
    folder.mkdir()
    (folder / "secret.txt").write_text("canary-secret")
    folder.chmod(0o777)  # even a folder anyone could write stays untouched
    return folder


def test_the_gate_writes_nothing_through_a_link_the_page_planted(
    page: Session, canary: Path
) -> None:
    as_page(page, f"ln -s {canary} ~/out; ln -s {canary}/secret.txt ~/file")
    for name in ("~/out/written", "~/file"):
        with pytest.raises(CommandError, match=r"leads out of the page's sandbox|cannot write"):
            page.write(name, "escaped")
    with pytest.raises(CommandError, match="a folder on its way is a link"):
        page.save("~/out/titled.txt", "escaped")
    assert sorted(p.name for p in canary.iterdir()) == ["secret.txt"]
    assert (canary / "secret.txt").read_text() == "canary-secret"


def test_a_link_inside_the_sandbox_is_still_followed(page: Session) -> None:
    as_page(page, "mkdir ~/real && ln -s real ~/alias")
    page.write("~/alias/x.txt", "kept")
    assert page.read("~/real/x.txt") == "kept"


def test_the_gate_reads_no_secret_fifo_or_huge_file_of_a_page(page: Session) -> None:
    script = "ln -s /proc/self/environ ~/env; mkfifo ~/fifo; truncate -s 40M ~/huge"
    as_page(page, script + "; ln -s /proc/1/root/etc/hostname ~/magic")
    cases = {
        "~/env": "leads out",
        "~/magic": "leads out",
        "~/fifo": "not a regular file",
        "~/huge": "larger than 16 MiB",
    }
    refused: dict[str, str] = {}

    def read_all() -> None:  # in a thread: a read that blocks on the FIFO is seen, not waited for
        for name in cases:
            try:
                page.read(name)
            except CommandError as error:
                refused[name] = str(error)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    reader.join(120)
    assert not reader.is_alive(), f"a read blocked; refused so far: {sorted(refused)}"
    assert set(refused) == set(cases), refused
    assert all(why in refused[name] for name, why in cases.items()), refused


def test_git_clone_copies_the_pages_clone_as_the_page_never_the_machine(
    page: Session, canary: Path
) -> None:
    as_page(page, f"mv {page.repo} {page.repo}-moved && ln -s {canary} {page.repo}")
    with pytest.raises(CommandError, match="the copy of the clone failed"):
        page.copy_clone(page.home / "copy")
    found = as_page(page, "cat ~/copy/secret.txt").stdout
    assert "canary-secret" not in found


def test_the_gates_scratch_folder_is_never_where_a_link_leads(page: Session, canary: Path) -> None:
    scratch_name = page.tmp / "tmp"
    as_page(page, f"rm -rf {scratch_name} && ln -s {canary} {scratch_name}")
    scratch = page.scratch()
    page.write_scratch(scratch, "compose.env", "A=b\n")
    assert scratch.parent == page.tmp and not scratch.is_symlink()
    assert sorted(p.name for p in canary.iterdir()) == ["secret.txt"]


def test_the_live_tiers_data_folder_is_made_as_the_page(page: Session, canary: Path) -> None:
    from betrace_dist.gate.live import LiveBackend, LiveTier

    as_page(page, f"ln -s {canary} {page.tmp}/.betrace-live")
    with pytest.raises(Exception, match="data folder cannot be made"):
        LiveBackend(
            page, LiveTier()
        ).data_folder()  # the page's user cannot write the canary from the jail
    assert sorted(p.name for p in canary.iterdir()) == ["secret.txt"]
    assert canary.stat().st_uid == os.getuid()


@pytest.mark.parametrize(
    "assignment",
    [
        *("BASH_ENV=~/forge.sh", "ENV=~/forge.sh", "SHELLOPTS=braceexpand", "BASHOPTS=extglob"),
        *("LD_PRELOAD=~/forge.so", "BASH_FUNC_test%%=() { return 0; }", "PS4=$(touch x)"),
    ],
)
def test_a_page_cannot_set_what_changes_how_later_blocks_run(
    page: Session, assignment: str
) -> None:
    with pytest.raises(CommandError, match="changes how programs start"):
        page._assign([assignment])


def test_rc_files_and_a_planted_bash_or_prlimit_change_no_verdict(
    page: Session, canary: Path
) -> None:
    forge = "trap 'exit 0' EXIT"
    as_page(page, f'echo "{forge}" > ~/.bashrc; cp ~/.bashrc ~/.profile; mkdir ~/bin')
    for program in ("bash", "prlimit", "nsenter", "setpriv", "env", "sh"):
        as_page(
            page, f"printf '#!/bin/sh\\ntouch {canary}/ran-{program}\\nexit 0\\n' > ~/bin/{program}"
        )
    as_page(page, "chmod +x ~/bin/*")
    page._assign([f"PATH={page.home}/bin:{page.env['PATH']}"])
    with pytest.raises(CommandError, match="failed with exit code 1"):
        page.bash("test forged = pass")
    assert sorted(p.name for p in canary.iterdir()) == ["secret.txt"]


def test_every_sandbox_is_removed_whatever_the_page_did(canary: Path) -> None:
    require_tool("bwrap")
    session = Session(timeout=30)
    base = session.sandbox.base
    script = (
        "mkdir -p ~/locked/inner && echo x > ~/locked/inner/f && mkfifo ~/locked/fifo && "
        f"ln -s {canary} ~/locked/inner/out && chmod 000 ~/locked/inner ~/locked && "
        f"chmod 500 {session.tmp}"
    )
    as_page(session, script)
    session.close()
    assert not base.exists()
    assert sorted(p.name for p in canary.iterdir()) == ["secret.txt"]
    assert str(base) not in Path("/proc/self/mountinfo").read_text()


def test_a_sandbox_holds_at_most_its_size(page: Session) -> None:
    if not page.sandbox.mounted:
        pytest.skip(
            "the gate could not mount a tmpfs here (not root): the disk bound is FILE_LIMIT"
        )
    done = as_page(page, "for n in 1 2 3; do head -c 500M /dev/zero > ~/fill-$n || break; done")
    assert "No space left on device" in done.stderr


def test_a_fork_bomb_meets_the_page_users_process_limit(page: Session) -> None:
    done = as_page(page, "ulimit -u")
    assert done.stdout.split() == [str(isolation.USER_PROCESS_LIMIT)]


def test_a_clone_of_a_huge_sandbox_is_refused(page: Session) -> None:
    """The size is reached by construction (a sparse file the test makes as the page would),
    so the refusal never races a time limit on a slow machine."""
    from betrace_dist.gate.commands.git import git
    from betrace_dist.gate.session import Invocation
    from betrace_dist.gate.shellwords import split

    as_page(page, f"truncate -s 300M {page.repo}/sparse.bin")
    url = page.release.project.distribution_repository
    argv = ["git", "clone", url, "copy"]
    command = split(" ".join(argv))[0]
    with pytest.raises(CommandError, match="the gate copies at most 256 MiB"):
        git(Invocation(argv, command, page))


def test_a_deeply_nested_sandbox_is_refused_not_recursed(page: Session) -> None:
    as_page(page, "cd ~ && for n in $(seq 300); do mkdir d && cd d || exit 1; done")
    with pytest.raises(CommandError, match="nested deeper than 256"):
        page.hand_over()


def test_a_file_hard_linked_into_the_sandbox_is_not_handed_over(page: Session) -> None:
    as_page(page, "echo x > ~/own && ln ~/own ~/second-name")
    os.chown(page.home / "own", 0, 0)  # as if it were a file of the machine's
    page.hand_over()
    assert (page.home / "own").stat().st_uid == 0


def test_the_gate_keeps_a_bounded_share_of_a_blocks_output(page: Session) -> None:
    """Event-based: the block's fifth 8 MB print passes the 32 MiB the gate keeps."""
    from betrace_dist.gate.session import PRINTED_LIMIT

    page.printed = []
    with pytest.raises(CommandError, match="printed more than 32 MiB in all"):
        for _ in range(PRINTED_LIMIT // 8_000_000 + 1):
            page._keep(page.bash("tail -c 8000000 /dev/zero | tr '\\0' x"))
    assert (
        sum(len(p.stdout) for p in page.printed if isinstance(p, isolation.Done)) <= PRINTED_LIMIT
    )


def test_git_clone_never_walks_the_machine_through_a_swapped_clone(page: Session) -> None:
    from betrace_dist.gate.commands.git import git
    from betrace_dist.gate.session import Invocation
    from betrace_dist.gate.shellwords import split

    page.cwd = page.home
    as_page(page, f"mv {page.repo} {page.repo}-moved && ln -s / {page.repo}")
    argv = ["git", "clone", page.release.project.distribution_repository, "copy"]
    with pytest.raises(CommandError, match="no longer a folder"):  # refused before any walk
        git(Invocation(argv, split(" ".join(argv))[0], page))


def test_the_gates_own_look_at_a_path_failing_is_a_failure_at_its_line(page: Session) -> None:
    """A model stat-ing a magic link the page made (/proc/1/root/...) meets EACCES: a plain
    failure of the command's line, never an internal error."""
    from betrace_dist.gate.shellwords import split

    def looks(inv: object) -> None:
        raise PermissionError(13, "Permission denied", "/proc/1/root/etc/passwd")

    with pytest.raises(CommandError, match="will not follow '/proc/1/root/etc/passwd'") as info:
        page.run(split("true\nlooks at it"), {"looks": looks})
    assert info.value.line == 2  # type: ignore[attr-defined]


#: What bwrap printed when a mount went away while it copied the mount table, as seen in CI.
LOST_MOUNT = (
    "bwrap: Can't bind mount /oldroot/ on /newroot/: Unable to apply mount flags: remount "
    '"/newroot/tmp/gone": No such file or directory'
)


def _failing_bwrap(tmp_path: Path, failures: int, holder: bool, lost: str = LOST_MOUNT) -> str:
    """A bwrap whose first `failures` builds fail as on a busy machine, then is the real one:
    of the page's namespace holder (`holder`: after reporting the child's PID) or of a
    command's jail (printing `lost`: a mount that went away while bwrap copied the mount
    table)."""
    real = tools.find("bwrap")
    count = tmp_path / ("holder-starts" if holder else "jail-builds")
    if holder:
        case = '*" --unshare-net "*)'  # only the holder makes the network namespace
        fail = (
            '    fd=$(printf "%s\\n" "$@" | grep -A1 -x -- --info-fd | tail -1)\n'
            '    echo \'{"child-pid": 1}\' >&"$fd"\n'
            '    echo "bwrap: Can\'t remount readonly on /gone: No such file or directory" >&2\n'
        )
    else:
        case = '*" --unshare-net "*) ;; *)'
        fail = f"    printf '%s\\n' {shlex.quote(lost)} >&2\n"
    script = tmp_path / "bwrap"
    script.write_text(
        f'#!/bin/bash\ncase " $* " in {case}\n'
        f"  n=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}\n"
        f'  if [ "$n" -lt {failures} ]; then\n{fail}    exit 1\n  fi;;\nesac\n'
        f'exec {real} "$@"\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    return str(script)


def test_a_holder_that_dies_in_its_set_up_is_made_again(tmp_path: Path) -> None:
    """On a busy machine bwrap can report the holder's PID and then fail its set-up; the first
    command of the page then met 'nsenter: cannot open /proc/N/ns/net'. The holder now says
    when it runs, and one that died is made again."""
    require_tool("bwrap")
    box = tmp_path / "sandbox"
    box.mkdir()
    isolation.hand_over(box)
    jail = Jail(
        box, deadline=time.monotonic() + 120, bwrap=_failing_bwrap(tmp_path, 2, holder=True)
    )
    try:
        done = sh(jail, "echo in the jail")
    finally:
        jail.close()
    assert (done.returncode, done.stdout) == (0, "in the jail\n"), done.stderr
    assert (tmp_path / "holder-starts").read_text().strip() == "3"


def test_a_holder_that_never_starts_is_a_jail_error_with_bwraps_words(tmp_path: Path) -> None:
    require_tool("bwrap")
    box = tmp_path / "sandbox"
    box.mkdir()
    jail = Jail(
        box, deadline=time.monotonic() + 120, bwrap=_failing_bwrap(tmp_path, 99, holder=True)
    )
    with pytest.raises(JailError, match="could not make a network namespace: bwrap: Can't remount"):
        sh(jail, "true")
    jail.close()
    assert (tmp_path / "holder-starts").read_text().strip() == str(isolation.HOLDER_TRIES)


def test_a_holder_that_died_later_is_named_not_left_to_nsenter(jail: Jail) -> None:
    assert sh(jail, "true").returncode == 0
    assert jail._holder is not None
    isolation._kill_group(jail._holder)
    with pytest.raises(JailError, match="network namespace went away"):
        sh(jail, "true")


#: The same race, seen in a full run: the page folder was still there, no longer a mount.
LOST_PAGE_MOUNT = (
    "bwrap: Can't bind mount /oldroot/ on /newroot/: Unable to apply mount flags: remount "
    '"/newroot/tmp/betrace-page-8fbrpo4l/page": Invalid argument'
)


@pytest.mark.parametrize("lost", [LOST_MOUNT, LOST_PAGE_MOUNT], ids=["ENOENT", "EINVAL"])
def test_a_jail_that_lost_a_mount_while_built_is_built_again(tmp_path: Path, lost: str) -> None:
    require_tool("bwrap")
    box = tmp_path / "sandbox"
    box.mkdir()
    isolation.hand_over(box)
    jail = Jail(
        box,
        deadline=time.monotonic() + 120,
        bwrap=_failing_bwrap(tmp_path, 2, holder=False, lost=lost),
    )
    try:
        done = sh(jail, "echo ran once >> runs.txt; echo done")
    finally:
        jail.close()
    assert (done.returncode, done.stdout) == (0, "done\n"), done.stderr
    assert (box / "runs.txt").read_text() == "ran once\n"  # the command itself ran once
    assert (tmp_path / "jail-builds").read_text().strip() == "3"


def test_only_a_lost_mount_is_taken_for_the_race() -> None:
    """Another bwrap failure, or EINVAL on a folder that is not a page's, is reported at once."""
    assert tools.bwrap_lost_a_mount(1, "", LOST_PAGE_MOUNT + "\n")
    other = LOST_PAGE_MOUNT.replace("betrace-page-8fbrpo4l/page", "srv/data")
    assert not tools.bwrap_lost_a_mount(1, "", other + "\n")
    proc = "bwrap: Can't mount proc on /newroot/proc: Invalid argument\n"
    assert not tools.bwrap_lost_a_mount(1, "", proc)
    assert not tools.bwrap_lost_a_mount(1, "printed", LOST_PAGE_MOUNT + "\n")


def test_a_jail_that_never_builds_gives_bwraps_words_after_its_tries(tmp_path: Path) -> None:
    require_tool("bwrap")
    box = tmp_path / "sandbox"
    box.mkdir()
    jail = Jail(
        box, deadline=time.monotonic() + 120, bwrap=_failing_bwrap(tmp_path, 99, holder=False)
    )
    try:
        done = sh(jail, "true")
    finally:
        jail.close()
    assert done.returncode == 1 and "Can't bind mount /oldroot/" in done.stderr
    assert (tmp_path / "jail-builds").read_text().strip() == str(isolation.SETUP_TRIES)


def test_a_command_that_fails_on_its_own_is_run_once(jail: Jail) -> None:
    done = sh(jail, "echo x >> runs.txt; echo 'bwrap: not a set-up failure' >&2; exit 1")
    assert done.returncode == 1
    assert (jail.writable / "runs.txt").read_text() == "x\n"


def test_the_sandboxes_a_killed_run_left_are_removed_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, canary: Path
) -> None:
    """A run killed before its pages closed leaves its sandboxes (their RAM-backed folders still
    mounted where the gate is root); the next gate process removes those of processes that are
    gone, unmounting first and following none of the page's links, and leaves the rest."""
    from betrace_dist.gate import sandbox

    monkeypatch.setattr(sandbox.tempfile, "tempdir", str(tmp_path))
    ended = subprocess.Popen(["true"])
    ended.wait()
    stale = tmp_path / f"betrace-page-{ended.pid}-k1ll3d"
    (stale / "page").mkdir(parents=True)
    mounted = sandbox._mount_tmpfs(stale / "page")
    (stale / "page" / "out").symlink_to(canary)
    (stale / "page" / "left.txt").write_text("x")
    stuck = tmp_path / f"betrace-page-{ended.pid}-stuck"
    stuck.mkdir()
    real_remove = sandbox.safefs.remove_tree

    def remove(path: Path) -> None:  # one another gate process is removing at the same time
        if path == stuck:
            raise OSError("gone from under the sweep")
        real_remove(path)

    monkeypatch.setattr(sandbox.safefs, "remove_tree", remove)
    running = tmp_path / f"betrace-page-{os.getpid()}-l1ve"
    unnamed = tmp_path / "betrace-page-0ldname"
    for kept in (running, unnamed):
        kept.mkdir()
    sandbox.sweep_stale.cache_clear()
    try:
        assert sandbox.sweep_stale() == (stale,)
    finally:
        sandbox.sweep_stale.cache_clear()
    assert not stale.exists() and running.is_dir() and unnamed.is_dir()
    assert stuck.is_dir()  # left for a later sweep, and no page failed for it
    assert (canary / "secret.txt").read_text() == "canary-secret"
    if mounted:
        assert str(stale / "page") not in Path("/proc/self/mounts").read_text()


def test_a_sandbox_leaves_no_mount_whatever_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The review of the descriptor-held mount: a sandbox whose jail failed to start, one whose
    jail failed to stop, and one whose file system someone detached already each leave no
    mount, and the last one no folder either."""
    from betrace_dist.gate import sandbox

    monkeypatch.setattr(sandbox.tempfile, "tempdir", str(tmp_path))
    probe = sandbox.Sandbox(deadline=time.monotonic() + 60)
    mounted = probe.mounted
    probe.close()
    if not mounted:
        pytest.skip("this machine mounts no tmpfs for a page (the gate is not root here)")

    def ours() -> list[Path]:
        return [page for page, _ in sandbox.page_mounts() if page.is_relative_to(tmp_path)]

    real_jail = sandbox.Jail
    monkeypatch.setattr(sandbox, "Jail", lambda *a, **k: (_ for _ in ()).throw(OSError("no")))
    with pytest.raises(OSError, match="no"):
        sandbox.Sandbox(deadline=time.monotonic() + 60)
    assert ours() == [] and list(tmp_path.iterdir()) == []
    monkeypatch.setattr(sandbox, "Jail", real_jail)

    failing = sandbox.Sandbox(deadline=time.monotonic() + 60)
    monkeypatch.setattr(failing.jail, "close", lambda: (_ for _ in ()).throw(OSError("stuck")))
    with pytest.raises(OSError, match="stuck"):
        failing.close()
    assert ours() == []

    gone = sandbox.Sandbox(deadline=time.monotonic() + 60)
    subprocess.run(["umount", "-l", str(gone.root)], check=True)
    gone.close()
    assert ours() == [] and not gone.base.exists()


def test_a_killed_runs_mount_in_another_temporary_folder_is_unmounted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run with a TMPDIR of its own (a test's) is swept by no later run in that folder, and
    the file system it left mounted there made every removal of the folder above fail: pytest's
    own pruning of its temporary root stopped a whole run on EBUSY. The next gate process
    unmounts it from the kernel's mount table, wherever it is, and leaves the folder."""
    from betrace_dist.gate import sandbox

    ended = subprocess.Popen(["true"])
    ended.wait()
    elsewhere = tmp_path / "another run's TMPDIR" / f"betrace-page-{ended.pid}-k1ll3d" / "page"
    elsewhere.mkdir(parents=True)
    live = tmp_path / f"betrace-page-{os.getpid()}-l1ve" / "page"
    live.mkdir(parents=True)
    if not (sandbox._mount_tmpfs(elsewhere) and sandbox._mount_tmpfs(live)):
        pytest.skip("this machine mounts no tmpfs for a page (the gate is not root here)")
    try:
        own = tmp_path / "own"
        own.mkdir()
        monkeypatch.setattr(sandbox.tempfile, "tempdir", str(own))
        stale = [page for page, _ in sandbox._stale_mounts()]  # (and others a killed run left)
        assert elsewhere in stale and live not in stale, stale
        sandbox.sweep_stale.cache_clear()
        try:
            sandbox.sweep_stale()
        finally:
            sandbox.sweep_stale.cache_clear()
        assert not os.path.ismount(elsewhere) and elsewhere.is_dir()
        assert os.path.ismount(live)  # its process runs: not the sweep's
    finally:
        _release(elsewhere, live)


def _release(*mounted: Path) -> None:
    """The test's own mounts, taken down whatever the test found."""
    for page in mounted:
        if os.path.ismount(page):
            subprocess.run(["umount", "-l", str(page)], check=False, capture_output=True)


@pytest.mark.parametrize("swap", ["a link", "a renamed folder"])
def test_a_swap_on_the_way_to_a_stale_mount_turns_the_sweep_on_no_other_mount(
    tmp_path: Path, swap: str
) -> None:
    """The sweep reads a stale mount's path from the mount table, then detaches it as root. A
    user who may write a folder on that path can swap the folder between the two (for a link,
    or for a folder of theirs with another mount at the same place): the review of the first
    sweep, which ran `umount -l PATH`, showed it detach the other mount and leave its own. The
    path is opened with no link followed and the device must be the one the table listed."""
    from betrace_dist.gate import sandbox

    ended = subprocess.Popen(["true"])
    ended.wait()
    inside = Path(f"betrace-page-{ended.pid}-k1ll3d", "page")
    run, theirs, moved = tmp_path / "run", tmp_path / "theirs", tmp_path / "moved"
    for folder in (run / inside, theirs / inside):
        folder.mkdir(parents=True)
    if not (sandbox._mount_tmpfs(run / inside) and sandbox._mount_tmpfs(theirs / inside)):
        pytest.skip("this machine mounts no tmpfs for a page (the gate is not root here)")
    try:
        (device,) = [d for page, d in sandbox._stale_mounts() if page == run / inside]
        run.rename(moved)  # the stale mount is now at moved/...
        if swap == "a link":
            run.symlink_to(theirs)  # run/... leads to their mount
            victim = theirs / inside
        else:
            theirs.rename(run)  # run/... is their mount
            victim = run / inside
        assert not sandbox._detach_stale(run / inside, device)
        assert os.path.ismount(victim) and os.path.ismount(moved / inside)
        # and with nothing swapped, the same call detaches the stale one
        assert sandbox._detach_stale(moved / inside, device)
        assert not os.path.ismount(moved / inside) and os.path.ismount(victim)
    finally:
        _release(moved / inside, theirs / inside, run / inside)


def test_a_mount_point_with_a_space_is_read_from_the_mount_table() -> None:
    """The kernel writes a space in a mount point as \\040 (proc(5)): read back as written,
    and a name that is no UTF-8 as its bytes are."""
    from betrace_dist.gate import sandbox

    assert sandbox._unescaped(b"/srv/a\\040b/c\\134d") == "/srv/a b/c\\d"
    assert os.fsencode(sandbox._unescaped(b"/srv/\\377x")) == b"/srv/\xffx"


def test_the_projects_git_folder_is_hidden_from_pages(jail: Jail) -> None:
    """The checkout's `.git/config` may hold its remote's credentials: a page sees an empty
    folder there (its own clone is a copy without `.git`), while the rest of the project (the
    virtualenv, the tools, the gate's own code) stays visible."""
    dirs = isolation.project_git_dirs()
    if not dirs:
        pytest.skip("the project is not a git checkout here: it has no git folder to hide")
    (git_dir,) = dirs
    assert (git_dir / "config").is_file()  # the gate sees it
    done = sh(jail, f"ls -A {shlex.quote(str(git_dir))} | wc -l; cat {git_dir / 'config'}")
    assert done.stdout.split("\n")[0] == "0", done.stdout
    assert "No such file" in done.stderr
    from betrace_dist import REPO_ROOT

    assert sh(jail, f"test -f {REPO_ROOT / 'pyproject.toml'} && echo seen").stdout == "seen\n"


def test_a_command_stopped_from_outside_goes_with_it(jail: Jail) -> None:
    """The gate's processor budget stops a block with an exception raised in the gate's thread,
    possibly while it waits on a command: the command (and all it started) must end with it,
    never run on through the next page (seen: a writer alive until pytest exited)."""
    from betrace_dist.site import limits

    thread = threading.get_ident()
    stop = threading.Timer(1.0, limits._set_async_exc, (thread, limits.OutOfProcessorTime))
    stop.start()
    try:
        with pytest.raises(limits.OutOfProcessorTime):
            sh(jail, "sleep 4713 & sleep 4714", timeout=60)
    finally:
        stop.cancel()
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _alive(p)]
    assert left == [], "a process of the stopped command still ran"


def test_a_lookup_that_openat2_asks_to_retry_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """openat2 with RESOLVE_BENEATH answers EAGAIN for a path with `..` when any rename
    happened on the machine meanwhile; under load a page's `copy/templates -> ../kept` read as
    unreadable now and then (a test failed so in a full run). It is asked again."""
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "f").write_text("x", encoding="utf-8")
    (tmp_path / "link").symlink_to("kept")
    real, calls = safefs._openat2, []

    def busy(dirfd: int, rel: str, flags: int, mode: int) -> int:
        calls.append(rel)
        if len(calls) < 5:
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable", rel)
        return real(dirfd, rel, flags, mode)

    monkeypatch.setattr(safefs, "_openat2", busy)
    tree = safefs.Tree(tmp_path)
    try:
        if safefs._openat2_works is False:
            pytest.skip("this kernel has no openat2: the strict walk is used, which never retries")
        assert tree.read(tmp_path / "link" / ".." / "kept" / "f") == b"x"
        assert len(calls) == 5

        def always(dirfd: int, rel: str, flags: int, mode: int) -> int:
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable", rel)

        monkeypatch.setattr(safefs, "_openat2", always)
        with pytest.raises(safefs.UnsafePath):
            tree.read(tmp_path / "kept" / "f")
    finally:
        tree.close()


def _dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    done = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_a_stale_page_cgroup_is_removed_and_one_in_use_stays() -> None:
    """A gate killed before its pages closed leaves their cgroups (the kernel keeps an empty
    group until someone removes it). The next gate removes those of gone gate processes: not a
    group of a running gate, not one with a task in it, not a group named otherwise."""
    from .conftest import skip_or_fail

    parents = isolation._group_parents()
    if not parents:
        skip_or_fail("no cgroup hierarchy this process may make groups in")
    parent = parents[0]
    dead = _dead_pid()
    stale, busy = parent / f"betrace-page-{dead}-1", parent / f"betrace-page-{dead}-2"
    running, other = parent / f"betrace-page-{os.getpid()}-3", parent / f"not-a-page-{dead}-4"
    groups = [stale, busy, running, other]
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        for group in groups:
            try:
                group.mkdir()
            except OSError as exc:
                skip_or_fail(f"cannot make a cgroup in {parent}: {exc}")
        (busy / "cgroup.procs").write_text(str(sleeper.pid))
        removed = isolation.remove_stale_cgroups()
        assert stale in removed and not stale.exists()
        assert busy.exists() and running.exists() and other.exists(), removed
        sleeper.kill()
        sleeper.wait()
        for _ in range(100):  # the kernel frees the group once its task is reaped
            if busy in isolation.remove_stale_cgroups():
                break
            time.sleep(0.02)
        assert not busy.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
        for group in groups:
            with contextlib.suppress(OSError):
                group.rmdir()
