"""The live tier's mechanism: given a backend program, the gate starts it in the page's jail
when the page's model has the backend running, runs the page's curl for real and compares.

These tests give the gate tests/fixtures/live-site/programs/stand-in-backend, a small HTTP
program of the test's own: the real betrace-backend is built from upstream's source by hand
and never in tests (see docs/contributing/how-the-docs-are-verified.md, "The live tier").
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from betrace_dist.gate.commands import models
from betrace_dist.gate.live import LiveTier
from betrace_dist.gate.session import CommandError, Session
from betrace_dist.gate.shellwords import split

from .conftest import (
    FIXTURES,
    backend_image,
    copy_site,
    line_containing,
    require_tool,
    run_pytest,
)

pytestmark = pytest.mark.slow

LIVE = FIXTURES / "live-site"
STAND_IN = LIVE / "programs" / "stand-in-backend"
READY_OUTPUT = '"uptimeSeconds":"...","metadata":{"storage":"in-memory"}}'


def live_site(tmp_path: Path, mode: str | None = None, output: str | None = None) -> Path:
    site = copy_site(tmp_path, ["index.md"], source=LIVE)
    page = site / "docs" / "index.md"
    text = page.read_text(encoding="utf-8")
    if mode:
        text = text.replace(
            "docker compose up --wait", f"docker compose up --wait\necho {mode} > ~/stand-in-mode"
        )
    if output:
        text = text.replace(READY_OUTPUT, output)
    page.write_text(text, encoding="utf-8")
    return site


def gate(site: Path, *args: str) -> str:
    require_tool("bwrap")
    done = run_pytest(["docs", "-q", "-p", "no:randomly", *args], site)
    return done.stdout + done.stderr


def test_without_a_program_the_output_is_not_compared(tmp_path: Path) -> None:
    out = gate(live_site(tmp_path, output='"uptimeSeconds":"...","wrong":true}'))
    assert re.search(r"\b2 passed\b", out), out[-2000:]


def stand_ins_left() -> list[str]:
    """Stand-in backends still running (not this session's own processes)."""
    left = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            # a gate run naming the stand-in (this project's or a concurrent one) is no stand-in
            own = str(os.getpid()).encode() in cmdline
            if b"stand-in-backend" in cmdline and b"pytest" not in cmdline and not own:
                left.append(cmdline.replace(b"\0", b" ").decode())
    return left


@dataclass(frozen=True)
class StandInRun:
    output: str
    left: list[str]  # stand-ins running the moment the gate returned


@pytest.fixture(scope="module")
def stand_in_run(tmp_path_factory: pytest.TempPathFactory) -> StandInRun:
    """The page as it is, against the stand-in: one run, which two tests inspect."""
    site = live_site(tmp_path_factory.mktemp("stand-in"))
    output = gate(site, "--live-backend", str(STAND_IN))
    return StandInRun(output, stand_ins_left())


def test_the_stand_in_answers_and_the_shown_output_is_compared(stand_in_run: StandInRun) -> None:
    assert re.search(r"\b2 passed\b", stand_in_run.output), stand_in_run.output[-2000:]


def test_a_wrong_shown_output_fails_at_its_line_against_the_live_backend(tmp_path: Path) -> None:
    site = live_site(tmp_path, output='"uptimeSeconds":"...","metadata":{"storage":"disk"}}')
    out = gate(site, "--live-backend", str(STAND_IN))
    line = line_containing(site / "docs" / "index.md", '"storage":"disk"')
    assert f"index.md:{line}: shell block (console): the page shows" in out, out[-3000:]


def test_a_wrong_output_after_a_sleep_in_the_same_step_fails_too(tmp_path: Path) -> None:
    """`$ sleep N && curl ...`: sleep prints nothing, so the step's output is the curl's and is
    compared. A review passed a wrong answer this way: the sleep's model said nothing, and the
    step was taken as one whose output no model could give."""
    site = live_site(tmp_path, output='"uptimeSeconds":"...","metadata":{"storage":"disk"}}')
    page = site / "docs" / "index.md"
    text = page.read_text(encoding="utf-8")
    page.write_text(text.replace("$ curl -fsS", "$ sleep 1 && curl -fsS", 1), encoding="utf-8")
    out = gate(site, "--live-backend", str(STAND_IN))
    line = line_containing(page, '"storage":"disk"')
    assert f"index.md:{line}: shell block (console): the page shows" in out, out[-3000:]


def test_an_undocumented_field_in_a_real_answer_names_the_release_data(tmp_path: Path) -> None:
    out = gate(live_site(tmp_path, mode="extra-field"), "--live-backend", str(STAND_IN))
    assert "has field(s) the release data does not document: uptime" in out, out[-3000:]


def test_an_error_status_of_the_live_backend_fails_the_block(tmp_path: Path) -> None:
    out = gate(live_site(tmp_path, mode="error"), "--live-backend", str(STAND_IN))
    assert "the real backend answered" in out and "500" in out, out[-3000:]


def test_a_program_that_is_not_executable_is_a_usage_error(tmp_path: Path) -> None:
    out = gate(live_site(tmp_path), "--live-backend", str(tmp_path / "missing"))
    assert "--live-backend: " in out and "is not an executable file" in out


def test_the_live_backend_does_not_outlive_the_run(stand_in_run: StandInRun) -> None:
    assert stand_in_run.left == []


def test_update_outputs_rewrites_the_shown_output_and_keeps_macros(tmp_path: Path) -> None:
    site = live_site(tmp_path, output='"uptimeSeconds":"...","metadata":{"storage":"disk"}}')
    page = site / "docs" / "index.md"
    before = page.read_text(encoding="utf-8")
    out = gate(site, "--live-backend", str(STAND_IN), "--update-outputs", "-n", "0")
    after = page.read_text(encoding="utf-8")
    assert re.search(r"\b2 passed\b", out), out[-2000:]
    assert '"metadata":{"storage":"disk"}' in before and '"storage":"disk"' not in after
    expected = (
        '{"status":"HEALTHY","version":"{{ release.backend.version }}",'
        '"uptimeSeconds":"...","metadata":{"storage":"in-memory"}}'
    )
    assert expected in after.splitlines(), after
    assert before.replace('{"storage":"disk"}', '{"storage":"in-memory"}') == after
    # the rewritten page now passes as it is
    assert re.search(r"\b2 passed\b", gate(site, "--live-backend", str(STAND_IN)))


def test_update_outputs_refuses_nothing_it_can_compare_without_a_program(tmp_path: Path) -> None:
    """Offline, curl's output comes from a model: nothing is compared, nothing rewritten."""
    site = live_site(tmp_path, output='"uptimeSeconds":"...","metadata":{"storage":"disk"}}')
    page = site / "docs" / "index.md"
    before = page.read_text(encoding="utf-8")
    gate(site, "--update-outputs", "-n", "0")
    assert page.read_text(encoding="utf-8") == before


def test_no_live_wins_over_a_backend_named_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--no-live` is the fast loop: a BETRACE_LIVE_BACKEND left in the shell must not turn the
    tier back on (it did: the variable was read first)."""
    from betrace_dist.gate import live

    program = tmp_path / "backend"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setenv(live.ENV_VAR, str(program))
    assert live.configure(None, off=True).program is None
    assert live.configure(None, off=False).program == program.resolve()


#: Calls through Grafana's app proxy route on the Compose stack's Grafana: no Grafana runs here,
#: but the backend behind it does, so each reaches the real backend (the live tier)
PROXY_BLOCKS = {
    "bad-expression": "-u admin -X POST {base}/v1/rules -H 'Content-Type: application/json' "
    '-d \'{{"name": "proxy-rule", "expression": "when {{ a-b }} always {{ c }}", '
    '"enabled": true}}\'',
    "no-such-rule": "-u admin -X POST {base}/v1/rules/no-such-rule/enable",
    "valid": "-uadmin -X POST {base}/v1/rules -H 'Content-Type: application/json' "
    '-d \'{{"name": "proxy-rule", "expression": "when {{ a }} always {{ b }}", '
    '"enabled": true}}\'',
}


def proxy_site(tmp_path: Path) -> Path:
    """The live fixture's stack, then one block per call of PROXY_BLOCKS through Grafana (a
    `sleep 60` waits for Grafana, which has no healthcheck)."""
    site = live_site(tmp_path)
    page = site / "docs" / "index.md"
    base = (
        'http://localhost:{{ compose_port("grafana") }}/api/plugin-proxy/'
        "{{ release.plugin.id }}/backend"
    )
    text = page.read_text(encoding="utf-8").replace(
        "docker compose up --wait && sleep 1", "docker compose up --wait && sleep 60"
    )
    for name, args in PROXY_BLOCKS.items():
        text += f"\n{name}:\n\n```bash\ncurl -sS --fail-with-body {args.format(base=base)}\n```\n"
    page.write_text(text, encoding="utf-8")
    return site


def test_a_call_through_grafanas_proxy_reaches_the_real_backend(
    tmp_path: Path, backend_program: Path
) -> None:
    """The backend's answer through the proxy is the block's: a rule that does not compile
    (400) and a rule that does not exist (404) fail at their lines with the backend's message;
    a valid call passes, and the run's list counts each call sent to the real backend."""
    site = proxy_site(tmp_path)
    out = gate(site, "--live-backend", str(backend_program), "-n", "0")
    page = site / "docs" / "index.md"
    bad, missing = line_containing(page, "{ a-b }"), line_containing(page, "rules/no-such")
    said = "the real backend answered HTTP {} (through Grafana's app proxy route): "
    for line, status, message in (
        (bad, 400, "failed to compile rule"),
        (missing, 404, "rule not found: no-such-rule"),
    ):
        where = f"index.md:{line}: shell block (bash): "
        assert re.search(re.escape(where) + ".*" + re.escape(said.format(status)), out), out
        assert message in out, out[-4000:]
    assert re.search(r"\b2 failed, 3 passed\b", out), out[-4000:]
    assert "FAILED (HTTP 400)" in out and "FAILED (HTTP 404)" in out, out[-4000:]
    assert re.search(r"ok \(HTTP 200\) curl -sS --fail-with-body -uadmin", out), out[-4000:]


def test_a_call_through_a_kubernetes_grafanas_proxy_reaches_its_backend(
    backend_program: Path,
) -> None:
    """Grafana in Kubernetes calls the backend its app's backendUrl names (the chart's own
    Service): with no port-forward to that backend, the live tier serves it on a port of the
    jail's loopback that nothing of the page holds, and the call is sent there."""
    for tool in ("helm", "kubectl"):
        require_tool(tool)
    tier = LiveTier(program=backend_program, off_reason=None)
    session = Session(timeout=120, live_tier=tier)
    app = session.release.current.plugin.id
    registry = "registry.example.com/betrace"
    base = f"http://localhost:3000/api/plugin-proxy/{app}/backend"
    body = '{"name": "r", "expression": "when { a-b } always { c }", "enabled": true}'
    try:
        session.run(
            split(
                backend_image(session, registry)
                + f"helm install betrace ./helm/betrace --namespace betrace --create-namespace "
                f"--set image.registry={registry} --wait\n"
                "kubectl -n betrace port-forward svc/betrace-grafana 3000:80 &\nsleep 1\n"
                f"curl -fsS -u admin {base}/v1/health\n"
            ),
            models(),
        )
        with pytest.raises(CommandError, match=r"answered HTTP 400 .*failed to compile rule"):
            session.run(
                split(f"curl -sS --fail-with-body -uadmin --json '{body}' {base}/v1/rules\n"),
                models(),
            )
    finally:
        session.close()
    assert [(r.status, r.ok) for r in tier.ran] == [(200, True), (400, False)]
