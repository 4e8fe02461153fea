"""Nix blocks: parsed by the real Nix parser (syntax and undefined variables), then the
backend variables they set are held to the release data, as in a Compose file, and the options
they set under `services.betrace-backend` must be the distribution module's (read, not
evaluated: NixOS cannot be fetched offline), and the files they take from the distribution's
repository (`"${distribution}/..."`) must be there, a patch series whole and in order. A NixOS
test is held to what it tests (nixos_test.py)."""

from __future__ import annotations

import re
import subprocess
import tempfile
from typing import ClassVar

from ... import tools
from ...rules import engine
from .. import nix_env, nixos_test
from ..lexer import Block
from . import CheckFailure, Context, Status, require_tool, save_titled
from .rules import run_bounds

#: wall-clock seconds for parsing one block
PARSE_TIMEOUT = 30
#: where Nix's message places the fault in what it read from stdin
_AT = re.compile(r"\bat «stdin»:(\d+):\d+:?")


def _parse_failure(stderr: str, body: str) -> CheckFailure:
    """Nix's error (its warnings left out), the block's line it names and that line's text."""
    text = stderr[stderr.find("error:") :] if "error:" in stderr else stderr
    found = _AT.search(text)
    message = " ".join(_AT.sub("", text.split("\n\n", 1)[0]).split()).removeprefix("error: ")
    line = int(found[1]) if found else None
    lines = body.splitlines()
    if line is not None and 0 < line <= len(lines):
        message += f", in `{lines[line - 1].strip()[:120]}`"
    return CheckFailure(f"Nix cannot parse it: {message}", line)


class NixChecker:
    name: ClassVar[str] = "nix"
    status: ClassVar[Status] = "verified"
    languages: ClassVar[frozenset[str]] = frozenset({"nix"})

    def check(self, block: Block, ctx: Context) -> None:
        # The page's text, read with the gate's rights: on stdin, in an empty folder, within
        # the checkers' memory and processor limits (tools.run_checker), as ShellCheck is.
        argv = [require_tool("nix-instantiate"), "--parse", "-"]
        # Nix's state, logs and settings in a folder of its own: run as root, Nix would open
        # the machine's store database (/nix/var/nix/db) and read its nix.conf
        with tempfile.TemporaryDirectory(prefix="gate-nix-parse-") as home:
            own = {f"NIX_{k}_DIR": f"{home}/{k.lower()}" for k in ("STATE", "LOG", "CONF")}
            try:
                done = tools.run_checker(argv, block.body, PARSE_TIMEOUT, own)
            except subprocess.TimeoutExpired:
                raise CheckFailure(f"Nix did not parse it within {PARSE_TIMEOUT} s") from None
        if done.returncode != 0:
            raise _parse_failure(done.stderr, block.body)
        if ctx.release is not None:
            found = (
                nix_env.problems(block.body, ctx.release)
                + nix_env.option_problems(block.body)
                + nix_env.severity_problems(block.body)
                + nix_env.credential_problems(block.body)
                + nix_env.shell_hook_problems(block.body, ctx.release)
                + nix_env.distribution_file_problems(block.body, ctx.release)
                + nix_env.host_problems(block.body, ctx.release)
                + nix_env.grafana_problems(block.body, ctx.release)
                + nixos_test.problems(block.body, ctx.release)
            )
            for line, reason in sorted(found)[:1]:
                raise CheckFailure(reason, line)
        _rules_compile(block, ctx)
        save_titled(block, ctx)


def _rules_compile(block: Block, ctx: Context) -> None:
    """The rules a block gives the module (`services.betrace-backend.rules`) must compile on the
    real backend: the module writes them into rules.json, and the backend skips one that does
    not, with a warning, and runs without it. Posted to a throwaway backend (rules/engine.py,
    bounded as the rule examples are) when the run has a live tier; without one (--no-live)
    they are not compiled, as no rule example is."""
    rules = nix_env.module_rules(block.body)
    if not rules or ctx.live.program is None:
        return
    try:
        result = engine.run({"rules": [body for _, body in rules]}, ctx.live.program, run_bounds())
    except engine.EngineError as exc:
        raise CheckFailure(f"the rules could not be compiled on the backend: {exc}") from None
    for (line, body), answer in zip(rules, result["rules"], strict=True):
        if answer["status"] // 100 != 2:
            raise CheckFailure(
                f"services.{nix_env.SERVICE}.rules: the backend refused rule '{body['name']}' "
                f"({answer['status']}): {answer['message']}; the backend skips it at its start "
                "and runs without it",
                line,
            )
