"""The jail every command of a page runs in (gate/isolation.py), wall by wall.

The hostile corpus (tests/test_hostile_pages.py) proves containment end to end; these tests
name each wall on its own, so a regression says which one fell.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from betrace_dist import tools
from betrace_dist.gate import isolation
from betrace_dist.gate.checkers import CheckFailure
from betrace_dist.gate.isolation import Jail, JailError
from betrace_dist.gate.session import CommandError, Session

from .conftest import require_tool

ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


@pytest.fixture
def jail(tmp_path: Path) -> Iterator[Jail]:
    require_tool("bwrap", isolation.BWRAP_HINT)
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
    assert "Read-only file system" in done.stderr


def test_homes_and_daemon_sockets_are_hidden(jail: Jail) -> None:
    assert sh(jail, "ls -A /run | wc -l").stdout.split() == ["0"]  # daemon sockets live there
    # only what the gate shows again (the Python installation, under a home) is in the home
    shown_again = {p.relative_to(Path.home()).parts[0] for p in isolation._shown_again()
                   if Path.home() in p.parents}  # fmt: skip
    assert set(sh(jail, f"ls -A {Path.home()}").stdout.split()) <= shown_again
    assert "root:" not in sh(jail, "cat /etc/shadow").stdout


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
    # the kernel kills a PID namespace's processes when its first one ends, asynchronously:
    # give it a moment (a process that really survived would still run minutes later)
    for _ in range(40):
        left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _alive(p)]
        if not left:
            break
        time.sleep(0.05)
    assert left == []


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
    require_tool("bwrap", isolation.BWRAP_HINT)
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
        require_tool("bwrap", isolation.BWRAP_HINT)
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
    assert elsewhere.resolve() in shown and links.resolve() in shown
