"""Flags a real tool accepts, read from its own `--help`, so a guide cannot invent one, and
which of them take a value, so that a command line is split as the tool splits it.

`CommandLine` is the one splitter of the Helm, git clone, docker build and docker compose models;
kubectl.py splits its lines itself, because which words are subcommands and which flags take a
value change as kubectl's help is read word by word (and `-it` bundles switches)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_FLAG = re.compile(r"(?:^|\s|,)(--?[A-Za-z][\w-]*)")
#: what follows the names of a boolean flag in kubectl's help (`--watch=false:`)
_BOOLEAN_DEFAULT = frozenset({"true", "false"})

#: tools whose plain --help lists only a few options
_FULL_HELP = {"curl": ["--help", "all"]}


@dataclass(frozen=True)
class Options:
    names: frozenset[str]  # every -x / --long flag the help lists
    valued: frozenset[str]  # the ones that take a value

    def __or__(self, other: Options) -> Options:
        return Options(self.names | other.names, self.valued | other.valued)


#: Where help texts are kept between runs (the result cache's folder, set by the gate when
#: the cache is on): a help text depends only on the program file and the words asked.
HELP_STORE: Path | None = None


@cache
def help_text(binary: str, *args: str) -> str:
    """What `binary ARGS` prints: read once per run, and kept in HELP_STORE while the program
    file (path, size, modification time) is the same."""
    kept = _kept_help(binary, args)
    if kept is not None and kept.is_file():
        return kept.read_text(encoding="utf-8")
    text = _run_help(binary, args)
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        partial = kept.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(text, encoding="utf-8")
        partial.replace(kept)  # whole or not at all
    return text


def _kept_help(binary: str, args: tuple[str, ...]) -> Path | None:
    if HELP_STORE is None:
        return None
    try:
        program = Path(binary).resolve()
        info = program.stat()
    except OSError:
        return None
    identity = f"{program}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ino}\0" + "\0".join(args)
    return HELP_STORE / f"{hashlib.sha256(identity.encode()).hexdigest()}.txt"


def _run_help(binary: str, args: tuple[str, ...]) -> str:
    done = subprocess.run(
        [binary, *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
    )
    return done.stdout + done.stderr


def parse_help(text: str) -> Options:
    """Flags of a help text, in the three layouts the tools use:
    `-d, --data <data>` (curl), `-n, --namespace string` (helm: a type word after the names),
    `-f, --filename=[]:` (kubectl: a default after `=`; true/false for a boolean). A value that is
    optional (`--dry-run string[="unset"]`) can only be attached with `=`: not counted as valued."""
    names: set[str] = set()
    valued: set[str] = set()
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("-"):
            continue
        head = stripped.split("  ")[0]
        found = _FLAG.findall(head)
        names.update(found)
        if "=" in head and head.endswith(":"):
            takes = head.split("=", 1)[1].removesuffix(":") not in _BOOLEAN_DEFAULT
        else:
            rest = _FLAG.sub("", head).replace(",", "").strip()
            takes = bool(rest) and "[=" not in rest  # `--wait string[="x"]`: only `--wait=v`
        if takes:
            valued.update(found)
    return Options(frozenset(names), frozenset(valued))


@cache
def options(binary: str, *subcommand: str) -> Options:
    """The flags of `binary subcommand --help`."""
    tail = _FULL_HELP.get(binary.rsplit("/", 1)[-1], ["--help"])
    return parse_help(help_text(binary, *subcommand, *tail))


def accepted(binary: str, *subcommand: str) -> frozenset[str]:
    """Every -x / --long flag the help text of `binary subcommand --help` lists."""
    return options(binary, *subcommand).names


def split_flag(arg: str) -> tuple[str, str | None]:
    """('--namespace', 'x') from '--namespace=x'; ('-n', None) from '-n'."""
    if arg.startswith("--") and "=" in arg:
        name, _, value = arg.partition("=")
        return name, value
    return arg, None


class FlagQueries:
    """What a split command line answers about its flags (`self.flags`: (name, value) pairs in
    order): the last value of a flag, all of them, whether one is there, and the Kubernetes
    namespace (`-n`/`--namespace`, "default" without) for the Helm and kubectl models."""

    flags: list[tuple[str, str | None]]

    def get(self, *names: str) -> str | None:
        found = None
        for name, value in self.flags:
            if name in names:
                found = value
        return found

    def all(self, *names: str) -> list[str]:
        return [v for n, v in self.flags if n in names and v is not None]

    def has(self, *names: str) -> bool:
        return any(n in names for n, _ in self.flags)

    @property
    def namespace(self) -> str:
        return self.get("-n", "--namespace") or "default"


class CommandLine(FlagQueries):
    """The words after a program's name, split as the tool splits them: subcommand words,
    positionals and flags ((name, value) pairs, in order). A flag in `valued` takes the next word
    as its value unless written `--name=value` (at the end of the line it has None); every other
    flag is a switch; `--` ends the flags.
    `sub_arity`: how many leading non-flag words name the subcommand (`helm repo add`: 2).
    `verbatim_after`: once the subcommand and that many positionals are read, the rest of the line
    is positional as written (`docker compose exec SERVICE COMMAND...`: 1; `docker compose
    [OPTIONS] SUBCOMMAND ...`: 0, the subcommand's own flags are read by a second CommandLine)."""

    def __init__(
        self,
        words: list[str],
        valued: Collection[str],
        sub_arity: int = 0,
        verbatim_after: int | None = None,
    ) -> None:
        self.valued = valued
        self.sub: list[str] = []
        self.positional: list[str] = []
        self.flags: list[tuple[str, str | None]] = []
        i = 0
        while i < len(words):
            if self._rest_is_verbatim(sub_arity, verbatim_after):
                self.positional.extend(words[i:])
                break
            name, value = split_flag(words[i])
            if name == "--":
                self.positional.extend(words[i + 1 :])
                break
            if name.startswith("-") and name != "-":
                if name in valued and value is None:
                    i += 1
                    value = words[i] if i < len(words) else None
                self.flags.append((name, value))
            elif len(self.sub) < sub_arity:
                self.sub.append(words[i])
            else:
                self.positional.append(words[i])
            i += 1

    def _rest_is_verbatim(self, sub_arity: int, verbatim_after: int | None) -> bool:
        return (
            verbatim_after is not None
            and len(self.sub) == sub_arity
            and len(self.positional) >= verbatim_after
        )

    def missing_value(self) -> str | None:
        """The first flag that takes a value but has none (the line ended after it)."""
        return next((n for n, v in self.flags if n in self.valued and v is None), None)
