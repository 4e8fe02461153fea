"""Macros refuse facts the release data does not hold, and show digests once they exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.gate.render import RenderError, Site
from betrace_dist.release import load_release_data
from betrace_dist.site import compose_defaults

from .conftest import copy_site

DIGEST = "sha256:" + "ab" * 32


def site_with(tmp_path: Path, release_text: str | None = None) -> Site:
    root = copy_site(tmp_path, ["index.md"])
    if release_text is not None:
        (tmp_path / "releases.yaml").write_text(release_text)
        config = root / "mkdocs.yml"
        config.write_text(
            re.sub(
                r"release_data: .*",
                f"release_data: {tmp_path / 'releases.yaml'}",
                config.read_text(),
            )
        )
    return Site(root / "mkdocs.yml")


def render(site: Site, text: str) -> str:
    page = site.docs_dir / "p.md"
    page.write_text(text)
    return site.render(page).text


def test_image_shows_the_tag_until_a_digest_is_published(tmp_path: Path, release_data) -> None:
    assert render(site_with(tmp_path), '{{ image("backend") }}') == release_data.image_ref(
        "backend"
    )
    assert "@sha256:" not in release_data.image_ref("backend")


def test_image_shows_the_digest_once_published(tmp_path: Path) -> None:
    text = (REPO_ROOT / "releases.yaml").read_text()
    version = load_release_data().current.version
    tag = f"      backend:\n        tag: {version}\n"
    with_digest = re.sub(
        rf"{re.escape(tag)}(        digest: \S+\n)?",
        f"{tag}        digest: {DIGEST}\n",
        text,
        count=1,
    )
    assert with_digest != text
    assert render(site_with(tmp_path, with_digest), '{{ image("backend") }}').endswith(
        f":{version}@{DIGEST}"
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ('{{ image("backnd") }}', "no BeTrace image 'backnd'"),
        ('{{ port("https") }}', "no backend port 'https'"),
        ('{{ endpoint("/health") }}', "the backend serves no endpoint '/health'"),
        ('{{ env_var("PORT") }}', "the backend reads no environment variable 'PORT'"),
        ('{{ obs_image("jaeger") }}', "no observability image 'jaeger'"),
        ('{{ compose_log_limit("jaeger") }}', "the Compose stack has no service 'jaeger'"),
        ('{{ compose_log_limit("backend", "week") }}', "no part 'week' of a log bound"),
        (
            '{{ request_field("POST /v1/spans", "spans.parentId") }}',
            "'POST /v1/spans' spans has no field 'parentId'; fields: traceId, spanId",
        ),
        ('{{ request_field("POST /v1/spans", "span.name") }}', "no array of objects 'span'"),
        ('{{ request_field("GET /v1/spans", "spans") }}', "no request body for 'GET /v1/spans'"),
    ],
)
def test_macros_refuse_facts_that_are_not_in_the_release(
    tmp_path: Path, call: str, message: str
) -> None:
    with pytest.raises(RenderError) as info:
        render(site_with(tmp_path), f"# P\n\nUse {call} here.\n")
    assert info.value.line == 3 and message in info.value.reason


def test_the_log_bound_is_read_from_the_compose_file(tmp_path: Path) -> None:
    site = site_with(tmp_path)
    text = '{{ compose_log_limit("backend") }}, {{ compose_log_limit("backend", "files") }} files'
    options = compose_defaults.written()["x-logging"]["options"]
    size = int(options["max-size"].removesuffix("m")) * int(options["max-file"])
    assert render(site, text) == f"{size} MB, {options['max-file']} files"


def test_a_service_without_bounded_logs_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A number the file no longer sets is never shown: the macro refuses the service."""
    broken = tmp_path / "docker-compose.yml"
    text = compose_defaults.COMPOSE_FILE.read_text(encoding="utf-8")
    broken.write_text(text.replace("    logging: *logging\n", "", 1), encoding="utf-8")
    monkeypatch.setattr(compose_defaults, "COMPOSE_FILE", broken)
    compose_defaults.written.cache_clear()
    try:
        first = next(iter(compose_defaults.services()))
        with pytest.raises(KeyError, match=f"services.{first}.logging is not set"):
            compose_defaults.log_limit(first)
    finally:
        compose_defaults.written.cache_clear()


def test_the_rules_file_note_follows_the_observed_data_files(tmp_path: Path) -> None:
    """The backup sentences come from releases.yaml backend.data_files (re-measured by the probe
    data-files): once the backend is seen writing rules.json at its start, or keeping another
    text after the last deletion, the pages say so without an edit."""
    call = '{{ rules_file_note(", and the copy fails") }}'
    now = render(site_with(tmp_path / "now"), call)
    assert "has no `rules.json` yet, and the copy fails: there is nothing" in now, now
    assert "(it then holds `{}`)" in now, now
    text = (REPO_ROOT / "releases.yaml").read_text()
    changed = text.replace("before_any_rule: []", "before_any_rule: [rules.json]").replace(
        "rules_after_the_last_deletion: {}", "rules_after_the_last_deletion: {rules: []}"
    )
    assert changed.count("rules.json]") > text.count("rules.json]")
    later = render(site_with(tmp_path / "later", changed), call)
    assert "writes `rules.json` when it starts" in later and "copy fails" not in later, later
    assert '(it then holds `{"rules": []}`)' in later, later


def test_the_development_site_warns_that_the_tag_may_not_exist_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, release_data
) -> None:
    """A reader of the development site (built from main) ran `git clone --branch v<version>`
    before that tag existed; the docs workflow's dev build sets BETRACE_DEV_SITE, and the note
    under every clone becomes a warning that says to clone main."""
    tag = f"v{release_data.current.version}"
    released = render(site_with(tmp_path / "release"), "{{ tag_note() }}")
    assert "!!!" not in released and f"leave out `--branch {tag}`" in released
    monkeypatch.setenv("BETRACE_DEV_SITE", "1")
    dev = render(site_with(tmp_path / "dev"), "{{ tag_note() }}")
    assert dev.startswith('!!! warning "This is the development site')
    assert f"may not exist yet. Until then clone `main`: leave out `--branch {tag}`" in dev
    # a reviewer found the GitOps objects and the flake input naming the tag with no word
    assert "write `main` where a file names the tag" in dev and "`branch: main`" in dev


def test_a_request_field_is_its_name_json_type_and_whether_it_is_required(
    tmp_path: Path, release_data
) -> None:
    """The span fields' table takes its cells from the release data (upstream's v1Span, and
    the fields upstream's IngestSpans requires)."""
    spans = next(e for e in release_data.current.backend.endpoints if e.path == "/v1/spans")
    assert spans.request is not None
    span = spans.request.items["spans"]
    text = '{{ request_field("POST /v1/spans", "spans.attributes") }}'
    values = span.values["attributes"]
    assert render(site_with(tmp_path / "a"), text) == (
        f"`attributes` | {span.fields['attributes']}, every value a {values} | no"
    )
    assert "traceId" in span.required
    text = '{{ request_field("POST /v1/spans", "spans.traceId") }}'
    assert render(site_with(tmp_path / "t"), text) == "`traceId` | string | yes"


@pytest.mark.parametrize(
    ("quiet", "every", "shown"),
    [
        (3, 1, "3 to 4 seconds; once a second; sleep 5"),
        (5, 2, "5 to 7 seconds; every 2 seconds; sleep 8"),
    ],
)
def test_the_evaluation_window_is_read_from_the_release(
    tmp_path: Path, quiet: int, every: int, shown: str
) -> None:
    """When a trace is evaluated (releases.yaml backend.evaluation, re-measured by the probe
    evaluation-delay): pages say it and wait for it through macros, so a changed window changes
    every sentence and every wait without an edit."""
    calls = "{{ evaluation_delay() }}; {{ evaluation_check() }}; sleep {{ evaluation_wait() }}"
    evaluation = load_release_data().current.backend.evaluation
    text = (REPO_ROOT / "releases.yaml").read_text()
    old = (
        f"        quiet_seconds: {evaluation.quiet_seconds}\n"
        f"        check_every_seconds: {evaluation.check_every_seconds}\n"
    )
    assert old in text
    new = f"        quiet_seconds: {quiet}\n        check_every_seconds: {every}\n"
    assert render(site_with(tmp_path, text.replace(old, new)), calls) == shown
