"""What the Compose guide's update step says of git, run with the real git: a checkout of a tag
that changes a file the reader changed is refused, and `git stash` / `git stash pop` carry the
change across it (docs/guides/deploy-with-docker-compose.md, "Logs, restart, update")."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(repo), "PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1"}
    ident = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "advice.detachedHead=false"]
    return subprocess.run(
        ["git", *ident, "-C", str(repo), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=check,
    )


def test_a_changed_rules_file_blocks_the_checkout_and_stash_carries_it(tmp_path: Path) -> None:
    repo = tmp_path / "distribution"
    (repo / "docker").mkdir(parents=True)
    _git(repo, "init", "-q")
    rules = repo / "docker" / "rules.yaml"
    for version, text in (("v2.0.0", "rules: []\n"), ("v2.1.0", "# new format\nrules: []\n")):
        rules.write_text(text)
        _git(repo, "add", "-A")
        _git(repo, "commit", "-qm", version)
        _git(repo, "tag", version)
    _git(repo, "checkout", "-q", "v2.0.0")
    mine = "rules:\n  - name: mine\n    expression: when { a } always { b }\n"
    rules.write_text(mine)

    refused = _git(repo, "checkout", "-q", "v2.1.0", check=False)
    assert refused.returncode != 0
    assert "would be overwritten by checkout" in refused.stderr

    _git(repo, "stash", "-q")
    _git(repo, "checkout", "-q", "v2.1.0")
    popped = _git(repo, "stash", "pop", check=False)  # the tag changed the file too: a merge
    assert popped.returncode != 0 and "CONFLICT" in popped.stdout, popped.stdout
    assert "name: mine" in rules.read_text()
