"""A NixOS test a page shows is held to what it tests (gate/nixos_test.py): each mistake of a
reader's or writer's below was found passing the gate, as the page's block with one edit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from betrace_dist import tools
from betrace_dist.gate import nix_env, nixos_test
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
    "port": ("127.0.0.1:12011", "127.0.0.1:8080", "calls the backend's /v1/health on port 8080"),
    "path-without-scheme": (
        "http://127.0.0.1:12011/v1/health",
        "localhost:12011/health",
        "asks the backend for /health",
    ),
    "node-by-name": ("127.0.0.1:12011", "machine:8080", "on port 8080, where it does not listen"),
    "program-of-getbin": (
        "lib.getExe pkgs.betrace-backend",
        '"${lib.getBin pkgs.betrace-backend}/bin/betrace"',
        "starts bin/betrace of betrace-backend",
    ),
    "program-of-getexe-prime": (
        "lib.getExe pkgs.betrace-backend",
        'lib.getExe\' pkgs.betrace-backend "betrace"',
        "starts bin/betrace of betrace-backend",
    ),
    "state-directory-list": (
        'StateDirectory = "betrace";',
        'StateDirectory = [ "/var/lib/betrace" ];',
        'StateDirectory = "/var/lib/betrace": systemd takes a name relative',
    ),
    "node-as-a-function": (
        "nodes.machine = {\n",
        "nodes.machine = { pkgs, ... }: {\n"
        '      systemd.services.x.serviceConfig.StateDirectory = "/x";\n',
        'StateDirectory = "/x"',
    ),
    "program-with-spaces-around-dots": (
        "lib.getExe pkgs.betrace-backend",
        '"${pkgs .  betrace-backend}/bin/betrace"',
        "starts bin/betrace of betrace-backend",
    ),
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
    # the attack on the pages found these two passing in the nixpkgs guide's test
    "waits-for-a-port-nothing-opens": (
        "machine.wait_for_open_port(12012)",
        "machine.wait_for_open_port(8080)",
        "waits for port 8080 to open, where nothing listens",
    ),
    "working-directory-nothing-makes": (
        'StateDirectory = "betrace";',
        'StateDirectory = "betrace-backend";\n        WorkingDirectory = "/var/lib/betrace";',
        'WorkingDirectory = "/var/lib/betrace", which nothing makes',
    ),
    # the review of the check: below a state directory, systemd makes nothing
    "working-directory-below-the-state-directory": (
        'StateDirectory = "betrace";',
        'StateDirectory = "betrace";\n        WorkingDirectory = "/var/lib/betrace/rules";',
        'WorkingDirectory = "/var/lib/betrace/rules", which nothing makes',
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
    marker = new.strip().splitlines()[-1] if new.strip() else "wait_for_unit"  # a missing line
    # is named where it is needed
    assert marker in bad.splitlines()[found[0][0] - 1]


def test_a_directory_setting_is_judged_in_any_block(release_data: ReleaseData) -> None:
    """Not only in tests: a NixOS host's service has the same systemd."""
    (found,) = nixos_test.problems('{ x.StateDirectory = "/var/lib/x"; }', release_data)
    assert "systemd takes a name relative to its base" in found[1]


#: correct tests a writer could write, each of which the first version of the check refused
#: (an independent review of it)
RIGHT = {
    "post-endpoint": (
        'machine.succeed("curl -fsS http://127.0.0.1:12011/v1/health")',
        'machine.succeed("curl -fsS -X POST -d @s.json http://127.0.0.1:12011/v1/spans")',
    ),
    "endpoint-with-id": (
        '/v1/health")',
        '/v1/rules/my-rule")',
    ),
    "another-service": (
        'machine.succeed("curl -fsS http://127.0.0.1:12011/v1/health")',
        'machine.succeed("curl -fsS http://127.0.0.1:3000/api/health")',
    ),
    "started-by-the-script": (
        '      wantedBy = [ "multi-user.target" ];\n',
        "",
        'machine.wait_for_unit("betrace-backend.service")',
        'machine.systemctl("start betrace-backend.service")\n'
        '    machine.wait_for_unit("betrace-backend.service")',
    ),
    "module-enabled": (
        '      wantedBy = [ "multi-user.target" ];\n',
        "      wantedBy = [ ];\n    };\n    services.betrace-backend = {\n      enable = true;\n",
    ),
    "module-port-moved": (
        "nodes.machine = {\n",
        "nodes.machine = {\n    services.betrace-backend.httpPort = 8080;\n",
        "127.0.0.1:12011",
        "127.0.0.1:8080",
        "wait_for_open_port(12011)",
        "wait_for_open_port(8080)",
    ),
    "working-directory-of-a-nested-state-directory": (
        'StateDirectory = "betrace";',
        'StateDirectory = "betrace/rules";\n        WorkingDirectory = "/var/lib/betrace";',
    ),
    "working-directory-a-user-s-home": (
        "nodes.machine = {\n",
        'nodes.machine = {\n    users.users.b = { home = "/var/lib/b"; createHome = true; };\n'
        '    systemd.services.betrace-backend.serviceConfig.WorkingDirectory = "/var/lib/b";\n',
    ),
    "working-directory-of-tmpfiles": (
        "nodes.machine = {\n",
        '    nodes.machine = {\n    systemd.tmpfiles.rules = [ "d /var/lib/t 0700 - - -" ];\n'
        '    systemd.services.betrace-backend.serviceConfig.WorkingDirectory = "/var/lib/t";\n',
    ),
    "port-of-a-module-imported": (
        "nodes.machine = {\n",
        "nodes.machine = {\n    imports = [ ./web.nix ];\n",
        "machine.wait_for_open_port(12012)",
        "machine.wait_for_open_port(80)",
    ),
    "port-of-every-node-s-settings": (
        "nodes.machine = {\n",
        "defaults = { services.nginx.enable = true; };\n  nodes.machine = {\n",
        "machine.wait_for_open_port(12012)",
        "machine.wait_for_open_port(80)",
    ),
    "port-of-a-program-the-script-starts": (
        "machine.wait_for_open_port(12012)",
        'machine.succeed("systemd-run --unit=web python3 -m http.server 8000")\n'
        "    machine.wait_for_open_port(8000)",
    ),
    "port-in-a-comment": (
        "machine.wait_for_open_port(12012)",
        "machine.wait_for_open_port(12012)\n    # machine.wait_for_open_port(8080) was here",
    ),
    "working-directory-may-be-missing": (
        'StateDirectory = "betrace";',
        'StateDirectory = "betrace";\n        WorkingDirectory = "-/var/lib/other";',
    ),
    "another-service-s-port": (
        "nodes.machine = {\n",
        "nodes.machine = {\n    services.grafana.enable = true;\n",
        "machine.wait_for_open_port(12012)",
        "machine.wait_for_open_port(3000)",
    ),
    "test-script-as-a-function": ("testScript = ''", "testScript = { nodes, ... }: ''"),
}


@pytest.mark.parametrize("case", sorted(RIGHT))
def test_a_correct_test_passes(release_data: ReleaseData, case: str) -> None:
    text = _block(release_data)
    edits = RIGHT[case]
    for old, new in zip(edits[::2], edits[1::2], strict=True):
        assert old in text, (case, old)
        text = text.replace(old, new, 1)
    assert nixos_test.problems(text, release_data) == [], text


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


def test_the_module_ports_are_the_modules_options(release_data: ReleaseData) -> None:
    """MODULE_PORTS names options the distribution's module declares, each setting the
    variable of the release data's port it stands for."""
    assert set(nixos_test.MODULE_PORTS) <= nix_env.module_options()
    module = nix_env.MODULE.read_text(encoding="utf-8")
    for option, port in nixos_test.MODULE_PORTS.items():
        variable = release_data.current.backend.ports[port].env
        assert f"{variable} = toString cfg.{option};" in module, (option, variable)
