"""`sleep`: a wait the page asks for, real only when a live backend is running."""

from __future__ import annotations

import time

from ..session import CommandError, Invocation

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
    if seconds > 0:
        # what was started in the background and starts at once listens after a wait: the
        # backend answered its health check about 0.1 s after it started (measured, see
        # rules/engine.py); kubectl port-forward opens its local port before it says so (not
        # measured here). A `nix run` builds first, which no fixed wait covers.
        for listener in inv.session.world.listeners.values():
            if listener.starting == "start":
                listener.starting = ""


MODELS = {"sleep": sleep}
