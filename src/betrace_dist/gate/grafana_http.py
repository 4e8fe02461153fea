"""Which HTTP paths a Grafana server answers, for the guides' curl calls and browser links.

The list lives in `data/grafana-http-paths.yaml`; each entry names where Grafana registers the
route. A `{name}` segment matches any single path segment, a final `*` one or more segments, and
a trailing slash is not significant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ruamel.yaml import YAML

PATHS_FILE = Path(__file__).parent / "data" / "grafana-http-paths.yaml"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
_PARAM = re.compile(r"^\{[A-Za-z_][A-Za-z0-9_]*\}$")


@dataclass(frozen=True)
class Endpoint:
    path: str
    methods: tuple[str, ...]
    source: str
    docs: str = ""

    @property
    def pattern(self) -> re.Pattern[str]:
        return _compile(self.path)

    def matches(self, path: str) -> bool:
        return self.pattern.match(_strip(path)) is not None


def _strip(path: str) -> str:
    """Drop query, fragment and a trailing slash: '/api/search/?query=x' -> '/api/search'."""
    path = path.split("#", 1)[0].split("?", 1)[0]
    return path.rstrip("/") or "/"


@cache
def _compile(path: str) -> re.Pattern[str]:
    if path == "/":
        return re.compile(r"^/$")
    parts = []
    segments = path.strip("/").split("/")
    for index, segment in enumerate(segments):
        if segment == "*" and index == len(segments) - 1:
            parts.append(r"[^/]+(?:/[^/]+)*")
        elif _PARAM.match(segment):
            parts.append(r"[^/]+")
        else:
            parts.append(re.escape(segment))
    return re.compile("^/" + "/".join(parts) + "$")


def _parse(doc: object) -> tuple[Endpoint, ...]:
    if not isinstance(doc, dict) or not isinstance(doc.get("endpoints"), list):
        raise ValueError(f"{PATHS_FILE.name}: expected a map with a list 'endpoints'")
    out: list[Endpoint] = []
    for index, raw in enumerate(doc["endpoints"]):
        where = f"{PATHS_FILE.name}: endpoints[{index}]"
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected a map")
        path, methods, source = raw.get("path"), raw.get("methods"), raw.get("source")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"{where}: path must start with '/'")
        if not isinstance(methods, list) or not methods or not set(methods) <= METHODS:
            raise ValueError(f"{where}: methods must be a list drawn from {sorted(METHODS)}")
        if not isinstance(source, str) or not source.strip():
            raise ValueError(f"{where}: every endpoint names its source")
        out.append(Endpoint(path, tuple(methods), source, str(raw.get("docs", ""))))
    return tuple(out)


@cache
def endpoints() -> tuple[Endpoint, ...]:
    """All endpoints of the data file, in file order (loaded once)."""
    return _parse(YAML(typ="safe").load(PATHS_FILE.read_text(encoding="utf-8")))


def paths() -> list[tuple[str, str]]:
    """(method, path template) pairs, e.g. ('GET', '/api/plugins/{pluginId}/settings')."""
    return [(method, e.path) for e in endpoints() for method in e.methods]


def served(method: str, path: str) -> bool:
    """Whether a Grafana server answers `method path` (query string and trailing slash ignored)."""
    method = method.upper()
    return any(method in e.methods and e.matches(path) for e in endpoints())
