"""What makes the chart's pods restart, and their labels, rendered by the real Helm.

A change of a Deployment's pod template replaces its pods (Kubernetes' "Updating a Deployment"),
and a new backend pod starts with no violations (known issue violations-in-memory). So the pod
templates may change only with what the pods run: an upgrade to a chart version that changes
nothing else leaves them as they are. No cluster runs here: the pod templates are compared as
Helm renders them, which is what Kubernetes compares.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.artefacts.chart_policy import Helm, HelmError, Manifest

CHART = REPO_ROOT / "helm" / "betrace"
SCENARIOS = [
    [],
    [CHART / "ci" / "production-values.yaml"],
    [CHART / "ci" / "production-values.yaml", CHART / "ci" / "gateway-values.yaml"],
]
#: a Grafana data source, so that both of Grafana's provisioning ConfigMaps are rendered
DATASOURCE = ("grafana.datasources.tempo.url=http://tempo.observability:3200",)


def _pod_templates(manifests: list[Manifest]) -> dict[str, object]:
    return {m.name: m.doc["spec"]["template"] for m in manifests if m.kind == "Deployment"}


def _chart_of_version(tmp_path: Path, version: str) -> Path:
    """A copy of the chart with another chart version and nothing else changed."""
    chart = tmp_path / "betrace"
    shutil.copytree(CHART, chart)
    meta = chart / "Chart.yaml"
    text, count = re.subn(r"(?m)^version: .*$", f"version: {version}", meta.read_text("utf-8"))
    assert count == 1, "Chart.yaml has no version line: update this test"
    meta.write_text(text, encoding="utf-8")
    return chart


@pytest.mark.parametrize("values", SCENARIOS, ids=["defaults", "production", "gateway"])
def test_a_new_chart_version_alone_leaves_the_pods_as_they_are(
    helm: Helm, tmp_path: Path, values: list[Path]
) -> None:
    before = helm.template(CHART, values, DATASOURCE)
    after = helm.template(_chart_of_version(tmp_path, "99.0.0"), values, DATASOURCE)
    chart_labels = [m for m in after if m.doc["metadata"]["labels"].get("helm.sh/chart")]
    assert chart_labels and all(
        m.doc["metadata"]["labels"]["helm.sh/chart"] == "betrace-99.0.0" for m in chart_labels
    ), "the copy's objects carry its version: the test compares two different charts"
    assert set(_pod_templates(before)) == {"betrace-backend", "betrace-grafana"}
    assert _pod_templates(after) == _pod_templates(before)


def test_a_change_of_grafanas_provisioning_restarts_grafana(helm: Helm) -> None:
    """The checksum covers both ConfigMaps' data: the second is the data sources'."""

    def checksum(url: str) -> str:
        manifests = helm.template(CHART, (), (f"grafana.datasources.tempo.url={url}",))
        template = _pod_templates(manifests)["betrace-grafana"]
        return template["metadata"]["annotations"]["checksum/provisioning"]  # type: ignore[index]

    assert checksum("http://tempo.a:3200") != checksum("http://tempo.b:3200")


def test_common_labels_reach_every_object_and_the_pods(helm: Helm) -> None:
    manifests = helm.template(CHART, (), ("commonLabels.team=payments", *DATASOURCE))
    assert all(m.doc["metadata"]["labels"]["team"] == "payments" for m in manifests)
    for template in _pod_templates(manifests).values():
        assert template["metadata"]["labels"]["team"] == "payments"  # type: ignore[index]


@pytest.mark.parametrize(
    ("label", "why"),
    [
        ("app.kubernetes.io/component", "its selectors use it"),
        ("app.kubernetes.io/instance", "its selectors use it"),
        ("helm.sh/chart", "on every resource"),
        ("app.kubernetes.io/version", "on every resource"),
    ],
)
def test_a_common_label_the_chart_sets_itself_is_refused(helm: Helm, label: str, why: str) -> None:
    """Before, the key came twice in every object: the last one wins in Kubernetes' YAML
    reader, so the pods' component could differ from their Deployment's selector."""
    key = label.replace(".", r"\.")
    with pytest.raises(HelmError) as caught:
        helm.template(CHART, (), (f"commonLabels.{key}=x",))
    assert f"commonLabels: {label} is a label the chart sets itself ({why})" in str(caught.value)


def _grafana_env(manifests: list[Manifest]) -> dict[str, str]:
    (deployment,) = [m for m in manifests if m.kind == "Deployment" and m.name == "betrace-grafana"]
    (container,) = [
        c
        for c in deployment.doc["spec"]["template"]["spec"]["containers"]
        if c["name"] == "grafana"
    ]
    return {e["name"]: e.get("value", "") for e in container["env"]}


@pytest.mark.parametrize(
    ("values", "settings", "root", "secure"),
    [
        ([], (), None, False),
        (SCENARIOS[1], (), "https://grafana.example.com/", True),
        (SCENARIOS[2], (), "https://grafana.example.com/", True),
        (
            [],
            ("grafana.ingress.enabled=true", "grafana.ingress.host=g.example.com"),
            "http://g.example.com/",
            False,
        ),
        # the ingress gives the root URL when both are on: plain HTTP here, whatever the route says
        (
            SCENARIOS[2],
            (
                "grafana.ingress.enabled=true",
                "grafana.ingress.host=grafana.example.com",
                "grafana.ingress.tlsSecret=",
            ),
            "http://grafana.example.com/",
            False,
        ),
    ],
    ids=["defaults", "ingress-tls", "gateway-https", "ingress-http", "both"],
)
def test_grafanas_session_cookie_is_secure_where_it_is_served_over_https(
    helm: Helm, values: list[Path], settings: tuple[str, ...], root: str | None, secure: bool
) -> None:
    """Grafana's cookie_secure is false by default (conf/defaults.ini): behind TLS the session
    cookie would also be sent over plain HTTP to the same host."""
    env = _grafana_env(helm.template(CHART, values, settings))
    assert env.get("GF_SERVER_ROOT_URL") == root
    assert ("GF_SECURITY_COOKIE_SECURE" in env) is secure
    if secure:
        assert env["GF_SECURITY_COOKIE_SECURE"] == "true"


def test_extra_env_cannot_turn_the_secure_cookie_off(helm: Helm) -> None:
    with pytest.raises(HelmError) as caught:
        helm.template(
            CHART,
            SCENARIOS[1],
            (
                "grafana.extraEnv[0].name=GF_SECURITY_COOKIE_SECURE",
                "grafana.extraEnv[0].value=off",
            ),
        )
    assert "GF_SECURITY_COOKIE_SECURE is set by the chart itself" in str(caught.value)


@pytest.mark.parametrize("component", ["backend", "grafana"])
def test_pod_labels_and_priority_class_reach_the_pods_alone(helm: Helm, component: str) -> None:
    """podLabels win over commonLabels on the pods, and reach no other object."""
    manifests = helm.template(
        CHART,
        (),
        (
            f"{component}.podLabels.team=pods",
            "commonLabels.team=common",
            f"{component}.priorityClassName=betrace-critical",
        ),
    )
    pod = _pod_templates(manifests)[f"betrace-{component}"]
    assert pod["metadata"]["labels"]["team"] == "pods"  # type: ignore[index]
    assert pod["spec"]["priorityClassName"] == "betrace-critical"  # type: ignore[index]
    others = [m for m in manifests if m.kind != "Deployment"]
    assert others and all(m.doc["metadata"]["labels"]["team"] == "common" for m in others)
    (other,) = [
        p for name, p in _pod_templates(manifests).items() if name != f"betrace-{component}"
    ]
    assert "priorityClassName" not in other["spec"]  # type: ignore[index]


def test_a_pod_label_the_chart_sets_itself_is_refused(helm: Helm) -> None:
    with pytest.raises(HelmError) as caught:
        helm.template(CHART, (), (r"grafana.podLabels.app\.kubernetes\.io/component=x",))
    assert (
        "grafana.podLabels: app.kubernetes.io/component is a label the chart sets itself "
        "(its selectors use it); remove it from grafana.podLabels"
    ) in str(caught.value)
