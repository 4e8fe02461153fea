"""`betrace-dist contract`: the release data's API facts against upstream's own descriptions.

Compares the endpoints of a release (paths, methods, query, request and response fields) with an
OpenAPI document (Swagger 2.0, as upstream ships `api/openapi/betrace.swagger.json`, or OpenAPI 3),
and the plugin facts (id, type, version, page path, Grafana dependency) with a Grafana
`plugin.json`. Every difference, in either direction, is a Problem at the line of releases.yaml
that states (or should state) the fact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from . import REPO_ROOT
from .errors import Problem, ProblemsError
from .release import Body, Endpoint, Release, load_release_data
from .yamlio import field_path, line_of, load_with_lines

Loc = tuple[int | str, ...]
_METHODS = ("get", "put", "post", "delete", "patch")


@dataclass
class Schema:
    """Fields of one JSON object as upstream describes it."""

    fields: dict[str, str] = field(default_factory=dict)
    required: list[str] | None = None
    items: dict[str, Schema] = field(default_factory=dict)
    #: the type of every value of an object field that is a map (`additionalProperties`)
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class Operation:
    query: Schema | None = None
    request: Schema | None = None
    response: Schema | None = None


def load_document(path: Path) -> dict[str, Any]:
    """A JSON (or YAML) document, or a Problem naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProblemsError([Problem(path, None, f"cannot read: {exc.strerror}")]) from None
    try:
        doc = json.loads(text) if text.lstrip().startswith("{") else YAML(typ="safe").load(text)
    except json.JSONDecodeError as exc:
        raise ProblemsError([Problem(path, exc.lineno, f"invalid JSON: {exc.msg}")]) from None
    except YAMLError as exc:
        raise ProblemsError([Problem(path, None, f"invalid YAML: {exc}")]) from None
    if not isinstance(doc, dict):
        raise ProblemsError([Problem(path, 1, "the document is not a JSON object")])
    return doc


class _Resolver:
    """Schemas of an OpenAPI document, with `$ref`s followed (`#/definitions/...` in Swagger 2,
    `#/components/schemas/...` in OpenAPI 3)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in schema and seen < 32:
            node: Any = self.doc
            for part in str(schema["$ref"]).removeprefix("#/").split("/"):
                node = node.get(part.replace("~1", "/").replace("~0", "~"), {})
            schema, seen = node, seen + 1
        return schema

    def kind(self, schema: dict[str, Any]) -> str:
        schema = self.resolve(schema)
        if "type" in schema:
            return str(schema["type"])
        return "object" if "properties" in schema or "additionalProperties" in schema else "string"

    def schema(self, schema: dict[str, Any], depth: int = 0) -> Schema:
        schema = self.resolve(schema)
        out = Schema(required=list(schema["required"]) if "required" in schema else None)
        for name, prop in (schema.get("properties") or {}).items():
            out.fields[name] = self.kind(prop)
            value = self.resolve(prop).get("additionalProperties")
            if out.fields[name] == "object" and isinstance(value, dict):
                out.values[name] = self.kind(value)
            item = self.resolve(prop.get("items") or {})
            if out.fields[name] == "array" and item.get("properties") and depth < 4:
                out.items[name] = self.schema(item, depth + 1)
        return out


def _json_schema(container: dict[str, Any]) -> dict[str, Any] | None:
    """The schema of a Swagger 2 body/response, or of an OpenAPI 3 JSON content."""
    if "schema" in container:
        schema: dict[str, Any] = container["schema"]
        return schema
    content = container.get("content") or {}
    media = content.get("application/json") or next(iter(content.values()), None)
    return (media or {}).get("schema")


def _operation(r: _Resolver, path_item: dict[str, Any], op: dict[str, Any]) -> Operation:
    out = Operation()
    query = Schema()
    for param in [*path_item.get("parameters", []), *op.get("parameters", [])]:
        param = r.resolve(param)
        if param.get("in") == "query":
            query.fields[param["name"]] = r.kind(param.get("schema") or param)
        elif param.get("in") == "body" and param.get("schema"):
            out.request = r.schema(param["schema"])
    out.query = query if query.fields else None
    if "requestBody" in op:
        body = _json_schema(r.resolve(op["requestBody"]))
        out.request = r.schema(body) if body else None
    responses = op.get("responses") or {}
    ok = next((responses[c] for c in ("200", "201", 200, 201) if c in responses), None)
    schema = _json_schema(r.resolve(ok)) if ok else None
    out.response = r.schema(schema) if schema else None
    return out


def operations(doc: dict[str, Any]) -> dict[tuple[str, str], Operation]:
    """(METHOD, path) -> what upstream's API description says about that operation."""
    resolver = _Resolver(doc)
    found = {}
    for path, item in (doc.get("paths") or {}).items():
        for method in _METHODS:
            if method in item:
                found[(method.upper(), path)] = _operation(resolver, item, item[method])
    return found


class _Report:
    """Collects differences as Problems at lines of the release data file."""

    def __init__(self, path: Path, root: Any, upstream: str) -> None:
        self.path, self.root, self.upstream = path, root, upstream
        self.problems: list[Problem] = []

    def add(self, loc: Loc, message: str) -> None:
        self.problems.append(Problem(self.path, line_of(self.root, loc), message, field_path(loc)))


def _compare_body(
    rep: _Report, loc: Loc, ours: Body, theirs: Schema, what: str, items: bool
) -> None:
    _compare_fields(rep, loc, ours, theirs, what)
    if theirs.required is not None and sorted(theirs.required) != sorted(ours.required):
        rep.add(
            (*loc, "required"),
            f"required fields are {ours.required} here, {theirs.required} in {rep.upstream}",
        )
    _compare_items(rep, loc, ours, theirs, what, items)
    _compare_values(rep, loc, ours, theirs, items)


def _compare_values(rep: _Report, loc: Loc, ours: Body, theirs: Schema, every: bool) -> None:
    """The type of the values of map fields: ours must be upstream's, and (when `every`, for
    a request, whose body with another type is refused whole) each upstream gives must be
    here."""
    for name in sorted(set(ours.values) | set(theirs.values)):
        mine, upstream = ours.values.get(name), theirs.values.get(name)
        if mine != upstream and (every or mine is not None):
            rep.add(
                (*loc, "values"),
                f"the values of '{name}' are {mine or 'not typed'} here, "
                f"{upstream or 'not typed'} in {rep.upstream}",
            )


def _compare_fields(rep: _Report, loc: Loc, ours: Body, theirs: Schema, what: str) -> None:
    listed = ", ".join(theirs.fields) or "none"
    for name, kind in ours.fields.items():
        if name not in theirs.fields:
            rep.add(
                (*loc, "fields", name),
                f"{rep.upstream} has no {what} field '{name}' (its fields: {listed})",
            )
        elif theirs.fields[name] != kind:
            rep.add(
                (*loc, "fields", name),
                f"type is {kind} here, {theirs.fields[name]} in {rep.upstream}",
            )
    for name, their_kind in theirs.fields.items():
        if name not in ours.fields:
            rep.add(
                (*loc, "fields"),
                f"{rep.upstream} has the {what} field '{name}' ({their_kind}), absent here",
            )


def _compare_items(
    rep: _Report, loc: Loc, ours: Body, theirs: Schema, what: str, items: bool
) -> None:
    """The fields of array items: ours against theirs, and (when `items`) theirs we lack."""
    for name, sub in ours.items.items():
        if name in theirs.items:
            _compare_body(rep, (*loc, "items", name), sub, theirs.items[name], what, items)
    if items:
        for name, their_sub in theirs.items.items():
            if name not in ours.items:
                rep.add(
                    (*loc, "items"),
                    f"{rep.upstream} describes the items of '{name}' "
                    f"(fields: {', '.join(their_sub.fields)}), absent here",
                )


def _compare_part(
    rep: _Report, loc: Loc, part: str, ours: Body | None, theirs: Schema | None
) -> None:
    what = {"query": "query", "request": "request body", "response": "response"}[part]
    if ours is None and theirs is not None:
        rep.add(
            loc,
            f"{rep.upstream} gives this endpoint a {what} with the fields "
            f"{', '.join(theirs.fields) or '(none)'}; absent here (add `{part}:`)",
        )
    elif ours is not None and theirs is None:
        rep.add((*loc, part), f"{rep.upstream} describes no {what} for this endpoint")
    elif ours is not None and theirs is not None:
        _compare_body(rep, (*loc, part), ours, theirs, what, items=part == "request")


def _compare_endpoint(rep: _Report, loc: Loc, e: Endpoint, op: Operation | None) -> None:
    where = f"{e.method} {e.path}"
    if not e.contract:
        if op is not None:
            rep.add(
                (*loc, "contract"),
                f"{where} is marked contract: false, but "
                f"{rep.upstream} lists it: remove contract: false",
            )
        return
    if op is None:
        rep.add((*loc, "path"), f"{where} is not in {rep.upstream}")
        return
    _compare_part(rep, loc, "query", e.query, op.query)
    _compare_part(rep, loc, "request", e.request, op.request)
    _compare_part(rep, loc, "response", e.response, op.response)


def compare_api(rep: _Report, release: Release, index: int, doc: dict[str, Any]) -> None:
    upstream = operations(doc)
    base: Loc = ("releases", index, "backend", "endpoints")
    ours = set()
    for i, e in enumerate(release.backend.endpoints):
        ours.add((e.method, e.path))
        _compare_endpoint(rep, (*base, i), e, upstream.get((e.method, e.path)))
    for method, path in sorted(set(upstream) - ours):
        rep.add(base, f"{rep.upstream} has {method} {path}, absent here")


def compare_plugin(rep: _Report, release: Release, index: int, doc: dict[str, Any]) -> None:
    plugin: Loc = ("releases", index, "plugin")
    p = release.plugin
    info = doc.get("info") or {}
    for key, ours, theirs, name in (
        ("id", p.id, doc.get("id"), "id"),
        ("type", p.type, doc.get("type"), "type"),
        ("version", p.version, info.get("version"), "info.version"),
    ):
        if ours != theirs:
            rep.add((*plugin, key), f"'{ours}' here, {name} is '{theirs}' in {rep.upstream}")
    pages = [i.get("path") for i in doc.get("includes") or [] if i.get("type") == "page"]
    if p.page_path not in pages:
        rep.add(
            (*plugin, "page_path"),
            f"'{p.page_path}' is not a page of {rep.upstream} "
            f"(pages: {', '.join(map(str, pages)) or 'none'})",
        )
    for other in pages:
        if other != p.page_path:
            rep.add((*plugin, "page_path"), f"{rep.upstream} has the page '{other}', absent here")
    dependency = (doc.get("dependencies") or {}).get("grafanaDependency")
    if dependency != f">={release.grafana.upstream_minimum}":
        rep.add(
            ("releases", index, "grafana", "upstream_minimum"),
            f"'{release.grafana.upstream_minimum}' here "
            f"(>={release.grafana.upstream_minimum}), grafanaDependency is '{dependency}' in "
            f"{rep.upstream}",
        )


def _shown(path: Path) -> Path:
    """A path as a reader types it: relative to the repository when inside it."""
    try:
        return path.resolve().relative_to(REPO_ROOT)
    except ValueError:
        return path


def contract(data_path: Path, openapi: Path | None, plugin: Path | None = None) -> list[Problem]:
    """Every difference between the current release and the upstream documents given."""
    data = load_release_data(data_path)
    root = load_with_lines(data_path)
    shown = _shown(Path(data_path))
    problems: list[Problem] = []
    for doc_path, check in ((openapi, compare_api), (plugin, compare_plugin)):
        if doc_path is None:
            continue
        rep = _Report(shown, root, _shown(Path(doc_path)).name)
        check(rep, data.current, 0, load_document(Path(doc_path)))
        problems += rep.problems
    return problems
