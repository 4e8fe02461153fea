"""The offline model of the official Grafana Helm chart and of Grafana's HTTP paths.

The chart has no values.schema.json, so these checks are the only thing between a guide's typo
and a Grafana that silently ignores a setting.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from betrace_dist.gate import grafana_chart, grafana_http
from betrace_dist.gate.grafana_chart import (
    SchemaError,
    fullname,
    parse_schema,
    service_port,
    validate_set,
    validate_values,
)
from betrace_dist.release import ReleaseData

CHART = "grafana-community/grafana 12.11.1"

#: values a guide installing the BeTrace plugin into the official chart would realistically pass
BETRACE_VALUES: dict[str, Any] = {
    "image": {"registry": "docker.io", "repository": "grafana/grafana", "tag": "13.2.0"},
    "adminUser": "admin",
    "adminPassword": "change-me",
    "admin": {"existingSecret": "grafana-admin", "userKey": "user", "passwordKey": "password"},
    "persistence": {"enabled": True, "size": "5Gi", "storageClassName": "standard"},
    "service": {"type": "ClusterIP", "port": 80, "targetPort": 3000},
    "ingress": {
        "enabled": True,
        "ingressClassName": "nginx",
        "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
        "hosts": ["grafana.example.com"],
        "tls": [{"secretName": "grafana-tls", "hosts": ["grafana.example.com"]}],
    },
    "grafana.ini": {
        "plugins": {"allow_loading_unsigned_plugins": "betrace-app"},
        "server": {"root_url": "https://grafana.example.com"},
    },
    "datasources": {
        "datasources.yaml": {
            "apiVersion": 1,
            "datasources": [{"name": "Tempo", "type": "tempo", "url": "http://tempo:3200"}],
        }
    },
    "plugins": ["grafana-clock-panel"],
    "env": {"GF_PLUGINS_PREINSTALL_DISABLED": "true", "GF_LOG_LEVEL": "info"},
    "envValueFrom": {
        "BETRACE_TOKEN": {"secretKeyRef": {"name": "betrace", "key": "token"}},
    },
    "envFromSecret": "grafana-extra-env",
    "envFromSecrets": [{"name": "betrace-env", "optional": True}],
    "extraInitContainers": [
        {
            "name": "betrace-plugin",
            "image": "ghcr.io/betrace-hq/betrace/plugin-init:2.0.0",
            "volumeMounts": [{"name": "betrace-plugin", "mountPath": "/plugins"}],
        }
    ],
    "extraVolumes": [{"name": "betrace-plugin", "emptyDir": {}}],
    "extraVolumeMounts": [
        {"name": "betrace-plugin", "mountPath": "/var/lib/grafana/plugins/betrace-app"}
    ],
    "extraContainers": "- name: proxy\n  image: example/proxy:1.0\n",
    "securityContext": {"runAsUser": 472, "fsGroup": 472},
    "containerSecurityContext": {"readOnlyRootFilesystem": True},
    "resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": "100m"}},
    "sidecar": {
        "dashboards": {"enabled": True, "label": "grafana_dashboard", "searchNamespace": "ALL"},
        "datasources": {"enabled": False},
    },
    "testFramework": {"enabled": False},
    "rbac": {"create": True, "namespaced": True},
    "serviceAccount": {"create": True, "annotations": {"example.com/role": "grafana"}},
    "podAnnotations": {"example.com/scrape": "true"},
}


def only(problems: list[grafana_chart.KeyProblem]) -> grafana_chart.KeyProblem:
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


# --- the schema file ---------------------------------------------------------------------


def test_schema_names_the_chart_and_version_it_describes() -> None:
    chart = grafana_chart.schema().chart
    assert chart.chart == "grafana-community/grafana"
    assert chart.version == "12.11.1"
    assert chart.name == "grafana"
    assert str(chart) == CHART
    assert chart.repository == "https://github.com/grafana-community/helm-charts"
    assert len(chart.commit) == 40


def test_schema_describes_the_chart_version_the_release_data_pins(
    release_data: ReleaseData,
) -> None:
    """Bumping the chart in releases.yaml without re-reading its values must fail here."""
    pinned = release_data.current.grafana_chart
    chart = grafana_chart.schema().chart
    assert f"{pinned.repo_name}/{pinned.chart}" == chart.chart
    assert pinned.version == chart.version
    assert pinned.app_version == chart.app_version


_CHART_INFO = {"chart": "c", "version": "1.0.0", "app_version": "1", "source": {}}


@pytest.mark.parametrize(
    ("properties", "complaint"),
    [
        ({"a": {"type": "strin"}}, "properties.a.type: 'strin' is not valid"),
        ({"a": {"type": "object", "properties": []}}, "properties.a.properties: [] is not"),
        ({"a": {"type": "array", "items": 3}}, "properties.a.items: 3 is not"),
    ],
)
def test_a_malformed_schema_is_refused_with_the_faulty_key(
    properties: dict[str, Any], complaint: str
) -> None:
    """The schema file is checked against JSON Schema's own meta-schema (draft-07)."""
    doc = {"x-chart": _CHART_INFO, "type": "object", "properties": properties}
    with pytest.raises(SchemaError, match=re.escape(complaint)):
        parse_schema(doc)


def test_a_schema_that_names_no_chart_is_refused() -> None:
    with pytest.raises(SchemaError, match="no 'x-chart'"):
        parse_schema({"type": "object"})
    with pytest.raises(SchemaError, match="x-chart has no 'version'"):
        parse_schema({"x-chart": {"chart": "c", "app_version": "1", "source": {}}})


# --- values files ------------------------------------------------------------------------


def test_every_key_the_betrace_integration_uses_is_accepted() -> None:
    assert validate_values(BETRACE_VALUES) == []


def test_null_is_accepted_anywhere_because_helm_uses_it_to_drop_a_default() -> None:
    assert validate_values({"persistence": None, "service": {"port": None}, "plugins": None}) == []


def test_an_empty_values_file_is_fine_and_a_non_map_is_not() -> None:
    assert validate_values(None) == []
    assert validate_values({}) == []
    assert "must be a map" in str(only(validate_values(["adminUser"])))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "key", "suggestion"),
    [
        ({"adminPasword": "x"}, "adminPasword", "adminPassword"),
        ({"extraInitContainer": []}, "extraInitContainer", "extraInitContainers"),
        ({"grafana_ini": {"plugins": {}}}, "grafana_ini", "grafana.ini"),
        ({"persistance": {"enabled": True}}, "persistance", "persistence"),
        ({"service": {"prot": 3000}}, "service.prot", "service.port"),
        ({"admin": {"existingSecrets": "s"}}, "admin.existingSecrets", "admin.existingSecret"),
        ({"image": {"tags": "13.2.0"}}, "image.tags", "image.tag"),
        (
            {"sidecar": {"dashboards": {"enabeld": True}}},
            "sidecar.dashboards.enabeld",
            "sidecar.dashboards.enabled",
        ),
        ({"envValuesFrom": {}}, "envValuesFrom", "envValueFrom"),
        ({"adminpassword": "x"}, "adminpassword", "adminPassword"),
    ],
)
def test_a_misspelled_key_is_reported_with_its_path_and_a_suggestion(
    values: dict[str, Any], key: str, suggestion: str
) -> None:
    problem = only(validate_values(values))
    assert problem.key == key
    assert f"unknown key '{key}' in the {CHART} values" in str(problem)
    assert f"did you mean '{suggestion}'?" in str(problem)


def test_an_unknown_key_without_a_near_miss_lists_what_its_parent_takes() -> None:
    problem = only(validate_values({"admin": {"secretName": "grafana-admin"}}))
    assert problem.key == "admin.secretName"
    assert "did you mean" not in str(problem)
    assert "'admin' takes: existingSecret, passwordKey, userKey" in str(problem)


def test_every_problem_of_a_file_is_reported_not_just_the_first() -> None:
    problems = validate_values({"adminPasword": "x", "persistance": {}, "service": {"prot": 1}})
    assert [p.key for p in problems] == ["adminPasword", "persistance", "service.prot"]


@pytest.mark.parametrize(
    ("values", "key", "message"),
    [
        (
            {"extraInitContainers": {"name": "init"}},
            "extraInitContainers",
            "expected a list for 'extraInitContainers', got a map",
        ),
        (
            {"extraContainers": [{"name": "proxy"}]},
            "extraContainers",
            "expected a string for 'extraContainers', got a list",
        ),
        ({"plugins": "betrace-app"}, "plugins", "expected a list for 'plugins', got a string"),
        ({"plugins": [{"id": "x"}]}, "plugins[0]", "expected a string for 'plugins[0]', got a map"),
        ({"service": {"port": "eighty"}}, "service.port", "expected an int for 'service.port'"),
        ({"persistence": {"enabled": "yes"}}, "persistence.enabled", "expected a bool"),
        ({"grafana.ini": "[plugins]"}, '"grafana.ini"', "expected a map for '\"grafana.ini\"'"),
        ({"env": {"TOKEN": {"secretKeyRef": {}}}}, "env.TOKEN", "got a map"),
        ({"envValueFrom": {"TOKEN": "plain"}}, "envValueFrom.TOKEN", "got a string"),
        ({"extraVolumes": [{"name": "a"}, "b"]}, "extraVolumes[1]", "expected a map"),
        ({"admin": "grafana-admin"}, "admin", "expected a map for 'admin', got a string"),
    ],
)
def test_a_value_of_the_wrong_type_is_reported(
    values: dict[str, Any], key: str, message: str
) -> None:
    problem = only(validate_values(values))
    assert problem.key == key
    assert message in str(problem)


def test_a_datasources_file_without_its_file_name_level_is_explained() -> None:
    """datasources maps a file name to a provisioning file; skipping the level is a type error."""
    problem = only(validate_values({"datasources": {"apiVersion": 1}}))
    assert problem.key == "datasources.apiVersion"
    assert "expected a map" in str(problem)
    assert "datasources.yaml" in str(problem)


def test_env_values_explain_where_secret_references_go() -> None:
    problem = only(validate_values({"env": {"TOKEN": {"valueFrom": {}}}}))
    assert "envValueFrom" in str(problem)


@pytest.mark.parametrize(
    "values",
    [
        {"grafana.ini": {"plugins": {"allow_loading_unsigned_plugins": "betrace-app"}}},
        {"grafana.ini": {"any_section_at_all": {"any_key": 1}}},
        {"datasources": {"datasources.yaml": {"apiVersion": 1, "anything": {"deep": [1]}}}},
        {"datasources": {"another-file.yaml": {"apiVersion": 1}}},
        {"env": {"ANY_VAR": "x", "OTHER_VAR": 3, "FLAG": True}},
        {"resources": {"limits": {"nvidia.com/gpu": 1}}},
        {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
        {"extraInitContainers": [{"name": "x", "anyContainerField": {"deep": True}}]},
        {"route": {"public": {"enabled": True, "hostnames": ["g.example.com"]}}},
    ],
)
def test_freeform_subtrees_accept_any_key(values: dict[str, Any]) -> None:
    assert validate_values(values) == []


def test_keys_under_a_free_map_are_still_checked_when_its_values_have_a_shape() -> None:
    problem = only(validate_values({"route": {"public": {"enabeld": True}}}))
    assert problem.key == "route.public.enabeld"
    assert "did you mean 'route.public.enabled'?" in str(problem)


# --- --set keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "adminPassword",
        "admin.existingSecret",
        "service.port",
        r"grafana\.ini.plugins.allow_loading_unsigned_plugins",
        r"datasources.datasources\.yaml.apiVersion",
        "env.GF_LOG_LEVEL",
        "extraInitContainers[0].image",
        "extraVolumes[0].emptyDir.medium",
        "plugins[0]",
        "persistence.enabled",
    ],
)
def test_set_accepts_real_keys(key: str) -> None:
    assert validate_set(key, "value") == []


def test_set_reports_a_misspelled_key_with_a_suggestion() -> None:
    problem = only(validate_set("service.prot", "3000"))
    assert problem.key == "service.prot"
    assert "did you mean 'service.port'?" in str(problem)


def test_set_explains_an_unescaped_dot_in_grafana_ini() -> None:
    problem = only(validate_set("grafana.ini.plugins.allow_loading_unsigned_plugins", "x"))
    assert problem.key == "grafana"
    assert r"grafana\.ini" in str(problem)


def test_set_rejects_a_key_below_a_scalar_or_an_index_on_a_map() -> None:
    assert "has no key 'number'" in str(only(validate_set("service.port.number", "80")))
    assert "is not a list" in str(only(validate_set("service[0]", "x")))


def test_set_rejects_an_empty_key() -> None:
    assert validate_set("", "x") != []


# --- resource names and the Service port ---------------------------------------------------


@pytest.mark.parametrize(
    ("release", "values", "expected"),
    [
        ("grafana", {}, "grafana"),
        ("monitoring", {}, "monitoring-grafana"),
        ("my-grafana", {}, "my-grafana"),
        ("grafana-prod", {}, "grafana-prod"),
        ("monitoring", {"fullnameOverride": "dashboards"}, "dashboards"),
        ("grafana", {"fullnameOverride": "dashboards"}, "dashboards"),
        ("monitoring", {"fullnameOverride": ""}, "monitoring-grafana"),
        ("monitoring", {"nameOverride": "gf"}, "monitoring-gf"),
        ("gf-one", {"nameOverride": "gf"}, "gf-one"),
    ],
)
def test_fullname_follows_the_chart_helper(
    release: str, values: dict[str, Any], expected: str
) -> None:
    assert fullname(release, values) == expected


def test_fullname_is_cut_to_63_characters_without_a_trailing_dash() -> None:
    long_release = "a" * 62  # "<62 a>-grafana" is cut after the dash, which is then dropped
    assert fullname(long_release, {}) == "a" * 62
    assert len(fullname("b" * 70, {})) == 63
    assert fullname("x", {"fullnameOverride": "c" * 62 + "-tail"}) == "c" * 62


def test_service_port_defaults_to_the_chart_default_and_follows_the_values() -> None:
    assert service_port({}) == 80
    assert service_port({"service": {"type": "NodePort"}}) == 80
    assert service_port({"service": {"port": 3000}}) == 3000
    assert service_port({"service": {"port": "8080"}}) == 8080
    with pytest.raises(ValueError, match=r"service\.port"):
        service_port({"service": {"port": "http"}})


# --- Grafana HTTP paths ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/health"),
        ("HEAD", "/api/health"),
        ("GET", "/login"),
        ("GET", "/"),
        ("GET", "/api/plugins"),
        ("GET", "/api/plugins/betrace-app/settings"),
        ("POST", "/api/plugins/betrace-app/settings"),
        ("GET", "/api/datasources"),
        ("POST", "/api/datasources"),
        ("GET", "/api/datasources/uid/tempo"),
        ("GET", "/api/search"),
        ("GET", "/api/search/?query=BeTrace"),
        ("GET", "/a/betrace-app"),
        ("GET", "/a/betrace-app/"),
        ("GET", "/a/betrace-app/rules/new"),
        ("GET", "/api/frontend/settings"),
        ("get", "/api/user"),
    ],
)
def test_grafana_serves_the_paths_guides_use(method: str, path: str) -> None:
    assert grafana_http.served(method, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/healthz"),
        ("GET", "/api/health/db"),
        ("GET", "/api/datasource"),
        ("GET", "/api/plugins/betrace-app/setting"),
        ("GET", "/api/datasources/uid"),
        ("GET", "/api/datasources/uid/a/b"),
        ("GET", "/a"),
        ("POST", "/api/health"),
        ("DELETE", "/api/plugins"),
    ],
)
def test_grafana_rejects_wrong_paths_and_methods(method: str, path: str) -> None:
    assert not grafana_http.served(method, path)


def test_path_templates_are_offered_as_method_and_path_pairs() -> None:
    pairs = grafana_http.paths()
    assert ("POST", "/api/plugins/{pluginId}/settings") in pairs
    assert all(path.startswith("/") and method.isupper() for method, path in pairs)


def test_every_endpoint_names_where_grafana_defines_it() -> None:
    with pytest.raises(ValueError, match="names its source"):
        grafana_http._parse({"endpoints": [{"path": "/x", "methods": ["GET"]}]})
    with pytest.raises(ValueError, match="methods"):
        grafana_http._parse({"endpoints": [{"path": "/x", "methods": ["FETCH"], "source": "s"}]})


# --- the keys the existing-Grafana guide adds -------------------------------------------------


def test_recreate_strategy_and_configmap_mounts_are_chart_keys() -> None:
    """deploymentStrategy (copied into the Deployment's strategy) replaces the rolling update that
    hangs on a ReadWriteOnce volume; extraConfigmapMounts mounts the provisioning file."""
    values = {
        "deploymentStrategy": {"type": "Recreate"},
        "extraConfigmapMounts": [
            {
                "name": "betrace-app-provisioning",
                "configMap": "betrace-app-provisioning",
                "mountPath": "/etc/grafana/provisioning/plugins/betrace-app.yaml",
                "subPath": "betrace-app.yaml",
                "readOnly": True,
            }
        ],
    }
    assert validate_values(values) == []


def test_a_misspelled_strategy_key_would_leave_the_rolling_update_in_place() -> None:
    problem = only(validate_values({"deploymentStrategie": {"type": "Recreate"}}))
    assert "did you mean 'deploymentStrategy'" in str(problem)


def test_a_parents_note_explains_its_entries_and_items_but_not_its_named_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The note of a free map or a list says what its entries are; a named key has its own."""
    closed = {"additionalProperties": False}
    properties = {
        "named": {
            "type": "object", "description": "parent note",
            "properties": {"k": {"type": "integer"}}, **closed,
        },
        "own": {
            "type": "object",
            "properties": {"k": {"type": "integer", "description": "own note"}},
            **closed,
        },
        "free": {
            "type": "object", "description": "free note",
            "additionalProperties": {"type": "integer", "description": "free note"},
        },
        "list": {
            "type": "array", "description": "list note",
            "items": {"type": "integer", "description": "list note"},
        },
        "open": {"type": "object"},
        "anylist": {"type": "array"},
        "anything": {},  # no type: nothing below is checked
    }  # fmt: skip
    doc = {"x-chart": _CHART_INFO, "type": "object", "properties": properties, **closed}
    monkeypatch.setattr(grafana_chart, "schema", lambda: parse_schema(doc))
    values = {
        "named": {"k": "x", "z": 1},
        "own": {"k": "x"},
        "free": {"a": "x"},
        "list": [1, "x"],
        "open": {"anything": {"deep": [1]}},
        "anylist": [1, {"a": 1}],
        "anything": ["x"],
    }
    assert [(p.key, p.message) for p in validate_values(values)] == [
        ("named.k", "expected an int for 'named.k', got a string"),
        ("named.z", "unknown key 'named.z' in the c 1.0.0 values; 'named' takes: k"),
        ("own.k", "expected an int for 'own.k', got a string (own note)"),
        ("free.a", "expected an int for 'free.a', got a string (free note)"),
        ("list[1]", "expected an int for 'list[1]', got a string (list note)"),
    ]
