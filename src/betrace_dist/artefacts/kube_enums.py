"""String fields of Kubernetes objects whose values are a fixed set of constants, which the API
server checks and the JSON Schemas the gate validates against do not: kubernetes-validate's
schemas carry no `enum`, so `restartPolicy: Sometimes` passes them while the API server refuses
the object with `Unsupported value: "Sometimes": supported values: ...`.

Each set of values is the constants of k8s.io/api at the tag of the kubectl the gate models
(kubectl v1.35.2 is built with k8s.io/api v0.35.2; kubernetes/api tag v0.35.2, commit
8a137cde6e07bb0d73e40cb0bf8d7d550507989f). Each message is the API server's, as
field.NotSupported (k8s.io/apimachinery pkg/util/validation/field/errors.go) writes it:
`<path>: Unsupported value: "<value>": supported values: "<a>", "<b>"`, the values in the order
pkg/apis/core/validation/validation.go and pkg/apis/apps/validation/validation.go give them
(a sets.List(...) of a package-level set is sorted; a literal list keeps its order).

A field left out, or empty, is defaulted by the API server before it validates, so neither is
a problem here; a value that is not a string is one the schema validation already reports.

One rule between two fields is here too, for the same reason (the schemas cannot hold it): a
container's request of a resource may not exceed its limit of it (validateResourceRequirements
in kubernetes/kubernetes pkg/apis/core/validation/validation.go, read at commit 000f2605; the
rule is as old as limits): `<path>.resources.requests: Invalid value: "<request>": must be less
than or equal to <resource> limit of <limit>`. The API server writes both quantities in their
canonical form; here they stand as the page wrote them.

Two more rules the schemas cannot hold are here. A Recreate Deployment has no rollingUpdate
settings: `spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is
'Recreate'` (the API server's message as the Kubernetes documentation shows it, "Update API
Objects in Place Using kubectl patch"; ValidateDeploymentStrategy, not read here). A
resourceFieldRef's divisor, given (not absent or zero), is in its canonical form one of
RESOURCE_DIVISORS for its resource (validateContainerResourceDivisor, in
pkg/apis/core/validation/validation.go at kubernetes/kubernetes@f9cfc9d9): `<path>.divisor:
Invalid value: "<resource>": only divisor's values ... are supported with the <name> resource`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import quantity
from ..names import go_quote

#: core/v1/types.go v0.35.2 lines 3636-3638 (RestartPolicyAlways, RestartPolicyOnFailure,
#: RestartPolicyNever); validateRestartPolicy lists them in this order
RESTART_POLICIES = ("Always", "OnFailure", "Never")
#: core/v1/types.go v0.35.2 lines 2758-2762 (PullAlways, PullNever, PullIfNotPresent);
#: validatePullPolicy reports sets.List(supportedPullPolicies), sorted
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
#: core/v1/types.go v0.35.2 lines 1245-1249 (ProtocolTCP, ProtocolUDP, ProtocolSCTP);
#: validateContainerPorts and validateServicePort report sets.List(supportedPortProtocols)
PROTOCOLS = ("SCTP", "TCP", "UDP")
#: core/v1/types.go v0.35.2 lines 5718-5732 (ServiceTypeClusterIP, ServiceTypeNodePort,
#: ServiceTypeLoadBalancer, ServiceTypeExternalName); ValidateService reports
#: supportedServiceType.List(), sorted
SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
#: apps/v1/types.go v0.35.2 lines 450-453 (RecreateDeploymentStrategyType,
#: RollingUpdateDeploymentStrategyType); ValidateDeploymentStrategy lists them in this order
STRATEGY_TYPES = ("Recreate", "RollingUpdate")
#: core/v1/types.go v0.35.2 lines 859-866 (ReadWriteOnce, ReadOnlyMany, ReadWriteMany,
#: ReadWriteOncePod); ValidatePersistentVolumeClaimSpec reports sets.List(supportedAccessModes)
#: at spec.accessModes (the list, not the item)
ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")

#: Where each kind keeps its pod's spec, and the restartPolicy values its controller allows
#: there (None: any of RESTART_POLICIES). A controller that keeps pods running wants "Always"
#: (pkg/apis/apps/validation: ValidatePodTemplateSpecForReplicaSet for a ReplicaSet and a
#: Deployment, ValidateStatefulSetSpec, ValidateDaemonSetSpec; pkg/apis/core/validation:
#: ValidatePodTemplateSpecForRC); a Job's, and so a CronJob's, pods "OnFailure" or "Never"
#: (pkg/apis/batch/validation: validateJobSpec, in that order).
POD_SPECS: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    "Pod": (("spec",), None),
    "PodTemplate": (("template", "spec"), None),
    "Deployment": (("spec", "template", "spec"), ("Always",)),
    "ReplicaSet": (("spec", "template", "spec"), ("Always",)),
    "StatefulSet": (("spec", "template", "spec"), ("Always",)),
    "DaemonSet": (("spec", "template", "spec"), ("Always",)),
    "ReplicationController": (("spec", "template", "spec"), ("Always",)),
    "Job": (("spec", "template", "spec"), ("OnFailure", "Never")),
    "CronJob": (("spec", "jobTemplate", "spec", "template", "spec"), ("OnFailure", "Never")),
}

#: The lists of a pod's spec that hold containers, each with the fields checked here
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def not_supported(path: str, value: str, supported: tuple[str, ...]) -> str:
    """The API server's words for a value outside `supported` (field.NotSupported)."""
    values = ", ".join(go_quote(v) for v in supported)
    return f"{path}: Unsupported value: {go_quote(value)}: supported values: {values}"


def _check(node: Any, key: str, path: str, supported: tuple[str, ...]) -> Iterator[str]:
    """The problem of `node[key]` when it is a string (not empty) outside `supported`."""
    value = node.get(key) if isinstance(node, dict) else None
    if isinstance(value, str) and value and value not in supported:
        yield not_supported(path, value, supported)


def _items(node: Any, key: str) -> Iterator[tuple[int, Any]]:
    """(index, item) of the list `node[key]`, none when it is not a list."""
    value = node.get(key) if isinstance(node, dict) else None
    if isinstance(value, list):
        yield from enumerate(value)


#: the divisors the API server takes for each resource a resourceFieldRef reads, and the name its
#: message gives the resource (validContainerResourceDivisorFor*: sets of canonical forms, so
#: they are compared by value here: 1000m is 1, and 1000 is 1k)
_MEMORY_DIVISORS = ("1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi",
                    "1Ei")  # fmt: skip
_DIVISORS_WRITTEN = {
    "cpu": (("1m", "1"), "cpu"),
    "memory": (_MEMORY_DIVISORS, "memory"),
    "ephemeral-storage": (_MEMORY_DIVISORS, "local ephemeral storage"),
}
RESOURCE_DIVISORS = {
    resource: {quantity.parse(d) for d in divisors}
    for resource, (divisors, _) in _DIVISORS_WRITTEN.items()
}


def _divisor(container: Any, path: str) -> Iterator[str]:
    """Each resourceFieldRef of the container's env with a divisor its resource does not take."""
    for j, entry in _items(container, "env"):
        ref = _at(entry, ("valueFrom", "resourceFieldRef"))
        resource = ref.get("resource") if isinstance(ref, dict) else None
        _, _, name = str(resource).partition(".")
        divisor = quantity.parse(ref.get("divisor")) if isinstance(ref, dict) else None
        if not divisor or name not in _DIVISORS_WRITTEN or divisor in RESOURCE_DIVISORS[name]:
            continue
        written, said = _DIVISORS_WRITTEN[name]
        where = f"{path}.env[{j}].valueFrom.resourceFieldRef.divisor"
        yield (
            f"{where}: Invalid value: {go_quote(str(resource))}: only divisor's values "
            f"{', '.join(written)} are supported with the {said} resource"
        )


def _recreate(strategy: Any) -> Iterator[str]:
    """A Recreate strategy with rollingUpdate settings, which the API server refuses; null is
    no settings."""
    recreate = isinstance(strategy, dict) and strategy.get("type") == "Recreate"
    if recreate and strategy.get("rollingUpdate") is not None:
        yield (
            "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy "
            "`type` is 'Recreate'"
        )


def _at(doc: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        doc = doc.get(key) if isinstance(doc, dict) else None
    return doc


def _pod_spec(doc: dict[str, Any], kind: str) -> Iterator[str]:
    keys, restart = POD_SPECS[kind]
    spec = _at(doc, keys)
    path = ".".join(keys)
    yield from _check(spec, "restartPolicy", f"{path}.restartPolicy", restart or RESTART_POLICIES)
    for field in CONTAINER_LISTS:
        for i, container in _items(spec, field):
            where = f"{path}.{field}[{i}]"
            yield from _check(
                container, "imagePullPolicy", f"{where}.imagePullPolicy", PULL_POLICIES
            )
            for j, port in _items(container, "ports"):
                yield from _check(port, "protocol", f"{where}.ports[{j}].protocol", PROTOCOLS)
            yield from _over_limit(container, f"{where}.resources.requests")
            yield from _divisor(container, where)


def _over_limit(container: Any, path: str) -> Iterator[str]:
    """Each request of the container above its limit of the same resource."""
    resources = _at(container, ("resources",))
    requests, limits = _at(resources, ("requests",)), _at(resources, ("limits",))
    if not isinstance(requests, dict) or not isinstance(limits, dict):
        return
    for name, request in requests.items():
        wanted, limit = quantity.parse(request), quantity.parse(limits.get(name))
        if wanted is not None and limit is not None and wanted > limit:
            yield (
                f"{path}: Invalid value: {go_quote(str(request))}: must be less than or equal "
                f"to {name} limit of {limits[name]}"
            )


def _service(doc: dict[str, Any]) -> Iterator[str]:
    spec = doc.get("spec")
    yield from _check(spec, "type", "spec.type", SERVICE_TYPES)
    for i, port in _items(spec, "ports"):
        yield from _check(port, "protocol", f"spec.ports[{i}].protocol", PROTOCOLS)


def _claim(spec: Any, path: str) -> Iterator[str]:
    """A claim's access modes; the API server names the list, not the item."""
    for _, mode in _items(spec, "accessModes"):
        yield from _check({"mode": mode}, "mode", f"{path}.accessModes", ACCESS_MODES)


def problems(doc: dict[str, Any]) -> list[str]:
    """Each field of the object `doc` the API server would refuse for a value outside its
    constants, in the API server's words (field path first)."""
    kind = doc.get("kind")
    out: list[str] = []
    if kind in POD_SPECS:
        out += _pod_spec(doc, str(kind))
    if kind == "Deployment":
        strategy = _at(doc, ("spec", "strategy"))
        out += _check(strategy, "type", "spec.strategy.type", STRATEGY_TYPES)
        out += _recreate(strategy)
    if kind == "Service":
        out += _service(doc)
    if kind == "PersistentVolumeClaim":
        out += _claim(doc.get("spec"), "spec")
    if kind == "StatefulSet":
        for i, claim in _items(doc.get("spec"), "volumeClaimTemplates"):
            out += _claim(_at(claim, ("spec",)), f"spec.volumeClaimTemplates[{i}].spec")
    return out
