"""`kubectl`: the real kubectl (v1.35, installed by `make tools`) reads every command line, and the
page's world answers what only a cluster could.

- flags: each must be one `kubectl SUBCOMMAND --help` (or `kubectl options`) lists; the help says
  which take a value, so the line is split as kubectl splits it;
- generators (`kubectl create secret|configmap|namespace|deployment ...`) run for real, offline
  (`--kubeconfig=/dev/null --dry-run=client -o yaml`): kubectl itself checks their arguments and
  files, and the object it prints joins the page's world (unless the page asked for a dry run);
- `-f FILE` is read in the page's sandbox and validated against the Kubernetes schemas (strict);
  `-f URL` is refused: a remote manifest cannot be checked offline;
- an object that exists already (same API group, kind, namespace and name): kubectl create
  refuses it; kubectl apply makes it the manifest where kubectl apply (or create --save-config)
  made it, and is refused over any other, a Helm release's included, into which it would merge;
- namespaces, kinds, names, label selectors, containers and ports must exist in what the page
  installed. Nothing ever reaches a cluster.

One small handler per subcommand (HANDLERS); a subcommand without one is "not modelled".
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ... import backend_env, yamlio
from ...artefacts import crd_schemas
from ...artefacts.chart_policy import HelmError, Manifest, validate_kubernetes
from ...artefacts.compose import IMAGE_CONTENTS
from ...errors import ProblemsError
from ...names import closest, is_number
from ...release import ReleaseData
from .. import data_volume, gitops, missing
from ..grafana_app import world_problem
from ..session import CommandError, Invocation, Session
from ..world import (
    CLUSTER_SCOPED,
    WORKLOADS,
    K8sObject,
    Listener,
    MixedPods,
    World,
    listing,
)
from .flags import FlagQueries, Options, help_text, options, parse_help, subcommands, value_problem
from .helm import render_text

KINDS = {
    "pod": "Pod",
    "pods": "Pod",
    "po": "Pod",
    "service": "Service",
    "services": "Service",
    "svc": "Service",
    "deployment": "Deployment",
    "deployments": "Deployment",
    "deploy": "Deployment",
    "secret": "Secret",
    "secrets": "Secret",
    "configmap": "ConfigMap",
    "configmaps": "ConfigMap",
    "cm": "ConfigMap",
    "persistentvolumeclaim": "PersistentVolumeClaim",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "pvc": "PersistentVolumeClaim",
    "ingress": "Ingress",
    "ingresses": "Ingress",
    "ing": "Ingress",
    "serviceaccount": "ServiceAccount",
    "serviceaccounts": "ServiceAccount",
    "sa": "ServiceAccount",
    "networkpolicy": "NetworkPolicy",
    "networkpolicies": "NetworkPolicy",
    "netpol": "NetworkPolicy",
    "namespace": "Namespace",
    "namespaces": "Namespace",
    "ns": "Namespace",
    "job": "Job",
    "jobs": "Job",
    "cronjob": "CronJob",
    "cronjobs": "CronJob",
    "cj": "CronJob",
    "statefulset": "StatefulSet",
    "statefulsets": "StatefulSet",
    "sts": "StatefulSet",
    "daemonset": "DaemonSet",
    "daemonsets": "DaemonSet",
    "ds": "DaemonSet",
    "replicaset": "ReplicaSet",
    "replicasets": "ReplicaSet",
    "rs": "ReplicaSet",
    "replicationcontroller": "ReplicationController",
    "replicationcontrollers": "ReplicationController",
    "rc": "ReplicationController",
    "storageclass": "StorageClass",
    "storageclasses": "StorageClass",
    "sc": "StorageClass",
    "node": "Node",
    "nodes": "Node",
    "no": "Node",
    "events": "Event",
    "event": "Event",
    "all": "all",
}
#: kinds that belong to the cluster, not to anything a guide installs
_CLUSTER_SCOPED = {"StorageClass", "Node"}


def _kind(word: str) -> str:
    kind = KINDS.get(word.lower())
    if kind is None:
        raise CommandError(f"unknown resource type '{word}'{closest(word.lower(), list(KINDS))}")
    return kind


def _namespace(world: World, parsed: Args) -> str:
    ns = parsed.namespace
    if ns not in world.namespaces:
        raise CommandError(
            f"namespace '{ns}' does not exist at this point of the page; "
            f"{listing('namespaces', list(world.namespaces))}"
        )
    return ns


def _object(world: World, ns: str, kind: str, name: str) -> K8sObject:
    found = world.find(ns, kind, name)
    if found is None:
        names = world.names(ns, kind)
        gone = world.gone(ns, kind, name)
        raise CommandError(
            f"no {kind} '{name}' in namespace '{ns}'{closest(name, names)}; "
            + (gone if gone is not None else listing(kind + "s", names))
        )
    return found


def _selector(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        if not eq:
            raise CommandError(f"only equality selectors (key=value) are modelled, not '{part}'")
        out[key.strip()] = value.strip()
    return out


def _target(world: World, ns: str, ref: str) -> K8sObject:
    kind_word, slash, name = ref.partition("/")
    if not slash:
        raise CommandError(f"write the target as kind/name (e.g. deploy/NAME), not '{ref}'")
    return _object(world, ns, _kind(kind_word), name)


def _container(obj: K8sObject, name: str) -> None:
    names = [c.get("name", "") for c in obj.containers()]
    if name not in names:
        raise CommandError(
            f"{obj.kind} '{obj.name}' has no container '{name}'{closest(name, names)}; "
            f"containers: {', '.join(names)}"
        )


def _port_forward(inv: Invocation, ns: str, parsed: Args) -> None:
    world = inv.session.world
    if len(parsed.positional) < 2:
        raise CommandError("kubectl port-forward takes a target and LOCAL:REMOTE ports")
    obj = _target(world, ns, parsed.positional[0])
    _some_pod(world, ns, obj)
    for spec in parsed.positional[1:]:
        local, _, remote = spec.partition(":")
        remote = remote or local
        if not is_number(local):
            raise CommandError(
                f"port-forward {spec}: name the local port (LOCAL:REMOTE); without one kubectl "
                "picks a free port, which later steps cannot name"
            )
        if obj.kind == "Service":
            ports = obj.service_ports()
            port = next(
                (p for p in ports if str(p.get("port")) == remote or p.get("name") == remote), None
            )
            if port is None:
                have = ", ".join(f"{p.get('port')} ({p.get('name', '-')})" for p in ports)
                raise CommandError(f"Service '{obj.name}' has no port {remote}; it has: {have}")
            target = port.get("targetPort", port.get("port"))
            target_port = _resolve_target(world, ns, obj, target)
        else:
            target_port = _pod_port(obj, remote)
        if obj.kind == "Service" and not obj.selector:
            raise CommandError(
                f"Service '{obj.name}' has no selector: kubectl port-forward forwards to a pod "
                "the Service selects, and it selects none"
            )
        serving = _serving(world, ns, obj, target_port, inv.session.release)
        if serving is not None:
            _pod_runs(world, serving[0], "port-forward")
        role = world.role(*serving, inv.session.release) if serving else None
        container = serving[1] if serving else None
        env = _env(serving, role, inv.session.release)
        source = f"kubectl port-forward {parsed.positional[0]}"
        component = role or _unknown(world, obj, container)  # a name or a label says nothing
        held = world.held(int(local), source)
        if held is not None:
            raise CommandError(held)
        world.listeners[int(local)] = Listener(
            int(local), component, target_port, source, env, role=role,
            starting="start" if inv.command.background else "",
            foreground=not inv.command.background,
            pod_of=serving[0] if serving else None,
        )  # fmt: skip
    inv.never_returns("`kubectl port-forward` forwards")


def _pod_runs(world: World, workload: K8sObject, verb: str) -> None:
    """kubectl port-forward and exec need a running pod (World.not_running). port-forward finds
    one even before it runs (GetFirstPod waits only until a pod exists), then fails: "unable to
    forward port because pod is not running. Current status=Pending" (RunPortForwardContext,
    pkg/cmd/portforward/portforward.go of kubernetes/kubectl v0.35.2)."""
    problem = world.not_running(workload)
    if problem is None:
        return
    ref = f"{workload.kind.lower()}/{workload.name}"
    wait = (
        f"`kubectl wait --for=condition=Ready {ref} --namespace {workload.namespace}`"
        if workload.kind == "Pod"
        else f"`kubectl rollout status {ref} --namespace {workload.namespace}`"
    )
    said = (
        ', and it fails: "unable to forward port because pod is not running. Current '
        'status=Pending"'
        if verb == "port-forward"
        else ", and its container may not exist yet"
    )
    raise CommandError(
        f"kubectl {verb}: {problem}{said}; wait for them first: {wait} (or helm's --wait)"
    )


#: what kubectl port-forward fails with where a Service selects no pod: GetPodList, finding
#: none, watches for one until --pod-running-timeout, and the watch's timeout is this error
#: (tests/test_kubectl_facts.py finds it in the installed kubectl)
NO_POD_TIMEOUT = "timed out waiting for the condition"


def _some_pod(world: World, ns: str, obj: K8sObject) -> None:
    """A Service with a selector must select a pod. kubectl port-forward SERVICE asks
    polymorphichelpers.AttachablePodForObjectFn for a pod (pkg/cmd/portforward/portforward.go,
    Complete), which lists those the selector matches and, with none, watches for one until
    --pod-running-timeout (defaultPodPortForwardWaitTimeout, 60 s), then fails with the watch's
    timeout error (GetFirstPod and GetPodList in pkg/polymorphichelpers/helpers.go; both read
    at tag v0.35.0 of kubernetes/kubectl, the staging copy of the v1.35 kubectl `make tools`
    installs)."""
    if obj.kind != "Service" or not obj.selector or world.behind(ns, obj):
        return
    deleted = [
        (r, o)
        for r in world.releases.values()
        for o in r.deleted
        if o.namespace == ns and all(o.pod_labels.get(k) == v for k, v in obj.selector.items())
    ]
    why = "".join(
        f"; {o.kind} '{o.name}' of Helm release '{r.name}' ran them until `kubectl delete` "
        "deleted it with its pods (the release's next upgrade or rollback creates it again)"
        for r, o in deleted[:1]
    )
    raise CommandError(
        f"Service '{obj.name}' selects no pod in namespace '{ns}'{why}: kubectl port-forward "
        f'waits for one for --pod-running-timeout (1m0s), then fails with "{NO_POD_TIMEOUT}"'
    )


def _serving(
    world: World, ns: str, obj: K8sObject, port: int, data: ReleaseData
) -> tuple[K8sObject, Mapping[str, Any]] | None:
    """World.serving, refused where the Service's pods run different things."""
    try:
        return world.serving(ns, obj, port, data)
    except MixedPods as exc:
        raise CommandError(
            f"{exc}: kubectl port-forward forwards to one of them, the one kubectl finds most "
            "ready, so which one answers cannot be told; give the Service a selector that picks "
            "one workload's pods (its app.kubernetes.io/component label, say)"
        ) from None


def _env(
    serving: tuple[K8sObject, Mapping[str, Any]] | None, role: str | None, data: ReleaseData
) -> dict[str, str | None]:
    """The forwarded container's variables (backend_env.container_env); a backend's that
    envFrom may set are not known, which is refused (backend_env.env_from_problem)."""
    if serving is None:
        return {}
    workload, container = serving
    problem = backend_env.env_from_problem(container, data) if role == "backend" else None
    if problem is not None:
        raise CommandError(
            f"the backend's container '{container.get('name')}' of {workload.kind} "
            f"'{workload.name}' {problem}"
        )
    return backend_env.container_env(container)


def _pod_port(obj: K8sObject, remote: str) -> int:
    """A port of a workload's or a pod's containers: a number, or a name one of its (not init)
    containers declares, as kubectl resolves it."""
    if is_number(remote):
        return int(remote)
    declared = obj.declared_ports()
    port = next((p for p in declared if p.get("name") == remote), None)
    if port is None:
        names = [str(p.get("name")) for p in declared if p.get("name")]
        raise CommandError(
            f"{obj.kind} '{obj.name}' declares no port named '{remote}'{closest(remote, names)}"
        )
    number = port.get("containerPort")
    if not isinstance(number, int) or isinstance(number, bool):
        raise CommandError(f"{obj.kind} '{obj.name}': its port '{remote}' has no containerPort")
    return number


def _unknown(world: World, obj: K8sObject, container: Mapping[str, Any] | None) -> str:
    """A forwarded object whose role the models do not know, as messages name it."""
    if container is None:
        return f"{obj.kind} {obj.name} (no one container of its pods declares the port)"
    image = str(container.get("image"))
    if world.built(image):
        why = "built on this page, not from a target of the project's docker/Dockerfile"
    else:
        why = "neither built on this page nor one the gate knows"
    return f"{obj.kind} {obj.name} (image {image}, {why})"


def _resolve_target(world: World, ns: str, service: K8sObject, target: Any) -> int:
    port = world.target_port(ns, service, target)
    if port is None:
        raise CommandError(
            f"Service '{service.name}' targets the named port '{target}', which no pod it "
            "selects declares"
        )
    return port


def _jsonpath_secret(obj: K8sObject, jsonpath: str) -> str | None:
    """`-o jsonpath={.data.KEY}` of a Secret: the key exists; what kubectl prints is its value,
    base64 as the API keeps it (empty where the model does not know it)."""
    match = re.fullmatch(
        r"\{\.data(?:\.((?:[^.\\}]|\\.)+)|\[['\"]([^'\"]+)['\"]\])\}", jsonpath.strip("'\"")
    )
    if not match:
        return None
    key = (match[1] or match[2]).replace("\\.", ".")
    data = _secret_data(obj)
    if key not in data:
        raise CommandError(
            f"Secret '{obj.name}' has no key '{key}'{closest(key, list(data))}; keys: "
            f"{', '.join(sorted(data))}"
        )
    return data[key]


def _secret_data(obj: K8sObject) -> dict[str, str]:
    """A Secret's `data` as the API server answers it: stringData merged in, base64-encoded
    (the Secret type's documented write-only field), values the model does not know empty."""
    data = {str(k): str(v or "") for k, v in dict(obj.doc.get("data") or {}).items()}
    for key, value in dict(obj.doc.get("stringData") or {}).items():
        data[str(key)] = base64.b64encode(str(value or "").encode()).decode()
    return data


def _secret_json(obj: K8sObject) -> str:
    """`kubectl get secret NAME -o json`: the object as the API server answers it, its data
    base64 (_secret_data); enough for a pipeline's filters (jq) to run on it for real."""
    answer = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": obj.name, "namespace": obj.namespace},
        "type": str(obj.doc.get("type") or "Opaque"),
        "data": _secret_data(obj),
    }
    return json.dumps(answer, indent=4) + "\n"


# -- reading a command line as kubectl reads it ---------------------------------------------


@dataclass
class Args(FlagQueries):
    """A kubectl command line: its subcommand path, positionals and flags (in order)."""

    path: list[str] = field(default_factory=list)  # e.g. ["rollout", "status"]
    positional: list[str] = field(default_factory=list)
    flags: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def sub(self) -> str:
        return self.path[0] if self.path else ""


def binary() -> str:
    return missing.require("kubectl", CommandError)


@cache
def _global(kubectl: str) -> Options:
    return parse_help(help_text(kubectl, "options"))


def _flag(word: str, following: str | None, known: Options) -> tuple[list[tuple[str, Any]], bool]:
    """The flags one word holds ((name, value) pairs), and whether it took the next word."""
    if word.startswith("--"):
        name, eq, value = word.partition("=")
        if eq:
            return [(name, value)], False
        if name in known.valued:
            return [(name, following)], following is not None
        return [(name, None)], False
    short = word[:2]
    if len(word) == 2:
        if short in known.valued:
            return [(short, following)], following is not None
        return [(short, None)], False
    if short in known.valued:  # -oyaml, -n=betrace
        return [(short, word[2:].removeprefix("="))], False
    if word[2] == "=":  # -w=false: pflag's '-f=arg' gives a boolean flag its value too
        return [(short, word[3:])], False  # (parseSingleShortArg, flag.go of spf13/pflag v1.0.9)
    return [(f"-{c}", None) for c in word[1:]], False  # -it: several boolean flags


def parse(argv: list[str], kubectl: str) -> Args:
    """Split a kubectl command line as kubectl does, and refuse a flag it does not have."""
    args = Args()
    known = _global(kubectl)
    rest = argv[1:]
    i = 0
    while i < len(rest):
        word = rest[i]
        if word == "--":  # kubectl exec ... -- COMMAND: the rest belongs to the command
            args.positional.extend(rest[i:])
            break
        if word.startswith("-") and word != "-":
            following = rest[i + 1] if i + 1 < len(rest) else None
            found, took = _flag(word, following, known)
            args.flags.extend(found)
            i += 1 + took
            continue
        if not args.positional and word in subcommands(kubectl, *args.path):
            args.path.append(word)
            known = _global(kubectl) | options(kubectl, *args.path)
        else:
            args.positional.append(word)
        i += 1
    for name, _ in args.flags:
        if name not in known.names:
            command = " ".join(["kubectl", *args.path])
            raise CommandError(
                f"{command} has no flag '{name}'{closest(name, sorted(known.names))} "
                f"(see `{command} --help`)"
            )
    return args


# -- handlers: one per subcommand --------------------------------------------------------------

#: a handler may return what the command prints, when kubectl itself produced it offline
Handler = Callable[[Invocation, str, Args], str | None]


def _files(inv: Invocation, args: Args) -> list[tuple[str, str]]:
    """(name, text) of each manifest -f names: files of the sandbox, or the here-document."""
    out = []
    for value in args.all("-f", "--filename"):
        if re.match(r"^[a-z][a-z0-9+.-]*://", value):
            raise CommandError(
                f"-f {value}: the gate cannot check a remote manifest offline; save the file in "
                "the repository and apply it from there"
            )
        if value == "-":
            if inv.command.heredoc is None:
                raise CommandError("-f - reads a manifest from stdin: give it a here-document")
            out.append(("<here-document>", inv.command.heredoc.rsplit("\n", 1)[0] + "\n"))
            continue
        if not inv.session.where(value).is_file():
            raise CommandError(f"the file '{value}' does not exist at this point of the page")
        out.append((value, inv.session.read(value)))
    return out


def _apply(inv: Invocation, ns: str, args: Args) -> None:
    files = _files(inv, args)
    if not files:
        raise CommandError(f"kubectl {args.sub} needs -f FILE (a manifest the page saved)")
    for name, text in files:
        docs = _documents(name, text, ns, args)
        custom = [d for d in docs if isinstance(d, dict) and gitops.modelled(d)]
        for doc in custom:
            _check_gitops(inv, name, doc, (docs, ns))
        problems = validate_kubernetes(
            [Manifest(name, d) for d in docs if not any(d is c for c in custom)],
            [inv.session.release.current.kubernetes.minimum],
        )
        if problems:
            raise CommandError(f"{name}: {problems[0]}")
        # Values of the backend's variables follow the one rule of backend_env.py.
        data = inv.session.release
        problems = backend_env.manifest_problems(docs, data, inv.session.world.backend_in(data))
        if problems:
            raise CommandError(f"{name}: {problems[0]}")
        if args.has("--dry-run"):
            continue
        unpushed = inv.session.world.unpushed(docs)
        if unpushed is not None:
            raise CommandError(f"{name}: {unpushed}")
        unpublished = inv.session.world.unpublished(docs, data)
        if unpublished is not None:
            raise CommandError(
                f"{name}: {unpublished}: name the image the page pushed to the reader's registry"
            )
        # kubectl apply, and kubectl create --save-config, leave the last-applied configuration
        applied = args.sub == "apply" or args.has("--save-config")
        for doc in docs:
            _join(inv.session.world, doc, ns, f"kubectl {args.sub}", applied)
        _provisioning_still_holds(inv, name)


def _documents(name: str, text: str, ns: str, args: Args) -> list[dict[str, Any]]:
    """The objects of a manifest, each one kubectl would send (_shape_problem,
    _placement_problem), without its empty documents."""
    try:  # bounded: a manifest written by a page may be an alias bomb
        loaded = yamlio.as_kubernetes_reads(text, name)  # as kubectl reads it: YAML 1.1
    except ProblemsError as exc:
        raise CommandError(str(exc.problems[0])) from None
    for number, doc in enumerate(loaded, start=1):
        problem = _shape_problem(doc)
        if problem is None and doc:
            problem = _placement_problem(doc, ns, args)
        if problem is not None:
            raise CommandError(f"{name}: document {number} {problem}")
    return [d for d in loaded if d]


#: how a YAML value that is not a mapping reads in a message
_YAML_KINDS = {
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
}


def _shape_problem(doc: Any) -> str | None:
    """What makes a manifest's document no Kubernetes object, which kubectl refuses before it
    sends anything (and the schema validator fails on): a document that is not a mapping, an
    apiVersion or kind that is not a string, metadata that is not a mapping. None when it is
    one, or empty (kubectl skips an empty document)."""
    if doc is None or doc == {}:
        return None
    if not isinstance(doc, dict):
        what = _YAML_KINDS.get(type(doc), "a scalar")
        return f"is {what}, not a mapping: a Kubernetes object maps apiVersion, kind, metadata"
    for key in ("apiVersion", "kind"):
        value = doc.get(key)
        if not isinstance(value, str) or not value:
            return f"is no Kubernetes object: its {key} is {value!r}, where kubectl needs a string"
    if doc.get("metadata") is not None and not isinstance(doc["metadata"], dict):
        return f"({doc['kind']}): its metadata is {doc['metadata']!r}, not a mapping"
    return None


def _placement_problem(doc: dict[str, Any], ns: str, args: Args) -> str | None:
    """What kubectl itself refuses in a document's metadata, before it asks the cluster: an
    object without a name, and one whose metadata.namespace is not the one -n names (of a
    namespaced kind; without -n, the object's own namespace wins)."""
    meta = doc.get("metadata") or {}
    kind = doc["kind"]
    if not meta.get("name"):
        return f'({kind}) has no metadata.name: kubectl answers "resource name may not be empty"'
    own = meta.get("namespace")
    if kind in CLUSTER_SCOPED or not own or not args.get("-n", "--namespace") or own == ns:
        return None
    return (
        f"({kind} '{meta['name']}'): kubectl answers \"the namespace from the provided object "
        f'"{own}" does not match the namespace "{ns}". You must pass '
        f"'--namespace={own}' to perform this operation.\""
    )


def _provisioning_still_holds(inv: Invocation, name: str) -> None:
    """What the step changed (a ConfigMap, a Service, a workload's named port) after a Grafana
    release mounted the app's provisioning file: its backend URL is checked as at the release's
    install (grafana_app.py)."""
    found = world_problem(inv.session.world, inv.session.release)
    if found is not None:
        release, problem = found
        raise CommandError(f"{name}: {problem} (mounted by Grafana's release {release})")


def _check_gitops(
    inv: Invocation, name: str, doc: dict[str, Any], applied: tuple[list[Any], str]
) -> None:
    """An Argo CD Application, Flux HelmRelease or GitRepository: its CRD's schema, the chart's
    source (a HelmRelease's sourceRef, an object this file or an earlier step makes), and a
    render of its values that is the same every time (gitops.py) and whose pods find what they
    reference in the namespace the tool installs into."""
    problems = crd_schemas.schema_problems(doc) + gitops.source_problems(doc, inv.session.release)
    placed = (doc.get("metadata") or {}).get("namespace") or applied[1]
    problems += filter(None, [gitops.argo_namespace_problem(doc, str(placed))])
    if problems:
        raise CommandError(f"{name}: {problems[0]}")
    _source_made(inv.session.world, name, doc, applied)
    values = gitops.chart_values(doc)
    if values is None:
        return
    chart = inv.session.repo / gitops.CHART_PATH
    release = gitops.release_name(doc)
    target = (doc.get("spec") or {}).get("targetNamespace") or (
        ((doc.get("spec") or {}).get("destination") or {}).get("namespace") or "default"
    )
    # JSON is YAML: Helm reads it as a values file; written by descriptor in a folder of the
    # page's user, never where a link of the page leads (session.scratch)
    values_file = inv.session.write_scratch(
        inv.session.scratch(), "values.json", json.dumps(values)
    )
    renders: list[str] = []

    def render() -> str:
        renders.append(render_text(inv.session, chart, release, str(target), values_file))
        return renders[-1]

    try:
        unstable = gitops.unstable_objects(render)
    except HelmError as exc:
        raise CommandError(f"{name}: Helm rejects the {doc.get('kind')}'s values: {exc}") from None
    _found_in(inv.session.world, name, doc, str(target), renders[-1])
    if unstable:
        raise CommandError(
            f"{name}: the {doc.get('kind')}'s values render differently each time "
            f"({', '.join(unstable)}): the chart generates that Secret where it sees no cluster, "
            "so the application never stays in sync; name Secrets created beforehand in "
            "backend.signatureKey.existingSecret and grafana.admin.existingSecret"
        )


def _source_made(
    world: World, name: str, doc: dict[str, Any], applied: tuple[list[Any], str]
) -> None:
    """A Flux HelmRelease's chart comes from the source object its sourceRef names (kind,
    name, and its namespace or the HelmRelease's): helm-controller finds nothing otherwise."""
    ref = (((doc.get("spec") or {}).get("chart") or {}).get("spec") or {}).get("sourceRef")
    if not isinstance(ref, dict):
        return
    docs, ns = applied
    own = (doc.get("metadata") or {}).get("namespace") or ns
    where = str(ref.get("namespace") or own)
    made = [
        (str(d.get("kind")), str((d.get("metadata") or {}).get("name")))
        for d in docs
        if isinstance(d, dict) and ((d.get("metadata") or {}).get("namespace") or ns) == where
    ]
    made += [(o.kind, o.name) for o in world.all_objects(where)]
    wanted = (str(ref.get("kind")), str(ref.get("name")))
    if wanted not in made:
        raise CommandError(
            f"{name}: the {doc.get('kind')}'s sourceRef names {wanted[0]} '{wanted[1]}' in "
            f"namespace '{where}', which neither this file nor an earlier step makes: the "
            "controller finds no chart until it exists, so make it first"
        )


def _found_in(world: World, name: str, doc: dict[str, Any], target: str, rendered: str) -> None:
    """The pods of the application's render find every Secret, ConfigMap and claim they need
    in the namespace the tool installs into (the render's own, or ones made before)."""
    try:
        objects = [d for d in yamlio.safe_load_all(rendered, "render") if isinstance(d, dict)]
    except ProblemsError:
        return  # Helm rendered it: not reached
    rendered_objects = [
        K8sObject(str(o.get("kind")), str(_meta(o).get("name")), target, o, "render")
        for o in objects
    ]
    made = {(o.kind, o.name) for o in [*rendered_objects, *world.all_objects(target)]}
    for obj in rendered_objects:
        for kind, needed, _ in obj.references():
            if (kind, needed) not in made:
                raise CommandError(
                    f"{name}: the {doc.get('kind')} installs into namespace '{target}', where "
                    f"{obj.kind} '{obj.name}' needs {kind} '{needed}', which neither the chart "
                    "nor an earlier step makes there: its pods do not start until it exists, "
                    "so make it first"
                )


def _meta(doc: dict[str, Any]) -> dict[str, Any]:
    meta = doc.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _join(world: World, doc: dict[str, Any], ns: str, source: str, applied: bool) -> None:
    """The object a manifest makes joins the world: a new one, or in place of the one kubectl
    apply made before (_replaceable)."""
    meta = doc.get("metadata") or {}
    if doc.get("kind") == "Namespace":
        name = meta.get("name", "")
        problem = world.terminating_problem(name)
        if problem is not None:
            raise CommandError(problem)
        if source == "kubectl create" and name in world.namespaces:
            raise CommandError(
                f"namespace '{name}' exists already: kubectl create answers AlreadyExists; "
                "delete it first, or make it with kubectl apply"
            )
        world.namespaces.add(name)
        return
    obj = K8sObject(
        doc.get("kind", ""), meta.get("name", ""), meta.get("namespace") or ns, doc, source, applied
    )
    obj.helm = _helm_owner(meta)
    # a GitOps controller's object goes where the reader installed the controller (argocd,
    # flux-system), a namespace of its install, outside the page
    if obj.namespace and obj.namespace not in world.namespaces and not gitops.modelled(doc):
        raise CommandError(
            f"{obj.kind} '{obj.name}': namespace '{obj.namespace}' does not exist at this point "
            f"of the page, and the cluster answers NotFound; create it first (kubectl create "
            f"namespace, or a Namespace earlier in the manifest); "
            f"{listing('namespaces', list(world.namespaces))}"
        )
    existing = world.existing(obj)
    if existing is not None:
        _replaceable(world, existing, source)
    world.started([obj], waited=False)
    world.objects = [o for o in world.objects if o is not existing]
    world.objects.append(obj)


def _helm_owner(meta: dict[str, Any]) -> tuple[str, str] | None:
    """(namespace, name) of the Helm release whose ownership metadata a manifest gives its
    object, which that release then takes over at its install or upgrade (Helm 3.2 and later:
    checkOwnership in pkg/action/validate.go at helm/helm v3.11.1 and v4.1.4 asks for the
    label app.kubernetes.io/managed-by=Helm and both annotations), or None."""
    labels, notes = meta.get("labels"), meta.get("annotations")
    labels = labels if isinstance(labels, dict) else {}
    notes = notes if isinstance(notes, dict) else {}
    name = notes.get("meta.helm.sh/release-name")
    namespace = notes.get("meta.helm.sh/release-namespace")
    if labels.get("app.kubernetes.io/managed-by") != "Helm" or not name or not namespace:
        return None
    return str(namespace), str(name)


def _already_exists(kind: str, name: str, ns: str) -> CommandError:
    return CommandError(
        f"{kind} '{name}' exists already in namespace '{ns}': kubectl create answers "
        "AlreadyExists; change it with kubectl apply, or delete it first"
    )


#: kubectl apply's own warning over an object without its last-applied configuration, which
#: then patches the object (tests/test_kubectl_facts.py finds it in the installed kubectl)
APPLY_WARNING = (
    "kubectl apply should only be used on resources created declaratively by either kubectl "
    "create --save-config or kubectl apply"
)


def _replaceable(world: World, existing: K8sObject, source: str) -> None:
    """A manifest of an object that exists: kubectl create refuses it (AlreadyExists); kubectl
    apply makes the object the manifest where kubectl apply made it before (its last-applied
    configuration says what to remove), and otherwise merges the manifest into what is there
    (a strategic merge: containers and variables by name, the object's others kept), which the
    models do not work out, so that is refused. A Helm release's object is Helm's besides: its
    next upgrade or rollback puts the chart's back, and its uninstall deletes it."""
    kind, name, ns = existing.kind, existing.name, existing.namespace
    if source == "kubectl create":
        raise _already_exists(kind, name, ns)
    release = world.owner(existing)
    if release is not None:
        raise CommandError(
            f"{kind} '{name}' belongs to Helm release '{release.name}' (namespace "
            f"'{release.namespace}'): {APPLY_WARNING}; over Helm's object it merges the manifest "
            "into it, which the gate does not model, and the release's next upgrade puts the "
            "chart's back: change it through the release's values"
        )
    if not existing.applied:
        raise CommandError(
            f"{kind} '{name}' in namespace '{ns}' was made by {existing.source} without "
            f"--save-config: {APPLY_WARNING}; over it, it merges the manifest into the object, "
            "which the gate does not model: make the object with kubectl apply in the first "
            "place, or delete it first"
        )


def _generate(inv: Invocation, ns: str, args: Args) -> str | None:
    """`kubectl create KIND NAME ...`: the real kubectl, offline, prints the object."""
    dry_run = args.get("--dry-run")
    if dry_run not in (None, "client", "none"):
        raise CommandError(
            f"--dry-run={dry_run} needs an API server; --dry-run=client runs offline"
        )
    argv = [binary(), "--kubeconfig=/dev/null", *inv.argv[1:]]
    if dry_run is None:  # the page creates it: learn the object kubectl would send
        argv += ["--dry-run=client", "-o", "yaml"]
    done = inv.session.process(argv)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise CommandError(f"kubectl refuses it: {' '.join(detail[:2])}")
    _write_redirects(inv, done.stdout)
    if dry_run is None:
        created = yamlio.safe_load(done.stdout, "kubectl output")
        meta = created.get("metadata") or {} if isinstance(created, dict) else {}
        where = "" if created.get("kind") in CLUSTER_SCOPED else meta.get("namespace") or ns
        if inv.session.world.find(where, created.get("kind", ""), meta.get("name", "")):
            raise _already_exists(str(created.get("kind")), str(meta.get("name")), where)
        unpublished = inv.session.world.unpublished([created], inv.session.release)
        if unpublished is not None:
            raise CommandError(f"{unpublished}: name the image the page pushed")
        _join(inv.session.world, created, ns, "kubectl create", args.has("--save-config"))
        _provisioning_still_holds(inv, f"kubectl create {created.get('kind', '').lower()}")
        return None  # what kubectl prints against a cluster ("secret/x created") is not known
    return "" if inv.command.redirects else done.stdout


def _write_redirects(inv: Invocation, output: str) -> None:
    """What the page sends to a file (`> secret.yaml`) is what kubectl printed."""
    inv.session.confine(inv.command, inv.argv)
    for operator, raw in inv.command.redirects:
        inv.session.write(inv.session.expand_target(raw), output, append=operator == ">>")


def _create(inv: Invocation, ns: str, args: Args) -> str | None:
    if len(args.path) > 1:
        return _generate(inv, ns, args)
    _apply(inv, ns, args)
    return None


def _names(world: World, ns: str, kind: str, names: list[str], args: Args) -> str | None:
    """Each name exists as the kind; for `get` of one Secret with `-o json` or a JSONPath of
    its data, what kubectl prints (else None: not modelled)."""
    printed = None
    for name in names:
        if kind == "Namespace":
            if name not in world.namespaces:
                raise CommandError(f"no namespace '{name}'{closest(name, list(world.namespaces))}")
        elif kind in _CLUSTER_SCOPED or kind == "all":
            continue  # cluster objects (nodes, storage classes) are the reader's own
        else:
            obj = _object(world, ns, kind, name)
            output = str(args.get("-o", "--output") or "")
            jsonpath = output.removeprefix("jsonpath=")
            if kind == "Secret" and jsonpath.startswith(("{", "'{", '"{')):
                printed = _jsonpath_secret(obj, jsonpath)
            elif kind == "Secret" and output == "json":
                printed = _secret_json(obj)
    return printed if len(names) == 1 and args.sub == "get" else None


def _get(inv: Invocation, ns: str, args: Args) -> str | None:
    """get / describe / delete: the kinds and names must exist at this point of the page; what
    `get` of one Secret prints, where _names models it."""
    world, pos = inv.session.world, args.positional
    printed = None
    if args.all("-f", "--filename"):
        _files(inv, args)
        return None
    if not pos:
        raise CommandError(f"kubectl {args.sub} needs a resource type")
    first = pos[0]
    if "/" in first:
        for ref in pos:
            _target(world, ns, ref)
        _decoded(inv, _kind(first.partition("/")[0]), args)
    elif "," in first:
        for word in first.split(","):  # several kinds at once: each must be a kind, and each
            _names(world, ns, _kind(word), pos[1:], args)  # name given must exist as each
    else:
        printed = _names(world, ns, _kind(first), pos[1:], args)
        _decoded(inv, _kind(first), args)
    selector = args.get("-l", "--selector")
    if selector and not world.selected(ns, _selector(selector)):
        raise CommandError(f"no pods in namespace '{ns}' match '{selector}'")
    return printed


def _decoded(inv: Invocation, kind: str, args: Args) -> None:
    """A Secret's `.data` read with a JSONPath is base64 (the API keeps it so): printed to the
    reader with no pipe or redirect, it is not the value. A pipe decides for itself (its filters
    run for real on what the model prints), and so does the command a substitution feeds."""
    output = str(args.get("-o", "--output") or "").removeprefix("jsonpath=").strip("'\"")
    if kind != "Secret" or not re.match(r"\{\s*\.data\b", output):
        return
    if inv.command.pipeline[1] == 1 and not inv.command.redirects and not inv.substituted:
        raise CommandError(
            f"prints the Secret's {output} base64-encoded, as the API keeps a Secret's data: "
            "that is not the value; pipe it to `base64 --decode`"
        )


#: kinds a pod uses by name: deleting one that a pod still uses breaks that pod's next start
_USED_BY_PODS = frozenset({"ConfigMap", "Secret", "PersistentVolumeClaim"})


def _deleted(inv: Invocation, ns: str, args: Args) -> list[tuple[str, str]]:
    """(kind, name) of what a delete (or a rollout or wait, with -f) names: `KIND NAME...`,
    `KIND/NAME...` or -f manifests."""
    pos = args.positional
    if args.all("-f", "--filename"):
        try:  # bounded: the manifests are the page's files (an alias bomb is refused)
            docs = [
                d
                for name, text in _files(inv, args)
                for d in yamlio.as_kubernetes_reads(text, name)
            ]
        except ProblemsError as exc:
            raise CommandError(str(exc.problems[0])) from None
        return [
            (str(d.get("kind")), str((d.get("metadata") or {}).get("name")))
            for d in docs
            if isinstance(d, dict)
        ]
    if pos and "/" in pos[0]:
        return [(_kind(ref.partition("/")[0]), ref.partition("/")[2]) for ref in pos]
    if len(pos) < 2:
        return []
    return [(_kind(word), name) for word in pos[0].split(",") for name in pos[1:]]


def _delete(inv: Invocation, ns: str, args: Args) -> None:
    """The objects must exist; a ConfigMap, Secret or claim a pod of the page still uses is not
    deleted (the pod would not start again: take it out of that workload first)."""
    _get(inv, ns, args)
    world = inv.session.world
    deleted = _deleted(inv, ns, args)
    staying = [o for o in world.all_objects(ns) if (o.kind, o.name) not in deleted]
    for kind, name in deleted:
        if kind == "Namespace":
            world.drop_namespace(name)
            if args.has("--wait") and not args.on("--wait"):  # --wait=false, as pflag reads it
                world.terminating.add(name)
            continue
        users = [o for o in staying if any(r[:2] == (kind, name) for r in o.references())]
        if kind in _USED_BY_PODS and users:
            user = users[0]
            raise CommandError(
                f"{user.kind} '{user.name}' ({user.source}) still uses {kind} '{name}': its pods "
                "would not start again; take it out of that workload first (for a Helm release, "
                "an upgrade that drops it), then delete it"
            )
        _remove(world, ns, kind, name)


def _remove(world: World, ns: str, kind: str, name: str) -> None:
    """The object leaves the cluster: the page's own, or a Helm release's, which the release's
    record keeps (HelmRelease.delete; a workload's pods go with it, so a Service over them
    selects none, and a port-forward to one of them ends: World.ended)."""
    where = "" if kind in CLUSTER_SCOPED else ns
    world.objects = [
        o for o in world.objects if (o.kind, o.name, o.namespace) != (kind, name, where)
    ]
    for release in world.releases.values():
        for obj in release.present():
            if (obj.kind, obj.name, obj.namespace) == (kind, name, where):
                release.delete(obj)


def _logs(inv: Invocation, ns: str, args: Args) -> None:
    world, pos = inv.session.world, args.positional
    selector = args.get("-l", "--selector")
    if selector:
        targets = world.selected(ns, _selector(selector))
    else:
        targets = [_target(world, ns, pos[0])] if pos else []
    if not targets:
        raise CommandError(f"kubectl logs: nothing in namespace '{ns}' matches {selector or pos}")
    container = args.get("-c", "--container")
    if container:
        _container(targets[0], container)


def _refs(inv: Invocation, ns: str, args: Args) -> None:
    """rollout / wait / exec / top: every kind/name they name must exist."""
    pos = args.positional
    targets = pos[: pos.index("--")] if "--" in pos else pos  # after --: exec's own command
    for ref in (p for p in targets if "/" in p):
        _target(inv.session.world, ns, ref)


#: what kubectl rollout ACTION fails with on a kind it has no implementation for, and the
#: kinds it has one for (pkg/polymorphichelpers of kubernetes/kubectl v0.35.0: rollout_status.go
#: StatusViewerFor, objectrestarter.go, rollback.go RollbackerFor, history.go HistoryViewerFor,
#: objectpauser.go; the last two messages quote the kind as Go's %q does)
_ROLLOUT_KINDS = frozenset({"Deployment", "DaemonSet", "StatefulSet"})
_NO_ROLLOUT = {
    "status": "no status viewer has been implemented for {kind}",
    "restart": "{plural} {name!r} restarting is not supported",
    "undo": 'no rollbacker has been implemented for "{kind}"',
    "history": 'no history viewer has been implemented for "{kind}"',
    "pause": "{plural} {name!r} pausing is not supported",
    "resume": "{plural} {name!r} resuming is not supported",
}


def _rollable(action: str, kind: str, name: str) -> None:
    """kubectl rollout ACTION fails on an object of a kind it cannot roll out (_NO_ROLLOUT):
    pause and resume work on Deployments only, the others on _ROLLOUT_KINDS."""
    kinds = {"Deployment"} if action in ("pause", "resume") else _ROLLOUT_KINDS
    said = _NO_ROLLOUT.get(action)
    if said is None or kind in kinds:
        return
    plural = kind.lower() + ("es" if kind.endswith("s") else "s")
    raise CommandError(
        f'kubectl rollout {action} {kind.lower()}/{name}: kubectl answers "'
        + said.format(kind=kind, plural=plural, name=name).replace("'", '"')
        + f'"; it rolls out {", ".join(sorted(kinds))} only'
    )


def _rollout(inv: Invocation, ns: str, args: Args) -> None:
    """`rollout status` (unless --watch=false) returns once the rollout is done: the pods it
    names run. `rollout restart` and `undo` make new pods (World.started, unwaited). A kind
    kubectl cannot roll out fails (_rollable)."""
    _refs(inv, ns, args)
    world, action = inv.session.world, args.path[1] if len(args.path) > 1 else ""
    watches = not args.has("-w", "--watch") or args.on("-w", "--watch")
    named = _named(world, ns, args) + _from_files(inv, ns, args)
    for kind, obj in named:
        _rollable(action, kind, obj.name)
    for _, obj in named:
        if action == "status" and watches:
            _starts(world, "kubectl rollout status", obj)
            world.waited(obj)
        elif action in ("restart", "undo"):
            world.unready.add(obj.identity)


#: The condition types a kind's objects get (those k8s.io/api v0.35.0 declares: PodConditionType
#: in core/v1, DeploymentConditionType and ReplicaSetConditionType in apps/v1, which has none for
#: StatefulSet, "TODO: Add valid condition types for Statefulsets", nor DaemonSet, and
#: JobConditionType in batch/v1), lower-cased as kubectl compares them; of each, the ones whose
#: truth means the pods run. kubectl wait for a condition its object never gets waits until
#: --timeout (30 s) and fails.
_CONDITIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "Pod": (
        frozenset({
            "podscheduled", "podreadytostartcontainers", "initialized", "containersready",
            "ready", "disruptiontarget", "podresizepending", "podresizeinprogress",
            "allcontainersrestarting",
        }),
        frozenset({"ready", "containersready"}),
    ),
    "Deployment": (
        frozenset({"available", "progressing", "replicafailure"}),
        frozenset({"available"}),
    ),
    "ReplicaSet": (frozenset({"replicafailure"}), frozenset()),
    "StatefulSet": (frozenset(), frozenset()),
    "DaemonSet": (frozenset(), frozenset()),
    "Job": (
        frozenset({"suspended", "complete", "failed", "failuretarget", "successcriteriamet"}),
        frozenset(),
    ),
}  # fmt: skip

#: what kubectl wait fails with once its --timeout passes, before the resource/name (the
#: expectedErr of pkg/cmd/wait/wait_test.go, kubernetes/kubectl v0.35.0)
WAIT_TIMEOUT = "timed out waiting for the condition on"


def _condition(args: Args) -> tuple[str, bool] | None:
    """--for=condition=NAME[=VALUE] as kubectl reads it (conditionFuncFor, pkg/cmd/wait/wait.go
    of kubernetes/kubectl v0.35.0: VALUE is true when left out, and both are compared after
    case folding, ConditionalWait.checkCondition in condition.go): (NAME lower-cased, whether
    VALUE is true), or None for another --for (create, delete, jsonpath=)."""
    given = str(args.get("--for") or "")
    if not given.startswith("condition="):  # the prefix is matched as written
        return None
    name, _, value = given.removeprefix("condition=").partition("=")
    return name.lower(), (value or "true").lower() == "true"


#: what a pod's fields say once it runs, by the JSONPath kubectl wait reads them at (without
#: its braces and leading dot): its phase (which kubectl port-forward and exec need to be
#: Running), its Ready and ContainersReady conditions; `kubectl wait --help` gives the first two
_POD_RUNS = {
    "status.phase": "Running",
    'status.conditions[?(@.type=="Ready")].status': "True",
    'status.conditions[?(@.type=="ContainersReady")].status': "True",
}


def _jsonpath_runs(args: Args) -> bool:
    """--for=jsonpath=EXPRESSION=VALUE says a pod runs (_POD_RUNS). kubectl splits the text at
    each single '=' ('==' stays), takes the expression with or without its braces and leading
    dot, trims quotes and spaces from the value and compares it as written
    (processJSONPathInput, splitJSONPathInput in pkg/cmd/wait/wait.go, compareResults in
    json.go, kubernetes/kubectl v0.35.0)."""
    given = str(args.get("--for") or "")
    if not given.startswith("jsonpath="):
        return False
    parts = re.split(r"(?<!=)=(?!=)", given.removeprefix("jsonpath="))
    if len(parts) != 2:
        return False
    expression = parts[0].strip().removeprefix("{").removesuffix("}").removeprefix(".")
    return _POD_RUNS.get(expression) == parts[1].strip("'\"").strip()


def _wait(inv: Invocation, ns: str, args: Args) -> None:
    """`kubectl wait --for=condition=Ready pod/NAME` (or Available, for a Deployment) returns
    once the condition is true: the pods run; so does a pod's wait for a JSONPath that says it
    runs (_jsonpath_runs). Other conditions (Progressing, or Ready=false), create, delete and
    other JSONPaths say nothing of it. A condition the kind never gets (_CONDITIONS: Ready of
    a Deployment, say) times out."""
    world = inv.session.world
    pos = args.positional
    given = str(args.get("--for") or "").lower()
    if pos and "/" not in pos[0] and KINDS.get(pos[0].lower()) == "Namespace":
        gone = pos[1:]  # TYPE NAME...
    else:
        gone = [
            n for k, _, n in (p.partition("/") for p in pos) if KINDS.get(k.lower()) == "Namespace"
        ]
    if given == "delete" and gone and world.terminating >= set(gone):
        world.terminating.difference_update(gone)  # the namespaces' deletion has ended
        return
    _refs(inv, ns, args)
    _some_match(world, ns, args)
    if given == "create":
        _made(world, ns, args)
        return
    objects = _named(world, ns, args) + _from_files(inv, ns, args)
    condition = _condition(args)
    if condition is not None:
        for kind, obj in objects:
            _has_condition(kind, obj, condition[0])
    if given != "delete":
        _pods_made(world, objects)
    for kind, obj in objects:
        if kind == "Job" and condition == ("complete", True):
            _starts(world, "kubectl wait", obj)  # a Job completes only once its pod has run
        if _says_running(args, condition, kind):
            _checked_once(world, args, kind, obj)
            _starts(world, "kubectl wait", obj)
            world.waited(obj)


def _starts(world: World, waiting: str, obj: K8sObject) -> None:
    """A wait for pods that never start (World.never_starts) runs into its timeout."""
    problem = world.never_starts(obj)
    if problem is not None:
        raise CommandError(
            f"{waiting}: {problem}: its pods never start, and the wait fails at its timeout"
        )


def _says_running(args: Args, condition: tuple[str, bool] | None, kind: str) -> bool:
    """Whether a wait's --for, once met, says the kind's pods run."""
    if condition is None:
        return kind == "Pod" and _jsonpath_runs(args)
    name, true = condition
    return true and name in _CONDITIONS.get(kind, (None, frozenset()))[1]


def _has_condition(kind: str, obj: K8sObject, name: str) -> None:
    """A wait for a condition the kind never gets times out (_CONDITIONS)."""
    known = _CONDITIONS.get(kind, (None, frozenset()))[0]
    if known is not None and name not in known:
        ref = f"{kind.lower()}/{obj.name}"
        fix = {"Pod": "condition=Ready", "Job": "condition=complete"}.get(
            kind, f"`kubectl rollout status {ref}`"
        )
        raise CommandError(
            f"kubectl wait: {kind} '{obj.name}' never has a condition '{name}' (its kind's: "
            f"{', '.join(sorted(known)) or 'none'}): kubectl waits until --timeout, then "
            f'fails with "{WAIT_TIMEOUT} {kind.lower()}s/{obj.name}"; wait with {fix}'
        )


#: a Go duration of zero (time.ParseDuration: "0", or zeros each with a unit)
_ZERO_DURATION = re.compile(r"[+-]?(0|((0+(\.0*)?|\.0+)(ns|us|µs|μs|ms|s|m|h))+)")


def _checked_once(world: World, args: Args, kind: str, obj: K8sObject) -> None:
    """kubectl wait with a --timeout of zero checks once and does not wait ("Zero means check
    once and don't wait", the flag's help in pkg/cmd/wait/wait.go of kubernetes/kubectl
    v0.35.0): over pods nothing waited for yet (World.not_running) it fails."""
    timeout = args.get("--timeout")
    problem = world.not_running(obj)
    if timeout is None or not _ZERO_DURATION.fullmatch(timeout) or problem is None:
        return
    raise CommandError(
        f"kubectl wait {timeout} checks once and does not wait: {problem}, and it fails with "
        f'"{WAIT_TIMEOUT} {kind.lower()}s/{obj.name}"; give it a --timeout long enough (2m)'
    )


def _from_files(inv: Invocation, ns: str, args: Args) -> list[tuple[str, K8sObject]]:
    """The objects of the manifests -f names (rollout and wait take -f as every resource
    builder does: FilenameParam in rollout_status.go, the FilenameOptions of wait.go,
    kubernetes/kubectl v0.35.0), each of which must exist."""
    if not args.all("-f", "--filename"):
        return []
    world = inv.session.world
    return [(kind, _object(world, ns, kind, name)) for kind, name in _deleted(inv, ns, args)]


def _some_match(world: World, ns: str, args: Args) -> None:
    """kubectl wait that visits no object fails, unless it waits for a delete: "no matching
    resources found" (RunWait and errNoMatchingResources in pkg/cmd/wait/wait.go of
    kubernetes/kubectl v0.35.0). Told here for a selector or --all over pods and workloads, the
    kinds whose objects the page's world knows all of."""
    pos = [p for p in args.positional if p != "--"]
    if not (args.get("-l", "--selector") or args.on("--all")) or len(pos) != 1:
        return
    if str(args.get("--for") or "").lower() == "delete" or _kind(pos[0]) not in WORKLOADS:
        return
    if not _named(world, ns, args):
        raise CommandError(
            f"kubectl wait: no {pos[0]} in namespace '{ns}' (or, with -A, any) match "
            f"{args.get('-l', '--selector') or '--all'}, and kubectl fails: "
            '"no matching resources found"'
        )


def _pods_made(world: World, picked: list[tuple[str, K8sObject]]) -> None:
    """kubectl wait lists the objects once, when it starts (RunWait in pkg/cmd/wait/wait.go of
    kubernetes/kubectl v0.35.0: only a wait for `create` polls until they exist). Pods of a
    workload an earlier command made, with no wait since (World.unmade), are made by its
    controller a moment after that command returned: listed too early, there are none, and
    kubectl fails with "no matching resources found" (or waits only for the pods that exist)."""
    early = [o for kind, o in picked if kind == "Pod" and o.identity in world.unmade]
    if early:
        o = early[0]
        raise CommandError(
            f"kubectl wait: the pods of {o.kind} '{o.name}' ({o.source}) may not exist yet: "
            "its controller makes them a moment after the command that created it returned, "
            "and kubectl wait lists pods once, when it starts, so it can fail with "
            f'"no matching resources found"; {_wait_for_made(o)}'
        )


def _made(world: World, ns: str, args: Args) -> None:
    """`kubectl wait --for=create` returns once the first of the objects it lists exists (the
    poll in RunWait, pkg/cmd/wait/wait.go of kubernetes/kubectl v0.35.0): over the pods of one
    workload, they exist now (whether they run is another wait); over several, which one's
    pods were found cannot be told, so none counts."""
    workloads = [o for kind, o in _named(world, ns, args) if kind == "Pod"]
    if len(workloads) == 1:
        world.unmade.discard(workloads[0].identity)


def _wait_for_made(workload: K8sObject) -> str:
    """The wait that outlasts a workload's controller making its pods."""
    ref = f"{workload.kind.lower()}/{workload.name}"
    if workload.kind in ("Deployment", "StatefulSet", "DaemonSet"):  # rollout's kinds
        return f"first wait with `kubectl rollout status {ref}`, which waits for them to be made"
    return (
        "first wait with `kubectl wait --for=create pod -l ...` and a selector of its pods "
        "only, which polls until they exist"
    )


def _named(world: World, ns: str, args: Args) -> list[tuple[str, K8sObject]]:
    """The objects a command names, as KIND/NAME or as KIND NAME..., or those of KIND a
    selector (or --all) picks; for pods, the workloads whose pods it picks (World.selected).
    Each with the kind the command named (Pod for the workloads whose pods it picks)."""
    pos = [p for p in args.positional if p != "--"]
    selector = args.get("-l", "--selector")
    if (selector or args.on("--all")) and len(pos) == 1:
        kind = _kind(pos[0])
        wanted = _selector(selector) if selector else {}
        # -A lists the kind in every namespace (wait.go's ResourceBuilderFlags
        # WithAllNamespaces, kubernetes/kubectl v0.35.0; rollout status has no -A)
        where = sorted(world.namespaces) if args.on("-A", "--all-namespaces") else [ns]
        if kind == "Pod":
            return [(kind, o) for n in where for o in world.selected(n, wanted)]
        # any other kind by its own labels, as kubectl lists it (not its pods')
        found = [o for n in where for o in world.all_objects(n) if o.kind == kind]
        return [(kind, o) for o in found if all(o.labels.get(k) == v for k, v in wanted.items())]
    if pos and "/" not in pos[0] and len(pos) > 1:
        return [(o.kind, o) for o in (_object(world, ns, _kind(pos[0]), n) for n in pos[1:])]
    return [(o.kind, o) for o in (_target(world, ns, ref) for ref in pos if "/" in ref)]


def _exec(inv: Invocation, ns: str, args: Args) -> None:
    """`kubectl exec TARGET [-c CONTAINER] -- PROGRAM ...`: the target exists, and where the
    container it runs in is the backend's (World.role), its image has the program; the image's
    contents are the Compose model's (artefacts/compose.py IMAGE_CONTENTS), the same images."""
    _refs(inv, ns, args)
    _stdin_passed(inv, args)
    pos = args.positional
    if "--" not in pos or pos.index("--") + 1 >= len(pos):
        return
    ref = next((p for p in pos[: pos.index("--")] if "/" in p), None)
    target = _target(inv.session.world, ns, ref) if ref else None
    for workload in inv.session.world.behind(ns, target) if target else []:
        _pod_runs(inv.session.world, workload, "exec")
    program = pos[pos.index("--") + 1].rsplit("/", 1)[-1]
    chosen = args.get("-c", "--container")
    entered = str(chosen) if chosen else ""
    for workload in inv.session.world.behind(ns, target) if target and entered else []:
        _container(workload, entered)
    if target is not None and _runs_backend(inv, ns, target, entered):
        problem = IMAGE_CONTENTS["backend"].exec_problem("backend", program)
        if problem is not None:
            raise CommandError(problem)
    if target is not None:
        _data_volume(inv, ns, target, entered, pos[pos.index("--") + 1 :])


def _fed(inv: Invocation) -> bool:
    """Whether the page feeds the command's standard input (a heredoc, a `<` file, a pipe)."""
    command = inv.command
    return command.heredoc is not None or bool(command.inputs) or command.pipeline[0] > 0


def _data_volume(
    inv: Invocation, ns: str, target: K8sObject, entered: str, argv: list[str]
) -> None:
    """An exec into a helper that mounts the backend's data volume (data_volume.py): what
    `cat` reads is there, and a restore fed through standard input is followed in the block by
    a restart of the backend on that claim."""
    world, data = inv.session.world, inv.session.release
    claims = data_volume.backend_claims(world, ns, data)
    for workload in world.behind(ns, target) if claims else []:
        pod = workload.pod_spec() or {}
        for container in _entered(workload, entered):
            mounts = data_volume.mounts_of(container, data_volume.claims_of(pod))
            mounted = {claim: path for claim, path in mounts.items() if claim in claims}
            if not mounted or world.role(workload, container, data) == "backend":
                continue
            problem = data_volume.read_problem(container, mounted, argv, data)
            if problem is not None:
                raise CommandError(problem)
            backends = [w for claim in mounted for w in claims[claim]]
            if _fed(inv) and not _restarted_later(inv, backends):
                names = [f"{w.kind.lower()}/{w.name}" for w in backends]
                raise CommandError(
                    f"this writes into the backend's data volume, and nothing after it in the "
                    f"block restarts the backend ({', '.join(names)}): it reads its rules only "
                    "when it starts, and writes the rules it holds over the file at its next "
                    f"rule change; add `kubectl rollout restart {names[0]}`"
                )


def _restarted_later(inv: Invocation, workloads: list[K8sObject]) -> bool:
    """Whether a later command of the block is a `kubectl rollout restart` of one of the
    workloads, read as this model reads that command (its flags, namespace and names)."""
    for command in inv.session.following:
        if command.words[:1] != ["kubectl"]:
            continue
        try:
            args = parse(inv.session.expand(Session.real_words(command)), binary())
        except CommandError:
            continue  # that command fails on its own when it runs
        if args.path[:2] != ["rollout", "restart"]:
            continue
        ns = _namespace(inv.session.world, args)
        if any(o is w for _, o in _named(inv.session.world, ns, args) for w in workloads):
            return True
    return False


def _stdin_passed(inv: Invocation, args: Args) -> None:
    """What the page feeds `kubectl exec` (a heredoc, a `<` file, a pipe) reaches the
    container only with -i: `kubectl exec --help` says "-i, --stdin=false: Pass stdin to the
    container". Without it the program inside reads nothing (a `cat > FILE` writes an empty
    file)."""
    if _fed(inv) and not args.on("-i", "--stdin"):
        raise CommandError(
            "kubectl exec without -i (--stdin) passes no standard input to the container: what "
            "this command feeds it never arrives, and the program inside reads nothing"
        )


def _runs_backend(inv: Invocation, ns: str, obj: K8sObject, entered: str | None = None) -> bool:
    """A container of the object's pods, or of the pods a Service selects (kubectl picks one
    of them), runs the backend (World.role). With `entered` (a name, or "" for kubectl's
    choice: the pod's default-container annotation, else its first container), only the
    container kubectl exec enters counts."""
    world, data = inv.session.world, inv.session.release
    for workload in world.behind(ns, obj):
        found = workload.running() if entered is None else _entered(workload, entered)
        if any(world.role(workload, c, data) == "backend" for c in found):
            return True
    return False


def _entered(workload: K8sObject, name: str) -> list[dict[str, Any]]:
    """The container `kubectl exec` enters: the one named, else the one the pod's
    default-container annotation names if the pod has it, else the first. Read in kubectl's
    podcmd.FindOrDefaultContainerByName (kubernetes commit 650c573d; not at the v1.35 tag, whose
    binary `make tools` installs: tests/test_kubectl_facts.py finds the annotation's name in it)."""
    found = workload.running()
    if name:
        return [c for c in found if c.get("name") == name]
    annotation = workload.pod_annotations.get(DEFAULT_CONTAINER)
    return [c for c in found if annotation and c.get("name") == annotation] or found[:1]


#: the pod annotation that names the container kubectl exec and logs default to
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"


def _scale(inv: Invocation, ns: str, args: Args) -> None:
    """More than one replica of the backend is refused (none, to stop it, is not): named as
    KIND/NAME or as KIND NAME."""
    replicas = str(args.get("--replicas") or "")
    if not is_number(replicas) or int(replicas) <= 1:
        return
    targets = [obj for _, obj in _named(inv.session.world, ns, args)]
    if any(_runs_backend(inv, ns, target) for target in targets):
        raise CommandError(
            "the backend keeps violations in memory and rules on disk: it runs exactly one replica"
        )


HANDLERS: dict[str, Handler] = {
    "get": _get,
    "describe": _get,
    "delete": _delete,
    "logs": _logs,
    "port-forward": _port_forward,
    "rollout": _rollout,
    "wait": _wait,
    "exec": _exec,
    "top": _refs,
    "scale": _scale,
    "create": _create,
    "apply": _apply,
}


def kubectl(inv: Invocation) -> str | None:
    args = parse(inv.argv, binary())
    if args.has("--context", "--kubeconfig", "--cluster", "--server", "-s"):
        raise CommandError(
            "guides do not name a cluster or context: the reader's current one is used"
        )
    handler = HANDLERS.get(args.sub)
    if handler is None:
        raise CommandError(
            f"kubectl {args.sub or '(no subcommand)'} is not modelled; modelled: "
            f"{', '.join(sorted(HANDLERS))}"
        )
    problem = value_problem(
        inv.session.process, [binary(), "--kubeconfig=/dev/null", *inv.argv[1:]], args.path
    )
    if problem is not None:
        raise CommandError(f"kubectl {args.sub}: {problem}")
    if args.path[:2] == ["create", "namespace"] or args.path[:2] == ["create", "ns"]:
        return handler(inv, "default", args)  # a namespace belongs to no namespace
    done = handler(inv, _namespace(inv.session.world, args), args)
    _streams(inv, args)
    return done


def _streams(inv: Invocation, args: Args) -> None:
    """`logs -f` and `get -w` stream until stopped: what follows them in a block never runs."""
    if args.sub == "logs" and args.on("-f", "--follow"):
        inv.never_returns("`kubectl logs -f` follows the log")
    if args.sub == "get" and (args.on("-w", "--watch") or args.on("--watch-only")):
        inv.never_returns("`kubectl get --watch` watches")


MODELS = {"kubectl": kubectl}
