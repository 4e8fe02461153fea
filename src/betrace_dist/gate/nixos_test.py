"""A NixOS test a page shows (`nodes` and a `testScript`, each may be a function of its
arguments), checked against what it tests: the
backend, run as a systemd service in the test's machine. No NixOS can be evaluated here (no
nixpkgs offline), so the checks read the block as Nix tokens (nix_env.assignments) and hold it to
the release data and to systemd's documented rules:

- each call of the backend in the test script (the machine itself or a node by name, with or
  without a scheme) is on the backend's port for its path: a path of the backend's on another
  port, or on its HTTP port a path it does not serve, any method (releases.yaml backend.ports,
  endpoints; the module's httpPort and grpcPort move them); another service's calls (Grafana's)
  are not judged;
- a unit the script waits for, when the test defines it, is started at boot (`wantedBy`
  multi-user.target), by the script, or by an enabled module of its name: nothing else starts
  it, and the test driver's `wait_for_unit` fails on a
  unit "inactive and there are no pending jobs" (Machine.wait_for_unit in nixpkgs'
  nixos/lib/test-driver/test_driver/machine.py, read at nixpkgs a7b3f3d0, older than the
  nixpkgs a submission targets);
- the directories systemd makes for a service (in any Nix block) are relative names:
  systemd.exec(5) of systemd 252
  ("must be relative"), and `systemd-analyze verify` ignores an absolute one ("path is absolute,
  ignoring"; tests/test_nixos_test.py re-observes it);
- a program of the backend's package the service starts by path is its binary;
- a service's WorkingDirectory under /var/lib is one its StateDirectory makes (or one a
  StateDirectory or tmpfiles rule of the block makes): systemd makes a state directory by its
  name below /var/lib and nothing else there, and "if the setting is prefixed with the "-"
  character, a missing working directory is not considered fatal" (systemd.exec(5) of systemd
  252, read here): without it, the unit fails to start;
- a port the script waits open, in a test whose machines run no service but the backend, is
  one of the backend's: the driver's wait_for_open_port waits until the port opens, and
  nothing else opens one.

What the script does beyond those calls (its Python) is not checked.
"""

from __future__ import annotations

import itertools
import re

from ..release import ReleaseData
from .nix_env import SERVICE, Assignment, assignments

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
#: the distribution's module options that move the backend's ports (nix/modules/
#: betrace-backend.nix: httpPort and grpcPort set BETRACE_PORT_BACKEND and BETRACE_PORT_GRPC)
MODULE_PORTS = {"httpPort": "http", "grpcPort": "grpc"}
#: an address of the test's machines as its script calls it: scheme optional (curl takes
#: host:port/path), host the machine itself or a node by name (NAMES is filled in)
_URL = r"(?:https?://)?(?:127\.0\.0\.1|localhost|\[::1\]|NAMES):(\d+)(/[^\s\"'|;)]*)?"
_WAIT_UNIT = re.compile(r"\.wait_for_unit\(\s*(?:unit\s*=\s*)?[\"']([^\"']+)[\"']")
#: a program of a package in a service's ExecStart: `${pkgs.NAME}/bin/X` (also `.out`,
#: `lib.getBin pkgs.NAME`), or lib.getExe' pkgs.NAME "X"
_PACKAGE_PROGRAM = re.compile(
    r"\$\{\s*(?:lib\.getBin\s+)?pkgs\.([A-Za-z0-9_-]+)(?:\.out)?\s*\}/bin/([^\s\"']+)"
    r"|lib\.getExe'\s+pkgs\.([A-Za-z0-9_-]+)\s+\"([^\"]+)\""
)


def is_nixos_test(found: list[Assignment]) -> bool:
    paths = {a.path[:1] for a in found}
    return ("testScript",) in paths and ("nodes",) in paths


def problems(text: str, data: ReleaseData) -> list[tuple[int, str]]:
    """(line in the block, sentence) for each check above the block breaks; the directory
    settings of any Nix block."""
    found = assignments(text)
    out = _directory_problems(found) + _program_problems(found, data)
    out += _working_directory_problems(found, text)
    if not is_nixos_test(found):
        return out
    script = next(a for a in found if a.path == ("testScript",))
    out += _script_problems(script, found, data) + _unit_problems(script, found)
    return out + _open_port_problems(script, found, data)


def _script_lines(script: Assignment) -> list[tuple[int, str]]:
    """The test script's lines with their lines in the block (its string's source)."""
    raw = script.tokens[0].raw if script.tokens else ""
    first = script.tokens[0].line if script.tokens else script.line
    return [(first + n, line) for n, line in enumerate(raw.split("\n"))]


def _ports(found: list[Assignment], data: ReleaseData) -> dict[int, str]:
    """The backend's ports in the test's machines: the release data's, or what the module's
    httpPort and grpcPort set (a node's own value, written as a number)."""
    ports: dict[str, int] = {name: p.port for name, p in data.current.backend.ports.items()}
    for a in found:
        name = MODULE_PORTS.get(a.path[-1])
        digits = "".join(itertools.takewhile(str.isdigit, a.words))  # Nix's lexer: one per digit
        if name and a.path[-3:-1] == ("services", SERVICE) and digits:
            ports[name] = int(digits)
    return {number: name for name, number in ports.items()}


def _served(data: ReleaseData) -> list[re.Pattern[str]]:
    """The backend's paths on its HTTP port, any method, `{id}` any one segment."""
    return [
        re.compile(re.escape(e.path).replace(r"\{id\}", r"[^/?#]+") + r"(?:[?#].*)?")
        for e in data.current.backend.endpoints
        if e.port == "http"
    ]


def _script_problems(
    script: Assignment, found: list[Assignment], data: ReleaseData
) -> list[tuple[int, str]]:
    """Each call of the backend in the script: the port it is on, the path it serves. A call
    of another port with a path of the backend's is the backend's on the wrong port; another
    service's port and path (Grafana's, say) are not judged."""
    ports = _ports(found, data)
    served = _served(data)
    nodes = sorted({a.path[1] for a in found if a.path[:1] == ("nodes",) and len(a.path) > 1})
    url = re.compile(_URL.replace("NAMES", "|".join(re.escape(n) for n in nodes) or "localhost"))
    out = []
    for line, text in _script_lines(script):
        for match in url.finditer(text):
            port, path = int(match[1]), match[2] or "/"
            backend_path = any(p.fullmatch(path) for p in served)
            if port in ports and ports[port] == "http" and not backend_path:
                why = f"testScript asks the backend for {path}, which it does not serve"
                out.append((line, f"{why} (releases.yaml backend.endpoints)"))
            elif port not in ports and backend_path:
                why = f"testScript calls the backend's {path} on port {port}"
                out.append((line, f"{why}, where it does not listen: {_listed(ports)}"))
    return out


def _listed(ports: dict[int, str]) -> str:
    return ", ".join(f"{number} ({name})" for number, name in sorted(ports.items()))


def _unit_problems(script: Assignment, found: list[Assignment]) -> list[tuple[int, str]]:
    """A service the test defines and its script waits for, which nothing starts: not wanted
    by a target, not started by the script, not a service of an enabled module (which sets
    its own wantedBy, as the distribution's does)."""
    defined: dict[str, list[Assignment]] = {}
    enabled: set[str] = set()
    for a in found:
        if a.path[:1] != ("nodes",) or "services" not in a.path:
            continue
        at = a.path.index("services")
        if at + 1 >= len(a.path):
            continue
        if a.path[at - 1 : at] == ("systemd",):
            defined.setdefault(a.path[at + 1], []).append(a)
        elif a.path[at + 2 :] == ("enable",):
            enabled.add(a.path[at + 1])
    text = "\n".join(line for _, line in _script_lines(script))
    out = []
    for line, row in _script_lines(script):
        for match in _WAIT_UNIT.finditer(row):
            name = match[1].removesuffix(".service")
            settings = defined.get(name)
            started = re.search(rf"\bstart(?:_job)?\b[\s(\"']*{re.escape(name)}\b", text)
            if settings is None or name in enabled or started:
                continue
            wanted = [a for a in settings if a.path[-1] == "wantedBy"]
            if not any("multi-user.target" in a.words for a in wanted):
                why = f"testScript waits for {name}.service, which nothing starts"
                fix = f'give systemd.services.{name} wantedBy = [ "multi-user.target" ]'
                said = 'the driver fails: "inactive and there are no pending jobs"'
                out.append((line, f"{why}: {fix} ({said})"))
    return out


def _directory_problems(found: list[Assignment]) -> list[tuple[int, str]]:
    """An absolute path in a systemd directory setting, written as a string or a list."""
    out = []
    for a in found:
        if a.path[-1] not in DIRECTORY_SETTINGS:
            continue
        values = [a.value] if a.value is not None else [t.text for t in a.tokens if t.kind == "str"]
        for value in values:
            bad = [w for w in (value or "").split() if w.startswith("/")]
            if bad:
                name = bad[0].strip("/").split("/")[-1]
                out.append((a.line, f'{a.path[-1]} = "{bad[0]}": systemd takes a name relative '
                                    f'to its base (systemd.exec(5): "must be relative"), and '
                                    f'ignores an absolute path ("path is absolute, ignoring"): '
                                    f'write "{name}"'))  # fmt: skip
    return out


def _program_problems(found: list[Assignment], data: ReleaseData) -> list[tuple[int, str]]:
    binary = data.current.backend.binary
    out = []
    for a in found:
        if a.path[-1] != "ExecStart":
            continue
        words = (f'"{t.raw}"' if t.kind == "str" else (t.text or "") for t in a.tokens)
        # white space around a dot dropped: runs of it made one first, so the pattern never
        # tries a run again from each of its characters (quadratic: 390,000 spaces took 113 s)
        source = re.sub(r" ?\. ?", ".", re.sub(r"\s+", " ", " ".join(words)))
        for match in _PACKAGE_PROGRAM.finditer(source):
            package, program = match[1] or match[3], match[2] or match[4]
            if package == binary and program != binary:
                why = f"ExecStart starts bin/{program} of {binary}"
                out.append((a.line, f"{why}, whose program is bin/{binary}"))
    return out


#: where systemd makes the directories of StateDirectory= (systemd.exec(5), system services)
_STATE_BASE = "/var/lib/"
_WAIT_PORT = re.compile(r"\.wait_for_open_port\(\s*(?:port\s*=\s*)?(\d+)")


def _strings(a: Assignment) -> list[str]:
    """The words of a setting's string or list of strings."""
    values = [a.value] if a.value is not None else [t.text for t in a.tokens if t.kind == "str"]
    return [w for value in values for w in (value or "").split()]


def _working_directory_problems(found: list[Assignment], text: str) -> list[tuple[int, str]]:
    """A service's WorkingDirectory under /var/lib that its own StateDirectory does not make
    (systemd makes each entry and its parents, nothing below), not prefixed with "-", where
    nothing else of the block makes it (a tmpfiles rule, a user's home): the unit fails to
    start on it."""
    if any("tmpfiles" in a.path for a in found):
        return []
    homes = {a.value for a in found if a.path[-1] == "home" and "users" in a.path}
    out = []
    for a in found:
        if a.path[-1] != "WorkingDirectory" or a.value is None:
            continue
        path = a.value.rstrip("/")
        if not path.startswith(_STATE_BASE) or path in homes:
            continue
        made = _made_state(found, a.path[:-1])
        if path in made:
            continue
        names = ", ".join(sorted(m.removeprefix(_STATE_BASE) for m in made)) or "none"
        out.append((a.line, f'WorkingDirectory = "{path}", which nothing makes: systemd makes '
                            f"the service's StateDirectory below /var/lib ({names}, with their "
                            "parents) and nothing else there, and a missing working directory "
                            'fails the unit unless prefixed with "-" (systemd.exec(5)): name a '
                            "directory its StateDirectory makes"))  # fmt: skip
    return out


def _made_state(found: list[Assignment], settings: tuple[str, ...]) -> set[str]:
    """The folders the StateDirectory of one service's settings (`settings`, the path of its
    serviceConfig) makes: each entry below /var/lib, and its parents."""
    made = set()
    for a in found:
        if a.path[:-1] == settings and a.path[-1] == "StateDirectory":
            for word in _strings(a):
                parts = word.strip("/").split("/")
                made |= {_STATE_BASE + "/".join(parts[:n]) for n in range(1, len(parts) + 1)}
    return made


#: what the test's machines may run besides the services the block defines: modules of other
#: files, settings of every node, containers
_ELSEWHERE = ("imports", "defaults", "oci-containers", "containers")
#: a command the script runs on a machine, and the programs such a command may be without
#: starting anything that listens
_RUNS = re.compile(r"\.(?:succeed|execute|fail|start_job|systemctl)\(\s*[\"']([^\"']*)")
_QUIET = frozenset({"curl", "wget", "grep", "test", "cat", "ls", "journalctl", "stat"})


def _open_port_problems(
    script: Assignment, found: list[Assignment], data: ReleaseData
) -> list[tuple[int, str]]:
    """A port the script waits open that is none of the backend's, where the test's machines
    run nothing else: no other service the block defines or module it enables, no module or
    node setting from elsewhere, no program the script itself starts."""
    others = {
        a.path[a.path.index("services") + 1] for a in found
        if a.path[:1] == ("nodes",) and "services" in a.path[:-1]
        and a.path.index("services") + 1 < len(a.path)
    } - {SERVICE}  # fmt: skip
    elsewhere = any(part in _ELSEWHERE for a in found for part in a.path)
    lines = [(n, row) for n, row in _script_lines(script) if not row.lstrip().startswith("#")]
    started = any(
        (run[1].split() or [""])[0] not in _QUIET for _, row in lines for run in _RUNS.finditer(row)
    )
    if others or elsewhere or started:
        return []
    ports = _ports(found, data)
    return [
        (line, f"testScript waits for port {match[1]} to open, where nothing listens: the "
               f"test's machines run the backend alone, on {_listed(ports)}")
        for line, row in lines
        for match in _WAIT_PORT.finditer(row)
        if int(match[1]) not in ports
    ]  # fmt: skip
