"""`kubectl`: namespaces, kinds, names, label selectors, containers and ports must exist in what
the page installed; files passed with -f are validated; nothing ever reaches a cluster."""

from __future__ import annotations

import re
from typing import Any

from ... import backend_env, yamlio
from ...errors import ProblemsError
from ..session import CommandError, Invocation
from ..world import K8sObject, Listener, World, closest, listing
from .helm import Parsed

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
_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "Pod"}
#: kinds that belong to the cluster, not to anything a guide installs
_CLUSTER_SCOPED = {"StorageClass", "Node"}
_VALUE = frozenset(
    {"-n", "--namespace", "-l", "--selector", "-o", "--output", "-c", "--container", "-f"}
    | {"--filename", "--from-literal", "--from-file", "--type", "--for", "--timeout", "--since"}
    | {"--replicas", "--context", "--kube-context", "--tail", "--address", "-p", "--patch"}
)


def _kind(word: str) -> str:
    kind = KINDS.get(word.lower())
    if kind is None:
        raise CommandError(f"unknown resource type '{word}'{closest(word.lower(), list(KINDS))}")
    return kind


def _namespace(world: World, parsed: Parsed) -> str:
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
        raise CommandError(
            f"no {kind} '{name}' in namespace '{ns}'{closest(name, names)}; "
            f"{listing(kind + 's', names)}"
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


def _matching(world: World, ns: str, selector: dict[str, str]) -> list[K8sObject]:
    return [
        o
        for o in world.all_objects(ns)
        if o.kind in _WORKLOADS and all(o.pod_labels.get(k) == v for k, v in selector.items())
    ]


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


def _port_forward(inv: Invocation, ns: str, parsed: Parsed) -> None:
    world = inv.session.world
    if len(parsed.positional) < 2:
        raise CommandError("kubectl port-forward takes a target and LOCAL:REMOTE ports")
    obj = _target(world, ns, parsed.positional[0])
    for spec in parsed.positional[1:]:
        local, _, remote = spec.partition(":")
        remote = remote or local
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
            target_port = int(remote)
        component = obj.component or obj.name
        world.listeners[int(local)] = Listener(
            int(local), component, target_port, f"kubectl port-forward {parsed.positional[0]}"
        )


def _resolve_target(world: World, ns: str, service: K8sObject, target: Any) -> int:
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    selector = (service.doc.get("spec") or {}).get("selector") or {}
    for workload in _matching(world, ns, selector):
        for container in workload.containers():
            for port in container.get("ports") or []:
                if port.get("name") == target:
                    return int(port["containerPort"])
    raise CommandError(
        f"Service '{service.name}' targets the named port '{target}', which no pod it selects "
        "declares"
    )


def _jsonpath_secret(obj: K8sObject, jsonpath: str) -> None:
    match = re.fullmatch(
        r"\{\.data(?:\.((?:[^.\\}]|\\.)+)|\[['\"]([^'\"]+)['\"]\])\}", jsonpath.strip("'\"")
    )
    if not match:
        return
    key = (match[1] or match[2]).replace("\\.", ".")
    data = dict(obj.doc.get("data") or {}) | dict(obj.doc.get("stringData") or {})
    if key not in data:
        raise CommandError(
            f"Secret '{obj.name}' has no key '{key}'{closest(key, list(data))}; keys: "
            f"{', '.join(sorted(data))}"
        )


def _apply(inv: Invocation, ns: str, parsed: Parsed) -> None:
    from ...artefacts.chart_policy import Manifest, validate_kubernetes

    for value in parsed.all("-f", "--filename"):
        path = inv.session.path(value)
        if not path.is_file():
            raise CommandError(f"the file '{value}' does not exist at this point of the page")
        try:  # bounded: a manifest written by a page may be an alias bomb
            docs = [d for d in yamlio.safe_load_all(path.read_text(encoding="utf-8"), value) if d]
        except ProblemsError as exc:
            raise CommandError(str(exc.problems[0])) from None
        problems = validate_kubernetes(
            [Manifest(value, d) for d in docs], [inv.session.release.current.kubernetes.minimum]
        )
        if problems:
            raise CommandError(f"{value}: {problems[0]}")
        # Values of the backend's variables follow the one rule of backend_env.py.
        problems = backend_env.manifest_problems(docs, inv.session.release)
        if problems:
            raise CommandError(f"{value}: {problems[0]}")
        for doc in docs:
            meta = doc.get("metadata") or {}
            inv.session.world.objects.append(
                K8sObject(
                    doc.get("kind", ""),
                    meta.get("name", ""),
                    meta.get("namespace") or ns,
                    doc,
                    "kubectl apply",
                )
            )


def kubectl(inv: Invocation) -> None:
    argv = inv.argv
    parsed = Parsed(argv, 1, _VALUE)
    world = inv.session.world
    sub = parsed.sub[0] if parsed.sub else ""
    if parsed.get("--context", "--kube-context") is not None:
        raise CommandError("guides do not name a kube context: the reader's current one is used")
    pos = parsed.positional
    if sub == "create" and pos and pos[0] in ("namespace", "ns"):
        world.namespaces.add(pos[1])
        return
    ns = _namespace(world, parsed)
    if sub in ("get", "describe", "delete"):
        if parsed.all("-f", "--filename"):
            return
        if not pos:
            raise CommandError(f"kubectl {sub} needs a resource type")
        first = pos[0]
        if "/" in first:
            _target(world, ns, first)
        elif "," in first:
            for word in first.split(","):
                _kind(word)  # several kinds at once: each must be a kind, names are not given
        else:
            kind = _kind(first)
            for name in pos[1:]:
                if kind == "Namespace":
                    if name not in world.namespaces:
                        raise CommandError(
                            f"no namespace '{name}'{closest(name, list(world.namespaces))}"
                        )
                elif kind in ("Pod", "Job") or kind in _CLUSTER_SCOPED:
                    if kind in _CLUSTER_SCOPED:
                        continue  # cluster objects (nodes, storage classes) are the reader's own
                    _object(world, ns, kind, name)
                elif kind != "all":
                    obj = _object(world, ns, kind, name)
                    jsonpath = (parsed.get("-o", "--output") or "").removeprefix("jsonpath=")
                    if kind == "Secret" and jsonpath.startswith(("{", "'{", '"{')):
                        _jsonpath_secret(obj, jsonpath)
        selector = parsed.get("-l", "--selector")
        if selector and not _matching(world, ns, _selector(selector)):
            raise CommandError(f"no pods in namespace '{ns}' match '{selector}'")
        if sub == "delete" and len(pos) > 1 and _kind(first) == "Namespace":
            for name in pos[1:]:
                world.namespaces.discard(name)
        return
    if sub == "logs":
        selector = parsed.get("-l", "--selector")
        container = parsed.get("-c", "--container")
        targets = (
            _matching(world, ns, _selector(selector))
            if selector
            else [_target(world, ns, pos[0])]
            if pos
            else []
        )
        if not targets:
            raise CommandError(
                f"kubectl logs: nothing in namespace '{ns}' matches {selector or pos}"
            )
        if container:
            _container(targets[0], container)
        return
    if sub == "port-forward":
        _port_forward(inv, ns, parsed)
        return
    if sub in ("rollout", "wait", "exec", "scale", "top"):
        refs = (
            [p for p in pos[1:] if "/" in p] if sub == "rollout" else [p for p in pos if "/" in p]
        )
        for ref in refs:
            obj = _target(world, ns, ref)
            if sub == "scale" and obj.component == "backend":
                raise CommandError(
                    "the backend keeps violations in memory and rules on disk: it runs exactly "
                    "one replica"
                )
        return
    if sub == "create" and pos and pos[0] == "secret":
        if len(pos) < 3:
            raise CommandError("kubectl create secret TYPE NAME")
        data = {}
        for item in parsed.all("--from-literal"):
            data[item.partition("=")[0]] = ""
        for item in parsed.all("--from-file"):
            key, eq, path = item.partition("=")
            path = path if eq else key
            if not inv.session.path(path).is_file():
                raise CommandError(
                    f"--from-file: '{path}' does not exist at this point of the page"
                )
            data[key if eq else inv.session.path(path).name] = ""
        world.objects.append(
            K8sObject("Secret", pos[2], ns, {"data": data}, "kubectl create secret")
        )
        return
    if sub in ("apply", "create") and parsed.all("-f", "--filename"):
        _apply(inv, ns, parsed)
        return
    raise CommandError(f"kubectl {sub} is not modelled")


MODELS = {"kubectl": kubectl}
