"""A NixOS test a page shows (`nodes` and a `testScript`), checked against what it tests: the
backend, run as a systemd service in the test's machine. No NixOS can be evaluated here (no
nixpkgs offline), so the checks read the block as Nix tokens (nix_env.assignments) and hold it to
the release data and to systemd's documented rules:

- each address the test script calls on the machine is one of the backend's ports, and each path
  on its HTTP port an endpoint the backend serves (releases.yaml backend.ports, endpoints);
- a unit the script waits for, when the test defines it, is started at boot (`wantedBy`
  multi-user.target): nothing else starts it, and the test driver's `wait_for_unit` fails on a
  unit "inactive and there are no pending jobs" (Machine.wait_for_unit in nixpkgs'
  nixos/lib/test-driver/test_driver/machine.py, read at nixpkgs a7b3f3d0, older than the
  nixpkgs a submission targets);
- the directories systemd makes for a service are relative names: systemd.exec(5) of systemd 252
  ("must be relative"), and `systemd-analyze verify` ignores an absolute one ("path is absolute,
  ignoring"; tests/test_nixos_test.py re-observes it);
- a program of the backend's package the service starts by path is its binary.

What the script does beyond those calls (its Python) is not checked.
"""

from __future__ import annotations

import re

from ..release import ReleaseData
from .nix_env import Assignment, assignments

#: systemd's directory settings that take names relative to their base (systemd.exec(5),
#: "RuntimeDirectory=, StateDirectory=, CacheDirectory=, LogsDirectory=,
#: ConfigurationDirectory=")
DIRECTORY_SETTINGS = (
    "RuntimeDirectory",
    "StateDirectory",
    "CacheDirectory",
    "LogsDirectory",
    "ConfigurationDirectory",
)
#: an address on the test machine itself, as a test script calls it
_LOCAL_URL = re.compile(r"https?://(?:127\.0\.0\.1|localhost|\[::1\]):(\d+)(/[^\s\"'|;)]*)?")
_OPEN_PORT = re.compile(r"\.wait_for_open_port\(\s*(\d+)")
_WAIT_UNIT = re.compile(r"\.wait_for_unit\(\s*[\"']([^\"']+)[\"']")
#: `${pkgs.NAME}/bin/PROGRAM` in a service's ExecStart
_PACKAGE_PROGRAM = re.compile(r"\$\{pkgs\.([A-Za-z0-9_-]+)\}/bin/([^\s\"']+)")


def is_nixos_test(found: list[Assignment]) -> bool:
    paths = {a.path[:1] for a in found}
    return ("testScript",) in paths and ("nodes",) in paths


def problems(text: str, data: ReleaseData) -> list[tuple[int, str]]:
    """(line in the block, sentence) for each check above the block breaks."""
    found = assignments(text)
    if not is_nixos_test(found):
        return []
    script = next(a for a in found if a.path == ("testScript",))
    return (
        _script_problems(script, data)
        + _unit_problems(script, found)
        + _directory_problems(found)
        + _program_problems(found, data)
    )


def _script_lines(script: Assignment) -> list[tuple[int, str]]:
    """The test script's lines with their lines in the block (its string's source)."""
    raw = script.tokens[0].raw if script.tokens else ""
    first = script.tokens[0].line if script.tokens else script.line
    return [(first + n, line) for n, line in enumerate(raw.split("\n"))]


def _script_problems(script: Assignment, data: ReleaseData) -> list[tuple[int, str]]:
    backend = data.current.backend
    ports: dict[int, str] = {p.port: name for name, p in backend.ports.items()}
    served = {e.path for e in backend.endpoints if e.port == "http" and e.method == "GET"}
    out = []
    for line, text in _script_lines(script):
        for match in _OPEN_PORT.finditer(text):
            if int(match[1]) not in ports:
                why = f"testScript waits for port {match[1]}, which the backend does not open"
                out.append((line, f"{why}; its ports: {_listed(ports)}"))
        for match in _LOCAL_URL.finditer(text):
            port, path = int(match[1]), (match[2] or "/").split("?")[0]
            if port not in ports:
                why = f"testScript calls port {port}, where nothing listens in the test's machine"
                out.append((line, f"{why}; the backend's ports: {_listed(ports)}"))
            elif ports[port] == "http" and path not in served:
                why = f"testScript asks the backend for {path}, which it does not serve"
                out.append((line, f"{why} (GET: {', '.join(sorted(served))})"))
    return out


def _listed(ports: dict[int, str]) -> str:
    return ", ".join(f"{number} ({name})" for number, name in sorted(ports.items()))


def _unit_problems(script: Assignment, found: list[Assignment]) -> list[tuple[int, str]]:
    """A service of the test's nodes the script waits for, which nothing starts."""
    defined: dict[str, list[Assignment]] = {}
    for a in found:
        if a.path[:1] == ("nodes",) and "services" in a.path and len(a.path) > 4:
            at = a.path.index("services")
            if a.path[at - 1 : at] == ("systemd",) and at + 1 < len(a.path):
                defined.setdefault(a.path[at + 1], []).append(a)
    out = []
    for line, text in _script_lines(script):
        for match in _WAIT_UNIT.finditer(text):
            name = match[1].removesuffix(".service")
            settings = defined.get(name)
            if settings is None:
                continue  # a unit of NixOS or of a module: not judged
            wanted = [a for a in settings if a.path[-1] == "wantedBy"]
            if not any("multi-user.target" in a.words for a in wanted):
                why = f"testScript waits for {name}.service, which nothing starts"
                fix = f'give systemd.services.{name} wantedBy = [ "multi-user.target" ]'
                said = 'the driver fails: "inactive and there are no pending jobs"'
                out.append((line, f"{why}: {fix} ({said})"))
    return out


def _directory_problems(found: list[Assignment]) -> list[tuple[int, str]]:
    return [
        (a.line, f"{a.path[-1]} = \"{a.value}\": systemd takes a name relative to its base "
                 f"(systemd.exec(5): \"must be relative\"), and ignores an absolute path "
                 f"(\"path is absolute, ignoring\"): write \"{a.value.strip('/').split('/')[-1]}\"")
        for a in found
        if a.path[-1] in DIRECTORY_SETTINGS and a.value is not None
        and any(word.startswith("/") for word in a.value.split())
    ]  # fmt: skip


def _program_problems(found: list[Assignment], data: ReleaseData) -> list[tuple[int, str]]:
    binary = data.current.backend.binary
    out = []
    for a in found:
        if a.path[-1] != "ExecStart":
            continue
        for token in a.tokens:
            for match in _PACKAGE_PROGRAM.finditer(token.raw):
                if match[1] == binary and match[2] != binary:
                    out.append((a.line, f"ExecStart starts bin/{match[2]} of {binary}, whose "
                                        f"program is bin/{binary}"))  # fmt: skip
    return out
