"""Content-tab states keep only what changed, restore exactly, never touch the pristine clone,
never leak one tab's changes into its sibling, and keep disk use under a bound."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from betrace_dist.gate import session as session_module
from betrace_dist.gate.commands import models
from betrace_dist.gate.session import CommandError, Session
from betrace_dist.gate.shellwords import split
from betrace_dist.gate.snapshots import Entry, SnapshotLimitError, Snapshots, scan


def _tree(root: Path) -> dict[str, tuple[str, int, bytes | str]]:
    """Everything a page could observe of a tree: kind, permission bits, content or target."""
    out: dict[str, tuple[str, int, bytes | str]] = {}
    for path, entry in scan(root).items():
        full = root / path
        body: bytes | str = b""
        if entry.kind == "f":
            body = full.read_bytes()
        elif entry.kind == "l":
            body = str(full.readlink())
        out[path] = (entry.kind, entry.mode, body)
    return out


def _tick_past(root: Path) -> None:
    """Wait until the filesystem's clock has moved past the last change under root, so that
    nothing there counts as changed in the tick of the next recording (racy entries are copied
    every time, which is right, but makes exact byte counts depend on timing)."""
    newest = max(entry.ctime_ns for entry in scan(root).values())
    probe = root.parent / "clock-probe"
    while True:
        probe.write_text("t")
        if probe.stat().st_ctime_ns > newest:
            probe.unlink()
            return
        time.sleep(0.001)


Sandbox = tuple[Path, Path, Snapshots]  # the sandbox, its pristine folder, its states


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox laid out from a pristine folder, as a page's is."""
    pristine = tmp_path / "pristine"
    (pristine / "docker").mkdir(parents=True)
    (pristine / "README.md").write_text("readme\n")
    (pristine / "docker" / "compose.yaml").write_text("services: {}\n")
    root = tmp_path / "sandbox"
    (root / "home").mkdir(parents=True)
    (root / "repo" / "docker").mkdir(parents=True)
    for name in ("README.md", "docker/compose.yaml"):
        (root / "repo" / name).write_bytes((pristine / name).read_bytes())
    _tick_past(root)
    states = Snapshots(root, {"repo": pristine}, tmp_path / "states")
    yield root, pristine, states
    states.close()


def test_a_state_taken_right_after_layout_copies_nothing(sandbox: Sandbox) -> None:
    _, pristine, states = sandbox
    state = states.take()
    assert states.used == 0
    assert state["repo/README.md"].stored == str(pristine / "README.md")


def test_restore_undoes_every_kind_of_change(sandbox: Sandbox) -> None:
    root, pristine, states = sandbox
    (root / "home" / "notes.txt").write_text("before the tabs\n")
    _tick_past(root)
    before = _tree(root)
    state = states.take()
    assert states.used == len("before the tabs\n")  # only what changed since the layout
    readme = root / "repo" / "README.md"
    stamp = readme.stat().st_mtime_ns
    readme.write_text("READ\n" + "x" * 2)  # same size, in place (same inode) ...
    os.utime(readme, ns=(stamp, stamp))  # ... and the old mtime, as `touch -d` could set
    with (root / "home" / "notes.txt").open("a") as notes:
        notes.write("appended in a tab\n")
    (root / "repo" / "docker" / "compose.yaml").unlink()
    (root / "repo" / "docker" / "compose.yaml").symlink_to("/etc/passwd")
    (root / "repo" / "new" / "deep").mkdir(parents=True)
    (root / "repo" / "new" / "deep" / "file").write_text("new")
    (root / "repo" / "docker").chmod(0o500)
    (root / "home").rename(root / "home-moved")
    states.restore(state)
    assert _tree(root) == before
    assert _tree(pristine)["README.md"][2] == b"readme\n"


def test_restoring_twice_gives_the_same_state_each_time(sandbox: Sandbox) -> None:
    root, _, states = sandbox
    before = _tree(root)
    state = states.take()
    for text in ("first tab\n", "second tab, longer\n"):
        (root / "repo" / "README.md").write_text(text)
        (root / "home" / text.split()[0]).write_text(text)
        states.restore(state)
        assert _tree(root) == before


def test_unchanged_content_is_kept_once_across_states(sandbox: Sandbox) -> None:
    root, _, states = sandbox
    big = root / "home" / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    _tick_past(root)
    for _ in range(20):  # 20 tab groups after one large file: one copy of it, not 20
        states.restore(states.take())
    assert states.used == 3 * 1024 * 1024
    assert sum(p.stat().st_size for p in states.store.iterdir()) <= 3 * 1024 * 1024 + 1


def test_keeping_more_than_the_limit_fails_with_the_sizes(sandbox: Sandbox) -> None:
    root, _, states = sandbox
    states.limit = 1024 * 1024
    (root / "home" / "large.bin").write_bytes(b"\0" * 2 * 1024 * 1024)
    with pytest.raises(SnapshotLimitError, match=r"'home/large.bin', 2.0 MiB\), over the limit"):
        states.take()


def test_an_entry_changed_in_the_recording_tick_is_never_trusted() -> None:
    fields = ("f", 0o644, 3, 1, 2, 3)
    assert Entry(*fields).same(Entry(*fields))
    assert not Entry(*fields, racy=True).same(Entry(*fields))


def test_scan_marks_entries_changed_at_or_after_the_clock_racy(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    ctime = (tmp_path / "f").stat().st_ctime_ns
    assert scan(tmp_path, ctime)["f"].racy
    assert not scan(tmp_path, ctime + 1)["f"].racy


# -- the page's session ---------------------------------------------------------------------


@pytest.fixture
def page() -> Iterator[Session]:
    s = Session(timeout=10)
    yield s
    s.close()


def run(session: Session, script: str) -> None:
    session.run(split(script), models())


def test_a_tab_changes_never_reach_its_sibling(page: Session) -> None:
    readme = (page.repo / "README.md").read_text()
    page.enter((0, 0))
    run(page, "echo first-tab >> README.md\nmkdir -p made\necho a > made/a.txt\nexport TAB=one\n")
    page.enter((0, 1))
    assert (page.repo / "README.md").read_text() == readme
    assert not (page.repo / "made").exists()
    assert "TAB" not in page.env
    run(page, "echo second-tab > second.txt\n")
    page.enter(None)  # after the group the page goes on from the first tab's state
    assert (page.repo / "README.md").read_text() == readme + "first-tab\n"
    assert (page.repo / "made" / "a.txt").read_text() == "a\n"
    assert not (page.repo / "second.txt").exists()
    assert page.env["TAB"] == "one"


def test_a_page_cannot_change_the_pristine_clone_or_another_page() -> None:
    pristine = session_module._pristine()
    original = (pristine / "README.md").read_bytes()
    first, second = Session(timeout=10), Session(timeout=10)
    try:
        first.enter((0, 0))
        run(first, "echo changed >> README.md\nchmod 600 README.md\nsed -i s/a/b/ mkdocs.yml\n")
        first.enter((0, 1))
        run(first, "echo changed > releases.yaml\n")
        first.enter(None)
        with pytest.raises(CommandError, match="outside the page's sandbox"):
            run(first, f"echo x >> {pristine}/README.md\n")
        jailed = first.bash(f"echo x >> {pristine}/README.md", check=False)
        assert jailed.returncode != 0  # the jail hides or write-protects it too
        assert (pristine / "README.md").read_bytes() == original
        assert (second.repo / "README.md").read_bytes() == original
        assert _tree(pristine) == _tree(second.repo)
    finally:
        first.close()
        second.close()
