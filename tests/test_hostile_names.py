"""Neither a fence's language nor a page's file name reaches pytest's output raw: a test id holds
only safe characters, and a page whose path holds control characters is refused at collection
with an escaped message, before pytest could print the name (escape sequences, CI workflow
commands at the start of a line)."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import copy_site, run_pytest

CLEAN = "# Page\n\nText.\n\n```text\nplain\n```\n"


def assert_safe(output: str) -> None:
    assert "\x1b" not in output
    assert not re.search(r"^\s*::", output, re.MULTILINE), output


def test_a_fence_language_with_escapes_gives_a_safe_test_id(tmp_path: Path) -> None:
    site = copy_site(tmp_path, ["index.md"])
    language = "sh\x1b]0;owned\x07::warning::x"
    (site / "docs" / "index.md").write_text(
        f"# Page\n\nText.\n\n```{language}\necho hi\n```\n", encoding="utf-8"
    )
    done = run_pytest(["docs", "-v", "-rA"], site)
    output = done.stdout + done.stderr
    assert_safe(output)
    assert "line:5,sh??0?owned???warning??x" in output, output


def test_a_page_whose_name_holds_escapes_is_refused_with_an_escaped_message(
    tmp_path: Path,
) -> None:
    site = copy_site(tmp_path, ["index.md"])
    (site / "docs" / "x\x1b[2J\n::warning::owned.md").write_text(CLEAN, encoding="utf-8")
    done = run_pytest(["docs", "-v", "-rA"], site)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert_safe(output)
    assert "a page's path may not hold control characters" in output, output
    assert "x\\x1b[2J\\n::warning::owned.md" in output, output
