"""The gate's result cache (src/betrace_dist/gate/result_cache.py): a page is reused only while
every input it depends on is as when it last passed; each input, changed, makes it run again.

The gate runs for real, in child processes, on a copy of the work tree (its own engine first on
PYTHONPATH), on docs/reference/security.md: three blocks, one of them renders the chart with
Helm in the page's jail, so the page reads the chart's files and nothing else of the checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT, tools
from betrace_dist.gate import result_cache

from .conftest import line_containing

pytestmark = pytest.mark.slow  # twenty gate runs in child processes

PAGE = "docs/reference/security.md"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The work tree as a reader's checkout (a git index, the real tools linked, not copied)."""
    copy = tmp_path_factory.mktemp("cache") / "distribution"
    wanted = ["ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    listed = subprocess.run(
        ["git", "-C", str(REPO_ROOT), *wanted],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, listed):
        if (REPO_ROOT / name).is_file() and not name.startswith(".venv"):
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, copy / name, follow_symlinks=False)
    subprocess.run([*GIT, "init", "-q", str(copy)], check=True, timeout=60)
    bin_dir = copy / ".tools" / "bin"  # links to the real binaries: one can be swapped
    bin_dir.mkdir(parents=True)
    for binary in tools.TOOLS_BIN.glob("*"):
        (bin_dir / binary.name).symlink_to(binary.resolve())
    (copy / ".git" / "info" / "exclude").write_text("/.tools\n/.pytest_cache\n")
    subprocess.run([*GIT, "-C", str(copy), "add", "-A"], check=True, timeout=60)
    return copy


def gate(project: Path, *args: str, **env: str) -> dict[str, str]:
    """Run the gate on PAGE; the result cache's verdict per page: 'reused' or why it ran."""
    drop = ("PYTEST_", "CI", "PYTHONDONTWRITEBYTECODE")  # bytecode kept: 20 runs of one engine
    child = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    child |= {"PYTHONPATH": str(project / "src"), **env}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "--no-live", *(args or (PAGE,))],
        cwd=project, env=child, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout + done.stderr
    verdicts: dict[str, str] = {}
    section = done.stdout.partition("gate result cache")[2]
    for line in section.splitlines():
        if match := re.match(r"^  (docs/\S+\.md)(?:: (.*))?$", line):
            verdicts[match[1]] = match[2] or "reused"
    verdicts["exit"] = str(done.returncode)
    verdicts["summary"] = section
    return verdicts


@contextmanager
def changed(path: Path, text: str) -> Iterator[None]:
    """`text` appended to a file of the copy for the duration, then the file as it was."""
    before = path.read_bytes()
    path.write_bytes(before + text.encode())
    try:
        yield
    finally:
        path.write_bytes(before)


@pytest.fixture
def warm(project: Path) -> Path:
    """The page has passed with the copy as it is now, and is reused."""
    if gate(project)[PAGE] != "reused":
        assert gate(project)[PAGE] == "reused"
    return project


#: Inputs in the order they are changed, each with the reason the next run gives. The changes
#: stay: each run keeps the page with every change so far, so the next names only its own.
CHANGES = [
    ("docker/README.md", "reused"),  # a file the page never reads
    ("helm/betrace/values.yaml", "helm/betrace/values.yaml, which it reads, changed"),
    (PAGE, "the page changed"),
    ("releases.yaml", "the release data or the site configuration changed"),
    ("mkdocs.yml", "the release data or the site configuration changed"),
    ("pyproject.toml", "the release data or the site configuration changed"),  # ruff, pytest
    ("src/betrace_dist/gate/ledger.py", "the gate's code or an installed package changed"),
    ("tests/artefacts/__init__.py", "the gate's code or an installed package changed"),
]


def test_a_page_is_reused_until_one_of_its_inputs_changes(project: Path) -> None:
    first = gate(project)
    assert first["exit"] == "0", first["summary"]
    assert first[PAGE] == "it has not passed since the cache was last cleared"
    assert gate(project)[PAGE] == "reused"
    for path, why in CHANGES:
        with (project / path).open("a", encoding="utf-8") as changed_file:
            changed_file.write("\n\n" if path.endswith(".md") else "\n# changed\n")
        assert (path, gate(project)[PAGE]) == (path, why)
    (project / "docker" / "notes.txt").write_text("a new file a glob or a listing would see\n")
    assert gate(project)[PAGE] == "files of the checkout were added or removed"
    helm = project / ".tools" / "bin" / "helm"
    real = helm.resolve()
    helm.unlink()
    shutil.copy2(real, helm)  # the same program, another file: a reinstall
    assert gate(project)[PAGE] == "a program the gate runs changed"
    slower = gate(project, PAGE, BETRACE_COMMAND_TIMEOUT="59")
    assert slower[PAGE] == "a BETRACE_* setting changed"


def test_no_cache_and_ci_run_every_page_and_say_so(warm: Path) -> None:
    bypassed = gate(warm, PAGE, "--no-cache")
    assert PAGE not in bypassed and bypassed["exit"] == "0"
    assert "off: --no-cache" in bypassed["summary"]
    in_ci = gate(warm, PAGE, CI="true")
    assert "off: CI runs every page" in in_ci["summary"]
    assert gate(warm)[PAGE] == "reused"  # neither of them dropped what was kept


def test_a_failing_or_partly_run_page_is_not_kept(warm: Path) -> None:
    entries = warm / ".pytest_cache" / "d" / "betrace-gate"
    kept = {p.name for p in entries.glob("*.json")}
    broken = "\n```bash\nhelm template betrace ./helm/betrace --set no.such=1 --no-such-flag\n```\n"
    with changed(warm / PAGE, broken):
        failing = gate(warm)
        assert failing["exit"] == "1" and failing[PAGE] == "the page changed"
        never = "it has not passed since the cache was last cleared"
        assert gate(warm)[PAGE] == never  # nothing kept of the failure; the old pass forgotten
    assert len({p.name for p in entries.glob("*.json")}) == len(kept) - 1
    assert gate(warm)[PAGE] == never  # a failed page is run again even once mended
    shutil.rmtree(entries)
    yaml = line_containing(warm / PAGE, "```yaml")  # a run of one block of the page
    one_block = gate(warm, f"{PAGE}::line:{yaml},yaml")
    assert one_block[PAGE] == "it has not passed since the cache was last cleared"
    assert gate(warm)[PAGE] == "it has not passed since the cache was last cleared"


def test_without_access_times_every_file_of_the_clone_counts_as_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the file system keeps no access times (noatime), correctness over reuse."""
    from betrace_dist.gate import session as session_module

    session = session_module.Session()
    try:
        assert session.reads() == {}  # nothing read yet
        (session.repo / "Makefile").read_bytes()
        assert list(session.reads()) == ["Makefile"]
        monkeypatch.setattr(result_cache, "access_times_work", lambda where: False)
        everything = session.reads()
        assert len(everything) > 100 and "helm/betrace/values.yaml" in everything
    finally:
        session.close()


def test_the_gate_copying_files_is_not_counted_as_the_page_reading_them() -> None:
    from betrace_dist.gate import session as session_module

    session = session_module.Session()
    try:
        session.copy_clone(session.tmp / "clone")
        session._snapshot()
        assert session.reads() == {}
        (session.tmp / "clone" / "README.md").read_bytes()  # the page reads its clone's copy
        assert list(session.reads()) == ["README.md"]
    finally:
        session.close()


def test_what_readers_are_shown_is_kept_by_its_text_and_a_damaged_entry_is_ignored(
    tmp_path: Path,
) -> None:
    from betrace_dist.gate.collect import Gate

    gate = Gate(REPO_ROOT / "mkdocs.yml")
    gate.results = result_cache.ResultCache(tmp_path)
    text = "# Title {#anchor}\n\n```bash\necho hi\n```\n\n[a link](other.md)\n"
    fresh = gate.display.displayed_page(text)
    assert gate.displayed(text) == fresh  # computed, then kept
    assert gate.displayed(text) == fresh  # read back
    (entry,) = (tmp_path / "displayed").glob("*.json")
    entry.write_text('{"format": 1, "value": {"code": 3}}')
    assert gate.displayed(text) == fresh  # a damaged entry is computed again
    other = text.replace("echo hi", "echo bye")
    assert gate.displayed(other).code == ["echo bye\n"]


def test_the_tree_part_sees_a_file_deleted_without_git_rm_and_a_mode_changed(
    tmp_path: Path,
) -> None:
    (tmp_path / "a").write_text("a\n")
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    names = ["a", "run.sh"]
    before = result_cache.manifest_digest(tmp_path, names)
    (tmp_path / "run.sh").chmod(0o755)
    made_executable = result_cache.manifest_digest(tmp_path, names)
    (tmp_path / "a").unlink()  # git still lists it; a fresh clone's copy lacks it
    deleted = result_cache.manifest_digest(tmp_path, names)
    assert len({before, made_executable, deleted}) == 3


def test_a_read_whose_access_time_was_put_back_still_counts() -> None:
    """`tar --atime-preserve` reads, then resets the access time: the change time moves."""
    from betrace_dist.gate import session as session_module

    session = session_module.Session()
    try:
        makefile = session.repo / "Makefile"
        makefile.read_bytes()
        result_cache.forget_reads(makefile)  # the access time put back, as such tools do
        assert result_cache.was_read(os.lstat(makefile)) is False
        assert list(session.reads()) == ["Makefile"]
    finally:
        session.close()


def test_a_page_with_a_failed_report_is_forgotten(tmp_path: Path) -> None:
    """pytest can fail a block after its check returned (an exception in a thread, a failing
    teardown): such a page is never kept, and a kept entry of it is dropped."""
    from sybil import Document

    from betrace_dist.gate.collect import Gate, _PageRun

    gate = Gate(REPO_ROOT / "mkdocs.yml")
    gate.results = result_cache.ResultCache(tmp_path)
    page = REPO_ROOT / PAGE
    key = result_cache.PageKey(PAGE, {"page": "x"})
    gate.results.store(key)
    run = _PageRun(gate, key, result_cache.Lookup(False, ""), Document("", str(page)), ran=1)
    gate._runs[page.resolve()] = run
    gate.failed(page)
    assert run.failed
    assert gate.results.lookup(key).why.startswith("it has not passed")
