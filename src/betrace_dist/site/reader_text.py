"""What a reader sees of a built page, as lines that two builds of the site can be compared by.

Both generators write the page's content inside the theme's `<article>`; the rest of the HTML
(header, navigation, footer, scripts) is the theme's, which differs between Material for MkDocs
and Zensical by design. From the article this keeps, in document order:

- `h2 #id: text` for each heading, with its anchor (what links point at);
- `code: ...` for each code block, its text exactly (what readers copy);
- `link: href` for each link (and `id: name` for each other element id);
- `text: ...` for the rest, whitespace runs folded into one space (the HTML's line breaks are
  the generator's, not the reader's);

and leaves out the theme's own markup (icons, the permalink sign). `compare` names the page and
the first line that differs; `differences` reads the list of the differences that cannot be
avoided (tests/data/zensical-differences.yaml), each with its reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from itertools import zip_longest
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
#: Elements without an end tag: they never open a level.
VOID = {"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
#: Ids the theme or the highlighter numbers per build, not content (code line anchors).
_NUMBERED_ID = re.compile(r"^__codelineno-|^__code_\d+$")
#: Ids of the theme's own markup inside the article: Zensical's target of the "skip to
#: content" link (Material puts it outside the article).
THEME_IDS = frozenset({"__skip"})


class _Article(HTMLParser):
    """Collects the reader's lines from the first `<article>` of a page."""

    def __init__(self, skip_classes: frozenset[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.skip_classes = skip_classes
        self.lines: list[str] = []
        self._depth = 0  # element depth inside the article (0: outside)
        self._skipping: int | None = None  # depth at which a skipped element opened
        self._pre: list[str] | None = None
        self._pre_depth = 0
        self._heading: tuple[str, str, list[str]] | None = None
        self._text: list[str] = []
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        if not self._depth:
            if tag == "article":
                self._depth = 1
            return
        if tag in VOID:
            self._void(tag, dict(attrs))
            return
        self._depth += 1
        values = dict(attrs)
        classes = set((values.get("class") or "").split())
        if self._skipping is not None:
            return
        if classes & self.skip_classes or tag in {"svg", "script", "style"}:
            self._skipping = self._depth
            return
        self._open(tag, values)

    def _void(self, tag: str, values: dict[str, str | None]) -> None:
        if self._skipping is None and tag == "br" and self._pre is None:
            self._text.append(" ")

    def _open(self, tag: str, values: dict[str, str | None]) -> None:
        element_id = values.get("id")
        if tag == "pre":
            self._flush()
            self._pre, self._pre_depth = [], self._depth
            return
        if tag in HEADINGS:
            self._flush()
            self._heading = (tag, element_id or "", [])
            return
        if (
            element_id
            and element_id not in THEME_IDS
            and not _NUMBERED_ID.match(element_id)
            and self._pre is None
        ):
            self._flush()
            self.lines.append(f"id: {element_id}")
        if tag == "a" and values.get("href") is not None and self._pre is None:
            self._flush()
            self.lines.append(f"link: {values['href']}")

    def handle_endtag(self, tag: str) -> None:
        if self.done or not self._depth or tag in VOID:
            return
        if self._skipping is not None:
            if self._depth == self._skipping:
                self._skipping = None
            self._depth -= 1
            return
        if tag == "pre" and self._pre is not None and self._depth == self._pre_depth:
            self.lines.append("code: " + "".join(self._pre))
            self._pre = None
        elif tag in HEADINGS and self._heading is not None:
            level, anchor, words = self._heading
            self.lines.append(f"{level} #{anchor}: {_fold(''.join(words))}")
            self._heading = None
        elif tag in {"p", "li", "td", "th", "dt", "dd", "div", "summary", "blockquote"}:
            self._flush()
        self._depth -= 1
        if self._depth == 0:
            self._flush()
            self.done = True

    def handle_data(self, data: str) -> None:
        if self.done or not self._depth or self._skipping is not None:
            return
        if self._pre is not None:
            self._pre.append(data)
        elif self._heading is not None:
            self._heading[2].append(data)
        else:
            self._text.append(data)

    def _flush(self) -> None:
        text = _fold("".join(self._text))
        self._text = []
        if text:
            self.lines.append(f"text: {text}")


def _fold(text: str) -> str:
    return " ".join(text.split())


def reader_lines(html: str, skip_classes: frozenset[str] = frozenset()) -> list[str]:
    """The reader's lines of a built page (empty if the page has no `<article>`)."""
    parser = _Article(frozenset({"headerlink", *skip_classes}))
    parser.feed(html)
    parser.close()
    return parser.lines


@dataclass(frozen=True)
class Difference:
    """The first place where two builds of one page show readers something different."""

    page: str
    line: int  # 1-based, in the reader's lines
    left: str | None
    right: str | None

    def __str__(self) -> str:
        return (
            f"{self.page}: reader line {self.line} differs:\n"
            f"  mkdocs:   {self.left if self.left is not None else '(page ends)'}\n"
            f"  zensical: {self.right if self.right is not None else '(page ends)'}"
        )


def first_difference(page: str, left: list[str], right: list[str]) -> Difference | None:
    """The first line where the two differ (None for a side that has ended), or None."""
    for number, (a, b) in enumerate(zip_longest(left, right), 1):
        if a != b:
            return Difference(page, number, a, b)
    return None


def built_pages(site: Path) -> dict[str, Path]:
    """Every page of a built site by its path (`guides/x/index.html`), without static pages."""
    return {
        p.relative_to(site).as_posix(): p
        for p in sorted(site.rglob("index.html"))
        if not p.relative_to(site).as_posix().startswith(("assets/", "search/"))
    }


def built_site_pages(site: Path) -> dict[str, Path]:
    """`built_pages` and the 404 page."""
    pages = built_pages(site)
    if (site / "404.html").is_file():
        pages["404.html"] = site / "404.html"
    return pages


_ARTICLE = re.compile(r"<article\b")
_CODE = re.compile(r"<(pre|code)\b")
_MACRO = re.compile(r"\{\{|\{%")


def article(html: str) -> str:
    """The page's `<article>` (its content): from the first `<article` to the last
    `</article>`, empty if it has none. Found with one search and one rfind: a pattern that
    goes back from every `<article` a page wrote is quadratic in them."""
    found = _ARTICLE.search(html)
    end = html.rfind("</article>")
    if found is None or end < found.start():
        return ""
    return html[found.start() : end + len("</article>")]


def without_code(html: str) -> str:
    """`html` without its `<pre>` and `<code>` elements, each from its start to the first
    close of its kind after it; a start with no close stays. In one pass: once a kind has no
    close left, later starts of it are not looked for again (a pattern tried from every
    `<code` of a page that wrote thousands, unclosed, was quadratic: the attack's page took
    81 s)."""
    kept: list[str] = []
    pos, closed = 0, {"pre": True, "code": True}
    while any(closed.values()) and (found := _CODE.search(html, pos)) is not None:
        kind = found[1]
        end = html.find(f"</{kind}>", found.end()) if closed[kind] else -1
        if end == -1:
            closed[kind] = False
            kept.append(html[pos : found.end()])
            pos = found.end()
            continue
        kept.append(html[pos : found.start()])
        pos = end + len(kind) + 3
    return "".join(kept) + html[pos:]


def unrendered_macros(site: Path) -> list[str]:
    """`page: text` for each page that shows Jinja's `{{` or `{%` outside code: a macro that was
    not rendered (code may show them: Helm templates and GitHub expressions are code)."""
    found = []
    for name, path in built_site_pages(site).items():
        text = without_code(path.read_text(encoding="utf-8"))
        for match in _MACRO.finditer(text):
            start = text.rfind("\n", 0, match.start()) + 1
            end = text.find("\n", match.end())
            found.append(f"{name}: {text[start : end if end != -1 else None].strip()[:120]}")
            break
    return found


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "a" and values.get("name"):
            self.ids.add(str(values["name"]))
        if tag == "a" and values.get("href") is not None:
            self.links.append(str(values["href"]))


def _read(html: str) -> _Ids:
    parser = _Ids()
    parser.feed(html)
    parser.close()
    return parser


def _target(site: Path, page: Path, path: str) -> Path:
    """The file a relative link of `page` opens: a folder's index.html, as a web server does."""
    target = (page.parent / unquote(path)).resolve() if path else page
    if target.is_dir():
        target = target / "index.html"
    return target


def broken_links(site: Path) -> list[str]:
    """`page: link: why` for each link in a page's content that goes to no page of the built
    site, or to an anchor that is no id of its page: the gate's link and anchor check, run on
    what a generator wrote rather than on the Markdown."""
    site = site.resolve()
    ids: dict[Path, set[str]] = {}
    found = []
    for name, page in built_site_pages(site).items():
        if name == "404.html":
            continue  # its links are absolute (/distribution/...), resolved by the web server
        for href in _read(article(page.read_text(encoding="utf-8"))).links:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith(("/", "mailto:")):
                continue
            target = _target(site, page.resolve(), parts.path)
            if not target.is_file() or not target.is_relative_to(site):
                found.append(f"{name}: {href}: goes to no page of the site")
                continue
            anchor = unquote(parts.fragment)
            if not anchor:
                continue
            if target not in ids:
                ids[target] = _read(target.read_text(encoding="utf-8")).ids
            if anchor not in ids[target]:
                found.append(f"{name}: {href}: no id '{anchor}' in {target.relative_to(site)}")
    return found


class _Navigation(HTMLParser):
    """Links of the theme's primary navigation: (href, title)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.links: list[tuple[str, str]] = []
        self._link: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        if self.depth and tag not in VOID:
            self.depth += 1
        elif tag == "nav" and "md-nav--primary" in classes:
            self.depth = 1
        if self.depth and tag == "a" and "md-nav__link" in classes and "href" in values:
            self._link = [str(values["href"] or ""), ""]

    def handle_endtag(self, tag: str) -> None:
        if not self.depth or tag in VOID:
            return
        if tag == "a" and self._link is not None:
            self.links.append((self._link[0], _fold(self._link[1])))
            self._link = None
        self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            self._link[1] += data


def navigation(html: str, page_url: str) -> list[tuple[str, str]]:
    """The primary navigation of a page: each link as (address from the site root, title)."""
    parser = _Navigation()
    parser.feed(html)
    parser.close()
    base = "https://site.invalid/" + page_url
    return [
        (urljoin(base, href).removeprefix("https://site.invalid/"), t) for href, t in parser.links
    ]
