"""`betrace-dist rules check FILE...`: every rule of every file compiled by the real engine.

Each file is read first (bad input: file:line: field: message); then all rules of all files
are posted to one throwaway backend (engine.py), and each rule the backend refuses is reported
at the line of its expression with the backend's own message.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import Problem, ProblemsError
from . import engine, rulesfile


def compile_rules(rules: list[rulesfile.Rule], backend: Path | None = None) -> list[Problem]:
    """The engine's refusals of these rules (names must be unique across them), on `backend`
    (a betrace-backend program) or the project's own build."""
    if not rules:
        return []
    result = engine.run({"rules": [r.body() for r in rules]}, backend)
    problems = []
    for rule, answer in zip(rules, result["rules"], strict=True):
        if answer["status"] // 100 != 2:
            message = f"rule '{rule.name}': the backend refused it ({answer['status']}): "
            line = rule.line_of(_row(answer["message"]))
            problems.append(Problem(rule.file, line, message + answer["message"]))
    return problems


#: the parser's position in a refusal: "failed to compile rule: ROW:COLUMN: ..."
POSITION = re.compile(r"compile rule: (\d+):(\d+):")


def _row(message: str) -> int:
    found = POSITION.search(message)
    return int(found.group(1)) if found else 1


#: a string of the rule language (its quotes may be escaped inside)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
#: `name.where(` and `count(`, whose parentheses hold conditions on attributes and a name
_GROUP_OPENS = re.compile(r"\.\s*where\s*\(|\bcount\s*\(")
#: a span name (identifiers joined by dots) followed at once by a comparison
_NAME_COMPARED = re.compile(
    r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*(==|!=|<=|>=|<|>|\bin\b|\bmatches\b|\bcontains\b)"
)
#: the words of the language (parser.go's keywords), never a span name
_KEYWORDS = frozenset(
    {"when", "always", "never", "and", "or", "not", "where", "count", "in", "matches"}
    | {"contains", "true", "false"}
)


def _outside_groups(expression: str) -> str:
    """The expression with its strings, `.where(...)` and `count(...)` blanked out (kept the
    same length, so positions still hold)."""
    text = _STRING.sub(lambda m: " " * len(m[0]), expression)
    out = list(text)
    for match in _GROUP_OPENS.finditer(text):
        depth, end = 1, match.end()
        while end < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        out[match.end() : end] = " " * (end - match.end())
    return "".join(out)


def compared_names(rules: list[rulesfile.Rule]) -> list[Problem]:
    """A comparison written straight after a span name, outside `.where(...)`: the backend
    accepts it and compares the number 1 (the span is there) with the value, so it tests no
    attribute (known issue comparison-after-a-name-tests-no-attribute)."""
    problems = []
    for rule in rules:
        for match in _NAME_COMPARED.finditer(_outside_groups(rule.expression)):
            name, operator = match[1], match[2]
            if name in _KEYWORDS:
                continue
            span, _, attribute = name.rpartition(".")
            fix = f"{span}.where({attribute} {operator} ...)" if span else f"{name}.where(...)"
            row = rule.expression.count("\n", 0, match.start()) + 1
            message = (
                f"rule '{rule.name}': `{name} {operator}` compares no attribute: the backend "
                f"takes it, looks for a span named {name} and compares 1 with the value (known "
                f"issue comparison-after-a-name-tests-no-attribute); write {fix}"
            )
            problems.append(Problem(rule.file, rule.line_of(row), message, "expression"))
    return problems


def check(paths: list[Path], backend: Path | None = None) -> list[Problem]:
    """Every problem of these rules files: reading them, then compiling their rules."""
    problems: list[Problem] = []
    rules: list[rulesfile.Rule] = []
    seen: dict[str, rulesfile.Rule] = {}
    for path in paths:
        try:
            found = rulesfile.load(path)
        except ProblemsError as exc:
            problems.extend(exc.problems)
            continue
        for rule in found:
            first = seen.get(rule.name)
            if first is not None:
                message = f"duplicate name '{rule.name}' (also at {first.file}:{first.line})"
                problems.append(Problem(rule.file, rule.line, message, "name"))
                continue
            seen[rule.name] = rule
            rules.append(rule)
    return problems + compared_names(rules) + compile_rules(rules, backend)


def write_json(paths: list[Path], output: Path | None) -> int:
    """`rules json`: the rules.json the backend loads at start-up, from rules files."""
    rules: list[rulesfile.Rule] = []
    try:
        for path in paths:
            rules.extend(rulesfile.load(path))
    except ProblemsError as exc:
        print(exc)
        return 1
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        print("the same rule name is in more than one file")
        return 1
    text = rulesfile.rules_json(rules)
    if output is None:
        print(text, end="")
    else:
        output.write_text(text, encoding="utf-8")
    return 0


def main(paths: list[Path], backend: Path | None = None) -> int:
    if backend is not None and not (backend.is_file() and os.access(backend, os.X_OK)):
        print(f"rules check: --backend {backend}: no such program")
        return 2
    try:
        problems = check(paths, backend)
    except engine.EngineError as exc:
        print(f"rules check: {exc}")
        return 2
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s)")
        return 1
    print(f"{', '.join(map(str, paths))}: every rule compiles on the BeTrace backend")
    return 0
