"""Checkov, a second security scanner: its own virtualenv, an offline run, its JSON report.

Checkov pins many packages of its own, so it lives in .venv-checkov, never in .venv:
`python -m betrace_dist.artefacts.checkov install` creates it (`make checkov`), with pip and every
package at the version of constraints-checkov.txt, which `make lock` writes
(`python -m betrace_dist.artefacts.checkov lock`). Runs are
offline: no API key, --skip-download, no update check, and a private HOME so that no
~/.checkov.yaml of the user's changes the result. The skip list is the repository's .checkov.yaml.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import REPO_ROOT

#: the checks, and so the results, change between releases: upgrade on purpose
CHECKOV_VERSION = "3.3.30"
VENV = REPO_ROOT / ".venv-checkov"
BINARY = VENV / "bin" / "checkov"
CONFIG = REPO_ROOT / ".checkov.yaml"
#: pip's and every package's version in .venv-checkov, written by lock()
CONSTRAINTS = REPO_ROOT / "constraints-checkov.txt"
_HEADER = (
    "# Written by `make lock` (python -m betrace_dist.artefacts.checkov lock): the versions\n"
    "# `make checkov` installs in .venv-checkov. Do not edit: change CHECKOV_VERSION, run\n"
    "# `make lock` again, then the tests.\n"
)


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


def constraint_problems(path: Path = CONSTRAINTS) -> list[str]:
    """Why the lock cannot be installed as it is (each with file:line), or none: every line
    not a comment is `name==version`, and it pins pip and checkov at CHECKOV_VERSION."""
    if not path.is_file():
        return [f"{path.name}: missing; run make lock"]
    problems, pins = [], {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        if not sep or not name.strip() or not version.strip():
            problems.append(f"{path.name}:{number}: '{line}' is not name==version")
            continue
        pins[name.strip().lower()] = (number, version.strip())
    if "pip" not in pins:
        problems.append(f"{path.name}: pip is not pinned; run make lock")
    number, version = pins.get("checkov", (0, ""))
    if version != CHECKOV_VERSION:
        where = f"{path.name}:{number}" if number else path.name
        problems.append(
            f"{where}: checkov is {version or 'not pinned'}, CHECKOV_VERSION is "
            f"{CHECKOV_VERSION}; run make lock"
        )
    return problems


def stamp(path: Path = CONSTRAINTS) -> Path:
    """The mark of an install of this lock: a changed lock installs anew."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return VENV / f".installed-{CHECKOV_VERSION}-{digest}"


def install() -> None:
    """Create .venv-checkov with the locked versions (a no-op when that lock is installed)."""
    problems = constraint_problems()
    if problems:
        sys.exit("make checkov: " + "; ".join(problems))
    if stamp().exists() and find():
        print(f"checkov {CHECKOV_VERSION} ready in {VENV}")
        return
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "-c", str(CONSTRAINTS)]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, f"checkov=={CHECKOV_VERSION}"], check=True)
    stamp().touch()
    print(f"checkov {CHECKOV_VERSION} ready in {VENV}")


def lock() -> None:
    """Write constraints-checkov.txt: the newest pip, and what checkov CHECKOV_VERSION pulls in,
    as a scratch virtualenv installs them today."""
    scratch = Path(tempfile.mkdtemp(prefix="betrace-checkov-lock-"))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(scratch)], check=True)
        pip = [str(scratch / "bin" / "python"), "-m", "pip"]
        subprocess.run([*pip, "install", "--quiet", "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "install", "--quiet", f"checkov=={CHECKOV_VERSION}"], check=True)
        frozen = subprocess.run([*pip, "freeze"], check=True, capture_output=True, text=True)
        version = subprocess.run(
            [*pip, "--version"], check=True, capture_output=True, text=True
        ).stdout.split()[1]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    CONSTRAINTS.write_text(_HEADER + f"pip=={version}\n" + frozen.stdout, encoding="utf-8")
    print(f"wrote {CONSTRAINTS.name}: checkov {CHECKOV_VERSION}, pip {version}")


if __name__ == "__main__":
    commands = {"install": install, "lock": lock}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit("usage: python -m betrace_dist.artefacts.checkov install|lock")
    commands[sys.argv[1]]()
