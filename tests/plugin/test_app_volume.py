"""The built app fits in every volume the distribution gives it.

The chart's Grafana pod and the existing-Grafana guide's values copy the app (the whole of the
built dist/, as `docker/plugin-init.sh` copies it) into an emptyDir with a `sizeLimit`; the kubelet
evicts a pod whose emptyDir holds more than its limit, so an app grown past it would take Grafana
down at its first start. Measured: the build of `make plugin` (its disk use, in 4 KiB blocks),
against the limits of `helm template` of the chart (real Helm) and of the guide's YAML blocks as
readers see them. The kubelet's rule is Kubernetes' documented behaviour of `sizeLimit`, not run
here (no kubelet here).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from betrace_dist import REPO_ROOT, plugin_build
from betrace_dist.artefacts.chart_policy import Helm
from betrace_dist.gate.lexer import blocks
from betrace_dist.gate.render import Site
from betrace_dist.quantity import parse
from betrace_dist.release import ReleaseData

from ..conftest import skip_or_fail

CHART = REPO_ROOT / "helm" / "betrace"
GUIDE = REPO_ROOT / "docs" / "guides" / "add-betrace-to-an-existing-grafana.md"
BLOCK = 4096


def quantity(text: str) -> int:
    """Bytes of a Kubernetes quantity (`64Mi`)."""
    value = parse(text)
    if value is None:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    return int(value)


def disk_use(tree: Path) -> int:
    """Bytes a copy of the tree takes on a file system of 4 KiB blocks."""
    used = BLOCK
    for path in tree.rglob("*"):
        size = BLOCK if path.is_dir() else path.stat().st_size
        used += -(-size // BLOCK) * BLOCK
    return used


def _lists(node: Any, key: str) -> Iterator[dict[str, Any]]:
    """Every mapping in a list under `key`, anywhere in the document."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key and isinstance(value, list):
                yield from (item for item in value if isinstance(item, dict))
            yield from _lists(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from _lists(item, key)


def app_volume_limits(doc: Any, app_dir: str) -> list[tuple[str, int]]:
    """(volume, bytes) of each emptyDir with a sizeLimit mounted where the app lands: at the
    app's own folder, or at the plugins folder that holds it."""
    places = {app_dir, app_dir.rsplit("/", 1)[0]}
    mounted = {
        m.get("name")
        for key in ("volumeMounts", "extraVolumeMounts")
        for m in _lists(doc, key)
        if str(m.get("mountPath", "")).rstrip("/") in places
    }
    return [
        (str(v["name"]), quantity(str(v["emptyDir"]["sizeLimit"])))
        for key in ("volumes", "extraVolumes")
        for v in _lists(doc, key)
        if v.get("name") in mounted and (v.get("emptyDir") or {}).get("sizeLimit")
    ]


def too_small(limits: dict[str, list[tuple[str, int]]], used: int) -> list[str]:
    return [
        f"{where}: volume {name!r} has sizeLimit {limit / 2**20:.1f} MiB, but the built app "
        f"takes {used / 2**20:.1f} MiB: the kubelet would evict the pod once it is copied"
        for where, found in limits.items()
        for name, limit in found
        if used >= limit
    ]


@pytest.fixture(scope="module")
def used() -> int:
    dist = plugin_build.built_dist()
    if not (dist / "module.js").is_file():
        skip_or_fail(f"the patched app is not built ({dist}): run `make plugin`")
    return disk_use(dist)


@pytest.fixture(scope="module")
def limits(helm: Helm, release_data: ReleaseData) -> dict[str, list[tuple[str, int]]]:
    plugin = release_data.current.plugin
    app_dir = f"{plugin.plugins_dir}/{plugin.id}"
    found = {
        f"{CHART.name} chart, {m.kind} {m.name}": app_volume_limits(m.doc, app_dir)
        for m in helm.template(CHART)
    }
    rendered = Site(REPO_ROOT / "mkdocs.yml").render(GUIDE)
    for block in blocks(rendered.text):
        if block.language == "yaml":
            where = f"{GUIDE.name}:{rendered.source_line(block.line)}"
            for doc in YAML(typ="safe").load_all(block.body):
                found[where] = found.get(where, []) + app_volume_limits(doc, app_dir)
    return {where: each for where, each in found.items() if each}


def test_the_app_fits_in_every_volume_given_to_it(
    used: int, limits: dict[str, list[tuple[str, int]]]
) -> None:
    # the chart's pod and both of the guide's ways (init container values) are read
    assert any(where.startswith(CHART.name) for where in limits), limits
    assert sum(where.startswith(GUIDE.name) for where in limits) >= 2, limits
    assert too_small(limits, used) == []


def test_an_app_grown_past_a_volume_is_caught(
    limits: dict[str, list[tuple[str, int]]], tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    with (dist / "module.js").open("wb") as module:
        module.truncate(64 * 2**20)  # sparse: its size counts, as a copy would write it
    problems = too_small(limits, disk_use(dist))
    assert len(problems) == sum(len(found) for found in limits.values()), problems
    assert "sizeLimit 64.0 MiB, but the built app takes 64.0 MiB" in problems[0], problems


def test_sizes_are_read_as_kubernetes_writes_them() -> None:
    assert [quantity(q) for q in ("64Mi", "1Gi", "500", "2k", "1M")] == [
        64 * 2**20, 2**30, 500, 2000, 10**6,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="not a Kubernetes quantity: '64MB'"):
        quantity("64MB")
    doc = {"extraVolumes": [{"name": "app", "emptyDir": {"sizeLimit": "8Mi"}},
                            {"name": "other", "emptyDir": {"sizeLimit": "1Mi"}}],
           "extraVolumeMounts": [{"name": "app", "mountPath": "/plugins/betrace-app/"},
                                 {"name": "other", "mountPath": "/elsewhere"}]}  # fmt: skip
    assert app_volume_limits(doc, "/plugins/betrace-app") == [("app", 8 * 2**20)]
