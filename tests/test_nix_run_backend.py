"""What `nix run` of BeTrace's backend package does with the rest of its line, and with the
commands after it: the model had the backend answer whatever the line said (Nix's own
`--help` only prints Nix's manual), took the program's arguments for flakes, and let the
commands after a backend started in the foreground run, where the reader's block stops."""

from __future__ import annotations

import pytest

from betrace_dist.gate.session import CommandError, Session
from betrace_dist.gate.shellwords import split

from .conftest import run

pytestmark = pytest.mark.gate_session(tools=("nix",))


def backend(session: Session) -> str:
    commit = session.release.current.upstream.commit
    return f"github:betrace-hq/betrace/{commit}#packages.x86_64-linux.backend"


#: a client that waits for a backend `nix run` starts in the background (it builds first)
WAIT = (
    "curl -fsS --retry 300 --retry-connrefused --retry-delay 1 http://localhost:12011/v1/health\n"
)


def answers(session: Session, port: int) -> bool:
    try:
        run(session, f"curl -fsS http://localhost:{port}/v1/health\n")
    except CommandError as exc:
        assert f"nothing answers on localhost:{port}" in str(exc)
        return False
    return True


@pytest.mark.parametrize("words", ["--help", "--version"])
def test_nixs_own_help_and_version_run_nothing(session: Session, words: str) -> None:
    """`nix run FLAKE#backend --help` prints Nix's manual of `nix run` and exits; the model
    had the backend answering."""
    run(session, f"BETRACE_PORT_BACKEND=18090 nix run {backend(session)} {words}\n")
    assert not answers(session, 18090)


@pytest.mark.parametrize(
    ("words", "shown"),
    [("-- --help", "--help"), ("-- --port 9000", "--port 9000"), ("serve now", "serve now")],
)
def test_arguments_given_to_the_backend_are_refused_as_changing_nothing(
    session: Session, words: str, shown: str
) -> None:
    """The backend reads no argument (upstream's main.go): it serves all the same, so a page
    that passes `--port 9000` tells its reader of a setting that changes nothing (an attack on
    the Nix flake guide passed that way). A word after the flake reference is the program's
    too, not a second flake (`serve` was looked for as a folder with a flake.nix)."""
    with pytest.raises(CommandError, match="reads no command-line arguments") as exc:
        run(session, f"BETRACE_PORT_BACKEND=18091 nix run {backend(session)} {words}\n")
    assert f"'{shown}' would change nothing" in str(exc.value)
    assert not answers(session, 18091)
    with pytest.raises(CommandError, match="reads no command-line arguments"):
        run(session, "betrace-backend --port 9000 &\n")


@pytest.mark.parametrize("then", ["\ncurl -fsS http://localhost:12011/v1/health", " && echo up"])
def test_commands_after_a_backend_in_the_foreground_never_run(session: Session, then: str) -> None:
    """The backend serves in the foreground and does not return: what follows it in its block
    never runs for the reader, and the model ran it."""
    with pytest.raises(CommandError, match="serves in the foreground and does not return") as exc:
        run(session, f"nix run {backend(session)}{then}\n")
    after = then.strip().removeprefix("&& ")
    assert f"`{after}` after it in this block never runs" in str(exc.value)
    assert "or start it in the background with &" in str(exc.value)
    assert getattr(exc.value, "line", None) == 1  # the `nix run` line


@pytest.mark.parametrize(
    "block",
    [
        "nix run REF\n",  # the block ends with it: the next block is another terminal
        "nix run REF &\n" + WAIT,
        "nix run REF && echo stopped &\n" + WAIT,
    ],
    ids=["last-in-block", "background", "background-and-list"],
)
def test_a_backend_that_lets_the_block_go_on(session: Session, block: str) -> None:
    """Last in its block (the guides' way: the next block is another terminal), or in the
    background, alone or with the AND-OR list it ends: the backend answers, nothing is refused."""
    run(session, block.replace("REF", backend(session)))
    assert answers(session, 12011)


def test_an_and_or_list_ended_by_an_ampersand_runs_in_the_background() -> None:
    """`a && b &`: bash runs the whole list in the background; only `b` was marked so."""
    commands = split("a && b &\nc | d &\ne; f\n")
    assert [(c.argv[0], c.background) for c in commands] == [
        ("a", True),
        ("b", True),
        ("c", True),
        ("d", True),
        ("e", False),
        ("f", False),
    ]


@pytest.mark.parametrize("flag", ["-c", "--command"])
def test_a_program_run_inside_nix_shell_is_refused_not_taken_for_a_flake(
    session: Session, flag: str
) -> None:
    """The words after --command are a program and its arguments: the model looked for a
    flake.nix in a folder named like the program, and it does not follow what that program
    does, so it says so."""
    with pytest.raises(CommandError, match="a program run inside the Nix environment is not"):
        run(session, f"nix shell {backend(session)} {flag} betrace-backend --version\n")


@pytest.mark.parametrize(
    ("start", "wait", "said"),
    [
        # nix run builds the package first: no fixed wait covers that
        ("nix run REF &\n", "sleep 2\n", "it builds the package first"),
        ("nix run REF &\n", "", "it builds the package first"),
        # the binary itself starts at once: a short wait, or a retrying client
        ("betrace-backend &\n", "", "or `sleep 1` first"),
        # --retry alone does not retry a refused connection
        (
            "betrace-backend &\n",
            "curl -fsS --retry 5 http://localhost:12011/v1/health\n",
            "or `sleep 1`",
        ),
    ],
    ids=["nix-run-sleep", "nix-run", "binary", "retry-without-connrefused"],
)
def test_a_client_that_does_not_wait_for_a_background_backend_is_refused(
    session: Session, start: str, wait: str, said: str
) -> None:
    """A backend started in the background may not listen yet: the reader's curl right after
    it is refused the connection (found by an attack: the gate's own advice to add & led to a
    race)."""
    check = "curl -fsS http://localhost:12011/v1/health\n"
    with pytest.raises(CommandError, match="was started in the background") as exc:
        run(session, start.replace("REF", backend(session)) + wait + check)
    assert said in str(exc.value)
    assert "--retry-connrefused" in str(exc.value)


@pytest.mark.parametrize("wait", ["sleep 1\n", WAIT])
def test_a_client_that_waits_for_the_binary_reaches_it(session: Session, wait: str) -> None:
    run(session, "betrace-backend &\n" + wait + "curl -fsS http://localhost:12011/v1/health\n")


@pytest.mark.parametrize(
    ("start", "check", "said"),
    [
        # one retry, a second after: a build takes minutes
        (
            "nix run REF &\n",
            "curl -fsS --retry 1 --retry-connrefused http://localhost:12011/v1/health\n",
            "does not wait 300 s",
        ),
        # 30 retries a second apart are 30 s
        (
            "nix run REF &\n",
            "curl -fsS --retry 30 --retry-delay 1 --retry-connrefused "
            "http://localhost:12011/v1/health\n",
            "does not wait 300 s",
        ),
        # the flag is -A's value (the User-Agent), not an option
        (
            "betrace-backend &\n",
            "curl -fsS --retry 5 -A --retry-connrefused http://localhost:12011/v1/health\n",
            "does not wait 1 s",
        ),
    ],
    ids=["nix-run-one-retry", "nix-run-30-s", "flag-as-a-value"],
)
def test_a_retry_that_does_not_wait_long_enough_is_refused(
    session: Session, start: str, check: str, said: str
) -> None:
    with pytest.raises(CommandError, match=said):
        run(session, start.replace("REF", backend(session)) + check)


@pytest.mark.parametrize("wait", ["sleep 1m\n", "sleep -- 1\n", "sleep 0x10\n", "sleep 0.5 0.5\n"])
def test_a_sleep_as_coreutils_reads_it_waits(session: Session, wait: str) -> None:
    run(session, "betrace-backend &\n" + wait + "curl -fsS http://localhost:12011/v1/health\n")


@pytest.mark.parametrize(
    ("wait", "said"),
    [
        ("sleep 0.01\n", "was started in the background"),
        ("sleep 5 &\n", "was started in the background"),
        ("sleep\n", "is not a number of seconds"),
        ("sleep infinity\n", "`sleep infinity` waits in the foreground"),
    ],
    ids=["too-short", "in-the-background", "no-operand", "infinity"],
)
def test_a_sleep_that_does_not_wait_is_not_a_wait(session: Session, wait: str, said: str) -> None:
    with pytest.raises(CommandError, match=said):
        run(session, "betrace-backend &\n" + wait + "curl -fsS http://localhost:12011/v1/health\n")


def test_a_server_started_again_after_one_in_the_foreground_takes_its_port(
    session: Session,
) -> None:
    """A block that ends with a server in the foreground is stopped with Ctrl+C before the
    reader starts another on its port (the Nix flake guide says so): the model took the first
    for still holding it. One started with & holds it."""
    run(session, "betrace-backend\n")
    run(session, "betrace-backend\n")
    run(session, "betrace-backend &\n")
    with pytest.raises(CommandError, match="port 12011 is held already"):
        run(session, "betrace-backend\n")


def test_a_nix_subcommand_this_nix_does_not_have_is_refused(session: Session) -> None:
    """`nix flake prefetch-hash` passed: an unknown subcommand got no flags of its own, and the
    model took the line for a build. Nix's own list of its commands (`nix __dump-args`)
    names the closest."""
    with pytest.raises(CommandError, match="nix flake has no subcommand 'prefetch-hash'") as exc:
        run(session, "nix flake prefetch-hash github:betrace-hq/betrace\n")
    assert "did you mean 'prefetch'" in str(exc.value)


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("nix profile instal nixpkgs#hello", "nix profile has no subcommand 'instal'"),
        ("nix store gcc", "nix store has no subcommand 'gcc'"),
    ],
)
def test_a_nested_nix_subcommand_is_looked_up_at_every_level(
    session: Session, line: str, said: str
) -> None:
    """A review: only `nix X` and `nix flake X` were looked up, so `nix profile instal` passed."""
    with pytest.raises(CommandError, match=said):
        run(session, line + "\n")
