"""`python -m betrace_dist.bump`: one command moves every versioned artefact to a new release,
writes all files or none, and refuses bad input with a clear message.

It runs on a temporary copy of the repository's real files; the Nix checks use the same offline
Nix and the stand-in inputs as tests/artefacts/test_nix.py (nixpkgs cannot be fetched offline).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from betrace_dist import bump
from betrace_dist.artefacts import chart_policy, chart_values
from betrace_dist.artefacts import nix as nixa
from betrace_dist.release import load_release_data, next_minor

from .conftest import CURRENT

STUBS = Path(__file__).parent / "artefacts" / "nix_stubs"
#: The current release's version, read (a release leaves these tests as they are), and the
#: version the tests bump to: the next minor one.
_CURRENT = CURRENT
OLD, NEW = _CURRENT.version, next_minor(_CURRENT.version)
#: the chart version and the date a test bumps to: after the current release's
CHART_NEW = next_minor(_CURRENT.chart.version)
DATE = (_CURRENT.date + dt.timedelta(days=1)).isoformat()
# The nixpkgs expressions pin the upstream commit, which a bump keeps: copied to check that.
PACKAGES = [
    nixa.BY_NAME / n[:2] / n / "package.nix" for n in ("betrace-backend", "grafana-betrace-app")
]
#: values.yaml and the files generated from it: a bump changes them only to drop digests
CHART_FILES = [bump.VALUES, bump.CHART_DIR / "README.md", bump.CHART_DIR / "values.schema.json"]
FILES = [
    bump.RELEASES,
    bump.CHART,
    bump.COMPOSE,
    *(s.path for s in bump.VERSION_LOCATIONS),
    *PACKAGES,
    *CHART_FILES,
]
#: Digests as the images workflow writes them into image-digests.txt, one per image.
DIGESTS = {name: "sha256:" + fill * 64 for name, fill in zip(bump.IMAGES, "abc", strict=True)}


@pytest.fixture
def tree(repo_root: Path, tmp_path: Path) -> Path:
    """A copy of every file the bump reads or writes."""
    root = tmp_path / "repo"
    for rel in FILES:
        source = repo_root / rel
        assert source.is_file(), f"{rel} is missing from the repository"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, root / rel)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def run(root: Path, *args: str) -> int:
    return bump.main([*args, "--root", str(root)])


def test_bump_changes_every_place_that_carries_the_version(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = load_release_data(tree / bump.RELEASES)
    old_version = old.current.version
    assert run(tree, NEW, "--date", DATE, "--chart-version", CHART_NEW) == 0
    changed = capsys.readouterr().out
    for rel in {str(p) for p in FILES} - {str(p) for p in (*PACKAGES, *CHART_FILES)}:
        assert rel in changed, f"{rel} was not changed"
    for rel in PACKAGES:
        assert str(rel) not in changed, f"{rel} pins the upstream commit; the bump keeps it"
    for rel in CHART_FILES[:2]:
        dropped = old.current.published  # digests recorded: the bump drops them
        assert (str(rel) in changed) == dropped, f"{rel}: digests to drop: {dropped}"
    assert str(CHART_FILES[2]) not in changed, "the schema shows no digest default"
    assert chart_values.stale_files(tree / bump.CHART_DIR) == []

    data = load_release_data(tree / bump.RELEASES)
    cur = data.current
    assert cur.version == NEW
    assert str(cur.date) == DATE
    assert cur.backend.version == NEW
    # the code at the commit still calls itself what it did: the commit is kept
    assert cur.upstream.version == old.current.upstream.version != NEW
    assert (cur.chart.version, cur.chart.app_version) == (CHART_NEW, NEW)
    assert {cur.images.backend.tag, cur.images.grafana_plugin.tag, cur.images.plugin_init.tag} == {
        NEW
    }
    assert data.releases[1] == old.current, "the previous release must stay as it was"
    # the new chart version says what it changed, in releases.yaml and in Chart.yaml alike
    (change,) = cur.chart.changes_of(CHART_NEW)
    assert change.kind == "changed" and f"BeTrace {NEW}" in change.description
    assert f"in place of {old_version}" in change.description
    assert chart_policy.check_chart_metadata(tree / bump.CHART_DIR, data) == []

    chart = (tree / bump.CHART).read_text()
    assert f"\nversion: {CHART_NEW}\n" in chart
    assert f"\nappVersion: {NEW}\n" in chart
    for rel in (bump.CHART, bump.COMPOSE, *(s.path for s in bump.VERSION_LOCATIONS)):
        text = (tree / rel).read_text()
        assert f"{data.project.registry}/backend:{old_version}" not in text, rel
        if rel != bump.CHART:
            assert old_version not in text, f"{rel} still carries {old_version}"
    compose = (tree / bump.COMPOSE).read_text()
    assert f"{data.project.registry}/backend:{NEW}" in compose


def test_bump_keeps_comments_and_the_old_entry_byte_for_byte(repo_root: Path, tree: Path) -> None:
    before = (tree / bump.RELEASES).read_text()
    assert run(tree, NEW, "--date", DATE) == 0
    after = (tree / bump.RELEASES).read_text()
    head, _, old_entries = before.partition("releases:\n")
    assert after.startswith(head + "releases:\n  - version: " + NEW)
    assert after.endswith(old_entries), "the existing releases were reformatted"
    comment = "# digest: sha256:... is added by the publishing workflow"
    assert after.count(comment) == before.count(comment) + 1  # the new entry's


def digests_file(path: Path, registry: str, lines: list[str] | None = None) -> Path:
    """image-digests.txt as the images workflow writes it (or with the given lines)."""
    made = [f"{name} {registry}/{name}:{OLD}@{digest}" for name, digest in DIGESTS.items()]
    path.write_text("\n".join(made if lines is None else lines) + "\n")
    return path


def test_digests_are_recorded_wherever_an_image_is_kept_and_a_bump_drops_them(
    tree: Path, tmp_path: Path
) -> None:
    registry = load_release_data(tree / bump.RELEASES).project.registry
    assert run(tree, "--digests", str(digests_file(tmp_path / "d.txt", registry))) == 0
    data = load_release_data(tree / bump.RELEASES)
    values = (tree / bump.VALUES).read_text()
    for name, digest in DIGESTS.items():
        ref = f"{registry}/{name}:{OLD}@{digest}"
        assert data.image_ref(name) == ref
        # the Compose file names the images of its services only (no plugin-init since
        # backend-rules runs BusyBox), the chart's metadata all three
        for rel in (bump.COMPOSE, bump.CHART) if name in bump.COMPOSE_IMAGES else (bump.CHART,):
            assert ref in (tree / rel).read_text(), f"{rel} lacks {ref}"
        assert f'digest: "{digest}"' in values
    assert bump.COMPOSE_IMAGES == ("backend", "grafana-plugin")
    assert chart_values.stale_files(tree / bump.CHART_DIR) == []
    assert chart_policy.check_chart_metadata(tree / bump.CHART_DIR, data) == []

    assert run(tree, NEW, "--date", DATE) == 0  # the next release: new images
    bumped = load_release_data(tree / bump.RELEASES)
    assert bumped.current.images.backend.digest is None
    assert bumped.releases[1].images.backend.digest == DIGESTS["backend"]
    for rel in (bump.COMPOSE, bump.CHART):
        assert "@sha256:" not in (tree / rel).read_text(), rel
    assert 'digest: "sha256:' not in (tree / bump.VALUES).read_text()
    assert f"{registry}/backend:{NEW}\n" in (tree / bump.COMPOSE).read_text()
    assert chart_values.stale_files(tree / bump.CHART_DIR) == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            f"backend ghcr.io/x/backend:{OLD}@sha256:abc",
            "d.txt:1: expected 'IMAGE REFERENCE@sha256:",
        ),
        (f"frontend {{registry}}/backend:{OLD}@{DIGESTS['backend']}", "d.txt:1: 'frontend' is not"),
        (
            f"backend {{registry}}/backend:1.9.0@{DIGESTS['backend']}",
            f"d.txt:1: {{registry}}/backend:1.9.0 is not {{registry}}/backend:{OLD}",
        ),
    ],
)
def test_bad_digests_are_refused_with_file_and_line_and_nothing_is_written(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, message: str
) -> None:
    registry = load_release_data(tree / bump.RELEASES).project.registry
    path = digests_file(tmp_path / "d.txt", registry, [line.format(registry=registry)])
    before = snapshot(tree)
    assert run(tree, "--digests", str(path)) == 1
    err = capsys.readouterr().err
    assert message.format(registry=registry) in err, err
    assert snapshot(tree) == before


def test_a_digests_file_missing_an_image_is_refused(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = load_release_data(tree / bump.RELEASES).project.registry
    lines = [f"backend {registry}/backend:{OLD}@{DIGESTS['backend']}"]
    before = snapshot(tree)
    assert run(tree, "--digests", str(digests_file(tmp_path / "d.txt", registry, lines))) == 1
    assert "no line for grafana-plugin, plugin-init" in capsys.readouterr().err
    assert snapshot(tree) == before


def test_after_a_bump_the_nix_consistency_checks_hold(
    tree: Path, tool: Callable[[str, str], str], tmp_path: Path, repo_root: Path
) -> None:
    nix = nixa.Nix(tool("nix"), tool("nix-instantiate"), tmp_path / "nix")
    assert run(tree, NEW, "--date", DATE) == 0
    data = load_release_data(tree / bump.RELEASES)
    inputs = {
        "betrace": STUBS / "betrace",
        "betrace/nixpkgs": STUBS / "nixpkgs",
        "betrace/flake-utils": STUBS / "flake-utils",
        # docker/flake.nix's path:../patches, which a bump does not touch: the repository's own
        # series by its absolute path (Nix before 2.26 cannot follow a relative path input)
        "patches": repo_root / "patches",
    }
    release = nix.flake_json("eval", f"{tree / 'docker'}#lib.release", inputs)
    assert nixa.release_problems(release, data) == []
    for name in ("betrace-backend", "grafana-betrace-app"):
        package = tree / nixa.BY_NAME / name[:2] / name / "package.nix"
        recorded = nix.eval_expr(nixa.package_expr(STUBS, package))
        assert nixa.package_problems(recorded, name, data, name) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["2.1"], "version '2.1' is not a version of the form MAJOR.MINOR.PATCH"),
        (["v2.1.0"], "version 'v2.1.0' is not a version of the form MAJOR.MINOR.PATCH"),
        ([OLD], f"version {OLD} is not newer than the current {OLD}"),
        ([NEW, "--chart-version", "0.9.0"], "chart version 0.9.0 is not newer than the current"),
        (
            [NEW, "--date", "2020-01-01"],
            f"is later than that of the newer release {NEW} (2020-01-01)",
        ),
    ],
)
def test_bad_bump_is_refused_and_nothing_is_written(
    tree: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    before = snapshot(tree)
    assert run(tree, *args) == 1
    err = capsys.readouterr().err
    assert err.startswith("bump refused, nothing written: ")
    assert message in err
    if "--date" in args:
        assert "releases.yaml (as bumped):" in err, "the message must name the file and line"
    assert snapshot(tree) == before


def test_a_file_that_already_drifted_is_refused(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flake = tree / "docker/flake.nix"
    flake.write_text(flake.read_text().replace(f'version = "{OLD}";', 'version = "1.9.0";'))
    before = snapshot(tree)
    assert run(tree, NEW) == 1
    assert (
        f"docker/flake.nix: release.version is 1.9.0, but releases.yaml says {OLD}"
        in capsys.readouterr().err
    )
    assert snapshot(tree) == before


def test_a_missing_artefact_is_refused(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tree / "nix/examples/flakehub/flake.nix").unlink()
    before = snapshot(tree)
    assert run(tree, NEW) == 1
    assert "nix/examples/flakehub/flake.nix: not found" in capsys.readouterr().err
    assert snapshot(tree) == before


def test_a_failed_rename_restores_the_files_already_replaced(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(tree)
    real_replace = Path.replace
    calls = {"n": 0}

    def flaky(self: Path, target: Path) -> Path:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", flaky)
    with pytest.raises(OSError, match="disk full"):
        bump.bump(tree, NEW)
    assert calls["n"] == 3
    assert snapshot(tree) == before


def test_the_images_workflow_writes_the_lines_the_bump_reads(repo_root: Path) -> None:
    """Checked statically: the workflow's line is `$image $ref@$digest`, where `ref` is the
    release's image reference without digest; a line of that shape is what --digests reads."""
    workflow = (repo_root / ".github/workflows/images.yml").read_text()
    assert 'echo "$image $ref@$digest" >> image-digests.txt' in workflow
    assert 'data.image_ref(name).split("@")[0]' in workflow
    line = f"backend ghcr.io/o/betrace/backend:{OLD}@{DIGESTS['backend']}"
    assert bump.DIGEST_LINE.fullmatch(line)


@pytest.mark.parametrize(
    ("carries", "pattern", "said"),
    [
        ("version", r"(^)(\d+\.\d+\.\d+)(\n)", "carries is 'version'; it is 'release'"),
        ("release", r"(\d+\.\d+\.\d+)", "the pattern has 1 group(s); the bump rewrites its second"),
        ("release", r"(^)(\d+", "the pattern is no regex"),
    ],
    ids=["unknown-version", "one-group", "not-a-regex"],
)
def test_a_version_location_a_bump_cannot_use_is_refused_when_made(
    carries: str, pattern: str, said: str
) -> None:
    """The contribute guide's VersionLocation, edited as a writer could: each was taken, and the
    bump then failed with a KeyError or an IndexError."""
    bump.VersionLocation(Path("tarball/VERSION"), r"(^)(\d+\.\d+\.\d+)(\n)", "release", "tarball")
    # more groups are taken too: the bump rewrites group 2 only (a review's pre-release form)
    bump.VersionLocation(Path("v"), r'(version = ")(\d+\.\d+\.\d+(-rc\d+)?)(")', "release", "v")
    with pytest.raises(ValueError, match=re.escape(said)):
        bump.VersionLocation(Path("tarball/VERSION"), pattern, carries, "tarball version")
