"""A fact about upstream typed by hand into a page, and wrong, fails the gate at page.md:LINE.

Each case takes a real page, writes a wrong value where the page takes it from the release data
(a macro) or states it in prose, and renders it as the gate does: the gate's check of typed values
(gate/typed.py) names the line and the releases.yaml field the value should come from. One case
per class of fact: ports, endpoints, the upstream commit, versions, variable names, the OTLP
export timeout, stop times, the app's page path and the request body limit."""

from __future__ import annotations

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.gate import typed
from betrace_dist.gate.render import Site
from betrace_dist.release import ReleaseData, next_minor

from .conftest import RELEASE
from .test_macros import site_with

#: Read, not typed: a release leaves these tests as they are.
_DATA = RELEASE
VERSION = _DATA.current.version
TAGS = ", ".join(sorted(f"v{r.version}" for r in _DATA.releases))
UNRELEASED = next_minor(VERSION)

CASES = [
    pytest.param(
        "guides/write-rules.md",
        "{{ project_python }}",
        "3.8",
        "'Python 3.8 or later': what this sentence speaks of needs Python 3.11",
        id="python-needed",
    ),
    pytest.param(
        "guides/send-traces-to-betrace.md",
        '{{ port("grpc") }}',
        "12021",
        "port 12021 is not a port of the backend (releases.yaml backend.ports",
        id="port",
    ),
    pytest.param(
        "guides/use-betrace-from-a-nix-flake.md",
        '{{ endpoint("/v1/health") }}',
        "/v1/healthz",
        "'/v1/healthz' is no endpoint of the backend (releases.yaml backend.endpoints[].path",
        id="endpoint",
    ),
    pytest.param(
        "guides/use-betrace-from-a-nix-flake.md",
        "{{ release.upstream.commit }}",
        "c5f17ae5a572472e1afa62fa32a6f5fbecb1718d",
        "is no release's upstream commit (releases.yaml releases[].upstream.commit",
        id="commit",
    ),
    pytest.param(
        "guides/use-betrace-from-a-nix-flake.md",
        '/v{{ release.version }}";',
        '/{{ release.version }}";',
        f"'{VERSION}' is no revision of the distribution's repository: it has the branch main "
        f"and the release tags {TAGS}",
        id="distribution-tag",
    ),
    pytest.param(
        "guides/deploy-with-docker-compose.md",
        "(`OTEL_EXPORTER_OTLP_ENDPOINT=otel-collector:4317`",
        "(`OTEL_EXPORTER_OTLP_ENDPOINT=otel-collector:4318`",
        "OTEL_EXPORTER_OTLP_ENDPOINT is 'otel-collector:4318': 4318 is the port of OTLP over HTTP",
        id="setting",
    ),
    pytest.param(
        "guides/send-traces-to-betrace.md",
        "BeTrace {{ release.version }}",
        f"BeTrace {UNRELEASED}",
        f"{UNRELEASED} is no version of it in releases.yaml (releases[].version",
        id="version",
    ),
    pytest.param(
        "guides/deploy-with-docker-compose.md",
        "unless `OTEL_EXPORTER_OTLP_TIMEOUT` bounds",
        "unless `OTEL_EXPORTER_TIMEOUT` bounds",
        "OTEL_EXPORTER_TIMEOUT is no variable the backend reads (releases.yaml backend.env",
        id="variable",
    ),
    pytest.param(
        "guides/deploy-with-docker-compose.md",
        '{{ env_default("OTEL_EXPORTER_OTLP_TIMEOUT") }} milliseconds',
        "2000 milliseconds",
        "'2000 milliseconds' is no OTLP export timeout of releases.yaml (backend.env",
        id="timeout",
    ),
    pytest.param(
        "guides/deploy-with-docker-compose.md",
        "{{ release.backend.stop.without_listener_at_least }} seconds or more",
        "20 seconds or more",
        "backend.stop.without_listener_at_least",
        id="slow-stop",
    ),
    pytest.param(
        "guides/use-betrace-from-a-nix-flake.md",
        "the backend then stops in a few seconds",
        "the backend then stops in about 8 seconds",
        "backend.stop.with_distribution_timeout_at_most",
        id="quick-stop",
    ),
    pytest.param(
        "guides/add-betrace-to-an-existing-grafana.md",
        "{{ release.plugin.page_path }}",
        "/a/betrace-plugin",
        "does not name the app by its id (releases.yaml plugin.id",
        id="page-path",
    ),
    pytest.param(
        "guides/send-traces-to-betrace.md",
        'each well under {{ limit("request_body") }}.',
        "each well under 5 MiB.",
        "'5 MiB' is no limit of the backend",
        id="body-limit",
    ),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return site_with(tmp_path_factory.mktemp("site"))


def test_the_pages_type_no_wrong_value(release_data: ReleaseData) -> None:
    site = Site(REPO_ROOT / "mkdocs.yml")
    for page in sorted(site.docs_dir.rglob("*.md")):
        about_the_gate = page.parent.name == "contributing"
        found = typed.problems(site.render(page).text, release_data, about_the_gate)
        assert found == [], (page, found)


@pytest.mark.parametrize(("page", "now", "wrong", "reason"), CASES)
def test_a_wrong_value_typed_into_a_page_fails_at_its_line(
    page: str, now: str, wrong: str, reason: str, site: Site, release_data: ReleaseData
) -> None:
    source = (REPO_ROOT / "docs" / page).read_text(encoding="utf-8")
    assert now in source, f"{page} no longer says {now!r}: update this test"
    line = source[: source.index(now)].count("\n") + 1
    target = site.docs_dir / page
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(source.replace(now, wrong, 1), encoding="utf-8")
    rendered = site.render(target)
    found = [
        (rendered.source_line(p.line), p.reason)
        for p in typed.problems(rendered.text, release_data)
    ]
    assert any(n == line and reason in r for n, r in found), (line, found)


@pytest.mark.parametrize(
    ("span", "said"),
    [
        ("backend.rulesConfigmapName", "did you mean 'rulesConfigMap'"),
        ("backend.ingres.className", "'backend.ingres', did you mean 'ingress'"),
        ("backend.versoin", "no field of releases.yaml's backend"),
    ],
)
def test_a_backend_key_in_prose_must_be_a_chart_value_or_a_release_field(
    span: str, said: str, release_data: ReleaseData
) -> None:
    """An attack renamed `backend.rulesConfigMap` in the write-rules guide's prose and the gate
    passed it. Pages write `backend.` for the chart's values and for the release data's backend
    facts: a key must be one of either (a free-form map's own keys are not judged)."""
    problem = typed.chart_key_problem(span, release_data)
    assert problem is not None and said in problem, problem
    for good in ("backend.rulesConfigMap", "backend.version", "backend.resources.limits.memory"):
        assert typed.chart_key_problem(good, release_data) is None, good
    assert typed.chart_key_problem("backend.ingress.*", release_data) is None


@pytest.mark.parametrize(
    ("span", "said"),
    [
        ("networkPolicy.allowFrom", "no value of the BeTrace chart"),
        ("grafana.plugin.image.digest", "'grafana.plugin.image', did you mean 'initImage'"),
        ("grafana.imagePullSecrets", "nor of the Grafana chart"),
    ],
)
def test_a_chart_key_in_prose_must_be_a_value_of_a_chart_the_guides_install(
    span: str, said: str, release_data: ReleaseData
) -> None:
    """An attack renamed `networkPolicy.backendFrom` in the Kubernetes guide's table and
    `grafana.plugin.pluginImage.digest` in the release guide, and both passed: only `backend.`
    keys were held. A key under a top-level key of the BeTrace chart must be one of its values,
    a release-data field, or (for the Grafana guides) a value of the Grafana chart."""
    problem = typed.chart_key_problem(span, release_data)
    assert problem is not None and said in problem, problem
    good = ["networkPolicy.backendFrom", "grafana.plugin.pluginImage.digest", "grafana.minimum"]
    good += ["image.pullSecrets", "grafana.persistence.storageClass", "networkPolicy.ingress"]
    good += ["grafana.grafana.ini", "grafana.nix", "grafana.example.org"]
    # found refused by the review: kube-prometheus-stack's own keys, files, a Python module
    good += ["grafana.additionalDataSources", "grafana.db", "image.png", "tests.test_helm_model"]
    for key in good:
        assert typed.chart_key_problem(key, release_data) is None, key


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('    prometheus.io/port: "12012"\n', "prometheus.io/port names port 12012, which serves"),
        (
            '    prometheus.io/path: /v1/metrics\n    prometheus.io/port: "12011"\n',
            "prometheus.io/path names the path /v1/metrics",
        ),
        (
            "--set-string 'podAnnotations.prometheus\\.io/path=/stats' "
            "--set-string 'podAnnotations.prometheus\\.io/port=12011'",
            "the path /stats",
        ),
    ],
)
def test_scrape_annotations_name_the_backends_metrics(
    text: str, said: str, release_data: ReleaseData
) -> None:
    """Found by attacking the Kubernetes guide: its values with the gRPC port or an OTLP path in
    the scrape annotations passed, and Prometheus would have scraped nothing."""
    found = typed.problems(f"# Page\n\n```yaml\n{text}```\n", release_data)
    assert [p.line for p in found] == [4] and said in found[0].reason, found
    http = release_data.current.backend.ports["http"].port
    fine = f'prometheus.io/port: "{http}"\nprometheus.io/path: /metrics\n'
    assert typed.problems(fine, release_data) == []


def test_another_applications_scrape_annotations_are_not_the_backends(
    release_data: ReleaseData,
) -> None:
    """A review found the check judging every path on a page, whoever's: annotations whose port
    is none of the backend's are another application's."""
    text = 'prometheus.io/port: "8080"\nprometheus.io/path: /actuator/prometheus\n'
    assert typed.problems(text, release_data) == []


def test_a_misspelt_variable_of_the_artefacts_is_named_with_the_one_meant(
    release_data: ReleaseData,
) -> None:
    """The attack renamed the Compose stack's own variables (BETRACE_RULES_FORCE) in a page;
    the gate caught it, but said only that the backend does not read it and to write a backend
    macro: the name the artefacts define is now offered."""
    defined = set(typed.own_variables())
    ((problem,),) = [
        list(typed._variables("set `BETRACE_RULES_FORCES` to 1", release_data, defined))
    ]
    assert "did you mean 'BETRACE_RULES_FORCE'?" in problem.reason
    assert "the Compose stack's .env" in problem.reason


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("start your app with `OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318`", None),
        ("The backend exports (`OTEL_EXPORTER_OTLP_ENDPOINT=collector:4318`).", "4318 is the"),
        ('Set `BETRACE_DEBUG="false"` to turn debug logging off', "turns debug logging ON"),
        ("BETRACE_PORT_BACKEND='abc'", "a TCP port number"),
        ("BETRACE_PORT_BACKEND=12011", None),
    ],
)
def test_a_setting_in_text_is_held_to_the_backends_rule_where_it_is_the_backends(
    text: str, said: str | None, release_data: ReleaseData
) -> None:
    """The OTEL_* variables are any SDK's too: an application's exporter may rightly post to
    http://...:4318 (the review found the first form refused); a value in quotes is a value."""
    found = [p.reason for p in typed._settings(text, release_data)]
    assert (found == []) if said is None else (len(found) == 1 and said in found[0]), found


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        (f"https://github.com/betrace-hq/distribution/archive/refs/tags/v{VERSION}.tar.gz", None),
        ("https://github.com/betrace-hq/distribution/archive/refs/tags/v9.0.0.tar.gz", "v9.0.0"),
        ("nix run git+https://github.com/betrace-hq/distribution?ref=v9.9.9#x", "v9.9.9"),
        ("git+ssh://git@github.com/betrace-hq/distribution?ref=nope", "nope"),
        ("https://github.com/betrace-hq/distribution/tree/main/patches", None),
        ("https://github.com/betrace-hq/distribution/releases/tag/v0.1.0", "v0.1.0"),
        ("github:betrace-hq/distribution?rev=0123456789abcdef0123456789abcdef01234567", "rev="),
        ("git+https://github.com/betrace-hq/distribution.git?rev=deadbeef12#x", "rev="),
        ("github:betrace-hq/distribution?dir=nix&ref=v9.9.9", "v9.9.9"),
        (f"github:betrace-hq/distribution?dir=nix&ref=v{VERSION}#backend", None),
    ],
)
def test_a_distribution_revision_is_read_in_every_form_of_url(
    text: str, bad: str | None, release_data: ReleaseData
) -> None:
    """The review found GitHub's own tag archive URL refused ('refs' read as the revision) and
    git+https and git+ssh URLs with a ref never read."""
    found = [p.reason for p in typed._distribution_refs(text, release_data)]
    assert found == [] if bad is None else (len(found) == 1 and bad in found[0]), found


def test_a_commit_of_the_distribution_is_reported_once_as_the_distribution_s(
    release_data: ReleaseData,
) -> None:
    """The last review found `?rev=<sha>` of the distribution reported as no upstream commit."""
    text = "nix run github:betrace-hq/distribution?rev=0123456789abcdef0123456789abcdef01234567\n"
    found = [p.reason for p in typed.problems(text, release_data)]
    assert len(found) == 1 and "pins the distribution's repository" in found[0], found


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        # the review: the project's sentence with the examples' version, and other spellings
        ("with Python 3.10 or later, `python3 -m venv .venv && pip install .`", "3.11"),
        ("the project needs python 3.8+", "3.11"),
        ("The release data is usable from Python >= 3.9.", "3.11"),
        ("This example needs Python 3.11 or later.", "3.10"),
        ("with Python 3.11 or later, `python3 -m venv .venv`", None),
        ("This example needs Python 3.10 or later.", None),
        ("opentelemetry-sdk 1.39 needs Python 3.9 or later.", None),  # another package's
        # the second review: a sentence about both, a need in the next sentence
        ("The exporter example needs Python 3.10 or later: make a venv for it.", None),
        ("Install betrace-dist into a venv. The SDK needs Python 3.8 or later.", None),
    ],
)
def test_a_python_version_is_held_to_what_its_sentence_speaks_of(
    text: str, wanted: str | None, release_data: ReleaseData
) -> None:
    found = [p.reason for p in typed._python_versions(text, release_data)]
    assert (
        found == []
        if wanted is None
        else (len(found) == 1 and f"needs Python {wanted}" in found[0])
    ), found
