"""A page's flake is evaluated with stand-ins of its inputs, told apart by what each names (its
url), in whatever form the flake declares them: the Nix model found them by their names and by
one way of writing them, and the rest went to the network."""

from __future__ import annotations

import pytest

from betrace_dist.gate.commands import models
from betrace_dist.gate.commands import nix as nix_model
from betrace_dist.gate.session import CommandError, Session
from betrace_dist.gate.shellwords import split

pytestmark = pytest.mark.gate_session(tools=("nix",))


def _build(session: Session, folder: str, inputs: str, package: str) -> None:
    """Write a flake with these inputs and `packages.x86_64-linux.default = PACKAGE`, then
    build it as a page would."""
    commit = session.release.current.upstream.commit
    flake = (
        "{\n" + inputs.replace("COMMIT", commit) + "\n"
        f"  outputs = inputs: {{ packages.x86_64-linux.default = {package}; }};\n}}\n"
    )
    script = f"mkdir -p '{folder}'\ncd '{folder}'\ncat > flake.nix <<'EOF'\n{flake}EOF\n"
    session.run(split(script + "git add flake.nix\nnix build\n"), models())


def test_inputs_written_as_one_nested_set(session: Session) -> None:
    """`inputs = { nixpkgs = { url = ...; }; betrace = { ... }; }`: neither was replaced."""
    inputs = (
        "  inputs = {\n"
        '    nixpkgs = { url = "github:NixOS/nixpkgs/nixos-unstable"; };\n'
        "    betrace = {\n"
        '      url = "github:betrace-hq/betrace/COMMIT";\n'
        '      inputs = { nixpkgs = { follows = "nixpkgs"; }; dev-tools.follows = "nixpkgs"; };\n'
        "    };\n  };"
    )
    _build(session, "nested", inputs, "inputs.betrace.packages.x86_64-linux.backend")


def test_inputs_are_known_by_what_they_name_not_their_names(session: Session) -> None:
    """A second nixpkgs (`nixpkgs-stable`) and BeTrace under another name (`bt`), as the
    attribute set form (type, owner, repo) too."""
    inputs = (
        '  inputs.nixpkgs-stable = { type = "github"; owner = "NixOS"; repo = "nixpkgs"; };\n'
        '  inputs.bt.url = "github:betrace-hq/betrace/COMMIT";\n'
        '  inputs.bt.inputs.dev-tools.follows = "nixpkgs-stable";'
    )
    _build(session, "named", inputs, "inputs.bt.packages.x86_64-linux.backend")


def test_an_input_without_a_stand_in_is_named(session: Session) -> None:
    """An input the gate cannot replace failed with Nix's network error; now it is named."""
    inputs = (
        '  inputs.nixpkgs.url = "github:NixOS/nixpkgs";\n'
        '  inputs.systems.url = "github:nix-systems/default";'
    )
    with pytest.raises(CommandError, match=r"input 'systems' \(github:nix-systems/default\)"):
        _build(session, "systems", inputs, "inputs.nixpkgs.legacyPackages.x86_64-linux.coreutils")


def test_a_look_alike_repository_is_not_nixpkgs(session: Session) -> None:
    inputs = '  inputs.nixpkgs.url = "github:NixOS/nixpkgs-lookalike";'
    with pytest.raises(CommandError, match="has no stand-in"):
        _build(session, "lookalike", inputs, "inputs.nixpkgs.legacyPackages.x86_64-linux.coreutils")


def test_a_folder_name_is_never_read_as_nix(session: Session) -> None:
    """The flake's path reaches Nix as an argument, never in an expression's text, where a
    folder named `${...}` would be evaluated."""
    folder = '${abort "evaluated"}'
    flake = '{ inputs.nixpkgs.url = "github:NixOS/nixpkgs"; outputs = _: { }; }'
    script = f"mkdir -p '{folder}'\ncd '{folder}'\ncat > flake.nix <<'EOF'\n{flake}\nEOF\n"
    session.run(split(script), models())
    found = nix_model._declared_inputs(session, session.cwd)
    assert found == {"nixpkgs": {"url": "github:NixOS/nixpkgs"}}


def test_flake_utils_helpers_a_consumer_calls(session: Session) -> None:
    """mkApp and flattenTree, which flake-utils' consumers call, were missing from its
    stand-in: such a flake failed on the gate's side, not the reader's."""
    commit = session.release.current.upstream.commit
    flake = (
        "{\n"
        '  inputs.flake-utils.url = "github:numtide/flake-utils";\n'
        f'  inputs.betrace.url = "github:betrace-hq/betrace/{commit}";\n'
        '  inputs.betrace.inputs.dev-tools.follows = "flake-utils";\n'
        "  outputs = { flake-utils, betrace, ... }:\n"
        "    flake-utils.lib.eachDefaultSystem (system: rec {\n"
        "      packages = flake-utils.lib.flattenTree {\n"
        "        backend = betrace.packages.${system}.backend;\n"
        "      };\n"
        "      apps.default = flake-utils.lib.mkApp { drv = packages.backend; };\n"
        "    });\n}\n"
    )
    script = f"mkdir app\ncd app\ncat > flake.nix <<'EOF'\n{flake}EOF\ngit add flake.nix\n"
    session.run(split(script), models())
    session.run(split("BETRACE_PORT_BACKEND=18083 nix run . &\n"), models())
    session.run(
        split("curl -fsS --retry 30 --retry-connrefused http://localhost:18083/v1/health\n"),
        models(),
    )


def test_inputs_nix_cannot_print_as_json_are_refused_not_a_crash(session: Session) -> None:
    """Nix 2.8 prints an overflowing float as `inf`, which json.loads refused with an internal
    error."""
    inputs = '  inputs.nixpkgs.url = "github:NixOS/nixpkgs";\n  inputs.nixpkgs.x = 1.0e308 * 10.0;'
    with pytest.raises(CommandError, match="not data Nix can print"):
        _build(session, "inf", inputs, "inputs.nixpkgs.legacyPackages.x86_64-linux.coreutils")


@pytest.mark.parametrize(
    "inputs",
    [
        '  inputs.nixpkgs.url = "nixpkgs/nixos-unstable";',
        '  inputs.nixpkgs.url = "git+https://github.com/NixOS/nixpkgs?ref=nixos-unstable";',
        '  inputs.nixpkgs.url = "https://github.com/NixOS/nixpkgs/archive/nixos-unstable.tar.gz";',
        "",  # not declared: taken by the outputs function, looked up in the flake registry
    ],
    ids=["registry", "git", "tarball", "implicit"],
)
def test_other_ways_to_name_nixpkgs(session: Session, inputs: str) -> None:
    """nixpkgs named through the flake registry, a git URL, a tarball, or not declared at all:
    each was refused as having no stand-in, or went to the network."""
    flake = (
        "{\n" + inputs + "\n"
        "  outputs = { self, nixpkgs }: "
        "{ packages.x86_64-linux.default = nixpkgs.legacyPackages.x86_64-linux.coreutils; };\n}\n"
    )
    script = f"mkdir -p n\ncd n\ncat > flake.nix <<'EOF'\n{flake}EOF\n"
    script += "git add flake.nix\nnix build\n"
    session.run(split(script), models())


@pytest.mark.parametrize(
    "url",
    [
        "git+https://github.com/NixOS/nixpkgs/../../attacker/evil",
        "https://github.com/NixOS/nixpkgs/archive/../../../attacker/evil/archive/main.tar.gz",
        "NIXPKGS",
    ],
)
def test_a_url_that_may_name_another_repository_has_no_stand_in(session: Session, url: str) -> None:
    """A path Git or curl resolves elsewhere, or a registry name in another case, was given
    nixpkgs's stand-in (found by an attack)."""
    inputs = f'  inputs.nixpkgs.url = "{url}";'
    with pytest.raises(CommandError, match="has no stand-in"):
        _build(session, "elsewhere", inputs, "inputs.nixpkgs.legacyPackages.x86_64-linux.hello")


def test_a_build_that_fails_says_nixs_error_not_its_warnings(session: Session) -> None:
    """A build that failed ended in an internal AssertionError, cut to Nix's warnings and
    reported as "could not check it"; now the block fails at its line with Nix's error."""
    failing = (
        'derivation { name = "fails"; system = "x86_64-linux"; builder = "/bin/sh"; '
        'args = [ "-c" "exit 3" ]; }'
    )
    with pytest.raises(CommandError, match=r"nix build of 'default' fails: error:") as exc:
        _build(session, "failing", "", failing)
    assert "warning" not in str(exc.value)
