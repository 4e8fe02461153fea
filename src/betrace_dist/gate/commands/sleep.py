"""`sleep`: a wait the page asks for, real only when a live backend is running."""

from __future__ import annotations

import math
import re
import time

from ..session import CommandError, Invocation
from .curl import CONTAINER_WAIT

#: Longest wait a page may ask of the live tier (the backend evaluates a trace 3 s after it).
_LONGEST_SLEEP = 30.0
#: coreutils' sleep: a number (decimal or hexadecimal, or inf) and a unit (s, m, h, d), the
#: arguments summed (its manual and `sleep --help`)
_ARG = re.compile(
    r"(?P<n>(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|0x[0-9a-f]*\.?[0-9a-f]*(?:p[+-]?\d+)?|inf|infinity)"
    r"(?P<unit>[smhd]?)",
    re.I,
)
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(words: list[str]) -> float:
    total = 0.0
    for word in [w for w in words if w != "--"] or [""]:
        found = _ARG.fullmatch(word)
        if found is None:
            raise CommandError(f"sleep: '{word}' is not a number of seconds (with s, m, h or d)")
        number = found["n"].lower()
        value = float.fromhex(number) if number.startswith("0x") else float(number)
        total += value * _UNIT[found["unit"].lower()]
    return total


def sleep(inv: Invocation) -> str | None:
    """Offline, waiting changes nothing the gate can observe but what started in the
    background; with a live backend the wait is real (the backend evaluates a trace seconds
    after its last span). `sleep inf` never returns. It prints nothing (""), so a transcript's
    step `sleep N && curl ...` has the curl's output compared as a step of curl alone has."""
    seconds = _seconds(inv.argv[1:])
    if math.isinf(seconds):
        inv.never_returns("`sleep infinity` waits")
        return None
    if inv.command.background:
        return ""  # nothing waits for it
    if inv.session.live is not None and inv.session.live.proc is not None:
        time.sleep(min(seconds, _LONGEST_SLEEP))
    # what started in the background listens once the backend's start time has passed
    # (releases.yaml backend.start, re-measured by the probe start-time; kubectl port-forward
    # opens its local port before it says so, not measured here); `nix run` builds first,
    # which no fixed wait covers
    started = inv.session.release.current.backend.start.listening_at_most
    for listener in inv.session.world.listeners.values():
        # a Compose container's backend listens within its start time too, any other
        # container within the wait a retrying curl is given (curl._needed)
        backend = listener.starting == "start" or listener.role == "backend"
        needed = started if backend else CONTAINER_WAIT
        if listener.starting in ("start", "container") and seconds >= needed:
            listener.starting = ""
    return ""


MODELS = {"sleep": sleep}
