"""Macros refuse facts the release data does not hold, and show digests once they exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.gate.render import RenderError, Site

from .conftest import copy_site

DIGEST = "sha256:" + "ab" * 32


def site_with(tmp_path: Path, release_text: str | None = None) -> Site:
    root = copy_site(tmp_path, ["index.md"])
    if release_text is not None:
        (tmp_path / "releases.yaml").write_text(release_text)
        config = root / "mkdocs.yml"
        config.write_text(
            re.sub(
                r"release_data: .*",
                f"release_data: {tmp_path / 'releases.yaml'}",
                config.read_text(),
            )
        )
    return Site(root / "mkdocs.yml")


def render(site: Site, text: str) -> str:
    page = site.docs_dir / "p.md"
    page.write_text(text)
    return site.render(page).text


def test_image_shows_the_tag_until_a_digest_is_published(tmp_path: Path, release_data) -> None:
    assert render(site_with(tmp_path), '{{ image("backend") }}') == release_data.image_ref(
        "backend"
    )
    assert "@sha256:" not in release_data.image_ref("backend")


def test_image_shows_the_digest_once_published(tmp_path: Path) -> None:
    text = (REPO_ROOT / "releases.yaml").read_text()
    with_digest = text.replace(
        "      backend:\n        tag: 2.0.0",
        f"      backend:\n        tag: 2.0.0\n        digest: {DIGEST}",
    )
    assert with_digest != text
    assert render(site_with(tmp_path, with_digest), '{{ image("backend") }}').endswith(
        f":2.0.0@{DIGEST}"
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ('{{ image("backnd") }}', "no BeTrace image 'backnd'"),
        ('{{ port("https") }}', "no backend port 'https'"),
        ('{{ endpoint("/health") }}', "the backend serves no endpoint '/health'"),
        ('{{ env_var("PORT") }}', "the backend reads no environment variable 'PORT'"),
        ('{{ obs_image("jaeger") }}', "no observability image 'jaeger'"),
    ],
)
def test_macros_refuse_facts_that_are_not_in_the_release(
    tmp_path: Path, call: str, message: str
) -> None:
    with pytest.raises(RenderError) as info:
        render(site_with(tmp_path), f"# P\n\nUse {call} here.\n")
    assert info.value.line == 3 and message in info.value.reason
