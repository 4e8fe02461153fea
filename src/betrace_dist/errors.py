"""Problems that point at a place: a file, a line and, where it helps, a field path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One thing wrong, at one place."""

    file: Path | str
    line: int | None
    message: str
    field: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        what = f"{self.field}: {self.message}" if self.field else self.message
        return f"{where}: {what}"


class ProblemsError(Exception):
    """Raised with every problem found, so one run shows them all."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class LineError(Exception):
    """Something wrong at one line of the text being read (a page, a block, a script):
    `line` counts from 1 in that text; the reader of the error maps it to the page's line."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason
