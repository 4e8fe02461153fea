"""mkdocs hooks (mkdocs.yml `hooks:`): the verified note under each page title, and a name for
the theme's search dialog.

The note is added in `on_page_context`, after the search plugin indexed the page, so searching
the site finds pages by their content and not by the note that every page carries.
This module must not define `on_config`: the gate loads mkdocs.yml and runs every `on_config`,
hooks included, so one here would run again inside each build.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import Template
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page
from mkdocs.utils import get_relative_url

from betrace_dist.site import active_content, limits, snippets
from betrace_dist.site.badge import PageSummary, Verifier
from betrace_dist.site.notes import EXPLAINED_AT, EXPLAINED_IN, TEMPLATE, with_note

__all__ = ["EXPLAINED_AT", "EXPLAINED_IN", "with_note"]
#: The theme's search dialog has no accessible name (axe: aria-dialog-name, serious).
SEARCH_DIALOG = re.compile(r'(<div class="md-search"[^>]*role="dialog")(?![^>]*aria-label)')

# Per build, cleared at on_pre_build: `mkdocs serve` rebuilds in the same process after an edit
# (mkdocs.yml `watch:` lists releases.yaml and the artefacts), so nothing here outlives a build.
# The macros' cached tables are cleared by macros.install at the start of each build.
_build: dict[str, Any] = {}


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Snippets only from the folders the project names (snippets.py)."""
    config.markdown_extensions = snippets.replace_in(config.markdown_extensions, config.mdx_configs)
    return config


def on_pre_build(config: MkDocsConfig) -> None:
    _build.clear()
    _build["verifier"] = Verifier(Path(config.config_file_path))


def on_files(files: Files, config: MkDocsConfig) -> Files:
    _build["files"] = files
    return files


def on_page_context(
    context: dict[str, Any], page: Page, config: MkDocsConfig, **kwargs: Any
) -> dict[str, Any]:
    verifier: Verifier | None = _build.get("verifier")
    if verifier is None or not page.file.abs_src_path or page.content is None:
        return context
    summary = verifier.summary(Path(page.file.abs_src_path), page.content)
    if summary is not None:
        page.content = with_note(page.content, render_note(summary, page, config))
    return context


def render_note(summary: PageSummary, page: Page, config: MkDocsConfig) -> str:
    template: Template | None = _build.get("template")
    if template is None:
        template = _build["template"] = config.theme.get_env().get_template(TEMPLATE)
    return template.render(summary=summary, href=explanation_href(page))


def explanation_href(page: Page) -> str | None:
    """Relative link from `page` to the section explaining the note, if the site has the page."""
    files: Files | None = _build.get("files")
    target = files.get_file_from_path(EXPLAINED_IN) if files is not None else None
    if target is None:
        return None
    if target.src_uri == page.file.src_uri:
        return f"#{EXPLAINED_AT}"  # as the Zensical build writes it (notes.Notes.href)
    return f"{get_relative_url(target.url, page.url)}#{EXPLAINED_AT}"


def on_post_page(output: str, page: Page, config: MkDocsConfig) -> str:
    return name_search_dialog(output)


def on_post_template(output_content: str, template_name: str, config: MkDocsConfig) -> str:
    """Static pages (404.html) carry the header and its search dialog too."""
    if template_name.endswith(".html"):
        return name_search_dialog(output_content)
    return output_content


def name_search_dialog(html: str) -> str:
    return SEARCH_DIALOG.sub(r'\1 aria-label="Search"', html, count=1)


def _end_render_deadline() -> None:
    deadline = _build.pop("deadline", None)
    if deadline is not None:
        deadline.__exit__(None, None, None)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """The page's Markdown is turned into HTML next, by mkdocs: bounded in size here, and in
    time until on_page_content (limits.py), so one page cannot hang the build."""
    _end_render_deadline()
    limits.refuse(f"the Markdown of {page.file.src_path}", len(markdown), limits.MAX_MARKDOWN)
    deadline = limits.Deadline(limits.TIME_LIMIT)
    deadline.__enter__()
    _build["deadline"] = deadline
    return markdown


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """A page whose HTML would run anything in a reader's browser is refused (active_content)."""
    _end_render_deadline()
    meta = active_content.front_matter_markup(page.file.content_string)
    if meta is not None:
        raise PluginError(f"{page.file.src_path}:{meta[0]}: {meta[1]}")
    found = active_content.found_in(html)
    if found:
        line = active_content.line_of(page.markdown or "", found[0].needle)
        raise PluginError(f"{page.file.src_path}:{line}: {active_content.reason(found[0])}")
    return html


def on_post_build(config: MkDocsConfig) -> None:
    _end_render_deadline()
