"""Shared fixtures: the release data and the real external tools.

A missing tool skips its tests with the reason (a contributor's laptop may lack Nix); with
BETRACE_REQUIRE_TOOLS=1, as CI sets it, a missing tool fails instead, so CI runs every check.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from betrace_dist import REPO_ROOT, tools
from betrace_dist.gate import sandbox
from betrace_dist.gate.commands import models
from betrace_dist.gate.run import run_of
from betrace_dist.gate.session import Session
from betrace_dist.gate.shellwords import split
from betrace_dist.release import ReleaseData, load_release_data


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


#: The releases.yaml of the working tree, read once: RELEASE.current is the release the pages
#: describe. Tests use it where they need it when their module is imported (parametrize);
#: inside a test, the `release_data` fixture gives the same.
RELEASE = load_release_data()
CURRENT = RELEASE.current


@pytest.fixture(scope="session")
def release_data() -> ReleaseData:
    return RELEASE


def missing(exc: tools.ToolMissing) -> NoReturn:
    """The tests' side of the missing-tool rule (tools.ToolMissing): skip with the reason
    locally, fail under BETRACE_REQUIRE_TOOLS=1 (CI skips nothing)."""
    if exc.fatal:
        pytest.fail(str(exc), pytrace=False)
    pytest.skip(str(exc))


def skip_or_fail(message: str) -> NoReturn:
    """Something a test needs is absent: skip with the message, or fail in CI."""
    missing(tools.ToolMissing(message))


def require_tool(name: str) -> str:
    """Path of a real tool, or a skip (a failure under BETRACE_REQUIRE_TOOLS=1) naming the fix
    the registry gives (tools.TOOLS)."""
    try:
        return tools.require(name)
    except tools.ToolMissing as exc:
        missing(exc)


@pytest.fixture
def session(request: pytest.FixtureRequest) -> Iterator[Session]:
    """A page's session, for tests that drive the gate's models with scripts (`run`). A module
    names the tools its scripts need and the time a command may take with its mark:
    `pytestmark = pytest.mark.gate_session(tools=("helm",), timeout=60)` (default: none, 120 s)."""
    mark = request.node.get_closest_marker("gate_session")
    options = mark.kwargs if mark is not None else {}
    for name in options.get("tools", ()):
        require_tool(name)
    s = Session(timeout=options.get("timeout", 120))
    yield s
    s.close()


def backend_image(session: Session, registry: str) -> str:
    """The Kubernetes guide's steps for the backend's image: built from the project's
    Dockerfile under `registry`, then pushed there (a cluster's nodes pull from it)."""
    image = f"{registry}/backend:{session.release.current.version}"
    return (
        f"docker build --target backend --build-context patches=patches -t {image} docker/\n"
        f"docker push {image}\n"
    )


def run(session: Session, script: str) -> None:
    """Run a script's commands as one block of a page, in order, with every command model."""
    session.run(split(script), models())


@pytest.fixture(scope="session")
def tool() -> Callable[[str], str]:
    return require_tool


@pytest.fixture(scope="session")
def busybox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of BusyBox's programs (its sh, cp, sha256sum...) and nothing else, to run a
    script of the BusyBox-based plugin-init image with PATH set to it alone. The machine's
    BusyBox (Debian's), not the image's: docker/Dockerfile's plugin-init stage pins
    busybox:1.37.0; Debian 12 ships 1.35.0: the same shell and programs, two releases older."""
    binary = require_tool("busybox")
    folder = tmp_path_factory.mktemp("busybox-bin")
    subprocess.run([binary, "--install", "-s", str(folder)], check=True, timeout=30)
    return folder


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> object:
    """Helm 4, with a home of its own."""
    from betrace_dist.artefacts.chart_policy import Helm

    return Helm(require_tool("helm"), tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def helm3(tmp_path_factory: pytest.TempPathFactory) -> object:
    """Helm 3 (the guides must work with Helm 3.8+ and 4): skipped locally when absent, a
    failure in CI."""
    from betrace_dist.artefacts.chart_policy import Helm

    helm = Helm(require_tool("helm3"), tmp_path_factory.mktemp("helm3-home"))
    assert helm.run("version", "--short").startswith("v3."), f"{helm.binary} is not Helm 3"
    return helm


@pytest.fixture(scope="session")
def backend_program(pytestconfig: pytest.Config) -> Path:
    """The real backend, the one the run's live tier uses (--live-backend, BETRACE_LIVE_BACKEND
    or the project's build of the pinned source): run it with backend_run.loopback_argv. When
    the tier is off: skipped with its reason (a failure in CI, unless --no-live asked)."""
    tier = run_of(pytestconfig).live
    if tier.program is None:
        if tier.off_reason == "--no-live":
            pytest.skip("no real backend: the live tier is off (--no-live)")
        skip_or_fail(f"no real backend: {tier.off_reason}")
    return tier.program


# The fixture sites hold deliberate faults; they are run by tests, never collected as tests.
collect_ignore_glob = ["fixtures/*"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files marked slow run first, the rest after in their own order (stable sort).

    `make test` hands whole files to two workers in this order (--dist=loadfile), each worker
    taking the next file when it is nearly done: a long file taken last would leave the other
    worker idle while it runs, so the long ones start first and the short ones fill the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish() -> None:
    """Unmount what gate processes killed by a test (or by an earlier run) left mounted.

    pytest prunes its temporary root when a session ends (after this hook, in the process that
    ends last), and a page's file system still mounted in a folder there stops that removal
    with EBUSY: a warning this suite makes an error, so a whole run failed with every test
    passed, on a mount an earlier run had left (sandbox.unmount_stale)."""
    sandbox.unmount_stale()


def run_python(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: int
) -> subprocess.CompletedProcess[str]:
    """Python in a child process. The child keeps the bytecode it compiles, as Python does by
    default and as in CI, even where the caller's environment sets PYTHONDONTWRITEBYTECODE:
    otherwise each of the suite's many child sessions compiles the engine and rewrites the
    asserts of every pytest plugin's modules anew (about a second each). The files land in
    __pycache__ folders, which git ignores."""
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return subprocess.run(
        [sys.executable, *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_pytest(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """pytest in a child process (a gate run must not share state with this session). The
    child's live tier is off unless the test names a program (`--live-backend`): a fixture
    site tests the gate's mechanism, and tests/live/ runs the real backend on purpose."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "BETRACE_"))}
    env |= {
        k: v for k, v in os.environ.items() if k in ("BETRACE_CACHE_DIR", "BETRACE_UPSTREAM_DIR")
    }
    live = [] if any(a.startswith("--live-backend") for a in args) else ["--no-live"]
    return run_python(["-m", "pytest", "-p", "no:cacheprovider", *live, *args], cwd, env, timeout)


def run_mkdocs(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    return run_python(["-m", "mkdocs", *args], cwd, env, timeout)


@dataclass(frozen=True)
class SiteBuild:
    """`mkdocs build --strict` of the real site: where it went, its exit code and its log."""

    site: Path
    returncode: int
    stderr: str


@pytest.fixture(scope="session")
def real_site(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> SiteBuild:
    """The real site, built once per test run and shared by every worker (read it, never
    change it): the first worker to ask builds it under a lock in the run's temporary root,
    which pytest-xdist's workers share; the others read what it left, failure included."""
    root = tmp_path_factory.getbasetemp()
    root = root if worker_id == "master" else root.parent
    site, record = root / "real-site", root / "real-site.json"
    with (root / "real-site.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not record.exists():
            result = run_mkdocs(["build", "--strict", "-d", str(site)], cwd=REPO_ROOT)
            done = {"returncode": result.returncode, "stderr": result.stderr}
            record.write_text(json.dumps(done), encoding="utf-8")
        done = json.loads(record.read_text(encoding="utf-8"))
    return SiteBuild(site, done["returncode"], done["stderr"])


FIXTURES = Path(__file__).parent / "fixtures"


def copy_site(tmp_path: Path, pages: list[str], source: Path = FIXTURES / "faulty-site") -> Path:
    """A copy of a fixture site with only the named pages; repository paths made absolute."""
    site = tmp_path / "site"
    (site / "docs").mkdir(parents=True)
    config = (source / "mkdocs.yml").read_text(encoding="utf-8")
    (site / "mkdocs.yml").write_text(config.replace("../../..", str(REPO_ROOT)), encoding="utf-8")
    shutil.copy(source / "pytest.ini", site / "pytest.ini")
    shutil.copy(source / "docs" / "conftest.py", site / "docs" / "conftest.py")
    for page in pages:
        shutil.copy(source / "docs" / page, site / "docs" / page)
    return site


def line_containing(path: Path, needle: str) -> int:
    """1-based line of the first line of `path` containing `needle` (fails if absent)."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{path} has no line containing {needle!r}")
