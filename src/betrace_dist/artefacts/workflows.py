"""GitHub workflow policy: least privilege, pinned actions, bounded jobs, no script injection."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from ..errors import Problem
from ..yamlio import load_with_lines

WORKFLOWS = Path(".github/workflows")
# The only workflow (and job) that may mint an OIDC token: FlakeHub authenticates with it. The
# release workflow's job that calls it must grant it too: a called workflow gets no permission
# its calling job does not grant (GitHub docs, "Reusing workflow configurations").
ID_TOKEN_ALLOWED = {("flakehub.yml", "publish"), ("release.yml", "flakehub")}
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


#: A breach found by one rule: its line (None when unknown) and what is wrong.
_Found = list[tuple[int | None, str]]


@dataclass(frozen=True)
class _Job:
    """One job of a workflow, as the per-job rules see it."""

    file: str  # the workflow's file name
    id: str
    node: Any
    line: int | None  # the line of the job's key
    lines: list[str]  # the workflow's text, for the comment after a `uses:`


def _permissions_are_empty(doc: CommentedMap) -> _Found:
    if "permissions" not in doc:
        return [(1, "no top-level 'permissions: {}': every job would get the default token scopes")]
    perms = doc.get("permissions")
    if perms != {}:
        return [(_line(doc, "permissions"), f"top-level permissions must be {{}}, found {perms!r}")]
    return []


def _has_concurrency_group(doc: CommentedMap) -> _Found:
    if "concurrency" not in doc:
        return [(1, "no top-level 'concurrency' group: two runs could publish at the same time")]
    return []


def _job_has_permissions(job: _Job) -> _Found:
    """Each job names its own permissions; only ID_TOKEN_ALLOWED may mint an OIDC token."""
    if "permissions" not in job.node:
        return [(job.line, f"job '{job.id}' has no 'permissions': grant what it needs, per job")]
    perms = job.node["permissions"] or {}
    return [
        (
            _line(perms, scope),
            f"job '{job.id}' requests id-token: write; only {sorted(ID_TOKEN_ALLOWED)} may",
        )
        for scope, level in perms.items()
        if (scope, level) == ("id-token", "write") and (job.file, job.id) not in ID_TOKEN_ALLOWED
    ]


def _job_has_timeout(job: _Job) -> _Found:
    """Every job that runs steps is bounded. A job that calls a workflow (`uses:`) cannot take
    `timeout-minutes` (GitHub docs, "Reusing workflow configurations", supported keywords for
    jobs that call a reusable workflow): the called workflow's jobs carry theirs."""
    if "uses" in job.node:
        return []
    if not isinstance(job.node.get("timeout-minutes"), int):
        return [(job.line, f"job '{job.id}' has no 'timeout-minutes'")]
    return []


def _action_is_pinned(job: _Job, node: Any) -> _Found:
    """A `uses:` names a full commit SHA and, in a comment, the release it is."""
    uses = node.get("uses") if isinstance(node, dict) else None
    if not uses or uses.startswith(("./", "docker://")):
        return []
    line = _line(node, "uses")
    raw = job.lines[line - 1] if line else ""
    if not _PINNED.match(uses):
        return [(line, f"'{uses}' is not pinned by a full 40-hex commit SHA")]
    if not _VERSION_COMMENT.search(raw):
        return [(line, f"'{uses}' has no '# vX.Y.Z' comment naming the pinned release")]
    return []


def _run_takes_no_untrusted_text(job: _Job, node: Any) -> _Found:
    """No `${{ github.event... }}` or `${{ github.head_ref }}` pasted into a step's script."""
    run = node.get("run") if isinstance(node, dict) and node is not job.node else None
    if not isinstance(run, str):
        return []
    return [
        (
            _line(node, "run"),
            f"job '{job.id}' interpolates {match.group(0)} into a run: script "
            "(script injection); pass it through env: instead",
        )
        for match in _INJECTABLE.finditer(run)
    ]


def _job_and_steps_are_safe(job: _Job) -> _Found:
    """The job's own `uses:` (a called workflow) and each step's: pinned, and no injection."""
    return [
        found
        for node in [job.node, *(job.node.get("steps") or [])]
        for found in _action_is_pinned(job, node) + _run_takes_no_untrusted_text(job, node)
    ]


# --- release tags ------------------------------------------------------------------------------

#: The only tags that publish: vMAJOR.MINOR.PATCH. In GitHub's filter patterns `+` matches one or
#: more of the character (or bracketed range) before it and `.` is no special character (GitHub
#: docs, "Workflow syntax for GitHub Actions", "Filter pattern cheat sheet", whose example
#: `v[12].[0-9]+.[0-9]+` matches v1.10.1 and v2.0.0), so v2.1.0-rc.1 starts nothing.
RELEASE_TAGS = "v[0-9]+.[0-9]+.[0-9]+"
#: The step that refuses a tag that is not the release's: the project's own check
#: (`betrace-dist release check --tag`), reading the tag from `env: TAG: ${{ github.ref_name }}`.
TAG_CHECK = re.compile(r'(?:^|[\s/])betrace-dist release check --tag "\$TAG"\s*$')
TAG_CHECK_ENV = "${{ github.ref_name }}"
#: The one condition the check may carry: "run on tags" (docs.yml also deploys main).
TAG_CHECK_IF = "startsWith(github.ref, 'refs/tags/')"
#: Steps that may run before the check: they only fetch and install, and publish nothing.
PREPARATION_ACTIONS = {"actions/checkout", "actions/setup-python"}
_PREPARATION_LINE = re.compile(
    r"^(?:#.*|make setup|(?:\.venv/bin/)?pip install\b.*|python3? -m pip install\b.*)$"
)


def trigger_map(doc: CommentedMap) -> dict[str, Any]:
    """The `on:` triggers as a mapping (a string or a list names triggers without filters)."""
    on = doc.get("on", doc.get(True))  # YAML 1.1 readers turn a bare `on` into true
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {str(trigger): None for trigger in on}
    return dict(on or {})


def runs_on_a_tag(doc: CommentedMap) -> bool:
    """True when a run of the workflow can have a tag as its ref.

    A push with neither a branch nor a tag filter runs for tags too, and a push with only a
    branch filter runs for no tag (GitHub docs, "Workflow syntax for GitHub Actions",
    `on.push.<branches|tags|branches-ignore|tags-ignore>`). A called workflow (`workflow_call`)
    runs with its caller's ref, a tag for the release workflow (GitHub docs, "Reusing workflow
    configurations": the `github` context is the caller's); a manual run can be started on a tag.
    """
    on = trigger_map(doc)
    if "push" in on:
        push = on["push"] or {}
        if {"tags", "tags-ignore"} & set(push) or not {"branches", "branches-ignore"} & set(push):
            return True
    return bool({"workflow_call", "workflow_dispatch", "create", "release"} & set(on))


def _tag_filter_is_the_release_pattern(doc: CommentedMap) -> _Found:
    """A push that can start on a tag names exactly RELEASE_TAGS."""
    on = trigger_map(doc)
    if "push" not in on:
        return []
    push = on["push"] or {}
    on_key = "on" if "on" in doc else True
    where = _line(push, "tags") if isinstance(push, CommentedMap) else _line(doc, on_key)
    tags = push.get("tags")
    wanted = f'tags: ["{RELEASE_TAGS}"]'
    if "tags-ignore" in push or (tags is None and not {"branches", "branches-ignore"} & set(push)):
        return [(where, f"push starts on tags that are not releases; filter them: {wanted}")]
    if tags is not None and list(tags) != [RELEASE_TAGS]:
        message = (
            f'tag filter {list(tags)} is not ["{RELEASE_TAGS}"]: it starts on tags that are not '
            "releases (v2.1.0-rc.1), or misses some"
        )
        return [(where, message)]
    return []


def _is_preparation(step: Any) -> bool:
    uses = step.get("uses") if isinstance(step, dict) else None
    if uses:
        return str(uses).split("@", 1)[0] in PREPARATION_ACTIONS
    run = step.get("run") if isinstance(step, dict) else None
    lines = [line.strip() for line in str(run or "").splitlines() if line.strip()]
    return bool(lines) and all(_PREPARATION_LINE.match(line) for line in lines)


def _tag_check_problems(job_id: str, steps: list[Any]) -> tuple[bool, _Found]:
    """Whether the job checks the tag, and what is wrong with how it does."""
    checks = [
        (index, step)
        for index, step in enumerate(steps)
        if isinstance(step, dict) and TAG_CHECK.search(str(step.get("run") or ""))
    ]
    if not checks:
        return False, []
    index, step = checks[0]
    line = _line(step, "run")
    found: _Found = []
    if (step.get("env") or {}).get("TAG") != TAG_CHECK_ENV:
        message = f"job '{job_id}' checks TAG, which is not {TAG_CHECK_ENV} (env: TAG: ...)"
        found.append((line, message))
    if step.get("if") not in (None, TAG_CHECK_IF) or step.get("continue-on-error"):
        message = (
            f"job '{job_id}' may skip or ignore the tag check (only `if: {TAG_CHECK_IF}` is "
            "allowed, never continue-on-error)"
        )
        found.append((line, message))
    early = next((s for s in steps[:index] if not _is_preparation(s)), None)
    if early is not None:
        name = early.get("name") or early.get("uses") or "a step"
        message = (
            f"job '{job_id}' checks the tag only after '{name}', which could already publish: "
            "check it right after installing the project"
        )
        found.append((line, message))
    return True, found


def _every_job_checks_the_tag(doc: CommentedMap) -> _Found:
    """In a workflow that can run on a tag, every job checks that the tag is the release's before
    it publishes anything, or needs a job that did; a job that calls a workflow leaves it to the
    called workflow, which this rule holds to the same."""
    if not runs_on_a_tag(doc):
        return []
    jobs = doc.get("jobs") or {}
    found: _Found = []
    checked: set[str] = set()
    for job_id, node in jobs.items():
        if "uses" in node:
            checked.add(job_id)
            continue
        does, problems = _tag_check_problems(job_id, list(node.get("steps") or []))
        found += problems
        if does:
            checked.add(job_id)
    grew = True
    while grew:  # a job that needs a checked job is checked
        grew = False
        for job_id, node in jobs.items():
            needs = node.get("needs") or []
            needs = [needs] if isinstance(needs, str) else list(needs)
            if job_id not in checked and set(needs) & checked:
                checked.add(job_id)
                grew = True
    advice = (
        f'run `betrace-dist release check --tag "$TAG"` (env: TAG: {TAG_CHECK_ENV}) right after '
        "installing the project, or need a job that does"
    )
    found += [
        (_line(jobs, job_id), f"job '{job_id}' can run on a tag and never checks it: {advice}")
        for job_id in jobs
        if job_id not in checked
    ]
    return found


_WORKFLOW_RULES: list[Callable[[CommentedMap], _Found]] = [
    _permissions_are_empty,
    _has_concurrency_group,
    _tag_filter_is_the_release_pattern,
    _every_job_checks_the_tag,
]
_JOB_RULES: list[Callable[[_Job], _Found]] = [
    _job_has_permissions,
    _job_has_timeout,
    _job_and_steps_are_safe,
]


def policy_problems(path: Path) -> list[Problem]:
    """Every policy breach in one workflow file, each with its line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    doc = load_with_lines(path)
    if not isinstance(doc, CommentedMap):
        return [Problem(path, 1, "not a workflow (no top-level mapping)")]
    found = [f for rule in _WORKFLOW_RULES for f in rule(doc)]
    jobs = doc.get("jobs") or {}
    for job_id, node in jobs.items():
        job = _Job(path.name, job_id, node, _line(jobs, job_id), lines)
        found += [f for rule in _JOB_RULES for f in rule(job)]
    return [Problem(path, line, message) for line, message in found]


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


@dataclass(frozen=True)
class _Hardened:
    """One job of a workflow, as the hardening rules see it."""

    id: str
    node: Any
    on_pull_requests: list[str]  # the pull-request triggers of its workflow

    @property
    def perms(self) -> Any:
        return self.node.get("permissions") or {}


def _no_forbidden_trigger(doc: CommentedMap) -> _Found:
    on_key = "on" if "on" in doc else True
    return [
        (_line(doc, on_key), f"trigger '{trigger}' {FORBIDDEN_TRIGGERS[trigger]}")
        for trigger in _triggers(doc)
        if trigger in FORBIDDEN_TRIGGERS
    ]


def _no_secret_in_workflow_env(doc: CommentedMap) -> _Found:
    return [
        (
            _line(doc, "env"),
            f"workflow-level env: holds {secret}: every step of every job, "
            "third-party actions included, can read it; set it on the one step that needs it",
        )
        for secret in _secrets_in(doc.get("env"))
    ]


def _no_write_scope_on_pull_requests(job: _Hardened) -> _Found:
    perms = job.perms
    if isinstance(perms, dict):
        writes = sorted(scope for scope, level in perms.items() if level == "write")
    else:
        writes = [] if perms == "read-all" else [str(perms)]
    if not (job.on_pull_requests and writes):
        return []
    return [
        (
            _line(job.node, "permissions"),
            f"job '{job.id}' grants {', '.join(writes)}: write in a workflow that "
            f"{', '.join(job.on_pull_requests)} triggers; pull requests get read-only tokens",
        )
    ]


def _no_inherited_secrets(job: _Hardened) -> _Found:
    if job.node.get("secrets") != "inherit":
        return []
    return [
        (
            _line(job.node, "secrets"),
            f"job '{job.id}' passes every secret on "
            "(secrets: inherit); name the ones the called workflow needs",
        )
    ]


def _no_secret_in_job_env(job: _Hardened) -> _Found:
    return [
        (
            _line(job.node, "env"),
            f"job '{job.id}' puts {secret} in the job's env: every step, "
            "third-party actions included, can read it; set it on the step that needs it",
        )
        for secret in _secrets_in(job.node.get("env"))
    ]


def _no_secret_in_run_script(job: _Hardened, step: dict[str, Any]) -> _Found:
    if not isinstance(step.get("run"), str):
        return []
    return [
        (
            _line(step, "run"),
            f"job '{job.id}' pastes {secret} into a run: script; "
            "pass it through the step's env: instead",
        )
        for secret in _secrets_in(step["run"])
    ]


def _secret_only_to_its_consumer(job: _Hardened, step: dict[str, Any]) -> _Found:
    """An action gets a secret in `with:` only when it is a SECRET_CONSUMER; never in `env:`."""
    uses = step.get("uses")
    if not uses or uses.startswith("./"):
        return []
    action = _action(uses)
    keys = ["env"] if action in SECRET_CONSUMERS else ["with", "env"]
    return [
        (
            _line(step, key),
            f"job '{job.id}' hands {secret} to {action} "
            f"({key}:); only {sorted(SECRET_CONSUMERS)} may receive a secret",
        )
        for key in keys
        for secret in _secrets_in(step.get(key))
    ]


def _checkout_keeps_no_credentials(job: _Hardened, step: dict[str, Any]) -> _Found:
    """`persist-credentials: false` on a checkout, unless the job pushes (`contents: write`)."""
    uses = step.get("uses")
    if not uses or uses.startswith("./") or _action(uses) != "actions/checkout":
        return []
    options = step.get("with") or {}
    pushes = isinstance(job.perms, dict) and job.perms.get("contents") == "write"
    if options.get("persist-credentials") is False or pushes:
        return []
    return [
        (
            _line(step, "uses"),
            f"job '{job.id}' checks out without "
            "'persist-credentials: false': the token stays in .git/config for "
            "every later step, and the job does not push",
        )
    ]


_STEP_HARDENING_RULES: list[Callable[[_Hardened, dict[str, Any]], _Found]] = [
    _no_secret_in_run_script,
    _secret_only_to_its_consumer,
    _checkout_keeps_no_credentials,
]


def _steps_keep_secrets_in_place(job: _Hardened) -> _Found:
    return [
        found
        for step in job.node.get("steps") or []
        if isinstance(step, dict)
        for rule in _STEP_HARDENING_RULES
        for found in rule(job, step)
    ]


_WORKFLOW_HARDENING_RULES: list[Callable[[CommentedMap], _Found]] = [
    _no_forbidden_trigger,
    _no_secret_in_workflow_env,
]
_JOB_HARDENING_RULES: list[Callable[[_Hardened], _Found]] = [
    _no_write_scope_on_pull_requests,
    _no_inherited_secrets,
    _no_secret_in_job_env,
    _steps_keep_secrets_in_place,
]


def hardening_problems(path: Path) -> list[Problem]:
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
    found = [f for rule in _WORKFLOW_HARDENING_RULES for f in rule(doc)]
    on_pull_requests = sorted(_WRITE_SCOPES_ON_PR & set(_triggers(doc)))
    for job_id, node in (doc.get("jobs") or {}).items():
        job = _Hardened(job_id, node, on_pull_requests)
        found += [f for rule in _JOB_HARDENING_RULES for f in rule(job)]
    return [Problem(path, line, message) for line, message in found]
