"""A Compose project is its name, as Compose resolves it (`-p`, COMPOSE_PROJECT_NAME, the file's
`name`, else the folder): the model keyed projects by folder, so the same stack started from a
copy was taken for a second one, and `-p` was never given to Compose."""

from __future__ import annotations

from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.artefacts import dockerfiles
from betrace_dist.gate.commands.compose import PROJECT_CONTEXTS
from betrace_dist.gate.session import CommandError, Session
from betrace_dist.release import ReleaseData
from betrace_dist.yamlio import load_with_lines

from .conftest import run

ENV = "printf 'BETRACE_SIGNATURE_KEY=k\\nGRAFANA_ADMIN_PASSWORD=p\\n' > .env\n"
HEALTH = (
    "curl -fsS --retry 30 --retry-delay 2 --retry-all-errors http://localhost:3000/api/health\n"
)


pytestmark = pytest.mark.gate_session(tools=("docker-compose",))


def test_the_stack_from_a_copy_is_the_same_project(session: Session) -> None:
    """The stack's file names its project (`name: betrace`): started again from a copy of the
    folder, Compose updates that project's containers, which publish the same ports."""
    run(
        session,
        "cp -r docker copy\ncd docker\n" + ENV + "docker compose up --build --wait\nsleep 1\n",
    )
    run(session, "cd ../copy\n" + ENV + "docker compose up --build --wait\nsleep 1\n" + HEALTH)


def test_another_project_name_is_another_project(session: Session) -> None:
    """`-p other` names another project: its `down` leaves the stack running, and its `up`
    cannot publish the ports the stack holds."""
    run(session, "cd docker\n" + ENV + "docker compose up --build --wait\nsleep 1\n")
    run(session, "docker compose -p other down\n" + HEALTH)
    with pytest.raises(CommandError, match=r"port [0-9]+ is published already"):
        run(session, "docker compose -p other up --build --wait\n")
    run(session, "docker compose down\n")
    with pytest.raises(CommandError, match="nothing answers on localhost:3000"):
        run(session, HEALTH)


def _own_stack(session: Session, dockerfile: str) -> None:
    """A project of the page's own: a service named `backend`, built from `dockerfile` with
    the target `backend`, under the project's image name, publishing the backend's port."""
    data = session.release
    image = f"{data.project.registry}/backend:{data.current.version}"
    port = data.current.backend.ports["http"].port
    compose = (
        "services:\n  backend:\n"
        f"    image: {image}\n"
        "    build: {context: ., target: backend}\n"
        f'    ports: ["127.0.0.1:{port}:{port}"]\n'
    )
    script = (
        "mkdir own\ncd own\n"
        f"cat > Dockerfile <<'EOF'\n{dockerfile}EOF\n"
        f"cat > compose.yaml <<'EOF'\n{compose}EOF\n"
        "docker compose up --build --wait\nsleep 1\n"
    )
    run(session, script)


def test_a_service_built_from_the_pages_own_dockerfile_is_not_the_backend(
    session: Session,
) -> None:
    """A stage named `backend` in the page's own Dockerfile, under the project's image name,
    was taken for BeTrace's backend: the gate's curl then went to the real one."""
    _own_stack(session, "FROM nginx:1.27 AS backend\n")
    port = session.release.current.backend.ports["http"].port
    with pytest.raises(CommandError, match=f"nothing known is served .* on port {port}"):
        run(session, f"curl -fsS http://localhost:{port}/v1/health\n")


def test_exec_is_checked_by_what_a_service_runs_not_its_name(session: Session) -> None:
    """`docker compose exec backend sh` was refused for any service named `backend`, the
    project's image contents taken from the name; nginx has a shell."""
    _own_stack(session, "FROM nginx:1.27 AS backend\n")
    run(session, "docker compose exec backend sh -c 'nginx -v'\n")


def test_a_service_started_again_on_another_port_leaves_the_old_one(session: Session) -> None:
    """`up` with another published port recreates the container: the model kept the old port
    answering beside the new one."""
    run(session, "cd docker\n" + ENV + "docker compose up --build --wait\nsleep 1\n")
    run(session, "BETRACE_HTTP_HOST_PORT=12099 docker compose up --build --wait\nsleep 1\n")
    run(session, "curl -fsS http://localhost:12099/v1/health\n")
    with pytest.raises(CommandError, match="nothing answers on localhost:12011"):
        run(session, "curl -fsS http://localhost:12011/v1/health\n")


def _project_of(session: Session, service: str) -> None:
    """A project of the page's own in `own/`, with the one service given (YAML, indented)."""
    port = session.release.current.backend.ports["http"].port
    compose = f'services:\n{service}    ports: ["127.0.0.1:{port}:{port}"]\n'
    run(session, f"mkdir -p own\ncd own\ncat > compose.yaml <<'EOF'\n{compose}EOF\n")


@pytest.mark.parametrize(
    "service",
    [
        # an image the page built from its own Dockerfile, under the backend's name
        "  api:\n    image: {image}\n",
        # the project's Dockerfile without a target builds its last stage (plugin-init)
        "  api:\n    image: {image}\n    build: {{context: ../docker}}\n",
        # a field of the page's own does not make it the backend
        "  api:\n    image: nginx:1.27\n    x-betrace-role: backend\n",
    ],
    ids=["built-here", "no-target", "own-field"],
)
def test_what_a_service_runs_is_not_taken_from_its_image_name(
    session: Session, service: str
) -> None:
    """A service's image name (or a field a page may write) made it the backend, so the
    gate's curl went to the real one (found by an attack)."""
    data = session.release
    image = f"{data.project.registry}/backend:{data.current.version}"
    run(session, "mkdir mine\nprintf 'FROM nginx:1.27\\n' > mine/Dockerfile\n")
    run(session, f"docker build -t {image} mine\n")
    _project_of(session, service.format(image=image))
    port = data.current.backend.ports["http"].port
    run(session, "docker compose up --wait\nsleep 1\n")
    with pytest.raises(CommandError, match=f"nothing known is served .* on port {port}"):
        run(session, f"curl -fsS http://localhost:{port}/v1/health\n")


def test_a_built_image_is_known_by_any_spelling_docker_reads(session: Session) -> None:
    """A tag built without `:latest`, run as `...:latest`: the page's own build under the
    backend's name was taken for the backend (found by an attack)."""
    data = session.release
    name = f"{data.project.registry}/backend"
    run(session, "mkdir mine\nprintf 'FROM nginx:1.27\\n' > mine/Dockerfile\n")
    run(session, f"docker build -t {name} mine\n")
    _project_of(session, f"  api:\n    image: {name}:latest\n")
    port = data.current.backend.ports["http"].port
    run(session, "docker compose up --wait\nsleep 1\n")
    with pytest.raises(CommandError, match=f"nothing known is served .* on port {port}"):
        run(session, f"curl -fsS http://localhost:{port}/v1/health\n")


def test_restart_keeps_the_ports_the_containers_were_made_with(session: Session) -> None:
    """start, restart and unpause run the containers made before: a port changed in the file
    since is not theirs until an `up` makes them again (the model moved it at a restart)."""
    run(session, "cd docker\n" + ENV + "docker compose up --build --wait\nsleep 1\n")
    run(session, "BETRACE_HTTP_HOST_PORT=12098 docker compose restart\nsleep 1\n")
    run(session, "curl -fsS http://localhost:12011/v1/health\n")
    with pytest.raises(CommandError, match="nothing answers on localhost:12098"):
        run(session, "curl -fsS http://localhost:12098/v1/health\n")


def test_a_stack_built_with_other_patches_does_not_run_the_backend(session: Session) -> None:
    """The stack's `patches` context pointed at another folder (one patch left out) builds
    upstream with other patches than the gate's live backend: the model took it for the
    project's backend."""
    run(session, "cp -r patches mine\nrm mine/betrace-backend/0006-*.patch\ncd docker\n" + ENV)
    run(session, "sed -i 's#patches: ../patches#patches: ../mine#' docker-compose.yml\n")
    with pytest.raises(CommandError, match="the service 'backend' does not run the backend"):
        run(session, "docker compose up --build --wait\nsleep 1\n")


def test_the_named_contexts_the_gate_trusts_are_the_stacks() -> None:
    """PROJECT_CONTEXTS names the project's folder for each named build context; the stack's
    own file is where they are given."""

    stack = load_with_lines(REPO_ROOT / "docker/docker-compose.yml")
    given = {
        name: (REPO_ROOT / "docker" / folder).resolve()
        for service in stack["services"].values()
        for name, folder in (service.get("build") or {}).get("additional_contexts", {}).items()
    }
    assert given, "the stack gives no named build context"
    assert given == {name: REPO_ROOT / folder for name, folder in PROJECT_CONTEXTS.items()}


@pytest.mark.parametrize(
    "override",
    [
        # the named context reset away: BuildKit looks for an image called `patches`
        "services:\n  backend:\n    build:\n      additional_contexts: !reset {}\n",
        # another commit of upstream
        "services:\n  backend:\n    build:\n      args:\n        BETRACE_COMMIT: "
        + "0" * 40
        + "\n",
    ],
    ids=["contexts-reset", "other-commit"],
)
def test_a_stack_built_without_the_patches_or_from_other_code_does_not_run_the_backend(
    session: Session, override: str
) -> None:
    run(session, "cd docker\n" + ENV + f"cat > compose.override.yaml <<'EOF'\n{override}EOF\n")
    with pytest.raises(CommandError, match="the service 'backend' does not run the backend"):
        run(session, "docker compose up --build --wait\nsleep 1\n")


def _counting_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The Dockerfiles the gate parses from now on, one entry a parse."""
    parsed: list[str] = []
    parse = dockerfiles.parse

    def counted(path: Path, text: str | None = None) -> dockerfiles.Dockerfile:
        parsed.append(str(path))
        return parse(path, text)

    monkeypatch.setattr(dockerfiles, "parse", counted)
    return parsed


def test_the_stacks_dockerfile_is_parsed_once_a_command(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three services of the stack are built from one Dockerfile, and `docker build` checks
    it twice (its named contexts, whether it is the project's): each parsed it again."""
    run(session, "cd docker\n" + ENV)
    parsed = _counting_parses(monkeypatch)
    run(session, "docker compose up --build --wait\nsleep 1\n")
    assert len(parsed) == 1, parsed
    parsed.clear()
    run(session, "docker build --target backend --build-context patches=../patches -t x:1 .\n")
    assert len(parsed) == 1, parsed


def test_a_dockerfile_changed_between_commands_is_read_again(session: Session) -> None:
    """What a command made of the stack's Dockerfile holds for that command alone: the page
    may change the file before the next."""
    run(session, "cd docker\n" + ENV + "docker compose up --build --wait\nsleep 1\n")
    run(session, "printf 'FROM nginx:1.27 AS backend\\n' >> Dockerfile\n")
    with pytest.raises(CommandError, match="the service 'backend' does not run the backend"):
        run(session, "docker compose up --build --wait\nsleep 1\n")


@pytest.mark.parametrize(
    "line",
    [
        "BETRACE_LOG_LEVEL=debug",
        "export OTEL_SERVICE_NAME=x",
        # the stack's port variable is GRAFANA_HOST_PORT: a port clash the page says it solves
        "GRAFANA_PORT=3300",
        "grafana_host_port=3300",
    ],
)
def test_a_setting_in_env_that_no_compose_file_uses_is_refused(session: Session, line: str) -> None:
    """Compose reads .env to interpolate its files and passes nothing of it to a container by
    itself: a variable the stack never interpolates changes nothing (only BETRACE_ and OTEL_
    names were checked, so a misspelt port variable passed)."""
    name = line.removeprefix("export ").partition("=")[0]
    with pytest.raises(CommandError, match=rf"\.env: {name} is set, but no Compose file"):
        run(session, "cd docker\n" + ENV + f"echo '{line}' >> .env\ndocker compose config -q\n")


def test_a_setting_a_compose_file_uses_or_takes_in_is_not_refused(session: Session) -> None:
    """Interpolated by the stack, or taken into a service with env_file, it counts; so do
    Compose's own settings."""
    run(session, "cd docker\n" + ENV + "echo 'BETRACE_SIGNATURE_KEY=other' >> .env\n")
    run(session, "echo 'GRAFANA_HOST_PORT=3300' >> .env\necho 'COMPOSE_PROFILES=' >> .env\n")
    # a variable another line of .env uses (compose-go's dotenv expands it)
    run(session, "echo 'PORT_BASE=33' >> .env\necho 'GRAFANA_HOST_PORT=${PORT_BASE}00' >> .env\n")
    run(session, "docker compose config -q\n")
    mine = (
        "mkdir -p ../mine\ncd ../mine\n"
        "printf 'services:\\n  app:\\n    image: busybox:1.36\\n    env_file: [.env]\\n' "
        "> compose.yaml\necho 'BETRACE_LOG_LEVEL=debug' > .env\ndocker compose config -q\n"
    )
    run(session, mine)


@pytest.mark.parametrize(
    "write",
    [
        "cat > .env <<'EOF'\nBETRACE_SIGNATURE_KEY=$(openssl rand -hex 32)\n"
        "GRAFANA_ADMIN_PASSWORD=p\nEOF\n",
        "echo 'BETRACE_SIGNATURE_KEY=`openssl rand -hex 32`' > .env\n"
        "echo GRAFANA_ADMIN_PASSWORD=p >> .env\n",
    ],
    ids=["quoted-heredoc", "backquotes"],
)
def test_a_command_in_env_is_refused_as_the_text_it_is(session: Session, write: str) -> None:
    """A quoted heredoc wrote `$(openssl rand -hex 32)` into .env, and the stack's signing key
    became that known text: Compose runs no command there (its `config` shows the text)."""
    with pytest.raises(
        CommandError, match=r"\.env: BETRACE_SIGNATURE_KEY is the text .*Compose runs no command"
    ):
        run(session, "cd docker\n" + write + "docker compose config -q\n")
    # the Compose guide writes it with an unquoted heredoc, and passes (its own page run)


@pytest.mark.parametrize(
    ("word", "said"),
    [
        ("backend:/data/rules.json", "has no '/data/rules.json'"),
        ("backend:/etc/betrace/rules.json", "has no '/etc/betrace/rules.json'"),
    ],
)
def test_cp_from_the_backend_reads_only_what_its_image_and_volumes_hold(
    session: Session, word: str, said: str
) -> None:
    """The backend's image is FROM scratch with the binary alone; `/data` is where the
    backend-rules service mounts the volume, not the backend. A backup copied from there
    passed; the backend's own path, relative or absolute, passes."""
    run(session, "cd docker\n" + ENV + "docker compose up --build --wait\n")
    with pytest.raises(CommandError, match=rf"the backend's container {said}"):
        run(session, f"docker compose cp {word} ./rules-backup.json\n")
    run(session, "docker compose cp backend:/var/lib/betrace/rules.json ./rules-backup.json\n")
    run(session, "docker compose cp backend:rules.json ./rules-backup.json\n")


@pytest.mark.parametrize(
    ("command", "said"),
    [
        ("cp backend:/var/lib/betrace/data/rules.json ./r.json", "no 'data/rules.json'"),
        ("cp backend:/var/lib/betrace/rules.yaml ./r.json", "no 'rules.yaml'"),
        ("cp ./r.json backend:/var/lib/betrace/data/rules.json", "no 'data/rules.json'"),
    ],
)
def test_cp_in_the_backends_data_folder_names_what_the_backend_keeps_there(
    session: Session, command: str, said: str
) -> None:
    """The data folder (BETRACE_DATA_DIR, the volume's mount) holds the files the probe
    data-files finds, at its top: a backup from a folder below it passed (a reviewer's edit of
    the Compose guide); a copy back to the folder itself passes."""
    run(session, "cd docker\n" + ENV + "docker compose up --build --wait\n")
    held = r"data folder, /var/lib/betrace here, holds rules\.json .*"
    with pytest.raises(CommandError, match=held + said):
        run(session, f"echo '{{}}' > r.json\ndocker compose {command}\n")
    run(session, "docker compose cp ./r.json backend:/var/lib/betrace/rules.json\n")
    run(session, "docker compose cp backend:/var/lib/betrace ./backup\n")


def test_an_external_network_must_be_one_a_started_stack_makes(session: Session) -> None:
    """A reviewer named the stack's network `betrace_net` in the Compose guide's file for the
    reader's own containers and the gate passed: `config` needs no network, but the file's `up`
    would fail. The network must be one a stack started on the page makes, by the name
    `docker compose config` resolves; after `down` it is gone."""
    app = (
        "mkdir -p my-app && cat > my-app/compose.yaml <<'YAML'\n"
        "services:\n  app:\n    image: my-app:1.0\n    networks: [betrace]\n"
        "networks:\n  betrace:\n    name: {name}\n    external: true\nYAML\n"
        "docker compose -f my-app/compose.yaml config --quiet\n"
    )
    with pytest.raises(CommandError, match=r"named 'betrace_default', which no stack started"):
        run(session, app.format(name="betrace_default"))  # the stack is not up yet
    run(session, "cd docker\n" + ENV + "docker compose up --build --wait\ncd ..\n")
    with pytest.raises(CommandError, match=r"'betrace_net'.*\(networks: betrace_default\)"):
        run(session, app.format(name="betrace_net"))
    run(session, app.format(name="betrace_default"))
    run(session, "cd docker && docker compose down && cd ..\n")
    with pytest.raises(CommandError, match=r"no stack started on this page makes \(no networks"):
        run(session, app.format(name="betrace_default"))


@pytest.mark.parametrize(
    "value", ["http://localhost:12011/v1/spans", "localhost:12012", "127.0.0.1:12012"]
)
def test_a_service_sending_to_the_backends_port_on_localhost_is_refused(
    value: str, release_data: ReleaseData
) -> None:
    """Also when the address is written without a scheme, as gRPC endpoints are (a review
    found `localhost:12012` past the first form of the check); not with the host's network."""
    from betrace_dist.gate.commands.compose import _loopback_backend_urls

    app = {"image": "my-app:1.0", "environment": {"TARGET": value}}
    with pytest.raises(CommandError, match="is the container itself, not the backend"):
        _loopback_backend_urls({"app": app}, release_data)
    _loopback_backend_urls({"app": {**app, "network_mode": "host"}}, release_data)
    _loopback_backend_urls({"app": {**app, "environment": {"T": "backend:12012"}}}, release_data)
