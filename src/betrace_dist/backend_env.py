"""What the backend makes of an environment variable, from the release data: one rule for every
place that sets the backend's environment (Compose files, Nix blocks, ...)."""

from __future__ import annotations

from urllib.parse import urlsplit

from .release import ReleaseData

OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"


def host_port(value: str) -> tuple[str | None, str, int | None]:
    """('http', 'tempo', 3200) from 'http://tempo:3200'; (None, 'tempo', 4317) from 'tempo:4317'."""
    if "://" in value:
        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError:  # not a number: report the URL, not a traceback
            port = None
        return parts.scheme, parts.hostname or "", port
    host, _, port = value.rpartition(":")
    if not host:
        return None, value, None
    return None, host.strip("[]"), int(port) if port.isdigit() else None


def name_problem(name: str, data: ReleaseData) -> str | None:
    """Why setting `name` for the backend is wrong (releases.yaml backend.env and not_read), as
    the rest of a sentence that starts with where the variable is set (`...environment.PORT`)."""
    backend = data.current.backend
    read = {var.name for var in backend.env}
    if name in backend.not_read:
        return f": betrace-backend does not read {name} (releases.yaml backend.not_read); remove it"
    if name not in read:
        return f" is not a variable betrace-backend reads; it reads {', '.join(sorted(read))}"
    return None


def otlp_scheme_problem(value: str) -> str | None:
    """The backend wants host:port for its OTLP endpoint; a URL fails at start-up. The rest of a
    sentence that starts with where the variable is set."""
    scheme, host, port = host_port(value)
    if scheme:
        return f" is '{value}': the backend wants host:port with no scheme, e.g. '{host}:{port}'"
    return None


def problem(name: str, value: str, data: ReleaseData) -> str | None:
    """The name first, then the value where the release data describes its form."""
    if found := name_problem(name, data):
        return found
    if name == OTLP_ENDPOINT:
        return otlp_scheme_problem(value)
    return None
