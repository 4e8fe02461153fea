"""Pages under Zensical: the site's macros in the page sandbox, and the verified note.

A Python-Markdown extension named in the Zensical configuration that `zensical_config` writes
from mkdocs.yml, in place of the macros plugin and the hooks. Under MkDocs, mkdocs-macros loads
the macros module, calls its `define_env` once per build and its `on_pre_page_macros` before each
page (our sandbox), then renders the page body with the page's front matter over its variables;
this extension does the same calls in the same order on an environment with the attributes the
macros module and the sandbox use (the ones mkdocs-macros 1.5 gives them), so a page renders to
the same Markdown under both generators: the gate, which renders through mkdocs-macros, reads
what Zensical shows too (tests/test_zensical.py compares the two builds page by page).

The preprocessor runs before pymdownx.snippets (priority 35 > 32), as mkdocs-macros runs before
any Markdown extension, so included artefacts reach the page unrendered under both. The note is
added by a postprocessor to the HTML of the page, as the hook adds it to `page.content`.
"""

from __future__ import annotations

import importlib.util
import threading
import xml.etree.ElementTree as etree
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import jinja2
from markdown import Extension, Markdown
from markdown.postprocessors import Postprocessor
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor

from . import notes, page_dates, sandbox

#: mkdocs-macros' `on_undefined` values and the Undefined classes they select.
_UNDEFINED = {
    "keep": jinja2.DebugUndefined,
    "silent": jinja2.Undefined,
    "strict": jinja2.StrictUndefined,
}
#: The macros plugin settings this extension honours; any other set in mkdocs.yml is refused
#: rather than silently rendered differently from MkDocs.
_HONOURED = {"module_name", "on_undefined", "on_error_fail", "include_dir", "render_by_default"}


class MacroRenderError(Exception):
    """A page's macros failed: the message is `docs/page.md:LINE: reason`, as under MkDocs."""


@dataclass
class SourceFile:
    """The attributes of mkdocs' File the macros and the sandbox read."""

    src_path: str
    abs_src_path: str

    @property
    def src_uri(self) -> str:
        return self.src_path


@dataclass
class PageShim:
    """The attributes of mkdocs' Page the macros and the sandbox read."""

    title: str | None
    url: str
    file: SourceFile
    markdown: str
    meta: dict[str, Any] = field(default_factory=dict)


class MacrosEnv:
    """What mkdocs-macros hands `define_env` and `on_pre_page_macros`, as far as they use it."""

    def __init__(self, conf: dict[str, Any], settings: dict[str, Any], root: Path) -> None:
        self.conf = conf
        self.config = settings
        self.project_dir = str(root)
        self.variables: dict[str, Any] = {}
        self.macros: dict[str, Any] = {}
        self.filters: dict[str, Any] = {}
        self.page: PageShim | None = None
        docs = root / str(conf.get("docs_dir", "docs"))
        include = root / str(settings.get("include_dir") or docs)
        self._env = jinja2.Environment(  # noqa: S701 (replaced by the sandbox before any page)
            loader=jinja2.FileSystemLoader(str(include)),
            undefined=_UNDEFINED[str(settings.get("on_undefined", "keep"))],
        )

    @property
    def env(self) -> jinja2.Environment:
        return self._env

    def macro(self, function: Any, name: str | None = None) -> Any:
        self.macros[name or function.__name__] = function
        return function

    def filter(self, function: Any, name: str | None = None) -> Any:
        self.filters[name or function.__name__] = function
        return function


def load_module(root: Path, name: str) -> ModuleType:
    """The macros module, found beside the configuration as mkdocs-macros finds it."""
    folder = (root / name).resolve()
    path = folder / "__init__.py" if folder.is_dir() else folder.with_suffix(".py")
    spec = importlib.util.spec_from_file_location(f"betrace_site_macros_{folder.name}", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise MacroRenderError(f"the macros module '{name}' is not at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for hook in ("define_env", "on_pre_page_macros"):
        if not callable(getattr(module, hook, None)):
            raise MacroRenderError(
                f"{path}: no {hook}(env); pages must render in the sandbox (site/sandbox.py)"
            )
    return module


class Build:
    """One Zensical build of the site: the macros installed once, the note's counter."""

    def __init__(self, config: dict[str, Any], settings: dict[str, Any]) -> None:
        # build_key only makes Zensical's cache notice a change of code (zensical_config)
        unknown = sorted(set(settings["macros"]) - _HONOURED)
        if unknown:
            raise MacroRenderError(
                f"macros plugin settings the Zensical build does not honour: {', '.join(unknown)}"
                " (src/betrace_dist/site/zensical_pages.py)"
            )
        self.zensical = config
        self.root = Path(str(config["root_dir"])).resolve()
        self.source = self.root / str(settings["config_file"])
        self.macros_settings = dict(settings["macros"])
        conf = {**config, "config_file_path": str(self.source)}
        self.env = MacrosEnv(conf, self.macros_settings, self.root)
        self.module = load_module(self.root, str(self.macros_settings.get("module_name", "main")))
        self.module.define_env(self.env)
        self.docs_dir = (self.root / str(config.get("docs_dir", "docs"))).resolve()
        dates = settings.get("dates")
        self.dates = page_dates.PageDates(dict(dates), self.docs_dir) if dates is not None else None
        self.notes = notes.Notes(self.source, self.docs_dir, self._template_dirs(config))

    def _template_dirs(self, config: dict[str, Any]) -> list[Path]:
        return [Path(str(d)) for d in config.get("theme_dirs") or []]

    def render(self, text: str, page: Any) -> str:
        """The page body with its macros rendered, as mkdocs-macros renders it."""
        src_path = str(page.path)
        shim = PageShim(
            page.title,
            str(page.url),
            SourceFile(src_path, str(self.docs_dir / src_path)),
            text,
            dict(page.meta or {}),
        )
        if self.dates is not None:
            page.meta["git_revision_date_localized"] = self.dates.revision_date(
                Path(shim.file.abs_src_path)
            )
        if shim.meta.get("render_macros") is False:
            return text
        if not self.macros_settings.get("render_by_default", True) and not shim.meta.get(
            "render_macros"
        ):
            return text
        env = self.env
        env.page = shim
        env.variables["page"] = shim
        try:
            self.module.on_pre_page_macros(env)
        except Exception as exc:
            raise MacroRenderError(str(exc)) from None
        variables = {**env.variables, **shim.meta}
        try:
            return str(env.env.from_string(text).render(**variables))
        except Exception as exc:
            raise MacroRenderError(self._located(exc)) from None

    def _located(self, exc: BaseException) -> str:
        """`docs/page.md:LINE: reason`, from the failure the sandbox recorded."""
        jail = self.env.env
        failure = getattr(jail, "failure", None)
        if not isinstance(jail, sandbox.PageSandbox) or failure is None:
            return f"macro rendering failed: {exc}"
        where = f"{jail.label}:{failure.line + jail.offset}" if failure.line else jail.label
        return f"{where}: {failure.reason}"


_LOCK = threading.RLock()
_BUILDS: list[tuple[dict[str, Any], Build]] = []


def build_for(config: dict[str, Any], settings: dict[str, Any]) -> Build:
    """The build of this Zensical configuration (Zensical parses it anew for each build)."""
    for known, found in _BUILDS:
        if known is config:
            return found
    made = Build(config, settings)
    _BUILDS[:] = [(config, made)]
    return made


def _context(md: Markdown) -> Any:
    """Zensical's rendering context of the page being converted (its page and configuration)."""
    from zensical.extensions.context import ContextPreprocessor

    context = ContextPreprocessor.from_markdown(md)
    if context is None:
        raise MacroRenderError("Zensical gave no page context: is this run by `zensical build`?")
    return context


class MacrosPreprocessor(Preprocessor):
    def __init__(self, md: Markdown, settings: dict[str, Any]) -> None:
        super().__init__(md)
        self.settings = settings

    def run(self, lines: list[str]) -> list[str]:
        context = _context(self.md)
        with _LOCK:
            build = build_for(context.config, self.settings)
            text = build.render("\n".join(lines), context.page)
        return text.split("\n")


#: Marks the whole page for the note's postprocessor: Python-Markdown also runs postprocessors
#: on the inner HTML of each heading (the toc extension, to get its text), and those must not
#: get a note (it would end up in every heading's id).
WHOLE_PAGE = "betrace-whole-page"


class WholePageMarker(Treeprocessor):
    def run(self, root: etree.Element) -> None:
        root.append(etree.Comment(WHOLE_PAGE))


class NotePostprocessor(Postprocessor):
    def __init__(self, md: Markdown, settings: dict[str, Any]) -> None:
        super().__init__(md)
        self.settings = settings

    def run(self, text: str) -> str:
        marker = f"<!--{WHOLE_PAGE}-->"
        if marker not in text:
            return text
        text = text.replace(marker, "").rstrip("\n")
        if not self.settings.get("notes"):
            return text
        context = _context(self.md)
        page = context.page
        with _LOCK:
            build = build_for(context.config, self.settings)
            return build.notes.add(build.docs_dir / str(page.path), text)


class PagesExtension(Extension):
    """Registered by the generated Zensical configuration (`zensical_config.EXTENSION`)."""

    def __init__(self, **kwargs: Any) -> None:
        self.settings = kwargs
        super().__init__()

    def extendMarkdown(self, md: Markdown) -> None:
        md.registerExtension(self)
        md.preprocessors.register(MacrosPreprocessor(md, self.settings), "betrace_macros", 35)
        md.treeprocessors.register(WholePageMarker(md), "betrace_whole_page", 0)
        md.postprocessors.register(NotePostprocessor(md, self.settings), "betrace_note", 0)


def makeExtension(**kwargs: Any) -> PagesExtension:
    return PagesExtension(**kwargs)
