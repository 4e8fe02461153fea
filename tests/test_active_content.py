"""A page runs nothing in a reader's browser: raw HTML or attr_list attributes that would run a
script, embed a document or redirect the page fail the gate at their line, and the build.

Found by attacking the gate: `<script>new WebSocket("ws://127.0.0.1:47123/")</script>` in a page
passed the gate, was kept by Markdown, and ran in the browser tests' Chromium, whose request
filter sees HTTP only, so the WebSocket reached a listener (tests/browser/conftest.py now refuses
WebSockets too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.site.active_content import found_in

from .conftest import copy_site, line_containing, run_mkdocs, run_pytest


@pytest.mark.parametrize(
    ("html", "what"),
    [
        ('<script>new WebSocket("ws://x")</script>', ["a <script> element"]),
        ("<SCRIPT src=//x></SCRIPT>", ["a <script> element", "a URL of another host in src"]),
        ('<img src="x.png" onerror="fetch(1)">', ["the attribute onerror of <img>"]),
        ('<h2 id="a" onclick="x()">A</h2>', ["the attribute onclick of <h2>"]),
        ('<a href="java\tscript:alert(1)">a</a>', ["a javascript: URL in href of <a>"]),
        ('<a href=" JavaScript:x">a</a>', ["a javascript: URL in href of <a>"]),
        (
            '<iframe srcdoc="&lt;b&gt;"></iframe>',
            ["a <iframe> element", "the attribute srcdoc of <iframe>"],
        ),
        ('<a href="data:text/html,x">a</a>', ["a data: URL in href of <a>"]),
        ('<svg><a><animate attributeName="href" to="x"/></a></svg>', ["a <animate> element"]),
        ('<meta http-equiv="refresh" content="0;url=//x">', ["a <meta> element"]),
        ('<base href="//x/">', ["a <base> element"]),
        ('<form action="//x"><input></form>', ["a <form> element"]),
        # a second attack: markup Python's parser ends elsewhere than a browser, and requests
        # made without any script
        ("<style></style x><img src=x onerror=alert(1)></style>", ["a <style> element"]),
        ("<!--><img src=x onerror=alert(1)>-->", ["the markup '<!-->', which browsers"]),
        ("<![CDATA[><img src=x onerror=alert(1)>]]>", ["the markup '<!', which browsers"]),
        ("a --!> b", ["the markup '--!>', which browsers"]),
        ('<img src="https://host/x.png">', ["a URL of another host in src of <img>"]),
        ('<img srcset="//host/x.png 2x">', ["a URL of another host in srcset of <img>"]),
        ('<link rel="dns-prefetch" href="http://host">', ["a <link> element"]),
        ('<p style="background: URL(//host)">x</p>', ["the attribute style of <p>"]),
        ('<a href="/x" ping="//host">x</a>', ["the attribute ping of <a>"]),
    ],
)  # fmt: skip
def test_active_content_is_found(html: str, what: list[str]) -> None:
    found = [a.what for a in found_in(f"<p>before</p>{html}<p>after</p>")]
    assert len(found) == len(what) and all(
        f.startswith(w) for f, w in zip(found, what, strict=True)
    ), found


@pytest.mark.parametrize(
    "html",
    [
        '<figure class="betrace-diagram"><img src="data:image/png;base64,AA==" alt="d"></figure>',
        '<a href="https://example.com/javascript:x">a</a>',
        '<a href="../guides/x/#on">on</a> <span data-on="1">x</span>',
        "<pre><code>&lt;script&gt;alert(1)&lt;/script&gt; onclick=</code></pre>",
        '<input type="radio" id="tab" name="t"><label for="tab">Tab</label>',
        "<!-- gate: skip: a reason --><!DOCTYPE html>",
        '<img src="../assets/x.png" srcset="x.png 2x"><p style="color: red">x</p>',
    ],
)
def test_what_pages_write_is_not_active(html: str) -> None:
    assert found_in(html) == []


HOSTILE = """# A page

Some text.

<script>new WebSocket("ws://127.0.0.1:47123/from-page")</script>

## A heading { onclick="fetch('/x')" }
"""


def hostile_site(tmp_path: Path) -> Path:
    site = copy_site(tmp_path, ["index.md"])
    (site / "docs" / "index.md").write_text(HOSTILE, encoding="utf-8")
    return site


def test_the_gate_names_each_line_that_would_run_in_a_browser(tmp_path: Path) -> None:
    site = hostile_site(tmp_path)
    done = run_pytest(["docs", "-q", "-p", "no:randomly"], cwd=site)
    out = done.stdout
    assert done.returncode == 1, out[-3000:] + done.stderr[-3000:]
    page = site / "docs" / "index.md"
    for needle, what in (("<script>", "a <script> element"), ("onclick", "the attribute onclick")):
        line = line_containing(page, needle)
        assert f"docs/index.md:{line}: {what}" in out, out[-3000:]
    assert "would run in the browser of every reader" in out


def test_the_build_refuses_the_page_with_its_line(tmp_path: Path) -> None:
    site = hostile_site(tmp_path)
    config = site / "mkdocs.yml"  # with the site's own hooks, which refuse it
    hooks = REPO_ROOT / "src" / "betrace_dist" / "site" / "hooks.py"
    config.write_text(config.read_text(encoding="utf-8") + f"hooks:\n  - {hooks}\n", "utf-8")
    done = run_mkdocs(["build", "--strict", "-d", str(tmp_path / "out")], cwd=site)
    assert done.returncode != 0
    line = line_containing(site / "docs" / "index.md", "<script>")
    assert f"index.md:{line}: a <script> element would run" in done.stdout + done.stderr
    assert not (tmp_path / "out" / "index.html").exists()


FRONT_MATTER = """---
title: Fine
description: "\\"><script>new WebSocket('ws://127.0.0.1:1/')</script>"
---
# A page

Some text.
"""


def front_matter_site(tmp_path: Path) -> Path:
    site = copy_site(tmp_path, ["index.md"])
    (site / "docs" / "index.md").write_text(FRONT_MATTER, encoding="utf-8")
    return site


def test_the_gate_refuses_markup_in_front_matter_at_its_line(tmp_path: Path) -> None:
    """Material writes a page's title and description into its templates unescaped (tried: a
    `<script>` in either reached the built page), past the check of the page's content."""
    site = front_matter_site(tmp_path)
    done = run_pytest(["docs", "-q", "-p", "no:randomly"], cwd=site)
    assert done.returncode == 1, done.stdout[-3000:]
    assert "docs/index.md:3: the front matter's 'description' holds" in done.stdout
    assert "the theme writes front matter into the page's HTML unescaped" in done.stdout


def test_the_build_refuses_markup_in_front_matter(tmp_path: Path) -> None:
    site = front_matter_site(tmp_path)
    config = site / "mkdocs.yml"
    hooks = REPO_ROOT / "src" / "betrace_dist" / "site" / "hooks.py"
    config.write_text(config.read_text(encoding="utf-8") + f"hooks:\n  - {hooks}\n", "utf-8")
    done = run_mkdocs(["build", "--strict", "-d", str(tmp_path / "out")], cwd=site)
    assert done.returncode != 0
    assert "index.md:3: the front matter's 'description' holds" in done.stdout + done.stderr
    assert not (tmp_path / "out" / "index.html").exists()


@pytest.mark.parametrize(
    ("source", "line", "said"),
    [
        # MultiMarkdown's metadata, which mkdocs reads too: no --- lines
        ("title: <img src=x onerror=alert(1)>\ndescription: x\n\n# P\n", 1, "'title' holds"),
        # two equal keys: mkdocs keeps the last
        ("---\ntitle: Fine\ntitle: <img src=x>\n---\n# P\n", 2, "'title' holds < >"),
        # a value that is no text
        ("---\ntitle: !!binary PGltZz4=\n---\n# P\n", 2, "'title' holds < >"),
        # aliases that make a small text a huge tree
        (
            "---\na: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
            "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n---\n# P\n",
            5,
            "more than 10000 values",
        ),
    ],
)
def test_metadata_is_read_as_mkdocs_reads_it(source: str, line: int, said: str) -> None:
    """Found by a second attack: three ways past a front matter check of `---` blocks read by
    the project's own YAML reader, each of which put a script into the built page."""
    from betrace_dist.site.active_content import front_matter_markup

    found = front_matter_markup(source)
    assert found is not None and found[0] == line and said in found[1], found
    assert front_matter_markup("---\ntitle: BeTrace Distribution\n---\n# P\n") is None
