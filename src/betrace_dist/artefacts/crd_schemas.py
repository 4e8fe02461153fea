"""Objects of kinds Kubernetes does not define, checked against JSON Schemas written from their
CustomResourceDefinitions at pinned versions (`data/crd-schemas/*.yaml`, each file naming its
sources): the GitOps objects a page applies (Argo CD, Flux) and the Gateway API routes the chart
renders. kubernetes-validate knows Kubernetes' own kinds only."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from ruamel.yaml import YAML

SCHEMAS_DIR = Path(__file__).parent / "data" / "crd-schemas"


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    """Every kind (`apiVersion/kind`) -> its schema, with the definitions of its file."""
    kinds: dict[str, dict[str, Any]] = {}
    for path in sorted(SCHEMAS_DIR.glob("*.yaml")):
        raw = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        for kind, schema in raw["kinds"].items():
            kinds[kind] = {**schema, "definitions": raw.get("definitions", {})}
    return kinds


def kind_of(doc: dict[str, Any]) -> str:
    return f"{doc.get('apiVersion')}/{doc.get('kind')}"


def modelled(doc: dict[str, Any]) -> bool:
    """True for the kinds a schema here describes."""
    return isinstance(doc, dict) and kind_of(doc) in _schemas()


def schema_problems(doc: dict[str, Any]) -> list[str]:
    """Every place the object breaks its CRD's schema, as `Kind path: message`."""
    validator = Draft7Validator(_schemas()[kind_of(doc)])
    out = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path))):
        path = ".".join(str(p) for p in error.path) or "(root)"
        out.append(f"{doc.get('kind')} {path}: {error.message}")
    return out
