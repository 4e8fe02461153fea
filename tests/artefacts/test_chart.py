"""The BeTrace chart as shipped: every ci/ scenario lints, renders to valid Kubernetes objects and
passes the chart policy (src/betrace_dist/artefacts/chart_policy.py)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
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
    "backend-only-values.yaml",
    "gitops-values.yaml",
    "rules-values.yaml",
    "gateway-values.yaml",
    "prometheus-operator-values.yaml",
}


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
    values = scenario_values(scenario)
    external = chart_policy.external_secrets(values)
    grafana = chart_policy.grafana_enabled(values)
    problems = chart_policy.check_all(rendered[scenario], release_data, external, grafana)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_existing_secrets_never_take_a_name_the_chart_generates(helm: Helm, scenario: Path) -> None:
    """A Secret created beforehand must not be one an install of release betrace owns."""
    existing = chart_policy.existing_secret_names(chart_policy.load_values(scenario))
    generated = chart_policy.generated_secret_names(helm, CHART, [scenario])
    assert generated, "the chart generates no Secret: the check would be void"
    problems = chart_policy.check_existing_secret_names(existing, generated)
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


def test_production_ingress_takes_a_body_as_large_as_the_backend_does(
    rendered: dict[str, list[chart_policy.Manifest]], release_data: ReleaseData
) -> None:
    """ingress-nginx answers a body over its proxy-body-size (1m by default: bodySize in
    internal/ingress/controller/config/config.go at controller-v1.15.1) with 413. nginx's `m`
    is megabytes (nginx.org/en/docs/syntax.html, which does not say 1000 or 1024: the test takes
    1024 * 1024, as the guide does; not run through an nginx here). The backend's own limit is
    release data."""
    (limit,) = [x for x in release_data.current.backend.limits if x.name == "request_body"]
    (ingress,) = [
        m
        for m in rendered["production-values.yaml"]
        if m.kind == "Ingress" and m.name == "betrace-backend"
    ]
    size = ingress.doc["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert size == f"{limit.value // (1024 * 1024)}m" and limit.value % (1024 * 1024) == 0


def object_names(manifests: list[chart_policy.Manifest]) -> set[tuple[str, str]]:
    return {(m.kind, m.name) for m in manifests}


def test_backend_only_scenario_renders_the_backend_and_nothing_of_grafana(
    rendered: dict[str, list[chart_policy.Manifest]],
) -> None:
    manifests = rendered["backend-only-values.yaml"]
    assert object_names(manifests) == {
        ("ServiceAccount", "betrace"),
        ("Secret", "betrace-backend"),
        ("PersistentVolumeClaim", "betrace-backend"),
        ("Service", "betrace-backend"),
        ("Deployment", "betrace-backend"),
        ("Ingress", "betrace-backend"),
        ("NetworkPolicy", "betrace-backend"),
        ("Pod", "betrace-test-health"),
    }
    assert chart_policy.check_no_grafana(manifests) == []
    assert not any("grafana" in m.source.rpartition("/")[2] for m in manifests)


def test_backend_only_ingress_publishes_the_span_intake_only(
    rendered: dict[str, list[chart_policy.Manifest]],
) -> None:
    """backend.ingress.paths decides what the Ingress publishes: here POST /v1/spans and nothing
    else, so the rules API (no authentication) stays inside the cluster."""
    (ingress,) = [m for m in rendered["backend-only-values.yaml"] if m.kind == "Ingress"]
    (rule,) = ingress.doc["spec"]["rules"]
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [("/v1/spans", "Exact")]
    assert rule["http"]["paths"][0]["backend"] == {
        "service": {"name": "betrace-backend", "port": {"name": "http"}}
    }
    # The production example publishes the span intake only too (the guide says so).
    (production,) = [
        m
        for m in rendered["production-values.yaml"]
        if m.name == "betrace-backend" and m.kind == "Ingress"
    ]
    (rule,) = production.doc["spec"]["rules"]
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [("/v1/spans", "Exact")]
    # The chart's default is still the whole API, as before the value existed.
    default = YAML(typ="safe").load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert default["backend"]["ingress"]["paths"] == [{"path": "/", "pathType": "Prefix"}]


def without_grafana_peer(doc: dict) -> dict:
    """A backend NetworkPolicy without its peer for this release's Grafana pod."""
    rules = [
        {**rule, "from": [p for p in rule["from"] if p != GRAFANA_PEER]}
        for rule in doc["spec"]["ingress"]
    ]
    return {**doc, "spec": {**doc["spec"], "ingress": rules}}


def test_turning_grafana_off_leaves_every_backend_object_as_it_was(helm: Helm) -> None:
    """grafana.enabled=false removes Grafana's objects and changes nothing else but the backend
    policy's peer for Grafana's pod (the app's proxy route calls the backend from that pod)."""

    def comparable(manifests: list[chart_policy.Manifest]) -> dict[tuple[str, str], dict]:
        return {
            (m.kind, m.name): {**m.doc, "data": sorted(m.doc["data"])}
            if m.kind == "Secret"
            else without_grafana_peer(m.doc)
            if (m.kind, m.name) == ("NetworkPolicy", "betrace-backend")
            else m.doc
            for m in manifests
        }

    for scenario in ("default-values.yaml", "production-values.yaml"):
        path = CHART / "ci" / scenario
        with_grafana = comparable(helm.template(CHART, [path]))
        without = comparable(helm.template(CHART, [path], ["grafana.enabled=false"]))
        grafana_objects = {key for key in with_grafana if "-grafana" in key[1]}
        assert grafana_objects, scenario
        assert set(without) == set(with_grafana) - grafana_objects, scenario
        assert without == {k: v for k, v in with_grafana.items() if k in without}, scenario


GRAFANA_PEER = {
    "podSelector": {
        "matchLabels": {
            "app.kubernetes.io/name": "betrace",
            "app.kubernetes.io/instance": "betrace",
            "app.kubernetes.io/component": "grafana",
        }
    }
}


def test_backend_network_policy_admits_the_ingress_controller_and_the_test_pod(
    rendered: dict[str, list[chart_policy.Manifest]],
) -> None:
    """Browsers reach the backend through the ingress controller, never from a Grafana pod."""
    values = scenario_values("backend-only-values.yaml")
    (policy,) = [m for m in rendered["backend-only-values.yaml"] if m.kind == "NetworkPolicy"]
    (rule,) = policy.doc["spec"]["ingress"]
    assert {p["port"] for p in rule["ports"]} == {12011, 12012}
    peers = rule["from"]
    assert peers[:-1] == values["networkPolicy"]["backendFrom"]
    assert peers[-1] == {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": "betrace",
                "app.kubernetes.io/instance": "betrace",
                "app.kubernetes.io/component": "test",
            }
        }
    }
    (hook,) = [m for m in rendered["backend-only-values.yaml"] if m.kind == "Pod"]
    assert peers[-1]["podSelector"]["matchLabels"].items() <= hook.doc["metadata"]["labels"].items()


def test_every_rendered_backend_network_policy_lists_its_sources(
    rendered: dict[str, list[chart_policy.Manifest]], release_data: ReleaseData
) -> None:
    """Production once enabled a policy with no sources, which admitted every pod."""
    policies = [
        m
        for manifests in rendered.values()
        for m in manifests
        if m.kind == "NetworkPolicy" and m.name == "betrace-backend"
    ]
    assert len(policies) >= 2, "production and backend-only both turn the policy on"
    for manifests in rendered.values():
        assert chart_policy.check_network_policies(manifests, release_data) == []
    values = scenario_values("production-values.yaml")
    (policy,) = [
        m
        for m in rendered["production-values.yaml"]
        if m.kind == "NetworkPolicy" and m.name == "betrace-backend"
    ]
    peers = policy.doc["spec"]["ingress"][0]["from"]
    assert peers[:-2] == values["networkPolicy"]["backendFrom"]
    # the release's Grafana pod, whose plugin proxy route calls the backend for the app
    assert peers[-1] == GRAFANA_PEER
    (grafana,) = [m for m in rendered["production-values.yaml"] if m.name == "betrace-grafana"
                  and m.kind == "Deployment"]  # fmt: skip
    labels = grafana.doc["spec"]["template"]["metadata"]["labels"]
    assert GRAFANA_PEER["podSelector"]["matchLabels"].items() <= labels.items()


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


def test_backend_only_notes_point_to_the_guide_and_the_backend(
    helm: Helm, release_data: ReleaseData
) -> None:
    folder = release_data.current.site_folder
    guide = f"{release_data.project.site_url}{folder}/guides/add-betrace-to-an-existing-grafana/"
    scenario = CHART / "ci" / "backend-only-values.yaml"
    notes = helm.run(
        "install", "betrace", str(CHART), "--dry-run=client", "-n", "betrace", "-f", str(scenario)
    )
    notes = notes[notes.index("NOTES:") :]
    assert guide in notes
    assert "grafana.enabled is false" in notes
    # Grafana's server calls the backend: its Service, whatever the backend ingress
    assert "backendUrl: http://betrace-backend.betrace.svc:12011" in notes
    assert "helm test betrace --namespace betrace" in notes
    assert "grafana-admin" not in notes
    assert "service/betrace-grafana" not in notes
    # Without a backend ingress too: the app needs neither ingress nor port-forward.
    notes = helm.run(
        "install",
        "betrace",
        str(CHART),
        "--dry-run=client",
        "-n",
        "betrace",
        "--set",
        "grafana.enabled=false",
    )
    assert guide in notes
    assert "backendUrl: http://betrace-backend.betrace.svc:12011" in notes
    assert "kubectl port-forward --namespace betrace service/betrace-backend" not in notes


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
    # A small pinned image with wget, not a whole Grafana (the chart's tests.image default).
    tests = chart_policy.load_values(CHART / "values.yaml")["tests"]
    image = hook.doc["spec"]["containers"][0]["image"]
    assert image == f"{tests['image']['repository']}:{tests['image']['tag']}"
    assert image.startswith("docker.io/library/busybox:")
    assert image != release_data.current.observability.grafana.ref


def test_backend_pod_outlasts_the_slow_stop(
    rendered: dict[str, list[chart_policy.Manifest]],
) -> None:
    for scenario, manifests in rendered.items():
        (backend,) = [
            m for m in manifests if m.kind == "Deployment" and m.name.endswith("-backend")
        ]
        grace = backend.doc["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace >= chart_policy.MIN_GRACE_SECONDS == 30, scenario


def chart_texts(helm: Helm) -> dict[str, str]:
    """Every text file of helm/, and the NOTES Helm prints for each scenario."""
    texts = {
        str(path.relative_to(REPO_ROOT)): path.read_text(encoding="utf-8")
        for path in sorted((REPO_ROOT / "helm").rglob("*"))
        if path.is_file() and path.suffix in {".md", ".txt", ".yaml", ".yml", ".json", ".tpl"}
    }
    for scenario in SCENARIOS:
        out = helm.run(
            "install",
            "betrace",
            str(CHART),
            "--dry-run=client",
            "-n",
            "betrace",
            "-f",
            str(scenario),
        )
        texts[f"NOTES.txt ({scenario.name})"] = out[out.index("NOTES:") :]
    return texts


def test_every_site_link_in_the_chart_is_a_page_of_the_site(
    helm: Helm, release_data: ReleaseData
) -> None:
    texts = chart_texts(helm)
    site = release_data.project.site_url
    assert f"{site}latest/guides/" in texts["helm/betrace/README.md"], "the README links a guide"
    problems = chart_policy.check_site_links(texts, release_data, REPO_ROOT / "docs")
    assert not problems, "\n".join(problems)


def test_the_notes_link_the_site_of_the_charts_own_release(
    helm: Helm, release_data: ReleaseData
) -> None:
    """NOTES linked latest/, which moves to each new release: a reader of an older chart got
    pages that may describe values their chart does not have. They link the release's X.Y
    folder, which docs.yml deploys from its tag vX.Y.Z."""
    site = release_data.project.site_url
    folder = release_data.current.site_folder
    notes = {name: text for name, text in chart_texts(helm).items() if name.startswith("NOTES")}
    assert notes, "no NOTES rendered: update this test"
    for name, text in notes.items():
        urls = re.findall(rf"{re.escape(site)}\S*", text)
        assert urls, f"{name} links no page of the site"
        assert all(u.startswith(f"{site}{folder}/") for u in urls), (name, urls)


def test_site_link_without_version_or_to_a_missing_page_is_reported(
    release_data: ReleaseData,
) -> None:
    """The NOTES once linked <site>/guides/..., which mike does not serve (no version)."""
    site = release_data.project.site_url
    texts = {
        "NOTES.txt": f"see\n   {site}guides/add-betrace-to-an-existing-grafana/\n",
        "README.md": f"[x]({site}latest/guides/no-such-guide/)",
        "ok.md": f"{site} {site}latest/ {site}latest/guides/deploy-on-kubernetes/#upgrade",
    }
    problems = chart_policy.check_site_links(texts, release_data, REPO_ROOT / "docs")
    assert len(problems) == 2, problems
    assert problems[0].startswith("NOTES.txt:2: ")
    assert "names no version folder" in problems[0] and f"{site}latest/" in problems[0]
    assert (
        problems[1].startswith("README.md:1: ")
        and "no page for 'guides/no-such-guide/'" in problems[1]
    )


def test_rules_access_pod_reaches_the_backend_volume_on_its_node(
    rendered: dict[str, list[chart_policy.Manifest]], release_data: ReleaseData
) -> None:
    """helm/examples/rules-access-pod.yaml (the guide's backup pod) mounts the claim the chart
    renders, lands next to the backend pod, runs as its user, and is a valid hardened pod."""
    path = REPO_ROOT / "helm" / "examples" / "rules-access-pod.yaml"
    pod = chart_policy.Manifest(path.name, chart_policy.load_values(path))
    manifests = rendered["default-values.yaml"]
    (deployment,) = [m for m in manifests if m.kind == "Deployment" and m.name == "betrace-backend"]
    (claim,) = [m for m in manifests if m.kind == "PersistentVolumeClaim" and "backend" in m.name]
    spec = pod.doc["spec"]
    assert spec["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim.name
    (term,) = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    labels = deployment.doc["spec"]["template"]["metadata"]["labels"]
    assert term["labelSelector"]["matchLabels"].items() <= labels.items()
    values = chart_policy.load_values(CHART / "values.yaml")
    assert spec["securityContext"]["runAsUser"] == values["backend"]["runAsUser"]
    image = values["tests"]["image"]
    assert spec["containers"][0]["image"] == f"{image['repository']}:{image['tag']}"
    assert (
        spec["containers"][0]["workingDir"] == spec["containers"][0]["volumeMounts"][0]["mountPath"]
    )
    assert chart_policy.check_hardening([pod]) == []
    problems = chart_policy.validate_kubernetes([pod], kubernetes_versions(release_data))
    assert not problems, "\n".join(problems)


def test_scrape_annotations_name_the_metrics_port_and_path(
    rendered: dict[str, list[chart_policy.Manifest]], release_data: ReleaseData
) -> None:
    (backend,) = [
        m
        for m in rendered["external-observability-values.yaml"]
        if m.kind == "Deployment" and m.name == "betrace-backend"
    ]
    annotations = backend.doc["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(release_data.current.backend.ports["http"].port)
    metrics = next(e.path for e in release_data.current.backend.endpoints if "metrics" in e.purpose)
    assert annotations["prometheus.io/path"] == metrics


@pytest.mark.parametrize(
    "setting",
    ["image.pullSecrets[0]=regcred", "image.pullSecrets[0].name=regcred"],
    ids=["name", "kubernetes-form"],
)
def test_pull_secret_reaches_every_pod_the_chart_makes(helm: Helm, setting: str) -> None:
    """Both forms of image.pullSecrets render, and every pod (the helm test pod too) gets it."""
    manifests = helm.template(CHART, set_values=[setting])
    pods = list(chart_policy.pod_specs(manifests))
    assert {m.kind for m, _ in pods} == {"Deployment", "Pod"}, "no pod or no test pod rendered"
    for m, spec in pods:
        assert spec.get("imagePullSecrets") == [{"name": "regcred"}], f"{m.kind}/{m.name}"
    for m, spec in chart_policy.pod_specs(helm.template(CHART)):
        assert "imagePullSecrets" not in spec, f"{m.kind}/{m.name}: a pull secret nobody set"


def test_gitops_scenario_renders_the_same_twice(helm: Helm) -> None:
    """What Argo CD and Flux compare: with existing Secrets named, nothing in the render is
    generated; with the defaults, the generated Secrets differ between two renders."""
    gitops = [CHART / "ci" / "gitops-values.yaml"]
    assert helm.run("template", "betrace", str(CHART), "-f", str(gitops[0])) == helm.run(
        "template", "betrace", str(CHART), "-f", str(gitops[0])
    )
    assert not [m for m in helm.template(CHART, gitops) if m.kind == "Secret"]
    assert helm.run("template", "betrace", str(CHART)) != helm.run(
        "template", "betrace", str(CHART)
    )


@pytest.mark.parametrize("scenario", ["default-values.yaml", "production-values.yaml"])
def test_the_app_is_given_the_backend_service_grafanas_server_reaches(
    rendered: dict[str, list[chart_policy.Manifest]], scenario: str
) -> None:
    """The patched app calls the backend through Grafana's plugin proxy: backendUrl is the
    backend's Service, never a browser-side address (localhost, or the backend ingress)."""
    (plugins,) = [m for m in rendered[scenario] if m.name == "betrace-grafana-plugins"]
    (app,) = YAML(typ="safe").load(plugins.doc["data"]["betrace.yaml"])["apps"]
    assert app["jsonData"]["backendUrl"] == "http://betrace-backend.betrace.svc:12011"


def test_a_browser_side_backend_url_shows_in_the_rendered_app_settings(helm: Helm) -> None:
    manifests = helm.template(CHART, [], ["grafana.plugin.backendUrl=http://localhost:12011"])
    (plugins,) = [m for m in manifests if m.name == "betrace-grafana-plugins"]
    (app,) = YAML(typ="safe").load(plugins.doc["data"]["betrace.yaml"])["apps"]
    assert app["jsonData"]["backendUrl"] == "http://localhost:12011"


def test_the_readme_names_the_generated_secrets_as_helm_renders_them(helm: Helm) -> None:
    """The README gives the generated Secrets' names for release `betrace` and for a release
    whose name lacks `betrace` (`prod`); Helm renders both charts' names as it says."""
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    assert "`<fullname>-backend`" in readme and "`<fullname>-grafana-admin`" in readme
    for release, fullname in {"betrace": "betrace", "prod": "prod-betrace"}.items():
        assert f"`{fullname}-backend`" in readme, f"README.md no longer names {fullname}-backend"
        secrets = {m.name for m in helm.template(CHART, release=release) if m.kind == "Secret"}
        assert {f"{fullname}-backend", f"{fullname}-grafana-admin"} <= secrets, sorted(secrets)


@pytest.mark.parametrize(
    ("values", "said"),
    [
        (("backend.service.type=NodePort",), "its Service is of type NodePort"),
        (
            ("backend.service.type=LoadBalancer",),
            "its Service is of type LoadBalancer (backend.service.type), from every address "
            "(backend.service.loadBalancerSourceRanges is empty)",
        ),
        (
            (
                "backend.service.type=LoadBalancer",
                "backend.service.loadBalancerSourceRanges={10.0.0.0/8,192.168.0.0/16}",
            ),
            "its load balancer admits only 10.0.0.0/8, 192.168.0.0/16 where the provider "
            "supports it (backend.service.loadBalancerSourceRanges), but that does not restrict "
            "the node ports",
        ),
        (
            (
                "backend.service.type=LoadBalancer",
                "backend.service.loadBalancerSourceRanges={10.0.0.0/8,::/0}",
            ),
            "from every IPv6 address (::/0 in backend.service.loadBalancerSourceRanges)",
        ),
        (
            ("backend.ingress.enabled=true", "backend.ingress.host=api.example.com"),
            "backend.ingress serves it at http://api.example.com, in plain HTTP",
        ),
    ],
)
def test_notes_warn_when_the_backend_is_reachable_from_outside(
    helm: Helm, values: tuple[str, ...], said: str
) -> None:
    """The backend asks for no credentials: a release that publishes it says so where the
    operator reads next, and no warning stands in the default install."""
    sets = [w for v in values for w in ("--set", v)]
    notes = helm.run("install", "betrace", str(CHART), "--dry-run=client", "-n", "betrace", *sets)
    notes = notes[notes.index("NOTES:") :]
    assert "WARNING: the backend asks for no credentials" in notes
    assert said in notes
    assert "No NetworkPolicy narrows who can" in notes
    default = helm.run("install", "betrace", str(CHART), "--dry-run=client", "-n", "betrace")
    assert "WARNING" not in default[default.index("NOTES:") :]


def test_source_ranges_restrict_a_load_balancer_and_are_refused_elsewhere(helm: Helm) -> None:
    ranges = "backend.service.loadBalancerSourceRanges={10.0.0.0/8}"
    manifests = helm.template(CHART, (), ("backend.service.type=LoadBalancer", ranges))
    (service,) = [m for m in manifests if m.kind == "Service" and m.name == "betrace-backend"]
    assert service.doc["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8"]
    with pytest.raises(chart_policy.HelmError) as caught:
        helm.template(CHART, (), ("backend.service.type=NodePort", ranges))
    assert (
        "backend.service.loadBalancerSourceRanges: only a Service of type LoadBalancer reads "
        "it, and backend.service.type is NodePort"
    ) in str(caught.value)
    with pytest.raises(chart_policy.HelmError, match="loadBalancerSourceRanges/0"):
        helm.template(CHART, (), ("backend.service.loadBalancerSourceRanges={everyone}",))


def test_grafana_has_five_minutes_to_start_before_liveness_counts(
    rendered: dict[str, list[chart_policy.Manifest]],
) -> None:
    """A first start migrates Grafana's database: the liveness probe alone gave it about 90 s
    before the kubelet restarted it, mid-migration."""
    checked = 0
    for scenario, manifests in rendered.items():
        for _, spec in chart_policy.pod_specs(manifests):
            for label, c in chart_policy.containers(spec):
                if label != "container grafana":
                    continue
                checked += 1
                startup = c.get("startupProbe") or {}
                assert (startup.get("httpGet") or {}).get("path") == "/api/health", scenario
                allowed = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
                assert allowed >= 300, f"{scenario}: {allowed} s to start"
    assert checked, "no scenario renders a Grafana container"


#: The one label the control plane sets on every namespace (LabelMetadataName, k8s.io/api
#: v0.35.0 core/v1/well_known_labels.go): namespaces carry no `name` label of their own
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _namespace_selectors(value: object) -> Iterator[dict]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "namespaceSelector" and isinstance(item, dict):
                yield item
            yield from _namespace_selectors(item)
    elif isinstance(value, list):
        for item in value:
            yield from _namespace_selectors(item)


@pytest.mark.parametrize("scenario", ["production-values.yaml", "backend-only-values.yaml"])
def test_the_examples_select_namespaces_by_the_label_every_namespace_has(scenario: str) -> None:
    """A selector on a `name` label admits nothing from a namespace nobody labelled so: the
    ingress controller's spans would be refused. The examples select by the control plane's."""
    selectors = list(_namespace_selectors(scenario_values(scenario)))
    assert selectors
    for selector in selectors:
        assert set(selector.get("matchLabels") or {}) == {NAMESPACE_NAME_LABEL}, selector
