"""The real backend comes only from the snapshot the release data pins, built offline.

The build itself runs in every test run through `make tools` (the `backend` target) and the
live tier; these tests hold the guards around it: the digest, the missing snapshot, the cache.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from betrace_dist import tools, upstream
from betrace_dist.backend_run import loopback_argv
from betrace_dist.release import ReleaseData

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
