"""Kubernetes quantities (`64Mi`, `100m`, `1.5`, `2e3`) as exact numbers.

The grammar is apimachinery's (pkg/api/resource/quantity.go, ParseQuantity): a signed decimal
number, then a binary suffix (Ki to Ei, powers of 1024), a decimal one (n, u, m, none, k, M, G,
T, P, E) or a decimal exponent (e3, E-2). YAML may give a bare number (`cpu: 1`), which reads as
the same quantity.
"""

from __future__ import annotations

import re
from fractions import Fraction

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?:(?P<binary>[KMGTPE]i)|(?P<exponent>[eE][+-]?\d+)|(?P<decimal>[numkMGTPE]?))$"
)
_BINARY = {f"{p}i": Fraction(1024**n) for n, p in enumerate("KMGTPE", 1)}
_DECIMAL = {s: Fraction(10) ** e for s, e in
            (("n", -9), ("u", -6), ("m", -3), ("", 0), ("k", 3), ("M", 6), ("G", 9), ("T", 12),
             ("P", 15), ("E", 18))}  # fmt: skip


#: The longest quantity and the largest decimal exponent read. apimachinery holds a quantity's
#: value to int64 (its maxAllowed) and 9 decimals, far inside both; a page's value beyond them
#: is not read (None), so that no page can make the gate compute with numbers of thousands of
#: digits, which takes seconds and more per operation and cannot be interrupted.
_MAX_LENGTH = 64
_MAX_EXPONENT = 40


def parse(value: object) -> Fraction | None:
    """The quantity's exact value, or None where it is not one (the schemas report that) or
    is too long or too large to be read (_MAX_LENGTH, _MAX_EXPONENT)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    if isinstance(value, int) and value.bit_length() > 4 * _MAX_LENGTH:
        return None
    text = str(value).strip()
    match = _QUANTITY.match(text) if len(text) <= _MAX_LENGTH else None
    if match is None:
        return None
    number = Fraction(match["number"])
    if match["binary"]:
        return number * _BINARY[match["binary"]]
    if match["exponent"]:
        exponent = int(match["exponent"][1:])
        return number * Fraction(10) ** exponent if abs(exponent) <= _MAX_EXPONENT else None
    return number * _DECIMAL[match["decimal"] or ""]


def suffix(value: str) -> str:
    """A quantity's binary (Ki to Ei) or decimal (n to E) suffix as written; '' for a number
    without one, an exponent, or no quantity."""
    match = _QUANTITY.match(value.strip()) if len(value) <= _MAX_LENGTH else None
    return (match["binary"] or match["decimal"] or "") if match else ""
