"""Probes: each fact of releases.yaml that says what running the backend showed (`observed:`)
names a probe (`probe:`) that measures it again on the real program, in every test run.

A probe has two halves. `measure` runs inside a network namespace that has only loopback
(`run.py` puts it there) and returns what it measured, as plain JSON values. `expect` says, from
the release data, what the fact claims each measured value is. `disagreements` compares the two;
the probe test reports each disagreement with the fact's `releases.yaml:LINE`, so a new upstream
commit names the sentences it made false.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..release import ReleaseData


@dataclass(frozen=True)
class Expect:
    """What a fact says about one measured value: the claim in words, and its test."""

    says: str
    holds: Callable[[Any], bool]


def equal(value: object) -> Expect:
    return Expect(f"= {value!r}", lambda seen: seen == value)


def at_most(limit: float, unit: str = "s") -> Expect:
    return Expect(
        f"<= {limit:g} {unit}", lambda seen: isinstance(seen, int | float) and seen <= limit
    )


def at_least(limit: float, unit: str = "s") -> Expect:
    return Expect(
        f">= {limit:g} {unit}", lambda seen: isinstance(seen, int | float) and seen >= limit
    )


def contains(text: str) -> Expect:
    return Expect(f"contains {text!r}", lambda seen: isinstance(seen, str) and text in seen)


Measure = Callable[[Mapping[str, Any]], dict[str, Any]]
Expectations = Callable[["ReleaseData"], dict[str, Expect]]
Params = Callable[["ReleaseData"], dict[str, Any]]


def _no_params(data: ReleaseData) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Probe:
    name: str
    measure: Measure
    expect: Expectations
    params: Params = field(default=_no_params)
    #: seconds the probe may take, past which its namespace is killed
    limit: float = 120.0


def disagreements(expected: Mapping[str, Expect], measured: Mapping[str, Any]) -> list[str]:
    """One line per value the fact claims and the measurement does not bear out."""
    out = []
    for key, expect in expected.items():
        if key not in measured:
            out.append(f"{key}: the fact says {expect.says}, but the probe did not measure it")
        elif not expect.holds(measured[key]):
            out.append(f"{key}: the fact says {expect.says}, measured {measured[key]!r}")
    return out
