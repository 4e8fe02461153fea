"""Every command model catches a realistic guide mistake, naming page:line, the command, and
what exists instead. Expected lines are found in the fixture pages by their text."""

from __future__ import annotations

import re

import pytest

from .conftest import CURRENT, FIXTURES, line_containing, run_pytest

SITE = FIXTURES / "guide-mistakes"
DOCS = SITE / "docs"
#: the current release's version, read: a release leaves these messages as they are
VERSION = CURRENT.version
#: the upstream commit's short form the messages name (read, as the version)
SHORT = CURRENT.upstream.commit[:8]


@pytest.fixture(scope="module")
def gate_output() -> str:
    result = run_pytest(["docs", "-q", "-p", "no:randomly"], cwd=SITE)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "INTERNALERROR" not in result.stdout
    return result.stdout


#: what a page that waits on a server it started in the foreground is told
FOREGROUND = ["serves in the foreground and does not return", "`curl -fsS", "with &"]

CASES = [
    # page, text of the failing line, what the message must say
    (
        "compose-service.md",
        "logs grafna",
        ["no such service: grafna", "did you mean 'grafana'", "services: backend"],
    ),
    (
        "compose-network-not-joined.md",
        "docker compose -f my-app/compose.yaml",
        ["network betrace ('betrace_default') is external, but no service joins it"],
    ),
    (
        "compose-app-backend-at-localhost.md",
        "docker compose -f my-app/compose.yaml",
        ["services.app.environment.SPANS_URL", "localhost is the container itself"],
    ),
    ("compose-exec-before-up.md", "compose exec", ["was not started earlier on this page"]),
    ("compose-v1.md", "docker-compose up", ["Compose v1", "write `docker compose`"]),
    ("compose-no-env.md", "docker compose up", ["required variable BETRACE_SIGNATURE_KEY"]),
    ("curl-port.md", "localhost:8080", ["nothing answers on localhost:8080", "12011 (backend"]),
    ("curl-path.md", "/health", ["serves no /health", "did you mean '/v1/health'"]),
    (
        "curl-query.md",
        "rule_name=",
        ["no query parameter 'rule_name'", "it takes: limit, ruleId)", "would ignore it"],
    ),
    (
        "curl-query.md",
        "traceId=",
        ["ignores the query parameter 'traceId'", "violations-list-capped"],
    ),
    ("curl-body.md", "curl -fsS -X POST", ["request body is not JSON"]),
    ("curl-field.md", "curl -fsS -X POST", ["no field 'expresion'", "did you mean 'expression'"]),
    (
        "helm-scrape-port.md",
        "helm install stale",
        ["prometheus.io/port is '12011', which nothing of the pod serves", "on port 8080"],
    ),
    (
        "kubectl-scrape-sidecar.md",
        "kubectl apply --namespace betrace -f sidecar.yaml",
        ["Pod/backend: pod annotation prometheus.io/port is '9090', which nothing of the pod"],
    ),
    (
        "helm-scrape-port.md",
        "helm install betrace",
        ["Deployment/betrace-backend: pod annotation prometheus.io/port is '9090'", "/metrics"],
    ),
    ("helm-values-key.md", "helm install", ["additional properties 'replicaCount' not allowed"]),
    ("rules-check-own-backend.md", "--backend", ["a page cannot name another program"]),
    (
        "helm-oci-unpublished.md",
        "oci://",
        ["is not published yet", "install ./helm/betrace from a clone"],
    ),
    (
        "helm-flag.md",
        "--create-namespaces",
        ["no flag '--create-namespaces'", "did you mean '--create-namespace'"],
    ),
    (
        "helm-existing-secret.md",
        "production-values",
        ["needs Secret 'betrace-", "nor an earlier step creates"],
    ),
    (
        "helm-flag-misspelt.md",
        "--histroy-max",
        ["helm upgrade has no flag '--histroy-max'", "did you mean '--history-max'"],
    ),
    ("helm-values-file.md", "my-values.yaml", ["'my-values.yaml' does not exist"]),
    (
        "helm-image-unpublished.md",
        "helm install",
        ["would pull ghcr.io/betrace-hq/betrace/", "has not published", "set image.registry"],
    ),
    ("helm-rollback.md", "helm rollback", ["no release 'betrace' in namespace 'betrace'"]),
    (
        "kubectl-namespace.md",
        "-n monitoring",
        ["namespace 'monitoring' does not exist", "namespaces: betrace"],
    ),
    (
        "kubectl-service.md",
        "betrace-grafna",
        ["no Service 'betrace-grafna'", "did you mean 'betrace-grafana'"],
    ),
    ("kubectl-port.md", "3000:3000", ["has no port 3000", "it has: 80"]),
    (
        "kubectl-exec-backend.md",
        "kubectl exec",
        ["the backend image has no 'cat'", "FROM scratch", "no program to exec"],
    ),
    (
        "grafana-chart-key.md",
        "helm install grafana",
        ["unknown key 'adminPasword'", "did you mean 'adminPassword'"],
    ),
    ("tabs-depend.md", "docker compose pull", ["no Compose file in '.'"]),
    ("nix-output.md", "build-everything", ["no app 'build-everything'", "apps: build-all"]),
    (
        "nix-dev-tools.md",
        "nix build",
        ["declares dev-tools = path:./dev-tools", "flake-input-dev-tools-missing", "follows"],
    ),
    (
        "nix-run-app.md",
        "nix run github:",
        ["apps.<system>.backend", "go run", "#packages.<system>.backend"],
    ),
    (
        "nix-run-system.md",
        'nix run "github:',
        ["attribute 'currentSystem' missing", "builtins.currentSystem needs --impure"],
    ),
    # a server run in the foreground, in a transcript (each `$` step runs on its own, but in
    # the same terminal) and in a plain block
    *(
        (page, 'nix run "github:', FOREGROUND)
        for page in ("console-foreground.md", "nix-run-foreground.md")
    ),
    (
        "nix-tag-ref.md",
        "nix build github:",
        ["upstream has no tags yet", f"pin the commit {SHORT}"],
    ),
    (
        "nix-tag-ref.md",
        "nix flake show",
        ["the flake's input 'betrace': 'github:betrace-hq/betrace/v", "upstream has no tags yet"],
    ),
    (
        "nix-tag-ref.md",
        "nix flake show  # attributes",
        ["the flake's input 'betrace': 'github:betrace-hq/betrace?ref=v", "no tags yet"],
    ),
    (
        "nix-tag-ref.md",
        "nix flake show  # unpinned",
        ["'github:betrace-hq/betrace' names no revision of BeTrace", f"pin {SHORT}"],
    ),
    (
        "nix-tag-ref.md",
        "nix flake show  # git",
        ["the flake's input 'betrace': 'git+https://github.com/betrace-hq/betrace?ref=refs/tags"],
    ),
    (
        "program-path-not-made.md",
        "./tools/bin/helm lint",
        ["there is no './tools/bin/helm' at this point of the page", ".tools/bin/helm"],
    ),
    (
        "program-path-not-made.md",
        "/usr/local/bin/helm",
        ["is a program of the reader's machine, which the gate cannot see"],
    ),
    (
        "nix-flake-untracked.md",
        "nix flake show",
        ["git does not track mytarget/flake.nix", "`git add` it first"],
    ),
    (
        "nix-flake-untracked.md",
        "nix eval .#lib.answer",
        ["git does not track mytarget/second/extra.nix"],
    ),
    (
        "nix-flake-untracked.md",
        "nix flake show  # in the new clone",
        ["git does not track third/flake.nix"],
    ),
    (
        "python-test-of-the-project.md",
        'assert (repo_root / "helm" / "betrace.yaml")',
        ["the example raised AssertionError: no chart file"],
    ),
    (
        "openssl-weak-secret.md",
        "openssl rand -hex 4 > signature-key",
        ["openssl rand makes 4 random byte(s) (32 bits) for signature-key", "16 bytes (128"],
    ),
    (
        "openssl-weak-secret.md",
        'GRAFANA_ADMIN_PASSWORD="$(openssl rand -base64 8)"',
        ["openssl rand makes 8 random byte(s) (64 bits) for GRAFANA_ADMIN_PASSWORD"],
    ),
    (
        "python-exporter-deaf-to-its-url.md",
        '```python title="betrace_exporter.py"',
        [
            "the exporter breaks what the page says of it: add_betrace(provider, url) did not "
            "post to the URL it was given",
            "measured in the page's jail",
        ],
    ),
    (
        "python-test-of-the-project.md",
        "def test_with_a_fixture_of_its_own",
        ["tests test_with_a_fixture_of_its_own take an argument the gate has no fixture for"],
    ),
    (
        "python-test-of-the-project.md",
        'assert (repo_root / "tarball.nix")',
        ["the example raised AssertionError: no tarball.nix"],
    ),
    (
        "nix-features-flag.md",
        "nix --extra-experimental-features 'nix-command' flake",
        ["needs the experimental feature(s) flakes", "experimental Nix feature 'flakes' is"],
    ),
    (
        "nix-features-flag.md",
        "nix --extra-experimental-features flakes --experimental-features nix-command flake",
        ["needs the experimental feature(s) flakes"],
    ),
    (
        "nix-features-flag.md",
        "nix --option experimental-features nix-command flake",
        ["needs the experimental feature(s) flakes"],
    ),
    (
        "nix-result-replaced.md",
        "./result/bin",
        ["'result' is the build of stand-in-frontend", "not of betrace-backend"],
    ),
    (
        "nix-plugin-build.md",
        "nix build github:",
        ["packages.<system>.grafana-plugin", "does not build", "npm install", "plugin-init"],
    ),
    ("make-gate-page.md", "make gate", ["there is no 'docs/guides/tarbal.md'"]),
    (
        "docker-build-context-outside-clone.md",
        "patches=../patches",
        ["--build-context patches=../patches leads out of the clone 'distribution'"],
    ),
    (
        "docker-build-target.md",
        "grafana-plugins",
        ["has no stage 'grafana-plugins'", "did you mean 'grafana-plugin'", "stages: backend"],
    ),
    (
        "docker-build-arg.md",
        "BETRACE_REF",
        ["declares no ARG 'BETRACE_REF'", "ARGs: BETRACE_COMMIT, BETRACE_VERSION"],
    ),
    (
        "docker-push-unbuilt.md",
        'push "$REGISTRY/plugin-init',
        [f"'registry.example.com/betrace/plugin-init:{VERSION}' was not built earlier on this"],
    ),
    (
        "git-clone-branch.md",
        "git clone",
        [f"--branch main: the tag of this release is v{VERSION}"],
    ),
    (
        "helm-stack-key-level.md",
        "helm install kps",
        [
            "stack-values.yaml:5:",
            "'extraInitContainers' is a key of the Grafana chart at the top level",
            "indent it under 'grafana:'",
        ],
    ),
    (
        "helm-stack-init-security.md",
        "helm install kps",
        ["stack-values.yaml:3:", "fails Pod Security 'restricted'", "seccompProfile.type"],
    ),
    (
        "helm-grafana-configmap-missing.md",
        "helm install grafana",
        ["needs ConfigMap 'betrace-app-provisoning'", "did you mean 'betrace-app-provisioning'"],
    ),
    (
        "kubectl-image-unpublished.md",
        "kubectl apply -f load.yaml",
        ["Job load would pull", "has not published", "the reader's registry"],
    ),
    (
        "helm-grafana-dropped-volume.md",
        "helm upgrade grafana grafana-community/grafana",
        ["extraVolumeMounts still mounts 'extra-files'", 'Not found: "extra-files"'],
    ),
    (
        "curl-grafana-password.md",
        "curl -sS --fail-with-body -u admin:admin",
        ["signs in to Grafana with a password written into the page", "-u admin (curl asks"],
    ),
    (
        "kubectl-namespace-exists.md",
        "kubectl create namespace betrace",
        ["namespace 'betrace' exists already: kubectl create answers AlreadyExists"],
    ),
    (
        "kubectl-gitops-namespace.md",
        "kubectl apply -f application.yaml",
        ["Application in namespace 'betrace': Argo CD reconciles Applications only in its own"],
    ),
    (
        "helm-ingress-source-range.md",
        "helm template betrace ./helm/betrace",
        ["whitelist-source-range: '192.168.0.0/33' is not an address range"],
    ),
    (
        "helm-grafana-app-type.md",
        "helm install grafana",
        [
            "the app meant to be BeTrace's has type 'app', which provisions another plugin",
            "the plugin's id, betrace-app",
        ],
    ),
    (
        "helm-grafana-backend-url.md",
        "helm install grafana",
        [
            "jsonData.backendUrl",
            "port 12012 of Service 'betrace-backend' leads to port 12012",
            "HTTP port 12011",
        ],
    ),
    (
        "helm-grafana-unsigned.md",
        "helm install grafana",
        [
            "the app betrace-app is not signed",
            "grafana.ini sets no plugins.allow_loading_unsigned_plugins) gives nothing",
            "has 'allow_unsigned_plugins', which Grafana does not read",
        ],
    ),
    (
        "helm-grafana-admin-key.md",
        "helm install grafana",
        ["reads key 'user' of Secret 'grafana-admin'", "admin-password, admin-user"],
    ),
    (
        "kubectl-provisioning-reapplied.md",
        "kubectl apply --namespace monitoring",
        ["leads to port 12012", "mounted by Grafana's release grafana"],
    ),
    (
        "kubectl-delete-in-use.md",
        "kubectl delete configmap",
        [
            "Deployment 'grafana' (helm release grafana (modelled)) still uses ConfigMap",
            "take it out of that workload first",
        ],
    ),
    (
        "helm-grafana-init-request.md",
        "helm install grafana",
        ["initContainers[0].resources.requests", "must be less than or equal to memory limit"],
    ),
    (
        "helm-upgrade-drops-values.md",
        "--namespace monitoring --version",
        ["drops values the release has", "(values: adminUser)", "Add --reuse-values"],
    ),
    (
        "helm-grafana-rolling-volume.md",
        "helm upgrade grafana",
        ["ReadWriteOnce volume", "deploymentStrategy.type: Recreate"],
    ),
    (
        "kubectl-gitops-unstable.md",
        "kubectl apply",
        [
            "application.yaml: the Application's values render differently each time",
            "Secret/betrace-backend",
            "backend.signatureKey.existingSecret",
        ],
    ),
    (
        "kubectl-gitops-crd-key.md",
        "kubectl apply",
        ["flux.yaml: HelmRelease spec.install:", "'createNamespaces' was unexpected"],
    ),
    (
        "kubectl-own-backend-env.md",
        "kubectl apply",
        ["Deployment/backend container backend: OTEL_EXPORTER_OTLP_ENDPOINT"],
    ),
    (
        "kubectl-image-pull-policy.md",
        "kubectl apply",
        [
            "worker.yaml Deployment/worker: spec.template.spec.containers[0].imagePullPolicy:",
            'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"',
        ],
    ),
    (
        "git-pull-detached.md",
        "git pull",
        [f"has v{VERSION} checked out on a detached HEAD", "git fetch --tags"],
    ),
    (
        "git-push-before-tag.md",
        "git push origin",
        [
            f"the tag v{VERSION} is not made yet on this page",
            f"src refspec v{VERSION} does not match any",
        ],
    ),
    (
        "git-tag-before-pull.md",
        "git tag -a",
        ["main lacks the merge of release-", "until `git pull`"],
    ),
    (
        "git-tag-before-pull.md",
        '-m "after switch -"',
        ["main lacks the merge of release-"],
    ),
    (
        "git-tag-before-pull.md",
        '-m "after a push of HEAD"',
        ["main lacks the merge of release-", "-fix"],
    ),
    (
        "git-tag-before-pull.md",
        '-m "after a checkout of a file"',
        ["main lacks the merge of release-"],
    ),
    (
        "nix-flake-untracked.md",
        "nix flake show  # after add -u",
        ["git does not track fourth/flake.nix"],
    ),
    (
        "git-push-before-tag.md",
        "git push --follow-tags",
        ["git push --follow-tags: no annotated tag v"],
    ),
    (
        "git-push-before-tag.md",
        "git push --tags origin",
        ["git push --tags: no tag v", "the push sends no release tag"],
    ),
    (
        "git-switch-missing-branch.md",
        'git switch "release-',
        [
            f"no branch 'release-{VERSION}' exists here",
            "invalid reference",
            "branches: gh-pages, main",
        ],
    ),
    (
        "git-push-not-a-remote.md",
        "git push",
        [f"'v{VERSION}' is no remote of this clone", "does not appear to be a git repository"],
    ),
    (
        "git-push-unknown-branch.md",
        "git push origin",
        [
            f"no branch 'release/{VERSION}' exists here",
            f"branches: gh-pages, main, release-{VERSION}",
        ],
    ),
    (
        "kubectl-namespace-still-terminating.md",
        "kubectl create namespace trial  # again",
        ["namespace 'trial' is still terminating", "AlreadyExists", "kubectl wait --for=delete"],
    ),
    (
        "kubectl-secret-not-decoded.md",
        "kubectl get secret admin",
        ["{.data.admin-password} base64-encoded", "pipe it to `base64 --decode`"],
    ),
    (
        "nix-module-rule-severity.md",
        'severity = "high"',
        ['severity "high" is not one the module\'s rule type takes', "'HIGH'", "an enum"],
    ),
    (
        "nix-credential-folder.md",
        "secret_key = ",
        ["/run/credentials/grafana names no unit", "/run/credentials/grafana.service"],
    ),
    (
        "nix-credential-name.md",
        "secret_key = ",
        ["reads the credential 'secret-key' of grafana.service", "it names: secret_key"],
    ),
    (
        "nix-load-credential-option.md",
        "LoadCredential = ",
        ["systemd.services.grafana.LoadCredential is no NixOS option", "serviceConfig"],
    ),
    (
        "git-commit-leaves-out-a-change.md",
        'git commit -m "Note"',
        ["git commit leaves out what this page changed", "README.md; git add it too"],
    ),
    (
        "nix-shell-hook-variable.md",
        "export BETRACE_STORAGE_PATH",
        ["shellHook exports BETRACE_STORAGE_PATH, which the backend does not read"],
    ),
    ("nix-syntax.md", "openFirewall = ;", ["Nix cannot parse it: syntax error, unexpected ';'"]),
    (
        "nix-otlp-scheme.md",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        ["betrace-backend.environment.OTEL_EXPORTER_OTLP_ENDPOINT", "host:port with no scheme"],
    ),
    (
        "grafana-backend-port-changed.md",
        "kubectl apply -f backend-v2.yaml",
        ["leads to port 9999", "mounted by Grafana's release grafana"],
    ),
    (
        "grafana-backend-upgraded.md",
        "helm upgrade betrace",
        ["Grafana's release grafana loses the backend", "has no port 12011; it has: 9999"],
    ),
    (
        "grafana-provisioning-created-twice.md",
        "kubectl create configmap betrace-app-provisioning",
        ["exists already in namespace 'monitoring'", "AlreadyExists"],
    ),
    (
        "chart-backend-url-path.md",
        "helm upgrade --install betrace",
        ["at '/grafana/plugin/backendUrl'", "does not match pattern"],
    ),
    (
        "compose-override-backend-url.md",
        "docker compose up --build --wait",
        ["services.grafana.environment.BETRACE_BACKEND_URL", "localhost is Grafana itself"],
    ),
    (
        "compose-override-otlp-http.md",
        "docker compose up --build --wait",
        ["services.backend.environment.OTEL_EXPORTER_OTLP_ENDPOINT", "4318 is the port of OTLP"],
    ),
    (
        "nix-distribution-file.md",
        "${distribution}/nix/modules/betrace.nix",
        ["the repository has no such file", "did you mean nix/modules/betrace-backend.nix?"],
    ),
]


@pytest.mark.parametrize(("page", "needle", "words"), CASES, ids=[c[0] for c in CASES])
def test_mistake_is_named_with_page_line_and_what_exists(
    gate_output: str, page: str, needle: str, words: list[str]
) -> None:
    line = line_containing(DOCS / page, needle)
    match = re.search(
        rf"^docs/{re.escape(page)}:{line}: "
        r"(?:shell block \((?:bash|console)\): `([^`]*)`|(?:nix|python) block \(\w+\)): (.*)$",
        gate_output,
        re.M,
    )
    assert match, f"no failure at docs/{page}:{line}\n{gate_output[-4000:]}"
    command, reason = match[1], match[2]
    # a shell failure names the command; a Nix block's failure names the attribute path; a
    # Python block's, what the example raised at the needle's line
    if not page.startswith("python-"):
        assert needle.split()[0] in (command if command is not None else reason)
    for word in words:
        assert word in reason, f"docs/{page}:{line}: {reason!r} does not say {word!r}"


def test_every_mistake_page_is_covered() -> None:
    # python-minimum.md fails in a Python block: tests/test_python_minimum.py reads it
    pages = {p.name for p in DOCS.glob("*.md")} - {"index.md", "python-minimum.md"}
    assert pages == {c[0] for c in CASES}


def test_each_mistake_page_fails_only_where_its_mistake_is(gate_output: str) -> None:
    """A page that failed at an earlier, ordinary step still passed the test above when the
    expected line failed too: every line a page fails at must be one of its cases."""
    expected: dict[str, set[int]] = {}
    for page, needle, _ in CASES:
        expected.setdefault(page, set()).add(line_containing(DOCS / page, needle))
    failed: dict[str, set[int]] = {}
    for page, line in re.findall(r"^docs/([\w.-]+\.md):(\d+): ", gate_output, re.M):
        failed.setdefault(page, set()).add(int(line))
    stray = {
        page: sorted(lines - expected[page])
        for page, lines in failed.items()
        if page in expected and lines - expected[page]
    }
    assert stray == {}, stray
