"""A Compose project is its name, as Compose resolves it (`-p`, COMPOSE_PROJECT_NAME, the file's
`name`, else the folder): the model keyed projects by folder, so the same stack started from a
copy was taken for a second one, and `-p` was never given to Compose."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from betrace_dist.gate.commands import models
from betrace_dist.gate.session import CommandError, Session
from betrace_dist.gate.shellwords import split

from .conftest import require_tool

ENV = "printf 'BETRACE_SIGNATURE_KEY=k\\nGRAFANA_ADMIN_PASSWORD=p\\n' > .env\n"
HEALTH = "curl -fsS http://localhost:3000/api/health\n"


@pytest.fixture
def session() -> Iterator[Session]:
    require_tool("docker-compose")
    s = Session(timeout=120)
    yield s
    s.close()


def run(session: Session, script: str) -> None:
    session.run(split(script), models())


def test_the_stack_from_a_copy_is_the_same_project(session: Session) -> None:
    """The stack's file names its project (`name: betrace`): started again from a copy of the
    folder, Compose updates that project's containers, which publish the same ports."""
    run(session, "cp -r docker copy\ncd docker\n" + ENV + "docker compose up --build --wait\n")
    run(session, "cd ../copy\n" + ENV + "docker compose up --build --wait\n" + HEALTH)


def test_another_project_name_is_another_project(session: Session) -> None:
    """`-p other` names another project: its `down` leaves the stack running, and its `up`
    cannot publish the ports the stack holds."""
    run(session, "cd docker\n" + ENV + "docker compose up --build --wait\n")
    run(session, "docker compose -p other down\n" + HEALTH)
    with pytest.raises(CommandError, match=r"port [0-9]+ is published already"):
        run(session, "docker compose -p other up --build --wait\n")
    run(session, "docker compose down\n")
    with pytest.raises(CommandError, match="nothing answers on localhost:3000"):
        run(session, HEALTH)
