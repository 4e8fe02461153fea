"""The patch series applies, in order, to a fresh unpack of upstream's snapshot, and every patch
carries its header; what the series promises is in the patched tree.

Each guarantee has a test that breaks it on purpose: a header without a field, a hunk that no
longer matches, a gap in the numbering, and the series without its proxy patch.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from betrace_dist import patch_series, plugin_build
from betrace_dist.plugin_build import PatchError
from betrace_dist.release import ReleaseData

from .conftest import unpack_with

APP = plugin_build.APP_DIR
#: Where the app's code calls the backend: pages, services, API client, data source, components.
CLIENT_DIRS = ("pages", "services", "api", "datasource", "components")
HARD_CODED = re.compile(r"localhost:12011|BETRACE_PORT_BACKEND")


def client_files(tree: Path) -> list[Path]:
    src = tree / APP / "src"
    return [
        path
        for folder in CLIENT_DIRS
        for path in sorted((src / folder).rglob("*.ts*"))
        if ".stories." not in path.name and "__tests__" not in path.parts
    ]


def hard_coded(tree: Path) -> list[str]:
    found = []
    for path in client_files(tree):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if HARD_CODED.search(line):
                found.append(f"{path.relative_to(tree)}:{number}: {line.strip()}")
    return found


def test_every_patch_has_its_header() -> None:
    problems = [p for path in plugin_build.series() for p in patch_series.header_problems(path)]
    assert not problems, "\n".join(problems)


def test_the_series_applies_in_order_to_a_fresh_unpack(patched_tree: Path) -> None:
    # patched_tree is unpack + `git apply` of every patch; here, what the series promises is there
    manifest = json.loads((patched_tree / APP / "src" / "plugin.json").read_text())
    reads, writes = manifest["routes"]  # Grafana takes the first that matches method and path
    assert (reads["path"], reads["method"], reads.get("reqRole")) == ("backend/*", "GET", None)
    assert (writes["path"], writes.get("method"), writes["reqRole"]) == (
        "backend/*",
        None,
        "Editor",
    )
    for route in (reads, writes):
        assert route["url"] == "{{ .JsonData.backendUrl }}"
        key = {"name": "X-API-Key", "content": "{{ .SecureJsonData.apiKey }}"}
        assert route["headers"] == [key]
    webpack = (patched_tree / APP / "webpack.config.js").read_text()
    assert "'react/jsx-runtime'" in webpack and "'react/jsx-dev-runtime'" in webpack
    assert hard_coded(patched_tree) == []


def test_the_patched_manifest_declares_the_grafana_the_app_needs(
    patched_tree: Path, release_data: ReleaseData
) -> None:
    # module.js takes react/jsx-runtime from Grafana (patch 0001), which only Grafana 12.3.0
    # and the backports share: the manifest says so, as releases.yaml grafana does
    manifest = json.loads((patched_tree / APP / "src" / "plugin.json").read_text())
    grafana = release_data.current.grafana
    dependency = manifest["dependencies"]["grafanaDependency"]
    assert dependency == grafana.dependency
    assert dependency.startswith(f">={grafana.minimum} || ") and all(
        f">={b} <" in dependency for b in grafana.backports
    )


def test_the_snapshot_without_the_series_has_what_the_series_removes(
    tmp_path: Path, release_data: ReleaseData
) -> None:
    tree = unpack_with(tmp_path, [])
    found = hard_coded(tree)
    assert any("services/BeTraceService.ts" in f for f in found), found
    manifest = json.loads((tree / APP / "src" / "plugin.json").read_text())
    assert "routes" not in manifest
    upstream = release_data.current.grafana.upstream_minimum
    assert manifest["dependencies"]["grafanaDependency"] == f">={upstream}"


def test_a_missing_header_field_is_named_with_the_file(tmp_path: Path) -> None:
    first = plugin_build.series()[0]
    broken = tmp_path / first.name
    text = first.read_text(encoding="utf-8")
    broken.write_text(re.sub(r"^Forwarded:.*\n", "", text, flags=re.M), encoding="utf-8")
    assert patch_series.header_problems(broken) == [
        f"{broken}:1: header field Forwarded is missing or empty"
    ]
    dated = tmp_path / "0001-dated.patch"
    dated.write_text(text.replace("Last-Update: 2026-12-03", "Last-Update: 3 Dec"), "utf-8")
    (problem,) = patch_series.header_problems(dated)
    assert problem.startswith(f"{dated}:") and "Last-Update must be YYYY-MM-DD" in problem


def test_a_patch_that_does_not_apply_is_named(tmp_path: Path) -> None:
    patches = tmp_path / "patches"
    shutil.copytree(plugin_build.PATCH_DIR, patches)
    first = sorted(patches.iterdir())[0]
    first.write_text(first.read_text().replace("     'react-dom',", "     'preact',"), "utf-8")
    with pytest.raises(PatchError, match=rf"{re.escape(str(first))}:1: does not apply"):
        unpack_with(tmp_path / "tree", plugin_build.series(patches))


def test_a_gap_in_the_numbering_is_an_error(tmp_path: Path) -> None:
    shutil.copytree(plugin_build.PATCH_DIR, tmp_path, dirs_exist_ok=True)
    second = sorted(tmp_path.glob("0002-*.patch"))[0]
    second.rename(tmp_path / second.name.replace("0002-", "0005-"))
    with pytest.raises(PatchError, match="expected number 0002"):
        plugin_build.series(tmp_path)


def recorded(release_data: ReleaseData) -> list[tuple[str, str]]:
    return [(p.file, p.forwarded) for p in release_data.current.plugin.patches]


def test_the_release_records_the_series_it_carries(release_data: ReleaseData) -> None:
    assert plugin_build.release_problems(recorded(release_data), plugin_build.series()) == []


def test_a_release_missing_a_patch_or_its_forwarded_state_is_caught(
    release_data: ReleaseData,
) -> None:
    listed = recorded(release_data)
    (problem,) = plugin_build.release_problems(listed[:2], plugin_build.series())
    assert "releases.yaml plugin.patches lists" in problem and "0003-" in problem
    wrong = [(listed[0][0], "yes"), *listed[1:]]
    (problem,) = plugin_build.release_problems(wrong, plugin_build.series())
    assert problem.startswith(f"releases.yaml plugin.patches {listed[0][0]}: forwarded is 'yes'")


def test_the_series_applies_to_a_tree_inside_another_git_work_tree(tmp_path: Path) -> None:
    # the build unpacks into .cache/ of this checkout: there, plain `git apply` took paths from
    # the checkout's root and skipped every file while exiting 0 (a build once shipped unpatched)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    tree = unpack_with(tmp_path / "cache", plugin_build.series())
    assert "'react/jsx-runtime'" in (tree / APP / "webpack.config.js").read_text()
    assert hard_coded(tree) == []


def test_the_apps_build_is_keyed_by_the_snapshot_the_series_and_the_pins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any input of the build changed gives another cache folder, so a stale bundle is never
    reused: the snapshot's bytes, a patch's content or name, the order, the registry pins."""
    tarball = tmp_path / "snapshot.tar.gz"
    tarball.write_bytes(b"snapshot")
    first, second = tmp_path / "0001-a.patch", tmp_path / "0002-b.patch"
    first.write_text("a\n")
    second.write_text("b\n")
    key = plugin_build.cache_key(tarball, [first, second])
    assert plugin_build.cache_key(tarball, [first, second]) == key
    assert plugin_build.cache_key(tarball, [second, first]) != key
    renamed = tmp_path / "0001-c.patch"
    renamed.write_text("a\n")
    assert plugin_build.cache_key(tarball, [renamed, second]) != key
    first.write_text("a changed\n")
    assert plugin_build.cache_key(tarball, [first, second]) != key
    first.write_text("a\n")
    tarball.write_bytes(b"another snapshot")
    assert plugin_build.cache_key(tarball, [first, second]) != key
    tarball.write_bytes(b"snapshot")
    monkeypatch.setattr(plugin_build, "REGISTRY_PINS", {"pinned": "2.0.0"})
    assert plugin_build.cache_key(tarball, [first, second]) != key


#: A JavaScript regular-expression literal in the app's source, as Python reads the simple ones
#: these tests take (\b, \s, \{, \(, alternatives: the same meaning in both).
JS_REGEX = re.compile(r"/((?:\\.|[^/\n])+)/\.test\(expression\)")


def _expression_tests(source: str) -> list[re.Pattern[str]]:
    return [re.compile(found) for found in JS_REGEX.findall(source)]


def _example_expressions() -> list[str]:
    from betrace_dist import REPO_ROOT
    from betrace_dist.rules import rulesfile

    rules = [REPO_ROOT / "docker" / "rules.example.yaml", REPO_ROOT / "docker" / "rules.yaml"]
    return [rule.expression for path in rules for rule in rulesfile.load(path)]


def test_the_rules_tabs_test_button_judges_rules_by_the_rule_languages_shape(
    tmp_path: Path, patched_tree: Path
) -> None:
    """Patch 0005. The snapshot's Rules tab tests an expression by keywords of an older rule
    language; run on the repository's example rules (which the real backend compiles in every
    run, tests/test_rules.py), its test calls some invalid. Patched, the tab passes no test
    of its own, and the editor's (when { } and always { } or never { }) takes every one. The
    app's regular expressions are read from its source and run here in Python: checked
    against the app's own tests, not by clicking its button (no Grafana runs here)."""
    expressions = _example_expressions()
    assert expressions
    snapshot = unpack_with(tmp_path / "snapshot", [])
    page = (snapshot / APP / "src" / "pages" / "RulesPage.tsx").read_text(encoding="utf-8")
    (keywords,) = _expression_tests(page)
    refused = [e for e in expressions if not keywords.search(e)]
    assert refused, "the snapshot's keyword test takes every example rule: is patch 0005 needed?"

    patched = patched_tree / APP / "src"
    page = (patched / "pages" / "RulesPage.tsx").read_text(encoding="utf-8")
    assert "onTest=" not in page and not _expression_tests(page)
    editor = (patched / "components" / "MonacoRuleEditor.tsx").read_text(encoding="utf-8")
    shape = _expression_tests(editor)
    assert len(shape) == 2, shape  # when { ... }, then always { ... } or never { ... }
    assert [e for e in expressions if not all(test.search(e) for test in shape)] == []
