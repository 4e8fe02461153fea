"""The secrets scan: it finds planted secrets with file:line, lets references and placeholders
through, and the repository itself is clean.

Planted secrets are assembled at run time from a seeded generator, so this file holds no
secret-shaped string of its own."""

from __future__ import annotations

import random
import shutil
import string
import subprocess
from pathlib import Path

import pytest

from betrace_dist.artefacts import secrets

RNG = random.Random(20261124)  # noqa: S311 - reproducible fake secrets, not keys


def rand(alphabet: str, length: int) -> str:
    return "".join(RNG.choices(alphabet, k=length))


UPPER_DIGITS = string.ascii_uppercase + string.digits
ALNUM = string.ascii_letters + string.digits
# (file, rule, line appended to it)
PLANTED: list[tuple[str, str, str]] = [
    ("deploy/id_rsa", "private key", "-----BEGIN " + "RSA PRIVATE KEY-----"),
    ("deploy/key.pem", "private key", "-----BEGIN " + "OPENSSH PRIVATE KEY-----"),
    (
        "docker/production.env",
        "AWS access key id",
        "AWS_ACCESS_KEY_ID=" + "AKIA" + rand(UPPER_DIGITS, 16),
    ),
    ("ci/publish.yml", "GitHub token", "  GH_TOKEN: " + "ghp_" + rand(ALNUM, 36)),
    ("docs/notes.md", "GitLab token", "Use `" + "glpat-" + rand(ALNUM, 20) + "` to clone."),
    ("tools/notify.py", "Slack token", 'SLACK = "' + "xoxb-" + rand(string.digits, 12) + '"'),
    (
        "tools/hook.txt",
        "Slack webhook",
        f"https://hooks.slack.com/services/T{rand(UPPER_DIGITS, 8)}/B{rand(UPPER_DIGITS, 8)}/"
        + rand(ALNUM, 24),
    ),
    (
        "helm/values.yaml",
        "high-entropy value assigned to a secret name",
        '  password: "' + rand(ALNUM + "+/", 32) + '"',
    ),
    (
        "config/app.json",
        "high-entropy value assigned to a secret name",
        '  "apiKey": "' + rand(string.hexdigits.lower()[:16], 40) + '",',
    ),
    (
        "src/settings.py",
        "high-entropy value assigned to a secret name",
        "SIGNATURE_KEY = '" + rand(ALNUM, 24) + "'",
    ),
    (
        "docker/production.env",
        "high-entropy value assigned to a secret name",
        "BETRACE_SIGNATURE_KEY=" + rand("0123456789abcdef", 64),  # openssl rand -hex 32
    ),
    (
        "docs/token.md",
        "JSON Web Token",
        f"Authorization: Bearer eyJ{rand(ALNUM, 20)}.eyJ{rand(ALNUM, 30)}.{rand(ALNUM, 22)}",
    ),
    (
        "docs/admin.md",
        "high-entropy value assigned to a secret name",
        "Sign in with the password: `" + rand(ALNUM + "+/", 24) + "`.",  # Markdown inline code
    ),
]

#: Lines that only refer to a secret, or are placeholders: never reported.
HARMLESS = [
    "          password: ${{ secrets.GITHUB_TOKEN }}",
    "          REGISTRY_TOKEN: ${{ secrets.GITHUB_TOKEN }}",
    'sed -i "s/^BETRACE_SIGNATURE_KEY=.*/BETRACE_SIGNATURE_KEY=$(openssl rand -hex 32)/" .env',
    "BETRACE_SIGNATURE_KEY=",
    "GRAFANA_ADMIN_PASSWORD=${GRAFANA_ADMIN_PASSWORD:?set it in .env}",
    "    existingSecret: betrace-signature-key-credentials",
    "    tlsSecret: grafana-example-com-tls",
    "    passwordKey: admin-password",
    'password: "<your Grafana admin password>"',
    "password: changeme-Secret-2026",
    "token = os.environ['BETRACE_TOKEN']",
    "password = self.config.grafana_password",
    "secret_key: {{ .Values.backend.signatureKey.value | b64enc }}",
    "api_key: https://vault.example.com/v1/secret/data/betrace",
    "automountServiceAccountToken: false",
    "# secrets are generated once, on first install",
    "render the chart where `lookup` sees no cluster, name both Secrets: `ci/gitops-values.yaml`",
]


@pytest.fixture
def repo_copy(tmp_path: Path, repo_root: Path) -> Path:
    """A git repository holding a copy of every tracked file of the real one."""
    copy = tmp_path / "repo"
    for name in secrets.published_files(repo_root):
        source = repo_root / name
        if source.is_file() and not source.is_symlink():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    subprocess.run(["git", "init", "-q", str(copy)], check=True, timeout=60)
    subprocess.run(["git", "-C", str(copy), "add", "-A"], check=True, timeout=60)
    return copy


def test_planted_secrets_are_found_with_file_and_line(repo_copy: Path) -> None:
    expected = set()
    for name, rule, text in PLANTED:
        path = repo_copy / name
        path.parent.mkdir(parents=True, exist_ok=True)
        before = path.read_text(encoding="utf-8") if path.exists() else "# planted\n\n"
        path.write_text(before + text + "\n", encoding="utf-8")
        expected.add((name, before.count("\n") + 1, rule))
    subprocess.run(["git", "-C", str(repo_copy), "add", "-A"], check=True, timeout=60)
    found = secrets.scan(repo_copy)
    assert {(f.path, f.line, f.rule) for f in found} == expected, "\n".join(map(str, found))
    for finding in found:
        assert str(finding).startswith(f"{finding.path}:{finding.line}: {finding.rule}: ")


def test_findings_never_print_the_secret(tmp_path: Path) -> None:
    value = rand(ALNUM, 32)
    found = list(secrets.scan_text(f'client_secret: "{value}"\n', "values.yaml"))
    assert len(found) == 1
    assert value not in str(found[0])
    assert str(found[0]) == f"values.yaml:1: high-entropy value assigned to a secret name: " \
        f"client_secret = {value[:4]}…"  # fmt: skip


@pytest.mark.parametrize("line", HARMLESS)
def test_references_and_placeholders_are_not_secrets(line: str) -> None:
    assert list(secrets.scan_text(line + "\n", "f")) == []


def test_a_low_entropy_password_is_beyond_the_scan() -> None:
    """Stated limit: a short dictionary word is indistinguishable from a placeholder."""
    assert list(secrets.scan_text("password: hunter2\n", "f")) == []


def test_the_allow_marker_needs_a_reason() -> None:
    token = "ghp_" + rand(ALNUM, 36)
    with_reason = f"{token}  # secrets-scan: allow revoked token quoted in an incident report\n"
    without_reason = f"{token}  # secrets-scan: allow\n"
    assert list(secrets.scan_text(with_reason, "f")) == []
    assert [f.rule for f in secrets.scan_text(without_reason, "f")] == ["GitHub token"]


def test_untracked_binary_and_large_files(repo_copy: Path) -> None:
    token = "ghp_" + rand(ALNUM, 36)
    (repo_copy / "untracked.txt").write_text(token + "\n", encoding="utf-8")
    (repo_copy / "image.png").write_bytes(b"\x89PNG\0\0" + token.encode())
    (repo_copy / "huge.txt").write_text("x" * (secrets.MAX_BYTES + 1), encoding="utf-8")
    subprocess.run(
        ["git", "-C", str(repo_copy), "add", "image.png", "huge.txt"], check=True, timeout=60
    )
    found = [str(f) for f in secrets.scan(repo_copy)]
    assert found == [f"huge.txt:1: too large to scan: {secrets.MAX_BYTES + 1} bytes"]


def test_the_repository_holds_no_secret(repo_root: Path) -> None:
    found = secrets.scan(repo_root)
    assert found == [], "secret-shaped strings in tracked files:\n" + "\n".join(map(str, found))


def test_every_tracked_text_file_is_read(repo_root: Path) -> None:
    names = secrets.published_files(repo_root)
    assert "releases.yaml" in names and ".github/workflows/ci.yml" in names
    assert not [n for n in names if n.startswith((".venv/", ".tools/"))]


def test_the_file_the_compose_guide_fills_with_secrets_is_ignored(repo_root: Path) -> None:
    done = subprocess.run(
        ["git", "-C", str(repo_root), "check-ignore", "-q", "--no-index", "docker/.env"],
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, "git would track docker/.env"
