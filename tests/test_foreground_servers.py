"""A server started in the foreground does not return: the commands after it in its block never
run for the reader. `nix run` of the backend was held to this; the backend's own binary,
`kubectl port-forward` and an attached `docker compose up` let the rest of the block run."""

from __future__ import annotations

import pytest

from betrace_dist.gate.session import CommandError, Session

from .conftest import backend_image, require_tool, run

HEALTH = "curl -fsS http://localhost:12011/v1/health\n"
ENV = "printf 'BETRACE_SIGNATURE_KEY=k\\nGRAFANA_ADMIN_PASSWORD=p\\n' > .env\n"


pytestmark = pytest.mark.gate_session()


def _chart(session: Session) -> str:
    require_tool("helm")
    require_tool("kubectl")
    registry = "registry.example.com/betrace"
    return backend_image(session, registry) + (
        f"helm install betrace ./helm/betrace -n betrace --create-namespace --wait "
        f"--set image.registry={registry}\n"
    )


def _compose(session: Session) -> str:
    require_tool("docker-compose")
    return "cd docker\n" + ENV


#: (what sets the scene, the server's line, what the refusal names)
CASES = {
    "backend-binary": (lambda s: "", "betrace-backend", "betrace-backend serves"),
    "port-forward": (
        _chart,
        "kubectl -n betrace port-forward svc/betrace-backend 12011:12011",
        "`kubectl port-forward` forwards",
    ),
    "compose-up": (_compose, "docker compose up --build", "`docker compose up` without -d"),
    "compose-up-detach-false": (
        _compose,
        "docker compose up --build --detach=false",
        "`docker compose up` without -d",
    ),
    "compose-up-wait-false": (
        _compose,
        "docker compose up --build --wait=false",
        "`docker compose up` without -d",
    ),
    "kubectl-logs-follow": (
        _chart,
        "kubectl -n betrace logs -f deploy/betrace-backend",
        "`kubectl logs -f` follows the log",
    ),
    "kubectl-get-watch": (
        _chart,
        "kubectl -n betrace get pods --watch",
        "`kubectl get --watch` watches",
    ),
    "compose-logs-follow": (
        lambda s: _compose(s) + "docker compose up --build -d\n",
        "docker compose logs -f backend",
        "`docker compose logs` streams until stopped",
    ),
    "compose-events": (
        lambda s: _compose(s) + "docker compose up --build -d\n",
        "docker compose events",
        "`docker compose events` streams until stopped",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_command_after_a_foreground_server_is_refused(session: Session, case: str) -> None:
    scene, server, said = CASES[case]
    run(session, scene(session))
    with pytest.raises(CommandError, match="in the foreground and does not return") as exc:
        run(session, f"{server}\n{HEALTH}")
    assert said in str(exc.value)
    assert f"`{HEALTH.strip()}` after it in this block never runs" in str(exc.value)
    assert getattr(exc.value, "line", None) == 1


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("form", ["last", "background"])
def test_a_server_last_in_its_block_or_in_the_background_is_fine(
    session: Session, case: str, form: str
) -> None:
    scene, server, _ = CASES[case]
    run(session, scene(session))
    if form == "last":
        run(session, f"{server}\n")
    else:
        run(session, f"{server} &\necho next\n")


@pytest.mark.parametrize("flag", ["-d", "--detach", "--wait", "--no-start"])
def test_compose_up_detached_returns(session: Session, flag: str) -> None:
    """--wait implies detached and --no-start returns before attaching (Compose's up.go)."""
    run(session, _compose(session))
    run(session, f"docker compose up --build {flag}\necho next\n")


def test_a_dry_run_starts_nothing(session: Session) -> None:
    """`docker compose --dry-run up -d` prints what it would do: nothing answers after it."""
    run(session, _compose(session) + "docker compose --dry-run up --build -d\n")
    with pytest.raises(CommandError, match="nothing answers on localhost:12011"):
        run(session, HEALTH)
