"""The project's own commands a guide runs in the reader's clone: `make TARGET` (the target must
exist in the Makefile; it is not run), and `python -m betrace_dist.<command>` and `betrace-dist`,
run for real on the page's copy of the repository."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ...backend_run import ENV_VAR
from ...names import closest
from ..isolation import Done
from ..session import CommandError, Invocation


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
    elif args[:2] == ["rules", "check"]:
        return _rules_check(inv, args)
    return _run_project(inv, ["-m", "betrace_dist.cli", *args])


def _rules_check(inv: Invocation, args: list[str]) -> Done:
    """`betrace-dist rules check`: on the live tier's backend program, shown read-only in the
    jail, whose network namespace already has only loopback (rules/engine.py runs it there).
    A page may not name its own program: what the ledger records as run on the real backend
    must be the live tier's."""
    if any(a == "--backend" or a.startswith("--backend=") for a in args):
        raise CommandError(
            "betrace-dist rules check --backend: the gate checks rules on the live tier's "
            "backend, built from the pinned source; a page cannot name another program"
        )
    program = inv.session.live_tier.program_or_skip("`betrace-dist rules check` runs", CommandError)
    env = {ENV_VAR: str(program)}
    return _run_project(inv, ["-m", "betrace_dist.cli", *args], env, (program,))


def _run_project(
    inv: Invocation,
    args: list[str],
    extra_env: dict[str, str] | None = None,
    shown: tuple[Path, ...] = (),
) -> Done:
    """The project's command, run for real in the page's jail: what it printed is returned, so
    a console block compares the output it shows."""
    # the page's copy of the project: its own source, as a reader's clone would run it
    env = inv.session.env | {"PYTHONPATH": str(inv.session.repo / "src")} | (extra_env or {})
    done = inv.session.process([sys.executable, *args], env=env, shown=shown)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise CommandError(f"failed with exit code {done.returncode}: {' '.join(detail[-3:])}")
    return done


def make(inv: Invocation) -> None:
    makefile = inv.session.beneath(inv.session.cwd / "Makefile", "read")
    if not makefile.is_file():
        raise CommandError(f"there is no Makefile in '{inv.session.reader_path(inv.session.cwd)}'")
    targets = re.findall(r"^([a-z][a-z0-9-]*):", inv.session.read(str(makefile)), re.M)
    for word in inv.argv[1:]:
        name, eq, value = word.partition("=")
        if eq:
            if name == "PAGE" and not inv.session.where(value).exists():
                raise CommandError(f"make {word}: there is no '{value}'")
            continue
        if word not in targets:
            raise CommandError(
                f"make: no target '{word}'{closest(word, targets)}; targets: {', '.join(targets)}"
            )


MODELS = {
    "make": make,
    "python": python,
    "python3": python,
    "betrace-dist": betrace_dist,
}
