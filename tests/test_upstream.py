"""The real backend comes only from the snapshot the release data pins, built offline.

The build itself runs in every test run through `make tools` (the `backend` target) and the
live tier; these tests hold the guards around it: the digest, the missing snapshot, the cache.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from betrace_dist import tools, upstream
from betrace_dist.backend_run import loopback_argv, loopback_only
from betrace_dist.release import Release, ReleaseData

from .conftest import skip_or_fail


def _tarball(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "source.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_a_tarball_with_another_digest_is_refused_naming_the_release_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, release_data: ReleaseData
) -> None:
    _tarball(tmp_path / "snap", {"betrace-c5f17ae4/README.md": b"not upstream"})
    monkeypatch.setenv(upstream.SNAPSHOT_ENV, str(tmp_path / "snap"))
    monkeypatch.setenv(upstream.CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(upstream.UpstreamError) as caught:
        upstream.backend_program(release_data.current)
    message = str(caught.value)
    assert "releases.yaml (upstream.source_sha256)" in message
    assert release_data.current.upstream.source_sha256 in message
    assert not (tmp_path / "cache").exists(), "nothing is unpacked from a tarball that fails"


def test_without_a_snapshot_the_backend_is_a_missing_tool_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, release_data: ReleaseData
) -> None:
    monkeypatch.setenv(upstream.SNAPSHOT_ENV, str(tmp_path / "nothing-here"))
    monkeypatch.delenv(tools.REQUIRE_TOOLS_ENV, raising=False)
    with pytest.raises(tools.ToolMissing) as caught:
        upstream.backend_program(release_data.current)
    assert "../shared/upstream/betrace-<commit>/source.tar.gz" in str(caught.value)
    assert not caught.value.fatal
    monkeypatch.setenv(tools.REQUIRE_TOOLS_ENV, "1")
    with pytest.raises(tools.ToolMissing) as caught:
        upstream.backend_program(release_data.current)
    assert caught.value.fatal and "forbids skipping" in str(caught.value)


def test_the_pinned_digest_is_the_digest_of_the_snapshot(release_data: ReleaseData) -> None:
    """Computed here from the file, not copied: a new snapshot without a new pin fails."""
    try:
        path = upstream.tarball(release_data.current)
    except tools.ToolMissing as exc:
        skip_or_fail(str(exc))
    assert upstream.sha256(path) == release_data.current.upstream.source_sha256


def test_the_built_backend_reports_the_release_version(
    tmp_path: Path, release_data: ReleaseData
) -> None:
    """The program the live tier uses carries the release's version (-X main.version): its
    health answer names it. Run in a network namespace of its own (it binds every interface)."""
    try:
        program = upstream.backend_program(release_data.current)
    except tools.ToolMissing as exc:
        skip_or_fail(str(exc))
    data = tmp_path / "data"
    data.mkdir()
    script = (
        '"$0" & for _ in $(seq 100); do '
        "curl -fsS http://127.0.0.1:12011/v1/health && break; sleep 0.1; done; kill -INT $!; wait"
    )
    argv = loopback_argv(["bash", "-c", script, str(program)])
    env = {
        "BETRACE_DATA_DIR": str(data),
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1000",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    expected = f'"version":"{release_data.current.backend.version}"'
    assert expected in done.stdout, (done.stdout + done.stderr)[-2000:]


def test_an_unpacked_tree_is_reused_not_unpacked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, release_data: ReleaseData
) -> None:
    try:
        upstream.tarball(release_data.current)
    except tools.ToolMissing as exc:
        skip_or_fail(str(exc))
    monkeypatch.setenv(upstream.CACHE_ENV, str(tmp_path / "cache"))
    tree = upstream.source_tree(release_data.current)
    assert (tree / "backend" / "go.mod").is_file()
    marker = tree / "backend" / "go.mod"
    stamp = marker.stat().st_mtime_ns
    assert upstream.source_tree(release_data.current) == tree
    assert marker.stat().st_mtime_ns == stamp


# --- the snapshot made from a git clone (GitHub's CI, which has no ../shared) --------------------


#: Where upstream keeps its plugin manifest (written here, not read from the code under test).
PLUGIN_JSON = "grafana-betrace-app/src/plugin.json"


def _upstream_like_repo(tmp_path: Path) -> tuple[Path, str]:
    """A git repository holding upstream's two manifest paths, committed once."""
    repo = tmp_path / "clone"
    for inside, text in ((upstream.SWAGGER, '{"swagger": "2.0"}'), (PLUGIN_JSON, "{}")):
        (repo / inside).parent.mkdir(parents=True, exist_ok=True)
        (repo / inside).write_text(text)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    return repo, head.stdout.strip()


def _pinned(release_data: ReleaseData, commit: str, digest: str) -> Release:
    current = release_data.current
    pin = current.upstream.model_copy(update={"commit": commit, "source_sha256": digest})
    return current.model_copy(update={"upstream": pin})


def test_a_snapshot_made_from_git_is_checked_against_the_pin_and_nothing_is_left(
    tmp_path: Path, release_data: ReleaseData
) -> None:
    repo, commit = _upstream_like_repo(tmp_path)
    release = _pinned(release_data, commit, release_data.current.upstream.source_sha256)
    with pytest.raises(upstream.UpstreamError) as caught:
        upstream.snapshot_from_git(repo, tmp_path / "out", release)
    assert "releases.yaml (upstream.source_sha256) pins" in str(caught.value)
    assert list((tmp_path / "out").iterdir()) == [], "a refused snapshot leaves nothing behind"


def test_a_snapshot_made_from_git_holds_the_tarball_and_both_manifests(
    tmp_path: Path, release_data: ReleaseData
) -> None:
    repo, commit = _upstream_like_repo(tmp_path)
    # The digest comes from git itself here, not from the code under test.
    made = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar.gz", f"--prefix=betrace-{commit[:8]}/",
         commit], capture_output=True, check=True,
    )  # fmt: skip
    release = _pinned(release_data, commit, hashlib.sha256(made.stdout).hexdigest())
    folder = upstream.snapshot_from_git(repo, tmp_path / "out", release)
    assert folder == tmp_path / "out" / f"betrace-{commit[:8]}"
    assert sorted(p.name for p in folder.iterdir()) == [
        "betrace.swagger.json",
        "plugin.json",
        "source.tar.gz",
    ]
    assert (folder / "betrace.swagger.json").read_text() == '{"swagger": "2.0"}'
    with tarfile.open(folder / "source.tar.gz") as archive:
        assert f"betrace-{commit[:8]}/{PLUGIN_JSON}" in archive.getnames()
    with pytest.raises(upstream.UpstreamError, match="already exists"):
        upstream.snapshot_from_git(repo, tmp_path / "out", release)


# --- the loopback namespace the real backend runs in ----------------------------------------------


def test_what_a_command_left_running_in_the_loopback_namespace_ends_with_it() -> None:
    """A script that starts a program with `&` and exits (as the plugin client test starts the
    backend) must not leave it running on the machine: it dies with the namespace's process 1.
    Without the PID namespace such backends outlived every test run."""
    if loopback_only():
        pytest.skip("this process already has only loopback: loopback_argv adds no namespace")
    marker = f"{time.monotonic_ns() % 10**6}.25"  # a sleep nobody else runs
    done = subprocess.run(
        loopback_argv(["sh", "-c", f"sleep {marker} >/dev/null 2>&1 & echo started"]),
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "started" in done.stdout, done.stderr
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, check=False)
        if left.returncode != 0:
            return
        time.sleep(0.05)
    subprocess.run(["pkill", "-f", f"sleep {marker}"], check=False)
    pytest.fail(f"'sleep {marker}' outlived the namespace it was started in")


def test_the_upstream_version_is_what_upstreams_flake_gives_the_backend(
    release_data: ReleaseData,
) -> None:
    """Read from the snapshot's backend/flake.nix, not copied: the Nix flake guide and the
    nixpkgs guide state it, and a release bump must not change it."""
    release = release_data.current
    try:
        upstream.tarball(release)
    except tools.ToolMissing as exc:
        skip_or_fail(str(exc))
    assert upstream.flake_version_problem(release) is None
    other = release.model_copy(
        update={"upstream": release.upstream.model_copy(update={"version": "9.9.9"})}
    )
    problem = upstream.flake_version_problem(other)
    assert problem is not None
    assert "upstream.version is 9.9.9, but upstream's backend/flake.nix at " in problem
    assert f"gives the backend {release.upstream.version}" in problem


@pytest.mark.parametrize(
    ("flake", "said"),
    [
        # the Nix idiom: the ldflag refers to the attribute, whose value is the fact
        ('version = "2.0.0";\nldflags = [ "-X main.version=${version}" ];\n', None),
        (
            'version = "2.0.0";\nldflags = [ "-X main.version=2.1.0" ];\n',
            "gives the backend 2.0.0, 2.1.0",
        ),
        (None, "has no backend/flake.nix"),
    ],
    ids=["interpolated", "two-values", "no-flake"],
)
def test_the_upstream_version_check_reads_literals_and_names_a_missing_flake(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    release_data: ReleaseData,
    flake: str | None,
    said: str | None,
) -> None:
    tree = tmp_path / "betrace-x"
    (tree / "backend").mkdir(parents=True)
    if flake is not None:
        (tree / "backend" / "flake.nix").write_text(flake, encoding="utf-8")
    monkeypatch.setattr(upstream, "source_tree", lambda release=None: tree)
    problem = upstream.flake_version_problem(release_data.current)
    if said is None:
        assert problem is None
    else:
        assert problem is not None and said in problem
