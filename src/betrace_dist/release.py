"""The release data model: releases.yaml, validated, with errors that name file, line and field."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from functools import total_ordering
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from ruamel.yaml.comments import CommentedSeq

from . import REPO_ROOT
from .errors import Problem, ProblemsError
from .names import is_floating_tag
from .probes.catalogue import PROBES
from .yamlio import field_path, line_of, load_with_lines, to_plain

RELEASES_FILE = REPO_ROOT / "releases.yaml"

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$")
_TAG = re.compile(r"^v?\d+(?:\.\d+){0,3}(?:[-+][0-9A-Za-z.-]+)?$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def next_minor(version: str) -> str:
    """The next minor version after `version` (2.0.1 -> 2.1.0): what a maintainer releases next."""
    major, minor, _ = version.split("-")[0].split(".")
    return f"{major}.{int(minor) + 1}.0"


def _semver(value: str) -> str:
    if not _VERSION.match(value):
        raise ValueError(f"'{value}' is not a version of the form MAJOR.MINOR.PATCH, such as 2.0.0")
    return value


def _tag(value: str) -> str:
    if is_floating_tag(value):
        raise ValueError(
            f"the tag '{value}' moves over time; pin a version tag (and a digest once published)"
        )
    if not _TAG.match(value):
        raise ValueError(f"'{value}' is not a version tag such as 2.0.0 or v2.53.0")
    return value


def _digest(value: str) -> str:
    if not _DIGEST.match(value):
        raise ValueError(f"'{value}' is not a digest of the form sha256:<64 lowercase hex digits>")
    return value


def _minor(value: str) -> str:
    if not re.match(r"^\d+\.\d+$", value):
        raise ValueError(f"'{value}' is not a MAJOR.MINOR version (quote it: \"1.25\")")
    return value


def _not_a_number(expected: str) -> BeforeValidator:
    """YAML reads an unquoted 2.0 or 1.30 as a number (1.30 even becomes 1.3): say so."""

    def check(value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise PydanticCustomError(
                "number_not_version",
                "YAML reads {value} as a number, not a version: write {expected}",
                {"value": value, "expected": expected},
            )
        return value

    return BeforeValidator(check)


SemVer = Annotated[str, _not_a_number("MAJOR.MINOR.PATCH, such as 2.0.0"), AfterValidator(_semver)]
Tag = Annotated[str, AfterValidator(_tag)]
Digest = Annotated[str, AfterValidator(_digest)]
MinorVersion = Annotated[
    str, _not_a_number('MAJOR.MINOR in quotes, such as "1.25"'), AfterValidator(_minor)
]
EnvName = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]


@total_ordering
class Version:
    """Semantic version ordering (pre-releases sort before their release)."""

    def __init__(self, text: str) -> None:
        m = _VERSION.match(text)
        if not m:
            raise ValueError(text)
        self.text = text
        self.key = (int(m[1]), int(m[2]), int(m[3]), m[4] is None, m[4] or "")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.key == other.key

    def __lt__(self, other: Version) -> bool:
        return self.key < other.key

    def __hash__(self) -> int:
        return hash(self.key)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


_SOURCE_PREFIX = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:")
_SOURCE_PATH = re.compile(r"^[A-Za-z0-9_.@-]+(?:/[A-Za-z0-9_.@-]+)*$")


def _source(value: str) -> str:
    """A file of upstream at the pinned commit (`backend/cmd/betrace-backend/main.go`, with an
    optional `#fragment`), or `owner/repo@ref:path` for a file of another project."""
    prefix = _SOURCE_PREFIX.match(value)
    path = value[prefix.end() :] if prefix else value
    path = path.split("#", 1)[0]
    looks_like_file = "/" in path or "." in path.rsplit("/", 1)[-1] or prefix is not None
    if not _SOURCE_PATH.match(path) or not looks_like_file or path.startswith("/"):
        raise ValueError(
            f"'{value}' is not the path of an upstream file (such as "
            "backend/cmd/betrace-backend/main.go, relative to the upstream repository at "
            "upstream.commit), nor owner/repo@ref:path for a file of another project; "
            "put explanations in a comment or in `observed`"
        )
    return value


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


Source = Annotated[str, AfterValidator(_source)]
Sources = Annotated[list[Source], BeforeValidator(_one_or_many), Field(min_length=1)]
#: A patch the distribution carries, by its path in the repository.
PatchFile = Annotated[str, Field(pattern=r"^patches/[a-z0-9-]+/\d{4}-[a-z0-9-]+\.patch$")]
Observation = Annotated[str, Field(min_length=1, pattern=r"\S")]


def _probe_name(value: str) -> str:
    if value not in PROBES:
        raise ValueError(
            f"no probe is named '{value}'; probes (src/betrace_dist/probes/catalogue.py): "
            + ", ".join(sorted(PROBES))
        )
    return value


ProbeName = Annotated[str, AfterValidator(_probe_name)]


class Sourced(Model):
    """A fact about something this project did not write: it names where it comes from, an
    upstream file (`source`) or what running the real program showed (`observed`), or both.
    An observation names the probe that measures it again in every test run (`probe`)."""

    source: Sources | None = None
    observed: Observation | None = None
    probe: ProbeName | None = None

    @model_validator(mode="after")
    def _has_evidence(self) -> Sourced:
        if not self.source and not self.observed:
            raise ValueError(
                "states no evidence: add `source: <upstream file at upstream.commit>` "
                "or `observed: <what running the real program showed>`"
            )
        if self.observed and not self.probe:
            raise ValueError(
                "an `observed` fact needs `probe: <name>`, the probe that measures it again in "
                "every test run (src/betrace_dist/probes/catalogue.py)"
            )
        if self.probe and not self.observed:
            raise ValueError("`probe` re-measures an observation: add `observed: <what it shows>`")
        return self


class Project(Model):
    name: str
    repository: str = Field(pattern=r"^https://")
    distribution_repository: str = Field(pattern=r"^https://")
    site_url: str = Field(pattern=r"^https://.*/$")
    registry: str = Field(
        pattern=r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+$",
        description="registry host and owner path shared by every BeTrace image",
    )
    flakehub: str = Field(pattern=r"^[A-Za-z0-9_-]+/[A-Za-z0-9_-]+$")
    license: Literal["MIT"]


class Image(Model):
    tag: Tag
    digest: Digest | None = None


class Images(Model):
    backend: Image
    grafana_plugin: Image = Field(alias="grafana-plugin")
    plugin_init: Image = Field(alias="plugin-init")


def _semver_key(version: str) -> tuple[int, ...]:
    """A version's order: MAJOR, MINOR, PATCH, then a pre-release before its release (their
    own order is not compared)."""
    found = _VERSION.match(version)
    if found is None:
        return ()
    return (int(found[1]), int(found[2]), int(found[3]), 0 if found[4] else 1)


class ChartChange(Model):
    """One change of a chart version, in Artifact Hub's `artifacthub.io/changes` form (a kind
    and a description; artifacthub.io/docs/topics/annotations/helm, read on the web), and what
    an upgrade to that version asks of an operator (None: nothing)."""

    version: SemVer
    kind: Literal["added", "changed", "deprecated", "removed", "fixed", "security"]
    description: str = Field(min_length=1)
    upgrade: str | None = None


class Chart(Model):
    name: str = Field(pattern=r"^[a-z0-9-]+$")
    version: SemVer
    app_version: SemVer
    #: what each chart version changed, newest first: Chart.yaml's artifacthub.io/changes lists
    #: the current version's (chart_policy), the releases page all of them
    changes: list[ChartChange] = Field(default_factory=list)

    @model_validator(mode="after")
    def _changes_of_known_versions(self) -> Chart:
        newer = [
            c.version for c in self.changes if _semver_key(c.version) > _semver_key(self.version)
        ]
        if newer:
            raise ValueError(f"changes of versions after the chart's {self.version}: {newer}")
        keys = [_semver_key(c.version) for c in self.changes]
        if keys != sorted(keys, reverse=True):
            raise ValueError("changes are listed newest version first")
        if self.changes and self.changes[0].version != self.version:
            raise ValueError(
                f"the chart's version {self.version} lists no change: say what it changed"
            )
        return self

    def changes_of(self, version: str) -> list[ChartChange]:
        return [c for c in self.changes if c.version == version]


class PluginSetting(Sourced):
    name: str = Field(pattern=r"^(jsonData|secureJsonData)\.[A-Za-z0-9_]+$")
    default: str
    meaning: str


class SeriesPatch(Model):
    """One patch of a series the distribution carries (patches/<component>/, patch_series)."""

    file: str
    fixes: str = Field(min_length=1)
    forwarded: str = Field(pattern=r"^(no|yes|https://\S+)$")


class PluginPatch(SeriesPatch):
    """One patch of the series for the app (patches/grafana-betrace-app/)."""

    file: str = Field(pattern=r"^patches/grafana-betrace-app/\d{4}-[a-z0-9-]+\.patch$")


class BackendPatch(SeriesPatch):
    """One patch of the series for the backend (patches/betrace-backend/)."""

    file: str = Field(pattern=r"^patches/betrace-backend/\d{4}-[a-z0-9-]+\.patch$")


class Plugin(Sourced):
    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*-app$")
    type: Literal["app"]
    version: SemVer
    page_path: str = Field(pattern=r"^/a/")
    plugins_dir: str = Field(pattern=r"^/")
    plugins_dir_source: Source
    settings: list[PluginSetting] = Field(default_factory=list)
    patches: list[PluginPatch] = Field(
        default_factory=list, description="the patch series every app of this release carries"
    )


class GrafanaSupport(Sourced):
    """The Grafana the distribution's (patched) app needs: `minimum` and, in older lines, the
    patch releases of `backports`; `upstream_minimum` and `tested` are of upstream's own app."""

    minimum: SemVer
    backports: list[SemVer] = Field(default_factory=list)
    upstream_minimum: SemVer
    tested: list[SemVer] = Field(min_length=1)
    react_19_from: SemVer = Field(
        description="the first Grafana that runs plugins under React 19, where upstream's "
        "unpatched app (React 18's JSX runtime bundled) fails to load"
    )

    @property
    def dependency(self) -> str:
        """The semver range the patched plugin.json declares (`grafanaDependency`)."""
        lines = [f">={self.minimum}"]
        for version in sorted(self.backports, key=Version):
            major, minor = version.split(".")[:2]
            lines.append(f">={version} <{major}.{int(minor) + 1}.0")
        return " || ".join(lines)

    @property
    def needs(self) -> str:
        """The requirement as pages state it."""
        if not self.backports:
            return f"{self.minimum} or later"
        older = ", ".join(f"{v}+" for v in sorted(self.backports, key=Version))
        return f"{self.minimum} or later, or {older} in older lines"

    def supports(self, version: str) -> bool:
        """Whether a Grafana version shares what the app takes from it."""
        if Version(version) >= Version(self.minimum):
            return True
        same_line = [b for b in self.backports if b.split(".")[:2] == version.split(".")[:2]]
        return any(Version(version) >= Version(b) for b in same_line)


class KubernetesSupport(Model):
    minimum: MinorVersion


class ToolSupport(Model):
    minimum: SemVer


class ComposeSupport(ToolSupport):
    """The Docker Compose the stack needs (`minimum`), and releases known not to build it."""

    broken: list[SemVer] = Field(default_factory=list)


class Target(Model):
    """One way to run BeTrace, as the home page's status table shows it. How it is checked is
    counted from the gate's ledger of its guide (or of one section of it), never written here."""

    name: str = Field(min_length=1)
    guide: str = Field(pattern=r"^guides/[a-z0-9-]+\.md$")
    section: str | None = None  # a heading of the guide: only that section's blocks count
    works: str = Field(min_length=1)
    # the guide needs the release's images (or chart): unpublished, the table says so and
    # links to its section that gets them (site/tables.py IMAGES_SECTION)
    needs_images: bool = False
    # it runs upstream's own builds, without the distribution's patches: only such a target
    # meets the known issues those patches fix (`fixed_by`)
    upstream_builds: bool = False
    issues: list[str] = Field(default_factory=list)  # ids of known_issues


class Examples(Model):
    """What the guides' own examples need of the reader's machine."""

    python_minimum: MinorVersion
    opentelemetry_sdk: SemVer = Field(
        description="the OpenTelemetry SDK for Python the exporter example is run with"
    )


class GrafanaChart(Model):
    repo_name: str
    repo_url: str = Field(pattern=r"^https://")
    chart: str
    version: SemVer
    app_version: SemVer
    minimum: SemVer | None = Field(
        default=None,
        description="oldest chart version that renders the guide's values as written",
    )


class PinnedImage(Model):
    image: str = Field(pattern=r"^[a-z0-9.-]+(/[a-z0-9._-]+)+$")
    tag: Tag
    digest: Digest | None = None

    @property
    def ref(self) -> str:
        return f"{self.image}:{self.tag}" + (f"@{self.digest}" if self.digest else "")


class Observability(Model):
    grafana: PinnedImage
    tempo: PinnedImage
    loki: PinnedImage
    prometheus: PinnedImage
    pyroscope: PinnedImage
    otel_collector: PinnedImage = Field(alias="otel-collector")
    busybox: PinnedImage


class Port(Sourced):
    port: int = Field(ge=1, le=65535)
    env: EnvName
    serves: str


class Bind(Sourced):
    address: str
    setting: str


FieldType = Literal["string", "boolean", "integer", "number", "array", "object"]
FieldName = Annotated[str, Field(pattern=r"^[A-Za-z@][A-Za-z0-9_@]*$")]


class Body(Sourced):
    """Fields of a request body, query string or response (JSON names, as upstream's API
    description spells them), the fields the gate requires, and the fields of array items."""

    fields: dict[FieldName, FieldType] = Field(min_length=1)
    required: list[FieldName] = Field(default_factory=list)
    required_source: Source | None = None
    items: dict[FieldName, Body] = Field(default_factory=dict)
    values: dict[FieldName, FieldType] = Field(
        default_factory=dict,
        description="the type of every value of an object field that is a map",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Body:
        unknown = [n for n in self.required if n not in self.fields]
        if unknown:
            raise ValueError(f"required names fields that are not listed: {', '.join(unknown)}")
        if self.required and not self.required_source:
            raise ValueError("required fields need a required_source (the upstream file)")
        not_arrays = [n for n in self.items if self.fields.get(n) != "array"]
        if not_arrays:
            raise ValueError(f"items describes fields that are not arrays: {', '.join(not_arrays)}")
        not_maps = [n for n in self.values if self.fields.get(n) != "object"]
        if not_maps:
            raise ValueError(f"values describes fields that are not objects: {', '.join(not_maps)}")
        return self

    def spec(self) -> dict[str, object]:
        """Plain form for checkers: fields, required and items (nested the same way)."""
        return {
            "fields": dict(self.fields),
            "required": list(self.required),
            "items": {name: body.spec() for name, body in self.items.items()},
            "values": dict(self.values),
        }


class Endpoint(Sourced):
    method: Literal["GET", "POST", "PUT", "DELETE", "PATCH"]
    path: str = Field(pattern=r"^/")
    port: Literal["http", "grpc"]
    purpose: str
    query: Body | None = None
    query_ignored: list[FieldName] = Field(
        default_factory=list,
        description="query fields upstream's API description lists that the backend ignores",
    )
    request: Body | None = None
    response: Body | None = None
    contract: bool = Field(
        default=True, description="false: upstream's API description does not list it"
    )
    contract_note: str | None = None

    @model_validator(mode="after")
    def _contract_reason(self) -> Endpoint:
        if not self.contract and not self.contract_note:
            raise ValueError("contract: false needs a contract_note saying why")
        unknown = [n for n in self.query_ignored if not self.query or n not in self.query.fields]
        if unknown:
            raise ValueError(f"query_ignored names fields the query does not have: {unknown}")
        return self


class Limit(Sourced):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    value: int = Field(ge=1)
    unit: str
    meaning: str


class EnvVar(Sourced):
    name: EnvName
    default: str
    meaning: str
    secret: bool = False
    distribution_default: str | None = Field(
        default=None,
        description="the value this project's artefacts (Compose, chart, NixOS module) set",
    )


class Cors(Sourced):
    """The CORS headers the backend sends on every answer (a browser's view of the API)."""

    allow_origin: str
    allow_methods: list[str] = Field(min_length=1)
    allow_headers: list[str] = Field(min_length=1)


class StopTimes(Sourced):
    """Seconds the backend takes to stop on SIGTERM right after API traffic: the probe stop-time
    holds each of its runs to these bounds, and texts that state a stop time are held to them."""

    with_receiver_at_most: int = Field(gt=0, description="something receives its OTLP")
    without_listener_at_least: int = Field(
        gt=0, description="nothing listens on its OTLP endpoint, no export timeout set"
    )
    with_distribution_timeout_at_most: int = Field(
        gt=0,
        description="nothing listens, OTEL_EXPORTER_OTLP_TIMEOUT at the distribution's default",
    )


class StartTime(Sourced):
    """How soon the backend answers after it starts: the probe start-time holds it to this, and
    the gate's models give a backend started in the background that long (a `sleep` of it, or a
    client retrying that long) before it answers."""

    listening_at_most: float = Field(
        gt=0, le=10, description="seconds from its start until /v1/health answers"
    )


class LogLines(Sourced):
    """What the backend's log gains as spans come in: the probe log-lines measures it in every
    run, and the pages that size the log's rotation read it from here."""

    lines_per_span: int = Field(gt=0, description="lines for every span it ingests")
    lines_per_trace: int = Field(
        gt=0, description="lines for every trace, once complete and evaluated"
    )
    lines_per_violation: int = Field(gt=0, description="lines for every violation it records")


class DataFiles(Sourced):
    """What the backend keeps in its data folder (BETRACE_DATA_DIR): the probe data-files lists
    it in every run, and the guides' backup steps rest on it."""

    before_any_rule: list[str] = Field(
        description="files in an empty data folder once the backend has started"
    )
    after_a_rule: list[str] = Field(
        min_length=1, description="files once a rule was made (and kept after its deletion)"
    )
    rules_after_the_last_deletion: dict[str, Any] = Field(
        description="what rules.json holds once every rule made was deleted"
    )
    #: the guides' restores through a helper pod (and the gate's check that a restart follows
    #: one, gate/data_volume.py) rest on both: change them with these
    read_at_start_only: Literal[True] = Field(
        description="a rules.json changed while the backend runs is read only at its next start"
    )
    overwritten_at_next_change: Literal[True] = Field(
        description="the backend writes the rules it holds over a changed rules.json at its "
        "next rule change"
    )


class Judging(Sourced):
    """When a rule judges a trace: the probe rule-judging measures it in every run, and the
    send-traces guide's checklist ("No violation where you expected one", its first two
    steps) rests on both values: change those steps with them."""

    enabled_when_not_given: Literal[False] = Field(
        description="`enabled` of a rule created through the API without it"
    )
    judges_earlier_traces: Literal[False] = Field(
        description="whether a rule created or enabled later judges traces already judged"
    )


class Evaluation(Sourced):
    """When the backend evaluates a trace: once a check, made every `check_every_seconds`, finds
    no span of it for `quiet_seconds`. The probe evaluation-delay holds each run to that window,
    and the pages state it and wait it out through the macros `evaluation_delay` and
    `evaluation_wait`."""

    quiet_seconds: int = Field(gt=0, description="seconds without a span of the trace")
    check_every_seconds: int = Field(gt=0, description="seconds between two checks")

    @property
    def window(self) -> tuple[int, int]:
        """The earliest and the latest a trace is evaluated after its last span, in seconds."""
        return self.quiet_seconds, self.quiet_seconds + self.check_every_seconds


class SdkEnv(Sourced):
    pattern: str = Field(pattern=r"^[A-Z][A-Z0-9_]*_\*$")
    meaning: str
    ignored: list[EnvName] = Field(
        default_factory=list,
        description="standard variables the SDK would read, which the backend's code overrides",
    )


class RuntimeEnv(Sourced):
    """Variables the Go runtime inside the backend reads itself (backend_env.RUNTIME_RULES
    holds each one's values to what the runtime takes)."""

    names: list[EnvName] = Field(min_length=1)
    meaning: str


class Backend(Sourced):
    binary: str
    version: SemVer
    go_minimum: MinorVersion
    replicas: Literal[1] = Field(
        description="rules live on disk and violations in memory: exactly one replica"
    )
    ports: dict[Literal["http", "grpc"], Port]
    bind: Bind
    cors: Cors
    endpoints: list[Endpoint] = Field(min_length=1)
    limits: list[Limit] = Field(min_length=1)
    env: list[EnvVar] = Field(min_length=1)
    stop: StopTimes
    start: StartTime
    log: LogLines
    data_files: DataFiles
    judging: Judging
    evaluation: Evaluation
    sdk_env: SdkEnv
    runtime_env: RuntimeEnv
    not_read: list[EnvName] = Field(default_factory=list)
    not_read_source: Sourced
    patches: list[BackendPatch] = Field(
        default_factory=list, description="the patch series every backend of this release carries"
    )

    def limit(self, name: str) -> Limit:
        for limit in self.limits:
            if limit.name == name:
                return limit
        known = ", ".join(limit.name for limit in self.limits)
        raise KeyError(f"the release data has no backend limit '{name}'; limits: {known}")

    @property
    def read(self) -> set[str]:
        """The names of the variables it reads."""
        return {var.name for var in self.env}

    def env_var(self, name: str) -> EnvVar:
        for var in self.env:
            if var.name == name:
                return var
        raise KeyError(f"the backend reads no environment variable '{name}'")


class Upstream(Model):
    """The BeTrace source a release packages: a commit of project.repository (and its tag, once
    upstream tags releases; until then every build pins the commit)."""

    commit: str = Field(pattern=r"^[0-9a-f]{40}$", description="full 40-hex commit id")
    date: dt.date
    tag: str | None = None
    version: SemVer = Field(
        description="the version upstream's own build gives the backend at this commit "
        "(backend/flake.nix: its version and -X main.version; upstream.py re-reads it from the "
        "snapshot). A release bump keeps it: only a new commit changes it"
    )
    source_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="sha256 of upstream's tree at the commit as `git archive` makes it (the "
        "snapshot the tests build the real backend from; upstream.py refuses any other)",
    )

    @property
    def short(self) -> str:
        return self.commit[:8]

    @property
    def ref(self) -> str:
        """What a build fetches: the tag once one exists, the commit until then."""
        return self.tag or self.commit


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"'{value}' is not a regular expression: {exc}") from None
    return value


Regex = Annotated[str, AfterValidator(_regex)]


class FalseClaim(Model):
    """A statement about upstream that is false at the pinned commit: the gate fails every page
    that says it (the pattern, searched case-insensitively in the page as readers see it, with
    line breaks read as spaces), and names why."""

    claim: Regex
    why: str
    see: str | None = Field(default=None, description="the known issue that explains it")


class KnownIssue(Sourced):
    """A known problem of the upstream version a release packages."""

    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    title: str
    what: str
    affects: str
    workaround: str
    upstream_issue: str | None = Field(
        default=None,
        pattern=r"^https://github\.com/[^/]+/[^/]+/issues/\d+$",
        description="the upstream issue, once one is filed",
    )
    shown_with: list[Regex] = Field(
        default_factory=list,
        description="a page with a code block matching one of these must show this issue",
    )
    pages: list[Annotated[str, Field(pattern=r"^[a-z0-9/_-]+\.md$")]] = Field(
        default_factory=list,
        description="the pages (under docs/) this issue concerns: each must keep stating it",
    )
    no_pages_because: str | None = Field(
        default=None,
        description="why no page concerns this issue (then `pages` stays empty); an issue "
        "names its pages or says why it has none",
    )
    fixed_by: Annotated[list[PatchFile], BeforeValidator(_one_or_many)] = Field(
        default_factory=list,
        description="the distribution's patch (or patches, one component's) that fix this issue "
        "in every build it makes; upstream's own builds of the commit still have it",
    )

    @field_validator("fixed_by")
    @classmethod
    def _one_component(cls, value: list[str]) -> list[str]:
        folders = sorted({p.split("/")[1] for p in value})
        if len(folders) > 1:
            raise ValueError(f"fixed_by names patches of {' and '.join(folders)}: one issue, "
                             "one component's patches (or two issues)")  # fmt: skip
        return value

    @property
    def fixing_component(self) -> str | None:
        """The patches folder of the component whose patches fix it (betrace-backend, ...)."""
        return self.fixed_by[0].split("/")[1] if self.fixed_by else None

    @property
    def label(self) -> str:
        """What a page's admonition calls it, before its title."""
        return "Fixed by the distribution's patch" if self.fixed_by else "Known issue"

    @model_validator(mode="after")
    def _pages_or_a_reason(self) -> KnownIssue:
        if not self.pages and not (self.no_pages_because or "").strip():
            raise ValueError(
                f"known issue {self.id} names no page: list the pages it concerns (pages:), "
                "which must each state it, or say why none does (no_pages_because:)"
            )
        if self.pages and self.no_pages_because:
            raise ValueError(f"known issue {self.id} has both pages and no_pages_because: keep one")
        return self


class Release(Model):
    version: SemVer
    date: dt.date
    upstream: Upstream
    summary: str
    images: Images
    chart: Chart
    plugin: Plugin
    grafana: GrafanaSupport
    kubernetes: KubernetesSupport
    helm: ToolSupport
    nix: ToolSupport
    compose: ComposeSupport
    grafana_chart: GrafanaChart
    observability: Observability
    backend: Backend
    examples: Examples | None = None
    targets: list[Target] = Field(default_factory=list)
    known_issues: list[KnownIssue] = Field(default_factory=list)
    false_claims: list[FalseClaim] = Field(default_factory=list)

    @property
    def site_folder(self) -> str:
        """The folder of this release's site, X.Y (.github/workflows/docs.yml deploys tag vX.Y.Z
        there): what the chart's notes link and the guides name."""
        return self.version.rpartition(".")[0]

    @model_validator(mode="after")
    def _chart_of_this_release(self) -> Release:
        if self.chart.app_version != self.version:
            raise ValueError(
                f"chart.app_version {self.chart.app_version} is not the release's version "
                f"{self.version}: the chart installs this release's images, and its notes link "
                "the site of this release (docs.yml deploys tag vX.Y.Z as X.Y)"
            )
        return self

    @model_validator(mode="after")
    def _issue_ids_and_references(self) -> Release:
        ids = [issue.id for issue in self.known_issues]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"known issue ids listed twice: {', '.join(twice)}")
        unknown = sorted({c.see for c in self.false_claims if c.see and c.see not in ids})
        if unknown:
            raise ValueError(f"false_claims name unknown known issues: {', '.join(unknown)}")
        unknown = sorted({i for t in self.targets for i in t.issues if i not in ids})
        if unknown:
            raise ValueError(f"targets name unknown known issues: {', '.join(unknown)}")
        return self

    @model_validator(mode="after")
    def _targets_list_the_issues_their_readers_meet(self) -> Release:
        unlisted = sorted(
            f"{t.name} ({i.id})" for t in self.targets if t.section is None
            for i in self.known_issues if t.guide in i.pages and i.id not in t.issues
            and (t.upstream_builds or not i.fixed_by)
        )  # fmt: skip
        if unlisted:
            raise ValueError(
                "targets do not list known issues their guide states (the home page's status "
                f"table shows the issues a target's reader meets): {', '.join(unlisted)}"
            )
        patched = sorted(
            f"{t.name} ({i})" for t in self.targets if not t.upstream_builds
            for i in t.issues if self.known_issue(i).fixed_by
        )  # fmt: skip
        if patched:
            raise ValueError(
                "targets list known issues the distribution's patches fix, which their builds "
                "carry (a target meets them only with `upstream_builds: true`): "
                + ", ".join(patched)
            )
        return self

    @model_validator(mode="after")
    def _fixes_are_carried(self) -> Release:
        carried = {p.file for p in (*self.plugin.patches, *self.backend.patches)}
        stray = sorted(f"{i.id} ({p})" for i in self.known_issues
                       for p in i.fixed_by if p not in carried)  # fmt: skip
        if stray:
            raise ValueError(
                f"known issues fixed by a patch the release does not carry: {', '.join(stray)}"
            )
        return self

    @property
    def git_tag(self) -> str:
        """The git tag that publishes this release: `v` and its version. The release workflow
        publishes nothing from any other tag (`betrace-dist release check --tag`)."""
        return f"v{self.version}"

    def tag_problem(self, tag: str) -> str | None:
        """Why `tag` may not publish this release, or None when it is this release's tag."""
        if tag == self.git_tag:
            return None
        return (
            f"the release is {self.version} but the tag is {tag}: only {self.git_tag} publishes "
            "it, and nothing is published from another tag"
        )

    @property
    def published(self) -> bool:
        """True once every BeTrace image of this release has a digest.

        The images workflow (.github/workflows/images.yml, which the release workflow runs
        before the chart's on the same tag) records the digests of the images it pushed, and the
        release's last step copies them here: a digest is the one sign in the release data that
        the images and the chart can be pulled. Pages state the status from this property
        (`release.published`)."""
        images = (self.images.backend, self.images.grafana_plugin, self.images.plugin_init)
        return all(image.digest for image in images)

    def known_issue(self, issue_id: str) -> KnownIssue:
        for issue in self.known_issues:
            if issue.id == issue_id:
                return issue
        known = ", ".join(issue.id for issue in self.known_issues) or "(none)"
        raise KeyError(f"no known issue '{issue_id}' in release {self.version}; ids: {known}")


class ReleaseData(Model):
    schema_: Literal[1] = Field(alias="schema")
    project: Project
    releases: list[Release] = Field(min_length=1)

    @property
    def current(self) -> Release:
        return self.releases[0]

    @property
    def chart_oci(self) -> str:
        """Where the chart workflow pushes the chart: oci://<registry owner>/charts."""
        return "oci://" + self.project.registry.rsplit("/", 1)[0] + "/charts"

    def image_ref(self, name: str, release: Release | None = None) -> str:
        """Full reference of a BeTrace image: registry/name:tag, with @digest once published."""
        release = release or self.current
        by_name = {
            "backend": release.images.backend,
            "grafana-plugin": release.images.grafana_plugin,
            "plugin-init": release.images.plugin_init,
        }
        if name not in by_name:
            raise KeyError(f"no BeTrace image '{name}'; images: {', '.join(by_name)}")
        image = by_name[name]
        ref = f"{self.project.registry}/{name}:{image.tag}"
        return f"{ref}@{image.digest}" if image.digest else ref


def _history_problems(data: ReleaseData, root: object, path: Path) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[Version, int] = {}
    previous: Release | None = None
    for index, release in enumerate(data.releases):
        loc = ("releases", index, "version")
        version = Version(release.version)
        if version in seen:
            problems.append(
                Problem(
                    path,
                    line_of(root, loc),
                    f"version {release.version} is listed twice (also releases[{seen[version]}])",
                    field_path(loc),
                )
            )
        seen.setdefault(version, index)
        if previous is not None and version > Version(previous.version):
            problems.append(
                Problem(
                    path,
                    line_of(root, loc),
                    f"history must be newest first, but {release.version} comes after "
                    f"{previous.version}",
                    field_path(loc),
                )
            )
        if previous is not None and release.date > previous.date:
            date_loc = ("releases", index, "date")
            problems.append(
                Problem(
                    path,
                    line_of(root, date_loc),
                    f"date {release.date} is later than that of the newer release "
                    f"{previous.version} ({previous.date})",
                    field_path(date_loc),
                )
            )
        previous = release
    return problems


def _namespace_problems(data: ReleaseData, root: object, path: Path) -> list[Problem]:
    """Images, chart and flake must live under the organisation that owns the repository: a
    workflow's token can publish only there, and any other owner is a name a stranger could hold."""
    project = data.project
    organisation = project.repository.removeprefix("https://").split("/")[1]
    owners = {
        "registry": project.registry.split("/")[1],
        "flakehub": project.flakehub.split("/")[0],
    }
    problems = []
    for key, owner in owners.items():
        if owner != organisation:
            loc = ("project", key)
            problems.append(
                Problem(
                    path,
                    line_of(root, loc),
                    f"owner '{owner}' is not the organisation of project.repository "
                    f"('{organisation}'): publishing workflows can push only under their own "
                    "organisation, and another owner is a name a stranger could claim",
                    field_path(loc),
                )
            )
    return problems


def _grafana_problems(data: ReleaseData, root: object, path: Path) -> list[Problem]:
    """The Grafana the Compose stack and the chart run must load the app the release builds."""
    problems = []
    for index, release in enumerate(data.releases):
        tag = release.observability.grafana.tag
        try:
            loads = release.grafana.supports(tag.removeprefix("v"))
        except ValueError:  # not MAJOR.MINOR.PATCH: no version to compare
            loads = False
        if not loads:
            loc = ("releases", index, "observability", "grafana", "tag")
            problems.append(
                Problem(
                    path,
                    line_of(root, loc),
                    f"Grafana {tag} cannot load the app this release builds, which needs Grafana "
                    f"{release.grafana.needs} (grafana.minimum, grafana.backports)",
                    field_path(loc),
                )
            )
    return problems


def _raw_value(lines: list[str], line: int | None) -> str | None:
    """The value as written on a `key: value` or `- value` line (YAML may have changed it)."""
    if line is None or not 0 < line <= len(lines):
        return None
    text = lines[line - 1].split(" #", 1)[0].strip()
    if ": " in text:
        text = text.split(": ", 1)[1]
    elif text.startswith("- "):
        text = text[2:]
    return text.strip() or None


def _message(error: ErrorDetails, raw: str | None = None) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key (misspelled? see the model in src/betrace_dist/release.py)"
    if kind == "missing":
        return "required field is missing"
    value = error.get("input")
    if kind == "number_not_version":
        expected = error.get("ctx", {}).get("expected", "a quoted version")
        return f"YAML reads {raw or value} as the number {value}, not a version: write {expected}"
    msg = str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_type" and isinstance(value, int | float | bool):
        what = "true/false" if isinstance(value, bool) else "a number"
        msg += f"; YAML reads {raw or value} as {what}: put it in quotes"
    return msg


def _not_a_mapping(path: Path, root: object) -> Problem:
    expected = "a mapping with the keys schema, project and releases (schema: 1 on line one)"
    if root is None:
        return Problem(path, 1, f"the file holds no data; it must be {expected}")
    kind = "list" if isinstance(root, list) else f"single value ({root!r})"
    line = root.lc.line + 1 if isinstance(root, CommentedSeq) else 1
    return Problem(path, line, f"the top level is a {kind}, but it must be {expected}")


#: Valid release data by content digest: a site build loads it for the pages and again for the
#: gate's note under each title, and a page's `git tag` reads the page's copy of the same file.
#: Valid data does not depend on where the file lies (only problems name the file), and
#: ReleaseData is frozen, so sharing it is safe. Any change to a file changes its key.
_LOADED: dict[str, ReleaseData] = {}
#: Distinct contents kept (tests load many copies; the oldest is dropped first).
_KEEP = 4


def load_release_data(path: Path = RELEASES_FILE) -> ReleaseData:
    """Load and validate the release data, or raise ProblemsError listing every problem."""
    path = Path(path)
    if not path.is_file():
        raise ProblemsError([Problem(path, None, "release data file not found")])
    key = hashlib.sha256(path.read_bytes()).hexdigest()
    if key not in _LOADED:
        data = _load(path)
        while len(_LOADED) >= _KEEP:
            del _LOADED[next(iter(_LOADED))]
        _LOADED[key] = data
    return _LOADED[key]


def _load(path: Path) -> ReleaseData:
    root = load_with_lines(path)
    if not isinstance(root, dict):
        raise ProblemsError([_not_a_mapping(path, root)])
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        data = ReleaseData.model_validate(to_plain(root))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            # A missing field has no line of its own: point at its parent mapping.
            line = line_of(root, loc)
            message = _message(error, _raw_value(lines, line))
            problems.append(Problem(path, line, message, field_path(loc)))
        raise ProblemsError(problems) from None
    problems = _namespace_problems(data, root, path) + _history_problems(data, root, path)
    problems += _grafana_problems(data, root, path)
    if problems:
        raise ProblemsError(problems)
    return data
