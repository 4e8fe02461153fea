"""git, make, sleep, python -m betrace_dist: the few other commands guides ask readers to run."""

from __future__ import annotations

import re
import shutil

from ..session import REAL, CommandError, Invocation
from ..world import closest


def git(inv: Invocation) -> None:
    argv = inv.argv
    sub = argv[1] if len(argv) > 1 else ""
    data = inv.session.release
    if sub == "clone":
        urls = [a for a in argv[2:] if not a.startswith("-")]
        if not urls:
            raise CommandError("git clone needs a URL")
        url = urls[0].removesuffix(".git")
        known = {data.project.distribution_repository: inv.session.repo}
        if url not in known:
            raise CommandError(
                f"git clone: '{url}' is not this project's repository "
                f"({data.project.distribution_repository})"
            )
        target = inv.session.path(urls[1] if len(urls) > 1 else url.rsplit("/", 1)[-1])
        if target.exists():
            raise CommandError(f"git clone: '{inv.session.shown(target)}' already exists")
        shutil.copytree(known[url], target, symlinks=True)
        return
    if sub == "tag":
        tags = [a for a in argv[2:] if re.fullmatch(r"v?\d+\.\d+\.\d+.*", a)]
        want = f"v{data.current.version}"
        if tags and tags[0] != want:
            raise CommandError(f"the tag of this release is {want}, not {tags[0]}")
        return
    if sub in (
        "push",
        "add",
        "commit",
        "checkout",
        "switch",
        "pull",
        "fetch",
        "status",
        "diff",
        "log",
    ):
        return
    raise CommandError(f"git {sub} is not modelled")


def make(inv: Invocation) -> None:
    makefile = inv.session.cwd / "Makefile"
    if not makefile.is_file():
        raise CommandError(f"there is no Makefile in '{inv.session.shown(inv.session.cwd)}'")
    targets = re.findall(r"^([a-z][a-z0-9-]*):", makefile.read_text(encoding="utf-8"), re.M)
    for word in inv.argv[1:]:
        name, eq, value = word.partition("=")
        if eq:
            if name == "PAGE" and not inv.session.path(value).exists():
                raise CommandError(f"make {word}: there is no '{value}'")
            continue
        if word not in targets:
            raise CommandError(
                f"make: no target '{word}'{closest(word, targets)}; targets: {', '.join(targets)}"
            )


def sleep(inv: Invocation) -> None:
    """Waiting changes nothing the gate can observe."""


MODELS = {"git": git, "make": make, "sleep": sleep}
assert not set(MODELS) & REAL
