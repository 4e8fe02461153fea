"""Facts about kubectl the gate's model of it uses, re-observed in the kubectl `make tools`
installs (the version the gate models) where its source was read at another commit."""

from __future__ import annotations

from pathlib import Path

from betrace_dist.gate.commands.kubectl import APPLY_WARNING, DEFAULT_CONTAINER, NO_POD_TIMEOUT
from betrace_dist.gate.world import LOST_POD

from .conftest import require_tool


def test_the_installed_kubectl_reads_the_default_container_annotation() -> None:
    """kubectl exec's default container is read in podcmd.go at a commit of kubernetes, not at
    the installed version's tag: the annotation's name must at least be in that binary (a
    kubectl that dropped it would enter the first container, and the model would be wrong)."""
    binary = Path(require_tool("kubectl")).read_bytes()
    assert DEFAULT_CONTAINER.encode() in binary, (
        f"the installed kubectl has no '{DEFAULT_CONTAINER}': re-read its podcmd.go "
        "(gate/commands/kubectl.py _entered)"
    )


def test_the_installed_kubectl_warns_when_it_applies_over_an_object_it_did_not_apply() -> None:
    """The model refuses kubectl apply over an object without a last-applied configuration in
    kubectl's own words: the installed kubectl must print them (with its name for itself)."""
    binary = Path(require_tool("kubectl")).read_bytes()
    printed = APPLY_WARNING.replace("kubectl", "%[3]s").encode()
    assert printed in binary, "the installed kubectl words its warning otherwise: re-read apply.go"


def test_the_installed_kubectl_words_a_port_forward_without_a_pod_as_the_model_does() -> None:
    """A port-forward to a Service that selects no pod times out waiting for one, and one whose
    pod went away loses it: the model refuses both in kubectl's words (kubectl.py _some_pod,
    World.ended), which come from client-go, compiled into the installed kubectl."""
    binary = Path(require_tool("kubectl")).read_bytes()
    for words in (NO_POD_TIMEOUT, LOST_POD):
        assert words.encode() in binary, f"the installed kubectl has no '{words}'"
