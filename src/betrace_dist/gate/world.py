"""What a page has deployed so far: Helm releases and their objects, Compose services, ports.

Command models read it (does Service X exist in namespace Y? what answers on localhost:3000?)
and write it (an install adds a release, a port-forward makes a port answer).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..backend_env import BackendContainer, containers
from ..names import (
    TARGET_ROLES,
    canonical_image,
    image_reference_problem,
    image_role,
    is_number,
    registry_image,
    served_name,
)

if TYPE_CHECKING:
    from ..release import ReleaseData


def listing(kind: str, names: list[str]) -> str:
    return f"{kind}: {', '.join(sorted(names))}" if names else f"no {kind} at all"


#: (kind, field) of an env entry's valueFrom and of an envFrom entry that name a Secret/ConfigMap
_ENV_REFS = (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef"))
_ENV_FROM_REFS = (("Secret", "secretRef"), ("ConfigMap", "configMapRef"))


def _map(value: Any) -> dict[str, Any]:
    """A mapping as written, or an empty one where a page wrote null or another kind (the
    Kubernetes schema admits null for most fields)."""
    return value if isinstance(value, dict) else {}


def _maps(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _volume_references(volume: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, name, '') of the Secret, ConfigMap or PVC a pod volume mounts."""
    secret, config_map = _map(volume.get("secret")), _map(volume.get("configMap"))
    if secret.get("optional") or config_map.get("optional"):
        return []
    found: list[tuple[str, str, str]] = []
    if "secret" in volume:
        found.append(("Secret", str(secret.get("secretName", "")), ""))
    if "configMap" in volume:
        found.append(("ConfigMap", str(config_map.get("name", "")), ""))
    if "persistentVolumeClaim" in volume:
        claim = _map(volume["persistentVolumeClaim"]).get("claimName", "")
        found.append(("PersistentVolumeClaim", str(claim), ""))
    return found


def _required(source: dict[str, Any], fields: tuple[tuple[str, str], ...]) -> list[tuple[str, Any]]:
    """(kind, reference) of each reference in source that is not marked optional."""
    refs = ((kind, _map(source.get(field))) for kind, field in fields)
    return [(kind, ref) for kind, ref in refs if ref and not ref.get("optional")]


def _container_references(container: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, name, key or '') of what a container's env and envFrom read."""
    found: list[tuple[str, str, str]] = []
    for env in _maps(container.get("env")):
        for kind, ref in _required(_map(env.get("valueFrom")), _ENV_REFS):
            found.append((kind, str(ref.get("name", "")), str(ref.get("key", ""))))
    for env_from in _maps(container.get("envFrom")):
        for kind, ref in _required(env_from, _ENV_FROM_REFS):
            found.append((kind, str(ref.get("name", "")), ""))
    return found


def pod_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """A pod spec's init containers, then its containers (each a mapping)."""
    return _maps(pod.get("initContainers")) + _maps(pod.get("containers"))


def pod_references(pod: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, name, key or '') of every Secret, ConfigMap and PVC a pod spec needs."""
    found = [ref for volume in _maps(pod.get("volumes")) for ref in _volume_references(volume)]
    for container in pod_containers(pod):
        found += _container_references(container)
    return found


def _container_problem(obj: K8sObject) -> str | None:
    """What keeps one of the object's pods' containers from starting (World.never_starts)."""
    pod = obj.pod_spec() or {}
    pod_context = _map(pod.get("securityContext"))
    for container in pod_containers(pod):
        name = container.get("name")
        image = container.get("image")
        problem = image_reference_problem(image) if isinstance(image, str) else None
        if problem is not None:
            return f"container '{name}': {problem}"
        context = pod_context | _map(container.get("securityContext"))
        user = context.get("runAsUser")
        if context.get("runAsNonRoot") is True and user == 0 and not isinstance(user, bool):
            return f"container '{name}' runs as user 0 under runAsNonRoot: true"
    return None


def _container_ports(container: Mapping[str, Any]) -> list[Any]:
    return [p.get("containerPort") for p in _maps(container.get("ports"))]


#: kinds that belong to the cluster, in no namespace: an object of one has none in its identity,
#: whatever its manifest's metadata.namespace or the namespace it was applied in say
CLUSTER_SCOPED = frozenset(
    {
        "Namespace", "Node", "PersistentVolume", "StorageClass", "ClusterRole",
        "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass", "IngressClass",
        "RuntimeClass", "CSIDriver", "CSINode", "VolumeAttachment", "APIService",
        "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
        "CertificateSigningRequest", "FlowSchema", "PriorityLevelConfiguration",
    }
)  # fmt: skip


@dataclass
class K8sObject:
    kind: str
    name: str
    namespace: str
    doc: dict[str, Any]
    source: str  # "helm release betrace", "kubectl create", ...
    #: it carries kubectl's last-applied configuration (made by kubectl apply, or by kubectl
    #: create --save-config), from which a later kubectl apply works out what to remove, so
    #: that the object becomes the manifest applied; over one without it (Helm's, kubectl
    #: create's), kubectl apply merges the manifest into what is there
    applied: bool = False
    #: (namespace, name) of the Helm release whose ownership metadata Helm gave it
    #: (meta.helm.sh/release-namespace and -name), which it keeps after `helm uninstall` where
    #: its resource policy keeps it: a release of that name and namespace takes it over
    helm: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if self.kind in CLUSTER_SCOPED:
            self.namespace = ""

    @property
    def group(self) -> str:
        """Its API group: apiVersion without the version ('' for the core group's v1)."""
        return str(self.doc.get("apiVersion") or "").rpartition("/")[0]

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """(API group, kind, namespace, name): what makes it one object of the cluster, whatever
        version of its group a manifest writes it in."""
        return self.group, self.kind, self.namespace, self.name

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.doc.get("metadata") or {}).get("labels") or {})

    @property
    def pod_labels(self) -> dict[str, str]:
        """Labels of the pods this object runs (workloads) or is (pods)."""
        return dict(_map(_map(self.pod().get("metadata")).get("labels")))

    @property
    def pod_annotations(self) -> dict[str, Any]:
        return dict(_map(_map(self.pod().get("metadata")).get("annotations")))

    @property
    def component(self) -> str | None:
        return self.labels.get("app.kubernetes.io/component")

    def containers(self) -> list[dict[str, Any]]:
        spec = _map(self.doc.get("spec"))
        return pod_containers(_map(spec.get("template")).get("spec") or spec)

    def pod(self) -> dict[str, Any]:
        """The pod this object is (a Pod) or runs (a workload's template); {} for other kinds."""
        return self.doc if self.kind == "Pod" else _map(_map(self.doc.get("spec")).get("template"))

    def pod_spec(self) -> dict[str, Any] | None:
        """The spec of the pods this object runs (workloads) or is (a Pod); None otherwise."""
        spec = _map(self.doc.get("spec"))
        template = _map(_map(spec.get("template")).get("spec"))
        return template or (spec if self.kind == "Pod" else None)

    def running(self) -> list[dict[str, Any]]:
        """The containers of its pods, not the init ones (what serves ports and what kubectl
        exec and port-forward reach)."""
        return _maps(_map(self.pod_spec()).get("containers"))

    def declared_ports(self) -> list[dict[str, Any]]:
        """The ports its pods' containers declare (not init ones: kubectl and the Service
        controller resolve a named port on those)."""
        return [p for c in self.running() for p in _maps(c.get("ports"))]

    @property
    def selector(self) -> dict[str, Any]:
        """A Service's selector ({} when it has none)."""
        return _map(_map(self.doc.get("spec")).get("selector"))

    def references(self) -> list[tuple[str, str, str]]:
        """(kind, name, key or '') of every Secret, ConfigMap and claim its pods need."""
        pod = self.pod_spec()
        return pod_references(pod) if pod is not None else []

    def service_ports(self) -> list[dict[str, Any]]:
        return list((self.doc.get("spec") or {}).get("ports") or [])

    def is_hook(self, hook: str) -> bool:
        annotations = (self.doc.get("metadata") or {}).get("annotations") or {}
        return hook in str(annotations.get("helm.sh/hook", "")).split(",")


@dataclass
class HelmRelease:
    name: str
    namespace: str
    chart: str  # local path, oci:// reference or repo/chart
    revision: int
    objects: list[K8sObject]
    modelled: bool = False  # True when the chart could not be rendered offline (a remote chart)
    project_chart: bool = False  # rendered from this project's chart (Session.is_projects)
    #: the values the page gave this revision (Helm's user-supplied values), which a later
    #: upgrade may reuse; a modelled Grafana's are its Grafana-level ones
    values: dict[str, Any] = field(default_factory=dict)
    #: a local chart's own values (values.yaml) this revision rendered with: with
    #: --reuse-values, Helm renders the next revision with these in place of the new chart's
    defaults: dict[str, Any] = field(default_factory=dict)
    #: the revisions before this one that Helm still keeps, oldest first, each as it was (its
    #: chart, objects and values, without a history of its own): what `helm rollback` restores
    history: list[HelmRelease] = field(default_factory=list)
    #: the revisions Helm's history limit removed -> what removed them (for a rollback's message)
    pruned: dict[int, str] = field(default_factory=dict)
    #: the objects of its test hooks that a `helm test` created and its delete policy left in
    #: the cluster
    tested: list[K8sObject] = field(default_factory=list)
    #: (namespace, kind, name) of the test hooks Helm deleted after `helm test` -> why
    hooks_gone: dict[tuple[str, str, str], str] = field(default_factory=dict)
    #: its objects `kubectl delete` removed from the cluster (with a workload, its pods): the
    #: release's record keeps them, and its next upgrade or rollback creates them again, as
    #: Helm's KubeClient.Update creates what the cluster lacks (helm.py _supersede)
    deleted: list[K8sObject] = field(default_factory=list)

    def present(self) -> list[K8sObject]:
        """Its objects in the cluster: Helm creates a `helm.sh/hook: test` object (the chart's
        test pod) when `helm test` runs, not at install, so only once `helm test` made it and
        as long as its delete policy left it there; and none `kubectl delete` removed."""
        made = [o for o in self.objects if not o.is_hook("test")]
        return [o for o in made if not any(o is d for d in self.deleted)] + self.tested

    def delete(self, obj: K8sObject) -> None:
        """`kubectl delete` removed one of its objects from the cluster."""
        if any(o is obj for o in self.tested):
            self.tested = [o for o in self.tested if o is not obj]
            self.hooks_gone[(obj.namespace, obj.kind, obj.name)] = DELETED
        else:
            self.deleted.append(obj)


@dataclass
class Listener:
    """Something answering on a local port."""

    port: int
    component: str  # backend, grafana, otel-collector, ...
    target_port: int  # the component's own port behind it
    source: str  # "compose service backend", "kubectl port-forward svc/betrace-grafana"
    env: Mapping[str, str | None] = field(default_factory=dict)  # None: from a Secret
    owner: str = ""  # the Compose project (its name) whose service publishes it
    role: str | None = None  # what runs there (names.image_role), when the models know it
    #: started and maybe not listening yet: "" it is; "start" (in the background) once a short
    #: wait has passed (`sleep`); "build" only for a client that retries (it builds first);
    #: "container" (a Compose service nothing waited for) for a client that retries all errors
    #: (curl._needed)
    starting: str = ""
    #: a port-forward's: the workload whose pod it forwards to; kubectl port-forward ends once
    #: that pod is gone (an uninstall, a delete, an upgrade that replaced it)
    pod_of: K8sObject | None = None
    #: started in the foreground of the reader's terminal: the guides end such a block with it
    #: and say to stop it with Ctrl+C before they start another on its port
    foreground: bool = False


#: why a release's object is not in the cluster after `kubectl delete` (World.gone)
DELETED = (
    "`kubectl delete` deleted it earlier on the page (its Helm release creates it again at its "
    "next upgrade or rollback)"
)


class MixedPods(Exception):
    """The pods behind a Service run different things: which one answers cannot be told."""


def _listening(workload: K8sObject, port: int) -> Mapping[str, Any] | None:
    """The container of a workload's pods that listens on `port`: the one that declares it,
    else the pods' only container; None where that cannot be told."""
    running = workload.running()
    found = [c for c in running if port in _container_ports(c)] or running
    return found[0] if len(found) == 1 else None


def _environment(container: Mapping[str, Any]) -> str:
    """A container's env and envFrom, written so that two containers whose processes get the
    same variables compare equal: kubelet gives a name given twice its later entry's value,
    and a value left out or empty is ''; the order of the others does not count. But a value
    that refers to variables, `$(NAME)`, reads those defined before it, so with one the env
    is compared as written. envFrom is compared as written: of its sources, a later one's keys
    win."""
    env = container.get("env")
    entries = _maps(env)
    if any("$(" in str(e.get("value") or "") for e in entries):
        return repr((env, container.get("envFrom")))
    resolved = {
        str(e.get("name")): {k: v for k, v in e.items() if k != "name" and v not in (None, "")}
        for e in entries
    }
    return repr((sorted(resolved.items()), container.get("envFrom")))


#: what kubectl port-forward reports once the pod it forwards to is gone
LOST_POD = "lost connection to pod"

#: kinds whose pods a Service's selector can pick
WORKLOADS = frozenset(
    {"Deployment", "ReplicaSet", "ReplicationController", "StatefulSet", "DaemonSet", "Job", "Pod"}
)


@dataclass
class World:
    namespaces: set[str] = field(default_factory=lambda: {"default"})
    releases: dict[tuple[str, str], HelmRelease] = field(default_factory=dict)
    #: releases `helm uninstall --keep-history` removed from the cluster: Helm keeps their
    #: revisions, the last one marked uninstalled (with its history, as `releases` has it)
    uninstalled: dict[tuple[str, str], HelmRelease] = field(default_factory=dict)
    objects: list[K8sObject] = field(default_factory=list)  # created outside Helm
    helm_repos: dict[str, str] = field(default_factory=dict)
    listeners: dict[int, Listener] = field(default_factory=dict)
    compose_projects: dict[str, dict[str, Any]] = field(default_factory=dict)  # by its name
    # tag (names.canonical_image: any spelling Docker reads as it) -> the target of the
    # project's Dockerfile `docker build` made it from ("" for the last stage), None when it was
    # built from another Dockerfile (what it runs is not known); World.built reads it
    images: dict[str, str | None] = field(default_factory=dict)
    #: images `docker push` sent to their registry, as the registry serves them
    #: (names.registry_image)
    pushed: set[str] = field(default_factory=set)
    #: shell variables whose value the page typed itself (no expansion), by name: a value a
    #: reader cannot have chosen (a password written into the page)
    typed_variables: dict[str, str] = field(default_factory=dict)
    # clone folder -> the tag its HEAD is detached at ("" when a branch is checked out)
    checkouts: dict[str, str] = field(default_factory=dict)
    #: release tags `git tag` made on the page (and `git tag -d` has not deleted), by name
    tags: set[str] = field(default_factory=set)
    #: namespaces `kubectl delete --wait=false` left terminating: Kubernetes removes what they
    #: hold before the namespace itself, and until then a namespace of that name cannot be made
    #: again (World.terminating_problem); `kubectl wait --for=delete` waits that out
    terminating: set[str] = field(default_factory=set)
    #: branches `git switch -c` / `git checkout -b` made on the page
    branches: set[str] = field(default_factory=set)
    #: every path `git add` took on the page (its real path, in any clone): git tracks them
    #: from then on, committed or not
    added: set[str] = field(default_factory=set)
    #: what `git add` staged in the page's copy of the project since its last commit, as paths
    #: relative to the copy ("." for all of it)
    staged: set[str] = field(default_factory=set)
    #: the branch the page last switched to (None: not known, or a detached HEAD), and the one
    #: before it (`git switch -`)
    branch: str | None = None
    previous_branch: str | None = None
    #: branches of `unpulled` whose remote-tracking branch (origin/NAME) `git fetch` has
    #: brought up to date since: a tag may name origin/NAME
    fetched: set[str] = field(default_factory=set)
    #: release tags made annotated (-a, -s, -m): `git push --follow-tags` sends only those
    annotated: set[str] = field(default_factory=set)
    #: branch -> the branch the page pushed for a pull request into it: once that is merged,
    #: the remote's branch holds a commit this clone lacks until `git pull`
    unpulled: dict[str, str] = field(default_factory=dict)
    #: remotes `git remote add` named on the page (a clone's `origin` is always there)
    remotes: set[str] = field(default_factory=set)
    #: identities (K8sObject.identity) of workloads and pods whose pods were made anew and that
    #: nothing has waited for since (World.started)
    unready: set[tuple[str, str, str, str]] = field(default_factory=set)
    #: of those, the workloads made by the command itself (not Pods): their controller makes
    #: their pods a moment after, so right after that command they may have none at all
    unmade: set[tuple[str, str, str, str]] = field(default_factory=set)
    #: Compose project (its name) -> the services `docker compose pause` paused, which
    #: `unpause` resumes (and only those)
    paused: dict[str, set[str]] = field(default_factory=dict)
    #: Compose project (its name) -> its services that have a container, running or stopped
    #: (made by `up`, `create`, `run` for what it depends on; removed by `down` and `rm`)
    containers: dict[str, set[str]] = field(default_factory=dict)
    #: Compose project (its name) -> its services whose container runs (paused ones too: a
    #: paused container is listed as running); `stop`, `kill` and `down` end it
    running: dict[str, set[str]] = field(default_factory=dict)

    def started(self, objects: list[K8sObject], waited: bool) -> None:
        """Objects about to join the cluster (an install, upgrade or rollback; kubectl apply or
        create): a workload or pod whose pods are made anew (new, or its pod template changed)
        runs them only once they are scheduled and their images pulled. Until something waits
        for them (`waited`: helm --wait, which waits for all the objects it is given, made anew
        or not; later kubectl rollout status or wait, World.waited), they may still be Pending.
        One whose pod template is unchanged keeps its pods, ready or not."""
        for obj in (o for o in objects if o.kind in WORKLOADS):
            before = self.existing(obj)
            if waited:  # Helm's --wait waits for every object of the release, unchanged ones
                self.waited(obj)  # too (helm.py _waits)
            elif before is None or before.pod() != obj.pod():
                self.unready.add(obj.identity)
                if before is None and obj.kind != "Pod":
                    self.unmade.add(obj.identity)

    def waited(self, obj: K8sObject) -> None:
        """kubectl rollout status or wait has seen the object's pods ready."""
        self.unready.discard(obj.identity)
        self.unmade.discard(obj.identity)

    def never_starts(self, obj: K8sObject, made: tuple[K8sObject, ...] = ()) -> str | None:
        """Why the object's pods never start, or None: a Secret, ConfigMap or
        PersistentVolumeClaim they need is not in their namespace, or lacks the key they read;
        an image that is no image reference (InvalidImageName); a container that runs as user
        0 under runAsNonRoot ("the Kubelet will ... fail to start the container if it does":
        the field's description in Kubernetes 1.35's JSON schema, as kubernetes-validate ships
        it). The API server accepts such a pod, which then stays Pending or waiting until the
        cause is mended; a wait for it runs into its timeout."""
        problem = _container_problem(obj)
        if problem is not None:
            return f"{obj.kind} '{obj.name}': {problem}"
        present = [*self.all_objects(obj.namespace), *made]  # made: by the step being checked
        available = {(o.kind, o.name): o for o in present if o.namespace == obj.namespace}
        for kind, name, key in obj.references():
            target = available.get((kind, name))
            where = f"in namespace '{obj.namespace}'"
            if target is None:
                return f"{obj.kind} '{obj.name}' needs {kind} '{name}', which is not {where}"
            data = _map(target.doc.get("data")) | _map(target.doc.get("stringData"))
            if key and kind != "PersistentVolumeClaim" and key not in data:
                keys = ", ".join(sorted(map(str, data))) or "no keys"
                return (
                    f"{obj.kind} '{obj.name}' reads key '{key}' of {kind} '{name}' {where}, "
                    f"which has only: {keys}"
                )
        return None

    def not_running(self, workload: K8sObject) -> str | None:
        """Why the workload's pods may not run yet (World.started), or None."""
        if workload.identity not in self.unready:
            return None
        return (
            f"{workload.kind} '{workload.name}' ({workload.source}) has new pods that nothing "
            "waited for: they may still be Pending while their images are pulled"
        )

    def held(self, port: int, starting: str) -> str | None:
        """Why `starting` cannot listen on a local port another listener holds (the kernel
        answers "address already in use"), or None when the port is free."""
        held = self.listeners.get(port)
        if held is None or held.foreground:
            return None  # free, or stopped by the reader first (Listener.foreground)
        if held.pod_of is not None and not self.present(held.pod_of):
            return None
        return (
            f"port {port} is held already by {held.source} ({held.component}): {starting} "
            'cannot listen there too, it fails with "address already in use"; use another '
            "local port"
        )

    def present(self, obj: K8sObject) -> bool:
        """The object itself (not one of its name) is still in the cluster."""
        return any(o is obj for o in self.all_objects(obj.namespace))

    def all_objects(self, namespace: str) -> list[K8sObject]:
        found = [o for r in self.releases.values() for o in r.present() if o.namespace == namespace]
        return found + [o for o in self.objects if o.namespace == namespace]

    def terminating_problem(self, name: str) -> str | None:
        """Why a namespace cannot be made now, or None: one of its name is still terminating.
        Its deletion only stamps it (Terminating) until its content is gone, and a create over
        an object with a deletion timestamp is AlreadyExists, its message prefixed "object is
        being deleted: " (k8s.io/apiserver v0.35.2, the kubectl's own library tag,
        pkg/registry/generic/registry/store.go lines 529-541, Store.Create)."""
        if name not in self.terminating:
            return None
        return (
            f"namespace '{name}' is still terminating (deleted with --wait=false, and nothing "
            'waited for it to go): making it again answers AlreadyExists ("object is being '
            f'deleted: namespaces "{name}" already exists"); delete it without --wait=false, '
            f"or `kubectl wait --for=delete namespace/{name}` first"
        )

    def drop_namespace(self, name: str) -> None:
        """`kubectl delete namespace`: everything in it goes, and with it the records of the
        releases installed there, which Helm keeps as Secrets of the release's namespace
        (Configuration.Init in pkg/action/action.go at helm/helm v3.11.1: the Secrets driver
        of a client for that namespace), so Helm no longer knows them."""
        self.namespaces.discard(name)
        self.releases = {k: r for k, r in self.releases.items() if k[0] != name}
        self.uninstalled = {k: r for k, r in self.uninstalled.items() if k[0] != name}
        self.objects = [o for o in self.objects if o.namespace != name]

    def gone(self, namespace: str, kind: str, name: str) -> str | None:
        """Why a release's object that was in the cluster is not any more (a test hook Helm
        deleted, an object `kubectl delete` deleted), or None."""
        key = (namespace, kind, name)
        for release in self.releases.values():
            if key in release.hooks_gone:
                return release.hooks_gone[key]
            if any((o.namespace, o.kind, o.name) == key for o in release.deleted):
                return DELETED
        return None

    def ended(self, listener: Listener) -> str | None:
        """Why a port-forward no longer answers (the workload whose pod it forwarded to left
        the cluster: an uninstall, a delete, an upgrade that replaced it), or None. kubectl
        port-forward then reports "lost connection to pod" (client-go's portforward, in the
        kubectl `make tools` installs: tests/test_kubectl_facts.py)."""
        pod_of = listener.pod_of
        if pod_of is None or self.present(pod_of):
            return None
        return (
            f"`{listener.source}` no longer answers on port {listener.port}: the pod of "
            f"{pod_of.kind} '{pod_of.name}' it forwarded to is gone, and kubectl port-forward "
            f'reports "{LOST_POD}"; start the port-forward again once a pod runs'
        )

    def existing(self, obj: K8sObject) -> K8sObject | None:
        """The object of the cluster that `obj` is a manifest of (K8sObject.identity), or None."""
        return next(
            (o for o in self.all_objects(obj.namespace) if o.identity == obj.identity), None
        )

    def owner(self, obj: K8sObject) -> HelmRelease | None:
        """The release that holds the object itself, or None."""
        return next((r for r in self.releases.values() if any(o is obj for o in r.present())), None)

    def find(self, namespace: str, kind: str, name: str) -> K8sObject | None:
        for obj in self.all_objects(namespace):
            if obj.kind == kind and obj.name == name:
                return obj
        return None

    def names(self, namespace: str, kind: str) -> list[str]:
        return [o.name for o in self.all_objects(namespace) if o.kind == kind]

    def selected(self, namespace: str, selector: dict[str, str]) -> list[K8sObject]:
        """The workloads whose pods carry every label of the selector."""
        return [
            o
            for o in self.all_objects(namespace)
            if o.kind in WORKLOADS and all(o.pod_labels.get(k) == v for k, v in selector.items())
        ]

    def behind(self, namespace: str, obj: K8sObject) -> list[K8sObject]:
        """The workloads whose pods kubectl port-forward and exec reach through `obj`: a
        workload or pod itself, the ones a Service selects (none when it has no selector) but
        a Helm test's pod, which runs only while `helm test` does."""
        if obj.kind in WORKLOADS:
            return [obj]
        selector = obj.selector
        if obj.kind != "Service" or not selector:
            return []
        return [w for w in self.selected(namespace, selector) if not w.is_hook("test")]

    def serving(
        self, namespace: str, obj: K8sObject, port: int, data: ReleaseData
    ) -> tuple[K8sObject, Mapping[str, Any]] | None:
        """The workload and container that answer on `port` of a workload's or a pod's own
        pods, or of the pods a Service selects (_listening); None where that cannot be told (a
        Service without a selector selects none). A Service's clients reach one of its pods,
        which the model cannot know: kubectl port-forward takes the one GetFirstPod sorts first
        (sort.Reverse(podutils.ActivePods): scheduled, running, ready for longest, fewest
        restarts, oldest; kubernetes/kubectl pkg/polymorphichelpers, commit dee3483a), never
        the one that declares the port, and then resolves the Service's targetPort on that pod.
        So over pods of workloads that run different things (World.role), or the same thing
        configured otherwise (their environment as its process gets it, _environment, from
        which the models read ports and settings), MixedPods; where all run the same, the
        first. Each workload counts, two of one kind and name included."""
        found = [(w, _listening(w, port)) for w in self.behind(namespace, obj)]
        # one entry per workload, not per kind and name: two of one name (a Helm release's
        # and a page's own, say) are two workloads, and either may answer
        roles = [(w, None if c is None else self.role(w, c, data)) for w, c in found]
        if len({role for _, role in roles}) > 1:
            raise MixedPods(
                f"{obj.kind} '{obj.name}' selects pods that run different things: "
                + ", ".join(f"{w.kind} '{w.name}' ({role or 'not known'})" for w, role in roles)
            )
        envs = {_environment(c) for _, c in found if c is not None}
        if len(envs) > 1:
            raise MixedPods(
                f"{obj.kind} '{obj.name}' selects pods whose containers are set up differently "
                "(their environment): "
                + ", ".join(f"{w.kind} '{w.name}'" for w, c in found if c is not None)
            )
        return next(((w, c) for w, c in found if c is not None), None)

    def role(
        self,
        workload: K8sObject,
        container: Mapping[str, Any],
        data: ReleaseData,
        release: HelmRelease | None = None,
    ) -> str | None:
        """What a container runs. An image built on this page: the target of the project's
        Dockerfile it was built from (a tag built from another Dockerfile, or from another
        target, runs what the models cannot know, whatever chart runs it and whatever its name
        says). Otherwise, in a release of the project's chart, what the chart's own template
        says it runs (its component label: the values may move the image to any registry or
        tag); in the modelled Grafana chart, Grafana; in anything else the page wrote,
        names.image_role of its image. `release`: the release the workload is of, when it has
        not joined the world yet (a release Helm is rendering)."""
        image = str(container.get("image") or "")
        if self.built(image):
            return self.built_role(image)
        release = release or next(
            (r for r in self.releases.values() if any(o is workload for o in r.objects)), None
        )
        if release is not None and release.modelled:
            return "grafana" if container.get("name") == "grafana" else None
        if release is not None and release.project_chart:
            return workload.component if workload.component in TARGET_ROLES.values() else None
        return image_role(image, data.project.registry)

    def build(self, tag: str, target: str | None) -> None:
        """`docker build -t tag` made an image from `target` of the project's Dockerfile (None:
        from another Dockerfile)."""
        self.images[canonical_image(tag)] = target

    def push(self, image: str) -> None:
        self.pushed.add(registry_image(image))

    def unpushed(self, docs: list[dict[str, Any]]) -> str | None:
        """The first container of these objects whose image the page built on this machine and
        never pushed: a cluster's nodes pull it from its registry, where it is not (they do not
        share this machine's image store). A container with imagePullPolicy Never is the page's
        own choice of an image already on its node, and is left to it."""
        for doc in docs:
            for container in containers(doc):
                image = str(container.get("image") or "")
                policy = container.get("imagePullPolicy")
                unpushed = self.built(image) and registry_image(image) not in self.pushed
                if unpushed and policy != "Never":
                    name = _map(doc.get("metadata")).get("name")
                    return (
                        f"{doc.get('kind')} {name} would pull {image}, which this page built "
                        "but never pushed: a cluster's nodes pull images from their registry "
                        f"(docker push {image} first), unless they share this machine's images "
                        "(Docker Desktop's Kubernetes) or were given them (kind load): say so, "
                        "with imagePullPolicy: Never"
                    )
        return None

    def unpublished(self, docs: list[dict[str, Any]], data: ReleaseData) -> str | None:
        """The first container of these objects that takes a BeTrace image from the project's
        registry before the release is published (releases.yaml has no image digests), and
        that the page did not push there itself: its pods would not pull. A page sets the
        registry the reader pushed to, or shows the command only once the release is
        published."""
        if data.current.published:
            return None
        own = served_name(data.project.registry) + "/"
        for doc in docs:
            for container in containers(doc):
                image = str(container.get("image") or "")
                served = registry_image(image)
                if served.startswith(own) and served not in self.pushed:
                    name = _map(doc.get("metadata")).get("name")
                    return (
                        f"{doc.get('kind')} {name} would pull {image}, which release "
                        f"{data.current.version} has not published (releases.yaml has no image "
                        "digests)"
                    )
        return None

    def built(self, image: str) -> bool:
        """The image is one the page built (any spelling Docker reads as its tag)."""
        return canonical_image(image) in self.images

    def built_role(self, image: str) -> str | None:
        """What an image the page built runs: its target of the project's Dockerfile's role."""
        return TARGET_ROLES.get(self.images.get(canonical_image(image)) or "")

    def backend_in(self, data: ReleaseData, release: HelmRelease | None = None) -> BackendContainer:
        """Which containers of objects run the backend, as role() says: those of `release`'s
        objects (not yet joined) by the release, others' by their image."""
        objects = {id(o.doc): o for o in release.objects} if release is not None else {}

        def runs(doc: Mapping[str, Any], container: Mapping[str, Any]) -> bool:
            workload = objects.get(id(doc)) or K8sObject(
                str(doc.get("kind")), "", "", dict(doc), "a manifest"
            )
            return self.role(workload, container, data, release) == "backend"

        return runs

    def target_port(self, namespace: str, service: K8sObject, target: Any) -> int | None:
        """The container port a Service port's targetPort leads to: a number as written, a name
        as the selected pods declare it (None when no pod declares it)."""
        if isinstance(target, int) or is_number(str(target)):
            return int(target)
        for workload in self.behind(namespace, service):
            for port in workload.declared_ports():
                number = port.get("containerPort")
                if port.get("name") == target and isinstance(number, int):
                    return number
        return None
