"""A NixOS test a page shows is held to what it tests (gate/nixos_test.py): each mistake of a
reader's or writer's below was found passing the gate, as the page's block with one edit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from betrace_dist import tools
from betrace_dist.gate import nixos_test
from betrace_dist.release import ReleaseData

from .conftest import missing


def _block(data: ReleaseData) -> str:
    backend = data.current.backend
    http, grpc = backend.ports["http"].port, backend.ports["grpc"].port
    return f"""{{ lib, pkgs, ... }}:
{{
  name = "betrace-backend";
  nodes.machine = {{
    systemd.services.betrace-backend = {{
      wantedBy = [ "multi-user.target" ];
      serviceConfig = {{
        ExecStart = lib.getExe pkgs.betrace-backend;
        DynamicUser = true;
        StateDirectory = "betrace";
      }};
    }};
  }};
  testScript = ''
    machine.wait_for_unit("betrace-backend.service")
    machine.wait_for_open_port({http})
    machine.wait_for_open_port({grpc})
    machine.succeed("curl -fsS http://127.0.0.1:{http}/v1/health")
  '';
}}
"""


MISTAKES = {
    "path": ('/v1/health")', '/health")', "asks the backend for /health, which it does not"),
    "port": ("127.0.0.1:12011", "127.0.0.1:8080", "calls port 8080, where nothing listens"),
    "open-port": ("wait_for_open_port(12012)", "wait_for_open_port(4317)", "waits for port 4317"),
    "program": (
        "lib.getExe pkgs.betrace-backend",
        '"${pkgs.betrace-backend}/bin/betrace"',
        "starts bin/betrace of betrace-backend, whose program is bin/betrace-backend",
    ),
    "not-started": (
        '      wantedBy = [ "multi-user.target" ];\n',
        "",
        "waits for betrace-backend.service, which nothing starts",
    ),
    "absolute-state-directory": (
        'StateDirectory = "betrace";',
        'StateDirectory = "/var/lib/betrace";',
        'StateDirectory = "/var/lib/betrace": systemd takes a name relative to its base',
    ),
}


def test_the_page_form_passes(release_data: ReleaseData) -> None:
    assert nixos_test.problems(_block(release_data), release_data) == []


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_each_mistake_is_named_at_its_line(release_data: ReleaseData, case: str) -> None:
    old, new, said = MISTAKES[case]
    good = _block(release_data)
    assert old in good, case  # the edit applies: the ports above are the release data's
    bad = good.replace(old, new, 1)
    found = nixos_test.problems(bad, release_data)
    assert len(found) == 1 and said in found[0][1], found
    marker = new.strip() or "wait_for_unit"  # a missing line is named where it is needed
    assert marker in bad.splitlines()[found[0][0] - 1]


def test_a_block_that_is_no_nixos_test_is_not_judged(release_data: ReleaseData) -> None:
    assert nixos_test.problems('{ x.StateDirectory = "/var/lib/x"; }', release_data) == []


def test_systemd_ignores_an_absolute_state_directory(tmp_path: Path) -> None:
    """What the check says of systemd, observed again on the machine's systemd: its own unit
    checker ignores an absolute StateDirectory, and takes a relative one."""
    try:
        analyze = tools.require("systemd-analyze")
    except tools.ToolMissing as exc:
        missing(exc)
    said = {}
    for name, value in (("absolute", "/var/lib/betrace"), ("relative", "betrace")):
        unit = tmp_path / f"{name}.service"
        unit.write_text(f"[Service]\nExecStart=/bin/true\nStateDirectory={value}\n")
        done = subprocess.run(
            [analyze, "verify", "--man=no", str(unit)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        said[name] = done.stderr
    assert "StateDirectory= path is absolute, ignoring: /var/lib/betrace" in said["absolute"]
    assert "StateDirectory" not in said["relative"], said["relative"]
