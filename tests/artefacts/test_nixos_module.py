"""The NixOS module nix/modules/betrace-backend.nix, evaluated by the real Nix offline.

NixOS's module system (nixpkgs' lib.evalModules) cannot be fetched offline, so the module is
evaluated by the stand-in in nix_stubs/nixos/eval-module.nix (declarations, defaults, type
checks naming the option, submodules, mkIf). What it writes into systemd and /etc is held to the
release data, and the rules.json it generates is loaded by the real backend (tests/test_rules.py).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.artefacts import nix as nixa
from betrace_dist.backend_env import value_problem
from betrace_dist.release import ReleaseData

from ..conftest import missing
from ..test_rules import assert_deployed

STUBS = Path(__file__).parent / "nix_stubs"
MODULE = REPO_ROOT / "nix" / "modules" / "betrace-backend.nix"
PACKAGE = (
    f"(import {STUBS}/nixpkgs/pkgs.nix {{ lib = import {STUBS}/nixpkgs/lib.nix; "
    f'system = "x86_64-linux"; }}).runCommand "betrace-backend" {{ }} "" '
)  # like upstream's backend package (backend/flake.nix): no meta.mainProgram
RULES = """[
  { name = "no-fraud-skip-on-large-charge"; severity = "HIGH";
    expression = "when { payment.charge.where(amount > 1000) }
      never { payment.skip_fraud_check }"; }
  { name = "pii-read-audited"; enabled = false;
    expression = "when { db_query.where(contains_pii) } always { audit_log }"; }
]"""


@pytest.fixture(scope="module")
def nix(tool: Callable[[str, str], str], tmp_path_factory: pytest.TempPathFactory) -> nixa.Nix:
    return nixa.Nix(tool("nix"), tool("nix-instantiate"), tmp_path_factory.mktemp("nixos"))


def evaluate(nix: nixa.Nix, settings: str, module: Path = MODULE) -> Any:
    expr = f"""
      let r = import {STUBS}/nixos/eval-module.nix {{
        module = {module};
        settings.services.betrace-backend = {settings};
      }};
      in {{ inherit (r.config) environment; service = r.config.systemd.services.betrace-backend; }}
    """
    return nix.eval_expr(expr)


def failure(nix: nixa.Nix, settings: str) -> str:
    expr = f"""(import {STUBS}/nixos/eval-module.nix {{
        module = {MODULE}; settings.services.betrace-backend = {settings};
      }}).config.systemd.services.betrace-backend"""
    proc = nix.run([nix.nix_instantiate, "--eval", "--strict", "--json", "-E", expr])
    assert proc.returncode != 0, proc.stdout
    return " ".join(proc.stderr.split())


ENABLED = f'enable = true; package = {PACKAGE}; signatureKeyFile = "/etc/betrace/key";'


def test_environment_is_what_the_backend_reads(nix: nixa.Nix, release_data: ReleaseData) -> None:
    out = evaluate(nix, "{ " + ENABLED + " }")
    env = out["service"]["environment"]
    known = {v.name: v for v in release_data.current.backend.env}
    assert set(env) <= set(known), set(env) - set(known)
    assert env["BETRACE_PORT_BACKEND"] == str(release_data.current.backend.ports["http"].port)
    assert env["BETRACE_PORT_GRPC"] == str(release_data.current.backend.ports["grpc"].port)
    assert [p for name, v in env.items() if (p := value_problem(name, v))] == []
    # below the SDK's own default, which made a stop without a collector take 10-30 s
    assert int(env["OTEL_EXPORTER_OTLP_TIMEOUT"]) < int(known["OTEL_EXPORTER_OTLP_TIMEOUT"].default)
    service = out["service"]["serviceConfig"]
    assert service["LoadCredential"] == ["signature-key:/etc/betrace/key"]
    assert "BETRACE_SIGNATURE_KEY" not in env, "the key must not reach the Nix store"
    assert "ExecStartPre" not in service or service["ExecStartPre"] == []
    assert "betrace-backend/rules.json" not in out["environment"].get("etc", {})


def test_the_service_runs_the_backend_binary_by_its_name(
    nix: nixa.Nix, release_data: ReleaseData
) -> None:
    """Upstream's backend package has no meta.mainProgram (backend/flake.nix at the pinned
    commit), so lib.getExe warns on every rebuild and guesses from the name; the module names
    the release's binary."""
    expr = f"""(import {STUBS}/nixos/eval-module.nix {{
        module = {MODULE}; settings.services.betrace-backend = {{ {ENABLED} }};
      }}).config.systemd.services.betrace-backend.serviceConfig.ExecStart.text"""
    script = nix.eval_expr(expr)
    assert script.rstrip().endswith(f"/bin/{release_data.current.backend.binary}"), script


def test_rules_are_written_into_the_data_folder_before_start(
    nix: nixa.Nix, backend_program: Path
) -> None:
    out = evaluate(nix, "{ " + ENABLED + f' dataDir = "/var/lib/rules-here"; rules = {RULES}; }}')
    (pre,) = out["service"]["serviceConfig"]["ExecStartPre"]
    assert pre.endswith(" /etc/betrace-backend/rules.json /var/lib/rules-here/rules.json")
    rules_json = out["environment"]["etc"]["betrace-backend/rules.json"]["text"]
    assert json.loads(rules_json)["pii-read-audited"]["enabled"] is False
    assert out["service"]["restartTriggers"] == [rules_json]
    assert_deployed(backend_program, rules_json)


def test_rules_read_from_a_json_rules_file_are_the_rules_json_betrace_dist_writes(
    nix: nixa.Nix, tmp_path: Path
) -> None:
    """The Nix flake guide keeps the host's rules in a JSON rules file, checked with
    `betrace-dist rules check` and read by the flake with builtins.fromJSON: the module then
    writes the same rules.json as `betrace-dist rules json` of that file, defaults included."""
    from betrace_dist.rules import rulesfile

    path = tmp_path / "rules.json"
    path.write_text(
        json.dumps(
            {
                "rules": [
                    {"name": "a", "severity": "HIGH", "expression": "when { x } never { y }"},
                    {"name": "b", "enabled": False, "tags": ["pii"], "expression": "when { x }"},
                ]
            }
        ),
        encoding="utf-8",
    )
    settings = f"rules = (builtins.fromJSON (builtins.readFile {path})).rules;"
    out = evaluate(nix, "{ " + ENABLED + f" {settings} }}")
    written = out["environment"]["etc"]["betrace-backend/rules.json"]["text"]
    assert json.loads(written) == json.loads(rulesfile.rules_json(rulesfile.load(path)))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ('rules = [ { name = "bad name"; expression = "x"; } ];',
         "option `services.betrace-backend.rules.[0].name' is not of type `string matching"),
        ('rules = [ { name = "a"; } ];',
         "option `services.betrace-backend.rules.[0].expression' is used but not defined"),
        ('otlpEndpoint = "http://collector:4317";',
         "option `services.betrace-backend.otlpEndpoint' is not of type"),
        ('otlpEndpoint = "collector:4318";',
         "option `services.betrace-backend.otlpEndpoint' is not of type"),
        ("otlpExportTimeout = 0;",
         "option `services.betrace-backend.otlpExportTimeout' is not of type `positive integer'"),
        ("rulez = [ ];", "option `services.betrace-backend.rulez' does not exist"),
        ('rules = [ { name = "a"; expression = "x"; severity = "high"; } ];',
         "option `services.betrace-backend.rules.[0].severity' is not of type `one of"),
        # systemd ignores an absolute StateDirectory= (tests/test_nixos_test.py observes it):
        # the backend would get no writable directory
        ('dataDir = "/srv/betrace";',
         "option `services.betrace-backend.dataDir' is not of type `string matching"),
        ('dataDir = "/var/lib/../etc";',
         "option `services.betrace-backend.dataDir' is not of type `string matching"),
        ('dataDir = "/var/lib/";',
         "option `services.betrace-backend.dataDir' is not of type `string matching"),
        # listToAttrs would keep the first and drop the second without a word
        ('rules = [ { name = "a"; expression = "x"; } { name = "b"; expression = "y"; } '
         '{ name = "a"; expression = "z"; } ];',
         "Failed assertions: - services.betrace-backend.rules: more than one rule is named a;"),
    ],
)  # fmt: skip
def test_bad_settings_name_the_option(nix: nixa.Nix, settings: str, message: str) -> None:
    assert message in failure(nix, "{ " + ENABLED + " " + settings + " }")


def test_a_key_given_as_a_nix_path_is_refused(nix: nixa.Nix) -> None:
    """`signatureKeyFile = ./key` would put the key into the world-readable Nix store (the unit's
    LoadCredential= names the store copy): the option takes a string only."""
    without_key = ENABLED.replace(' signatureKeyFile = "/etc/betrace/key";', "")
    assert without_key != ENABLED
    message = failure(nix, "{ " + without_key + " signatureKeyFile = ./key; }")
    assert "option `services.betrace-backend.signatureKeyFile' is not of type" in message


def test_the_module_without_its_rules_copy_is_caught(nix: nixa.Nix, tmp_path: Path) -> None:
    """Break the module: drop the copy into the data folder, and the test above would fail."""
    text = MODULE.read_text(encoding="utf-8")
    old = "/etc/betrace-backend/rules.json ${cfg.dataDir}/rules.json"
    assert old in text
    broken = tmp_path / "betrace-backend.nix"
    broken.write_text(text.replace(old, "/etc/betrace-backend/rules.json /tmp/rules.json"), "utf-8")
    out = evaluate(nix, "{ " + ENABLED + f" rules = {RULES}; }}", module=broken)
    (pre,) = out["service"]["serviceConfig"]["ExecStartPre"]
    assert not pre.endswith(" /var/lib/betrace/rules.json")


def test_the_otlp_endpoint_type_agrees_with_the_backends_rule(nix: nixa.Nix) -> None:
    """The module's strMatching pattern carries backend_env's OTLP rule into NixOS (Nix cannot
    call Python): real Nix matches each sample, and it must accept exactly what the rule does."""
    samples = ["collector:4317", "10.0.0.7:4317", "collector:4318", "collector:4319",
               "collector:43180", "collector:3318", "collector:4418", "collector:4328",
               "http://collector:4317", "collector", "collector:04318", "collector:0",
               "collector:65535", "collector:65536", "collector:99999",
               "collector:10000"]  # fmt: skip
    text = MODULE.read_text(encoding="utf-8")
    declared = text[text.index("otlpEndpoint = lib.mkOption") :]
    pattern = declared.split('strMatching "', 1)[1].split('"', 1)[0]
    listed = "[ " + " ".join(f'"{s}"' for s in samples) + " ]"
    # what lib.types.strMatching checks: builtins.match of the whole string (POSIX ERE)
    accepted = nix.eval_expr(f'map (s: builtins.match "{pattern}" s != null) {listed}')
    for sample, nix_ok in zip(samples, accepted, strict=True):
        rule_ok = value_problem("OTEL_EXPORTER_OTLP_ENDPOINT", sample) is None
        assert nix_ok == rule_ok, sample


def test_the_gates_module_severities_are_the_modules_enum() -> None:
    """The gate refuses a module rule's severity the module's enum does not list
    (nix_env.MODULE_SEVERITIES); the list is the one in the module's source."""
    import re

    from betrace_dist.gate import nix_env

    text = MODULE.read_text(encoding="utf-8")
    enum = re.search(r"severity = lib\.mkOption \{[^}]*?lib\.types\.enum \[([^\]]*)\]", text, re.S)
    assert enum is not None, "the module's severity option is no longer an enum"
    assert tuple(re.findall(r'"([^"]*)"', enum[1])) == nix_env.MODULE_SEVERITIES


def unit_file(service_config: dict[str, Any]) -> str:
    """The [Service] section NixOS writes from a serviceConfig, by a model of attrsToSection
    (nixos/lib/systemd-lib.nix): a list gives one line per item, true and false their words.
    The programs (Exec*) are left for /bin/true: systemd-analyze reads the sandboxing alone."""
    lines = ["[Service]", "ExecStart=/bin/true"]
    for key, value in service_config.items():
        if key.startswith("Exec"):
            continue
        for item in value if isinstance(value, list) else [value]:
            word = str(item).lower() if isinstance(item, bool) else str(item)
            lines.append(f"{key}={word}")
    return "\n".join(lines) + "\n"


#: systemd-analyze's overall exposure, out of 100, above which `security` fails. With systemd
#: 252 the module's unit rated 1.5 of 10; without its SystemCallFilter 3.0, without its
#: RestrictAddressFamilies 2.0 (to the letter at the bar: the next test covers both), and with
#: DynamicUser alone 8.4.
EXPOSURE_AT_MOST = 20


def _security(unit: Path) -> subprocess.CompletedProcess[str]:
    from betrace_dist import tools

    try:
        analyze = tools.require("systemd-analyze")
    except tools.ToolMissing as exc:
        missing(exc)
    argv = [analyze, "security", "--offline=true", f"--threshold={EXPOSURE_AT_MOST}"]
    return subprocess.run(
        [*argv, "--no-pager", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_service_is_sandboxed_as_systemd_scores_it(nix: nixa.Nix, tmp_path: Path) -> None:
    """Run for real: systemd's own scorer on the unit the module writes. Without the hardening
    (DynamicUser alone) the same check fails, so losing it is caught."""
    config = evaluate(nix, "{ " + ENABLED + " }")["service"]["serviceConfig"]
    unit = tmp_path / "betrace-backend.service"
    unit.write_text(unit_file(config), encoding="utf-8")
    done = _security(unit)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    bare = {k: v for k, v in config.items() if k in ("DynamicUser", "StateDirectory")}
    unit.write_text(unit_file(bare), encoding="utf-8")
    assert _security(unit).returncode != 0, "the bare unit passed: the threshold catches nothing"


def test_a_port_below_1024_gets_the_one_capability_that_binds_it(nix: nixa.Nix) -> None:
    default = evaluate(nix, "{ " + ENABLED + " }")["service"]["serviceConfig"]
    assert (default["AmbientCapabilities"], default["CapabilityBoundingSet"]) == ([], [""])
    low = evaluate(nix, "{ " + ENABLED + " httpPort = 80; }")["service"]["serviceConfig"]
    wanted = ["CAP_NET_BIND_SERVICE"]
    assert (low["AmbientCapabilities"], low["CapabilityBoundingSet"]) == (wanted, wanted)


def _syscalls(analyze: str, group: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """The system calls of a systemd group, its nested groups expanded, as the machine's
    systemd-analyze lists them."""
    listed = subprocess.run(
        [analyze, "syscall-filter", "--no-pager", group],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    names: set[str] = set()
    for line in listed.splitlines()[1:]:
        word = line.strip()
        if word.startswith("@") and word not in seen:
            names |= _syscalls(analyze, word, seen | {group})
        elif word and not word.startswith(("#", "@")):
            names.add(word)
    return names


def _allowed(analyze: str, entries: list[str]) -> set[str]:
    """What a SystemCallFilter= lets through (systemd.exec(5)): an allow-list is its groups,
    less the ~ ones; a list that starts with ~ denies, from every call systemd knows."""
    first_denies = bool(entries) and entries[0].startswith("~")
    allowed: set[str] = _syscalls(analyze, "@known") if first_denies else set()
    for entry in entries:
        deny = entry.startswith("~")
        name = entry.removeprefix("~")
        calls = _syscalls(analyze, name) if name.startswith("@") else {name}
        allowed = allowed - calls if deny else allowed | calls
    return allowed


#: a line of strace's output: the process, then the call (or the end of one it was waiting on)
_CALL = re.compile(r"^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]")
_SOCKET = re.compile(r"\bsocket\((AF_[A-Z0-9]+)")


#: the unit's start as a script of its own: strace runs the module's start script (bash, cat of
#: the key, exec of the backend); a TERM, as systemd stops the unit, goes on to the backend
_TRACED = """#!/bin/sh
export CREDENTIALS_DIRECTORY={credentials}
{strace} -f -qq -o {trace} -- {sh} -c {inner} &
tracer=$!
pidfile={pid}
trap 'n=0; while [ ! -s "$pidfile" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
kill -TERM "$(cat "$pidfile")"' TERM
wait $tracer
wait $tracer
"""
# (the backend's PID from its own shell: the run is in a PID namespace of its own, and /proc is
# the host's, so the tracer's children cannot be read there)


def _traced_start(tmp_path: Path, start: str, package: str, backend: Path, trace: Path) -> Path:
    """The unit's ExecStart (the module's start script, its package's program swapped for the
    real backend), under strace."""
    from betrace_dist import tools

    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "signature-key").write_text("a-test-key", encoding="utf-8")
    script = tmp_path / "start.sh"
    program = shlex.quote(str(backend))
    script.write_text(start.replace(f"{package}/bin/betrace-backend", program), "utf-8")
    traced = tmp_path / "traced-start"
    pid, bash = shlex.quote(str(tmp_path / "backend.pid")), shlex.quote(tools.require("bash"))
    inner = f"echo $$ > {pid}; exec {bash} {shlex.quote(str(script))}"
    words = {
        "credentials": credentials,
        "strace": tools.require("strace"),
        "trace": trace,
        "sh": tools.require("sh"),
        "inner": inner,
        "pid": tmp_path / "backend.pid",
    }
    quoted = {k: shlex.quote(str(v)) for k, v in words.items()}
    traced.write_text(_TRACED.format(**quoted), encoding="utf-8")
    traced.chmod(0o755)
    return traced


def _calls(trace: Path) -> tuple[set[str], set[str]]:
    """The system calls of an strace output, and the socket families it opened."""
    lines = trace.read_text(encoding="utf-8").splitlines()
    made = {m[1] for line in lines if (m := _CALL.match(line))}
    return made, {m[1] for line in lines if (m := _SOCKET.search(line))}


def test_the_backend_stays_inside_the_units_sandbox(
    nix: nixa.Nix, backend_program: Path, tmp_path: Path
) -> None:
    """Ran for real, under strace: the unit's ExecStartPre (`install` of the rules) and its
    ExecStart (the module's start script, which reads the key and runs the backend), with the
    module's rules, a trace that breaks one, and a stop by TERM as systemd stops the unit.
    Every system call made is one the unit's SystemCallFilter lets through (as the machine's
    systemd expands the groups), and every socket is of a family RestrictAddressFamilies
    allows. The backend is the tests' build (Go 1.27.3), not the image's or nixpkgs' Go, and
    what it does on a path this run does not take is not seen."""
    from betrace_dist import tools
    from betrace_dist.rules import engine

    from ..test_rules import SPANS

    try:
        analyze, strace = tools.require("systemd-analyze"), tools.require("strace")
    except tools.ToolMissing as exc:
        missing(exc)
    out = evaluate(nix, "{ " + ENABLED + f" rules = {RULES}; }}")
    config = out["service"]["serviceConfig"]
    rules_json = out["environment"]["etc"]["betrace-backend/rules.json"]["text"]
    # ExecStartPre: the module's install of rules.json into the data folder
    (pre,) = config["ExecStartPre"]
    source, copy = tmp_path / "rules.json", tmp_path / "copied.json"
    source.write_text(rules_json, encoding="utf-8")
    argv = [*pre.split()[:-2], str(source), str(copy)]
    argv[0] = tools.require("install")
    pre_trace = tmp_path / "pre.txt"
    subprocess.run([strace, "-f", "-qq", "-o", str(pre_trace), "--", *argv], check=True, timeout=60)
    # ExecStart, stopped by TERM
    package = nix.eval_expr(f"toString ({PACKAGE})")
    start = nix.eval_expr(
        f"""(import {STUBS}/nixos/eval-module.nix {{
        module = {MODULE}; settings.services.betrace-backend = {{ {ENABLED} }};
      }}).config.systemd.services.betrace-backend.serviceConfig.ExecStart.text"""
    )
    trace = tmp_path / "calls.txt"
    traced = _traced_start(tmp_path, start, package, backend_program, trace)
    request = {"rules_json": copy.read_text(encoding="utf-8"), "traces": [SPANS]}
    result = engine.run(request | {"graceful_stop": True}, traced)
    assert [v["ruleId"] for v in result["violations"] if v["kind"] == "trace"] == [
        "no-fraud-skip-on-large-charge"
    ], "the traced run did not evaluate the rules"
    made, families = _calls(trace)
    pre_made, _ = _calls(pre_trace)
    # the stop: TERM reached the backend (bash and cat are gone by then), which then called
    # exit_group itself, and nothing was killed
    lines = trace.read_text(encoding="utf-8").splitlines()
    term = next((n for n, line in enumerate(lines) if "--- SIGTERM" in line), None)
    assert term is not None, "the backend got no TERM"
    assert any("exit_group(" in line for line in lines[term:]), "no exit after the TERM"
    assert not [line for line in lines if "+++ killed by" in line], lines[-3:]
    assert {"openat", "fchmod"} & pre_made, pre_made
    outside = (made | pre_made) - _allowed(analyze, config["SystemCallFilter"])
    assert not outside, f"system calls the unit's filter would refuse: {sorted(outside)}"
    assert families and families <= set(config["RestrictAddressFamilies"]), families


def test_the_package_defaults_to_nixpkgs_own_and_says_when_it_has_none(nix: nixa.Nix) -> None:
    """mkPackageOption, as a module in nixpkgs declares its package: pkgs.betrace-backend by
    default. Where pkgs has none (before the package is merged), the error names it, and a
    host that gives `package` (the flake guide's patchedBackend) is not affected."""
    without = ENABLED.replace(f" package = {PACKAGE};", "")
    assert without != ENABLED
    assert "betrace-backend cannot be found in pkgs" in failure(nix, "{ " + without + " }")
