"""Flags a real tool accepts, read from the tool itself, so a guide cannot invent one, and how
many words each takes, so that a command line is split as the tool splits it.

How a tool lists its flags is the tool registry's (tools.TOOLS: its help words, or Nix's own
JSON description of its command line). What a tool prints is read once and kept in
HELP_STORE (an ignored cache folder), keyed by the program file's content (sha256) and the words
asked: a new version of the tool is asked again, the same one never twice.

`CommandLine` is the one splitter of the Helm, git clone, nix, docker build and docker compose
models; kubectl.py splits its lines itself, because which words are subcommands and which flags
take a value change as kubectl's help is read word by word (and `-it` bundles switches)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from ...names import closest
from ...tools import TOOLS
from ..shellwords import SUBSTITUTED

_FLAG = re.compile(r"(?:^|\s|,)(--?[A-Za-z][\w-]*)")
#: what follows the names of a boolean flag in kubectl's help (`--watch=false:`)
_BOOLEAN_DEFAULT = frozenset({"true", "false"})


@dataclass(frozen=True)
class Options:
    names: frozenset[str]  # every -x / --long flag the tool lists
    valued: frozenset[str]  # the ones that take a value
    pairs: frozenset[str] = frozenset()  # the ones that take two (`nix --arg NAME EXPR`)

    def __or__(self, other: Options) -> Options:
        return Options(
            self.names | other.names, self.valued | other.valued, self.pairs | other.pairs
        )


#: Where the tools' help texts are kept between runs: BETRACE_CACHE_DIR/tool-help when it is
#: set, and the gate's result cache folder (in pytest's ignored cache) when that is on; None
#: keeps nothing (a gate run never writes into the repository a cache the reader did not ask for).
HELP_STORE: Path | None = (
    Path(os.environ["BETRACE_CACHE_DIR"]) / "tool-help"
    if os.environ.get("BETRACE_CACHE_DIR")
    else None
)


#: The words a help text may be asked with: subcommand names and the registry's help flags.
#: A page's word reaches here only once it is one of the tool's own subcommands (subcommands());
#: this is the last line against one that is not (kubectl runs `kubectl-<word>` as a plugin).
_HELP_WORD = re.compile(r"-{0,2}[a-z_][a-z0-9_-]*")


@cache
def help_text(binary: str, *args: str) -> str:
    """What `binary ARGS` prints: read once, and kept in HELP_STORE for that program file. Run
    with the gate's rights, outside any jail: so only with words that name no file, from `/`."""
    if not all(_HELP_WORD.fullmatch(a) for a in args):
        raise ValueError(f"no help is asked with the words {args!r}: they are no subcommand")
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


@cache
def _content_hash(program: Path, size: int, mtime_ns: int, inode: int) -> str:
    """sha256 of a program file (hashed once per process while its size, time and inode hold)."""
    with program.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _kept_help(binary: str, args: tuple[str, ...]) -> Path | None:
    if HELP_STORE is None:
        return None
    try:
        program = Path(binary).resolve()
        info = program.stat()
        content = _content_hash(program, info.st_size, info.st_mtime_ns, info.st_ino)
    except OSError:
        return None
    identity = f"{content}\0" + "\0".join(args)
    return HELP_STORE / program.name / f"{hashlib.sha256(identity.encode()).hexdigest()}.txt"


def _run_help(binary: str, args: tuple[str, ...]) -> str:
    done = subprocess.run(
        [binary, *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
        cwd="/",  # never the checkout, where a pull request can put files
    )
    return done.stdout + done.stderr


_COMMANDS_HEADING = re.compile(r"[A-Z][^:]*Commands(?: \([^)]*\))?:")


@cache
def subcommands(binary: str, *path: str) -> frozenset[str]:
    """The subcommands `binary PATH --help` lists under its headings ending in "Commands:"
    (cobra's layout, which Helm and kubectl share: "Available Commands:", kubectl's "Basic
    Commands (Beginner):"...). A page's word is a subcommand only if it is one of these."""
    names: set[str] = set()
    listing = False
    for line in help_text(binary, *path, "--help").splitlines():
        if _COMMANDS_HEADING.fullmatch(line.strip()) and not line.startswith(" "):
            listing = True
        elif listing and line.startswith("  ") and line.strip():
            names.add(line.split()[0])
        else:
            listing = False
    return frozenset(names)


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
    """The flags of `binary subcommand`, as the registry says the tool lists them (its help, or
    Nix's description of its command line); a program the registry does not know: its --help."""
    tool = TOOLS.get(Path(binary).name)
    if tool is not None and tool.flags == "nix":
        return nix_options(binary, *subcommand)
    words = tool.help if tool is not None else ("--help",)
    return parse_help(help_text(binary, *subcommand, *words))


def nix_arguments(binary: str, *subcommand: str) -> list[str]:
    """What the positional words of `nix SUBCOMMAND` are, as Nix labels them in `nix
    __dump-args` (`installables`, `installable`, `flake-url`, `paths`...)."""
    node: dict[str, Any] = json.loads(help_text(binary, "__dump-args"))
    for word in subcommand:
        node = (node.get("commands") or {}).get(word) or {}
    return [str(a.get("label")) for a in node.get("args") or []]


def nix_command_path(binary: str, words: list[str]) -> tuple[list[str], str | None]:
    """The subcommand the leading words of a `nix` line name, walked down Nix's own tree of
    commands (`nix __dump-args`) for as long as a command has subcommands of its own (`nix
    flake show`, `nix profile install`, `nix store gc`), and why a word there is none, with
    the closest one (None when all are). nix_options alone gave an unknown one no flags of
    its own and let the line pass."""
    node: dict[str, Any] = json.loads(help_text(binary, "__dump-args"))
    path: list[str] = []
    for word in words:
        commands = node.get("commands") or {}
        if not commands:
            break
        if word not in commands:
            above = " ".join(["nix", *path])
            return path, f"{above} has no subcommand '{word}'{closest(word, sorted(commands))}"
        path.append(word)
        node = commands[word]
    return path, None


def nix_options(binary: str, *subcommand: str) -> Options:
    """Nix's flags for `nix SUBCOMMAND`, from `nix __dump-args` (the JSON Nix documents its own
    command line with: every flag, its short name and how many words it takes); the settings
    every command takes (`--option`'s names, as `--NAME VALUE`) included."""
    described: dict[str, Any] = json.loads(help_text(binary, "__dump-args"))
    flags = dict(described.get("flags") or {})
    node = described
    for word in subcommand:
        node = (node.get("commands") or {}).get(word) or {}
        flags |= node.get("flags") or {}
    names: set[str] = set()
    valued: set[str] = set()
    pairs: set[str] = set()
    for long_name, flag in flags.items():
        short = flag.get("shortName")
        spelled = {f"--{long_name}"} | ({f"-{short}"} if short else set())
        names |= spelled
        arity = flag.get("arity", 0)
        valued |= spelled if arity >= 1 else set()
        pairs |= spelled if arity >= 2 else set()
    return Options(frozenset(names), frozenset(valued), frozenset(pairs))


class Ran(Protocol):
    """What a finished process gives (the session's Done, subprocess's CompletedProcess)."""

    @property
    def returncode(self) -> int: ...
    @property
    def stdout(self) -> str: ...
    @property
    def stderr(self) -> str: ...


#: pflag's message for a value its flag's type cannot parse (a duration, a number, a boolean)
_INVALID_VALUE = re.compile(r'invalid argument "[^"\n]*" for "[^"\n]+" flag: [^\n]*')


def value_problem(
    process: Callable[[list[str]], Ran], argv: list[str], path: list[str]
) -> str | None:
    """A flag value the real tool's flag parser refuses (`--timeout=5`: "missing unit in
    duration"), asked of the tool itself: the page's words with --help right after its
    subcommand `path` (`rollout status`). Cobra parses every flag, each value by its type,
    before it shows the help, and then does nothing else (kubectl and Helm are cobra programs);
    placed there, --help is never the value of a flag the page left without one (which would
    run the command). None when it parses, when it fails otherwise (the models say why), or
    when the refused value stands for a command substitution."""
    at, found = 0, 0
    for index, word in enumerate(argv[1:], start=1):
        if found < len(path) and word == path[found]:
            found, at = found + 1, index
    if found < len(path) or not path:
        return None
    done = process([*argv[: at + 1], "--help", *argv[at + 1 :]])
    if done.returncode == 0:
        return None
    found_text = _INVALID_VALUE.search(f"{done.stderr}\n{done.stdout}")
    if found_text is None or SUBSTITUTED in found_text.group(0):
        return None
    return found_text.group(0)


def accepted(binary: str, *subcommand: str) -> frozenset[str]:
    """Every -x / --long flag the help text of `binary subcommand --help` lists."""
    return options(binary, *subcommand).names


def split_flag(arg: str) -> tuple[str, str | None]:
    """('--namespace', 'x') from '--namespace=x'; ('-n', None) from '-n'."""
    if arg.startswith("--") and "=" in arg:
        name, _, value = arg.partition("=")
        return name, value
    return arg, None


#: The words Go's strconv.ParseBool reads as false (its documentation: "0", "f", "F", "FALSE",
#: "false", "False").
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


class FlagQueries:
    """What a split command line answers about its flags (`self.flags`: (name, value) pairs in
    order): the last value of a flag, all of them, whether one is there, and the Kubernetes
    namespace (`-n`/`--namespace`, default_namespace without) for the Helm and kubectl models."""

    flags: list[tuple[str, str | None]]
    #: the namespace without -n/--namespace: Kubernetes' "default" (kubectl), or what the tool
    #: reads from its environment (helm.py sets Helm's HELM_NAMESPACE here)
    default_namespace = "default"

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

    def on(self, *names: str) -> bool:
        """Whether the last of these boolean flags is on: `--x` and `--x=true` are, `--x=false`
        is not (the false words of Go's strconv.ParseBool, which pflag's bool flags use)."""
        state = False
        for name, value in self.flags:
            if name in names:
                state = value is None or value not in _GO_FALSE
        return state

    @property
    def namespace(self) -> str:
        """-n/--namespace, else default_namespace; an empty one (`-n ""`) is "default", as
        the flag's empty value leaves the choice to the kubeconfig, which the guides never set."""
        if self.has("-n", "--namespace"):
            return self.get("-n", "--namespace") or "default"
        return self.default_namespace


class CommandLine(FlagQueries):
    """The words after a program's name, split as the tool splits them: subcommand words,
    positionals and flags ((name, value) pairs, in order). A flag in `valued` takes the next word
    as its value unless written `--name=value` (at the end of the line it has None); every other
    flag is a switch; `--` ends the flags. `valued` may be a tool's Options: then a flag of its
    `pairs` takes the next two words (`--override-input NAME REF`, as one value "NAME REF").
    `sub_arity`: how many leading non-flag words name the subcommand (`helm repo add`: 2).
    `verbatim_after`: once the subcommand and that many positionals are read, the rest of the line
    is positional as written (`docker compose exec SERVICE COMMAND...`: 1; `docker compose
    [OPTIONS] SUBCOMMAND ...`: 0, the subcommand's own flags are read by a second CommandLine)."""

    def __init__(
        self,
        words: list[str],
        valued: Collection[str] | Options,
        sub_arity: int = 0,
        verbatim_after: int | None = None,
    ) -> None:
        pairs = valued.pairs if isinstance(valued, Options) else frozenset()
        valued = valued.valued if isinstance(valued, Options) else valued
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
                    taken = words[i + 1 : i + 2 + (name in pairs)]
                    i += len(taken)
                    value = " ".join(taken) if taken else None
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
