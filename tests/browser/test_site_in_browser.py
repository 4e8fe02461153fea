"""The site as readers meet it: every page of a strict build, opened in Chromium, light and dark.

Each page is visited once per colour scheme (session fixture `visits`): light on a laptop's
screen, dark on a phone's, so that one visit per scheme also measures both widths. The tests
below are the guarantees checked on what those visits recorded, plus a few interactions
(search, tabs, copy, version selector) that need a page of their own.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.gate import live
from betrace_dist.gate.collect import Gate
from betrace_dist.release import ReleaseData
from betrace_dist.site.badge import LABELS

from .conftest import (
    VERSIONS,
    Build,
    Served,
    in_parallel,
    keep_on_this_machine,
    keep_on_this_machine_async,
)

pytestmark = pytest.mark.slow

SCHEMES = {"light": "default", "dark": "slate"}  # colour scheme asked for -> Material's scheme
SEARCHES = ("helm", "compose", "flake")
BLOCKING_IMPACTS = ("serious", "critical")
LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
VIEWPORT = LAPTOP
#: The screen each colour scheme's visits are made on.
SCREENS = {"light": LAPTOP, "dark": PHONE}
ANNOTATION = re.compile(r"\s*(#|//|--|;)\s*\(\d+\)!?\s*$")  # a code annotation marker, `# (1)`

#: Everything one visit needs from the page, in one round trip.
COLLECT = """() => {
  const outside = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.parentElement.closest("code, pre, script, style, noscript, template")) {
      outside.push(node.textContent);
    }
  }
  const note = document.querySelector(".md-content .betrace-verified");
  return {
    text: outside.join(" "),
    ids: [...document.querySelectorAll("[id]")].map((e) => e.id)
      .concat([...document.querySelectorAll("a[name]")].map((e) => e.name)),
    links: [...document.querySelectorAll("a[href]")]
      .filter((a) => !a.closest(".md-version"))  // other versions are other deployments
      .map((a) => a.href),
    // textContent, not innerText: blocks in a closed admonition are not rendered until opened
    code: [...document.querySelectorAll("pre > code")].map((c) => c.textContent),
    inline_code: [...document.querySelectorAll(":not(pre) > code")].map((c) => c.textContent),
    title: document.querySelector(".md-content h1")?.innerText ?? "",
    note: note ? note.innerText : null,
    scheme: document.body.getAttribute("data-md-color-scheme"),
  };
}"""
#: Code blocks that are shown (not in a closed admonition or another tab) and what they allow.
CODE_BOXES = """() => [...document.querySelectorAll(".md-content pre > code")]
  .map((code) => {
    const box = code.getBoundingClientRect();
    const style = getComputedStyle(code);
    return {
      text: code.textContent.split("\\n")[0].slice(0, 60),
      left: box.left, right: box.right, width: box.width,
      scrollWidth: code.scrollWidth, clientWidth: code.clientWidth,
      overflowX: style.overflowX, whiteSpace: style.whiteSpace,
      cue: style.backgroundImage.includes("gradient"),
    };
  })
  .filter((c) => c.width > 0)"""
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5),
  }));
}"""


@dataclass
class Visit:
    """What one page showed in one colour scheme."""

    page: str  # path below the version folder: "", "reference/releases/"
    scheme: str  # light or dark
    status: int = 0
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    violations: list[dict[str, Any]] = field(default_factory=list)
    code_boxes: list[dict[str, Any]] = field(default_factory=list)  # CODE_BOXES, on its screen
    screenshot: Path | None = None

    @property
    def name(self) -> str:
        return f"/{self.page} ({self.scheme})"


def page_paths(site: Path) -> list[str]:
    """Every page of the build, as its path below the site root (the 404 page is not a page)."""
    paths = []
    for html in site.rglob("*.html"):
        relative = html.relative_to(site)
        if relative.as_posix() == "404.html":
            continue
        if html.name == "index.html":
            folder = relative.parent.as_posix()
            paths.append("" if folder == "." else folder + "/")
        else:
            paths.append(relative.as_posix())
    return sorted(paths)


def watch(page: Any, visit: Visit | Callable[[], Visit]) -> None:
    """Record console errors and failed requests; the page's own status is the test's to judge.

    `visit` is the visit they belong to, or a function naming it (a tab that visits page after
    page records each on the visit under way)."""
    now = visit if callable(visit) else lambda: visit

    def console(message: Any) -> None:
        about_the_page = message.location.get("url") in (page.url, "")
        own_status = message.text.startswith("Failed to load resource") and about_the_page
        if message.type == "error" and not own_status:
            now().console_errors.append(message.text)

    def response(answer: Any) -> None:
        if answer.status >= 400 and not answer.request.is_navigation_request():
            now().failed_requests.append(f"{answer.url} (HTTP {answer.status})")

    def failed(request: Any) -> None:
        now().failed_requests.append(f"{request.url} ({request.failure})")

    page.on("console", console)
    page.on("pageerror", lambda e: now().console_errors.append(f"uncaught: {e}"))
    page.on("requestfailed", failed)
    page.on("response", response)


def new_context(browser: Any, served: Served, scheme: str, outside: list[str]) -> Any:
    """A browser context that answers every request to another host with an abort, and notes it."""
    context = browser.new_context(color_scheme=scheme, viewport=VIEWPORT, service_workers="block")
    keep_on_this_machine(context, served.origin, lambda: outside)
    return context


def slug(page: str) -> str:
    return page.strip("/").replace("/", "--") or "home"


async def record_scheme(
    browser: Any, served: Served, axe: str, shots: Path, visits: list[Visit]
) -> None:
    """The visits of one colour scheme, page after page in one tab of one context.

    One tab, not one per page: a new tab costs Chromium a renderer and a second of CPU, more
    than the visit itself. What the tab logs or asks for is recorded on the visit under way."""
    scheme = visits[0].scheme
    context = await browser.new_context(
        color_scheme=scheme, viewport=SCREENS[scheme], service_workers="block"
    )

    current = visits[0]
    await keep_on_this_machine_async(context, served.origin, lambda: current.outside_requests)
    try:
        page = await context.new_page()
        watch(page, lambda: current)
        for current in visits:  # the visit `watch` and `refuse` record on
            url = served.version_url("dev", current.page)
            response = await page.goto(url, wait_until="networkidle")
            current.status = response.status if response else 0
            current.data = await page.evaluate(COLLECT)
            current.code_boxes = await page.evaluate(CODE_BOXES)
            await page.add_script_tag(content=axe)
            current.violations = await page.evaluate(AXE_RUN)
            current.screenshot = shots / f"{slug(current.page)}-{current.scheme}.png"
            await page.screenshot(path=str(current.screenshot), full_page=True)
    finally:
        await context.close()


@pytest.fixture(scope="session")
def visits(
    served: Served, real_build: Build, axe_source: str, screenshot_dir: Path
) -> dict[tuple[str, str], Visit]:
    """Every page, light (1280 wide) and dark (390 wide): status, errors, requests, text, links,
    code boxes, axe, screenshot.

    The two schemes are visited at the same time, one tab each (`in_parallel`): a visit spends
    much of its time waiting for the network to go idle, and the two tabs' waits overlap.
    """
    paths = page_paths(real_build.site)
    found = {(path, scheme): Visit(path, scheme) for scheme in SCHEMES for path in paths}
    by_scheme = [[found[(path, scheme)] for path in paths] for scheme in SCHEMES]

    async def record(browser: Any, visits: list[Visit]) -> None:
        await record_scheme(browser, served, axe_source, screenshot_dir, visits)

    in_parallel(by_scheme, record)
    summary = {
        visit.name: [
            f"{v['impact']}: {v['id']} ({len(v['nodes'])} nodes)" for v in visit.violations
        ]
        for visit in found.values()
    }
    (screenshot_dir / "axe-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return found


@pytest.fixture(scope="session")
def gate() -> Iterator[Gate]:
    """The gate of the real site, kept out of the `--ledger` report (docs/ has its own)."""
    # not prepared with the run's config (not in its report); its live tier is the default
    # run's, as the site's note counts blocks the way `pytest docs/` does by default
    yield Gate(REPO_ROOT / "mkdocs.yml", live_tier=live.configure(None))


def source_of(page: str) -> Path:
    """The Markdown file a built page comes from (pages are folders: use_directory_urls)."""
    docs = REPO_ROOT / "docs"
    stem = page.rstrip("/")
    for candidate in (docs / f"{stem}.md", docs / stem / "index.md", docs / "index.md"):
        if candidate.is_file() and (stem or candidate == docs / "index.md"):
            return candidate
    raise AssertionError(f"no source page for /{page}")


def lines(text: str) -> list[tuple[str, bool]]:
    """Non-empty lines, stripped, each with whether it ended in a code annotation marker."""
    out = []
    for line in text.splitlines():
        bare = ANNOTATION.sub("", line).strip()
        if bare:
            out.append((bare, bare != line.strip()))
    return out


def shows(displayed: str, block: str) -> bool:
    """Whether a displayed code block holds the gate's block, line for line, in order."""
    want, have = lines(block), [text for text, _ in lines(displayed)]
    if not want:
        return True
    for start in range(len(have) - len(want) + 1):
        if all(
            have[start + i] == text or (marked and have[start + i].startswith(text))
            for i, (text, marked) in enumerate(want)
        ):
            return True
    return False


# -- every page, as recorded -------------------------------------------------------------------


def test_every_page_of_the_build_answers_200(
    visits: dict[tuple[str, str], Visit], real_build: Build
) -> None:
    pages = page_paths(real_build.site)
    sources = list((REPO_ROOT / "docs").rglob("*.md"))
    assert len(pages) >= len(sources), f"{len(sources)} Markdown pages, {len(pages)} built"
    bad = [f"{v.name}: HTTP {v.status}" for v in visits.values() if v.status != 200]
    assert not bad, bad


def test_no_page_logs_an_error_or_fails_a_request(visits: dict[tuple[str, str], Visit]) -> None:
    problems = [
        f"{v.name}: {what}"
        for v in visits.values()
        for what in v.console_errors + v.failed_requests
    ]
    assert not problems, "\n".join(problems)


def test_no_page_asks_any_host_but_the_local_server(visits: dict[tuple[str, str], Visit]) -> None:
    outside = [f"{v.name}: {url}" for v in visits.values() for url in v.outside_requests]
    assert not outside, "requests that would leave the machine:\n" + "\n".join(outside)


def test_no_template_syntax_reaches_readers(visits: dict[tuple[str, str], Visit]) -> None:
    leaks = [
        f"{v.name}: …{v.data['text'][max(0, i - 40) : i + 40]}…"
        for v in visits.values()
        for i in (v.data["text"].find("{{"), v.data["text"].find("{%"))
        if i >= 0
    ]
    assert not leaks, "\n".join(leaks)


def test_code_blocks_show_what_the_gate_checked(
    visits: dict[tuple[str, str], Visit], gate: Gate
) -> None:
    """Every block the gate rendered (release macros filled in) is what the reader sees."""
    missing = []
    checked = 0
    for (page, scheme), visit in visits.items():
        if scheme != "light":
            continue
        result = gate.analyse(source_of(page))
        for block, entry, _ in result.items:
            checked += 1
            if not any(shows(code, block.body) for code in visit.data["code"]):
                missing.append(f"{entry.page}:{entry.line} ({entry.language}) not shown as built")
    assert checked, "the gate found no code block on any page"
    assert not missing, "\n".join(missing)


def test_releases_page_shows_the_current_release(
    visits: dict[tuple[str, str], Visit], release_data: ReleaseData
) -> None:
    visit = visits[("reference/releases/", "light")]
    assert f"BeTrace {release_data.current.version}" in visit.data["text"]
    # the images table names each image (a `docker pull` block appears once they are published)
    backend = release_data.image_ref("backend")
    assert backend in visit.data["inline_code"] + visit.data["code"], visit.data["inline_code"]


def test_every_internal_link_and_anchor_resolves(
    visits: dict[tuple[str, str], Visit], served: Served
) -> None:
    # a page's ids as both of its visits saw them: under load one visit once missed a code
    # block's line anchors (a full-suite run on 2 cores, not repeated alone), and which visit
    # came last decided the verdict
    ids: dict[Path | None, set[str]] = {}
    for v in visits.values():
        ids.setdefault(served.layout.page_for(served.version_url("dev", v.page)), set()).update(
            v.data["ids"]
        )
    broken = []
    for visit in visits.values():
        if visit.scheme != "light":
            continue
        for link in visit.data["links"]:
            if not link.startswith(served.origin + "/"):
                continue  # another site (the repository, the edit links): not this site's to hold
            target = served.layout.page_for(link)
            fragment = unquote(urlsplit(link).fragment)
            if target is None:
                broken.append(f"{visit.name}: {link} answers 404")
            elif fragment and target.suffix == ".html":
                if target not in ids:
                    broken.append(f"{visit.name}: {link} points into a page no visit opened")
                elif fragment not in ids[target]:
                    broken.append(f"{visit.name}: {link}: no element has id '{fragment}'")
    assert not broken, "\n".join(broken)


def test_no_serious_or_critical_accessibility_violation(
    visits: dict[tuple[str, str], Visit],
) -> None:
    blocking = [
        f"{v.name}: {x['impact']} {x['id']}: {x['help']} at {', '.join(x['nodes'])}"
        for v in visits.values()
        for x in v.violations
        if x["impact"] in BLOCKING_IMPACTS
    ]
    assert not blocking, "\n".join(blocking)


def code_box_problems(boxes: list[dict[str, Any]], width: int) -> list[str]:
    """Code that would be cut off: past the screen's edge, or too wide and unscrollable."""
    problems = []
    for code in boxes:
        where = f"block starting {code['text']!r}"
        if code["left"] < -1 or code["right"] > width + 1:
            problems.append(f"{where}: spans x={code['left']:.0f}..{code['right']:.0f} of {width}")
        too_wide = code["scrollWidth"] > code["clientWidth"] + 1
        wraps = code["whiteSpace"] in ("pre-wrap", "break-spaces")
        if too_wide and not wraps and code["overflowX"] not in ("auto", "scroll"):
            problems.append(f"{where}: lines are cut off (overflow-x: {code['overflowX']})")
        elif too_wide and not wraps and not code["cue"]:
            problems.append(f"{where}: scrolls with no visible sign that lines go on")
    return problems


@pytest.mark.parametrize("scheme", list(SCREENS))
def test_no_code_is_cut_off(visits: dict[tuple[str, str], Visit], scheme: str) -> None:
    """On a laptop's screen (the light visits) and a phone's (the dark ones)."""
    width = SCREENS[scheme]["width"]
    problems = [
        f"{visit.name} at {width} px: {problem}"
        for visit in visits.values()
        if visit.scheme == scheme
        for problem in code_box_problems(visit.code_boxes, width)
    ]
    boxes = sum(len(v.code_boxes) for v in visits.values() if v.scheme == scheme)
    assert boxes, f"no code block was measured in the {scheme} visits"
    assert not problems, "\n".join(problems)


def test_every_page_has_a_light_and_a_dark_screenshot(
    visits: dict[tuple[str, str], Visit],
) -> None:
    for visit in visits.values():
        assert visit.data["scheme"] == SCHEMES[visit.scheme], f"{visit.name} not in its scheme"
        assert visit.screenshot and visit.screenshot.stat().st_size > 0, visit.name
    assert Counter(v.scheme for v in visits.values()) == {
        s: len(visits) // len(SCHEMES) for s in SCHEMES
    }


def test_verified_note_sits_under_the_title_of_pages_with_blocks(
    visits: dict[tuple[str, str], Visit], gate: Gate, release_data: ReleaseData
) -> None:
    for (page, scheme), visit in visits.items():
        if scheme != "light":
            continue
        result = gate.analyse(source_of(page))
        note = visit.data["note"]
        if not result.items:
            assert note is None, f"{visit.name} has no code block but shows: {note}"
            continue
        assert note, f"{visit.name} has {len(result.items)} blocks and no verified note"
        assert f"for BeTrace {release_data.current.version}: " in note, note
        assert "ran for real" in note and "checked against a model" in note, note
        counts = Counter(entry.status for _, entry, _ in result.items)
        for status, label in LABELS.items():
            assert f"{counts.get(status, 0)} {label}" in note, (visit.name, note)


# -- interactions ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def light(browser: Any, served: Served) -> Iterator[Any]:
    outside: list[str] = []
    context = new_context(browser, served, "light", outside)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served.origin)
    yield context
    context.close()
    assert not outside, outside


def search_results(page: Any, query: str) -> list[str]:
    """The pages (paths below the version folder) the site's search lists for `query`."""
    box = page.locator("input.md-search__input")
    box.click()
    box.press_sequentially(query, delay=20)  # the theme searches on key presses, not on input
    meta = page.locator(".md-search-result__meta")
    meta.filter(has_text="matching").wait_for()  # "No matching documents", "3 matching documents"
    hrefs = page.eval_on_selector_all(
        "li.md-search-result__item > a.md-search-result__link", "els => els.map(e => e.href)"
    )
    base = urlsplit(page.url).path
    return sorted({urlsplit(h).path.removeprefix(base) for h in hrefs})


@pytest.fixture(scope="module")
def search_index(real_build: Build) -> list[dict[str, str]]:
    index = json.loads((real_build.site / "search" / "search_index.json").read_text())
    return index["docs"]


@pytest.mark.parametrize("query", SEARCHES)
def test_search_finds_the_pages_about_a_word(
    query: str, light: Any, served: Served, search_index: list[dict[str, str]]
) -> None:
    """Pages whose title or a heading names the word are found; every hit mentions it."""
    stem = query.rstrip("e")
    mentioned, titled, page_titled = set(), set(), set()
    for doc in search_index:
        page, _, anchor = doc["location"].partition("#")
        if stem in (doc["title"] + " " + doc["text"]).lower():
            mentioned.add(page)
        if query in doc["title"].lower():
            titled.add(page)
            if not anchor:
                page_titled.add(page)
    assert mentioned, f"no page mentions '{query}': nothing for the search to find"

    page = light.new_page()
    page.goto(served.version_url("dev"), wait_until="networkidle")
    found = set(search_results(page, query))
    page.close()

    assert found, f"searching '{query}' lists nothing; pages mentioning it: {sorted(mentioned)}"
    assert page_titled <= found, f"'{query}': titled pages {sorted(page_titled - found)} missing"
    if titled:
        assert found & titled, f"'{query}': none of the pages with it in a heading: {titled}"
    assert found <= mentioned, f"'{query}': hits that never mention it: {sorted(found - mentioned)}"


def _copy(light: Any, served: Served, path: str, selector: str) -> tuple[str, str]:
    """What the copy button of the first block `selector` finds on page `path` puts on the
    clipboard, and the block's text as shown."""
    page = light.new_page()
    page.goto(served.version_url("dev", path), wait_until="networkidle")
    block = page.locator(selector).first
    block.hover()
    block.locator("button[data-md-type=copy]").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    shown = block.locator("code").inner_text()
    page.close()
    return copied, shown


def test_copy_button_copies_the_block_as_the_gate_checked_it(
    light: Any, served: Served, gate: Gate
) -> None:
    copied, shown = _copy(light, served, "reference/security/", "div.highlight")
    bodies = [b.body for b, _, _ in gate.analyse(source_of("reference/security/")).items]
    assert copied.strip() == shown.strip()
    assert copied.strip() in [body.strip() for body in bodies], (copied, bodies)


def test_copy_button_leaves_a_console_blocks_prompt_and_output_out(
    light: Any, served: Served
) -> None:
    """A reader pasting a console block runs its commands: the review found `$ ` and the
    shown output copied too (bash: $: command not found)."""
    compose = "guides/deploy-with-docker-compose/"
    copied, shown = _copy(light, served, compose, "div.highlight:has(span.gp):has(span.go)")
    commands = [line.removeprefix("$ ") for line in shown.splitlines() if line.startswith("$ ")]
    assert commands and len(commands) < len(shown.splitlines()), shown  # a block with output
    assert copied.splitlines() == commands, (copied, shown)


def test_version_selector_lists_the_published_versions(light: Any, served: Served) -> None:
    page = light.new_page()
    page.goto(served.version_url("dev"), wait_until="networkidle")
    listed = page.locator(".md-version__list .md-version__link").all_inner_texts()
    current = page.locator(".md-version__current").inner_text()
    dev_banner = page.locator("[data-md-component=outdated]").is_visible()
    page.goto(served.version_url("2.0"), wait_until="networkidle")
    latest_banner = page.locator("[data-md-component=outdated]").is_visible()
    latest_current = page.locator(".md-version__current").inner_text()
    page.close()
    assert [text.strip() for text in listed] == [v["title"] for v in VERSIONS]
    assert current.strip() == "dev" and latest_current.strip() == "2.0"
    assert dev_banner, "dev is not the default version: the outdated banner must show"
    assert not latest_banner, "2.0 carries the default alias: no outdated banner"


def test_unknown_address_gets_the_sites_404_page(
    light: Any, served: Served, screenshot_dir: Path
) -> None:
    page = light.new_page()
    visit = Visit("no/such/page/", "light")
    watch(page, visit)
    response = page.goto(served.version_url("dev", "no/such/page/"), wait_until="networkidle")
    title = page.locator(".md-content h1").inner_text()
    links = page.eval_on_selector_all(
        ".md-content a[href], .md-header a[href]",
        "els => els.filter(e => !e.closest('.md-version')).map(e => e.href)",
    )
    banner = page.locator("[data-md-component=outdated] a").get_attribute("href")
    page.screenshot(path=str(screenshot_dir / "404-light.png"), full_page=True)
    page.close()
    assert response is not None and response.status == 404
    assert title == "This page does not exist"
    assert not visit.console_errors + visit.failed_requests
    here = [link for link in links if link.startswith(served.origin + "/")]
    assert here, "the 404 page links nowhere on this site"
    assert all(served.layout.page_for(link) for link in here), here
    assert banner and not banner.startswith("//"), (
        f"outdated banner link {banner!r} leaves the site"
    )


def test_content_tabs_switch_and_stay_linked_across_pages(browser: Any, served: Served) -> None:
    outside: list[str] = []
    context = new_context(browser, served, "light", outside)
    page = context.new_page()

    def visible_blocks() -> list[str]:
        return [
            text.strip()
            for text in page.locator(".tabbed-content > .tabbed-block:visible").all_inner_texts()
        ]

    page.goto(served.fixture_url(), wait_until="networkidle")
    assert visible_blocks() == ["docker compose up --detach"]
    page.locator(".tabbed-labels > label", has_text="Helm").click()
    assert visible_blocks() == ["helm install betrace ./helm/betrace"]

    page.get_by_role("link", name="upgrade", exact=True).click()
    page.wait_for_load_state("networkidle")
    assert visible_blocks() == ["helm upgrade betrace ./helm/betrace"], (
        "the Helm tab did not follow"
    )
    page.locator(".tabbed-labels > label", has_text="Nix").click()
    page.goto(served.fixture_url(), wait_until="networkidle")
    assert visible_blocks() == ["nix run .#betrace-backend"], "the Nix tab did not follow back"
    context.close()
    assert not outside, outside
