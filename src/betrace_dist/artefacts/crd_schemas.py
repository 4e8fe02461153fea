"""Objects of kinds Kubernetes does not define, checked against JSON Schemas written from their
CustomResourceDefinitions at pinned versions (`data/crd-schemas/*.yaml`, each file naming its
sources): the GitOps objects a page applies (Argo CD, Flux), and the Gateway API route and the
Prometheus Operator's ServiceMonitor the chart renders. kubernetes-validate knows Kubernetes'
own kinds only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, ValidationError, validators
from ruamel.yaml import YAML

SCHEMAS_DIR = Path(__file__).parent / "data" / "crd-schemas"


@cache
def _files() -> dict[str, dict[str, Any]]:
    """Each schema file by its name (`gitops`, `gateway-api`): its kinds and definitions."""
    return {
        path.stem: YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        for path in sorted(SCHEMAS_DIR.glob("*.yaml"))
    }


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    """Every kind (`apiVersion/kind`) -> its schema, with the definitions of its file."""
    return {
        kind: {**schema, "definitions": raw.get("definitions", {})}
        for raw in _files().values()
        for kind, schema in raw["kinds"].items()
    }


def kinds(name: str) -> frozenset[str]:
    """The kinds (`apiVersion/kind`) that the schema file `name` describes."""
    return frozenset(_files()[name]["kinds"])


def kind_of(doc: dict[str, Any]) -> str:
    return f"{doc.get('apiVersion')}/{doc.get('kind')}"


def modelled(doc: dict[str, Any]) -> bool:
    """True for the kinds a schema here describes."""
    return isinstance(doc, dict) and kind_of(doc) in _schemas()


def _end_of_text(pattern: str) -> str:
    """The pattern with each `$` that ends it or an alternative made `\\Z`: the API server's
    regular expressions (Go's, CEL's) read `$` as the end of the text, Python's `re` also before
    a final newline, which would let `/a\\n` pass a path pattern."""
    return re.sub(r"(?<!\\)\$(?=\||\)|$)", r"\\Z", pattern)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not re.search(_end_of_text(pattern), instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


#: Draft 7, with `pattern` read as the API server reads it
_Validator = validators.extend(Draft7Validator, {"pattern": _pattern})


def schema_problems(doc: dict[str, Any]) -> list[str]:
    """Every place the object breaks its CRD's schema, as `Kind path: message`."""
    validator = _Validator(_schemas()[kind_of(doc)])
    out = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path))):
        path = ".".join(str(p) for p in error.path) or "(root)"
        out.append(f"{doc.get('kind')} {path}: {error.message}")
    return out
