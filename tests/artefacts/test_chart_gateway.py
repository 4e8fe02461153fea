"""The chart's Gateway API routes (backend.httpRoute, grafana.httpRoute), rendered by the real
Helm, held to the HTTPRoute CRD's schema (artefacts/data/crd-schemas/gateway-api.yaml, written
from gateway-api v1.6.1) and to the Services they send requests to. No Gateway or cluster runs
here: what a Gateway implementation does with the route is not tried."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.artefacts import chart_policy, crd_schemas
from betrace_dist.artefacts.chart_policy import Helm, HelmError, Manifest
from betrace_dist.release import ReleaseData

CHART = REPO_ROOT / "helm" / "betrace"
GATEWAY = CHART / "ci" / "gateway-values.yaml"


def _routes(manifests: list[Manifest]) -> dict[str, dict[str, Any]]:
    return {m.name: m.doc for m in manifests if m.kind == "HTTPRoute"}


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> list[Manifest]:
    return helm.template(CHART, [GATEWAY])


def test_the_routes_attach_to_the_gateway_and_reach_each_service(
    rendered: list[Manifest], release_data: ReleaseData
) -> None:
    routes = _routes(rendered)
    assert set(routes) == {"betrace-backend", "betrace-grafana"}
    backend, grafana = routes["betrace-backend"]["spec"], routes["betrace-grafana"]["spec"]
    gateway = [{"name": "public", "namespace": "gateway-system", "sectionName": "https"}]
    assert backend["parentRefs"] == gateway == grafana["parentRefs"]
    assert backend["hostnames"] == ["betrace-api.example.com"]
    # the span intake alone, at the backend's REST port as the release data gives it
    (rule,) = backend["rules"]
    assert rule["matches"] == [{"path": {"type": "Exact", "value": "/v1/spans"}}]
    http = release_data.current.backend.ports["http"].port
    assert rule["backendRefs"] == [{"name": "betrace-backend", "port": http}]
    assert grafana["rules"][0]["backendRefs"] == [{"name": "betrace-grafana", "port": 80}]
    assert chart_policy.check_routes(rendered) == []


def test_grafana_gets_the_routes_address_as_its_root_url(rendered: list[Manifest]) -> None:
    (deployment,) = [m for m in rendered if m.kind == "Deployment" and m.name == "betrace-grafana"]
    env = chart_policy.env_of(deployment.doc["spec"]["template"]["spec"]["containers"][0])
    assert env["GF_SERVER_ROOT_URL"]["value"] == "https://grafana.example.com/"


def test_no_route_is_rendered_by_default(helm: Helm) -> None:
    assert _routes(helm.template(CHART)) == {}


@pytest.mark.parametrize(
    ("values", "refused"),
    [
        # a route attached to nothing: accepted by the API server, served by no Gateway
        ("backend.httpRoute.enabled=true", "parentRefs"),
        ("grafana.httpRoute.enabled=true", "parentRefs"),
        # the Ingress word for a prefix match; HTTPRoute says PathPrefix
        ("backend.httpRoute.paths[0].type=Prefix", "type"),
        ("backend.httpRoute.paths[0].path=v1/spans", "path"),
        ("backend.httpRoute.hostnames[0]=Grafana.Example.com", "hostnames"),
        ("grafana.httpRoute.rootUrl=grafana.example.com", "rootUrl"),
    ],
)
def test_values_a_route_cannot_work_with_are_refused_by_name(
    helm: Helm, values: str, refused: str
) -> None:
    with pytest.raises(HelmError, match=refused):
        helm.template(CHART, set_values=[values])


def _broken(route: dict[str, Any], change: str) -> dict[str, Any]:
    doc = copy.deepcopy(route)
    rule = doc["spec"]["rules"][0]
    if change == "no port":
        del rule["backendRefs"][0]["port"]
    elif change == "relative path":
        rule["matches"][0]["path"]["value"] = "v1/spans"
    elif change == "unknown field":
        doc["spec"]["hostname"] = "x.example.com"
    elif change == "ingress path type":
        rule["matches"][0]["path"]["type"] = "Prefix"
    return doc


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("no port", "'port' is a required property"),
        ("relative path", "does not match '^/'"),
        ("unknown field", "'hostname' was unexpected"),
        ("ingress path type", "'Prefix' is not one of"),
    ],
)
def test_a_route_the_crd_refuses_is_refused_with_its_path(
    rendered: list[Manifest], change: str, reason: str
) -> None:
    """The schema's checks, each shown failing: the template could drift from the CRD."""
    route = _routes(rendered)["betrace-backend"]
    assert crd_schemas.schema_problems(route) == []
    problems = chart_policy.validate_kubernetes(
        [Manifest("backend-httproute.yaml", _broken(route, change))], ["1.25"]
    )
    assert len(problems) == 1 and reason in problems[0], problems
    assert problems[0].startswith("backend-httproute.yaml")


def test_a_route_or_ingress_to_a_port_the_service_lacks_is_refused(
    rendered: list[Manifest], helm: Helm
) -> None:
    broken = [copy.deepcopy(m) for m in rendered]
    for m in broken:
        if m.kind == "HTTPRoute" and m.name == "betrace-backend":
            m.doc["spec"]["rules"][0]["backendRefs"][0]["port"] = 8080
        if m.kind == "HTTPRoute" and m.name == "betrace-grafana":
            m.doc["spec"]["rules"][0]["backendRefs"][0]["name"] = "grafana"
    problems = chart_policy.check_routes(broken)
    assert any("port 8080 of Service 'betrace-backend'" in p for p in problems), problems
    assert any("Service 'grafana', which is not rendered" in p for p in problems), problems
    ingress = helm.template(CHART, [CHART / "ci" / "production-values.yaml"])
    assert chart_policy.check_routes(ingress) == []
    (backend_ingress,) = [m for m in ingress if m.kind == "Ingress" and m.name == "betrace-backend"]
    backend_ingress.doc["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {
        "name": "rest"
    }
    assert chart_policy.check_routes(ingress) == [
        f"{backend_ingress}: sends requests to port rest of Service 'betrace-backend', which has "
        "none"
    ]


def test_notes_warn_that_the_route_exposes_the_backend(helm: Helm) -> None:
    out = helm.run(
        "install", "--dry-run=client", "betrace", str(CHART), "-n", "betrace", "-f", str(GATEWAY)
    )
    notes = out.partition("NOTES:")[2]
    assert "backend.httpRoute attaches it to the Gateway gateway-system/public" in notes
    assert "Open Grafana at https://grafana.example.com/a/" in notes
