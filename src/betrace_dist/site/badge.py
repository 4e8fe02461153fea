"""The verification summary shown under each page title, counted from the gate's static ledger.

The numbers are the gate's own: the page is read by `Gate.analyse`, which renders it through the
site's macros exactly as the gate does, so the note can never count blocks the gate does not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..gate import live
from ..gate.collect import Gate
from ..gate.ledger import STATUSES, Entry

#: Always named in the note, even at zero, so readers can compare pages at a glance.
SHOWN = ("run", "modelled", "verified", "skipped")
#: What each ledger status means, in the words of the note: what was done, no more.
LABELS = {
    "run": "ran for real",
    "modelled": "checked against a model",
    "verified": "checked statically",
    "skipped": "skipped",
}


@dataclass(frozen=True)
class PageSummary:
    """How many examples of one page the gate runs, verifies and skips, for one release."""

    version: str
    counts: tuple[tuple[str, int], ...]  # (status, number) in ledger order

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)

    def count(self, status: str) -> int:
        return dict(self.counts).get(status, 0)

    @property
    def counts_text(self) -> str:
        """`1 ran for real, 8 checked against a model, 3 checked statically, 2 skipped` (other
        statuses only when the page has some)."""
        return ", ".join(f"{n} {LABELS.get(status, status)}" for status, n in self.counts)

    @property
    def claim(self) -> str:
        return f"Examples on this page, for BeTrace {self.version}"

    @property
    def text(self) -> str:
        return f"{self.claim}: {self.counts_text}"


def summarise(entries: Iterable[Entry], version: str) -> PageSummary | None:
    """The summary of one page's ledger entries; None for a page without code blocks."""
    counted = Counter(entry.status for entry in entries)
    if not counted:
        return None
    # what was done, strongest first (ran, modelled, checked statically, skipped), then faults
    order = [*SHOWN, *(s for s in STATUSES if s not in SHOWN)]
    counts = tuple(
        (status, counted.get(status, 0))
        for status in order
        if status in SHOWN or counted.get(status, 0)
    )
    return PageSummary(version, counts)


class Verifier:
    """Page summaries for one site; its config and release data are loaded once, on first use."""

    def __init__(self, config_file: Path) -> None:
        self.config_file = Path(config_file)

    @cached_property
    def gate(self) -> Gate:
        # A curl block runs for real only on the live tier: the note counts it as the gate does
        # by default (`pytest docs/`, live tier on where the backend can be had), not as a
        # process that never set the tier (a site build) would.
        return Gate(self.config_file, live_tier=live.configure(None))

    @cached_property
    def version(self) -> str:
        """The release the pages are rendered for (the macros' `release.version`)."""
        return str(self.gate.site.macros.variables["release"].version)

    def entries(self, page: Path, html: str | None = None) -> list[Entry]:
        """The gate's ledger of a page; `html`: the page as the build converted it."""
        result = self.gate.analyse(page, html=html, problems=False)
        entries = [entry for _, entry, _ in result.items]
        if result.error:
            line, reason = result.error
            name = self.gate.page_name(page)
            entries.append(Entry(name, line, "-", "-", "error", reason))
        return entries

    def summary(self, page: Path, html: str | None = None) -> PageSummary | None:
        """The note of a page; `html`: the page as the build converted it (read, not redone)."""
        return summarise(self.entries(page, html), self.version)

    def section_summary(self, page: Path, heading: str | None) -> PageSummary | None:
        """The summary of one section of a page (its heading's text), or of the whole page."""
        entries = self.entries(page)
        if heading is not None:
            first, last = section_lines(page.read_text(encoding="utf-8"), heading, page)
            entries = [e for e in entries if first <= e.line <= last]
        return summarise(entries, self.version)


def section_lines(source: str, heading: str, page: Path) -> tuple[int, int]:
    """First and last source line (1-based) of the section under a Markdown heading."""
    lines = source.splitlines()
    for index, line in enumerate(lines):
        level = len(line) - len(line.lstrip("#"))
        if level and line[level:].strip() == heading:
            for end in range(index + 1, len(lines)):
                other = len(lines[end]) - len(lines[end].lstrip("#"))
                if other and other <= level and lines[end][other : other + 1] == " ":
                    return index + 1, end
            return index + 1, len(lines)
    raise ValueError(f"{page}: no heading '{heading}'")
