"""The Compose stack: the real Compose binary resolves it, policy functions judge the result.

`load_project` runs the official Compose binary (`config --format json`) with a clean environment
that cannot reach a Docker daemon; every `check_*` function returns readable violations (an empty
list when the stack follows the rule), so the artefact tests and the doc gate share one policy.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import REPO_ROOT, backend_env, grafana_env, tools
from ..errors import ProblemsError
from ..names import (
    BETRACE_IMAGES,
    TARGET_ROLES,
    closest,
    image_role,
    image_tag,
    is_floating_tag,
    looks_secret,
)
from ..release import Plugin, ReleaseData
from ..yamlio import field_path, line_of, load_with_lines, to_plain
from . import container_logs, dockerfiles

COMPOSE_DIR = REPO_ROOT / "docker"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"

#: Which releases.yaml image each service runs: a BeTrace image name or an `observability` entry.
SERVICE_IMAGES: dict[str, str] = {
    "backend": "backend",
    "grafana": "grafana-plugin",
    "otel-collector": "otel-collector",
    "tempo": "tempo",
    "prometheus": "prometheus",
    "loki": "loki",
    "pyroscope": "pyroscope",
    # rules as code: copies docker/rules.json into the backend's data volume before it starts
    "backend-rules": "busybox",
}
#: Services that run once before another starts (depended on with service_completed_successfully):
#: restart "no", since restarting them would be a loop.
ONE_SHOT = frozenset({"backend-rules"})


@dataclass(frozen=True)
class ImageContents:
    """Programs a healthcheck may call inside an image, and how we know."""

    binaries: frozenset[str]
    source: str

    def exec_problem(self, image: str, program: str) -> str | None:
        """Why running `program` in a container of this image fails (exec), or None."""
        if program.rsplit("/", 1)[-1] in self.binaries:
            return None
        has = ", ".join(sorted(self.binaries)) or "no program to exec"
        return f"the {image} image has no '{program}' ({self.source}); it has: {has}"


#: What each pinned image contains. A healthcheck may only call a program listed here; when an
#: image changes base, update its row (the healthcheck test fails until the row says why).
IMAGE_CONTENTS: dict[str, ImageContents] = {
    "backend": ImageContents(
        frozenset(),
        "docker/Dockerfile builds it FROM scratch with the binary alone, docker/flake.nix with "
        "dockerTools from betrace-backend and NSS files only: no shell, no curl, no wget, and "
        "the binary has no health-check flag",
    ),
    "grafana-plugin": ImageContents(
        frozenset({"grafana"}),
        "what both builds share: docker/Dockerfile adds the plugin to the official Grafana "
        "image (whose Dockerfile adds curl), but docker/flake.nix builds it from nixpkgs' "
        "grafana, the plugin and NSS files, with no shell and no HTTP client",
    ),
    "plugin-init": ImageContents(
        frozenset({"betrace-plugin-init"}),
        "what both builds share: docker/Dockerfile puts its entrypoint script on busybox, "
        "docker/flake.nix on coreutils; neither has an HTTP client",
    ),
    "busybox": ImageContents(
        frozenset({"sh", "sha256sum", "cut", "tr", "cp", "mv", "chown", "cat", "wget"}),
        "the official BusyBox image: BusyBox's applets (the plugin-init stage of "
        "docker/Dockerfile is built FROM it and runs the same ones; the tests run backend-rules' "
        "script with Debian's BusyBox)",
    ),
    "otel-collector": ImageContents(
        frozenset({"otelcol-contrib"}),
        "FROM scratch with the otelcol-contrib binary alone (collector-releases Dockerfile)",
    ),
    "tempo": ImageContents(
        frozenset({"tempo", "sh", "wget"}),
        "Tempo 2.5 final stage is Alpine (busybox sh and wget) plus /tempo",
    ),
    "loki": ImageContents(
        frozenset({"loki", "sh", "wget"}),
        "Loki 3.0 final stage is Alpine (busybox sh and wget) plus /usr/bin/loki",
    ),
    "prometheus": ImageContents(
        frozenset({"prometheus", "promtool", "sh", "wget"}),
        "prom/prometheus is built on quay.io/prometheus/busybox (busybox sh and wget)",
    ),
    "pyroscope": ImageContents(
        frozenset({"pyroscope", "profilecli", "sh", "wget"}),
        "Pyroscope 1.6.0's image is alpine:3.18.6 (busybox sh and wget) plus /usr/bin/pyroscope "
        "and /usr/bin/profilecli (grafana/pyroscope v1.6.0, cmd/pyroscope/Dockerfile); "
        "distroless only from 1.7.0",
    ),
    "grafana": ImageContents(
        frozenset({"grafana", "grafana-cli", "grafana-server", "sh", "bash", "wget", "curl"}),
        "Grafana's Dockerfile (packaging/docker/Dockerfile in grafana/grafana) adds bash and curl "
        "to its Alpine base (busybox wget); read from the Dockerfile, not from the published image",
    ),
}


class ComposeError(Exception):
    """The Compose binary rejected the project; the message is what Compose said."""


# --- running the real Compose binary -------------------------------------------------------------


def compose_binary() -> str:
    path = tools.find("docker-compose")
    if path is None:
        raise ComposeError(
            f"the official Compose binary is not installed ({tools.TOOLS['docker-compose'].hint})"
        )
    return path


def clean_env(home: Path) -> dict[str, str]:
    """An environment in which Compose reads nothing of the user's and reaches no daemon."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "DOCKER_CONFIG": str(home / ".docker"),
        # A socket path that does not exist: any attempt to reach a daemon fails at once.
        "DOCKER_HOST": f"unix://{home / 'no-docker-daemon.sock'}",
    }


#: `config` options that only read; anything else (a subcommand such as `up`) is refused.
_CONFIG_ARGS = frozenset(
    {"-q", "--quiet", "--format", "json", "yaml", "--services", "--volumes", "--images"}
    | {"--profiles", "--no-interpolate", "--no-normalize", "--variables", "--environment"}
)


def run_compose_config(
    compose_file: Path, env_file: Path, *args: str, binary: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `compose -f FILE --env-file ENV config ARGS` (only `config`: it needs no daemon).

    The env file is always explicit, so a developer's docker/.env is never read by a test.
    """
    if unknown := [a for a in args if a not in _CONFIG_ARGS]:
        raise ValueError(f"only read-only `config` options are allowed here, got {unknown}")
    with tempfile.TemporaryDirectory(prefix="compose-home-") as home:
        return subprocess.run(
            [
                binary or compose_binary(),
                *("-f", str(compose_file), "--env-file", str(env_file), "config", *args),
            ],
            env=clean_env(Path(home)),
            cwd=home,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def load_project(compose_file: Path, env_file: Path, binary: str | None = None) -> dict[str, Any]:
    """The project as Compose resolves it (interpolated, normalised), or ComposeError."""
    done = run_compose_config(compose_file, env_file, "--format", "json", binary=binary)
    if done.returncode != 0:
        raise ComposeError(f"{compose_file}: {done.stderr.strip()}")
    project: dict[str, Any] = json.loads(done.stdout)
    return project


# --- the .env file and interpolation -------------------------------------------------------------


@dataclass(frozen=True)
class EnvEntry:
    name: str
    value: str
    line: int
    comment: str


def read_env_file(path: Path) -> dict[str, EnvEntry]:
    """Variables of a .env file, each with the comment block written just above it."""
    entries: dict[str, EnvEntry] = {}
    comment: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if line.startswith("#"):
            comment.append(line.lstrip("#").strip())
        elif "=" in line:
            name, _, value = line.partition("=")
            entries[name.strip()] = EnvEntry(name.strip(), value.strip(), number, " ".join(comment))
            comment = []
        else:
            comment = []
    return entries


def interpolated_variables(compose_file: Path, env_file: Path) -> dict[str, bool]:
    """Every variable the compose file interpolates, as Compose itself reads them (`config
    --variables`), each with whether the stack refuses to start without it (`${VAR:?message}`)."""
    done = run_compose_config(compose_file, env_file, "--variables", "--format", "json")
    if done.returncode != 0:
        raise ComposeError(f"{compose_file}: {done.stderr.strip()}")
    found: dict[str, Any] = json.loads(done.stdout)
    return {name: bool(variable.get("Required")) for name, variable in found.items()}


def check_env_example(compose_file: Path, env_example: Path) -> list[str]:
    """Every interpolated variable is documented in .env.example, and nothing else is."""
    used = interpolated_variables(compose_file, env_example)
    entries = read_env_file(env_example)
    out = [
        f"{env_example.name}: {name} is interpolated by {compose_file.name} but not documented"
        for name in sorted(used - entries.keys())
    ]
    out += [
        f"{env_example.name}:{entries[name].line}: {name} is documented but "
        f"{compose_file.name} never uses it"
        for name in sorted(entries.keys() - used)
    ]
    for entry in entries.values():
        if not entry.comment:
            out.append(f"{env_example.name}:{entry.line}: {entry.name} has no comment above it")
        if used.get(entry.name) and entry.value:  # required: a secret each user sets
            out.append(
                f"{env_example.name}:{entry.line}: {entry.name} must be empty in the example "
                "(a value there becomes everyone's secret); users set their own"
            )
    return out


# --- the stack: normalised project plus the config files it mounts -------------------------------


@dataclass
class Stack:
    """A resolved project and the compose file it came from."""

    project: dict[str, Any]
    compose_file: Path
    raw: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.raw = to_plain(load_with_lines(self.compose_file)) or {}

    @property
    def services(self) -> dict[str, Any]:
        services: dict[str, Any] = self.project.get("services", {})
        return services

    def env(self, service: str) -> dict[str, str]:
        return {
            k: "" if v is None else str(v)
            for k, v in self.service(service).get("environment", {}).items()
        }

    def service(self, name: str) -> dict[str, Any]:
        service: dict[str, Any] = self.services.get(name, {})
        return service

    def host_path(self, service: str, container_path: str) -> Path | None:
        """The host file behind a path inside a container, through the service's bind mounts."""
        for mount in self.service(service).get("volumes", []):
            target = mount.get("target", "").rstrip("/")
            if mount.get("type") != "bind":
                continue
            if container_path == target or container_path.startswith(target + "/"):
                return Path(mount["source"]) / container_path[len(target) :].lstrip("/")
        return None

    def flag(self, service: str, *names: str) -> str | None:
        """Value of a `--name=value` / `-name=value` command argument of a service."""
        for arg in self.service(service).get("command") or []:
            for name in names:
                if arg.startswith(name + "="):
                    return str(arg.split("=", 1)[1])
        return None

    def config(self, service: str, container_path: str) -> dict[str, Any]:
        """A YAML config file a service reads, loaded from the host file mounted there."""
        path = self.host_path(service, container_path)
        if path is None:
            raise ComposeError(f"services.{service}: nothing is mounted at {container_path}")
        if not path.is_file():
            raise ComposeError(f"services.{service}: the config file {path} does not exist")
        return to_plain(load_with_lines(path)) or {}


# --- policies ------------------------------------------------------------------------------------


def expected_image(data: ReleaseData, key: str) -> str:
    if key in BETRACE_IMAGES:
        return data.image_ref(key)
    return str(getattr(data.current.observability, key.replace("-", "_")).ref)


def check_no_version_key(stack: Stack) -> list[str]:
    if "version" in stack.raw:
        return [
            f"{stack.compose_file.name}: top-level `version:` is obsolete in the Compose "
            "specification; remove it"
        ]
    return []


def check_images(stack: Stack, data: ReleaseData) -> list[str]:
    out = []
    for name, service in stack.services.items():
        image = service.get("image", "")
        tag = image_tag(image)
        if not tag or is_floating_tag(tag):
            out.append(
                f"services.{name}.image '{image}' has {f'the tag {tag}' if tag else 'no tag'}, "
                "which moves over time; pin the version from releases.yaml"
            )
            continue
        key = SERVICE_IMAGES.get(name)
        if key is None:
            out.append(
                f"services.{name} runs '{image}', which releases.yaml does not pin; add the "
                "image to releases.yaml and the service to SERVICE_IMAGES in compose.py"
            )
        elif image != (want := expected_image(data, key)):
            out.append(f"services.{name}.image is '{image}' but releases.yaml pins '{want}'")
    return out


def check_build_contexts(stack: Stack) -> list[str]:
    """A service that builds a Dockerfile target names every build context the target needs
    beyond its own (`additional_contexts`): Compose passes nothing else to BuildKit."""
    out = []
    for name, service in stack.services.items():
        build = service.get("build")
        if not isinstance(build, dict) or not build.get("target"):
            continue
        context = Path(str(build.get("context", ".")))
        context = context if context.is_absolute() else stack.compose_file.parent / context
        dockerfile = context / str(build.get("dockerfile", "Dockerfile"))
        if not dockerfile.is_file():
            continue  # Compose itself names a missing Dockerfile
        given = build.get("additional_contexts") or {}
        names = set(given) if isinstance(given, dict) else {str(g).split("=", 1)[0] for g in given}
        needed = dockerfiles.named_contexts(dockerfiles.parse(dockerfile), build["target"])
        out += [
            f"services.{name}.build: target {build['target']} needs the build context "
            f"'{context_name}' ({where}); name it under additional_contexts"
            for context_name, where in sorted(needed.items())
            if context_name not in names
        ]
    return out


#: How a published port names its host address: Grafana's has a variable of its own, which
#: falls back to the stack's.
_BIND = "${BETRACE_BIND_ADDRESS:-127.0.0.1}"
_BIND_OF = {"grafana": "${GRAFANA_BIND_ADDRESS:-" + _BIND + "}"}


def check_published_ports(
    stack: Stack,
    data: ReleaseData,
    bind_address: str = "127.0.0.1",
    grafana_bind_address: str | None = None,
) -> list[str]:
    """Each published port listens where the stack's settings say (Grafana's on
    `grafana_bind_address`, when given), and the backend's are ports it listens on."""
    out = []
    backend_ports = {p.port: name for name, p in data.current.backend.ports.items()}
    for name, service in stack.services.items():
        wanted = grafana_bind_address or bind_address if name == "grafana" else bind_address
        for port in service.get("ports", []):
            host_ip = port.get("host_ip") or "0.0.0.0"  # noqa: S104 - what an empty host_ip means
            if host_ip != wanted:
                out.append(
                    f"services.{name}.ports: container port {port.get('target')} is published "
                    f"on {host_ip}, expected {wanted}; write it as "
                    f'"{_BIND_OF.get(name, _BIND)}:HOST:CONTAINER"'
                )
            if name == "backend" and port.get("target") not in backend_ports:
                listening = ", ".join(f"{p} ({n})" for p, n in backend_ports.items())
                out.append(
                    f"services.backend.ports: container port {port.get('target')} is published, "
                    f"but betrace-backend listens on {listening}"
                )
    env = stack.env("backend")
    for port_name, port in data.current.backend.ports.items():
        value = env.get(port.env)
        if value is not None and value != str(port.port):
            out.append(
                f"services.backend.environment.{port.env} is {value}; the stack publishes and "
                f"scrapes the {port_name} port {port.port}"
            )
    return out


def check_backend_env(stack: Stack, data: ReleaseData) -> list[str]:
    """Each variable the backend service sets is one it reads, in its form (backend_env)."""
    out = []
    for name, value in stack.env("backend").items():
        problem = backend_env.name_problem(name, data)
        if problem is None and name != "OTEL_EXPORTER_OTLP_ENDPOINT":  # check_otlp_endpoint's
            problem = backend_env.value_problem(name, value)
        if problem:
            out.append(f"services.backend.environment.{name} {problem}")
    return out


_COLLECTOR_CONFIG = ("otel-collector", ("--config",), "/etc/otelcol-contrib/config.yaml")
_PROMETHEUS_CONFIG = ("prometheus", ("--config.file",), "/etc/prometheus/prometheus.yml")


def _config_name(stack: Stack, spec: tuple[str, tuple[str, ...], str]) -> str:
    """Host file name of a service's config, for messages."""
    service, flags, default = spec
    path = stack.host_path(service, stack.flag(service, *flags) or default)
    return path.name if path else f"{service} config"


def _collector_config(stack: Stack) -> dict[str, Any]:
    service, flags, default = _COLLECTOR_CONFIG
    return stack.config(service, stack.flag(service, *flags) or default)


def _prometheus_config(stack: Stack) -> dict[str, Any]:
    service, flags, default = _PROMETHEUS_CONFIG
    return stack.config(service, stack.flag(service, *flags) or default)


def _tempo_config(stack: Stack) -> dict[str, Any]:
    return stack.config(
        "tempo", stack.flag("tempo", "-config.file", "--config.file") or "/etc/tempo.yaml"
    )


def _scrape_targets(prometheus: Mapping[str, Any]) -> dict[str, str]:
    """target -> metrics path, over every static scrape target of a Prometheus config."""
    return {
        target: job.get("metrics_path", "/metrics")
        for job in prometheus.get("scrape_configs") or []
        for static in job.get("static_configs") or []
        for target in static.get("targets") or []
    }


def _otlp_ports(receivers: Mapping[str, Any], protocol: str) -> set[int]:
    """Ports the otlp receivers of a collector or Tempo config listen on for one protocol."""
    default = {"grpc": 4317, "http": 4318}[protocol]
    ports = set()
    for name, receiver in receivers.items():
        protocols = (receiver or {}).get("protocols") or {}
        if name.split("/")[0] == "otlp" and protocol in protocols:
            endpoint = (protocols[protocol] or {}).get("endpoint", f"0.0.0.0:{default}")
            if port := backend_env.host_and_port(str(endpoint))[1]:
                ports.add(port)
    return ports


def check_otlp_endpoint(stack: Stack) -> list[str]:
    value = stack.env("backend").get("OTEL_EXPORTER_OTLP_ENDPOINT")
    where = "services.backend.environment.OTEL_EXPORTER_OTLP_ENDPOINT"
    if not value:
        return [f"{where} is not set; the backend would export to localhost:4317, inside itself"]
    # The value's form is the backend's rule, shared with the chart and the gate.
    problem = backend_env.value_problem("OTEL_EXPORTER_OTLP_ENDPOINT", value)
    if problem:
        return [f"{where} {problem}"]
    host, port = backend_env.host_and_port(value)
    if host not in stack.services:
        return [f"{where} points at '{host}', which is not a service of the stack"]
    if host != "otel-collector":
        return [
            f"{where} points at '{host}'; the backend exports metrics as well as traces, so it "
            "must be the OpenTelemetry Collector (otel-collector), not Tempo or another store"
        ]
    listening = _otlp_ports(_collector_config(stack).get("receivers") or {}, "grpc")
    if port not in listening:
        return [
            f"{where} uses port {port}, but the collector's otlp receiver listens for gRPC on "
            f"{', '.join(map(str, sorted(listening))) or 'no port'}"
        ]
    return []


def check_prometheus(stack: Stack, data: ReleaseData) -> list[str]:
    http = data.current.backend.ports["http"].port
    scraped = _scrape_targets(_prometheus_config(stack))
    name = _config_name(stack, _PROMETHEUS_CONFIG)
    out = [
        f"{name}: target '{t}' is not a service of the stack"
        for t in scraped
        if backend_env.host_and_port(t)[0] not in stack.services
    ]
    backend = f"backend:{http}"
    if backend not in scraped:
        out.append(
            f"{name}: no job scrapes the backend at '{backend}' (its HTTP port serves "
            f"/metrics); targets are {', '.join(sorted(scraped)) or 'none'}"
        )
    elif scraped[backend] != "/metrics":
        out.append(f"{name}: the backend job scrapes '{scraped[backend]}', expected /metrics")
    return out


@dataclass(frozen=True)
class _Collector:
    """The OpenTelemetry Collector's configuration, as the collector rules see it."""

    stack: Stack
    config: Mapping[str, Any]
    name: str  # the configuration file's name, for messages

    @property
    def pipelines(self) -> Mapping[str, Any]:
        pipelines: Mapping[str, Any] = (self.config.get("service") or {}).get("pipelines") or {}
        return pipelines

    def exporters_of(self, pipeline: str) -> list[str]:
        return list((self.pipelines.get(pipeline) or {}).get("exporters") or [])

    def endpoint(self, exporter: str) -> str:
        return str(((self.config.get("exporters") or {}).get(exporter) or {}).get("endpoint", ""))


def _collector_receives_otlp_grpc(col: _Collector) -> list[str]:
    if 4317 in _otlp_ports(col.config.get("receivers") or {}, "grpc"):
        return []
    return [f"{col.name}: no otlp receiver listens for gRPC on 4317"]


def _pipelines_use_defined_components(col: _Collector) -> list[str]:
    return [
        f"{col.name}: pipeline {pipeline_name} uses {kind[:-1]} '{component}', "
        f"which is not defined under {kind}"
        for pipeline_name, pipeline in col.pipelines.items()
        for kind in ("receivers", "processors", "exporters")
        for component in pipeline.get(kind) or []
        if component not in (col.config.get(kind) or {})
    ]


def _traces_reach_tempo(col: _Collector) -> list[str]:
    """An otlp exporter of the traces pipeline points at a gRPC receiver of Tempo."""
    tempo_receivers = (_tempo_config(col.stack).get("distributor") or {}).get("receivers") or {}
    tempo_ports = _otlp_ports(tempo_receivers, "grpc")
    tempo_endpoints = {("tempo", port) for port in tempo_ports}
    if any(
        e.split("/")[0] == "otlp" and backend_env.host_and_port(col.endpoint(e)) in tempo_endpoints
        for e in col.exporters_of("traces")
    ):
        return []
    return [
        f"{col.name}: the traces pipeline has no otlp exporter to Tempo "
        f"(tempo:{'/'.join(map(str, sorted(tempo_ports))) or '?'}, tempo.yaml distributor)"
    ]


def _metrics_reach_prometheus(col: _Collector) -> list[str]:
    """A prometheus exporter Prometheus scrapes, or a prometheusremotewrite to Prometheus."""
    scraped = _scrape_targets(_prometheus_config(col.stack))
    for e in col.exporters_of("metrics"):
        host, port = backend_env.host_and_port(col.endpoint(e))
        kind = e.split("/")[0]
        if kind == "prometheus" and f"otel-collector:{port}" in scraped:
            return []
        if kind == "prometheusremotewrite" and host == "prometheus":
            return []
    return [
        f"{col.name}: the metrics pipeline reaches Prometheus neither through a prometheus "
        f"exporter that {_config_name(col.stack, _PROMETHEUS_CONFIG)} scrapes nor through "
        "prometheusremotewrite"
    ]


_COLLECTOR_RULES: list[Callable[[_Collector], list[str]]] = [
    _collector_receives_otlp_grpc,
    _pipelines_use_defined_components,
    _traces_reach_tempo,
    _metrics_reach_prometheus,
]


def check_collector(stack: Stack) -> list[str]:
    collector = _Collector(stack, _collector_config(stack), _config_name(stack, _COLLECTOR_CONFIG))
    return [problem for rule in _COLLECTOR_RULES for problem in rule(collector)]


_GRAFANA_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _grafana_expand(text: str, env: Mapping[str, str]) -> str:
    """Grafana's provisioning interpolation: $VAR and ${VAR} from its environment, $$ is $."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1) or m.group(2), "")

    return _GRAFANA_VAR.sub(sub, text)


@dataclass(frozen=True)
class _GrafanaService:
    """The stack's grafana service, as the Grafana rules see it."""

    stack: Stack
    data: ReleaseData
    env: dict[str, str]  # after interpolation
    raw_env: dict[str, Any]  # as written in the compose file

    @property
    def plugin(self) -> Plugin:
        return self.data.current.plugin


def _grafana_service(stack: Stack, data: ReleaseData) -> _GrafanaService:
    env = stack.env("grafana")
    raw_env = (stack.raw.get("services", {}).get("grafana", {}) or {}).get("environment") or {}
    if isinstance(raw_env, list):  # `- NAME=value` form
        raw_env = dict(str(e).partition("=")[::2] for e in raw_env)
    return _GrafanaService(stack, data, env, raw_env)


def _grafana_variables(g: _GrafanaService) -> list[str]:
    """The shared rules of grafana_env; the image sets the plugins folder when the stack does
    not, and Grafana's anonymous access is off by default."""
    unset = {grafana_env.PLUGINS: g.plugin.plugins_dir, grafana_env.ANONYMOUS: "false"}
    found = grafana_env.problems(g.env, g.plugin, unset=unset)
    return [f"services.grafana.environment.{problem}" for problem in found]


def _admin_password_is_set(g: _GrafanaService) -> list[str]:
    if "GF_SECURITY_ADMIN_PASSWORD" in g.raw_env:
        return []
    return ["services.grafana.environment.GF_SECURITY_ADMIN_PASSWORD is not set (admin/admin)"]


def _no_mount_hides_the_plugin(g: _GrafanaService) -> list[str]:
    plugins_dir = g.plugin.plugins_dir
    out = []
    for mount in g.stack.service("grafana").get("volumes", []):
        target = mount.get("target", "").rstrip("/")
        if plugins_dir == target or plugins_dir.startswith(target + "/"):
            out.append(
                f"services.grafana.volumes: a {mount.get('type')} mount at {target} hides the "
                f"plugin the image ships in {plugins_dir} (and keeps an old one after an upgrade)"
            )
    return out


def _plugin_app_is_provisioned(g: _GrafanaService) -> list[str]:
    """The provisioning files enable the app (apiVersion 1) with a backend URL that works."""
    provisioning = g.env.get("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning")
    folder = g.stack.host_path("grafana", f"{provisioning}/plugins")
    files = sorted(folder.glob("*.y*ml")) if folder and folder.is_dir() else []
    out = []
    apps = []
    for path in files:
        doc = to_plain(load_with_lines(path)) or {}
        if doc.get("apiVersion") != 1:
            out.append(f"{path.name}: apiVersion is {doc.get('apiVersion')!r}, expected 1")
        apps += [(path, app) for app in doc.get("apps") or [] if app.get("type") == g.plugin.id]
    if not apps:
        return [
            *out,
            f"grafana provisioning/plugins: no app of type '{g.plugin.id}' is provisioned",
        ]
    for path, app in apps:
        out += _backend_url_is_the_backend_service(g, path, app)
    return out


def _backend_url_is_the_backend_service(
    g: _GrafanaService, path: Path, app: Mapping[str, Any]
) -> list[str]:
    """jsonData.backendUrl is where Grafana's SERVER reaches the backend: the app calls it
    through its plugin proxy route (patches/grafana-betrace-app/0002), never from the browser.
    So it is the backend's compose service on the backend's own HTTP port; localhost would be
    the Grafana container itself."""
    raw_url = str((app.get("jsonData") or {}).get("backendUrl", ""))
    url = _grafana_expand(raw_url, g.env)
    wrong = backend_env.backend_url_problem(url) or backend_service_problem(
        url, g.stack.services, g.data, "grafana"
    )
    return (
        []
        if wrong is None
        else [f"{path.name}: jsonData.backendUrl '{raw_url}' (= '{url}'): {wrong}"]
    )


#: Set by the doc gate on every service of a page's project whose role it decided itself (an
#: image the page built, or a build from another Dockerfile or without a target): the role, or
#: None where what the service runs is not known, whatever its target or image name say. The
#: gate removes any value a page's file gave it first.
ROLE = "x-betrace-role"


def service_role(service: Mapping[str, Any], data: ReleaseData) -> str | None:
    """What a Compose service runs, as the models know it (backend, grafana, otel-collector),
    or None: from its build target of the distribution's Dockerfile, else its image. A
    service's name says nothing: a reader's own `backend` or `grafana` may run anything."""
    if ROLE in service:
        role = service[ROLE]
        return str(role) if role is not None else None
    build = service.get("build")
    if isinstance(build, Mapping) and build.get("target") in TARGET_ROLES:
        return TARGET_ROLES[str(build["target"])]  # `image` then only names the build's tag
    return image_role(str(service.get("image") or ""), data.project.registry)


def is_backend_service(service: Mapping[str, Any], data: ReleaseData) -> bool:
    """The service runs the backend (service_role)."""
    return service_role(service, data) == "backend"


def backend_service_problem(
    url: str, services: Mapping[str, Any], data: ReleaseData, caller: str | None = None
) -> str | None:
    """What is wrong with a backend URL, of a form backend_url_problem accepts, on a Compose
    network: its host must be the project's backend service, its port the one that service
    listens on (its own variable, or the release's default), and the calling service (`caller`)
    must share a network with it. Compose's `config` form of `services`."""
    host, port = (urlsplit(url).hostname or "").lower(), backend_env.url_port(url)
    name = next((n for n in services if n.lower() == host), host)  # DNS names ignore case
    service = services.get(name)
    if service is not None and not is_backend_service(service, data):
        return (
            f"the service '{name}' does not run the backend of this release: its image is "
            "neither the release's backend image nor built from the project's Dockerfile and "
            "patches"
        )
    if service is None:
        return (
            f"'{host}' is not the backend's service of this project{closest(host, list(services))}"
        )
    env = {k: v for k, v in (service.get("environment") or {}).items() if v is not None}
    listens = backend_env.listening_ports(env, data)["http"]
    if listens is None:  # the backend's own variable rule names what is wrong with it
        variable = data.current.backend.ports["http"].env
        return f"the backend service's {variable} is '{env.get(variable)}', not a port"
    if port != listens:
        return f"the backend service listens on {listens}, not {port}"
    return _shared_network(caller, services, name)


def _shared_network(caller: str | None, services: Mapping[str, Any], backend: str) -> str | None:
    """The caller finds the backend by its service name only on a network both are on."""
    if caller is None:
        return None
    calling = services.get(caller) or {}
    mode = str(calling.get("network_mode") or "")
    if mode.startswith("service:"):  # another service's network, which the model leaves be
        return None
    if mode:
        return (
            f"the {caller} service has network_mode '{calling['network_mode']}': it finds no "
            f"service by name"
        )
    shared = set(calling.get("networks") or {}) & set(services[backend].get("networks") or {})
    if not shared:
        return f"the {caller} and {backend} services share no network: '{backend}' is unknown there"
    return None


#: The Grafana service's rules, in the order they report.
_GRAFANA_RULES: list[Callable[[_GrafanaService], list[str]]] = [
    _grafana_variables,
    _admin_password_is_set,
    _no_mount_hides_the_plugin,
    _plugin_app_is_provisioned,
]


def check_grafana(stack: Stack, data: ReleaseData) -> list[str]:
    grafana = _grafana_service(stack, data)
    return [problem for rule in _GRAFANA_RULES for problem in rule(grafana)]


def check_datasources(stack: Stack) -> list[str]:
    env = stack.env("grafana")
    provisioning = env.get("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning")
    folder = stack.host_path("grafana", f"{provisioning}/datasources")
    sources: list[Any] = []
    for path in sorted(folder.glob("*.y*ml")) if folder and folder.is_dir() else []:
        sources += (to_plain(load_with_lines(path)) or {}).get("datasources") or []
    out = []
    uids = [s.get("uid") for s in sources]
    wanted = {"tempo", "prometheus", "loki", "grafana-pyroscope-datasource"}
    if missing := wanted - {s.get("type") for s in sources}:
        out.append(f"grafana datasources: no data source of type {', '.join(sorted(missing))}")
    for uid in {u for u in uids if uids.count(u) > 1}:
        out.append(f"grafana datasources: uid '{uid}' is used twice")
    for source in sources:
        host = backend_env.host_and_port(str(source.get("url", "")))[0]
        if host not in stack.services:
            out.append(
                f"grafana datasource {source.get('name')}: url host '{host}' is not a service"
            )
        refs = re.findall(r"'datasourceUid': '([^']*)'", repr(source.get("jsonData") or {}))
        out += [
            f"grafana datasource {source.get('name')}: links to datasourceUid '{ref}', "
            f"which no provisioned data source has (uids: {', '.join(map(str, uids))})"
            for ref in refs
            if ref not in uids
        ]
    return out


def check_bind_mounts(stack: Stack) -> list[str]:
    return [
        f"services.{name}.volumes: bind-mounted {mount['source']} does not exist (Docker would "
        f"create an empty directory at {mount['target']} instead)"
        for name, service in stack.services.items()
        for mount in service.get("volumes", [])
        if mount.get("type") == "bind" and not Path(mount["source"]).exists()
    ]


def check_healthchecks(stack: Stack) -> list[str]:
    out = []
    for name, service in stack.services.items():
        test = (service.get("healthcheck") or {}).get("test") or []
        if not test or test[0] == "NONE" or (service.get("healthcheck") or {}).get("disable"):
            continue
        key = SERVICE_IMAGES.get(name, "")
        contents = IMAGE_CONTENTS.get(key)
        if contents is None:
            out.append(
                f"services.{name}.healthcheck: nothing is recorded about what its image contains"
            )
            continue
        if test[0] == "CMD-SHELL":
            program, why = "sh", "CMD-SHELL runs /bin/sh"
        else:
            program, why = (test[1] if len(test) > 1 else ""), "it is the command"
        if program.rsplit("/", 1)[-1] not in contents.binaries:
            has = ", ".join(sorted(contents.binaries)) or "nothing a healthcheck could call"
            out.append(
                f"services.{name}.healthcheck calls '{program}' ({why}), which the {key} image "
                f"does not have ({contents.source}); it has: {has}"
            )
    return out


def check_literal_secrets(stack: Stack) -> list[str]:
    required = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]+\}$")
    out = []
    for name, service in (stack.raw.get("services") or {}).items():
        environment = (service or {}).get("environment") or {}
        if isinstance(environment, list):
            environment = dict(e.partition("=")[::2] for e in environment)
        for key, value in environment.items():
            if looks_secret(key) and not required.match(str(value or "")):
                out.append(
                    f"services.{name}.environment.{key} is written in the compose file; take it "
                    f"from .env as ${{VAR:?message}} so the stack refuses to start without it"
                )
    return out


def check_operations(stack: Stack, data: ReleaseData) -> list[str]:
    out = [
        f"services.{name}.restart is {service.get('restart')!r}, expected 'unless-stopped'"
        for name, service in stack.services.items()
        if service.get("restart") != ("no" if name in ONE_SHOT else "unless-stopped")
    ]
    data_dir = stack.env("backend").get("BETRACE_DATA_DIR", "")
    if not any(
        m.get("type") == "volume" and m.get("target") == data_dir
        for m in stack.service("backend").get("volumes", [])
    ):
        out.append(f"services.backend: BETRACE_DATA_DIR '{data_dir}' is not on a named volume")
    out += _one_shots_awaited(stack)
    replicas = (stack.service("backend").get("deploy") or {}).get("replicas", 1)
    if replicas != data.current.backend.replicas:
        out.append(
            f"services.backend.deploy.replicas is {replicas}; the backend keeps state: run 1"
        )
    return out


def _one_shots_awaited(stack: Stack) -> list[str]:
    """`up --wait` takes a one-shot service's exit for a failure unless a service that keeps
    running depends on it with service_completed_successfully (Compose's pull request #9572)."""
    out = []
    for name in sorted(ONE_SHOT & set(stack.services)):
        if not any(
            (service.get("depends_on") or {}).get(name, {}).get("condition")
            == "service_completed_successfully"
            for other, service in stack.services.items()
            if other not in ONE_SHOT and isinstance(service.get("depends_on"), dict)
        ):
            out.append(
                f"services.{name} runs once, but no long-running service depends on it with "
                "condition: service_completed_successfully: docker compose up --wait would "
                "take its exit for a failure"
            )
    return out


#: Services built from docker/Dockerfile: service -> the Dockerfile stage (= the image name).
BUILT_SERVICES: dict[str, str] = {"backend": "backend", "grafana": "grafana-plugin"}

#: The backend took 10 s or more to stop on SIGTERM with nothing on its OTLP endpoint and no OTLP
#: timeout (probe stop-time); Compose waits 10 s by default before SIGKILL.
MIN_BACKEND_STOP_GRACE_SECONDS = 30.0

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def duration_seconds(value: str) -> float | None:
    """Seconds in a Compose duration ('1m30s', '30s'); None when it is not one."""
    text = str(value).strip()
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def expected_build_args(data: ReleaseData) -> dict[str, str]:
    return {"BETRACE_COMMIT": data.current.upstream.commit, "BETRACE_VERSION": data.current.version}


def check_builds(stack: Stack, data: ReleaseData) -> list[str]:
    """Each BeTrace service builds from docker/Dockerfile at the commit releases.yaml pins."""
    out = []
    want = expected_build_args(data)
    for name, stage in BUILT_SERVICES.items():
        if name not in stack.services:
            continue
        build = stack.service(name).get("build")
        where = f"services.{name}.build"
        if not build:
            out.append(
                f"{where} is missing: the {stage} image is not published, so `docker compose up "
                f"--build` must build it (context: ., target: {stage})"
            )
            continue
        dockerfile = Path(build.get("context", "")) / build.get("dockerfile", "Dockerfile")
        if not dockerfile.is_file():
            out.append(f"{where}: the Dockerfile {dockerfile} does not exist")
        if build.get("target") != stage:
            out.append(f"{where}.target is {build.get('target')!r}, expected {stage!r}")
        args = {k: "" if v is None else str(v) for k, v in (build.get("args") or {}).items()}
        for arg, value in want.items():
            if args.get(arg) != value:
                out.append(
                    f"{where}.args.{arg} is {args.get(arg)!r}; releases.yaml pins {value!r} "
                    "(releases[0].upstream.commit / releases[0].version)"
                )
    return out


def check_distribution_defaults(stack: Stack, data: ReleaseData) -> list[str]:
    """The backend gets the release data's distribution defaults (OTEL_EXPORTER_OTLP_TIMEOUT)."""
    problems = backend_env.distribution_default_problems(stack.env("backend"), data)
    return [f"services.backend.environment.{p}" for p in problems]


def check_stop_grace(stack: Stack) -> list[str]:
    value = stack.service("backend").get("stop_grace_period")
    seconds = duration_seconds(value) if value else 10.0
    if seconds is None or seconds < MIN_BACKEND_STOP_GRACE_SECONDS:
        return [
            f"services.backend.stop_grace_period is {value or 'unset (10s)'}; the backend took "
            f"10 s or more to stop without an OTLP timeout, so give it at least "
            f"{MIN_BACKEND_STOP_GRACE_SECONDS:.0f}s"
        ]
    return []


def check_grafana_data(stack: Stack) -> list[str]:
    """Grafana's data directory is on a named volume (its database survives `down`)."""
    data_dir = stack.env("grafana").get("GF_PATHS_DATA", "/var/lib/grafana")
    if any(
        m.get("type") == "volume" and m.get("target") == data_dir
        for m in stack.service("grafana").get("volumes", [])
    ):
        return []
    return [
        f"services.grafana: GF_PATHS_DATA '{data_dir}' is not on a named volume (users and "
        "dashboards would be lost with the container)"
    ]


def check_logs(stack: Stack) -> list[str]:
    """Every service's container keeps a bounded log (container_logs.limit): with no `logging:`
    Docker's default json-file driver keeps all of it, and the backend writes a line per span."""
    root = load_with_lines(stack.compose_file)
    out = []
    for name, service in stack.services.items():
        try:
            container_logs.limit(service.get("logging"))
        except container_logs.LoggingProblem as exc:
            where = ("services", name, "logging", *exc.field)
            line = line_of(root, where)
            out.append(f"{stack.compose_file.name}:{line}: {field_path(where)} {exc.reason}")
    return out


#: Every policy, in the order a report lists them; each takes (stack, data).
POLICIES = (
    lambda stack, data: check_no_version_key(stack),
    check_images,
    lambda stack, data: check_build_contexts(stack),
    check_published_ports,
    check_backend_env,
    lambda stack, data: check_otlp_endpoint(stack),
    check_prometheus,
    lambda stack, data: check_collector(stack),
    check_grafana,
    lambda stack, data: check_datasources(stack),
    lambda stack, data: check_bind_mounts(stack),
    lambda stack, data: check_healthchecks(stack),
    lambda stack, data: check_literal_secrets(stack),
    check_operations,
    check_builds,
    lambda stack, data: check_stop_grace(stack),
    check_distribution_defaults,
    lambda stack, data: check_grafana_data(stack),
    lambda stack, data: check_logs(stack),
)


def check_stack(stack: Stack, data: ReleaseData) -> list[str]:
    """Every policy at once, a policy that cannot run reported as a finding; defaults assumed.
    The artefact tests run it on docker/ and on broken copies (the gate does not call it)."""
    out: list[str] = []
    for policy in POLICIES:
        try:
            out += policy(stack, data)
        except (ComposeError, ProblemsError, OSError) as exc:
            # A config file that is missing or unreadable: say so, keep checking the rest.
            out.append(str(exc))
    return out
