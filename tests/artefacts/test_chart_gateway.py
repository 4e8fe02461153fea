"""The chart's Gateway API routes (backend.httpRoute, grafana.httpRoute), rendered by the real
Helm, held to the HTTPRoute CRD's schema (artefacts/data/crd-schemas/gateway-api.yaml, written
from gateway-api v1.6.1) and to the Services they send requests to. No Gateway or cluster runs
here: what a Gateway implementation does with the route is not tried."""

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


def _route_values(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(text, encoding="utf-8")
    return path


ROUTE = "backend:\n  httpRoute:\n    enabled: true\n    parentRefs: [{name: public}]\n"


@pytest.mark.parametrize(
    ("values", "refused"),
    [
        # a route attached to nothing: accepted by the API server, served by no Gateway
        ("backend:\n  httpRoute: {enabled: true}\n", "httpRoute/parentRefs': minItems"),
        ("grafana:\n  httpRoute: {enabled: true}\n", "httpRoute/parentRefs': minItems"),
        (ROUTE.replace("[{name: public}]", "null"), "missing property 'parentRefs'"),
        # no paths: the API server's default, PathPrefix /, would publish the whole API
        (ROUTE + "    paths: null\n", "missing property 'paths'"),
        # the Ingress word for a prefix match; HTTPRoute says PathPrefix
        (ROUTE + "    paths: [{path: /v1/spans, type: Prefix}]\n", "value must be one of"),
        # paths the CRD's rules refuse: relative, a query, '//', '/../', an encoded slash
        (ROUTE + "    paths: [{path: v1/spans, type: Exact}]\n", "does not match pattern"),
        (ROUTE + "    paths: [{path: '/v1/spans?a=1', type: Exact}]\n", "does not match pattern"),
        (ROUTE + "    paths: [{path: /v1//spans, type: Exact}]\n", "not"),
        (ROUTE + "    paths: [{path: /v1/../v1/spans, type: Exact}]\n", "not"),
        (ROUTE + "    paths: [{path: /v1%2Fspans, type: Exact}]\n", "not"),
        (ROUTE + "    hostnames: [Grafana.Example.com]\n", "does not match pattern"),
        (ROUTE.replace("{name: public}", "{name: public, namespace: Gateways}"), "pattern"),
        ("grafana:\n  httpRoute: {rootUrl: grafana.example.com}\n", "does not match pattern"),
    ],
)
def test_values_a_route_cannot_work_with_are_refused_by_name(
    helm: Helm, tmp_path: Path, values: str, refused: str
) -> None:
    with pytest.raises(HelmError, match=refused) as caught:
        helm.template(CHART, [_route_values(tmp_path, values)])
    assert "httpRoute" in str(caught.value), caught.value


def test_a_root_url_the_route_does_not_answer_is_refused(helm: Helm, tmp_path: Path) -> None:
    other = "grafana:\n  httpRoute:\n    rootUrl: https://other.example.com/\n"
    with pytest.raises(
        HelmError, match=re.escape("other.example.com is none of grafana.httpRoute")
    ):
        helm.template(CHART, [GATEWAY, _route_values(tmp_path, other)])
    wildcard = "grafana:\n  httpRoute:\n    hostnames: ['*.example.com']\n"
    assert len(_routes(helm.template(CHART, [GATEWAY, _route_values(tmp_path, wildcard)]))) == 2


def test_after_the_production_values_the_ingresses_give_way_to_the_routes(
    helm: Helm, release_data: ReleaseData
) -> None:
    """The guide's Gateway tab gives gateway-values.yaml after production-values.yaml and says
    the ingresses are then off, the span intake alone is published, and the Gateway's
    namespace is admitted."""
    manifests = helm.template(CHART, [CHART / "ci" / "production-values.yaml", GATEWAY])
    assert [m for m in manifests if m.kind == "Ingress"] == []
    backend = _routes(manifests)["betrace-backend"]["spec"]["rules"][0]
    assert backend["matches"] == [{"path": {"type": "Exact", "value": "/v1/spans"}}]
    (policy,) = [m for m in manifests if m.kind == "NetworkPolicy" and "backend" in m.name]
    sources = [
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for rule in policy.doc["spec"]["ingress"]
        for peer in rule.get("from") or []
        if "namespaceSelector" in peer and "podSelector" not in peer
    ]
    assert sources == ["gateway-system", "observability"], sources
    external = chart_policy.external_secrets(
        chart_policy.load_values(CHART / "ci" / "production-values.yaml")
    )
    assert chart_policy.check_all(manifests, release_data, external) == []


def test_the_values_schema_holds_routes_to_the_crds_rules() -> None:
    """values.yaml repeats the CRD schema's parentRef, host name and path rules, so that Helm
    refuses by the value's name what the API server would refuse: the two must not drift."""
    import json

    definitions = crd_schemas._schemas()["gateway.networking.k8s.io/v1/HTTPRoute"]["definitions"]

    def resolved(node: Any) -> Any:
        if isinstance(node, dict) and "$ref" in node:
            return resolved(definitions[node["$ref"].rpartition("/")[2]])
        if isinstance(node, dict):
            return {key: resolved(value) for key, value in node.items()}
        return node

    crd = resolved(definitions)
    values = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    for who in ("backend", "grafana"):
        route = values["properties"][who]["properties"]["httpRoute"]["properties"]
        assert route["parentRefs"]["items"] == crd["parentReference"], who
        assert route["hostnames"]["items"] == crd["hostname"], who
    path = values["properties"]["backend"]["properties"]["httpRoute"]["properties"]["paths"]
    rule = path["items"]["properties"]["path"]
    assert {k: rule[k] for k in ("pattern", "not")} == crd["absolutePath"]


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
        ("relative path", "'v1/spans' does not match"),
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
    assert "backend.httpRoute attaches it to gateway-system/public" in notes
    assert "Only the span intake (POST /v1/spans) is published" in notes
    assert "can read, create and delete rules" not in notes
    assert "Open Grafana at https://grafana.example.com/a/" in notes
    whole = helm.run(
        "install",
        "--dry-run=client",
        "betrace",
        str(CHART),
        "-n",
        "betrace",
        "-f",
        str(GATEWAY),
        "--set",
        "backend.httpRoute.paths[0].type=PathPrefix",
        "--set",
        "grafana.httpRoute.rootUrl=",
    ).partition("NOTES:")[2]
    assert "Whoever reaches it can read, create and delete rules." in whole
    assert "Open Grafana through your Gateway (grafana.example.com), at /a/" in whole
