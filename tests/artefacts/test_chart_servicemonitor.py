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


def _monitor_values(tmp_path: Path, **fields: str) -> Path:
    values = tmp_path / "values.yaml"
    lines = "".join(f"    {key}: '{value}'\n" for key, value in fields.items())
    values.write_text(f"backend:\n  serviceMonitor:\n    enabled: true\n{lines}", "utf-8")
    return values


@pytest.mark.parametrize("key", ["interval", "scrapeTimeout"])
@pytest.mark.parametrize("duration", ["30 seconds", "1.5m", "30S"])
def test_a_duration_prometheus_cannot_read_is_refused_by_name(
    helm: Helm, helm3: Helm, tmp_path: Path, key: str, duration: str
) -> None:
    values = _monitor_values(tmp_path, **{key: duration})
    for binary in (helm, helm3):
        with pytest.raises(HelmError, match=re.escape(key)):
            binary.template(CHART, [values])


def test_a_zero_interval_renders_as_the_string_the_crd_types(helm: Helm, tmp_path: Path) -> None:
    """Unquoted, "0" rendered as the number 0, which the CRD (type: string) refuses."""
    monitor = _monitor(helm.template(CHART, [_monitor_values(tmp_path, interval="0")]))
    assert monitor.doc["spec"]["endpoints"][0]["interval"] == "0"
    assert crd_schemas.schema_problems(monitor.doc) == []


@pytest.mark.parametrize(
    ("interval", "timeout", "refused"),
    [
        ("30s", "45s", True),
        ("1m30s", "1m31s", True),
        ("500ms", "1s", True),
        ("1m", "59s", False),
        ("1m", "1m", False),
        ("1h", "59m59s999ms", False),
    ],
)
def test_a_timeout_longer_than_the_interval_is_refused(
    helm: Helm, helm3: Helm, tmp_path: Path, interval: str, timeout: str, refused: bool
) -> None:
    """The operator ignores such a ServiceMonitor (v0.93.0 resource_selector.go), and said so
    only in an event; every render passed it."""
    values = _monitor_values(tmp_path, interval=interval, scrapeTimeout=timeout)
    for binary in (helm, helm3):
        if refused:
            with pytest.raises(HelmError, match=r"scrapeTimeout: .* is longer than the interval"):
                binary.template(CHART, [values])
        else:
            assert _monitor(binary.template(CHART, [values]))


def test_a_label_the_chart_sets_keeps_the_charts_value(helm: Helm, tmp_path: Path) -> None:
    """A value naming one of the chart's labels rendered the key twice."""
    values = tmp_path / "values.yaml"
    values.write_text(
        "backend:\n  serviceMonitor:\n    enabled: true\n    labels:\n"
        "      app.kubernetes.io/name: other\n      release: kps\n",
        "utf-8",
    )
    manifests = helm.template(CHART, [values])
    text = helm.run("template", "betrace", str(CHART), "-f", str(values), "-n", "betrace")
    start = text.index("kind: ServiceMonitor")
    monitor_text = text[start : text.find("\n---", start) % (len(text) + 1)]
    assert monitor_text.count("app.kubernetes.io/name:") == 2  # one label, one selector key
    labels = _monitor(manifests).doc["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "betrace" and labels["release"] == "kps"
    assert chart_policy.check_monitors(manifests) == []


def test_the_monitors_labels_win_over_common_labels(helm: Helm) -> None:
    """A Prometheus selects the monitor by these labels: a commonLabels `release` of the
    platform's replaced kube-prometheus-stack's, and the monitor was never scraped."""
    manifests = helm.template(
        CHART,
        [SCENARIO],
        ["commonLabels.release=platform", "commonLabels.team=payments"],
    )
    labels = _monitor(manifests).doc["metadata"]["labels"]
    assert labels["release"] == "kube-prometheus-stack" and labels["team"] == "payments"
    service = [m for m in manifests if m.kind == "Service" and m.name == "betrace-backend"]
    assert service[0].doc["metadata"]["labels"]["release"] == "platform"


def test_the_values_schema_reads_durations_as_the_crd_does() -> None:
    import json

    crd = crd_schemas._schemas()["monitoring.coreos.com/v1/ServiceMonitor"]["definitions"]
    values = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    monitor = values["properties"]["backend"]["properties"]["serviceMonitor"]["properties"]
    for key in ("interval", "scrapeTimeout"):
        assert monitor[key]["pattern"] == "^$|" + crd["duration"]["pattern"], key
