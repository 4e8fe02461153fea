"""One rule per backend variable (src/betrace_dist/backend_env.py), the same for the chart, the
Compose stack and the gate, held to releases.yaml and to the chart's own schema."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from betrace_dist import REPO_ROOT, backend_env
from betrace_dist.release import ReleaseData

OTLP = "OTEL_EXPORTER_OTLP_ENDPOINT"


def test_every_variable_of_the_release_data_has_a_rule(release_data: ReleaseData) -> None:
    names = {v.name for v in release_data.current.backend.env}
    assert names == set(backend_env.RULES), "a variable of releases.yaml needs a value rule"


def test_every_go_runtime_variable_of_the_release_data_has_a_rule(
    release_data: ReleaseData,
) -> None:
    names = set(release_data.current.backend.runtime_env.names)
    assert names == set(backend_env.RUNTIME_RULES), "a Go runtime variable needs a value rule"
    assert not dict(backend_env.env_problems(dict.fromkeys(names), release_data))


def test_each_rule_accepts_the_release_datas_own_default(release_data: ReleaseData) -> None:
    """The rules encode what releases.yaml says; its concrete defaults must satisfy them."""
    concrete = {"BETRACE_PORT_BACKEND", "BETRACE_PORT_GRPC", "BETRACE_DATA_DIR", OTLP}
    for var in release_data.current.backend.env:
        if var.name in concrete:
            assert backend_env.value_problem(var.name, var.default) is None, var.name


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        (OTLP, "http://otel-collector:4317", "no scheme, e.g. 'otel-collector:4317'"),
        (OTLP, "https://collector.observability:4317", "too many colons in address"),
        (OTLP, "otel-collector", "host:port with no scheme"),
        (OTLP, "otel-collector:99999", "not a number from 1 to 65535"),
        (OTLP, "otel-collector:04318", "without leading zeros"),
        (OTLP, "otel-collector:4318", "the port of OTLP over HTTP"),
        ("BETRACE_DEBUG", "false", "turns debug logging ON"),
        ("BETRACE_DEBUG", "0", "turns debug logging ON"),
        ("BETRACE_PORT_BACKEND", "8080x", "a TCP port number"),
        # str.isdigit takes these, Go's strconv does not: the backend cannot listen on them
        ("BETRACE_PORT_BACKEND", "\u00b2", "a TCP port number"),
        ("BETRACE_PORT_GRPC", "\u0661\u0662\u0660\u0661\u0661", "a TCP port number"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "\u0661\u0660\u0660\u0660", "whole number of milliseconds"),
        ("BETRACE_DATA_DIR", " ", "writable directory"),
        ("BETRACE_SIGNATURE_KEY", "", "built-in development key"),
        # a Kubernetes quantity: the backend stops at start (probe go-runtime-env), and the
        # message gives the same size as Go writes it (bytes for a decimal suffix: 1G is not 1GiB)
        ("GOMEMLIMIT", "512Mi", "malformed GOMEMLIMIT); write 512MiB, the same size"),
        ("GOMEMLIMIT", "1G", "write 1000000000, the same size"),
        ("GOMEMLIMIT", "-1", "malformed GOMEMLIMIT"),
        # no size Go can take, so no "same size" is offered
        ("GOMEMLIMIT", "9999999999Ti", "malformed GOMEMLIMIT); e.g. 536870912 or 512MiB"),
        ("GOMEMLIMIT", "1ki", "malformed GOMEMLIMIT); e.g. 536870912 or 512MiB"),
        ("GOMEMLIMIT", "2Pi", "write 2251799813685248, the same size"),
        ("GOMEMLIMIT", "9999999999TiB", "malformed GOMEMLIMIT"),
        # Go 1.24's runtime (the image's) reads no '+' sign; Go 1.27's does
        ("GOMEMLIMIT", "+512MiB", "malformed GOMEMLIMIT"),
        ("GOMAXPROCS", "+2", "ignores any other value"),
        ("GOMAXPROCS", "500m", "ignores any other value"),
        ("GOMAXPROCS", "0", "as many threads as the node has CPUs"),
        ("GOMAXPROCS", "2147483648", "a whole number above 0"),
    ],
)
def test_wrong_values_are_reported_with_the_reason(name: str, value: str, fragment: str) -> None:
    problem = backend_env.value_problem(name, value)
    assert problem is not None and fragment in problem, problem
    assert problem.startswith(f"is '{value}'") or "empty" in problem


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (OTLP, "otel-collector.observability.svc.cluster.local:4317"),
        (OTLP, "10.0.0.7:4317"),
        ("BETRACE_DEBUG", "true"),
        ("BETRACE_DEBUG", ""),
        ("BETRACE_PORT_GRPC", "12012"),
        ("GOMEMLIMIT", "536870912"),
        ("GOMEMLIMIT", "512MiB"),
        ("GOMEMLIMIT", "off"),
        ("GOMAXPROCS", "1"),
    ],
)
def test_right_values_pass(name: str, value: str) -> None:
    assert backend_env.value_problem(name, value) is None


def test_names_the_backend_ignores_are_reported(release_data: ReleaseData) -> None:
    found = dict(
        backend_env.env_problems(
            {"BETRACE_STORAGE_PATH": "/data", "LOG_FORMAT": "json", OTLP: None}, release_data
        )
    )
    assert "releases.yaml backend.not_read" in found["BETRACE_STORAGE_PATH"]
    assert "is not a variable the backend reads" in found["LOG_FORMAT"]
    assert OTLP not in found, "a value from a Secret is not checked, its name is"


@pytest.mark.parametrize(
    "name", ["OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_EXPORTER_OTLP_PROTOCOL"]
)
def test_sdk_variables_the_backends_code_overrides_are_reported(
    release_data: ReleaseData, name: str
) -> None:
    """The probe otel-variables sees traces arrive with OTEL_TRACES_SAMPLER=always_off, over
    gRPC with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf: a page setting them to sample less or
    to send OTLP/HTTP misleads. They were named in the fact's text only, and passed."""
    found = dict(backend_env.env_problems({name: "x"}, release_data))
    assert "releases.yaml backend.sdk_env.ignored" in found[name], found
    assert name in release_data.current.backend.sdk_env.ignored


def assert_agrees(pattern: str, samples: list[str], rule_ok: Callable[[str], bool]) -> None:
    """The schema's pattern accepts exactly the samples the rule accepts."""
    for value in samples:
        assert (re.search(pattern, value) is not None) == rule_ok(value), value


def test_chart_schema_pattern_agrees_with_the_rule() -> None:
    """Helm cannot call Python, so values.schema.json carries the OTLP rule as a pattern; it
    must accept and refuse exactly what the rule does."""
    schema = json.loads((REPO_ROOT / "helm/betrace/values.schema.json").read_text())
    pattern = schema["properties"]["backend"]["properties"]["otlpEndpoint"]["pattern"]
    samples = [
        "otel-collector:4317",
        "otel-collector.observability.svc.cluster.local:4317",
        "10.0.0.7:4317",
        "http://otel-collector:4317",
        "otel-collector",
        "otel_collector:4317",
        "collector:4317/v1",
        "-collector:4317",
        "otel-collector:4318",  # OTLP/HTTP's port
        "otel-collector:4319",
        "otel-collector:43180",
        "otel-collector:14318",
        "otel-collector:3318",
        "otel-collector:4418",
        "otel-collector:4328",
        "otel-collector:04318",
        "otel-collector:0",
        "otel-collector:0431",
        # a port has 16 bits: 99999 passed the pattern once
        "otel-collector:65535",
        "otel-collector:65536",
        "otel-collector:70000",
        "otel-collector:99999",
        "otel-collector:59999",
        "otel-collector:10000",
    ]
    assert_agrees(pattern, samples, lambda value: backend_env.value_problem(OTLP, value) is None)


def test_chart_backend_url_pattern_agrees_with_the_rule() -> None:
    """The chart's values schema carries the shared backendUrl rule as a pattern (Helm cannot
    call Python), with https allowed: the URL may name a backend of the reader's behind a TLS
    proxy. A loopback host is left out: Helm's regexp (Go's RE2) has no lookahead to refuse it,
    so the chart policy refuses it when rendering (tests/artefacts/test_chart_policy.py)."""
    schema = json.loads((REPO_ROOT / "helm/betrace/values.schema.json").read_text())
    grafana = schema["properties"]["grafana"]["properties"]
    pattern = grafana["plugin"]["properties"]["backendUrl"]["pattern"]
    samples = [
        "http://betrace-backend.betrace.svc:12011",
        "http://betrace-backend:12011/",
        "https://betrace.example.com",
        "http://10.0.0.7:12011",
        "http://[fd00::7]:12011",
        "http://betrace-backend:12011/v1",
        "http://betrace-backend:12011?x=1",
        "http://betrace-backend:0",
        "http://betrace-backend:012011",
        "http://betrace-backend:65536",
        "http://betrace-backend:65535",
        "betrace-backend:12011",
        "ftp://betrace-backend:12011",
        "http://:12011",
        "http://betrace backend:12011",
        " http://betrace-backend:12011",  # urlsplit drops these; Go's url.Parse refuses them
        "http://betrace-back\nend:12011",
        "\thttp://betrace-backend:12011",
    ]
    assert_agrees(
        pattern, samples, lambda value: backend_env.backend_url_problem(value, tls=True) is None
    )


def test_manifest_with_a_wrong_backend_value_is_reported(release_data: ReleaseData) -> None:
    """What the gate's kubectl and helm models call on a page's manifests."""
    backend = release_data.image_ref("backend")
    doc = {
        "kind": "Deployment",
        "metadata": {"name": "betrace-backend"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "backend",
                            "image": backend,
                            "env": [
                                {"name": OTLP, "value": "http://otel-collector:4317"},
                                {"name": "BETRACE_DEBUG", "value": "false"},
                            ],
                        },
                        {"name": "other", "image": "docker.io/x/y:1", "env": [{"name": "PORT"}]},
                    ]
                }
            }
        },
    }
    problems = backend_env.manifest_problems([doc], release_data)
    assert problems == [
        f"Deployment/betrace-backend container backend: {OTLP} "
        + backend_env.value_problem(OTLP, "http://otel-collector:4317"),
        "Deployment/betrace-backend container backend: BETRACE_DEBUG "
        + backend_env.value_problem("BETRACE_DEBUG", "false"),
    ]


def test_a_backend_container_below_a_job_template_is_found(release_data: ReleaseData) -> None:
    """A CronJob nests its pod one level deeper (jobTemplate.spec.template.spec)."""
    container = {
        "name": "backend",
        "image": release_data.image_ref("backend"),
        "env": [{"name": "BETRACE_DEBUG", "value": "false"}],
    }
    pod = {"template": {"spec": {"containers": [container]}}}
    doc = {"kind": "CronJob", "metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": pod}}}
    (problem,) = backend_env.manifest_problems([doc], release_data)
    assert problem.startswith("CronJob/c container backend: BETRACE_DEBUG"), problem


def test_the_gate_refuses_a_page_manifest_with_a_scheme_in_the_otlp_endpoint(
    release_data: ReleaseData,
) -> None:
    """A page that applies Kubernetes YAML giving the backend http://... fails the gate."""
    from betrace_dist.gate.commands import models
    from betrace_dist.gate.session import CommandError, Session
    from betrace_dist.gate.shellwords import split

    manifest = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: betrace-backend
spec:
  selector:
    matchLabels: {{app: betrace}}
  template:
    metadata:
      labels: {{app: betrace}}
    spec:
      containers:
        - name: backend
          image: {release_data.image_ref("backend")}
          env:
            - name: {OTLP}
              value: http://otel-collector:4317
"""
    session = Session(timeout=30)
    try:
        session.save("backend.yaml", manifest)
        session.run(split("kubectl create namespace betrace"), models())
        with pytest.raises(CommandError) as failure:
            session.run(split("kubectl apply -f backend.yaml --namespace betrace"), models())
    finally:
        session.close()
    message = str(failure.value)
    assert message.startswith("backend.yaml: Deployment/betrace-backend container backend"), message
    assert f"{OTLP} is 'http://otel-collector:4317'" in message and "no scheme" in message


@pytest.mark.parametrize(
    ("env", "refused"),
    [
        ({"BETRACE_PORT_GRPC": "12011"}, True),  # the HTTP server's default
        ({"BETRACE_PORT_BACKEND": "12012"}, True),  # the gRPC server's default
        ({"BETRACE_PORT_BACKEND": "9000", "BETRACE_PORT_GRPC": "9000"}, True),
        ({"BETRACE_PORT_BACKEND": "12012", "BETRACE_PORT_GRPC": "12011"}, False),  # swapped
        ({"BETRACE_PORT_BACKEND": None, "BETRACE_PORT_GRPC": "12011"}, False),  # from a Secret
    ],
)
def test_one_port_for_both_servers_is_refused(
    env: dict[str, str | None], refused: bool, release_data: ReleaseData
) -> None:
    """The backend exits when its two servers are given one port (probe same-port)."""
    found = list(backend_env.env_problems(env, release_data))
    assert bool(found) is refused, found
    if refused:
        assert found[0][0] == "BETRACE_PORT_GRPC" and "cannot bind it" in found[0][1], found


LIMITED = {"name": "backend", "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}}}


def _field(resource: str, divisor: str | None = None, container: str | None = None) -> dict:
    ref: dict[str, str] = {"resource": resource}
    ref |= {"divisor": divisor} if divisor else {}
    ref |= {"containerName": container} if container else {}
    return {"name": "V", "valueFrom": {"resourceFieldRef": ref}}


@pytest.mark.parametrize(
    ("resources", "entry", "value"),
    [
        # half a CPU, rounded up to one; 512 MiB = 512 * 1024 * 1024 bytes
        (LIMITED["resources"], _field("limits.cpu"), "1"),
        (LIMITED["resources"], _field("limits.memory"), "536870912"),
        (LIMITED["resources"], _field("limits.memory", "1Mi"), "512"),
        (LIMITED["resources"], _field("limits.memory", "1G"), "1"),
        (LIMITED["resources"], _field("limits.memory", "0"), "536870912"),
        ({"limits": {"cpu": "1500m"}}, _field("limits.cpu"), "2"),
        ({"limits": {"cpu": 2}}, _field("limits.cpu", "1m"), "2000"),
        ({"requests": {"memory": "64M"}}, _field("requests.memory"), "64000000"),
        # a request not given is the limit (the API server's defaulting), else 0
        (LIMITED["resources"], _field("requests.memory"), "536870912"),
        ({}, _field("requests.cpu"), "0"),
        # no limit, or a zero one: the kubelet gives the node's allocatable, which no manifest
        # tells
        ({"requests": {"cpu": "50m"}}, _field("limits.cpu"), None),
        ({}, _field("limits.memory"), None),
        ({"limits": {"memory": 0}}, _field("limits.memory"), None),
        # divisors compared by value, as the API server compares their canonical forms
        (LIMITED["resources"], _field("limits.cpu", "1000m"), "1"),
        (LIMITED["resources"], _field("limits.memory", "1000"), "536871"),
        # no resource of a container
        (LIMITED["resources"], _field("other.cpu"), None),
        # a divisor the API server refuses for the resource
        (LIMITED["resources"], _field("limits.cpu", "500m"), None),
        (LIMITED["resources"], _field("limits.memory", "2"), None),
        # another container's resources, or another source
        (LIMITED["resources"], _field("limits.cpu", container="grafana"), None),
        (LIMITED["resources"], {"name": "V", "valueFrom": {"secretKeyRef": {"name": "s"}}}, None),
        # a page's manifest may hold anything there: no value, and no crash
        (LIMITED["resources"], {"name": "V", "valueFrom": "limits.cpu"}, None),
        (LIMITED["resources"], {"name": "V", "valueFrom": {"resourceFieldRef": "cpu"}}, None),
        ("512Mi", _field("limits.memory"), None),
    ],
)
def test_a_resource_field_reads_as_the_kubelet_gives_it(
    resources: dict, entry: dict, value: str | None
) -> None:
    container = {"name": "backend", "resources": resources, "env": [entry]}
    assert backend_env.container_env(container) == {"V": value}


def _backend_container(manifests: list) -> dict:
    from betrace_dist.artefacts import chart_policy

    (deployment,) = [m for m in manifests if m.kind == "Deployment" and m.name.endswith("backend")]
    pods = chart_policy.containers(deployment.doc["spec"]["template"]["spec"])
    (container,) = [c for _, c in pods if c.get("name") == "backend"]
    return container


def test_the_chart_gives_the_go_runtime_the_backends_limits(helm: Any) -> None:
    """GOMAXPROCS and GOMEMLIMIT from the container's limits, in the forms Go reads: without
    them the backend runs a thread per CPU of the node under a limit of half a CPU."""
    chart = REPO_ROOT / "helm" / "betrace"
    env = backend_env.container_env(_backend_container(helm.template(chart)))
    got = (env.get("GOMAXPROCS"), env.get("GOMEMLIMIT"))
    assert got == ("1", str(512 * 1024 * 1024)), f"the backend's GOMAXPROCS, GOMEMLIMIT: {got}"
    decimal = ["backend.resources.limits.memory=1G", "backend.resources.limits.cpu=2"]
    env = backend_env.container_env(_backend_container(helm.template(chart, set_values=decimal)))
    assert (env["GOMAXPROCS"], env["GOMEMLIMIT"]) == ("2", "1000000000")
    off = helm.template(chart, set_values=["backend.goRuntimeFromLimits=false"])
    assert not {"GOMAXPROCS", "GOMEMLIMIT"} & set(
        backend_env.container_env(_backend_container(off))
    )


def test_a_memory_limit_of_its_own_is_given_as_it_is(helm: Any) -> None:
    chart = REPO_ROOT / "helm" / "betrace"
    given = helm.template(chart, set_values=["backend.goMemLimit=480MiB"])
    assert backend_env.container_env(_backend_container(given))["GOMEMLIMIT"] == "480MiB"


def test_the_schema_takes_only_memory_limits_go_reads() -> None:
    """values.schema.json holds backend.goMemLimit to a pattern and a range (Helm cannot call
    Python): every value it takes, string or number, the Go rule takes too, the longest numbers
    of each unit included, and a Kubernetes quantity is refused."""
    schema = json.loads((REPO_ROOT / "helm/betrace/values.schema.json").read_text())
    field = schema["properties"]["backend"]["properties"]["goMemLimit"]
    samples = ["", "536870912", "480MiB", "0", "-1", "+1", "512Mi", "1G", "1ki", "1.5GiB",
               "1 GiB", "off", "1KB", "0512MiB"]  # fmt: skip
    for unit in ("", "B", "KiB", "MiB", "GiB", "TiB"):
        for digits in range(1, 21):
            samples += [f"{'9' * digits}{unit}", f"1{'0' * (digits - 1)}{unit}"]
    taken = [s for s in samples if re.search(field["pattern"], s)]
    refused = [s for s in taken if backend_env.value_problem("GOMEMLIMIT", s) is not None]
    assert not refused, f"the schema takes values Go refuses: {refused}"
    assert {"", "536870912", "480MiB"} <= set(taken)
    assert not {"0", "512Mi", "1G", "99999999TiB"} & set(taken)
    for number in (field["minimum"], field["maximum"]):
        assert backend_env.value_problem("GOMEMLIMIT", str(number)) is None


def test_a_memory_limit_in_bytes_from_a_values_file_is_rendered_whole(
    helm: Any, tmp_path: Path
) -> None:
    """A YAML number reaches the template as a float: rendered as it is it would read
    5.36870912e+08, which Go refuses."""
    values = tmp_path / "values.yaml"
    values.write_text("backend:\n  goMemLimit: 536870912\n", encoding="utf-8")
    given = helm.template(REPO_ROOT / "helm" / "betrace", [values])
    assert backend_env.container_env(_backend_container(given))["GOMEMLIMIT"] == "536870912"


@pytest.mark.parametrize(
    "value",
    ["1e5000", "9" * 5000, 16**5000, "1e99999999", "1e-99999999", float("inf"), float("nan")],
    ids=[
        "long-exponent",
        "5000-digits",
        "yaml-hex-int",
        "huge-exponent",
        "tiny-exponent",
        "inf",
        "nan",
    ],
)
def test_a_quantity_no_cluster_would_hold_is_not_read(value: object) -> None:
    """A page's manifest can hold any size; read as it is, one of thousands of digits took the
    gate seconds per operation (beyond its block budget, which cannot interrupt it) or broke
    the conversion to text. apimachinery holds quantities to int64: such a value is unknown."""
    from betrace_dist import quantity

    assert quantity.parse(value) is None
    container = {
        "name": "b",
        "resources": {"limits": {"memory": value}},
        "env": [_field("limits.memory")],
    }
    assert backend_env.container_env(container) == {"V": None}


def test_an_env_of_any_shape_reads_without_a_crash() -> None:
    """container_env reads what a page's manifest holds: a null value is empty, as Kubernetes
    gives it (so BETRACE_DEBUG: null is not taken for a value), and what is no entry is left."""
    read = backend_env.container_env
    assert read(
        {"env": [{"name": "X", "value": None}, "abc", None, 5, {"name": "Y", "value": 3}]}
    ) == {
        "X": "",
        "Y": "3",
    }
    assert read({"env": "abc"}) == read({"env": 5}) == read({"env": {"a": 1}}) == {}
