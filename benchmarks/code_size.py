"""Sizes and complexity of the engine (src/), at the work tree or at any commit.

    python benchmarks/code_size.py               # the work tree
    python benchmarks/code_size.py --rev d1767ab # a commit, read with `git archive`

Prints, as Markdown: lines per module (largest first) and per area (a folder of the engine, or a
module of its top level), the number of functions, the functions longer than 60 lines, and how
many functions ruff's McCabe check finds over complexity 10 and 12 (`# noqa` ignored: every such
function counts, whatever its reason).
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LONG = 60


def source_tree(rev: str | None, scratch: Path) -> Path:
    if rev is None:
        return ROOT / "src"
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(scratch, filter="data")
    return scratch / "src"


def functions(tree: Path) -> list[tuple[str, int]]:
    """(module:function, lines) of every function and method."""
    found = []
    for path in sorted(tree.rglob("*.py")):
        module = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(module):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                found.append((f"{path.relative_to(tree).as_posix()}:{node.name}", size))
    return found


def over_complexity(tree: Path, limit: int) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--select", "C901", "--ignore-noqa",
         "--config", f"lint.mccabe.max-complexity = {limit}", "--output-format", "json", str(tree)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return len(json.loads(done.stdout or "[]"))


def report(tree: Path, label: str) -> str:
    modules = sorted(
        (
            (p.relative_to(tree).as_posix(), len(p.read_text().splitlines()))
            for p in tree.rglob("*.py")
        ),
        key=lambda m: -m[1],
    )
    funcs = functions(tree)
    long = sorted((f for f in funcs if f[1] > LONG), key=lambda f: -f[1])
    out = [f"## Engine size: {label}", ""]
    out.append(f"- modules: {len(modules)}, lines: {sum(n for _, n in modules)}")
    out.append(f"- functions: {len(funcs)}; longer than {LONG} lines: {len(long)}")
    out.append(f"- over McCabe complexity 10: {over_complexity(tree, 10)}; over 12: "
               f"{over_complexity(tree, 12)}")  # fmt: skip
    out += ["", "| longest functions | lines |", "|---|---|"]
    out += [f"| {name} | {size} |" for name, size in long]
    out += ["", "| largest modules | lines |", "|---|---|"]
    out += [f"| {name} | {size} |" for name, size in modules[:10]]
    out += [
        "",
        "| area (folder, or a module of the top level) | modules | lines |",
        "|---|---|---|",
    ]
    areas: dict[str, list[int]] = {}
    for name, size in modules:
        area = name.rsplit("/", 1)[0] if name.count("/") > 1 else name
        areas.setdefault(area, []).append(size)
    ranked = sorted(areas.items(), key=lambda a: -sum(a[1]))
    out += [f"| {area} | {len(sizes)} | {sum(sizes)} |" for area, sizes in ranked]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rev", help="a commit to measure instead of the work tree")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tree = source_tree(args.rev, Path(scratch))
        print(report(tree, args.rev or "work tree"))


if __name__ == "__main__":
    main()
