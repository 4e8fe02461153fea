"""Pages render in a Jinja sandbox that reaches the release data and the macros, nothing else.

mkdocs-macros (1.5, `mkdocs_macros/plugin.py`) builds a plain `jinja2.Environment` at the end of
its `on_config`, *after* it ran our `define_env`, and it hands each page every variable it knows:
the whole mkdocs config (`config`), the plugin itself, `git`, `environment`, `files`,
`navigation`, its own debug macros, and Jinja's `cycler`/`lipsum`/`namespace`. Through those a
page could run any Python (`{{ cycler.__init__.__globals__.os.system(...) }}`) on every machine
that builds the site.

The plugin's supported per-page hook, `on_pre_page_macros(env)` (called in `on_page_markdown`
before it renders, in `mkdocs build`, `mkdocs serve` and the gate alike, since the gate hands
pages to the same plugin), is where we:

- swap the plugin's environment for a `PageSandbox` (an `ImmutableSandboxedEnvironment`) with the
  same delimiters, undefined behaviour and extensions, whose only globals are `range` (bounded)
  and the macros our `define_env` registered, and a loader that reads no file (`NoFiles`);
- drop every variable but the ones our `define_env` provides, and replace `page` (a mkdocs Page,
  whose methods read files) by a read-only view of its title, URL, source path and front matter;
- refuse front matter that would shadow one of those names.

The sandbox itself refuses underscore attributes (`__class__`, `__globals__`, ...), classes,
modules and pydantic's `model_*` machinery, and applies the size and time limits of `limits`.
"""

from __future__ import annotations

import logging
import re
import types
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jinja2 import BaseLoader, Template, TemplateSyntaxError, Undefined
from jinja2.filters import FILTERS as DEFAULT_FILTERS
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from mkdocs.exceptions import PluginError
from pydantic import BaseModel

from . import limits

#: Logs "page.md:LINE: reason" for `mkdocs build`/`serve` (mkdocs-macros' own message has no
#: line); a child of mkdocs-macros' logger, so the gate's quieting of that logger covers it.
LOG = logging.getLogger("mkdocs.plugins.macros.sandbox")

HINT = "pages may read the release data and call the macros (src/betrace_dist/site), nothing else"


@dataclass(frozen=True)
class Provided:
    """What our define_env gave pages: the only names a page can use."""

    variables: frozenset[str]
    macros: frozenset[str]
    filters: frozenset[str]

    @property
    def names(self) -> frozenset[str]:
        return self.variables | self.macros | {"page", "range"}


@dataclass(frozen=True)
class PageView:
    """What a page may know about itself (mkdocs-macros reads `page.meta` to merge front matter)."""

    title: str | None
    url: str
    src_path: str
    meta: MappingProxyType[str, Any]


@dataclass
class Failure:
    """The last render failure: template line (1-based, in the page body) and reason."""

    line: int | None
    reason: str
    error: BaseException


def install(env: Any, define: Any) -> None:
    """Run `define(env)` (our define_env) and remember which names it gave pages."""
    before = (set(env.variables), set(env.macros), set(env.filters))
    define(env)
    env.betrace_provided = Provided(
        frozenset(set(env.variables) - before[0]),
        frozenset(set(env.macros) - before[1]),
        frozenset(set(env.filters) - before[2]),
    )


def provided(env: Any) -> Provided:
    found = getattr(env, "betrace_provided", None)
    if not isinstance(found, Provided):
        raise PluginError("the macros were not installed through betrace_dist.site.sandbox")
    return found


def enforce(env: Any) -> None:
    """Before each page: sandbox the environment, prune the variables, check the front matter."""
    names = provided(env)
    sandbox = env.env if isinstance(env.env, PageSandbox) else sandboxed(env, names)
    page = env.page
    label, offset = _where(env, page)
    for key in shadowing_keys(page.meta or {}, names):
        line = _front_matter_line(page, key)
        raise PluginError(f"{label}:{line}: {shadow_reason(key)}")
    for name in [n for n in env.variables if n not in names.variables]:
        del env.variables[name]
    env.variables["page"] = PageView(
        page.title, page.url, page.file.src_path, MappingProxyType(dict(page.meta or {}))
    )
    sandbox.begin_page(label, offset)


def sandboxed(env: Any, names: Provided) -> PageSandbox:
    """A PageSandbox configured like the plugin's environment, installed in its place."""
    plain = env.env
    sandbox = PageSandbox(
        **{key: getattr(plain, key) for key in _SETTINGS},
        loader=NoFiles(),
        extensions=[type(ext) for ext in plain.extensions.values()],
    )
    sandbox.filters = dict(DEFAULT_FILTERS)
    sandbox.filters.update({n: env.filters[n] for n in names.filters})
    limits.guard_filters(sandbox.filters)
    sandbox.globals = {"range": limits.bounded_range}
    sandbox.globals.update({n: env.macros[n] for n in names.macros})
    env._env = sandbox  # the attribute behind mkdocs-macros' read-only `env` property
    return sandbox


_SETTINGS = (
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "line_statement_prefix",
    "line_comment_prefix",
    "trim_blocks",
    "lstrip_blocks",
    "newline_sequence",
    "keep_trailing_newline",
    "undefined",
    "autoescape",
)


class NoFiles(BaseLoader):
    """The loader of the sandbox: a page reads no file. mkdocs-macros' own loader reads any file
    under the docs folder for `{% include %}`, `{% import %}` and `{% extends %}`, links
    included, so a page (and a link committed beside it) could read the repository's .git/config
    into the site and the CI log. The site's pages include nothing (artefacts come in through
    pymdownx.snippets, which refuses links out of the repository)."""

    def get_source(self, environment: Any, template: str) -> tuple[str, str | None, Any]:
        raise limits.LimitError(f"'{template}' was not read: pages include no files; {HINT}")


def shadowing_keys(meta: Any, names: Provided) -> list[str]:
    """Front matter keys that would replace a name the release data or the macros provide."""
    return [str(k) for k in meta if str(k) in names.names]


def shadow_reason(key: str) -> str:
    return (
        f"front matter key '{key}' would replace the release data's or the macros' '{key}' "  # noqa: S608
        "for this page, so the page would show other values than releases.yaml; rename the key"
    )


def _where(env: Any, page: Any) -> tuple[str, int]:
    """The page as `docs/page.md`, and how many front matter lines precede its body."""
    path = Path(page.file.abs_src_path or page.file.src_path)
    try:
        label = path.relative_to(Path(env.project_dir)).as_posix()
    except ValueError:
        label = page.file.src_path
    source = page.markdown if page.markdown is not None else ""
    try:
        full = path.read_text(encoding="utf-8-sig")
    except OSError:
        return label, 0
    return label, full[: max(len(full) - len(source), 0)].count("\n")


def _front_matter_line(page: Any, key: str) -> int:
    try:
        lines = Path(page.file.abs_src_path).read_text(encoding="utf-8-sig").split("\n")
    except (OSError, TypeError):
        return 1
    pattern = re.compile(rf"^['\"]?{re.escape(key)}['\"]?\s*:")
    return next((i for i, line in enumerate(lines, 1) if pattern.match(line)), 1)


def template_line(exc: BaseException) -> int | None:
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


#: Attribute prefixes a page never reaches: Python internals, pydantic's machinery, class walks.
_NEVER = ("_", "model_", "mro")

#: The package whose own properties and methods pages may use on its objects.
_PROJECT = "betrace_dist."


def _defined_in_project(value: Any) -> bool:
    function = getattr(value, "__func__", value)
    return str(getattr(function, "__module__", None) or "").startswith(_PROJECT)


def is_data_attribute(obj: Any, attr: str, value: Any) -> bool:
    """Whether `obj.attr` is data a page may read, not machinery it could run.

    Pydantic models carry class methods that parse, unpickle or read files (`parse_raw`,
    `parse_file`, `construct`, `copy`, `json`, ...): every attribute that `BaseModel` itself has
    is refused on a model, whatever its prefix. On any object that is not a builtin value (str,
    list, dict...), a callable is allowed only if the project's package defines it.
    """
    if isinstance(obj, BaseModel) and hasattr(BaseModel, attr):
        return False
    if callable(value) and type(obj).__module__ != "builtins":
        return _defined_in_project(value)
    return True


class PageSandbox(ImmutableSandboxedEnvironment):
    """The environment pages render in: no Python internals, bounded sizes and time."""

    intercepted_binops = frozenset({"*", "+", "**", "%"})

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.template_class = GuardedTemplate
        self.label = "<page>"
        self.offset = 0
        self.failure: Failure | None = None

    def begin_page(self, label: str, offset: int) -> None:
        self.label, self.offset, self.failure = label, offset, None

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if isinstance(obj, type | types.ModuleType) or isinstance(value, type | types.ModuleType):
            return False
        return not attr.startswith(_NEVER) and is_data_attribute(obj, attr, value)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Undefined):  # `cycler.__init__`: say that `cycler` is undefined
            obj._fail_with_undefined_error()
        if isinstance(attribute, str) and attribute.startswith(_NEVER):
            return self.unsafe_undefined(obj, attribute)  # refused before Python looks it up
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Undefined):
            obj._fail_with_undefined_error()
        return super().getitem(obj, argument)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        return self.undefined(
            f"access to attribute {attribute!r} of a {type(obj).__name__!r} object is not "
            f"allowed: {HINT}",
            name=attribute,
            obj=obj,
            exc=limits.LimitError,
        )

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        limits.check_binop(operator, left, right)
        return limits.check_value(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any) -> Any:
        wrapper = super().wrap_str_format(value)
        if wrapper is not None:
            limits.check_format_string(value.__self__)
        return wrapper

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        for value in [*args, *kwargs.values()]:
            limits.check_value(value)
        args = limits.check_str_method(__obj, args)
        return limits.check_value(super().call(__context, __obj, *args, **kwargs))

    def from_string(self, source: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().from_string(source, *args, **kwargs)
        except TemplateSyntaxError as exc:
            self.record(exc)
            raise

    def record(self, exc: BaseException, reason: str | None = None) -> None:
        """Remember the failure for the gate, and log it with its page and line for mkdocs."""
        line = template_line(exc)
        reason = reason or f"macro error ({type(exc).__name__}): {exc}"
        self.failure = Failure(line, reason, exc)
        where = f"{self.label}:{line + self.offset}" if line else self.label
        LOG.error("%s: %s", where, reason)


class GuardedTemplate(Template):
    """A template whose rendering stops at the time limit and the output limit."""

    environment: PageSandbox

    def render(self, *args: Any, **kwargs: Any) -> str:
        env = self.environment
        try:
            with limits.Deadline(limits.TIME_LIMIT):
                return self._render(self.new_context(dict(*args, **kwargs)))
        except limits.RenderTimeout:
            error = _rewritten(env)
            reason = (
                f"rendering took longer than {limits.TIME_LIMIT:g} s and was stopped (render "
                "limit against pages that exhaust the machine: a loop that never ends?)"
            )
            timeout = limits.LimitError(reason).with_traceback(error.__traceback__)
            env.record(timeout, reason)
            raise timeout from None
        except Exception as exc:
            if env.failure is None or env.failure.error is not exc:
                env.record(exc)
            raise

    def _render(self, context: Context) -> str:
        env = self.environment
        out: list[str] = []
        size = 0
        chunks = self.root_render_func(context)
        try:
            for chunk in chunks:
                size += len(chunk)
                if size > limits.MAX_OUTPUT:
                    error = limits.LimitError(
                        f"the rendered page would exceed {limits.MAX_OUTPUT:,} characters "
                        "(render limit against pages that exhaust the machine)"
                    )
                    error.lineno = self._suspended_line(chunks)  # type: ignore[attr-defined]
                    raise error
                out.append(chunk)
        except Exception:
            env.handle_exception()
        return str(env.concat(out))

    def _suspended_line(self, chunks: Any) -> int | None:
        """Template line of the output statement the render generator stopped at."""
        frame = getattr(chunks, "gi_frame", None)
        inner = getattr(chunks, "gi_yieldfrom", None)
        while (inner_frame := getattr(inner, "gi_frame", None)) is not None:
            frame, inner = inner_frame, getattr(inner, "gi_yieldfrom", None)
        return self.get_corresponding_lineno(frame.f_lineno) if frame is not None else None


def _rewritten(env: PageSandbox) -> BaseException:
    """The exception being handled, with Jinja's template lines in its traceback."""
    try:
        env.handle_exception()
    except BaseException as exc:  # handle_exception re-raises what it was given
        return exc
    raise AssertionError("unreachable")
