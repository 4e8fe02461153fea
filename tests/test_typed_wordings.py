"""Values typed by hand in the wordings a review of the gate passed (gate/typed.py).

- When the backend evaluates a trace, held to releases.yaml backend.evaluation: the window
  after a trace's last span, the quiet time, how often the backend checks, and how far apart
  spans are judged apart; as a single time, "between N and M", in minutes, with an en dash,
  wrapped across lines, the quiet time and the check interval on their own.
- A BeTrace image with the tag `latest` or a digest no release recorded.
- The backend's ports named for the other role, and a method the backend does not serve
  written before a path it serves.
- The stop with nothing on the OTLP endpoint given too few seconds or an upper bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from betrace_dist.gate import claims, typed
from betrace_dist.release import RELEASES_FILE, load_release_data

from .conftest import RELEASE

DATA = RELEASE
QUIET, LATEST = DATA.current.backend.evaluation.window
EVERY = DATA.current.backend.evaluation.check_every_seconds


def evaluation_problems(text: str) -> list[str]:
    return [
        f"{p.line}: {p.reason}"
        for p in typed.problems(text, DATA)
        if "backend.evaluation" in p.reason
    ]


WRONG = [
    f"A trace is evaluated {LATEST + 1} seconds after its last span.",
    f"A trace is evaluated between {LATEST + 1} and {LATEST + 2} seconds after its last span.",
    f"A trace is evaluated {LATEST + 1} s to {LATEST + 2} s after its last span.",
    f"A trace is evaluated {LATEST + 1} to {LATEST + 2} sec after its last span.",
    f"A trace is evaluated {LATEST + 1}&ndash;{LATEST + 2} seconds after its last span.",
    f"A trace is evaluated {LATEST + 1} or {LATEST + 2} seconds after its last span.",
    f"A trace is evaluated {QUIET} to {LATEST} minutes after its last span.",
    f"A trace is evaluated {LATEST + 1} to {LATEST + 2} seconds after the final span.",
    f"A trace is evaluated {LATEST + 1} to {LATEST + 2} seconds after the last of its spans.",
    f"A trace is evaluated {LATEST + 1} to {LATEST + 2} seconds after its last\n  span.",
    f"A trace is evaluated {QUIET} to {LATEST} seconds after its first span arrived.",
    f"It evaluates them once no span of that trace has arrived for {QUIET * 10} seconds.",
    f"A trace is evaluated once it waited {QUIET * 10} seconds without a span.",
    f"The backend looks for finished traces every {EVERY * 5} seconds.",
    "The backend looks for finished traces once a minute.",
    f"Spans of one trace sent {QUIET - 1} seconds or more apart are judged apart as traces.",
    f"A trace is evaluated at least {QUIET + 1} seconds after its last span.",
    f"A trace is evaluated within {QUIET} seconds after its last span.",
    f"Wait {QUIET - 1} seconds after the last span, then read the trace's violations.",
    # the second review's: the backend's own wait, a check of traces, the quiet time
    f"The backend waits {LATEST} seconds after a trace's last span, then evaluates the trace.",
    f"The backend waits {LATEST} s after the last span before judging the trace.",
    f"Traces are checked every {EVERY * 5} seconds and then evaluated.",
    f"A trace is evaluated after {LATEST} seconds of quiet.",
    f"A trace is evaluated once it has been quiet for {LATEST} seconds.",
]


@pytest.mark.parametrize("text", WRONG)
def test_a_wrong_evaluation_time_is_refused_at_its_line(text: str) -> None:
    found = evaluation_problems(f"# Page\n\n{text}\n")
    assert found and found[0].startswith("3: "), found
    assert "write {{ evaluation_delay() }}" in found[0]


RIGHT = [
    f"A trace is evaluated {QUIET} to {LATEST} seconds after its last span.",
    # true sentences a review found refused by the first version of the check
    f"Wait {LATEST + 1} seconds after the last span before you read the trace's violations.",
    f"It waits at least {LATEST} seconds after the last span, then reads the traces judged.",
    f"A trace is evaluated about {QUIET} seconds after its last span arrives.",
    "Send the second span 2 seconds after the first span.",
    "Compose checks the health every 5 s, and Kubernetes the readiness every 10 seconds.",
    "Keep the app quiet for 10 seconds.",
    f"Spans sent {LATEST * 3} seconds or more apart are evaluated as two traces.",
    f"A trace is evaluated within {LATEST + 5} seconds after its last span.",
    # the second review's: the backend's wait, a span sent later, a reader's sleep or poll
    f"The backend waits {QUIET} seconds after a trace's last span, then evaluates the trace.",
    f"A span sent {LATEST * 3} seconds after the last span of a trace is evaluated as another.",
    f"Sleep {LATEST + 1} seconds after the last span, then read the trace's violations.",
    f"A trace is not evaluated 1 second after its last span: the backend waits {QUIET} s.",
    "Check the trace's violations every 5 seconds until they appear.",
    f"Compose checks the backend's health every 5 s; traces are evaluated {QUIET} to {LATEST} "
    "seconds after their last span.",
    f"A trace is evaluated between {QUIET} and {LATEST} seconds after its\n  last span.",
    f"A trace is evaluated at least {QUIET} seconds after its last span.",
    f"A trace is evaluated within {LATEST} seconds after its last span.",
    f"It evaluates them once no span of that trace has arrived for {QUIET} seconds.",
    f"Spans sent {QUIET} seconds or more apart may be split, {LATEST} seconds or more apart are.",
]


@pytest.mark.parametrize("text", RIGHT)
def test_the_release_s_evaluation_times_pass(text: str) -> None:
    assert evaluation_problems(f"# Page\n\n{text}\n") == []


# -- BeTrace image references, in prose or a table --------------------------------------------

REGISTRY = DATA.project.registry


@pytest.mark.parametrize(
    ("reference", "reason"),
    [
        (f"{REGISTRY}/backend:latest", "has a tag no release has"),
        (f"{REGISTRY}/backend@sha256:{'2c' * 32}", "has a digest no release recorded"),
        (
            f"{REGISTRY}/backend:{DATA.current.version}@sha256:{'2c' * 32}",
            "has a digest no release recorded",
        ),
    ],
)
def test_an_image_reference_no_release_has_is_refused(reference: str, reason: str) -> None:
    """A review passed these in prose: the tag had to start with a digit, and a digest was
    never read. No workflow pushes `latest`, and a digest must be one the release recorded."""
    found = [p.reason for p in typed.problems(f"# Page\n\nPull `{reference}`.\n", DATA)]
    assert any(reason in r for r in found), found


def test_the_release_s_own_image_reference_passes(tmp_path: Path) -> None:
    reference = DATA.image_ref("backend")
    assert typed.problems(f"# Page\n\nPull `{reference}`.\n", DATA) == []
    # a digest the release recorded passes (a copy of the release data with one recorded)
    text = RELEASES_FILE.read_text(encoding="utf-8")
    tag = f"      backend:\n        tag: {DATA.current.version}\n"
    assert tag in text
    digest = "sha256:" + "ab" * 32
    path = tmp_path / "releases.yaml"
    path.write_text(text.replace(tag, f"{tag}        digest: {digest}\n", 1), encoding="utf-8")
    recorded = load_release_data(path)
    page = f"# Page\n\nPull `{recorded.image_ref('backend')}`.\n"
    assert recorded.image_ref("backend").endswith(digest)
    assert typed.problems(page, recorded) == []


@pytest.mark.parametrize(
    "text",
    [
        f"No workflow pushes `{REGISTRY}/backend:latest`.",
        f"Replace `{REGISTRY}/backend:VERSION` with the release you run.",
        f"Pull `{REGISTRY}/backend:X.Y.Z`.",
        "There is no DELETE /v1/violations: violations stay until a restart.",
        "You cannot DELETE /v1/violations: violations stay until a restart.",
        f"Not the gRPC port {DATA.current.backend.ports['http'].port}: that one is HTTP.",
    ],
)
def test_denied_values_and_placeholders_pass(text: str) -> None:
    """True sentences a review found refused by the first version of these checks: a value
    the sentence denies, and a placeholder where a tag goes."""
    assert typed.problems(f"# Page\n\n{text}\n", DATA) == []


# -- the backend's ports by their role, and methods before paths --------------------------------

HTTP = DATA.current.backend.ports["http"].port
GRPC = DATA.current.backend.ports["grpc"].port


def test_a_port_named_for_the_other_role_is_refused() -> None:
    """A review passed the REST and gRPC ports swapped in prose: each was a port the backend
    serves, and nothing read which one the sentence meant."""
    text = f"# Page\n\nAnyone who reaches the REST port {GRPC} or the gRPC port {HTTP}.\n"
    found = [p.reason for p in typed.problems(text, DATA)]
    assert any(f"port {GRPC} is not the backend's http port" in r for r in found), found
    assert any(f"port {HTTP} is not the backend's grpc port" in r for r in found), found
    right = f"# Page\n\nAnyone who reaches the REST port {HTTP} or the gRPC port {GRPC}.\n"
    assert typed.problems(right, DATA) == []
    table = f"# Page\n\n| backend | {HTTP} (REST), {GRPC} (gRPC) |\n"
    assert typed.problems(table, DATA) == []
    swapped = f"# Page\n\n| backend | {GRPC} (REST), {HTTP} (gRPC) |\n"
    assert len(typed.problems(swapped, DATA)) == 2


def test_a_method_the_backend_does_not_serve_on_a_path_it_serves_is_refused() -> None:
    found = [
        p.reason for p in typed.problems("# P\n\nClear them with `DELETE /v1/violations`.\n", DATA)
    ]
    assert any("the backend serves /v1/violations with GET" in r for r in found), found
    fine = "# P\n\nList them with `GET /v1/violations`, remove one with `DELETE /v1/rules/x`.\n"
    assert typed.problems(fine, DATA) == []


# -- the stop with nothing on the OTLP endpoint, and the export timeout in seconds --------------

SLOW = DATA.current.backend.stop.without_listener_at_least
NOTHING = "When nothing answers on its telemetry endpoint, the backend"


@pytest.mark.parametrize(
    "text",
    [
        f"{NOTHING} took up to {SLOW + 5} seconds to stop.",
        f"{NOTHING} took about 2 seconds to stop.",
        f"{NOTHING} needs 3 s to stop.",
        f"{NOTHING} stops within 5 seconds.",
        # the second review's wordings
        "With no collector the backend stops after 5 seconds.",
        "With no collector, stopping the backend takes 5 seconds.",
        "With no collector the backend needs 5 s before it stops.",
        "With no OTLP listener and no export timeout, the backend stops within 5 s.",
    ],
)
def test_a_slow_stop_given_too_few_seconds_is_refused(text: str) -> None:
    """A review passed these: only "N s or more" and "stops in N s" were read."""
    found = [p.reason for p in typed.problems(f"# P\n\n{text}\n", DATA)]
    assert any("without_listener_at_least" in r for r in found), found


@pytest.mark.parametrize(
    "text",
    [
        f"Without a collector the backend took {SLOW + 5:g} seconds\nor more to stop.",
        "With the export timeout the backend stops\nin 40 seconds.",
    ],
)
def test_a_stop_time_wrapped_across_lines_is_read(text: str) -> None:
    """A stop time wrapped across lines was read only in the no-listener wordings: the check
    of "N s or more" and "stops in N s" read the page line by line."""
    found = typed.problems(f"# P\n\n{text}\n", DATA)
    assert [p.line for p in found] == [3], found


@pytest.mark.parametrize(
    "text",
    [
        f"{NOTHING} took {SLOW} seconds or more to stop (48 s once).",
        # true sentences a review found refused by the first version of the check
        f"The backend stops within 1 s when the collector answers, and takes {SLOW} s or more "
        "when no collector listens.",
        "With no collector running, docker compose stop waits up to 60 s for the backend.",
    ],
)
def test_the_slow_stop_as_the_release_states_it_passes(text: str) -> None:
    assert typed.problems(f"# P\n\n{text}\n", DATA) == []


@pytest.mark.parametrize(
    "said",
    [
        "The app runs on Grafana 11 or later, including patch releases.",
        "Grafana 11.0 and later patch releases load the app.",
        "Grafana 12.0 or later. Patch releases differ.",
    ],
)
def test_an_early_grafana_minimum_is_refused_with_patch_releases_too(said: str) -> None:
    """A second review passed these once the claim left "patch releases" alone: the release
    data names the backport patch releases one by one, and pages take them from there."""
    assert claims.false_claims(said, DATA.current)


@pytest.mark.parametrize(
    "text",
    [
        "If you no longer need them, DELETE /v1/violations clears them.",
        "Not only GET but DELETE /v1/violations works.",
        f"Without a pinned tag, `{REGISTRY}/backend:latest` is the newest.",
        f"Pull `{REGISTRY}/backend:LATEST`.",
        f"The backend has no TLS; its gRPC port {HTTP} is plain.",
        f"The REST port is {GRPC}.",
    ],
)
def test_a_denial_word_of_another_clause_does_not_hide_a_wrong_value(text: str) -> None:
    """A second review passed these: a denial counted across a comma, a semicolon or "not
    only", and any capitals as a placeholder tag; a role counted only right before a port."""
    assert typed.problems(f"# Page\n\n{text}\n", DATA), text


def test_the_grafana_backports_are_versions_grafana_has() -> None:
    """The release data names the patch releases that carry the backport (grafana.backports):
    a page may name them; before, the version check refused them as no version of Grafana."""
    for version in DATA.current.grafana.backports:
        text = f"# Page\n\nGrafana {version} carries the backport.\n"
        assert typed.problems(text, DATA) == [], version
