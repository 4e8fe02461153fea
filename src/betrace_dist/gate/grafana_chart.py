"""The Grafana Helm chart (grafana-community/grafana) as the guides use it, offline.

The chart has no values.schema.json, so Helm installs happily with a misspelled key and the
setting silently does nothing. `data/grafana-chart-values.schema.yaml` is a JSON Schema of the
chart's values for one chart version; this module checks values files (`validate_values`, with
the jsonschema package, its errors said for a reader) and `--set` keys (`validate_set`, walking
the same schema) against it. It also reproduces the two facts of a release the guides rely on:
the name of its resources (`fullname`, the chart's `grafana.fullname` helper) and the port of
its Service (`service_port`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError
from ruamel.yaml import YAML

from ..names import is_number
from ..yamlio import type_name

#: Grafana's HTTP port: http_port of its [server] section, 3000 unless GF_SERVER_HTTP_PORT (its
#: variable for that key) says otherwise. Read in grafana/grafana's conf/defaults.ini (commit
#: 002060fd, a 10.x tree) and pkg/setting's EnvKey (GF_<SECTION>_<KEY>, upper case), not at the
#: pinned Grafana's tag; at their pinned versions, both charts' Grafana containers declare it.
GRAFANA_PORT, GRAFANA_PORT_VARIABLE = 3000, "GF_SERVER_HTTP_PORT"

SCHEMA_FILE = Path(__file__).parent / "data" / "grafana-chart-values.schema.yaml"

#: Kubernetes object names are DNS labels: at most 63 characters
_NAME_LIMIT = 63
#: JSON Schema's type names as a reader of a values file says them
_SAID = {"object": "map", "array": "list", "boolean": "bool", "integer": "int"}


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
class Schema:
    chart: ChartInfo
    root: dict[str, Any]  # the JSON Schema of the values
    validator: jsonschema.Draft7Validator


@dataclass(frozen=True)
class KeyProblem:
    """One finding: the dotted key path it concerns and a sentence for the reader."""

    key: str
    message: str
    where: tuple[str | int, ...] = ()  # the keys and indexes leading to it in the document

    def __str__(self) -> str:
        return self.message


# --- loading -------------------------------------------------------------------------------


def parse_schema(doc: Any) -> Schema:
    """A Schema from the loaded schema file: a valid draft-07 JSON Schema with x-chart naming
    the chart; SchemaError names the faulty spot (the path of keys to it)."""
    if not isinstance(doc, dict):
        raise SchemaError("the schema file must be a map")
    try:
        jsonschema.Draft7Validator.check_schema(doc)
    except jsonschema.SchemaError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "the schema"
        raise SchemaError(f"{where}: {exc.message}") from None
    chart = doc.get("x-chart")
    if not isinstance(chart, dict):
        raise SchemaError("the schema file has no 'x-chart' naming the chart it describes")
    for field in ("chart", "version", "app_version", "source"):
        if field not in chart:
            raise SchemaError(f"x-chart has no '{field}'")
    source = chart["source"] or {}
    info = ChartInfo(
        chart=str(chart["chart"]),
        version=str(chart["version"]),
        app_version=str(chart["app_version"]),
        repository=str(source.get("repository", "")),
        commit=str(source.get("commit", "")),
    )
    return Schema(info, doc, jsonschema.Draft7Validator(doc))


@cache
def schema() -> Schema:
    """The schema of the chart version the guides are checked against (loaded once)."""
    return parse_schema(YAML(typ="safe").load(SCHEMA_FILE.read_text(encoding="utf-8")))


# --- values files --------------------------------------------------------------------------


#: The names of the kinds a values file holds (bool before int: True is an int).
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


def _path(parts: Any) -> str:
    path = ""
    for part in parts:
        path = _join(path, part)
    return path


def _types(node: dict[str, Any]) -> list[str]:
    declared = node.get("type")
    if declared is None:
        return []
    return [_SAID.get(t, t) for t in ([declared] if isinstance(declared, str) else declared)]


def _suggest(key: str, choices: list[str]) -> str | None:
    lowered = {c.lower(): c for c in choices}
    if key.lower() in lowered:
        return lowered[key.lower()]
    match = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    return match[0] if match else None


def _unknown(prefix: str, key: str, node: dict[str, Any]) -> KeyProblem:
    path = _join(prefix, key)
    choices = sorted(node.get("properties") or {})
    message = f"unknown key '{path}' in the {schema().chart} values"
    guess = _suggest(key, choices)
    if guess is not None:
        message += f", did you mean '{_join(prefix, guess) if prefix else guess}'?"
    elif prefix:
        message += f"; '{prefix}' takes: {', '.join(choices)}"
    return KeyProblem(path, message)


def _wrong_type(error: ValidationError) -> KeyProblem:
    path = _path(error.absolute_path)
    names = [_with_article(t) for t in _types(error.schema)]
    wanted = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    message = f"expected {wanted} for '{path}', got {_with_article(_kind(error.instance))}"
    if error.schema.get("description"):
        message += f" ({error.schema['description']})"
    return KeyProblem(path, message)


def _problems(error: ValidationError) -> Iterator[tuple[list[Any], KeyProblem]]:
    """(where in the document, what the reader is told) of one jsonschema error."""
    if error.validator == "type" and error.instance is not None:  # null drops a default
        yield list(error.absolute_path), _wrong_type(error)
    elif error.validator == "additionalProperties":
        prefix = _path(error.absolute_path)
        known = error.schema.get("properties") or {}
        for key in error.instance:
            if str(key) not in known:
                yield [*error.absolute_path, key], _unknown(prefix, str(key), error.schema)


def _order(document: Any, where: list[Any]) -> list[int]:
    """Where a key sits in the document, as positions: problems are given in document order."""
    positions, node = [], document
    for part in where:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        positions.append(keys.index(part) if part in keys else len(keys))
        node = node[part] if part in keys else None
        if not isinstance(node, dict | list):
            break
    return positions


def validate_values(values: Any) -> list[KeyProblem]:
    """Every unknown key and wrong type in a values document, in document order."""
    if values is None:
        return []
    if not isinstance(values, dict):
        return [
            KeyProblem(
                "", f"a values file must be a map of keys, got {_with_article(_kind(values))}"
            )
        ]
    found = [
        problem for error in schema().validator.iter_errors(values) for problem in _problems(error)
    ]
    found.sort(key=lambda item: _order(values, item[0]))
    return [replace(problem, where=tuple(where)) for where, problem in found]


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


def _is_open(node: dict[str, Any]) -> bool:
    """Nothing below this key is checked: no type at all, or a map of any keys (freeform)."""
    free_map = "map" in _types(node) and "properties" not in node
    return not _types(node) or (free_map and not isinstance(node.get("additionalProperties"), dict))


def _accepts(node: dict[str, Any], kind: str) -> bool:
    types = _types(node)
    return not types or kind in types


def validate_set(path: str, value: str = "") -> list[KeyProblem]:
    """Check the key of one `--set key=value` assignment (the value is not looked at)."""
    del value  # --set, --set-string, --set-json and --set-file all share the key syntax
    parts = split_set_key(path.strip())
    if not parts or parts[0] == "":
        return [KeyProblem(path, f"'{path}' is not a values key")]
    node: dict[str, Any] | None = schema().root
    prefix = ""
    for position, part in enumerate(parts):
        if node is None or _is_open(node):
            return []
        if isinstance(part, int):
            if not _accepts(node, "list"):
                return [KeyProblem(prefix, f"'{prefix}' is not a list, it has no item [{part}]")]
            node, prefix = node.get("items"), _join(prefix, part)
            continue
        if not _accepts(node, "map"):
            kind = " or ".join(_types(node))
            return [
                KeyProblem(prefix, f"'{prefix}' is {_with_article(kind)}, it has no key '{part}'")
            ]
        if isinstance(node.get("additionalProperties"), dict):
            node, prefix = node["additionalProperties"], _join(prefix, part)
            continue
        keys = node.get("properties") or {}
        if part not in keys:
            return [_unknown_set_key(parts, position, prefix, node)]
        node, prefix = keys[part], _join(prefix, part)
    return []


def _unknown_set_key(
    parts: list[str | int], position: int, prefix: str, node: dict[str, Any]
) -> KeyProblem:
    part = str(parts[position])
    dotted = _dotted_key(parts, position, node.get("properties") or {})
    if dotted is None:
        return _unknown(prefix, part, node)
    escaped = dotted.replace(".", "\\.")
    return KeyProblem(
        _join(prefix, part),
        f"unknown key '{_join(prefix, part)}' in the {schema().chart} values: "
        f"the key is '{dotted}', and --set needs its dot escaped: {escaped}",
    )


def _dotted_key(parts: list[str | int], position: int, keys: dict[str, Any]) -> str | None:
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
        keys = node.get("properties") or {}
        if key not in keys:
            raise KeyError(f"no key '{'.'.join(path)}' in the {schema().chart} schema")
        node = keys[key]
    return node.get("default")


def service_port(values: dict[str, Any] | None = None) -> int:
    """Port of the release's Service: service.port, else the chart's default."""
    service = (values or {}).get("service")
    port = service.get("port") if isinstance(service, dict) else None
    if port is None:
        return int(default_of("service", "port"))
    if isinstance(port, bool) or not isinstance(port, int | str) or not is_number(str(port)):
        raise ValueError(f"service.port must be a port number, got {port!r}")
    return int(port)


# --- what the release's pod names ----------------------------------------------------------

#: grafana.ini's paths.provisioning in the chart's values.yaml (x-chart's commit)
PROVISIONING = "/etc/grafana/provisioning"


def _named(value: Any) -> str | None:
    """A name as written, or None when the chart would template it (`{{ ... }}`): not modelled."""
    text = str(value or "")
    return text if text and "{{" not in text else None


def _optional(item: dict[str, Any]) -> dict[str, Any]:
    return {"optional": True} if item.get("optional") else {}


def _list(values: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [i for i in values.get(key) or [] if isinstance(i, dict)]


def _extra_volume(item: dict[str, Any]) -> dict[str, Any] | None:
    """One extraVolumes item as the pod's volume: its existingClaim, hostPath, csi, configMap or
    emptyDir, the first given, and an emptyDir when none is (None: a templated claim)."""
    volume: dict[str, Any] = {"name": item.get("name")}
    if item.get("existingClaim"):
        name = _named(item.get("existingClaim"))
        return volume | {"persistentVolumeClaim": {"claimName": name}} if name else None
    for source in ("hostPath", "csi", "configMap", "emptyDir"):
        if item.get(source):
            return volume | {source: item[source]}
    return volume | {"emptyDir": {}}


def extra_volumes(values: dict[str, Any]) -> list[dict[str, Any]]:
    """extraConfigmapMounts, extraSecretMounts, extraVolumes and extraEmptyDirMounts as the
    pod's volumes, as templates/_pod.tpl (x-chart's commit) writes them."""
    out: list[dict[str, Any]] = []
    for item in _list(values, "extraConfigmapMounts"):
        if name := _named(item.get("configMap")):
            out.append({"name": item.get("name"), "configMap": {"name": name, **_optional(item)}})
    for item in _list(values, "extraSecretMounts"):
        if name := _named(item.get("secretName")):
            secret = {"secretName": name, **_optional(item)}
            out.append({"name": item.get("name"), "secret": secret})
    out += [v for v in map(_extra_volume, _list(values, "extraVolumes")) if v is not None]
    out += [{"name": i.get("name"), "emptyDir": {}} for i in _list(values, "extraEmptyDirMounts")]
    return out


def extra_mounts(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The grafana container's mounts of extraVolumes and extraEmptyDirMounts (templates/
    _pod.tpl: name, mountPath, and subPath for the first)."""
    out = [
        {k: i[k] for k in ("name", "mountPath", "subPath") if i.get(k)}
        for i in _list(values, "extraVolumeMounts")
    ]
    return out + [
        {k: i[k] for k in ("name", "mountPath") if i.get(k)}
        for i in _list(values, "extraEmptyDirMounts")
    ]


def dropped_volume_problem(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """Why the values of an upgrade keep a mount (extraVolumeMounts) of a volume that the
    release's previous values had and these no longer have, or None: the chart writes every
    mount into the grafana container and every extra volume into the pod (templates/_pod.tpl),
    so the pod would mount a volume it lacks, which the API server refuses (a volumeMount's
    name must be one of the pod's volumes: ValidateVolumeMounts' field.NotFound, read in copies
    of Kubernetes' pkg/apis/core/validation whose versions are not known; not run here), and the
    upgrade fails."""
    had = {v.get("name") for v in extra_volumes(before)}
    has = {v.get("name") for v in extra_volumes(after)}
    for mount in extra_mounts(after):
        name = mount.get("name")
        if name in had and name not in has:
            return (
                f"extraVolumeMounts still mounts '{name}', whose volume these values no longer "
                f"have (extraVolumes): the API server refuses the pod (volumeMounts[].name: Not "
                f'found: "{name}"); empty extraVolumeMounts as well'
            )
    return None


def pod_volumes(values: dict[str, Any], fullname: str) -> list[dict[str, Any]]:
    """The volumes of the Grafana pod that name a ConfigMap, Secret or claim, in Kubernetes'
    form, as the chart's templates/_pod.tpl (x-chart's commit) writes them from the values."""
    out = extra_volumes(values)
    dashboards = values.get("dashboardsConfigMaps") or {}
    for provider, cm in dashboards.items() if isinstance(dashboards, dict) else ():
        if name := _named(cm):
            out.append({"name": f"dashboards-{provider}", "configMap": {"name": name}})
    persistence = values.get("persistence") or {}
    if persistence.get("enabled") and persistence.get("type", "pvc") == "pvc":
        claim = _named(persistence.get("existingClaim")) or fullname
        out.append({"name": "storage", "persistentVolumeClaim": {"claimName": claim}})
    return out


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def image(values: dict[str, Any], app_version: str) -> str:
    """The grafana container's image as templates/_pod.tpl writes it without `image.sha` or
    `global.imageRegistry` (not modelled): registry/repository:tag, the tag defaulting to the
    chart's appVersion."""
    given: dict[str, Any] = values["image"] if isinstance(values.get("image"), dict) else {}
    part = {k: given.get(k) or default_of("image", k) for k in ("registry", "repository", "tag")}
    return f"{part['registry']}/{part['repository']}:{part['tag'] or app_version}"


def grafana_container(values: dict[str, Any], fullname: str, app_version: str) -> dict[str, Any]:
    """The grafana container's image, and its env and envFrom entries that read a Secret or
    ConfigMap, as templates/_pod.tpl writes them: the admin user and password (unless `env`
    sets them), the SMTP Secret, envFromSecret(s) and envFromConfigMaps."""
    env_values = values.get("env") or {}
    admin = values.get("admin") or {}
    given = admin.get("existingSecret")
    secret = _named(given) or fullname
    env: list[dict[str, Any]] = []
    # a templated name (`{{ .Release.Name }}-admin`) is the chart's tpl to resolve: not modelled
    templated = bool(given) and _named(given) is None
    for variable, key in () if templated else (("USER", "userKey"), ("PASSWORD", "passwordKey")):
        own = f"GF_SECURITY_ADMIN_{variable}"
        if not any(
            env_values.get(v)
            for v in (own, f"{own}__FILE", "GF_SECURITY_DISABLE_INITIAL_ADMIN_CREATION")
        ):
            env.append(_secret_env(own, secret, str(admin.get(key) or f"admin-{variable.lower()}")))
    smtp = values.get("smtp") or {}
    if name := _named(smtp.get("existingSecret")):
        env.append(_secret_env("GF_SMTP_USER", name, str(smtp.get("userKey") or "user")))
        env.append(
            _secret_env("GF_SMTP_PASSWORD", name, str(smtp.get("passwordKey") or "password"))
        )
    env_from: list[dict[str, Any]] = []
    if name := _named(values.get("envFromSecret")):
        env_from.append({"secretRef": {"name": name}})
    for item in _list(values, "envFromSecrets"):
        if name := _named(item.get("name")):
            env_from.append({"secretRef": {"name": name, **_optional(item)}})
    for item in _list(values, "envFromConfigMaps"):
        if name := _named(item.get("name")):
            env_from.append({"configMapRef": {"name": name, **_optional(item)}})
    container = {"name": "grafana", "image": image(values, app_version), "env": env}
    return container | {"ports": [{"containerPort": GRAFANA_PORT}], "envFrom": env_from}
