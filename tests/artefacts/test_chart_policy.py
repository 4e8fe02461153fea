"""Each chart rule, broken on purpose in a temporary copy of the chart, fails with a clear message.

These prove that the policy in src/betrace_dist/artefacts/chart_policy.py can fail: a check that
passes on the real chart and on every broken copy would protect nothing.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from betrace_dist import REPO_ROOT
from betrace_dist.artefacts import chart_policy, ingress_nginx
from betrace_dist.artefacts.chart_policy import Helm, HelmError, Manifest, parse_manifests
from betrace_dist.release import ReleaseData

CHART = REPO_ROOT / "helm" / "betrace"


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    """A private copy of the chart that a test may break."""
    copy = tmp_path / "betrace"
    shutil.copytree(CHART, copy)
    return copy


def edit(chart: Path, relative: str, old: str, new: str) -> None:
    """Replace text in one chart file; fails loudly if the text is gone (the test would be void)."""
    path = chart / relative
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{relative} no longer contains {old!r}: update this test"
    path.write_text(text.replace(old, new), encoding="utf-8")


def violations(
    helm: Helm, chart: Path, data: ReleaseData, set_values: tuple[str, ...] = ()
) -> list[str]:
    manifests = helm.template(chart, set_values=set_values)
    return chart_policy.check_all(manifests, data)


def assert_violation(found: list[str], *fragments: str) -> None:
    assert any(all(f in v for f in fragments) for v in found), (
        f"expected a violation mentioning {fragments}, got:\n" + "\n".join(found)
    )


def test_unbroken_copy_has_no_violation(helm: Helm, chart: Path, release_data: ReleaseData) -> None:
    assert violations(helm, chart, release_data) == []


def test_two_backend_replicas_are_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    edit(chart, "templates/backend-deployment.yaml", "replicas: {{ $b.replicas }}", "replicas: 2")
    assert_violation(
        violations(helm, chart, release_data),
        "templates/backend-deployment.yaml Deployment/betrace-backend",
        "replicas is 2, must be 1",
    )


def test_rolling_update_of_the_backend_is_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    edit(chart, "templates/backend-deployment.yaml", "type: Recreate", "type: RollingUpdate")
    assert_violation(violations(helm, chart, release_data), "strategy is RollingUpdate")


def test_probe_on_health_instead_of_v1_health_is_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    edit(chart, "templates/backend-deployment.yaml", "path: /v1/health", "path: /health")
    assert_violation(
        violations(helm, chart, release_data),
        "container backend",
        "livenessProbe path is /health, expected /v1/health",
    )


def test_port_8080_is_reported(helm: Helm, chart: Path, release_data: ReleaseData) -> None:
    found = violations(helm, chart, release_data, ("backend.ports.http=8080",))
    assert_violation(found, "port 'http' is 8080, the backend listens on 12011")
    assert_violation(found, "Service/betrace-backend", "port 'http' is 8080, expected 12011")


def test_service_targeting_a_missing_container_port_is_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    edit(chart, "templates/backend-service.yaml", "targetPort: http", "targetPort: 8080")
    assert_violation(
        violations(helm, chart, release_data),
        "Service/betrace-backend",
        "targets 8080, no container has it",
    )


def test_env_var_the_backend_never_reads_is_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    edit(
        chart,
        "templates/backend-deployment.yaml",
        "            - name: BETRACE_DATA_DIR\n",
        "            - name: BETRACE_STORAGE_PATH\n              value: /data\n"
        "            - name: BETRACE_DATA_DIR\n",
    )
    assert_violation(
        violations(helm, chart, release_data),
        "env BETRACE_STORAGE_PATH is not read by the backend",
    )


def test_env_from_on_the_backend_is_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    """envFrom may set any of the backend's variables, its ports included, past every rule."""
    edit(
        chart,
        "templates/backend-deployment.yaml",
        "          env:\n            - name: BETRACE_PORT_BACKEND\n",
        "          envFrom:\n            - configMapRef: {name: more}\n"
        "          env:\n            - name: BETRACE_PORT_BACKEND\n",
    )
    assert_violation(
        violations(helm, chart, release_data),
        "container backend takes variables from envFrom (ConfigMap 'more')",
    )


def test_otlp_endpoint_with_scheme_is_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    # The schema refuses the value (see test_chart_values.py); a template that adds a scheme
    # itself is caught by the policy.
    edit(
        chart,
        "templates/backend-deployment.yaml",
        "value: {{ . | quote }}",
        'value: {{ printf "http://%s" . | quote }}',
    )
    found = violations(helm, chart, release_data, ("backend.otlpEndpoint=collector:4317",))
    assert_violation(found, "OTEL_EXPORTER_OTLP_ENDPOINT is 'http://collector:4317'", "no scheme")


def test_signature_key_as_literal_is_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    edit(
        chart,
        "templates/backend-deployment.yaml",
        "              valueFrom:\n"
        "                secretKeyRef:\n"
        '                  name: {{ include "betrace.signatureSecretName" . | quote }}\n'
        "                  key: {{ $b.signatureKey.secretKey | quote }}\n",
        "              value: dev-key\n",
    )
    assert_violation(
        violations(helm, chart, release_data),
        "container backend: env BETRACE_SIGNATURE_KEY is a literal",
    )


def test_pvc_referenced_without_template_is_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    (chart / "templates" / "backend-pvc.yaml").unlink()
    assert_violation(
        violations(helm, chart, release_data),
        "volume 'data' uses PersistentVolumeClaim 'betrace-backend', which is not rendered",
    )


def test_secret_key_that_the_secret_lacks_is_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    edit(chart, "templates/grafana-secret.yaml", "{{ $a.passwordKey | quote }}:", "password:")
    assert_violation(
        violations(helm, chart, release_data),
        "env GF_SECURITY_ADMIN_PASSWORD reads key 'admin-password' of Secret "
        "'betrace-grafana-admin', which is not rendered",
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"),
        ("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilege"),
        ('drop: ["ALL"]', 'drop: ["NET_RAW"]', "capabilities.drop must contain ALL"),
        (
            "runAsNonRoot: true\nrunAsUser: {{ .runAsUser }}",
            "runAsUser: 0",
            "runAsUser must be a non-zero",
        ),
    ],
    ids=["writable-root", "privilege-escalation", "capabilities", "root"],
)
def test_weakened_container_security_is_reported_for_every_container(
    helm: Helm, chart: Path, release_data: ReleaseData, old: str, new: str, message: str
) -> None:
    edit(chart, "templates/_helpers.tpl", old, new)
    found = violations(helm, chart, release_data)
    for container in ("container backend", "init container install-plugin", "container health"):
        assert_violation(found, container, message)


def test_missing_resource_limits_are_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    edit(
        chart,
        "templates/tests/test-backend-health.yaml",
        "{{- toYaml .Values.tests.resources | nindent 8 }}",
        '{{- toYaml (omit .Values.tests.resources "limits") | nindent 8 }}',
    )
    assert_violation(
        violations(helm, chart, release_data),
        "container health",
        "resources.limits.memory is missing",
    )


def test_latest_tag_and_foreign_image_are_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    # The schema refuses a floating tag first (test_chart_values.py); without it, the policy does.
    (chart / "values.schema.json").unlink()
    found = violations(helm, chart, release_data, ("backend.image.tag=latest",))
    assert_violation(found, "container backend", "is not pinned to a version tag")
    found = violations(helm, chart, release_data, ("image.registry=ghcr.io/someone/else",))
    # the release's digest follows the tag once it is recorded (bump --digests)
    foreign = f"'ghcr.io/someone/else/backend:{release_data.current.version}"
    assert_violation(found, foreign, "is neither a BeTrace image")


def test_unsigned_plugin_wildcard_and_anonymous_access_are_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    edit(chart, "templates/_helpers.tpl", "\nbetrace-app\n", "\nbetrace-app,*\n")
    edit(
        chart,
        "templates/_helpers.tpl",
        '- name: GF_AUTH_ANONYMOUS_ENABLED\n  value: "false"',
        '- name: GF_AUTH_ANONYMOUS_ENABLED\n  value: "true"',
    )
    found = violations(helm, chart, release_data)
    assert_violation(found, "GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS is 'betrace-app,*'")
    assert_violation(found, "GF_AUTH_ANONYMOUS_ENABLED is 'true'; it must be 'false'")
    assert_violation(found, "no app of type 'betrace-app' is provisioned")


def test_plugin_volume_over_the_baked_plugin_is_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    edit(
        chart,
        "templates/grafana-deployment.yaml",
        "mountPath: /var/lib/grafana/data",
        "mountPath: /var/lib/grafana/plugins",
    )
    assert_violation(
        violations(helm, chart, release_data, ("grafana.plugin.source=image",)),
        "is mounted over /var/lib/grafana/plugins and hides the plugin",
    )


def test_missing_plugin_init_container_is_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    edit(
        chart,
        "templates/grafana-deployment.yaml",
        "{{- if $fromInit }}\n      initContainers:",
        "{{- if false }}\n      initContainers:",
    )
    assert_violation(
        violations(helm, chart, release_data),
        "no plugin-init container installs it",
    )


def test_plugin_copied_where_grafana_does_not_look_is_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    edit(
        chart,
        "templates/grafana-deployment.yaml",
        '"/var/lib/grafana/plugins/%s"',
        '"/plugins/%s"',
    )
    assert_violation(
        violations(helm, chart, release_data),
        "init container install-plugin: copies the plugin to /plugins/betrace-app",
        "Grafana looks for it in /var/lib/grafana/plugins/betrace-app",
    )


def test_invalid_kubernetes_field_is_reported(helm: Helm, chart: Path) -> None:
    edit(chart, "templates/backend-service.yaml", "  type: {{", "  kind: x\n  type: {{")
    problems = chart_policy.validate_kubernetes(helm.template(chart), ["1.25"])
    assert_violation(problems, "Service/betrace-backend (Kubernetes 1.25)", "'kind' was unexpected")


def test_chart_version_drift_from_release_data_is_reported(
    chart: Path, release_data: ReleaseData
) -> None:
    version = release_data.current.version
    edit(chart, "Chart.yaml", f"appVersion: {version}", "appVersion: 1.9.0")
    edit(
        chart,
        "Chart.yaml",
        f"ghcr.io/betrace-hq/betrace/backend:{version}",
        f"ghcr.io/betrace-hq/backend:{version}",
    )
    found = chart_policy.check_chart_metadata(chart, release_data)
    assert_violation(found, f"Chart.yaml: appVersion is '1.9.0', releases.yaml says '{version}'")
    assert_violation(found, "artifacthub.io/images lists")


def test_broken_template_fails_with_helms_message(helm: Helm, chart: Path) -> None:
    edit(
        chart,
        "templates/backend-service.yaml",
        "{{- with .Values.backend.service.annotations }}",
        "{{- with .Values.backend.service.annotations ",
    )
    with pytest.raises(HelmError, match=r"backend-service\.yaml"):
        helm.template(chart)


# --- grafana.enabled=false and existing Secrets ---------------------------------------------------


@pytest.mark.parametrize(
    ("template", "old", "kind"),
    [
        ("grafana-service.yaml", "{{- if .Values.grafana.enabled }}\n", "Service/betrace-grafana"),
        (
            "grafana-configmap.yaml",
            "{{- if .Values.grafana.enabled }}\n",
            "ConfigMap/betrace-grafana-plugins",
        ),
        (
            "grafana-secret.yaml",
            "{{- if and .Values.grafana.enabled (not $a.existingSecret) }}",
            "Secret/betrace-grafana-admin",
        ),
    ],
    ids=["service", "configmap", "secret"],
)
def test_grafana_object_rendered_without_grafana_is_reported(
    helm: Helm, chart: Path, release_data: ReleaseData, template: str, old: str, kind: str
) -> None:
    new = (
        "{{- if not $a.existingSecret }}"
        if template == "grafana-secret.yaml"
        else "{{- if true }}\n"
    )
    edit(chart, f"templates/{template}", old, new)
    manifests = helm.template(chart, set_values=("grafana.enabled=false",))
    assert_violation(
        chart_policy.check_all(manifests, release_data, grafana=False),
        f"templates/{template} {kind}",
        "rendered although grafana.enabled is false",
    )


#: networkPolicy turned on with one source, as --set values (the schema demands a source)
NETWORK_POLICY_ON = (
    "networkPolicy.enabled=true",
    "networkPolicy.backendFrom[0].namespaceSelector.matchLabels.team=observability",
)


def test_grafana_network_policy_without_grafana_is_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    edit(
        chart,
        "templates/networkpolicy.yaml",
        "{{- if .Values.grafana.enabled }}\n---",
        "{{- if true }}\n---",
    )
    manifests = helm.template(chart, set_values=("grafana.enabled=false", *NETWORK_POLICY_ON))
    assert_violation(
        chart_policy.check_all(manifests, release_data, grafana=False),
        "NetworkPolicy/betrace-grafana",
    )


def test_grafana_policy_still_demands_grafana_when_it_is_on(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    """Rendering no Grafana is a violation unless the scenario turned Grafana off."""
    manifests = helm.template(chart, set_values=("grafana.enabled=false",))
    assert chart_policy.check_all(manifests, release_data, grafana=False) == []
    assert_violation(
        chart_policy.check_all(manifests, release_data), "no pod has a container named grafana"
    )


def test_existing_secret_with_a_generated_name_is_reported(helm: Helm, tmp_path: Path) -> None:
    """The names production-values.yaml once used: the first equals a generated Secret."""
    values = {
        "grafana": {"admin": {"existingSecret": "betrace-grafana-admin"}},
        "backend": {
            "signatureKey": {"existingSecret": "betrace-signature-key"},
            "ingress": {"enabled": True, "tlsSecret": "betrace-backend"},
        },
    }
    path = tmp_path / "colliding-values.yaml"
    path.write_text(json.dumps(values), encoding="utf-8")
    generated = chart_policy.generated_secret_names(helm, CHART, [path])
    assert generated == {"betrace-backend", "betrace-grafana-admin"}
    found = chart_policy.check_existing_secret_names(
        chart_policy.existing_secret_names(values), generated
    )
    assert_violation(
        found,
        "grafana.admin.existingSecret names the existing Secret 'betrace-grafana-admin'",
        "generates for release 'betrace'",
    )
    assert_violation(found, "backend.ingress.tlsSecret names the existing Secret 'betrace-backend'")
    assert len(found) == 2, "betrace-signature-key is no generated name"


def test_generated_names_follow_the_release_name(helm: Helm, tmp_path: Path) -> None:
    generated = chart_policy.generated_secret_names(helm, CHART, release="observability")
    assert generated == {"observability-betrace-backend", "observability-betrace-grafana-admin"}


def test_chart_home_other_than_the_site_is_reported(chart: Path, release_data: ReleaseData) -> None:
    edit(
        chart, "Chart.yaml", "home: https://betrace-hq.github.io/distribution/", "home: https://x/"
    )
    assert_violation(
        chart_policy.check_chart_metadata(chart, release_data),
        "home is 'https://x/', releases.yaml project.site_url says",
    )


def test_an_otlp_timeout_other_than_the_release_datas_is_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    """The chart sets OTEL_EXPORTER_OTLP_TIMEOUT to releases.yaml's distribution_default (the
    value the probe stop-time proves); another value, or none, is reported."""
    found = violations(helm, chart, release_data, ("backend.otlpTimeoutMs=20000",))
    assert_violation(
        found, "OTEL_EXPORTER_OTLP_TIMEOUT is '20000'", "distribution_default is '1000'"
    )
    edit(
        chart,
        "templates/backend-deployment.yaml",
        "- name: OTEL_EXPORTER_OTLP_TIMEOUT",
        "- name: X",
    )
    found = violations(helm, chart, release_data)
    assert_violation(found, "OTEL_EXPORTER_OTLP_TIMEOUT is None")


def test_grace_period_shorter_than_the_slow_stop_is_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    """The old chart had no terminationGracePeriodSeconds; 10 s is less than the stop measured."""
    (chart / "values.schema.json").unlink()  # the schema refuses it first; the policy must too
    found = violations(helm, chart, release_data, ("backend.terminationGracePeriodSeconds=10",))
    assert_violation(
        found,
        "Deployment/betrace-backend: terminationGracePeriodSeconds is 10",
        "at least 30",
        "10 s or more",
    )
    edit(
        chart,
        "templates/backend-deployment.yaml",
        "terminationGracePeriodSeconds: {{ $b.terminationGracePeriodSeconds }}",
        "",
    )
    assert_violation(violations(helm, chart, release_data), "terminationGracePeriodSeconds is None")


def test_backend_network_policy_without_sources_is_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    """The old template left `from` out when backendFrom was empty: every pod was admitted."""
    backend_from = "submit spans.\n      from:\n"  # the backend rule's `from`, not Grafana's
    edit(chart, "templates/networkpolicy.yaml", backend_from, backend_from + "{{- if false }}\n")
    edit(
        chart,
        "templates/networkpolicy.yaml",
        "{{- if .Values.grafana.enabled }}\n---",
        "{{- end }}\n{{- if .Values.grafana.enabled }}\n---",
    )
    manifests = helm.template(chart, set_values=NETWORK_POLICY_ON)
    assert_violation(
        chart_policy.check_all(manifests, release_data),
        "NetworkPolicy/betrace-backend: spec.ingress[0] has no 'from'",
        "admits every pod",
        "networkPolicy.backendFrom",
    )


def test_debug_set_to_false_is_reported(helm: Helm, chart: Path, release_data: ReleaseData) -> None:
    """BETRACE_DEBUG=false turns debug logging on: any non-empty value does."""
    edit(
        chart,
        "templates/backend-deployment.yaml",
        '{{- if $b.debug }}\n            - name: BETRACE_DEBUG\n              value: "true"',
        "{{- if true }}\n            - name: BETRACE_DEBUG\n"
        "              value: {{ $b.debug | quote }}",
    )
    assert_violation(
        violations(helm, chart, release_data),
        "container backend: env BETRACE_DEBUG is 'false', which turns debug logging ON",
    )


def test_foreign_image_in_the_test_hook_needs_only_a_pin(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    """The helm test pod may use a small pinned image; a floating tag is still refused."""
    assert violations(helm, chart, release_data) == []
    (chart / "values.schema.json").unlink()
    found = violations(helm, chart, release_data, ("tests.image.tag=latest",))
    assert_violation(found, "Pod/betrace-test-health container health", "is not pinned")


@pytest.mark.parametrize("values", sorted(p.name for p in (CHART / "ci").glob("*.yaml")))
def test_the_fast_loader_reads_every_render_as_the_yaml_1_2_loader_does(
    helm: Helm, values: str
) -> None:
    """Rendered charts are read with libyaml (YAML 1.1) for speed: for every render CI makes,
    the objects are exactly those ruamel's YAML 1.2 loader gives."""
    out = helm.run("template", "betrace", str(CHART), "-f", str(CHART / "ci" / values))
    slow = [d for d in YAML(typ="safe", pure=True).load_all(out) if d is not None]
    assert [m.doc for m in parse_manifests(out)] == slow


def test_a_render_that_is_not_yaml_names_its_template() -> None:
    out = "---\n# Source: betrace/templates/broken.yaml\nkind: [unclosed\n"
    with pytest.raises(HelmError, match=r"betrace/templates/broken.yaml: not valid YAML"):
        parse_manifests(out)


# --- the Grafana rules, each broken in the rendered objects --------------------------------------


def _grafana(manifests: list[Manifest]) -> dict[str, Any]:
    deployment = next(m for m in manifests if m.kind == "Deployment" and m.name.endswith("grafana"))
    return deployment.doc["spec"]["template"]["spec"]


def _grafana_env(manifests: list[Manifest]) -> list[dict[str, Any]]:
    return _grafana(manifests)["containers"][0]["env"]


def _anonymous_role(manifests: list[Manifest]) -> None:
    _grafana_env(manifests).append({"name": "GF_AUTH_ANONYMOUS_ORG_ROLE", "value": "Viewer"})


def _literal_password(manifests: list[Manifest]) -> None:
    env = _grafana_env(manifests)
    env[:] = [e for e in env if e["name"] != "GF_SECURITY_ADMIN_PASSWORD"]
    env.append({"name": "GF_SECURITY_ADMIN_PASSWORD", "valueFrom": {}})


def _init_writes_elsewhere(manifests: list[Manifest]) -> None:
    _grafana(manifests)["initContainers"][0]["volumeMounts"][0]["mountPath"] = "/plugins"


def _no_provisioning_mount(manifests: list[Manifest]) -> None:
    container = _grafana(manifests)["containers"][0]
    container["volumeMounts"] = [
        vm
        for vm in container["volumeMounts"]
        if vm["mountPath"] != "/etc/grafana/provisioning/plugins"
    ]


def _provisioning(manifests: list[Manifest]) -> dict[str, str]:
    return next(m for m in manifests if m.kind == "ConfigMap" and "grafana" in m.name).doc["data"]


def _provisioning_api_version_2(manifests: list[Manifest]) -> None:
    data = _provisioning(manifests)
    for key, text in data.items():
        data[key] = text.replace("apiVersion: 1", "apiVersion: 2")


def _backend_url_without_scheme(manifests: list[Manifest]) -> None:
    data = _provisioning(manifests)
    for key, text in data.items():
        data[key] = re.sub(r"backendUrl: *\S*http://", "backendUrl: ", text)


def _backend_url_to_grafana(manifests: list[Manifest]) -> None:
    """The URL names the release's Grafana Service and its port: a Service of the release that
    is not the backend's."""
    grafana = next(m for m in manifests if m.kind == "Service" and "grafana" in m.name)
    port = grafana.doc["spec"]["ports"][0]["port"]
    data = _provisioning(manifests)
    for key, text in data.items():
        data[key] = re.sub(r"backendUrl: *\S*", f'backendUrl: "http://{grafana.name}:{port}"', text)


def _backend_url_https_to_the_service(manifests: list[Manifest]) -> None:
    data = _provisioning(manifests)
    for key, text in data.items():
        data[key] = text.replace('"http://', '"https://')


def _provisioning_not_yaml(manifests: list[Manifest]) -> None:
    data = _provisioning(manifests)
    for key in data:
        data[key] = "apps: [unclosed"


GRAFANA_BREAKS = [
    (_anonymous_role, "container grafana: GF_AUTH_ANONYMOUS_ORG_ROLE must not be set"),
    (_literal_password, "container grafana: GF_SECURITY_ADMIN_PASSWORD must come from a Secret"),
    (
        _init_writes_elsewhere,
        "container grafana: the plugin-init container does not write into the volume Grafana "
        "mounts at /var/lib/grafana/plugins",
    ),
    (
        _no_provisioning_mount,
        "container grafana: no rendered ConfigMap is mounted at provisioning/plugins",
    ),
    (_provisioning_api_version_2, ": apiVersion must be 1"),
    (_backend_url_without_scheme, "svc:12011\"' is not an http(s) URL with a host"),
    (_backend_url_to_grafana, "does not lead to the backend's container port http"),
    (_backend_url_https_to_the_service, "the backend serves plain HTTP (it has no TLS setting)"),
    (_provisioning_not_yaml, ": not YAML ("),
]


@pytest.mark.parametrize(
    ("breaks", "message"), GRAFANA_BREAKS, ids=[b[0].__name__.strip("_") for b in GRAFANA_BREAKS]
)
def test_each_grafana_rule_is_reported(
    helm: Helm,
    release_data: ReleaseData,
    breaks: Callable[[list[Manifest]], None],
    message: str,
) -> None:
    manifests = helm.template(CHART)
    assert chart_policy.check_grafana(manifests, release_data) == []
    breaks(manifests)
    assert_violation(chart_policy.check_grafana(manifests, release_data), message)


# --- the hardening rules, each broken in the rendered objects ------------------------------------


def _backend_pod(manifests: list[Manifest]) -> dict[str, Any]:
    deployment = next(m for m in manifests if m.kind == "Deployment" and m.name.endswith("backend"))
    return deployment.doc["spec"]["template"]["spec"]


def _backend_sc(manifests: list[Manifest]) -> dict[str, Any]:
    return _backend_pod(manifests)["containers"][0]["securityContext"]


HARDENING_BREAKS = [
    (lambda ms: _backend_pod(ms).update(automountServiceAccountToken=True),
     "Deployment/betrace-backend: automountServiceAccountToken must be false"),
    (lambda ms: _backend_sc(ms).update(privileged=True),
     "container backend: privileged must not be true"),
    (lambda ms: _backend_sc(ms)["capabilities"].update(add=["NET_ADMIN"]),
     "container backend: capabilities.add must be empty, found ['NET_ADMIN']"),
    (lambda ms: _backend_sc(ms).update(seccompProfile={"type": "Unconfined"}),
     "container backend: seccompProfile.type must be RuntimeDefault, found Unconfined"),
    (lambda ms: _backend_sc(ms).update(runAsNonRoot=False),
     "container backend: runAsNonRoot must be true"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("breaks", "message"),
    HARDENING_BREAKS,
    ids=["automount", "privileged", "capabilities-add", "seccomp", "run-as-root"],
)
def test_each_hardening_rule_is_reported(
    helm: Helm, breaks: Callable[[list[Manifest]], None], message: str
) -> None:
    manifests = helm.template(CHART)
    assert chart_policy.check_hardening(manifests) == []
    breaks(manifests)
    assert_violation(chart_policy.check_hardening(manifests), message)


def test_undeclared_mount_and_missing_configmap_are_reported(helm: Helm) -> None:
    manifests = helm.template(CHART)
    assert chart_policy.check_references(manifests) == []
    grafana = _grafana(manifests)
    grafana["containers"][0]["volumeMounts"].append({"name": "cache", "mountPath": "/cache"})
    configmap = next(v for v in grafana["volumes"] if "configMap" in v)
    configmap["configMap"]["name"] = "elsewhere"
    found = chart_policy.check_references(manifests)
    assert_violation(found, "container grafana: mounts volume 'cache', not declared")
    assert_violation(
        found, f"volume '{configmap['name']}' uses ConfigMap 'elsewhere', which is not"
    )
    external = [("ConfigMap", "elsewhere")]
    assert chart_policy.check_references(manifests, external) == [
        f for f in found if "ConfigMap 'elsewhere'" not in f
    ]


def test_an_external_backend_url_is_held_to_its_form_only() -> None:
    """A host the release does not render is a backend of the reader's, maybe behind a TLS
    proxy: https passes there, a path does not."""
    from betrace_dist.artefacts.chart_policy import _backend_url_problem

    assert _backend_url_problem([], "https://betrace.example.com") is None
    assert "appends the backend's own paths" in str(
        _backend_url_problem([], "https://betrace.example.com/api")
    )


def test_grafana_preinstaller_on_a_read_only_root_is_reported(
    helm: Helm, chart: Path, release_data: ReleaseData
) -> None:
    edit(
        chart,
        "templates/_helpers.tpl",
        '- name: GF_PLUGINS_PREINSTALL_DISABLED\n  value: "true"',
        '- name: GF_PLUGINS_PREINSTALL_DISABLED\n  value: "false"',
    )
    assert_violation(
        violations(helm, chart, release_data),
        "Deployment/betrace-grafana container grafana: the root filesystem is read-only, so "
        "GF_PLUGINS_PREINSTALL_DISABLED must be 'true'",
    )


def _grafana_env_names(helm: Helm, chart: Path, *values: str) -> set[str]:
    manifests = helm.template(chart, set_values=values)
    return {
        name
        for _, spec in chart_policy.pod_specs(manifests)
        for c in spec.get("containers") or []
        if c.get("name") == "grafana"
        for name in chart_policy.env_of(c)
    }


def test_extra_env_may_not_name_a_variable_the_chart_sets(helm: Helm, chart: Path) -> None:
    """Each variable the chart renders for Grafana (with its ingress on, which adds root_url) is
    refused in grafana.extraEnv by name: a later entry of the same name would win."""
    ingress = ("grafana.ingress.enabled=true", "grafana.ingress.host=g.example.com")
    names = _grafana_env_names(helm, chart, *ingress)
    assert {"GF_AUTH_ANONYMOUS_ENABLED", "GF_SERVER_ROOT_URL"} <= names
    for name in sorted(names):
        extra = (f"grafana.extraEnv[0].name={name}", "grafana.extraEnv[0].value=x")
        said = rf"grafana\.extraEnv\[0\]\.name: {name}: {name} is set by the chart itself"
        with pytest.raises(HelmError, match=said):
            helm.template(chart, set_values=(*ingress, *extra))
        # the image's run.sh reads NAME__FILE into NAME
        extra = (f"grafana.extraEnv[0].name={name}__FILE", "grafana.extraEnv[0].value=/f")
        with pytest.raises(HelmError, match=rf"{name}__FILE: {name} is set by the chart itself"):
            helm.template(chart, set_values=(*ingress, *extra))
    # another variable is added after the chart's, and root_url is free without the ingress
    free = ("grafana.extraEnv[0].name=GF_SERVER_ROOT_URL", "grafana.extraEnv[0].value=x")
    assert "GF_SERVER_ROOT_URL" in _grafana_env_names(helm, chart, *free)


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("GF_DEFAULT_APP_MODE", "development mode loads every unsigned plugin"),
        ("GF_PATHS_HOME", "the chart's paths hold the plugin"),
        ("GF_PATHS_CONFIG__FILE", "the chart's paths hold the plugin"),
        ("GF_SERVER_PROTOCOL", "speak plain HTTP"),
        ("GF_SERVER_HTTP_PORT", "reach Grafana on 3000"),
        ("GF_SERVER_HTTP_ADDR", "on the pod's address"),
        ("GF_PLUGINS_DISABLE_PLUGINS", "keep the BeTrace app from loading"),
        ("GF_SECURITY_DISABLE_INITIAL_ADMIN_CREATION", "would never be made"),
        ("GF_DATABASE_PATH", "off the chart's volume"),
    ],
)
def test_extra_env_may_not_undo_what_the_chart_relies_on(
    helm: Helm, chart: Path, name: str, said: str
) -> None:
    """Variables the chart does not set but relies on being unset: development mode loads any
    unsigned plugin, and the Service and probes speak HTTP to port 3000."""
    extra = (f"grafana.extraEnv[0].name={name}", "grafana.extraEnv[0].value=x")
    with pytest.raises(
        HelmError, match=rf"grafana\.extraEnv\[0\]\.name: {name} is not allowed: .*{said}"
    ):
        helm.template(chart, set_values=extra)


def test_chart_changes_drift_from_release_data_is_reported(
    chart: Path, release_data: ReleaseData
) -> None:
    text = (chart / "Chart.yaml").read_text(encoding="utf-8")
    kind = re.search(r"\n    - kind: (\w+)\n", text)
    assert kind, "Chart.yaml's annotation lists no change: update this test"
    other = "fixed" if kind[1] != "fixed" else "changed"
    (chart / "Chart.yaml").write_text(text.replace(kind[0], f"\n    - kind: {other}\n", 1))
    found = chart_policy.check_chart_metadata(chart, release_data)
    assert_violation(found, "Chart.yaml: artifacthub.io/changes lists", f"'kind': '{other}'")


def test_a_rule_in_the_values_with_a_severity_the_app_does_not_know_is_refused(
    helm: Helm, chart: Path
) -> None:
    """The backend stores any text as a severity; the app knows four (rulesfile.SEVERITIES),
    and the chart's schema holds backend.rules to them as a rules file is held."""
    from betrace_dist.rules.rulesfile import SEVERITIES

    rule = ("backend.rules[0].name=a", "backend.rules[0].expression=when { a } never { b }")
    for severity in SEVERITIES:
        helm.template(chart, set_values=(*rule, f"backend.rules[0].severity={severity}"))
    with pytest.raises(HelmError, match=r"backend\.rules\.0\.severity|/backend/rules/0/severity"):
        helm.template(chart, set_values=(*rule, "backend.rules[0].severity=high"))


@pytest.mark.parametrize(
    ("ingress", "extra"),
    [("backend.ingress", ()), ("grafana.ingress", ("grafana.ingress.enabled=true",))],
)
def test_an_ingress_nginx_annotation_the_controller_does_not_read_is_refused(
    helm: Helm, chart: Path, ingress: str, extra: tuple[str, ...]
) -> None:
    """ingress-nginx ignores a name under its prefix it does not know: a misspelt
    whitelist-source-range left the backend's API, which has no authentication, open to all.
    The chart refuses one; both the old name and its new alias allowlist- are taken."""
    key = f"{ingress}.annotations.nginx\\.ingress\\.kubernetes\\.io"
    base = ("backend.ingress.enabled=true", *extra)
    for name in ("whitelist-source-range", "allowlist-source-range", "auth-secret", "auth-type"):
        helm.template(chart, set_values=(*base, f"{key}/{name}=10.0.0.0/8"))
    helm.template(chart, set_values=(*base, f"{ingress}.annotations.example\\.com/anything=x"))
    said = (
        rf"{ingress}\.annotations: nginx\.ingress\.kubernetes\.io/whitelist-source-ranges is no "
        r"annotation ingress-nginx reads \(controller v1\.15\.1\): it would be ignored"
    )
    with pytest.raises(HelmError, match=said):
        helm.template(chart, set_values=(*base, f"{key}/whitelist-source-ranges=10.0.0.0/8"))


@pytest.mark.parametrize(
    ("ranges", "bad"),
    [
        ("10.0.0.0/8, 192.168.1.7", None),
        ("10.0.0.1/8,2001:db8::/32", None),
        ("10.0.0.0/33", "10.0.0.0/33"),
        ("10.0.0.0/255.0.0.0", "10.0.0.0/255.0.0.0"),  # Python takes a netmask, Go does not
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("10.0.0.0/8,", "''"),
    ],
)
def test_an_ingress_source_range_is_a_range_as_the_controller_reads_it(
    ranges: str, bad: str | None
) -> None:
    """The security reference's 10.0.0.0/8 written /33 passed; the review then found the
    netmask and zone forms, which Python's ipaddress takes and Go's ParseCIDR refuses."""
    annotation = "nginx.ingress.kubernetes.io/whitelist-source-range"
    doc = {"kind": "Ingress", "metadata": {"annotations": {annotation: ranges}}}
    found = ingress_nginx.problems(doc)
    assert found == [] if bad is None else (len(found) == 1 and bad in found[0]), found
