"""Argo CD and Flux objects: the chart's source and tag come from the release data."""

from __future__ import annotations

from betrace_dist.gate import gitops
from betrace_dist.release import ReleaseData


def application(revision: str, repo: str) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "betrace", "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo, "targetRevision": revision, "path": "helm/betrace"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "betrace"},
        },
    }


def test_an_application_on_the_release_tag_passes(release_data: ReleaseData) -> None:
    doc = application(
        f"v{release_data.current.version}", release_data.project.distribution_repository
    )
    assert gitops.schema_problems(doc) == []
    assert gitops.source_problems(doc, release_data) == []
    assert gitops.release_name(doc) == "betrace"


def test_an_application_following_main_is_refused(release_data: ReleaseData) -> None:
    doc = application("main", release_data.project.distribution_repository)
    (problem,) = gitops.source_problems(doc, release_data)
    tag = f"v{release_data.current.version}"
    assert problem == f"Application spec.source.targetRevision: 'main', expected '{tag}'"


def test_a_missing_required_field_is_named(release_data: ReleaseData) -> None:
    doc = application("v1", release_data.project.distribution_repository)
    del doc["spec"]["project"]
    assert gitops.schema_problems(doc) == ["Application spec: 'project' is a required property"]


def test_flux_default_release_name_joins_target_namespace_and_name() -> None:
    doc = {"kind": "HelmRelease", "metadata": {"name": "betrace"}, "spec": {"targetNamespace": "b"}}
    assert gitops.release_name(doc) == "b-betrace"
