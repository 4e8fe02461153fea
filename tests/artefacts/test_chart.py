"""The BeTrace chart as shipped: every ci/ scenario lints, renders to valid Kubernetes objects and
passes the chart policy (src/betrace_dist/artefacts/chart_policy.py)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from betrace_dist import REPO_ROOT
from betrace_dist.artefacts import chart_policy
from betrace_dist.artefacts.chart_policy import Helm
from betrace_dist.release import ReleaseData

CHART = REPO_ROOT / "helm" / "betrace"
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
EXPECTED_SCENARIOS = {
    "default-values.yaml",
    "production-values.yaml",
    "external-observability-values.yaml",
    "plugin-image-values.yaml",
}


@pytest.fixture(scope="module")
def helm(tool: Callable[[str, str], str], tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(tool("helm", "run make tools"), tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> dict[str, list[chart_policy.Manifest]]:
    return {path.name: helm.template(CHART, [path]) for path in SCENARIOS}


def scenario_values(name: str) -> dict:
    return chart_policy.load_values(CHART / "ci" / name)


def kubernetes_versions(data: ReleaseData) -> list[str]:
    """The oldest Kubernetes the chart supports and the newest the validator knows."""
    return [data.current.kubernetes.minimum, kubernetes_validate.latest_version()]


def test_every_documented_scenario_exists() -> None:
    assert {p.name for p in SCENARIOS} == EXPECTED_SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_scenario_passes_helm_lint_strict(helm: Helm, scenario: Path) -> None:
    output = helm.lint(CHART, [scenario])
    assert "0 chart(s) failed" in output


@pytest.mark.parametrize("scenario", sorted(EXPECTED_SCENARIOS))
def test_scenario_renders_valid_kubernetes_objects(
    rendered: dict[str, list[chart_policy.Manifest]], release_data: ReleaseData, scenario: str
) -> None:
    manifests = rendered[scenario]
    assert manifests, f"{scenario} renders nothing"
    problems = chart_policy.validate_kubernetes(manifests, kubernetes_versions(release_data))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("scenario", sorted(EXPECTED_SCENARIOS))
def test_scenario_follows_the_chart_policy(
    rendered: dict[str, list[chart_policy.Manifest]], release_data: ReleaseData, scenario: str
) -> None:
    external = chart_policy.external_secrets(scenario_values(scenario))
    problems = chart_policy.check_all(rendered[scenario], release_data, external)
    assert not problems, "\n".join(problems)


def test_chart_metadata_and_defaults_match_release_data(release_data: ReleaseData) -> None:
    problems = chart_policy.check_chart_metadata(CHART, release_data)
    assert not problems, "\n".join(problems)


def test_backend_runs_exactly_one_replica_with_recreate(
    rendered: dict[str, list[chart_policy.Manifest]],
) -> None:
    for scenario, manifests in rendered.items():
        backend = [m for m in manifests if m.kind == "Deployment" and m.name.endswith("-backend")]
        assert len(backend) == 1, scenario
        assert backend[0].doc["spec"]["replicas"] == 1, scenario
        assert backend[0].doc["spec"]["strategy"] == {"type": "Recreate"}, scenario


def test_plugin_arrives_by_init_container_or_inside_the_image(
    rendered: dict[str, list[chart_policy.Manifest]], release_data: ReleaseData
) -> None:
    def grafana_pod(scenario: str) -> dict:
        (deployment,) = [
            m for m in rendered[scenario] if m.kind == "Deployment" and m.name.endswith("-grafana")
        ]
        return deployment.doc["spec"]["template"]["spec"]

    default = grafana_pod("default-values.yaml")
    assert [c["image"] for c in default["initContainers"]] == [
        release_data.image_ref("plugin-init")
    ]
    assert default["containers"][0]["image"] == release_data.current.observability.grafana.ref
    baked = grafana_pod("plugin-image-values.yaml")
    assert "initContainers" not in baked
    assert baked["containers"][0]["image"] == release_data.image_ref("grafana-plugin")


def test_production_scenario_uses_existing_secrets_and_tls(
    rendered: dict[str, list[chart_policy.Manifest]],
) -> None:
    manifests = rendered["production-values.yaml"]
    values = scenario_values("production-values.yaml")
    secrets = {m.name for m in manifests if m.kind == "Secret"}
    assert secrets.isdisjoint(
        {
            values["grafana"]["admin"]["existingSecret"],
            values["backend"]["signatureKey"]["existingSecret"],
        }
    ), "the chart must not render a Secret the user said already exists"
    ingresses = [m for m in manifests if m.kind == "Ingress"]
    assert len(ingresses) == 2
    assert all(m.doc["spec"].get("tls") for m in ingresses)


def test_external_observability_scenario_provisions_datasources_and_otlp(
    rendered: dict[str, list[chart_policy.Manifest]],
) -> None:
    manifests = rendered["external-observability-values.yaml"]
    values = scenario_values("external-observability-values.yaml")
    (datasources,) = [m for m in manifests if m.name.endswith("-datasources")]
    provisioned = YAML(typ="safe").load(datasources.doc["data"]["betrace.yaml"])
    assert {d["type"]: d["url"] for d in provisioned["datasources"]} == {
        "tempo": values["grafana"]["datasources"]["tempo"]["url"],
        "prometheus": values["grafana"]["datasources"]["prometheus"]["url"],
    }
    (backend,) = [m for m in manifests if m.kind == "Deployment" and m.name.endswith("-backend")]
    env = chart_policy.env_of(backend.doc["spec"]["template"]["spec"]["containers"][0])
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == values["backend"]["otlpEndpoint"]


def test_generated_secrets_are_random_not_literals(helm: Helm) -> None:
    """Two renderings give two passwords and keys: nothing secret is written in the chart."""

    def secrets() -> dict[str, str]:
        return {
            f"{m.name}/{key}": base64.b64decode(value).decode()
            for m in helm.template(CHART)
            if m.kind == "Secret"
            for key, value in m.doc["data"].items()
            if key != "admin-user"
        }

    first, second = secrets(), secrets()
    assert set(first) == {"betrace-backend/signature-key", "betrace-grafana-admin/admin-password"}
    for name, value in first.items():
        assert len(value) >= 32, name
        assert value != second[name], f"{name} is the same in two renderings: a literal"


def test_notes_tell_the_next_commands(helm: Helm) -> None:
    notes = helm.run("install", "betrace", str(CHART), "--dry-run=client", "-n", "betrace")
    assert "kubectl port-forward --namespace betrace service/betrace-grafana 3000:80" in notes
    assert "jsonpath='{.data.admin-password}'" in notes
    assert "helm test betrace --namespace betrace" in notes


def test_helm_test_hook_calls_backend_health(
    rendered: dict[str, list[chart_policy.Manifest]], release_data: ReleaseData
) -> None:
    (hook,) = [
        m
        for m in rendered["default-values.yaml"]
        if m.source.endswith("tests/test-backend-health.yaml")
    ]
    assert hook.doc["metadata"]["annotations"]["helm.sh/hook"] == "test"
    command = hook.doc["spec"]["containers"][0]["command"]
    port = release_data.current.backend.ports["http"].port
    assert command[0] == "wget"
    assert command[-1] == f"http://betrace-backend:{port}/v1/health"
