"""`make check`, the inner loop, names files that exist and fetches no tool: it depends on the
virtualenv only, never on `make tools` (which downloads Helm and kubectl)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _variable(makefile: str, name: str) -> list[str]:
    match = re.search(rf"^{name}\s*:=\s*((?:.*\\\n)*.*)$", makefile, re.MULTILINE)
    assert match, f"Makefile has no {name}"
    return match.group(1).replace("\\\n", " ").split()


def test_make_check_runs_existing_files_and_downloads_nothing() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    named = _variable(makefile, "CHECK_TESTS") + _variable(makefile, "CHECK_PAGE")
    assert len(named) >= 5
    assert [n for n in named if not (ROOT / n).is_file()] == []
    prerequisites = re.search(r"^check:([^#\n]*)", makefile, re.MULTILINE)
    assert prerequisites is not None and prerequisites.group(1).split() == ["$(STAMP)"]
