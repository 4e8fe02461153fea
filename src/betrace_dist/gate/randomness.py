"""`openssl rand`, which the pages run to make secrets (the backend's signature key, Grafana's
admin password): a secret made of fewer than MIN_BYTES random bytes is refused.

The option table is read from `openssl rand -help` (OpenSSL 3.0.19): `[options] num`, where the
options -engine, -out, -rand, -writerand, -provider-path, -provider and -propquery take a
value and num may carry a K, M, G or T suffix (OpenSSL 3.x). The floor is the project's own
policy: 128 bits, beyond any guessing, which every secret of the guides clears (32 bytes for
the signature key, 16 or more for a password).
"""

from __future__ import annotations

import re

#: The fewest random bytes a generated secret may have (128 bits).
MIN_BYTES = 16

_VALUED = frozenset(
    {"-engine", "-out", "-rand", "-writerand", "-provider-path", "-provider", "-propquery"}
)
_NUM = re.compile(r"([0-9]+)([KMGT]?)")


def rand_problem(argv: list[str]) -> str | None:
    """Why an `openssl rand` command makes too weak a secret; None for another command, or a
    byte count the page does not write as a number."""
    if argv[:2] != ["openssl", "rand"]:
        return None
    words = iter(argv[2:])
    count = None
    for word in words:
        if word in _VALUED:
            next(words, None)
        elif not word.startswith("-"):
            count = word
    found = _NUM.fullmatch(count or "")
    if found is None or found[2]:
        return None
    number = int(found[1])
    if number >= MIN_BYTES:
        return None
    return (
        f"openssl rand makes {number} random byte(s) ({number * 8} bits) here: too few for a "
        f"secret, which anyone could guess; a secret needs at least {MIN_BYTES} bytes "
        f"({MIN_BYTES * 8} bits), such as openssl rand -hex 32"
    )
