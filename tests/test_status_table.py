"""The home page's status table: its "how it is checked" column is the gate's own count of each
target's guide (or section), and a target naming a section its guide lacks stops the build."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.release import ReleaseData
from betrace_dist.site import tables
from betrace_dist.site.badge import Verifier, section_lines

DOCS = REPO_ROOT / "docs"


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier(REPO_ROOT / "mkdocs.yml")


def test_every_target_counts_its_guide_from_the_ledger(
    verifier: Verifier, release_data: ReleaseData
) -> None:
    """Each row's count is the ledger's, recounted here block by block, never typed."""
    assert release_data.current.targets, "no target in releases.yaml"
    table = tables.status(
        release_data,
        lambda t: verifier.section_summary(DOCS / t.guide, t.section).counts_text,  # type: ignore[union-attr]
        lambda path: path,
    )
    for target in release_data.current.targets:
        entries = verifier.entries(DOCS / target.guide)
        if target.section is not None:
            source = (DOCS / target.guide).read_text(encoding="utf-8")
            first, last = section_lines(source, target.section, DOCS / target.guide)
            entries = [e for e in entries if first <= e.line <= last]
        ran = sum(e.status == "run" for e in entries)
        modelled = sum(e.status == "modelled" for e in entries)
        assert entries, f"{target.name}: its guide has no block to count"
        row = next(r for r in table.splitlines() if r.startswith(f"| [{target.name}]"))
        assert f"{ran} ran for real" in row and f"{modelled} checked against a model" in row


def test_a_section_counts_only_its_own_blocks(verifier: Verifier) -> None:
    guide = DOCS / "guides" / "add-betrace-to-an-existing-grafana.md"
    whole = verifier.section_summary(guide, None)
    stack = verifier.section_summary(guide, "Grafana from kube-prometheus-stack")
    assert whole is not None and stack is not None
    assert 0 < stack.total < whole.total


def test_a_section_the_guide_lacks_is_an_error(tmp_path: Path) -> None:
    page = tmp_path / "guide.md"
    page.write_text("# Guide\n\n## One\n\ntext\n\n## Two\n", encoding="utf-8")
    assert section_lines(page.read_text(), "One", page) == (3, 6)
    with pytest.raises(ValueError, match="no heading 'Three'"):
        section_lines(page.read_text(), "Three", page)


def test_the_home_page_shows_the_table_with_links_to_known_issues(
    release_data: ReleaseData,
) -> None:
    table = tables.status(release_data, lambda t: "counted", lambda path: path)
    for target in release_data.current.targets:
        for issue in target.issues:
            assert f"(reference/known-issues.md#{issue})" in table
    assert re.search(r"\(guides/add-betrace-to-an-existing-grafana\.md#grafana-from-kube-", table)
    assert "{{ status_table() }}" in (DOCS / "index.md").read_text(encoding="utf-8")


def test_the_table_is_counted_outside_the_page_time_limit() -> None:
    """Reading the guides for the table is the project's work: the page's clock stops for it
    (under load it took longer than a page may render), and runs again afterwards."""
    import time

    from betrace_dist.site import limits

    with limits.Deadline(0.3), limits.trusted_work(left_after=5):
        time.sleep(0.6)
    with pytest.raises(limits.RenderTimeout), limits.Deadline(0.3):
        with limits.trusted_work(left_after=0.1):
            pass
        time.sleep(1)


def test_every_row_reaches_each_issue_of_every_build(release_data: ReleaseData) -> None:
    """A reader review found the rows' issues hand-picked: the existing-Grafana row, which
    installs the same backend, listed 5. A row lists its guide's issues and counts the other
    issues of every build, linked to their section."""
    release = release_data.current
    every = {i.id for i in release.known_issues if not i.fixed_by}
    table = tables.status(release_data, lambda t: "", lambda path: path)
    for target in release.targets:
        row = next(r for r in table.splitlines() if r.startswith(f"| [{target.name}]"))
        listed = sum(f"#{i})" in row for i in every)
        more = re.search(r"\[(\d+) more in every build\]\([^)]*#in-every-build\)", row)
        assert listed + (int(more[1]) if more else 0) == len(every), row


def test_an_unpublished_release_links_each_target_to_where_its_images_are_built(
    release_data: ReleaseData,
) -> None:
    """A reader review found 'Images not published yet: build them' linking to the top of a
    long guide: it links to the guide's section that gets them, which each such guide has."""
    if release_data.current.published:
        pytest.skip("the release is published: the table names no images to build")
    table = tables.status(release_data, lambda t: "", lambda path: path)
    anchor = "#get-the-images-and-the-chart"
    for target in release_data.current.targets:
        if not target.needs_images:
            continue
        row = next(r for r in table.splitlines() if r.startswith(f"| [{target.name}]"))
        assert f"[build them]({target.guide}{anchor})" in row, row
        section_lines((DOCS / target.guide).read_text(), tables.IMAGES_SECTION, DOCS / target.guide)
