"""The oldest Python a page's Python example needs, measured two ways.

vermin (PyPI) reads the code and names the oldest Python that has every feature it uses; it
misses what fails only when the code runs (a `str | None` annotation is evaluated when the
function is defined, a TypeError before 3.10, which vermin reports as 3.9). Running the example
with every older Python installed on the machine (pyenv's, `ls ~/.pyenv/versions`) finds those.
The example needs the newer of the two answers.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.specifiers import SpecifierSet

from .. import tools

Minor = tuple[int, int]

#: Wall-clock seconds vermin may take on one example.
VERMIN_TIMEOUT = 60

#: Where pyenv keeps its interpreters (each `<version>/bin/python`).
PYENV_VERSIONS = Path.home() / ".pyenv" / "versions"


def shown(version: Minor) -> str:
    return f"{version[0]}.{version[1]}"


def parse(text: str) -> Minor:
    major, _, minor = text.partition(".")
    return int(major), int(minor.split(".")[0] or 0)


@cache
def older_pythons() -> tuple[tuple[Minor, Path], ...]:
    """Python 3 interpreters older than the one the gate runs on, oldest first: one per minor
    version, as `<prefix>/bin/python` under pyenv's folder."""
    found: dict[Minor, Path] = {}
    for prefix in sorted(PYENV_VERSIONS.glob("3.*")) if PYENV_VERSIONS.is_dir() else ():
        match = re.fullmatch(r"(\d+)\.(\d+)\.\d+", prefix.name)
        program = prefix / "bin" / "python"
        if match and program.is_file():
            version = (int(match[1]), int(match[2]))
            if version < sys.version_info[:2]:
                found[version] = program
    return tuple(sorted(found.items()))


def vermin_minimum(source: str) -> Minor | None:
    """vermin's oldest Python 3 for the source (None when vermin is not installed)."""
    program = tools.find("vermin")  # the virtualenv's first, then PATH
    if program is None:
        return None
    with tempfile.TemporaryDirectory(prefix="vermin-") as folder:  # vermin reads files only
        example = Path(folder) / "example.py"
        example.write_text(source, encoding="utf-8")
        argv = [program, "--no-tips", "--no-parse-comments", "--eval-annotations"]
        argv += ["--format", "parsable", str(example)]
        try:  # it reads the page's code with the gate's rights: within the checkers' bounds
            done = tools.run_checker(argv, None, VERMIN_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise VerminError(
                f"vermin did not finish within {VERMIN_TIMEOUT} s on the example, so the Python "
                "it needs is unknown"
            ) from None
    last = (done.stdout.strip().splitlines() or [""])[-1]
    # the summary line: ":::<python 2 minimum>:<python 3 minimum>:"; `~3` when the code uses
    # nothing that needs a newer Python 3 than 3.0
    match = re.search(r":~?(\d+(?:\.\d+)?):$", last)
    if done.returncode != 0 or match is None:  # a crash is no answer, never "any Python"
        said = (done.stderr or done.stdout).strip().splitlines()
        raise VerminError(
            f"vermin could not read the example (exit {done.returncode}: "
            f"{said[-1] if said else 'no output'}), so the Python it needs is unknown"
        )
    return parse(match[1])


class VerminError(Exception):
    """vermin ran but gave no minimum (it crashed on the example)."""


@dataclass(frozen=True)
class Need:
    version: Minor
    why: str


#: The last line of a run that stopped at an import: `ModuleNotFoundError: No module named 'x'`
_NO_MODULE = re.compile(r"ModuleNotFoundError: No module named '([A-Za-z0-9_]+)")


def missing_package(error: str) -> str | None:
    """The package an older Python's run lacked, when it stopped at importing one that is not
    part of Python (an example's own dependency, such as the OpenTelemetry SDK, installed for
    the gate's Python only). A missing standard module (the gate's Python has it) is a
    version's failure."""
    match = _NO_MODULE.search(error)
    if match is None or match[1] in sys.stdlib_module_names:
        return None
    return match[1]


def package_refuses(module: str, version: Minor) -> str | None:
    """Why the package that gives `module` cannot be installed for Python `version`, from the
    `Requires-Python` of its distributions as installed for the gate's Python (None: it can,
    or nothing says). A run stopped at such an import answers by that floor, not by skipping:
    otherwise an example of a package that needs 3.11 passed a page stating 3.9."""
    for dist in sorted(set(metadata.packages_distributions().get(module) or ())):
        wanted = metadata.metadata(dist)["Requires-Python"]
        if wanted and f"{version[0]}.{version[1]}.0" not in SpecifierSet(wanted):
            return f"{dist} requires Python {wanted}"
    return None


def needed(source: str, run: Callable[[Path], str | None]) -> Need | None:
    """The oldest Python the source needs, and why; `run` runs it with one interpreter and
    returns None when it passed, else the error's last line. A run that stopped at a package
    the interpreter lacks (missing_package) fails that version when the package requires a
    newer Python (package_refuses); otherwise it is no answer."""
    found: Need | None = None
    by_vermin = vermin_minimum(source)
    if by_vermin is not None:
        found = Need(by_vermin, f"vermin {shown(by_vermin)}")
    for version, program in reversed(older_pythons()):  # newest first: the first failure counts
        if found is not None and version < found.version:
            break
        error = run(program)
        module = missing_package(error) if error is not None else None
        if module is not None:
            error = package_refuses(module, version)
            if error is None:
                continue  # the package would install there: this run says nothing
        if error is not None:
            after = (version[0], version[1] + 1)
            return Need(after, f"Python {shown(version)} failed it: {error}")
    return found


_STATED = re.compile(r"\bPython (\d+\.\d+)")


def page_problem(stated: str, need: Need | None, before: str) -> str | None:
    """What is wrong with the Python the page states before the example, or None. `stated` is
    the release data's minimum, the one the guides write (with its macro)."""
    mentions = _STATED.findall(before)  # what the reader has read when they reach the example
    if not mentions:
        return (
            f"the text before the example does not state the Python it needs: write "
            f'"Python {{{{ release.examples.python_minimum }}}} or later" ({stated})'
        )
    lower = [m for m in mentions if need is not None and parse(m) < need.version]
    if need is not None and lower:
        return (
            f"the page says Python {lower[0]}, but the example needs Python "
            f"{shown(need.version)} ({need.why}); raise examples.python_minimum in releases.yaml"
        )
    return None
