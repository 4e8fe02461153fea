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


def _line(node: Any, key: str | bool) -> int | None:  # `on:` may load as True
    if isinstance(node, CommentedMap) and key in node:
        return int(node.lc.key(key)[0]) + 1
    if isinstance(node, CommentedMap):
        return int(node.lc.line) + 1
    return None


# complexity over 12: one `if` per workflow policy rule; independent checks in a row, to split
def policy_problems(path: Path) -> list[Problem]:  # noqa: C901
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


# --- triggers, secrets and credentials ---------------------------------------------------------

#: Triggers that run with the base repository's secrets and a write token on input a stranger
#: controls (a fork's pull request, the artefacts of a run it started).
FORBIDDEN_TRIGGERS = {
    "pull_request_target": "runs with secrets and a write token on a fork's pull request",
    "workflow_run": "runs with secrets and a write token after a run a fork's pull request started",
}
#: Third-party actions that may receive a secret in `with:`, because handing one over is what
#: they are for (logging in to a registry).
SECRET_CONSUMERS = {"docker/login-action"}
_SECRET = re.compile(r"\$\{\{[^}]*\b(secrets\.[A-Za-z_][A-Za-z0-9_]*|github\.token)\b[^}]*\}\}")
_WRITE_SCOPES_ON_PR = {"pull_request", "pull_request_review", "pull_request_review_comment"}


def _triggers(doc: CommentedMap) -> list[str]:
    on = doc.get("on", doc.get(True))  # YAML 1.1 readers turn a bare `on` into true
    if isinstance(on, str):
        return [on]
    if isinstance(on, list):
        return [str(t) for t in on]
    return [str(t) for t in on or {}]


def _secrets_in(node: Any) -> list[str]:
    """Secret expressions (`${{ secrets.X }}`, `${{ github.token }}`) anywhere inside a node."""
    if isinstance(node, str):
        return [m.group(1) for m in _SECRET.finditer(node)]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _secrets_in(value)]
    if isinstance(node, list):
        return [s for value in node for s in _secrets_in(value)]
    return []


def _action(uses: str) -> str:
    return uses.split("@", 1)[0]


# complexity over 12: one `if` per hardening rule of each job and step; to split per rule
def hardening_problems(path: Path) -> list[Problem]:  # noqa: C901
    """Triggers, secrets and credentials: each breach with its line.

    - no `pull_request_target` / `workflow_run` trigger;
    - a workflow that pull requests trigger grants no write scope to any job;
    - a secret (or `github.token`) reaches only a `run:` step's own `env:`, or the `with:` of an
      action whose job is to use it (SECRET_CONSUMERS); never a workflow- or job-level `env:`
      (every step, third-party actions included, would see it), never pasted into a `run:`
      script, never another action's `with:`/`env:`, never `secrets: inherit`;
    - `actions/checkout` keeps no credentials (`persist-credentials: false`) unless its job
      pushes with git (`contents: write`).
    """
    doc = load_with_lines(path)
    if not isinstance(doc, CommentedMap):
        return [Problem(path, 1, "not a workflow (no top-level mapping)")]
    out: list[Problem] = []

    def add(line: int | None, message: str) -> None:
        out.append(Problem(path, line, message))

    on_key = "on" if "on" in doc else True
    triggers = _triggers(doc)
    for trigger in triggers:
        if trigger in FORBIDDEN_TRIGGERS:
            add(_line(doc, on_key), f"trigger '{trigger}' {FORBIDDEN_TRIGGERS[trigger]}")
    on_pull_requests = sorted(_WRITE_SCOPES_ON_PR & set(triggers))
    for secret in _secrets_in(doc.get("env")):
        add(
            _line(doc, "env"),
            f"workflow-level env: holds {secret}: every step of every job, "
            "third-party actions included, can read it; set it on the one step that needs it",
        )
    jobs = doc.get("jobs") or {}
    for job_id, job in jobs.items():
        perms = job.get("permissions") or {}
        if isinstance(perms, dict):
            writes = sorted(scope for scope, level in perms.items() if level == "write")
        else:
            writes = [] if perms == "read-all" else [str(perms)]
        if on_pull_requests and writes:
            add(
                _line(job, "permissions"),
                f"job '{job_id}' grants {', '.join(writes)}: write in "
                f"a workflow that {', '.join(on_pull_requests)} triggers; pull requests get "
                "read-only tokens",
            )
        if job.get("secrets") == "inherit":
            add(
                _line(job, "secrets"),
                f"job '{job_id}' passes every secret on "
                "(secrets: inherit); name the ones the called workflow needs",
            )
        for secret in _secrets_in(job.get("env")):
            add(
                _line(job, "env"),
                f"job '{job_id}' puts {secret} in the job's env: every step, "
                "third-party actions included, can read it; set it on the step that needs it",
            )
        for step in job.get("steps") or []:
            if not isinstance(step, dict):
                continue
            uses = step.get("uses")
            if isinstance(step.get("run"), str):
                for secret in _secrets_in(step["run"]):
                    add(
                        _line(step, "run"),
                        f"job '{job_id}' pastes {secret} into a run: script; "
                        "pass it through the step's env: instead",
                    )
            if uses and not uses.startswith("./"):
                action = _action(uses)
                allowed = action in SECRET_CONSUMERS
                for key in ("with", "env"):
                    if key == "with" and allowed:
                        continue
                    for secret in _secrets_in(step.get(key)):
                        add(
                            _line(step, key),
                            f"job '{job_id}' hands {secret} to {action} "
                            f"({key}:); only {sorted(SECRET_CONSUMERS)} may receive a secret",
                        )
                if action == "actions/checkout":
                    options = step.get("with") or {}
                    pushes = isinstance(perms, dict) and perms.get("contents") == "write"
                    if options.get("persist-credentials") is not False and not pushes:
                        add(
                            _line(step, "uses"),
                            f"job '{job_id}' checks out without "
                            "'persist-credentials: false': the token stays in .git/config for "
                            "every later step, and the job does not push",
                        )
    return out
