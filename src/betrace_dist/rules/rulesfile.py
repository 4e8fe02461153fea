"""The project's rules file (YAML or JSON) and the backend's `rules.json` made from it.

A rules file is a mapping with one key, `rules`, a list of rules. Each rule has the fields of
the backend's `POST /v1/rules` body (`name`, `expression`, `description`, `severity`,
`enabled`, `tags`; upstream `backend/internal/grpc/services/rule_service.go`, CreateRule), with
`enabled` true unless the file says otherwise:

    rules:
      - name: large-payment-needs-fraud-check
        severity: HIGH
        expression: when { payment.where(amount > 1000) } always { fraud_check }

`rules.json` is what upstream's disk store writes and reads at start-up
(`backend/internal/storage/rule_store_disk.go`): one JSON object keyed by rule id, each value a
`models.Rule` (`backend/pkg/models/rule.go`: id, name, description, severity, expression,
luaCode, enabled, tags, created_at, updated_at). The id is the name, as CreateRule sets it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .. import yamlio
from ..errors import Problem, ProblemsError

#: Fields of a rule in a rules file, with the Python type each must have.
FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "expression": str,
    "description": str,
    "severity": str,
    "enabled": bool,
    "tags": list,
}
REQUIRED = ("name", "expression")
#: The backend's own limits (rule_service.go, CreateRule: models.RuleLimits)
MAX_NAME = 256
#: A name is used as a path segment (/v1/rules/{id}): letters, digits, '.', '_', '-'.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: The severities the Grafana app knows (`SeverityLevels` in grafana-betrace-app's
#: src/services/BeTraceService.ts at the pinned commit); the backend stores any text.
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
#: The time the backend writes for a rule it has not stamped (Go's zero time.Time).
ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class Rule:
    name: str
    expression: str
    description: str = ""
    severity: str = ""
    enabled: bool = True
    tags: tuple[str, ...] = ()
    #: where the rule is written: the file, the line of its name and of its expression
    file: str = ""
    line: int = 0
    expression_line: int = 0
    #: the expression is a YAML block scalar (`|` keeps lines, `>` folds them): its text starts
    #: on the line after `expression_line`
    expression_block: str = ""
    lines: dict[str, int] = field(default_factory=dict, compare=False)

    def line_of(self, row: int) -> int:
        """The file line of row `row` (1-based) of the expression, as the parser counts rows:
        a `|` block keeps the file's lines; a `>` block folds them into one row (its first)."""
        if self.expression_block == "|":
            rows = self.expression.rstrip("\n").count("\n") + 1  # the end of text is its last row
            return self.expression_line + min(row, rows)
        if self.expression_block == ">":
            return self.expression_line + 1
        return self.expression_line

    def body(self) -> dict[str, Any]:
        """The JSON body of POST /v1/rules for this rule."""
        return {
            "name": self.name,
            "expression": self.expression,
            "description": self.description,
            "severity": self.severity,
            "enabled": self.enabled,
            "tags": list(self.tags),
        }

    def stored(self) -> dict[str, Any]:
        """The rule as the backend stores it in rules.json (models.Rule)."""
        return {
            "id": self.name,
            "name": self.name,
            "description": self.description,
            "severity": self.severity,
            "expression": self.expression,
            "luaCode": "",
            "enabled": self.enabled,
            "tags": list(self.tags),
            "created_at": ZERO_TIME,
            "updated_at": ZERO_TIME,
        }


def _line(node: Any, key: str | int | None = None) -> int:
    """1-based line of a ruamel node, or of one of its keys/items."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return 0
    if key is None:
        return int(lc.line) + 1
    try:
        return int(lc.key(key)[0] if isinstance(node, CommentedMap) else lc.item(key)[0]) + 1
    except (KeyError, IndexError, TypeError):
        return int(lc.line) + 1


def _value_line(node: CommentedMap, key: str) -> int:
    try:
        return int(node.lc.value(key)[0]) + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        return _line(node, key)


def _block_style(value: Any) -> str:
    from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

    if isinstance(value, LiteralScalarString):
        return "|"
    return ">" if isinstance(value, FoldedScalarString) else ""


def _read_rule(item: Any, index: int, path: str, problems: list[Problem]) -> Rule | None:
    where = f"rules[{index}]"
    if not isinstance(item, CommentedMap):
        problems.append(Problem(path, _line(item) or None, "a rule must be a mapping", where))
        return None
    start = len(problems)
    for key in item:
        if key not in FIELDS:
            known = ", ".join(FIELDS)
            problems.append(
                Problem(path, _line(item, key), f"unknown field (known: {known})", f"{where}.{key}")
            )
    for key in REQUIRED:
        if key not in item:
            problems.append(Problem(path, _line(item), "required field missing", f"{where}.{key}"))
    for key, kind in FIELDS.items():
        if key in item and not _right_type(item[key], kind):
            problems.append(
                Problem(path, _line(item, key), f"must be {_kind_name(kind)}", f"{where}.{key}")
            )
    if len(problems) > start:
        return None
    return _checked_rule(item, where, path, problems)


def _right_type(value: Any, kind: type | tuple[type, ...]) -> bool:
    if kind is list:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind is str:
        return isinstance(value, str) and value.strip() != ""
    return isinstance(value, kind)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return {str: "a non-empty string", bool: "true or false", list: "a list of strings"}.get(
        kind if isinstance(kind, type) else str, str(kind)
    )


def _checked_rule(
    item: CommentedMap, where: str, path: str, problems: list[Problem]
) -> Rule | None:
    name = str(item["name"])
    line = _line(item, "name")
    if len(name.encode()) > MAX_NAME:
        problems.append(Problem(path, line, f"longer than {MAX_NAME} bytes", f"{where}.name"))
        return None
    if not NAME.match(name):
        message = "use letters, digits, '.', '_' and '-' only (the name is the rule's URL path)"
        problems.append(Problem(path, line, message, f"{where}.name"))
        return None
    # any case, written in capitals, as upstream's own YAML import does (rules_import.go)
    severity = str(item.get("severity", "")).upper()
    if "severity" in item and severity not in SEVERITIES:
        message = (
            f"{item['severity']!r} is no severity the Grafana app knows: use "
            f"{', '.join(SEVERITIES)} (the backend would store any text)"
        )
        problems.append(Problem(path, _line(item, "severity"), message, f"{where}.severity"))
        return None
    return Rule(
        name=name,
        expression=str(item["expression"]),
        description=str(item.get("description", "")),
        severity=severity,
        enabled=bool(item.get("enabled", True)),
        tags=tuple(str(t) for t in item.get("tags", [])),
        file=path,
        line=line,
        expression_line=_value_line(item, "expression"),
        expression_block=_block_style(item["expression"]),
        lines={key: _line(item, key) for key in item},
    )


def parse(text: str, path: str) -> list[Rule]:
    """The rules of a rules file's text; every problem found, at its file, line and field."""
    root = yamlio.parse_with_lines(text, path) if text.strip() else None
    if not isinstance(root, CommentedMap) or "rules" not in root:
        raise ProblemsError([Problem(path, 1, "a rules file is a mapping with a 'rules' list")])
    problems = [
        Problem(path, _line(root, key), "unknown field (a rules file has only 'rules')", key)
        for key in root
        if key != "rules"
    ]
    items = root["rules"]
    if not isinstance(items, CommentedSeq):
        not_list = Problem(path, _line(root, "rules"), "must be a list", "rules")
        raise ProblemsError([*problems, not_list])
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        rule = _read_rule(item, index, path, problems)
        if rule is None:
            continue
        if rule.name in seen:
            message = f"duplicate name '{rule.name}' (first at line {seen[rule.name]})"
            problems.append(Problem(path, rule.line, message, f"rules[{index}].name"))
            continue
        seen[rule.name] = rule.line
        rules.append(rule)
    if problems:
        raise ProblemsError(problems)
    return rules


def load(path: Path) -> list[Rule]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ProblemsError([Problem(path, 1, "not UTF-8 text")]) from None
    except OSError as exc:
        raise ProblemsError([Problem(path, None, f"cannot read: {exc.strerror}")]) from None
    return parse(text, str(path))


def rules_json(rules: list[Rule]) -> str:
    """rules.json as the backend reads it at start-up: an object keyed by rule id."""
    return json.dumps({r.name: r.stored() for r in rules}, indent=2, sort_keys=True) + "\n"
