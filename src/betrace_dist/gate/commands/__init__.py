"""Command models: one per tool a guide may tell the reader to run (one module per tool, named
after it; project.py holds the project's own commands: make, python -m betrace_dist, betrace-dist).

Each model checks a command against the real tool run offline (Helm, Compose, Nix) and against
the page's world (what earlier commands installed, published or forwarded).
"""

from __future__ import annotations

from ..session import FILE_COMMANDS, Model
from . import compose, curl, git, helm, kubectl, nix, project, sleep


def models() -> dict[str, Model]:
    table: dict[str, Model] = {}
    for module in (compose, curl, git, helm, kubectl, nix, project, sleep):
        table.update(module.MODELS)
    # a command is either run for real in the sandbox or modelled, never both
    assert not set(table) & FILE_COMMANDS, set(table) & FILE_COMMANDS
    return table
