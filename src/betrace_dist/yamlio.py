"""YAML loading that keeps line numbers and refuses duplicate keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from .errors import Problem, ProblemsError


def _loader() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def load_with_lines(path: Path) -> Any:
    """Parse one YAML document; syntax errors and duplicate keys name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProblemsError([Problem(path, None, f"not UTF-8 text ({exc.reason})")]) from None
    return parse_with_lines(text, path)


def parse_with_lines(text: str, path: Path | str) -> Any:
    try:
        return _loader().load(text)
    except MarkedYAMLError as exc:
        raise ProblemsError([yaml_problem(exc, path)]) from None


def yaml_problem(exc: MarkedYAMLError, path: Path | str, line_offset: int = 0) -> Problem:
    """Turn a ruamel error into a Problem; line_offset shifts lines of an embedded snippet."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 + line_offset if mark is not None else None
    detail = " ".join(s for s in (exc.context, exc.problem) if s)
    if "found duplicate key" in detail or "duplicate key" in str(exc):
        detail = detail.replace(" with value", "").strip()
    return Problem(path, line, f"invalid YAML: {detail}")


def line_of(root: Any, loc: tuple[int | str, ...]) -> int | None:
    """1-based line of the node at `loc` (or of its nearest existing parent)."""
    node = root
    line: int | None = None
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    if line is None and isinstance(root, CommentedMap | CommentedSeq):
        line = root.lc.line + 1
    return line


def field_path(loc: tuple[int | str, ...]) -> str:
    """('releases', 0, 'images') -> 'releases[0].images'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def to_plain(node: Any) -> Any:
    """ruamel's commented containers to plain dicts and lists (pydantic validates those)."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    return node
