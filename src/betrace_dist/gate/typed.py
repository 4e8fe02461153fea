"""Values a page types by hand instead of taking them from the release data, held to it.

The design says every version, image reference, port and limit comes from releases.yaml through
the macros. A value typed by hand is not an error while it is right; this check fails the page
where it is wrong, wherever it stands (any kind of block, prose, a table), at its line:

- a BeTrace image (`<registry>/<name>:<tag>@<digest>`) with a tag no release of the history
  has (`latest` too), a digest no release recorded, or a name that is not a BeTrace image;
- a pinned observability image (`grafana/tempo:<tag>`, ...) with another tag than the pinned one
  (Grafana may also name a version the plugin is tested with);
- `--version X` for the BeTrace chart that no release has, or for the Grafana chart other than
  the release's version or its tested minimum;
- a port in the backend's range (120xx), anywhere, that the backend does not serve, or named
  for the other role by the words right around it ("the REST port", "(gRPC)");
- a path under `/v1/` that is no endpoint of the backend (OTLP's own paths aside), or a
  method written before it that the backend does not serve it with;
- a BeTrace commit (a whole commit id anywhere but in a GitHub Action's pin; a shorter one after
  "commit", "at", `rev = "`, `BETRACE_COMMIT`, or in a link to upstream's tree) that is no
  release's `upstream.commit`;
- a revision of the distribution's own repository (a flake input's, a link's) other than its
  branch `main` or a release's tag `v<version>`;
- a version after "BeTrace", "backend", "plugin", "chart", "Grafana" or "Compose" that the
  release data does not have for it;
- a backend variable set in the `NAME=value` form to a value the backend refuses
  (backend_env.RULES: ports, the OTLP endpoint's host:port, booleans...);
- an OTLP export timeout (in ms or s, near the variable or option that sets it) that is neither
  the SDK's default nor the distribution's, and a default OTLP endpoint other than the backend's;
- when a trace is evaluated after its last span (a window, one time, "at least", "within"),
  the quiet time it waits for, how often the backend checks and how far apart a trace's spans
  are judged apart, other than releases.yaml backend.evaluation;
- a stop time of the backend with a number: "N s or more" other than the slow stop's bound,
  "stops in N s" above the bound with the distribution's export timeout, and any time below
  the slow stop's bound, or bounded from above ("up to", "within"), in a sentence about the
  stop with nothing on the OTLP endpoint that names no export timeout (backend.stop);
- the app's page path (`/a/<id>`) or plugin folder with another id than the plugin's;
- a `BETRACE_*` or `OTEL_*` variable the backend does not read (releases.yaml backend.env), that
  the release data does not name as ignored, and that neither the distribution's artefacts nor
  the text itself defines;
- a size in MiB that is no byte limit of the backend (a limit retyped wrong), where the
  paragraph, list item or table row it stands in speaks of what the backend limits (a body, a
  batch, a request, a rule, the backend); on the pages about the gate itself
  (docs/contributing/), every size in MiB must be a limit of the backend or one of the gate's
  own, held to the constants of the gate's code.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import yaml

from .. import REPO_ROOT, backend_env, needed_python
from ..names import SETTING_VARIABLE, closest
from ..release import Evaluation, ReleaseData
from ..site.tables import amount
from . import grafana_chart, grafana_stack, isolation, safefs, session
from .display import Problem
from .flat_text import flatten, line_of

#: the gate's own byte limits, which its threat model states (docs/contributing/threat-model.md)
GATE_SIZES = {
    "isolation.OUTPUT_LIMIT": isolation.OUTPUT_LIMIT,
    "isolation.FILE_LIMIT": isolation.FILE_LIMIT,
    "isolation.TMPFS_SIZE": isolation.TMPFS_SIZE,
    "safefs.READ_LIMIT": safefs.READ_LIMIT,
    "session.PRINTED_LIMIT": session.PRINTED_LIMIT,
}

_VERSIONISH = r"v?\d[\w.+-]*"


#: words just before a value that say the text denies it ("there is no DELETE /v1/...",
#: "no workflow pushes ...:latest", "not the gRPC port 12011")
_DENIED = re.compile(
    r"\b(?:no|not(?! only)|never|without|nor|neither|cannot|can't|isn't|aren't)\b[^.,;:]{0,24}\Z",
    re.I,
)


def _denied(text: str, offset: int) -> bool:
    return _DENIED.search(text, max(offset - 40, 0), offset) is not None


#: a placeholder written where a tag goes (`:VERSION`, `:X.Y.Z`)
_PLACEHOLDER_TAG = re.compile(r"VERSION|TAG|RELEASE|v?X\.Y(?:\.Z)?")


def _image_refs(data: ReleaseData) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """The tags and the recorded digests of each BeTrace image, over every release."""
    tags: dict[str, set[str]] = {}
    digests: dict[str, set[str]] = {}
    for release in data.releases:
        for name in ("backend", "grafana-plugin", "plugin-init"):
            image = getattr(release.images, name.replace("-", "_"))
            tags.setdefault(name, set()).add(image.tag)
            digests.setdefault(name, set()).update([image.digest] if image.digest else [])
    return tags, digests


def _images(text: str, data: ReleaseData) -> Iterator[Problem]:
    """A BeTrace image named with a tag no release has (`latest` too: no workflow pushes
    it) or a digest no release recorded."""
    tags, digests = _image_refs(data)
    pattern = re.escape(data.project.registry) + (
        r"/([a-z0-9-]+)(?::(\w[\w.+-]*))?(?:@(sha256:[0-9a-f]{64}))?"
    )
    for match in re.finditer(pattern, text):
        name, tag, digest = match[1], match[2], match[3]
        if _denied(text, match.start()) or (tag and _PLACEHOLDER_TAG.fullmatch(tag.rstrip("."))):
            continue
        if name not in tags:
            reason = f"'{match[0]}' names no BeTrace image; images: {', '.join(sorted(tags))}"
        elif tag and tag.rstrip(".") not in tags[name]:
            reason = (
                f"'{match[0]}' has a tag no release has (releases.yaml: "
                f'{", ".join(sorted(tags[name]))}); write {{{{ image("{name}") }}}}'
            )
        elif digest and digest not in digests[name]:
            recorded = ", ".join(sorted(digests[name])) or "none yet"
            reason = (
                f"'{match[0]}' has a digest no release recorded (releases.yaml: {recorded}); "
                f'write {{{{ image("{name}") }}}}'
            )
        else:
            continue
        yield Problem(line_of(text, match.start()), reason)


def _observability(text: str, data: ReleaseData) -> Iterator[Problem]:
    current = data.current
    for key, pinned in current.observability.model_dump(by_alias=True).items():
        allowed = {pinned["tag"]}
        if key == "grafana":
            allowed |= set(current.grafana.tested) | {current.grafana_chart.app_version}
        short = pinned["image"].removeprefix("docker.io/")
        pattern = r"(?<![\w/.-])(?:docker\.io/)?" + re.escape(short) + r":(" + _VERSIONISH + ")"
        for match in re.finditer(pattern, text):
            if match[1].rstrip(".") not in allowed:
                yield Problem(
                    line_of(text, match.start()),
                    f"'{match[0]}' is not the pinned {key} image ({pinned['image']}:"
                    f'{pinned["tag"]}); write {{{{ obs_image("{key}") }}}}',
                )


#: Characters before a `--version` in which its command names its chart.
COMMAND_WINDOW = 1000


def _chart_versions(text: str, data: ReleaseData) -> Iterator[Problem]:
    ours = {release.chart.version for release in data.releases}
    chart = data.current.grafana_chart
    theirs = {chart.version} | ({chart.minimum} if chart.minimum else set())
    flat = text.replace("\\\n", "  ")  # a command continued on the next line is one line
    for match in re.finditer(r"--version[ =]\"?(\d+\.\d+\.\d+[\w.+-]*)", flat):
        # the command before the flag, on its line: at most COMMAND_WINDOW characters of it, so
        # that a line of many flags is read in linear time
        window = max(0, match.start() - COMMAND_WINDOW)
        start = max(flat.rfind("\n", window, match.start()) + 1, window)
        command = flat[start : match.start()]
        if re.search(r"grafana-community|GRAFANA_CHART|/grafana\b", command):
            allowed, what, macro = theirs, "Grafana chart", "release.grafana_chart.version"
        elif re.search(r"betrace", command, re.IGNORECASE):
            allowed, what, macro = ours, "BeTrace chart", "release.chart.version"
        else:
            continue
        if match[1] not in allowed:
            yield Problem(
                line_of(text, match.start()),
                f"--version {match[1]} is no version of the {what} in releases.yaml "
                f"({', '.join(sorted(allowed))}); write {{{{ {macro} }}}}",
            )


#: a role written right before a port ("the REST port 12011", "gRPC: 12012") or right after
#: it ("12012 (gRPC)")
_ROLE_BEFORE = re.compile(
    r"\b(?:(REST|HTTP)|(gRPC))(?: API)?(?: port| server)?(?: is)?:? ?`?\Z", re.I
)
_ROLE_AFTER = re.compile(r"\A`? ?\(?(?:(REST|HTTP)|(gRPC))\b", re.I)


def _port_role(text: str, start: int, end: int) -> str | None:
    """ "http" or "grpc" where the words right around the port name its role, else None."""
    found = _ROLE_AFTER.search(text[end : end + 12]) or _ROLE_BEFORE.search(
        text[max(start - 30, 0) : start]
    )
    if found is None:
        return None
    return "grpc" if found[2] else "http"


def _ports(text: str, data: ReleaseData) -> Iterator[Problem]:
    ports = data.current.backend.ports
    served = {str(port.port) for port in ports.values()}
    fields = ", ".join(f"backend.ports.{name}.port = {port.port}" for name, port in ports.items())
    for match in re.finditer(r"(?<![\w.-])(120\d\d)(?![\w.-]*\d)", text):
        role = _port_role(text, match.start(), match.end())
        if _denied(text, match.start()):
            role = None  # "not the gRPC port 12011": the words deny the role
        if match[1] not in served:
            reason = f"port {match[1]} is not a port of the backend"
        elif role is not None and str(ports[role].port) != match[1]:  # type: ignore[index]
            reason = f"port {match[1]} is not the backend's {role} port"
        else:
            continue
        yield Problem(
            line_of(text, match.start()),
            f"{reason} (releases.yaml {fields}); "
            'write {{ port("http") }} or {{ port("grpc") }}',
        )


#: Prometheus' scrape annotations on a pod (the relabelling of its kubernetes_sd examples reads
#: prometheus.io/port and prometheus.io/path), written as YAML or as --set
_SCRAPE = re.compile(r"prometheus\\?\.io/(port|path)[\"']?[ \t]*[:=][ \t]*[\"']?([^\"'\s,}]+)")


def _scrape_annotations(text: str, data: ReleaseData) -> Iterator[Problem]:
    """Scrape annotations of the backend naming a port that does not serve its metrics, or a
    path other than its metrics endpoint's: Prometheus then scrapes nothing (on the gRPC port,
    the answer is not even HTTP/1). Annotations within a few lines of each other are one pod's;
    they are the backend's when their port is one of its ports (another application's are not
    judged, nor a port the backend does not have: nothing says whose it is)."""
    name, port, path = backend_env.metrics_at(data)
    backend_ports = {str(p.port) for p in data.current.backend.ports.values()}
    groups: list[list[tuple[int, str, str]]] = []
    for match in _SCRAPE.finditer(text):
        line = line_of(text, match.start())
        if not groups or line - groups[-1][-1][0] > _SCRAPE_SPAN:
            groups.append([])
        groups[-1].append((line, match[1], match[2]))
    for group in groups:
        if not any(kind == "port" and value in backend_ports for _, kind, value in group):
            continue
        for line, kind, value in group:
            if kind == "port" and value != str(port):
                wrong = f"port {value}, which serves no metrics"
            elif kind == "path" and value != path:
                wrong = f"the path {value}, which the backend does not serve its metrics at"
            else:
                continue
            yield Problem(
                line,
                f"prometheus.io/{kind} names {wrong}: the backend serves them at GET "
                f"{path} on port {port} ({name}; releases.yaml "
                "backend.endpoints and backend.ports)",
            )


#: how many lines apart one pod's scrape annotations stand at most
_SCRAPE_SPAN = 5


#: OTLP's own HTTP paths (the collector's, not the backend's), which texts name as such
OTLP_PATHS = ("/v1/traces", "/v1/metrics", "/v1/logs")


def _endpoints(text: str, data: ReleaseData) -> Iterator[Problem]:
    paths = sorted({e.path for e in data.current.backend.endpoints if e.path.startswith("/v1/")})
    patterns = [
        re.compile(re.escape(path).replace(r"\{id\}", r"(?:\{id\}|[^/\s]+)") + r"\Z")
        for path in paths
    ]
    for match in re.finditer(r"(?<![A-Za-z_/.-])/v1/[\w{}./-]*[\w}]", text):
        path = match[0]
        if path in OTLP_PATHS or any(p.match(path) for p in patterns):
            continue
        yield Problem(
            line_of(text, match.start()),
            f"'{path}' is no endpoint of the backend (releases.yaml backend.endpoints[].path: "
            f'{", ".join(paths)}); write {{{{ endpoint("<path>") }}}}',
        )
    yield from _methods(text, data)


def _methods(text: str, data: ReleaseData) -> Iterator[Problem]:
    """A method written just before a path the backend serves ("DELETE /v1/violations"):
    the backend must serve that path with that method."""
    endpoints = data.current.backend.endpoints
    for match in re.finditer(r"\b(GET|POST|PUT|DELETE|PATCH) `?(/v1/[\w{}./-]*[\w}])", text):
        method, path = match[1], match[2]
        pattern = r"(?:\{id\}|[^/\s]+)"
        methods = [
            e.method
            for e in endpoints
            if re.fullmatch(re.escape(e.path).replace(r"\{id\}", pattern), path)
        ]
        if methods and method not in methods and not _denied(text, match.start()):
            yield Problem(
                line_of(text, match.start()),
                f"'{method} {path}': the backend serves {path} with {', '.join(methods)} "
                "(releases.yaml backend.endpoints)",
            )


_COMMIT = re.compile(
    r"(?:\bcommit\W{0,3}|betrace/(?:blob/|tree/)?|\brev\s*=\s*\"|BETRACE_COMMIT[=:]\s*|\bat\s+`?)"
    r"([0-9a-f]{7,40})\b"
    # a whole commit id anywhere, but a GitHub Action's pin (`uses: owner/action@<commit>`)
    r"|(?<![@\w])([0-9a-f]{40})\b",
    re.IGNORECASE,
)


def _commits(text: str, data: ReleaseData) -> Iterator[Problem]:
    commits = [release.upstream.commit for release in data.releases]
    ours = {at for name, _, at in _distribution_queries(text, data) if name == "rev"}
    for match in _COMMIT.finditer(text):
        group = 1 if match[1] else 2
        sha = match[group].lower()
        if not (re.search(r"\d", sha) and re.search(r"[a-f]", sha)):
            continue  # hex letters only ("commit added") or a number is no commit
        if match.start(group) in ours:
            continue  # the distribution's own commit: _distribution_refs judges it
        if any(c.startswith(sha) for c in commits):
            continue
        yield Problem(
            line_of(text, match.start(group)),
            f"commit {match[group]} is no release's upstream commit (releases.yaml "
            f"releases[].upstream.commit: {', '.join(c[:8] for c in commits)}); write "
            "{{ release.upstream.commit }} or {{ release.upstream.short }}",
        )


def _distribution_queries(text: str, data: ReleaseData) -> Iterator[tuple[str, str, int]]:
    """(name, value, offset of the value) of each query parameter of the distribution's flake
    references and git URLs (`github:...?ref=v1&dir=x`, `git+https://github.com/...?rev=...`).
    One linear pattern to the query's end, then the query split by hand: a pattern that looks
    for `ref=` after any `&` goes back over the text from every reference (quadratic)."""
    repo = re.escape(data.project.distribution_repository.removeprefix("https://github.com/"))
    pattern = rf"(?:github:|github\.com[:/]){repo}(?:\.git)?\?([^\s\"'`#]*)"
    for match in re.finditer(pattern, text, re.IGNORECASE):
        offset = match.start(1)
        for part in match[1].split("&"):
            name, _, value = part.partition("=")
            if value:
                yield name.lower(), value, offset + len(name) + 1
            offset += len(part) + 1


def _distribution_refs(text: str, data: ReleaseData) -> Iterator[Problem]:
    """A revision of the distribution's repository (a flake reference's, a git URL's, an
    archive's or a release's URL) that it does not have: its branch `main`, or a release's tag
    `v<version>` (the release workflow tags releases so: .github/workflows/*.yml and the release
    guide); a commit of it (`?rev=`), which no release names."""
    repo = re.escape(data.project.distribution_repository.removeprefix("https://github.com/"))
    refs = {"main"} | {f"v{release.version}" for release in data.releases}
    pattern = (
        rf"github:{repo}/([^\s\"'`#?)]+)"
        # (tree/ and blob/ links are repo_links.py's, which also finds their files)
        rf"|github\.com/{repo}/(?:archive|releases/tag|releases/download)/"
        r"((?:refs/(?:tags|heads)/)?[^/\s\"'`)#?]+)"
    )
    found = [
        (match[1] or match[2], match.start(1 if match[1] else 2))
        for match in re.finditer(pattern, text, re.IGNORECASE)
    ]
    queries = list(_distribution_queries(text, data))
    found += [(value, at) for name, value, at in queries if name == "ref"]
    for written, at in sorted(found, key=lambda f: f[1]):
        ref = re.sub(r"\.(tar\.gz|zip)$", "", re.sub(r"^refs/(tags|heads)/", "", written))
        if ref not in refs and not ref.startswith("{"):
            yield Problem(
                line_of(text, at),
                f"'{written}' is no revision of the distribution's repository: it has the "
                f"branch main and the release tags {', '.join(sorted(refs - {'main'}))} "
                "(v<version>, releases.yaml releases[].version); write "
                "v{{ release.version }}",
            )
    for name, value, at in queries:
        if name == "rev":
            yield Problem(
                line_of(text, at),
                f"rev={value} pins the distribution's repository to a commit, which no release "
                "names and the gate cannot hold to one: a reader takes a release's tag "
                "(releases are tagged v<version>); write ref=v{{ release.version }}",
            )


def _known_versions(data: ReleaseData) -> dict[str, tuple[set[str], str]]:
    """What each word may be followed by as a version, and the releases.yaml fields it is from."""
    r, history = data.current, data.releases
    chart = r.grafana_chart
    grafana = {str(v) for v in (r.grafana.minimum, *r.grafana.tested, chart.app_version)}
    grafana |= {str(v) for v in (*r.grafana.backports, r.grafana.upstream_minimum)}
    grafana |= {r.observability.grafana.tag, r.grafana.react_19_from}
    compose = ({r.compose.minimum, *r.compose.broken}, "compose.minimum, compose.broken")
    return {
        # before "plugin": "the Compose plugin 2.17.0" is Compose's version, not the app's
        "compose plugin": compose,
        "compose": compose,
        "betrace": (
            {str(v) for x in history for v in (x.version, x.backend.version)},
            "releases[].version, releases[].backend.version",
        ),
        "backend": ({str(x.backend.version) for x in history}, "releases[].backend.version"),
        "plugin": ({str(x.plugin.version) for x in history}, "releases[].plugin.version"),
        "chart": (
            {str(x.chart.version) for x in history}
            | {str(chart.version), *([str(chart.minimum)] if chart.minimum else [])},
            "releases[].chart.version, grafana_chart.version, grafana_chart.minimum",
        ),
        "grafana": (
            grafana,
            "grafana.minimum, grafana.backports, grafana.upstream_minimum, grafana.tested, "
            "grafana.react_19_from, grafana_chart.app_version, observability.grafana",
        ),
    }


def _versions(text: str, data: ReleaseData) -> Iterator[Problem]:
    known = _known_versions(data)
    words = "|".join(known)
    pattern = rf"\b({words})(?: version)? v?(\d+\.\d+\.\d+)(?![\w.-]*\w)"
    for match in re.finditer(pattern, text, re.IGNORECASE):
        allowed, fields = known[match[1].lower()]
        if match[2] not in allowed:
            yield Problem(
                line_of(text, match.start(2)),
                f"'{match[0]}': {match[2]} is no version of it in releases.yaml ({fields}: "
                f"{', '.join(sorted(allowed))}); write it with a macro such as "
                "{{ release.version }}",
            )


#: a page's "Python X.Y or later" (or newer, higher, +, >=): the oldest Python of something
_PYTHON_NEEDED = re.compile(
    r"\bpython\s?(?:>= ?(\d+\.\d+)|(\d+\.\d+)(?:\.\d+)?(?: or (?:later|newer|higher)|\+))",
    re.IGNORECASE,
)
#: words of a paragraph about the project's own code (its install, its tools)
_PROJECT_WORDS = re.compile(
    r"venv|make setup|betrace-dist|this repository|the project|release data", re.I
)
#: ... and about the pages' Python examples
_EXAMPLE_WORDS = re.compile(r"\bexamples?\b|exporter", re.I)


#: how far around a "Python X.Y or later" its sentence is looked for
_SENTENCE_REACH = 300


def _sentence(text: str, at: int) -> str:
    """The sentence around offset `at`, within _SENTENCE_REACH characters each side (so that a
    page of one long sentence costs no more per match)."""
    low, high = max(0, at - _SENTENCE_REACH), min(len(text), at + _SENTENCE_REACH)
    start = max(text.rfind(". ", low, at), text.rfind("\n\n", low, at), low - 1) + 1
    ends = [e for e in (text.find(". ", at, high), text.find("\n\n", at, high)) if e >= 0]
    return text[start : min(ends, default=high)]


def _python_versions(text: str, data: ReleaseData) -> Iterator[Problem]:
    """A "Python X.Y or later" in a sentence about the project's own code that is not the
    project's (pyproject.toml requires-python), or in one about the examples that is not
    theirs (releases.yaml examples.python_minimum). A sentence about both, or neither (another
    package's needs), is not judged."""
    examples = data.current.examples
    for match in _PYTHON_NEEDED.finditer(text):
        written = match[1] or match[2]
        sentence = _sentence(text, match.start())
        project = _PROJECT_WORDS.search(sentence) is not None
        example = examples is not None and _EXAMPLE_WORDS.search(sentence) is not None
        if project == example:
            continue
        if project:
            wanted, field = needed_python(), "{{ project_python }}"
        else:
            assert examples is not None
            wanted, field = str(examples.python_minimum), "{{ release.examples.python_minimum }}"
        if written != wanted:
            yield Problem(
                line_of(text, match.start()),
                f"'{match[0]}': what this sentence speaks of needs Python {wanted} or later "
                f"(pyproject.toml requires-python, releases.yaml examples.python_minimum); "
                f"write {field}",
            )


_VARIABLE = SETTING_VARIABLE
#: how a text defines a variable of its own: an assignment, an export, an ARG or ENV of a
#: Dockerfile, a ${NAME} or ${NAME:-default} a shell or Compose expands, a Compose key
_DEFINED = re.compile(
    # [ \t], never \s, after ^: blank lines must not be split many ways (a page of 3,000 blank
    # lines took 80 s with \s*-?\s*, every split of every run tried from each line start); and
    # the blanks after the dash only after a dash: [ \t]*-?[ \t]* split one line of blanks
    # every way (300,000 tabs held the gate for 10 minutes)
    r"(?:\b(?:export|ARG|ENV)[ \t]+|\$\{|^[ \t]*(?:-[ \t]*)?\"?)"
    r"((?:BETRACE|OTEL)_[A-Z0-9_]*[A-Z0-9])"
    r"(?=[=:}]|\b:-)",
    re.MULTILINE,
)


def defined_variables(text: str) -> set[str]:
    """The BETRACE_*/OTEL_* variables a text defines or expands itself."""
    return set(_DEFINED.findall(text))


def _variables(text: str, data: ReleaseData, defined: set[str]) -> Iterator[Problem]:
    backend = data.current.backend
    read = backend.read
    named = read | set(backend.not_read) | set(_VARIABLE.findall(backend.sdk_env.meaning))
    allowed = named | defined | defined_variables(text)
    for match in _VARIABLE.finditer(text):
        if match[0] not in allowed:
            near = closest(match[0], sorted(read | defined))
            yield Problem(
                line_of(text, match.start()),
                f"{match[0]} is no variable the backend reads (releases.yaml backend.env: "
                f"{', '.join(sorted(read))}), nor one it names as ignored (backend.not_read, "
                "backend.sdk_env), nor one this text or the distribution's artefacts define "
                f"(docker/, nix/, helm/: the Compose stack's .env, the chart, the module){near}; "
                'write a backend variable as {{ env_var("<name>") }}',
            )


def _plugin_paths(text: str, data: ReleaseData) -> Iterator[Problem]:
    """The app's page path (`/a/<id>`) and its folder among Grafana's plugins, by the id."""
    plugin = data.current.plugin
    pattern = r"(?<![A-Za-z_/.-])/a/([a-z0-9][a-z0-9-]*)|(?:grafana|public)/plugins/([a-z0-9-]+)"
    for match in re.finditer(pattern, text):
        if (match[1] or match[2]) != plugin.id:
            yield Problem(
                line_of(text, match.start()),
                f"'{match[0]}' does not name the app by its id (releases.yaml plugin.id = "
                f"{plugin.id}, plugin.page_path = {plugin.page_path}); write "
                "{{ release.plugin.page_path }} or {{ release.plugin.id }}",
            )


def _otlp_default(text: str, data: ReleaseData) -> Iterator[Problem]:
    """The backend's default OTLP endpoint, where a line about it states one."""
    env = next(e for e in data.current.backend.env if e.name == "OTEL_EXPORTER_OTLP_ENDPOINT")
    lines = text.split("\n")
    for index, line in enumerate(lines):
        window = " ".join(lines[max(index - 2, 0) : index + 3])  # a Nix option's lines
        if not (re.search(r"otlp", window, re.I) and re.search(r"\bdefault", window)):
            continue
        for match in re.finditer(r"\blocalhost:\d+\b", line):
            if match[0] != env.default:
                yield Problem(
                    index + 1,
                    f"'{match[0]}' is not the backend's default OTLP endpoint (releases.yaml "
                    f"backend.env OTEL_EXPORTER_OTLP_ENDPOINT: default {env.default}); write "
                    '{{ env_default("OTEL_EXPORTER_OTLP_ENDPOINT") }}',
                )


#: `NAME=value` of a variable with a rule for its values (backend_env.RULES), as text writes
#: it: the value bare, or in quotes (which the shell and .env files take off)
_SETTING = re.compile(
    r"\b(" + "|".join(map(re.escape, backend_env.RULES)) + r")="
    r"(?:\"([^\"`$]*)\"|'([^'`]*)'|([^\s`'\"<>$(){}\[\],;]+))"
)


def _settings(text: str, data: ReleaseData) -> Iterator[Problem]:
    """A backend variable set to a value the backend refuses, where text sets one in the
    `NAME=value` form (prose, a table, any block): the rule of backend_env.py, as the
    artefacts and the command models hold it. The OTEL_* ones are every OpenTelemetry SDK's
    too, and an application's exporter may rightly take `http://...:4318`: they are judged
    only in a paragraph about the backend that speaks of no application or SDK."""
    for match in _SETTING.finditer(text):
        value = next((g for g in match.groups()[1:] if g is not None), "")
        if match[1].startswith("OTEL_") and not _about_the_backend(text, match.start()):
            continue
        problem = backend_env.value_problem(match[1], value)
        if problem is not None:
            yield Problem(line_of(text, match.start(1)), f"{match[1]} {problem}")


def _about_the_backend(text: str, offset: int) -> bool:
    """The paragraph around `offset` (between blank lines) names the backend and no app."""
    start = text.rfind("\n\n", 0, offset) + 1
    end = text.find("\n\n", offset)
    paragraph = text[start : end if end >= 0 else len(text)]
    return bool(re.search(r"\bbackend\b", paragraph, re.I)) and not re.search(
        r"\b(app|apps|application|applications|SDK|your service)\b", paragraph, re.I
    )


_SLOW_STOP = re.compile(r"\b(\d+(?:\.\d+)?) ?(?:s|seconds) or (?:more|longer)\b")
_QUICK_STOP = re.compile(r"\bstops? in (?:about |around |under )?(\d+(?:\.\d+)?) ?(?:s|seconds)\b")


#: a clause about the stop with nothing on the backend's OTLP endpoint and no export timeout
_NO_LISTENER = re.compile(
    r"\bnothing (?:answers|listens|receives|is listening)"
    r"|\b(?:no|without an?) (?:OTLP )?(?:listener|receiver|collector)\b",
    re.I,
)
#: a stop time attached to its verb: "took about 2 s to stop", "stops within 5 seconds"
_STOP_TIME = re.compile(
    r"\b(?:(?:took|takes?|needs?)\s+(?:(up to|at most|within|under|less than|about|around)\s+)?"
    r"(\d+(?:\.\d+)?) ?(?:s|seconds)\s+(?:to stop|before it stops)"
    r"|stops?\s+(?:(within|in under|under|in about|in|after)\s+)?(\d+(?:\.\d+)?) ?(?:s|seconds)"
    r"|stop(?:ping)?\b[^.,;]{0,30}?\btakes?\s+(?:(up to|at most|within|under|about|around)\s+)?"
    r"(\d+(?:\.\d+)?) ?(?:s|seconds))\b",
    re.I,
)
#: a clause that gives the backend an export timeout (not one that says there is none)
_WITH_TIMEOUT = re.compile(r"OTEL_EXPORTER|\b(?<!no )(?<!no export )timeout\b", re.I)


def _clauses(flat: str) -> Iterator[re.Match[str]]:
    """The clauses of a flattened text: a sentence, cut where it joins another statement
    (", and", "but", "while", ";")."""
    return re.finditer(r"(?:(?!, (?:and|but|while) | but | while )[^.!?;]|\.(?=\d))+", flat)


def _slow_stop_mistakes(flat: str, bound: float) -> Iterator[tuple[int, str]]:
    """Where a clause about the stop with nothing on the OTLP endpoint, naming no export
    timeout, gives an upper bound (one stop took 48 s) or fewer seconds than the slow stop's."""
    for clause in _clauses(flat):
        said = clause[0]
        if not _NO_LISTENER.search(said) or _WITH_TIMEOUT.search(said):
            continue
        for match in _STOP_TIME.finditer(said):
            upper = (match[1] or match[3] or match[5] or "").lower()
            seconds = float(match[2] or match[4] or match[6])
            if upper not in ("", "about", "around", "in", "in about", "after") or seconds < bound:
                yield (
                    clause.start() + match.start(),
                    f"'{match[0]}': " + _SLOW_STOP_TEXT.format(bound),
                )


_SLOW_STOP_TEXT = (
    "with nothing on its OTLP endpoint and no export timeout the backend took {:g} s or more "
    "to stop (releases.yaml backend.stop.without_listener_at_least); write "
    "{{{{ release.backend.stop.without_listener_at_least }}}} seconds or more"
)
_QUICK_STOP_TEXT = (
    "is longer than the stop with the distribution's export timeout (at most {:g} s: "
    "releases.yaml backend.stop.with_distribution_timeout_at_most)"
)


def _stop_times(text: str, data: ReleaseData) -> Iterator[Problem]:
    """A stop time of the backend stated with a number, read on the text as one line: the slow
    stop (nothing on its OTLP endpoint) as the bound the probe holds it to, in every wording
    `_STOP_TIME` reads; a quick one within the bound with the distribution's export timeout
    (releases.yaml backend.stop)."""
    stop = data.current.backend.stop
    slow, quick = stop.without_listener_at_least, stop.with_distribution_timeout_at_most
    flat, where = flatten(text)
    found = list(_slow_stop_mistakes(flat, slow))
    for match in _SLOW_STOP.finditer(flat):
        window = flat[max(match.start() - 120, 0) : match.end() + 60]
        if re.search(r"\bstop|\btook\b", window, re.I) and float(match[1]) != slow:
            found.append((match.start(), f"'{match[0]}': " + _SLOW_STOP_TEXT.format(slow)))
    for match in _QUICK_STOP.finditer(flat):
        if float(match[1]) > quick:
            found.append((match.start(), f"'{match[0]}' " + _QUICK_STOP_TEXT.format(quick)))
    for at, reason in sorted(found):
        yield Problem(line_of(text, where[at]), reason)


_WORD_NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_NUM = r"(\d+(?:\.\d+)?|" + "|".join(_WORD_NUMBERS) + "|ten)"
_UNIT = r"(s|secs?|seconds?|mins?|minutes?)\b"
#: "... after its last span", "after the trace's final span", "after the last of its spans"
_AFTER = r"\W{0,3} after\b[^.]{0,40}?\b(last|final|first)\b[^.]{0,12}?\bspans?\b"
_WINDOW = re.compile(
    rf"\b(?:between )?{_NUM} ?(?:{_UNIT} ?)?(?:-|\u2013|&ndash;|to|and|or) ?"
    rf"{_NUM} ?{_UNIT}{_AFTER}",
    re.I,
)
_ONE_TIME = re.compile(
    rf"\b(?:(at least|within|at most|up to|no later than|about|around) )?{_NUM} ?{_UNIT}{_AFTER}",
    re.I,
)
#: the quiet time: "no span ... for N s", "N seconds without a span"
_QUIET = re.compile(
    rf"\b(?:no span\b[^.]{{0,60}}?|without (?:a |any )?spans?\b[^.]{{0,30}}?|quiet\b[^.]{{0,20}}?)"
    rf"\bfor {_NUM} ?{_UNIT}|\b{_NUM} ?{_UNIT} (?:of quiet|without (?:a |any )?spans?)\b",
    re.I,
)
#: how often the backend looks for finished traces
_CHECK = re.compile(
    rf"\b(?:check(?:s|ed)?|looks?)\b[^.]{{0,40}}?"
    rf"\b(?:every {_NUM} ?{_UNIT}|once an? (second|minute)\b)",
    re.I,
)
#: whose check a sentence speaks of: the backend's, for finished traces
_CHECKER = re.compile(
    r"\b(?:backend|betrace)\b[^.;]{0,40}\b(?:check|looks?)"
    r"|finished traces?|traces? (?:are|is) checked",
    re.I,
)
#: spans of one trace split apart: "N seconds or more apart"
_APART = re.compile(rf"\b{_NUM} ?{_UNIT} or (?:more|longer) apart\b", re.I)
#: a sentence that speaks of when the backend evaluates traces (the checks above judge only
#: such sentences: "Compose checks the health every 5 s" is another subject)
_ABOUT_EVALUATION = re.compile(r"\b(?:evaluat|judg|verdict|violation|finished traces?|split)", re.I)
_ABOUT_TRACES = re.compile(r"\btraces?\b", re.I)
#: a wait of the reader's before reading a verdict ("wait 5 seconds", "sleep 5", "give it 5 s")
_WAIT = re.compile(r"\b(?:wait|sleep|give)", re.I)
#: the backend's own wait: the quiet time ("the backend waits 3 seconds after the last span")
_BACKEND_WAIT = re.compile(r"\b(?:backend|betrace|engine)\b[^.,;]{0,20}\bwaits?\b", re.I)
#: a time of a span sent or arriving later, not of the evaluation ("a span sent 10 s after")
_SENT = re.compile(r"\b(?:sent|send|sends|arrives?|arriving|comes?|posted)\b[^.,;]{0,12}\Z", re.I)


def _seconds(number: str, unit: str | None) -> float:
    word = number.lower()
    value = float(
        _WORD_NUMBERS.index(word) if word in _WORD_NUMBERS else 10 if word == "ten" else word
    )
    return value * 60 if (unit or "s").lower().startswith("min") else value


def _sentences(flat: str) -> Iterator[re.Match[str]]:
    """The sentences of a flattened text (a point between digits ends none)."""
    return re.finditer(r"(?:[^.!?;]|\.(?=\d)|;(?! ))+[.!?;]?", flat)


def _one_time_holds(bound: str, value: float, evaluation: Evaluation, kind: str) -> bool:
    """Whether one time, with its bound, is true of when a trace is evaluated. `kind`:
    "evaluated" (the time of the verdict), "reader" (a wait for the verdict, which must last
    until the latest evaluation) or "backend" (the backend's own wait, the quiet time)."""
    quiet, latest = evaluation.window
    if kind == "reader":
        return value >= latest and bound not in ("within", "at most", "up to", "no later than")
    if kind == "backend":
        latest = quiet
    if bound == "at least":
        return value <= quiet
    if bound in ("within", "at most", "up to", "no later than"):
        return value >= latest
    return quiet <= value <= latest  # bare, about, around: inside the window


def _time_kind(before: str) -> str:
    """Whose time the words before it give: the backend's wait, the reader's, or the verdict's."""
    if _BACKEND_WAIT.search(before):
        return "backend"
    return "reader" if _WAIT.search(before) else "evaluated"


def _evaluation_window(text: str, data: ReleaseData) -> Iterator[Problem]:
    """When a trace is evaluated after its last span, however a sentence about evaluation
    words it (a window "N to M seconds", "between N and M", one time with or without "at
    least", "within" or "about"; wrapped across lines), the quiet time it waits for, how often
    it checks, and how far apart a trace's spans are judged apart: the values of releases.yaml
    backend.evaluation, which the probe evaluation-delay measures in every run."""
    evaluation = data.current.backend.evaluation
    flat, where = flatten(text)
    for sentence in _sentences(flat):
        said = sentence[0]
        if not (_ABOUT_EVALUATION.search(said) and _ABOUT_TRACES.search(said)):
            continue
        for offset, match in _evaluation_mistakes(said, evaluation):
            yield _evaluation_problem(
                line_of(text, where[sentence.start() + offset]), match, evaluation
            )


def _evaluation_mistakes(said: str, evaluation: Evaluation) -> Iterator[tuple[int, re.Match[str]]]:
    covered = bytearray(len(said))  # offsets inside a window: its second number is no time
    for match in _WINDOW.finditer(said):
        covered[match.start() : match.end()] = b"\x01" * (match.end() - match.start())
        window = (_seconds(match[1], match[2] or match[4]), _seconds(match[3], match[4]))
        if window != evaluation.window or match[5].lower() == "first":
            yield match.start(), match
    for match in _ONE_TIME.finditer(said):
        if covered[match.start()]:
            continue
        before = said[max(match.start() - 40, 0) : match.start()]
        if _SENT.search(before) or _DENIED.search(before):
            continue  # a span sent later, or a time the sentence denies
        bound, value = (match[1] or "").lower(), _seconds(match[2], match[3])
        kind = _time_kind(before)
        if not _one_time_holds(bound, value, evaluation, kind) or match[4].lower() == "first":
            yield match.start(), match
    yield from _evaluation_parts(said, evaluation)


def _evaluation_parts(said: str, evaluation: Evaluation) -> Iterator[tuple[int, re.Match[str]]]:
    """The quiet time, the check interval and how far apart spans split, in one sentence."""
    for match in _QUIET.finditer(said):
        number, unit = (match[1], match[2]) if match[1] else (match[3], match[4])
        if _seconds(number, unit) != evaluation.quiet_seconds:
            yield match.start(), match
    backend_checks = _CHECKER.search(said) is not None
    for match in _CHECK.finditer(said) if backend_checks else ():
        minute = (match[3] or "").lower() == "minute"
        every = _seconds(match[1], match[2]) if match[1] else 60 if minute else 1
        if every != evaluation.check_every_seconds:
            yield match.start(), match
    for match in _APART.finditer(said):  # spans further apart than the quiet time may split
        if _seconds(match[1], match[2]) < evaluation.quiet_seconds:
            yield match.start(), match


def _evaluation_problem(line: int, match: re.Match[str], evaluation: Evaluation) -> Problem:
    quiet, latest = evaluation.window
    return Problem(
        line,
        f"'{match[0]}': the backend evaluates a trace once no span of it came for {quiet} s, "
        f"checked every {evaluation.check_every_seconds} s, so {quiet} to {latest} seconds after "
        "its last span (releases.yaml backend.evaluation); write {{ evaluation_delay() }}, "
        "{{ evaluation_check() }} or {{ release.backend.evaluation.quiet_seconds }}",
    )


_TIMEOUT_WORDS = re.compile(
    r"OTEL_EXPORTER_OTLP_TIMEOUT|otlpTimeoutMs|otlpExportTimeout|SDK's (own|timeout)|export waits"
)
_TIMEOUT_VALUES = (
    (re.compile(r"\b(\d+) ?(?:ms|milliseconds)\b"), 1),
    (re.compile(r"(?:\b(?:set|with|to|own)|Timeout(?:Ms)?`? \(|TIMEOUT`? \()\s*`?(\d{3,})\b"), 1),
    (re.compile(r"\b(\d+) ?(?:s|seconds) by default|\bwaits (\d+) ?(?:s|seconds)\b"), 1000),
)


def _timeout_values(line: str) -> Iterator[tuple[int, str, int]]:
    """(offset, words, milliseconds) of each export timeout a line states."""
    seen = set()
    for pattern, factor in _TIMEOUT_VALUES:
        for match in pattern.finditer(line):
            group = next(n for n in range(1, len(match.groups()) + 1) if match[n])
            if match.start(group) not in seen:
                seen.add(match.start(group))
                yield match.start(group), match[0].strip(), int(match[group]) * factor


def _otlp_timeouts(text: str, data: ReleaseData) -> Iterator[Problem]:
    """A timeout of the backend's OTLP exports, typed near the variable or option that sets it,
    that is neither the SDK's default nor the distribution's (releases.yaml backend.env)."""
    env = next(e for e in data.current.backend.env if e.name == "OTEL_EXPORTER_OTLP_TIMEOUT")
    allowed = {int(value) for value in (env.default, env.distribution_default) if value}
    macro = '{{ env_default("OTEL_EXPORTER_OTLP_TIMEOUT") }}'
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if not _TIMEOUT_WORDS.search(" ".join(lines[max(index - 1, 0) : index + 2])):
            continue
        for _, words, value in _timeout_values(line):
            if value not in allowed:
                yield Problem(
                    index + 1,
                    f"'{words}' is no OTLP export timeout of releases.yaml (backend.env "
                    f"OTEL_EXPORTER_OTLP_TIMEOUT: default {env.default} ms, "
                    f"distribution_default {env.distribution_default} ms); write {macro}",
                )


_BACKEND_WORDS = re.compile(
    r"\b(?:bod(?:y|ies)|requests?|rules?|backend|betrace|batch(?:es)?)\b", re.I
)
_ELEMENT_START = re.compile(r"\s*(?:$|[-*+|#>]|\d+[.)]\s)")


class _Elements:
    """The paragraph, list item or table row around an offset (lines up to the next start),
    each found once: a paragraph of many sizes was walked again for each (minutes for 12,000)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.found: dict[int, str] = {}

    def line(self, offset: int) -> int:
        return line_of(self.text, offset)

    def around(self, offset: int) -> str:
        index = self.line(offset) - 1
        if index not in self.found:
            lines = self.lines
            first = index
            while first > 0 and not _ELEMENT_START.match(lines[first]) and lines[first - 1].strip():
                first -= 1
            last = index + 1
            while (
                last < len(lines) and lines[last].strip() and not _ELEMENT_START.match(lines[last])
            ):
                last += 1
            element = "\n".join(lines[first:last])
            self.found |= dict.fromkeys(range(first, last), element)
        return self.found[index]


def _sizes(text: str, data: ReleaseData, about_the_gate: bool) -> Iterator[Problem]:
    limits = [lim for lim in data.current.backend.limits if lim.unit == "bytes"]
    known = {amount(lim.value, lim.unit) for lim in limits}
    sizes = GATE_SIZES.items() if about_the_gate else ()
    gate = {name: amount(size, "bytes") for name, size in sizes}
    elements = _Elements(text)
    for match in re.finditer(r"\b(\d+(?:\.\d+)?) ?MiB\b", text):
        if f"{match[1]} MiB" in known | set(gate.values()):
            continue
        if about_the_gate or _BACKEND_WORDS.search(elements.around(match.start())):
            names = ", ".join(f"{lim.name} = {amount(lim.value, lim.unit)}" for lim in limits)
            gates = ", ".join(f"{name} = {size}" for name, size in gate.items())
            yield Problem(
                elements.line(match.start()),
                f"'{match[0]}' is no limit of the backend ({names})"
                + (f" nor of the gate ({gates})" if gate else "")
                + '; write {{ limit("<name>") }}',
            )


@functools.cache
def own_variables() -> frozenset[str]:
    """The variables the distribution itself defines: in its artefacts (Compose, Dockerfiles,
    scripts, Nix) and in its own code (the gate's settings, such as BETRACE_REQUIRE_TOOLS)."""
    names: set[str] = set()
    for folder, pattern in (("docker", "*"), ("nix", "*.nix"), ("helm", "*.yaml")):
        for path in sorted((REPO_ROOT / folder).rglob(pattern)):
            if path.is_file():
                names |= defined_variables(path.read_text(encoding="utf-8", errors="replace"))
    for path in sorted((REPO_ROOT / "src" / "betrace_dist").rglob("*.py")):
        names |= set(re.findall(r"[\"']((?:BETRACE)_[A-Z0-9_]+)[\"']", path.read_text()))
    return frozenset(names)


#: Last words of a dotted name that make it a file's or a host's, not a key
_NOT_KEYS = frozenset({"nix", "yaml", "yml", "json", "md", "py", "sh", "tpl", "txt", "conf", "ini"})
_NOT_KEYS |= {"db", "log", "crt", "key", "pem", "png", "svg", "tgz", "gz", "toml", "lock", "cfg"}
_NOT_KEYS |= {"org", "com", "net", "io", "dev", "local", "svc", "example", "internal"}
#: The chart's top-level keys whose dotted names pages write as values; others (`tests`,
#: `global`) are also words of other things (`tests.test_helm_model`, a Python module)
_JUDGED_TOP_KEYS = frozenset({"backend", "grafana", "networkPolicy", "serviceAccount", "image"})

#: A dotted key as pages write one in code: `backend.ingress.paths`
_CHART_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


@functools.cache
def _chart_values() -> dict[str, object]:
    """The BeTrace chart's values.yaml (this project's own file)."""
    loaded = yaml.safe_load((REPO_ROOT / "helm" / "betrace" / "values.yaml").read_text("utf-8"))
    return loaded if isinstance(loaded, dict) else {}


def _walk(tree: object, parts: list[str]) -> str | None:
    """None when `parts` is a path of the tree (or reaches a free-form map: an empty one, whose
    keys are the reader's), else the first part that is no key there, with the closest one."""
    for i, part in enumerate(parts):
        if isinstance(tree, dict) and not tree:
            return None
        if not isinstance(tree, dict) or part not in tree:
            keys = sorted(str(k) for k in tree) if isinstance(tree, dict) else []
            return f"'{'.'.join(parts[: i + 1])}'{closest(part, keys)}"
        tree = tree[part]
    return None


def chart_key_problem(span: str, data: ReleaseData) -> str | None:
    """Why a dotted key a page writes in code under a top-level key of the BeTrace chart
    (`backend.ingress.paths`, `networkPolicy.backendFrom`) names nothing: a misspelt chart value
    is refused by no schema when the page's prose is not installed. A key is good when it is a
    value of the BeTrace chart (helm/betrace/values.yaml); a field of the release data
    (releases.yaml: `backend.version`, `grafana.minimum`), which pages name so too; under keys
    but `backend.`, a value of the Grafana chart (its schema, gate/data), directly or under
    kube-prometheus-stack's `grafana:`, since the Grafana guides write those."""
    text = span.strip()
    parts = text.split(".")
    if _CHART_KEY.fullmatch(text) is None or parts[0] not in _JUDGED_TOP_KEYS:
        return None
    if parts[-1].lower() in _NOT_KEYS:  # a file (`grafana.nix`) or a host (`grafana.example.org`)
        return None
    chart = _walk(_chart_values(), parts)
    if chart is None:
        return None
    release = _walk(data.current.model_dump(by_alias=True), parts)
    if release is None:  # a fact of the release data (`backend.version`, `grafana.minimum`)
        return None
    if parts[0] == "backend":
        return (
            f"`{span}` is no value of the BeTrace chart (helm/betrace/values.yaml: {chart}) and "
            f"no field of releases.yaml's backend ({release})"
        )
    grafana = grafana_chart.schema().root
    if _in_schema(grafana, parts) or (parts[0] == "grafana" and _in_schema(grafana, parts[1:])):
        return None
    if parts[0] == "grafana" and parts[1] in grafana_stack.stack().grafana_keys:
        return None  # kube-prometheus-stack's own keys under grafana: (additionalDataSources)
    return (
        f"`{span}` is no value of the BeTrace chart (helm/betrace/values.yaml: {chart}), nor of "
        f"the Grafana chart {grafana_chart.schema().chart.version}"
    )


def _in_schema(node: object, parts: list[str]) -> bool:
    """`parts` is a path of the JSON Schema's values: a key of `properties` (one with dots
    in it, `grafana.ini`, too), any key below additionalProperties' schema, or anything below
    an object the schema does not describe."""
    if not parts:
        return True
    if not isinstance(node, dict):
        return False
    named = node.get("properties") or {}
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in named and _in_schema(named[key], parts[n:]):
            return True
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        return _in_schema(extra, parts[1:])
    return "properties" not in node and extra is None


def problems(text: str, data: ReleaseData, about_the_gate: bool = False) -> list[Problem]:
    """Every value the page types by hand and gets wrong; `about_the_gate`: the page is one of
    those about the gate itself, which may also state the gate's own size limits."""
    checks = (
        _images,
        _observability,
        _chart_versions,
        _ports,
        _endpoints,
        _commits,
        _distribution_refs,
        _versions,
        _python_versions,
        _otlp_timeouts,
        _otlp_default,
        _settings,
        _plugin_paths,
        _stop_times,
        _evaluation_window,
        _scrape_annotations,
    )
    found = [problem for check in checks for problem in check(text, data)]
    found += _variables(text, data, set(own_variables()))
    return found + list(_sizes(text, data, about_the_gate))
