"""The gate gives the same verdict every time: twice in a row (the second time with the pages in
reverse order), and on two workers (`-n 2 --dist=loadfile`, as `make test` runs it), on a corpus
of pages that mostly fail. Every page gets a sandbox of its own, and none outlives its page.

The runs use a git copy of the work tree (see test_safety.py), so they measure the gate alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from .test_safety import repo_copy  # noqa: F401 - a fixture, shared

pytestmark = pytest.mark.slow

SITE = Path("tests/fixtures/guide-mistakes")

#: Loaded into the gate's pytest with -p: logs every page sandbox the gate creates, by process.
RECORDER = """\
import os

from betrace_dist.gate import session as _session

_init = _session.Session.__init__


def _recording_init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    with open(os.environ["SANDBOX_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{os.getpid()} {self.tmp}\\n")


_session.Session.__init__ = _recording_init
"""


@dataclass
class Run:
    name: str
    verdicts: set[tuple[str, str, str]]  # (node id, outcome, first line of the message)
    sandboxes: list[tuple[int, Path]]  # (process id, sandbox directory)
    tmpdir: Path
    output: str


def _verdicts(junit: Path) -> set[tuple[str, str, str]]:
    found = set()
    for case in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314 - our own junit file
        node = f"{case.get('classname')}::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome, message = child.tag, (child.get("message") or "").splitlines()[0]
        found.add((node, outcome, message))
    return found


def _start(
    copy: Path, work: Path, name: str, args: list[str]
) -> tuple[subprocess.Popen[str], Path]:
    base = work / name
    (base / "tmp").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "BETRACE_"))}
    env |= {
        "TMPDIR": str(base / "tmp"),
        "PYTHONPATH": os.pathsep.join([str(work), str(copy / "src")]),
        "SANDBOX_LOG": str(base / "sandboxes.log"),
    }
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "record_sandboxes"]
    argv += ["-q", "-p", "no:randomly", f"--junitxml={base / 'junit.xml'}", *args]
    proc = subprocess.Popen(
        argv, cwd=copy / SITE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return proc, base


def _finish(name: str, proc: subprocess.Popen[str], base: Path) -> Run:
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 1, f"{name}: the corpus must fail\n{output[-3000:]}"
    assert "INTERNALERROR" not in output, output[-3000:]
    log = base / "sandboxes.log"
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    sandboxes = [(int(pid), Path(path)) for pid, path in (ln.split(" ", 1) for ln in lines)]
    return Run(name, _verdicts(base / "junit.xml"), sandboxes, base / "tmp", output)


@pytest.fixture(scope="module")
def runs(repo_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:  # noqa: F811
    work = tmp_path_factory.mktemp("repeat")
    (work / "record_sandboxes.py").write_text(RECORDER, encoding="utf-8")
    site = repo_copy / SITE
    pages = sorted(p.relative_to(site).as_posix() for p in (site / "docs").glob("*.md"))
    assert len(pages) > 5, pages
    # The first run alone; then, at the same time, the run again with the pages in reverse
    # order (a second run, in another order), and on two workers (concurrent gate processes
    # must not share anything either).
    first = _finish("first", *_start(repo_copy, work, "first", ["docs"]))
    started = {
        "again, reversed": _start(repo_copy, work, "reversed", list(reversed(pages))),
        "two workers": _start(repo_copy, work, "xdist", ["-n", "2", "--dist=loadfile", "docs"]),
    }
    return {"first": first} | {name: _finish(name, *pair) for name, pair in started.items()}


def test_the_corpus_has_passing_and_failing_pages(runs: dict[str, Run]) -> None:
    outcomes = {outcome for _, outcome, _ in runs["first"].verdicts}
    assert {"passed", "failure"} <= outcomes, runs["first"].verdicts


@pytest.mark.parametrize("name", ["again, reversed", "two workers"])
def test_the_verdicts_are_the_same(runs: dict[str, Run], name: str) -> None:
    first, other = runs["first"].verdicts, runs[name].verdicts
    assert other == first, (
        f"only in the first run: {sorted(first - other)}\nonly in '{name}': {sorted(other - first)}"
    )


def test_each_page_has_its_own_sandbox_and_none_outlives_it(runs: dict[str, Run]) -> None:
    everything: list[Path] = []
    for run in runs.values():
        paths = [path for _, path in run.sandboxes]
        assert paths, f"{run.name}: no sandbox was recorded"
        assert len(set(paths)) == len(paths), f"{run.name}: a sandbox was shared: {paths}"
        # a sandbox is the page folder of a folder of the gate's, made in TMPDIR (sandbox.py)
        bases = [p.parent for p in paths]
        assert all(b.parent == run.tmpdir for b in bases), f"{run.name}: outside TMPDIR: {paths}"
        assert [b for b in bases if b.exists()] == [], f"{run.name}: sandboxes left behind"
        everything += paths
    assert len(set(everything)) == len(everything), "two gate runs used the same sandbox"


def test_two_workers_both_ran_pages(runs: dict[str, Run]) -> None:
    workers = {pid for pid, _ in runs["two workers"].sandboxes}
    assert len(workers) == 2, f"sandboxes by process: {runs['two workers'].sandboxes}"
