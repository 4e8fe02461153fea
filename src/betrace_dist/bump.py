"""One command bumps a release: `python -m betrace_dist.bump VERSION [--chart-version X]`.

It prepends a new entry to releases.yaml (a copy of the current one with the new version, tags,
chart and date; digests dropped, since they belong to the old images) and rewrites every artefact
that carries the version. Every edit is a line-preserving text edit (comments and layout stay),
every old value must equal what releases.yaml said (a file that had already drifted is refused),
and nothing is written unless the new release data validates and every edit applies.

`python -m betrace_dist.bump --digests image-digests.txt` records the digests the images workflow
published (one `IMAGE REFERENCE@sha256:HEX` line per image) wherever an image reference of the
release is kept: releases.yaml, the Compose file, the chart's artifacthub.io/images and its
values defaults (with the values table of its README), all or nothing.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import io
import json
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from . import REPO_ROOT
from .artefacts import chart_values
from .artefacts.compose import SERVICE_IMAGES
from .errors import ProblemsError
from .names import BETRACE_IMAGES
from .release import _VERSION, ReleaseData, Version, load_release_data, next_minor

RELEASES = Path("releases.yaml")
CHART = Path("helm/betrace/Chart.yaml")
COMPOSE = Path("docker/docker-compose.yml")
CHART_DIR = CHART.parent
VALUES = CHART_DIR / "values.yaml"
IMAGES = BETRACE_IMAGES
#: The BeTrace images the Compose file names (its services': artefacts/compose.SERVICE_IMAGES;
#: backend-rules runs BusyBox, so plugin-init is not among them)
COMPOSE_IMAGES = tuple(i for i in IMAGES if i in set(SERVICE_IMAGES.values()))
#: Where the chart's values.yaml keeps each BeTrace image's digest (`digest:` under these keys).
VALUES_DIGESTS = {
    "backend": ("backend", "image"),
    "grafana-plugin": ("grafana", "plugin", "pluginImage"),
    "plugin-init": ("grafana", "plugin", "initImage"),
}
DIGEST_LINE = re.compile(r"(?P<image>\S+) (?P<ref>[^\s@]+)@(?P<digest>sha256:[0-9a-f]{64})")


class BumpError(Exception):
    """The bump was refused; nothing was written."""


@dataclass(frozen=True)
class VersionLocation:
    """One place in one file that carries a version: group 2 of `pattern` is the version."""

    path: Path
    pattern: str
    carries: str  # "release" (the release version) or "chart" (the chart version)
    what: str

    def __post_init__(self) -> None:
        """Refused when made, naming what is wrong: a bump would otherwise fail on it with a
        KeyError or IndexError (it rewrites group 2, _edit_location)."""
        if self.carries not in ("release", "chart"):
            raise ValueError(
                f"VersionLocation {self.path}: carries is {self.carries!r}; it is 'release' (the "
                "release version) or 'chart' (the chart version)"
            )
        try:
            groups = re.compile(self.pattern).groups
        except re.error as exc:
            raise ValueError(
                f"VersionLocation {self.path}: the pattern is no regex: {exc}"
            ) from None
        if groups < 2:
            raise ValueError(
                f"VersionLocation {self.path}: the pattern has {groups} group(s); the bump "
                "rewrites its second group, the version (the first is the text before it)"
            )


# Every file that carries the version, besides releases.yaml and the image references. The
# nixpkgs expressions and the GitHub example flake carry the upstream commit instead (upstream has
# no tags): a bump keeps the release's upstream pin, and tests hold them to releases.yaml.
VERSION_LOCATIONS = [
    VersionLocation(
        Path("docker/flake.nix"), r'(\n\s*version = ")([^"]+)(";)', "release", "release.version"
    ),
    VersionLocation(
        Path("nix/examples/flakehub/flake.nix"),
        r'(url = "https://flakehub\.com/f/[^/"]+/[^/"]+/=)([^"]+?)(\.tar\.gz")',
        "release",
        "betrace input version",
    ),
    VersionLocation(
        COMPOSE, r"(\n  BETRACE_VERSION: )(\S+)(\n)", "release", "BETRACE_VERSION build arg"
    ),
    VersionLocation(
        Path("docker/Dockerfile"),
        r"(\nARG BETRACE_VERSION=)(\S+)(\n)",
        "release",
        "ARG BETRACE_VERSION",
    ),
    VersionLocation(CHART, r"(\nversion: ?)(\S+)(\n)", "chart", "version"),
    VersionLocation(CHART, r"(\nappVersion: ?)(\S+)(\n)", "release", "appVersion"),
]


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never re-wrap long lines
    return yaml


def _check_version(value: str, what: str, current: str) -> None:
    if not _VERSION.match(value):
        raise BumpError(f"{what} '{value}' is not a version of the form MAJOR.MINOR.PATCH")
    if not Version(value) > Version(current):
        raise BumpError(f"{what} {value} is not newer than the current {current}")


def _edit_location(text: str, location: VersionLocation, old: str, new: str) -> str:
    matches = list(re.finditer(location.pattern, text))
    if len(matches) != 1:
        raise BumpError(
            f"{location.path}: expected one {location.what}, found {len(matches)}; update "
            "VERSION_LOCATIONS in src/betrace_dist/bump.py with the file's new layout"
        )
    raw = matches[0].group(2)
    found = raw.strip("\"'")
    if found != old:
        raise BumpError(
            f"{location.path}: {location.what} is {found}, but releases.yaml says {old}; "
            "fix that drift first, then bump"
        )
    quote = raw[0] if raw[0] in "\"'" else ""
    return text[: matches[0].start(2)] + f"{quote}{new}{quote}" + text[matches[0].end(2) :]


def _edit_image_refs(text: str, registry: str, old: str, new: str) -> str:
    """registry/<image>:<old>[@sha256:...] -> registry/<image>:<new> (the digest was old)."""
    names = "|".join(re.escape(n) for n in IMAGES)
    pattern = rf"({re.escape(registry)}/(?:{names})):{re.escape(old)}(@sha256:[0-9a-f]{{64}})?\b"
    return re.sub(pattern, rf"\1:{new}", text)


def _set_digest(text: str, path: Path, ref: str, digest: str) -> str:
    """Every `ref[@sha256:...]` in the text -> `ref@digest`; the reference must be there."""
    pattern = rf"{re.escape(ref)}(@sha256:[0-9a-f]{{64}})?(?![\w.:-])"
    changed, count = re.subn(pattern, f"{ref}@{digest}", text)
    if count == 0:
        raise BumpError(f"{path}: {ref} is not there; the digest has no reference to join")
    return changed


def _set_values_digests(text: str, digests: dict[str, str]) -> str:
    """values.yaml with each image's `digest:` default set (\"\" clears it), line by line."""
    doc = _yaml().load(text)
    lines = text.splitlines(keepends=True)
    for image, digest in digests.items():
        node = doc
        for key in VALUES_DIGESTS[image]:
            node = node[key]
        number = node.lc.key("digest")[0]
        edited, count = re.subn(
            r'(digest: )(""|"sha256:[0-9a-f]{64}")', rf'\1"{digest}"', lines[number]
        )
        if count != 1:
            where = ".".join(VALUES_DIGESTS[image])
            raise BumpError(f'{VALUES}:{number + 1}: {where}.digest is not a quoted digest or ""')
        lines[number] = edited
    return "".join(lines)


def _values_table(root: Path, values: str) -> dict[Path, str]:
    """The chart's generated files (schema, README's values table) for the new values.yaml."""
    readme = CHART_DIR / chart_values.README_FILE
    try:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "values.yaml").write_text(values, encoding="utf-8")
            doc = chart_values.parse_values(Path(tmp))
        table = chart_values.render_table(doc)
        return {
            readme: chart_values.readme_with_table(_read(root / readme), table, readme),
            CHART_DIR / chart_values.SCHEMA_FILE: chart_values.schema_text(doc),
        }
    except ProblemsError as exc:
        raise BumpError(
            f"{CHART_DIR}: the chart's generated files cannot be remade:\n{exc}"
        ) from None


def _app_change(chart_version: str, version: str, doc: Any) -> dict[str, str]:
    """What every bumped chart version changes: the BeTrace it runs (chart.changes)."""
    before = doc["releases"][0]["version"]
    return {
        "version": chart_version,
        "kind": "changed",
        "description": f"BeTrace {version} (its images and appVersion), in place of {before}.",
    }


#: the annotation of Chart.yaml that lists the chart version's changes (chart_policy checks it)
_CHANGES = re.compile(r"(?m)^  artifacthub\.io/changes: \|\n(?:(?:    .*)?\n)*")


def _chart_changes(text: str, changes: list[dict[str, str]]) -> str:
    """Chart.yaml with its artifacthub.io/changes block listing `changes` (kind, description;
    a JSON string is a YAML string), added at the end of the annotations if it has none."""
    block = "  artifacthub.io/changes: |\n" + "".join(
        f"    - kind: {c['kind']}\n      description: {json.dumps(c['description'])}\n"
        for c in changes
    )
    if _CHANGES.search(text):
        return _CHANGES.sub(lambda _: block, text, count=1)
    raise BumpError(f"{CHART}: no artifacthub.io/changes annotation to rewrite")


def _new_releases_text(
    text: str, version: str, chart_version: str, date: dt.date, summary: str
) -> str:
    yaml = _yaml()
    doc = yaml.load(text)
    entry = copy.deepcopy(doc["releases"][0])
    entry["version"] = version
    entry["date"] = date
    entry["summary"] = summary
    for name in IMAGES:
        entry["images"][name]["tag"] = version
        entry["images"][name].pop("digest", None)
    entry["chart"]["version"] = chart_version
    entry["chart"]["app_version"] = version
    entry["chart"].setdefault("changes", [])
    entry["chart"]["changes"].insert(0, _app_change(chart_version, version, doc))
    entry["backend"]["version"] = version
    doc["releases"].insert(0, entry)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def plan(
    root: Path,
    version: str,
    chart_version: str | None = None,
    date: dt.date | None = None,
    summary: str | None = None,
) -> dict[Path, str]:
    """New text of every file the bump changes; raises BumpError (nothing written) if refused."""
    try:
        data: ReleaseData = load_release_data(root / RELEASES)
    except ProblemsError as exc:
        raise BumpError(f"the current release data is invalid:\n{exc}") from None
    cur = data.current
    _check_version(version, "version", cur.version)
    chart_version = chart_version or next_minor(cur.chart.version)
    _check_version(chart_version, "chart version", cur.chart.version)
    date = date or dt.date.today()
    summary = summary or f"BeTrace {version}."

    texts: dict[Path, str] = {}

    def edit(path: Path, change: Callable[[str], str]) -> None:
        if path not in texts:
            if not (root / path).is_file():
                raise BumpError(f"{path}: not found; the bump would leave it behind")
            texts[path] = (root / path).read_text(encoding="utf-8")
        texts[path] = change(texts[path])

    old = {"release": cur.version, "chart": cur.chart.version}
    new = {"release": version, "chart": chart_version}
    for location in VERSION_LOCATIONS:
        edit(
            location.path,
            partial(
                _edit_location,
                location=location,
                old=old[location.carries],
                new=new[location.carries],
            ),
        )
    for path in (CHART, COMPOSE):
        if (root / path).is_file():
            edit(path, lambda t: _edit_image_refs(t, data.project.registry, cur.version, version))
    if (root / VALUES).is_file():  # the digests of the old images go from the defaults too
        edit(VALUES, partial(_set_values_digests, digests=dict.fromkeys(IMAGES, "")))
        texts |= _values_table(root, texts[VALUES])
    texts[RELEASES] = _new_releases_text(
        (root / RELEASES).read_text(encoding="utf-8"), version, chart_version, date, summary
    )
    if (root / CHART).is_file():
        change = _app_change(chart_version, version, {"releases": [{"version": cur.version}]})
        edit(CHART, partial(_chart_changes, changes=[change]))
    return _changed(root, texts)


def _changed(root: Path, texts: dict[Path, str]) -> dict[Path, str]:
    """The files whose text changes, once the new release data validates as the project reads
    it (before any file is touched)."""
    with tempfile.TemporaryDirectory() as tmp:
        check = Path(tmp) / RELEASES.name
        check.write_text(texts[RELEASES], encoding="utf-8")
        try:
            load_release_data(check)
        except ProblemsError as exc:
            where = str(exc).replace(str(check), f"{RELEASES} (as bumped)")
            raise BumpError(f"the new release data would be invalid:\n{where}") from None
    return {path: text for path, text in texts.items() if text != _read(root / path)}


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def read_digests(path: Path, data: ReleaseData) -> dict[str, str]:
    """image -> digest from the images workflow's file, each line checked against the release."""
    problems: list[str] = []
    found: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BumpError(f"{path}: cannot be read ({exc})") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        match = DIGEST_LINE.fullmatch(line.strip())
        if match is None:
            problems.append(f"{where}: expected 'IMAGE REFERENCE@sha256:<64 hex>', got {line!r}")
            continue
        image = match["image"]
        if image not in IMAGES or image in found:
            why = "listed twice" if image in found else f"not an image of the release {IMAGES}"
            problems.append(f"{where}: {image!r} is {why}")
            continue
        expected = data.image_ref(image).partition("@")[0]  # the release's, without a digest
        if match["ref"] != expected:
            problems.append(f"{where}: {match['ref']} is not {expected}, the release's {image}")
        found[image] = match["digest"]
    if missing := [i for i in IMAGES if i not in found and not problems]:
        problems.append(f"{path}: no line for {', '.join(missing)}")
    if problems:
        raise BumpError("\n".join(problems))
    return found


def plan_digests(root: Path, digests_file: Path) -> dict[Path, str]:
    """New text of every file that keeps an image reference of the release, with its digest."""
    try:
        data = load_release_data(root / RELEASES)
    except ProblemsError as exc:
        raise BumpError(f"the current release data is invalid:\n{exc}") from None
    digests = read_digests(digests_file, data)
    yaml = _yaml()
    doc = yaml.load(_read(root / RELEASES))
    for image, digest in digests.items():
        doc["releases"][0]["images"][image]["digest"] = digest
    out = io.StringIO()
    yaml.dump(doc, out)
    texts = {RELEASES: out.getvalue()}
    for path, kept in ((COMPOSE, COMPOSE_IMAGES), (CHART, IMAGES)):
        text = _read(root / path)
        for image, digest in digests.items():
            if image in kept:
                ref = data.image_ref(image).partition("@")[0]
                text = _set_digest(text, path, ref, digest)
        texts[path] = text
    texts[VALUES] = _set_values_digests(_read(root / VALUES), digests)
    texts |= _values_table(root, texts[VALUES])
    return _changed(root, texts)


def write_all(root: Path, texts: dict[Path, str]) -> None:
    """Write every file or none: temporary files first, then renames, undone on failure."""
    temps: dict[Path, Path] = {}
    originals = {path: _read(root / path) for path in texts}
    try:
        for path, text in texts.items():
            temp = (root / path).with_name(f".{(root / path).name}.bump-tmp")
            temp.write_text(text, encoding="utf-8")
            temps[path] = temp
        done: list[Path] = []
        try:
            for path, temp in temps.items():
                temp.replace(root / path)
                done.append(path)
        except OSError:
            for path in done:
                (root / path).write_text(originals[path], encoding="utf-8")
            raise
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)


def bump(
    root: Path,
    version: str,
    chart_version: str | None = None,
    date: dt.date | None = None,
    summary: str | None = None,
) -> list[Path]:
    """Bump and write; returns the files changed (relative to root)."""
    texts = plan(root, version, chart_version, date, summary)
    write_all(root, texts)
    return sorted(texts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m betrace_dist.bump", description=__doc__)
    parser.add_argument("version", nargs="?", help="the new release version, e.g. 2.1.0")
    parser.add_argument(
        "--digests", type=Path, help="record the published digests (image-digests.txt) instead"
    )
    parser.add_argument("--chart-version", help="new chart version (default: next minor)")
    parser.add_argument("--date", type=dt.date.fromisoformat, help="YYYY-MM-DD (default: today)")
    parser.add_argument("--summary", help="one-line summary of the release")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--dry-run", action="store_true", help="list the files, write nothing")
    args = parser.parse_args(argv)
    if (args.version is None) == (args.digests is None):
        parser.error("give either the new VERSION or --digests FILE")
    options = (args.chart_version, args.date, args.summary)
    try:
        if args.digests is not None:
            texts = plan_digests(args.root, args.digests)
        else:
            texts = plan(args.root, args.version, *options)
        if not args.dry_run:
            write_all(args.root, texts)
    except BumpError as exc:
        print(f"bump refused, nothing written: {exc}", file=sys.stderr)
        return 1
    verb = "would change" if args.dry_run else "changed"
    label = args.version or f"digests from {args.digests}"
    print(f"{label}: {verb} " + ", ".join(str(p) for p in sorted(texts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
