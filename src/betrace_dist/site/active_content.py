"""What in a page's HTML would run in a reader's browser, or load a page into it.

A page is text anyone can propose in a pull request, and its HTML reaches every reader of the
published site and the Chromium of the browser tests, which runs it on the CI machine. Only the
theme's own scripts run on this site: a page's Markdown may write raw HTML (a figure, a caption)
and attributes (attr_list's `{: ... }`), but nothing that runs a script, frames or embeds
another document, or changes where the page's links and forms lead:

- elements that run or embed something (`<script>`, `<iframe>`, `<object>`, SVG's `<animate>`
  and `<set>`, which can rewrite a link, ...) and those that change the document itself
  (`<base>`, `<meta>`, `<form>`);
- event-handler attributes (`onclick`, `onerror`, ...: any attribute named `on...`) and
  `srcdoc`, a whole document in an attribute;
- a URL attribute whose scheme runs code (`javascript:`, `vbscript:`) or is a document of its
  own (`data:` anywhere but an image's `src`).

The page's front matter reaches the page's HTML by another way: the theme writes a title or a
description into its templates as it is, unescaped (tried with Material: `title:` and
`description:` holding a `<script>` put it into the page). So no front matter text holds a
character that can end a text or an attribute of HTML (`<`, `>`, `"`, `'`, a backquote).

`mkdocs build` refuses such a page (hooks.on_page_content), and the gate names its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from mkdocs.utils.meta import get_data

#: elements a page may not write (lower case, as HTMLParser gives them)
ELEMENTS = frozenset(
    {
        "script", "iframe", "frame", "frameset", "object", "embed", "applet", "portal",
        "base", "meta", "form", "animate", "set", "handler", "link", "style",
    }
)  # fmt: skip
#: attributes whose URL the browser loads as the page is shown (no click needed): one leading to
#: another host makes every visit a request there (and, for the CI machine, a DNS query)
LOADED = frozenset({"src", "srcset", "poster", "data", "background", "lowsrc", "dynsrc"})
#: markup whose end Python's HTMLParser finds elsewhere than a browser does, so that what
#: follows it could be read as text here and run there: comments that a browser ends at once
#: (`<!-->`, `<!--->`) or at `--!>`, CDATA and other `<!...>` declarations outside foreign
#: content (a browser's bogus comment ends at the first `>`), processing instructions
_MISREAD = re.compile(r"<!-->|<!--->|--!>|<!(?!--|doctype\b)|<\?", re.IGNORECASE)
#: attributes that hold a URL the browser follows or loads
URL_ATTRIBUTES = frozenset(
    {"href", "src", "action", "formaction", "data", "xlink:href", "poster", "background"}
)
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.IGNORECASE)
#: characters browsers drop from a URL before they read its scheme (`java\tscript:` runs)
_DROPPED = re.compile(r"[\x00-\x20]")


@dataclass(frozen=True)
class Active:
    """One piece of active content: what it is, and a text to find it by in the page."""

    what: str
    needle: str


def _scheme(value: str) -> str:
    match = _SCHEME.match(_DROPPED.sub("", value))
    return match[1].lower() if match else ""


def _remote(value: str) -> bool:
    """A scheme-relative URL (`//host/x`): another host, on the page's own scheme."""
    return _DROPPED.sub("", value).startswith("//")


class _Finder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[Active] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ELEMENTS:
            self.found.append(Active(f"a <{tag}> element", f"<{tag}"))
        for name, value in attrs:
            loads = name == "style" and "url(" in (value or "").lower()
            if name.startswith("on") or name in ("srcdoc", "ping") or loads:
                self.found.append(Active(f"the attribute {name} of <{tag}>", name))
            elif name in URL_ATTRIBUTES | LOADED and value:
                self._url(tag, name, value)

    def _url(self, tag: str, name: str, value: str) -> None:
        scheme = _scheme(value)
        image = tag == "img" and name == "src" and value.lower().startswith("data:image/")
        if scheme in ("javascript", "vbscript") or (scheme == "data" and not image):
            self.found.append(Active(f"a {scheme}: URL in {name} of <{tag}>", f"{scheme}:"))
        elif name in LOADED and scheme != "data" and (scheme or _remote(value)):
            self.found.append(Active(f"a URL of another host in {name} of <{tag}>", value))

    handle_startendtag = handle_starttag


def found_in(html: str) -> list[Active]:
    """Every piece of active content in a page's HTML, in the order it stands; first, markup
    this parser and a browser would read differently (_MISREAD)."""
    misread = [
        Active(f"the markup {m[0]!r}, which browsers read otherwise than this check", m[0])
        for m in _MISREAD.finditer(html)
    ]
    finder = _Finder()
    finder.feed(html)
    finder.close()
    return misread + finder.found


def reason(active: Active) -> str:
    return (
        f"{active.what} would run in the browser of every reader of the site (and of the "
        "browser tests): a page runs no script and embeds no document of its own; only the "
        "theme's scripts run (site/active_content.py)"
    )


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the first occurrence of `needle` in `text` (case-insensitive), or
    1 when the HTML made it from something the text spells otherwise."""
    at = text.lower().find(needle.lower())
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


#: characters that end an HTML text or attribute value, or open an element
_MARKUP = frozenset("<>\"'`")


def front_matter_markup(source: str) -> tuple[int, str] | None:
    """(line, reason) for the page's own metadata (never what plugins add to page.meta) holding
    a _MARKUP character, or None. Read by mkdocs' own reader, as the build reads it: YAML
    between `---` lines, or MultiMarkdown's `key: value` lines at the top, the last of two
    equal keys kept."""
    try:
        _, meta = get_data(source.removeprefix("\ufeff"))
    except Exception:
        return 1, "the page's metadata at its top cannot be read as mkdocs reads it"
    found = front_matter_problem(meta, budget=[_META_NODES])
    return None if found is None else (line_of(source, f"{found[0]}:"), found[1])


#: how many values of a page's metadata are looked at: YAML aliases can make a small text a
#: huge tree (each alias is the same object again), which no page's metadata needs
_META_NODES = 10_000


def front_matter_problem(
    meta: object, key: str = "", budget: list[int] | None = None
) -> tuple[str, str] | None:
    """(top-level key, reason) for the first metadata text holding a _MARKUP character, or
    None; keys are texts too, and a value of another type is read as the theme would write it.
    `budget`: how many more values may be looked at (past it, the metadata is refused)."""
    budget = budget if budget is not None else [_META_NODES]
    budget[0] -= 1
    if budget[0] < 0:
        return key, f"the page's metadata holds more than {_META_NODES} values"
    if isinstance(meta, dict):
        for name, value in meta.items():
            top = key or str(name)
            found = front_matter_problem(name, top, budget) or front_matter_problem(
                value, top, budget
            )
            if found is not None:
                return found
        return None
    if isinstance(meta, list | tuple | set):
        for item in meta:
            found = front_matter_problem(item, key, budget)
            if found is not None:
                return found
        return None
    text = meta.decode("latin-1") if isinstance(meta, bytes) else str(meta)
    chars = sorted(_MARKUP & set(text))
    if chars:
        return key, (
            f"the front matter's {key!r} holds {' '.join(chars)}: the theme writes front "
            "matter into the page's HTML unescaped, where such a character can end a text "
            "or an attribute and start a script; write it without them"
        )
    return None
