"""The verified note under each page title, for either generator.

MkDocs adds it through `hooks.py` (`on_page_context`); Zensical, which runs no hooks, through the
postprocessor of `zensical_pages.py`. Both count with the same `Verifier` (the gate's own reading
of the page), draw it with the same template (docs/overrides/partials/verified.html) and put it
in the same place, right after the page's first title.
"""

from __future__ import annotations

import posixpath
import re
from functools import cached_property
from pathlib import Path

import jinja2

from .badge import PageSummary, Verifier

#: The page that explains the note, and the section of it the note links to.
EXPLAINED_IN = "contributing/how-the-docs-are-verified.md"
EXPLAINED_AT = "the-note-under-each-title"
TEMPLATE = "partials/verified.html"
FIRST_TITLE_END = re.compile(r"</h1>", re.IGNORECASE)


def with_note(content: str, note: str) -> str:
    """The page HTML with the note right after its title (before everything if it has none)."""
    end = FIRST_TITLE_END.search(content)
    if end is None:
        return note + content
    return content[: end.end()] + "\n" + note + content[end.end() :]


class Notes:
    """The notes of one Zensical build: counted by the gate, drawn by the site's template."""

    def __init__(self, config_file: Path, docs_dir: Path, template_dirs: list[Path]) -> None:
        self.verifier = Verifier(config_file)
        self.docs_dir = docs_dir
        self.template_dirs = template_dirs

    @cached_property
    def template(self) -> jinja2.Template:
        # The theme's own folders (the overrides first), as MkDocs' theme environment has them;
        # the partial escapes what it shows itself (`| e`), as under MkDocs.
        loader = jinja2.FileSystemLoader([str(d) for d in self.template_dirs])
        return jinja2.Environment(loader=loader).get_template(TEMPLATE)  # noqa: S701

    def href(self, page: Path) -> str | None:
        """Zensical resolves the links of a page's HTML as it resolves its Markdown links:
        relative to the page's source file, `.md` files turned into their URLs."""
        target = self.docs_dir / EXPLAINED_IN
        if not target.is_file():
            return None
        if target.resolve() == page.resolve():
            return f"#{EXPLAINED_AT}"
        return f"{posixpath.relpath(target, page.parent)}#{EXPLAINED_AT}"

    def add(self, page: Path, html: str) -> str:
        summary: PageSummary | None = self.verifier.summary(page, html)
        if summary is None:
            return html
        return with_note(html, self.template.render(summary=summary, href=self.href(page)))
