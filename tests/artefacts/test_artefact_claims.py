"""The artefacts' texts (chart README, NOTES.txt, values descriptions, Compose comments, Nix
descriptions) are held to releases.yaml's false_claims, as the pages are.

Each old wording below is one the artefact said (or close to it) before it became false: found
by the audit against the running backend (issue 18), or made false by the app's patch series,
whose app calls the backend from Grafana's server (issue 21). Written back into a copy of its
file, it fails with file:LINE.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.gate.claims import artefact_false_claims, artefact_files, artefact_typed_values
from betrace_dist.release import ReleaseData

from ..conftest import CURRENT


def test_the_artefacts_make_no_false_claim(release_data: ReleaseData) -> None:
    files = {str(f.relative_to(REPO_ROOT)) for f in artefact_files(REPO_ROOT)}
    assert {"helm/betrace/README.md", "helm/betrace/templates/NOTES.txt"} <= files
    assert {"helm/betrace/values.yaml", "docker/docker-compose.yml"} <= files
    assert "nix/pkgs/by-name/gr/grafana-betrace-app/package.nix" in files
    assert artefact_false_claims(REPO_ROOT, release_data.current) == []


#: The current release (read: a release leaves these tests as they are), and a commit's short
#: form no release has (the current one's, its last digit changed).
OTHER_COMMIT = CURRENT.upstream.short[:-1] + ("5" if CURRENT.upstream.short[-1] != "5" else "6")

OLD_WORDINGS = [
    pytest.param(
        "helm/betrace/templates/NOTES.txt",
        "4. Grafana's server calls the backend for the app (its plugin proxy route), at",
        "4. The app calls the backend from your browser, at",
        "plugin proxy, from Grafana's server",
        id="notes-app-calls-backend-from-browser",
    ),
    pytest.param(
        "helm/betrace/README.md",
        ": it calls\nthe backend through Grafana's plugin proxy,",
        ": the app calls\nthe backend from the user's browser,",
        "plugin proxy, from Grafana's server",
        id="readme-app-calls-backend-from-browser",
    ),
    pytest.param(
        "helm/betrace/values.yaml",
        "The app calls the backend from Grafana's pod (its plugin proxy route)",
        "The app calls the backend from the user's browser, never from Grafana's pod",
        "plugin proxy, from Grafana's server",
        id="values-backend-from-browser",
    ),
    pytest.param(
        "helm/betrace/templates/backend-ingress.yaml",
        "# For what runs outside the cluster: applications",
        "# The plugin calls the backend from the user's browser: this Ingress is how browsers"
        " reach it.\n# For what runs outside the cluster: applications",
        "plugin proxy, from Grafana's server",
        id="ingress-template-plugin-calls-backend-from-browser",
    ),
    pytest.param(
        "helm/betrace/values.yaml",
        "and in a few seconds with otlpTimeoutMs",
        "but took 11-20 s",
        "10 s or more",
        id="values-stop-time",
    ),
    pytest.param(
        "docker/docker-compose.yml",
        "# 12011: REST API, /v1/health, /v1/ready and /metrics, published for",
        "# 12011: REST API, /v1/health, /v1/ready and /metrics. Grafana's app calls it from the\n"
        "      # browser, so it has to be published for",
        "plugin proxy, from Grafana's server",
        id="compose-app-calls-backend-from-browser",
    ),
    pytest.param(
        "docker/docker-compose.yml",
        "and an observability\n# stack (",
        "and the observability\n# stack the backend reports to (",
        "nothing to Loki or Pyroscope",
        id="compose-reports-to-loki",
    ),
    # the second audit (issue 18): F2, F5, F6 in the words they had
    pytest.param(
        "docker/docker-compose.yml",
        "published for your requests and\n      # applications",
        "Grafana's app calls it from the\n      # browser, so it has to be published",
        "plugin proxy, from Grafana's server",
        id="compose-app-calls-it-from-the-browser",
    ),
    pytest.param(
        "docker/README.md",
        "Tempo and Prometheus for the backend's own traces and metrics, and\nLoki and Pyroscope",
        "Tempo, Prometheus, Loki and Pyroscope for the backend's own telemetry.\nAnd",
        "nothing to Loki or Pyroscope",
        id="compose-readme-loki-for-own-telemetry",
    ),
    pytest.param(
        "nix/modules/betrace-backend.nix",
        "take 10 s or more; 1000, a few",
        "take 10-30 s",
        "48 s once",
        id="nixos-module-stop-10-30",
    ),
    # the fourth audit (issue 18): F1, F2, F3, F5, F7, F8 in the words they had
    pytest.param(
        "nix/pkgs/by-name/gr/grafana-betrace-app/package.nix",
        "(React 19 in Grafana 13.1 and later)",
        "(React 19 in Grafana >= 13.2)",
        "React 19 by default from 13.1",
        id="nix-app-react-19-from-13-2",
    ),
    pytest.param(
        "patches/README.md",
        "which breaks under React 19 (Grafana 13.1 and later",
        "which breaks on Grafana 13.2 and later (React 19 (Grafana 13.1 and later",
        "React 19 by default from 13.1",
        id="patches-readme-react-19-from-13-2",
    ),
    # the fifteenth audit: F1 in the words it had, in the three texts that said it
    pytest.param(
        "helm/betrace/README.md",
        "because then only Grafana and the test pod would reach the backend:",
        "because a policy without sources would admit every source (every\npod, and clients"
        " from outside the cluster):",
        "would admit no application",
        id="chart-readme-empty-backendfrom-admits-all",
    ),
    pytest.param(
        "helm/betrace/values.yaml",
        "from the peers listed in backendFrom, this release's Grafana",
        "from the peers listed in backendFrom. Also this release's Grafana",
        "would admit no application",
        id="values-backend-only-from-backendfrom",
    ),
    pytest.param(
        "helm/betrace/ci/production-values.yaml",
        "(it refuses an empty list: nothing could submit spans)",
        "(it refuses an empty list: a NetworkPolicy rule\n  # without sources admits every source)",
        "would admit no application",
        id="production-values-rule-without-sources",
    ),
    pytest.param(
        "docker/docker-compose.yml",
        "Neither has the grafana service:",
        "the Grafana image has no HTTP client. Neither has the grafana service:",
        "Dockerfile adds curl",
        id="compose-grafana-image-no-http-client",
    ),
    pytest.param(
        "docker/docker-compose.yml",
        "the official image's default, set for the image",
        "the image's Grafana would otherwise look inside its read-only Nix store path; the",
        "sets GF_PATHS_PROVISIONING;",
        id="compose-provisioning-nix-store",
    ),
    pytest.param(
        "helm/betrace/templates/grafana-deployment.yaml",
        "Grafana reads it at start-up (or on an",
        "Grafana reads it at start-up only (or on an",
        "/api/admin/provisioning/plugins/reload",
        id="chart-provisioning-start-up-only",
    ),
    pytest.param(
        "docker/README.md",
        "with the Compose plugin 2.17.0 or later, not\n2.24.0) is all",
        "with Compose v2) is all",
        "Docker Compose 2.17.0 or later",
        id="compose-readme-compose-v2",
    ),
    pytest.param(
        "helm/betrace/templates/tests/test-backend-health.yaml",
        "as Grafana's server, the applications that post\n    # spans and Prometheus do.",
        "as Grafana's users and the collectors do.",
        "no collector calls the backend",
        id="chart-test-collectors-reach-it",
    ),
    # the fifth audit (issue 18): F1 in the words it had
    pytest.param(
        "helm/betrace/README.md",
        "its ReadWriteOnce volume can be mounted by one node at a time",
        "its ReadWriteOnce volume cannot be shared by two pods",
        "limits a volume to one node",
        id="chart-readme-rwo-two-pods",
    ),
    pytest.param(
        "helm/betrace/templates/backend-deployment.yaml",
        "# Recreate: a ReadWriteOnce volume is mounted by one node at a time",
        "# Recreate, because a ReadWriteOnce volume cannot be shared by the old and new pod",
        "limits a volume to one node",
        id="chart-template-rwo-old-and-new-pod",
    ),
    # the sixth audit (issue 18) made it say the stack runs plugin-init; it runs BusyBox since
    pytest.param(
        "docker/README.md",
        "`plugin-init` serves the chart's init containers; the stack does not build or run it",
        "`plugin-init` serves the chart's init container, and the stack's one-shot "
        "`backend-rules` service runs it; the",
        "runs the official BusyBox image",
        id="compose-readme-stack-runs-plugin-init",
    ),
    pytest.param(
        "helm/betrace/values.yaml",
        "the backend image has no shell or client, plugin-init (BusyBox too) carries",
        "the BeTrace images carry no shell or client, plugin-init carries",
        "built on BusyBox",
        id="values-betrace-images-no-shell",
    ),
    pytest.param(
        "patches/grafana-betrace-app/0002-call-the-backend-through-grafana-plugin-proxy.patch",
        " The pages, services and API client call http://localhost:12011 (or",
        " The pages, services, API client and data source call http://localhost:12011\n"
        " (or window.BETRACE_PORT_BACKEND) from the user's browser and ignore the\n"
        " configured backendUrl. (Or",
        "DataSource.ts:18",
        id="patch-0002-header-data-source-ignores-backend-url",
    ),
    pytest.param(
        "helm/betrace/templates/networkpolicy.yaml",
        "# Always a `from` list, never empty: a rule without one admits every source (every pod of",
        "# Always a `from` list, never empty: a rule without one admits every pod of the cluster."
        " (Every source",
        "clients from outside the cluster",
        id="networkpolicy-template-every-pod",
    ),
    # the seventh audit (issue 18) made it say three images; backend-rules builds none since
    pytest.param(
        "docker/Dockerfile",
        "#   docker compose build          # backend and grafana-plugin, with the args and the",
        "#   docker compose build          # backend, grafana-plugin and plugin-init, with",
        "pulls the official BusyBox image",
        id="dockerfile-compose-builds-three",
    ),
    # the ninth audit (issue 18): F2, F4 and U3 in the words they had
    pytest.param(
        "docker/docker-compose.yml",
        "# Not over /var/lib/grafana: a new volume there would receive a copy of the image's",
        "# Not over /var/lib/grafana: that would hide the plugin baked into the image in",
        "receives a copy of that directory",
        id="compose-volume-hides-plugin",
    ),
    pytest.param(
        ".github/workflows/ci.yml",
        "# The patched app's build (npm ci and webpack) takes 2 to 30 minutes on 2 cores",
        "# The patched app's webpack build alone takes 6 to 30 minutes on 2 cores",
        "the whole build: npm ci and webpack",
        id="ci-webpack-alone",
    ),
    pytest.param(
        "docker/docker-compose.yml",
        "the collector image is its binary alone (FROM",
        "the collector and Pyroscope images are distroless (FROM",
        "FROM scratch (collector-releases Dockerfile)",
        id="compose-collector-distroless",
    ),
    # the ninth audit, second half (issue 18): F3, F4, F6, F7, F8 in the words they had
    pytest.param(
        "helm/betrace/README.md",
        "With Argo CD, which renders the chart\n  with `helm template`, where",
        "With GitOps tools (Argo CD, Flux), which\n  render the chart where",
        "only Argo CD renders",
        id="readme-flux-lookup",
    ),
    pytest.param(
        "helm/betrace/ci/backend-only-values.yaml",
        "with the applications or jobs that post spans to",
        "with the collectors that submit spans and",
        "no collector submits spans",
        id="backend-only-collectors",
    ),
    pytest.param(
        "helm/betrace/ci/production-values.yaml",
        "(<fullname>-backend,",
        "(<release>-backend,",
        "the full name is the release",
        id="production-release-backend",
    ),
    pytest.param(
        "helm/betrace/README.md",
        "would block the drain of the node that runs it.",
        "would block every node drain.",
        "only the drain of the node",
        id="readme-pdb-every-drain",
    ),
    pytest.param(
        "nix/pkgs/by-name/gr/grafana-betrace-app/package.nix",
        "Grafana, in its default production mode, loads it only with",
        "Grafana loads it only with",
        "development mode",
        id="package-unsigned-only-with",
    ),
    # the eleventh audit (issue 18): U1 and U2 in the words they had
    pytest.param(
        "nix/pkgs/by-name/be/betrace-backend/package.nix",
        "(`nix flake prefetch` prints it); lib.fakeHash fails the fetch.",
        "(`nix flake prefetch` prints it); nixpkgs refuses lib.fakeHash.",
        "fails with a hash mismatch",
        id="package-fakehash-refused",
    ),
    pytest.param(
        "docker/README.md",
        "do not build with Nix; the backend image is evaluated",
        "do not build with Nix (the backend image does); the backend image is evaluated",
        "never built here",
        id="docker-readme-backend-builds",
    ),
]


@pytest.mark.parametrize(("relative", "now", "old", "reason"), OLD_WORDINGS)
def test_an_old_wording_fails_at_its_file_and_line(
    relative: str, now: str, old: str, reason: str, tmp_path: Path, release_data: ReleaseData
) -> None:
    text = (REPO_ROOT / relative).read_text(encoding="utf-8")
    assert now in text, f"{relative} no longer says {now!r}: update this test"
    target = tmp_path / relative
    target.parent.mkdir(parents=True)
    shutil.copy(REPO_ROOT / relative, target)
    changed = text.replace(now, old, 1)
    target.write_text(changed, encoding="utf-8")
    first = changed[: changed.index(old)].count("\n") + 1
    lines = range(first, first + old.count("\n") + 1)  # a claim is reported where it starts
    found = artefact_false_claims(tmp_path, release_data.current)
    assert any(
        f.split(":", 2)[:2] == [relative, str(n)] and reason in f for f in found for n in lines
    ), (f"{relative}:{first}", found)


def test_the_artefacts_type_no_wrong_value(release_data: ReleaseData) -> None:
    assert artefact_typed_values(REPO_ROOT, release_data) == []


#: One wrong value per class of fact the artefacts' prose states, in each kind of text (chart
#: README, values descriptions, templates' comments, Compose comments, .env.example, Nix
#: descriptions and comments): written into a copy of its file, it fails at its file:LINE and
#: names the releases.yaml field it should come from.
WRONG_VALUES = [
    pytest.param(
        "helm/betrace/README.md",
        "svc:12011",
        "svc:12013",
        "not a port of the backend (releases.yaml backend.ports.http.port",
        id="port-after-colon",
    ),
    pytest.param(
        "nix/pkgs/by-name/be/betrace-backend/package.nix",
        "metrics on port 12011 and gRPC",
        "metrics on port 12021 and gRPC",
        "port 12021 is not a port of the backend",
        id="port-in-nix-description",
    ),
    pytest.param(
        "docker/docker-compose.yml",
        "# 12011: REST API",
        "# 12010: REST API",
        "port 12010 is not a port of the backend",
        id="port-in-compose-comment",
    ),
    pytest.param(
        "docker/docker-compose.yml",
        f"ghcr.io/betrace-hq/betrace/backend:{CURRENT.version}",
        "ghcr.io/betrace-hq/betrace/backend:1.9.0",
        "has a tag no release has",
        id="image-tag",
    ),
    pytest.param(
        "helm/betrace/README.md",
        "The liveness probe calls `/v1/health`",
        "The liveness probe calls `/v1/healthz`",
        "'/v1/healthz' is no endpoint of the backend (releases.yaml backend.endpoints[].path",
        id="endpoint-in-readme",
    ),
    pytest.param(
        "docker/.env.example",
        "(REST, /v1/health,",
        "(REST, /v1/status,",
        "'/v1/status' is no endpoint of the backend",
        id="endpoint-in-env-example",
    ),
    pytest.param(
        "helm/betrace/templates/backend-deployment.yaml",
        f"health_service.go at {CURRENT.upstream.short}",
        f"health_service.go at {OTHER_COMMIT}",
        f"commit {OTHER_COMMIT} is no release's upstream commit (releases.yaml "
        "releases[].upstream.commit",
        id="commit-in-template-comment",
    ),
    pytest.param(
        "helm/betrace/README.md",
        "the `helm test` pod included.",
        "the `helm test` pod included (since chart 1.0.9).",
        "1.0.9 is no version of it in releases.yaml (releases[].chart.version",
        id="chart-version-in-readme",
    ),
    pytest.param(
        "helm/betrace/values.yaml",
        "gRPC API (BETRACE_PORT_GRPC)",
        "gRPC API (BETRACE_GRPC_PORT)",
        "BETRACE_GRPC_PORT is no variable the backend reads (releases.yaml backend.env",
        id="variable-in-values-description",
    ),
    pytest.param(
        "nix/modules/betrace-backend.nix",
        "telemetry (OTEL_EXPORTER_OTLP_TIMEOUT).",
        "telemetry (OTEL_EXPORTER_TIMEOUT).",
        "OTEL_EXPORTER_TIMEOUT is no variable the backend reads",
        id="variable-in-nix-description",
    ),
    pytest.param(
        "nix/modules/betrace-backend.nix",
        "the SDK's own 10000 made",
        "the SDK's own 5000 made",
        "'own 5000' is no OTLP export timeout of releases.yaml (backend.env "
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        id="timeout-in-nix-comment",
    ),
    pytest.param(
        "docker/docker-compose.yml",
        "(each export waits 10 s)",
        "(each export waits 30 s)",
        "'waits 30 s' is no OTLP export timeout",
        id="timeout-in-compose-comment",
    ),
    pytest.param(
        "nix/modules/betrace-backend.nix",
        'default = "localhost:4317";',
        'default = "localhost:4318";',
        "'localhost:4318' is not the backend's default OTLP endpoint (releases.yaml backend.env "
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        id="otlp-default-in-nix-option",
    ),
    pytest.param(
        "helm/betrace/values.yaml",
        "Empty leaves the backend default (localhost:4317,",
        "Empty leaves the backend default (localhost:4318,",
        "is not the backend's default OTLP endpoint",
        id="otlp-default-in-values-description",
    ),
    pytest.param(
        "docker/docker-compose.yml",
        "/var/lib/grafana/plugins/betrace-app.",
        "/var/lib/grafana/plugins/betrace-plugin.",
        "does not name the app by its id (releases.yaml plugin.id = betrace-app",
        id="plugin-folder-in-compose-comment",
    ),
    pytest.param(
        "helm/betrace/README.md",
        "`backend.otlpTimeoutMs` (1000)",
        "`backend.otlpTimeoutMs` (2000)",
        "is no OTLP export timeout",
        id="timeout-in-readme",
    ),
]


@pytest.mark.parametrize(("relative", "now", "wrong", "reason"), WRONG_VALUES)
def test_a_wrong_value_typed_in_an_artefact_fails_at_its_line(
    relative: str, now: str, wrong: str, reason: str, tmp_path: Path, release_data: ReleaseData
) -> None:
    text = (REPO_ROOT / relative).read_text(encoding="utf-8")
    assert now in text, f"{relative} no longer says {now!r}: update this test"
    target = tmp_path / relative
    target.parent.mkdir(parents=True)
    target.write_text(text.replace(now, wrong, 1), encoding="utf-8")
    line = text[: text.index(now)].count("\n") + 1
    found = artefact_typed_values(tmp_path, release_data)
    assert any(f.startswith(f"{relative}:{line}: ") and reason in f for f in found), (line, found)
