"""An image the page built reaches a cluster only once pushed to its registry.

A cluster's nodes pull images from their registry, not from the Docker of the machine that
built them. A page that builds the backend's image under the reader's registry and installs the
chart (or applies a manifest) with it, without `docker push`, passed: the pods would stay in
ImagePullBackOff. A container with imagePullPolicy Never, whose image must already be on its
node, is the page's own choice and is left to it.
"""

from __future__ import annotations

import pytest

from betrace_dist.gate.session import CommandError, Session
from betrace_dist.gate.world import World
from betrace_dist.release import ReleaseData

from .conftest import backend_image, run

pytestmark = pytest.mark.gate_session(tools=("helm", "kubectl"), timeout=60)

REGISTRY = "registry.example.com/betrace"


def _built(session: Session) -> str:
    """The guide's build of the backend's image, without its push."""
    return backend_image(session, REGISTRY).splitlines()[0] + "\n"


def _install(extra: str = "") -> str:
    return (
        "helm install betrace ./helm/betrace --namespace betrace --create-namespace "
        f"--set image.registry={REGISTRY}{extra}\n"
    )


def _pod(image: str, policy: str = "") -> str:
    pull = f", imagePullPolicy: {policy}" if policy else ""
    return (
        "cat > pod.yaml <<'EOF'\napiVersion: v1\nkind: Pod\nmetadata: {name: own}\n"
        f"spec: {{containers: [{{name: web, image: {image}{pull}}}]}}\nEOF\n"
        "kubectl apply -f pod.yaml\n"
    )


def _image(session: Session) -> str:
    return f"{REGISTRY}/backend:{session.release.current.version}"


def test_a_release_of_an_image_built_and_never_pushed_is_refused(session: Session) -> None:
    image = _image(session)
    with pytest.raises(
        CommandError,
        match=rf"helm install betrace: Deployment betrace-backend would pull {image}, which "
        rf"this page built but never pushed.*docker push {image} first",
    ):
        run(session, _built(session) + _install())


def test_a_release_of_an_image_built_and_pushed_passes(session: Session) -> None:
    run(session, backend_image(session, REGISTRY) + _install())


def test_a_dry_run_of_an_unpushed_image_pulls_nothing(session: Session) -> None:
    run(session, _built(session) + _install(" --dry-run=client"))


def test_a_manifest_of_an_image_built_and_never_pushed_is_refused(session: Session) -> None:
    image = _image(session)
    with pytest.raises(CommandError, match=rf"pod\.yaml: Pod own would pull {image}, which"):
        run(session, _built(session) + _pod(image))


def test_an_image_pushed_under_another_spelling_counts(session: Session) -> None:
    """Docker reads `docker.io/library/x:1` and `x:1` as one tag (names.canonical_image)."""
    run(
        session,
        "mkdir mine\nprintf 'FROM nginx:1.27\\n' > mine/Dockerfile\n"
        "docker build -t web:1 mine\ndocker push docker.io/library/web:1\n" + _pod("web:1"),
    )


def test_an_image_the_page_keeps_on_its_node_is_left_to_it(session: Session) -> None:
    run(session, _built(session) + _pod(_image(session), "Never"))


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/betrace-hq/betrace/plugin-init:2.0.0",
        "GHCR.IO/betrace-hq/betrace/plugin-init:2.0.0",
        "ghcr.io:443/betrace-hq/betrace/backend:2.0.0",
    ],
)
def test_an_unpublished_image_is_known_in_every_spelling_of_its_registry(
    image: str, release_data: ReleaseData
) -> None:
    """The review found the registry's host in capitals, or with HTTPS's port, passing."""
    assert not release_data.current.published, "the release is published: the check is off"
    doc = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"image": image}]}}
    found = World().unpublished([doc], release_data)
    assert found is not None and "has not published" in found
    other = {**doc, "spec": {"containers": [{"image": "registry.example.com/b/backend:2.0.0"}]}}
    assert World().unpublished([other], release_data) is None


def test_the_page_s_own_push_counts_in_every_spelling_of_its_registry(
    release_data: ReleaseData,
) -> None:
    """A push and a pull meet at the registry, which is one whatever the host's case or a
    written `:443` (names.registry_image); a push elsewhere does not count."""
    pulled = "ghcr.io/betrace-hq/betrace/backend:2.0.0"
    doc = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"image": pulled}]}}
    world = World()
    world.push("GHCR.io:443/betrace-hq/betrace/backend:2.0.0")
    assert world.unpublished([doc], release_data) is None
    elsewhere = World()
    elsewhere.push("ghcr.io:8443/betrace-hq/betrace/backend:2.0.0")
    assert elsewhere.unpublished([doc], release_data) is not None


def test_kubectl_create_of_an_unpublished_image_is_refused(session: Session) -> None:
    """The review found `kubectl create deployment --image=` of the project's image passing:
    the generator's object is held as an applied manifest is."""
    with pytest.raises(CommandError, match=r"Deployment load would pull .* has not published"):
        run(
            session,
            "kubectl create deployment load --image=ghcr.io/betrace-hq/betrace/backend:2.0.0\n",
        )
