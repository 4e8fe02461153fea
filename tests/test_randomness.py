"""A secret `openssl rand` makes for a page has at least 16 bytes; random bytes for anything
else are not judged (gate/randomness.py). Edits of the attack on the pages (-hex 32 as -hex 4
for the signature key, -base64 24 as -base64 4 for Grafana's password) were caught by these
rules on the real pages; the review found the first form refusing a name's random suffix."""

from __future__ import annotations

import pytest

from betrace_dist.gate import randomness


@pytest.mark.parametrize(
    ("argv", "targets", "said"),
    [
        ("openssl rand -hex 4", ["signature-key"], "4 random byte(s) (32 bits) for signature-key"),
        ("openssl rand -out x -hex 8", ["secrets/admin-password"], "8 random byte(s)"),
        ("openssl rand -hex 32", ["signature-key"], None),
        ("openssl rand -hex 4", ["suffix.txt"], None),  # no secret's name
        ("openssl rand -hex 4", [], None),  # printed: not judged
        ("openssl rand -hex 1K", ["signature-key"], None),  # 1024 bytes
    ],
)
def test_a_secret_file_gets_enough_bytes(argv: str, targets: list[str], said: str | None) -> None:
    found = randomness.rand_problem(argv.split(), targets)
    assert (found is None) if said is None else (found is not None and said in found), found


@pytest.mark.parametrize(
    ("words", "said"),
    [
        (['GRAFANA_ADMIN_PASSWORD="$(openssl', "rand", "-base64", '8)"'], None),  # split words
        (['GRAFANA_ADMIN_PASSWORD="$(openssl rand -base64 8)"'], "for GRAFANA_ADMIN_PASSWORD"),
        (["--from-literal=admin-password=$(openssl rand -base64 4)"], "for admin-password"),
        (["BETRACE_SIGNATURE_KEY=`openssl rand -hex 4`"], "for BETRACE_SIGNATURE_KEY"),
        (['SUFFIX="$(openssl rand -hex 4)"'], None),
        (["--from-literal=admin-password=$(openssl rand -base64 24)"], None),
        # cut shorter inside the substitution (the last review found these passing)
        (['GRAFANA_ADMIN_PASSWORD="$(openssl rand -hex 32 | cut -c1-8)"'], "32 random bits"),
        (['KEY="$(openssl rand -hex 32 | head -c 16)"'], "64 random bits, for KEY"),
        (['TOKEN="$(openssl rand -base64 32 | head -c 12)"'], "72 random bits"),
        (['KEY="$(openssl rand -hex 32 | head -c 32)"'], None),  # 128 bits
        (['KEY="$(openssl rand -hex 32 | tr -d "\\n")"'], None),  # keeps every character
        (['SUFFIX="$(openssl rand -hex 32 | cut -c1-4)"'], None),  # no secret's name
        # the review of the cut: no spaces, long options, bytes, a recoding on the way
        (['KEY="$(openssl rand -hex 32|cut -c1-8)"'], "32 random bits"),
        (['KEY="$(openssl rand -hex 32 | head --bytes 8)"'], "32 random bits"),
        (['KEY="$(openssl rand -hex 32 | cut -b1-8)"'], "32 random bits"),
        (['KEY="$(openssl rand 64 | base64 | head -c 20)"'], "120 random bits"),
        (['KEY="$(openssl rand -hex 32 | xxd -r -p | head -c 16)"'], None),  # 128 raw bits
    ],
)
def test_a_secret_set_from_a_substitution_gets_enough_bytes(
    words: list[str], said: str | None
) -> None:
    found = randomness.substitution_problem(words)
    assert (found is None) if said is None else (found is not None and said in found), found
