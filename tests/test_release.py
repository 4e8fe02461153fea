"""releases.yaml: the real file is valid, and every kind of bad input names file, line and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from betrace_dist import tools, upstream
from betrace_dist.errors import ProblemsError
from betrace_dist.release import RELEASES_FILE, ReleaseData, load_release_data, next_minor
from betrace_dist.site import tables
from betrace_dist.yamlio import load_with_lines

from .conftest import CURRENT, copy_site, line_containing, run_mkdocs, run_pytest, skip_or_fail

ORIGINAL = RELEASES_FILE.read_text(encoding="utf-8")
#: The current release, whose values the broken copies below edit: read, never typed, so that
#: a release (`betrace_dist.bump`) leaves these tests as they are.
VERSION, CHART = CURRENT.version, CURRENT.chart
NEWER = next_minor(VERSION)
_MAJOR_MINOR, _, _PATCH = CHART.version.rpartition(".")
NEXT_CHART_PATCH = f"{_MAJOR_MINOR}.{int(_PATCH) + 1}"


def broken(tmp_path: Path, old: str, new: str, count: int = 1) -> Path:
    assert old in ORIGINAL, f"releases.yaml no longer contains {old!r}: update this test"
    path = tmp_path / "releases.yaml"
    path.write_text(ORIGINAL.replace(old, new, count), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ProblemsError) as info:
        load_release_data(path)
    return [str(p) for p in info.value.problems]


def test_the_real_release_data_is_valid(release_data: ReleaseData) -> None:
    assert release_data.current is release_data.releases[0]
    assert release_data.image_ref("backend").startswith(release_data.project.registry + "/")


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("registry: ghcr.io/betrace-hq/betrace", "registry: ghcr.io/betracehq/betrace", "registry"),
        ("flakehub: betrace-hq/betrace", "flakehub: betracehq/betrace", "flakehub"),
    ],
)
def test_an_owner_other_than_the_repository_organisation_is_refused(
    tmp_path: Path, old: str, new: str, key: str
) -> None:
    path = broken(tmp_path, old, new)
    line = line_containing(path, new)
    found = "\n".join(problems(path))
    assert f"{path}:{line}: project.{key}: owner 'betracehq' is not the organisation" in found


def test_the_release_pins_the_upstream_commit(tmp_path: Path) -> None:
    path = broken(tmp_path, f"commit: {CURRENT.upstream.commit}", "commit: main")
    line = line_containing(path, "commit: main")
    assert f"{path}:{line}: releases[0].upstream.commit:" in "\n".join(problems(path))


def test_unknown_key_names_file_line_and_field(tmp_path: Path) -> None:
    path = broken(
        tmp_path,
        f"      app_version: {CHART.app_version}\n      # What each chart",
        f"      app_verison: {CHART.app_version}\n      # What each chart",
    )
    line = line_containing(path, "app_verison")
    assert f"{path}:{line}: releases[0].chart.app_verison: unknown key" in "\n".join(problems(path))


def test_wrong_type_names_the_field(tmp_path: Path) -> None:
    path = broken(tmp_path, "port: 12011", 'port: "twelve"')
    line = line_containing(path, '"twelve"')
    found = "\n".join(problems(path))
    assert (
        f"{path}:{line}: releases[0].backend.ports.http.port: Input should be a valid integer"
        in found
    )


def test_missing_field_points_at_its_parent(tmp_path: Path) -> None:
    path = broken(tmp_path, "      page_path: /a/betrace-app\n", "")
    line = line_containing(path, "    plugin:")
    assert f"{path}:{line}: releases[0].plugin.page_path: required field is missing" in problems(
        path
    )


@pytest.mark.parametrize("floating", ["latest", "stable", "main"])
def test_floating_tag_is_refused(tmp_path: Path, floating: str) -> None:
    path = broken(
        tmp_path,
        f"      backend:\n        tag: {VERSION}",
        f"      backend:\n        tag: {floating}",
    )
    line = line_containing(path, f"tag: {floating}")
    found = "\n".join(problems(path))
    assert f"{path}:{line}: releases[0].images.backend.tag: the tag '{floating}' moves" in found


def test_malformed_digest_is_refused(tmp_path: Path) -> None:
    path = broken(
        tmp_path,
        f"      backend:\n        tag: {VERSION}",
        f"      backend:\n        tag: {VERSION}\n        digest: sha256:abc",
    )
    line = line_containing(path, "sha256:abc")
    assert any(
        p.startswith(f"{path}:{line}: releases[0].images.backend.digest:") for p in problems(path)
    )


def second_release(text: str, version: str, date: str) -> str:
    """The file with a copy of the current release put right after it, as releases[1]."""
    head, _, entries = text.partition("releases:\n")
    end = entries.find("\n  - version: ", 1)
    current = entries if end < 0 else entries[: end + 1]
    copy = current.replace(f"  - version: {VERSION}", f"  - version: {version}", 1)
    copy = copy.replace(f"    date: {CURRENT.date.isoformat()}", f"    date: {date}", 1)
    copy = copy.replace(f"      app_version: {VERSION}\n", f"      app_version: {version}\n", 1)
    return f"{head}releases:\n{current}{copy}{entries[len(current) :]}"


def test_duplicate_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "releases.yaml"
    path.write_text(second_release(ORIGINAL, VERSION, "2026-01-01"), encoding="utf-8")
    text = path.read_text().splitlines()
    lines = [n for n, t in enumerate(text, 1) if f"- version: {VERSION}" in t]
    assert (
        f"{path}:{lines[1]}: releases[1].version: version {VERSION} is listed twice "
        "(also releases[0])" in problems(path)
    )


def test_history_out_of_order_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "releases.yaml"
    path.write_text(second_release(ORIGINAL, NEWER, "2026-01-01"), encoding="utf-8")
    line = line_containing(path, f"- version: {NEWER}")
    found = "\n".join(problems(path))
    assert (
        f"{path}:{line}: releases[1].version: "
        f"history must be newest first, but {NEWER} comes after {VERSION}" in found
    )


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = broken(tmp_path, "  name: BeTrace", "  name: [BeTrace")
    found = problems(path)
    assert len(found) == 1 and found[0].startswith(f"{path}:") and "invalid YAML" in found[0]


def test_duplicate_key_in_release_data_is_refused(tmp_path: Path) -> None:
    path = broken(tmp_path, "  license: MIT\n", "  license: MIT\n  license: MIT\n")
    line = [n for n, t in enumerate(path.read_text().splitlines(), 1) if "license: MIT" in t][1]
    (found,) = problems(path)
    assert found.startswith(f"{path}:{line}: invalid YAML:"), found
    assert 'duplicate key "license"' in found


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = broken(tmp_path, f"tag: {VERSION}", "tag: latest", count=3)
    assert len(problems(path)) == 3


def site_with_bad_release_data(tmp_path: Path) -> Path:
    site = copy_site(tmp_path, ["index.md"])
    bad = broken(tmp_path, "  license: MIT", "  license: Apache-2.0")
    config = (site / "mkdocs.yml").read_text(encoding="utf-8")
    config = "\n".join(
        f"  release_data: {bad}" if ln.startswith("  release_data:") else ln
        for ln in config.splitlines()
    )
    (site / "mkdocs.yml").write_text(config, encoding="utf-8")
    return site


def test_mkdocs_build_stops_on_bad_release_data_and_writes_nothing(tmp_path: Path) -> None:
    site = site_with_bad_release_data(tmp_path)
    out = tmp_path / "out"
    result = run_mkdocs(["build", "--strict", "-d", str(out)], cwd=site)
    line = line_containing(tmp_path / "releases.yaml", "license: Apache-2.0")
    assert result.returncode != 0
    assert f"releases.yaml:{line}: project.license:" in result.stderr, result.stderr
    assert not out.exists()


def test_the_gate_stops_on_bad_release_data_with_the_same_message(tmp_path: Path) -> None:
    site = site_with_bad_release_data(tmp_path)
    result = run_pytest(["docs", "-q"], cwd=site)
    line = line_containing(tmp_path / "releases.yaml", "license: Apache-2.0")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert f"releases.yaml:{line}: project.license:" in result.stderr
    assert "passed" not in result.stdout


#: Every kind of upstream fact in a release, as paths into releases.yaml ("*" = each item).
SOURCED = [
    ("plugin",),
    ("plugin", "settings", "*"),
    ("grafana",),
    ("backend",),
    ("backend", "ports", "*"),
    ("backend", "bind"),
    ("backend", "endpoints", "*"),
    ("backend", "limits", "*"),
    ("backend", "env", "*"),
    ("backend", "sdk_env"),
    ("backend", "not_read_source"),
    ("known_issues", "*"),
]


def _nodes(node: object, path: tuple[str, ...]) -> list[object]:
    if not path:
        return [node]
    head, rest = path[0], path[1:]
    if head == "*":
        items = node.values() if isinstance(node, dict) else node
        return [n for item in items for n in _nodes(item, rest)]  # type: ignore[union-attr]
    return _nodes(node[head], rest)  # type: ignore[index]


def test_every_upstream_fact_names_its_source_or_what_was_observed() -> None:
    raw = load_with_lines(RELEASES_FILE)
    missing = []
    for index, release in enumerate(raw["releases"]):
        for path in SOURCED:
            nodes = _nodes(release, path)
            assert nodes, f"releases[{index}] has no {'.'.join(path)}: update SOURCED"
            for node in nodes:
                if not (node.get("source") or node.get("observed")):
                    missing.append(f"releases.yaml:{node.lc.line + 1}: {'.'.join(path)}")
        bodies = [
            e[part]
            for e in release["backend"]["endpoints"]
            for part in ("query", "request", "response")
            if part in e
        ]
        missing += [f"releases.yaml:{b.lc.line + 1}: body" for b in bodies if not b.get("source")]
    assert not missing, "facts without source or observed:\n" + "\n".join(missing)


def test_a_fact_without_source_or_observation_is_refused(tmp_path: Path) -> None:
    path = broken(
        tmp_path,
        "          meaning: Writable directory for persistent state (rules.json).\n"
        "          source: backend/cmd/betrace-backend/main.go\n",
        "          meaning: Writable directory for persistent state (rules.json).\n",
    )
    line = line_containing(path, "- name: BETRACE_DATA_DIR")
    found = "\n".join(problems(path))
    assert f"{path}:{line}: releases[0].backend.env[2]: states no evidence: add `source:" in found


def test_a_source_that_is_not_a_file_path_is_refused(tmp_path: Path) -> None:
    path = broken(
        tmp_path,
        "source: backend/internal/observability/logger.go",
        "source: the logger of the backend",
    )
    line = line_containing(path, "source: the logger of the backend")
    found = "\n".join(problems(path))
    assert (
        f"{path}:{line}: releases[0].backend.env[5].source[0]: 'the logger of the backend' is "
        in found
    )
    assert "is not the path of an upstream file" in found


def test_a_known_issue_id_listed_twice_is_refused(tmp_path: Path) -> None:
    path = broken(tmp_path, "      - id: violations-in-memory", "      - id: binds-all-interfaces")
    line = line_containing(path, f"- version: {VERSION}")
    assert (
        f"{path}:{line}: releases[0]: known issue ids listed twice: binds-all-interfaces"
        in problems(path)
    )


def test_request_fields_come_from_the_release_data(release_data: ReleaseData) -> None:
    """The curl model reads request bodies from the release data (no second copy)."""
    from betrace_dist.gate.commands.curl import _requests

    requests = _requests(release_data.current)
    assert requests["POST /v1/rules"]["required"] == ["name", "expression"]
    assert "traceId" in requests["POST /v1/spans"]["items"]["spans"]["fields"]  # type: ignore[index]


def _absent_from_tree(data: ReleaseData, tree: Path) -> list[str]:
    """`version: source` for each source of the snapshot's release that its tree lacks."""
    missing = []
    for release in data.releases:
        if release.upstream.commit != data.current.upstream.commit:
            continue  # the snapshot holds the current release's commit only
        for source in sorted(_sources(release)):
            if not (tree / source.split("#", 1)[0]).exists():
                missing.append(f"{release.version}: {source}")
    return missing


def _upstream_tree(data: ReleaseData) -> Path:
    try:
        return upstream.source_tree(data.current)
    except (tools.ToolMissing, upstream.UpstreamError) as exc:
        skip_or_fail(f"no upstream tree to look in: {exc}")


def test_every_source_exists_upstream_at_the_pinned_commit(release_data: ReleaseData) -> None:
    """Every `source:` path is a file or folder of upstream's tree at its release's commit:
    looked up in a git directory of upstream (BETRACE_UPSTREAM_GIT) when one is named, for every
    release; else in the snapshot beside the checkout (a skip without it, a failure in CI)."""
    import os
    import subprocess

    git_dir = os.environ.get("BETRACE_UPSTREAM_GIT")
    if not git_dir:
        missing = _absent_from_tree(release_data, _upstream_tree(release_data))
        assert not missing, "sources absent from upstream's snapshot:\n" + "\n".join(missing)
        return
    missing = []
    for release in release_data.releases:
        for source in sorted(_sources(release)):
            spec = f"{release.upstream.commit}:{source.split('#', 1)[0]}"
            check = ["git", f"--git-dir={git_dir}", "cat-file", "-e", spec]
            if subprocess.run(check, capture_output=True, check=False).returncode != 0:
                missing.append(f"{release.version}: {source}")
    assert not missing, "sources absent from upstream at the pinned commit:\n" + "\n".join(missing)


def test_a_source_upstream_does_not_have_is_named(
    release_data: ReleaseData, tmp_path: Path
) -> None:
    """A source path renamed in releases.yaml (as if upstream had moved the file) is reported."""
    tree = _upstream_tree(release_data)
    text = RELEASES_FILE.read_text(encoding="utf-8")
    old = "source: backend/cmd/betrace-backend/main.go"
    assert old in text, "releases.yaml no longer cites main.go: update this test"
    changed = tmp_path / "releases.yaml"
    changed.write_text(text.replace(old, old.replace("main.go", "server.go"), 1), encoding="utf-8")
    missing = _absent_from_tree(load_release_data(changed), tree)
    assert any(m.endswith("backend/cmd/betrace-backend/server.go") for m in missing), missing


_OTHER_PROJECT = re.compile(r"^[\w.-]+/[\w.-]+@[\w.-]+:")


def _sources(node: object) -> set[str]:
    """Every upstream source path named in a model (others' files, owner/repo@ref:path, aside)."""
    from pydantic import BaseModel

    found: set[str] = set()
    if isinstance(node, BaseModel):
        for name in type(node).model_fields:
            value = getattr(node, name)
            if name in ("source", "required_source", "plugins_dir_source") and value:
                named = [value] if isinstance(value, str) else value
                found |= {s for s in named if not _OTHER_PROJECT.match(s)}
            else:
                found |= _sources(value)
    elif isinstance(node, dict):
        for value in node.values():
            found |= _sources(value)
    elif isinstance(node, list):
        for value in node:
            found |= _sources(value)
    return found


def test_a_target_naming_an_unknown_known_issue_is_refused(tmp_path: Path) -> None:
    path = broken(tmp_path, "          - editor-workers-sub-path\n",
                  "          - editor-workers-subpath\n")  # fmt: skip
    line = line_containing(path, f"- version: {VERSION}")
    assert (
        f"{path}:{line}: releases[0]: targets name unknown known issues: editor-workers-subpath"
        in problems(path)
    )


def test_every_known_issue_names_its_pages_or_says_why_none(release_data: ReleaseData) -> None:
    for issue in release_data.current.known_issues:
        assert issue.pages or issue.no_pages_because, issue.id


def _issue_index(release_data: ReleaseData, issue_id: str) -> int:
    return [issue.id for issue in release_data.current.known_issues].index(issue_id)


def test_a_known_issue_without_pages_or_a_reason_is_refused(
    tmp_path: Path, release_data: ReleaseData
) -> None:
    old = "        pages: [guides/add-betrace-to-an-existing-grafana.md, guides/write-rules.md]\n"
    path = broken(tmp_path, "      - id: editor-workers-sub-path\n" + old,
                  "      - id: editor-workers-sub-path\n")  # fmt: skip
    line = line_containing(path, "- id: editor-workers-sub-path")
    index = _issue_index(release_data, "editor-workers-sub-path")
    assert (
        f"{path}:{line}: releases[0].known_issues[{index}]: known issue editor-workers-sub-path "
        "names no page: list the pages it concerns (pages:), which must each state it, or say why "
        "none does (no_pages_because:)"
    ) in problems(path)


def test_a_known_issue_with_pages_and_a_reason_is_refused(
    tmp_path: Path, release_data: ReleaseData
) -> None:
    new = "      - id: editor-workers-sub-path\n        no_pages_because: none\n"
    path = broken(tmp_path, "      - id: editor-workers-sub-path\n", new)
    line = line_containing(path, "- id: editor-workers-sub-path")
    index = _issue_index(release_data, "editor-workers-sub-path")
    assert (
        f"{path}:{line}: releases[0].known_issues[{index}]: known issue editor-workers-sub-path "
        "has both pages and no_pages_because: keep one"
    ) in problems(path)


@pytest.mark.parametrize("tag", ["11.0.0", "12.2.4", "12.0.9"])
def test_a_grafana_that_cannot_load_the_app_is_refused(tmp_path: Path, tag: str) -> None:
    # the stack's and the chart's Grafana must share react/jsx-runtime, which the patched app
    # takes from it (grafana.minimum and its backports); 11.0.0 is what they ran before
    old = "        tag: 13.2.0\n      tempo:"
    path = broken(tmp_path, old, f"        tag: {tag}\n      tempo:")
    line = line_containing(path, f"tag: {tag}")
    found = "\n".join(problems(path))
    assert f"{path}:{line}: releases[0].observability.grafana.tag: Grafana {tag} cannot" in found
    assert "needs Grafana 12.3.0 or later, or 11.6.11+, 12.0.10+, 12.1.7+, 12.2.5+ in" in found


@pytest.mark.parametrize("tag", ["12.3.0", "12.2.5", "11.6.11", "13.2.0"])
def test_a_grafana_that_shares_the_jsx_runtime_is_accepted(tmp_path: Path, tag: str) -> None:
    old = "        tag: 13.2.0\n      tempo:"
    data = load_release_data(broken(tmp_path, old, f"        tag: {tag}\n      tempo:"))
    assert data.current.observability.grafana.tag == tag


def test_an_issue_fixed_by_a_patch_the_release_does_not_carry_is_refused(tmp_path: Path) -> None:
    old = "fixed_by: patches/betrace-backend/0001-dsl-read-the-keyword-false-as-false.patch"
    path = broken(tmp_path, old, old.replace("0001-dsl-read", "0009-dsl-read"))
    assert any(
        "known issues fixed by a patch the release does not carry: false-reads-as-true " in p
        for p in problems(path)
    ), problems(path)


def test_an_issue_fixed_by_two_components_patches_is_refused(tmp_path: Path) -> None:
    """The page says which builds carry the fix from the patches' component: an issue fixed by
    the backend's and the app's patches at once cannot be said so, and is two issues."""
    old = "fixed_by: patches/betrace-backend/0001-dsl-read-the-keyword-false-as-false.patch"
    app = "patches/grafana-betrace-app/0002-call-the-backend-through-grafana-plugin-proxy.patch"
    path = broken(tmp_path, old, f"{old.replace('fixed_by: ', 'fixed_by: [')}, {app}]")
    found = " ".join(problems(path))
    assert "fixed_by names patches of betrace-backend and grafana-betrace-app" in found, found


def test_a_target_that_leaves_out_an_issue_its_guide_states_is_refused(tmp_path: Path) -> None:
    """The home page's status table shows the issues a target's reader meets."""
    old = "          - startup-log-health-url\n          - startup-log-otlp-url-warning\n"
    path = broken(tmp_path, old, "          - startup-log-otlp-url-warning\n")
    found = " ".join(problems(path))
    assert "targets do not list known issues their guide states" in found
    assert "Docker Compose (startup-log-health-url)" in found


def test_a_target_of_patched_builds_that_lists_an_issue_the_patches_fix_is_refused(
    tmp_path: Path,
) -> None:
    """The home page listed "Upstream's Grafana app works only with the distribution's
    patches" as a problem of the Compose stack, whose app carries those patches."""
    old = (
        "        issues:\n          - app-shows-no-statistics-or-traces\n          - violations-in"
    )
    new = old.replace("issues:\n", "issues:\n          - app-needs-the-distribution-patches\n")
    path = broken(tmp_path, old, new)
    found = " ".join(problems(path))
    assert "targets list known issues the distribution's patches fix" in found, found
    assert "Docker Compose (app-needs-the-distribution-patches)" in found


def test_only_a_target_of_upstreams_builds_may_list_the_issues_the_patches_fix(
    tmp_path: Path,
) -> None:
    path = broken(tmp_path, "        upstream_builds: true\n", "")
    found = " ".join(problems(path))
    assert "targets list known issues the distribution's patches fix" in found, found
    assert "Nix flake (false-reads-as-true)" in found


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        # a change of a version the chart has not reached
        (
            f"        - version: {CHART.changes[-1].version}\n",
            f"        - version: {next_minor(CHART.version)}\n",
            "changes of versions after",
        ),
        # oldest first
        (
            f"        - version: {CHART.changes[-1].version}\n",
            f"        - version: {CHART.version}\n",
            "newest version first",
        ),
        # the current version says nothing of what it changed
        (
            f"      version: {CHART.version}\n      app_version",
            f"      version: {NEXT_CHART_PATCH}\n      app_version",
            "lists no change",
        ),
        ("          kind: fixed\n", "          kind: broke\n", "kind"),
    ],
)  # fmt: skip
def test_chart_changes_out_of_step_with_the_chart_are_refused(
    tmp_path: Path, old: str, new: str, said: str
) -> None:
    path = broken(tmp_path, old, new)
    found = "\n".join(problems(path))
    assert "releases[0].chart" in found and said in found, found


def test_chart_versions_before_the_first_release_are_marked_never_released(
    release_data: ReleaseData,
) -> None:
    """The chart's changelog keeps the versions of its development before the first release;
    the table marks them, so no reader takes their upgrade notes for an installation of theirs.
    Each release's own chart version stays unmarked."""
    rows = {
        line.split("|")[1].strip()
        for line in tables.chart_changes(release_data).splitlines()
        if line.startswith("| `")
    }
    first = release_data.releases[-1]
    before_first = {c.version for c in first.chart.changes} - {first.chart.version}
    assert before_first, "the first release's chart lists no earlier version: update this test"
    for version in before_first:
        assert f"`{version}` (never released: before release {first.version})" in rows, rows
    released = {r.chart.version for r in release_data.releases}
    for version in released & {c.version for c in release_data.current.chart.changes}:
        assert f"`{version}`" in rows, rows


def test_the_endpoints_table_says_what_each_call_takes(release_data: ReleaseData) -> None:
    """A reader review found no query parameter or body field in the API reference, while the
    workarounds say 'pass limit'. Each endpoint's row names its query parameters (those the
    backend ignores apart) and its body's fields (those a rule needs marked)."""
    rows = {
        (cells[0], cells[1]): cells[-1]
        for line in tables.endpoints(release_data).splitlines()[2:]
        for cells in [line.removeprefix("| ").removesuffix(" |").split(" | ")]
    }
    for e in release_data.current.backend.endpoints:
        takes = rows[(f"`{e.method}`", f"`{e.path}`")]
        if e.query is None and e.request is None:
            assert takes == "nothing", takes
        for name in e.query.fields if e.query else ():
            ignored = name in e.query_ignored
            assert f"`{name}`" in takes.split("(")[-1 if ignored else 0], (name, takes)
        for name in e.request.fields if e.request else ():
            needed = f"`{name}` (needed)" in takes
            assert f"`{name}`" in takes and needed == (name in e.request.required), (name, takes)


def test_a_chart_of_another_apps_version_is_refused(tmp_path: Path) -> None:
    """The chart's NOTES link the site of appVersion's X.Y, the folder docs.yml deploys the
    release's tag to: an app version other than the release's would link another release's
    pages, or none."""
    old = f"      app_version: {CHART.app_version}\n"
    path = broken(tmp_path, old, f"      app_version: {next_minor(CHART.app_version)}\n")
    found = "\n".join(problems(path))
    assert "is not the release's version" in found and "releases[0]" in found, found
