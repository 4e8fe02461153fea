"""The statements the real backend disproved can no longer pass the gate.

Building upstream's backend at the pinned commit and running every guide against it showed
nine statements of the site to be false (see releases.yaml: `known_issues`, `false_claims`).
tests/fixtures/false-statements has one page per statement in the wording the pages once had;
each fails at its page.md:LINE with the reason. Two are caught elsewhere, where they live:
`nix run <flake>#backend` by the Nix model (tests/fixtures/guide-mistakes/docs/nix-run-app.md,
tests/test_guide_mistakes.py), and a stop grace shorter than the slow stop by the artefact
policies (tests/artefacts/test_compose.py, tests/artefacts/test_chart_policy.py).
"""

from __future__ import annotations

import pytest

from .conftest import FIXTURES, line_containing, run_pytest
from .test_gate_faults import failure_lines

SITE = FIXTURES / "false-statements"
DOCS = SITE / "docs"


@pytest.fixture(scope="module")
def gate_run() -> str:
    result = run_pytest(["docs", "-q"], cwd=SITE)
    out = result.stdout + result.stderr
    assert result.returncode == 1 and "INTERNALERROR" not in out, out[-3000:]
    return result.stdout


@pytest.mark.parametrize(
    ("page", "wording", "reason"),
    [
        ("app-lists-rules.md", "the app shows violation", "app-shows-no-statistics-or-traces"),
        ("app-backend-url-advice.md", "from your browser", "app-needs-the-distribution-patches"),
        ("body-limit.md", "up to 10 MiB", "about 4 MiB first (429)"),
        ("body-limit.md", "at most about 10 MiB", "about 4 MiB first (429)"),
        ("body-limit.md", "limited to 10,485,760 bytes", "about 4 MiB first (429)"),
        ("no-other-variable.md", "reads no other variable", "OTEL_* variables"),
        ("readiness.md", "is not writable", "/v1/ready checks nothing"),
        ("bare-binary.md", "result/bin", 'known_issue("slow-stop-without-otlp")'),
        ("grpc-probe.md", "grpc:", "no standard gRPC health service"),
        # the statements the audit against the running backend found false (issue 18)
        ("slow-stop.md", "11 to 20 seconds", "10 s or more"),
        ("slow-stop.md", "up to 20 seconds", "10 s or more"),
        ("body-over-10-mib.md", "A larger body gets 429", "400 (http: request body too large)"),
        ("otel-sampler.md", "honours the standard", "only some OTEL_* variables"),
        ("all-or-nothing.md", "all-or-nothing", "known issue partial-ingest"),
        ("rejected-count.md", "why it rejected", "known issue partial-ingest"),
        ("receives-otlp.md", "backend receives", "known issue no-otlp-receiver"),
        ("troubleshoot-backend-url.md", "when it loads rules", "never calls the backend from"),
        ("ingress-https.md", "empty means https", "unless backend.ingress.tlsSecret"),
        ("loki-pyroscope.md", "everything it reports to", "nothing to Loki or Pyroscope"),
        ("posted-spans-tempo.md", "Spans you post", "never forwarded"),
        ("api-key.md", "Set an API key", "CORS preflight fail"),
        # values typed by hand and wrong, in a table, a block, prose (issue 18, item 7)
        ("typed-image-tag.md", "backend:1.9.0", "has a tag no release has"),
        ("typed-chart-version.md", "--version 0.9.0", "no version of the BeTrace chart"),
        ("typed-port.md", "12021", "not a port of the backend"),
        ("typed-limit.md", "5 MiB", "no limit of the backend"),
        ("typed-obs-image.md", "grafana/tempo:2.4.0", "not the pinned tempo image"),
        # the second audit (issue 18): F1, F3, F4, F5, F6, F7, F9 in the wording they had
        ("app-tests-connection.md", "at this version the Grafana", "lists, creates, enables"),
        ("grafana-minimum.md", "(≥ 9.0.0)", "shares only from 12.3.0"),
        ("grafana-minimum.md", "Grafana 9.0.0 or later", "shares only from 12.3.0"),
        # wordings a review of the gate passed: "or newer", "at least", a version of 12 below 12.3
        ("grafana-minimum.md", "Grafana 11.0.0 or newer", "shares only from 12.3.0"),
        ("grafana-minimum.md", "at least Grafana 12.1", "shares only from 12.3.0"),
        ("attributes-whole-request.md", "more gives 400", "known issue partial-ingest"),
        ("evaluated-after-3s.md", "3 seconds after", "3 to 4 seconds after its last span"),
        ("evaluated-4-to-5s.md", "4 to 5 seconds after", "backend.evaluation"),
        ("stop-10-30.md", "10-30 s", "48 s once"),
        ("loki-own-telemetry.md", "Prometheus, Loki and Pyroscope", "nothing to Loki or Pyroscope"),
        # the fourth audit (issue 18): F1, F4, F5, F7, F8 in the wording they had
        ("react-19-from.md", "(13.2.0 and later)", "React 19 by default from 13.1"),
        ("grafana-plugins-list.md", "that list installs", "a plugin zip from a URL"),
        ("provisioning-start-up.md", "reads it only at", "/api/admin/provisioning/plugins/reload"),
        ("compose-v2.md", "Docker Engine 23.0", "Docker Compose 2.17.0 or later"),
        ("compose-v2.md", "plugin 2.16.0", "compose.minimum, compose.broken"),
        ("collectors-reach-it.md", "Grafana's users", "no collector calls the backend"),
        # the fifth audit (issue 18): F1, F2, F3 in the wording they had
        ("rwo-two-pods.md", "ReadWriteOnce volume cannot", "limits a volume to one node"),
        ("unsigned-log-line.md", "A line about an unsigned", "Permitting"),
        ("compose-wait.md", "returns once every container", "service_completed_successfully"),
        # the sixth audit (issue 18): F1-F3 and F8 in the wording they had
        ("compose-builds-three.md", "the three BeTrace images", "Compose builds two BeTrace"),
        ("compose-builds-three.md", "service runs the plugin-init", "official BusyBox image"),
        ("network-policy-any-pod.md", "or any pod when", "clients from outside the cluster"),
        ("docker-build-no-context.md", "docker build", "needs the build context 'patches'"),
        # the seventh audit (issue 18): F1 and F3-F6 in the wording they had
        ("backend-policy-sources.md", "admits only the sources", "the release's Grafana pods"),
        ("rollout-never-returns.md", "never returns", "progress deadline"),
        ("nixpkgs-copy-links.md", "cp -R", "copy with -L"),
        ("nix-images.md", "with it the grafana-plugin", "only the backend image builds"),
        ("dockerfile-patches-nothing.md", "patches nothing", "applies the backend's and the app's"),
        # the eighth audit (issue 18): U2 in the wording it had
        ("official-chart.md", "the official chart", "the Grafana community's"),
        # the ninth audit (issue 18): F1, F3, U1, U2 in the wording they had
        ("unsigned-line-means.md", "a line saying it is unsigned", "Permitting"),
        ("pull-request-secrets.md", "CI runs on", "only from pull requests of forks"),
        ("pull-request-secrets-short.md", "CI runs on", "only from pull requests of forks"),
        # the eleventh audit (issue 18): F1 and F2 in the wording they had
        ("nix-build-packages-only.md", "looks at packages only", "never looks at apps"),
        ("prometheus-example-job.md", "`kubernetes-pods` job", "commented out"),
        # the twelfth audit (issue 18): F1, F3 and U1 in the wording they had
        ("count-bare-word-path.md", "implement such a path", "compared with it as text"),
        ("tempo-only.md", "reaches Tempo only", "logs to Loki"),
        ("tested-with.md", "versions it was tested with", "run none of the observability"),
        # the fifteenth audit: F1, the value false read as true, shown with no word of it
        ("false-literal.md", "verified == false", 'known_issue("false-reads-as-true")'),
        # the sixteenth audit: F1, F2, a trace evaluated once per part
        ("trace-as-a-whole.md", "evaluates a trace as a whole", "evaluated again, as another"),
        ("trace-as-a-whole.md", "one violation per rule", "evaluated again, as another"),
        # the sixteenth audit: F3, F4 and F5 in the wording they had
        ("rules-every-up.md", "before the backend starts", "does not restart the backend"),
        ("one-exception.md", "one documented exception", "the nixpkgs expressions build"),
        # the seventeenth audit: F1 in the wording it had
        ("snapshot-folder.md", "BETRACE_UPSTREAM_DIR=FOLDER", "FOLDER/betrace-<commit>"),
        # the eighteenth audit: F1 in the wording it had
        ("grafana-chart-prerequisite.md", "Helm chart at version", "older charts default to"),
        # the nineteenth audit: F1 in the wording it had
        ("nix-tab-until.md", "until upstream", "has no sh, cp or chown"),
        ("add-git-url.md", "A message that", "the build needs BuildKit"),
        # a page a known issue names, without it
        ("guides/send-traces-to-betrace.md", "# 28", "known issue partial-ingest"),
        ("reference/rule-language.md", "# 36", "known issue quoted-list-item-never-matches"),
    ],
)
def test_the_old_wording_fails_at_its_line(
    gate_run: str, page: str, wording: str, reason: str
) -> None:
    failures = failure_lines(gate_run)
    line = line_containing(DOCS / page, wording)
    found = {k: v for k, v in failures.items() if k.startswith(f"docs/{page}:")}
    assert found, f"{page} passed the gate; failures: {sorted(failures)}"
    # a claim is reported where it starts; a block where its fence opens (the line above)
    key = next((k for k in (f"docs/{page}:{line}", f"docs/{page}:{line - 1}") if k in found), None)
    assert key is not None, f"{page}: expected line {line}, got {found}"
    assert reason in found[key], found[key]


def test_a_block_leading_into_two_issues_names_both(gate_run: str) -> None:
    failures = failure_lines(gate_run)
    line = line_containing(DOCS / "bare-binary.md", "```bash")
    reason = failures[f"docs/bare-binary.md:{line}"]
    assert 'known_issue("slow-stop-without-otlp")' in reason
    assert 'known_issue("binds-all-interfaces")' in reason
