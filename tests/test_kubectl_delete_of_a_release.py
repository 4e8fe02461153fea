"""`kubectl delete` of an object a Helm release made: it leaves the cluster (the release keeps
its record), the pods of a deleted workload go with it, and the release's next upgrade or
rollback creates it again."""

from __future__ import annotations

import pytest

from betrace_dist.gate.session import CommandError, Session

from .conftest import backend_image, run

REGISTRY = "registry.example.com/betrace"

pytestmark = pytest.mark.gate_session(tools=("helm", "kubectl"), timeout=60)

FORWARD = "kubectl -n betrace port-forward svc/betrace-backend 12011:12011 &\nsleep 1\n"
HEALTH = "curl -fsS http://localhost:12011/v1/health\n"
DELETE = "kubectl delete deployment betrace-backend -n betrace\n"


def _install(session: Session, verb: str = "install") -> str:
    """The Kubernetes guide's build of the backend image and the chart's install (or, with
    verb="upgrade", an upgrade with the same values), waiting for its pods (test_readiness)."""
    build = backend_image(session, REGISTRY)
    return (build if verb == "install" else "") + (
        f"helm {verb} betrace ./helm/betrace --namespace betrace"
        + (" --create-namespace" if verb == "install" else "")
        + f" --wait --set image.registry={REGISTRY}\n"
    )


def test_a_port_forward_to_the_service_of_a_deleted_deployment_is_refused(
    session: Session,
) -> None:
    """The Deployment's pods went with it: the Service selects none, and kubectl port-forward
    waits for one until it times out. The model still had the chart's Deployment."""
    with pytest.raises(CommandError, match=r"selects no pod.*timed out waiting for the condition"):
        run(session, _install(session) + DELETE + FORWARD)


def test_a_port_forward_to_a_deleted_deployment_says_it_was_deleted(session: Session) -> None:
    with pytest.raises(CommandError, match=r"no Deployment 'betrace-backend'.*kubectl delete"):
        run(
            session,
            _install(session)
            + DELETE
            + "kubectl -n betrace port-forward deploy/betrace-backend 12011:12011 &\n",
        )


def test_a_forward_to_a_pod_of_a_deleted_deployment_stops_answering(session: Session) -> None:
    """kubectl port-forward loses its pod when the Deployment goes: a curl through it fails."""
    run(session, _install(session) + FORWARD + HEALTH)
    with pytest.raises(CommandError, match="lost connection to pod"):
        run(session, DELETE + HEALTH)


@pytest.mark.parametrize("again", ["upgrade", "rollback"])
def test_an_upgrade_or_rollback_after_a_delete_creates_the_object_again(
    session: Session, again: str
) -> None:
    """Helm's Update creates an object of the release's manifest that the cluster lacks."""
    restore = (
        _install(session, "upgrade")
        if again == "upgrade"
        else _install(session, "upgrade") + DELETE + "helm rollback betrace 1 -n betrace --wait\n"
    )
    run(session, _install(session) + DELETE + restore + FORWARD + HEALTH)


def test_deleting_a_release_object_no_pod_needs_removes_it(session: Session) -> None:
    """A Service of the release no pod needs is deleted: it is gone from the cluster (a later
    get is refused), and the release's uninstall does not fail over it."""
    run(session, _install(session) + "kubectl delete svc betrace-grafana -n betrace\n")
    with pytest.raises(CommandError, match=r"no Service 'betrace-grafana'.*kubectl delete"):
        run(session, "kubectl get svc betrace-grafana -n betrace\n")
    run(session, "helm uninstall betrace --namespace betrace\n")


def test_a_claim_is_deleted_once_the_deployment_that_mounts_it_is(session: Session) -> None:
    """Once the backend's Deployment is deleted no pod mounts its claim, which may go too; and
    the release's uninstall, which keeps its claims (helm.sh/resource-policy: keep), does not
    bring the deleted one back."""
    run(
        session,
        _install(session)
        + DELETE
        + "kubectl delete pvc betrace-backend -n betrace\n"
        + "helm uninstall betrace --namespace betrace\n"
        + "kubectl get pvc betrace-grafana -n betrace\n",
    )
    with pytest.raises(CommandError, match="no PersistentVolumeClaim 'betrace-backend'"):
        run(session, "kubectl get pvc betrace-backend -n betrace\n")


def test_a_forward_keeps_its_pod_through_an_upgrade_that_leaves_the_pod_template(
    session: Session,
) -> None:
    """A Deployment replaces its pods only when its pod template changes: an upgrade with the
    same values leaves the forwarded pod running, and the forward answers."""
    run(session, _install(session) + FORWARD + HEALTH + _install(session, "upgrade") + HEALTH)


def test_a_forward_ends_with_an_upgrade_that_replaces_its_pod(session: Session) -> None:
    """A new pod annotation changes the pod template: the Deployment replaces the pod, and the
    forward to the old one ends."""
    run(session, _install(session) + FORWARD + HEALTH)
    upgrade = _install(session, "upgrade").replace("\n", " --set backend.podAnnotations.a=b\n")
    with pytest.raises(CommandError, match="lost connection to pod"):
        run(session, upgrade + HEALTH)


def test_deleting_the_namespace_of_a_release_deletes_the_release(session: Session) -> None:
    """Helm keeps a release's record as Secrets of its namespace: once the namespace is gone,
    the release is too, and the same name installs again. The model kept the release and
    refused the install ("already exists"), and its objects still answered."""
    run(session, _install(session) + FORWARD + HEALTH)
    run(session, "kubectl delete namespace betrace\n")
    assert not session.world.releases
    with pytest.raises(CommandError, match="lost connection to pod"):
        run(session, HEALTH)
    run(session, _install(session) + "helm list -n betrace\n")
