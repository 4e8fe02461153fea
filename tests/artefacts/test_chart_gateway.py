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
        (ROUTE + "    paths: [{path: /v1//spans, type: Exact}]\n", "'not' failed"),
        (ROUTE + "    paths: [{path: /v1/../v1/spans, type: Exact}]\n", "'not' failed"),
        (ROUTE + "    paths: [{path: /v1%2Fspans, type: Exact}]\n", "'not' failed"),
        (ROUTE + "    hostnames: [Grafana.Example.com]\n", "does not match pattern"),
        (ROUTE.replace("{name: public}", "{name: public, namespace: Gateways}"), "pattern"),
        ("grafana:\n  httpRoute: {rootUrl: grafana.example.com}\n", "does not match pattern"),
        ("grafana:\n  httpRoute: {rootUrl: 'https://grafana.example.com?x/'}\n", "pattern"),
    ],
)
def test_values_a_route_cannot_work_with_are_refused_by_name(
    helm: Helm, helm3: Helm, tmp_path: Path, values: str, refused: str
) -> None:
    with pytest.raises(HelmError, match=refused) as caught:
        helm.template(CHART, [_route_values(tmp_path, values)])
    assert "httpRoute" in str(caught.value), caught.value
    # Helm 3 validates the values with another library, and words its refusals its own way
    with pytest.raises(HelmError, match="httpRoute"):
        helm3.template(CHART, [_route_values(tmp_path, values)])


def test_a_root_url_the_route_does_not_answer_is_refused(helm: Helm, tmp_path: Path) -> None:
    other = "grafana:\n  httpRoute:\n    rootUrl: https://other.example.com/\n"
    with pytest.raises(
        HelmError, match=re.escape("other.example.com is none of grafana.httpRoute")
    ):
        helm.template(CHART, [GATEWAY, _route_values(tmp_path, other)])
    wildcard = "grafana:\n  httpRoute:\n    hostnames: ['*.example.com']\n"
    assert len(_routes(helm.template(CHART, [GATEWAY, _route_values(tmp_path, wildcard)]))) == 2


def test_a_root_url_in_capitals_is_the_routes_host(helm: Helm, tmp_path: Path) -> None:
    """Host names match without regard to case: a review's rootUrl in capitals was refused."""
    upper = "grafana:\n  httpRoute:\n    rootUrl: https://Grafana.Example.com/\n"
    assert len(_routes(helm.template(CHART, [GATEWAY, _route_values(tmp_path, upper)]))) == 2


def test_a_grafana_route_without_grafana_is_refused(helm: Helm, tmp_path: Path) -> None:
    """It rendered nothing and said nothing: the reader expected Grafana behind the Gateway."""
    backend_only = "grafana:\n  enabled: false\n"
    with pytest.raises(HelmError, match=re.escape("grafana.httpRoute.enabled: grafana.enabled")):
        helm.template(CHART, [GATEWAY, _route_values(tmp_path, backend_only)])


def test_a_path_or_host_name_with_a_final_newline_is_refused() -> None:
    """Python's `$` also matches before a final newline; the API server's does not."""
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r"},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "hostnames": ["a.example.com\n"],
            "rules": [{"matches": [{"path": {"type": "Exact", "value": "/v1/spans\n"}}]}],
        },
    }
    problems = crd_schemas.schema_problems(route)
    assert [p.split(":")[0] for p in problems] == [
        "HTTPRoute spec.hostnames.0",
        "HTTPRoute spec.rules.0.matches.0.path.value",
    ], problems


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


def _gateway_tab_command() -> list[str]:
    """The words of the Gateway API tab's `helm install` in the Kubernetes guide, as written."""
    import shlex

    page = (REPO_ROOT / "docs" / "guides" / "deploy-on-kubernetes.md").read_text(encoding="utf-8")
    tab = page[page.index('=== "Gateway API"') :]
    block = tab[tab.index("```bash") + len("```bash") : tab.index("```", tab.index("```bash") + 7)]
    command = block.replace("\\\n", " ").strip().splitlines()[0]
    assert command.startswith("helm install"), command
    return shlex.split(command)


def test_the_guides_gateway_tab_installs_what_the_guide_says(
    helm: Helm, release_data: ReleaseData
) -> None:
    """The guide's Gateway tab, rendered with its own files in its own order: the ingresses off,
    the span intake alone published, Grafana routed, and both NetworkPolicies admitting the
    Gateway's namespace (a review put the files in the other order, dropped the file, and
    published the whole API: the page's gate passed all three, since the claims are prose)."""
    words = _gateway_tab_command()
    files = {
        "production-values.yaml": CHART / "ci" / "production-values.yaml",
        "gateway-values.yaml": GATEWAY,
        # the page's registry file sets image.registry and pullSecrets only: left out, so that
        # the images stay the release's, which the chart policy holds them to
        "registry-values.yaml": None,
    }
    named = [files[words[i + 1]] for i, word in enumerate(words) if word == "-f"]
    values = [path for path in named if path is not None]
    sets = [words[i + 1] for i, word in enumerate(words) if word == "--set"]
    assert GATEWAY in values, "the Gateway tab installs without gateway-values.yaml"
    manifests = helm.template(CHART, values, set_values=sets)
    assert [str(m) for m in manifests if m.kind == "Ingress"] == []
    routes = _routes(manifests)
    backend = routes["betrace-backend"]["spec"]["rules"]
    assert [r["matches"] for r in backend] == [[{"path": {"type": "Exact", "value": "/v1/spans"}}]]
    assert "betrace-grafana" in routes
    for component in ("backend", "grafana"):
        (policy,) = [m for m in manifests if m.kind == "NetworkPolicy" and component in m.name]
        admitted = {
            peer["namespaceSelector"]["matchLabels"].get("kubernetes.io/metadata.name")
            for rule in policy.doc["spec"]["ingress"]
            for peer in rule.get("from") or []
            if "namespaceSelector" in peer and "podSelector" not in peer
        }
        assert "gateway-system" in admitted, (component, admitted)
    assert chart_policy.check_all(manifests, release_data, _external(values)) == []


def _external(values: list[Path]) -> set[tuple[str, str]]:
    return {
        secret
        for path in values
        for secret in chart_policy.external_secrets(chart_policy.load_values(path))
    }


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


def _notes(helm: Helm, *args: str) -> str:
    """What `helm install` prints after NOTES:, with the chart and the arguments given."""
    out = helm.run("install", "--dry-run=client", "betrace", str(CHART), "-n", "betrace", *args)
    return out.partition("NOTES:")[2]


def test_notes_warn_that_the_route_exposes_the_backend(helm: Helm) -> None:
    notes = _notes(helm, "-f", str(GATEWAY))
    assert "backend.httpRoute attaches it to the Gateway gateway-system/public" in notes
    assert "Only the span intake (POST /v1/spans) is published" in notes
    assert "can read, create and delete rules" not in notes
    assert "Open Grafana at https://grafana.example.com/a/" in notes
    whole = _notes(
        helm,
        *("-f", str(GATEWAY), "--set", "backend.httpRoute.paths[0].type=PathPrefix"),
        *("--set", "grafana.httpRoute.rootUrl="),
    )
    assert "Whoever reaches it can read, create and delete rules." in whole
    assert "Open Grafana through your Gateway (grafana.example.com), at /a/" in whole
    mesh = _notes(
        helm,
        *("--set", "backend.httpRoute.enabled=true"),
        *("--set", "backend.httpRoute.parentRefs[0].name=mesh"),
        *("--set", "backend.httpRoute.parentRefs[0].kind=Service"),
        *("--set", "backend.httpRoute.parentRefs[0].group="),
    )
    assert "WARNING" not in mesh, "a mesh route (a Service parent) does not reach outside"
