"""The backend's data volume, as a helper pod reaches it with `kubectl exec`.

The backend keeps its rules in its data folder (BETRACE_DATA_DIR), on a PersistentVolumeClaim in
Kubernetes. Its image has no shell, so the guides back the file up and restore it through a
helper pod that mounts the same claim. What the folder holds, and two facts that decide a
restore, are measured in every run by the probe data-files (releases.yaml backend.data_files):
the backend reads a file changed under it only when it starts again (read_at_start_only), and
writes the rules it holds over it at its next rule change (overwritten_at_next_change). So:

- a file the helper reads (`cat PATH`) lies where the helper mounts the claim, and is one the
  backend keeps there;
- a command that feeds the helper (a restore through its standard input) is followed, in the
  same block, by a restart of a workload that runs the backend on that claim
  (`kubectl rollout restart`, read by kubectl's model), or the restored rules never run and
  are overwritten.

Only `cat`'s operands are read as paths; other programs inside the helper are not modelled.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Any

from ..backend_env import container_env
from ..release import ReleaseData
from .world import K8sObject, World, pod_containers

#: programs whose operands are files the helper reads
_READERS = frozenset({"cat"})


def claims_of(pod: dict[str, Any]) -> dict[str, str]:
    """Volume name to claim name, of a pod's persistentVolumeClaim volumes."""
    found = {}
    for volume in pod.get("volumes") or []:
        claim = (volume or {}).get("persistentVolumeClaim") if isinstance(volume, dict) else None
        if isinstance(claim, dict) and claim.get("claimName"):
            found[str(volume.get("name"))] = str(claim["claimName"])
    return found


def mounts_of(container: dict[str, Any], claims: dict[str, str]) -> dict[str, str]:
    """Claim name to the path a container mounts it at (a subPath mount is left out)."""
    return {
        claims[str(m.get("name"))]: posixpath.normpath(str(m.get("mountPath")))
        for m in container.get("volumeMounts") or []
        if isinstance(m, dict) and m.get("name") in claims and not m.get("subPath")
    }


def backend_claims(world: World, ns: str, data: ReleaseData) -> dict[str, list[K8sObject]]:
    """The claims a backend container of the namespace mounts at its data folder, each with
    the workloads that run it there."""
    found: dict[str, list[K8sObject]] = {}
    for workload in world.all_objects(ns):
        pod = workload.pod_spec() or {}
        claims = claims_of(pod)
        for container in pod_containers(pod):
            data_dir = container_env(container).get("BETRACE_DATA_DIR")
            if data_dir is None or world.role(workload, container, data) != "backend":
                continue
            for claim, path in mounts_of(container, claims).items():
                if path == posixpath.normpath(data_dir):
                    found.setdefault(claim, []).append(workload)
    return found


def data_file_problem(path: str, data_dir: str, data: ReleaseData, reading: bool) -> str | None:
    """What is wrong with a path in the backend's data folder: it holds the files the probe
    data-files finds in every run (releases.yaml backend.data_files), all at its top. Read, a
    path must name one of them; written, it must lie at the folder's top. None elsewhere."""
    if not path.startswith(data_dir + "/"):
        return None
    name = path[len(data_dir) + 1 :]
    files = data.current.backend.data_files.after_a_rule
    if (reading and name not in files) or (not reading and "/" in name):
        return (
            f"the backend's data folder, {data_dir} here, holds {', '.join(files)} at its top "
            "(once a rule was made: releases.yaml backend.data_files, measured by the probe "
            f"data-files), so it has no '{name}'"
        )
    return None


def read_problem(
    helper: dict[str, Any], mounted: dict[str, str], argv: Sequence[str], data: ReleaseData
) -> str | None:
    """What is wrong with the files `cat` reads in the helper container: the backend's file
    named outside the claim's mount, or a name the backend does not keep inside it. A relative
    operand is judged only where the container gives its working folder (an image's own
    WORKDIR is not known here)."""
    if not argv or posixpath.basename(argv[0]) not in _READERS:
        return None
    files = data.current.backend.data_files.after_a_rule
    workdir = helper.get("workingDir")
    for operand in (a for a in argv[1:] if not a.startswith("-")):
        if not operand.startswith("/") and not isinstance(workdir, str):
            continue
        path = posixpath.normpath(posixpath.join(str(workdir or "/"), operand))
        for mount in mounted.values():
            problem = data_file_problem(path, mount, data, reading=True)
            if problem is not None:
                return f"`cat {operand}`: {problem}"
        inside = any(path.startswith(m + "/") for m in mounted.values())
        if not inside and posixpath.basename(path) in files:
            where = ", ".join(sorted(mounted.values()))
            return (
                f"`cat {operand}` reads {path}, but this container mounts the backend's data "
                f"volume at {where}: no such file there"
            )
    return None
