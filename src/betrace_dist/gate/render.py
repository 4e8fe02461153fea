"""Pages as readers see them: rendered by the site's own macros plugin, then snippets inserted.

The gate never re-implements the macros: it loads mkdocs.yml, runs the plugins' `on_config` (so
`define_env` runs exactly as in `mkdocs build`), and hands each page to the same plugin instance.
Rendering changes line counts (front matter is removed, a macro may expand to a table, a snippet
to a whole file), so every rendered line is mapped back to the source line that produced it.
"""

from __future__ import annotations

import bisect
import contextlib
import difflib
import io
import logging
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
import markdown
import yaml
from mkdocs.config import load_config
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import Abort, ConfigurationError, PluginError
from mkdocs.structure.files import File
from mkdocs.structure.pages import Page
from mkdocs.utils.meta import YAML_RE  # mkdocs' own front matter pattern
from ruamel.yaml import YAML

from .. import yamlio
from ..errors import LineError, Problem, ProblemsError
from ..site import sandbox, snippets
from ..site.sandbox import shadow_reason


class RenderError(LineError):
    """A page could not be rendered; carries the source line and the reason."""


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
    line that held the macro or the snippet marker (the k-th produced line to the k-th line of
    a replaced run, the rest to its last line); lines inserted between two unchanged lines map
    to the line above.

    The alignment is a patience diff: common prefix and suffix first, then lines that occur
    once on each side as anchors, recursively; what is left between anchors is aligned by a
    shortest edit script (Myers), so a 1 MB page aligns in well under a second when its lines
    are mostly distinct, and in bounded time when they are not.
    """
    pairs = _alignment(source, rendered)
    out: list[int] = []
    prev_i = -1
    prev_j = -1
    for i, j in [*pairs, (len(source), len(rendered))]:
        gap = range(prev_i + 1, i)
        for k in range(j - prev_j - 1):
            if gap:
                out.append(gap[min(k, len(gap) - 1)] + 1)
            else:
                out.append(max(prev_i + 1, 1))
        if j < len(rendered):
            out.append(i + 1)
        prev_i, prev_j = i, j
    return tuple(out)


#: Work (cells of the edit graph) a gap without anchors may cost before a cheaper, greedy
#: alignment takes over; keeps pathological pages (thousands of identical lines) fast.
_MYERS_BUDGET = 2_000_000
#: How far the greedy alignment looks ahead for the next common line.
_GREEDY_WINDOW = 64


def _alignment(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """Pairs (i, j), increasing in both, of lines a[i] == b[j] kept by the rendering."""
    pairs: list[tuple[int, int]] = []
    stack = [(0, len(a), 0, len(b))]
    while stack:
        a0, a1, b0, b1 = stack.pop()
        while a0 < a1 and b0 < b1 and a[a0] == b[b0]:
            pairs.append((a0, b0))
            a0, b0 = a0 + 1, b0 + 1
        while a0 < a1 and b0 < b1 and a[a1 - 1] == b[b1 - 1]:
            a1, b1 = a1 - 1, b1 - 1
            pairs.append((a1, b1))
        if a0 == a1 or b0 == b1:
            continue
        anchors = _unique_anchors(a, b, a0, a1, b0, b1)
        if not anchors:
            pairs.extend(_edit_script(a, b, a0, a1, b0, b1))
            continue
        for i, j in anchors:
            pairs.append((i, j))
            stack.append((a0, i, b0, j))
            a0, b0 = i + 1, j + 1
        stack.append((a0, a1, b0, b1))
    pairs.sort()
    return pairs


def _unique_anchors(
    a: list[str], b: list[str], a0: int, a1: int, b0: int, b1: int
) -> list[tuple[int, int]]:
    """Lines found exactly once on each side, longest run that keeps their order."""
    seen: dict[str, list[int]] = {}
    for i in range(a0, a1):
        entry = seen.get(a[i])
        if entry is None:
            seen[a[i]] = [i, -1, 1]
        else:
            entry[2] += 1
    for j in range(b0, b1):
        entry = seen.get(b[j])
        if entry is not None and entry[2] == 1:
            entry[1] = j if entry[1] == -1 else -2
    candidates = sorted((e[0], e[1]) for e in seen.values() if e[2] == 1 and e[1] >= 0)
    return _longest_increasing(candidates)


def _longest_increasing(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The longest subsequence of pairs (sorted by i) whose j increase too (patience sort)."""
    if not pairs:
        return []
    tails: list[int] = []  # index into pairs of the smallest tail of each length
    back: list[int] = [-1] * len(pairs)
    for index, (_, j) in enumerate(pairs):
        lo, hi = 0, len(tails)
        while lo < hi:
            mid = (lo + hi) // 2
            if pairs[tails[mid]][1] < j:
                lo = mid + 1
            else:
                hi = mid
        back[index] = tails[lo - 1] if lo else -1
        if lo == len(tails):
            tails.append(index)
        else:
            tails[lo] = index
    out = []
    index = tails[-1]
    while index != -1:
        out.append(pairs[index])
        index = back[index]
    return out[::-1]


def _edit_script(
    a: list[str], b: list[str], a0: int, a1: int, b0: int, b1: int
) -> list[tuple[int, int]]:
    """Common lines of a shortest edit script (Myers), or a greedy alignment past the budget."""
    n, m = a1 - a0, b1 - b0
    max_d = min(n + m, _MYERS_BUDGET // (n + m))
    v = {1: 0}
    trace: list[dict[int, int]] = []
    for d in range(max_d + 1):
        trace.append(dict(v))
        for k in range(-d, d + 1, 2):
            down = k == -d or (k != d and v[k - 1] < v[k + 1])
            x = v[k + 1] if down else v[k - 1] + 1
            y = x - k
            while x < n and y < m and a[a0 + x] == b[b0 + y]:
                x, y = x + 1, y + 1
            v[k] = x
            if x >= n and y >= m:
                return _backtrack(trace, v, a0, b0, n, m, d)
    return _greedy(a, b, a0, a1, b0, b1)


def _backtrack(
    trace: list[dict[int, int]], v: dict[int, int], a0: int, b0: int, n: int, m: int, d: int
) -> list[tuple[int, int]]:
    pairs: list[tuple[int, int]] = []
    x, y = n, m
    trace = [*trace[1:], v]  # trace[d] is V after step d
    for step in range(d, 0, -1):
        before = trace[step - 1]
        k = x - y
        down = k == -step or (k != step and before[k - 1] < before[k + 1])
        prev_k = k + 1 if down else k - 1
        prev_x = before[prev_k]
        prev_y = prev_x - prev_k
        while x > prev_x and y > prev_y:
            x, y = x - 1, y - 1
            pairs.append((a0 + x, b0 + y))
        x, y = prev_x, prev_y
    while x > 0 and y > 0:
        x, y = x - 1, y - 1
        pairs.append((a0 + x, b0 + y))
    return pairs


def _greedy(
    a: list[str], b: list[str], a0: int, a1: int, b0: int, b1: int
) -> list[tuple[int, int]]:
    """Linear alignment: at a difference, resynchronise on the nearest common line ahead."""
    where: dict[str, list[int]] = {}
    for j in range(b0, b1):
        where.setdefault(b[j], []).append(j)
    pairs: list[tuple[int, int]] = []
    i, j = a0, b0
    while i < a1 and j < b1:
        if a[i] == b[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
            continue
        best: tuple[int, int, int] | None = None
        for di in range(min(_GREEDY_WINDOW, a1 - i)):
            positions = where.get(a[i + di], [])
            at = bisect.bisect_left(positions, j)
            if at < len(positions) and positions[at] - j < _GREEDY_WINDOW:
                cost = di + positions[at] - j
                if best is None or cost < best[0]:
                    best = (cost, i + di, positions[at])
        if best is None:
            i, j = i + 1, j + 1
        else:
            i, j = best[1], best[2]
    return pairs


def _not_utf8(raw: bytes, exc: UnicodeDecodeError) -> tuple[int, str]:
    """Line and reason for a page that is not UTF-8: where the first bad byte is."""
    line = raw.count(b"\n", 0, exc.start) + 1
    column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
    byte = raw[exc.start : exc.start + 1].hex()
    return line, (
        f"the page is not UTF-8 text: byte 0x{byte} at line {line}, column {column} "
        f"({exc.reason}); save the file as UTF-8"
    )


_FRONT_MATTER_KEY = re.compile(r"^[A-Za-z0-9_-]+:(\s|$)")


def _check_front_matter(source: str, reserved: frozenset[str] = frozenset()) -> None:
    """Refuse front matter mkdocs would silently show as page text instead of reading it, that
    expands through aliases, or that would shadow a name the release data or macros provide."""
    text = source.removeprefix("\ufeff")
    lines = text.split("\n")
    if not lines or lines[0].rstrip(" \t") != "---":
        return
    match = YAML_RE.match(text)
    if match is None:
        if len(lines) > 1 and _FRONT_MATTER_KEY.match(lines[1]):
            raise RenderError(
                1,
                "the front matter opened here with --- is never closed: end it with a line "
                "of --- (mkdocs would show it as page text)",
            )
        return
    try:
        root, bounds_problem, data = _front_matter_yaml(match[1])
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        context = getattr(exc, "context_mark", None)
        last = match[1].count("\n")  # front matter lines, after the opening ---
        if context is not None and (mark is None or mark.line >= last):
            mark = context  # "got '<stream end>'": point at what was left open instead
        line = min(mark.line, last - 1) + 2 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise RenderError(
            line,
            f"the front matter is not valid YAML ({problem}); mkdocs would show it as page "
            "text. Write it as key: value lines, quoting values that hold ': ', '[' or '{'",
        ) from None
    if bounds_problem is not None:
        raise RenderError(bounds_problem[0] + 2, f"the front matter {bounds_problem[1]}")
    if data is not None and not isinstance(data, dict):
        raise RenderError(
            2,
            f"the front matter is a {type(data).__name__}, not a mapping; mkdocs would show it "
            "as page text. Write it as key: value lines (title: My page)",
        )
    for key_node, _ in root.value if isinstance(root, yaml.MappingNode) else []:
        if str(key_node.value) in reserved:
            raise RenderError(key_node.start_mark.line + 2, shadow_reason(str(key_node.value)))


def _front_matter_yaml(text: str) -> tuple[Any, tuple[int, str] | None, Any]:
    """Front matter read as mkdocs reads it (PyYAML): its node tree, a bound it breaks, and
    its data (None when it breaks one). Deep nesting is refused: PyYAML's composer recurses
    into each nested node."""
    try:
        root = yaml.compose(text)
        bounds_problem = yamlio.bounds_problem(text, root)
        return root, bounds_problem, yaml.safe_load(text) if bounds_problem is None else None
    except RecursionError:
        raise RenderError(
            2, "the front matter nests too deeply to read as YAML: flatten it"
        ) from None


def _macro_hint(exc: BaseException, names: list[str]) -> str:
    """What was probably meant, for an undefined name or a template typed where none is."""
    if isinstance(exc, jinja2.UndefinedError):
        match = re.match(r"'([A-Za-z_][A-Za-z0-9_]*)' is undefined", str(exc))
        if match:
            close = difflib.get_close_matches(match[1], sorted(set(names)), n=1)
            if close:
                return f" (did you mean '{close[0]}'?)"
            return " (no such variable or macro: see the macros in src/betrace_dist/site)"
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return (
            "; if these braces are meant literally (a Helm or GitHub template), wrap them in "
            "{% raw %} ... {% endraw %}"
        )
    return ""


class Site:
    """One mkdocs site: its config, its macros plugin and its snippet preprocessor."""

    def __init__(self, config_file: Path) -> None:
        self.config_file = Path(config_file).resolve()
        self.root = self.config_file.parent

    @cached_property
    def _loaded(self) -> MkDocsConfig:
        os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
        errors = _Errors()
        logger = logging.getLogger("mkdocs")
        logger.addHandler(errors)
        try:
            return load_config(str(self.config_file))
        except (ConfigurationError, Abort) as exc:
            reasons = errors.messages or [str(exc)]
            raise ProblemsError([Problem(self.config_file, None, r) for r in reasons]) from None
        finally:
            logger.removeHandler(errors)

    @cached_property
    def config(self) -> MkDocsConfig:
        # The same `on_config` chain `mkdocs build` runs: define_env loads the release data here.
        return self._loaded.plugins.on_config(self._loaded)

    @cached_property
    def docs_dir(self) -> Path:
        """Read from mkdocs.yml without validating it, so pytest can collect before the full
        load (which reports configuration problems cleanly) runs."""
        try:
            raw = YAML(typ="safe").load(self.config_file.read_text(encoding="utf-8")) or {}
        except Exception:  # `!!python/name` tags and the like: use the default
            raw = {}
        return (
            self.root / str(raw.get("docs_dir", "docs") if isinstance(raw, dict) else "docs")
        ).resolve()

    @cached_property
    def macros(self) -> Any:
        plugin = self.config.plugins.get("macros")
        if plugin is None:
            raise ProblemsError(
                [Problem(self.config_file, None, "the macros plugin is not enabled")]
            )
        return plugin

    @cached_property
    def _snippets(self) -> Any | None:
        """One snippets preprocessor per site (it resets its state at every run)."""
        extensions = self.config["markdown_extensions"]
        if not any(snippets.is_snippets(e) for e in extensions):
            return None
        configs = {k: dict(v) for k, v in self.config["mdx_configs"].items()}
        snippet_cfg = configs.setdefault("pymdownx.snippets", {})
        # Relative base paths are relative to the site root, whatever the current directory.
        bases = snippet_cfg.get("base_path", ["."])
        bases = [bases] if isinstance(bases, str) else bases
        snippet_cfg["base_path"] = [str((self.root / b).resolve()) for b in bases]
        # the allow-listed snippets: only files of the folders the project names (snippets.py)
        md = markdown.Markdown(extensions=snippets.replace_in(["pymdownx.snippets"], configs))
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
            raise RenderError(*_not_utf8(path.read_bytes(), exc)) from None
        _check_front_matter(source, sandbox.provided(self.macros).names)
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
        # Lines are split on "\n" only, as the lexer and editors count them (str.splitlines
        # would also split on form feeds and U+2028 and shift every line after them).
        by_macros = map_lines(body.split("\n"), macro_text.split("\n"))
        by_snippets = map_lines(macro_text.split("\n"), text.split("\n"))
        line_map = tuple(
            by_macros[m - 1] + front_matter_lines if by_macros else 1 for m in by_snippets
        )
        return Rendered(source, text, line_map)

    def _render_macros(self, page: Page, body: str, offset: int) -> str:
        """Render through the plugin, as `mkdocs build` does; its sandbox records a failure."""
        plugin = self.macros
        with _quiet_logs():
            try:
                text = plugin.on_page_markdown(body, page=page, config=self.config, files=None)
            except SystemExit:
                text = None  # on_error_fail: mkdocs-macros logged the error and called exit()
            except PluginError as exc:
                raise RenderError(1 + offset, str(exc)) from None
            except Exception as exc:  # mkdocs-macros failed while reporting (a % in a message)
                text = None
                if plugin.env.failure is None:
                    raise RenderError(1 + offset, f"macro rendering failed: {exc}") from None
        env = plugin.env
        if not isinstance(env, sandbox.PageSandbox):
            raise RenderError(1 + offset, "the macros did not render in the page sandbox")
        if text is not None:
            return str(text)
        failure = env.failure
        if failure is None:
            raise RenderError(1 + offset, "macro rendering failed (see the mkdocs-macros log)")
        hint = _macro_hint(failure.error, sorted(sandbox.provided(plugin).names))
        raise RenderError((failure.line or 1) + offset, f"{failure.reason}{hint}")

    def _insert_snippets(self, text: str, source: str) -> str:
        preprocessor = self._snippets
        if preprocessor is None:
            return text
        lines = text.split("\n")
        try:
            return "\n".join(preprocessor.run(lines))
        except Exception as exc:
            target = str(exc).split("'")[1] if "'" in str(exc) else str(exc)
            line = next((i for i, s in enumerate(source.split("\n"), 1) if target in s), 1)
            raise RenderError(line, f"snippet could not be included: {exc}") from None


class _Errors(logging.Handler):
    """Collects the error messages mkdocs logs while it loads a config."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _quiet_logs():  # type: ignore[no-untyped-def]
    """mkdocs-macros chatters on the root logger; the gate reports errors itself."""
    # mkdocs-macros logs as "mkdocs.plugins.mkdocs_macros.util" (its module name).
    loggers = [
        logging.getLogger(n) for n in ("mkdocs.plugins.macros", "mkdocs.plugins.mkdocs_macros")
    ]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            yield
        finally:
            for logger, level in zip(loggers, previous, strict=True):
                logger.setLevel(level)
