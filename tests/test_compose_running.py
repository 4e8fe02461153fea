"""`docker compose exec` and `port` need the service's container running, `cp` needs it to have
one: a service stopped, killed, taken down, or never started because `up` named others has none
running, and Compose fails ('service "grafana" is not running': getSpecifiedContainer,
pkg/compose/containers.go of docker/compose v5.5.0; 'no container found for service': cp.go).
The model knew only whether the project had been started."""

from __future__ import annotations

import pytest

from betrace_dist.gate.session import CommandError, Session

from .conftest import run

pytestmark = pytest.mark.gate_session(tools=("docker-compose",))

#: web depends on db; grafana stands alone
PROJECT = (
    "services:\n"
    "  web:\n    image: nginx:1.27\n    depends_on: [db]\n    ports: ['127.0.0.1:18080:80']\n"
    "  db:\n    image: nginx:1.27\n"
    "  grafana:\n    image: nginx:1.27\n"
)
NOT_RUNNING = 'service "grafana" is not running'
NO_CONTAINER = 'no container found for service "grafana"'


def _project(session: Session, script: str) -> None:
    run(session, f"mkdir -p own\ncd own\ncat > compose.yaml <<'EOF'\n{PROJECT}EOF\n{script}")


@pytest.mark.parametrize(
    "before",
    [
        "docker compose up -d\ndocker compose stop grafana\n",
        "docker compose up -d\ndocker compose kill grafana\n",
        "docker compose up -d\ndocker compose down grafana\n",
        "docker compose up -d web\n",
        "docker compose up --no-start\n",
        "docker compose create\n",
        "docker compose up -d\ndocker compose stop\n",
        "docker compose up -d\ndocker compose rm -s -f grafana\n",
    ],
    ids=["stop", "kill", "down-service", "up-others", "no-start", "create", "stop-all", "rm-stop"],
)
@pytest.mark.parametrize(
    "command", ["docker compose exec grafana ls", "docker compose port grafana 80"]
)
def test_a_service_that_does_not_run_is_refused(
    session: Session, before: str, command: str
) -> None:
    _project(session, before)
    with pytest.raises(CommandError, match=NOT_RUNNING):
        run(session, command + "\n")


@pytest.mark.parametrize(
    "before",
    [
        "docker compose up -d\n",
        "docker compose up -d grafana\n",
        "docker compose up -d\ndocker compose stop grafana\ndocker compose start grafana\n",
        "docker compose up -d\ndocker compose stop\ndocker compose restart\n",
        "docker compose create\ndocker compose start\n",
        "docker compose up -d\ndocker compose pause grafana\ndocker compose unpause grafana\n",
        "docker compose up -d\ndocker compose down web\n",
        "docker compose up -d\ndocker compose rm -f grafana\n",  # rm leaves a running one
    ],
    ids=["up", "up-it", "start", "restart", "create-start", "unpause", "down-other", "rm-running"],
)
def test_a_service_that_runs_is_taken(session: Session, before: str) -> None:
    _project(session, before)
    run(session, "docker compose exec grafana ls\ndocker compose port grafana 80\n")


def test_up_and_run_start_what_a_service_depends_on(session: Session) -> None:
    """`up web` starts db too, unless --no-deps; `run web` starts db, and with --detach
    itself (pkg/compose/run.go)."""
    _project(session, "docker compose up -d web\n")
    run(session, "docker compose exec db ls\n")
    run(session, "docker compose down\ndocker compose up -d --no-deps web\n")
    with pytest.raises(CommandError, match='service "db" is not running'):
        run(session, "docker compose exec db ls\n")
    run(session, "docker compose down\ndocker compose run -d web true\n")
    run(session, "docker compose exec db ls\ndocker compose exec web ls\n")


def test_down_takes_what_depends_on_a_service_with_it(session: Session) -> None:
    _project(session, "docker compose up -d\ndocker compose down db\n")
    with pytest.raises(CommandError, match='service "web" is not running'):
        run(session, "docker compose exec web ls\n")


def test_exec_in_a_paused_container_is_refused(session: Session) -> None:
    """The Docker daemon refuses an exec in a paused container (its errExecPaused);
    `port` reads the container's ports and answers."""
    _project(session, "docker compose up -d\ndocker compose pause grafana\n")
    run(session, "docker compose port grafana 80\n")
    with pytest.raises(CommandError, match="is paused, unpause the container before exec"):
        run(session, "docker compose exec grafana ls\n")


def test_cp_needs_a_container_running_or_not(session: Session) -> None:
    """`cp` lists stopped containers too: a stopped service is copied from and to, one never
    made or taken down has no container."""
    _project(session, "docker compose up -d\ndocker compose stop grafana\ntouch x\n")
    run(session, "docker compose cp grafana:/etc/hostname ./x\n")
    run(session, "docker compose cp ./x grafana:/tmp/x\n")
    run(session, "docker compose down grafana\n")
    with pytest.raises(CommandError, match=NO_CONTAINER):
        run(session, "docker compose cp grafana:/etc/hostname ./x\n")
    with pytest.raises(CommandError, match=NO_CONTAINER):
        run(session, "docker compose cp ./x grafana:/tmp/x\n")
    run(session, "docker compose down\ndocker compose up -d web\n")
    with pytest.raises(CommandError, match=NO_CONTAINER):
        run(session, "docker compose cp grafana:/etc/hostname ./x\n")


@pytest.mark.parametrize(
    ("command", "said"),
    [
        ("docker compose down --rmi everything", r'Compose refuses it: invalid value for --rmi: '
         r'"everything"'),
        ("docker compose down --rmi all", None),
        ("docker compose down --rmi local --volumes", None),
    ],
)  # fmt: skip
def test_what_compose_refuses_before_it_reaches_the_daemon_is_refused_in_its_words(
    session: Session, command: str, said: str | None
) -> None:
    """The real Compose runs the page's command in the jail with a Docker host that is not
    there: a reviewer's `--rmi everything` passed the flag table (the option exists), while
    Compose refuses the value before it connects. A command it takes fails only at the
    connection, which is not the page's fault."""
    _project(session, "docker compose up -d\n")
    if said is None:
        run(session, command + "\n")
    else:
        with pytest.raises(CommandError, match=said):
            run(session, command + "\n")
