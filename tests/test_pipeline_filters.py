"""A pipeline's filters (grep, head, jq, ...) run for real on what its modelled first command
printed: `tool | grep -q absent` fails as it would for a reader, and the block's output is the
filtered text. A model that cannot say what it printed leaves the output unknown."""

from __future__ import annotations

import pytest

from betrace_dist.gate.checkers.shell import ShellChecker
from betrace_dist.gate.commands import models
from betrace_dist.gate.isolation import Done
from betrace_dist.gate.lexer import blocks
from betrace_dist.gate.session import CommandError, Session
from betrace_dist.gate.shellwords import split

#: test doubles for a tool's model: one that says what it printed, one that cannot say
DOUBLES = {"says": lambda invocation: "v1.2.3\nsecond line\n", "unsure": lambda invocation: None}


pytestmark = pytest.mark.gate_session(timeout=10)


def test_a_filter_that_fails_fails_the_pipeline_at_its_line(session: Session) -> None:
    with pytest.raises(CommandError, match=r"pipeline fails: its filters \(grep\)") as info:
        session.run(split("says\nsays | grep -q not-in-output\n"), DOUBLES)
    assert info.value.line == 2  # type: ignore[attr-defined]


def test_the_filtered_text_is_what_the_block_printed(session: Session) -> None:
    session.run(split("says | grep second\n"), DOUBLES)
    session.run(split("says | head -n 1 | wc -l\n"), DOUBLES)
    outputs = [o.stdout for o in session.printed if isinstance(o, Done)]
    assert outputs == ["second line\n", "1\n"]


def test_a_model_that_cannot_say_leaves_the_output_unknown(session: Session) -> None:
    session.run(split("unsure | grep -q anything\n"), DOUBLES)
    assert session.printed == [None]


def test_helm_version_cannot_say_so_its_block_is_modelled_not_run(session: Session) -> None:
    """Helm's model does not say what `helm version` prints: the pipeline is not filtered, and
    the block's ledger status is "modelled", never "run"."""
    script = "helm version --short | grep -q not-in-output\n"
    session.run(split(script), models())
    assert session.printed == [None]
    block = blocks(f"# T\n\n```bash\n{script}```\n")[0]
    plan = ShellChecker().plan(block)
    assert plan is not None and plan[0] == "modelled"
