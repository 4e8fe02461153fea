"""Rule examples: a YAML block titled `Rule: ...` or `Mistake: ...`, held against the real backend.

    ```yaml title="Rule: a large payment has a fraud check"
    rule:
      name: large-payment-needs-fraud-check
      expression: when { payment.where(amount > 1000) } always { fraud_check }
    breaks:                 # traces that must produce a violation, each a list of spans
      - - {name: payment, attributes: {amount: "1500"}}
    keeps:                  # traces that must not
      - - {name: payment, attributes: {amount: "1500"}}
        - {name: fraud_check}
    ```

`rule` is the body of POST /v1/rules (`enabled` defaults to true). A span is a `name` and
string `attributes`; the checker gives each trace its own id and each span an id and times.
A `Mistake:` block has `rule` and `refused`: a piece of the message the backend answers.

The checker posts the rule to a throwaway backend (betrace_dist.rules.engine), then the spans,
waits for their evaluation and reads the violations. Every block gets a backend of its own; a
page's blocks are sent to theirs side by side (_PageRuns), PARALLEL_RUNS at a time. The page
fails at the line of the expression when a rule does not compile or a mistake does, and at the
line of a trace whose documented outcome did not happen.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ... import tools, yamlio
from ...errors import ProblemsError
from ...rules import engine
from .. import isolation
from ..lexer import Block
from . import CheckFailure, Context, PageResource, Status

TITLE = re.compile(r"^(?P<kind>Rule|Mistake):\s*\S")
KEYS = {"Rule": {"rule", "breaks", "keeps"}, "Mistake": {"rule", "refused"}}
BASE_TIME = 1767225600000000000
#: backends one page runs at once (each a Python process and a backend of a few MB)
PARALLEL_RUNS = 4
#: where a page's runs are kept in its blocks' shared state (closed with the page)
RUNS_KEY = "rule runs"


def kind(block: Block) -> str | None:
    found = TITLE.match(block.title or "")
    return found.group("kind") if found and block.language in ("yaml", "yml") else None


def _line(node: Any, key: Any) -> int:
    try:
        if isinstance(node, CommentedMap):
            return int(node.lc.value(key)[0]) + 1
        return int(node.lc.item(key)[0]) + 1
    except (AttributeError, KeyError, IndexError, TypeError):
        return 1


def _read(block: Block, what: str) -> CommentedMap:
    try:
        root = yamlio.parse_with_lines(block.body, "block")
    except ProblemsError as exc:
        problem = exc.problems[0]
        raise CheckFailure(f"invalid YAML: {problem.message}", problem.line) from None
    if not isinstance(root, CommentedMap):
        raise CheckFailure(f"a {what} block is a mapping with {sorted(KEYS[what])}", 1)
    for key in root:
        if key not in KEYS[what]:
            raise CheckFailure(
                f"unknown key '{key}' (known: {sorted(KEYS[what])})", _line(root, key)
            )
    rule = root.get("rule")
    if not isinstance(rule, CommentedMap) or not {"name", "expression"} <= set(rule):
        raise CheckFailure("'rule' needs a name and an expression", 1)
    return root


def _traces(
    root: CommentedMap, key: str, prefix: str
) -> list[tuple[int, str, list[dict[str, Any]]]]:
    """(line, trace id, spans) of each trace listed under `key`."""
    if key not in root:
        return []
    listed = root[key]
    if not isinstance(listed, CommentedSeq):
        raise CheckFailure(f"'{key}' is a list of traces", _line(root, key))
    out = []
    for i, trace in enumerate(listed):
        line = _line(listed, i)
        if not isinstance(trace, list) or not trace:
            raise CheckFailure(f"'{key}': a trace is a non-empty list of spans", line)
        # the key first: the outcome is read from it, and the prefix holds the page's name
        trace_id = f"{key}-{prefix}-{i + 1}"
        out.append((line, trace_id, [_span(s, trace_id, j, line) for j, s in enumerate(trace)]))
    return out


def _span(span: Any, trace_id: str, index: int, line: int) -> dict[str, Any]:
    if not isinstance(span, dict) or not isinstance(span.get("name"), str):
        raise CheckFailure("a span is a mapping with a 'name'", line)
    attributes = span.get("attributes") or {}
    if not all(isinstance(v, str) for v in attributes.values()):
        raise CheckFailure("span attributes are strings (the backend's spans carry strings)", line)
    start = BASE_TIME + index * 10_000_000
    out = {
        "traceId": trace_id,
        "spanId": f"{trace_id}-s{index + 1}",
        "name": span["name"],
        "startTime": str(start),
        "endTime": str(start + 5_000_000),
        "attributes": dict(attributes),
    }
    if index:
        out["parentSpanId"] = f"{trace_id}-s1"
    return out


class RuleChecker:
    name: ClassVar[str] = "betrace-rule"
    status: ClassVar[Status] = "run"
    languages: ClassVar[frozenset[str]] = frozenset()

    def claims(self, block: Block) -> bool:
        return kind(block) is not None

    def check(self, block: Block, ctx: Context) -> None:
        example = _Example.read(block, ctx)
        result = _runs(block, example, ctx).result(block, example)
        answer = result["rules"][0]
        compiled = answer["status"] // 100 == 2
        if example.what == "Mistake":
            _mistake(example.root, compiled, answer, example.expression_line)
            return
        if not compiled:
            reason = f"the backend refused this rule ({answer['status']}): {answer['message']}"
            raise CheckFailure(reason, example.expression_line)
        _outcomes(result, example.name, example.traces)


@dataclass
class _Example:
    """A rule block as read: what it is, and the request its fresh backend is sent."""

    what: str
    root: CommentedMap
    name: str
    expression_line: int
    traces: list[tuple[int, str, list[dict[str, Any]]]]
    request: dict[str, Any]

    @classmethod
    def read(cls, block: Block, ctx: Context) -> _Example:
        what = kind(block) or "Rule"
        root = _read(block, what)
        body: dict[str, Any] = {"enabled": True, **dict(root["rule"])}
        prefix = f"{ctx.page.stem}-{block.line}"
        traces = []
        if what == "Rule":
            traces = _traces(root, "breaks", prefix) + _traces(root, "keeps", prefix)
            if not traces:
                raise CheckFailure("a Rule block lists traces under 'breaks' or 'keeps'", 1)
        request = {"rules": [body], "traces": [spans for _, _, spans in traces]}
        expression_line = _line(root["rule"], "expression")
        return cls(what, root, str(body["name"]), expression_line, traces, request)


def run_bounds() -> list[str]:
    """A run evaluates the page's rules and spans outside the page's jail (the backend binds
    every interface, so it needs a network namespace of its own): it gets the memory and
    file-size bounds of a page's commands (isolation.py) and leaves no core file."""
    limits = [f"--as={isolation.MEMORY_LIMIT}", f"--fsize={isolation.FILE_LIMIT}", "--core=0"]
    return [tools.require("prlimit"), *limits, "--"]


#: Wall-clock seconds all of one page's rule examples may take together (each run has its own
#: limit too, engine.RUN_TIMEOUT): as long as a page's commands may take (session.PAGE_TIMEOUT).
PAGE_RULE_SECONDS = 600.0


class _PageRuns(PageResource):
    """The engine runs of one page's rule blocks, each on a backend of its own (a fresh data
    folder in a network namespace of its own, as engine.run always starts one), started side
    by side: most of a block's time is the backend's wait before it evaluates a trace (3 s after
    its last span), which several backends can spend together. Each block's verdict still comes
    from its own backend alone; a block is sent only when the pytest run includes it."""

    def __init__(self, program: Any) -> None:
        self.program = program
        self.pool = ThreadPoolExecutor(max_workers=PARALLEL_RUNS, thread_name_prefix="rules")
        self.runs: dict[int, Future[dict[str, Any]]] = {}
        self.deadline = time.monotonic() + PAGE_RULE_SECONDS

    def start(self, blocks: tuple[Block, ...], ctx: Context) -> None:
        """Send each block of `blocks` the run includes (see _selected) to a backend."""
        selected = _selected(ctx)
        for block in blocks:
            if selected is not None and block.start not in selected:
                continue
            try:
                self.submit(block, _Example.read(block, ctx))
            except CheckFailure:
                continue  # the block's own check reports it

    def submit(self, block: Block, example: _Example) -> Future[dict[str, Any]]:
        if block.start not in self.runs:
            run = self.pool.submit(engine.run, example.request, self.program, run_bounds())
            self.runs[block.start] = run
        return self.runs[block.start]

    def result(self, block: Block, example: _Example) -> dict[str, Any]:
        try:
            if time.monotonic() >= self.deadline:  # the pool is shut: nothing more is sent
                raise FutureTimeout
            return self.submit(block, example).result(
                timeout=max(self.deadline - time.monotonic(), 0)
            )
        except (FutureTimeout, CancelledError):  # a run cancelled when the time was up
            self.pool.shutdown(wait=False, cancel_futures=True)  # those not begun never will
            raise CheckFailure(
                f"the page's rule examples used up their {PAGE_RULE_SECONDS:g} s together (a "
                "bound against pages that hold the gate)"
            ) from None
        except engine.EngineError as exc:
            raise CheckFailure(f"the backend could not be run: {exc}") from None

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _runs(block: Block, example: _Example, ctx: Context) -> _PageRuns:
    """The page's runs, started by its first rule block: that block first, then the others."""
    runs = ctx.state.get(RUNS_KEY)
    if runs is None:
        program = ctx.live.program_or_skip("rule examples run", CheckFailure)
        runs = ctx.state[RUNS_KEY] = _PageRuns(program)
        runs.submit(block, example)
        runs.start(ctx.siblings, ctx)
    return runs


def _selected(ctx: Context) -> set[int] | None:
    """Where the page's blocks this pytest run includes start (after -k or a node id), or None
    when pytest does not say."""
    session = getattr(ctx.request, "session", None)
    items = getattr(session, "items", None)
    if not items:
        return None
    page = ctx.page.resolve()
    found = set()
    for item in items:
        example = getattr(item, "example", None)
        if example is not None and Path(example.path).resolve() == page:
            found.add(example.start)
    return found


def _mistake(root: CommentedMap, compiled: bool, answer: dict[str, Any], line: int) -> None:
    if compiled:
        raise CheckFailure("shown as a mistake, but the backend compiled this rule", line)
    expected = str(root.get("refused") or "")
    if expected not in answer["message"]:
        raise CheckFailure(
            f"the backend refused it with '{answer['message']}', not '{expected}'",
            _line(root, "refused"),
        )


def _outcomes(result: dict[str, Any], name: str, traces: list[Any]) -> None:
    if "spans_error" in result:
        raise CheckFailure(result["spans_error"], traces[0][0])
    if not result.get("evaluated"):
        raise CheckFailure(
            f"the backend did not evaluate the traces within {engine.EVALUATION_TIMEOUT:g} s"
        )
    violated = {
        v["traceId"] for v in result["violations"] if v["ruleId"] == name and v["kind"] == "trace"
    }
    for line, trace_id, _ in traces:
        breaks = trace_id.startswith("breaks-")
        if breaks and trace_id not in violated:
            raise CheckFailure(
                "this trace is shown to break the rule, but no violation was recorded", line
            )
        if not breaks and trace_id in violated:
            raise CheckFailure(
                "this trace is shown to keep the rule, but a violation was recorded", line
            )
