"""Python blocks, through pytest-examples: linted with ruff, run, and `#>` printed output checked.

pytest-examples raises pytest outcome exceptions whose tracebacks it rewrites; the gate catches
them and reports a plain `page.md:LINE` failure, so a failing example is a failure, never an
internal error of pytest.
"""

from __future__ import annotations

from typing import ClassVar

import pytest
from pytest_examples import CodeExample, EvalExample

from ..lexer import Block
from . import CheckFailure, Context, Status


class PythonChecker:
    name: ClassVar[str] = "python"
    status: ClassVar[Status] = "run"
    languages: ClassVar[frozenset[str]] = frozenset({"python", "py", "python3"})

    def check(self, block: Block, ctx: Context) -> None:
        if ctx.request is None:
            raise CheckFailure("Python examples run only under pytest (pytest docs/)")
        example = CodeExample.create(block.body, path=ctx.page, start_line=0)
        scratch = ctx.request.getfixturevalue("tmp_path")
        evaluator = EvalExample(tmp_path=scratch, pytest_request=ctx.request)
        evaluator.set_config(line_length=100, target_version="py310")
        try:
            evaluator.lint_ruff(example)
        except pytest.fail.Exception as exc:
            raise CheckFailure(f"ruff: {_first_line(str(exc))}", _ruff_line(str(exc))) from None
        try:
            evaluator.run_print_check(example)
        except pytest.fail.Exception as exc:
            raise _print_mismatch(str(exc), block.body) from None
        except Exception as exc:
            failure = CheckFailure(
                f"the example raised {type(exc).__name__}: {exc}",
                _example_line(exc, {f"{example.module_name}.py", str(example.path)}),
            )
        else:
            return
        # Raised outside the handler, so the example's traceback is not chained to it: on
        # Python 3.11 pytest-examples' rewritten frames make traceback formatting itself crash.
        raise failure


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


def _first_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return " ".join(lines[:3])[:400] if lines else text


def _ruff_line(text: str) -> int | None:
    # ruff reports "<path>:LINE:COL: CODE message"
    for token in text.split():
        parts = token.split(":")
        if len(parts) >= 3 and parts[1].isdigit():
            return int(parts[1])
    return None


def _example_line(exc: BaseException, filenames: set[str]) -> int | None:
    """Line of the example where it raised, read from raw traceback objects.

    traceback.extract_tb is avoided on purpose: it computes column positions, which fails with
    StopIteration on the frames pytest-examples produces (Python 3.11).
    """
    line = None
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name in filenames or any(name.endswith("/" + f) for f in filenames):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
