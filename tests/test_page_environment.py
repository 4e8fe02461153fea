"""What a page's variables reach, as in bash: a plain assignment stays in the page's shell (its
own commands expand it), an exported one reaches every program it starts, and `NAME=value
PROGRAM` reaches that program alone. The Compose, Nix and shell models follow the same rule."""

from __future__ import annotations

import pytest

from betrace_dist.gate.session import CommandError, Session

from .conftest import require_tool, run

STACK = "cd docker\nprintf 'BETRACE_SIGNATURE_KEY=k\\nGRAFANA_ADMIN_PASSWORD=p\\n' > .env\n"


pytestmark = pytest.mark.gate_session()


def test_a_plain_assignment_is_expanded_by_the_shell_and_reaches_no_program(
    session: Session,
) -> None:
    """Every program the page started got the page's plain assignments in its environment."""
    run(session, "NAME=plain\nexport OTHER=exported\n")
    assert "NAME" not in session.program_env()
    assert session.program_env()["OTHER"] == "exported"
    run(session, 'echo "$NAME" > seen.txt\njq -rn \'env.NAME // "unset"\' > env.txt\n')
    assert (session.cwd / "seen.txt").read_text() == "plain\n"
    assert (session.cwd / "env.txt").read_text() == "unset\n"


def test_compose_sees_exported_and_inline_variables_not_plain_ones(session: Session) -> None:
    """Compose interpolates from its own environment: a plain GRAFANA_HOST_PORT=3300 before
    `docker compose up` moved Grafana to 3300 in the model, where it stays on 3000; given on
    the command line, it was ignored."""
    require_tool("docker-compose")
    run(session, STACK + "GRAFANA_HOST_PORT=3300\ndocker compose up --build --wait\nsleep 1\n")
    run(
        session,
        "curl -fsS --retry 30 --retry-delay 2 --retry-all-errors http://localhost:3000/api/health\n",
    )
    run(
        session,
        "docker compose down\nGRAFANA_HOST_PORT=3300 docker compose up --build --wait\nsleep 1\n",
    )
    run(
        session,
        "curl -fsS --retry 30 --retry-delay 2 --retry-all-errors http://localhost:3300/api/health\n",
    )
    with pytest.raises(CommandError, match="nothing answers on localhost:3000"):
        run(
            session,
            "curl -fsS --retry 30 --retry-delay 2 --retry-all-errors http://localhost:3000/api/health\n",
        )


def test_nix_run_starts_the_backend_with_the_variables_of_its_line(session: Session) -> None:
    """`NAME=value nix run ...#backend` dropped the variables; an exported one was not
    checked there as it is for the binary started by hand."""
    require_tool("nix")
    commit = session.release.current.upstream.commit
    ref = f"github:betrace-hq/betrace/{commit}#packages.x86_64-linux.backend"
    run(session, f"BETRACE_PORT_BACKEND=18080 nix run {ref} &\n")
    run(session, "curl -fsS --retry 30 --retry-connrefused http://localhost:18080/v1/health\n")
    with pytest.raises(CommandError, match=r"4318.*\(exported\)"):
        run(session, f"export OTEL_EXPORTER_OTLP_ENDPOINT=localhost:4318\nnix run {ref} &\n")
    # an SDK variable the backend's code overrides: exported, it reached no check at all
    with pytest.raises(CommandError, match=r"OTEL_TRACES_SAMPLER is ignored.*\(exported\)"):
        run(
            session,
            "export OTEL_EXPORTER_OTLP_ENDPOINT=localhost:4317\n"
            f"export OTEL_TRACES_SAMPLER=parentbased_traceidratio\nnix run {ref} &\n",
        )


def _consumer_flake(session: Session, folder: str, outputs: str) -> None:
    """A flake of the page's that takes BeTrace as an input, as the Nix guide writes one,
    saved in `folder` (the page then works there)."""
    commit = session.release.current.upstream.commit
    flake = (
        '{\n  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";\n'
        "  inputs.betrace = {\n"
        f'    url = "github:betrace-hq/betrace/{commit}";\n'
        '    inputs.nixpkgs.follows = "nixpkgs";\n'
        '    inputs.dev-tools.follows = "nixpkgs";\n  };\n'
        f"  outputs = {{ nixpkgs, betrace, ... }}: {outputs};\n}}\n"
    )
    run(
        session,
        f"mkdir {folder}\ncd {folder}\ncat > flake.nix <<'EOF'\n{flake}EOF\ngit add flake.nix\n",
    )


def test_nix_develop_evaluates_the_shell_it_enters(session: Session) -> None:
    """A development shell's packages were never evaluated: a misspelt one passed."""
    require_tool("nix")
    shell = (
        "{ devShells.x86_64-linux.default = nixpkgs.legacyPackages.x86_64-linux.mkShell "
        "{ packages = [ betrace.packages.x86_64-linux.backendd ]; }; }"
    )
    _consumer_flake(session, "shell", shell)
    with pytest.raises(CommandError, match="attribute 'backendd' missing"):
        run(session, "nix develop\n")


def test_export_of_a_variable_set_before_reaches_programs(session: Session) -> None:
    """`NAME=value` then `export NAME`, bash's other form, was refused as assigning nothing."""
    run(session, "NAME=later\nexport NAME\n")
    assert session.program_env()["NAME"] == "later"
    with pytest.raises(CommandError, match="'NEVER' was not set earlier on this page"):
        run(session, "export NEVER\n")


def test_nix_flake_update_takes_input_names(session: Session) -> None:
    """`nix flake update betrace` (the Nix guide's way to move to another release) was taken
    to name a flake in the folder `betrace`."""
    require_tool("nix")
    package = "{ packages.x86_64-linux.default = betrace.packages.x86_64-linux.backend; }"
    _consumer_flake(session, "own", package)
    run(session, "nix flake update betrace\n")


def test_nix_run_of_a_default_that_is_the_backend_starts_it(session: Session) -> None:
    """What `nix run` starts was told from the output's name: a flake whose `default` is the
    backend registered nothing, and a page's own `backend` that runs another program was taken
    for BeTrace's."""
    require_tool("nix")
    package = "{ packages.x86_64-linux.default = betrace.packages.x86_64-linux.backend; }"
    _consumer_flake(session, "own", package)
    run(session, "BETRACE_PORT_BACKEND=18081 nix run . &\n")
    run(session, "curl -fsS --retry 30 --retry-connrefused http://localhost:18081/v1/health\n")
    other = (
        "{ packages.x86_64-linux.backend = nixpkgs.legacyPackages.x86_64-linux.runCommand "
        '"acme-api-1.0" { } "mkdir $out"; }'
    )
    _consumer_flake(session, "other", other)
    run(session, "BETRACE_PORT_BACKEND=18082 nix run .#backend &\n")
    with pytest.raises(CommandError, match="nothing answers on localhost:18082"):
        run(session, "curl -fsS --retry 30 --retry-connrefused http://localhost:18082/v1/health\n")


def test_a_program_of_the_pages_named_like_the_backend_is_not_the_backend(
    session: Session,
) -> None:
    """`nix run` of a script the page wrote, named betrace-backend, was taken for the backend:
    the gate then answered its curl with the real one (found by an attack)."""
    require_tool("nix")
    fake = (
        "{ packages.x86_64-linux.default = nixpkgs.legacyPackages.x86_64-linux"
        '.writeShellApplication { name = "betrace-backend"; text = "exit 1"; }; }'
    )
    _consumer_flake(session, "fake", fake)
    run(session, "nix run . &\n")
    with pytest.raises(CommandError, match="nothing answers on localhost:12011"):
        run(session, "curl -fsS http://localhost:12011/v1/health\n")


@pytest.mark.parametrize(
    "package",
    [
        # a derivation of the page's that only takes the backend's name
        '{ packages.x86_64-linux.default = derivation { name = "betrace-backend-2.0.0"; '
        'system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; }; }',
        # a program of the page's with the backend's package in its string's context
        '{ apps.x86_64-linux.default = { type = "app"; program = "${nixpkgs.legacyPackages'
        '.x86_64-linux.runCommand "mine" { } "mkdir $out"}/bin/betrace-backend" + '
        'builtins.substring 0 0 "${betrace.packages.x86_64-linux.backend}"; }; }',
    ],
    ids=["named-like-it", "context-smuggled"],
)
def test_only_the_backends_own_program_is_the_backend(session: Session, package: str) -> None:
    """The program must be the backend's binary in the backend package's output (found by an
    attack on the first check, which compared names)."""
    require_tool("nix")
    _consumer_flake(session, "forged", package)
    run(session, "BETRACE_PORT_BACKEND=18085 nix run . &\n")
    with pytest.raises(CommandError, match="nothing answers on localhost:18085"):
        run(session, "curl -fsS --retry 30 --retry-connrefused http://localhost:18085/v1/health\n")
