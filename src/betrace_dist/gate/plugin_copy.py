"""Where a Grafana the page installs with the Grafana chart finds the BeTrace app's files.

Grafana loads the app from `<plugins_dir>/<plugin id>` (releases.yaml `plugin`). When the
values mount a volume there (`extraVolumeMounts`), something must copy the app into that volume
at the path Grafana reads: a container of the plugin-init image, an init container of the same
pod (`extraInitContainers`, sharing an `emptyDir`) or a Job of the page's world writing into the
same claim. The image copies the app to its first argument, else `BETRACE_PLUGIN_TARGET`, else
/plugins/betrace-app (docker/plugin-init.sh, this project's own script). A copy that lands
outside the container's volumes is lost with the container; one into another sub folder of the
volume than the one Grafana mounts leaves Grafana without the app.

A volume's path is its mount's `subPath` joined to the path below the mount (Kubernetes'
`volumeMounts[].subPath`). A claim no Job of the world writes into is not judged: the page may
fill it in a way the gate does not see.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any

from ..release import ReleaseData
from .world import K8sObject, World

#: plugin-init.sh's target when given none (`${1:-${BETRACE_PLUGIN_TARGET:-...}}`)
DEFAULT_TARGET = "/plugins/betrace-app"
#: The image, by the last part of its repository (a page may point it at any registry)
IMAGE = "plugin-init"


def _is_plugin_init(container: dict[str, Any]) -> bool:
    name = str(container.get("image") or "").rsplit("/", 1)[-1]
    return name.split("@")[0].split(":")[0] == IMAGE


def _target(container: dict[str, Any]) -> str:
    args = container.get("args")
    if isinstance(args, list) and args:
        return str(args[0])
    for env in container.get("env") or []:
        if isinstance(env, dict) and env.get("name") == "BETRACE_PLUGIN_TARGET":
            return str(env.get("value") or DEFAULT_TARGET)
    return DEFAULT_TARGET


def _below(path: str, folder: str) -> str | None:
    """`path` relative to `folder` ('' for the folder itself), or None outside it."""
    path, folder = posixpath.normpath(path), posixpath.normpath(folder)
    if path == folder:
        return ""
    return path[len(folder) + 1 :] if path.startswith(folder.rstrip("/") + "/") else None


def _in_volume(mount: dict[str, Any], below: str) -> str:
    path = posixpath.normpath(posixpath.join(str(mount.get("subPath") or ""), below))
    return "" if path == "." else path


def _volume_key(volume: dict[str, Any] | None) -> str | None:
    """How two pods name one volume: a claim by its name; an emptyDir only within its pod."""
    if not isinstance(volume, dict):
        return None
    claim = volume.get("existingClaim") or (volume.get("persistentVolumeClaim") or {}).get(
        "claimName"
    )
    if claim:
        return f"claim '{claim}'"
    return f"volume '{volume.get('name')}'" if "emptyDir" in volume else None


def _copies(
    where: str, container: dict[str, Any], volumes: dict[str, dict[str, Any]]
) -> Iterator[tuple[str, str] | str]:
    """(volume key, path in it) the container copies the app to, or why the copy is lost."""
    target = _target(container)
    mounts = [m for m in container.get("volumeMounts") or [] if isinstance(m, dict)]
    found = [(m, _below(target, str(m.get("mountPath") or "/"))) for m in mounts]
    held = [(m, below) for m, below in found if below is not None]
    if not held:
        yield (
            f"{where} copies the app to {target}, which none of its volumes holds: the copy "
            "is lost with the container"
        )
        return
    mount, below = max(held, key=lambda pair: len(str(pair[0].get("mountPath"))))
    key = _volume_key(volumes.get(str(mount.get("name"))))
    if key is not None:
        yield key, _in_volume(mount, str(below))


def _grafana_reads(values: dict[str, Any], folder: str) -> tuple[str, str, str] | None:
    """(volume key, path in it, mount path) of the volume Grafana sees at `folder`."""
    volumes = {
        str(v.get("name")): v for v in values.get("extraVolumes") or [] if isinstance(v, dict)
    }
    best: tuple[str, str, str] | None = None
    for mount in values.get("extraVolumeMounts") or []:
        if not isinstance(mount, dict):
            continue
        below = _below(folder, str(mount.get("mountPath") or "/"))
        key = _volume_key(volumes.get(str(mount.get("name"))) or mount)
        if below is None or key is None:
            continue
        if best is None or len(str(mount.get("mountPath"))) > len(best[2]):
            best = (key, _in_volume(mount, below), str(mount.get("mountPath")))
    return best


def _writers(
    world: World, namespace: str, values: dict[str, Any], key: str
) -> Iterator[tuple[str, tuple[str, str] | str]]:
    """Each plugin-init container that may fill the volume `key` Grafana reads, with what it
    copies: the pod's init containers, and the world's Jobs that mount that claim."""
    own = {str(v.get("name")): v for v in values.get("extraVolumes") or [] if isinstance(v, dict)}
    for c in values.get("extraInitContainers") or []:
        if isinstance(c, dict) and _is_plugin_init(c):
            where = f"init container '{c.get('name')}'"
            for copy in _copies(where, c, own):
                yield where, copy
    for job in world.all_objects(namespace):
        if job.kind == "Job" and key.startswith("claim"):
            yield from _job_copies(job, key)


def _job_copies(job: K8sObject, key: str) -> Iterator[tuple[str, tuple[str, str] | str]]:
    spec = job.pod_spec() or {}
    volumes = {str(v.get("name")): v for v in spec.get("volumes") or [] if isinstance(v, dict)}
    if key not in {_volume_key(v) for v in volumes.values()}:
        return
    for c in job.containers():
        if _is_plugin_init(c):
            where = f"Job '{job.name}'"
            for copy in _copies(where, c, volumes):
                yield where, copy


def problem(world: World, namespace: str, values: dict[str, Any], data: ReleaseData) -> str | None:
    """Why the Grafana of these values finds no app in the volume mounted where it looks, or
    None (no volume there, or one whose filling the gate does not see)."""
    plugin = data.current.plugin
    folder = f"{plugin.plugins_dir}/{plugin.id}"
    reads = _grafana_reads(values, folder)
    if reads is None:
        return None
    key, path, _mount = reads
    writers = list(_writers(world, namespace, values, key))
    lost = next((copy for _where, copy in writers if isinstance(copy, str)), None)
    if lost is not None:
        return lost
    into = [(where, copy) for where, copy in writers if isinstance(copy, tuple) and copy[0] == key]
    if not into and key.startswith("claim"):
        return None
    if any(copy[1] == path for _where, copy in into):
        return None
    seen = f"{key} at '{path or '/'}'"
    if not into:
        return f"Grafana reads the app from {seen} ({folder}), and nothing copies the app there"
    copied = ", ".join(f"{where} to '{copy[1] or '/'}'" for where, copy in into)
    return (
        f"Grafana reads the app from {seen} ({folder}), but the plugin-init copy goes "
        f"elsewhere in that volume ({copied}): Grafana starts without the app"
    )
