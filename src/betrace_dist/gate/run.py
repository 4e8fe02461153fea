"""One run of the gate: everything a run keeps, in one object, and none of it in a module.

A `GateRun` is made when pytest configures (plugin.py) and kept on pytest's `config.stash`; the
stages get what they need of it as arguments (the collector its live tier and output queue, a
page's session the live tier, the plugin the counts of its report). Two runs in one process
(two pytest configs) share nothing: tests/test_run_state.py holds it, and that no module of
the gate keeps mutable state at module level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from ..errors import ProblemsError
from .live import LiveError, LiveTier, configure
from .update import Updates

if TYPE_CHECKING:
    from .collect import Gate


@dataclass
class GateRun:
    """The state of one run: its live tier, its output rewrites and what its report counts."""

    #: the live tier: the backend program or why there is none, and the commands sent to it
    live: LiveTier = field(default_factory=LiveTier)
    #: --update-outputs: the rewrites queued while the run goes (None: the option is off)
    updates: Updates | None = None
    #: the gates (one per site) this run collects pages from
    gates: list[Gate] = field(default_factory=list)
    #: (page relative to the rootdir, source line) -> passed, filled as reports arrive (xdist too)
    outcomes: dict[tuple[str, int], bool] = field(default_factory=dict)
    #: one line per command a block sent to the live backend, from the blocks' reports (xdist too)
    live_lines: list[str] = field(default_factory=list)
    #: page -> (reused or ran, why it ran), from the blocks' reports (gate/result_cache.py)
    cache: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: gate blocks reported: how many were checked (passed or failed) and how many skipped
    checked: int = 0
    skipped: int = 0
    #: of those skipped, how many because they run on the live tier and --no-live turned it off
    skipped_live_off: int = 0
    #: reason -> number of tests (gate blocks or not) skipped for a tool that is not installed
    missing: dict[str, int] = field(default_factory=dict)


_KEY = pytest.StashKey[GateRun]()


def run_of(config: pytest.Config) -> GateRun:
    """The run of a pytest config: made from its options on first use (whichever of the plugin
    and a site's conftest configures first), the same object after."""
    if _KEY not in config.stash:
        try:
            live = configure(
                config.getoption("--live-backend", default=None),
                off=bool(config.getoption("--no-live", default=False)),
            )
        except LiveError as exc:
            raise pytest.UsageError(str(exc)) from None
        except ProblemsError as exc:  # the live tier reads the release data first
            raise pytest.UsageError(f"the release data cannot be loaded:\n{exc}") from None
        updates = Updates() if config.getoption("--update-outputs", default=False) else None
        config.stash[_KEY] = GateRun(live=live, updates=updates)
    return config.stash[_KEY]
