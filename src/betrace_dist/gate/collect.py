"""Sybil integration: one pytest item per fenced block, failures reported as `page.md:LINE`."""

from __future__ import annotations

import bisect
import contextlib
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import pytest
from sybil import Document, Example, Region, Sybil
from sybil.example import SybilFailure

from ..errors import ProblemsError
from ..release import RELEASES_FILE
from ..site import active_content, limits
from ..site.limits import LimitError
from . import claims, display, profile, result_cache, typed
from .checkers import Checker, CheckFailure, Context, PageResource
from .checkers.table import registry
from .commands import flags
from .display import Shown
from .escape import as_data
from .ledger import Entry, entry_for, relative
from .lexer import Block, LexError, blocks
from .live import LiveTier
from .render import Rendered, RenderError, Site
from .repo_links import RepoLinks
from .run import run_of
from .session import FILE_COMMANDS, clone_files, page_path
from .update import Updates

#: Processor seconds the gate may spend reading one page (rendering, finding its blocks, what
#: readers see, its links and claims) and checking one block (the commands a block runs are not
#: counted: they are other processes, each with its own time limit). Measured with
#: benchmarks/bench_budgets.py: the largest real page and block use a small fraction of either.
ANALYSIS_SECONDS = 60.0
BLOCK_SECONDS = 60.0

#: mkdocs' own front matter pattern (mkdocs.utils.meta.YAML_RE)
_FRONT_MATTER = re.compile(r"^-{3}[ \t]*\n(.*?\n)(?:\.{3}|-{3})[ \t]*\n", re.DOTALL)


#: Characters of failure text the report shows in full, for one page and for a whole run.
PAGE_REPORT_LIMIT = 256 * 1024
RUN_REPORT_LIMIT = 4 * 1024 * 1024


class GateFailure(SybilFailure):
    """A block that does not hold: the message starts with `page.md:LINE:`."""

    def __init__(self, example: Example, message: str) -> None:
        message = as_data(message)  # page output in it is data (escape.py)
        super().__init__(example, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass
class PageResult:
    """A page as the gate sees it: its blocks and ledger entries, or why it could not be read."""

    path: Path
    rendered: Rendered | None
    items: list[tuple[Block, Entry, Checker | None]]
    error: tuple[int, str] | None = None
    #: what is wrong with the page outside its blocks: (rendered line, source line, reason) of
    #: code readers see that no checker claims, and of links to nothing
    problems: list[tuple[int, int, str]] = field(default_factory=list)


class Gate:
    def __init__(
        self,
        config_file: Path,
        patterns: tuple[str, ...] = ("*.md",),
        live_tier: LiveTier | None = None,
    ) -> None:
        self.site = Site(config_file)
        self.patterns = patterns
        #: the run's live tier and output queue: off until `prepare` is given pytest's config
        #: (run.py), unless the caller passes a live tier (the site build's page notes)
        self.live = live_tier or LiveTier()
        self.updates: Updates | None = None
        self.checkers = registry(self.live.program is not None)
        self._page_ids: dict[Path, set[str] | None] = {}
        #: passed pages kept for warm runs (result_cache.py); off until `prepare` is given a folder
        self.results = result_cache.ResultCache(None)
        #: why the cache is off, for the run's summary (None while it is on)
        self.cache_off: str | None = "not prepared"
        self.pages_seen = 0  # pages pytest collected from this gate
        self._reported = 0  # characters of failure text this run reported (_failure)
        self._settings_files: list[Path] = []
        self._warnings: list[str] = []
        self._runs: dict[Path, _PageRun] = {}  # page file -> its run, for failed reports
        profile.install()  # opt-in timing: only when BETRACE_GATE_PROFILE names a file

    # -- reading pages ---------------------------------------------------------------------
    def page_name(self, path: Path) -> str:
        return relative(path, self.site.root)

    def analyse(self, path: Path, html: str | None = None, problems: bool = True) -> PageResult:
        """A page as the gate reads it. `html`: the page as mkdocs converted it, when a build
        asks (what readers are shown is read from it, not converted again); `problems=False`:
        the blocks only, without the page's problems outside them (links, claims).

        The whole reading has one bound, ANALYSIS_SECONDS of the gate's processor time: a slow
        path in it that nobody has found yet fails the page instead of holding a worker."""
        path = Path(path)
        try:
            with limits.ProcessorBudget(ANALYSIS_SECONDS):
                return self._analyse(path, html, problems)
        except limits.OutOfProcessorTime:
            reason = _out_of_time("reading the page", ANALYSIS_SECONDS)
            return PageResult(path, None, [], (1, reason))
        except RecursionError:  # a parser of ours or of a library, on deep nesting
            reason = (
                "the page nests something (lists, admonitions, front matter, brackets) too "
                "deeply for the gate to read it: flatten it"
            )
            return PageResult(path, None, [], (1, reason))

    def _analyse(self, path: Path, html: str | None, problems: bool) -> PageResult:
        name = self.page_name(path)
        overrides = self._overrides(path)
        if overrides is not None:
            return PageResult(path, None, [], overrides)
        try:
            rendered = self.site.render(path)
        except RenderError as exc:
            return PageResult(path, None, [], (exc.line, exc.reason))
        try:
            found = blocks(rendered.text)
        except LexError as exc:
            return PageResult(path, rendered, [], (rendered.source_line(exc.line), exc.reason))
        try:
            shown = self.displayed(rendered.text) if html is None else display.shown_in_html(html)
        except LimitError as exc:  # too large, or too slow to turn into HTML: a page's failure
            return PageResult(path, rendered, [], (1, str(exc)))
        self._page_ids.setdefault(path.resolve(), shown.ids)
        invisible = display.hidden(rendered.text, found, shown, rendered.source_line)
        items: list[tuple[Block, Entry, Checker | None]] = []
        for index, block in enumerate(found):
            line = rendered.source_line(block.line)
            if index in invisible:  # never run what readers do not see
                entry = Entry(
                    name, line, block.language or "-", "-", "error", invisible[index].reason
                )
                items.append((block, entry, None))
                continue
            entry, checker = entry_for(name, line, block, self.checkers)
            items.append((block, entry, checker))
        if not problems:
            return PageResult(path, rendered, items)
        found_problems = display.unchecked(rendered.text, found, shown)
        found_problems += display.active_problems(rendered.text, shown)
        found_problems += display.stray_headings(rendered.text, found)
        found_problems += display.link_problems(
            rendered.text,
            path.resolve(),
            self.site.docs_dir,
            shown,
            self._ids,
            self.repo_links.problem,
        )
        made = frozenset(str(b.attrs["title"]) for b in found if b.attrs.get("title"))
        found_problems += display.span_problems(
            rendered.text, shown, partial(self.repo_links.named_path_problem, made=made)
        )
        found_problems += display.span_problems(
            rendered.text, shown, partial(typed.chart_key_problem, data=self.release_data)
        )
        found_problems += claims.problems(rendered.text, found, self.release_data.current)
        found_problems += claims.unstated_issues(
            rendered.text, relative(path, self.site.docs_dir), self.release_data.current
        )
        about_the_gate = relative(path, self.site.docs_dir).startswith("contributing/")
        found_problems += typed.problems(rendered.text, self.release_data, about_the_gate)
        located = [(p.line, rendered.source_line(p.line), p.reason) for p in found_problems]
        return PageResult(path, rendered, items, problems=sorted(located))

    def _overrides(self, path: Path) -> tuple[int, str] | None:
        """A front matter key that would replace a macro variable or macro on this page.

        mkdocs-macros renders a page with its front matter merged over the site's variables, so
        `release:` in front matter would silently replace the release data the page shows."""
        try:
            source = path.read_text(encoding="utf-8").removeprefix("\ufeff")
        except (OSError, UnicodeDecodeError):
            return None  # the renderer reports it with its line
        match = _FRONT_MATTER.match(source)
        if match is None:
            return None
        markup = active_content.front_matter_markup(source)
        if markup is not None:
            return markup
        plugin = self.site.macros
        for number, line in enumerate(match[1].split("\n"), 2):
            key = line.split(":", 1)[0].strip().strip("'\"") if ":" in line else ""
            if not key or line[:1] in (" ", "\t", "#", "-"):
                continue
            kind = (
                "macro variable"
                if key in plugin.variables
                else "macro"
                if key in plugin.macros or key in plugin.filters
                else None
            )
            if kind is not None:
                return number, (
                    f"the front matter sets '{key}', a {kind} of the site: on this page it "
                    f"would replace what the release data gives '{key}'; rename the key"
                )
        return None

    @cached_property
    def repo_links(self) -> RepoLinks:
        """Links into the distribution (the site's checkout) and upstream (the snapshot)."""
        return RepoLinks(self.release_data, self.site.root)

    @cached_property
    def display(self) -> display.Renderer:
        """Python-Markdown configured as the site's: what readers are shown."""
        return display.Renderer(self.site.config)

    def displayed(self, text: str) -> Shown:
        """What readers are shown of a rendered page; kept by the result cache, keyed on the
        text, the site configuration and the gate's code (converting is most of a warm run)."""
        if not self.results.enabled:
            return self.display.displayed_page(text)
        config = result_cache.file_digest(self.site.config_file) or "-"
        key = result_cache.digest(f"{result_cache.code_digest()} {config}\n{text}".encode())
        kept = self.results.load("displayed", key)
        if isinstance(kept, dict):
            with contextlib.suppress(KeyError, TypeError, ValueError):
                found = (list(kept["code"]), set(kept["ids"]), list(kept["links"]))
                return Shown(*found, list(kept["inline"]))
        shown = self.display.displayed_page(text)
        as_json = {"code": shown.code, "ids": sorted(shown.ids), "links": shown.links}
        as_json["inline"] = shown.inline
        self.results.keep("displayed", key, as_json)
        return shown

    def _ids(self, path: Path) -> set[str] | None:
        """Ids (heading anchors included) of another page of the site, None if unreadable."""
        if path not in self._page_ids:
            try:
                self._page_ids[path] = self.displayed(self.site.render(path).text).ids
            except (RenderError, LimitError):
                self._page_ids[path] = None
        return self._page_ids[path]

    def pages(self) -> list[Path]:
        docs = self.site.docs_dir
        return sorted({p for pattern in self.patterns for p in docs.rglob(pattern)})

    def ledger(self) -> list[Entry]:
        """Static ledger of the whole site (nothing is run)."""
        entries: list[Entry] = []
        for path in self.pages():
            result = self.analyse(path)
            if result.error:
                line, reason = result.error
                entries.append(Entry(self.page_name(path), line, "-", "-", "error", reason))
            page = [entry for _, entry, _ in result.items]
            page += [
                Entry(self.page_name(path), line, "-", "-", "error", reason)
                for _, line, reason in result.problems
            ]
            entries.extend(sorted(page, key=lambda e: e.line))
        return entries

    @property
    def release_data(self) -> Any:
        """The release data the site's macros loaded (extra.release_data, or releases.yaml)."""
        return self.site.macros.variables["releases"]

    def prepare(self, config: pytest.Config | None = None) -> None:
        """Load the site (and with it the release data); stop pytest with the problems if any.
        With pytest's `config`, the gate joins that config's run (run.py): its live tier, its
        output queue, its report; and the result cache is set up (or the reason it is off kept)."""
        if config is not None:
            run = run_of(config)
            run.gates.append(self)
            self.live, self.updates = run.live, run.updates
            self.checkers = registry(self.live.program is not None)
        folder, self.cache_off = _cache_folder(config, self.live)
        self.results = result_cache.ResultCache(folder)
        if config is not None:  # pytest's settings and warning filters decide outcomes too
            self._settings_files = [config.inipath] if config.inipath else []
            self._warnings = list(config.getoption("pythonwarnings", None) or [])
        if folder is not None and flags.HELP_STORE is None:  # help texts kept with the results
            flags.HELP_STORE = folder / "help"
        try:
            self.site.config  # noqa: B018 - loading runs the macros' define_env
        except ProblemsError as exc:
            raise pytest.UsageError(f"the site cannot be loaded:\n{exc}") from None
        except SystemExit as exc:  # define_env stops mkdocs with SystemExit(message)
            raise pytest.UsageError(str(exc.code)) from None

    # -- the result cache ----------------------------------------------------------------------
    def page_key(self, result: PageResult) -> result_cache.PageKey | None:
        """What a page's outcome depends on (result_cache.py); None for a page that cannot pass."""
        if result.rendered is None or result.error or result.problems:
            return None
        parts = self._shared_parts()
        if parts is None:
            return None
        parts["page"] = result_cache.digest(result.rendered.text.encode())
        return result_cache.PageKey(self.page_name(result.path), parts)

    def _shared_parts(self) -> dict[str, str] | None:
        """The parts of the key every page shares (None: not a git checkout, no cache)."""
        files = clone_files()
        if files is None:
            return None
        named = (self.site.config.get("extra") or {}).get("release_data")
        release = [self.site.config_file, RELEASES_FILE, *self._settings_files]
        release += [self.site.root / str(named)] if named else []
        programs = tuple(sorted(FILE_COMMANDS | {"bash", "sh", "env"}))
        return {
            "code": result_cache.code_digest(self.site.docs_dir / "conftest.py"),
            "tools": result_cache.tools_digest(page_path(), programs),
            "settings": result_cache.settings_digest(os.environ, self._warnings),
            "release": result_cache.files_digest(release),
            "tree": result_cache.manifest_digest(self.results.checkout, files),
        }

    def still_as_collected(self, key: result_cache.PageKey) -> bool:
        """Whether the inputs every page shares are as when the page was looked up (an edit
        during the run, even one undone, must not be stored as a pass of the old inputs)."""
        result_cache.code_digest.cache_clear()
        result_cache.tools_digest.cache_clear()
        now = self._shared_parts()
        return now is not None and all(key.parts.get(k) == v for k, v in now.items())

    def failed(self, path: Path) -> None:
        """A report of this page failed (any phase, any cause): keep nothing of it."""
        run = self._runs.get(Path(path).resolve())
        if run is not None:
            run.failed = True
            self.results.forget(run.key.page)

    # -- pytest ----------------------------------------------------------------------------
    def sybil(self) -> Sybil:
        """Sybil as Sybil: a document type whose text is the page as readers see it (as
        Sybil's own PythonDocStringDocument reads only a module's docstrings), and one parser
        per kind of region: the page's problems, then the blocks of each checker, then the
        unclaimed ones. Sybil parses and evaluates; the gate adds no step of its own."""
        document = type("SiteDocument", (PageDocument,), {"gate": self})
        return GateSybil(
            parsers=[
                ProblemParser(self),
                *(BlockParser(self, checker) for checker in self.checkers),
                BlockParser(self, None),
            ],
            patterns=list(self.patterns),
            path=str(self.site.docs_dir),
            fixtures=["request"],
            teardown=_close_session,
            document_types={".md": document},
            # Sybil reads the file before it makes the document, whose text is the rendered page
            # instead (PageDocument): latin-1 decodes any byte, so a page that is not UTF-8 reaches
            # the gate's own reading, which names its line and byte (never a UnicodeDecodeError)
            encoding="latin-1",
        )

    @cached_property
    def collect(self) -> Callable[[Path, Any], Any]:
        """pytest's collector of this site's pages (Sybil's pytest integration)."""
        return self.sybil().pytest()

    def _evaluator(
        self,
        path: Path,
        rendered: Rendered,
        block: Block,
        entry: Entry,
        checker: Checker | None,
        siblings: tuple[Block, ...] = (),
    ) -> Callable[[Example], None]:
        name = entry.page

        def evaluate(example: Example) -> None:
            if entry.status == "skipped":
                return None
            if entry.status == "error":
                raise self._failure(example, f"{name}:{entry.line}: {entry.reason}")
            if checker is None:
                raise self._failure(
                    example,
                    f"{name}:{entry.line}: {entry.reason}: every block needs a checker, or a "
                    f"skip with its reason on the line above: <!-- gate: skip: <why> -->",
                )
            ctx = Context(
                page=path,
                site_root=self.site.root,
                request=example.namespace.get("request"),
                state=example.namespace,
                release=self.release_data,
                tab=block.tab,
                source_line=lambda n: rendered.source_line(block.first_body_line + n - 1),
                before=rendered.text[: block.start],
                live=self.live,
                updates=self.updates,
                siblings=siblings,
            )
            try:
                _check(checker, block, ctx, name, entry.line)
            except _Failed as failed:
                line = entry.line
                if failed.body_line is not None and failed.body_line <= block.body.count("\n") + 1:
                    line = rendered.source_line(block.first_body_line + failed.body_line - 1)
                raise self._failure(
                    example, f"{name}:{line}: {checker.name} block ({block.language}): {failed}"
                ) from None
            return None

        return evaluate

    def _failure(self, example: Example, message: str) -> GateFailure:
        """A block's failure, its text within the report's budget: past PAGE_REPORT_LIMIT
        characters of failures on one page, or RUN_REPORT_LIMIT in the run, a failure keeps its
        first line only (a page of thousands of failing blocks made a report of gigabytes)."""
        spent = example.namespace.get("gate report", 0)
        if spent > PAGE_REPORT_LIMIT or self._reported > RUN_REPORT_LIMIT:
            first = message.split("\n", 1)[0][:300]
            message = f"{first} [the rest is left out: the report's failures passed its limit]"
        example.namespace["gate report"] = spent + len(message)
        self._reported += len(message)
        return GateFailure(example, message)


class _Failed(Exception):
    """Why a block failed (the reason), and the line of its body it names, if any."""

    def __init__(self, reason: str, body_line: int | None = None) -> None:
        super().__init__(reason)
        self.body_line = body_line


def _check(checker: Checker, block: Block, ctx: Context, page: str, line: int) -> None:
    """`checker` on `block` under the block's budget; every way it fails raises _Failed."""
    try:
        with limits.ProcessorBudget(BLOCK_SECONDS):
            if profile.ACTIVE:  # opt-in timing (BETRACE_GATE_PROFILE), see profile.py
                with profile.block(page, line, checker.name, block.language):
                    checker.check(block, ctx)
            else:
                checker.check(block, ctx)
    except limits.OutOfProcessorTime:
        raise _Failed(_out_of_time("checking the block", BLOCK_SECONDS)) from None
    except CheckFailure as exc:
        raise _Failed(exc.reason, exc.body_line) from None
    except Exception as exc:  # the gate's own error: the block fails, the run goes on
        raise _Failed(
            f"the gate could not check it ({type(exc).__name__}: {str(exc)[:300]})"
        ) from None


def site_hooks(config_file: Path) -> tuple[Callable[..., None], Callable[..., Any]]:
    """The two hooks of a site's conftest: `pytest_configure` makes the site's gate for the
    run (kept by the run, run.py, never by the conftest module), `pytest_collect_file` has
    that gate collect the pages."""
    site = Path(config_file).resolve()

    def pytest_configure(config: pytest.Config) -> None:
        Gate(site).prepare(config)

    def pytest_collect_file(file_path: Path, parent: Any) -> Any:
        refuse_unsafe_name(file_path)
        gates = run_of(parent.config).gates
        gate = next(g for g in gates if g.site.config_file == site)
        return gate.collect(file_path, parent)

    return pytest_configure, pytest_collect_file


class PageDocument(Document):
    """Sybil's document of one page: its text is the page rendered as readers see it (the
    blocks' regions are offsets in that text), its result what the gate read of it. A page the
    result cache reuses gets a document-wide evaluator first (Sybil's `push_evaluator`, as
    Sybil's PythonDocument imports its module): its blocks pass without running."""

    gate: Gate  # the site's gate, set on the subclass Gate.sybil() makes

    def __init__(self, text: str, path: str) -> None:
        self.result = self.gate.analyse(Path(path))
        self.gate.pages_seen += 1
        super().__init__(self.result.rendered.text if self.result.rendered else "", path)
        gate = self.gate
        key = gate.page_key(self.result) if gate.results.enabled else None
        if key is None:
            return
        found = gate.results.lookup(key)
        run = _PageRun(gate, key, found, self)
        self.namespace["gate cache"] = gate._runs[Path(path).resolve()] = run
        if found.hit:
            self.push_evaluator(_reuse)

    def examples(self) -> Iterator[Example]:
        for example, (_, region) in zip(super().examples(), self.regions, strict=True):
            example.line = region.parsed.line  # the SOURCE line of the block
            yield example


class ProblemParser:
    """The regions of what is wrong with the page itself: it cannot be rendered or read (one
    failing region), or a statement it makes is false (one failing region per problem, placed
    after the block it is in: regions may not overlap; the report names the problem's line)."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    def __call__(self, document: Document) -> Iterator[Region]:
        assert isinstance(document, PageDocument), "the gate's parsers read rendered pages"
        result = document.result
        name = self.gate.page_name(result.path)
        if result.error:
            line, reason = result.error
            entry = Entry(name, line, "-", "-", "error", reason)
            yield Region(0, 0, entry, _fail(f"{name}:{line}: {reason}"))
            return
        assert result.rendered is not None
        offsets = _line_offsets(result.rendered.text)
        taken = {block.start for block, _, _ in result.items}
        spans = sorted((block.start, block.end) for block, _, _ in result.items)
        starts = [begin for begin, _ in spans]
        following: dict[int, int] = {}  # a start already given out -> where to look on from
        for rendered_line, line, reason in result.problems:
            start = offsets[rendered_line - 1]
            inside = bisect.bisect_right(starts, start) - 1  # blocks do not overlap
            if inside >= 0 and start < spans[inside][1]:
                start = spans[inside][1]
            wanted, start = start, following.get(start, start)
            while start in taken:  # two problems on one line: regions must not share a start
                start += 1
            taken.add(start)
            following[wanted] = start + 1
            entry = Entry(name, line, "-", "-", "error", reason)
            yield Region(start, start, entry, _fail(f"{name}:{line}: {reason}"))


class BlockParser:
    """The regions of one kind of block: those one checker claims (None: those no checker
    claims, which fail saying so), each evaluated by the checker."""

    def __init__(self, gate: Gate, checker: Checker | None) -> None:
        self.gate = gate
        self.checker = checker

    def __call__(self, document: Document) -> Iterator[Region]:
        assert isinstance(document, PageDocument), "the gate's parsers read rendered pages"
        result = document.result
        if result.error or result.rendered is None:
            return
        mine = [(b, e) for b, e, c in result.items if c is self.checker]
        siblings = tuple(b for b, e in mine if e.status not in ("skipped", "error"))
        for block, entry in mine:
            evaluate = self.gate._evaluator(
                result.path, result.rendered, block, entry, self.checker, siblings
            )
            yield Region(block.start, block.end, entry, _counted(evaluate, self.gate.live))


@dataclass
class _PageRun:
    """One page's run, for the result cache: stored when every block ran and passed."""

    gate: Gate
    key: result_cache.PageKey
    found: result_cache.Lookup
    document: Document
    ran: int = 0
    failed: bool = False

    @property
    def blocks(self) -> int:
        return len(self.document.regions)


def _reuse(example: Example) -> None:
    """A block of a page whose inputs are all as when it last passed (result_cache.py): it
    passes without running (the evaluator every block of a reused page gets first)."""
    _note(example, "reused")


def _note(example: Example, outcome: str) -> None:
    request = example.namespace.get("request")
    run = example.namespace.get("gate cache")
    if request is not None and run is not None:
        why = "" if outcome == "reused" else run.found.why
        request.node.user_properties.append(("betrace-gate-cache", (outcome, why)))


def _live_reported(example: Example, evaluate: Callable[[Example], None], tier: LiveTier) -> None:
    """Run the block; each command it sent to the live backend travels with the block's report
    (as a user property), so the run's closing list holds the commands of every xdist worker."""
    before = len(tier.ran)
    try:
        evaluate(example)
    finally:
        request = example.namespace.get("request")
        if request is not None:
            for line in tier.summary(before):
                request.node.user_properties.append(("betrace-live", line))


def _counted(evaluate: Callable[[Example], None], tier: LiveTier) -> Callable[[Example], None]:
    def run(example: Example) -> None:
        page = example.namespace.get("gate cache")
        if page is None:
            return _live_reported(example, evaluate, tier)
        _note(example, "ran")
        try:
            _live_reported(example, evaluate, tier)
        except BaseException:  # a failure, and a skip at run time (pytest.skip) too
            page.failed = True
            raise
        finally:
            page.ran += 1
        return None

    return run


def _cache_folder(config: pytest.Config | None, tier: LiveTier) -> tuple[Path | None, str | None]:
    """Where passed pages are kept, or why they are not (result_cache.py)."""
    if config is None:
        return None, "the gate was not started by pytest"
    if config.getoption("--no-cache", default=False):
        return None, "--no-cache"
    if os.environ.get("CI"):
        return None, "CI runs every page (the CI environment variable is set)"
    if config.getoption("--update-outputs", default=False):
        return None, "--update-outputs runs every page"
    if tier.program is not None:
        return None, "the live tier runs every page (--no-live turns it off)"
    store = getattr(config, "cache", None)
    if store is None:
        return None, "pytest's cache is off (-p no:cacheprovider)"
    return Path(store.mkdir("betrace-gate")), None


def _close_session(namespace: dict[str, Any]) -> None:
    run: _PageRun | None = namespace.pop("gate cache", None)
    session = namespace.get("session")
    complete = run is not None and run.ran == run.blocks and not run.failed
    if run is not None and complete and not run.found.hit and run.gate.still_as_collected(run.key):
        run.key.reads = session.reads() if session is not None else {}
        run.gate.results.store(run.key)
    for value in list(namespace.values()):
        if isinstance(value, PageResource):  # a checker's own, for the page's blocks
            value.close()
    session = namespace.pop("session", None)
    if session is not None:
        with profile.phase("sandbox removal"):  # a no-op unless profiling
            session.close()


def _line_offsets(text: str) -> list[int]:
    offsets = [0]
    for line in text.split("\n"):
        offsets.append(offsets[-1] + len(line) + 1)
    return offsets


def _out_of_time(what: str, seconds: float) -> str:
    return (
        f"{what} used more than {seconds:g} s of the gate's processor time and was stopped "
        "(a bound against pages that hold the gate: what on the page makes it so slow?)"
    )


def _fail(message: str) -> Callable[[Example], None]:
    def evaluate(example: Example) -> None:
        raise GateFailure(example, message)

    return evaluate


class GateSybil(Sybil):
    def identify(self, example: Example) -> str:
        entry: Entry = example.region.parsed
        number = _numbers_on_lines(example.document)[example.region.start]
        suffix = f"#{number}" if number > 1 else ""
        return f"line:{entry.line}{suffix},{_UNSAFE_IN_ID.sub('?', entry.language)}"


def _numbers_on_lines(document: Document) -> dict[int, int]:
    """Each region's number among the regions of its source line (1 for the first), by start;
    counted once per document (once per example, it grew with the square of a page's
    problems: 10,000 links to nothing on one line took minutes to collect)."""
    numbers: dict[int, int] | None = getattr(document, "numbers_on_lines", None)
    if numbers is None:
        seen: Counter[int] = Counter()
        numbers = {}
        for region in sorted((r for _, r in document.regions), key=lambda r: r.start):
            seen[region.parsed.line] += 1
            numbers[region.start] = seen[region.parsed.line]
        document.numbers_on_lines = numbers  # type: ignore[attr-defined]
    return numbers


#: Characters a test id may not hold: ids reach terminals and CI logs raw (pytest prints them).
_UNSAFE_IN_ID = re.compile(r"[^A-Za-z0-9_.+-]")


def refuse_unsafe_name(path: Path) -> None:
    """Refuse a page whose path holds control characters (escape sequences, newlines that
    could start a CI workflow command): pytest would print it raw in ids and summaries."""
    text = str(path)
    if "\n" in text or "\t" in text or as_data(text) != text:
        raise pytest.UsageError(
            f"{as_data(repr(text))}: a page's path may not hold control characters, escape "
            "sequences or line breaks; rename the file"
        )
