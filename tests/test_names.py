"""The shared names and predicates (names.py) that the release model and every policy use."""

from __future__ import annotations

import pytest

from betrace_dist.names import (
    BETRACE_IMAGES,
    image_repository,
    image_role,
    image_tag,
    is_floating_tag,
    looks_secret,
)
from betrace_dist.release import ReleaseData, next_minor


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
