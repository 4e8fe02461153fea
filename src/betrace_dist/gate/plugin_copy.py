"""Where a Grafana the page installs with the Grafana chart finds the BeTrace app's files.

Grafana loads the app from `<paths.plugins>/<plugin id>` (grafana.ini's `paths.plugins` in the
values, else releases.yaml `plugin.plugins_dir`). When the values mount a volume of their own
there (`extraVolumeMounts`, `extraEmptyDirMounts`), something must copy the app into that
volume, at the path Grafana reads: an init container of the same pod (`extraInitContainers`)
or a Job of the page's world writing into the same claim. The volumes are the pod's as the
chart writes them (grafana_chart.extra_volumes: an `extraVolumes` item with no source it knows
is an empty `emptyDir`).

A container of the plugin-init image run as its image runs it (no `command`, or the image's
entrypoint) copies the app to its first argument, else `BETRACE_PLUGIN_TARGET`, else
/plugins/betrace-app (docker/plugin-init.sh, this project's own script); Kubernetes expands
`$(NAME)` in it from the container's `env`. Such a copy that lands outside the container's
volumes is lost with the container; one into another folder of the volume than the one Grafana
mounts leaves Grafana without the app. A volume's path is its mount's `subPath` joined to the
path below the mount (Kubernetes' `volumeMounts[].subPath`).

An emptyDir smaller than the app (its sizeLimit under the size of the app this release builds,
where the build is here) evicts the pod once the copy is made.

Not judged: a volume another container also writes into (another image, or a command of its
own: the gate cannot tell what it copies), a claim no Job of the page fills, and a volume the
gate does not model (hostPath, csi, ConfigMap).
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .. import plugin_build, quantity
from ..release import ReleaseData
from . import grafana_chart, grafana_settings
from .world import World

#: plugin-init.sh's target when given none (`${1:-${BETRACE_PLUGIN_TARGET:-...}}`)
DEFAULT_TARGET = "/plugins/betrace-app"
#: The image's entrypoint (docker/Dockerfile, the plugin-init stage)
ENTRYPOINT = "/usr/local/bin/betrace-plugin-init"
#: The image, by the end of its repository's name (a page may mirror it under any registry)
IMAGE = "plugin-init"


@dataclass(frozen=True)
class Copy:
    """What one container that mounts the volume does with it: `path` in the volume, or
    `lost` (why the copy goes nowhere), or neither (a writer the gate cannot follow)."""

    where: str
    path: str | None = None
    lost: str | None = None


def _volume_key(volume: dict[str, Any] | None) -> str | None:
    """How two pods name one volume: a claim by its name; an emptyDir only within its pod."""
    if not isinstance(volume, dict):
        return None
    claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
    if claim:
        return f"claim '{claim}'"
    return f"volume '{volume.get('name')}'" if "emptyDir" in volume else None


def _below(path: str, folder: str) -> str | None:
    """`path` relative to `folder` ('' for the folder itself), or None outside it."""
    path, folder = posixpath.normpath(path), posixpath.normpath(folder)
    if path == folder:
        return ""
    prefix = folder.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else None


def _in_volume(mount: dict[str, Any], below: str) -> str:
    path = posixpath.normpath(posixpath.join(str(mount.get("subPath") or ""), below))
    return "" if path == "." else path


def _target(container: dict[str, Any]) -> str | None:
    """Where the image's script copies the app, or None when the container does not run the
    script as the image does, or names its target with a variable it does not set."""
    image = str(container.get("image") or "").rsplit("/", 1)[-1]
    command = container.get("command")
    if not image.split("@")[0].split(":")[0].endswith(IMAGE) or command not in (None, [ENTRYPOINT]):
        return None
    env = {
        str(e.get("name")): str(e.get("value") or "")
        for e in container.get("env") or []
        if isinstance(e, dict) and "value" in e
    }
    args = container.get("args")
    given = str(args[0]) if isinstance(args, list) and args else None
    target = given or env.get("BETRACE_PLUGIN_TARGET") or DEFAULT_TARGET
    target = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), target)
    return None if "$(" in target else target


def _copy(
    where: str, container: dict[str, Any], volumes: dict[str, str | None], key: str
) -> Copy | None:
    """What `container` does with the volume `key`, or None when it does not mount it."""
    mounts = [m for m in container.get("volumeMounts") or [] if isinstance(m, dict)]
    if key not in {volumes.get(str(m.get("name"))) for m in mounts}:
        return None
    target = _target(container)
    if target is None:
        return Copy(where)
    held = [
        (m, b) for m in mounts if (b := _below(target, str(m.get("mountPath") or "/"))) is not None
    ]
    if not held:
        lost = (
            f"{where} copies the app to {target}, which none of its volumes holds: the copy "
            "is lost with the container"
        )
        return Copy(where, lost=lost)
    mount, below = max(held, key=lambda pair: len(str(pair[0].get("mountPath"))))
    if volumes.get(str(mount.get("name"))) != key:
        into = f"its volume '{mount.get('name')}', not Grafana's {key}"
        return Copy(where, lost=f"{where} copies the app to {target}, into {into}")
    return Copy(where, path=_in_volume(mount, below))


def _copies(
    world: World, namespace: str, values: dict[str, Any], volumes: dict[str, str | None], key: str
) -> Iterator[Copy]:
    for c in values.get("extraInitContainers") or []:
        if isinstance(c, dict) and (
            copy := _copy(f"init container '{c.get('name')}'", c, volumes, key)
        ):
            yield copy
    for job in world.all_objects(namespace) if key.startswith("claim") else ():
        if job.kind != "Job":
            continue
        own = {
            str(v.get("name")): _volume_key(v) for v in (job.pod_spec() or {}).get("volumes") or []
        }
        for c in job.containers():
            if copy := _copy(f"Job '{job.name}'", c, own, key):
                yield copy


@functools.cache
def app_bytes() -> int | None:
    """The size of the app the distribution builds (plugin_build's dist, which every test run
    builds), or None where it is not built here."""
    try:
        dist = plugin_build.built_dist()
    except OSError:
        return None
    if not (dist / "module.js").is_file():
        return None
    return sum(f.stat().st_size for f in dist.rglob("*") if f.is_file() and not f.is_symlink())


def _size_problem(values: dict[str, Any], name: str) -> str | None:
    """The emptyDir Grafana reads the app from holds less than the app: the kubelet evicts a
    pod whose emptyDir use exceeds its sizeLimit (Kubernetes' documentation on local ephemeral
    storage, not read at a pinned version and not run here: a belief, kept because a volume
    smaller than what is copied into it cannot hold it under any reading), so Grafana's pod is
    evicted once the copy is made."""
    volume = next((v for v in grafana_chart.extra_volumes(values) if v.get("name") == name), {})
    empty = volume.get("emptyDir")
    written = empty.get("sizeLimit") if isinstance(empty, dict) else None
    limit = quantity.parse(written)
    size = app_bytes()
    if limit is None or size is None or size <= limit:
        return None
    return (
        f"volume '{name}' is an emptyDir of sizeLimit {written}, and the app copied "
        f"into it is {size / 1024**2:.1f} MiB (the build of this release): the kubelet evicts "
        "a pod whose emptyDir grows over its sizeLimit; give it room for the app"
    )


def problem(world: World, namespace: str, values: dict[str, Any], data: ReleaseData) -> str | None:
    """Why the Grafana of these values finds no app in the volume mounted where it looks, or
    None (no volume of the values there, or one the gate does not judge)."""
    plugin = data.current.plugin
    folder = f"{grafana_settings.ini_path(values, 'plugins', plugin.plugins_dir)}/{plugin.id}"
    volumes = {str(v.get("name")): _volume_key(v) for v in grafana_chart.extra_volumes(values)}
    reads = [
        (m, b)
        for m in grafana_chart.extra_mounts(values)
        if (b := _below(folder, str(m.get("mountPath") or "/"))) is not None
    ]
    if not reads:
        return None
    mount, below = max(reads, key=lambda pair: len(str(pair[0].get("mountPath"))))
    key = volumes.get(str(mount.get("name")))
    if key is None:
        return None
    too_small = _size_problem(values, str(mount.get("name")))
    if too_small is not None:
        return too_small
    path = _in_volume(mount, below)
    copies = list(_copies(world, namespace, values, volumes, key))
    if any(c.path is None and c.lost is None for c in copies):
        return None
    lost = next((c.lost for c in copies if c.lost), None)
    if lost is not None:
        return lost
    if any(c.path == path for c in copies) or (not copies and key.startswith("claim")):
        return None
    seen = f"{key} at '{path or '/'}' ({folder})"
    if not copies:
        return f"Grafana reads the app from {seen}, and nothing copies the app there"
    copied = ", ".join(f"{c.where} to '{c.path or '/'}'" for c in copies)
    return (
        f"Grafana reads the app from {seen}, but the plugin-init copy goes elsewhere in that "
        f"volume ({copied}): Grafana starts without the app"
    )
