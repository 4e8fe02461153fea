"""A symbolic link that leaves the repository stops the gate and the build before any page is
rendered, so no page can include a file of the machine that runs them (found by attacking the
gate: `--8<-- "docs/assets/leak.txt"` with leak.txt -> a file outside)."""

from __future__ import annotations

from pathlib import Path

from betrace_dist.site.links import links_leaving

from .conftest import copy_site, run_mkdocs, run_pytest

SECRET = "canary-outside-6e1f"  # noqa: S105  secrets-scan: allow a canary the test plants


def leaky_site(tmp_path: Path) -> Path:
    outside = tmp_path / "outside.txt"
    outside.write_text(SECRET, encoding="utf-8")
    site = copy_site(tmp_path, ["index.md"])
    (site / "docs" / "leak.txt").symlink_to(outside)
    (site / "docs" / "index.md").write_text(
        '# Leak\n\n```text\n--8<-- "docs/leak.txt"\n```\n', encoding="utf-8"
    )
    return site


def test_a_link_leaving_the_site_is_found(tmp_path: Path) -> None:
    site = leaky_site(tmp_path)
    (site / "docs" / "inside.md").symlink_to(site / "docs" / "index.md")  # inside: allowed
    assert links_leaving(site) == [f"docs/leak.txt -> {tmp_path / 'outside.txt'}"]


def test_the_gate_stops_before_rendering_and_prints_no_content(tmp_path: Path) -> None:
    done = run_pytest(["docs", "-q"], cwd=leaky_site(tmp_path))
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "symbolic links leave the repository" in out and "docs/leak.txt ->" in out
    assert SECRET not in out


def test_mkdocs_build_stops_too(tmp_path: Path) -> None:
    site = leaky_site(tmp_path)
    done = run_mkdocs(["build", "--strict", "-d", str(tmp_path / "built")], cwd=site)
    assert done.returncode != 0
    assert "symbolic links leave the repository" in done.stdout + done.stderr
    built = tmp_path / "built"
    assert not built.exists() or SECRET not in "".join(
        p.read_text(encoding="utf-8", errors="replace") for p in built.rglob("*.html")
    )
