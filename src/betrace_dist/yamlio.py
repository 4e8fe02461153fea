"""YAML loading that keeps line numbers and refuses duplicate keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError

from .errors import Problem, ProblemsError


def _loader() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def load_with_lines(path: Path) -> Any:
    """Parse one YAML document; syntax errors and duplicate keys name the file and line."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = raw[exc.start : exc.start + 1].hex()
        message = (
            f"not UTF-8 text: byte 0x{byte} at column {column} ({exc.reason}); "
            "save the file as UTF-8"
        )
        raise ProblemsError([Problem(path, line, message)]) from None
    return parse_with_lines(text.replace("\r\n", "\n"), path)


def parse_with_lines(text: str, path: Path | str) -> Any:
    try:
        return _loader().load(text)
    except MarkedYAMLError as exc:
        raise ProblemsError([yaml_problem(exc, path)]) from None
    except ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        message = (
            f"invalid YAML: character U+{exc.character:04X} is not allowed in YAML text; "
            "remove it (write a tab or special character as an escape in a double-quoted string)"
        )
        raise ProblemsError([Problem(path, line, message)]) from None
    except (ValueError, OverflowError) as exc:
        # A value that looks like a date but is none (2026-13-45): ruamel raises without a mark.
        line, value = _bad_scalar(text)
        message = f"invalid YAML: {value!r} is not a valid date ({exc}); write YYYY-MM-DD"
        if value is None:
            message = f"invalid YAML: a value cannot be read ({exc})"
        raise ProblemsError([Problem(path, line, message)]) from None


def _bad_scalar(text: str) -> tuple[int | None, str | None]:
    """Line and text of the first timestamp-looking scalar that is not a real date."""
    from ruamel.yaml.constructor import SafeConstructor

    try:
        root = _loader().compose(text)
    except Exception:
        return None, None
    constructor = SafeConstructor()
    todo: list[Node] = [root] if root is not None else []
    while todo:
        node = todo.pop(0)
        if isinstance(node, ScalarNode) and str(node.tag).endswith(":timestamp"):
            try:
                constructor.construct_yaml_timestamp(node)
            except (ValueError, OverflowError):
                return node.start_mark.line + 1, str(node.value)
        elif isinstance(node, MappingNode):
            todo.extend(v for pair in node.value for v in pair)
        elif isinstance(node, SequenceNode):
            todo.extend(node.value)
    return None, None


def yaml_problem(exc: MarkedYAMLError, path: Path | str, line_offset: int = 0) -> Problem:
    """Turn a ruamel error into a Problem; line_offset shifts lines of an embedded snippet."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 + line_offset if mark is not None else None
    detail = " ".join(s for s in (exc.context, exc.problem) if s)
    context = exc.context_mark
    if exc.context and context is not None and mark is not None and context.line != mark.line:
        detail = detail.replace(
            exc.context, f"{exc.context} (started at line {context.line + 1 + line_offset})", 1
        )
    if "found duplicate key" in detail or "duplicate key" in str(exc):
        detail = detail.replace(" with value", "").strip()
        detail += "; keep one of them"
    elif "'\\t'" in detail:
        detail += "; YAML indents with spaces only: replace the tab by spaces"
    elif "expected <block end>" in detail or "mapping values are not allowed" in detail:
        detail += (
            "; check the indentation of this line against the lines above it: the keys of one "
            "mapping start in the same column"
        )
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
