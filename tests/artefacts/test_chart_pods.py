"""What makes the chart's pods restart, and their labels, rendered by the real Helm.

A change of a Deployment's pod template replaces its pods (Kubernetes' "Updating a Deployment"),
and a new backend pod starts with no violations (known issue violations-in-memory). So the pod
templates may change only with what the pods run: an upgrade to a chart version that changes
nothing else leaves them as they are. No cluster runs here: the pod templates are compared as
Helm renders them, which is what Kubernetes compares.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.artefacts import chart_policy
from betrace_dist.artefacts.chart_policy import Helm, HelmError, Manifest

CHART = REPO_ROOT / "helm" / "betrace"
SCENARIOS = [
    [],
    [CHART / "ci" / "production-values.yaml"],
    [CHART / "ci" / "production-values.yaml", CHART / "ci" / "gateway-values.yaml"],
]
#: a Grafana data source, so that both of Grafana's provisioning ConfigMaps are rendered
DATASOURCE = ("grafana.datasources.tempo.url=http://tempo.observability:3200",)


@pytest.fixture(scope="module", params=["helm", "helm3"])
def helm(request: pytest.FixtureRequest) -> Helm:
    """Helm 4, then Helm 3 (the guides take Helm 3.8 and later): `merge`, `deepCopy`,
    `splitList` and `fromYaml`, which these templates use, are their Sprig and Helm functions."""
    return request.getfixturevalue(request.param)


def _pod_templates(manifests: list[Manifest]) -> dict[str, object]:
    return {m.name: m.doc["spec"]["template"] for m in manifests if m.kind == "Deployment"}


def _chart_of_version(tmp_path: Path, version: str, field: str = "version") -> Path:
    """A copy of the chart with another version (or appVersion) and nothing else changed."""
    chart = tmp_path / "betrace"
    shutil.copytree(CHART, chart)
    meta = chart / "Chart.yaml"
    text, count = re.subn(rf"(?m)^{field}: .*$", f"{field}: {version}", meta.read_text("utf-8"))
    assert count == 1, f"Chart.yaml has no {field} line: update this test"
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


def test_an_app_version_alone_leaves_pods_with_pinned_images_as_they_are(
    helm: Helm, tmp_path: Path
) -> None:
    """With the images pinned by tag, a new appVersion changes nothing the pods run: the pods'
    version label once changed with it, and replaced them."""
    pinned = (
        "backend.image.tag=2.0.0",
        "grafana.plugin.initImage.tag=2.0.0",
        "grafana.plugin.pluginImage.tag=2.0.0",
        *DATASOURCE,
    )
    before = helm.template(CHART, (), pinned)
    after = helm.template(_chart_of_version(tmp_path, "9.9.9", "appVersion"), (), pinned)
    assert any(
        m.doc["metadata"]["labels"].get("app.kubernetes.io/version") == "9.9.9" for m in after
    ), "the copy's objects carry its appVersion: the test compares two different charts"
    assert _pod_templates(after) == _pod_templates(before)


@pytest.mark.parametrize(
    "setting",
    [
        "grafana.datasources.tempo.url=http://tempo.b:3200",  # the data sources' ConfigMap
        "grafana.plugin.backendUrl=http://betrace.elsewhere:12011",  # the app's ConfigMap
    ],
)
def test_a_change_of_grafanas_provisioning_restarts_grafana(helm: Helm, setting: str) -> None:
    """The checksum covers the data of both ConfigMaps."""

    def checksum(*settings: str) -> str:
        manifests = helm.template(CHART, (), (*DATASOURCE, *settings))
        template = _pod_templates(manifests)["betrace-grafana"]
        return template["metadata"]["annotations"]["checksum/provisioning"]  # type: ignore[index]

    assert checksum() != checksum(setting)


def test_common_labels_reach_every_object_and_the_pods(helm: Helm) -> None:
    manifests = helm.template(CHART, (), ("commonLabels.team=payments", *DATASOURCE))
    assert all(m.doc["metadata"]["labels"]["team"] == "payments" for m in manifests)
    for template in _pod_templates(manifests).values():
        assert template["metadata"]["labels"]["team"] == "payments"  # type: ignore[index]


@pytest.mark.parametrize(
    "label", ["app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"]
)
def test_a_common_label_the_selectors_use_is_refused(helm: Helm, label: str) -> None:
    """Before, the key came twice in every object: the last one wins in Kubernetes' YAML
    reader, so the pods' component could differ from their Deployment's selector."""
    key = label.replace(".", r"\.")
    with pytest.raises(HelmError) as caught:
        helm.template(CHART, (), (f"commonLabels.{key}=x",))
    message = f"commonLabels: {label} is a label the chart's selectors use; remove it"
    assert message in str(caught.value)


def test_a_common_label_may_replace_the_charts_part_of_once(helm: Helm) -> None:
    """app.kubernetes.io/part-of names the larger application: an operator's value replaces
    the chart's, with one key per object (two keys of one name were rendered before)."""
    manifests = helm.template(CHART, (), (r"commonLabels.app\.kubernetes\.io/part-of=platform",))
    for m in manifests:
        assert m.doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "platform", m.name
    for template in _pod_templates(manifests).values():
        labels = template["metadata"]["labels"]  # type: ignore[index]
        assert labels["app.kubernetes.io/part-of"] == "platform"
    rendered = helm.run(
        "template",
        "betrace",
        str(CHART),
        "--set",
        r"commonLabels.app\.kubernetes\.io/part-of=platform",
    )
    assert "part-of: betrace" not in rendered


def _grafana_env(manifests: list[Manifest]) -> dict[str, str]:
    (deployment,) = [m for m in manifests if m.kind == "Deployment" and m.name == "betrace-grafana"]
    (container,) = [
        c
        for c in deployment.doc["spec"]["template"]["spec"]["containers"]
        if c["name"] == "grafana"
    ]
    return {name: e.get("value", "") for name, e in chart_policy.env_of(container).items()}


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


def test_an_empty_label_value_is_a_value(helm: Helm, tmp_path: Path) -> None:
    """Sprig's merge takes "" for no value: an empty podLabel lost to commonLabels, and an
    empty part-of to the chart's. Kubernetes takes an empty label value."""
    values = tmp_path / "labels.yaml"
    values.write_text(
        json.dumps(
            {
                "commonLabels": {"app.kubernetes.io/part-of": "", "team": "a"},
                "backend": {"podLabels": {"team": ""}},
            }
        ),
        encoding="utf-8",
    )
    manifests = helm.template(CHART, [values])
    pod = _pod_templates(manifests)["betrace-backend"]["metadata"]["labels"]  # type: ignore[index]
    assert pod["team"] == "" and pod["app.kubernetes.io/part-of"] == ""
    assert all(m.doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "" for m in manifests)


def test_a_pod_label_the_chart_sets_itself_is_refused(helm: Helm) -> None:
    with pytest.raises(HelmError) as caught:
        helm.template(CHART, (), (r"grafana.podLabels.app\.kubernetes\.io/component=x",))
    assert (
        "grafana.podLabels: app.kubernetes.io/component is a label the chart's selectors use; "
        "remove it from grafana.podLabels"
    ) in str(caught.value)
