"""What the Nix model says of experimental features (commands/nix.py `_features_given`),
observed again on the real Nix in every run: a Nix that enables no feature in its nix.conf
refuses a flake command that turns on nix-command alone, and any new-style command that turns
on flakes alone, in the words the model quotes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from betrace_dist import tools
from betrace_dist.gate.commands import nix as nix_model

from .conftest import missing


def _nix(tmp_path: Path, *args: str) -> str:
    try:
        program = tools.require("nix")
    except tools.ToolMissing as exc:
        missing(exc)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "NIX_CONFIG": "experimental-features =",  # a nix.conf that enables nothing
        **{f"NIX_{k}_DIR": str(tmp_path / k.lower()) for k in ("STATE", "LOG", "CONF")},
    }
    done = subprocess.run(
        [program, "--store", str(tmp_path / "store"), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0, done.stdout
    return done.stderr


@pytest.mark.parametrize(
    ("features", "args", "lacking"),
    [
        ("nix-command", ("flake", "show"), "flakes"),
        ("flakes", ("eval", "--expr", "1"), "nix-command"),
    ],
    ids=["flake-without-flakes", "new-cli-without-nix-command"],
)
def test_nix_refuses_a_command_whose_flag_lacks_a_feature(
    tmp_path: Path, features: str, args: tuple[str, ...], lacking: str
) -> None:
    (tmp_path / "flake.nix").write_text("{ outputs = { self }: { }; }\n")
    said = _nix(tmp_path, "--extra-experimental-features", features, *args)
    assert f"experimental Nix feature '{lacking}' is disabled" in said, said
    line = nix_model.command_line(["--extra-experimental-features", features, *args])
    assert lacking in nix_model._features_needed(line)
