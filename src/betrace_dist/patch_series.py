"""The distribution's patch series: how a series is named, headed, recorded and applied.

A series is a folder of `NNNN-lowercase-words.patch` files (patches/<component>/), applied in
order with `git apply` from the root of upstream's tree, so their paths start there
(`grafana-betrace-app/...`, `backend/...`). Each patch begins with a header in the DEP-3 manner
(HEADER_FIELDS); `git apply` ignores everything before the first `diff --git` line. The release
data records each series (`releases[0].plugin.patches`, `releases[0].backend.patches`):
release_problems holds the record to the files. Used by plugin_build (the app) and upstream (the
backend).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import REPO_ROOT

#: DEP-3 fields every patch header must carry (Evidence is this project's addition).
HEADER_FIELDS = ("Description", "Author", "Forwarded", "Last-Update", "Evidence")
PATCH_NAME = re.compile(r"^(\d{4})-[a-z0-9][a-z0-9-]*\.patch$")


class PatchError(Exception):
    """A patch of the series is malformed or does not apply: named by file and line."""


@dataclass(frozen=True)
class Header:
    path: Path
    fields: dict[str, str]
    lines: dict[str, int]


def digest(patches: list[Path], *more: bytes) -> str:
    """The sha256 (hex) of a series, its names and contents in order, and of `more` (the
    rest of a build's inputs): the key under which a build with the series is cached."""
    found = hashlib.sha256()
    for path in patches:
        found.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for part in more:
        found.update(part + b"\0")
    return found.hexdigest()


def series(patch_dir: Path) -> list[Path]:
    """The patches in order; a file that is not named NNNN-name.patch, or a gap, is an error."""
    found = sorted(p for p in patch_dir.iterdir() if p.suffix == ".patch")
    for index, path in enumerate(found, start=1):
        match = PATCH_NAME.match(path.name)
        if not match:
            raise PatchError(f"{path}:1: name must be NNNN-lowercase-words.patch")
        if int(match.group(1)) != index:
            raise PatchError(f"{path}:1: expected number {index:04d} (the series has a gap)")
    if not found:
        raise PatchError(f"{patch_dir}: no patch in the series")
    return found


def read_header(path: Path) -> Header:
    """The DEP-3 header: `Field: value` lines (continuations indented) before `---`."""
    fields: dict[str, str] = {}
    lines: dict[str, int] = {}
    current = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith(("---", "diff --git")):
            break
        if line.startswith(" ") and current:
            fields[current] += "\n" + line.strip()
            continue
        name, sep, value = line.partition(":")
        if sep and re.fullmatch(r"[A-Za-z][A-Za-z-]*", name):
            current = name
            fields[name] = value.strip()
            lines[name] = number
    return Header(path, fields, lines)


def header_problems(path: Path) -> list[str]:
    """Every missing or empty header field and malformed value, as `file:line: reason`."""
    header = read_header(path)
    problems = []
    for name in HEADER_FIELDS:
        if not header.fields.get(name, "").strip():
            problems.append(f"{path}:1: header field {name} is missing or empty")
    date = header.fields.get("Last-Update", "")
    if date and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        problems.append(f"{path}:{header.lines['Last-Update']}: Last-Update must be YYYY-MM-DD")
    forwarded = header.fields.get("Forwarded", "")
    if forwarded and not re.match(r"(no|not-needed|yes|https?://)", forwarded):
        problems.append(f"{path}:{header.lines['Forwarded']}: Forwarded must be no, yes or a URL")
    return problems


def release_problems(recorded: list[tuple[str, str]], patches: list[Path], field: str) -> list[str]:
    """The release data's patch list ((file, forwarded) pairs, releases.yaml
    releases[0].<field>) against the series on disk and each patch's Forwarded field."""
    files = [str(p.relative_to(REPO_ROOT)) if p.is_absolute() else str(p) for p in patches]
    listed = [file for file, _ in recorded]
    problems = []
    if listed != files:
        problems.append(f"releases.yaml {field} lists {listed}; the series is {files}")
    for (file, forwarded), path in zip(recorded, patches, strict=False):
        header = read_header(path).fields.get("Forwarded", "")
        if not header.startswith(forwarded):
            problems.append(
                f"releases.yaml {field} {file}: forwarded is {forwarded!r}, "
                f"the patch says {header!r}"
            )
    return problems


def apply_series(tree: Path, patches: list[Path]) -> None:
    """`git apply` each patch in order from the tree's root; the first failure is an error."""
    # Inside another git work tree (a cache folder of this checkout), `git apply` would take
    # paths from that repository's root and silently skip every file of the tree: keep git from
    # looking above the tree, and count what it applied.
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(tree.parent)}
    for path in patches:
        problems = header_problems(path)
        if problems:
            raise PatchError("\n".join(problems))
        done = subprocess.run(
            ["git", "apply", "--verbose", str(path)],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise PatchError(f"{path}:1: does not apply to {tree.name}:\n{done.stderr.strip()}")
        files = path.read_text(encoding="utf-8").count("\ndiff --git ")
        applied = done.stderr.count("Applied patch ")
        if applied != files or "Skipped patch" in done.stderr:
            raise PatchError(
                f"{path}:1: git applied {applied} of its {files} files to {tree}:\n"
                + done.stderr.strip()
            )
