"""Checkov, a second opinion next to the chart policy: the chart and the workflows pass it.

- The chart: every ci/*-values.yaml scenario is rendered by the real Helm 4
  (`helm template betrace helm/betrace -n betrace -f ci/X.yaml --output-dir ...`) and the
  manifests are scanned with `--framework kubernetes`. Checkov's own `helm` framework is not
  used: it renders only the chart's defaults, with whatever `helm` is first on PATH, and when
  none is found it logs an error and exits 0, a silent pass. Our rendering uses the pinned
  Helm and each scenario's values, and keeps one file per template, so a finding names it.
- The workflows: .github/workflows with `--framework github_actions`.
- The Compose file (docker/docker-compose.yml) is not scanned: checkov has no Compose framework
  (only Dockerfiles, and the repository has none). tests/artefacts/test_compose.py covers it.

The skips, each with its reason, are in .checkov.yaml at the repository root. Every scan also
asserts that checks really ran, and the break test proves that checkov still fails a chart made
privileged and root: a skip list that swallowed everything would pass every scan above.
Checkov lives in its own virtualenv (`make checkov`); without it these tests are skipped, or
fail under BETRACE_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from betrace_dist import REPO_ROOT, tools
from betrace_dist.artefacts import checkov
from betrace_dist.artefacts.chart_policy import Helm

from ..conftest import skip_or_fail

CHART = REPO_ROOT / "helm" / "betrace"
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
WORKFLOWS = REPO_ROOT / ".github" / "workflows"

#: fewer passed checks than this means checkov found (almost) nothing to scan
MIN_PASSED = {"kubernetes": 50, "github_actions": 5}

#: checks that .checkov.yaml skips for the whole chart but that fail on one pod only: without
#: the skip list they must fail there and nowhere else (the Deployments keep their coverage)
SKIP_SCOPE = {
    "CKV_K8S_8": {"Pod/betrace-test-health"},
    "CKV_K8S_9": {"Pod/betrace-test-health"},
    "CKV_K8S_40": {"Deployment/betrace-grafana"},  # the helm test pod runs as uid 65534 now
}

#: security contexts made privileged and root -> what checkov must report
BREAKS = {
    "allowPrivilegeEscalation: false\nprivileged: false": (
        "allowPrivilegeEscalation: true\nprivileged: true"
    ),
    "runAsNonRoot: true\nrunAsUser: {{ .runAsUser }}": "runAsNonRoot: false\nrunAsUser: 0",
    "runAsNonRoot: true\nrunAsUser: {{ . }}": "runAsNonRoot: false\nrunAsUser: 0",
}
BROKEN_IDS = {
    "CKV_K8S_16",  # Container should not be privileged
    "CKV_K8S_20",  # Containers should not run with allowPrivilegeEscalation
    "CKV_K8S_23",  # Minimize the admission of root containers
}


@pytest.fixture(scope="module")
def checkov_bin() -> str:
    found = checkov.find()
    if found:
        return found
    skip_or_fail(f"checkov is not installed in {checkov.VENV.name} ({tools.TOOLS['checkov'].hint})")
    raise AssertionError("unreachable")


def render(helm: Helm, chart: Path, values: Path | None, out: Path) -> Path:
    """The chart rendered as checkov will read it: one file per template under `out`."""
    args = ["--values", str(values)] if values else []
    helm.run(
        "template", "betrace", str(chart), "--namespace", "betrace", *args, "--output-dir", str(out)
    )
    assert any(out.rglob("*.yaml")), f"helm rendered nothing into {out}"
    return out


def assert_ran(report: checkov.Report) -> None:
    assert not report.parsing_errors, f"checkov could not parse: {report.parsing_errors}"
    assert report.passed > MIN_PASSED[report.framework], (
        f"only {report.passed} {report.framework} checks passed: did checkov scan anything?"
    )


def assert_clean(report: checkov.Report) -> None:
    assert_ran(report)
    assert not report.failed, (
        f"checkov {report.framework}: {len(report.failed)} failed checks (fix them, or skip them "
        "in .checkov.yaml with the reason):\n" + "\n".join(map(str, report.failed))
    )


def kind_and_name(finding: checkov.Finding) -> str:
    """'Pod.default.betrace-test-health' -> 'Pod/betrace-test-health'."""
    kind, _namespace, name = finding.resource.split(".", 2)
    return f"{kind}/{name}"


def test_skip_list_is_documented() -> None:
    """Each skipped check sits on its own line with a reason next to it."""
    config = YAML(typ="safe").load(checkov.CONFIG.read_text(encoding="utf-8"))
    skipped = config["skip-check"]
    assert config["skip-download"] is True, "checkov must not call its API (skip-download)"
    lines = checkov.CONFIG.read_text(encoding="utf-8").splitlines()
    for check_id in skipped:
        line = next((x for x in lines if x.strip().startswith(f"- {check_id} ")), "")
        reason = line.partition("#")[2].strip()
        assert len(reason) > 15, f".checkov.yaml: {check_id} is skipped without a reason"
    assert set(SKIP_SCOPE) <= set(skipped)


def test_scenarios_present() -> None:
    assert len(SCENARIOS) >= 5, f"expected the chart's ci/ scenarios, found {SCENARIOS}"


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.stem)
def test_chart_scenario_passes_checkov(
    checkov_bin: str, helm: Helm, values: Path, tmp_path: Path
) -> None:
    manifests = render(helm, CHART, values, tmp_path / "rendered")
    report = checkov.scan(checkov_bin, manifests, "kubernetes", tmp_path)
    assert_clean(report)


def test_workflows_pass_checkov(checkov_bin: str, tmp_path: Path) -> None:
    assert any(WORKFLOWS.glob("*.yml")), f"no workflows in {WORKFLOWS}"
    report = checkov.scan(checkov_bin, WORKFLOWS, "github_actions", tmp_path)
    assert_clean(report)


def test_chart_wide_skips_fail_only_where_expected(
    checkov_bin: str, helm: Helm, tmp_path: Path
) -> None:
    """Without .checkov.yaml, the pod-specific skipped checks fail on their pods and no other."""
    manifests = render(helm, CHART, None, tmp_path / "rendered")
    report = checkov.scan(checkov_bin, manifests, "kubernetes", tmp_path, config=None)
    assert_ran(report)
    for check_id, expected in SKIP_SCOPE.items():
        where = {kind_and_name(f) for f in report.failed if f.check_id == check_id}
        assert where == expected, (
            f"{check_id} fails on {sorted(where)}, expected {sorted(expected)}"
        )


def test_privileged_root_chart_fails_checkov(checkov_bin: str, helm: Helm, tmp_path: Path) -> None:
    """A copy of the chart with privileged, root containers: checkov reports it, skips or not."""
    chart = tmp_path / "betrace"
    shutil.copytree(CHART, chart)
    helpers = chart / "templates" / "_helpers.tpl"
    text = helpers.read_text(encoding="utf-8")
    for old, new in BREAKS.items():
        assert old in text, f"_helpers.tpl no longer contains {old!r}: update this test"
        text = text.replace(old, new)
    helpers.write_text(text, encoding="utf-8")

    manifests = render(helm, chart, None, tmp_path / "rendered")
    report = checkov.scan(checkov_bin, manifests, "kubernetes", tmp_path)
    assert_ran(report)
    missing = BROKEN_IDS - report.failed_ids()
    assert not missing, f"checkov did not report {sorted(missing)}; it reported:\n" + "\n".join(
        map(str, report.failed)
    )
    privileged = {kind_and_name(f) for f in report.failed if f.check_id == "CKV_K8S_16"}
    assert {"Deployment/betrace-backend", "Deployment/betrace-grafana"} <= privileged


# --- checkov's lock (constraints-checkov.txt, written by `make lock`) --------------------------


def test_the_checkov_lock_pins_pip_and_the_pinned_checkov() -> None:
    assert checkov.constraint_problems() == []


def test_a_broken_or_stale_checkov_lock_is_refused_at_its_line(tmp_path: Path) -> None:
    lock = tmp_path / "constraints-checkov.txt"
    lock.write_text("# header\nrequests>=2\n\ncheckov==3.0.0\n", encoding="utf-8")
    assert checkov.constraint_problems(lock) == [
        "constraints-checkov.txt:2: 'requests>=2' is not name==version",
        "constraints-checkov.txt: pip is not pinned; run make lock",
        f"constraints-checkov.txt:4: checkov is 3.0.0, CHECKOV_VERSION is "
        f"{checkov.CHECKOV_VERSION}; run make lock",
    ]
    assert checkov.constraint_problems(tmp_path / "none.txt") == [
        "none.txt: missing; run make lock"
    ]


def test_the_checkov_virtualenv_has_the_locked_versions(checkov_bin: str) -> None:
    """What `make checkov` installed is the lock, package by package (pip's freeze, with pip)."""
    import subprocess

    python = checkov.VENV / "bin" / "python"
    frozen = subprocess.run(
        [str(python), "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True
    ).stdout
    have = {n.lower(): v for n, _, v in (x.partition("==") for x in frozen.split()) if v}
    text = checkov.CONSTRAINTS.read_text(encoding="utf-8").splitlines()
    locked = [line.partition("==") for line in text if line and not line.startswith("#")]
    differ = [
        f"{n}: locked {v}, installed {have.get(n.lower())}"
        for n, _, v in locked
        if have.get(n.lower()) != v
    ]
    assert not differ, "run make checkov again:\n" + "\n".join(differ)
