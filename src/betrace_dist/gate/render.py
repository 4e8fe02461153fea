"""Pages as readers see them: rendered by the site's own macros plugin, then snippets inserted.

The gate never re-implements the macros: it loads mkdocs.yml, runs the plugins' `on_config` (so
`define_env` runs exactly as in `mkdocs build`), and hands each page to the same plugin instance.
Rendering changes line counts (front matter is removed, a macro may expand to a table, a snippet
to a whole file), so every rendered line is mapped back to the source line that produced it.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import logging
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import markdown
from mkdocs.config import load_config
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import ConfigurationError
from mkdocs.structure.files import File
from mkdocs.structure.pages import Page

from ..errors import Problem, ProblemsError


class RenderError(Exception):
    """A page could not be rendered; carries the source line and the reason."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Rendered:
    source: str
    text: str
    line_map: tuple[int, ...]  # rendered line index (0-based) -> source line (1-based)

    def source_line(self, rendered_line: int) -> int:
        """Source line (1-based) of a rendered line (1-based)."""
        if not self.line_map:
            return 1
        return self.line_map[min(max(rendered_line, 1), len(self.line_map)) - 1]


def map_lines(source: list[str], rendered: list[str]) -> tuple[int, ...]:
    """For each rendered line, the 1-based source line it came from.

    Unchanged lines map to themselves; lines a macro or snippet produced map to the source
    line that held the macro or the snippet marker.
    """
    out: list[int] = []
    matcher = difflib.SequenceMatcher(None, source, rendered, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.extend(range(i1 + 1, i2 + 1))
        elif tag == "replace":
            out.extend(i1 + 1 + min(k, i2 - i1 - 1) for k in range(j2 - j1))
        elif tag == "insert":
            out.extend([max(i1, 1)] * (j2 - j1))
    return tuple(out)


def _template_line(exc: BaseException) -> int | None:
    """Line of the Jinja template where an exception happened (Jinja rewrites tracebacks)."""
    lineno = getattr(exc, "lineno", None)
    if isinstance(lineno, int):
        return lineno
    tb = exc.__traceback__
    found = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            found = tb.tb_lineno
        tb = tb.tb_next
    return found


class Site:
    """One mkdocs site: its config, its macros plugin and its snippet preprocessor."""

    def __init__(self, config_file: Path) -> None:
        self.config_file = Path(config_file).resolve()
        self.root = self.config_file.parent

    @cached_property
    def _loaded(self) -> MkDocsConfig:
        os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
        try:
            return load_config(str(self.config_file))
        except ConfigurationError as exc:
            raise ProblemsError([Problem(self.config_file, None, str(exc))]) from None

    @cached_property
    def config(self) -> MkDocsConfig:
        # The same `on_config` chain `mkdocs build` runs: define_env loads the release data here.
        return self._loaded.plugins.on_config(self._loaded)

    @property
    def docs_dir(self) -> Path:
        """Known without running the plugins, so pytest can collect before anything is loaded."""
        return Path(self._loaded["docs_dir"])

    @cached_property
    def macros(self) -> Any:
        plugin = self.config.plugins.get("macros")
        if plugin is None:
            raise ProblemsError(
                [Problem(self.config_file, None, "the macros plugin is not enabled")]
            )
        return plugin

    def _snippets(self) -> Any | None:
        extensions = self.config["markdown_extensions"]
        if "pymdownx.snippets" not in extensions:
            return None
        configs = {k: dict(v) for k, v in self.config["mdx_configs"].items()}
        snippet_cfg = configs.setdefault("pymdownx.snippets", {})
        # Relative base paths are relative to the site root, whatever the current directory.
        bases = snippet_cfg.get("base_path", ["."])
        bases = [bases] if isinstance(bases, str) else bases
        snippet_cfg["base_path"] = [str((self.root / b).resolve()) for b in bases]
        md = markdown.Markdown(extensions=["pymdownx.snippets"], extension_configs=configs)
        return md.preprocessors["snippet"]

    def page(self, path: Path) -> Page:
        path = Path(path).resolve()
        src_path = path.relative_to(self.docs_dir.resolve()).as_posix()
        file = File(src_path, str(self.docs_dir), str(self.config["site_dir"]), True)
        return Page(None, file, self.config)

    def render(self, path: Path) -> Rendered:
        """The page text as a reader sees it, with the line map back to the source."""
        path = Path(path)
        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            reason = f"the page is not UTF-8 text ({exc.reason} at byte {exc.start})"
            raise RenderError(1, reason) from None
        page = self.page(path)
        try:
            page.read_source(self.config)
        except Exception as exc:
            raise RenderError(1, f"front matter could not be read: {exc}") from None
        body = page.markdown or ""
        front_matter_lines = source[: len(source) - len(body)].count("\n") if body else 0
        macro_text = self._render_macros(page, body, front_matter_lines)
        text = self._insert_snippets(macro_text, source)
        # Three stages, three maps, composed: front matter removed, macros rendered, snippets in.
        by_macros = map_lines(body.splitlines(), macro_text.splitlines())
        by_snippets = map_lines(macro_text.splitlines(), text.splitlines())
        line_map = tuple(
            by_macros[m - 1] + front_matter_lines if by_macros else 1 for m in by_snippets
        )
        return Rendered(source, text, line_map)

    def _render_macros(self, page: Page, body: str, offset: int) -> str:
        plugin = self.macros
        with _quiet_logs():
            try:
                return plugin.on_page_markdown(body, page=page, config=self.config, files=None)
            except SystemExit:
                pass  # on_error_fail: mkdocs-macros logged the error and called exit()
        # Render again through the plugin's own Jinja environment to learn the error and its line.
        variables = dict(plugin.variables)
        variables["page"] = page
        variables.update(page.meta or {})
        try:
            plugin.env.from_string(body).render(**variables)
        except Exception as exc:
            line = (_template_line(exc) or 1) + offset
            raise RenderError(line, f"macro error ({type(exc).__name__}): {exc}") from None
        raise RenderError(1 + offset, "macro rendering failed (see the mkdocs-macros log)")

    def _insert_snippets(self, text: str, source: str) -> str:
        preprocessor = self._snippets()
        if preprocessor is None:
            return text
        lines = text.split("\n")
        try:
            return "\n".join(preprocessor.run(lines))
        except Exception as exc:
            target = str(exc).split("'")[1] if "'" in str(exc) else str(exc)
            line = next((i for i, s in enumerate(source.splitlines(), 1) if target in s), 1)
            raise RenderError(line, f"snippet could not be included: {exc}") from None


@contextlib.contextmanager
def _quiet_logs():  # type: ignore[no-untyped-def]
    """mkdocs-macros chatters on the root logger; the gate reports errors itself."""
    logger = logging.getLogger("mkdocs.plugins.macros")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            yield
        finally:
            logger.setLevel(previous)
