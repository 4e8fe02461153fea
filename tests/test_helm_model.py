"""The Helm model keeps a release as Helm keeps it: in the namespace HELM_NAMESPACE names when
no -n is given, with the values an upgrade reuses, each revision's objects for a rollback, and
the test pod only once `helm test` made it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from betrace_dist.gate.commands import models
from betrace_dist.gate.session import CommandError, Session
from betrace_dist.gate.shellwords import split

from .conftest import require_tool

REGISTRY = "registry.example.com/betrace"
INSTALL = f"helm install betrace ./helm/betrace --create-namespace --set image.registry={REGISTRY}"


@pytest.fixture
def session() -> Iterator[Session]:
    require_tool("helm")
    require_tool("kubectl")
    s = Session(timeout=60)
    yield s
    s.close()


def run(session: Session, script: str) -> None:
    session.run(split(script), models())


def test_helm_namespace_exported_is_where_helm_installs(session: Session) -> None:
    """Helm takes HELM_NAMESPACE as -n's default: the release, its objects and the commands
    that name it without -n are in that namespace (the model put them in "default")."""
    run(
        session,
        f"export HELM_NAMESPACE=betrace\n{INSTALL}\nhelm status betrace\n"
        "kubectl -n betrace get deploy betrace-backend\n",
    )
    assert ("betrace", "betrace") in session.world.releases


def test_kubectl_does_not_read_helm_namespace(session: Session) -> None:
    run(session, f"export HELM_NAMESPACE=betrace\n{INSTALL}\n")
    with pytest.raises(
        CommandError, match="no Deployment 'betrace-backend' in namespace 'default'"
    ):
        run(session, "kubectl get deploy betrace-backend\n")


def test_helm_namespace_reaches_helm_only_as_bash_passes_it(session: Session) -> None:
    """`HELM_NAMESPACE=x helm ...` is for that command alone; a plain assignment stays in the
    shell, so a later helm works in "default"."""
    run(session, f"HELM_NAMESPACE=betrace {INSTALL}\nhelm status betrace -n betrace\n")
    with pytest.raises(CommandError, match="no release 'betrace' in namespace 'default'"):
        run(session, "helm status betrace\n")
    run(
        session,
        "HELM_NAMESPACE=betrace\nhelm install other ./helm/betrace --set image.registry=r/b\n",
    )
    assert ("default", "other") in session.world.releases
