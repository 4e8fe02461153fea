"""Rendering pages as readers see them, and mapping every rendered line back to its source."""

from __future__ import annotations

from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.gate.render import RenderError, Site, map_lines

from .conftest import copy_site


def test_line_map_follows_a_macro_that_expands_to_several_lines() -> None:
    source = ["# T", "{{ table() }}", "", "```yaml", "a: 1", "```"]
    rendered = ["# T", "| a |", "|---|", "| 1 |", "", "```yaml", "a: 1", "```"]
    assert map_lines(source, rendered) == (1, 2, 2, 2, 3, 4, 5, 6)


def test_line_map_skips_removed_front_matter() -> None:
    source = ["---", "title: x", "---", "# T", "text"]
    assert map_lines(source, ["# T", "text"]) == (4, 5)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(copy_site(tmp_path, ["index.md"]) / "mkdocs.yml")


def write(site: Site, name: str, text: str) -> Path:
    path = site.docs_dir / name
    path.write_text(text, encoding="utf-8")
    return path


def test_pages_render_with_the_release_data(site: Site, release_data) -> None:
    page = write(site, "p.md", "---\ntitle: P\n---\n\nVersion {{ release.version }}\n")
    rendered = site.render(page)
    assert f"Version {release_data.current.version}" in rendered.text
    assert (
        rendered.source_line(
            rendered.text.splitlines().index(f"Version {release_data.current.version}") + 1
        )
        == 5
    )


def test_helm_template_in_an_included_file_reaches_the_page_untouched(tmp_path: Path) -> None:
    root = copy_site(tmp_path, ["index.md"])
    config = root / "mkdocs.yml"
    config.write_text(config.read_text().replace(f'base_path: ["{REPO_ROOT}"]', 'base_path: ["."]'))
    site = Site(config)
    (root / "helm").mkdir()  # a folder pages may include from (site/snippets.py)
    (root / "helm" / "deployment.yaml").write_text(
        'image: "{{ .Values.image.repository }}:{{ .Chart.AppVersion }}"\n'
    )
    page = write(site, "p.md", 'Intro\n\n```text\n--8<-- "helm/deployment.yaml"\n```\n')
    rendered = site.render(page)
    assert '"{{ .Values.image.repository }}:{{ .Chart.AppVersion }}"' in rendered.text


def test_github_expression_inside_raw_reaches_the_page_untouched(site: Site) -> None:
    page = write(
        site, "p.md", "{% raw %}\n```yaml\nrun: echo ${{ github.sha }}\n```\n{% endraw %}\n"
    )
    assert "run: echo ${{ github.sha }}" in site.render(page).text


def test_helm_template_typed_in_a_page_fails_at_its_line(site: Site) -> None:
    page = write(site, "p.md", "# P\n\nfine\n\n```yaml\nimage: {{ .Values.image }}\n```\n")
    with pytest.raises(RenderError) as info:
        site.render(page)
    assert info.value.line == 6 and "macro error (TemplateSyntaxError)" in info.value.reason


def test_missing_snippet_fails_at_the_line_that_includes_it(site: Site) -> None:
    page = write(site, "p.md", '# P\n\n```yaml\n--8<-- "no/such/file.yaml"\n```\n')
    with pytest.raises(RenderError) as info:
        site.render(page)
    assert info.value.line == 4 and "no/such/file.yaml" in info.value.reason


def test_non_utf8_page_is_named_not_crashed(site: Site) -> None:
    page = site.docs_dir / "latin1.md"
    page.write_bytes("# Caf\xe9\n".encode("latin-1"))
    with pytest.raises(RenderError) as info:
        site.render(page)
    assert "not UTF-8" in info.value.reason
