"""The live tier: the pages' backend steps run for real against a real BeTrace backend program.

Offline, a `curl` to the backend is checked against a model (the port is published, the path
is served, the body has the fields the release data lists). Given a real `betrace-backend`
(`pytest docs/ --live-backend PATH`, or BETRACE_LIVE_BACKEND=PATH), the gate also starts that
program in the page's jail when the page's model has the backend running and published (after
`docker compose up`, a `kubectl port-forward`), on the published port and with the environment
the page's artefact gives it, and runs the page's command for real: the HTTP status must be a
success, a JSON answer must have the fields the release data documents for that endpoint, and a
console block's documented output is compared (see checkers/shell.py).

The interface is one of "targets": today the only live target is a backend program; a later
full-live run (a real Docker daemon, a disposable cluster) plugs in as another target behind the
same option, never by default. The tier changes nothing when no program is given.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import subprocess

    from .session import Session
    from .world import Listener

from .. import upstream
from ..backend_run import ENV_VAR
from ..tools import ToolMissing
from .escape import as_data
from .isolation import startup_variable

#: Seconds the real backend gets to answer its health check after it starts.
START_TIMEOUT = 15.0
#: Variables the gate sets itself whatever the artefact says, because the artefact's value names
#: a place that exists only in a container (the data volume) or a port that the page published.
_ADAPTED = ("BETRACE_DATA_DIR", "BETRACE_PORT_BACKEND", "BETRACE_PORT_GRPC")


class LiveError(Exception):
    """The live tier could not run (the program, its start); the message says why."""


#: the reason of a tier the run's --no-live turned off; a block skipped for it ends its reason
#: with LIVE_OFF (program_or_skip), which the run's report tells from a missing program
NO_LIVE = "--no-live"
LIVE_OFF = f"which is off: {NO_LIVE}"


@dataclass
class Ran:
    """One command of a page run for real against the live backend."""

    line: int | None
    command: str
    status: int | None
    ok: bool
    page: str = ""


@dataclass
class LiveTier:
    """The live tier of one run: its backend program, or why it has none, and every command
    the run sent to the real backend (for the run's closing list)."""

    program: Path | None = None
    off_reason: str | None = "not configured"
    ran: list[Ran] = field(default_factory=list)

    def summary(self, since: int = 0) -> list[str]:
        """One line per command run against the live backend: page, result, command."""
        return [
            as_data(
                f"{r.page}: {'ok' if r.ok else 'FAILED'} (HTTP {r.status or '-'}) "
                f"{' '.join(r.command.split())[:140]}"
            )
            for r in self.ran[since:]
        ]

    def program_or_skip(self, what: str, fail: type[Exception]) -> Path:
        """The backend program; without one (--no-live, no snapshot) the step (`what`: "rule
        examples run") is skipped with the tier's reason, or fails with `fail` in CI
        (BETRACE_REQUIRE_TOOLS=1)."""
        if self.program is not None:
            return self.program
        reason = self.off_reason or "no backend program"
        said = f"{what} on the live tier, which is off: {reason}"
        if os.environ.get("BETRACE_REQUIRE_TOOLS") == "1" and reason != NO_LIVE:
            raise fail(said)
        pytest.skip(said)


def configure(path: str | None, off: bool = False) -> LiveTier:
    """The live tier of a run: none with --no-live (whatever names a backend), else
    --live-backend or BETRACE_LIVE_BACKEND when given, else the backend built from upstream's
    snapshot (upstream.py). Without a snapshot the tier is off and its `off_reason` says why;
    under BETRACE_REQUIRE_TOOLS=1 (CI) that is a LiveError, as is a snapshot that cannot be
    built."""
    if off:
        return LiveTier(None, NO_LIVE)
    path = path or os.environ.get(ENV_VAR) or None
    if not path:
        return _built()
    program = Path(path).expanduser().resolve()
    if not program.is_file() or not os.access(program, os.X_OK):
        raise LiveError(f"--live-backend: '{path}' is not an executable file")
    return LiveTier(program, None)


def _built() -> LiveTier:
    try:
        return LiveTier(upstream.backend_program(), None)
    except ToolMissing as exc:
        if exc.fatal:
            raise LiveError(f"the live tier needs the real backend: {exc}") from None
        return LiveTier(None, exc.reason)
    except upstream.UpstreamError as exc:
        raise LiveError(f"the live tier cannot build the real backend: {exc}") from None


@dataclass
class LiveBackend:
    """The real backend of one page: started once, stopped with the page (or its stack)."""

    session: Session
    tier: LiveTier
    proc: subprocess.Popen[bytes] | None = None
    port: int | None = None
    log: Path | None = None
    starts: int = 0

    def ensure(self, listener: Listener) -> None:
        """The real backend answers on the listener's port (started now if it is not)."""
        if self.proc is not None and self.proc.poll() is None and self.port == listener.port:
            return
        self.stop()
        prog = self.tier.program
        assert prog is not None, "the live tier runs only with a program"
        self.starts += 1
        data = self.data_folder()
        # the log is the gate's own, outside the sandbox (sandbox.py): out of the page's reach
        self.log = self.session.sandbox.gate / f"backend-{self.starts}.log"
        env = {
            k: v
            for k, v in listener.env.items()
            # LD_PRELOAD from a Compose file; a Secret's value (None) the gate does not have
            if k not in _ADAPTED and not startup_variable(k) and v is not None
        }
        env |= {"BETRACE_DATA_DIR": str(data), "BETRACE_PORT_BACKEND": str(listener.port)}
        # the page's gRPC port may be the local port HTTP was moved to: the live tier sends HTTP
        # only, so gRPC gets a port of its own beside it (the models check the page's ports)
        env["BETRACE_PORT_GRPC"] = str(listener.port + 1 if listener.port < 65535 else 65534)
        env |= {k: self.session.env[k] for k in ("PATH", "HOME", "LANG", "TMPDIR")}
        self.port = listener.port
        self.proc = self.session.jail.start([str(prog)], data, env, self.log, shown=[prog])
        self._wait_healthy()

    def data_folder(self) -> Path:
        """The backend's data folder, the page's (the backend runs as the page's user): made in
        the jail, as that user, so a link the page planted there leads nowhere it could not
        go itself (never by the gate's own mkdir or chown)."""
        data = self.session.tmp / ".betrace-live" / "data"
        made = self.session.jail.run(
            ["mkdir", "-p", "--", str(data)], self.session.tmp, {"PATH": "/usr/bin:/bin"}, 10
        )
        if made.returncode != 0:
            raise LiveError(f"the live backend's data folder cannot be made: {made.stderr[-300:]}")
        return data

    def forget(self) -> None:
        """What the backend kept is gone (`docker compose down --volumes` removed its volume):
        stopped, and its data folder emptied in the jail, as the page's user."""
        self.stop()
        data = self.session.tmp / ".betrace-live" / "data"
        done = self.session.jail.run(
            ["rm", "-rf", "--", str(data)], self.session.tmp, {"PATH": "/usr/bin:/bin"}, 30
        )
        if done.returncode != 0:
            raise LiveError(
                f"the live backend's data folder cannot be emptied: {done.stderr[-300:]}"
            )

    def _wait_healthy(self) -> None:
        assert self.proc is not None and self.port is not None
        url = f"http://127.0.0.1:{self.port}/v1/health"
        end = time.monotonic() + START_TIMEOUT
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise LiveError(f"the real backend exited with {code}: {self.tail()}")
            probe = ["curl", "-fsS", "--max-time", "1", url]
            done = self.session.jail.run(probe, self.session.tmp, client_env(self.session.env), 5)
            if done.returncode == 0:
                return
            time.sleep(0.1)
        raise LiveError(f"the real backend did not answer {url} within {START_TIMEOUT:g} s")

    def tail(self) -> str:
        if self.log is None or not self.log.is_file():
            return ""
        with self.log.open("rb") as log:  # the gate's own file; only its end is shown
            log.seek(max(0, log.seek(0, os.SEEK_END) - 4096))
            lines = log.read().decode("utf-8", errors="replace").splitlines()
        return " | ".join(lines[-3:])

    def stop(self) -> None:
        """SIGTERM, as Compose and Kubernetes stop it; killed after a short grace (the gate does
        not wait out the slow stop without an OTLP endpoint, a known issue)."""
        if self.proc is None:
            return
        if self.proc.poll() is not None:  # reaped: its PID may be another process's by now
            self.proc = None
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=2)
        except Exception:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


def client_env(env: dict[str, str]) -> dict[str, str]:
    """The page's environment for a real client of the live backend: the proxy settings that
    keep offline tools from the network would send loopback requests to the discard port; in
    the jail only the page's own loopback exists, so they go."""
    cleared = {k: v for k, v in env.items() if k.lower() not in ("http_proxy", "https_proxy")}
    return cleared | {"NO_PROXY": "localhost,127.0.0.1,::1", "no_proxy": "localhost,127.0.0.1"}


def json_fields(text: str) -> dict[str, Any] | None:
    """The top-level object of a JSON answer, or None when the answer is not a JSON object."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
