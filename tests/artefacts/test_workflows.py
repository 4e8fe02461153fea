"""The GitHub workflows: actionlint (the real binary, with ShellCheck on the run: scripts) and the
project's policy (least privilege, SHA-pinned actions, timeouts, no script injection, a gate).
Each rule has a test that breaks a copy of a real workflow and reads the message."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from betrace_dist import REPO_ROOT
from betrace_dist.artefacts import dockerfiles
from betrace_dist.artefacts import workflows as wf
from betrace_dist.cli import main as cli
from betrace_dist.errors import Problem
from betrace_dist.release import ReleaseData
from betrace_dist.yamlio import load_with_lines

EXPECTED = {"ci.yml", "release.yml", "images.yml", "flakehub.yml", "chart.yml", "docs.yml"}
TEST_COMMAND = "make test"
#: What ci.yml runs: the script every CI runs, which ends in TEST_COMMAND.
CI_COMMAND = "bash .ci/run"


@pytest.fixture(scope="module")
def actionlint(
    tool: Callable[[str, str], str],
) -> Callable[[list[Path]], subprocess.CompletedProcess[str]]:
    binary = tool("actionlint")
    shellcheck = tool("shellcheck")

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
    ("ci.yml", "run: bash .ci/run",
     'run: echo "${{ github.event.pull_request.title }}" && bash .ci/run', 1,
     "interpolates ${{ github.event.pull_request.title }} into a run: script"),
    ("docs.yml", 'version="${TAG#v}"', 'version="${{ github.head_ref }}"', 1,
     "interpolates ${{ github.head_ref }} into a run: script"),
    ("chart.yml", "packages: write # push the OCI chart to GHCR",
     "packages: write\n      id-token: write", 1,
     "job 'package' requests id-token: write; only [('flakehub.yml', 'publish'), "
     "('release.yml', 'flakehub')] may"),
    ("release.yml", "      contents: write # mike commits to gh-pages",
     "      contents: write # mike commits to gh-pages\n      id-token: write", 1,
     "job 'docs' requests id-token: write"),
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


# --- release tags: one tag pattern, and every job that can publish checks the tag first ---------

#: The job of each publishing workflow that checks the tag before anything else.
TAG_CHECKING_JOBS = {
    "images.yml": "build",
    "chart.yml": "package",
    "flakehub.yml": "publish",
    "docs.yml": "deploy",
}

#: The tag check as each publishing workflow writes it (docs.yml also deploys main: it checks only
#: on a tag).
CHECK_STEP = """      - name: The tag is the release's
        env:
          TAG: ${{ github.ref_name }}
        run: .venv/bin/betrace-dist release check --tag "$TAG"
"""
DOCS_CHECK_STEP = CHECK_STEP.replace(
    "        env:\n", "        if: startsWith(github.ref, 'refs/tags/')\n        env:\n"
)
FLAKEHUB_CHECK_STEP = CHECK_STEP.replace(".venv/bin/betrace-dist", "betrace-dist")


def test_only_the_publishing_workflows_run_on_a_tag(repo_root: Path) -> None:
    """The tag rules below hold every workflow that can run on a tag: the release workflow, the
    four it calls, and no other (ci.yml runs on main and pull requests)."""
    on_a_tag = {
        path.name for path in wf.workflow_files(repo_root)
        if wf.runs_on_a_tag(load_with_lines(path))
    }  # fmt: skip
    assert on_a_tag == {"release.yml", *TAG_CHECKING_JOBS}


def test_only_the_release_workflow_starts_on_a_tag_push(repo_root: Path) -> None:
    """The four publishing workflows start only when release.yml calls them, in its order."""
    started = {
        path.name for path in wf.workflow_files(repo_root)
        if "tags" in (wf.trigger_map(load_with_lines(path)).get("push") or {})
    }  # fmt: skip
    assert started == {"release.yml"}
    release = YAML(typ="safe").load((repo_root / wf.WORKFLOWS / "release.yml").read_text())
    assert release["on"]["push"]["tags"] == [wf.RELEASE_TAGS]
    calls = {job: node["uses"] for job, node in release["jobs"].items()}
    assert calls == {name.removesuffix(".yml"): f"./.github/workflows/{name}"
                     for name in TAG_CHECKING_JOBS}  # fmt: skip
    needs = {job: node.get("needs") for job, node in release["jobs"].items()}
    assert needs == {"images": None, "chart": "images", "flakehub": "images",
                     "docs": ["chart", "flakehub"]}  # fmt: skip


TAG_BREAKS = [
    ("release.yml", f'tags: ["{wf.RELEASE_TAGS}"]', 'tags: ["v*"]',
     "release.yml:21: tag filter ['v*'] is not [\"v[0-9]+.[0-9]+.[0-9]+\"]"),
    ("release.yml", f'  push:\n    tags: ["{wf.RELEASE_TAGS}"]\n', "  push:\n",
     "push starts on tags that are not releases"),
    ("docs.yml", "    branches: [main]\n", '    branches: [main]\n    tags: ["v*"]\n',
     "tag filter ['v*'] is not"),
    ("docs.yml", "    branches: [main]\n", '    branches: [main]\n    tags-ignore: ["v*-rc*"]\n',
     "push starts on tags that are not releases"),
    ("images.yml", CHECK_STEP, "", "job 'build' can run on a tag and never checks it"),
    ("chart.yml", CHECK_STEP, "", "job 'package' can run on a tag and never checks it"),
    ("flakehub.yml", FLAKEHUB_CHECK_STEP, "",
     "job 'publish' can run on a tag and never checks it"),
    ("docs.yml", DOCS_CHECK_STEP, "", "job 'deploy' can run on a tag and never checks it"),
    ("images.yml", "    needs: build\n", "", "job 'manifest' can run on a tag and never checks it"),
    ("chart.yml", "        run: make setup\n", "        run: make tools\n",
     "job 'package' checks the tag only after 'Install the project', which could already publish"),
    ("chart.yml", CHECK_STEP, CHECK_STEP.replace("${{ github.ref_name }}", "v2.0.0"),
     "job 'package' checks TAG, which is not ${{ github.ref_name }}"),
    ("docs.yml", "if: startsWith(github.ref, 'refs/tags/')\n        env:\n          TAG",
     "if: false\n        env:\n          TAG", "job 'deploy' may skip or ignore the tag check"),
    ("images.yml", CHECK_STEP, CHECK_STEP + "        continue-on-error: true\n",
     "job 'build' may skip or ignore the tag check"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    TAG_BREAKS,
    ids=[b[0] + "-" + re.sub(r"\W+", "-", b[3][:40]) for b in TAG_BREAKS],
)
def test_a_publishing_workflow_without_the_tag_check_is_caught(
    repo_root: Path, tmp_path: Path, name: str, old: str, new: str, message: str
) -> None:
    """Break test: a copy of a real workflow whose tag filter or tag check is broken fails the
    policy with the file and line."""
    path = broken(repo_root, tmp_path, name, old, new, 1)
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
    assert CI_COMMAND in wf.run_commands(repo_root / wf.WORKFLOWS / "ci.yml")
    makefile = (repo_root / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^test:.*## run every test", makefile, re.M), "Makefile has no test target"


def test_ci_prepares_what_make_test_needs_before_running_it(
    repo_root: Path, tmp_path: Path
) -> None:
    """With BETRACE_REQUIRE_TOOLS=1 a missing bwrap or snapshot fails `make test`: the job must
    install the system programs as root (the runner's user is not) and make the snapshot."""

    def missing(path: Path) -> list[str]:
        runs = wf.run_commands(path)
        test_at = runs.index(CI_COMMAND)
        needed = {
            "sudo scripts/install-system-deps --require": "the system programs, installed as root",
            "/python -m betrace_dist.upstream snapshot": "upstream's snapshot of the pinned commit",
            "BETRACE_UPSTREAM_DIR=": "the snapshot's folder, named to the tests",
        }
        return [why for text, why in needed.items()
                if not any(text in run for run in runs[:test_at])]  # fmt: skip

    assert missing(repo_root / wf.WORKFLOWS / "ci.yml") == []
    old = "run: sudo scripts/install-system-deps --require"
    without_sudo = broken(repo_root, tmp_path, "ci.yml", old, "run: scripts/install-system-deps")
    assert missing(without_sudo) == ["the system programs, installed as root"]


def test_ci_keeps_the_patched_app_build_keyed_by_the_inputs_patches_readme_names() -> None:
    """patches/README.md says a hosted runner keeps .cache/plugin-build/ keyed by its inputs:
    the ci workflow's cache step must be there with that path and those inputs."""
    readme = (REPO_ROOT / "patches" / "README.md").read_text(encoding="utf-8")
    said = readme[readme.index("keyed by the same inputs") :]
    inputs = re.findall(r"`([^`]+)`", said[: said.index(")")])
    assert inputs, "patches/README.md no longer names the cache key's inputs"
    doc = YAML(typ="safe").load((REPO_ROOT / wf.WORKFLOWS / "ci.yml").read_text(encoding="utf-8"))
    caches = [
        step.get("with", {})
        for step in doc["jobs"]["test"]["steps"]
        if str(step.get("uses", "")).startswith("actions/cache@")
    ]
    assert [c.get("path") for c in caches] == [".cache/plugin-build"], caches
    key = caches[0].get("key", "")
    assert [i for i in inputs if f"'{i}'" not in key] == [], key


def test_ci_running_pytest_directly_is_caught(repo_root: Path, tmp_path: Path) -> None:
    path = broken(repo_root, tmp_path, "ci.yml", "run: bash .ci/run", "run: .venv/bin/pytest -x")
    assert CI_COMMAND not in wf.run_commands(path)


def test_readme_test_command_is_the_one_ci_runs(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^\s*(make\s+\S*test\S*)\s*(?:#.*)?$", readme, re.M)
    assert commands, "README.md shows no test command"
    assert commands == [TEST_COMMAND] * len(commands)
    assert CI_COMMAND in wf.run_commands(repo_root / wf.WORKFLOWS / "ci.yml")
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
    ("images.yml", '          python-version: "3.11"\n      - name: Install the project',
     '          python-version: "3.11"\n          token: ${{ secrets.GITHUB_TOKEN }}\n'
     "      - name: Install the project",
     "job 'build' hands secrets.GITHUB_TOKEN to actions/setup-python (with:)"),
    ("flakehub.yml", f"{NIX_INSTALLER} # v22\n",
     f"{NIX_INSTALLER} # v22\n        with:\n"
     "          github-token: ${{ secrets.GITHUB_TOKEN }}\n",
     "job 'publish' hands secrets.GITHUB_TOKEN to DeterminateSystems/nix-installer-action (with:)"),
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


# --- images.yml: Docker builds of docker/Dockerfile, fed by releases.yaml ------------------------

IMAGES = REPO_ROOT / wf.WORKFLOWS / "images.yml"
RELEASE_STEP = "The Dockerfile builds the pinned commit"
BUILD_STEP = "Build and push one tag per architecture"
# Each flag the build command must carry, and why.
BUILD_FLAGS = {
    "docker buildx build": "builds with BuildKit",
    "--file docker/Dockerfile": "builds docker/Dockerfile",
    '--target "$target"': "builds each image as its own Dockerfile target",
    '--platform "linux/$ARCH"': "builds for the runner's architecture",
    '--build-arg "BETRACE_COMMIT=$COMMIT"': "passes the pinned commit from releases.yaml",
    '--build-arg "BETRACE_VERSION=$VERSION"': "passes the release version from releases.yaml",
    '--tag "$ref-$ARCH"': "tags ref-ARCH, which the manifest job joins",
    "--push": "pushes to the registry",
}


def step(path: Path, job: str, name: str) -> dict:  # type: ignore[type-arg]
    workflow = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    steps = workflow["jobs"][job]["steps"]
    found = [s for s in steps if s.get("name") == name]
    assert found, f"{path.name}: job {job} has no step named {name!r}"
    return found[0]  # type: ignore[no-any-return]


def build_problems(path: Path) -> list[str]:
    """What the build step of images.yml fails to do, one line per missing flag or input."""
    build = step(path, "build", BUILD_STEP)
    script = " ".join(line.strip().rstrip("\\") for line in build["run"].splitlines())
    problems = [
        f"{path.name}: step {BUILD_STEP!r} no longer {why} ({flag})"
        for flag, why in BUILD_FLAGS.items()
        if flag not in script
    ]
    wanted = {"IMAGES": "images", "COMMIT": "commit", "VERSION": "version"}
    for var, output in wanted.items():
        if build.get("env", {}).get(var) != f"${{{{ steps.release.outputs.{output} }}}}":
            problems.append(f"{path.name}: {var} is not the release step's '{output}' output")
    return problems


def release_step(path: Path) -> subprocess.CompletedProcess[str]:
    """The release step's Python, run for real with the project's interpreter."""
    run = step(path, "build", RELEASE_STEP)["run"]
    script = run.split("<<'PY'\n", 1)[1].rsplit("PY\n", 1)[0]
    return subprocess.run(
        [sys.executable, "-"], input=script, env=dict(os.environ),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_images_workflow_reads_every_image_from_the_release_data(release_data: ReleaseData) -> None:
    done = release_step(IMAGES)
    assert done.returncode == 0, done.stderr
    outputs = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert outputs["commit"] == release_data.current.upstream.commit
    assert outputs["version"] == release_data.current.version
    images = dict(pair.split("=", 1) for pair in outputs["images"].split())
    assert images == {
        name: f"{release_data.project.registry}/{name}:{tag.tag}"
        for name, tag in [
            ("backend", release_data.current.images.backend),
            ("grafana-plugin", release_data.current.images.grafana_plugin),
            ("plugin-init", release_data.current.images.plugin_init),
        ]
    }


def tag_check_args(path: Path, job: str) -> list[str]:
    """The arguments of the job's tag check (`betrace-dist ARGS "$TAG"`), the command its one
    tag-check step runs."""
    checks = [
        s
        for s in YAML(typ="safe").load(path.read_text(encoding="utf-8"))["jobs"][job]["steps"]
        if wf.TAG_CHECK.search(str(s.get("run") or ""))
    ]
    assert len(checks) == 1, f"{path.name}: job {job} has {len(checks)} tag checks"
    command = checks[0]["run"].strip().split()
    assert command[0].endswith("betrace-dist") and command[-1] == '"$TAG"', command
    return command[1:-1]


@pytest.mark.parametrize(("name", "job"), sorted(TAG_CHECKING_JOBS.items()))
def test_a_publishing_workflow_refuses_a_tag_that_is_not_the_release(
    release_data: ReleaseData, capsys: pytest.CaptureFixture[str], name: str, job: str
) -> None:
    """The job's check, run with the tag as GitHub gives it (`github.ref_name` of a tag push is
    the tag's name): the release's tag passes, any other fails and says why."""
    args = tag_check_args(REPO_ROOT / wf.WORKFLOWS / name, job)
    version = release_data.current.version
    assert cli([*args, f"v{version}"]) == 0, capsys.readouterr().err
    for tag in ["v0.0.1", f"v{version}-rc.1", version]:
        assert cli([*args, tag]) == 1, tag
        err = capsys.readouterr().err
        assert f"the release is {version} but the tag is {tag}" in err, err


def test_images_workflow_builds_the_dockerfile_with_the_release_args() -> None:
    assert build_problems(IMAGES) == []


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('              --build-arg "BETRACE_COMMIT=$COMMIT" \\\n', "",
         "no longer passes the pinned commit from releases.yaml"),
        ('--target "$target"', "--target backend",
         "no longer builds each image as its own Dockerfile target"),
        ("              --push \\\n", "", "no longer pushes to the registry"),
        ("COMMIT: ${{ steps.release.outputs.commit }}",
         "COMMIT: 0123456789abcdef0123456789abcdef01234567",
         "COMMIT is not the release step's 'commit' output"),
    ],
)  # fmt: skip
def test_a_broken_images_build_is_reported(
    repo_root: Path, tmp_path: Path, old: str, new: str, message: str
) -> None:
    problems = build_problems(broken(repo_root, tmp_path, "images.yml", old, new, 1))
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize("check", [wf.policy_problems, wf.hardening_problems])
def test_a_file_that_is_not_a_mapping_is_not_a_workflow(
    tmp_path: Path, check: Callable[[Path], list[Problem]]
) -> None:
    path = tmp_path / "list.yml"
    path.write_text("- a list\n", encoding="utf-8")
    assert [str(p) for p in check(path)] == [f"{path}:1: not a workflow (no top-level mapping)"]


def build_context_problems(workflow: Path, dockerfile: Path) -> list[str]:
    """The images workflow builds every target of docker/Dockerfile with the named build
    contexts the targets need (`--build-context NAME=`), at the line of its `buildx build`."""
    parsed = dockerfiles.parse(dockerfile)
    needed: dict[str, str] = {}
    for stage in parsed.stages:  # each name at its first use in the file
        for name, where in (
            dockerfiles.named_contexts(parsed, stage.name) if stage.name else {}
        ).items():
            needed.setdefault(name, where)
    text = workflow.read_text(encoding="utf-8")
    build = text.find("docker buildx build")
    assert build >= 0, f"{workflow.name}: no `docker buildx build`"
    line = text.count("\n", 0, build) + 1
    command = text[build : text.find("\n\n", build)]
    return [
        f"{workflow.name}:{line}: `docker buildx build` gives no --build-context {name}= "
        f"(used at {where})"
        for name, where in sorted(needed.items())
        if f"--build-context {name}=" not in command
    ]


def test_images_are_built_with_the_named_contexts_they_need(tmp_path: Path) -> None:
    workflow = REPO_ROOT / ".github/workflows/images.yml"
    dockerfile = REPO_ROOT / "docker/Dockerfile"
    assert build_context_problems(workflow, dockerfile) == []
    broken = tmp_path / "images.yml"
    text = workflow.read_text(encoding="utf-8")
    broken.write_text(text.replace("--build-context patches=patches \\\n", ""), encoding="utf-8")
    found = build_context_problems(broken, dockerfile)
    lines = dockerfile.read_text(encoding="utf-8").splitlines()
    used = next(n for n, ln in enumerate(lines, 1) if ln.startswith("COPY --from=patches"))
    assert found and "--build-context patches=" in found[0], found
    assert f"Dockerfile:{used})" in found[0], found


_PIP_INSTALL_PROJECT = re.compile(r"pip install\b(?P<args>[^\n]*?)\s\.(\s|$)")


def plain_project_installs(workflows: Path) -> list[str]:
    """`file:LINE` of each step that pip-installs this project without -e: the package finds
    releases.yaml beside its source (REPO_ROOT in betrace_dist/__init__.py), so a plain install
    into site-packages fails load_release_data() (checked statically: no runner here)."""
    found = []
    for path in sorted(workflows.glob("*.yml")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = _PIP_INSTALL_PROJECT.search(line)
            if match and not re.search(r"(^|\s)(-e|--editable)(\s|$)", match["args"]):
                found.append(f"{path.name}:{number}: {line.strip()}")
    return found


def test_workflows_install_the_project_editable(repo_root: Path) -> None:
    assert plain_project_installs(repo_root / ".github" / "workflows") == []


def test_a_plain_install_of_the_project_is_caught(repo_root: Path, tmp_path: Path) -> None:
    """Break test: the flakehub workflow as it was, whose release step could not find
    releases.yaml."""
    path = broken(repo_root, tmp_path, "flakehub.yml", "constraints.txt -e .", "constraints.txt .")
    found = plain_project_installs(path.parent)
    assert len(found) == 1 and found[0].startswith("flakehub.yml:"), found


#: pip's constraint option naming the lock: `-c constraints.txt`, `--constraint=./constraints.txt`
_LOCKED = re.compile(r"\s(-c|--constraint)(\s+|=)(\./)?constraints\.txt(\s|$)")


def unlocked_installs(workflows: Path) -> list[str]:
    """`file:LINE` of each pip install without the lock (`-c constraints.txt`): it could move
    a version the suite was tested with (docs/contributing/decisions.md; checked statically)."""
    found = []
    for path in sorted(workflows.glob("*.yml")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "pip install" in line and not _LOCKED.search(line):
                found.append(f"{path.name}:{number}: {line.strip()}")
    return found


def test_workflows_install_with_the_lock(repo_root: Path) -> None:
    assert unlocked_installs(repo_root / ".github" / "workflows") == []


@pytest.mark.parametrize(
    ("option", "refused"),
    [
        ("", True),
        ("--upgrade pip mike", True),
        ("-c other.txt", True),
        ("--constraint=./constraints.txt", False),
        ("--constraint constraints.txt", False),
    ],
)
def test_an_install_without_the_lock_is_caught(
    repo_root: Path, tmp_path: Path, option: str, refused: bool
) -> None:
    path = broken(repo_root, tmp_path, "docs.yml", "-c constraints.txt -e", f"{option} -e")
    found = unlocked_installs(path.parent)
    assert (found != []) == refused, found
    assert all(f.startswith("docs.yml:") for f in found), found


_PYTHON_VERSION = re.compile(r"^\s*python-version:\s*[\"']?(?P<version>[^\"'\s#]+)")
_LOCK_PYTHON = re.compile(r"^LOCK_PYTHON\s*:?=\s*(?P<version>\S+)\s*$", re.MULTILINE)


def other_pythons(workflows: Path, makefile: Path) -> list[str]:
    """`file:LINE` of each workflow's `python-version` other than the Python the lock is
    written with (the Makefile's LOCK_PYTHON): the lock's exact pins are of that Python, so a
    workflow on another may find no wheel of a pinned compiled package (checked statically)."""
    lock = _LOCK_PYTHON.search(makefile.read_text(encoding="utf-8"))
    if lock is None:
        return [f"{makefile.name}: no LOCK_PYTHON := <version> line"]
    found = []
    for path in sorted(workflows.glob("*.yml")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = _PYTHON_VERSION.search(line)
            if match and match["version"] != lock["version"]:
                found.append(
                    f"{path.name}:{number}: python-version {match['version']}, but the lock is "
                    f"written with {lock['version']} ({makefile.name} LOCK_PYTHON)"
                )
    return found


def test_workflows_run_the_python_the_lock_is_written_with(repo_root: Path) -> None:
    assert other_pythons(repo_root / ".github" / "workflows", repo_root / "Makefile") == []


def test_a_workflow_on_another_python_is_caught(repo_root: Path, tmp_path: Path) -> None:
    old, new = 'python-version: "3.11"', 'python-version: "3.12"'
    path = broken(repo_root, tmp_path, "docs.yml", old, new)
    (found,) = other_pythons(path.parent, repo_root / "Makefile")
    assert found.startswith("docs.yml:") and "3.12" in found and "LOCK_PYTHON" in found, found
    makefile = tmp_path / "Makefile"
    makefile.write_text("LOCK_PYTHON := 3.12\n", encoding="utf-8")
    every = other_pythons(repo_root / ".github" / "workflows", makefile)
    assert every and all("python-version 3.11, but" in f for f in every), every
    makefile.write_text("PYTHON := python3\n", encoding="utf-8")
    assert "no LOCK_PYTHON" in other_pythons(path.parent, makefile)[0]


def test_the_git_models_default_branch_is_the_one_the_workflows_run_on(repo_root: Path) -> None:
    """The release guide's `git switch main` and its pushes are judged against one default
    branch (gate/commands/git.py): the branch ci.yml and docs.yml run on when pushed to."""
    from betrace_dist.gate.commands.git import DEFAULT_BRANCH, REMOTE_BRANCHES

    for name in ("ci.yml", "docs.yml"):
        data = load_with_lines(repo_root / ".github" / "workflows" / name)
        assert data["on"]["push"]["branches"] == [DEFAULT_BRANCH], name
    docs = (repo_root / ".github" / "workflows" / "docs.yml").read_text(encoding="utf-8")
    for branch in REMOTE_BRANCHES:
        assert f"mike commits to {branch}" in docs, branch
