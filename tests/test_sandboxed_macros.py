"""Pages render in a sandbox: they reach the release data and the macros, and nothing else, and
they cannot exhaust the machine. Each escape or excess fails its page with `page.md:LINE` and a
reason, in the gate (Site.render, what `pytest docs/` uses) and in `mkdocs build`.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from betrace_dist.gate.render import RenderError, Site
from betrace_dist.site import limits
from betrace_dist.site.sandbox import PageSandbox

from .conftest import copy_site, run_mkdocs

#: A hang guard, not a speed test: doing the refused work (expanding the bomb, building the
#: value, running the loop) takes hours; any machine refuses it in far less than this.
HANG = 60

NOT_ALLOWED = "is not allowed: pages may read the release data and call the macros"
LIMIT = "render limit against pages that exhaust the machine"


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(copy_site(tmp_path, ["index.md"]) / "mkdocs.yml")


def page(site: Site, body: str, name: str = "p.md") -> Path:
    """A page whose line 5 holds `body` (after front matter and a title)."""
    path = site.docs_dir / name
    path.write_text(f"---\ntitle: P\n---\n# P\n{body}\n\nThe end.\n", encoding="utf-8")
    return path


def failure(site: Site, body: str) -> RenderError:
    with pytest.raises(RenderError) as info:
        site.render(page(site, body))
    print(f"p.md:{info.value.line}: {info.value.reason}")  # the message, shown with -s
    return info.value


ESCAPES = [
    ("{{ ''.__class__.__mro__ }}", "'__class__' of a 'str' object " + NOT_ALLOWED),
    ("{{ image.__globals__ }}", "'__globals__' of a 'function' object " + NOT_ALLOWED),
    ("{{ cycler.__init__.__globals__ }}", "'cycler' is undefined"),
    (
        "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
        "'__class__' of a 'list' object " + NOT_ALLOWED,
    ),
    ("{{ self._TemplateReference__context }}", "'_TemplateReference__context' of a"),
    ("{{ release.__class__.__init__ }}", "'__class__' of a 'Release' object " + NOT_ALLOWED),
    ("{{ release.model_fields }}", "'model_fields' of a 'Release' object " + NOT_ALLOWED),
    ("{{ ''.format.__self__ }}", "'__self__' of a 'function' object " + NOT_ALLOWED),
    ("{{ '{0.__class__}'.format(1) }}", NOT_ALLOWED),
    ("{{ releases.releases.append(1) }}", "'append' of a 'list' object " + NOT_ALLOWED),
    ("{{ page.read_source }}", "has no attribute 'read_source'"),
    ("{{ lipsum(10**6) }}", "'lipsum' is undefined"),
    ("{{ namespace(x=1) }}", "'namespace' is undefined"),
    ('{% include "index.md" %}', "'index.md' was not read: pages include no files"),
    ('{% import "index.md" as x %}', "'index.md' was not read: pages include no files"),
]


@pytest.mark.parametrize(("body", "expected"), ESCAPES, ids=[e[0] for e in ESCAPES])
def test_classic_escapes_fail_the_page_at_their_line(site: Site, body: str, expected: str) -> None:
    error = failure(site, body)
    assert error.line == 5
    assert expected in error.reason


#: Everything mkdocs-macros 1.5 gives a page by default (mkdocs_macros/plugin.py on_config and
#: on_nav, mkdocs_macros/context.py define_env) and Jinja's default globals.
PLUGIN_DEFAULTS = [
    "config",
    "environment",
    "plugin",
    "git",
    "extra",
    "macros",
    "filters",
    "filters_builtin",
    "navigation",
    "files",
    "context",
    "macros_info",
    "now",
    "fix_url",
    "cycler",
    "joiner",
    "dict",
    "version",  # extra.version of mkdocs.yml, merged into the variables
]


@pytest.mark.parametrize("name", PLUGIN_DEFAULTS)
def test_a_page_sees_none_of_the_plugin_defaults(site: Site, name: str) -> None:
    error = failure(site, f"{{{{ {name} }}}}")
    assert error.line == 5 and f"'{name}' is undefined" in error.reason


def test_a_page_sees_the_release_data_the_macros_and_its_own_title(
    site: Site, release_data
) -> None:
    body = (
        "{{ release.version }} {{ releases.current.version }} {{ project.repository }} "
        "{{ next_version }} {{ port('http') }} {{ image('backend') }} {{ page.title }} "
        "{{ page.meta.title }} {% for name in release.backend.not_read %}{{ name }}{% endfor %}"
    )
    text = site.render(page(site, body)).text
    assert f"{release_data.current.version} {release_data.current.version} " in text
    assert f"{release_data.image_ref('backend')} P P" in text


def test_the_sandbox_serves_mkdocs_build_too(tmp_path: Path) -> None:
    root = copy_site(tmp_path, ["index.md"])
    bad = root / "docs" / "escape.md"
    bad.write_text("# Escape\n\nText.\n\n{{ ''.__class__.__mro__ }}\n", encoding="utf-8")
    result = run_mkdocs(["build", "--strict", "-d", str(tmp_path / "out")], cwd=root)
    print(result.stderr[-3000:])
    assert result.returncode != 0
    assert "docs/escape.md:5: macro error (LimitError): access to attribute '__class__'" in (
        result.stderr
    )
    assert NOT_ALLOWED in result.stderr


# -- limits -----------------------------------------------------------------------------------
EXCESSES = [
    ("{{ 'x' * 10**9 }}", "str * 1000000000 would make 1,000,000,000 characters"),
    ("{% for i in range(10**9) %}x{% endfor %}", "range(1000000000,) would make 1,000,000,000"),
    ("{{ 10 ** (10 ** 9) }}", "10 ** 1000000000 would make"),
    ("{{ ['a'] * 10**8 }}", "list * 100000000 would make 100,000,000"),
    ("{{ '%1000000000d' % 1 }}", "the printf-style width 1000000000 would make"),
    ("{{ '%1000000000d'|format(1) }}", "the printf-style width 1000000000 would make"),
    ("{{ '{:>1000000000}'.format(1) }}", "the format spec '>1000000000' would make"),
    ("{{ 'x'.center(10**9) }}", "str.center(1000000000) would make"),
    ("{{ 'x'|center(10**9) }}", "center would make 1,000,000,000"),
    ("{{ 'x'|indent(10**9) }}", "indent would make 1,000,000,001"),
    ("{{ ('x' * 10**6)|replace('x', 'yyy') }}", "replace would make 3,000,000"),
    ("{{ ('x' * 10**6).replace('x', 'yyy') }}", "str.replace would make 3,000,000"),
    ("{{ ('x' * 10**6)|join('--') }}", "join would make 2,999,998"),
    ("{{ ('x' * 1500).join(range(100000)) }}", "str.join would make"),
    ("{{ ('x' * 1200000) + ('x' * 1200000) }}", "str + str would make 2,400,000"),
]


@pytest.mark.parametrize(("body", "expected"), EXCESSES, ids=[e[0] for e in EXCESSES])
def test_values_too_large_are_refused_before_they_are_built(
    site: Site, body: str, expected: str
) -> None:
    started = time.monotonic()
    error = failure(site, body)
    assert (error.line, time.monotonic() - started < HANG) == (5, True)
    assert expected in error.reason and LIMIT in error.reason


def test_a_page_whose_output_grows_too_large_fails_at_the_line_that_wrote_it(site: Site) -> None:
    error = failure(site, "{% for a in range(100000) %}\n{{ 'y' * 100 }}\n{% endfor %}")
    assert error.line == 6
    assert f"the rendered page would exceed {limits.MAX_OUTPUT:,} characters" in error.reason


def test_a_page_that_never_ends_is_stopped_at_the_time_limit(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "TIME_LIMIT", 1.0)
    started = time.monotonic()
    error = failure(
        site, "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
    )
    assert time.monotonic() - started < HANG
    assert error.line == 5
    assert "rendering took longer than 1 s and was stopped" in error.reason


def test_the_time_limit_stops_a_render_in_a_worker_thread_as_mkdocs_serve_runs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "TIME_LIMIT", 0.5)
    sandbox = PageSandbox()
    sandbox.globals["range"] = limits.bounded_range
    template = sandbox.from_string(
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
    )
    outcome: list[BaseException] = []

    def render() -> None:
        try:
            template.render()
        except limits.LimitError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=render, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive() and len(outcome) == 1


def test_a_deadline_that_passes_after_the_block_raises_nothing_later() -> None:
    with limits.Deadline(0.05):
        pass
    time.sleep(0.2)  # the timer was cancelled: nothing is delivered to this thread now
    with limits.Deadline(0.05):
        time.sleep(0.0)
    total = sum(range(3_000_000))  # plenty of bytecodes for a pending exception to surface
    assert total > 0


# -- front matter -------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["release", "releases", "project", "next_version", "port", "page"])
def test_front_matter_cannot_shadow_the_release_data_or_a_macro(site: Site, key: str) -> None:
    path = site.docs_dir / "p.md"
    path.write_text(f"---\ntitle: P\n{key}: 1.0\n---\n# P\n", encoding="utf-8")
    with pytest.raises(RenderError) as info:
        site.render(path)
    assert info.value.line == 3
    assert f"front matter key '{key}' would replace the release data's or the macros'" in (
        info.value.reason
    )


def test_mkdocs_build_refuses_the_shadowing_front_matter_at_its_line(tmp_path: Path) -> None:
    root = copy_site(tmp_path, ["index.md"])
    bad = root / "docs" / "shadow.md"
    bad.write_text("---\ntitle: S\nrelease:\n  version: 0.0.1\n---\n# S\n", encoding="utf-8")
    result = run_mkdocs(["build", "--strict", "-d", str(tmp_path / "out")], cwd=root)
    assert result.returncode != 0
    assert "docs/shadow.md:3: front matter key 'release' would replace" in result.stderr, (
        result.stderr[-3000:]
    )


#: Pydantic's own (partly deprecated) model API, reachable on every model a page is handed: it
#: parses, unpickles, reads files and builds unvalidated models. A page may read fields only.
def _pickle_that_touches(canary: Path) -> str:
    return f"cos\\nsystem\\n(S'touch {canary}'\\ntR."


PYDANTIC_MACHINERY = [
    'releases.parse_raw("{pickle}", content_type="application/pickle", allow_pickle=True)',
    "releases.parse_file('/etc/passwd')",
    "releases.construct()",
    "release.copy()",
    "release.json()",
    "release.dict()",
    "releases.schema()",
    "releases.validate({{}})",
    "releases.update_forward_refs()",
    "releases.from_orm(release)",
    "release.schema_json()",
    "release.backend.parse_obj({{}})",
]


@pytest.mark.parametrize("call", PYDANTIC_MACHINERY)
def test_pydantic_machinery_on_the_release_data_is_refused_and_never_runs(
    site: Site, tmp_path: Path, call: str
) -> None:
    canary = tmp_path / "canary"
    error = failure(site, "{{ " + call.format(pickle=_pickle_that_touches(canary)) + " }}")
    name = call.split("(")[0].rsplit(".", 1)[1]
    assert error.line == 5
    assert f"access to attribute {name!r} of a " in error.reason and NOT_ALLOWED in error.reason
    assert not canary.exists()
