"""The chart's ServiceMonitor (backend.serviceMonitor), rendered by the real Helm, held to the
Prometheus Operator's CRD schema (artefacts/data/crd-schemas/prometheus-operator.yaml, written
from prometheus-operator v0.93.0) and to the Service it scrapes. No Prometheus or cluster runs
here: what the operator makes of it is not tried."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.artefacts import chart_policy, crd_schemas
from betrace_dist.artefacts.chart_policy import Helm, HelmError, Manifest
from betrace_dist.release import ReleaseData

CHART = REPO_ROOT / "helm" / "betrace"
SCENARIO = CHART / "ci" / "prometheus-operator-values.yaml"


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> list[Manifest]:
    return helm.template(CHART, [SCENARIO])


def _monitor(manifests: list[Manifest]) -> Manifest:
    (monitor,) = [m for m in manifests if m.kind == "ServiceMonitor"]
    return monitor


def test_the_monitor_scrapes_the_backends_metrics_through_its_service(
    rendered: list[Manifest], release_data: ReleaseData
) -> None:
    monitor = _monitor(rendered)
    assert monitor.doc["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor.doc["spec"]
    assert spec["namespaceSelector"] == {"matchNames": ["betrace"]}
    (endpoint,) = spec["endpoints"]
    # the port the backend serves /metrics on, by the name its Service gives it
    (service,) = [m for m in rendered if m.kind == "Service" and m.name == "betrace-backend"]
    (http,) = [p for p in service.doc["spec"]["ports"] if p["name"] == endpoint["port"]]
    assert http["port"] == release_data.current.backend.ports["http"].port
    assert endpoint["path"] in {e.path for e in release_data.current.backend.endpoints}
    assert endpoint["interval"] == "30s"
    assert crd_schemas.schema_problems(monitor.doc) == []
    assert chart_policy.check_monitors(rendered) == []


def test_no_monitor_is_rendered_by_default(helm: Helm) -> None:
    assert [m for m in helm.template(CHART) if m.kind == "ServiceMonitor"] == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("selector", "selects no rendered Service"),
        ("port", "scrapes port 'metrics', which"),
    ],
)
def test_a_monitor_that_finds_no_target_is_refused(
    rendered: list[Manifest], change: str, reason: str
) -> None:
    broken = [copy.deepcopy(m) for m in rendered]
    spec = _monitor(broken).doc["spec"]
    if change == "selector":
        spec["selector"]["matchLabels"]["app.kubernetes.io/component"] = "grafana-backend"
    else:
        spec["endpoints"][0]["port"] = "metrics"
    (problem,) = chart_policy.check_monitors(broken)
    assert reason in problem, problem


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("interval", "'30 seconds' does not match"),
        ("unknown field", "'scrapeInterval' was unexpected"),
        ("no selector", "'selector' is a required property"),
    ],
)
def test_a_monitor_the_crd_refuses_is_refused_with_its_path(
    rendered: list[Manifest], change: str, reason: str
) -> None:
    doc: dict[str, Any] = copy.deepcopy(_monitor(rendered).doc)
    if change == "interval":
        doc["spec"]["endpoints"][0]["interval"] = "30 seconds"
    elif change == "unknown field":
        doc["spec"]["endpoints"][0]["scrapeInterval"] = "30s"
    else:
        del doc["spec"]["selector"]
    problems = chart_policy.validate_kubernetes([Manifest("m.yaml", doc)], ["1.25"])
    assert len(problems) == 1 and reason in problems[0], problems


@pytest.mark.parametrize("interval", ["30 seconds", "1.5m", "30S"])
def test_an_interval_prometheus_cannot_read_is_refused_by_name(
    helm: Helm, helm3: Helm, tmp_path: Path, interval: str
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        f"backend:\n  serviceMonitor:\n    enabled: true\n    interval: '{interval}'\n", "utf-8"
    )
    for binary in (helm, helm3):
        with pytest.raises(HelmError, match=re.escape("serviceMonitor")):
            binary.template(CHART, [values])
