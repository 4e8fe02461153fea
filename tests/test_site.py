"""The real site: strict offline build, macros filled from the release data, a clean ledger."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.gate.cli import main as cli
from betrace_dist.gate.collect import Gate
from betrace_dist.release import ReleaseData

from .conftest import SiteBuild, copy_site, run_mkdocs


@pytest.fixture(scope="module")
def built_site(real_site: SiteBuild) -> Path:
    assert real_site.returncode == 0, real_site.stderr
    return real_site.site


def test_strict_build_writes_every_page_and_no_test_file(built_site: Path) -> None:
    pages = sorted(p.relative_to(REPO_ROOT / "docs") for p in (REPO_ROOT / "docs").rglob("*.md"))
    for page in pages:
        html = built_site / (page.with_suffix("").as_posix().removesuffix("index")) / "index.html"
        if page.name == "index.md":
            html = built_site / page.parent / "index.html"
        assert html.is_file(), f"{page} was not built"
    assert not list(built_site.rglob("conftest.py")), "the gate's conftest must not be published"


def test_no_template_syntax_reaches_readers(built_site: Path) -> None:
    for html in built_site.rglob("*.html"):
        text = re.sub(r"<code[^>]*>.*?</code>|<pre.*?</pre>", "", html.read_text(), flags=re.S)
        assert "{{" not in text and "{%" not in text, html


def test_pages_show_the_current_release(built_site: Path, release_data: ReleaseData) -> None:
    text = (built_site / "reference" / "releases" / "index.html").read_text()
    assert f"BeTrace {release_data.current.version}" in text
    assert release_data.image_ref("backend") in text
    backend = (built_site / "reference" / "backend-configuration" / "index.html").read_text()
    assert str(release_data.current.backend.ports["http"].port) in backend
    for var in release_data.current.backend.env:
        assert var.name in backend


def test_the_site_loads_no_third_party_font(built_site: Path) -> None:
    assert "fonts.googleapis.com" not in (built_site / "index.html").read_text()


def test_release_text_is_escaped_in_tables(tmp_path: Path) -> None:
    site = copy_site(tmp_path, ["index.md"])
    data = (REPO_ROOT / "releases.yaml").read_text()
    hostile = data.replace(
        "      First release of the distribution:", "      <script>alert(1)</script> First release:"
    )
    assert hostile != data
    (tmp_path / "releases.yaml").write_text(hostile)
    config = site / "mkdocs.yml"
    config.write_text(
        re.sub(
            r"release_data: .*", f"release_data: {tmp_path / 'releases.yaml'}", config.read_text()
        )
    )
    (site / "docs" / "index.md").write_text("# H\n\n{{ history_table() }}\n")
    out = tmp_path / "out"
    assert run_mkdocs(["build", "-d", str(out)], cwd=site).returncode == 0
    html = (out / "index.html").read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_real_site_ledger_has_no_unclaimed_block(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["ledger"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\d+ blocks on \d+ pages: .*0 unclaimed", out, re.MULTILINE), out
    entries = Gate(REPO_ROOT / "mkdocs.yml").ledger()
    assert entries and all(e.status in ("run", "verified", "modelled", "skipped") for e in entries)
    assert all(
        e.reason.startswith("checked against a model of") for e in entries if e.status == "modelled"
    )
    assert all(e.reason for e in entries if e.status == "skipped")


def test_ledger_command_fails_on_a_site_with_faults(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["ledger", "--site", str(REPO_ROOT / "tests/fixtures/faulty-site/mkdocs.yml")]) == 1
    assert "unclaimed" in capsys.readouterr().out
