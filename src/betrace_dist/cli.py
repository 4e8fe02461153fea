"""`betrace-dist`: the project's command line (release data, upstream contract, rules).

It imports nothing of the gate, so it runs with the project's dependencies alone (`pip
install .`); the gate's ledger is `betrace-gate ledger` (betrace_dist.gate.cli)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import REPO_ROOT
from .contract import contract
from .errors import ProblemsError
from .release import load_release_data
from .rules.check import main as rules_check
from .rules.check import write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="betrace-dist", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("release", help="validate the release data")
    check.add_argument("action", choices=["check"])
    check.add_argument("--file", type=Path, default=REPO_ROOT / "releases.yaml")
    check.add_argument(
        "--tag",
        help="also refuse unless this git tag is the current release's (v<version>): the "
        "workflows that publish a release run this first",
    )
    contract = sub.add_parser(
        "contract", help="compare the release data with upstream's API description and plugin.json"
    )
    contract.add_argument("--openapi", type=Path, required=True, help="Swagger 2.0 or OpenAPI 3")
    contract.add_argument("--plugin", type=Path, help="the Grafana app's plugin.json")
    contract.add_argument("--file", type=Path, default=REPO_ROOT / "releases.yaml")
    rules = sub.add_parser("rules", help="BeTrace rules files")
    rules.add_argument("action", choices=["check", "json"], help="compile, or write rules.json")
    rules.add_argument("files", type=Path, nargs="+", help="rules files (YAML or JSON)")
    rules.add_argument("-o", "--output", type=Path, help="rules json: the rules.json to write")
    rules.add_argument(
        "--backend",
        type=Path,
        help="rules check: a betrace-backend program of the pinned commit (default: the one "
        "built from upstream's snapshot, or BETRACE_LIVE_BACKEND)",
    )
    args = parser.parse_args(argv)

    if args.command == "rules":
        if args.action == "json":
            return write_json(args.files, args.output)
        return rules_check(args.files, args.backend)

    if args.command == "contract":
        return _contract(args.file, args.openapi, args.plugin)

    return _release_check(args.file, args.tag)


def _release_check(path: Path, tag: str | None) -> int:
    """`release check [--tag TAG]`: the release data is valid (and TAG is its release's)."""
    try:
        data = load_release_data(path)
    except ProblemsError as exc:
        print(exc, file=sys.stderr)
        return 1
    problem = data.current.tag_problem(tag) if tag is not None else None
    if problem:
        print(f"{path}: {problem}", file=sys.stderr)
        return 1
    print(f"{path}: valid; current release {data.current.version}")
    return 0


def _contract(data: Path, openapi: Path, plugin: Path | None) -> int:
    try:
        problems = contract(data, openapi, plugin)
    except ProblemsError as exc:
        print(exc, file=sys.stderr)
        return 2
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} difference(s) with upstream", file=sys.stderr)
        return 1
    against = ", ".join(str(p) for p in (openapi, plugin) if p)
    print(f"{data}: the release data agrees with {against}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
