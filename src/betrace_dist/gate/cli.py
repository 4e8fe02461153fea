"""`betrace-gate`: the gate's own command line (the block ledger).

Apart from `betrace-dist` so that the rules, release and contract commands run with the
project's dependencies alone (`pip install .`): the gate needs the test tools (pytest, Sybil).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import REPO_ROOT
from ..errors import ProblemsError
from .collect import Gate
from .ledger import format_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="betrace-gate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ledger = sub.add_parser("ledger", help="print every block of every page and its checker")
    ledger.add_argument("--site", type=Path, default=REPO_ROOT / "mkdocs.yml", help="mkdocs.yml")
    args = parser.parse_args(argv)
    gate = Gate(args.site)
    try:
        entries = gate.ledger()
    except (ProblemsError, SystemExit) as exc:
        print(exc.code if isinstance(exc, SystemExit) else exc, file=sys.stderr)
        return 1
    print(format_table(entries))
    bad = [e for e in entries if e.status in ("unclaimed", "error")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
