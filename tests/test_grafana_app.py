"""The BeTrace app's backend URL in a Grafana the page installs: the names a pod resolves, the
Service port and where it leads. The world is built by hand here, as the BeTrace chart renders
its backend (a Service named <release>-backend, its port `http` leading to the container's);
test_guide_mistakes.py shows the same check on a page, with the real chart rendered."""

from __future__ import annotations

import pytest

from betrace_dist.gate.grafana_app import backend_url_problem, provisioning_problem
from betrace_dist.gate.world import K8sObject, World

from .conftest import RELEASE

DATA = RELEASE
HTTP = DATA.current.backend.ports["http"].port
GRPC = DATA.current.backend.ports["grpc"].port
PLUGIN = DATA.current.plugin.id
LABELS = {"app.kubernetes.io/component": "backend", "app.kubernetes.io/name": "betrace"}


def _world() -> World:
    world = World()
    service = {
        "metadata": {"labels": LABELS},
        "spec": {
            "selector": LABELS,
            "ports": [
                {"name": "http", "port": HTTP, "targetPort": "http"},
                {"name": "grpc", "port": GRPC, "targetPort": "grpc"},
            ],
        },
    }
    pod = {
        "metadata": {"labels": LABELS},
        "spec": {
            "containers": [
                {
                    "name": "backend",
                    "image": f"{DATA.project.registry}/backend:{DATA.current.version}",
                    "ports": [
                        {"name": "http", "containerPort": HTTP},
                        {"name": "grpc", "containerPort": GRPC},
                    ],
                }
            ]
        },
    }
    deployment = {"metadata": {"labels": LABELS}, "spec": {"template": pod}}
    world.objects += [
        K8sObject("Service", "betrace-backend", "betrace", service, "test"),
        K8sObject("Deployment", "betrace-backend", "betrace", deployment, "test"),
    ]
    return world


@pytest.mark.parametrize(
    ("url", "namespace"),
    [
        (f"http://betrace-backend.betrace.svc:{HTTP}", "monitoring"),
        (f"http://betrace-backend.betrace.svc.cluster.local:{HTTP}", "monitoring"),
        (f"http://betrace-backend.betrace:{HTTP}/", "monitoring"),
        (f"http://betrace-backend:{HTTP}", "betrace"),  # the short name, from the same namespace
    ],
)
def test_a_url_that_reaches_the_backend_passes(url: str, namespace: str) -> None:
    assert backend_url_problem(_world(), namespace, url, DATA) is None


@pytest.mark.parametrize(
    ("url", "namespace", "said"),
    [
        (f"http://betrace-backend:{HTTP}", "monitoring", "no Service 'betrace-backend' in"),
        (f"http://betrace-backnd.betrace:{HTTP}", "monitoring", "did you mean 'betrace-backend'"),
        (f"http://betrace-backend.betrace:{GRPC}", "monitoring", f"leads to port {GRPC}"),
        ("http://betrace-backend.betrace", "monitoring", "has no port 80"),
        (f"betrace-backend.betrace:{HTTP}", "monitoring", "not an http(s) URL"),
        (f"http://backend.example.com:{HTTP}", "monitoring", "not a Service name"),
        (f"http://localhost:{HTTP}", "monitoring", "where localhost is Grafana itself"),
        (f"http://127.1:{HTTP}", "monitoring", "where 127.1 is Grafana itself"),
        ("http://backend:0", "monitoring", "a port from 1 to 65535"),
        ("http://[backend:12011", "monitoring", "is not an http(s) URL with a host"),
        (f"https://betrace-backend.betrace.svc:{HTTP}", "monitoring", "serves plain HTTP"),
        (f"http://betrace-backend.betrace.svc:{HTTP}/api", "monitoring", "ends at the host"),
    ],
)
def test_a_url_that_misses_the_backend_is_refused(url: str, namespace: str, said: str) -> None:
    problem = backend_url_problem(_world(), namespace, url, DATA)
    assert problem is not None and said in problem, problem


def _container(world: World) -> dict[str, object]:
    deployment = world.find("betrace", "Deployment", "betrace-backend")
    assert deployment is not None
    container: dict[str, object] = deployment.doc["spec"]["template"]["spec"]["containers"][0]
    return container


def test_a_service_labelled_backend_whose_pods_run_another_image_is_refused() -> None:
    """The backend was recognised by its Service's component label."""
    world = _world()
    _container(world)["image"] = "nginx:1.27"
    url = f"http://betrace-backend.betrace:{HTTP}"
    problem = backend_url_problem(world, "monitoring", url, DATA)
    said = "(image nginx:1.27) the gate does not know for the backend"
    assert problem is not None and said in problem, problem


def test_a_backend_whose_variable_moves_its_http_port_is_reached_there() -> None:
    """The HTTP port was the release's default whatever the container's own variable said."""
    world = _world()
    variable = DATA.current.backend.ports["http"].env
    container = _container(world)
    container["env"] = [{"name": variable, "value": "9000"}]
    container["ports"] = [
        {"name": "http", "containerPort": 9000},
        {"name": "grpc", "containerPort": GRPC},
    ]
    assert (
        backend_url_problem(world, "monitoring", f"http://betrace-backend.betrace:{HTTP}", DATA)
        is None
    )
    moved = backend_url_problem(world, "monitoring", f"http://betrace-backend.betrace:{GRPC}", DATA)
    assert moved is not None and "not to the backend's HTTP port 9000" in moved, moved


def _provisioned(url: str, api_version: int = 1, key: str = "betrace-app.yaml") -> World:
    world = _world()
    text = f"apiVersion: {api_version}\napps:\n  - type: {PLUGIN}\n    jsonData:\n"
    text += f"      backendUrl: {url}\n"
    cm = {"data": {key: text}}
    world.objects.append(K8sObject("ConfigMap", "betrace-app", "monitoring", cm, "test"))
    return world


def _values(sub_path: str = "betrace-app.yaml", folder: str = "plugins") -> dict[str, object]:
    mount = {
        "name": "betrace-app",
        "configMap": "betrace-app",
        "mountPath": f"/etc/grafana/provisioning/{folder}/betrace-app.yaml",
        "subPath": sub_path,
    }
    return {"extraConfigmapMounts": [mount]}


def test_the_provisioned_url_is_checked_through_the_mount() -> None:
    good = _provisioned(f"http://betrace-backend.betrace.svc:{HTTP}")
    assert provisioning_problem(good, "monitoring", _values(), DATA) is None
    bad = _provisioned(f"http://betrace-backend.betrace.svc:{GRPC}")
    problem = provisioning_problem(bad, "monitoring", _values(), DATA)
    assert problem is not None and "jsonData.backendUrl" in problem, problem


@pytest.mark.parametrize("folder", ["datasources", "dashboards"])
def test_an_app_file_mounted_outside_the_plugins_folder_is_refused(folder: str) -> None:
    """Grafana reads app provisioning from <provisioning>/plugins only: the file mounted in
    datasources/ provisions nothing, and the check of its backendUrl was silently skipped."""
    good = _provisioned(f"http://betrace-backend.betrace.svc:{HTTP}")
    problem = provisioning_problem(good, "monitoring", _values(folder=folder), DATA)
    assert problem is not None, folder
    assert f"mounted at /etc/grafana/provisioning/{folder}/betrace-app.yaml" in problem, problem
    assert "only from /etc/grafana/provisioning/plugins/" in problem, problem


def test_an_app_provisioned_disabled_is_refused() -> None:
    world = _world()
    text = f"apiVersion: 1\napps:\n  - type: {PLUGIN}\n    disabled: true\n    jsonData:\n"
    text += f"      backendUrl: http://betrace-backend.betrace.svc:{HTTP}\n"
    cm = {"data": {"betrace-app.yaml": text}}
    world.objects.append(K8sObject("ConfigMap", "betrace-app", "monitoring", cm, "test"))
    problem = provisioning_problem(world, "monitoring", _values(), DATA)
    assert problem is not None and "provisioned with disabled: true" in problem, problem
    cm["data"]["betrace-app.yaml"] = text.replace("disabled: true", "disabled: false")
    assert provisioning_problem(world, "monitoring", _values(), DATA) is None


def test_a_missing_key_and_a_wrong_api_version_are_refused() -> None:
    world = _provisioned(f"http://betrace-backend.betrace.svc:{HTTP}")
    problem = provisioning_problem(world, "monitoring", _values(sub_path="betrace.yaml"), DATA)
    assert problem is not None and "has no key 'betrace.yaml'" in problem, problem
    world = _provisioned(f"http://betrace-backend.betrace.svc:{HTTP}", api_version=2)
    problem = provisioning_problem(world, "monitoring", _values(), DATA)
    assert problem is not None and "apiVersion is 2" in problem, problem


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("apiVersion: 1\napps: 5\n", "apps must be a list"),
        (f"apiVersion: 1\napps:\n  - type: {PLUGIN}\n    jsonData: [1, 2]\n", "must be a map"),
    ],
)
def test_a_provisioning_file_of_the_wrong_shape_is_named(text: str, said: str) -> None:
    world = _world()
    cm = {"data": {"betrace-app.yaml": text}}
    world.objects.append(K8sObject("ConfigMap", "betrace-app", "monitoring", cm, "test"))
    problem = provisioning_problem(world, "monitoring", _values(), DATA)
    assert problem is not None and said in problem, problem


def test_items_of_a_folder_mount_without_key_and_path_are_named() -> None:
    world = _provisioned(f"http://betrace-backend.betrace.svc:{HTTP}")
    mount = {
        "name": "m",
        "configMap": "betrace-app",
        "mountPath": "/etc/grafana/provisioning/plugins",
    }
    values = {"extraConfigmapMounts": [{**mount, "items": ["betrace-app.yaml"]}]}
    problem = provisioning_problem(world, "monitoring", values, DATA)
    assert problem is not None and "needs a key and a path" in problem, problem
