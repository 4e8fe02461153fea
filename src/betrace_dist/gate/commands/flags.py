"""Flags a real tool accepts, read from its own `--help`, so a guide cannot invent one."""

from __future__ import annotations

import re
import subprocess
from functools import cache

_FLAG = re.compile(r"(?:^|\s|,)(--?[A-Za-z][\w-]*)")


#: tools whose plain --help lists only a few options
_FULL_HELP = {"curl": ["--help", "all"]}


@cache
def accepted(binary: str, *subcommand: str) -> frozenset[str]:
    """Every -x / --long flag the help text of `binary subcommand --help` lists."""
    done = subprocess.run(
        [binary, *subcommand, *_FULL_HELP.get(binary.rsplit("/", 1)[-1], ["--help"])],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
    )
    text = done.stdout + done.stderr
    flags = set()
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("-"):
            flags.update(m for m in _FLAG.findall(stripped.split("  ")[0]))
    return frozenset(flags)


def split_flag(arg: str) -> tuple[str, str | None]:
    """('--namespace', 'x') from '--namespace=x'; ('-n', None) from '-n'."""
    if arg.startswith("--") and "=" in arg:
        name, _, value = arg.partition("=")
        return name, value
    return arg, None
