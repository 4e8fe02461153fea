"""Checkov, a second security scanner: its own virtualenv, an offline run, its JSON report.

Checkov pins many packages of its own, so it lives in .venv-checkov, never in .venv:
`python -m betrace_dist.artefacts.checkov install` creates it (`make checkov`). Runs are
offline: no API key, --skip-download, no update check, and a private HOME so that no
~/.checkov.yaml of the user's changes the result. The skip list is the repository's .checkov.yaml.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import REPO_ROOT

#: the checks, and so the results, change between releases: upgrade on purpose
CHECKOV_VERSION = "3.3.30"
VENV = REPO_ROOT / ".venv-checkov"
BINARY = VENV / "bin" / "checkov"
CONFIG = REPO_ROOT / ".checkov.yaml"
STAMP = VENV / f".installed-{CHECKOV_VERSION}"


class CheckovError(Exception):
    """Checkov crashed or printed something that is not its JSON report."""


@dataclass(frozen=True)
class Finding:
    """One failed check on one resource."""

    check_id: str
    resource: str
    file_path: str
    name: str

    def __str__(self) -> str:
        return f"{self.check_id} {self.resource} ({self.file_path}): {self.name}"


@dataclass
class Report:
    """Checkov's verdict for one framework."""

    framework: str
    passed: int = 0
    failed: list[Finding] = field(default_factory=list)
    parsing_errors: list[str] = field(default_factory=list)

    def failed_ids(self) -> set[str]:
        return {f.check_id for f in self.failed}


def find() -> str | None:
    """Path of the pinned checkov in .venv-checkov, or None when `make checkov` has not run."""
    if BINARY.is_file() and os.access(BINARY, os.X_OK):
        return str(BINARY)
    return None


def offline_env(home: Path) -> dict[str, str]:
    """Environment for checkov: no platform credentials, no download, no update check."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BC_", "CKV_", "CHECKOV_", "PRISMA_"))
    }
    env.update(
        HOME=str(home),
        BC_SKIP_MAPPING="TRUE",
        CKV_SKIP_PACKAGE_UPDATE_CHECK="true",
        CKV_GITHUB_CONFIG_FETCH_DATA="false",
        LOG_LEVEL="ERROR",
    )
    return env


def scan(
    binary: str,
    directory: Path,
    framework: str,
    workdir: Path,
    config: Path | None = CONFIG,
    timeout: int = 180,
) -> Report:
    """Run checkov on `directory` for one framework; `config=None` runs every check (no skips).

    `workdir` becomes the current directory and HOME, so no other .checkov.yaml is read.
    """
    argv = [binary, "--directory", str(directory), "--framework", framework, "--output", "json"]
    argv += ["--compact", "--skip-download"]
    if config is not None:
        argv += ["--config-file", str(config)]
    proc = subprocess.run(
        argv,
        cwd=workdir,
        env=offline_env(workdir),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode not in (0, 1):
        raise CheckovError(f"checkov exited {proc.returncode}:\n{proc.stderr or proc.stdout}")
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise CheckovError(
            f"checkov printed no JSON ({exc}):\n{proc.stdout}\n{proc.stderr}"
        ) from exc
    report = parse(data, framework)
    if (proc.returncode == 1) != bool(report.failed):
        raise CheckovError(f"exit code {proc.returncode} disagrees with {len(report.failed)} fails")
    return report


def parse(data: Any, framework: str) -> Report:
    """The report of `framework` in checkov's JSON (a list with several frameworks, else one)."""
    report = Report(framework)
    for block in data if isinstance(data, list) else [data]:
        # With nothing to scan, checkov prints only a summary, without check_type or results.
        if not isinstance(block, dict) or block.get("check_type") != framework:
            continue
        results = block.get("results") or {}
        report.passed += int((block.get("summary") or {}).get("passed", 0))
        report.failed += [
            Finding(c["check_id"], c["resource"], c.get("file_path", ""), c.get("check_name", ""))
            for c in results.get("failed_checks") or []
        ]
        report.parsing_errors += list(results.get("parsing_errors") or [])
    return report


def install() -> None:
    """Create .venv-checkov with the pinned checkov (a no-op when that version is there)."""
    if STAMP.exists() and find():
        print(f"checkov {CHECKOV_VERSION} ready in {VENV}")
        return
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, f"checkov=={CHECKOV_VERSION}"], check=True)
    for old in VENV.glob(".installed-*"):
        old.unlink()
    STAMP.touch()
    print(f"checkov {CHECKOV_VERSION} ready in {VENV}")


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python -m betrace_dist.artefacts.checkov install")
    install()
