"""The theme features of the built site, read from its HTML (no browser needed).

The browser tests (tests/browser/) check what a reader's browser does with these pages; these
check what the build writes, in a few seconds.
"""

from __future__ import annotations

import json
import re
import shutil
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import pytest
from mkdocs.config import load_config
from ruamel.yaml import YAML

from betrace_dist import REPO_ROOT
from betrace_dist.gate.ledger import Entry
from betrace_dist.release import ReleaseData
from betrace_dist.site import hooks
from betrace_dist.site.badge import Verifier, summarise

from .conftest import SiteBuild, run_mkdocs

#: Elements that make a browser fetch something while the page loads.
LOADS = {"script": "src", "img": "src", "iframe": "src", "source": "src", "video": "src"}
LOADING_LINKS = {"stylesheet", "preload", "modulepreload", "icon", "preconnect", "dns-prefetch"}
EXTERNAL = re.compile(r"^(https?:)?//", re.IGNORECASE)


NOTE = re.compile(r'<p class="betrace-verified"[^>]*>(?P<body>.*?)</p>', re.DOTALL)
TAG = re.compile(r"<[^>]+>")


class PageHTML(HTMLParser):
    """The parts of a built page these tests read."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.fetched: list[str] = []
        self.ids: set[str] = set()
        self.classes: set[str] = set()
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.classes.update(values.get("class", "").split())
        if "id" in values:
            self.ids.add(values["id"])
        if tag == "meta" and ("property" in values or "name" in values):
            self.meta[values.get("property") or values["name"]] = values.get("content", "")
        if tag in LOADS and values.get(LOADS[tag]):
            self.fetched.append(values[LOADS[tag]])
        if tag == "link" and LOADING_LINKS & set(values.get("rel", "").split()):
            self.fetched.append(values.get("href", ""))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def parse(path: Path) -> PageHTML:
    page = PageHTML()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def notes(path: Path) -> list[tuple[str, list[str]]]:
    """Each verified note of a page: its text, and the links in it."""
    return [
        (words(TAG.sub("", m["body"])), re.findall(r'href="([^"]*)"', m["body"]))
        for m in NOTE.finditer(path.read_text(encoding="utf-8"))
    ]


def words(text: str) -> str:
    return " ".join(unescape(text).split())


@pytest.fixture(scope="module")
def site(real_site: SiteBuild) -> Path:
    problems = [line for line in real_site.stderr.splitlines() if not line.startswith("INFO")]
    assert real_site.returncode == 0, "\n".join(problems)
    return real_site.site


@pytest.fixture(scope="module")
def pages(site: Path) -> dict[Path, Path]:
    """Source page -> built HTML, for every page of the site."""
    docs = REPO_ROOT / "docs"
    built = {}
    for source in sorted(docs.rglob("*.md")):
        relative = source.relative_to(docs).with_suffix("")
        folder = relative.parent if relative.name == "index" else relative
        built[source] = site / folder / "index.html"
    return built


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier(REPO_ROOT / "mkdocs.yml")  # a gate of its own, outside the run's report


def test_every_page_has_social_tags_naming_it(site: Path) -> None:
    config = load_config(str(REPO_ROOT / "mkdocs.yml"))
    for html in sorted(site.rglob("*.html")):
        page = parse(html)
        name = html.relative_to(site).as_posix()
        title = words(page.title).removesuffix(f" - {config.site_name}")
        for tag in ("og:title", "twitter:title"):
            assert page.meta.get(tag) == title, f"{name}: {tag} is not the page title '{title}'"
        for tag in ("og:description", "twitter:description", "og:site_name", "twitter:card"):
            assert page.meta.get(tag), f"{name}: no {tag}"
        if name != "404.html":
            assert page.meta.get("og:url", "").startswith(config.site_url), name


def test_the_404_page_is_the_sites_own(site: Path) -> None:
    page = parse(site / "404.html")
    assert "This page does not exist" in (site / "404.html").read_text(encoding="utf-8")
    assert "md-search" in page.classes, "the 404 page offers the search box"


def test_no_page_loads_anything_from_another_host(site: Path) -> None:
    external = [
        f"{html.relative_to(site)}: {url}"
        for html in sorted(site.rglob("*.html"))
        for url in parse(html).fetched
        if EXTERNAL.match(url)
    ]
    assert not external, "\n".join(external)
    for css in site.rglob("*.css"):
        urls = re.findall(r"url\(\s*['\"]?([^'\")]+)", css.read_text(encoding="utf-8"))
        assert not [u for u in urls if EXTERNAL.match(u)], css
        assert "@import" not in css.read_text(encoding="utf-8"), css


def test_versions_are_provided_by_mike(site: Path) -> None:
    config = load_config(str(REPO_ROOT / "mkdocs.yml"))
    assert config.extra["version"]["provider"] == "mike"
    html = (site / "index.html").read_text(encoding="utf-8")
    theme = re.search(r'<script id="__config" type="application/json">(.*?)</script>', html)
    assert theme is not None, "the theme's configuration is not in the page"
    assert json.loads(theme[1])["version"]["provider"] == "mike", "the theme was not told"
    assert 'data-md-component="outdated"' in html, "no outdated-version banner"


def test_every_page_shows_when_it_was_last_updated(pages: dict[Path, Path]) -> None:
    for source, html in pages.items():
        assert "git-revision-date-localized-plugin" in parse(html).classes, source


def test_verified_note_counts_the_pages_ledger(
    pages: dict[Path, Path], verifier: Verifier, release_data: ReleaseData, site: Path
) -> None:
    explained = parse(site / "contributing" / "how-the-docs-are-verified" / "index.html")
    assert hooks.EXPLAINED_AT in explained.ids, "the note links to a section that does not exist"
    with_blocks = 0
    for source, html in pages.items():
        summary = verifier.summary(source)
        shown = notes(html)
        if summary is None:
            assert not shown, f"{source} has no code block but shows a verified note"
            continue
        with_blocks += 1
        assert [text for text, _ in shown] == [summary.text], source
        assert release_data.current.version in summary.text
        ((_, (link,)),) = shown
        target = (html.parent / link.split("#")[0] / "index.html").resolve()
        assert target == (site / "contributing/how-the-docs-are-verified/index.html").resolve()
    assert with_blocks, "no page has code blocks: the note was never shown"


def test_summary_says_what_was_done_for_each_status_even_at_zero() -> None:
    def entry(status: str) -> Entry:
        return Entry("docs/x.md", 1, "bash", "shell", status)

    assert summarise([], "2.0.0") is None
    summary = summarise([entry("verified"), entry("verified"), entry("skipped")], "2.0.0")
    assert summary is not None
    assert summary.text == (
        "Examples on this page, for BeTrace 2.0.0: 0 ran for real, 0 checked against a model, "
        "2 checked statically, 1 skipped"
    )
    with_fault = summarise([entry("run"), entry("unclaimed")], "2.0.0")
    assert with_fault is not None and with_fault.counts_text.endswith("1 unclaimed")


def test_note_goes_right_under_the_title() -> None:
    assert hooks.with_note("<h1>T</h1><p>x</p>", "<p>N</p>") == "<h1>T</h1>\n<p>N</p><p>x</p>"
    assert hooks.with_note("<p>x</p>", "<p>N</p>") == "<p>N</p><p>x</p>"


def test_search_dialog_gets_a_name_once() -> None:
    html = '<div class="md-search" data-md-component="search" role="dialog">'
    named = hooks.name_search_dialog(html)
    assert named.endswith('role="dialog" aria-label="Search">')
    assert hooks.name_search_dialog(named) == named


@pytest.mark.slow
def test_strict_build_needs_no_git_history(tmp_path: Path) -> None:
    """Outside a git checkout (a source archive), pages show the build date; nothing fails."""
    tree = tmp_path / "tree"
    anywhere = {".git", ".venv", ".tools", "node_modules", "__pycache__", ".ruff_cache"}

    def skip(folder: str, names: list[str]) -> set[str]:
        at_root = {"site"} if Path(folder) == REPO_ROOT else set()
        return {name for name in names if name in anywhere | at_root}

    shutil.copytree(REPO_ROOT, tree, ignore=skip)
    result = run_mkdocs(["build", "--strict", "-d", str(tmp_path / "out")], cwd=tree)
    problems = [line for line in result.stderr.splitlines() if not line.startswith("INFO")]
    assert result.returncode == 0, "\n".join(problems)
    assert "git-revision-date-localized-plugin" in (tmp_path / "out/index.html").read_text()


def test_ci_checks_out_the_history_page_dates_need() -> None:
    """A shallow clone makes the dates plugin warn on GitHub Actions, which fails a strict build."""
    for workflow in sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml")):
        jobs = YAML(typ="safe").load(workflow.read_text(encoding="utf-8"))["jobs"]
        for name, job in jobs.items():
            steps = job.get("steps", [])
            builds = any(
                re.search(r"\bmake (test|build)\b|mkdocs|\bmike\b", str(s.get("run", "")))
                for s in steps
            )
            if not builds:
                continue
            checkout = next(
                s for s in steps if str(s.get("uses", "")).startswith("actions/checkout")
            )
            depth = (checkout.get("with") or {}).get("fetch-depth")
            assert depth == 0, f"{workflow.name}: job '{name}' builds the site from a shallow clone"


# -- the reader's pieces: diagram, send-traces example, chart values block ---------------------

DIAGRAM = REPO_ROOT / "docs" / "assets" / "images" / "betrace-flow.svg"
SEND_TRACES = REPO_ROOT / "docs" / "guides" / "send-traces-to-betrace.md"
SVG = "{http://www.w3.org/2000/svg}"


def _diagram_fetches(root: ElementTree.Element, svg_text: str, where: Path) -> list[str]:
    """A link or a style of the diagram that loads a file from elsewhere."""
    problems = []
    for element in root.iter():
        for name, value in element.attrib.items():
            if name.endswith("href") and not value.startswith("#"):
                problems.append(f"{where}: <{element.tag}> {name}={value!r} loads a file")
    if re.search(r"url\(\s*['\"]?(?!#)", svg_text) or "@import" in svg_text:
        problems.append(f"{where}: a style loads a file")
    return problems


def diagram_problems(svg_text: str, release: ReleaseData) -> list[str]:
    """What the hand-drawn diagram gets wrong: a fetch from elsewhere, no text alternative, or
    ports and the span endpoint that are not the release's."""
    where = DIAGRAM.relative_to(REPO_ROOT)
    try:
        root = ElementTree.fromstring(svg_text)  # noqa: S314 (a file of this repository)
    except ElementTree.ParseError as exc:
        return [f"{where}: not well-formed XML: {exc}"]
    problems = _diagram_fetches(root, svg_text, where)
    for part in ("title", "desc"):
        if not (root.findtext(SVG + part) or "").strip():
            problems.append(f"{where}: no <{part}> (the text alternative for screen readers)")
    texts = " ".join(t.text or "" for t in root.iter(SVG + "text"))
    backend = release.current.backend
    for name, label in (("http", "REST"), ("grpc", "gRPC")):
        if f"{label} {backend.ports[name].port}" not in texts:
            problems.append(
                f"{where}: the {label} port shown is not {backend.ports[name].port} "
                f"(releases.yaml backend.ports.{name})"
            )
    if not any(e.path == "/v1/spans" for e in backend.endpoints) or "/v1/spans" not in texts:
        problems.append(f"{where}: POST /v1/spans is not an endpoint of the release, or not shown")
    return problems


def test_diagram_is_self_contained_and_shows_the_releases_ports(release_data: ReleaseData) -> None:
    assert diagram_problems(DIAGRAM.read_text(encoding="utf-8"), release_data) == []


def test_diagram_faults_are_named(release_data: ReleaseData) -> None:
    good = DIAGRAM.read_text(encoding="utf-8")
    other_port = good.replace("REST 12011", "REST 8080")
    assert any("REST port shown is not" in p for p in diagram_problems(other_port, release_data))
    fetching = good.replace("</svg>", '<image href="https://cdn.example/x.png"/></svg>')
    assert any("loads a file" in p for p in diagram_problems(fetching, release_data))
    untitled = re.sub(r"<title[^>]*>.*?</title>", "", good, flags=re.DOTALL)
    assert any("no <title>" in p for p in diagram_problems(untitled, release_data))


def test_diagram_is_on_the_home_and_send_traces_pages(pages: dict[Path, Path]) -> None:
    for source in (REPO_ROOT / "docs" / "index.md", SEND_TRACES):
        html = pages[source].read_text(encoding="utf-8")
        figure = re.search(r'<figure class="betrace-diagram">(.*?)</figure>', html, re.DOTALL)
        assert figure, f"{source.name}: no diagram"
        alt = re.search(r'<img alt="([^"]{80,})"[^>]*src="[^"]*betrace-flow\.svg"', figure[1])
        assert alt, f"{source.name}: the diagram has no text alternative of some length"


def python_prints(body: str) -> str:
    """The text a Python example says it prints: the triple-quoted string after its print."""
    found = re.search(r'^print\(.*\)\n"""\n(.*?)\n"""\s*$', body, re.DOTALL | re.MULTILINE)
    assert found, "the Python example shows no printed output after its print()"
    return found[1]


def example_mismatch(bodies: dict[tuple[str, str | None], str]) -> str | None:
    """Why the Python example and spans.json are not the same request, if they are not."""
    saved = bodies.get(("json", "spans.json"))
    code = bodies.get(("python", None))
    if saved is None or code is None:
        return "the page has no spans.json block or no Python example"
    printed = python_prints(code)
    if printed.strip() != saved.strip():
        return "the Python example prints another body than spans.json"
    return None


def send_traces_bodies(verifier: Verifier) -> dict[tuple[str, str | None], str]:
    return {(b.language, b.title): b.body for b, _, _ in verifier.gate.analyse(SEND_TRACES).items}


def test_python_example_prints_the_body_curl_posts(verifier: Verifier) -> None:
    """The Python example and spans.json are the same request, so curl checks what Python sends."""
    bodies = send_traces_bodies(verifier)
    assert example_mismatch(bodies) is None
    changed = dict(bodies)
    changed[("json", "spans.json")] = bodies[("json", "spans.json")].replace("1500", "900")
    assert example_mismatch(changed) == "the Python example prints another body than spans.json"
    with pytest.raises(AssertionError, match="no printed output"):
        python_prints("print(x)\n")


def test_chart_values_tables_sit_in_the_block_the_site_styles(pages: dict[Path, Path]) -> None:
    from betrace_dist.site.artefact_tables import VALUES_CLASS

    html = pages[REPO_ROOT / "docs" / "reference" / "chart-values.md"].read_text(encoding="utf-8")
    block = re.search(rf'<div class="{VALUES_CLASS}">(.*?)\n</div>', html, re.DOTALL)
    assert block, f"no <div class={VALUES_CLASS!r}> on the chart values page"
    assert block[1].count("<table>") >= 4, "the chart values tables are not inside the block"
    css = (REPO_ROOT / "docs" / "assets" / "stylesheets" / "site.css").read_text(encoding="utf-8")
    assert f".{VALUES_CLASS} td:first-child code" in css


def test_python_example_posts_what_curl_posts(verifier: Verifier) -> None:
    """post_spans, run against a loopback server of this test, sends spans.json as curl does:
    POST, the span path, a JSON content type; and it returns the decoded answer."""
    import contextlib
    import io
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    by_kind = send_traces_bodies(verifier)
    seen: list[tuple[str, str, str, bytes]] = []
    answer = b'{"accepted":2,"rejected":0,"errors":[]}'

    class Backend(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.command, self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    example: dict[str, object] = {"__name__": "example"}
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(by_kind[("python", None)], example)  # noqa: S102 (a block of this site's page)
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/spans"
        spans = [example["charge"], example["skipped"]]
        got = example["post_spans"](spans, url)  # type: ignore[operator]
    finally:
        server.shutdown()
        server.server_close()
    assert got == json.loads(answer)
    ((method, path, content_type, body),) = seen
    assert (method, path, content_type) == ("POST", "/v1/spans", "application/json")
    assert json.loads(body) == json.loads(by_kind[("json", "spans.json")])
    assert str(example["SPANS_URL"]).endswith("/v1/spans")


def test_chart_value_keys_may_break_only_after_a_dot() -> None:
    from betrace_dist.site.artefact_tables import breakable_key, chart_values_table

    assert breakable_key("backend.image.tag") == "<code>backend.<wbr>image.<wbr>tag</code>"
    assert breakable_key("a<b") == "<code>a&lt;b</code>"
    assert "| <code>image.<wbr>registry</code> |" in chart_values_table()
