"""`openssl rand`, which the pages run to make secrets (the backend's signature key, Grafana's
admin password): a secret made of fewer than MIN_BYTES random bytes is refused.

A secret is what the bytes are given to: a file whose name says key, password, secret or token
(names.looks_secret, its words joined by `_`: `signature-key`, `admin-password`), written by
the command's redirect, or a variable or `--from-literal` key of that kind the command sets
from `$(openssl rand ...)`. Random bytes for anything else (a name's suffix, a nonce) are not
judged, nor is a secret cut shorter afterwards (`| head -c 6`), which the gate does not follow.

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
    `$(openssl rand ...)` of too few bytes; None where it sets none."""
    for word in words:
        for found in _SUBSTITUTED.finditer(word):
            # what the word gives the bytes to: the name before its last `=` ahead of them
            before = word[: found.start()].rstrip("\"'")
            name = before[:-1].rsplit("=", 1)[-1] if before.endswith("=") else ""
            try:
                number = _bytes(shlex.split(found[2]))
            except ValueError:
                continue
            if name and _secret(name) and number is not None and number < MIN_BYTES:
                return _problem(number, name)
    return None
