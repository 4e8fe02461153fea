"""Every `docker compose` subcommand that names services has them checked, by the shape of its
arguments: `config`, `build`, `down` and `push` take services as `up` does, `port` a SERVICE
and a PRIVATE_PORT, `cp` a SERVICE:PATH on one side. The model let these through with any
name, where the real Compose fails (its messages, from Compose v5.6.1 run here and
pkg/compose/cp.go and containers.go of docker/compose v5.5.0)."""

from __future__ import annotations

import pytest

from betrace_dist.gate.session import CommandError, Session

from .conftest import run

pytestmark = pytest.mark.gate_session(tools=("docker-compose",))

#: a project of two services, one publishing a port
PROJECT = (
    "services:\n"
    "  web:\n    image: nginx:1.27\n    ports: ['127.0.0.1:18080:80']\n"
    "  grafana:\n    image: nginx:1.27\n"
)


def _project(session: Session, start: bool = True) -> None:
    run(session, f"mkdir -p own\ncd own\ncat > compose.yaml <<'EOF'\n{PROJECT}EOF\n")
    if start:
        run(session, "docker compose up -d\n")


@pytest.mark.parametrize(
    "command",
    [
        "docker compose config nosuchservice",
        "docker compose config --format json web nosuchservice",
        "docker compose build nosuchservice",
        "docker compose build --build-arg X=1 nosuchservice",
        "docker compose down nosuchservice",
        "docker compose push nosuchservice",
    ],
)
def test_a_service_the_project_lacks_is_refused(session: Session, command: str) -> None:
    """Compose resolves the project and refuses the name before anything else (exit 1)."""
    _project(session)
    with pytest.raises(CommandError, match="no such service: nosuchservice"):
        run(session, command + "\n")


def test_port_names_a_service_then_a_port(session: Session) -> None:
    """`port SERVICE PRIVATE_PORT`: Compose looks the service's container up, so a service the
    project lacks is one that is not running (getSpecifiedContainer)."""
    _project(session)
    run(session, "docker compose port web 80\ndocker compose port --protocol tcp web 80\n")
    with pytest.raises(CommandError, match='service "nosuchservice" is not running'):
        run(session, "docker compose port nosuchservice 80\n")
    with pytest.raises(CommandError, match='service "nosuchservice" is not running'):
        run(session, "docker compose port --index 1 nosuchservice 80\n")


@pytest.mark.parametrize(
    "command",
    [
        "docker compose cp backendd:/etc/hostname ./x",
        "docker compose cp ./x backendd:/tmp/x",
        "docker compose cp --index 1 backendd:/etc/hostname -",
    ],
)
def test_cp_names_a_service_on_either_side(session: Session, command: str) -> None:
    """`cp SERVICE:SRC DEST` or `cp SRC SERVICE:DEST`: no container is found for a service
    the project lacks (listContainersTargetedForCopy, pkg/compose/cp.go)."""
    _project(session)
    run(session, "touch x\n")
    with pytest.raises(CommandError, match='no container found for service "backendd"'):
        run(session, command + "\n")


def test_cp_reads_local_paths_as_compose_does(session: Session) -> None:
    """An absolute path, or one starting with `.`, is a local path even with a colon in it
    (splitCpArg); one service on each side, or none, is refused as Compose refuses it."""
    _project(session)
    run(session, "touch x\n")
    run(session, "docker compose cp web:/etc/hostname ./x\n")
    run(session, "docker compose cp ./x:y web:/tmp/x\ndocker compose cp /tmp/a:b web:/tmp/x\n")
    with pytest.raises(CommandError, match="copying between services is not supported"):
        run(session, "docker compose cp web:/etc/hostname grafana:/tmp/x\n")
    with pytest.raises(CommandError, match="unknown copy direction"):
        run(session, "docker compose cp ./x ./y\n")


def test_the_services_a_command_names_are_still_taken(session: Session) -> None:
    """The same subcommands with the project's services pass."""
    _project(session, start=False)
    run(session, "docker compose config web grafana\ndocker compose build web\n")
    run(session, "docker compose up -d\ndocker compose down grafana\n")


def test_down_of_a_service_removes_it_and_what_depends_on_it(session: Session) -> None:
    """`down SERVICE` removes that service and every one depending on it, and leaves the
    others running (down, pkg/compose/down.go): the model took the whole project down."""
    depends = PROJECT.replace("    ports:", "    depends_on: [grafana]\n    ports:")
    run(session, f"mkdir -p own\ncd own\ncat > compose.yaml <<'EOF'\n{PROJECT}EOF\n")
    run(session, "docker compose up -d\ndocker compose down grafana\n")
    assert 18080 in session.world.listeners
    run(session, f"cat > compose.yaml <<'EOF'\n{depends}EOF\n")
    run(session, "docker compose up -d\ndocker compose down grafana\n")
    assert 18080 not in session.world.listeners


@pytest.mark.parametrize(
    ("command", "said"),
    [
        ("docker compose port web abc", 'parsing "abc": invalid syntax'),
        ("docker compose port web 70000", 'parsing "70000": value out of range'),
        ("docker compose port web 80 81", "accepts between 1 and 2 arg"),
        ("docker compose exec web", "requires at least 2 arg"),
        ("docker compose cp web:/etc/hostname", "'docker compose cp' requires 2 arguments"),
        ("docker compose cp '' ./x", "source can not be empty"),
    ],
)
def test_arguments_compose_refuses_before_looking_anything_up(
    session: Session, command: str, said: str
) -> None:
    """The number and form of the words exec, port and cp take (Compose v5.6.1's own
    messages, run here)."""
    _project(session)
    with pytest.raises(CommandError, match=said):
        run(session, command + "\n")
