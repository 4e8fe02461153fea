"""The patched app's client code against the REAL backend, through a model of Grafana's proxy.

What runs: the app's own service code after the patch series (services/BeTraceService.ts and
services/runtime.ts, the Effect runtime the pages use), bundled for Node with esbuild, run by
Debian's Node. What it talks to: the backend built from upstream's snapshot, through
grafana_proxy_model.py, a MODEL of Grafana's app plugin proxy (no Grafana can run here) that maps
`/api/plugin-proxy/betrace-app/<route>/...` exactly as the patched plugin.json declares it. The
one stand-in is @grafana/runtime, replaced by grafana_runtime_stub.ts (config.appSubUrl only):
the client code under test uses nothing else of it.

Backend, proxy model and Node run in a network namespace of their own with only loopback
(backend_run.loopback_argv): the backend binds all interfaces, and none of the host's is there.

The driver (client_driver.ts) lists, creates, reads, updates, enables, disables and deletes a rule,
posts a span as an application would (straight to the backend, not through Grafana), reads the
violation back through the client and maps it as the Signals page does; this file checks what
came back against what the test sent, and the proxy's log for where each call went.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from betrace_dist import plugin_build
from betrace_dist.backend_run import loopback_argv

from .conftest import HERE, unpack_with

APP = plugin_build.APP_DIR
RULE = "checkout-needs-fraud-check"
EXPRESSION = "when { payment } always { fraud_check }"
SPAN = "payment"
API_KEY = "key-kept-on-grafanas-server"
PROXY_PORT = 3000
BACKEND_URL = "http://127.0.0.1:12011"
SEVERITIES = {"critical", "high", "medium", "low"}

SCRIPT = f"""\
set -eu
BETRACE_DATA_DIR="$WORK/data" OTEL_EXPORTER_OTLP_TIMEOUT=1000 "$BACKEND" >"$WORK/backend.log" 2>&1 &
python3 "$PROXY" "$MANIFEST" "$SETTINGS" {PROXY_PORT} "$WORK/proxy.log" "$ROLE" \
  >"$WORK/proxy.out" 2>&1 &
for _ in $(seq 50); do
  if (exec 3<>/dev/tcp/127.0.0.1/12011) 2>/dev/null && grep -q ready "$WORK/proxy.out"; then
    break
  fi
  sleep 0.1
done
GRAFANA_URL=http://127.0.0.1:{PROXY_PORT} BACKEND_URL={BACKEND_URL} OUT_FILE="$WORK/out.json" \\
  node "$WORK/client.mjs"
"""


@dataclass
class Run:
    returncode: int
    out: dict[str, Any]
    output: str
    proxy_log: list[dict[str, Any]]


def bundle(node: str, tree: Path, out: Path) -> None:
    subprocess.run(
        [node, str(HERE / "bundle_client.mjs"), str(tree / APP / "src"), str(out)],
        check=True, timeout=300,
    )  # fmt: skip


def run_client(node: str, backend: Path, tree: Path, work: Path, role: str = "Editor") -> Run:
    """Bundle the tree's client, then run backend, proxy model and client in one namespace, the
    user signed in to Grafana having the org role `role` (the driver does less as a Viewer)."""
    work.mkdir(parents=True, exist_ok=True)
    bundle(node, tree, work / "client.mjs")
    settings = {"jsonData": {"backendUrl": BACKEND_URL}, "secureJsonData": {"apiKey": API_KEY}}
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "WORK": str(work),
        "BACKEND": str(backend),
        "PROXY": str(HERE / "grafana_proxy_model.py"),
        "MANIFEST": str(tree / APP / "src" / "plugin.json"),
        "SETTINGS": json.dumps(settings),
        "RULE_NAME": RULE,
        "RULE_EXPRESSION": EXPRESSION,
        "SPAN_NAME": SPAN,
        "ROLE": role,
    }
    done = subprocess.run(
        loopback_argv(["bash", "-c", SCRIPT]),
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    log = work / "proxy.log"
    lines = log.read_text().splitlines() if log.is_file() else []
    out = json.loads((work / "out.json").read_text()) if done.returncode == 0 else {}
    return Run(done.returncode, out, done.stdout + done.stderr, [json.loads(x) for x in lines])


@pytest.fixture(scope="module")
def run(node: str, backend_program: Path, patched_tree: Path, tmp_path_factory):
    started = time.time()
    result = run_client(node, backend_program, patched_tree, tmp_path_factory.mktemp("c"))
    assert result.returncode == 0, f"the patched client failed:\n{result.output[-3000:]}"
    result.out["_window"] = (started * 1000, time.time() * 1000)
    return result


def rule_as_sent(rule: dict[str, Any], description: str, severity: str, enabled: bool) -> None:
    """What the rules list renders: id, name, description, expression, severity, enabled."""
    assert rule["id"] == RULE and rule["name"] == RULE, rule
    assert rule["expression"] == EXPRESSION, rule
    assert (rule["description"], rule["severity"], rule["enabled"]) == (
        description,
        severity,
        enabled,
    ), rule


def test_every_call_goes_through_the_plugin_proxy_route(run: Run) -> None:
    assert len(run.proxy_log) >= 10, run.proxy_log
    for call in run.proxy_log:
        assert call["from"].startswith("/api/plugin-proxy/betrace-app/backend/v1/"), call
        assert call["to"] == BACKEND_URL + call["from"].removeprefix(
            "/api/plugin-proxy/betrace-app/backend"
        ), call
        # the key is added by the route on the server side; the browser's code never has it
        assert call["client_api_key"] is None and call["sent_api_key"] == API_KEY, call


def test_rules_list_create_update_enable_disable_delete(run: Run) -> None:
    out = run.out
    assert out["health"]["status"] == "HEALTHY"
    assert isinstance(out["health"]["uptimeSeconds"], int | float), out["health"]
    assert out["listBefore"] == {"rules": [], "totalCount": 0}
    rule_as_sent(out["created"], "written by the test", "HIGH", False)
    assert "HTTP 409" in out["duplicate"]["message"], out["duplicate"]
    # a refused save says why (the editor shows the message in its Error alert): the backend's
    # compile error, which write-rules.md shows for the same hyphenated span name
    said = out["uncompiled"]["message"]
    assert said.startswith("HTTP 400: failed to compile rule: 1:13: lexer: invalid input text"), (
        said
    )
    assert '"-check' in said, said
    rule_as_sent(out["got"], "written by the test", "HIGH", False)
    rule_as_sent(out["updated"], "edited", "CRITICAL", False)
    rule_as_sent(out["enabled"], "edited", "CRITICAL", True)
    assert out["listAfter"]["totalCount"] == 1
    rule_as_sent(out["listAfter"]["rules"][0], "edited", "CRITICAL", True)
    rule_as_sent(out["disabled"], "edited", "CRITICAL", False)
    assert "HTTP 404" in out["missing"]["message"], out["missing"]
    assert RULE not in [r["name"] for r in out["listEnd"]["rules"]]


def test_the_violation_is_read_back_as_the_signals_page_shows_it(run: Run) -> None:
    out = run.out
    assert out["spans"] == {"status": 200, "body": {"accepted": 1, "rejected": 0, "errors": []}}
    assert out["violations"]["totalCount"] >= 1
    start, end = out["_window"]
    for view in out["views"]:
        assert view["ruleId"] == RULE and view["ruleName"] == RULE, view
        assert view["traceId"] == "trace-from-the-test" and view["spanId"] == "span-1", view
        assert view["severity"] in SEVERITIES, view
        assert start <= view["timestamp"] <= end, view
        assert RULE in view["message"], view
        for text in ("id", "serviceName", "spanName"):
            assert isinstance(view[text], str), (text, view)
    # the tab's Search box matches the message (InvariantsPage.tsx): the known issue
    # span-level-violations tells readers to type "matched trace" there
    kinds = {v["message"].split(" matched ")[1].split(" ")[0] for v in out["views"]}
    assert "trace" in kinds and kinds <= {"span", "trace"}, [v["message"] for v in out["views"]]


def test_without_the_series_the_client_fails_against_the_backend(
    node: str, backend_program: Path, tmp_path: Path
) -> None:
    # only the webpack patch: the client still calls http://localhost:12011/api/v1/... itself
    first = plugin_build.series()[:1]
    result = run_client(node, backend_program, unpack_with(tmp_path, first), tmp_path / "w")
    assert result.returncode != 0
    assert result.proxy_log == [], "the unpatched client never goes through Grafana"
    assert "driver failed" in result.output, result.output[-2000:]


def with_routes(patched_tree: Path, tmp_path: Path, change: Callable[[list[Any]], None]) -> Path:
    """A tree of links to the patched app's sources, its plugin.json's routes changed."""
    tree = tmp_path / "tree"
    (tree / APP / "src").mkdir(parents=True)
    for entry in (patched_tree / APP / "src").iterdir():
        (tree / APP / "src" / entry.name).symlink_to(entry)
    manifest_path = tree / APP / "src" / "plugin.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.unlink()
    change(manifest["routes"])
    manifest_path.write_text(json.dumps(manifest))
    return tree


def test_a_route_that_does_not_match_the_client_fails(
    node: str, backend_program: Path, patched_tree: Path, tmp_path: Path
) -> None:
    def plain(routes: list[Any]) -> None:  # a plain path matches only itself (web.Tree)
        for route in routes:
            route["path"] = "backend"

    tree = with_routes(patched_tree, tmp_path, plain)
    result = run_client(node, backend_program, tree, tmp_path / "w")
    assert result.returncode != 0
    assert "HTTP 404" in result.output and "plugin route match not found" in result.output


def test_a_viewer_reads_rules_but_cannot_change_them(
    node: str, backend_program: Path, patched_tree: Path, tmp_path: Path
) -> None:
    """The write route needs the Editor role: a Viewer lists rules and reads health through the
    app, and is refused a new rule with Grafana's 403 before the backend sees it."""
    result = run_client(node, backend_program, patched_tree, tmp_path / "w", role="Viewer")
    assert result.returncode == 0, result.output[-3000:]
    out = result.out
    assert out["health"]["status"] == "HEALTHY" and out["listBefore"]["totalCount"] == 0, out
    assert out["refused"]["message"] == "HTTP 403: plugin proxy route access denied", out
    assert [call["method"] for call in result.proxy_log] == ["GET", "GET", "GET"], result.proxy_log
    assert out["listAfter"]["totalCount"] == 0, out["listAfter"]


def test_a_misspelt_role_lets_a_viewer_write_as_in_grafana(
    node: str, backend_program: Path, patched_tree: Path, tmp_path: Path
) -> None:
    """Grafana checks only a valid reqRole: 'editor' (lower case) lets a Viewer write, which
    the Viewer test then catches."""
    tree = with_routes(patched_tree, tmp_path, lambda routes: routes[1].update(reqRole="editor"))
    result = run_client(node, backend_program, tree, tmp_path / "w", role="Viewer")
    assert result.returncode == 0, result.output[-3000:]
    assert result.out["refused"] is None, "the misspelt role let the Viewer's rule through"
    assert result.out["listAfter"]["totalCount"] == 1, result.out["listAfter"]
