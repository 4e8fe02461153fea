"""The official Grafana Helm chart (grafana-community/grafana) as the guides use it, offline.

The chart has no values.schema.json, so Helm installs happily with a misspelled key and the
setting silently does nothing. `data/grafana-chart-values.yaml` holds a key schema of the chart's
values for one chart version; this module loads it and checks values files (`validate_values`)
and `--set` keys (`validate_set`) against it. It also reproduces the two facts of a release the
guides rely on: the name of its resources (`fullname`, the chart's `grafana.fullname` helper) and
the port of its Service (`service_port`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from ..yamlio import type_name

SCHEMA_FILE = Path(__file__).parent / "data" / "grafana-chart-values.yaml"

#: type names a schema node may use
TYPES = frozenset({"map", "list", "string", "bool", "int", "number", "any"})
_NODE_FIELDS = frozenset({"type", "keys", "freeform", "values", "items", "default", "note"})
#: Kubernetes object names are DNS labels: at most 63 characters
_NAME_LIMIT = 63


class SchemaError(ValueError):
    """The schema file itself is malformed."""


@dataclass(frozen=True)
class ChartInfo:
    """Which chart, at which version, the schema describes, and where it was read from."""

    chart: str
    version: str
    app_version: str
    repository: str
    commit: str

    @property
    def name(self) -> str:
        """The chart's own name (`grafana`), as the templates see it in .Chart.Name."""
        return self.chart.rpartition("/")[2]

    def __str__(self) -> str:
        return f"{self.chart} {self.version}"


@dataclass(frozen=True)
class Node:
    """The schema of one values key."""

    types: tuple[str, ...]
    keys: dict[str, Node] | None = None
    freeform: bool = False
    values: Node | None = None
    items: Node | None = None
    default: Any = None
    note: str = ""

    def accepts(self, kind: str) -> bool:
        if "any" in self.types:
            return True
        if kind == "int" and "number" in self.types:
            return True
        return kind in self.types

    @property
    def open(self) -> bool:
        """True when nothing below this key is checked."""
        return self.freeform or "any" in self.types


@dataclass(frozen=True)
class Schema:
    chart: ChartInfo
    root: Node


@dataclass(frozen=True)
class KeyProblem:
    """One finding: the dotted key path it concerns and a sentence for the reader."""

    key: str
    message: str

    def __str__(self) -> str:
        return self.message


# --- loading -------------------------------------------------------------------------------


def _parse_node(raw: Any, where: str) -> Node:
    if not isinstance(raw, dict):
        raise SchemaError(f"{where}: a key's schema must be a map, got {_kind(raw)}")
    unknown = set(raw) - _NODE_FIELDS
    if unknown:
        raise SchemaError(f"{where}: unknown schema field(s) {sorted(unknown)}")
    declared = raw.get("type")
    types = tuple(declared) if isinstance(declared, list) else (declared,)
    if not types or not all(isinstance(t, str) and t in TYPES for t in types):
        raise SchemaError(f"{where}: type must be one of {sorted(TYPES)} or a list of them")
    shapes = [f for f in ("keys", "freeform", "values") if raw.get(f) not in (None, False)]
    if shapes and "map" not in types:
        raise SchemaError(f"{where}: {shapes[0]} is only meaningful for a map")
    if "map" in types and len(shapes) != 1:
        raise SchemaError(f"{where}: a map needs exactly one of keys, freeform: true or values")
    if "items" in raw and "list" not in types:
        raise SchemaError(f"{where}: items is only meaningful for a list")
    keys = None
    if "keys" in raw:
        if not isinstance(raw["keys"], dict):
            raise SchemaError(f"{where}.keys: must be a map")
        keys = {str(k): _parse_node(v, _join(where, str(k))) for k, v in raw["keys"].items()}
    return Node(
        types=types,
        keys=keys,
        freeform=bool(raw.get("freeform", False)),
        values=_parse_node(raw["values"], f"{where}.<any>") if "values" in raw else None,
        items=_parse_node(raw["items"], f"{where}[]") if "items" in raw else None,
        default=raw.get("default"),
        note=str(raw.get("note", "")),
    )


def parse_schema(doc: Any) -> Schema:
    """Build a Schema from the loaded schema file; SchemaError names the faulty spot."""
    if not isinstance(doc, dict):
        raise SchemaError("the schema file must be a map")
    for field in ("chart", "version", "app_version", "source", "keys"):
        if field not in doc:
            raise SchemaError(f"the schema file has no '{field}'")
    source = doc["source"] or {}
    info = ChartInfo(
        chart=str(doc["chart"]),
        version=str(doc["version"]),
        app_version=str(doc["app_version"]),
        repository=str(source.get("repository", "")),
        commit=str(source.get("commit", "")),
    )
    root = _parse_node({"type": "map", "keys": doc["keys"]}, "")
    return Schema(info, root)


@cache
def schema() -> Schema:
    """The schema of the chart version the guides are checked against (loaded once)."""
    return parse_schema(YAML(typ="safe").load(SCHEMA_FILE.read_text(encoding="utf-8")))


# --- values files --------------------------------------------------------------------------


#: The schema's names of the kinds a values file holds (bool before int: True is an int).
_KINDS: dict[type, str] = {bool: "bool", int: "int", float: "number", str: "string"}
_KINDS |= {dict: "map", list: "list"}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return type_name(value, _KINDS) or type(value).__name__


def _with_article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _join(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    shown = f'"{key}"' if "." in key or not key else key
    return f"{prefix}.{shown}" if prefix else shown


def _suggest(key: str, choices: list[str]) -> str | None:
    lowered = {c.lower(): c for c in choices}
    if key.lower() in lowered:
        return lowered[key.lower()]
    match = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    return match[0] if match else None


def _unknown(prefix: str, key: str, node: Node) -> KeyProblem:
    path = _join(prefix, key)
    choices = sorted(node.keys or {})
    message = f"unknown key '{path}' in the {schema().chart} values"
    guess = _suggest(key, choices)
    if guess is not None:
        message += f", did you mean '{_join(prefix, guess) if prefix else guess}'?"
    elif prefix:
        message += f"; '{prefix}' takes: {', '.join(choices)}"
    return KeyProblem(path, message)


def _wrong_type(path: str, node: Node, value: Any, hint: str) -> KeyProblem:
    names = [_with_article(t) for t in node.types]
    wanted = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    message = f"expected {wanted} for '{path}', got {_with_article(_kind(value))}"
    if hint:
        message += f" ({hint})"
    return KeyProblem(path, message)


def _check(node: Node, value: Any, path: str, hint: str, out: list[KeyProblem]) -> None:
    if value is None:  # null deletes the chart's default in Helm: always allowed
        return
    kind = _kind(value)
    if not node.accepts(kind):
        out.append(_wrong_type(path, node, value, node.note or hint))
        return
    check_children = _CHILDREN.get(kind)
    if check_children is not None and not node.open:
        check_children(node, value, path, out)


def _check_map(node: Node, value: dict[Any, Any], path: str, out: list[KeyProblem]) -> None:
    """Each entry of a map: under a free map's value shape, or as one of the node's keys."""
    for raw_key, sub in value.items():
        key = str(raw_key)
        if node.values is not None:
            _check(node.values, sub, _join(path, key), node.note, out)
        elif node.keys is not None:
            if key in node.keys:
                _check(node.keys[key], sub, _join(path, key), "", out)
            else:
                out.append(_unknown(path, key, node))


def _check_list(node: Node, value: list[Any], path: str, out: list[KeyProblem]) -> None:
    """Each item of a list, when the node says what its items are."""
    if node.items is not None:
        for index, item in enumerate(value):
            _check(node.items, item, _join(path, index), node.note, out)


#: what is checked below a value of each kind (scalars have nothing below them)
_CHILDREN: dict[str, Callable[[Node, Any, str, list[KeyProblem]], None]] = {
    "map": _check_map,
    "list": _check_list,
}


def validate_values(values: Any) -> list[KeyProblem]:
    """Every unknown key and wrong type in a values document, in document order."""
    out: list[KeyProblem] = []
    if values is None:
        return out
    if not isinstance(values, dict):
        return [
            KeyProblem(
                "", f"a values file must be a map of keys, got {_with_article(_kind(values))}"
            )
        ]
    _check(schema().root, values, "", "", out)
    return out


# --- --set keys ----------------------------------------------------------------------------

_INDEX = re.compile(r"\[(\d+)\]$")


def split_set_key(key: str) -> list[str | int]:
    r"""Helm's --set key syntax: `a.b[0].c`, with `\.` for a dot inside a key name."""
    parts: list[str | int] = []
    current = ""
    escaped = False
    for char in key:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ".":
            parts.extend(_with_indexes(current))
            current = ""
        else:
            current += char
    parts.extend(_with_indexes(current))
    return parts


def _with_indexes(segment: str) -> list[str | int]:
    indexes: list[int] = []
    while match := _INDEX.search(segment):
        indexes.insert(0, int(match.group(1)))
        segment = segment[: match.start()]
    return [segment, *indexes]


def validate_set(path: str, value: str = "") -> list[KeyProblem]:
    """Check the key of one `--set key=value` assignment (the value is not looked at)."""
    del value  # --set, --set-string, --set-json and --set-file all share the key syntax
    parts = split_set_key(path.strip())
    if not parts or parts[0] == "":
        return [KeyProblem(path, f"'{path}' is not a values key")]
    node: Node | None = schema().root
    prefix = ""
    for position, part in enumerate(parts):
        if node is None or node.open:
            return []
        if isinstance(part, int):
            if not node.accepts("list"):
                return [KeyProblem(prefix, f"'{prefix}' is not a list, it has no item [{part}]")]
            node, prefix = node.items, _join(prefix, part)
            continue
        if not node.accepts("map"):
            kind = " or ".join(node.types)
            return [
                KeyProblem(prefix, f"'{prefix}' is {_with_article(kind)}, it has no key '{part}'")
            ]
        if node.values is not None:
            node, prefix = node.values, _join(prefix, part)
            continue
        keys = node.keys or {}
        if part not in keys:
            dotted = _dotted_key(parts, position, keys)
            if dotted is None:
                return [_unknown(prefix, part, node)]
            escaped = dotted.replace(".", "\\.")
            return [
                KeyProblem(
                    _join(prefix, part),
                    f"unknown key '{_join(prefix, part)}' in the {schema().chart} values: "
                    f"the key is '{dotted}', and --set needs its dot escaped: {escaped}",
                )
            ]
        node, prefix = keys[part], _join(prefix, part)
    return []


def _dotted_key(parts: list[str | int], position: int, keys: dict[str, Node]) -> str | None:
    """The key with a dot in its name (grafana.ini) that the next --set segments spell, if any."""
    joined = str(parts[position])
    for following in parts[position + 1 :]:
        if isinstance(following, int):
            return None
        joined += f".{following}"
        if joined in keys:
            return joined
    return None


# --- facts of a release --------------------------------------------------------------------


def _trunc(name: str) -> str:
    """Helm's `trunc 63 | trimSuffix "-"`: cut to 63 characters, then drop one trailing dash."""
    return name[:_NAME_LIMIT].removesuffix("-")


def fullname(release_name: str, values: dict[str, Any] | None = None) -> str:
    """Name of the release's Deployment, Service and Secret (the `grafana.fullname` helper).

    fullnameOverride wins; otherwise the release name alone when it already contains the chart
    name (or nameOverride), else "<release>-<chart name>".
    """
    values = values or {}
    override = values.get("fullnameOverride")
    if override:
        return _trunc(str(override))
    name = str(values.get("nameOverride") or schema().chart.name)
    if name in release_name:
        return _trunc(release_name)
    return _trunc(f"{release_name}-{name}")


def default_of(*path: str) -> Any:
    """The chart's default for a key, e.g. default_of("service", "port") -> 80."""
    node = schema().root
    for key in path:
        if node.keys is None or key not in node.keys:
            raise KeyError(f"no key '{'.'.join(path)}' in the {schema().chart} schema")
        node = node.keys[key]
    return node.default


def service_port(values: dict[str, Any] | None = None) -> int:
    """Port of the release's Service: service.port, else the chart's default."""
    service = (values or {}).get("service")
    port = service.get("port") if isinstance(service, dict) else None
    if port is None:
        return int(default_of("service", "port"))
    if isinstance(port, bool) or not isinstance(port, int | str) or not str(port).isdigit():
        raise ValueError(f"service.port must be a port number, got {port!r}")
    return int(port)
