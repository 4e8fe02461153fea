"""One bound over all of the gate's own work on a page: reading a page and checking a block each
get a budget of the gate's processor time (limits.ProcessorBudget), so a slow path in the gate
that nobody has found yet fails the page with its name instead of holding a worker until CI's
limit. The slow path is made on purpose here (a step of the gate replaced by a loop that never
ends): the tests wait for an event (the budget used up), never race two clocks."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from betrace_dist.gate import collect, display
from betrace_dist.gate.collect import Gate, GateFailure
from betrace_dist.site import limits

from .conftest import copy_site


def _spin(*_: Any, **__: Any) -> list[Any]:
    """A step that computes far longer than any budget here (without a budget the tests fail
    after 20 s of processor time rather than hang)."""
    end = time.thread_time() + 20
    while time.thread_time() < end:
        pass
    return []


def test_a_loop_that_never_ends_is_stopped_by_the_budget() -> None:
    with pytest.raises(limits.OutOfProcessorTime), limits.ProcessorBudget(0.2) as budget:
        _spin()
    assert budget.fired and budget.used() >= 0.2


def test_waiting_costs_no_budget() -> None:
    """A block that waits (as the gate waits on a page's commands) is not stopped: the clock is
    the thread's processor time, which waiting does not advance."""
    with limits.ProcessorBudget(0.05) as budget:
        time.sleep(0.5)
    assert not budget.fired and budget.used() < 0.05


def test_a_budget_left_unused_raises_nothing_after_its_block() -> None:
    with limits.ProcessorBudget(0.2):
        pass
    time.sleep(0.1)  # (a watcher still running would fire into what follows)
    total = sum(range(2_000_000))  # some work after the block: nothing is raised into it
    assert total > 0


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return copy_site(tmp_path, ["index.md"])


def test_reading_a_page_that_never_ends_fails_the_page(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(site / "mkdocs.yml")
    gate.site.config  # noqa: B018 - the site is loaded first, as the run's `prepare` does
    monkeypatch.setattr(collect, "ANALYSIS_SECONDS", 0.3)
    monkeypatch.setattr(display, "stray_headings", _spin)  # a slow path, made on purpose
    result = gate.analyse(site / "docs" / "index.md")
    assert result.error is not None, "a page whose reading never ends was not stopped"
    line, reason = result.error
    assert line == 1
    assert "reading the page used more than 0.3 s of the gate's processor time" in reason


def test_the_real_page_is_read_within_the_budget(site: Path) -> None:
    result = Gate(site / "mkdocs.yml").analyse(site / "docs" / "index.md")
    assert result.error is None and result.items


def _failure(site: Path, name: str, check: object) -> tuple[str, int]:
    """What the gate says of the first block of the site's index checked by `check`, and
    the block's line."""
    gate = Gate(site / "mkdocs.yml")
    page = site / "docs" / "index.md"
    result = gate.analyse(page)
    assert result.rendered is not None
    block, entry, _ = result.items[0]
    checker = SimpleNamespace(name=name, check=check)
    evaluate = gate._evaluator(page, result.rendered, block, entry, checker)  # type: ignore[arg-type]
    example = SimpleNamespace(namespace={}, path=str(page), line=entry.line, column=1)
    with pytest.raises(GateFailure) as failed:
        evaluate(example)  # type: ignore[arg-type]
    return str(failed.value), entry.line


def test_checking_a_block_that_never_ends_fails_the_block(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collect, "BLOCK_SECONDS", 0.3)
    said, line = _failure(site, "spinning", _spin)
    assert said == (
        f"docs/index.md:{line}: spinning block (yaml): checking the block used more than "
        "0.3 s of the gate's processor time and was stopped (a bound against pages that hold the "
        "gate: what on the page makes it so slow?)"
    )


def test_an_error_of_the_gate_itself_fails_its_block_not_the_run(site: Path) -> None:
    """A checker that breaks (a RecursionError on a path of 1,100 folders did) failed nothing
    with a line: it reached Sybil's traceback filter, which broke too, and pytest ended the
    whole run with INTERNALERROR. The block fails now, naming its line and the error."""

    def breaking(*_: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    said, line = _failure(site, "breaking", breaking)
    assert said == (
        f"docs/index.md:{line}: breaking block (yaml): the gate could not check it "
        "(RecursionError: maximum recursion depth exceeded)"
    )


def test_a_budget_swallowed_once_fires_again() -> None:
    """Library code with a bare `except:` (ruamel.yaml's CommentedMap.get has one) can swallow
    the budget's exception: it fires again after each further REFIRE seconds of computing."""
    swallowed = 0

    def swallowing() -> None:
        nonlocal swallowed
        end = time.thread_time() + 20
        while time.thread_time() < end:
            try:
                while time.thread_time() < end:
                    pass
            except limits.OutOfProcessorTime:  # as a bare `except:` would
                swallowed += 1
                if swallowed == 3:
                    raise

    with pytest.raises(limits.OutOfProcessorTime), limits.ProcessorBudget(0.2):
        swallowing()
    assert swallowed == 3


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # the attack's pages: each stopped the whole run's collection with a RecursionError
        (
            "---\ntitle: x\na: " + "[" * 3000 + "]" * 3000 + "\n---\n\n# Deep\n\nText.\n",
            "the front matter nests too deeply",
        ),
        (
            "# Deep\n\n"
            + "".join("    " * i + "!!! note\n\n" for i in range(400))
            + "    " * 400
            + "text\n",
            "too deeply for Python-Markdown",
        ),
    ],
    ids=["front-matter", "admonitions"],
)
def test_a_page_nested_too_deeply_fails_the_page_not_the_run(
    site: Path, text: str, said: str
) -> None:
    page = site / "docs" / "index.md"
    page.write_text(text, encoding="utf-8")
    result = Gate(site / "mkdocs.yml").analyse(page)
    assert result.error is not None and said in result.error[1], result.error
