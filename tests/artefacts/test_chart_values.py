"""values.yaml is documented key by key, and the schema and README table generated from it are
current; the schema refuses what would silently misconfigure BeTrace."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from betrace_dist import REPO_ROOT
from betrace_dist.artefacts import chart_values
from betrace_dist.artefacts.chart_policy import Helm, HelmError
from betrace_dist.errors import ProblemsError
from betrace_dist.release import ReleaseData

CHART = REPO_ROOT / "helm" / "betrace"


@pytest.fixture(scope="module", params=["helm", "helm3"])
def helm(
    request: pytest.FixtureRequest,
    tool: Callable[[str, str], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Helm:
    """Helm 4 (required), then Helm 3 where a `helm3` binary is installed (see test_chart_helm3)."""
    if request.param == "helm3":
        return request.getfixturevalue("helm3")
    return request.getfixturevalue("helm")


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    copy = tmp_path / "betrace"
    shutil.copytree(CHART, copy)
    return copy


def schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))


def objects(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if "properties" in node:
        yield path or "(root)", node
        for key, child in node["properties"].items():
            yield from objects(child, f"{path}.{key}" if path else key)


def test_every_values_key_is_documented() -> None:
    doc = chart_values.parse_values(CHART)
    assert all(p.description for p in doc.walk())


def test_schema_and_readme_table_are_generated_from_current_values() -> None:
    assert chart_values.stale_files(CHART) == []


def test_every_closed_mapping_refuses_unknown_keys() -> None:
    closed = dict(objects(schema()))
    assert len(closed) > 10
    for path, node in closed.items():
        assert node.get("additionalProperties") is False, f"{path} accepts unknown keys"


def test_schema_is_valid_draft_07_and_accepts_every_scenario() -> None:
    validator = jsonschema.Draft7Validator(schema())
    validator.check_schema(validator.schema)
    defaults = YAML(typ="safe").load((CHART / "values.yaml").read_text(encoding="utf-8"))
    validator.validate(defaults)
    for scenario in sorted((CHART / "ci").glob("*.yaml")):
        values = YAML(typ="safe").load(scenario.read_text(encoding="utf-8")) or {}
        errors = [e.message for e in validator.iter_errors(values)]
        assert not errors, f"{scenario.name}: {errors}"


def test_table_lists_every_key() -> None:
    table = chart_values.render_table(chart_values.parse_values(CHART))
    for param in chart_values.parse_values(CHART).walk():
        assert f"| `{param.path}` |" in table
    assert "(const: `1`)" in table
    for section in ("Common", "Backend", "Grafana", "Network policy", "Tests"):
        assert f"### {section}\n" in table


# --- helm refuses bad values files, naming the key ------------------------------------------------


# Helm 4 writes '/backend/replicas', Helm 3 'backend.replicas': the patterns accept both.
BAD_VALUES: dict[str, tuple[dict[str, Any], str]] = {
    "misspelled-key": ({"backend": {"replica": 1}}, r"backend.*replica.* not allowed"),
    "misspelled-section": ({"grafan": {}}, r"grafan.* not allowed"),
    "literal-admin-password": ({"grafana": {"adminPassword": "admin"}}, r"adminPassword"),
    "wrong-type": ({"backend": {"ports": {"http": "12011x"}}}, r"backend[./]ports[./]http"),
    "two-replicas": ({"backend": {"replicas": 2}}, r"backend[./]replicas"),
    "otlp-with-scheme": (
        {"backend": {"otlpEndpoint": "http://otel-collector:4317"}},
        r"backend[./]otlpEndpoint",
    ),
    "pull-policy": ({"image": {"pullPolicy": "Sometimes"}}, r"image[./]pullPolicy"),
    "latest-tag": ({"backend": {"image": {"tag": "latest"}}}, r"backend[./]image[./]tag"),
    "plugin-source": (
        {"grafana": {"plugin": {"source": "catalog"}}},
        r"grafana[./]plugin[./]source",
    ),
    "grafana-enabled-as-string": ({"grafana": {"enabled": "no"}}, r"grafana[./]enabled"),
    # A NetworkPolicy without sources admits every pod: the backend has no authentication.
    "network-policy-without-sources": (
        {"networkPolicy": {"enabled": True}},
        r"networkPolicy[./]backendFrom",
    ),
    # a pull secret is a name or Kubernetes' {name: ...}; anything else is a typo
    "pull-secret-without-name": (
        {"image": {"pullSecrets": [{"secret": "regcred"}]}},
        r"image[./]pullSecrets",
    ),
    # a peer is Kubernetes' NetworkPolicyPeer: a misspelt selector made the whole policy fail
    # at install (the API server refuses it), after Helm had taken the values
    "network-policy-peer-misspelt": (
        {
            "networkPolicy": {
                "enabled": True,
                "backendFrom": [{"namespaceSelectors": {"matchLabels": {"a": "b"}}}],
            }
        },
        r"networkPolicy[./]backendFrom[./]0",
    ),
    "network-policy-selector-misspelt": (
        {
            "networkPolicy": {
                "enabled": True,
                "backendFrom": [{"namespaceSelector": {"matchLabel": {"a": "b"}}}],
            }
        },
        r"backendFrom[./]0[./]namespaceSelector",
    ),
    "network-policy-ip-block-without-cidr": (
        {"networkPolicy": {"enabled": True, "backendFrom": [{"ipBlock": {}}]}},
        r"backendFrom[./]0[./]ipBlock",
    ),
    "grafana-peer-empty": (
        {"networkPolicy": {"grafanaFrom": [{}]}},
        r"networkPolicy[./]grafanaFrom[./]0",
    ),
    "grace-period-under-the-slow-stop": (
        {"backend": {"terminationGracePeriodSeconds": 10}},
        r"backend[./]terminationGracePeriodSeconds",
    ),
    # an image tag has no '+' (the OCI distribution spec's tag grammar); semver's build part does
    "tag-with-build-metadata": (
        {"backend": {"image": {"tag": "2.0.0+b1"}}},
        r"backend[./]image[./]tag",
    ),
    # a Secret's data key is letters, digits, '-', '_' and '.' (the API server refuses others)
    "secret-key-with-a-space": (
        {"backend": {"signatureKey": {"secretKey": "signature key"}}},
        r"backend[./]signatureKey[./]secretKey",
    ),
    "claim-name-not-a-name": (
        {"grafana": {"persistence": {"existingClaim": "My_Claim"}}},
        r"grafana[./]persistence[./]existingClaim",
    ),
    "secret-key-of-dots": (
        {"grafana": {"admin": {"passwordKey": ".."}}},
        r"grafana[./]admin[./]passwordKey",
    ),
    "name-override-not-a-name": ({"nameOverride": "Beta_Trace"}, r"nameOverride"),
    "source-range-octet-over-255": (
        {
            "backend": {
                "service": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["256.0.0.0/8"]}
            }
        },
        r"loadBalancerSourceRanges[./]0",
    ),
    "source-range-not-a-range": (
        {"backend": {"service": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["abc/999"]}}},
        r"loadBalancerSourceRanges[./]0",
    ),
}

#: (values, the message's text): what the templates refuse, where the schema cannot compare two
#: values or a path with the chart's own mounts.
REFUSED_BY_TEMPLATES: dict[str, tuple[tuple[str, ...], str]] = {
    "ports-collide": (
        ("backend.ports.http=12012",),
        "backend.ports.http and backend.ports.grpc are both 12012",
    ),
    "one-key-for-user-and-password": (
        ("grafana.admin.userKey=k", "grafana.admin.passwordKey=k"),
        "grafana.admin.userKey and grafana.admin.passwordKey are both k",
    ),
    "data-under-tmp": (("backend.dataDir=/tmp/betrace",), "backend.dataDir: /tmp/betrace is not"),
    "data-at-the-rules-mount": (("backend.dataDir=/rules/",), "backend.dataDir: /rules/ is not"),
    "data-at-the-root": (("backend.dataDir=/",), "backend.dataDir: / is not allowed"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_BY_TEMPLATES))
def test_values_that_would_collide_fail_naming_the_key(helm: Helm, case: str) -> None:
    values, message = REFUSED_BY_TEMPLATES[case]
    with pytest.raises(HelmError) as failure:
        helm.template(CHART, set_values=values)
    assert message in str(failure.value)


def test_a_service_name_that_would_begin_with_a_digit_is_refused(helm: Helm) -> None:
    """A Service's name is a DNS-1035 label, which begins with a letter: a release named 1st
    rendered 1st-betrace-backend, which the API server refuses. nameOverride may begin with a
    digit: the release's name comes first."""
    with pytest.raises(HelmError) as failure:
        helm.template(CHART, release="1st")
    assert "the Services' names would begin with 1st-betrace" in str(failure.value)
    assert helm.template(CHART, set_values=["nameOverride=1abc"], release="rel")


def _parent_chart(tmp_path: Path) -> Path:
    """A chart with this one as a dependency, as an umbrella chart has it: condition
    betrace.enabled, tag observability."""
    parent = tmp_path / "parent"
    shutil.copytree(CHART, parent / "charts" / "betrace")
    version = _yaml_version(CHART / "Chart.yaml")
    (parent / "Chart.yaml").write_text(
        "apiVersion: v2\nname: parent\nversion: 0.1.0\ndependencies:\n"
        f"  - name: betrace\n    version: {version}\n    condition: betrace.enabled\n"
        "    tags: [observability]\n",
        encoding="utf-8",
    )
    return parent


def _yaml_version(chart_yaml: Path) -> str:
    (line,) = [x for x in chart_yaml.read_text("utf-8").splitlines() if x.startswith("version:")]
    return line.split(":", 1)[1].strip()


@pytest.mark.parametrize(
    ("settings", "deployments"),
    [
        ((), 2),
        (("betrace.enabled=true",), 2),
        (("betrace.enabled=false",), 0),
        # the chart gives enabled no default, so that a parent's tags decide when it is unset
        (("tags.observability=false",), 0),
        (("tags.observability=false", "betrace.enabled=true"), 2),
    ],
)
def test_a_parent_chart_turns_the_chart_on_and_off(
    helm: Helm, tmp_path: Path, settings: tuple[str, ...], deployments: int
) -> None:
    """The closed schema refused the `enabled` a parent's condition sets; a default of it in
    values.yaml made the condition win over the parent's tags."""
    manifests = helm.template(_parent_chart(tmp_path), set_values=settings)
    assert len([m for m in manifests if m.kind == "Deployment"]) == deployments


def test_names_that_read_as_numbers_stay_strings(helm: Helm, tmp_path: Path) -> None:
    """Unquoted, a claim, Secret, ServiceAccount or ConfigMap named 0123 rendered as a number,
    which the API server refuses for a string field, and a data directory with ' #' lost the
    rest of its path to a YAML comment in the mount, but not in BETRACE_DATA_DIR."""
    values = tmp_path / "names.yaml"
    values.write_text(
        json.dumps(
            {
                "serviceAccount": {"name": "123"},
                "nameOverride": "123",
                "backend": {
                    "persistence": {"existingClaim": "0123"},
                    "rulesConfigMap": "0789",
                    "dataDir": "/data #x",
                },
                "grafana": {"admin": {"existingSecret": "0456"}},
            }
        ),
        encoding="utf-8",
    )
    manifests = helm.template(CHART, [values])
    text = json.dumps([m.doc for m in manifests])
    for rendered in ('"claimName": "0123"', '"name": "0456"', '"name": "0789"'):
        assert rendered in text, rendered
    assert '"serviceAccountName": "123"' in text and '"mountPath": "/data #x"' in text
    assert '"app.kubernetes.io/name": "123"' in text


def assert_helm_refuses(helm: Helm, tmp_path: Path, values: dict[str, Any], pattern: str) -> None:
    bad = tmp_path / "bad-values.yaml"
    bad.write_text(json.dumps(values), encoding="utf-8")
    with pytest.raises(HelmError) as failure:
        helm.template(CHART, [bad])
    message = str(failure.value)
    assert "don't meet the specifications of the schema" in message, message
    assert re.search(pattern, message), f"{pattern!r} not in: {message}"


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_bad_values_file_fails_helm_template_naming_the_key(
    helm: Helm, tmp_path: Path, case: str
) -> None:
    assert_helm_refuses(helm, tmp_path, *BAD_VALUES[case])


def test_otlp_endpoint_as_host_port_is_accepted(helm: Helm) -> None:
    helm.template(CHART, set_values=["backend.otlpEndpoint=otel-collector.observability:4317"])


# --- the generator, broken on purpose -------------------------------------------------------------


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{path.name} no longer contains {old!r}: update this test"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_undocumented_key_fails_with_file_line_and_key(chart: Path) -> None:
    values = chart / "values.yaml"
    edit(values, "  debug: false\n", "  debug: false\n  logLevel: info\n")
    line = values.read_text(encoding="utf-8").splitlines().index("  logLevel: info") + 1
    with pytest.raises(ProblemsError) as failure:
        chart_values.parse_values(chart)
    assert f"values.yaml:{line}: backend.logLevel: no documentation" in str(failure.value)


def test_comment_naming_another_key_fails(chart: Path) -> None:
    edit(chart / "values.yaml", "## @param backend.debug ", "## @param backend.debugging ")
    with pytest.raises(ProblemsError, match=r"documents 'backend\.debugging' but the key below"):
        chart_values.parse_values(chart)


def test_param_separated_from_its_key_fails(chart: Path) -> None:
    edit(chart / "values.yaml", "  debug: false\n", "\n  debug: false\n")
    with pytest.raises(ProblemsError) as failure:
        chart_values.parse_values(chart)
    assert "this @param is not directly above the key it documents" in str(failure.value)
    assert "backend.debug: no documentation" in str(failure.value)


def test_annotation_away_from_any_key_fails(chart: Path) -> None:
    edit(
        chart / "values.yaml", "## @section Tests\n", '## @section Tests\n## @schema {"const": 1}\n'
    )
    with pytest.raises(ProblemsError, match=r"annotation not above any key: ## @schema"):
        chart_values.parse_values(chart)


def test_empty_mapping_without_map_or_freeform_fails(chart: Path) -> None:
    edit(chart / "values.yaml", "## @param commonLabels [map] ", "## @param commonLabels ")
    with pytest.raises(ProblemsError, match=r"commonLabels: an empty mapping needs \[map\]"):
        chart_values.parse_values(chart)


def test_stale_schema_and_readme_name_the_command_that_fixes_them(chart: Path) -> None:
    edit(chart / "values.yaml", "Turn on debug logging", "Switch on debug logging")
    stale = chart_values.stale_files(chart)
    assert len(stale) == 2
    assert "values.schema.json is out of date" in stale[0]
    assert "python -m betrace_dist.artefacts.chart_values schema" in stale[0]
    assert "README.md is out of date" in stale[1]
    assert "python -m betrace_dist.artefacts.chart_values readme" in stale[1]
    assert chart_values.main(["schema", str(chart)]) == 0
    assert chart_values.main(["readme", str(chart)]) == 0
    assert chart_values.stale_files(chart) == []
    assert chart_values.main(["check", str(chart)]) == 0


def test_schema_keyword_from_comment_reaches_the_schema(chart: Path) -> None:
    edit(chart / "values.yaml", '## @schema {"const": 1}', '## @schema {"maximum": 1}')
    generated = chart_values.build_schema(chart_values.parse_values(chart))
    replicas = generated["properties"]["backend"]["properties"]["replicas"]
    assert replicas["maximum"] == 1
    assert "const" not in replicas
    assert "violations in memory" in replicas["description"]


def line_of(path: Path, text: str) -> int:
    return path.read_text(encoding="utf-8").splitlines().index(text) + 1


#: commonLabels' line of values.yaml, as it is
(COMMON_LABELS_LINE,) = [
    line
    for line in (CHART / "values.yaml").read_text(encoding="utf-8").splitlines()
    if line.startswith("## @param commonLabels [map] ")
]

#: (the edit: old text, new text; the line the problem is reported at; the message after
#: `values.yaml:LINE: `): each annotation rule, broken on purpose in a copy of the chart.
BROKEN_ANNOTATIONS = {
    "unknown modifier, naming the known ones": (
        "## @param commonLabels [map] ",
        "## @param commonLabels [map, mapping] ",
        COMMON_LABELS_LINE.replace("[map] ", "[map, mapping] "),
        "commonLabels: unknown modifier [mapping]; known: array, boolean, freeform, integer, "
        "map, nullable, number, object, string",
    ),
    "@schema without an @param above it": (
        "## @param nameOverride ",
        '## @schema {"const": ""}\n## @param nameOverride ',
        '## @schema {"const": ""}',
        "@schema without an @param above it",
    ),
    "@schema that is not JSON, naming the key": (
        '## @schema {"const": 1}',
        "## @schema {const: 1}",
        "  ## @schema {const: 1}",
        "backend.replicas: @schema is not JSON (",
    ),
    "unknown annotation": (
        "## @param nameOverride ",
        "## @default x\n## @param nameOverride ",
        "## @default x",
        "unknown annotation: ## @default x",
    ),
    "two @param lines above one key": (
        "## @param nameOverride ",
        "## @param nameOverride Once\n## @param nameOverride ",
        'nameOverride: ""',
        "nameOverride: 2 @param lines above one key",
    ),
    "a null default without a type": (
        'nameOverride: ""',
        "nameOverride: null",
        "nameOverride: null",
        "nameOverride: a null default needs a type, e.g. [string, nullable]",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_ANNOTATIONS))
def test_a_broken_annotation_fails_at_its_line(chart: Path, case: str) -> None:
    old, new, at, message = BROKEN_ANNOTATIONS[case]
    values = chart / "values.yaml"
    edit(values, old, new)
    with pytest.raises(ProblemsError) as failure:
        chart_values.parse_values(chart)
    assert f"values.yaml:{line_of(values, at)}: {message}" in str(failure.value)


def test_values_that_are_not_a_mapping_fail(chart: Path) -> None:
    (chart / "values.yaml").write_text("- a list\n", encoding="utf-8")
    with pytest.raises(ProblemsError, match=r"values\.yaml:1: values\.yaml is not a mapping"):
        chart_values.parse_values(chart)


def _limits(release_data: ReleaseData) -> dict[str, int]:
    return {limit.name: limit.value for limit in release_data.current.backend.limits}


def test_the_rules_schema_holds_the_backends_limits(release_data: ReleaseData) -> None:
    doc = chart_values.parse_values(CHART)
    assert chart_values.limit_problems(doc, _limits(release_data)) == []


def test_a_rule_name_length_other_than_the_backends_fails_at_its_line(
    tmp_path: Path, release_data: ReleaseData
) -> None:
    chart = tmp_path / "betrace"
    shutil.copytree(CHART, chart)
    values = chart / "values.yaml"
    text = values.read_text(encoding="utf-8")
    now = '"maxLength": 256}'
    assert text.count(now) == 1, "values.yaml changed: update this test"
    values.write_text(text.replace(now, '"maxLength": 300}'), encoding="utf-8")
    line = text[: text.index("  rules: []")].count("\n") + 1
    problems = chart_values.limit_problems(chart_values.parse_values(chart), _limits(release_data))
    assert problems == [
        f"{values}:{line}: backend.rules[].name has maxLength 300, but the backend's limit is "
        "256 (releases.yaml backend.limits rule_name)"
    ]


def test_the_network_policy_peers_are_kubernetes_networkpolicypeer(
    release_data: ReleaseData,
) -> None:
    """The fields the chart's schema takes in backendFrom and grafanaFrom are those of
    NetworkPolicyPeer in Kubernetes' own (strict) schema, at the oldest Kubernetes the release
    supports, as kubernetes-validate carries it."""
    import kubernetes_validate

    minimum = release_data.current.kubernetes.minimum
    folder = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    peer = json.loads(
        (folder / f"v{minimum}.0-local-strict" / "networkpolicypeer-networking-v1.json").read_text()
    )
    strict = folder / f"v{minimum}.0-local-strict"

    def kube(name: str) -> dict[str, Any]:
        return dict(json.loads((strict / f"{name}.json").read_text()))

    def same(ours: dict[str, Any], theirs: dict[str, Any], where: str) -> None:
        assert sorted(ours["properties"]) == sorted(theirs["properties"]), where
        assert sorted(ours.get("required", [])) == sorted(theirs.get("required", [])), where
        assert ours["additionalProperties"] is False is theirs["additionalProperties"], where

    schema = json.loads((CHART / "values.schema.json").read_text())
    policy = schema["properties"]["networkPolicy"]["properties"]
    for key in ("backendFrom", "grafanaFrom"):
        items = policy[key]["items"]
        same(items, peer, key)
        same(items["properties"]["ipBlock"], kube("ipblock-networking-v1"), f"{key} ipBlock")
        for selector in ("namespaceSelector", "podSelector"):
            ours = items["properties"][selector]
            same(ours, kube("labelselector-meta-v1"), f"{key} {selector}")
            requirement = ours["properties"]["matchExpressions"]["items"]
            same(requirement, kube("labelselectorrequirement-meta-v1"), f"{key} {selector} expr")
