"""`openssl rand`, which the pages run to make secrets (the backend's signature key, Grafana's
admin password): a secret made of fewer than MIN_BYTES random bytes is refused.

A secret is what the bytes are given to: a file whose name says key, password, secret or token
(names.looks_secret, its words joined by `_`: `signature-key`, `admin-password`), written by
the command's redirect, or a variable or `--from-literal` key of that kind the command sets
from `$(openssl rand ...)`. Inside such a substitution, a filter that keeps fewer characters
(`| head -c 8`, `| cut -c1-8`) counts: a character of -hex output carries 4 random bits, of
-base64 output 6, of raw output 8. Random bytes for anything else (a name's suffix, a nonce) are
not judged, nor is a secret cut shorter in a later command (`${KEY:0:6}`) or by a pipeline that
writes a file, which the gate does not follow.

The option table is read from `openssl rand -help` (OpenSSL 3.0.19): `[options] num`, where the
options -engine, -out, -rand, -writerand, -provider-path, -provider and -propquery take a
value and num may carry a K, M, G or T suffix (OpenSSL 3.x). The floor is the project's own
policy, 128 bits, which every secret of the guides clears (32 bytes for the signature key, 16
or more for a password).
"""

from __future__ import annotations

import re
import shlex

from ..names import looks_secret

#: The fewest random bytes a generated secret may have (128 bits).
MIN_BYTES = 16

_VALUED = frozenset(
    {"-engine", "-out", "-rand", "-writerand", "-provider-path", "-provider", "-propquery"}
)
_NUM = re.compile(r"([0-9]+)([KMGT]?)")
#: `$(openssl rand ...)` or a backquoted one inside a word, and what the word gives it to
_SUBSTITUTED = re.compile(r"(\$\(|`)\s*(openssl\s+rand\b[^)`]*)")


def _secret(name: str) -> bool:
    """A file's or variable's name that says it holds a secret (`signature-key`, `KEY`)."""
    base = name.strip("'\"").rsplit("/", 1)[-1]
    return looks_secret(re.sub(r"[^A-Za-z0-9]+", "_", base).upper())


def _bytes(argv: list[str]) -> int | None:
    """The byte count an `openssl rand` command line asks for, or None (none written as a
    number, or one with a K..T suffix, which is more than any floor)."""
    words = iter(argv[2:])
    count = None
    for word in words:
        if word in _VALUED:
            next(words, None)
        elif not word.startswith("-"):
            count = word
    found = _NUM.fullmatch(count or "")
    return int(found[1]) if found is not None and not found[2] else None


def _problem(number: int, what: str) -> str:
    return (
        f"openssl rand makes {number} random byte(s) ({number * 8} bits) for {what}: fewer than "
        f"the {MIN_BYTES} bytes ({MIN_BYTES * 8} bits) this project asks of a secret; write "
        "openssl rand -hex 32"
    )


def rand_problem(argv: list[str], targets: list[str]) -> str | None:
    """Why an `openssl rand` command (`argv`) writes too weak a secret to one of its redirect
    `targets`; None for another command or target."""
    if argv[:2] != ["openssl", "rand"]:
        return None
    number = _bytes(argv)
    secret = next((t for t in targets if _secret(t)), None)
    if number is None or number >= MIN_BYTES or secret is None:
        return None
    return _problem(number, secret.strip("'\""))


def substitution_problem(words: list[str]) -> str | None:
    """Why a command sets a secret (a variable, a `--from-literal` key) from a
    `$(openssl rand ...)` of too few bytes, or cut to too few characters; None where it sets
    none."""
    for word in words:
        for found in _SUBSTITUTED.finditer(word):
            # what the word gives the bytes to: the name before its last `=` ahead of them
            before = word[: found.start()].rstrip("\"'")
            name = before[:-1].rsplit("=", 1)[-1] if before.endswith("=") else ""
            try:
                members = _members(_words(found[2]))
            except ValueError:
                continue
            if not (name and _secret(name)):
                continue
            number = _bytes(members[0])
            if number is not None and number < MIN_BYTES:
                return _problem(number, name)
            if problem := _cut_problem(members, number, name):
                return problem
    return None


def _members(words: list[str]) -> list[list[str]]:
    """A pipeline's commands, split at its `|` words."""
    members: list[list[str]] = [[]]
    for word in words:
        if word == "|":
            members.append([])
        else:
            members[-1].append(word)
    return members


def _words(text: str) -> list[str]:
    """A command line's words, a `|` one of its own even without spaces around it."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars="|")
    lexer.whitespace_split = True
    return list(lexer)


#: random bits one character of openssl rand's output carries, by its encoding option
_BITS_PER_CHARACTER = {"-hex": 4, "-base64": 6}


def _cut_problem(members: list[list[str]], number: int | None, name: str) -> str | None:
    """Why the filters after `openssl rand` keep too few random bits of it for `name`: each
    filter that recodes the output (base64, xxd) changes the bits a character carries, each
    that cuts it (head -c, cut -c or -b) keeps that many characters."""
    per = next((b for o, b in _BITS_PER_CHARACTER.items() if o in members[0]), 8)
    bits = None if number is None else number * 8
    for member in members[1:]:
        per = _recoded(member, per)
        kept = _kept(member)
        if kept is None:
            continue
        bits = kept * per if bits is None else min(kept * per, bits)
        if bits < MIN_BYTES * 8:
            return (
                f"`{' '.join(member)}` keeps {kept} character(s) of openssl rand's output, "
                f"{bits} random bits, for {name}: fewer than the {MIN_BYTES * 8} bits this "
                "project asks of a secret; keep the whole of openssl rand -hex 32"
            )
    return None


def _recoded(argv: list[str], per: int) -> int:
    """The random bits a character carries after `argv`: base64 writes 6 per character and
    decodes to 8, `xxd -p` writes 4 and `xxd -r` reads them back to 8; other commands keep it."""
    decode = any(a in ("-d", "--decode", "-r", "-revert") for a in argv[1:])
    if argv[:1] == ["base64"]:
        return 8 if decode else 6
    if argv[:1] == ["xxd"]:
        return 8 if decode else 4
    return per


def _kept(argv: list[str]) -> int | None:
    """How many characters `head -c N` or `cut -c A-B` (or -b) keeps, or None (another
    command, or another form)."""
    if argv[:1] == ["head"]:
        value = _value(argv[1:], "-c", "--bytes")
        return int(value) if value is not None and value.isdigit() else None
    if argv[:1] == ["cut"]:
        value = _value(argv[1:], "-c", "--characters") or _value(argv[1:], "-b", "--bytes")
        ranged = re.fullmatch(r"([0-9]*)-([0-9]+)|([0-9]+)", value or "")
        if ranged is None:
            return None
        if ranged[3]:
            return 1
        return int(ranged[2]) - int(ranged[1] or 1) + 1
    return None


def _value(args: list[str], short: str, long: str) -> str | None:
    """The value of option `short` (`-c8`, `-c 8`) or `long` (`--bytes=8`, `--bytes 8`)."""
    for i, arg in enumerate(args):
        if arg in (short, long) and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(short) and len(arg) > len(short):
            return arg[len(short) :]
        if arg.startswith(long + "="):
            return arg.partition("=")[2]
    return None
