"""Nix blocks: parsed by the real Nix parser (syntax and undefined variables), then the
backend variables they set are held to the release data, as in a Compose file, and the options
they set under `services.betrace-backend` must be the distribution module's (read, not
evaluated: NixOS cannot be fetched offline), and the files they take from the distribution's
repository (`"${distribution}/..."`) must be there, a patch series whole and in order."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import ClassVar

from .. import nix_env
from ..lexer import Block
from . import CheckFailure, Context, Status, require_tool, save_titled


class NixChecker:
    name: ClassVar[str] = "nix"
    status: ClassVar[Status] = "verified"
    languages: ClassVar[frozenset[str]] = frozenset({"nix"})

    def check(self, block: Block, ctx: Context) -> None:
        binary = require_tool("nix-instantiate")
        with tempfile.TemporaryDirectory(prefix="gate-nix-parse-") as home:
            path = Path(home) / "block.nix"
            path.write_text(block.body, encoding="utf-8")
            done = subprocess.run(
                [binary, "--parse", str(path)],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
                env={
                    "PATH": "/usr/bin:/bin",
                    "HOME": home,
                    "NIX_STATE_DIR": home,
                    "NIX_LOG_DIR": home,
                },
            )
        if done.returncode != 0:
            message = " ".join(done.stderr.split())
            line = None
            marker = f"{path}:"
            if marker in message:
                tail = message.split(marker, 1)[1]
                digits = tail.split(":", 1)[0]
                line = int(digits) if digits.isdigit() else None
            message = message.replace(str(path), "the block").removeprefix("error: ")
            raise CheckFailure(f"Nix cannot parse it: {message}", line)
        if ctx.release is not None:
            found = (
                nix_env.problems(block.body, ctx.release)
                + nix_env.option_problems(block.body)
                + nix_env.distribution_file_problems(block.body, ctx.release)
            )
            for line, reason in sorted(found)[:1]:
                raise CheckFailure(reason, line)
        save_titled(block, ctx)
