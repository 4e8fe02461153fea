"""Known issues come from the release data: the known_issue() macro warns on any page, an unknown
id stops the build with the list of ids, and the Known issues page lists every issue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.gate.claims import unstated_issues
from betrace_dist.gate.render import RenderError, Site
from betrace_dist.release import ReleaseData

from .test_macros import render, site_with


def test_known_issue_renders_a_warning_with_what_who_and_workaround(
    tmp_path: Path, release_data: ReleaseData
) -> None:
    issue = release_data.current.known_issue("binds-all-interfaces")
    text = render(site_with(tmp_path), '{{ known_issue("binds-all-interfaces") }}')
    lines = text.splitlines()
    assert lines[0] == f'??? warning "Known issue: {issue.title}"'
    assert all(line.startswith("    ") for line in lines[1:] if line)
    body = " ".join(line.strip() for line in lines[1:])
    assert issue.what.split()[0] in body and "**Who is affected:** " in body
    assert "**Workaround:** " in body and "not yet reported upstream" in body
    assert "(reference/known-issues.md#binds-all-interfaces)" in body


def test_known_issue_links_to_the_page_from_a_nested_page(tmp_path: Path) -> None:
    site = site_with(tmp_path)
    page = site.docs_dir / "guides" / "p.md"
    page.parent.mkdir()
    page.write_text('{{ known_issue("violations-in-memory") }}')
    assert "(../reference/known-issues.md#violations-in-memory)" in site.render(page).text


def test_an_issue_reported_upstream_links_to_it(tmp_path: Path) -> None:
    text = (REPO_ROOT / "releases.yaml").read_text()
    url = "https://github.com/betrace-hq/betrace/issues/1"
    old = "      - id: violations-in-memory\n"
    assert old in text
    changed = text.replace(old, f"{old}        upstream_issue: {url}\n")
    out = render(site_with(tmp_path, changed), '{{ known_issue("violations-in-memory") }}')
    assert f"[{url}]({url})" in out and "not yet reported" not in out


def test_an_unknown_issue_id_fails_with_the_list_of_ids(
    tmp_path: Path, release_data: ReleaseData
) -> None:
    with pytest.raises(RenderError) as info:
        render(site_with(tmp_path), '# P\n\nSee {{ known_issue("no-such-issue") }}.\n')
    ids = ", ".join(issue.id for issue in release_data.current.known_issues)
    assert info.value.line == 3
    version = release_data.current.version
    assert f"no known issue 'no-such-issue' in release {version}; ids: {ids}" in info.value.reason


def test_the_known_issues_page_lists_every_issue(release_data: ReleaseData) -> None:
    site = Site(REPO_ROOT / "mkdocs.yml")
    text = site.render(site.docs_dir / "reference" / "known-issues.md").text
    anchors = re.findall(r"^### .+ \{#([a-z0-9-]+)\}$", text, flags=re.MULTILINE)
    assert sorted(anchors) == sorted(issue.id for issue in release_data.current.known_issues)
    # those of every build first: a reader of the distribution's builds can stop at the second
    # group's heading; each issue under the heading its patch, or none, puts it
    groups = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    assert [g.splitlines()[0] for g in groups] == [
        "In every build",
        "Only in upstream's own builds",
    ]
    for group, patched in zip(groups, (False, True), strict=True):
        for issue_id in re.findall(r"\{#([a-z0-9-]+)\}$", group, flags=re.MULTILINE):
            assert bool(release_data.current.known_issue(issue_id).fixed_by) is patched, issue_id
    assert len(release_data.current.known_issues) >= 11
    for issue in release_data.current.known_issues:
        # an issue the distribution's patch fixes concerns upstream's own builds only
        label = "Workaround there" if issue.fixed_by else "Workaround"
        assert f"**{label}:** {issue.workaround.split()[0]}" in text
        if issue.fixed_by:
            assert f"**Who is affected:** users of upstream's own builds. {issue.affects}" in text


def test_the_known_issues_page_is_in_the_navigation() -> None:
    assert "reference/known-issues.md" in (REPO_ROOT / "mkdocs.yml").read_text()


def _concerned(release_data: ReleaseData) -> list[tuple[str, str]]:
    return [(i.id, page) for i in release_data.current.known_issues for page in i.pages]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return site_with(tmp_path_factory.mktemp("site"))


def test_every_concerned_page_states_its_known_issue_through_the_macro(
    release_data: ReleaseData,
) -> None:
    pairs = _concerned(release_data)
    assert len(pairs) >= 20, pairs
    site = Site(REPO_ROOT / "mkdocs.yml")
    for page in sorted({page for _, page in pairs}):
        text = site.render(site.docs_dir / page).text
        assert unstated_issues(text, page, release_data.current) == [], page


def test_a_concerned_page_without_its_known_issue_fails(
    site: Site, release_data: ReleaseData
) -> None:
    """For every page a known issue names, the page with that issue's macro call taken out (the
    rest as it is) fails the gate's check at line 1, naming the issue."""
    for issue_id, page in _concerned(release_data):
        source = (REPO_ROOT / "docs" / page).read_text(encoding="utf-8")
        call = f'{{{{ known_issue("{issue_id}") }}}}'
        assert call in source, f"{page} states {issue_id} without known_issue(): update this test"
        target = site.docs_dir / page
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.replace(call, ""), encoding="utf-8")
        found = unstated_issues(site.render(target).text, page, release_data.current)
        assert [p.line for p in found] == [1], (issue_id, page, found)
        assert f"known issue {issue_id} of BeTrace" in found[0].reason
        assert f'add {{{{ known_issue("{issue_id}") }}}}' in found[0].reason


def test_an_issue_fixed_by_a_patch_renders_a_note_saying_where_it_is_not(
    tmp_path: Path, release_data: ReleaseData
) -> None:
    issue = release_data.current.known_issue("false-reads-as-true")
    assert issue.fixed_by, "the test needs an issue the distribution's patch fixes"
    text = render(site_with(tmp_path), '{{ known_issue("false-reads-as-true") }}')
    lines = text.splitlines()
    assert lines[0] == f'??? note "Fixed by the distribution\'s patch: {issue.title}"'
    body = " ".join(line.strip() for line in lines[1:])
    assert f"every backend it builds carries `{issue.fixed_by[0]}`" in body
    short = release_data.current.upstream.short
    assert f"Upstream's own builds of commit `{short}` still have it" in body
    assert "**Workaround there:** " in body and "users of upstream's own builds" in body

    # an issue the app's patches fix says the apps carry them, every one of them
    app = release_data.current.known_issue("app-needs-the-distribution-patches")
    assert len(app.fixed_by) > 1, "the test needs an issue fixed by a series of patches"
    site = site_with(tmp_path / "app")
    body = " ".join(render(site, '{{ known_issue("' + app.id + '") }}').split())
    assert "every app it builds carries " + ", ".join(f"`{p}`" for p in app.fixed_by) in body

    # a page that shows the note states the issue; the old warning's label does not
    def unstated(page_text: str) -> list[str]:
        found = unstated_issues(page_text, "reference/rule-language.md", release_data.current)
        return [p.reason for p in found if "false-reads-as-true" in p.reason]

    assert unstated(text) == []
    assert unstated(text.replace("Fixed by the distribution's patch: ", "Known issue: "))
