"""Values a page types by hand instead of taking them from the release data, held to it.

The design says every version, image reference, port and limit comes from releases.yaml through
the macros. A value typed by hand is not an error while it is right; this check fails the page
where it is wrong, wherever it stands (any kind of block, prose, a table), at its line:

- a BeTrace image (`<registry>/<name>:<tag>`) with a tag no release of the history has, or a
  name that is not a BeTrace image;
- a pinned observability image (`grafana/tempo:<tag>`, ...) with another tag than the pinned one
  (Grafana may also name a version the plugin is tested with);
- `--version X` for the BeTrace chart that no release has, or for the Grafana chart other than
  the release's version or its tested minimum;
- a port in the backend's range (120xx) written after `:` or `=` that the backend does not serve;
- a size in MiB that is no byte limit of the backend (a limit retyped wrong), where the
  paragraph, list item or table row it stands in speaks of what the backend limits (a body, a
  request, a rule, the backend); on the pages about the gate itself (docs/contributing/), every
  size in MiB must be a limit of the backend or one of the gate's own, held to the constants of
  the gate's code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..release import ReleaseData
from ..site.tables import amount
from . import isolation, safefs, session
from .display import Problem

#: the gate's own byte limits, which its threat model states (docs/contributing/threat-model.md)
GATE_SIZES = {
    "isolation.OUTPUT_LIMIT": isolation.OUTPUT_LIMIT,
    "isolation.FILE_LIMIT": isolation.FILE_LIMIT,
    "isolation.TMPFS_SIZE": isolation.TMPFS_SIZE,
    "safefs.READ_LIMIT": safefs.READ_LIMIT,
    "session.PRINTED_LIMIT": session.PRINTED_LIMIT,
}

_VERSIONISH = r"v?\d[\w.+-]*"


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _images(text: str, data: ReleaseData) -> Iterator[Problem]:
    tags: dict[str, set[str]] = {}
    for release in data.releases:
        for name in ("backend", "grafana-plugin", "plugin-init"):
            image = getattr(release.images, name.replace("-", "_"))
            tags.setdefault(name, set()).add(image.tag)
    pattern = re.escape(data.project.registry) + r"/([a-z0-9-]+)(?::(" + _VERSIONISH + "))?"
    for match in re.finditer(pattern, text):
        name, tag = match[1], match[2]
        if name not in tags:
            reason = f"'{match[0]}' names no BeTrace image; images: {', '.join(sorted(tags))}"
        elif tag and tag.rstrip(".") not in tags[name]:
            reason = (
                f"'{match[0]}' has a tag no release has (releases.yaml: "
                f'{", ".join(sorted(tags[name]))}); write {{{{ image("{name}") }}}}'
            )
        else:
            continue
        yield Problem(_line(text, match.start()), reason)


def _observability(text: str, data: ReleaseData) -> Iterator[Problem]:
    current = data.current
    for key, pinned in current.observability.model_dump(by_alias=True).items():
        allowed = {pinned["tag"]}
        if key == "grafana":
            allowed |= set(current.grafana.tested) | {current.grafana_chart.app_version}
        short = pinned["image"].removeprefix("docker.io/")
        pattern = r"(?<![\w/.-])(?:docker\.io/)?" + re.escape(short) + r":(" + _VERSIONISH + ")"
        for match in re.finditer(pattern, text):
            if match[1].rstrip(".") not in allowed:
                yield Problem(
                    _line(text, match.start()),
                    f"'{match[0]}' is not the pinned {key} image ({pinned['image']}:"
                    f'{pinned["tag"]}); write {{{{ obs_image("{key}") }}}}',
                )


def _chart_versions(text: str, data: ReleaseData) -> Iterator[Problem]:
    ours = {release.chart.version for release in data.releases}
    chart = data.current.grafana_chart
    theirs = {chart.version} | ({chart.minimum} if chart.minimum else set())
    flat = text.replace("\\\n", "  ")  # a command continued on the next line is one line
    for match in re.finditer(r"--version[ =]\"?(\d+\.\d+\.\d+[\w.+-]*)", flat):
        start = flat.rfind("\n", 0, match.start()) + 1
        command = flat[start : match.start()]
        if re.search(r"grafana-community|GRAFANA_CHART|/grafana\b", command):
            allowed, what, macro = theirs, "Grafana chart", "release.grafana_chart.version"
        elif re.search(r"betrace", command, re.IGNORECASE):
            allowed, what, macro = ours, "BeTrace chart", "release.chart.version"
        else:
            continue
        if match[1] not in allowed:
            yield Problem(
                _line(text, match.start()),
                f"--version {match[1]} is no version of the {what} in releases.yaml "
                f"({', '.join(sorted(allowed))}); write {{{{ {macro} }}}}",
            )


def _ports(text: str, data: ReleaseData) -> Iterator[Problem]:
    served = {str(port.port) for port in data.current.backend.ports.values()}
    for match in re.finditer(r"(?<=[:=])\"?(120\d\d)\b", text):
        if match[1] not in served:
            yield Problem(
                _line(text, match.start()),
                f"port {match[1]} is not a port of the backend ({', '.join(sorted(served))}); "
                'write {{ port("http") }} or {{ port("grpc") }}',
            )


_BACKEND_WORDS = re.compile(r"\b(?:bod(?:y|ies)|requests?|rules?|backend|betrace)\b", re.I)
_ELEMENT_START = re.compile(r"\s*(?:$|[-*+|#>]|\d+[.)]\s)")


def _element(text: str, offset: int) -> str:
    """The paragraph, list item or table row around `offset` (lines up to the next start)."""
    lines = text.split("\n")
    index = _line(text, offset) - 1
    first = index
    while first > 0 and not _ELEMENT_START.match(lines[first]) and lines[first - 1].strip():
        first -= 1
    last = index + 1
    while last < len(lines) and lines[last].strip() and not _ELEMENT_START.match(lines[last]):
        last += 1
    return "\n".join(lines[first:last])


def _sizes(text: str, data: ReleaseData, about_the_gate: bool) -> Iterator[Problem]:
    limits = [lim for lim in data.current.backend.limits if lim.unit == "bytes"]
    known = {amount(lim.value, lim.unit) for lim in limits}
    sizes = GATE_SIZES.items() if about_the_gate else ()
    gate = {name: amount(size, "bytes") for name, size in sizes}
    for match in re.finditer(r"\b(\d+(?:\.\d+)?) ?MiB\b", text):
        if f"{match[1]} MiB" in known | set(gate.values()):
            continue
        if about_the_gate or _BACKEND_WORDS.search(_element(text, match.start())):
            names = ", ".join(f"{lim.name} = {amount(lim.value, lim.unit)}" for lim in limits)
            gates = ", ".join(f"{name} = {size}" for name, size in gate.items())
            yield Problem(
                _line(text, match.start()),
                f"'{match[0]}' is no limit of the backend ({names})"
                + (f" nor of the gate ({gates})" if gate else "")
                + '; write {{ limit("<name>") }}',
            )


def problems(text: str, data: ReleaseData, about_the_gate: bool = False) -> list[Problem]:
    """Every value the page types by hand and gets wrong; `about_the_gate`: the page is one of
    those about the gate itself, which may also state the gate's own size limits."""
    checks = (_images, _observability, _chart_versions, _ports)
    found = [problem for check in checks for problem in check(text, data)]
    return found + list(_sizes(text, data, about_the_gate))
