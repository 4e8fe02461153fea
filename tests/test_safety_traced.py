"""The offline gate opens no network connection at all, traced: every connect() of every
process the gate starts, on the hostile machine of test_safety.py.

A file of its own so that its gate run and test_safety.py's can run on two workers at once
(`make test` hands out whole files); the machine is built by test_safety.py's fixtures.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from .conftest import require_tool, skip_or_fail
from .test_safety import Trap, repo_copy, run_gate, trap

pytestmark = pytest.mark.slow

__all__ = ["repo_copy", "trap"]  # the fixtures this file's test takes


def _strace() -> str:
    strace = require_tool("strace", "apt-get install strace")
    probe = subprocess.run(
        [strace, "-f", "-o", "/dev/null", "true"], capture_output=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        skip_or_fail(f"strace cannot trace here: {probe.stderr.decode().strip()}")
    return strace


GUIDES = [
    "docs/guides/deploy-on-kubernetes.md",
    "docs/guides/deploy-with-docker-compose.md",
    "docs/guides/use-betrace-from-a-nix-flake.md",
]


def test_the_gate_opens_no_network_connection_at_all(
    trap: Trap, repo_copy: Path, tmp_path: Path
) -> None:
    """Beyond the listeners: every connect() of every process, for the Kubernetes, Compose and
    Nix guides. A Unix socket is fine (local IPC); any IPv4 or IPv6 address is not, loopback
    included, and a name lookup would show as a connection to a DNS server."""
    strace = _strace()
    log = tmp_path / "connect.log"
    prefix = [strace, "-f", "-qq", "-e", "trace=connect,execve", "-o", str(log)]
    result = run_gate(["-q", *GUIDES], repo_copy, trap.env, tmp_path / "tmp", prefix)
    traced = log.read_text()
    for tool in ("helm", "docker-compose", "nix"):  # the trace saw the real tools run
        assert re.search(rf'execve\("[^"]*/{re.escape(tool)}"', traced), f"{tool} never ran"
    inet = [ln for ln in traced.splitlines() if re.search(r"AF_INET6?\b", ln)]
    assert inet == [], "network connections:\n" + "\n".join(inet[:20])
    assert trap.hits() == {}
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
