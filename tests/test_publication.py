"""Every page that says whether the release is published says it from `release.published`, so the
pages agree with the release data, and with each other, before and after the digests land."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.gate.render import Site
from betrace_dist.release import load_release_data

from .conftest import CURRENT, copy_site

DIGEST = "sha256:" + "ab" * 32
ORIGINAL = (REPO_ROOT / "releases.yaml").read_text(encoding="utf-8")
#: the current release's version, read: a release leaves these tests as they are
VERSION = CURRENT.version

#: pages that state the publication status
PAGES = [
    "reference/releases.md",
    "guides/deploy-on-kubernetes.md",
    "guides/add-betrace-to-an-existing-grafana.md",
    "guides/deploy-with-docker-compose.md",
]
#: a claim that BeTrace's images or chart are published ("are not published" does not match)
PUBLISHED = re.compile(r"(?:BeTrace|this release)[^.]{0,60}\b(?:is|are) published\b")
NOT_YET = re.compile(r"\bnot published\b", re.I)


def with_digests(names: tuple[str, ...] = ("backend", "grafana-plugin", "plugin-init")) -> str:
    text = ORIGINAL
    for name in names:
        old = f"      {name}:\n        tag: {VERSION}\n"
        assert old in text, f"releases.yaml no longer lists {name} this way: update this test"
        text = text.replace(old, f"{old}        digest: {DIGEST}\n", 1)
    return text


def site_with(tmp_path: Path, release_text: str) -> Site:
    """The fixture site with this release data and copies of the real pages."""
    root = copy_site(tmp_path, ["index.md"])
    data = tmp_path / "releases.yaml"
    data.write_text(release_text, encoding="utf-8")
    config = root / "mkdocs.yml"
    config.write_text(
        re.sub(r"release_data: .*", f"release_data: {data}", config.read_text(encoding="utf-8")),
        encoding="utf-8",
    )
    for page in PAGES:
        (root / "docs" / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / "docs" / page, root / "docs" / page)
    return Site(config)


def rendered(site: Site, page: str) -> str:
    return site.render(site.docs_dir / page).text


def test_published_needs_a_digest_for_every_image(tmp_path: Path) -> None:
    for text, expected in [
        (ORIGINAL, False),
        (with_digests(("backend",)), False),
        (with_digests(), True),
    ]:
        path = tmp_path / "releases.yaml"
        path.write_text(text, encoding="utf-8")
        assert load_release_data(path).current.published is expected


@pytest.fixture(scope="module")
def unpublished(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return site_with(tmp_path_factory.mktemp("unpublished"), ORIGINAL)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return site_with(tmp_path_factory.mktemp("published"), with_digests())


def test_the_real_release_is_not_published_yet() -> None:
    assert not CURRENT.published, "update the pages' expectations below"


@pytest.mark.parametrize("page", PAGES)
def test_without_digests_every_page_says_not_published_yet(unpublished: Site, page: str) -> None:
    text = rendered(unpublished, page)
    assert NOT_YET.search(text), f"{page} does not say the release is not published yet"
    claim = PUBLISHED.search(text)
    assert claim is None, f"{page} says '{claim and claim[0]}' while nothing is published"
    assert "docker pull" not in text


@pytest.mark.parametrize("page", PAGES)
def test_with_digests_every_page_says_published(published: Site, page: str) -> None:
    text = rendered(published, page)
    assert PUBLISHED.search(text), f"{page} does not say the release is published"
    found = NOT_YET.search(text)
    assert found is None, f"{page} still says '{found and found[0]}' with every digest recorded"


@pytest.mark.parametrize("page", PAGES[1:3])
def test_the_tab_that_works_comes_first(unpublished: Site, published: Site, page: str) -> None:
    """Material opens the first tab, and the gate follows it: it is the one a reader can use."""
    choices = ("Build and push your own", "Published images")
    for site, first in ((unpublished, choices[0]), (published, choices[1])):
        tabs = [
            t for t in re.findall(r'^=== "([^"]+)"', rendered(site, page), re.M) if t in choices
        ]
        assert tabs and tabs[0] == first, f"{page}: the tabs come in the order {tabs}"
