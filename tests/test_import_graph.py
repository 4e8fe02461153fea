"""Layers without cycles: the engine (src/betrace_dist) imports its own modules only at module
level, and its import graph has no cycle, so each module can be read and tested with only what
is below it. The graph is read with `ast` from the source, as Python would resolve the imports:
`from . import x` of a submodule is an edge to it, of a name to the package; importing a.b.c
from outside package a.b also runs a.b's __init__ (an edge to it). Imports under
`if TYPE_CHECKING:` never run and are not edges."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"


def module_names(src: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(src.rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _package(name: str, path: Path) -> list[str]:
    return name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]


def _targets(node: ast.Import | ast.ImportFrom, name: str, path: Path) -> list[str]:
    """The modules an import statement names (whatever they are)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        package = _package(name, path)
        base = package[: len(package) - node.level + 1]
        base_name = ".".join([*base, *([node.module] if node.module else [])])
    else:
        base_name = node.module or ""
    return [f"{base_name}.{alias.name}" for alias in node.names] + [base_name]


def _edges_of(target: str, importer: str, modules: dict[str, Path]) -> set[str]:
    """The project modules that importing `target` runs (itself, or the package that holds the
    name, and the packages above it that the importer is not inside)."""
    parts = target.split(".")
    found = set()
    for end in range(1, len(parts) + 1):
        name = ".".join(parts[:end])
        inside = importer == name or importer.startswith(name + ".")
        if name in modules and name != importer and not inside:
            found.add(name)
    return found


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def import_graph(src: Path) -> tuple[dict[str, set[str]], list[str]]:
    """(module -> project modules it imports, the imports found inside functions as
    'module:line imports target')."""
    modules = module_names(src)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    inner: list[str] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_nodes(tree)
        in_functions = {
            id(n)
            for f in ast.walk(tree)
            if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
            for n in ast.walk(f)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in skipped:
                continue
            edges = set().union(*(_edges_of(t, name, modules) for t in _targets(node, name, path)))
            if edges and id(node) in in_functions:
                inner.append(f"{name}:{node.lineno} imports {', '.join(sorted(edges))}")
            graph[name] |= edges
    return graph, inner


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return seen


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other (each reaches every other), largest first."""
    reach = {node: _reachable(graph, node) for node in graph}
    groups = {
        tuple(sorted({node} | {o for o in reach[node] if node in reach[o]}))
        for node in graph
        if node in reach[node]
    }
    return sorted((list(g) for g in groups), key=lambda g: (-len(g), g))


@pytest.fixture(scope="module")
def engine() -> tuple[dict[str, set[str]], list[str]]:
    return import_graph(SRC)


def test_the_engine_imports_its_modules_at_module_level_and_has_no_cycle(
    engine: tuple[dict[str, set[str]], list[str]],
) -> None:
    graph, inner = engine
    assert len(graph) > 50  # the engine was found
    assert inner == [], "imports of the project's own modules inside functions:\n" + "\n".join(
        inner
    )
    assert cycles(graph) == [], "import cycles:\n" + "\n".join(
        " -> ".join(c) for c in cycles(graph)
    )


def test_a_function_level_import_and_a_cycle_are_named(tmp_path: Path) -> None:
    """A package of the test's own: a imports b, b imports a inside a function, and the
    package's __init__ is imported by its own submodule c from outside a package below it."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import x\n    return x\n")
    (pkg / "sub" / "__init__.py").write_text("from ..c import y\n")
    (pkg / "c.py").write_text("from .sub.d import z\n")
    (pkg / "sub" / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import x\n"
    )
    graph, inner = import_graph(tmp_path)
    assert inner == ["pkg.b:2 imports pkg.a"]
    assert cycles(graph) == [["pkg.a", "pkg.b"], ["pkg.c", "pkg.sub"]]
    assert "pkg.a" not in graph["pkg.sub.d"]  # TYPE_CHECKING: not run, not an edge


@pytest.mark.parametrize(
    ("module", "above"),
    [
        ("betrace_dist.tools", "betrace_dist.gate"),
        ("betrace_dist.gate.failure", "betrace_dist.gate."),
        ("betrace_dist.gate.session", "betrace_dist.gate.checkers"),
        ("betrace_dist.gate.session", "betrace_dist.gate.commands"),
        ("betrace_dist.gate.commands", "betrace_dist.gate.checkers"),
    ],
)
def test_a_layer_reaches_nothing_above_it(
    engine: tuple[dict[str, set[str]], list[str]], module: str, above: str
) -> None:
    """The direction of docs/contributing/engine.md: what a module imports, directly or not."""
    graph, _ = engine
    assert module in graph
    assert sorted(m for m in _reachable(graph, module) if m.startswith(above)) == []
