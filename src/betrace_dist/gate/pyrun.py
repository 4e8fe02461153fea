"""Run one Python block of a page with pytest-examples, as a program inside the page's jail.

The gate never runs a page's Python in its own process: a block could read the gate's
environment, patch its checkers or end the run (`os._exit(0)`). The gate starts this module in
the page's jail (`python -I -m betrace_dist.gate.pyrun SPEC RESULT`); it runs the block with
pytest-examples' print checking and writes what happened to RESULT as JSON:

    {"outcome": "passed"}
    {"outcome": "printed", "report": "<pytest-examples' diff of the #> comments>"}
    {"outcome": "raised", "type": "KeyError", "message": "...", "line": 3}

A block that defines tests of the project (`def test_...(repo_root, release_data)`, as the
contribute guide shows a target's first test) has them called after it runs, with the project's
own fixtures of tests/conftest.py made for the page's copy of the project (SPEC's "repo"): the
copy's root, and its release data. A test taking any other argument is not called, and said so.

A block titled as the send-traces page's exporter (probes/exporter.py TITLE) is then measured
(SPEC's "measure"): what the exporter it defines posts, and when, kept by urllib's opener in
this process (no socket), reported as "measured" beside "passed"; the gate holds it to the
page's claims.

A block that ends the process before the result is written leaves no RESULT: the gate reports
that as a failure, never as a pass. A hostile block can still forge its own RESULT (it runs in
this process); the walls keep everything else out of its reach (see the security page).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from betrace_dist.probes import exporter
from betrace_dist.release import load_release_data


def _line_in(exc: BaseException, filenames: set[str]) -> int | None:
    """Line of the block where it raised, read from raw traceback objects (the example's frames
    are rewritten by pytest-examples; traceback.extract_tb fails on them under Python 3.11)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name in filenames or any(name.endswith("/" + f) for f in filenames):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


#: the fixtures a page's test may take: the project's (tests/conftest.py) and pytest's tmp_path
FIXTURES = ("repo_root", "release_data", "tmp_path")


def _fixture(name: str, repo: Path, scratch: Path) -> Any:
    if name == "repo_root":
        return repo
    if name == "tmp_path":
        return Path(tempfile.mkdtemp(prefix="tmp_path-", dir=scratch))
    return _release_data(repo / "releases.yaml")


@functools.cache  # one block's tests share the page's release data, as a session fixture does
def _release_data(path: Path) -> Any:
    return load_release_data(path)


def _tests(module: dict[str, Any]) -> list[tuple[str, Any]]:
    """The tests a block defines, as pytest collects them: `test_` functions, and the `test_`
    methods of `Test` classes (an instance each)."""
    found = []
    for name, value in list(module.items()):
        if name.startswith("test_") and inspect.isfunction(value):
            found.append((name, value))
        elif name.startswith("Test") and inspect.isclass(value):
            found += [
                (f"{name}.{attr}", getattr(value(), attr))
                for attr in dir(value)
                if attr.startswith("test_") and inspect.isfunction(getattr(value, attr))
            ]
    return found


def _parameters(test: Any) -> list[dict[str, Any]]:
    """The argument sets of a test's `@pytest.mark.parametrize` marks, every combination."""
    sets: list[dict[str, Any]] = [{}]
    for mark in getattr(test, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        names, values = mark.args[0], mark.args[1]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        rows = [getattr(v, "values", v) for v in values]
        rows = [row if len(names) > 1 else (row,) for row in rows]
        sets = [base | dict(zip(names, row, strict=True)) for base in sets for row in rows]
    return sets


def _call_tests(module: dict[str, Any], repo: Path, scratch: Path) -> list[tuple[str, int | None]]:
    """Call each test the block defined (a coroutine is run to its end), with each set of its
    parameters and the fixtures it names; the names and lines of those it could not call (an
    argument that is neither a parameter nor a fixture the gate has)."""
    uncalled: list[tuple[str, int | None]] = []
    for name, test in _tests(module):
        wanted = list(inspect.signature(test).parameters)
        for given in _parameters(test):
            missing = [w for w in wanted if w not in given and w not in FIXTURES]
            if missing:
                uncalled.append((name, test.__code__.co_firstlineno))
                break
            args = given | {w: _fixture(w, repo, scratch) for w in wanted if w not in given}
            outcome = test(**args)
            if inspect.iscoroutine(outcome):
                asyncio.run(outcome)
    return uncalled


def run(
    source: str, page: str, scratch: Path, repo: Path, update: bool = False, measure: bool = False
) -> dict[str, Any]:
    import pytest
    from pytest_examples import CodeExample
    from pytest_examples.config import ExamplesConfig
    from pytest_examples.run_code import run_code

    example = CodeExample.create(source, path=Path(page), start_line=0)
    python_file = scratch / f"{example.module_name}.py"
    python_file.write_text(example.source, encoding="utf-8")
    config = ExamplesConfig(line_length=100, target_version="py310")
    try:
        printed, module = run_code(
            example=example,
            python_file=python_file,
            loader=None,
            config=config,
            enable_print_mock=True,
            print_callback=None,
            include_print=None,
            module_globals=None,
            call=None,
        )
        if update:
            return {"outcome": "passed", "updated": printed.updated_print_statements(example)}
        printed.check_print_statements(example)
        uncalled = _call_tests(module, repo, scratch)
        if uncalled:
            names = [name for name, _ in uncalled]
            line = uncalled[0][1]
            return {"outcome": "uncalled", "tests": names, "fixtures": list(FIXTURES), "line": line}
        if measure:  # the send-traces page's exporter: what it posts, kept without a socket
            return {"outcome": "passed", "measured": exporter.behaviour(module, in_process=True)}
    except pytest.fail.Exception as exc:
        return {"outcome": "printed", "report": str(exc)}
    except BaseException as exc:
        line = _line_in(exc, {str(python_file), python_file.name, str(example.path)})
        return {"outcome": "raised", "type": type(exc).__name__, "message": str(exc), "line": line}
    return {"outcome": "passed"}


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    result_file = Path(argv[1])
    scratch = result_file.parent
    given = (spec["source"], spec["page"], scratch, Path(spec["repo"]))
    result = run(*given, bool(spec.get("update")), bool(spec.get("measure")))
    result_file.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
