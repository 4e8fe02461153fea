"""Markdown tables built from the release data. Text from the data is escaped, never trusted."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from ..release import Release, ReleaseData


def cell(value: object) -> str:
    """One table cell: HTML-escaped, pipes escaped, newlines folded."""
    text = html.escape(str(value), quote=False)
    return text.replace("|", "\\|").replace("\n", " ").strip()


def code(value: object) -> str:
    return f"`{value!s}`".replace("|", "\\|")


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def compatibility(data: ReleaseData, release: Release | None = None) -> str:
    r = release or data.current
    rows = [
        ["BeTrace backend", code(r.backend.version), "binary " + code(r.backend.binary)],
        ["Grafana app plugin", code(r.plugin.version), "id " + code(r.plugin.id)],
        [
            "Helm chart",
            code(r.chart.version),
            f"{code(r.chart.name)}, appVersion {r.chart.app_version}",
        ],
        ["Grafana", f"≥ {r.grafana.minimum}", "tested: " + ", ".join(r.grafana.tested)],
        ["Kubernetes", f"≥ {r.kubernetes.minimum}", ""],
        ["Helm", f"≥ {r.helm.minimum}", "Helm 3 and Helm 4"],
        ["Nix", f"≥ {r.nix.minimum}", "flakes enabled"],
        [
            "Official Grafana chart",
            code(r.grafana_chart.version),
            f"{code(r.grafana_chart.repo_name + '/' + r.grafana_chart.chart)}, "
            f"Grafana {r.grafana_chart.app_version}",
        ],
    ]
    return table(["Component", "Version", "Notes"], rows)


def images(data: ReleaseData, release: Release | None = None) -> str:
    r = release or data.current
    rows = [
        [code(n), code(data.image_ref(n, r))] for n in ("backend", "grafana-plugin", "plugin-init")
    ]
    rows += [
        [code(name), code(image.ref)]
        for name, image in (
            ("grafana", r.observability.grafana),
            ("tempo", r.observability.tempo),
            ("loki", r.observability.loki),
            ("prometheus", r.observability.prometheus),
            ("pyroscope", r.observability.pyroscope),
            ("otel-collector", r.observability.otel_collector),
        )
    ]
    return table(["Image", "Reference"], rows)


def environment(data: ReleaseData, release: Release | None = None) -> str:
    b = (release or data.current).backend
    rows = [
        [code(v.name), code(v.default) if v.default else "(empty)", cell(v.meaning)] for v in b.env
    ]
    return table(["Variable", "Default", "Meaning"], rows)


def endpoints(data: ReleaseData, release: Release | None = None) -> str:
    b = (release or data.current).backend
    rows = [
        [code(e.method), code(e.path), code(b.ports[e.port].port), cell(e.purpose)]
        for e in b.endpoints
    ]
    return table(["Method", "Path", "Port", "Purpose"], rows)


def ports(data: ReleaseData, release: Release | None = None) -> str:
    b = (release or data.current).backend
    rows = [[name, code(p.port), code(p.env), cell(p.serves)] for name, p in b.ports.items()]
    return table(["Port", "Number", "Set by", "Serves"], rows)


def history(data: ReleaseData) -> str:
    rows = [
        [
            f"**{r.version}**",
            r.date.isoformat(),
            code(r.chart.version),
            code(r.plugin.version),
            f"≥ {r.grafana.minimum}",
            cell(r.summary),
        ]
        for r in data.releases
    ]
    return table(["Release", "Date", "Chart", "Plugin", "Grafana", "Summary"], rows)
