"""Markdown tables built from the release data. Text from the data is escaped, never trusted."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence

from markdown.extensions.toc import slugify
from packaging.version import Version

from ..names import BETRACE_IMAGES
from ..release import Endpoint, KnownIssue, Release, ReleaseData, Target


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
        [
            "Grafana",
            r.grafana.needs,
            "the distribution's app takes react/jsx-runtime from Grafana (from Grafana's pull "
            "requests, not run here); upstream's unpatched app declares grafanaDependency "
            f">={r.grafana.upstream_minimum}, tested by upstream on " + ", ".join(r.grafana.tested),
        ],
        ["Kubernetes", f"≥ {r.kubernetes.minimum}", ""],
        [
            "Helm",
            f"≥ {r.helm.minimum}",
            "Helm 3 and Helm 4; the minimum is Helm's first with OCI charts generally available "
            "(Helm's documentation), not run here",
        ],
        ["Nix", f"≥ {r.nix.minimum}", "flakes enabled"],
        [
            "Docker Compose",
            f"≥ {r.compose.minimum}",
            "the Compose plugin (v2)"
            + (f"; not {', '.join(r.compose.broken)}" if r.compose.broken else "")
            + " (from Compose's pull requests and issues, not run here)",
        ],
        ["Go", f"≥ {r.backend.go_minimum}", "to build the backend from source (Nix, by hand)"],
        [
            "Grafana Helm chart",
            code(r.grafana_chart.version),
            f"{code(r.grafana_chart.repo_name + '/' + r.grafana_chart.chart)}, "
            f"Grafana {r.grafana_chart.app_version}"
            + (
                f"; the existing-Grafana guide's values render from {r.grafana_chart.minimum}"
                if r.grafana_chart.minimum
                else ""
            ),
        ],
    ]
    return table(["Component", "Version", "Notes"], rows)


def images(data: ReleaseData, release: Release | None = None) -> str:
    r = release or data.current
    rows = [[code(n), code(data.image_ref(n, r))] for n in BETRACE_IMAGES]
    rows += [
        [code(name), code(image.ref)]
        for name, image in (
            ("grafana", r.observability.grafana),
            ("tempo", r.observability.tempo),
            ("loki", r.observability.loki),
            ("prometheus", r.observability.prometheus),
            ("pyroscope", r.observability.pyroscope),
            ("otel-collector", r.observability.otel_collector),
            ("busybox", r.observability.busybox),
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
        [code(e.method), code(e.path), code(b.ports[e.port].port), cell(e.purpose), _takes(e)]
        for e in b.endpoints
    ]
    return table(["Method", "Path", "Port", "Purpose", "Takes"], rows)


def _takes(e: Endpoint) -> str:
    """What a call of the endpoint may give: its query parameters (those upstream's API
    description lists and the backend ignores, apart) and its JSON body's fields (those a rule
    needs marked)."""
    parts = []
    if e.query is not None:
        taken = [code(n) for n in e.query.fields if n not in e.query_ignored]
        ignored = [code(n) for n in e.query_ignored]
        parts.append(
            "query " + ", ".join(taken) + (f" ({', '.join(ignored)}: ignored)" if ignored else "")
        )
    if e.request is not None:
        fields = [
            code(n) + (" (needed)" if n in e.request.required else "") for n in e.request.fields
        ]
        parts.append("JSON body " + ", ".join(fields))
    return "; ".join(parts) or "nothing"


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
            cell(r.grafana.needs),
            cell(r.summary),
        ]
        for r in data.releases
    ]
    return table(["Release", "Date", "Chart", "Plugin", "Grafana", "Summary"], rows)


def chart_changes(data: ReleaseData) -> str:
    """Every chart version's changes (releases.yaml chart.changes), newest first, with what an
    upgrade to it asks of an operator. A version older than the first release's chart was the
    chart's development before that release: no release carries it, and the table says so."""
    chart = data.current.chart
    first = min(data.releases, key=lambda r: Version(r.chart.version))
    before = f" (never released: before release {first.version})"
    rows = [
        [
            code(c.version) + (before if Version(c.version) < Version(first.chart.version) else ""),
            c.kind,
            _text(c.description),
            _text(c.upgrade) if c.upgrade else "-",
        ]
        for c in chart.changes
    ]
    return table(["Chart", "Kind", "Change", "What an upgrade to it needs"], rows)


KNOWN_ISSUES_PAGE = "reference/known-issues.md"


def _text(value: str) -> str:
    """Prose from the release data, HTML-escaped, on one line, `*` and `_` kept literal."""
    text = html.escape(" ".join(value.split()), quote=False)
    return text.replace("*", "\\*").replace("_", "\\_")


def _upstream(data: ReleaseData, issue: KnownIssue) -> str:
    if issue.upstream_issue:
        return f"[{issue.upstream_issue}]({issue.upstream_issue})"
    return f"not yet reported upstream ([repository]({data.project.repository}))"


def known_issue(data: ReleaseData, issue_id: str, link: str) -> str:
    """A collapsed Material warning (pymdownx.details) for one known issue, its title shown;
    `link` is the known-issues page as seen from the page that shows it."""
    release = data.current
    issue = release.known_issue(issue_id)
    title = html.escape(issue.title).replace('"', "&quot;")
    body = [
        _text(issue.what),
        f"**Who is affected:** {_text(issue.affects)}",
        f"**Workaround:** {_text(issue.workaround)}",
        f"Known issue of BeTrace {release.backend.version}, {_upstream(data, issue)}; "
        f"see [all known issues]({link}#{issue.id}).",
    ]
    kind = "note" if issue.fixed_by else "warning"
    if issue.fixed_by:
        body[1:3] = [
            _fixed(release, issue),
            f"**Who is affected:** users of upstream's own builds. {_text(issue.affects)}",
            f"**Workaround there:** {_text(issue.workaround)}",
        ]
    # collapsed, its title shown: a guide states many (a reader review counted 11 open boxes
    # in the Compose guide between its steps); the known-issues page lists them all open
    lines = [f'??? {kind} "{issue.label}: {title}"', ""]
    for paragraph in body:
        lines += [f"    {paragraph}", ""]
    return "\n".join(lines).rstrip() + "\n"


#: Per component whose patches fix an issue: what of the distribution's carries them, and which
#: of upstream's own builds still have the issue.
_PATCHED_BUILDS = {
    "betrace-backend": (
        "every backend it builds",
        "the backend image, the images flake and the nixpkgs expression",
        "its flake, which the Nix flake guide builds, and the FlakeHub flake, which is the same "
        "flake",
    ),
    "grafana-betrace-app": (
        "every app it builds",
        "the plugin images the Compose stack and the charts' Grafana use, its nixpkgs "
        "expression and `make plugin`",
        "an app built from its tree, and its flake's plugin package",
    ),
}


def _fixed(release: Release, issue: KnownIssue) -> str:
    """Where a known issue fixed by the distribution's patches is fixed, and where it is not."""
    component = issue.fixing_component or ""
    if component not in _PATCHED_BUILDS:
        raise KeyError(f"known issue {issue.id}: no wording for patches of {component}; add it "
                       "to _PATCHED_BUILDS in site/tables.py")  # fmt: skip
    what, where, upstream = _PATCHED_BUILDS[component]
    patches = ", ".join(f"`{p}`" for p in issue.fixed_by)
    return (
        f"**Fixed in this distribution:** {what} carries {patches} ({where}). Upstream's own "
        f"builds of commit `{release.upstream.short}` still have it: {upstream}."
    )


def _evidence(data: ReleaseData, release: Release, issue: KnownIssue) -> str:
    base = f"{data.project.repository}/blob/{release.upstream.commit}/"
    parts = [f"[`{s}`]({base}{s})" for s in issue.source or []]
    if issue.observed:
        where = "the distribution's backend" if issue.fixed_by else "the running backend"
        parts.append(f"observed on {where}: {_text(issue.observed)}")
    return "; ".join(parts)


def known_issues(data: ReleaseData, release: Release | None = None) -> str:
    """Every known issue of a release, one section each (anchored by its id), in two groups:
    those of every build first, then those the distribution's patches fix, which only
    upstream's own builds have."""
    r = release or data.current
    if not r.known_issues:
        return f"No known issue of BeTrace {r.version} is recorded.\n"
    every = [i for i in r.known_issues if not i.fixed_by]
    patched = [i for i in r.known_issues if i.fixed_by]
    groups = [
        ("In every build", "The distribution's builds and upstream's own have these.", every),
        (
            "Only in upstream's own builds",
            "The distribution's patches fix these in every backend and app it builds: you meet "
            f"them only on upstream's own builds of commit `{r.upstream.short}`, such as its "
            "flake.",
            patched,
        ),
    ]
    out = []
    for heading, intro, issues in groups:
        if issues:
            out += [f"## {heading}", "", intro, ""]
            out += [line for issue in issues for line in _known_issue(data, r, issue)]
    return "\n".join(out)


def _known_issue(data: ReleaseData, r: Release, issue: KnownIssue) -> list[str]:
    who, way = ("users of upstream's own builds. ", " there") if issue.fixed_by else ("", "")
    return [
        f"### {html.escape(issue.title, quote=False)} {{#{issue.id}}}",
        "",
        _text(issue.what),
        "",
        *([_fixed(r, issue), ""] if issue.fixed_by else []),
        f"**Who is affected:** {who}{_text(issue.affects)}",
        "",
        f"**Workaround{way}:** {_text(issue.workaround)}",
        "",
        f"**Upstream:** {_upstream(data, issue)}. **Evidence:** {_evidence(data, r, issue)}.",
        "",
    ]


def amount(value: int, unit: str) -> str:
    if unit == "bytes":
        for size, name in ((1 << 20, "MiB"), (1 << 10, "KiB")):
            if value >= size and value % size == 0:
                return f"{value // size} {name}"
    return f"{value} {unit}"


def limits(data: ReleaseData, release: Release | None = None) -> str:
    b = (release or data.current).backend
    rows = [[code(lim.name), amount(lim.value, lim.unit), cell(lim.meaning)] for lim in b.limits]
    return table(["Limit", "Value", "Meaning"], rows)


#: the heading of a guide that needs the release's images where it says how to get them
IMAGES_SECTION = "Get the images and the chart"


def status(data: ReleaseData, checked: Callable[[Target], str], link: Callable[[str], str]) -> str:
    """The home page's status table: per target, what works, the known issues its guide states
    (and how many more every build has), and how its guide is checked (`checked`, counted from
    the gate's ledger); `link` makes a site path relative to the page that shows the table."""
    release = data.current
    rows = ["| Target | What works | Known issues | How its guide is checked |"]
    rows.append("|---|---|---|---|")
    issues_page = link(KNOWN_ISSUES_PAGE)
    for target in release.targets:
        guide = link(target.guide) + (f"#{slugify(target.section, '-')}" if target.section else "")
        issues = [
            f"[{html.escape(release.known_issue(i).title, quote=False)}]({issues_page}#{i})"
            for i in target.issues
        ]
        if target.needs_images and not release.published:
            build = f"{link(target.guide)}#{slugify(IMAGES_SECTION, '-')}"
            issues.insert(0, f"Images not published yet: [build them]({build})")
        # every build has the issues no patch fixes, whether its guide states them or not
        rest = [i for i in release.known_issues if not i.fixed_by and i.id not in target.issues]
        if rest:
            issues.append(f"[{len(rest)} more in every build]({issues_page}#in-every-build)")
        rows.append(
            f"| [{_text(target.name)}]({guide}) | {_text(target.works)} | "
            f"{'<br>'.join(issues) or 'none recorded'} | {checked(target)} |"
        )
    return "\n".join(rows) + "\n"
