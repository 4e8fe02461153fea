"""The mkdocs-macros environment: every version and interface fact a page shows comes from here.

`macros/__init__.py` calls `install(env)`. The release data is loaded once per build; a problem in
it stops the build with file, line and field before any page is written.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from .. import REPO_ROOT, needed_python
from ..errors import ProblemsError
from ..release import RELEASES_FILE, ReleaseData, load_release_data, next_minor
from . import artefact_tables, compose_defaults, limits, tables
from .badge import Verifier
from .links import links_leaving


class ReleaseDataError(SystemExit):
    """Stops `mkdocs build`/`serve` with the problems as the only message (no traceback)."""


def release_file(env: Any) -> Path:
    """releases.yaml beside mkdocs.yml, unless `extra.release_data` names another file."""
    name = env.conf.get("extra", {}).get("release_data")
    if not name:
        return RELEASES_FILE
    return (Path(env.conf["config_file_path"]).parent / str(name)).resolve()


def install(env: Any) -> None:
    """Called once per build (mkdocs-macros' on_config): `mkdocs serve` rebuilds in the same
    process, so the tables cached for the last build are dropped and the release data re-read."""
    forget_cached_tables()
    site_root = Path(env.conf["config_file_path"]).parent
    leaving = sorted({*links_leaving(site_root), *links_leaving(REPO_ROOT)})
    if leaving:
        raise ReleaseDataError(
            "symbolic links leave the repository (a page could include the file they point "
            "at, from the machine that builds the site): " + "; ".join(leaving)
        )
    path = release_file(env)
    try:
        data = load_release_data(path)
    except ProblemsError as exc:
        raise ReleaseDataError(f"release data is invalid:\n{exc}") from None
    define(env, data)


@cache
def _verifier(config_file: Path) -> Verifier:
    """The gate's ledger of the site's pages, for the status table (one per build)."""
    return Verifier(config_file)


@cache
def _target_counts(
    config_file: Path, docs: Path, guides: tuple[tuple[str, str, str | None], ...]
) -> dict[str, str]:
    """How the gate checks each target's guide (name, guide, section), counted once per build
    from its ledger: the project's own work, outside the time limit of the page that shows it
    (limits.py)."""
    verifier = _verifier(config_file)
    out = {}
    with limits.trusted_work():
        for name, guide, section in guides:
            summary = verifier.section_summary(docs / guide, section)
            out[name] = summary.counts_text if summary else "no example to check"
    return out


def forget_cached_tables() -> None:
    """Drop what the last build read from the artefacts: no cached table outlives its build."""
    _verifier.cache_clear()
    _target_counts.cache_clear()
    artefact_tables.chart_values_table.cache_clear()
    compose_defaults.written.cache_clear()


def define(env: Any, data: ReleaseData) -> None:
    env.variables["project"] = data.project
    env.variables["release"] = data.current
    env.variables["releases"] = data
    # the version a maintainer would release next (the release guide's example)
    env.variables["next_version"] = next_minor(data.current.version)
    # the oldest Python the project's own code runs on (pyproject.toml requires-python)
    env.variables["project_python"] = needed_python()
    for name, macro in {**_fact_macros(data), **_table_macros(env, data)}.items():
        env.macro(macro, name)


def _env_default_macro(data: ReleaseData) -> Callable[[str], str]:
    def env_default(name: str) -> str:
        """The value this project's artefacts give a backend variable (distribution_default)."""
        value = data.current.backend.env_var(name).distribution_default
        if value is None:
            raise KeyError(f"releases.yaml gives {name} no distribution_default")
        return value

    return env_default


#: Set by the docs workflow when it builds the development site from main (mike's `dev`): the
#: pages then say plainly that the release's tag may not exist yet.
DEV_SITE_ENV = "BETRACE_DEV_SITE"


def _tag_note_macro(data: ReleaseData) -> Callable[[], str]:
    def tag_note() -> str:
        """What to clone before the release's tag exists (the development site, from main)."""
        tag = f"v{data.current.version}"
        if os.environ.get(DEV_SITE_ENV):
            return (
                f'!!! warning "This is the development site, built from `main`"\n\n'
                f"    Its commands name the tag `{tag}`, which is made only when release "
                f"{data.current.version} is published, and may not exist yet. Until then clone "
                f"`main`: leave out `--branch {tag}`, and write `main` where a file names the "
                f"tag (a flake input, Argo CD's `targetRevision`; Flux's `ref` takes "
                f"`branch: main`). The site of each published release, chosen in the version "
                f"menu, matches its tag.\n"
            )
        return (
            f"The tag `{tag}` is made when this release is, and the site of a release is built "
            f"from its tag. On the development site, built from `main` before that, clone `main`: "
            f"leave out `--branch {tag}`."
        )

    return tag_note


def _rules_file_note_macro(data: ReleaseData) -> Callable[[str], str]:
    def rules_file_note(failure: str) -> str:
        """What a backup of the rules file finds, from releases.yaml backend.data_files (which
        the probe data-files measures in every run). `failure` says, in the page's words, what
        the page's copy does where there is no file yet."""
        files = data.current.backend.data_files
        name = files.after_a_rule[0]
        if name in files.before_any_rule:
            first = f"The backend writes `{name}` when it starts, before any rule is made."
        else:
            first = (
                f"A backend that has never had a rule has no `{name}` yet{failure}: there is "
                "nothing to back up."
            )
        left = json.dumps(files.rules_after_the_last_deletion)
        return (
            f"{first} Once a rule was made, the file stays, even when every rule was deleted "
            f"since (it then holds `{left}`)."
        )

    return rules_file_note


def _request_field_macro(data: ReleaseData) -> Callable[[str, str], str]:
    backend = data.current.backend

    def request_field(method_path: str, dotted: str) -> str:
        """Three table cells, a request field's JSON name, its JSON type (an object that maps
        names to values of one type says which) and whether the backend requires it, from the
        release data (`request_field("POST /v1/spans", "spans.traceId")`: a name after a dot
        is a field of the array's items); refused unless the body has that field."""
        method, _, path = method_path.partition(" ")
        found = [e for e in backend.endpoints if (e.method, e.path) == (method, path)]
        body = found[0].request if found else None
        if body is None:
            raise KeyError(f"the backend defines no request body for '{method_path}'")
        *outer, name = dotted.split(".")
        for part in outer:
            if part not in body.items:
                raise KeyError(f"'{method_path}' has no array of objects '{part}'")
            body = body.items[part]
        if name not in body.fields:
            raise KeyError(
                f"'{method_path}' {'.'.join(outer)} has no field '{name}'; "
                f"fields: {', '.join(body.fields)}"
            )
        kind = str(body.fields[name])
        if name in body.values:
            kind += f", every value a {body.values[name]}"
        required = "yes" if name in body.required else "no"
        return f"{tables.code(name)} | {kind} | {required}"

    return request_field


def _evaluation_macros(data: ReleaseData) -> dict[str, Callable[..., Any]]:
    """Macros that say when the backend evaluates a trace (releases.yaml backend.evaluation,
    re-measured by the probe evaluation-delay)."""
    evaluation = data.current.backend.evaluation

    def evaluation_delay() -> str:
        """When the backend evaluates a trace after its last span, in words ("3 to 4 seconds")."""
        earliest, latest = evaluation.window
        return f"{earliest} to {latest} seconds"

    def evaluation_check() -> str:
        """How often the backend looks for traces to evaluate, in words ("once a second")."""
        every = evaluation.check_every_seconds
        return "once a second" if every == 1 else f"every {every} seconds"

    def evaluation_wait() -> int:
        """Whole seconds a page waits before it reads a trace's verdict: the latest evaluation,
        and one second more for the machine (the live tier runs each such wait for real)."""
        return evaluation.window[1] + 1

    return {
        "evaluation_delay": evaluation_delay,
        "evaluation_check": evaluation_check,
        "evaluation_wait": evaluation_wait,
    }


def _fact_macros(data: ReleaseData) -> dict[str, Callable[..., Any]]:
    """Macros that give one fact of the release, refusing names the release does not have."""
    backend = data.current.backend

    def image(name: str) -> str:
        """Reference of a BeTrace image (backend, grafana-plugin, plugin-init), digest if known."""
        return data.image_ref(name)

    def obs_image(name: str) -> str:
        """Reference of a pinned observability image (grafana, tempo, loki, ...)."""
        pinned = data.current.observability.model_dump(by_alias=True)
        if name not in pinned:
            raise KeyError(f"no observability image '{name}'; images: {', '.join(pinned)}")
        return str(getattr(data.current.observability, name.replace("-", "_")).ref)

    def port(name: str) -> int:
        """A backend port by name (http, grpc)."""
        if name not in backend.ports:
            raise KeyError(f"no backend port '{name}'; ports: {', '.join(backend.ports)}")
        return backend.ports[name].port

    def endpoint(path: str) -> str:
        """A backend endpoint path, refused unless the backend serves it."""
        known = [e.path for e in backend.endpoints]
        if path not in known:
            raise KeyError(
                f"the backend serves no endpoint '{path}'; endpoints: {', '.join(known)}"
            )
        return path

    def env_var(name: str) -> str:
        """An environment variable name, refused unless the backend reads it."""
        return backend.env_var(name).name

    def limit(name: str) -> str:
        """A backend limit as a reader reads it ("4 MiB", "10000 spans"), by name."""
        found = backend.limit(name)
        return tables.amount(found.value, found.unit)

    return {
        "tag_note": _tag_note_macro(data),
        "rules_file_note": _rules_file_note_macro(data),
        "image": image,
        "obs_image": obs_image,
        "port": port,
        "endpoint": endpoint,
        "env_var": env_var,
        "env_default": _env_default_macro(data),
        "compose_port": compose_defaults.published_port,
        "compose_network": compose_defaults.default_network,
        "compose_log_limit": compose_defaults.log_limit,
        "limit": limit,
        "request_field": _request_field_macro(data),
        **_evaluation_macros(data),
    }


def _table_macros(env: Any, data: ReleaseData) -> dict[str, Callable[..., str]]:
    """Macros that write a table, a list or an admonition from the release and the artefacts."""

    def known_issue(issue_id: str) -> str:
        """A warning admonition for one known upstream issue, linked to the known-issues page."""
        page = getattr(env, "page", None)
        here = posixpath.dirname(page.file.src_uri) if page is not None else ""
        link = posixpath.relpath(tables.KNOWN_ISSUES_PAGE, here or ".")
        return tables.known_issue(data, issue_id, link)

    def relative(path: str) -> str:
        page = getattr(env, "page", None)
        here = posixpath.dirname(page.file.src_uri) if page is not None else ""
        return posixpath.relpath(path, here or ".")

    def status_table() -> str:
        """Per target: what works, its known issues, and how the gate checks its guide."""
        guides = tuple((t.name, t.guide, t.section) for t in data.current.targets)
        config = Path(env.conf["config_file_path"])
        counts = _target_counts(config, Path(env.conf["docs_dir"]), guides)
        return tables.status(data, lambda target: counts[target.name], relative)

    return {
        "known_issue": known_issue,
        "status_table": status_table,
        "chart_values_table": artefact_tables.chart_values_table,
        "compose_services_table": artefact_tables.compose_services_table,
        "compose_env_table": artefact_tables.compose_env_table,
        "compatibility_table": lambda: tables.compatibility(data),
        "images_table": lambda: tables.images(data),
        "env_table": lambda: tables.environment(data),
        "endpoints_table": lambda: tables.endpoints(data),
        "ports_table": lambda: tables.ports(data),
        "history_table": lambda: tables.history(data),
        "chart_changes_table": lambda: tables.chart_changes(data),
        "known_issues_list": lambda: tables.known_issues(data),
        "limits_table": lambda: tables.limits(data),
    }
