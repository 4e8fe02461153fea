"""The backend's environment as a Nix block sets it, read statically.

A NixOS module or a flake that runs the backend sets its variables in an attribute set such as
`systemd.services.betrace-backend.environment = { OTEL_EXPORTER_OTLP_ENDPOINT = "..."; }`. This
module finds those assignments with their line, without evaluating anything (the block's inputs,
nixpkgs and NixOS, cannot be fetched offline), so that they can be held to the same rule as a
Compose file's environment (`betrace_dist.backend_env`).

It reads attribute paths only: `a.b = { c = "x"; };` and `a.b.c = "x";` both give `a.b.c`. A
brace that does not directly follow `=` (function arguments, `in { ... }`, a list item) starts a
fresh path, so a module body's paths start at its own top level.
"""

from __future__ import annotations

import bisect
import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from .. import REPO_ROOT
from ..backend_env import env_problems, value_problem
from ..names import close_to, closest
from ..release import ReleaseData
from ..rules.rulesfile import SEVERITIES
from .failure import CheckFailure
from .grafana_settings import split_list, unsigned_sentence
from .session import clone_files

#: The distribution's NixOS module, whose options a host flake sets under `services.<name>`
MODULE = REPO_ROOT / "nix" / "modules" / "betrace-backend.nix"
SERVICE = _SERVICE = "betrace-backend"
#: module options that are the backend's variables, held to the same rule (backend_env)
_OPTION_VARIABLES = {"otlpEndpoint": "OTEL_EXPORTER_OTLP_ENDPOINT"}

#: A file of this distribution's repository in a Nix block: a host flake's input of the
#: repository (`flake = false`) is named `distribution`, as on the Nix flake guide.
_INPUT = "distribution"
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_.+-]+(?:/[A-Za-z0-9_.+-]+)*")
#: The parts of the release data that list a patch series.
_SERIES = ("backend", "plugin")
#: How many unknown paths get a "did you mean" (each is a search of every file's name).
_HINTS = 3

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_'\-]*")
_KEYWORDS = {"let", "in", "inherit", "rec", "with", "if", "then", "else", "assert", "or"}


@dataclass(frozen=True)
class Token:
    kind: str  # id, str, {, }, =, ;, ., other
    text: str | None  # the identifier, or a string's value when it has no interpolation
    line: int
    raw: str = ""  # a string's source between its quotes, interpolations included


@dataclass(frozen=True)
class Assignment:
    path: tuple[str, ...]
    value: str | None  # a plain string literal, else None
    line: int  # 1-based, in the block
    #: the value's first tokens (at most _WORDS of them), up to its `;`
    tokens: tuple[Token, ...] = ()

    @property
    def words(self) -> tuple[str, ...]:
        """The tokens as written (identifiers, string values, punctuation): `true`,
        `backend.overrideAttrs (`, `[ -p2 ]`."""
        return tuple(t.text if t.text is not None else t.raw for t in self.tokens)


#: how many tokens of a value an Assignment keeps
_WORDS = 12


def _value_tokens(toks: list[Token], start: int) -> tuple[Token, ...]:
    out: list[Token] = []
    for tok in toks[start : start + _WORDS]:
        if tok.kind == ";":
            break
        out.append(tok)
    return tuple(out)


def _skip_string(text: str, i: int, closing: str) -> tuple[int, str | None]:
    """Index after a string starting at i (past its opening quote), and its plain value."""
    out, plain, depth = [], True, 0
    while i < len(text):
        if closing == '"' and text[i] == "\\":
            out.append(text[i + 1 : i + 2])
            i += 2
            continue
        if closing == "''" and text.startswith("''", i) and text[i + 2 : i + 3] in ("$", "'", "\\"):
            i += 3
            continue
        if text.startswith("${", i):
            plain, depth, i = False, depth + 1, i + 2
            continue
        if depth and text[i] == "}":
            depth -= 1
        elif not depth and text.startswith(closing, i):
            return i + len(closing), "".join(out) if plain else None
        elif not depth:
            out.append(text[i])
        i += 1
    return i, None


def tokens(text: str) -> list[Token]:
    out: list[Token] = []
    breaks = [m.start() for m in re.finditer("\n", text)]  # the line of i, found by bisection
    i = 0
    while i < len(text):
        ch, line = text[i], bisect.bisect_left(breaks, i) + 1
        if ch.isspace():
            i += 1
        elif ch == "#":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 2
        elif ch == '"' or text.startswith("''", i):
            closing = '"' if ch == '"' else "''"
            start = i + len(closing)
            i, value = _skip_string(text, start, closing)
            out.append(Token("str", value, line, text[start : i - len(closing)]))
        elif match := _IDENT.match(text, i):
            out.append(Token("id", match.group(), line))
            i = match.end()
        elif ch in "{}=;.":
            kind = "other" if text.startswith(("==", "=>"), i) else ch
            out.append(Token(kind, ch, line))
            i += 2 if kind == "other" and ch == "=" else 1
        else:
            out.append(Token("other", ch, line))
            i += 1
    return out


def _path_at(toks: list[Token], i: int) -> tuple[list[str], int] | None:
    """An attribute path followed by `=` at toks[i], with the index of the `=`."""
    path: list[str] = []
    while i < len(toks):
        tok = toks[i]
        if tok.kind not in ("id", "str") or (tok.kind == "id" and tok.text in _KEYWORDS):
            return None
        path.append(tok.text if tok.text is not None else "?")
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if nxt is None:
            return None
        if nxt.kind == "=":
            return path, i + 1
        if nxt.kind != ".":
            return None
        i += 2
    return None


def _closing_braces(toks: list[Token]) -> dict[int, int]:
    """Each `{` token's index -> the index of its matching `}` (one pass, a stack)."""
    out: dict[int, int] = {}
    opened: list[int] = []
    for at, tok in enumerate(toks):
        if tok.kind == "{":
            opened.append(at)
        elif tok.kind == "}" and opened:
            out[opened.pop()] = at
    return out


def _function_body(toks: list[Token], at: int, closing: dict[int, int]) -> int:
    """Where the body of a function written at toks[at] begins (`{ pkgs, ... }: BODY`,
    `args: BODY`, one after another), or `at` when no function is written there: NixOS takes a
    module, a node or a test script written as a function of its arguments. `closing`:
    _closing_braces of the tokens, so that each look is one step."""
    while at < len(toks):
        if toks[at].kind == "id" and at + 1 < len(toks) and _colon(toks, at + 1):
            at += 2
            continue
        close = closing.get(at) if toks[at].kind == "{" else None
        if close is not None and close + 1 < len(toks) and _colon(toks, close + 1):
            at = close + 2
            continue
        return at
    return at


def _colon(toks: list[Token], at: int) -> bool:
    return toks[at].kind == "other" and toks[at].text == ":"


#: the longest attribute path and the deepest nesting of sets the gate reads: a NixOS option's
#: path has a dozen components, and each nested set copies its path (a 384 KB block of 180,000
#: components under 1,500 sets took 6.5 GB of the gate's memory)
MAX_PATH = 64
MAX_DEPTH = 128


def _bounded(path: list[str], depth: int, line: int) -> None:
    """Refuse an attribute path or a nesting past what the gate reads, at its line."""
    if len(path) > MAX_PATH or depth > MAX_DEPTH:
        raise CheckFailure(
            f"an attribute path of {len(path)} components {depth} sets deep: the gate reads "
            f"paths of {MAX_PATH} components and {MAX_DEPTH} nested sets at most",
            line,
        )


def assignments(text: str) -> list[Assignment]:
    """Every `path = "string";` and `path = <other>;` binding, with its full attribute path. An
    attribute set inside the value of a binding (`x = lib.mkIf c { ... };`, `with lib; { ... }`,
    `if c then { ... } else { };`, `lib.mkMerge [ { ... } ]`, a list item) continues that
    binding's path; a top-level `config.` is dropped, as NixOS reads it."""
    toks = tokens(text)
    closing = _closing_braces(toks)
    frames: list[list[str]] = [[]]
    pending: list[list[str] | None] = [None]  # the binding whose value is being read, per frame
    out: list[Assignment] = []
    start, in_with = True, False
    i = 0
    while i < len(toks):
        tok = toks[i]
        found = _path_at(toks, i) if start else None
        if found is not None:
            path, eq = found
            full = frames[-1] + path
            _bounded(full, len(frames), tok.line)
            if not frames[-1] and full[:1] == ["config"]:
                full = full[1:]
            at = _function_body(
                toks, eq + 1, closing
            )  # `x = { pkgs, ... }: { ... };` sets the body
            value = toks[at] if at < len(toks) else None
            if value is not None and value.kind == "{":
                frames.append(full)
                pending.append(None)
                i, start = at + 1, True
                continue
            ends = [t.kind for t in toks[at + 1 : at + 2]]
            plain = value is not None and value.kind == "str" and ends == [";"]
            text_value = value.text if value is not None and plain else None
            out.append(Assignment(tuple(full), text_value, tok.line, _value_tokens(toks, at)))
            pending[-1] = full
            i, start = at, False
            continue
        if tok.kind == "{":
            frames.append(list(pending[-1] or []))
            pending.append(None)
            _bounded(frames[-1], len(frames), tok.line)
        elif tok.kind == "}" and len(frames) > 1:
            frames.pop()
            pending.pop()
        elif tok.kind == ";" and not in_with:
            pending[-1] = None
        in_with = (in_with and tok.kind != ";") or (tok.kind == "id" and tok.text == "with")
        start = tok.kind in ("{", ";") or (tok.kind == "id" and tok.text in ("let", "in", "rec"))
        i += 1
    return out


def backend_env(text: str, binary: str) -> list[Assignment]:
    """Assignments to `<...>.environment.NAME` of something named after the backend."""
    out = []
    for found in assignments(text):
        path = found.path
        if len(path) < 3 or path[-2] != "environment":
            continue
        if any("betrace" in part and "grafana" not in part for part in path[:-2]) or any(
            binary == part for part in path[:-2]
        ):
            out.append(found)
    return out


def problems(text: str, data: ReleaseData) -> list[tuple[int, str]]:
    """(line in the block, sentence) for every backend variable the block sets wrongly; a value
    that is not a plain string (interpolated, computed) has its name checked only."""
    out = []
    for found in backend_env(text, data.current.backend.binary):
        env = {found.path[-1]: found.value}
        for _, problem in env_problems(env, data):
            out.append((found.line, f"{'.'.join(found.path)} {problem}"))
    return out


#: a variable a development shell's shellHook exports for the backend it puts on PATH
_HOOK_EXPORT = re.compile(r"^[ \t]*export[ \t]+(BETRACE_[A-Z0-9_]+)=", re.MULTILINE)


def shell_hook_problems(text: str, data: ReleaseData) -> list[tuple[int, str]]:
    """(line, sentence) for a BETRACE_* variable a shellHook exports that the backend does not
    read (releases.yaml backend.env): the backend started from that shell ignores it, and the
    setting it stands for (a data folder, a port) silently stays at its default."""
    read = data.current.backend.read
    out = []
    for found in assignments(text):
        if found.path[-1:] != ("shellHook",) or found.value is None:
            continue
        for match in _HOOK_EXPORT.finditer(found.value):
            if match[1] not in read:
                out.append(
                    (
                        found.line + found.value.count("\n", 0, match.start(1)),
                        f"shellHook exports {match[1]}, which the backend does not read"
                        f"{closest(match[1], sorted(read))} (releases.yaml backend.env); it "
                        "starts with that setting's default",
                    )
                )
    return out


@cache
def module_options() -> frozenset[str]:
    """The top-level options the module declares (`options.services.betrace-backend.NAME`)."""
    text = MODULE.read_text(encoding="utf-8")
    head = ("options", "services", _SERVICE)
    return frozenset(
        a.path[3] for a in assignments(text) if a.path[:3] == head and len(a.path) == 4
    )


#: the severities the module's rule type takes (its `lib.types.enum`: the Grafana app's four, as
#: rules/rulesfile.py SEVERITIES, or none); tests/artefacts/test_nixos_module.py holds the two
#: to each other. Unlike a rules file, which writes any case in capitals, Nix compares as written.
MODULE_SEVERITIES = ("", *SEVERITIES)


def severity_problems(text: str) -> list[tuple[int, str]]:
    """(line, sentence) for each rule given to the module's `rules` with a severity its type
    refuses: Nix stops the build with "is not of type `one of ...`"."""
    head = ("services", _SERVICE, "rules", "severity")
    return [
        (
            found.line,
            f'services.{_SERVICE}.rules: severity "{found.value}" is not one the module\'s rule '
            f"type takes ({', '.join(repr(s) for s in MODULE_SEVERITIES)}, as written: an enum); "
            f"Nix stops the build",
        )
        for found in assignments(text)
        if found.path == head and found.value is not None and found.value not in MODULE_SEVERITIES
    ]


#: a file systemd hands a unit (LoadCredential=NAME:PATH puts it at
#: /run/credentials/UNIT.service/NAME: systemd.exec(5), "Credentials")
_CREDENTIAL = re.compile(r"/run/credentials/([^/\s\"'}]+)/([\w@.-]+)")


def credential_problems(text: str) -> list[tuple[int, str]]:
    """(line, sentence) for a unit's LoadCredential written outside its serviceConfig (NixOS has
    no such option: a unit's [Service] settings go in serviceConfig; read in nixpkgs'
    nixos/lib/systemd-unit-options.nix, serviceOptions, at commit 01f31c2e, a version older
    than the page's nixos-unstable, which cannot be fetched here), and for a read of
    /run/credentials/UNIT.service/NAME where the block gives that unit a LoadCredential that
    names no NAME: systemd hands a unit only the credentials it names, and the reader's
    service then fails on a file that is not there."""
    given: dict[str, set[str]] = {}
    out: list[tuple[int, str]] = []
    found = assignments(text)
    for a in found:
        if a.path[-1:] != ("LoadCredential",) or "services" not in a.path[:-2]:
            continue
        at = a.path.index("services")
        unit = a.path[at + 1] if len(a.path) > at + 1 else ""
        if a.path[at + 2 : -1] != ("serviceConfig",):
            out.append(
                (
                    a.line,
                    f"{'.'.join(a.path)} is no NixOS option: a unit's LoadCredential goes in "
                    f"systemd.services.{unit}.serviceConfig, with its other [Service] settings",
                )
            )
            continue
        given.setdefault(unit, set()).update(
            w.split(":", 1)[0] for w in a.words if ":" in w and w[:1] not in "[]"
        )
    for a in found:
        for folder, name in _CREDENTIAL.findall(a.value or ""):
            problem = _read_problem(folder, name, given)
            if problem is not None:
                out.append((a.line, f"{'.'.join(a.path)} {problem}"))
    return out


def _read_problem(folder: str, name: str, given: dict[str, set[str]]) -> str | None:
    """Why a read of /run/credentials/FOLDER/NAME finds no file, where the block's
    LoadCredentials (`given`: unit -> names) tell; None where it cannot be told."""
    unit = folder.removesuffix(".service")
    owners = sorted(u for u, names in given.items() if name in names)
    if folder.startswith("@"):  # systemd's own folders (@system): not a unit's
        return None
    if not _UNIT_NAME.search(folder):
        return f"reads {_not_a_unit(folder)}"
    if unit == folder:  # another kind of unit's: not judged
        return None
    if unit not in given and owners:
        return (
            f"reads the credential '{name}' of {folder}, but the block's LoadCredential hands "
            f"it to {owners[0]}.service: systemd puts a unit's credentials in "
            "/run/credentials/UNITNAME of that unit alone"
        )
    if unit in given and name not in given[unit]:
        return (
            f"reads the credential '{name}' of {unit}.service, which its LoadCredential does "
            f"not name (it names: {', '.join(sorted(given[unit]))}): systemd hands the unit only "
            f"those, and {unit} fails on the missing file"
        )
    return None


#: the end of a unit's name whose processes systemd may hand credentials (systemd.unit(5))
_UNIT_NAME = re.compile(r"\.(service|socket|mount|swap)$")


def _not_a_unit(folder: str) -> str:
    return (
        f"/run/credentials/{folder} names no unit: systemd.exec(5) (systemd 252) puts a system "
        "service's credentials in /run/credentials/UNITNAME, and a unit's name ends in its "
        f"type (systemd.unit(5)): /run/credentials/{folder}.service"
    )


def option_problems(text: str) -> list[tuple[int, str]]:
    """(line, sentence) for every `services.betrace-backend.X` the module does not declare, and
    every option that is a backend variable given a plain string the backend refuses. Read, not
    evaluated: a setting the module's types refuse otherwise is not seen here."""
    known = module_options()
    out = []
    reported: set[str] = set()
    for found in assignments(text):
        if found.path[:2] != ("services", _SERVICE) or len(found.path) < 3:
            continue
        name, shown = found.path[2], ".".join(found.path[:3])
        if name not in known and name not in reported:
            reported.add(name)
            hint = closest(name, sorted(known))
            out.append(
                (
                    found.line,
                    f"{shown} is not an option of the distribution's module "
                    f"(nix/modules/{MODULE.name}){hint}; it has: {', '.join(sorted(known))}",
                )
            )
        elif name in _OPTION_VARIABLES and found.value is not None and len(found.path) == 3:
            problem = value_problem(_OPTION_VARIABLES[name], found.value)
            if problem is not None:
                out.append((found.line, f"{shown} {problem}"))
    return out


@cache
def _repository_files() -> frozenset[str]:
    """The repository's files and folders, as relative paths: what a fresh clone holds
    (session.clone_files; names only, no link is followed), or, outside a git checkout, the
    files under nix/ and patches/."""
    files = list(clone_files() or ())
    for top in () if files else ("nix", "patches"):
        for folder, _, names in os.walk(REPO_ROOT / top):
            base = Path(folder).relative_to(REPO_ROOT).as_posix()
            files += [f"{base}/{name}" for name in names]
    folders = {posixpath.dirname(f) for f in files}
    while "" not in folders and folders:
        folders |= {posixpath.dirname(f) for f in folders}
    return frozenset(files) | (folders - {""})


def _distribution_paths(text: str) -> Iterator[tuple[int, str | None]]:
    """(line, path in the repository) of each file the block takes from the distribution's
    input, in order; None for one whose path the gate cannot read (an interpolation, `+`).
    Comments are not read (the tokens skip them)."""
    toks = tokens(text)
    head = "${" + _INPUT + "}"
    for i, tok in enumerate(toks):
        if tok.kind == "str" and head in tok.raw:
            rest = tok.raw.removeprefix(head + "/")
            plain = tok.raw.startswith(head + "/") and "${" not in rest
            yield tok.line, (rest if plain else None)
        elif (
            tok.kind == "id"
            and tok.text == _INPUT
            and [t.text for t in toks[i + 1 : i + 2]] == ["+"]
        ):
            yield tok.line, None  # `distribution + "/path"`


def _series_problems(named: list[tuple[int, str]], data: ReleaseData) -> Iterator[tuple[int, str]]:
    """Each run of a series' patches (a run starts again at its first patch: the series applied
    to two packages) must be the whole series, in order."""
    for field in _SERIES:
        want = [Path(p.file).name for p in getattr(data.current, field).patches]
        runs: list[list[tuple[int, str]]] = []
        for line, path in named:
            name = Path(path).name
            if name in want:
                if not runs or name == want[0]:
                    runs.append([])
                runs[-1].append((line, name))
        for run in runs:
            if [name for _, name in run] != want:
                shown = ", ".join(name for _, name in run)
                yield (
                    run[0][0],
                    f"the block applies the {field} patches {shown}; the release carries "
                    f"{', '.join(want)}, all of them in this order (releases.yaml {field}.patches)",
                )


def distribution_file_problems(text: str, data: ReleaseData) -> list[tuple[int, str]]:
    """(line, sentence) for every file the block takes from the distribution that the
    repository does not have or the gate cannot read, and for a patch series applied other
    than whole and in order."""
    out: list[tuple[int, str]] = []
    named: list[tuple[int, str]] = []
    hints = _HINTS
    for line, path in _distribution_paths(text):
        if path is None:
            out.append(
                (
                    line,
                    f"a file of the {_INPUT} input whose path the gate cannot read: write it out "
                    f'in full, as "${{{_INPUT}}}/path/in/the/repository"',
                )
            )
            continue
        clean = posixpath.normpath(path) if _PLAIN_PATH.fullmatch(path) else ""
        if not clean or ".." in path.split("/") or clean.startswith("/"):
            out.append((line, f"${{{_INPUT}}}/{path} is not a plain path of the repository"))
            continue
        if clean not in _repository_files():
            guess = None
            if hints:
                hints -= 1
                guess = close_to(clean, sorted(_repository_files()))
            hint = f", did you mean {guess}?" if guess else ""
            out.append((line, f"${{{_INPUT}}}/{path}: the repository has no such file{hint}"))
        named.append((line, clean))
    return out + list(_series_problems(named, data))


def host_problems(text: str, data: ReleaseData) -> list[tuple[int, str]]:
    """(line, sentence) for a host's configuration of the distribution's module that cannot
    run what it says: options set without `enable = true` (the module's `enable` is a
    mkEnableOption, off, and its whole `config` is `lib.mkIf cfg.enable`: no service exists);
    the backend's patch series applied without `patchFlags = [ "-p2" ]` (its paths start at
    the repository's root, one level above the backend's source); and, where the block builds
    such a patched backend, a `package` that is not it. The `enable` is asked only of a whole
    system (a block with `nixosSystem`): a fragment may show one option to add."""
    found = assignments(text)
    service = [s for a in found if (s := _from_service(a)) is not None and len(s.path) >= 3]
    out: list[tuple[int, str]] = []
    enabled = [a for a in service if a.path[2:] == ("enable",)]
    whole = any(t.kind == "id" and t.text == "nixosSystem" for t in tokens(text))
    # `true`, or wrapped (lib.mkDefault true, lib.mkForce true)
    on = any(a.words[-1:] == ("true",) and "false" not in a.words for a in enabled)
    if service and whole and not on:
        out.append(
            (
                (enabled or service)[0].line,
                f"services.{_SERVICE} is configured but not enabled (enable = true): the "
                f"module's enable option is off by default and it applies nothing without it "
                f"(nix/modules/{MODULE.name}), so no backend service exists",
            )
        )
    patched = _patched_names(text, found, data)
    if patched is None:
        return out
    names, line = patched
    flags = [a for a in found if a.path[-1:] == ("patchFlags",)]
    if not any(a.words[:1] == ("[",) and "-p2" in a.words for a in flags):
        out.append(
            (
                (flags[0] if flags else Assignment((), None, line)).line,
                'the backend\'s patches are applied without patchFlags = [ "-p2" ]: their paths '
                "start one level above the backend's source (a/backend/...), so the build "
                "finds none of their files",
            )
        )
    for a in service:
        inline = "overrideAttrs" in a.words
        if a.path[2:] == ("package",) and a.words[:1] and a.words[0] not in names and not inline:
            out.append(
                (
                    a.line,
                    f"services.{_SERVICE}.package is {' '.join(a.words)}, not the backend this "
                    f"block patches ({', '.join(sorted(names))}): the service runs without the "
                    "distribution's patches",
                )
            )
    return out


def _from_service(found: Assignment, service: str = _SERVICE) -> Assignment | None:
    """The assignment with its path from `services.<service>` (the backend's by default) on,
    wherever the block nests it (a module in a list of modules continues its binding's path),
    or None."""
    path = found.path
    for i in range(len(path) - 1):
        if path[i : i + 2] == ("services", service):
            return replace(found, path=path[i:])
    return None


def _names_the_app(word: str, plugin_id: str) -> bool:
    """A word of a `declarativePlugins` value that stands for the BeTrace app: its id, or a
    package named like the ones this project's pages and flakes give it (`grafana-plugin`,
    `betrace...`)."""
    return plugin_id in word or word.split(".")[-1] == "grafana-plugin" or "betrace" in word


#: The NixOS Grafana module's freeform `settings.<section>.<key>`, which it writes into
#: grafana.ini (nixpkgs nixos/modules/services/monitoring/grafana.nix, as the Nix flake guide
#: uses it; the module is not evaluated here)
_UNSIGNED = ("settings", "plugins", "allow_loading_unsigned_plugins")


def grafana_problems(text: str, data: ReleaseData) -> list[tuple[int, str]]:
    """(line, sentence) for a host's Grafana that is given the app (`declarativePlugins`) but
    not allowed to load it unsigned: `settings.plugins.allow_loading_unsigned_plugins` must
    name the app's id (Grafana reads the list as grafana_settings.split_list says). A value
    the block computes (not a string or a list of strings) is not judged; a key of
    `settings.plugins` close to the right one is named."""
    found = [g for a in assignments(text) if (g := _from_service(a, "grafana")) is not None]
    plugin_id = data.current.plugin.id
    given = [
        a
        for a in found
        if a.path[2:] == ("declarativePlugins",)
        and any(_names_the_app(w, plugin_id) for w in a.words)
    ]
    if not given:
        return []
    allowed = [a for a in found if a.path[2:] == _UNSIGNED]
    for a in allowed:
        if a.value is not None and plugin_id in split_list(a.value):
            return []
        items = [(w, t.kind) for w, t in zip(a.words, a.tokens, strict=True) if w not in "[]"]
        strings_only = a.words[:1] == ("[",) and a.words[-1:] == ("]",)
        strings_only = strings_only and all(k == "str" for _, k in items)
        if strings_only and plugin_id in [w for w, _ in items]:
            return []
        if a.value is None and not strings_only:
            return []  # computed (a variable, a function, a list with one): not judged
    keys = [a.path[4] for a in found if a.path[2:4] == _UNSIGNED[:2] and len(a.path) == 5]
    near = close_to(_UNSIGNED[-1], [k for k in keys if k != _UNSIGNED[-1]])
    where = (allowed or given)[0].line
    sentence = unsigned_sentence(
        plugin_id,
        ".".join(_UNSIGNED),
        "services.grafana is given it (declarativePlugins) and the block does not name it there",
        f"the block sets settings.plugins.{near}" if near else None,
    )
    return [(where, sentence)]


def _patched_names(
    text: str, found: list[Assignment], data: ReleaseData
) -> tuple[set[str], int] | None:
    """Where the block takes the backend's patch series from the distribution: the names it
    binds to an `overrideAttrs` (the patched package), and the first patch's line; None where
    it applies no backend patch."""
    series = {Path(p.file).name for p in data.current.backend.patches}
    lines = [
        line
        for line, path in _distribution_paths(text)
        if path is not None and Path(path).name in series
    ]
    if not lines:
        return None
    names = {a.path[-1] for a in found if a.path and "overrideAttrs" in a.words}
    return names, lines[0]


#: the fields of a rule of the module's `rules` option that the backend's POST /v1/rules takes
_RULE_FIELDS = ("name", "expression", "severity", "description")


def module_rules(text: str) -> list[tuple[int, dict[str, str]]]:
    """(line of its expression, the rule) of each rule the block gives the module's `rules`
    option whose name and expression are plain strings, in order: a `name` starts a rule."""
    head = ("services", _SERVICE, "rules")
    out: list[tuple[int, dict[str, str]]] = []
    current: dict[str, str] = {}
    line = 0
    for found in assignments(text):
        if found.path[:3] != head or len(found.path) != 4 or found.path[3] not in _RULE_FIELDS:
            continue
        field = found.path[3]
        if field == "name" or field in current:
            if {"name", "expression"} <= current.keys():
                out.append((line, current))
            current = {}
        if found.value is not None:
            current[field] = found.value
        line = found.line if field == "expression" else line
    if {"name", "expression"} <= current.keys():
        out.append((line, current))
    return out
