"""git, make, sleep, python -m betrace_dist: the few other commands guides ask readers to run."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from ...release import load_release_data
from ..isolation import Done
from ..session import REAL, CommandError, Invocation
from ..world import closest
from .flags import split_flag

#: `git clone` options that take a value; every other option is taken as a switch
_CLONE_VALUE = frozenset({"-b", "--branch", "--depth", "-o", "--origin"})


def _clone_words(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """The valued options (by long name) and the positional words of `git clone ...`."""
    options: dict[str, str] = {}
    words: list[str] = []
    i = 0
    while i < len(argv):
        name, value = split_flag(argv[i])
        if name in _CLONE_VALUE:
            if value is None:
                i += 1
                if i >= len(argv):
                    raise CommandError(f"git clone: {name} needs a value")
                value = argv[i]
            options[{"-b": "--branch", "-o": "--origin"}.get(name, name)] = value
        elif not name.startswith("-"):
            words.append(argv[i])
        i += 1
    return options, words


def _clone(inv: Invocation, argv: list[str]) -> None:
    options, urls = _clone_words(argv)
    if not urls:
        raise CommandError("git clone needs a URL")
    data = inv.session.release
    url = urls[0].removesuffix(".git")
    known = {data.project.distribution_repository: inv.session.repo}
    if url not in known:
        raise CommandError(
            f"git clone: '{url}' is not this project's repository "
            f"({data.project.distribution_repository})"
        )
    want = f"v{data.current.version}"
    if "--branch" in options and options["--branch"] != want:
        raise CommandError(
            f"git clone --branch {options['--branch']}: the tag of this release is {want}; "
            "the page's files are the ones of that tag"
        )
    depth = options.get("--depth", "1")
    if not depth.isdigit() or int(depth) < 1:
        raise CommandError(f"git clone --depth {depth}: not a positive number")
    # the gate writes the copy itself: only inside the page's sandbox (second line)
    target = inv.session.inside(
        inv.session.path(urls[1] if len(urls) > 1 else url.rsplit("/", 1)[-1])
    )
    if target.exists():
        raise CommandError(f"git clone: '{inv.session.shown(target)}' already exists")
    size = _tree_size(known[url])
    if size > CLONE_LIMIT:  # apparent sizes: sparse files count at their full length
        raise CommandError(
            f"git clone: the clone would copy {size >> 20} MiB; the gate copies at most "
            f"{CLONE_LIMIT >> 20} MiB for a page"
        )
    inv.session.copy_clone(target)
    inv.session.hand_over(target)  # the page's clone is the page's (it runs as nobody)


def git(inv: Invocation) -> None:
    argv = inv.argv
    sub = argv[1] if len(argv) > 1 else ""
    if sub == "clone":
        _clone(inv, argv[2:])
        return
    if sub == "tag":
        tags = [a for a in argv[2:] if re.fullmatch(r"v?\d+\.\d+\.\d+.*", a)]
        # the release data as the page has left it (a bump earlier on the page moves it)
        want = f"v{load_release_data(inv.session.repo / 'releases.yaml').current.version}"
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


#: Largest tree the git model copies for a page's clone (the project is a few MiB).
CLONE_LIMIT = 256 * 1024 * 1024


def _tree_size(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*") if not p.is_symlink())


def python(inv: Invocation) -> Done:
    """`python -m betrace_dist.bump|cli ...`: the project's own commands, run for real on the
    page's copy of the repository (never on the repository the gate runs from)."""
    args = inv.argv[1:]
    if args[:1] != ["-m"] or len(args) < 2 or not args[1].startswith("betrace_dist"):
        raise CommandError("only `python -m betrace_dist.<command>` is modelled")
    module, rest = args[1], args[2:]
    if module == "betrace_dist.bump":
        rest = [*rest, "--root", str(inv.session.repo)]
    elif module == "betrace_dist.cli":
        return betrace_dist(inv, rest)
    else:
        raise CommandError(f"`python -m {module}` is not modelled")
    return _run_project(inv, ["-m", module, *rest])


def betrace_dist(inv: Invocation, args: list[str] | None = None) -> Done:
    """`betrace-dist release check` reads the page's copy of releases.yaml."""
    args = inv.argv[1:] if args is None else args
    if args[:2] == ["release", "check"] and "--file" not in args:
        args = [*args, "--file", str(inv.session.repo / "releases.yaml")]
    elif args[:1] == ["ledger"] and "--site" not in args:
        args = [*args, "--site", str(inv.session.repo / "mkdocs.yml")]
    return _run_project(inv, ["-m", "betrace_dist.cli", *args])


def _run_project(inv: Invocation, args: list[str]) -> Done:
    """The project's command, run for real in the page's jail: what it printed is returned, so
    a console block compares the output it shows."""
    # the page's copy of the project: its own source, as a reader's clone would run it
    env = inv.session.env | {"PYTHONPATH": str(inv.session.repo / "src")}
    done = inv.session.process([sys.executable, *args], env=env)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise CommandError(f"failed with exit code {done.returncode}: {' '.join(detail[-3:])}")
    return done


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


#: Longest wait a page may ask of the live tier (the backend evaluates a trace 3 s after it).
_LONGEST_SLEEP = 30.0


def sleep(inv: Invocation) -> None:
    """Offline, waiting changes nothing the gate can observe; with a live backend it does (the
    backend evaluates a trace seconds after its last span), so the wait is real."""
    try:
        seconds = sum(float(a.rstrip("s")) for a in inv.argv[1:])
    except ValueError:
        raise CommandError(
            f"sleep: '{' '.join(inv.argv[1:])}' is not a number of seconds"
        ) from None
    if inv.session.live is not None and inv.session.live.proc is not None:
        time.sleep(min(seconds, _LONGEST_SLEEP))


MODELS = {
    "git": git,
    "make": make,
    "sleep": sleep,
    "python": python,
    "python3": python,
    "betrace-dist": betrace_dist,
}
assert not set(MODELS) & REAL
