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

from .conftest import require_tool, run

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


LOGIN = (
    "kubectl create namespace work\n"
    "kubectl create secret generic login -n work --from-literal=password=hunter2\n"
)


@pytest.mark.gate_session(tools=("kubectl",), timeout=30)
@pytest.mark.parametrize(
    "read",
    [
        "-o json | jq -r '.data.password' | base64 --decode",
        "-o jsonpath='{.data.password}' | base64 --decode",
    ],
)
def test_a_secret_read_through_filters_gives_its_value(session: Session, read: str) -> None:
    """kubectl get of one Secret prints it as the API server answers (data in base64), so the
    pipeline's filters run for real on it: before, its output was unknown and they never ran."""
    require_tool("jq")
    run(session, LOGIN + f"kubectl get secret login -n work {read}\n")
    assert isinstance(session.printed[-1], Done)
    assert session.printed[-1].stdout == "hunter2"


@pytest.mark.gate_session(tools=("kubectl",), timeout=30)
@pytest.mark.parametrize(
    ("read", "said"),
    [
        ("-o json | jq -e '.data.nosuchkey'", r"filters \(jq\) exited with code 1"),
        ("-o jsonpath='{.data.password}' | base64 --decode --bogus", r"filters \(base64\)"),
        ("-o jsonpath='{.data.pasword}' | base64 --decode", "has no key 'pasword'"),
    ],
)
def test_a_wrong_secret_read_fails(session: Session, read: str, said: str) -> None:
    require_tool("jq")
    with pytest.raises(CommandError, match=said):
        run(session, LOGIN + f"kubectl get secret login -n work {read}\n")
