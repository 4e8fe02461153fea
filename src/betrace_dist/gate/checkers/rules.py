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
waits for their evaluation and reads the violations. The page fails at the line of the
expression when a rule does not compile or a mistake does, and at the line of a trace whose
documented outcome did not happen.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ... import yamlio
from ...errors import ProblemsError
from ...rules import engine
from ..lexer import Block
from . import CheckFailure, Context, Status

TITLE = re.compile(r"^(?P<kind>Rule|Mistake):\s*\S")
KEYS = {"Rule": {"rule", "breaks", "keeps"}, "Mistake": {"rule", "refused"}}
BASE_TIME = 1767225600000000000


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
        trace_id = f"{prefix}-{key}-{i + 1}"
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
        what = kind(block) or "Rule"
        root = _read(block, what)
        rule = dict(root["rule"])
        body: dict[str, Any] = {"enabled": True, **rule}
        expression_line = _line(root["rule"], "expression")
        prefix = f"{ctx.page.stem}-{block.line}"
        traces = []
        if what == "Rule":
            traces = _traces(root, "breaks", prefix) + _traces(root, "keeps", prefix)
            if not traces:
                raise CheckFailure("a Rule block lists traces under 'breaks' or 'keeps'", 1)
        request = {"rules": [body], "traces": [spans for _, _, spans in traces]}
        try:
            result = engine.run(
                request, ctx.live.program_or_skip("rule examples run", CheckFailure)
            )
        except engine.EngineError as exc:
            raise CheckFailure(f"the backend could not be run: {exc}") from None
        answer = result["rules"][0]
        compiled = answer["status"] // 100 == 2
        if what == "Mistake":
            _mistake(root, compiled, answer, expression_line)
            return
        if not compiled:
            reason = f"the backend refused this rule ({answer['status']}): {answer['message']}"
            raise CheckFailure(reason, expression_line)
        _outcomes(result, str(body["name"]), traces)


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
        breaks = "-breaks-" in trace_id
        if breaks and trace_id not in violated:
            raise CheckFailure(
                "this trace is shown to break the rule, but no violation was recorded", line
            )
        if not breaks and trace_id in violated:
            raise CheckFailure(
                "this trace is shown to keep the rule, but a violation was recorded", line
            )
