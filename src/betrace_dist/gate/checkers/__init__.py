"""Checkers: each claims blocks by language and verifies or runs them.

A checker raises CheckFailure with the reason and, where it knows it, the line inside the block;
the gate turns that into `page.md:LINE: reason`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from ..lexer import Block

Status = Literal["run", "verified"]


class CheckFailure(Exception):
    def __init__(self, reason: str, body_line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.body_line = body_line  # 1-based line inside the block body, when known


@dataclass
class Context:
    """What a checker may use: the page, the site root and pytest's request (fixtures, tmp dirs)."""

    page: Path
    site_root: Path
    request: Any = None
    state: dict[str, Any] = field(default_factory=dict)  # shared by the blocks of one page
    release: Any = None  # the site's ReleaseData
    tab: tuple[int, int] | None = None  # the content tab of the block being checked
    #: the page-source line of a line of the block's body (1-based), for --update-outputs
    source_line: Any = None

    def session(self) -> Any:
        """The page's sandbox session, created by its first block that needs one, and placed
        in the state of the block's content tab."""
        from ..session import Session

        if "session" not in self.state:
            self.state["session"] = Session(self.release)
            self.state["session"].page = str(self.page)
        session = self.state["session"]
        session.enter(self.tab)
        return session


class Checker(Protocol):
    name: ClassVar[str]
    status: ClassVar[Status]
    languages: ClassVar[frozenset[str]]

    def check(self, block: Block, ctx: Context) -> None: ...


def require_tool(name: str, hint: str, fail: type[Exception] = CheckFailure) -> str:
    """A real tool's path. The gate's side of the missing-tool rule (tools.ToolMissing): missing,
    the block is skipped with the reason; under BETRACE_REQUIRE_TOOLS=1 (CI) `fail` is raised
    with it (a CheckFailure, or the CommandError of a command model)."""
    import pytest

    from ... import tools

    try:
        return tools.require(name, hint)
    except tools.ToolMissing as exc:
        if exc.fatal:
            raise fail(str(exc)) from None
        pytest.skip(str(exc))


def save_titled(block: Block, ctx: Context) -> None:
    """A block titled with a file name is a file the reader saves: later commands use it."""
    title = (block.title or "").strip()
    if title and " " not in title and "." in title.rsplit("/", 1)[-1]:
        from ..session import CommandError

        try:
            ctx.session().save(title, block.body)
        except CommandError as exc:
            raise CheckFailure(f"title '{title}': {exc}") from None


def registry() -> list[Checker]:
    from .json_ import JsonChecker
    from .markdown import MarkdownChecker
    from .nix import NixChecker
    from .python import PythonChecker
    from .rules import RuleChecker
    from .shell import ShellChecker
    from .yaml_ import YamlChecker

    return [
        RuleChecker(),
        YamlChecker(),
        JsonChecker(),
        ShellChecker(),
        PythonChecker(),
        MarkdownChecker(),
        NixChecker(),
    ]


def claim(block: Block, checkers: list[Checker]) -> Checker | None:
    for checker in checkers:
        claims = getattr(checker, "claims", None)
        if block.language in checker.languages or (claims is not None and claims(block)):
            return checker
    return None
