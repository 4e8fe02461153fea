"""The shared names and predicates (names.py) that the release model and every policy use."""

from __future__ import annotations

import subprocess

import pytest

from betrace_dist.names import (
    BETRACE_IMAGES,
    GoNumberError,
    go_int,
    go_quote,
    image_repository,
    image_role,
    image_tag,
    is_floating_tag,
    looks_secret,
)
from betrace_dist.release import ReleaseData, next_minor

from .conftest import require_tool


@pytest.mark.parametrize("tag", ["latest", "Latest", "main", "dev", "nightly", "edge", "stable"])
def test_floating_tags_are_one_set(tag: str) -> None:
    assert is_floating_tag(tag)


@pytest.mark.parametrize("tag", ["2.0.0", "v2.53.0", "11.4.0-ubuntu"])
def test_version_tags_are_not_floating(tag: str) -> None:
    assert not is_floating_tag(tag)


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("grafana/grafana:11.4.0", "11.4.0"),
        ("reg.example:5000/team/app:1.2@sha256:" + "0" * 64, "1.2"),
        ("reg.example:5000/team/app", ""),
        ("busybox", ""),
    ],
)
def test_image_tag(image: str, tag: str) -> None:
    assert image_tag(image) == tag


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("grafana/grafana:11.4.0", "grafana/grafana"),
        ("reg.example:5000/team/app:1.2@sha256:" + "0" * 64, "reg.example:5000/team/app"),
        ("reg.example:5000/team/app", "reg.example:5000/team/app"),
        ("busybox@sha256:" + "0" * 64, "busybox"),
    ],
)
def test_image_repository(image: str, repository: str) -> None:
    assert image_repository(image) == repository


@pytest.mark.parametrize(
    ("image", "role"),
    [
        ("ghcr.io/betrace-hq/betrace/backend:2.0.0", "backend"),
        ("ghcr.io/betrace-hq/betrace/backend@sha256:" + "0" * 64, "backend"),
        ("ghcr.io/betrace-hq/betrace/grafana-plugin:1.9.0", "grafana"),
        ("ghcr.io/betrace-hq/betrace/plugin-init:2.0.0", None),  # copies files, serves nothing
        # a name alone elsewhere says nothing (a reader's own acme/backend:2.0.0); the models
        # know the reader's copies by the page's build or by the project's chart instead
        ("registry.example.com/betrace/backend:2.0.0", None),
        ("acme/backend:2.0.0", None),
        ("backend:2.0.0", None),
        ("docker.io/grafana/grafana:13.2.0", "grafana"),
        ("grafana/grafana", "grafana"),
        ("otel/opentelemetry-collector-contrib:0.120.0", "otel-collector"),
        ("nginx:1.27", None),
        ("registry.example.com/grafana/grafana:13.2.0", None),  # another registry's copy
    ],
)
def test_image_role(image: str, role: str | None) -> None:
    assert image_role(image, "ghcr.io/betrace-hq/betrace") == role


@pytest.mark.parametrize("name", ["DB_PASSWORD", "API_TOKEN", "SIGNATURE_KEY", "KEY", "API_KEYS"])
def test_secret_looking_names(name: str) -> None:
    assert looks_secret(name)


@pytest.mark.parametrize("name", ["BETRACE_PORT_BACKEND", "KEYCLOAK_URL", "MONKEY_MODE"])
def test_plain_names(name: str) -> None:
    assert not looks_secret(name)


def test_every_image_the_project_builds_has_a_reference(release_data: ReleaseData) -> None:
    assert [release_data.image_ref(n).split("/")[-1].split(":")[0] for n in BETRACE_IMAGES] == [
        *BETRACE_IMAGES
    ]


def test_next_minor() -> None:
    assert next_minor("2.0.1") == "2.1.0"
    assert next_minor("2.3.0-rc.1") == "2.4.0"


#: (text, value or Go's reason): strconv.ParseInt(text, 0, 64), as pflag's intValue.Set reads
#: an int flag (spf13/pflag int.go at v1.0.5 and v1.0.10, the versions Helm 3.11.1 and 4.1.4
#: build with): a prefix picks the base, a leading 0 alone is octal, an underscore may stand
#: between digits or after a prefix (Go's src/strconv/atoi.go)
GO_INTS = [
    ("10", 10),
    ("+5", 5),
    ("-3", -3),
    ("0", 0),
    ("00", 0),
    ("017", 15),
    ("0o17", 15),
    ("0O7", 7),
    ("0x1f", 31),
    ("0X1F", 31),
    ("0b101", 5),
    ("-0b1", -1),
    ("+0x10", 16),
    ("1_0", 10),
    ("0_7", 7),
    ("0x_1f", 31),
    ("0x1_f", 31),
    ("9223372036854775807", 2**63 - 1),
    ("-9223372036854775808", -(2**63)),
    ("0x7fffffffffffffff", 2**63 - 1),
    ("09", "invalid syntax"),
    ("08", "invalid syntax"),
    ("0x", "invalid syntax"),
    ("0o", "invalid syntax"),
    ("0b2", "invalid syntax"),
    ("0o8", "invalid syntax"),
    ("0b_", "invalid syntax"),
    ("0_", "invalid syntax"),
    ("_0x1", "invalid syntax"),
    ("1__0", "invalid syntax"),
    ("0x1__f", "invalid syntax"),
    ("1e3", "invalid syntax"),
    (" 5", "invalid syntax"),
    ("", "invalid syntax"),
    ("-", "invalid syntax"),
    ("５", "invalid syntax"),
    ("²", "invalid syntax"),
    ("9223372036854775808", "value out of range"),
    ("-9223372036854775809", "value out of range"),
    ("0x8000000000000000", "value out of range"),
    ("9" * 5000, "value out of range"),
]


@pytest.mark.parametrize(("text", "expected"), GO_INTS)
def test_go_int_reads_as_go_base_0(text: str, expected: int | str) -> None:
    if isinstance(expected, int):
        assert go_int(text) == expected
    else:
        with pytest.raises(GoNumberError, match=f"^{expected}$"):
            go_int(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("+7", 7), ("007", 7), ("0x7", "invalid syntax"), ("1_0", "invalid syntax")],
)
def test_go_int_in_base_10_is_atoi(text: str, expected: int | str) -> None:
    """strconv.Atoi is ParseInt(s, 10, 0): no prefix, no underscore."""
    if isinstance(expected, int):
        assert go_int(text, 10) == expected
    else:
        with pytest.raises(GoNumberError, match=expected):
            go_int(text, 10)


@pytest.mark.parametrize("binary", ["helm", "helm3"])
def test_go_int_accepts_what_helm_accepts(binary: str) -> None:
    """Each real Helm reads its int flags as go_int does: --burst-limit, a pflag int of both
    (pkg/cli/environment.go at helm/helm v3.11.1 and v4.1.4), parsed before `helm version`
    runs; a refusal is worded as go_int's caller words it."""
    path = require_tool(binary)
    for text, expected in GO_INTS:
        if len(text) > 100:
            continue
        done = subprocess.run(
            [path, "version", "--short", "--burst-limit", text],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if isinstance(expected, int):
            assert done.returncode == 0, (text, done.stderr)
        else:
            want = f'invalid argument {go_quote(text)} for "--burst-limit" flag: '
            want += f"strconv.ParseInt: parsing {go_quote(text)}: {expected}"
            assert want in done.stderr, (text, done.stderr)
