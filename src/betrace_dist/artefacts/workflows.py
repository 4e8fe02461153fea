"""GitHub workflow policy: least privilege, pinned actions, bounded jobs, no script injection."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from ..errors import Problem
from ..yamlio import load_with_lines

WORKFLOWS = Path(".github/workflows")
# The only workflow (and job) that may mint an OIDC token: FlakeHub authenticates with it.
ID_TOKEN_ALLOWED = {("flakehub.yml", "publish")}
_PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@([0-9a-f]{40})$")
_VERSION_COMMENT = re.compile(r"#\s*v\d+(\.\d+){0,2}\s*$")
# Untrusted text an attacker controls (titles, branch names, bodies...) must reach a script
# through env:, never be pasted into it by the expression engine.
_INJECTABLE = re.compile(r"\$\{\{[^}]*\b(github\.event\b|github\.head_ref\b)[^}]*\}\}")


def workflow_files(root: Path) -> list[Path]:
    folder = root / WORKFLOWS
    return sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])


def _line(node: Any, key: str) -> int | None:
    if isinstance(node, CommentedMap) and key in node:
        return node.lc.key(key)[0] + 1
    if isinstance(node, CommentedMap):
        return node.lc.line + 1
    return None


def policy_problems(path: Path) -> list[Problem]:
    """Every policy breach in one workflow file, each with its line."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    doc = load_with_lines(path)
    out: list[Problem] = []

    def add(line: int | None, message: str) -> None:
        out.append(Problem(path, line, message))

    if not isinstance(doc, CommentedMap):
        return [Problem(path, 1, "not a workflow (no top-level mapping)")]
    perms = doc.get("permissions")
    if "permissions" not in doc:
        add(1, "no top-level 'permissions: {}': every job would get the default token scopes")
    elif perms != {}:
        add(_line(doc, "permissions"), f"top-level permissions must be {{}}, found {perms!r}")
    if "concurrency" not in doc:
        add(1, "no top-level 'concurrency' group: two runs could publish at the same time")
    jobs = doc.get("jobs") or {}
    for job_id, job in jobs.items():
        where = _line(jobs, job_id)
        if "permissions" not in job:
            add(where, f"job '{job_id}' has no 'permissions': grant what it needs, per job")
        else:
            for scope, level in (job["permissions"] or {}).items():
                if (scope, level) == ("id-token", "write") and (
                    path.name,
                    job_id,
                ) not in ID_TOKEN_ALLOWED:
                    add(
                        _line(job["permissions"], scope),
                        f"job '{job_id}' requests id-token: write; only "
                        f"{sorted(ID_TOKEN_ALLOWED)} may",
                    )
        if not isinstance(job.get("timeout-minutes"), int):
            add(where, f"job '{job_id}' has no 'timeout-minutes'")
        nodes = [job, *(job.get("steps") or [])]
        for node in nodes:
            uses = node.get("uses") if isinstance(node, dict) else None
            if uses and not uses.startswith(("./", "docker://")):
                line = _line(node, "uses")
                raw = lines[line - 1] if line else ""
                if not _PINNED.match(uses):
                    add(line, f"'{uses}' is not pinned by a full 40-hex commit SHA")
                elif not _VERSION_COMMENT.search(raw):
                    add(line, f"'{uses}' has no '# vX.Y.Z' comment naming the pinned release")
            run = node.get("run") if isinstance(node, dict) and node is not job else None
            if isinstance(run, str):
                for match in _INJECTABLE.finditer(run):
                    add(
                        _line(node, "run"),
                        f"job '{job_id}' interpolates {match.group(0)} into a run: script "
                        "(script injection); pass it through env: instead",
                    )
    return out


def gate_problems(path: Path, gate: str = "gate") -> list[Problem]:
    """The final gate job: needs every other job and runs even when one of them failed."""
    doc = load_with_lines(path)
    jobs = doc.get("jobs") or {}
    if gate not in jobs:
        return [Problem(path, None, f"no '{gate}' job for branch protection to require")]
    job = jobs[gate]
    needs = job.get("needs") or []
    needs = [needs] if isinstance(needs, str) else list(needs)
    out = []
    missing = sorted(set(jobs) - {gate} - set(needs))
    if missing:
        out.append(Problem(path, _line(jobs, gate), f"'{gate}' does not need {missing}"))
    if "always()" not in str(job.get("if", "")):
        out.append(
            Problem(path, _line(jobs, gate), f"'{gate}' lacks 'if: always()': a failed job "
                    "would skip the gate, and a skipped required check counts as passed")
        )  # fmt: skip
    return out


def run_commands(path: Path) -> list[str]:
    """Every line of every run: script in a workflow, stripped."""
    doc = load_with_lines(path)
    commands: list[str] = []
    for job in (doc.get("jobs") or {}).values():
        for step in job.get("steps") or []:
            if isinstance(step.get("run"), str):
                commands += [line.strip() for line in step["run"].splitlines()]
    return commands
