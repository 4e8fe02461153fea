"""Default host ports, the network and the log bound of the Compose stack, read from
docker/docker-compose.yml itself."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from ..artefacts import container_logs
from ..artefacts.compose import COMPOSE_FILE
from ..yamlio import load_with_lines, to_plain

_DEFAULT = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}")


def _resolve(text: str) -> str:
    # ${VAR:-default} -> default, innermost first (defaults may nest)
    while True:
        new = _DEFAULT.sub(lambda m: m[1], text)
        if new == text:
            return text
        text = new


@cache
def written() -> dict[str, Any]:
    """docker/docker-compose.yml as written (parsed once per build: macros.install clears the
    cache when the next build starts)."""
    found: dict[str, Any] = to_plain(load_with_lines(COMPOSE_FILE))
    return found


def services() -> dict[str, Any]:
    found: dict[str, Any] = written().get("services", {})
    return found


def default_network() -> str:
    """The network Compose puts the stack's services on: the default network's own `name:`,
    else `<project name>_default` (Compose's naming; the test holds it to what the real
    `docker compose config` prints)."""
    file = written()
    default = (file.get("networks") or {}).get("default") or {}
    if default.get("name"):
        return str(default["name"])
    if not file.get("name"):
        raise KeyError(f"{COMPOSE_FILE.name} has no top-level `name:`: its network's name varies")
    return f"{file['name']}_default"


def published_port(service: str, target: int | None = None) -> int:
    stack = services()
    if service not in stack:
        raise KeyError(
            f"the Compose stack has no service '{service}'; services: {', '.join(stack)}"
        )
    for entry in stack[service].get("ports", []):
        parts = _resolve(str(entry)).rsplit(":", 2)
        host, container = parts[-2], parts[-1].split("/")[0]
        if target is None or int(container) == target:
            return int(host)
    raise KeyError(f"the Compose service '{service}' publishes no port {target}")


def log_bound(service: str) -> container_logs.LogLimit:
    """The bound on a service's container log, refused when the service has none."""
    stack = services()
    if service not in stack:
        raise KeyError(
            f"the Compose stack has no service '{service}'; services: {', '.join(stack)}"
        )
    logging = stack[service].get("logging") or {}
    options = {k: _resolve(str(v)) for k, v in (logging.get("options") or {}).items()}
    try:
        return container_logs.limit(logging and {**logging, "options": options})
    except container_logs.LoggingProblem as exc:
        where = ".".join(("services", service, "logging", *exc.field))
        raise KeyError(f"{COMPOSE_FILE.name}: {where} {exc}") from None


def log_limit(service: str, part: str = "total") -> str:
    """How much log a service's container keeps ("200 MB"), or one part of that bound: "file",
    the size of one file, or "files", how many are kept; refused when the log is unbounded."""
    found = log_bound(service)
    parts = {
        "total": container_logs.amount(found.total_bytes),
        "file": container_logs.amount(found.file_bytes),
        "files": str(found.files),
    }
    if part not in parts:
        raise KeyError(f"no part '{part}' of a log bound; parts: {', '.join(parts)}")
    return parts[part]
