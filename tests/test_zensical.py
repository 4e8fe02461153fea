"""The site builds with Zensical as with MkDocs, and readers see the same pages in both.

Both real generators build the real site (strict); then, page by page, the text a reader sees
(headings and anchors, text, code blocks, links: betrace_dist.site.reader_text) must be equal,
apart from the differences listed with their reasons in tests/zensical_differences.yaml. The gate
reads pages through mkdocs-macros only; what it reads must be what each build shows.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from betrace_dist import REPO_ROOT
from betrace_dist.errors import ProblemsError
from betrace_dist.gate import display
from betrace_dist.gate.collect import Gate
from betrace_dist.site import reader_text, zensical_config
from betrace_dist.site.reader_text import Difference, first_difference, reader_lines

from .conftest import SiteBuild, copy_site, run_python

DIFFERENCES = Path(__file__).with_name("zensical_differences.yaml")
DOCS = REPO_ROOT / "docs"
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Builds:
    mkdocs: Path
    zensical: Path
    seconds: dict[str, float]  # Zensical's build time


def run_zensical(root: Path, config: str, timeout: int = 600) -> tuple[int, str]:
    """`zensical build --strict` of the site whose folder is `root`: exit code, output."""
    result = run_python(
        ["-m", "zensical", "build", "--strict", "--config-file", config],
        root,
        dict(os.environ),
        timeout,
    )
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def builds(real_site: SiteBuild) -> Iterator[Builds]:
    assert real_site.returncode == 0, real_site.stderr[-3000:]
    out, seconds = real_site.site, {}  # MkDocs' build is the run's shared one
    # Zensical writes its site inside the folder of its configuration, which must be the
    # repository's (docs_dir must be inside it): a configuration and a site of this run only.
    name = f"zensical.test-{os.getpid()}.yml"
    site = REPO_ROOT / "build" / f"zensical-test-{os.getpid()}"
    zensical_config.write(REPO_ROOT / "mkdocs.yml", site.relative_to(REPO_ROOT).as_posix(), name)
    try:
        start = time.monotonic()
        code, output = run_zensical(REPO_ROOT, name)
        seconds["zensical"] = time.monotonic() - start
    finally:
        (REPO_ROOT / name).unlink(missing_ok=True)
    assert code == 0, output[-3000:]
    print(f"build times (s): {seconds}")
    yield Builds(out, site, seconds)
    shutil.rmtree(site, ignore_errors=True)


def listed() -> list[dict[str, str]]:
    entries = yaml.safe_load(DIFFERENCES.read_text(encoding="utf-8"))["reader_text"] or []
    for entry in entries:
        assert entry.get("reason"), f"{DIFFERENCES}: an entry without a reason: {entry}"
    return list(entries)


def without_listed(
    page: str, side: str, lines: list[str], entries: list[dict[str, str]], used: set[int]
) -> list[str]:
    kept = []
    for line in lines:
        hits = [
            i
            for i, e in enumerate(entries)
            if fnmatch.fnmatch(page, e.get("pages", "*")) and re.search(e.get(side) or "$^", line)
        ]
        used.update(hits)
        if not hits:
            kept.append(line)
    return kept


def differences(builds: Builds, entries: list[dict[str, str]], used: set[int]) -> list[Difference]:
    left = reader_text.built_site_pages(builds.mkdocs)
    right = reader_text.built_site_pages(builds.zensical)
    assert sorted(left) == sorted(right), "the two builds wrote different pages"
    found = []
    for page in sorted(left):
        a = without_listed(page, "mkdocs", reader_lines(left[page].read_text()), entries, used)
        b = without_listed(page, "zensical", reader_lines(right[page].read_text()), entries, used)
        difference = first_difference(page, a, b)
        if difference is not None:
            found.append(difference)
    return found


def built_name(source: Path) -> str:
    """The built page of a page source (directory URLs): `guides/x.md` -> `guides/x/index.html`."""
    stem = source.relative_to(DOCS).with_suffix("")
    return (stem.parent / "index.html" if stem.name == "index" else stem / "index.html").as_posix()


# -- the two builds ---------------------------------------------------------------------------
def test_both_generators_build_every_page(builds: Builds) -> None:
    expected = {built_name(p) for p in DOCS.rglob("*.md")}
    for site in (builds.mkdocs, builds.zensical):
        pages = set(reader_text.built_pages(site))
        assert expected <= pages, f"{site}: pages missing: {sorted(expected - pages)}"
        assert (site / "404.html").is_file()


def test_readers_see_the_same_text_in_both_builds(builds: Builds) -> None:
    entries = listed()
    used: set[int] = set()
    found = differences(builds, entries, used)
    assert not found, (
        "MkDocs and Zensical show readers different text; fix the cause, or list the difference "
        f"with its reason in {DIFFERENCES.name}:\n" + "\n".join(map(str, found))
    )
    stale = [entries[i] for i in range(len(entries)) if i not in used]
    assert not stale, f"{DIFFERENCES.name} lists differences that no longer occur: {stale}"


def test_no_page_shows_an_unrendered_macro_in_either_build(builds: Builds) -> None:
    assert reader_text.unrendered_macros(builds.mkdocs) == []
    assert reader_text.unrendered_macros(builds.zensical) == []


def test_links_and_anchors_hold_in_both_builds(builds: Builds) -> None:
    assert reader_text.broken_links(builds.mkdocs) == []
    assert reader_text.broken_links(builds.zensical) == []


def test_the_gate_reads_what_each_build_shows(builds: Builds) -> None:
    """The gate runs the code blocks it finds in the page rendered through mkdocs-macros, and
    checks links against the ids that rendering gives: those are the code blocks and the ids of
    the page each generator wrote."""
    gate = Gate(REPO_ROOT / "mkdocs.yml")
    problems = []
    for source in gate.pages():
        shown = gate.displayed(gate.site.render(source).text)
        for name, site in (("mkdocs", builds.mkdocs), ("zensical", builds.zensical)):
            html = reader_text.article((site / built_name(source)).read_text(encoding="utf-8"))
            problem = gate_view_problem(shown, display.shown_in_html(html))
            if problem:
                problems.append(f"{source.relative_to(REPO_ROOT)} ({name} build): {problem}")
    assert not problems, "\n".join(problems)


def gate_view_problem(gate: display.Shown, built: display.Shown) -> str | None:
    """What the built page shows that the gate's reading of it does not, or the reverse."""
    if gate.code != built.code:
        for n, (a, b) in enumerate(zip(gate.code, built.code, strict=False), 1):
            if a != b:
                return f"code block {n} differs: the gate reads {a[:80]!r}, readers see {b[:80]!r}"
        return f"the gate reads {len(gate.code)} code blocks, readers see {len(built.code)}"
    missing = sorted(gate.ids - built.ids)
    if missing:
        return f"ids the gate checks links against are not on the page: {missing}"
    return None


def test_navigation_search_and_overrides_work_in_the_zensical_build(builds: Builds) -> None:
    for page in ("index.html", "guides/deploy-on-kubernetes/index.html"):
        url = page.removesuffix("index.html")
        mkdocs = reader_text.navigation((builds.mkdocs / page).read_text(), url)
        zensical = reader_text.navigation((builds.zensical / page).read_text(), url)
        assert mkdocs == zensical, page
        every_page = {p.removesuffix("index.html") for p in reader_text.built_pages(builds.mkdocs)}
        assert every_page <= {href for href, _ in mkdocs}, f"{page}: pages missing from the menu"
    index = yaml.safe_load((builds.zensical / "search.json").read_text())["items"]
    locations = {item["location"].split("#")[0] for item in index}
    assert {p.removesuffix("index.html") for p in reader_text.built_pages(builds.zensical)} <= (
        locations
    ), "pages missing from Zensical's search index"
    assert not [
        i
        for i in index
        if "Examples on this page, for" in i["text"]
        and not i["location"].startswith("contributing/how-the-docs-are-verified/")  # explains it
    ], "the verified note is in the search index (data-search-exclude, verified.html)"
    for site in (builds.mkdocs, builds.zensical):
        html = (site / "reference" / "security" / "index.html").read_text()
        assert 'property="og:title" content="Security defaults"' in html, site  # main.html
        assert 'data-md-component="outdated"' in html, site  # main.html's outdated block
        assert "md-source__repository" in html and "md-source__facts" not in html, site
        assert "betrace-verified" in html and "git-revision-date-localized-plugin" in html
    # the date under a page: the same plugin code in both builds, so the same markup
    dates = [
        re.findall(r'<span class="git-revision-date-localized-plugin[^>]*>[^<]*</span>', html)
        for html in (
            (site / "reference" / "security" / "index.html").read_text()
            for site in (builds.mkdocs, builds.zensical)
        )
    ]
    assert dates[0] and dates[0] == dates[1], dates


# -- each guarantee, broken on purpose --------------------------------------------------------
ARTICLE = """<html><body><nav>Menu</nav><article class="md-content__inner">
<h1 id="t">Title<a class="headerlink" href="#t">&para;</a></h1>
<p>Run   this:</p><pre><code>echo hi
</code></pre><p>See <a href="../x/#a">x</a>.</p></article><footer>f</footer></body></html>"""


def test_a_difference_is_reported_with_its_page_and_first_line() -> None:
    left = reader_lines(ARTICLE)
    assert left == [
        "h1 #t: Title",
        "text: Run this:",
        "code: echo hi\n",
        "text: See",
        "link: ../x/#a",
        "text: x.",
    ]
    changed = reader_lines(ARTICLE.replace("echo hi", "echo ho"))
    difference = first_difference("guides/x/index.html", left, changed)
    assert difference is not None
    assert str(difference) == (
        "guides/x/index.html: reader line 3 differs:\n"
        "  mkdocs:   code: echo hi\n\n"
        "  zensical: code: echo ho\n"
    )
    shorter = first_difference("p", left, left[:-1])
    assert shorter is not None and shorter.line == 6 and shorter.right is None


def test_a_listed_difference_is_dropped_only_where_it_is_listed() -> None:
    entries = [{"pages": "guides/*", "zensical": "^link: ", "reason": "r"}]
    used: set[int] = set()
    lines = reader_lines(ARTICLE)
    assert "link: ../x/#a" not in without_listed(
        "guides/x/index.html", "zensical", lines, entries, used
    )
    assert used == {0}
    assert without_listed("index.html", "zensical", lines, entries, set()) == lines
    assert without_listed("guides/x/index.html", "mkdocs", lines, entries, set()) == lines


def test_an_unrendered_macro_is_found_outside_code(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "index.html").write_text("<article><p>Version {{ release.version }}</p>")
    (tmp_path / "index.html").write_text("<article><pre><code>{{ .Values.x }}</code></pre>")
    assert reader_text.unrendered_macros(tmp_path) == [
        "a/index.html: <article><p>Version {{ release.version }}</p>"
    ]


def test_a_broken_link_or_anchor_in_a_built_page_is_found(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "index.html").write_text('<article><h2 id="b">B</h2></article>')
    (tmp_path / "index.html").write_text(
        '<article><a href="x/#a">1</a><a href="x/#b">2</a><a href="y/">3</a>'
        '<a href="https://example.org/">4</a></article>'
    )
    assert reader_text.broken_links(tmp_path) == [
        "index.html: x/#a: no id 'a' in x/index.html",
        "index.html: y/: goes to no page of the site",
    ]


def test_the_gate_view_check_names_the_block_that_differs() -> None:
    gate = display.Shown(["echo hi\n"], {"t"}, [])
    assert gate_view_problem(gate, display.Shown(["echo hi\n"], {"t", "u"}, [])) is None
    assert "code block 1 differs" in str(
        gate_view_problem(gate, display.Shown(["echo ho\n"], {"t"}, []))
    )
    assert "['t']" in str(gate_view_problem(gate, display.Shown(["echo hi\n"], set(), [])))


def test_a_page_that_escapes_the_sandbox_fails_the_zensical_build_at_its_line(
    tmp_path: Path,
) -> None:
    root = copy_site(tmp_path, ["index.md"])
    (root / "docs" / "escape.md").write_text(
        "---\ntitle: Escape\n---\n# Escape\n{{ ''.__class__.__mro__ }}\n", encoding="utf-8"
    )
    zensical_config.write(root / "mkdocs.yml")
    code, output = run_zensical(root, zensical_config.GENERATED)
    assert code != 0
    assert "docs/escape.md:5: macro error (LimitError): access to attribute '__class__'" in output
    (root / "docs" / "escape.md").write_text("# Fine\n\n{{ release.version }}\n", encoding="utf-8")
    code, output = run_zensical(root, zensical_config.GENERATED)
    assert code == 0, output[-2000:]


def test_the_generated_config_refuses_a_plugin_it_has_no_counterpart_for(tmp_path: Path) -> None:
    config = tmp_path / "mkdocs.yml"
    config.write_text("site_name: S\nplugins:\n  - macros\n  - tags\n", encoding="utf-8")
    with pytest.raises(ProblemsError, match="plugins: 'tags' has no counterpart in the Zensical"):
        zensical_config.generate(config)
    config.write_text("site_name: S\nplugins:\n  - search\n", encoding="utf-8")
    with pytest.raises(ProblemsError, match="the macros plugin is not enabled"):
        zensical_config.generate(config)


def test_invalid_release_data_stops_the_zensical_build_with_file_line_and_field(
    tmp_path: Path,
) -> None:
    root = copy_site(tmp_path, ["index.md"])
    data = (REPO_ROOT / "releases.yaml").read_text(encoding="utf-8")
    broken = re.sub(r"(binary: betrace-backend\n\s+version: )\S+\n", r"\1banana\n", data, count=1)
    assert broken != data
    (tmp_path / "releases.yaml").write_text(broken, encoding="utf-8")
    line = broken.split("\n").index(next(s for s in broken.split("\n") if "banana" in s)) + 1
    config = root / "mkdocs.yml"
    config.write_text(
        re.sub(
            r"release_data: .*", f"release_data: {tmp_path / 'releases.yaml'}", config.read_text()
        )
    )
    zensical_config.write(config)
    code, output = run_zensical(root, zensical_config.GENERATED)
    assert code != 0
    assert f"releases.yaml:{line}: releases[0].backend.version: 'banana' is not a version" in output
