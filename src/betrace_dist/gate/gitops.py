"""Argo CD Applications and Flux HelmReleases (with their GitRepository), as a page applies them.

kubernetes-validate knows Kubernetes' own kinds only, so these are checked against JSON Schemas
written from the upstream CRDs at pinned versions (artefacts/crd_schemas.py). Beyond the schema,
the gate checks what makes such an object work with this project: it takes the
chart from this repository at the release's tag, and its values render with the real Helm to the
same objects every time (a GitOps tool renders the chart over and over; the chart's generated
secrets, read back with `lookup`, change at every render where `lookup` sees no cluster).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..artefacts.chart_policy import parse_manifests
from ..artefacts.crd_schemas import kind_of, kinds
from ..release import ReleaseData

CHART_PATH = "helm/betrace"


def modelled(doc: dict[str, Any]) -> bool:
    """True for the GitOps kinds this module checks: those of crd_schemas' `gitops` file."""
    return kind_of(doc) in kinds("gitops")


def _get(doc: Any, *path: str) -> Any:
    for part in path:
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def source_problems(doc: dict[str, Any], data: ReleaseData) -> list[str]:
    """The chart must come from this repository, at the tag of the release the page describes."""
    repo, tag = data.project.distribution_repository, f"v{data.current.version}"
    kind = doc.get("kind")
    wanted: list[tuple[tuple[str, ...], str]] = []
    if kind == "Application":
        wanted = [(("spec", "source", "repoURL"), repo), (("spec", "source", "path"), CHART_PATH)]
        wanted.append((("spec", "source", "targetRevision"), tag))
    elif kind == "GitRepository":
        wanted = [(("spec", "url"), repo), (("spec", "ref", "tag"), tag)]
    elif kind == "HelmRelease":
        wanted = [(("spec", "chart", "spec", "chart"), f"./{CHART_PATH}")]
    out = []
    for path, value in wanted:
        found = _get(doc, *path)
        if str(found).removesuffix(".git") != value:
            out.append(f"{kind} {'.'.join(path)}: '{found}', expected '{value}'")
    return out + (_argo_problems(doc) if kind == "Application" else [])


#: What every Argo CD install has, and all a page can name without making more (it makes no
#: AppProject and registers no cluster): pkg/apis/application/v1alpha1/application_defaults.go of
#: argoproj/argo-cd v3.5.1 (commit 109ca7ca), DefaultAppProjectName, KubernetesInternalAPIServerAddr
#: and KubernetesInClusterName, the cluster Argo CD runs in.
ARGO_PROJECT = "default"
ARGO_IN_CLUSTER = {"server": "https://kubernetes.default.svc", "name": "in-cluster"}


#: The namespace Argo CD runs in, as its getting-started guide installs it, and the only one whose
#: Applications it reconciles until "Applications in any namespace" (a beta feature, off by
#: default) is set up: docs/operator-manual/app-any-namespace.md, read in a copy of Argo CD's
#: documentation whose version is not known (not run here).
ARGO_NAMESPACE = "argocd"


def argo_namespace_problem(doc: dict[str, Any], namespace: str) -> str | None:
    """An Application made outside Argo CD's own namespace is never reconciled."""
    if doc.get("kind") != "Application" or namespace == ARGO_NAMESPACE:
        return None
    return (
        f"Application in namespace '{namespace}': Argo CD reconciles Applications only in its "
        f"own namespace, '{ARGO_NAMESPACE}' as its guide installs it, unless \"Applications in "
        'any namespace" is set up for that one; put metadata.namespace: argocd'
    )


def _argo_problems(doc: dict[str, Any]) -> list[str]:
    """An Application's project and destination cluster must be ones Argo CD has: else its
    controller marks it ("Application referencing project X which does not exist",
    controller/appcontroller.go; `cluster "X" not found`, util/db/cluster.go) and never syncs."""
    out = []
    project = _get(doc, "spec", "project")
    if project != ARGO_PROJECT:
        out.append(
            f"Application spec.project: '{project}' is no project of an Argo CD install, which "
            f"has only '{ARGO_PROJECT}' until one is made: the controller answers \"Application "
            f'referencing project {project} which does not exist" and never syncs it'
        )
    destination = _get(doc, "spec", "destination") or {}
    for key, value in ARGO_IN_CLUSTER.items():
        given = destination.get(key) if isinstance(destination, dict) else None
        if given is not None and given != value:
            out.append(
                f"Application spec.destination.{key}: '{given}' is no cluster Argo CD knows; "
                f"the cluster it runs in is {key} '{value}', and another must be registered "
                f'first: the controller answers cluster "{given}" not found'
            )
    return out


def chart_values(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The BeTrace chart values the object hands Helm, or None when it carries none."""
    if doc.get("kind") == "Application":
        return _get(doc, "spec", "source", "helm", "valuesObject") or {}
    if doc.get("kind") == "HelmRelease":
        return _get(doc, "spec", "values") or {}
    return None


def release_name(doc: dict[str, Any]) -> str:
    """The Helm release the tool makes: Argo CD's releaseName or the Application's name;
    Flux's releaseName or `<targetNamespace->name` (helm-controller's default)."""
    meta = doc.get("metadata") or {}
    if doc.get("kind") == "Application":
        return str(_get(doc, "spec", "source", "helm", "releaseName") or meta.get("name"))
    target = _get(doc, "spec", "targetNamespace")
    default = f"{target}-{meta.get('name')}" if target else str(meta.get("name"))
    return str(_get(doc, "spec", "releaseName") or default)


def unstable_objects(render: Callable[[], str]) -> list[str]:
    """Objects that differ between two renders of the same values ("Kind/name")."""
    first, second = _by_object(render()), _by_object(render())
    return sorted(
        name for name in first.keys() | second.keys() if first.get(name) != second.get(name)
    )


def _by_object(text: str) -> dict[str, str]:
    return {f"{m.kind}/{m.name}": json.dumps(m.doc, sort_keys=True) for m in parse_manifests(text)}
