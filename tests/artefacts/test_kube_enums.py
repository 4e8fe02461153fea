"""Fields the API server takes from a fixed set of constants: a manifest with another value is
refused in the API server's words, as it would refuse it, though Kubernetes' JSON Schemas (which
carry no enums) pass it; each value of the set passes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from betrace_dist.artefacts import chart_policy
from betrace_dist.artefacts.chart_policy import Manifest

#: the oldest Kubernetes the chart supports (releases.yaml), which kubectl apply validates against
VERSION = "1.25"

CONTAINER = {"name": "app", "image": "busybox:1.36", "ports": [{"containerPort": 8080}]}
POD_SPEC = {"containers": [CONTAINER]}
TEMPLATE = {"metadata": {"labels": {"app": "a"}}, "spec": POD_SPEC}
OBJECTS: dict[str, dict[str, Any]] = {
    "Pod": {"apiVersion": "v1", "spec": POD_SPEC},
    "Deployment": {
        "apiVersion": "apps/v1",
        "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": TEMPLATE},
    },
    "StatefulSet": {
        "apiVersion": "apps/v1",
        "spec": {
            "serviceName": "a",
            "selector": {"matchLabels": {"app": "a"}},
            "template": TEMPLATE,
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    },
    "Job": {"apiVersion": "batch/v1", "spec": {"template": TEMPLATE}},
    "CronJob": {
        "apiVersion": "batch/v1",
        "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": TEMPLATE}}},
    },
    "ReplicationController": {
        "apiVersion": "v1",
        "spec": {"selector": {"app": "a"}, "template": TEMPLATE},
    },
    "Service": {"apiVersion": "v1", "spec": {"selector": {"app": "a"}, "ports": [{"port": 80}]}},
    "PersistentVolumeClaim": {
        "apiVersion": "v1",
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    },
}

POD = ("spec",)
TPL = ("spec", "template", "spec")
# kind, where the value goes (keys and list indexes), the values that pass, the path and the
# supported values the API server names when it refuses another
CASES: list[tuple[str, tuple[Any, ...], list[str], str, str]] = [
    (
        "Pod",
        (*POD, "restartPolicy"),
        ["Always", "OnFailure", "Never"],
        "spec.restartPolicy",
        '"Always", "OnFailure", "Never"',
    ),
    (
        "Deployment",
        (*TPL, "restartPolicy"),
        ["Always"],
        "spec.template.spec.restartPolicy",
        '"Always"',
    ),
    (
        "StatefulSet",
        (*TPL, "restartPolicy"),
        ["Always"],
        "spec.template.spec.restartPolicy",
        '"Always"',
    ),
    (
        "Job",
        (*TPL, "restartPolicy"),
        ["OnFailure", "Never"],
        "spec.template.spec.restartPolicy",
        '"OnFailure", "Never"',
    ),
    (
        "CronJob",
        ("spec", "jobTemplate", *TPL, "restartPolicy"),
        ["OnFailure", "Never"],
        "spec.jobTemplate.spec.template.spec.restartPolicy",
        '"OnFailure", "Never"',
    ),
    (
        "ReplicationController",
        (*TPL, "restartPolicy"),
        ["Always"],
        "spec.template.spec.restartPolicy",
        '"Always"',
    ),
    (
        "Pod",
        (*POD, "containers", 0, "imagePullPolicy"),
        ["Always", "Never", "IfNotPresent"],
        "spec.containers[0].imagePullPolicy",
        '"Always", "IfNotPresent", "Never"',
    ),
    (
        "Deployment",
        (*TPL, "containers", 0, "imagePullPolicy"),
        ["Always", "Never", "IfNotPresent"],
        "spec.template.spec.containers[0].imagePullPolicy",
        '"Always", "IfNotPresent", "Never"',
    ),
    (
        "Deployment",
        (*TPL, "containers", 0, "ports", 0, "protocol"),
        ["TCP", "UDP", "SCTP"],
        "spec.template.spec.containers[0].ports[0].protocol",
        '"SCTP", "TCP", "UDP"',
    ),
    (
        "Service",
        ("spec", "ports", 0, "protocol"),
        ["TCP", "UDP", "SCTP"],
        "spec.ports[0].protocol",
        '"SCTP", "TCP", "UDP"',
    ),
    (
        "Service",
        ("spec", "type"),
        ["ClusterIP", "NodePort", "LoadBalancer"],
        "spec.type",
        '"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
    ),
    (
        "Deployment",
        ("spec", "strategy", "type"),
        ["Recreate"],  # RollingUpdate: below, with its rollingUpdate
        "spec.strategy.type",
        '"Recreate", "RollingUpdate"',
    ),
    (
        "PersistentVolumeClaim",
        ("spec", "accessModes", 0),
        ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"],
        "spec.accessModes",
        '"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"',
    ),
    (
        "StatefulSet",
        ("spec", "volumeClaimTemplates", 0, "spec", "accessModes", 0),
        ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"],
        "spec.volumeClaimTemplates[0].spec.accessModes",
        '"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"',
    ),
]
IDS = [f"{c[0]}-{c[3]}" for c in CASES]


def manifest(kind: str, where: tuple[Any, ...], value: str) -> Manifest:
    doc = {"kind": kind, "metadata": {"name": "a"}, **copy.deepcopy(OBJECTS[kind])}
    node: Any = doc
    for key in where[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
    node[where[-1]] = value
    return Manifest("page.yaml", doc)


@pytest.mark.parametrize(("kind", "where", "good", "path", "supported"), CASES, ids=IDS)
def test_a_value_outside_the_api_servers_set_is_refused_in_its_words(
    kind: str, where: tuple[Any, ...], good: list[str], path: str, supported: str
) -> None:
    problems = chart_policy.validate_kubernetes([manifest(kind, where, "Sometimes")], [VERSION])
    assert problems == [
        f'page.yaml {kind}/a: {path}: Unsupported value: "Sometimes": supported values: {supported}'
    ]


@pytest.mark.parametrize(("kind", "where", "good", "path", "supported"), CASES, ids=IDS)
def test_each_value_of_the_api_servers_set_passes(
    kind: str, where: tuple[Any, ...], good: list[str], path: str, supported: str
) -> None:
    for value in good:
        problems = chart_policy.validate_kubernetes([manifest(kind, where, value)], [VERSION])
        assert problems == [], value


def test_a_pod_restart_policy_a_controller_does_not_allow_is_refused() -> None:
    """OnFailure is a pod's restartPolicy, but a Deployment's pods must restart always."""
    bad = manifest("Deployment", (*TPL, "restartPolicy"), "OnFailure")
    (problem,) = chart_policy.validate_kubernetes([bad], [VERSION])
    assert problem.endswith(
        'spec.template.spec.restartPolicy: Unsupported value: "OnFailure": '
        'supported values: "Always"'
    )


def test_a_rolling_update_strategy_and_fields_left_to_the_defaults_pass() -> None:
    rolling = manifest("Deployment", ("spec", "strategy", "type"), "RollingUpdate")
    rolling.doc["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": 1, "maxUnavailable": 0}
    assert chart_policy.validate_kubernetes([rolling], [VERSION]) == []
    bare = [
        Manifest("page.yaml", {"kind": k, "metadata": {"name": "a"}, **o})
        for k, o in OBJECTS.items()
    ]
    assert chart_policy.validate_kubernetes(bare, [VERSION]) == []


def test_a_value_that_is_no_string_is_left_to_the_schema() -> None:
    """The schema names a number where a string belongs: that is its one message for it."""
    bad = manifest("Service", ("spec", "type"), "x")
    bad.doc["spec"]["type"] = 3
    problems = chart_policy.validate_kubernetes([bad], [VERSION])
    assert len(problems) == 1 and "(Kubernetes 1.25): spec.type: 3 is not of type" in problems[0]


@pytest.mark.parametrize(
    ("requests", "limits", "refused"),
    [
        ({"memory": "128Mi"}, {"memory": "64Mi"}, 'Invalid value: "128Mi": must be less than or '
         "equal to memory limit of 64Mi"),
        ({"cpu": "1"}, {"cpu": "500m"}, 'Invalid value: "1": must be less than or equal to cpu '
         "limit of 500m"),
        ({"cpu": "0.5", "memory": "64Mi"}, {"cpu": "500m", "memory": "0.0625Gi"}, None),
        ({"cpu": "10m", "memory": "16Mi"}, {"cpu": "100m", "memory": "64Mi"}, None),
        ({"memory": "1G"}, {"memory": "1Gi"}, None),  # 10^9 is less than 2^30
        ({"memory": "2Gi"}, {"cpu": "1"}, None),  # no limit of memory: any request
    ],
)  # fmt: skip
def test_a_request_above_its_limit_is_refused_in_the_api_servers_words(
    requests: dict[str, str], limits: dict[str, str], refused: str | None
) -> None:
    """The schemas cannot compare two fields; the API server refuses such a container
    (validateResourceRequirements), in an init container as in any other."""
    for containers in ("containers", "initContainers"):
        bad = manifest("Deployment", (*TPL, containers), [
            CONTAINER | {"resources": {"requests": requests, "limits": limits}}
        ])  # fmt: skip
        problems = chart_policy.validate_kubernetes([bad], [VERSION])
        path = f"spec.template.spec.{containers}[0].resources.requests"
        assert problems == ([f"page.yaml Deployment/a: {path}: {refused}"] if refused else [])


def test_quantities_read_as_kubernetes_reads_them() -> None:
    from fractions import Fraction

    from betrace_dist.quantity import parse

    cases = {"64Mi": 64 * 2**20, "100m": Fraction(1, 10), "1.5": Fraction(3, 2), "2e3": 2000,
             "1E": 10**18, "0.5Gi": 2**29, "10M": 10**7, "1": 1, 2: 2, "+.5k": 500}  # fmt: skip
    assert {q: parse(q) for q in cases} == cases
    assert [parse(q) for q in ("64MB", "Mi", "1Mi1", "", True, None, "1 Mi")] == [None] * 7


@pytest.mark.parametrize(
    ("resource", "divisor", "refused"),
    [
        ("limits.cpu", "500m", "cpu"),
        ("requests.memory", "2", "memory"),
        ("limits.ephemeral-storage", "1m", "local ephemeral storage"),
        ("limits.cpu", "1000m", None),  # canonically 1
        ("limits.memory", "1000", None),  # canonically 1k
        ("limits.memory", "1Mi", None),
        ("limits.cpu", "0", None),  # zero, as unset: 1
        ("limits.cpu", None, None),
    ],
)
def test_a_divisor_the_resource_does_not_take_is_refused_in_the_api_servers_words(
    resource: str, divisor: str | None, refused: str | None
) -> None:
    """validateContainerResourceDivisor: the schemas take any quantity there."""
    ref = {"resource": resource} | ({"divisor": divisor} if divisor is not None else {})
    env = [{"name": "N", "valueFrom": {"resourceFieldRef": ref}}]
    bad = manifest("Deployment", (*TPL, "containers"), [CONTAINER | {"env": env}])
    problems = chart_policy.validate_kubernetes([bad], [VERSION])
    path = "spec.template.spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor"
    said = f'{path}: Invalid value: "{resource}": only divisor\'s values '
    if refused is None:
        assert problems == []
    else:
        assert len(problems) == 1 and said in problems[0], problems
        assert problems[0].endswith(f"are supported with the {refused} resource")


@pytest.mark.parametrize(("rolling", "refused"), [({"maxSurge": 1}, True), (None, False)])
def test_a_recreate_deployment_with_rolling_update_settings_is_refused(
    rolling: dict[str, int] | None, refused: bool
) -> None:
    """What grafana-recreate-values.yaml clears (rollingUpdate: null): the API server refuses
    Recreate beside rollingUpdate settings, and the schemas do not."""
    bad = manifest("Deployment", ("spec", "strategy", "type"), "Recreate")
    bad.doc["spec"]["strategy"]["rollingUpdate"] = rolling
    problems = chart_policy.validate_kubernetes([bad], [VERSION])
    forbidden = (
        "page.yaml Deployment/a: spec.strategy.rollingUpdate: Forbidden: may not be specified "
        "when strategy `type` is 'Recreate'"
    )
    assert problems == ([forbidden] if refused else [])
