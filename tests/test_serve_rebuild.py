"""`mkdocs serve` rebuilds in one process: a changed releases.yaml or artefact must reach the next
build, and mkdocs.yml must tell serve to watch them. Two builds here run in this test's process,
as serve runs them, with an edit in between."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from mkdocs.commands.build import build
from mkdocs.config import load_config

from betrace_dist import REPO_ROOT
from betrace_dist.site import artefact_tables

from .conftest import copy_site

pytestmark = pytest.mark.slow

PAGE = """# Rebuild

Summary: {{ release.summary }}

{{ chart_values_table() }}
"""


def _build(site: Path) -> str:
    config = load_config(str(site / "mkdocs.yml"), site_dir=str(site / "out"))
    build(config)
    return (site / "out" / "index.html").read_text(encoding="utf-8")


def test_an_edit_of_release_data_or_chart_values_reaches_the_next_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = copy_site(tmp_path, [])
    (site / "docs" / "index.md").write_text(PAGE, encoding="utf-8")
    releases = tmp_path / "releases.yaml"
    shutil.copy(REPO_ROOT / "releases.yaml", releases)
    config = (site / "mkdocs.yml").read_text(encoding="utf-8")
    config = config.replace(str(REPO_ROOT / "releases.yaml"), str(releases))
    (site / "mkdocs.yml").write_text(config, encoding="utf-8")
    chart = tmp_path / "chart"
    shutil.copytree(REPO_ROOT / "helm" / "betrace", chart)
    monkeypatch.setattr(artefact_tables, "CHART_DIR", chart)
    monkeypatch.setenv("NO_MKDOCS_2_WARNING", "1")

    # the current release's summary (the file's first), made a text no other line has
    summary = "The summary this test gives the current release"
    text, count = re.subn(
        r"(?m)^    summary: (?:>-\n(?:      .*\n)+|.*\n)",
        f"    summary: {summary}\n",
        releases.read_text(encoding="utf-8"),
        count=1,
    )
    assert count == 1, "releases.yaml has no summary: update this test"
    releases.write_text(text, encoding="utf-8")
    first = _build(site)
    assert summary in first

    releases.write_text(text.replace(summary, "EDITED SUMMARY", 1), encoding="utf-8")
    values = chart / "values.yaml"
    table_before = artefact_tables.chart_values_table()
    param = next(line for line in values.read_text().splitlines() if line.startswith("## @param"))
    values.write_text(values.read_text().replace(param, param + " EDITED-VALUE-NOTE", 1))

    second = _build(site)
    assert "EDITED SUMMARY" in second, "the second build still shows the old release data"
    assert "EDITED-VALUE-NOTE" in second, "the second build still shows the old chart values"
    assert "EDITED-VALUE-NOTE" not in table_before


def test_serve_watches_the_release_data_and_the_artefacts() -> None:
    config = load_config(str(REPO_ROOT / "mkdocs.yml"))
    watched = {Path(p).resolve() for p in config.watch}
    for path in ("releases.yaml", "helm", "docker", "nix", ".github/workflows"):
        assert (REPO_ROOT / path).resolve() in watched, f"mkdocs.yml watch: lacks {path}"
