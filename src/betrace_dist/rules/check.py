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
    return problems + compile_rules(rules, backend)


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
