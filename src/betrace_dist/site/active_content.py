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

from .. import yamlio
from ..errors import ProblemsError

#: elements a page may not write (lower case, as HTMLParser gives them)
ELEMENTS = frozenset(
    {
        "script", "iframe", "frame", "frameset", "object", "embed", "applet", "portal",
        "base", "meta", "form", "animate", "set", "handler",
    }
)  # fmt: skip
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


class _Finder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[Active] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ELEMENTS:
            self.found.append(Active(f"a <{tag}> element", f"<{tag}"))
        for name, value in attrs:
            if name.startswith("on") or name == "srcdoc":
                self.found.append(Active(f"the attribute {name} of <{tag}>", name))
            elif name in URL_ATTRIBUTES and value:
                scheme = _scheme(value)
                image = tag == "img" and name == "src"
                if scheme in ("javascript", "vbscript") or (scheme == "data" and not image):
                    self.found.append(Active(f"a {scheme}: URL in {name} of <{tag}>", f"{scheme}:"))

    handle_startendtag = handle_starttag


def found_in(html: str) -> list[Active]:
    """Every piece of active content in a page's HTML, in the order it stands."""
    finder = _Finder()
    finder.feed(html)
    finder.close()
    return finder.found


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


#: a page's front matter, as mkdocs reads it (a YAML document between `---` lines at the top)
_FRONT_MATTER = re.compile(r"^-{3}[ \t]*\n(.*?\n)(?:\.{3}|-{3})[ \t]*\n", re.DOTALL)


def front_matter_markup(source: str) -> tuple[int, str] | None:
    """(line, reason) for the page's own front matter (never what plugins add to page.meta)
    holding a _MARKUP character, or None; read bounded (yamlio), a front matter that is no YAML
    is left to the renderer's report."""
    match = _FRONT_MATTER.match(source.removeprefix("\ufeff"))
    if match is None:
        return None
    try:
        meta = yamlio.safe_load(match[1], "front matter")
    except ProblemsError:
        return None
    found = front_matter_problem(meta)
    return None if found is None else (line_of(source, f"{found[0]}:"), found[1])


def front_matter_problem(meta: object, key: str = "") -> tuple[str, str] | None:
    """(top-level key, reason) for the first front matter text holding a _MARKUP character,
    or None; keys are texts too."""
    if isinstance(meta, dict):
        for name, value in meta.items():
            top = key or str(name)
            found = front_matter_problem(name, top) or front_matter_problem(value, top)
            if found is not None:
                return found
    elif isinstance(meta, list):
        for item in meta:
            found = front_matter_problem(item, key)
            if found is not None:
                return found
    elif isinstance(meta, str):
        chars = sorted(_MARKUP & set(meta))
        if chars:
            return key, (
                f"the front matter's {key!r} holds {' '.join(chars)}: the theme writes front "
                "matter into the page's HTML unescaped, where such a character can end a text "
                "or an attribute and start a script; write it without them"
            )
    return None
