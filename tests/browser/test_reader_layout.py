"""What a reader sees first, on a laptop and on a phone: the chooser, the diagram, code, tables.

Each guarantee is measured by one function that returns the problems it finds; the tests run it
on the real pages, then on a page broken on purpose, to show that the measure catches the fault.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from betrace_dist.release import ReleaseData

from .conftest import Served, keep_on_this_machine
from .test_site_in_browser import AXE_RUN, CODE_BOXES, LAPTOP, PHONE, code_box_problems

pytestmark = pytest.mark.slow

DIAGRAM_PAGES = ("", "guides/send-traces-to-betrace/")
VALUES_PAGE = "reference/chart-values/"

VALUES_KEYS = """() => [...document.querySelectorAll(".betrace-values td:first-child code")]
  .map((code) => {
    const table = code.closest("table");
    const wrap = code.closest(".md-typeset__scrollwrap") || table;
    const scroller = [table, wrap].find((e) => e.scrollWidth > e.clientWidth + 1);
    // A key may break after a dot (<wbr>): each part between dots is its own text node, and
    // a part drawn on more than one line is a word broken in the middle.
    const range = document.createRange();
    const broken = [...code.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE)
      .filter((n) => { range.selectNodeContents(n); return range.getClientRects().length > 1; })
      .map((n) => n.textContent);
    return {
      key: code.textContent,
      broken,
      right: wrap.getBoundingClientRect().right,
      scrolls: scroller ? getComputedStyle(scroller).overflowX : "fits",
    };
  })"""


@contextmanager
def reader(browser: Any, served: Served, viewport: dict[str, int]) -> Iterator[tuple[Any, list]]:
    """A light-scheme page of the given size; every request to another host is refused and noted."""
    outside: list[str] = []
    context = browser.new_context(color_scheme="light", viewport=viewport, service_workers="block")
    keep_on_this_machine(context, served.origin, lambda: outside)
    page = context.new_page()
    try:
        yield page, outside
    finally:
        context.close()


def open_page(page: Any, served: Served, path: str) -> None:
    response = page.goto(served.version_url("dev", path), wait_until="networkidle")
    assert response is not None and response.status == 200, path


def break_with(page: Any, css: str) -> None:
    page.add_style_tag(content=css)
    page.wait_for_timeout(50)


# -- measures ----------------------------------------------------------------------------------


def chooser_problems(page: Any) -> list[str]:
    """The home page's 'Get started' chooser must sit wholly inside the first screen."""
    chooser = page.locator(".betrace-chooser")
    if chooser.count() != 1:
        return [f"expected one .betrace-chooser, found {chooser.count()}"]
    box = chooser.bounding_box()
    height = page.viewport_size["height"]
    if box is None:
        return ["the chooser is not displayed"]
    if box["y"] < 0 or box["y"] + box["height"] > height:
        return [
            f"the chooser spans y={box['y']:.0f}..{box['y'] + box['height']:.0f}, "
            f"the first screen ends at {height}"
        ]
    return []


def code_problems(page: Any) -> list[str]:
    """Code that would be cut off on the page as it is shown now (`code_box_problems`)."""
    return code_box_problems(page.evaluate(CODE_BOXES), page.viewport_size["width"])


def values_table_problems(page: Any) -> list[str]:
    """Chart value keys broken only after a dot, and a table that fits or scrolls sideways."""
    keys = page.evaluate(VALUES_KEYS)
    if not keys:
        return ["no chart value keys found under .betrace-values"]
    width = page.viewport_size["width"]
    problems = [
        f"key {k['key']} is broken in the middle of {part!r}" for k in keys for part in k["broken"]
    ]
    problems += [
        f"the table of {k['key']} is cut off (overflow-x: {k['scrolls']})"
        for k in keys
        if k["scrolls"] not in ("fits", "auto", "scroll")
    ]
    problems += [
        f"the table of {k['key']} runs past the screen (right edge {k['right']:.0f} > {width})"
        for k in keys
        if k["right"] > width + 1
    ]
    return sorted(set(problems))


def diagram_problems(page: Any, release_data: ReleaseData) -> list[str]:
    """The flow diagram is shown, loaded from this site, and has a text alternative with the
    ports and the span endpoint of the release."""
    image = page.locator("figure.betrace-diagram img")
    if image.count() != 1:
        return [f"expected one diagram, found {image.count()}"]
    found = image.evaluate(
        "(img) => ({alt: img.alt, loaded: img.complete && img.naturalWidth > 0, src: img.src,"
        " caption: img.closest('figure').querySelector('figcaption')?.innerText ?? ''})"
    )
    backend = release_data.current.backend
    wanted = [str(backend.ports["http"].port), str(backend.ports["grpc"].port), "/v1/spans"]
    problems = [] if found["loaded"] else [f"the diagram {found['src']} did not load"]
    problems += [
        f"the diagram's alt text does not say {w}" for w in wanted if w not in found["alt"]
    ]
    if not found["caption"].strip():
        problems.append("the diagram has no caption")
    return problems


# -- the real pages ----------------------------------------------------------------------------


def test_chooser_is_above_the_fold_at_1280x900(
    browser: Any, served: Served, screenshot_dir: Path
) -> None:
    with reader(browser, served, LAPTOP) as (page, outside):
        open_page(page, served, "")
        page.screenshot(path=str(screenshot_dir / "home-first-screen-1280.png"))
        assert chooser_problems(page) == []
        assert page.locator(".betrace-chooser a[href]").count() == 4
    assert not outside, outside


@pytest.mark.parametrize("path", DIAGRAM_PAGES)
def test_diagram_is_shown_with_alt_text_and_asks_no_other_host(
    path: str, browser: Any, served: Served, release_data: ReleaseData
) -> None:
    requests: list[str] = []
    with reader(browser, served, LAPTOP) as (page, outside):
        page.on("request", lambda r: requests.append(r.url))
        open_page(page, served, path)
        assert diagram_problems(page, release_data) == []
    assert requests, "the page made no request at all: the recorder did not run"
    assert all(url.startswith(served.origin + "/") for url in requests), requests
    assert not outside, outside


def test_values_table_is_readable_on_a_phone(
    browser: Any, served: Served, screenshot_dir: Path
) -> None:
    with reader(browser, served, PHONE) as (page, outside):
        open_page(page, served, VALUES_PAGE)
        page.screenshot(path=str(screenshot_dir / "chart-values-390.png"), full_page=True)
        assert values_table_problems(page) == []
    assert not outside, outside


# -- the same measures on pages broken on purpose ----------------------------------------------


def test_a_chooser_pushed_down_is_caught(browser: Any, served: Served) -> None:
    with reader(browser, served, LAPTOP) as (page, _):
        open_page(page, served, "")
        break_with(page, ".md-typeset .betrace-chooser { margin-top: 700px !important; }")
        assert any("first screen ends at 900" in p for p in chooser_problems(page))


def test_code_cut_off_is_caught(browser: Any, served: Served) -> None:
    with reader(browser, served, PHONE) as (page, _):
        open_page(page, served, "guides/send-traces-to-betrace/")
        break_with(page, ".md-typeset pre > code { overflow: hidden !important; }")
        assert any("lines are cut off (overflow-x: hidden)" in p for p in code_problems(page))
        break_with(page, ".md-typeset pre > code { overflow: auto !important; background: none; }")
        assert any("no visible sign" in p for p in code_problems(page))
        break_with(page, ".md-typeset pre > code { width: 900px; overflow: visible !important; }")
        assert any("spans x=" in p for p in code_problems(page))


def test_a_table_that_scrolls_without_taking_the_focus_is_caught(
    browser: Any, served: Served, axe_source: str
) -> None:
    """On a phone the variables' tables scroll sideways: the site's script makes each box a
    focusable region (so axe passes, as every page's visit shows); undone, axe names it."""
    with reader(browser, served, PHONE) as (page, _):
        open_page(page, served, "reference/backend-configuration/")
        page.add_script_tag(content=axe_source)
        marked = page.locator("[data-betrace-scroll]")
        assert marked.count() > 0, "no scrolling box was made focusable"
        assert "scrollable-region-focusable" not in {v["id"] for v in page.evaluate(AXE_RUN)}
        page.evaluate(
            "() => document.querySelectorAll('[data-betrace-scroll]')"
            ".forEach((box) => box.removeAttribute('tabindex'))"
        )
        found = {v["id"] for v in page.evaluate(AXE_RUN)}
        assert "scrollable-region-focusable" in found, found


def test_keys_broken_mid_word_are_caught(browser: Any, served: Served) -> None:
    with reader(browser, served, PHONE) as (page, _):
        open_page(page, served, VALUES_PAGE)
        break_with(
            page,
            ".md-typeset .betrace-values td:first-child code"
            " { white-space: normal !important; word-break: break-all !important; }"
            ".md-typeset .betrace-values td:first-child"
            " { max-width: 60px !important; overflow: hidden !important; }",
        )
        problems = values_table_problems(page)
        assert any("is broken in the middle of" in p for p in problems), problems


def test_a_diagram_without_alt_text_or_from_another_host_is_caught(
    browser: Any, served: Served, release_data: ReleaseData
) -> None:
    with reader(browser, served, LAPTOP) as (page, outside):
        open_page(page, served, "")
        page.evaluate(
            "() => { const img = document.querySelector('figure.betrace-diagram img');"
            " img.alt = 'a diagram'; img.src = 'https://cdn.example.invalid/flow.svg'; }"
        )
        page.wait_for_timeout(200)
        problems = diagram_problems(page, release_data)
    assert any("alt text does not say" in p for p in problems), problems
    assert any("did not load" in p for p in problems), problems
    assert outside == ["https://cdn.example.invalid/flow.svg"], outside
