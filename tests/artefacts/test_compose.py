"""The Compose stack in docker/: the real Compose binary accepts it, and it keeps every policy.

Compose runs only as `config` with a clean environment whose DOCKER_HOST is a socket that does
not exist, so no test can reach a Docker daemon. Each policy has a test that breaks a temporary
copy of the stack on purpose and checks the message says where and what.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from betrace_dist.artefacts import compose as c
from betrace_dist.artefacts import container_logs
from betrace_dist.release import ReleaseData
from betrace_dist.site import compose_defaults

from ..conftest import CURRENT

#: The current release (read: a release leaves these tests as they are).


#: Every interface: the address a user sets to open the stack to the network.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - a test value, not a listening socket
SECRETS = {"BETRACE_SIGNATURE_KEY": "test-signature-key", "GRAFANA_ADMIN_PASSWORD": "test-pass"}


@pytest.fixture(scope="module")
def compose_bin(tool: Callable[[str, str], str]) -> str:
    return tool("docker-compose")


def write_env(folder: Path, **values: str | None) -> Path:
    """.env.example with the secrets filled in, then `values` (None removes the variable)."""
    wanted: dict[str, str | None] = {**SECRETS, **values}
    lines = []
    for line in c.ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        name = line.partition("=")[0]
        if "=" in line and not line.startswith("#") and name in wanted:
            if wanted[name] is None:
                continue
            line = f"{name}={wanted[name]}"
        lines.append(line)
    path = folder / "test.env"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stack(compose_bin: str, tmp_path_factory: pytest.TempPathFactory) -> c.Stack:
    env = write_env(tmp_path_factory.mktemp("env"))
    return c.Stack(c.load_project(c.COMPOSE_FILE, env, compose_bin), c.COMPOSE_FILE)


class StackCopy:
    """A temporary copy of docker-compose.yml and config/, to break on purpose."""

    def __init__(self, root: Path, compose_bin: str) -> None:
        self.root = root
        self.compose_bin = compose_bin
        shutil.copy2(c.COMPOSE_FILE, root / c.COMPOSE_FILE.name)
        shutil.copytree(c.COMPOSE_DIR / "config", root / "config")
        shutil.copy2(c.ENV_EXAMPLE, root / c.ENV_EXAMPLE.name)
        shutil.copy2(c.COMPOSE_DIR / "Dockerfile", root / "Dockerfile")
        shutil.copy2(c.COMPOSE_DIR / "rules.json", root / "rules.json")

    @property
    def compose_file(self) -> Path:
        return self.root / c.COMPOSE_FILE.name

    def edit(self, relative: str, pattern: str, replacement: str) -> None:
        """Replace exactly one match of a regex, so a stale edit cannot pass unnoticed."""
        path = self.root / relative
        text, count = re.subn(pattern, replacement, path.read_text(encoding="utf-8"))
        assert count == 1, f"{relative}: /{pattern}/ matched {count} times, expected once"
        path.write_text(text, encoding="utf-8")

    def load(self) -> c.Stack:
        env = write_env(self.root)
        return c.Stack(c.load_project(self.compose_file, env, self.compose_bin), self.compose_file)


@pytest.fixture
def copy(tmp_path: Path, compose_bin: str) -> StackCopy:
    return StackCopy(tmp_path, compose_bin)


# --- the real Compose binary on the .env scenarios -----------------------------------------------


def test_stack_validates_with_the_env_example_and_secrets(compose_bin: str, tmp_path: Path) -> None:
    done = c.run_compose_config(c.COMPOSE_FILE, write_env(tmp_path), "-q", binary=compose_bin)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", f"Compose warned about the stack: {done.stderr}"


def test_custom_ports_and_bind_address_follow_the_env(
    compose_bin: str, tmp_path: Path, release_data: ReleaseData
) -> None:
    env = write_env(
        tmp_path,
        BETRACE_BIND_ADDRESS=ALL_INTERFACES,
        GRAFANA_HOST_PORT="3300",
        BETRACE_HTTP_HOST_PORT="13011",
        BETRACE_GRPC_HOST_PORT="13012",
        OTLP_GRPC_HOST_PORT="14317",
        OTLP_HTTP_HOST_PORT="14318",
    )
    stack = c.Stack(c.load_project(c.COMPOSE_FILE, env, compose_bin), c.COMPOSE_FILE)
    published = {
        (name, p["target"]): (p["host_ip"], p["published"])
        for name, service in stack.services.items()
        for p in service.get("ports", [])
    }
    assert published == {
        ("backend", 12011): (ALL_INTERFACES, "13011"),
        ("backend", 12012): (ALL_INTERFACES, "13012"),
        ("grafana", 3000): (ALL_INTERFACES, "3300"),
        ("otel-collector", 4317): (ALL_INTERFACES, "14317"),
        ("otel-collector", 4318): (ALL_INTERFACES, "14318"),
    }
    # Grafana's server reaches the backend inside the compose network: no published port in it.
    assert stack.env("grafana")["BETRACE_BACKEND_URL"] == "http://backend:12011"
    assert c.check_grafana(stack, release_data) == []
    assert c.check_published_ports(stack, release_data, bind_address=ALL_INTERFACES) == []
    assert "published on 0.0.0.0, expected 127.0.0.1" in "\n".join(
        c.check_published_ports(stack, release_data)
    )


def test_grafana_alone_follows_its_own_bind_address(
    compose_bin: str, tmp_path: Path, release_data: ReleaseData
) -> None:
    """GRAFANA_BIND_ADDRESS moves Grafana's port only: the backend, which asks for no password,
    and the collector stay where BETRACE_BIND_ADDRESS (here its default) puts them."""
    env = write_env(tmp_path, GRAFANA_BIND_ADDRESS=ALL_INTERFACES)
    stack = c.Stack(c.load_project(c.COMPOSE_FILE, env, compose_bin), c.COMPOSE_FILE)
    hosts = {
        name: {p["host_ip"] for p in service.get("ports", [])}
        for name, service in stack.services.items()
        if service.get("ports")
    }
    assert hosts == {
        "backend": {"127.0.0.1"},
        "grafana": {ALL_INTERFACES},
        "otel-collector": {"127.0.0.1"},
    }
    assert c.check_published_ports(stack, release_data, grafana_bind_address=ALL_INTERFACES) == []
    assert (
        "services.grafana.ports: container port 3000 is published on 0.0.0.0, expected "
        '127.0.0.1; write it as "${GRAFANA_BIND_ADDRESS:-'
        in "\n".join(c.check_published_ports(stack, release_data))
    )


@pytest.mark.parametrize(
    ("values", "named"),
    [
        pytest.param({"GRAFANA_ADMIN_PASSWORD": ""}, "GRAFANA_ADMIN_PASSWORD", id="empty-password"),
        pytest.param({"GRAFANA_ADMIN_PASSWORD": None}, "GRAFANA_ADMIN_PASSWORD", id="no-password"),
        pytest.param({"BETRACE_SIGNATURE_KEY": ""}, "BETRACE_SIGNATURE_KEY", id="empty-key"),
        pytest.param({"BETRACE_SIGNATURE_KEY": None}, "BETRACE_SIGNATURE_KEY", id="no-key"),
    ],
)
def test_missing_secret_stops_compose_with_a_helpful_message(
    compose_bin: str, tmp_path: Path, values: dict[str, str | None], named: str
) -> None:
    done = c.run_compose_config(
        c.COMPOSE_FILE, write_env(tmp_path, **values), "-q", binary=compose_bin
    )
    assert done.returncode != 0
    assert f"set {named} in docker/.env" in done.stderr
    assert ".env.example" in done.stderr
    with pytest.raises(c.ComposeError, match=f"required variable {named} is missing a value"):
        c.load_project(c.COMPOSE_FILE, write_env(tmp_path, **values), compose_bin)


def test_env_example_as_shipped_does_not_start(compose_bin: str) -> None:
    done = c.run_compose_config(c.COMPOSE_FILE, c.ENV_EXAMPLE, "-q", binary=compose_bin)
    assert done.returncode != 0
    assert re.search(
        r"set (BETRACE_SIGNATURE_KEY|GRAFANA_ADMIN_PASSWORD) in docker/.env", done.stderr
    )


def test_loader_reads_neither_a_stray_dot_env_nor_the_callers_environment(
    copy: StackCopy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Secrets sit in the copy's .env and in this process's environment; the explicit env file
    # lacks them, so Compose must still refuse: nothing but that file reaches it.
    (copy.root / ".env").write_text(
        "".join(f"{k}={v}\n" for k, v in SECRETS.items()), encoding="utf-8"
    )
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    empty = copy.root / "empty.env"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(c.ComposeError, match=r"required variable \w+ is missing a value"):
        c.load_project(copy.compose_file, empty, copy.compose_bin)


def test_clean_env_cannot_reach_a_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    monkeypatch.setenv("COMPOSE_PROFILES", "everything")
    env = c.clean_env(tmp_path)
    assert set(env) == {"PATH", "HOME", "DOCKER_CONFIG", "DOCKER_HOST"}
    socket = env["DOCKER_HOST"].removeprefix("unix://")
    assert env["DOCKER_HOST"].startswith("unix://")
    assert Path(socket).parent == tmp_path
    assert not Path(socket).exists()
    assert os.environ["DOCKER_HOST"] not in env.values()


@pytest.mark.parametrize("args", [("up", "-d"), ("down",), ("--format", "json", "pull")])
def test_runner_refuses_anything_but_config(args: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="only read-only `config` options"):
        c.run_compose_config(c.COMPOSE_FILE, c.ENV_EXAMPLE, *args, binary="/bin/false")


# --- policies on the real stack ------------------------------------------------------------------


def test_real_stack_keeps_every_policy(stack: c.Stack, release_data: ReleaseData) -> None:
    assert c.check_stack(stack, release_data) == []


def test_env_example_documents_exactly_the_interpolated_variables() -> None:
    documented = set(c.read_env_file(c.ENV_EXAMPLE))
    used = c.interpolated_variables(c.COMPOSE_FILE, c.ENV_EXAMPLE)
    assert set(used) == documented
    assert {name for name, required in used.items() if required} == set(SECRETS)
    assert c.check_env_example(c.COMPOSE_FILE, c.ENV_EXAMPLE) == []


def test_env_example_has_no_working_secret() -> None:
    entries = c.read_env_file(c.ENV_EXAMPLE)
    assert {name: entries[name].value for name in SECRETS} == dict.fromkeys(SECRETS, "")


def test_images_are_the_ones_releases_yaml_pins(stack: c.Stack, release_data: ReleaseData) -> None:
    obs = release_data.current.observability
    assert {name: s["image"] for name, s in stack.services.items()} == {
        "backend": release_data.image_ref("backend"),
        "grafana": release_data.image_ref("grafana-plugin"),
        "otel-collector": obs.otel_collector.ref,
        "tempo": obs.tempo.ref,
        "prometheus": obs.prometheus.ref,
        "loki": obs.loki.ref,
        "pyroscope": obs.pyroscope.ref,
        "backend-rules": obs.busybox.ref,
    }
    assert "latest" not in c.COMPOSE_FILE.read_text(encoding="utf-8")


def test_the_pages_network_name_is_the_one_compose_gives(
    stack: c.Stack, compose_bin: str, tmp_path: Path
) -> None:
    """The Compose guide names the stack's network for containers of the reader's own; the
    macro reads docker-compose.yml, real Compose says what the network is called. A stack whose
    `name:` changes (or that names its network itself) moves both."""
    assert compose_defaults.default_network() == stack.project["networks"]["default"]["name"]
    # and the backend is on that network, where the page sends the reader's containers
    assert "default" in stack.services["backend"]["networks"]
    renamed = tmp_path / "docker-compose.yml"
    text = c.COMPOSE_FILE.read_text(encoding="utf-8")
    renamed.write_text(text.replace("\nname: betrace\n", "\nname: tracing\n", 1))
    shutil.copytree(c.COMPOSE_DIR / "config", tmp_path / "config")
    env = write_env(tmp_path)
    project = c.load_project(renamed, env, compose_bin)
    assert project["networks"]["default"]["name"] == "tracing_default"
    # the page: `-p NAME` gives NAME_default
    argv = [compose_bin, "-f", str(c.COMPOSE_FILE), "--env-file", str(env), "-p", "other"]
    done = subprocess.run(
        [*argv, "config", "--format", "json"],
        env=c.clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout)["networks"]["default"]["name"] == "other_default"


def test_a_compose_yaml_beside_the_stacks_file_takes_its_place(
    compose_bin: str, tmp_path: Path
) -> None:
    """The Compose guide tells readers to keep their application's compose.yaml out of docker/:
    real Compose, given both in one folder, uses compose.yaml."""
    (tmp_path / "docker-compose.yml").write_text("services:\n  a:\n    image: x:1\n")
    (tmp_path / "compose.yaml").write_text("services:\n  b:\n    image: y:1\n")
    done = subprocess.run(
        [compose_bin, "config", "--services"],
        env=c.clean_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == ["b"]


def test_published_ports_listen_on_localhost_by_default(stack: c.Stack) -> None:
    ports = [p for s in stack.services.values() for p in s.get("ports", [])]
    assert ports
    assert {p["host_ip"] for p in ports} == {"127.0.0.1"}


def test_backend_env_is_what_the_backend_reads(stack: c.Stack, release_data: ReleaseData) -> None:
    backend = release_data.current.backend
    env = stack.env("backend")
    assert set(env) <= {v.name for v in backend.env}
    assert not set(env) & set(backend.not_read)
    assert env["BETRACE_PORT_BACKEND"] == str(backend.ports["http"].port)
    assert env["BETRACE_PORT_GRPC"] == str(backend.ports["grpc"].port)
    assert env["BETRACE_SIGNATURE_KEY"] == SECRETS["BETRACE_SIGNATURE_KEY"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "otel-collector:4317"
    assert c.check_otlp_endpoint(stack) == []


def test_grafana_enables_the_app_with_the_server_side_backend_url(
    stack: c.Stack, release_data: ReleaseData
) -> None:
    env = stack.env("grafana")
    assert env["GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS"] == release_data.current.plugin.id
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == SECRETS["GRAFANA_ADMIN_PASSWORD"]
    assert env["BETRACE_BACKEND_URL"] == "http://backend:12011"
    assert c.check_grafana(stack, release_data) == []
    assert c.check_datasources(stack) == []


def test_betrace_services_build_from_the_pinned_commit(
    stack: c.Stack, release_data: ReleaseData
) -> None:
    for service, stage in c.BUILT_SERVICES.items():
        build = stack.service(service)["build"]
        assert build["target"] == stage
        assert build["args"]["BETRACE_COMMIT"] == release_data.current.upstream.commit
        assert build["args"]["BETRACE_VERSION"] == release_data.current.version
        assert Path(build["context"]) == c.COMPOSE_DIR
    assert c.check_builds(stack, release_data) == []


def test_backend_gets_more_time_to_stop_than_it_was_seen_to_need(stack: c.Stack) -> None:
    seconds = c.duration_seconds(stack.service("backend")["stop_grace_period"])
    assert seconds is not None
    assert seconds >= c.MIN_BACKEND_STOP_GRACE_SECONDS > 20
    assert c.check_stop_grace(stack) == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("1m30s", 90.0), ("1h", 3600.0), ("500ms", 0.5), ("30", None), ("", None)],
)
def test_compose_durations_are_read_like_compose(text: str, seconds: float | None) -> None:
    assert c.duration_seconds(text) == seconds


def test_every_service_image_has_a_contents_row_and_the_backend_has_no_shell() -> None:
    assert set(c.SERVICE_IMAGES.values()) <= set(c.IMAGE_CONTENTS)
    backend = c.IMAGE_CONTENTS["backend"]
    assert backend.binaries == frozenset()
    assert "no shell" in backend.source


def test_healthchecks_only_where_the_image_has_the_program(stack: c.Stack) -> None:
    with_check = {name for name, s in stack.services.items() if s.get("healthcheck")}
    assert with_check == {"tempo", "prometheus", "loki"}
    assert c.check_healthchecks(stack) == []


# --- each rule, broken on purpose ----------------------------------------------------------------

COMPOSE = "docker-compose.yml"
PLUGINS = "config/grafana/provisioning/plugins/betrace.yaml"
DATASOURCES = "config/grafana/provisioning/datasources/datasources.yaml"
COLLECTOR = "config/otel-collector.yaml"
PROMETHEUS = "config/prometheus.yml"

BREAKS = [
    pytest.param(
        COMPOSE,
        r"condition: service_completed_successfully",
        "condition: service_started",
        "services.backend-rules runs once, but no long-running service depends on it with "
        "condition: service_completed_successfully: docker compose up --wait would take its "
        "exit for a failure",
        id="one-shot-not-awaited",
    ),
    pytest.param(
        COMPOSE,
        r"\$\{BETRACE_HTTP_HOST_PORT:-12011\}:12011",
        "8080:8080",
        "services.backend.ports: container port 8080 is published, but betrace-backend "
        "listens on 12011 (http), 12012 (grpc)",
        id="backend-port-8080",
    ),
    pytest.param(
        COMPOSE,
        r'BETRACE_PORT_BACKEND: "12011"',
        'BETRACE_PORT_BACKEND: "8080"',
        "services.backend.environment.BETRACE_PORT_BACKEND is 8080",
        id="backend-listens-on-8080",
    ),
    pytest.param(
        COMPOSE,
        r"grafana/tempo:2\.5\.0",
        "grafana/tempo:latest",
        "services.tempo.image 'docker.io/grafana/tempo:latest' has the tag latest",
        id="latest-tag",
    ),
    pytest.param(
        COMPOSE,
        r"grafana/loki:3\.0\.0",
        "grafana/loki",
        "services.loki.image 'docker.io/grafana/loki' has no tag",
        id="untagged-image",
    ),
    pytest.param(
        COMPOSE,
        r"prom/prometheus:v2\.53\.0",
        "prom/prometheus:v2.52.0",
        "services.prometheus.image is 'docker.io/prom/prometheus:v2.52.0' but releases.yaml "
        "pins 'docker.io/prom/prometheus:v2.53.0'",
        id="observability-version-drift",
    ),
    pytest.param(
        COMPOSE,
        rf"betrace/backend:{re.escape(CURRENT.version)}",
        f"betrace-hq/backend:{CURRENT.version}",
        f"services.backend.image is 'ghcr.io/betrace-hq/betrace-hq/backend:{CURRENT.version}",
        id="backend-image-spelling",
    ),
    pytest.param(
        COMPOSE,
        r"OTEL_EXPORTER_OTLP_ENDPOINT: otel-collector:4317",
        "OTEL_EXPORTER_OTLP_ENDPOINT: http://otel-collector:4317",
        "OTEL_EXPORTER_OTLP_ENDPOINT is 'http://otel-collector:4317': the backend wants "
        "host:port with no scheme, e.g. 'otel-collector:4317'",
        id="otlp-with-scheme",
    ),
    pytest.param(
        COMPOSE,
        r"OTEL_EXPORTER_OTLP_ENDPOINT: otel-collector:4317",
        "OTEL_EXPORTER_OTLP_ENDPOINT: tempo:4317",
        "points at 'tempo'; the backend exports metrics as well as traces",
        id="otlp-straight-to-tempo",
    ),
    pytest.param(
        COMPOSE,
        r"OTEL_EXPORTER_OTLP_ENDPOINT: otel-collector:4317",
        "OTEL_EXPORTER_OTLP_ENDPOINT: otel-collector:4318",
        "4318 is the port of OTLP over HTTP, and the backend exports OTLP over gRPC",
        id="otlp-http-port",
    ),
    pytest.param(
        COMPOSE,
        r"OTEL_EXPORTER_OTLP_ENDPOINT: otel-collector:4317",
        "OTEL_EXPORTER_OTLP_ENDPOINT: otel-collector:4319",
        "uses port 4319, but the collector's otlp receiver listens for gRPC on 4317",
        id="otlp-port-no-receiver",
    ),
    pytest.param(
        COMPOSE,
        r'"\$\{GRAFANA_BIND_ADDRESS:-\$\{BETRACE_BIND_ADDRESS:-127\.0\.0\.1\}\}:'
        r'\$\{GRAFANA_HOST_PORT:-3000\}:3000"',
        '"3000:3000"',
        "services.grafana.ports: container port 3000 is published on 0.0.0.0, expected 127.0.0.1",
        id="port-on-all-interfaces",
    ),
    pytest.param(
        COMPOSE,
        r"\$\{GRAFANA_BIND_ADDRESS:-\$\{BETRACE_BIND_ADDRESS:-127\.0\.0\.1\}\}:"
        r"\$\{GRAFANA_HOST_PORT:-3000\}",
        "0.0.0.0:3000",
        "services.grafana.ports: container port 3000 is published on 0.0.0.0, expected 127.0.0.1",
        id="port-on-0.0.0.0",
    ),
    pytest.param(
        COMPOSE,
        r'(BETRACE_PORT_GRPC: "12012"\n)',
        r'\1      PORT: "12011"\n',
        "services.backend.environment.PORT is not read by the backend",
        id="env-port-not-read",
    ),
    pytest.param(
        COMPOSE,
        r'(BETRACE_PORT_GRPC: "12012"\n)',
        r"\1      LOG_FORMAT: json\n",
        "services.backend.environment.LOG_FORMAT is not a variable the backend reads",
        id="env-unknown",
    ),
    pytest.param(
        COMPOSE,
        r"\./config/tempo\.yaml:",
        "./config/tempo-missing.yaml:",
        "config/tempo-missing.yaml does not exist (Docker would create an empty directory at "
        "/etc/tempo/tempo.yaml instead)",
        id="missing-mounted-file",
    ),
    pytest.param(
        COMPOSE,
        r"(      - betrace-data:/var/lib/betrace\n)",
        r"\1    healthcheck:\n"
        r'      test: ["CMD", "curl", "-f", "http://localhost:12011/v1/health"]\n',
        "services.backend.healthcheck calls 'curl' (it is the command), which the backend image "
        "does not have (docker/Dockerfile builds it FROM scratch with the binary alone",
        id="backend-healthcheck-curl",
    ),
    pytest.param(
        COMPOSE,
        r"(      - \./config/otel-collector\.yaml:/etc/otelcol-contrib/config\.yaml:ro\n)",
        r"\1    healthcheck:\n      test: wget -q -O- http://localhost:13133/\n",
        "services.otel-collector.healthcheck calls 'sh' (CMD-SHELL runs /bin/sh), which the "
        "otel-collector image does not have",
        id="shell-healthcheck-in-an-image-without-a-shell",
    ),
    pytest.param(
        COMPOSE,
        r"GF_SECURITY_ADMIN_PASSWORD: .*",
        "GF_SECURITY_ADMIN_PASSWORD: admin",
        "services.grafana.environment.GF_SECURITY_ADMIN_PASSWORD is written in the compose file",
        id="literal-password",
    ),
    pytest.param(
        COMPOSE,
        r"BETRACE_SIGNATURE_KEY: .*",
        "BETRACE_SIGNATURE_KEY: ${BETRACE_SIGNATURE_KEY:-dev-key}",
        "services.backend.environment.BETRACE_SIGNATURE_KEY is written in the compose file; "
        "take it from .env as ${VAR:?message}",
        id="signature-key-default",
    ),
    pytest.param(
        COMPOSE,
        r'GF_AUTH_ANONYMOUS_ENABLED: "false"',
        'GF_AUTH_ANONYMOUS_ENABLED: "true"',
        "GF_AUTH_ANONYMOUS_ENABLED is 'true'; it must be 'false'",
        id="anonymous-grafana",
    ),
    pytest.param(
        COMPOSE,
        r"GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS: betrace-app",
        "GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS: betrace-app,some-other-app",
        "is 'betrace-app,some-other-app'; it must be 'betrace-app' (releases.yaml plugin.id)",
        id="unsigned-allow-list",
    ),
    pytest.param(
        COMPOSE,
        r"(datasources:/etc/grafana/provisioning/datasources:ro\n)",
        r"\1      - /var/lib/grafana\n",
        "services.grafana.volumes: a volume mount at /var/lib/grafana hides the plugin the "
        "image ships in /var/lib/grafana/plugins",
        id="grafana-volume-hides-plugin",
    ),
    pytest.param(
        COMPOSE,
        r"      BETRACE_BACKEND_URL: ",
        "      BETRACE_URL: ",
        "jsonData.backendUrl '${BETRACE_BACKEND_URL}' (= ''): '' is not an http(s) URL",
        id="backend-url-env-missing",
    ),
    pytest.param(
        COMPOSE,
        r"BETRACE_BACKEND_URL: http://backend:12011",
        "BETRACE_BACKEND_URL: https://backend:12011",
        "the backend serves plain HTTP (it has no TLS setting); use http://",
        id="backend-url-https",
    ),
    pytest.param(
        COMPOSE,
        r"BETRACE_BACKEND_URL: http://backend:12011",
        "BETRACE_BACKEND_URL: http://backend:12011/v1",
        "the app's route appends the backend's own paths (/v1/...) to backendUrl",
        id="backend-url-with-path",
    ),
    pytest.param(
        COMPOSE,
        r"(      - betrace-data:)/var/lib/betrace",
        r"\1/data",
        "services.backend: BETRACE_DATA_DIR '/var/lib/betrace' is not on a named volume",
        id="data-dir-not-on-volume",
    ),
    pytest.param(
        COMPOSE,
        r"(pyroscope:1\.6\.0\n    restart:) unless-stopped",
        r"\1 always",
        "services.pyroscope.restart is 'always', expected 'unless-stopped'",
        id="restart-policy",
    ),
    pytest.param(
        COMPOSE,
        r"(BETRACE_COMMIT: )[0-9a-f]{40}",
        r"\1main",
        "services.backend.build.args.BETRACE_COMMIT is 'main'; releases.yaml pins "
        f"'{CURRENT.upstream.commit}'",
        id="build-from-a-branch",
    ),
    pytest.param(
        COMPOSE,
        r"(target: grafana-plugin\n      args:) \*betrace-build-args",
        rf"\1\n        BETRACE_COMMIT: {CURRENT.upstream.commit}\n"
        r"        BETRACE_VERSION: 1.9.0",
        f"services.grafana.build.args.BETRACE_VERSION is '1.9.0'; releases.yaml pins "
        f"'{CURRENT.version}'",
        id="build-version-drift",
    ),
    pytest.param(
        COMPOSE,
        r"target: grafana-plugin",
        "target: backend",
        "services.grafana.build.target is 'backend', expected 'grafana-plugin'",
        id="build-wrong-target",
    ),
    pytest.param(
        COMPOSE,
        rf"(?s)(backend:{re.escape(CURRENT.version)}(?:@sha256:[0-9a-f]{{64}})?\n)    build:.*?"
        r"patches: \.\./patches\n",
        r"\1",
        "services.backend.build is missing: the backend image is not published",
        id="build-missing",
    ),
    pytest.param(
        COMPOSE,
        r"(target: backend\n)",
        r"\1      dockerfile: backend.Dockerfile\n",
        "backend.Dockerfile does not exist",
        id="build-missing-dockerfile",
    ),
    pytest.param(
        COMPOSE,
        r"stop_grace_period: 30s",
        "stop_grace_period: 10s",
        "services.backend.stop_grace_period is 10s; the backend took 10 s or more to stop",
        id="stop-grace-too-short",
    ),
    pytest.param(
        COMPOSE,
        r'OTEL_EXPORTER_OTLP_TIMEOUT: "1000"',
        'OTEL_EXPORTER_OTLP_TIMEOUT: "20000"',
        "services.backend.environment.OTEL_EXPORTER_OTLP_TIMEOUT is '20000', but releases.yaml's "
        "distribution_default is '1000'",
        id="otlp-timeout-not-the-release-datas",
    ),
    pytest.param(
        COMPOSE,
        r"    stop_grace_period: 30s\n",
        "",
        "services.backend.stop_grace_period is unset (10s)",
        id="stop-grace-unset",
    ),
    pytest.param(
        COMPOSE,
        r"      - grafana-data:/var/lib/grafana/data\n",
        "",
        "services.grafana: GF_PATHS_DATA '/var/lib/grafana/data' is not on a named volume",
        id="grafana-data-not-persisted",
    ),
    pytest.param(
        COMPOSE,
        r"- grafana-data:/var/lib/grafana/data",
        "- grafana-data:/var/lib/grafana",
        "a volume mount at /var/lib/grafana hides the plugin",
        id="grafana-data-volume-over-plugins",
    ),
    pytest.param(
        COMPOSE,
        r"(?m)^name: betrace",
        'version: "3.8"\nname: betrace',
        "top-level `version:` is obsolete",
        id="version-key",
    ),
    pytest.param(
        PLUGINS,
        r"backendUrl: \$\{BETRACE_BACKEND_URL\}",
        "backendUrl: http://localhost:12011",
        "Grafana's server calls it from Grafana's pod or container, where localhost is Grafana "
        "itself; name the backend's Service",
        id="backend-url-localhost",
    ),
    pytest.param(
        COMPOSE,
        r"(?m)^  grafana:\n",
        "  grafana:\n    network_mode: none\n",
        "the grafana service has network_mode 'none': it finds no service by name",
        id="grafana-off-the-network",
    ),
    pytest.param(
        PLUGINS,
        r"backendUrl: \$\{BETRACE_BACKEND_URL\}",
        "backendUrl: http://backend:8080",
        "the backend service listens on 12011, not 8080",
        id="backend-url-wrong-port",
    ),
    pytest.param(
        COMPOSE,
        r"      GF_SECURITY_ADMIN_PASSWORD: .*\n",
        "",
        "services.grafana.environment.GF_SECURITY_ADMIN_PASSWORD is not set (admin/admin)",
        id="no-admin-password",
    ),
    pytest.param(
        COMPOSE,
        r"GF_PATHS_PLUGINS: /var/lib/grafana/plugins",
        "GF_PATHS_PLUGINS: /var/lib/grafana/data/plugins",
        "services.grafana.environment.GF_PATHS_PLUGINS is '/var/lib/grafana/data/plugins'; it "
        "must be '/var/lib/grafana/plugins' (releases.yaml plugin.plugins_dir), where the image",
        id="grafana-plugins-path",
    ),
    pytest.param(
        PLUGINS,
        r"type: betrace-app",
        "type: betrace-plugin",
        "no app of type 'betrace-app' is provisioned",
        id="plugin-type",
    ),
    pytest.param(
        PLUGINS,
        r"apiVersion: 1",
        "apiVersion: 2",
        "betrace.yaml: apiVersion is 2, expected 1",
        id="plugin-api-version",
    ),
    pytest.param(
        DATASOURCES,
        r"datasourceUid: pyroscope",
        "datasourceUid: profiles",
        "grafana datasource Tempo: links to datasourceUid 'profiles', which no provisioned "
        "data source has",
        id="dangling-datasource-uid",
    ),
    pytest.param(
        DATASOURCES,
        r"url: http://loki:3100",
        "url: http://localhost:3100",
        "grafana datasource Loki: url host 'localhost' is not a service",
        id="datasource-url-localhost",
    ),
    pytest.param(
        PROMETHEUS,
        r'"backend:12011"',
        '"backend:8080"',
        "prometheus.yml: no job scrapes the backend at 'backend:12011'",
        id="prometheus-backend-port",
    ),
    pytest.param(
        PROMETHEUS,
        r"metrics_path: /metrics",
        "metrics_path: /v1/metrics",
        "prometheus.yml: the backend job scrapes '/v1/metrics', expected /metrics",
        id="prometheus-metrics-path",
    ),
    pytest.param(
        COLLECTOR,
        r"endpoint: 0\.0\.0\.0:4317",
        "endpoint: 0.0.0.0:14317",
        "otel-collector.yaml: no otlp receiver listens for gRPC on 4317",
        id="collector-receiver-port",
    ),
    pytest.param(
        COLLECTOR,
        r"endpoint: tempo:4317",
        "endpoint: tempo:4318",
        "otel-collector.yaml: the traces pipeline has no otlp exporter to Tempo (tempo:4317",
        id="collector-traces-not-to-tempo",
    ),
    pytest.param(
        COLLECTOR,
        r"endpoint: 0\.0\.0\.0:8889",
        "endpoint: 0.0.0.0:9464",
        "the metrics pipeline reaches Prometheus neither through a prometheus exporter that "
        "prometheus.yml scrapes",
        id="collector-metrics-not-scraped",
    ),
    pytest.param(
        COLLECTOR,
        r"exporters: \[otlp/tempo\]",
        "exporters: [otlp/jaeger]",
        "pipeline traces uses exporter 'otlp/jaeger', which is not defined under exporters",
        id="collector-undefined-exporter",
    ),
    pytest.param(
        c.COMPOSE_FILE.name,
        r"\n      # The patch series the app is built with "
        r"\(the Dockerfile's `patches` context\)\.\n"
        r"      additional_contexts:\n        patches: \.\./patches\n",
        "\n",
        "services.grafana.build: target grafana-plugin needs the build context 'patches'",
        id="grafana-build-without-patches-context",
    ),
    pytest.param(
        c.COMPOSE_FILE.name,
        r"\n      # The patch series the backend is built with "
        r"\(the Dockerfile's `patches` context\)\.\n"
        r"      additional_contexts:\n        patches: \.\./patches\n",
        "\n",
        "services.backend.build: target backend needs the build context 'patches'",
        id="backend-build-without-patches-context",
    ),
]


def test_unbroken_copy_passes(copy: StackCopy, release_data: ReleaseData) -> None:
    """The break tests below start from this copy: any violation they see is their edit's."""
    assert c.check_stack(copy.load(), release_data) == []


@pytest.mark.parametrize(("relative", "pattern", "replacement", "message"), BREAKS)
def test_broken_stack_is_caught_with_a_clear_message(
    copy: StackCopy,
    release_data: ReleaseData,
    relative: str,
    pattern: str,
    replacement: str,
    message: str,
) -> None:
    copy.edit(relative, pattern, replacement)
    violations = c.check_stack(copy.load(), release_data)
    assert any(message in v for v in violations), "\n".join(violations)


def test_missing_collector_config_is_reported_not_raised(
    copy: StackCopy, release_data: ReleaseData
) -> None:
    (copy.root / COLLECTOR).unlink()
    violations = c.check_stack(copy.load(), release_data)
    assert any(f"{COLLECTOR} does not exist" in v for v in violations), "\n".join(violations)


@pytest.mark.parametrize(
    ("pattern", "replacement", "message"),
    [
        pytest.param(
            r"\nGRAFANA_HOST_PORT=3000\n",
            "\n",
            ".env.example: GRAFANA_HOST_PORT is interpolated by docker-compose.yml but not "
            "documented",
            id="undocumented-variable",
        ),
        pytest.param(
            r"(BETRACE_DEBUG=\n)",
            r"\1\n# Not used anywhere.\nBETRACE_THEME=dark\n",
            "BETRACE_THEME is documented but docker-compose.yml never uses it",
            id="unused-variable",
        ),
        pytest.param(
            r"GRAFANA_ADMIN_PASSWORD=\n",
            "GRAFANA_ADMIN_PASSWORD=admin\n",
            "GRAFANA_ADMIN_PASSWORD must be empty in the example",
            id="secret-with-value",
        ),
        pytest.param(
            r"# Any non-empty value turns on the backend's debug logging\.\n",
            "\n",
            "BETRACE_DEBUG has no comment above it",
            id="uncommented-variable",
        ),
    ],
)
def test_broken_env_example_is_caught(
    copy: StackCopy, pattern: str, replacement: str, message: str
) -> None:
    env_example = copy.root / c.ENV_EXAMPLE.name
    assert c.check_env_example(copy.compose_file, env_example) == []
    copy.edit(c.ENV_EXAMPLE.name, pattern, replacement)
    violations = c.check_env_example(copy.compose_file, env_example)
    assert any(message in v for v in violations), "\n".join(violations)


def test_grafana_environment_in_list_form_is_read_like_the_mapping(
    copy: StackCopy, release_data: ReleaseData
) -> None:
    """`- NAME=value` is as valid as `NAME: value`; the policies must read both."""
    path = copy.compose_file
    text = path.read_text(encoding="utf-8")
    start = text.index("  grafana:\n")
    block_start = text.index("    environment:\n", start)
    block_end = text.index("    ports:\n", block_start)
    lines = text[block_start:block_end].splitlines()[1:]
    items = [
        ln.replace(": ", "=", 1).replace("      ", "      - ", 1)
        for ln in lines
        if ln.strip() and not ln.strip().startswith("#")
    ]
    items = [i.replace('="', "=").rstrip('"') if '="' in i else i for i in items]
    listed = "    environment:\n" + "\n".join(items) + "\n"
    path.write_text(text[:block_start] + listed + text[block_end:], encoding="utf-8")
    stack = copy.load()
    assert isinstance(stack.raw["services"]["grafana"]["environment"], list)
    assert c.check_grafana(stack, release_data) == []


REFERENCE_PAGE = c.REPO_ROOT / "docs" / "reference" / "compose-stack.md"


def _page_volumes(text: str) -> dict[str, str]:
    """volume -> `mounted at` cell, from the Volumes table of the Compose reference page."""
    section = text.split("## Volumes", 1)[1].split("\n## ", 1)[0]
    rows = [r.split("|")[1:3] for r in section.splitlines() if r.startswith("| `")]
    return {name: where for names, where in rows for name in re.findall(r"`([^`]+)`", names)}


def test_reference_page_lists_the_volumes_the_stack_mounts(stack: c.Stack) -> None:
    listed = _page_volumes(REFERENCE_PAGE.read_text(encoding="utf-8"))
    assert set(listed) == set(stack.project["volumes"])
    for name, service in stack.services.items():
        for mount in service.get("volumes", []):
            cell = listed.get(mount.get("source", ""), "")
            if mount.get("type") == "volume" and name in ("backend", "grafana"):
                assert f"`{mount['target']}`" in cell, (name, mount, cell)


# --- bounded logs --------------------------------------------------------------------------------


def _line_of(path: Path, text: str) -> int:
    """1-based line of the one line of `path` that is `text`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines.count(text) == 1, f"{path.name}: {text!r} is not on exactly one line"
    return lines.index(text) + 1


def test_every_service_keeps_a_bounded_log(stack: c.Stack) -> None:
    """The stack's x-logging block, on every service, as its comment states the bound."""
    assert c.check_logs(stack) == []
    limits = {name: container_logs.limit(s.get("logging")) for name, s in stack.services.items()}
    assert set(limits) == set(c.SERVICE_IMAGES)
    bound = limits["backend"]
    assert set(limits.values()) == {bound}
    stated = (
        f"{bound.files} x {container_logs.amount(bound.file_bytes)} = "
        f"{container_logs.amount(bound.total_bytes)}"
    )
    assert stated in " ".join(c.COMPOSE_FILE.read_text(encoding="utf-8").split())


def test_a_service_without_logging_fails_at_its_line(
    copy: StackCopy, release_data: ReleaseData
) -> None:
    copy.edit(
        COMPOSE,
        r"(pyroscope:1\.6\.0\n    restart: unless-stopped\n)    logging: \*logging\n",
        r"\1",
    )
    line = _line_of(copy.compose_file, "  pyroscope:")
    assert c.check_logs(copy.load()) == [
        f"docker-compose.yml:{line}: services.pyroscope.logging is not set: Docker's default "
        "json-file driver then keeps all the container writes; use json-file with max-size and "
        "max-file, or the local driver"
    ]
    assert any(
        "services.pyroscope.logging is not set" in v
        for v in c.check_stack(copy.load(), release_data)
    )


def test_json_file_without_max_size_fails_at_the_shared_options(copy: StackCopy) -> None:
    """The options are written once, in x-logging: every service is named, at that line."""
    copy.edit(COMPOSE, r'\n    max-size: "20m"', "")
    line = _line_of(copy.compose_file, "  options:")
    found = c.check_logs(copy.load())
    assert len(found) == len(c.SERVICE_IMAGES)
    assert found[0].startswith(f"docker-compose.yml:{line}: services.")
    assert ".logging.options.max-size is not set: json-file then keeps" in found[0]


@pytest.mark.parametrize(
    ("logging", "message"),
    [
        ({"driver": "none"}, "services.tempo.logging.driver is 'none': the container keeps no log"),
        ({"driver": "syslog"}, "services.tempo.logging.driver is 'syslog': only json-file"),
        (
            {"options": {"max-size": "20m"}},
            "services.tempo.logging.driver is not set: the daemon's",
        ),
        (
            {"driver": "json-file", "options": {"max-size": "-1"}},
            "services.tempo.logging.options.max-size is '-1', not a size Docker takes",
        ),
        (
            {"driver": "local", "options": {"max-file": "1"}},
            "services.tempo.logging.options.compress is true with max-file 1: Docker refuses",
        ),
        (
            {"driver": "json-file", "options": {"max-size": "9m", "compress": "true"}},
            "services.tempo.logging.options.compress is true with max-file 1: Docker refuses",
        ),
        (
            {"driver": "local", "options": {"max-file": "0"}},
            "services.tempo.logging.options.max-file is '0', not a whole number of files",
        ),
    ],
)
def test_a_logging_setting_that_does_not_bound_the_log_is_named(
    copy: StackCopy, logging: dict[str, object], message: str
) -> None:
    copy.edit(
        COMPOSE,
        r"(grafana/tempo:2\.5\.0\n    restart: unless-stopped\n    logging: )\*logging",
        r"\g<1>" + json.dumps(logging),
    )
    line = _line_of(copy.compose_file, "    logging: " + json.dumps(logging))
    found = c.check_logs(copy.load())
    assert len(found) == 1 and found[0].startswith(f"docker-compose.yml:{line}: "), found
    assert message in found[0]


def test_the_local_driver_is_bounded_by_its_defaults() -> None:
    assert container_logs.limit({"driver": "local"}) == container_logs.LogLimit(
        "local", 20_000_000, 5
    )


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("20m", 20_000_000),
        ("20M", 20_000_000),
        ("20MB", 20_000_000),
        ("20mib", 20_000_000),  # go-units' FromHumanSize: decimal whatever the suffix
        ("20 m", 20_000_000),
        ("1.5g", 1_500_000_000),
        ("512k", 512_000),
        ("100", 100),
        ("100b", 100),
        ("-1", None),
        ("20x", None),
        ("m", None),
        ("20mbb", None),
    ],
)
def test_sizes_are_read_like_docker(text: str, size: int | None) -> None:
    assert container_logs.size_bytes(text) == size
