"""Hostile pages cannot write, read, connect or outlive their sandbox, nor end or hang the run.

tests/fixtures/hostile-site holds pages written as an attacker would (one class of escape per
page: Python blocks, shell writes, network, titled blocks, tools' output flags, processes that
try to survive, output that could exhaust or crash the gate). The `r2-*` pages are the second
round (docs/contributing/threat-model.md): links, FIFOs and special files planted for the gate's
own work after a page ran, a swapped clone, scratch folders, forged passes, Markdown built to
render slowly, files built to fill the gate's memory, a filled and locked sandbox, output that
drives a terminal or a CI log, and snippets of the repository's tooling or the machine.
The test plays a machine worth attacking: a home with an SSH key, a token in the environment, a
canary folder with a secret file in it, and a listener on 127.0.0.1. It runs the gate on the
corpus in a child pytest (on two workers, as CI does) and then proves containment: nothing
outside the page sandboxes changed, no secret reached the output, no connection arrived, no
process survived, no sandbox was left, and the run ended well inside its limit with a normal
failure report (no internal error).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT, tools
from betrace_dist.gate import escape

from .conftest import FIXTURES, copy_site, require_tool
from .test_safety import Listener

pytestmark = pytest.mark.slow

HOSTILE = FIXTURES / "hostile-site"
PAGES = sorted(p.name for p in (HOSTILE / "docs").glob("*.md"))
TOKEN = "hostile-token-5f0c2a"  # noqa: S105  secrets-scan: allow a canary the test plants
SECRET = "canary-secret-91d7e4"  # noqa: S105  secrets-scan: allow a canary the test plants
SSH_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----"  # secrets-scan: allow a canary the test plants
    " canary-key-c3b8 -----END-----"
)
MARKERS = [f"sleep {n}" for n in range(3071, 3078)]  # the sleeps the pages try to leave behind
COMMAND_TIMEOUT = 5  # seconds per command for this run, so the hang ends quickly


def loopback_listener() -> Listener:
    """127.0.0.1:<port>, recording every connection (the safety test's listener)."""
    return Listener("hostile", socket.AF_INET, ("127.0.0.1", 0))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def kernel_knobs() -> dict[str, str]:
    """Kernel settings a page running as root could change (core_pattern runs a program as
    the host's root when a process dumps core)."""
    knobs = ("kernel/core_pattern", "vm/stat_interval")
    return {k: Path("/proc/sys", k).read_text() for k in knobs if Path("/proc/sys", k).exists()}


def survivors() -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(marker in cmdline for marker in MARKERS) and "pytest" not in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def left_behind(tmpdir: Path) -> list[str]:
    """Page sandboxes (folders or mounts) still there after the run."""
    folders = [p.name for p in tmpdir.iterdir() if p.name.startswith("betrace-page")]
    mounts = [
        line
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if str(tmpdir) in line
    ]
    return folders + mounts


@dataclass
class HostileRun:
    result: subprocess.CompletedProcess[str]
    seconds: float
    canary_before: dict[str, bytes]
    canary_after: dict[str, bytes]
    home_before: dict[str, bytes]
    home_after: dict[str, bytes]
    repo_before: dict[str, bytes]
    repo_after: dict[str, bytes]
    hits: list[str]
    survivors: list[str]
    left_behind: list[str]
    knobs_before: dict[str, str]
    knobs_after: dict[str, str]

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileRun]:
    require_tool("bwrap")
    root = Path(tempfile.mkdtemp(prefix="hostile-"))
    home, canary, tmpdir = root / "home", root / "canary", root / "tmp"
    for folder in (home / ".ssh", canary, tmpdir):
        folder.mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text(SSH_KEY)
    (canary / "secret.txt").write_text(SECRET)
    listener = loopback_listener()
    site = copy_site(tmp_path_factory.mktemp("hostile"), PAGES, source=HOSTILE)
    tokens = {"@CANARY@": str(canary), "@HOME@": str(home), "@PORT@": str(listener.port)}
    tokens["@REPO@"] = str(REPO_ROOT)
    for page in (site / "docs").glob("*.md"):
        text = page.read_text(encoding="utf-8")
        for token, value in tokens.items():
            text = text.replace(token, value)
        page.write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "BETRACE_"))}
    env |= {"HOME": str(home), "TMPDIR": str(tmpdir), "GITHUB_TOKEN": TOKEN}
    env |= {"BETRACE_COMMAND_TIMEOUT": str(COMMAND_TIMEOUT), "HOSTILE_TOKEN": TOKEN}
    if os.environ.get(tools.REQUIRE_TOOLS_ENV):  # the sub-session follows the same rule
        env[tools.REQUIRE_TOOLS_ENV] = os.environ[tools.REQUIRE_TOOLS_ENV]
    before = (snapshot(canary), snapshot(home), snapshot(REPO_ROOT / "docs"))
    knobs_before = kernel_knobs()
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "docs", "-q"],
        cwd=site, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    time.sleep(0.5)  # a survivor would still be there; the kernel reaps the jailed ones at once
    run = HostileRun(
        result,
        seconds,
        before[0],
        snapshot(canary),
        before[1],
        snapshot(home),
        before[2],
        snapshot(REPO_ROOT / "docs"),
        list(listener.hits),
        survivors(),
        left_behind(tmpdir),
        knobs_before,
        kernel_knobs(),
    )
    yield run
    listener.close()
    for line in run.survivors:  # never leave one behind, even when the test fails
        os.kill(int(line.split(":")[0]), 9)
    shutil.rmtree(root, ignore_errors=True)


def test_hostile_pages_write_nothing_outside_their_sandbox(hostile: HostileRun) -> None:
    assert hostile.canary_after == hostile.canary_before
    assert hostile.home_after == hostile.home_before
    assert hostile.repo_after == hostile.repo_before
    assert not (REPO_ROOT / "python-wrote").exists()


def test_hostile_pages_print_no_secret(hostile: HostileRun) -> None:
    for secret in (TOKEN, SECRET, "canary-key-c3b8"):
        assert secret not in hostile.output
    for root_only in ("/var/cache/debconf/passwords.dat", "/etc/security/opasswd"):
        path = Path(root_only)
        text = path.read_text(errors="replace").strip() if path.is_file() else ""
        if len(text) > 8:  # only a file with content can show a leak
            assert text[:60] not in hostile.output, f"{root_only} leaked"


def test_hostile_pages_change_no_kernel_setting(hostile: HostileRun) -> None:
    assert hostile.knobs_after == hostile.knobs_before


def test_hostile_pages_reach_no_listener(hostile: HostileRun) -> None:
    assert hostile.hits == []


def test_hostile_pages_leave_no_process(hostile: HostileRun) -> None:
    assert hostile.survivors == []


def test_hostile_pages_end_the_run_normally_within_its_limits(hostile: HostileRun) -> None:
    out = hostile.output
    assert "INTERNALERROR" not in out, out[-3000:]
    assert hostile.result.returncode == 1, out[-3000:]  # failures, not a crash or an exit 0
    assert re.search(r"\d+ failed", out), out[-3000:]
    # every command had COMMAND_TIMEOUT seconds; the whole corpus on two workers ends far
    # sooner than one unbounded hang (3076 s) would
    assert hostile.seconds < 300


@pytest.mark.parametrize(
    ("page", "needle", "reason"),
    [
        ("python.md", "os._exit(0)", "ended its process"),
        ("processes.md", "time.sleep(3077)", f"did not finish within {COMMAND_TIMEOUT} s"),
        ("output.md", "head -c 200000000 /dev/zero | base64", "printed more than 8 MiB"),
    ],
)
def test_a_block_that_dies_is_a_plain_failure_at_its_line(
    hostile: HostileRun, page: str, needle: str, reason: str
) -> None:
    text = (HOSTILE / "docs" / page).read_text(encoding="utf-8").splitlines()
    body = next(n for n, line in enumerate(text, 1) if line == needle)
    fence = max(n for n in range(1, body) if text[n - 1].startswith("```"))
    found = [ln for ln in hostile.output.splitlines() if f"{page}:" in ln and reason in ln]
    assert found, f"no failure '{reason}' for {page}:\n{hostile.output[-4000:]}"
    lines = range(fence, body + 1)  # the block's fence, or a line of its body up to the culprit
    assert any(f"{page}:{n}:" in line for line in found for n in lines), found


def test_binary_output_is_decoded_not_a_crash(hostile: HostileRun) -> None:
    assert "UnicodeDecodeError" not in hostile.output


def test_control_the_attacks_do_escape_without_the_jail(tmp_path: Path) -> None:
    """Control: run plainly (not by the gate), the Python attacks of python.md do write the
    canary and reach the listener, so the containment above is the jail's doing."""
    listener = loopback_listener()
    canary = tmp_path / "canary"
    canary.mkdir()
    text = (HOSTILE / "docs" / "python.md").read_text(encoding="utf-8")
    text = text.replace("@CANARY@", str(canary)).replace("@PORT@", str(listener.port))
    text = text.replace("@HOME@", str(tmp_path)).replace("@REPO@", str(tmp_path))
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    try:
        for block in (blocks[0], blocks[2]):  # the write and the connection
            subprocess.run([sys.executable, "-c", block], check=True, timeout=30)
        time.sleep(0.3)
        assert (canary / "python-wrote").read_text() == "escaped"
        assert listener.hits, "the connection attack did not reach the listener"
    finally:
        listener.close()


def test_hostile_pages_leave_no_sandbox_behind(hostile: HostileRun) -> None:
    """r2-disk.md fills its sandbox, locks folders (chmod 000), plants links and FIFOs."""
    assert hostile.left_behind == []


def test_no_write_lands_in_the_gates_own_virtualenv(hostile: HostileRun) -> None:
    """r2-planted-links.md points links at the virtualenv: a .pth there would run as root."""
    for name in ("escape.pth", "titled.pth"):
        assert not (REPO_ROOT / ".venv" / name).exists()


def test_page_output_reaches_the_report_as_data(hostile: HostileRun) -> None:
    """r2-output-injection.md prints OSC 52 (clipboard), screen clears and workflow commands."""
    out = hostile.output
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    commands = [ln for ln in out.splitlines() if ln.lstrip().startswith(("::", "##["))]
    assert commands == []


def _failures_of(hostile: HostileRun, page: str) -> list[str]:
    return [ln for ln in hostile.output.splitlines() if f"{page}:" in ln]


@pytest.mark.parametrize(
    ("page", "failing"),
    [("r2-forged-pass.md", "test forged = pass"), ("r3-stranger.md", "test hijacked = pass")],
)
def test_a_forged_pass_is_reported_as_the_failure_it_is(
    hostile: HostileRun, page: str, failing: str
) -> None:
    """r2: BASH_ENV, ENV, options, exported functions, rc files; r3: fake jail programs (bash,
    prlimit, nsenter, bwrap, setpriv, env) first on the page's PATH."""
    text = (HOSTILE / "docs" / page).read_text(encoding="utf-8").splitlines()
    first = text.index(failing) + 1
    found = _failures_of(hostile, page)
    assert any(f"{page}:{first}:" in ln for ln in found), found


def test_variables_that_change_how_blocks_start_are_refused(hostile: HostileRun) -> None:
    found = _failures_of(hostile, "r2-forged-pass.md")
    for name in ("BASH_ENV", "ENV", "LD_PRELOAD"):
        assert any(f"'{name}' changes how programs start" in ln for ln in found), found


def test_no_snippet_of_tooling_or_the_machine_is_included(hostile: HostileRun) -> None:
    assert "root:x:0:0" not in hostile.output
    assert "[core]" not in hostile.output and "repositoryformatversion" not in hostile.output
    found = _failures_of(hostile, "r2-snippets.md")
    assert any("is refused" in ln or "could not be found" in ln for ln in found), found


def test_a_page_built_to_render_slowly_is_stopped_at_its_bound(hostile: HostileRun) -> None:
    """r2-quadratic.md is quadratic in the Python-Markdown pyproject.toml pins (its comment
    says how; test_code_health holds the virtualenv to the pin); a page that converts quickly
    says nothing of the bound. Event-based: the page needs many times the bound, and a loaded
    machine only makes it slower."""
    found = _failures_of(hostile, "r2-quadratic.md")
    assert any("took longer than" in ln for ln in found), (
        f"r2-quadratic.md was not stopped at the render bound ({found}): if Python-Markdown "
        f"{version('Markdown')} converts it quickly, build the page from an input still "
        "slow in that version"
    )


def test_a_forged_result_of_the_runner_fails_its_own_block(hostile: HostileRun) -> None:
    """r4-forged-result.md: the attack found a result with a line that is no number crashing
    the gate with a traceback that printed the page's escape sequences, a 4 MiB message
    reaching the report whole, and a negative line naming the block before. Each block fails
    at its own line, as nonsense or with its message cut to the report's bound."""
    page = "r4-forged-result.md"
    text = (HOSTILE / "docs" / page).read_text(encoding="utf-8").splitlines()
    starts = [n for n, line in enumerate(text, 1) if line == "```python"]
    found = _failures_of(hostile, page)
    for start in starts:
        assert any(f"{page}:{start}:" in ln for ln in found), (start, found)
    assert "Traceback" not in hostile.output and "TypeError" not in hostile.output
    assert all(len(ln) < 2 * escape.MESSAGE_LIMIT for ln in found), [len(ln) for ln in found]
