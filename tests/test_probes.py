"""Every observed fact of releases.yaml, measured again on the real backend in this run.

Each `observed:` fact names a probe (src/betrace_dist/probes/catalogue.py); the probes run at once,
each in a network namespace of its own with only loopback, against the backend built from the
upstream snapshot (or the one BETRACE_LIVE_BACKEND names). A probe that disagrees fails with the
fact's releases.yaml:LINE and what it measured. The artefact test starts the backend with the
Compose stack's and the chart's own environment and holds its stop to half their grace period.

The backend is the live tier's (built from the upstream snapshot by default); with --no-live or
without a snapshot the measurements are skipped with the reason (a failure under
BETRACE_REQUIRE_TOOLS=1, as in CI); the tests of the probes' reporting run without one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.artefacts import compose as c
from betrace_dist.gate.checkers.shell import steps
from betrace_dist.probes import Expect, disagreements, exporter
from betrace_dist.probes.catalogue import PROBES
from betrace_dist.probes.run import Fact, Job, Outcome, observed_facts, report, run_all, verdict
from betrace_dist.release import RELEASES_FILE, ReleaseData, load_release_data

from .conftest import require_tool

FACTS = observed_facts(RELEASES_FILE)
NAMES = sorted({fact.probe for fact in FACTS})
CHART = REPO_ROOT / "helm" / "betrace"
#: Variables the probe sets itself: the data directory and the ports name container places.
ADAPTED = ("BETRACE_DATA_DIR", "BETRACE_PORT_BACKEND", "BETRACE_PORT_GRPC")


def _artefact_env(env: dict[str, Any]) -> dict[str, str]:
    """A backend environment as the probe can start it: places and ports adapted, a Secret's
    value (None) replaced by a stand-in."""
    return {
        name: "probe-stand-in-secret" if value is None else str(value)
        for name, value in env.items()
        if name not in ADAPTED
    }


def compose_backend(tmp: Path) -> tuple[dict[str, str], float]:
    """The Compose stack's backend environment (as `docker compose config` resolves it) and
    its stop_grace_period in seconds."""
    from .artefacts.test_compose import write_env

    binary = c.compose_binary()
    stack = c.Stack(c.load_project(c.COMPOSE_FILE, write_env(tmp), binary), c.COMPOSE_FILE)
    grace = c.duration_seconds(stack.service("backend").get("stop_grace_period") or "10s")
    assert grace is not None
    return _artefact_env(dict(stack.env("backend"))), grace


def chart_backend(helm: Any) -> tuple[dict[str, str], float]:
    """The chart's backend environment (rendered with its default values) and its
    terminationGracePeriodSeconds."""
    from betrace_dist.artefacts import chart_policy
    from betrace_dist.backend_env import container_env

    manifests = helm.template(CHART)
    (deployment,) = [m for m in manifests if m.kind == "Deployment" and m.name.endswith("backend")]
    pod = deployment.doc["spec"]["template"]["spec"]
    (container,) = [ct for _, ct in chart_policy.containers(pod) if ct.get("name") == "backend"]
    return _artefact_env(container_env(container)), float(pod["terminationGracePeriodSeconds"])


@pytest.fixture(scope="module")
def artefacts(helm: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    compose_env, compose_grace = compose_backend(tmp_path_factory.mktemp("compose-env"))
    chart_env, chart_grace = chart_backend(helm)
    return {
        "env": {"compose": compose_env, "chart": chart_env},
        "grace": {"compose": compose_grace, "chart": chart_grace},
    }


@pytest.fixture(scope="module")
def outcomes(
    release_data: ReleaseData,
    artefacts: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    backend_program: Path,
) -> dict[str, Outcome | str]:
    """Every probe, the artefacts' stop and the probes of the changed facts, measured at once."""
    require_tool("bwrap")
    program = backend_program
    jobs = {name: Job(name, release_data) for name in NAMES}
    jobs["artefact-stop"] = Job("artefact-stop", release_data, {"artefacts": artefacts["env"]})
    jobs["python-example"] = Job("python-example", release_data, python_example())
    jobs["otel-exporter"] = Job("otel-exporter", release_data, python_example(exporter.TITLE))
    for name, (old, new) in CHANGED_FACTS.items():
        changed = _broken(tmp_path_factory.mktemp(name) / "releases.yaml", old, new)
        jobs[f"changed:{name}"] = Job(name, load_release_data(changed))
    found = run_all(jobs, program)
    for name, outcome in sorted(found.items()):
        if isinstance(outcome, Outcome):
            print(f"probe {name} ({outcome.seconds:g} s): {outcome.measured}")
    return found


SEND_TRACES = REPO_ROOT / "docs" / "guides" / "send-traces-to-betrace.md"
COMPOSE_GUIDE = REPO_ROOT / "docs" / "guides" / "deploy-with-docker-compose.md"


def page_blocks(page: Path) -> list[Any]:
    """The fenced blocks of a page as readers see it (rendered with the site's macros)."""
    from betrace_dist.gate.lexer import blocks
    from betrace_dist.gate.render import Site

    return blocks(Site(REPO_ROOT / "mkdocs.yml").render(page).text)


def block(page: Path, language: str, title: str | None = None) -> str:
    """The one block of the language with that title (None: the one without a title)."""
    found = [
        b.body
        for b in page_blocks(page)
        if b.language == language and b.attrs.get("title") == title
    ]
    assert len(found) == 1, f"{page.name}: expected one {language} block titled {title!r}"
    return str(found[0])


def documented_span_answer() -> str:
    """The output the send-traces page shows under its `$ curl ... /v1/spans` step."""
    shown = [
        "\n".join(step.output)
        for b in page_blocks(SEND_TRACES)
        if b.language == "console"
        for step in steps(str(b.body))
        if "/v1/spans" in step.script and step.output
    ]
    assert len(shown) == 1, f"{SEND_TRACES.name}: expected one transcript posting spans"
    return shown[0]


def python_example(title: str | None = None) -> dict[str, Any]:
    """A Python example of the send-traces page (the untitled one, or the one of `title`) and
    the Compose guide's rule its spans break."""
    return {
        "source": block(SEND_TRACES, "python", title),
        "rule": block(COMPOSE_GUIDE, "json", "first-rule.json"),
    }


def measured(outcomes: dict[str, Outcome | str], name: str) -> dict[str, Any]:
    outcome = outcomes[name]
    if isinstance(outcome, str):
        pytest.fail(outcome, pytrace=False)
    return outcome.measured


@pytest.mark.parametrize("name", NAMES)
def test_the_observed_facts_hold_on_the_real_backend(
    name: str, outcomes: dict[str, Outcome | str], release_data: ReleaseData
) -> None:
    problems = verdict(name, release_data, measured(outcomes, name))
    assert not problems, "\n".join(report(FACTS, name, problems, "releases.yaml"))


@pytest.mark.parametrize("artefact", ["compose", "chart"])
def test_the_backend_stops_well_inside_each_artefacts_grace_period(
    artefact: str, outcomes: dict[str, Outcome | str], artefacts: dict[str, Any]
) -> None:
    grace = artefacts["grace"][artefact]
    stops = {k: v for k, v in measured(outcomes, "artefact-stop").items() if artefact in k}
    assert len(stops) == 2, stops
    slow = {k: v for k, v in stops.items() if v > grace / 2}
    assert not slow, (
        f"the backend started with the {artefact} environment took {slow} s to stop; its grace "
        f"period is {grace:g} s (want at most half): {artefacts['env'][artefact]}"
    )


# --- the probes' own guarantees, without a backend ------------------------------------------------


def test_every_observed_fact_names_a_probe_that_exists() -> None:
    assert FACTS and all(fact.probe in PROBES for fact in FACTS), [
        f"releases.yaml:{f.line}: {f.field} probe {f.probe!r}"
        for f in FACTS
        if f.probe not in PROBES
    ]
    text = RELEASES_FILE.read_text(encoding="utf-8")
    # every `probe:` line of the file is a fact's, at whatever depth the fact sits
    assert len(re.findall(r"(?m)^ +probe: ", text)) == len(FACTS)


def test_every_probe_is_named_by_a_fact() -> None:
    assert set(PROBES) == set(NAMES)


def _broken(path: Path, old: str, new: str) -> Path:
    text = RELEASES_FILE.read_text(encoding="utf-8")
    assert old in text, f"releases.yaml no longer contains {old!r}: update this test"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_an_observed_fact_without_a_probe_is_refused(tmp_path: Path) -> None:
    from betrace_dist.errors import ProblemsError

    path = _broken(
        tmp_path / "releases.yaml", "        probe: cors\n      endpoints:", "      endpoints:"
    )
    with pytest.raises(ProblemsError) as caught:
        load_release_data(path)
    (problem,) = [str(p) for p in caught.value.problems]
    assert problem.startswith(f"{path}:") and "backend.cors" in problem, problem
    assert "needs `probe: <name>`" in problem


def test_a_probe_name_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    from betrace_dist.errors import ProblemsError

    path = _broken(
        tmp_path / "releases.yaml",
        "probe: cors\n      endpoints:",
        "probe: corss\n      endpoints:",
    )
    with pytest.raises(ProblemsError) as caught:
        load_release_data(path)
    (problem,) = [str(p) for p in caught.value.problems]
    line = path.read_text().splitlines().index("        probe: corss") + 1
    assert problem.startswith(f"{path}:{line}:") and "no probe is named 'corss'" in problem


#: a changed expectation for each probe: an edit of releases.yaml the real measurement refutes,
#: or (for probes whose claims are fixed words of the fact) a wrong measurement
CHANGED_FACTS: dict[str, tuple[str, str]] = {
    "bound-addresses": ("    http:\n          port: 12011", "    http:\n          port: 12013"),
    "cors": (
        "allow_headers: [Content-Type, Authorization,",
        "allow_headers: [Content-Type, X-API-Key,",
    ),
    "body-size": ("value: 4194304", "value: 10485760"),
    "stop-time": ('distribution_default: "1000"', 'distribution_default: "5000"'),
    "start-time": ("listening_at_most: 1\n", "listening_at_most: 0.001\n"),
    "log-lines": ("lines_per_trace: 3\n", "lines_per_trace: 2\n"),
    "data-files": ("before_any_rule: []\n", "before_any_rule: [rules.json]\n"),
    # a window a second too early: its end (plus the probe's margin) falls before the latest
    # measured evaluation, which the eight staggered traces put at least 3.875 s after its POST
    "evaluation-delay": ("quiet_seconds: 3\n", "quiet_seconds: 2\n"),
}


def _wrong(value: Any) -> Iterator[Any]:
    """Values a measurement could have had instead of `value`."""
    if isinstance(value, bool):
        yield not value
    elif isinstance(value, int | float):
        yield from (value + 1000, value - 1000, 0)
    elif isinstance(value, str):
        yield from ("", "OK", "UNIMPLEMENTED", value + "-changed")
    elif isinstance(value, list):
        yield from ([], [*value, "extra"])
    elif isinstance(value, dict):
        yield from (None, {**value, "extra": {}})


def _true_measurement(name: str, release_data: ReleaseData) -> dict[str, Any]:
    """A measurement that bears out every claim of the probe (made from its expectations)."""
    out: dict[str, Any] = {}
    for key, expect in PROBES[name].expect(release_data).items():
        out[key] = next(v for v in _candidates(expect) if expect.holds(v))
    return out


def _candidates(expect: Expect) -> Iterator[Any]:
    says = expect.says
    if says.startswith("= "):
        import ast

        yield ast.literal_eval(says[2:])
    if says.startswith("served"):
        yield "OK"
    yield from (0.5, 2.0, 12.0, 400, 1)
    if says.startswith("contains "):
        yield says.removeprefix("contains ").strip("'")
    yield "served"
    yield "failed (SSLError)"
    yield 10
    yield [
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    ]


@pytest.mark.parametrize("name", NAMES)
def test_each_claim_of_a_probe_fails_on_a_wrong_measurement_with_the_facts_line(
    name: str, release_data: ReleaseData
) -> None:
    """Break test: for each value a probe checks, a changed measurement makes it fail, and the
    report names every fact of the probe with its releases.yaml line."""
    right = _true_measurement(name, release_data)
    assert not verdict(name, release_data, right)
    lines = {f.line for f in FACTS if f.probe == name}
    for key, value in right.items():
        caught = [
            problems
            for wrong in _wrong(value)
            if (problems := verdict(name, release_data, right | {key: wrong}))
        ]
        assert caught, f"probe {name}: no wrong value of {key} is caught"
        text = "\n".join(report(FACTS, name, caught[0], "releases.yaml"))
        assert all(f"releases.yaml:{line}: " in text for line in lines), text
        assert caught[0][0].startswith(f"{key}: the fact says"), caught[0]
    missing = disagreements(PROBES[name].expect(release_data), {})
    assert len(missing) == len(right)


@pytest.mark.parametrize("name", sorted(CHANGED_FACTS))
def test_a_changed_fact_fails_against_the_real_measurement(
    name: str, outcomes: dict[str, Outcome | str], tmp_path: Path
) -> None:
    """Break test on the real measurement: releases.yaml edited to say something else."""
    old, new = CHANGED_FACTS[name]
    changed = load_release_data(_broken(tmp_path / "releases.yaml", old, new))
    problems = verdict(name, changed, measured(outcomes, f"changed:{name}"))
    assert problems, f"probe {name} did not notice the change {old!r} -> {new!r}"
    text = "\n".join(report(FACTS, name, problems, "releases.yaml"))
    print(text)
    assert "releases.yaml:" in text and "measured" in text


def test_the_report_names_the_line_and_the_measurement() -> None:
    facts = [Fact(540, "releases[0].known_issues[3]", "stop-time", "after API traffic ...")]
    problems = disagreements(
        {"with_receiver_s": Expect("<= 1 s", lambda v: v <= 1)}, {"with_receiver_s": 3.2}
    )
    assert report(facts, "stop-time", problems, "releases.yaml") == [
        "releases.yaml:540: releases[0].known_issues[3] (probe stop-time) says: "
        "after API traffic ...",
        "    with_receiver_s: the fact says <= 1 s, measured 3.2",
    ]


def test_the_python_example_of_the_send_traces_page_runs_against_the_real_backend(
    outcomes: dict[str, Outcome | str],
) -> None:
    """The page's example posts its two spans with `post_spans` to the real backend: the answer
    is the one the page documents (the output of its `curl` transcript posting the same spans),
    and the spans break the Compose guide's rule, as the page says, so the backend records one
    violation of it."""
    found = measured(outcomes, "python-example")
    documented = json.loads(documented_span_answer())
    rule = json.loads(python_example()["rule"])["name"]
    assert not example_disagreements(found, documented, rule), found


def example_disagreements(found: dict[str, Any], documented: object, rule: str) -> list[str]:
    out = []
    if found["answer"] != documented:
        out.append(
            f"the page documents the answer {documented}, the backend gave {found['answer']}"
        )
    if (found["violations"], found["violated_rules"]) != (1, [rule]):
        out.append(f"one violation of {rule} expected, the backend recorded {found['violations']}")
    if found.get("boolean_violations") != 1:
        out.append(
            "the page says betrace_span turns True and False into the words rules compare "
            "with; a rule on them recorded no violation"
        )
    return out


def test_the_opentelemetry_exporter_of_the_send_traces_page_runs_against_the_real_backend(
    outcomes: dict[str, Outcome | str],
) -> None:
    """The page's exporter, with the SDK, run as the page says: the two spans its block makes
    reach the backend and break the Compose guide's never-rule once, at trace level, and a
    boolean attribute arrives as the word rules compare with. That the exporter posts a
    trace's spans together is not shown here (two requests milliseconds apart are judged as
    one trace too): test_the_exporter_behaves_as_the_page_says shows it."""
    found = measured(outcomes, "otel-exporter")
    assert not exporter_disagreements(found), found


def exporter_disagreements(found: dict[str, Any]) -> list[str]:
    out = []
    if (found["traces"], found["violation_kinds"]) != (1, ["trace"]):
        out.append(
            f"one trace with one trace-level violation expected, measured {found['traces']} "
            f"trace(s) and violations {found['violation_kinds']}: the exporter did not post the "
            "trace's spans together"
        )
    if found["boolean_violations"] != 1:
        out.append("a boolean attribute did not arrive as the word rules compare with")
    return out


def test_a_trace_sent_in_pieces_or_a_wrong_boolean_is_caught() -> None:
    real = {"traces": 1, "violation_kinds": ["trace"], "boolean_violations": 1}
    assert exporter_disagreements(real) == []
    (apart,) = exporter_disagreements(real | {"violation_kinds": []})
    assert "did not post the trace's spans together" in apart
    assert exporter_disagreements(real | {"boolean_violations": 0})


def test_the_sdk_installed_is_the_one_the_release_data_names(release_data: ReleaseData) -> None:
    """The page names the SDK version its exporter is run with (releases.yaml
    examples.opentelemetry_sdk); pyproject.toml pins the one installed."""
    from importlib.metadata import version

    assert version("opentelemetry-sdk") == release_data.current.examples.opentelemetry_sdk


def test_the_exporter_behaves_as_the_page_says(outcomes: dict[str, Outcome | str]) -> None:
    """The page's exporter, run in the probe's jail against a loopback server of its own: what
    it posts and when (the grouping, strings, request size and failures the page claims, which
    the backend's verdict could not show: two requests milliseconds apart are judged as one
    trace too). The page's code never runs in the tests' process."""
    behaviour = measured(outcomes, "otel-exporter")["behaviour"]
    assert not exporter.disagreements(behaviour, load_release_data()), behaviour


#: the measurement of the page's exporter as it is (its run in the probe gave these)
EXPORTER_GOOD = {
    "posted_before_the_trace_ended": 0,
    "requests_of_one_trace": 1,
    "parent_linked": True,
    "attributes": {"verified": "true", "final": "false", "tags": "a,b", "ratio": "0.5"},
    "times": ["1796000000000000000", "1796000000001000000"],
    "request_sizes": [1000, 2],
    "largest_body": 224_889,  # about a hundredth of the 22,488,901 bytes 100_000 spans measured
    "max_spans": 1000,
    "add_betrace_posted": 1,
    "remote_parent_posted": 1,
    "waiting_before_shutdown": 0,
    "sent_at_shutdown": ["child"],
    "refused_result": "FAILURE",
    "refused_requests": 1,
}


def test_an_exporter_that_posts_each_span_at_once_is_caught() -> None:
    """What a naive exporter (a POST per export call) measures: the child goes out alone before
    its parent ends, and a large trace in requests of one span (measured by editing the page's
    block to post at once: three claims broke)."""
    assert exporter.disagreements(EXPORTER_GOOD, load_release_data()) == []
    naive = EXPORTER_GOOD | {
        "posted_before_the_trace_ended": 1,
        "requests_of_one_trace": 2,
        "request_sizes": [1] * 1002,
        "waiting_before_shutdown": 1,
    }
    found = exporter.disagreements(naive, load_release_data())
    assert len(found) == 3 and "then posts them in one request" in found[0], found
    wrong = EXPORTER_GOOD | {"attributes": {"verified": "True"}}
    assert "attribute values were sent as" in str(
        exporter.disagreements(wrong, load_release_data())
    )


def test_an_exporter_too_large_for_the_backend_or_deaf_to_its_url_is_caught() -> None:
    """MAX_SPANS over the backend's spans per request (edited to 100_000, a reader's trace of
    20,000 spans got 400 and was lost), and add_betrace that drops its url (every span goes
    to the default, and an app in a container loses them all)."""
    large = EXPORTER_GOOD | {"max_spans": 100_000, "largest_body": 25_700_000}
    found = exporter.disagreements(large | {"request_sizes": [100_000, 2]}, load_release_data())
    assert len(found) == 2 and "MAX_SPANS is 100000" in found[0], found
    assert "over the backend's" in found[1]
    (deaf,) = exporter.disagreements(EXPORTER_GOOD | {"add_betrace_posted": 0}, load_release_data())
    assert "did not post to the URL it was given" in deaf


def test_an_exporter_that_sends_times_in_another_unit_is_caught() -> None:
    """The attack on the pages found the exporter's times divided by 1000 (microseconds)
    passing, where the page's field table says nanoseconds since the epoch."""
    micro = EXPORTER_GOOD | {"times": ["1796000000000000", "1796000000001000"]}
    (found,) = exporter.disagreements(micro, load_release_data())
    assert "span times were sent as" in found and "nanoseconds" in found
    unquoted = EXPORTER_GOOD | {"times": [1796000000000000000, 1796000000001000000]}
    assert exporter.disagreements(unquoted, load_release_data())


def test_a_changed_documented_answer_or_a_missing_violation_is_caught() -> None:
    """Break test of the comparison: the page documenting another answer, or no violation."""
    real = {"answer": {"accepted": 2, "rejected": 0, "errors": []}, "violations": 1}
    real |= {"violated_rules": ["r"], "boolean_violations": 1}
    assert example_disagreements(real, {"accepted": 2, "rejected": 0, "errors": []}, "r") == []
    wrong = example_disagreements(real, {"accepted": 3, "rejected": 0, "errors": []}, "r")
    assert wrong and "accepted': 3" in wrong[0]
    assert example_disagreements(
        real | {"violations": 0, "violated_rules": []}, real["answer"], "r"
    )
    (booleans,) = example_disagreements(real | {"boolean_violations": 0}, real["answer"], "r")
    assert "turns True and False into the words rules compare with" in booleans


def test_every_ignored_sdk_variable_has_a_value_the_probe_sets_against_it(
    release_data: ReleaseData,
) -> None:
    """The probe otel-variables sets each name of releases.yaml backend.sdk_env.ignored to a
    value that would stop the export; a name added there without one fails the probe."""
    from betrace_dist.probes import catalogue

    ignored = set(release_data.current.backend.sdk_env.ignored)
    assert ignored <= set(catalogue._OVERRIDDEN), sorted(ignored - set(catalogue._OVERRIDDEN))
    with pytest.raises(KeyError, match="OTEL_NEW"):
        catalogue.measure_otel_env({"ignored": ["OTEL_NEW"]})
