"""Command models: one per tool a guide may tell the reader to run.

Each model checks a command against the real tool run offline (Helm, Compose, Nix) and against
the page's world (what earlier commands installed, published or forwarded).
"""

from __future__ import annotations

from ..session import Model


def models() -> dict[str, Model]:
    from . import compose, curl, helm, kubectl, misc, nix

    table: dict[str, Model] = {}
    for module in (compose, curl, helm, kubectl, misc, nix):
        table.update(module.MODELS)
    return table
