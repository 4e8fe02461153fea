"""kube-prometheus-stack as the guides use it, offline: its values read as the stack reads them.

The stack installs the Grafana chart as its dependency `grafana` and hands that dependency only
the values under `grafana:` (data/kube-prometheus-stack.yaml says where this was read). A Grafana
chart key written at the top level of a stack values file is read by nobody: Helm installs
happily and the setting does nothing. `validate_stack_values` reports such a key and checks what
is under `grafana:` against the Grafana chart's keys (grafana_chart.py). The rest of the stack's
values (Prometheus, Alertmanager, ...) is not checked below its top-level key.

It also holds the checks both ways of installing Grafana share: the Pod Security "restricted"
fields of the init containers a page adds, and the Recreate strategy an upgrade needs when
Grafana keeps its data on a ReadWriteOnce volume.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from . import grafana_chart
from .grafana_chart import KeyProblem

STACK_FILE = Path(__file__).parent / "data" / "kube-prometheus-stack.yaml"


@dataclass(frozen=True)
class Stack:
    chart: str
    version: str
    repository: str
    dependency: str  # the key the Grafana chart's values go under
    top_level: frozenset[str]
    grafana_keys: frozenset[str]  # keys under `grafana:` the stack's own templates read

    def __str__(self) -> str:
        return f"{self.chart} {self.version}"


@cache
def stack() -> Stack:
    raw = YAML(typ="safe").load(STACK_FILE.read_text(encoding="utf-8"))
    return Stack(
        chart=str(raw["chart"]),
        version=str(raw["version"]),
        repository=str(raw["repository"]),
        dependency=str(raw["dependency"]),
        top_level=frozenset(map(str, raw["top_level"])),
        grafana_keys=frozenset(map(str, raw["grafana_keys"])),
    )


def grafana_values(values: Any) -> dict[str, Any]:
    """The values the stack hands its Grafana."""
    sub = values.get(stack().dependency) if isinstance(values, dict) else None
    return dict(sub) if isinstance(sub, dict) else {}


def validate_stack_values(values: Any) -> list[KeyProblem]:
    """Every Grafana key at the wrong level, unknown top-level key and Grafana key problem."""
    s = stack()
    if not isinstance(values, dict):
        return grafana_chart.validate_values(values)
    grafana_keys = set(grafana_chart.schema().root.get("properties") or {})
    out: list[KeyProblem] = []
    for raw_key, sub in values.items():
        key = str(raw_key)
        if key == s.dependency:
            out += _grafana_problems(sub)
        elif key in grafana_keys and key not in s.top_level:
            out.append(
                KeyProblem(
                    key,
                    f"'{key}' is a key of the Grafana chart at the top level of the {s} values: "
                    f"the stack hands its Grafana only what is under '{s.dependency}:', so here "
                    f"it does nothing; indent it under '{s.dependency}:'",
                )
            )
        elif key not in s.top_level:
            message = f"unknown key '{key}' in the {s} values"
            guess = grafana_chart._suggest(key, sorted(s.top_level))
            out.append(KeyProblem(key, message + (f", did you mean '{guess}'?" if guess else "")))
    return out


def _grafana_problems(sub: Any) -> list[KeyProblem]:
    dep = stack().dependency
    if sub is None:
        return []
    if not isinstance(sub, dict):
        return [KeyProblem(dep, f"expected a map for '{dep}', got {grafana_chart._kind(sub)}")]
    own = {k: v for k, v in sub.items() if str(k) not in stack().grafana_keys}
    return [
        KeyProblem(f"{dep}.{p.key}", f"under '{dep}:', {p.message}")
        for p in grafana_chart.validate_values(own)
    ]


# --- where a key is -------------------------------------------------------------------------

_SEGMENT = re.compile(r'"([^"]*)"|\[(\d+)\]|([^.\[\]"]+)')


def key_line(text: str, key: str) -> int | None:
    """The line (1-based) of a dotted key path (`a.b[0]."c.d"`) in a YAML text: of its deepest
    part the text has."""
    from ruamel.yaml.error import YAMLError

    try:  # the file loaded once already: this only finds the line
        node: Any = YAML(typ="rt").load(text)
    except YAMLError:
        return None
    line = None
    for quoted, index, plain in _SEGMENT.findall(key):
        part: str | int = int(index) if index else (quoted or plain)
        lc: Any = getattr(node, "lc", None)
        try:
            found = lc.key(part) if isinstance(part, str) else lc.item(part)
            node = node[part]
        except (AttributeError, KeyError, IndexError, TypeError):
            break
        line = found[0] + 1
    return line


# --- what both ways of installing Grafana must hold -------------------------------------------


#: Pod Security Standards, "restricted" profile (kubernetes/website, content/en/docs/concepts/
#: security/pod-security-standards.md): the container fields an added init container must set.
#: The Grafana chart's pod securityContext (values.yaml at 12.11.1) sets runAsNonRoot and no
#: seccompProfile, so an init container needs its own; it does not get the chart's
#: containerSecurityContext, which is the grafana container's (templates/_pod.tpl copies
#: extraInitContainers as written).
def init_container_problems(values: dict[str, Any]) -> list[KeyProblem]:
    pod = values.get("securityContext") or {}
    out: list[KeyProblem] = []
    for index, container in enumerate(values.get("extraInitContainers") or []):
        if not isinstance(container, dict):
            continue
        sc = container.get("securityContext") or {}
        missing = []
        if sc.get("allowPrivilegeEscalation") is not False:
            missing.append("allowPrivilegeEscalation: false")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            missing.append("capabilities.drop: [ALL]")
        seccomp = (sc.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            missing.append("seccompProfile.type: RuntimeDefault")
        if missing:
            name = container.get("name", index)
            out.append(
                KeyProblem(
                    f"extraInitContainers[{index}]",
                    f"init container '{name}' fails Pod Security 'restricted' (a namespace that "
                    f"enforces it refuses the pod): its securityContext needs {', '.join(missing)}",
                )
            )
    return out


def rolling_volume_problem(values: dict[str, Any]) -> str | None:
    """An upgrade that replaces a Grafana holding a ReadWriteOnce volume with a rolling update."""
    persistence = values.get("persistence") or {}
    if not persistence.get("enabled") or persistence.get("type", "pvc") != "pvc":
        return None
    if "ReadWriteOnce" not in (persistence.get("accessModes") or ["ReadWriteOnce"]):
        return None
    if (values.get("deploymentStrategy") or {}).get("type") == "Recreate":
        return None
    return (
        "Grafana keeps its data on a ReadWriteOnce volume (persistence.enabled) and this upgrade "
        "replaces it with the chart's rolling update: on more than one node the new pod waits "
        "for the volume the old one holds; pass the values that set deploymentStrategy.type: "
        "Recreate"
    )
