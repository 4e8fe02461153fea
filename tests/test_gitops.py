"""Argo CD and Flux objects: the chart's source and tag come from the release data."""

from __future__ import annotations

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.artefacts import crd_schemas
from betrace_dist.gate import gitops
from betrace_dist.gate.session import CommandError, Session
from betrace_dist.release import ReleaseData

from .conftest import run


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
    assert crd_schemas.schema_problems(doc) == []
    assert gitops.source_problems(doc, release_data) == []
    assert gitops.release_name(doc) == "betrace"


def test_an_application_following_main_is_refused(release_data: ReleaseData) -> None:
    doc = application("main", release_data.project.distribution_repository)
    (problem,) = gitops.source_problems(doc, release_data)
    tag = f"v{release_data.current.version}"
    assert problem == f"Application spec.source.targetRevision: 'main', expected '{tag}'"


@pytest.mark.parametrize(
    ("where", "value", "said"),
    [
        (("project",), "betrace", "referencing project betrace which does not exist"),
        (
            ("destination", "server"),
            "https://kubernetes.default.svc:6443",
            'cluster "https://kubernetes.default.svc:6443" not found',
        ),
        (("destination", "name"), "prod", "the cluster it runs in is name 'in-cluster'"),
    ],
)
def test_an_application_naming_what_argo_cd_lacks_is_refused(
    release_data: ReleaseData, where: tuple[str, ...], value: str, said: str
) -> None:
    """Found by attacking the Kubernetes guide: a project or cluster the reader's Argo CD does
    not have passed, and the controller would never sync the Application."""
    doc = application(
        f"v{release_data.current.version}", release_data.project.distribution_repository
    )
    target = doc["spec"]
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    (problem,) = gitops.source_problems(doc, release_data)
    assert said in problem, problem


def test_a_missing_required_field_is_named(release_data: ReleaseData) -> None:
    doc = application("v1", release_data.project.distribution_repository)
    del doc["spec"]["project"]
    assert crd_schemas.schema_problems(doc) == [
        "Application spec: 'project' is a required property"
    ]


def test_flux_default_release_name_joins_target_namespace_and_name() -> None:
    doc = {"kind": "HelmRelease", "metadata": {"name": "betrace"}, "spec": {"targetNamespace": "b"}}
    assert gitops.release_name(doc) == "b-betrace"


# -- the guide's objects, applied in a page's session ---------------------------------------

GUIDE = REPO_ROOT / "docs" / "guides" / "deploy-on-kubernetes.md"

#: what the guide makes before its GitOps objects: the namespace and the Secrets they name
BEFORE = (
    "kubectl create namespace betrace\n"
    "kubectl create secret generic betrace-signature-key-credentials -n betrace "
    "--from-literal=signature-key=k\n"
    "kubectl create secret generic betrace-grafana-admin-credentials -n betrace "
    "--from-literal=admin-user=admin --from-literal=admin-password=p\n"
    "kubectl create secret docker-registry regcred -n betrace --docker-server=r "
    "--docker-username=u --docker-password=p\n"
)


def _guide_block(title: str) -> str:
    from betrace_dist.gate.lexer import blocks
    from betrace_dist.gate.render import Site

    text = Site(REPO_ROOT / "mkdocs.yml").render(GUIDE).text
    (found,) = [b.body for b in blocks(text) if b.attrs.get("title") == title]
    return str(found)


def _applied(file: str, body: str) -> str:
    return f"cat > {file} <<'YAML'\n{body}YAML\nkubectl apply -f {file}\n"


@pytest.mark.gate_session(tools=("helm", "kubectl"), timeout=60)
@pytest.mark.parametrize(
    ("file", "old", "new", "said"),
    [
        (
            "betrace-application.yaml",
            "  namespace: betrace\n",
            "  namespace: default\n",
            r"installs into namespace 'default', where Deployment '[\w-]+' needs Secret "
            r"'betrace-[\w-]+-credentials', which neither the chart nor an earlier step makes",
        ),
        (
            "betrace-flux.yaml",
            "kind: GitRepository\n        name:",
            "kind: HelmRepository\n        name:",
            r"sourceRef names HelmRepository 'betrace-distribution' in namespace 'flux-system', "
            r"which neither this file nor an earlier step makes",
        ),
        (
            "betrace-flux.yaml",
            "targetNamespace: betrace",
            "targetNamespace: default",
            r"installs into namespace 'default', where .* needs Secret",
        ),
    ],
    ids=["argo-destination", "flux-source-kind", "flux-target"],
)
def test_the_guides_gitops_objects_fail_where_the_tool_would(
    session: Session, file: str, old: str, new: str, said: str
) -> None:
    """The Argo CD Application sent to a namespace without the Secrets the guide made, and a
    Flux HelmRelease whose sourceRef names a kind nothing made, passed: their schemas hold."""
    body = _guide_block(file)
    assert old in body, f"{GUIDE.name}: no {old!r} in {file}"
    run(session, BEFORE + _applied(file, body))
    with pytest.raises(CommandError, match=said):
        run(session, _applied(file, body.replace(old, new, 1)))
