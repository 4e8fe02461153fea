"""`betrace-dist contract`: the release data agrees with upstream's API description and plugin
manifest, and every difference (in either direction) is reported at its line of releases.yaml.

Upstream's two files are read from `<parent of this repository>/shared/upstream/betrace-<commit>/`
(or the directory in BETRACE_UPSTREAM_DIR), never copied into the project. Without them the
agreement test is skipped with the reason (a failure under BETRACE_REQUIRE_TOOLS=1), and the
break tests run against documents written from the release data itself.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.cli import main
from betrace_dist.contract import contract
from betrace_dist.errors import ProblemsError
from betrace_dist.release import RELEASES_FILE, Body, Release, ReleaseData, load_release_data
from betrace_dist.yamlio import field_path, line_of, load_with_lines

from .conftest import skip_or_fail

ORIGINAL = RELEASES_FILE.read_text(encoding="utf-8")


def upstream_dir(data: ReleaseData) -> Path:
    override = os.environ.get("BETRACE_UPSTREAM_DIR")
    if override:
        return Path(override)
    return REPO_ROOT.parent / "shared" / "upstream" / f"betrace-{data.current.upstream.short}"


def _definition(defs: dict[str, Any], name: str, body: Body) -> dict[str, str]:
    props: dict[str, Any] = {}
    for field, kind in body.fields.items():
        props[field] = {"type": kind}
        if field in body.items:
            item = f"{name}_{field}"
            props[field]["items"] = _definition(defs, item, body.items[field])
        if field in body.values:
            props[field]["additionalProperties"] = {"type": body.values[field]}
    defs[name] = {"type": "object", "properties": props}
    return {"$ref": f"#/definitions/{name}"}


def swagger_from(release: Release) -> dict[str, Any]:
    """A Swagger 2.0 document that says what the release data says (for the break tests)."""
    defs: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for n, e in enumerate(release.backend.endpoints):
        if not e.contract:
            continue
        params: list[dict[str, Any]] = []
        for field, kind in (e.query.fields if e.query else {}).items():
            params.append({"name": field, "in": "query", "type": kind})
        if e.request:
            schema = _definition(defs, f"req{n}", e.request)
            params.append({"name": "body", "in": "body", "schema": schema})
        ok = {"schema": _definition(defs, f"res{n}", e.response)} if e.response else {}
        op = {"parameters": params, "responses": {"200": ok}}
        paths.setdefault(e.path, {})[e.method.lower()] = op
    return {"swagger": "2.0", "paths": paths, "definitions": defs}


def plugin_from(data: ReleaseData) -> dict[str, Any]:
    r = data.current
    return {
        "id": r.plugin.id,
        "type": r.plugin.type,
        "info": {"version": r.plugin.version},
        "includes": [{"type": "page", "path": r.plugin.page_path}],
        "dependencies": {"grafanaDependency": f">={r.grafana.upstream_minimum}"},
    }


@pytest.fixture
def upstream(tmp_path: Path, release_data: ReleaseData) -> tuple[Path, Path]:
    """Copies of upstream's swagger and plugin.json, or documents written from the data."""
    source = upstream_dir(release_data)
    swagger, plugin = tmp_path / "betrace.swagger.json", tmp_path / "plugin.json"
    if (source / "betrace.swagger.json").is_file() and (source / "plugin.json").is_file():
        swagger.write_bytes((source / "betrace.swagger.json").read_bytes())
        plugin.write_bytes((source / "plugin.json").read_bytes())
    else:
        swagger.write_text(json.dumps(swagger_from(release_data.current)))
        plugin.write_text(json.dumps(plugin_from(release_data)))
    return swagger, plugin


def edited(path: Path, change: Any) -> Path:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return path


def releases_copy(tmp_path: Path, old: str = "", new: str = "") -> Path:
    assert old in ORIGINAL, f"releases.yaml no longer contains {old!r}: update this test"
    path = tmp_path / "releases.yaml"
    path.write_text(ORIGINAL.replace(old, new, 1) if old else ORIGINAL)
    return path


def found(data: Path, swagger: Path, plugin: Path | None = None) -> list[str]:
    return [str(p) for p in contract(data, swagger, plugin)]


def line(path: Path, *loc: int | str) -> int:
    number = line_of(load_with_lines(path), loc)
    assert number is not None
    return number


def endpoint_index(data: ReleaseData, method: str, path: str) -> int:
    pairs = [(e.method, e.path) for e in data.current.backend.endpoints]
    return pairs.index((method, path))


def test_the_release_data_agrees_with_upstream(release_data: ReleaseData) -> None:
    source = upstream_dir(release_data)
    swagger, plugin = source / "betrace.swagger.json", source / "plugin.json"
    if not swagger.is_file() or not plugin.is_file():
        skip_or_fail(
            f"upstream's API description and plugin.json are not in {source} (set "
            "BETRACE_UPSTREAM_DIR to a directory holding both, taken at upstream.commit)"
        )
    assert found(RELEASES_FILE, swagger, plugin) == []
    assert main(["contract", "--openapi", str(swagger), "--plugin", str(plugin)]) == 0


def test_documents_written_from_the_data_agree_both_as_swagger_and_openapi3(
    tmp_path: Path, release_data: ReleaseData
) -> None:
    swagger = tmp_path / "s.json"
    swagger.write_text(json.dumps(swagger_from(release_data.current)))
    assert found(RELEASES_FILE, swagger) == []
    doc = swagger_from(release_data.current)
    text = json.dumps(doc).replace("#/definitions/", "#/components/schemas/")
    v3 = json.loads(text)
    v3 = {"openapi": "3.0.3", "paths": v3["paths"], "components": {"schemas": v3["definitions"]}}
    for item in v3["paths"].values():
        for op in item.values():
            body = [p for p in op["parameters"] if p["in"] == "body"]
            op["parameters"] = [
                {"name": p["name"], "in": "query", "schema": {"type": p["type"]}}
                for p in op["parameters"]
                if p["in"] == "query"
            ]
            if body:
                op["requestBody"] = {"content": {"application/json": body[0]}}
            if op["responses"]["200"]:
                op["responses"]["200"] = {"content": {"application/json": op["responses"]["200"]}}
    openapi3 = tmp_path / "v3.yaml"
    openapi3.write_text(json.dumps(v3))
    assert found(RELEASES_FILE, openapi3) == []


def test_a_renamed_request_field_is_reported_at_its_line(
    tmp_path: Path, upstream: tuple[Path, Path], release_data: ReleaseData
) -> None:
    data = releases_copy(
        tmp_path, "                  parentSpanId: string", "                  parentSpan: string"
    )
    n = endpoint_index(release_data, "POST", "/v1/spans")
    loc = ("releases", 0, "backend", "endpoints", n, "request", "items", "spans", "fields")
    problems = found(data, upstream[0])
    where = field_path(loc)
    assert (
        f"{data}:{line(data, *loc, 'parentSpan')}: {where}.parentSpan: betrace.swagger.json has "
        "no request body field 'parentSpan'" in "\n".join(problems)
    )
    assert (
        f"{data}:{line(data, *loc)}: releases[0].backend.endpoints[{n}].request.items.spans"
        ".fields: betrace.swagger.json has the request body field 'parentSpanId' (string), "
        "absent here" in problems
    )


def test_the_type_of_the_attribute_values_is_held_to_upstream(
    tmp_path: Path, upstream: tuple[Path, Path], release_data: ReleaseData
) -> None:
    """Span attributes map names to strings upstream (`additionalProperties`): the release
    data that drops that type, or gives another, is reported at its line."""
    n = endpoint_index(release_data, "POST", "/v1/spans")
    loc = ("releases", 0, "backend", "endpoints", n, "request", "items", "spans", "values")
    for new, ours in (("values: {attributes: integer}", "integer"), ("values: {}", "not typed")):
        data = releases_copy(tmp_path, "values: {attributes: string}", new)
        assert found(data, upstream[0]) == [
            f"{data}:{line(data, *loc)}: {field_path(loc)}: the values of 'attributes' are "
            f"{ours} here, string in betrace.swagger.json"
        ]


def test_a_path_missing_upstream_is_reported_at_the_endpoint(
    tmp_path: Path, upstream: tuple[Path, Path], release_data: ReleaseData
) -> None:
    swagger = edited(upstream[0], lambda d: d["paths"].pop("/v1/violations"))
    n = endpoint_index(release_data, "GET", "/v1/violations")
    at = line(RELEASES_FILE, "releases", 0, "backend", "endpoints", n, "path")
    assert found(RELEASES_FILE, swagger) == [
        f"releases.yaml:{at}: releases[0].backend.endpoints[{n}].path: "
        "GET /v1/violations is not in betrace.swagger.json"
    ]


def test_a_path_only_upstream_has_is_reported(upstream: tuple[Path, Path]) -> None:
    swagger = edited(
        upstream[0],
        lambda d: d["paths"].setdefault("/v1/rules:import", {}).update({"post": {}}),
    )
    at = line(RELEASES_FILE, "releases", 0, "backend", "endpoints")
    assert found(RELEASES_FILE, swagger) == [
        f"releases.yaml:{at}: releases[0].backend.endpoints: "
        "betrace.swagger.json has POST /v1/rules:import, absent here"
    ]


def test_a_response_field_only_upstream_has_is_reported(
    upstream: tuple[Path, Path], release_data: ReleaseData
) -> None:
    def add_field(doc: dict[str, Any]) -> None:
        op = doc["paths"]["/v1/spans"]["post"]["responses"]["200"]["schema"]["$ref"]
        doc["definitions"][op.rsplit("/", 1)[1]]["properties"]["dropped"] = {"type": "integer"}

    n = endpoint_index(release_data, "POST", "/v1/spans")
    loc = ("releases", 0, "backend", "endpoints", n, "response", "fields")
    assert found(RELEASES_FILE, edited(upstream[0], add_field)) == [
        f"releases.yaml:{line(RELEASES_FILE, *loc)}: releases[0].backend.endpoints[{n}].response"
        ".fields: betrace.swagger.json has the response field 'dropped' (integer), absent here"
    ]


def test_metrics_is_kept_out_of_the_contract_with_a_reason(
    tmp_path: Path, upstream: tuple[Path, Path], release_data: ReleaseData
) -> None:
    metrics = next(e for e in release_data.current.backend.endpoints if e.path == "/metrics")
    assert not metrics.contract and metrics.contract_note
    swagger = edited(upstream[0], lambda d: d["paths"].update({"/metrics": {"get": {}}}))
    n = endpoint_index(release_data, "GET", "/metrics")
    at = line(RELEASES_FILE, "releases", 0, "backend", "endpoints", n, "contract")
    assert found(RELEASES_FILE, swagger) == [
        f"releases.yaml:{at}: releases[0].backend.endpoints[{n}].contract: GET /metrics is "
        "marked contract: false, but betrace.swagger.json lists it: remove contract: false"
    ]


def test_contract_false_without_a_reason_is_refused(
    tmp_path: Path, release_data: ReleaseData
) -> None:
    # the current release's (the first; older releases keep their own)
    pattern = r"          contract_note: >-\n(?:            .*\n)+"
    text, count = re.subn(pattern, "", ORIGINAL, count=1)
    assert count == 1, "releases.yaml no longer has a contract_note: update this test"
    data = tmp_path / "releases.yaml"
    data.write_text(text)
    with pytest.raises(ProblemsError) as info:
        load_release_data(data)
    n = endpoint_index(release_data, "GET", "/metrics")
    at = line(data, "releases", 0, "backend", "endpoints", n)
    assert f"{data}:{at}: releases[0].backend.endpoints[{n}]: contract: false needs a " in str(
        info.value
    )


def test_a_changed_plugin_version_is_reported_at_its_line(
    tmp_path: Path, upstream: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = edited(upstream[1], lambda d: d["info"].update({"version": "0.2.0"}))
    at = line(RELEASES_FILE, "releases", 0, "plugin", "version")
    expected = (
        f"releases.yaml:{at}: releases[0].plugin.version: '0.1.0' here, info.version is "
        "'0.2.0' in plugin.json"
    )
    assert found(RELEASES_FILE, upstream[0], plugin) == [expected]
    code = main(["contract", "--openapi", str(upstream[0]), "--plugin", str(plugin)])
    assert code == 1 and capsys.readouterr().out.splitlines() == [expected]


def test_a_changed_grafana_dependency_is_reported_at_the_upstream_minimum(
    upstream: tuple[Path, Path],
) -> None:
    plugin = edited(
        upstream[1], lambda d: d["dependencies"].update({"grafanaDependency": ">=10.0.0"})
    )
    at = line(RELEASES_FILE, "releases", 0, "grafana", "upstream_minimum")
    assert found(RELEASES_FILE, upstream[0], plugin) == [
        f"releases.yaml:{at}: releases[0].grafana.upstream_minimum: '9.0.0' here (>=9.0.0), "
        "grafanaDependency is '>=10.0.0' in plugin.json"
    ]


def test_an_unreadable_document_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"paths": }')
    assert main(["contract", "--openapi", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(f"{bad}:1: invalid JSON: Expecting value")
