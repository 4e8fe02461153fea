"""Python blocks, through pytest-examples: linted with ruff, run, and `#>` printed output checked.

The block is linted by the gate (ruff reads it; nothing runs), then run by `pyrun.py` as a
program inside the page's jail, in the page's working directory, with the page's time and
output limits: never inside the gate's process. Every way a block can end (an exception, a
wrong `#>` comment, `os._exit`, a hang) is a plain `page.md:LINE` failure.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

from pytest_examples.config import ExamplesConfig

from ... import GATE_SOURCE, REPO_ROOT, tools
from ...probes import exporter
from .. import python_minimum
from ..isolation import Done
from ..lexer import Block
from ..session import CommandError, Session
from . import CheckFailure, Context, Status, require_tool


class PythonChecker:
    name: ClassVar[str] = "python"
    status: ClassVar[Status] = "run"
    languages: ClassVar[frozenset[str]] = frozenset({"python", "py", "python3"})

    def check(self, block: Block, ctx: Context) -> None:
        if ctx.request is None:
            raise CheckFailure("Python examples run only under pytest (pytest docs/)")
        _lint(block.body)
        result = _run_in_jail(block.body, str(ctx.page), ctx, block.title == exporter.TITLE)
        if result["outcome"] == "printed":
            raise _print_mismatch(result["report"], block.body)
        if result["outcome"] == "raised":
            raise CheckFailure(
                f"the example raised {result['type']}: {result['message']}", result.get("line")
            )
        if result["outcome"] == "uncalled":
            raise CheckFailure(
                f"the example's tests {', '.join(result['tests'])} take an argument the gate "
                f"has no fixture for (it calls a page's tests with {', '.join(result['fixtures'])} "
                "only): they would pass unrun",
                result.get("line"),
            )
        if block.title == exporter.TITLE:
            _check_exporter(result, ctx)
        _check_python_minimum(block.body, ctx)


def _check_exporter(result: dict[str, Any], ctx: Context) -> None:
    """The send-traces page's exporter does what the page says of it (probes/exporter.py),
    measured where the block ran: in the page's jail, its posts kept by urllib's opener."""
    found = result.get("measured")
    if not isinstance(found, dict):
        raise CheckFailure("the exporter's run reported no measurement of what it posts")
    try:
        problems = exporter.disagreements(found, ctx.release)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckFailure(f"the exporter's measurement is incomplete ({exc!r})") from None
    if problems:
        raise CheckFailure(
            f"the exporter breaks what the page says of it: {'; '.join(problems)} "
            "(measured in the page's jail, its posts kept without a socket: probes/exporter.py)"
        )


#: How pytest-examples lints an example (its configuration, as `EvalExample.set_config` takes it).
LINT = ExamplesConfig(line_length=100, target_version="py310")
RUFF_TIMEOUT = 10  # wall-clock seconds, as pytest-examples' own ruff_check allows


def _lint(source: str) -> None:
    """ruff on the block as pytest-examples' `lint_ruff` runs it (its configuration's arguments,
    the source on stdin, with the project's ruff settings, which it found from the gate's
    directory: named now, since checkers run in an empty folder), but within the bounds of
    programs that read a page with the gate's rights (tools.run_checker): pytest-examples runs
    ruff without one."""
    argv = [tools.require("ruff"), "check", "-", "--output-format=concise", *LINT.ruff_config()]
    argv += ["--config", str(REPO_ROOT / "pyproject.toml")]
    try:
        done = tools.run_checker(argv, source, RUFF_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise CheckFailure(f"ruff did not finish within {RUFF_TIMEOUT} s on this block") from None
    found = _RUFF_FINDING.findall(done.stdout)
    if done.returncode == 1 and found:
        line, said = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise CheckFailure(f"ruff: {said}{more}", int(line))
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise CheckFailure(
            f"ruff could not check this block (exit {done.returncode}: "
            f"{said[-1] if said else 'no output'})"
        )


#: A finding in ruff's concise output: `-:LINE:COLUMN: CODE message`.
_RUFF_FINDING = re.compile(r"^-:(\d+):\d+: (.+)$", re.MULTILINE)


def _check_python_minimum(source: str, ctx: Context) -> None:
    """The page states the oldest Python the example needs (releases.yaml
    examples.python_minimum), and no lower one than it really needs (python_minimum.py)."""
    examples = ctx.release.current.examples if ctx.release is not None else None
    if examples is None:
        raise CheckFailure(
            "releases.yaml states no examples.python_minimum, the oldest Python the guides' "
            "examples need; the page must say it before a Python example"
        )
    require_tool("vermin")
    session = ctx.session()
    # written by descriptor in a folder of the page's user (never where a link of the page leads)
    program = session.write_scratch(session.scratch(), "example.py", source)

    def run(interpreter: Path) -> str | None:
        done = session.process([str(interpreter), "-I", str(program)])
        said = (done.stderr or done.stdout).strip().splitlines()
        return None if done.returncode == 0 else (said[-1] if said else f"exit {done.returncode}")

    try:
        need = python_minimum.needed(source, run)
    except python_minimum.VerminError as exc:
        raise CheckFailure(str(exc)) from None
    problem = python_minimum.page_problem(examples.python_minimum, need, ctx.before)
    if problem is not None:
        raise CheckFailure(problem)


def _run_in_jail(source: str, page: str, ctx: Context, measure: bool = False) -> dict[str, Any]:
    session = ctx.session()
    # made by descriptor (never where a link of the page leads); the block runs as the page's
    # user and writes its result here, which the gate reads back beneath the sandbox only
    scratch = session.scratch()
    spec_text = json.dumps(
        {"source": source, "page": page, "repo": str(session.repo), "measure": measure}
    )
    spec = session.write_scratch(scratch, "block.json", spec_text)
    result = scratch / "result.json"
    # the gate's own runner (never the page's copy of it), from the source the gate runs on;
    # -I keeps the outer environment and the page's directory off sys.path
    runner = (
        f"import runpy, sys; sys.path.insert(0, {str(GATE_SOURCE)!r}); "
        "runpy.run_module('betrace_dist.gate.pyrun', run_name='__main__', alter_sys=True)"
    )
    argv = [sys.executable, "-I", "-c", runner, str(spec), str(result)]
    try:
        return _result(session, session.process(argv), result)
    except CommandError as exc:
        raise CheckFailure(f"the example {exc}") from None
    finally:
        session.sandbox.remove(scratch)  # links in it are removed, never followed


def _result(session: Session, done: Done, result: Path) -> dict[str, Any]:
    """What the runner reported, read back beneath the sandbox only (never through a link,
    never from a FIFO, at most safefs.READ_LIMIT bytes)."""
    try:
        found: dict[str, Any] = json.loads(session.read(str(result)))
    except RecursionError:  # the page's code can write the file: nested past json's depth
        raise CheckFailure(
            "the example's runner reported nonsense: a result nested too deeply"
        ) from None
    except (OSError, ValueError, CommandError):
        said = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise CheckFailure(
            f"the example ended its process (exit code {done.returncode}) before reporting a "
            f"result{': ' + said if said else ''}"
        ) from None
    if not isinstance(found, dict) or _nonsense(found):
        raise CheckFailure(f"the example's runner reported nonsense: {str(found)[:200]}")
    return found


#: what each outcome of the runner carries, and of which type: the page's own code can write
#: the result file (it runs as the same user), so nothing in it is taken on trust
_FIELDS: dict[str, dict[str, type]] = {
    "passed": {},
    "printed": {"report": str},
    "raised": {"type": str, "message": str},
    "uncalled": {"tests": list, "fixtures": list},
}


def _nonsense(found: dict[str, Any]) -> bool:
    """The result is not one the runner writes: an unknown outcome, a field missing or of
    another type, a list of other than strings, a line that is no whole number."""
    fields = _FIELDS.get(str(found.get("outcome")))
    if fields is None:
        return True
    for name, kind in fields.items():
        value = found.get(name)
        if not isinstance(value, kind):
            return True
        if isinstance(value, list) and not all(isinstance(item, str) for item in value):
            return True
    line = found.get("line")
    return line is not None and (not isinstance(line, int) or isinstance(line, bool))


def _print_mismatch(report: str, body: str) -> CheckFailure:
    """'#> expected' vs what the example printed, at the line of the first differing comment."""
    expected = [
        ln.strip()[1:].strip() for ln in report.splitlines() if ln.strip().startswith("-#>")
    ]
    printed = [ln.strip()[1:].strip() for ln in report.splitlines() if ln.strip().startswith("+#>")]
    line = None
    if expected:
        line = next(
            (n for n, text in enumerate(body.splitlines(), 1) if text.strip() == expected[0]), None
        )
    shown = "; ".join(printed) if printed else "nothing"
    wanted = "; ".join(expected) if expected else "no #> comment"
    return CheckFailure(
        f"printed output differs: the page says {wanted!r}, the code printed {shown!r}", line
    )
