"""Links into the distribution's repository and into upstream's at the pinned commit go to files
that exist, checked offline: against the checkout and against the snapshot's member list.

The gate skipped every link with a scheme, so a link to a file the repository does not have, or
to a line past a file's end, passed while a broken internal link failed. A page is hostile
input: a link's path is resolved lexically within the checkout ('..', and symbolic links out of
it, are refused before anything is looked at) and the snapshot is never extracted.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from betrace_dist import tools, upstream
from betrace_dist.gate.collect import Gate
from betrace_dist.release import RELEASES_FILE, ReleaseData

from .conftest import copy_site

DIST = "https://github.com/betrace-hq/distribution"
UP = "https://github.com/betrace-hq/betrace"
SECRET = "canary-outside-0b7d"  # noqa: S105  secrets-scan: allow a canary the test plants


def _snapshot(folder: Path, commit: str, files: dict[str, bytes]) -> str:
    """A tarball laid out as git archive makes upstream's (one top folder); its sha256."""
    folder.mkdir(parents=True)
    path = folder / "source.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        top = tarfile.TarInfo(f"betrace-{commit[:8]}")
        top.type = tarfile.DIRTYPE
        archive.addfile(top)
        for name, data in files.items():
            info = tarfile.TarInfo(f"betrace-{commit[:8]}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, release_data: ReleaseData) -> Path:
    """A site whose checkout has docker/ok.yml (3 lines) and patches/, and a snapshot of
    upstream's pinned commit with backend/main.go (4 lines); the release data pins its digest."""
    site = copy_site(tmp_path, ["index.md"])
    (site / "docker").mkdir()
    (site / "docker" / "ok.yml").write_text("a: 1\nb: 2\nc: 3\n", encoding="utf-8")
    (site / "patches").mkdir()
    (site / "patches" / "one.patch").write_text("x\n", encoding="utf-8")
    up = release_data.current.upstream
    digest = _snapshot(tmp_path / "snap", up.commit, {"backend/main.go": b"1\n2\n3\n4"})
    releases = RELEASES_FILE.read_text(encoding="utf-8").replace(up.source_sha256, digest)
    (site / "releases.yaml").write_text(releases, encoding="utf-8")
    config = site / "mkdocs.yml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace(str(RELEASES_FILE), str(site / "releases.yaml")), "utf-8")
    monkeypatch.setenv(upstream.SNAPSHOT_ENV, str(tmp_path / "snap"))
    return site


def problems(site: Path, links: list[str], gate: Gate | None = None) -> list[tuple[int, str]]:
    """(source line, reason) of each problem of a page listing `links`, one a line."""
    page = site / "docs" / "index.md"
    body = "".join(f"- [link {n}]({href})\n" for n, href in enumerate(links))
    page.write_text(f"# Links\n\n{body}", encoding="utf-8")
    result = (gate or Gate(site / "mkdocs.yml")).analyse(page)
    assert result.error is None, result.error
    return [(line, reason) for _, line, reason in result.problems]


def test_links_into_the_distribution_go_to_files_of_the_checkout(
    site: Path, release_data: ReleaseData
) -> None:
    tag = f"v{release_data.current.version}"
    found = problems(
        site,
        [
            f"{DIST}/blob/main/docker/ok.yml",
            f"{DIST}/blob/main/docker/nope.yml",
            f"{DIST}/tree/main/patches",
            f"{DIST}/tree/{tag}/nothing",
            f"{DIST}/blob/main/docker/ok.yml#L2-L3",
            f"{DIST}/blob/main/docker/ok.yml#L4",
            f"{DIST}/tree/main/patches#L1",
            "https://raw.githubusercontent.com/betrace-hq/distribution/main/docker/gone.yml",
            DIST,
            f"{DIST}/issues",
        ],
    )
    assert found == [
        (4, f"the link '{DIST}/blob/main/docker/nope.yml' goes to no file of this repository "
            "at main (there is no docker/nope.yml in the checkout)"),
        (6, f"the link '{DIST}/tree/{tag}/nothing' goes to no file of this repository at "
            f"{tag} (there is no nothing in the checkout)"),
        (8, f"the link '{DIST}/blob/main/docker/ok.yml#L4' goes to line 4 of docker/ok.yml, "
            "which has 3 lines"),
        (9, f"the link '{DIST}/tree/main/patches#L1' goes to lines of patches, a folder"),
        (10, "the link 'https://raw.githubusercontent.com/betrace-hq/distribution/main/docker/"
             "gone.yml' goes to no file of this repository at main (there is no "
             "docker/gone.yml in the checkout)"),
    ]  # fmt: skip


def test_a_link_into_the_distribution_at_another_ref_is_refused(site: Path) -> None:
    """Only the checkout is at hand, which is main and the release's tag: a link at another
    branch, tag or commit cannot be checked, so it is not let through as if it were."""
    [(line, reason)] = problems(site, [f"{DIST}/blob/feature/docker/ok.yml"])
    assert line == 3 and "at 'feature', which cannot be checked here" in reason


def test_links_into_upstream_at_the_pinned_commit_go_to_files_of_the_snapshot(
    site: Path, release_data: ReleaseData
) -> None:
    commit = release_data.current.upstream.commit
    short = commit[:8]
    found = problems(
        site,
        [
            f"{UP}/blob/{commit}/backend/main.go#L4",
            f"{UP}/blob/{commit}/backend/nope.go",
            f"{UP}/tree/{short}/backend",
            f"{UP}/blob/{short}/backend/main.go#L2-L5",
            f"{UP}/blob/main/backend/nope.go",  # another ref: not in the snapshot, not checked
            f"https://raw.githubusercontent.com/betrace-hq/betrace/{commit}/nope.md",
        ],
    )
    assert found == [
        (4, f"the link '{UP}/blob/{commit}/backend/nope.go' goes to no file of upstream at "
            f"{short} (the snapshot of that commit has no backend/nope.go)"),
        (6, f"the link '{UP}/blob/{short}/backend/main.go#L2-L5' goes to line 5 of "
            "backend/main.go, which has 4 lines"),
        (8, f"the link 'https://raw.githubusercontent.com/betrace-hq/betrace/{commit}/nope.md' "
            f"goes to no file of upstream at {short} (the snapshot of that commit has no "
            "nope.md)"),
    ]  # fmt: skip


def test_a_dot_dot_escape_is_refused_before_anything_is_looked_at(site: Path) -> None:
    """'..' would reach files beside the checkout: whether they exist is not the page's to
    learn, so a link with '..' (written or percent-encoded) is refused whatever is there."""
    (site.parent / "outside.txt").write_text(SECRET, encoding="utf-8")
    links = [
        f"{DIST}/blob/main/docker/../../outside.txt",
        f"{DIST}/blob/main/docker/%2E%2E/%2e%2e/outside.txt",
        f"{DIST}/blob/main/docker%2F..%2F..%2Foutside.txt",
        f"{DIST}/blob/main/docker/../../missing.txt",
        f"{DIST}/blob/main//etc/hostname",
    ]
    found = problems(site, links)
    assert [line for line, _ in found] == [3, 4, 5, 6, 7]
    for (_, reason), href in zip(found, links, strict=True):
        assert reason == (
            f"the link '{href}' names a path with '..', '.' or an empty part: name the file "
            "by its path from the repository's root"
        )


def test_a_symbolic_link_out_of_the_checkout_is_not_followed(
    site: Path,
) -> None:
    """A link of the checkout that leads out of it is refused, never followed: the page learns
    neither whether a file exists there nor how many lines it has. (Loading the site stops on
    such a link; these are made after it was loaded, so the link check is what holds.)"""
    gate = Gate(site / "mkdocs.yml")
    gate.site.config  # noqa: B018 - loaded before the links are made
    outside = site.parent / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(f"{SECRET}\n", encoding="utf-8")
    (site / "docker" / "out").symlink_to(outside)
    (site / "docker" / "leak.yml").symlink_to(outside / "secret.txt")
    links = [
        f"{DIST}/blob/main/docker/out/secret.txt#L1",
        f"{DIST}/blob/main/docker/out/missing.txt",
        f"{DIST}/blob/main/docker/leak.yml#L1",
    ]
    found = problems(site, links, gate)
    assert [line for line, _ in found] == [3, 4, 5]
    for (_, reason), href in zip(found, links, strict=True):
        assert reason == (
            f"the link '{href}' is not followed: its path leads out of the checkout (a symbolic "
            "link, or another file system)"
        )
        assert SECRET not in reason


def test_the_snapshot_is_read_not_extracted(
    site: Path, tmp_path: Path, release_data: ReleaseData
) -> None:
    """Upstream's tree is the tarball's member list: checking its links writes nothing."""
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    commit_link = f"{UP}/blob/{release_data.current.upstream.short}/backend/main.go#L1"
    assert problems(site, [commit_link]) == []
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before


def test_without_the_snapshot_upstream_links_are_left_unless_skipping_is_forbidden(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, release_data: ReleaseData
) -> None:
    """No snapshot: the links are not checked (and not failed as if they were broken); in CI,
    where nothing may be skipped, each fails saying why it could not be checked."""
    monkeypatch.setenv(upstream.SNAPSHOT_ENV, str(tmp_path / "nothing-here"))
    monkeypatch.delenv(tools.REQUIRE_TOOLS_ENV, raising=False)
    link = f"{UP}/blob/{release_data.current.upstream.commit}/backend/nope.go"
    assert problems(site, [link]) == []
    monkeypatch.setenv(tools.REQUIRE_TOOLS_ENV, "1")
    [(line, reason)] = problems(site, [link])
    assert line == 3 and reason.startswith(f"the link '{link}' cannot be checked: ")
    assert "source.tar.gz" in reason and "forbids skipping" in reason


def test_in_a_git_checkout_only_what_a_clone_holds_is_there(site: Path) -> None:
    """GitHub shows what was pushed: an ignored file of the checkout, or its .git folder, is no
    file of the repository (nor does a page learn how many lines such a file has)."""
    subprocess.run(["git", "init", "-q", str(site)], check=True, capture_output=True)
    (site / ".gitignore").write_text("secret.env\n", encoding="utf-8")
    (site / "secret.env").write_text("TOKEN=x\n", encoding="utf-8")
    found = problems(
        site,
        [
            f"{DIST}/blob/main/docker/ok.yml#L3",
            f"{DIST}/blob/main/secret.env#L1",
            f"{DIST}/blob/main/.git/HEAD",
            f"{DIST}/tree/main/docker",
        ],
    )
    assert [(line, reason.split(" (")[-1]) for line, reason in found] == [
        (4, "there is no secret.env in the checkout)"),
        (5, "there is no .git/HEAD in the checkout)"),
    ]


def _prose_problems(site: Path, spans: list[str], before: str = "") -> list[tuple[int, str]]:
    """(source line, reason) of each problem of a page naming `spans` in code, one a line."""
    page = site / "docs" / "index.md"
    body = "".join(f"- see `{span}`\n" for span in spans)
    page.write_text(f"# Paths\n\n{before}{body}", encoding="utf-8")
    result = Gate(site / "mkdocs.yml").analyse(page)
    assert result.error is None, result.error
    return [(line, reason) for _, line, reason in result.problems]


def test_a_path_named_in_prose_must_be_a_file_of_either_repository(site: Path) -> None:
    """An attack renamed `docker/rules.example.yaml`, upstream's `spans.proto` and a workflow
    in prose and the gate passed all three: only links were looked up. A path in a folder of
    either repository must now be there; what the ignore rules cover (files a reader makes),
    paths in folders neither has and files straight under folders many projects have (another
    project's `src/main.rs`) are not judged."""
    subprocess.run(["git", "init", "-q", str(site)], check=True, capture_output=True)
    (site / ".gitignore").write_text("docker/.env\n", encoding="utf-8")
    found = _prose_problems(
        site,
        [
            "docker/ok.yml",
            "docker/ok.yml:2",
            "backend/main.go",
            "docker/ko.yml",
            "backend/mian.go",
            "docker/.env",
            "src/main.rs",
            "src/libexpr/eval.cc",
            "patches/",
            "docker compose up",
            "/etc/betrace/rules.json",
            "docker/<name>.yml",
            "docker/ok.yml:4",
            "backend/main.go:2-9",
            "patches:1",
        ],
    )
    assert [(line, reason.split(" names")[0]) for line, reason in found] == [
        (6, "`docker/ko.yml`"),
        (7, "`backend/mian.go`"),
        (15, "`docker/ok.yml:4`"),
        (16, "`backend/main.go:2-9`"),
    ]
    assert "line 4 of docker/ok.yml, which has 3 lines" in found[2][1], found
    assert "line 9 of backend/main.go, which has 4 lines" in found[3][1], found
    assert "did you mean 'docker/ok.yml'" in found[0][1], found
    assert "did you mean 'backend/main.go'" in found[1][1], found


def test_a_file_the_page_writes_is_not_looked_up(site: Path) -> None:
    """A page that has its reader create a file (a block titled with its path) names it."""
    block = '```yaml title="docker/new.yml"\na: 1\n```\n\n'
    assert _prose_problems(site, ["docker/new.yml"], before=block) == []
