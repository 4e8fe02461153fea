"""The chart works with Helm 3 too (releases.yaml helm.minimum is a 3.x): Helm 3 lints every
scenario and renders the very objects Helm 4 renders (the schema refusals run on both Helm
versions in test_chart_values.py). Runs where a Helm 3 binary named `helm3` is installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.artefacts import chart_policy
from betrace_dist.artefacts.chart_policy import Helm, Manifest
from betrace_dist.release import ReleaseData

CHART = REPO_ROOT / "helm" / "betrace"
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))


def comparable(manifests: list[Manifest]) -> list[dict]:
    """Rendered objects without the random values of generated Secrets."""
    return [
        {**m.doc, "data": sorted(m.doc["data"])} if m.kind == "Secret" else m.doc for m in manifests
    ]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_helm3_lints_and_renders_what_helm4_renders(
    helm3: Helm, helm: Helm, release_data: ReleaseData, scenario: Path
) -> None:
    assert "0 chart(s) failed" in helm3.lint(CHART, [scenario])
    manifests = helm3.template(CHART, [scenario])
    assert comparable(manifests) == comparable(helm.template(CHART, [scenario]))
    values = chart_policy.load_values(scenario)
    external = chart_policy.external_secrets(values)
    grafana = chart_policy.grafana_enabled(values)
    assert chart_policy.check_all(manifests, release_data, external, grafana) == []
    generated = chart_policy.generated_secret_names(helm3, CHART, [scenario])
    existing = chart_policy.existing_secret_names(values)
    assert chart_policy.check_existing_secret_names(existing, generated) == []
