"""Every YAML the project reads is bounded: an alias bomb ("billion laughs") or an oversized
document is refused with file:line and a reason, fast, before anything walks it.

ruamel keeps aliases as shared references, so loading a bomb is quick; walking it (to_plain,
pydantic) is what would visit its 10**10 nodes. The tests prove the size of what is refused, and
that it is refused in well under a second.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from betrace_dist import yamlio
from betrace_dist.errors import ProblemsError
from betrace_dist.gate.render import RenderError, Site
from betrace_dist.release import RELEASES_FILE, load_release_data

from .conftest import copy_site, line_containing, run_pytest

#: A hang guard, not a speed test: doing the refused work (expanding the bomb, building the
#: value, running the loop) takes hours; any machine refuses it in far less than this.
HANG = 60


def laughs(levels: int = 10, indent: str = "") -> str:
    """The classic: level i is a list of ten aliases to level i-1, so level 9 holds 10**10."""
    lines = [f'{indent}l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"{indent}l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


def only_problem(error: ProblemsError) -> str:
    assert len(error.problems) == 1, error
    return str(error.problems[0])


def test_ten_level_laughs_hold_ten_billion_nodes() -> None:
    """What the refused document would cost once walked: 11,111,111,111 nodes (hours)."""
    root = YAML(typ="rt").compose(laughs())
    found = yamlio.expansion_problem(root, limit=10**10)
    assert found is not None and "holds 11,111,111,111" in found[1]


def test_an_alias_bomb_is_refused_with_file_line_without_expanding_it(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(laughs(), encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(ProblemsError) as info:
        yamlio.load_with_lines(path)
    elapsed = time.monotonic() - started
    found = only_problem(info.value)
    print(found, f"({elapsed:.3f} s)")
    # l5 is the first level past 200,000 nodes (1,111,111)
    assert found.startswith(f"{path}:{line_containing(path, 'l5: &l5')}: YAML refused:")
    assert "expands to more than 200,000 nodes once its aliases are followed" in found
    assert "billion laughs" in found
    assert elapsed < HANG


def test_release_data_with_an_alias_bomb_is_refused_before_validation(tmp_path: Path) -> None:
    path = tmp_path / "releases.yaml"
    original = RELEASES_FILE.read_text(encoding="utf-8")
    path.write_text(original + "x-extra:\n" + laughs(indent="  "), encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(ProblemsError) as info:
        load_release_data(path)
    found = only_problem(info.value)
    print(found)
    assert found.startswith(f"{path}:{line_containing(path, 'l5: &l5')}: YAML refused:")
    assert time.monotonic() - started < HANG


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("a: 1\nb: &b\n  - x\n  - *b\n", encoding="utf-8")
    with pytest.raises(ProblemsError) as info:
        yamlio.load_with_lines(path)
    assert only_problem(info.value) == (
        f"{path}:2: YAML refused: the document has an alias that refers to the node that "
        "contains it"
    )


def test_an_oversized_document_is_refused_at_the_line_that_crosses_the_limit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("".join(f"k{i}: {'v' * 90}\n" for i in range(25_000)), encoding="utf-8")
    with pytest.raises(ProblemsError) as info:
        yamlio.load_with_lines(path)
    found = only_problem(info.value)
    print(found)
    line = yamlio.MAX_CHARS // len(f"k10000: {'v' * 90}\n")  # the lines are about this long
    assert found.startswith(f"{path}:")
    assert abs(int(found.split(":")[1]) - line) < 2000
    assert "characters long; YAML the project reads may be at most 2,000,000" in found


def test_ordinary_anchors_still_load(tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text(
        "x-env: &env\n  A: '1'\nservices:\n  a:\n    environment: *env\n"
        "  b:\n    environment:\n      <<: *env\n      B: '2'\n",
        encoding="utf-8",
    )
    plain = yamlio.to_plain(yamlio.load_with_lines(path))
    assert plain["services"]["b"]["environment"] == {"A": "1", "B": "2"}


def test_the_loader_for_helm_values_and_manifests_is_bounded_too() -> None:
    with pytest.raises(ProblemsError, match=r"values\.yaml:6: YAML refused"):
        yamlio.safe_load(laughs(), "values.yaml")
    with pytest.raises(ProblemsError, match=r"app\.yaml:8: YAML refused"):
        yamlio.safe_load_all("kind: A\n---\n" + laughs(), "app.yaml")
    assert yamlio.safe_load_all("a: 1\n---\nb: 2\n", "ok.yaml") == [{"a": 1}, {"b": 2}]


def test_front_matter_with_an_alias_bomb_fails_the_page_at_its_line(tmp_path: Path) -> None:
    site = Site(copy_site(tmp_path, ["index.md"]) / "mkdocs.yml")
    path = site.docs_dir / "p.md"
    path.write_text(f"---\ntitle: P\n{laughs()}---\n# P\n", encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(RenderError) as info:
        site.render(path)
    assert time.monotonic() - started < HANG
    assert info.value.line == line_containing(path, "l5: &l5")
    assert info.value.reason.startswith("the front matter expands to more than 200,000 nodes")


def test_a_yaml_block_with_an_alias_bomb_fails_the_gate_at_its_line(tmp_path: Path) -> None:
    root = copy_site(tmp_path, ["index.md"])
    page = root / "docs" / "bomb.md"
    page.write_text(f"# Bomb\n\nValues:\n\n```yaml\n{laughs()}```\n", encoding="utf-8")
    started = time.monotonic()
    result = run_pytest(["docs/bomb.md", "-q"], cwd=root)
    print(result.stdout[-2000:])
    assert result.returncode == 1
    line = line_containing(page, "l5: &l5")
    assert f"bomb.md:{line}" in result.stdout
    assert "YAML refused: the document expands to more than 200,000 nodes" in result.stdout
    assert time.monotonic() - started < HANG


def test_a_programs_output_is_bounded_as_a_file_is() -> None:
    """fast_safe_load reads rendered charts (a page's own among them) with libyaml: the same
    bounds as every YAML the project reads, on the node libyaml composed."""
    levels = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 7))
    with pytest.raises(yamlio.YAML_ERRORS, match="expands to more than 200,000 nodes"):
        yamlio.fast_safe_load("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + levels)
    with pytest.raises(yamlio.YAML_ERRORS, match="2,000,000"):
        yamlio.fast_safe_load("a: " + "b" * yamlio.MAX_CHARS + "\n")
    assert yamlio.fast_safe_load("a: [1, 2]\n") == {"a": [1, 2]}
