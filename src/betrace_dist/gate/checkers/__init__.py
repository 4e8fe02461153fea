"""Checkers: each claims blocks by language and verifies or runs them.

A checker raises CheckFailure with the reason and, where it knows it, the line inside the block;
the gate turns that into `page.md:LINE: reason`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from .. import missing
from ..failure import CheckFailure
from ..lexer import Block
from ..live import LiveTier
from ..session import CommandError, Session
from ..update import Updates

__all__ = ["CheckFailure", "Checker", "Context", "PageResource", "Status", "claim", "require_tool"]

Status = Literal["run", "verified"]


class PageResource:
    """What a checker keeps in a page's shared state (Context.state) and must release when the
    page ends (threads, processes): the gate closes each one with the page's sandbox."""

    def close(self) -> None:
        raise NotImplementedError


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
    #: the page's rendered text before the block (what a reader has read when they reach it)
    before: str = ""
    #: the run's live tier (off unless the run has one: gate/run.py)
    live: LiveTier = field(default_factory=LiveTier)
    #: the run's queue of output rewrites, under --update-outputs (else None)
    updates: Updates | None = None
    #: the page's blocks this block's checker runs (this one among them), in page order
    siblings: tuple[Block, ...] = ()

    def session(self) -> Any:
        """The page's sandbox session, created by its first block that needs one, and placed
        in the state of the block's content tab."""
        if "session" not in self.state:
            self.state["session"] = Session(self.release, live_tier=self.live)
            self.state["session"].page = str(self.page)
        session = self.state["session"]
        if reason := session.time_up():  # the gate's own work for the page counts too
            raise CheckFailure(reason)
        try:
            session.enter(self.tab)
        except (OSError, CommandError) as exc:  # a sandbox the gate will not hand back
            reason = f"content tabs: the page's state cannot be restored: {exc}"
            raise CheckFailure(reason) from None
        return session


class Checker(Protocol):
    name: ClassVar[str]
    status: ClassVar[Status]
    languages: ClassVar[frozenset[str]]

    def check(self, block: Block, ctx: Context) -> None: ...


def require_tool(name: str, fail: type[Exception] = CheckFailure) -> str:
    """A real tool's path, by the gate's missing-tool rule (missing.py): a checker's failure is
    a CheckFailure unless `fail` says otherwise."""
    return missing.require(name, fail)


def save_titled(block: Block, ctx: Context) -> None:
    """A block titled with a file name is a file the reader saves: later commands use it."""
    title = (block.title or "").strip()
    if title and " " not in title and "." in title.rsplit("/", 1)[-1]:
        try:
            ctx.session().save(title, block.body)
        except CommandError as exc:
            raise CheckFailure(f"title '{title}': {exc}") from None


def claim(block: Block, checkers: list[Checker]) -> Checker | None:
    for checker in checkers:
        claims = getattr(checker, "claims", None)
        if block.language in checker.languages or (claims is not None and claims(block)):
            return checker
    return None
