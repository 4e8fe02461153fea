"""What a page says about upstream, held to the release data: no false claim, no hidden issue.

Two lists of releases.yaml drive it, so a fact learnt once (from upstream's source or from
running the real backend) guards every page from then on:

- `false_claims`: statements that are false at the pinned commit ("the app lists its rules",
  "bodies up to 10 MiB"). A page whose text, as readers see it, says one fails at that line.
- `known_issues[].shown_with`: code that leads a reader into a known issue (creating a rule, which
  breaks after a restart; starting the bare binary, which binds every interface). A page with
  such a block must show the issue (`{{ known_issue("id") }}`), or the block fails at its line.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from ..release import KnownIssue, Release, ReleaseData
from . import typed
from .display import Problem
from .flat_text import flatten, line_of
from .lexer import Block


def stated(issue: KnownIssue, text: str) -> bool:
    """The page shows the issue's admonition (as `known_issue("id")` writes its title)."""
    escaped = html.escape(issue.title).replace('"', "&quot;")
    return any(f"{issue.label}: {title}" in text for title in (issue.title, escaped))


def false_claims(text: str, release: Release, what: str = "page") -> list[Problem]:
    """Every false claim the page (or another text: `what`) makes, at the line where it starts."""
    flat, where = flatten(text)  # a claim may wrap across lines of the source
    found = []
    for claim in release.false_claims:
        for match in re.finditer(claim.claim, flat, re.IGNORECASE):
            said = " ".join(match.group(0).split())
            see = f" (known issue {claim.see})" if claim.see else ""
            found.append(
                Problem(
                    line_of(text, where[match.start()]),
                    f"the {what} says '{said}', which is false at BeTrace {release.version}: "
                    f"{claim.why}{see}",
                )
            )
    return found


def hidden_issues(text: str, blocks: list[Block], release: Release) -> list[Problem]:
    """Blocks that lead into a known issue on a page that does not show it: one problem per
    block, naming every issue it leads into (once per page: one admonition answers them all)."""
    missing: dict[int, list[str]] = {}
    for issue in release.known_issues:
        if not issue.shown_with or stated(issue, text):
            continue
        first = next(
            (b for b in blocks if any(re.search(p, b.body) for p in issue.shown_with)), None
        )
        if first is not None:
            missing.setdefault(first.line, []).append(issue.id)
    return [
        Problem(
            line,
            f"this block leads the reader into known issue(s) of BeTrace {release.version} "
            f"that the page does not show: "
            + ", ".join(f'{{{{ known_issue("{i}") }}}}' for i in ids),
        )
        for line, ids in sorted(missing.items())
    ]


def unstated_issues(text: str, page: str, release: Release) -> list[Problem]:
    """A page that a known issue names (`pages:`) but that no longer states it, at line 1."""
    return [
        Problem(
            1,
            f"known issue {issue.id} of BeTrace {release.version} names this page "
            f"(releases.yaml known_issues[].pages), but the page no longer states it: "
            f'add {{{{ known_issue("{issue.id}") }}}} where the reader meets it',
        )
        for issue in release.known_issues
        if page in issue.pages and not stated(issue, text)
    ]


def problems(text: str, blocks: list[Block], release: Release) -> list[Problem]:
    return false_claims(text, release) + hidden_issues(text, blocks, release)


#: The artefacts' texts readers see besides the pages, held to the same false claims: the chart's
#: README, NOTES.txt and values descriptions, the Compose files and their comments, the configs
#: beside them, the Nix expressions' descriptions and the workflows' comments. Folders are read
#: whole.
ARTEFACT_TEXTS = (
    "helm/betrace/README.md",
    "helm/betrace/Chart.yaml",
    "helm/betrace/values.yaml",
    "helm/betrace/templates",
    "helm/betrace/ci",
    "helm/examples",
    "docker",
    "nix",
    "patches/README.md",
    "patches/betrace-backend",  # each patch's header: what it fixes and the evidence
    "patches/grafana-betrace-app",
    ".github/workflows",  # the workflows' comments and step names
)
_TEXT_SUFFIXES = {".md", ".txt", ".yaml", ".yml", ".tpl", ".nix", ".sh", ".example", ".patch", ""}


def artefact_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for name in ARTEFACT_TEXTS:
        path = root / name
        found = sorted(path.rglob("*")) if path.is_dir() else [path]
        files += [f for f in found if f.is_file() and f.suffix in _TEXT_SUFFIXES | {".json"}]
    return [f for f in files if f.name != "values.schema.json"]  # generated from values.yaml


def artefact_text(path: Path) -> str:
    """What an artefact says in prose: the whole file, or a patch's header (the lines before
    its first diff, so line numbers stay those of the file); upstream's code is not prose."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".patch":
        text = text.split("\ndiff --git ", 1)[0].split("\n--- a/", 1)[0]
    return text


def artefact_false_claims(root: Path, release: Release) -> list[str]:
    """`file:LINE: reason` for every false claim in the artefacts' texts under `root`."""
    out = []
    for path in artefact_files(root):
        text = artefact_text(path)
        where = path.relative_to(root)
        out += [f"{where}:{p.line}: {p.reason}" for p in false_claims(text, release, "text")]
    return out


def artefact_typed_values(root: Path, data: ReleaseData) -> list[str]:
    """`file:LINE: reason` for every image tag, chart version, port or size that an artefact's
    text types by hand and gets wrong (gate/typed.py, as on the pages)."""
    out = []
    for path in artefact_files(root):
        text = artefact_text(path)
        where = path.relative_to(root)
        out += [f"{where}:{p.line}: {p.reason}" for p in typed.problems(text, data)]
    return out
