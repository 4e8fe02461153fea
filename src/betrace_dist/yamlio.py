"""YAML loading that keeps line numbers, refuses duplicate keys, and refuses documents too big
to hold: over MAX_CHARS characters, or growing past MAX_NODES nodes through aliases.

ruamel (like PyYAML) keeps an alias as a second reference to the anchored node, so loading a
"billion laughs" document (ten anchors, each a list of ten aliases to the one before) is fast
and small; it is walking it (`to_plain`, a deep copy, pydantic validation, printing it) that
visits 10**9 nodes and runs for hours. The composed node graph is measured first, each shared
node counted once per use, in time linear in its number of distinct nodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarint import ScalarInt
from ruamel.yaml.scalarstring import PlainScalarString, ScalarString

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


#: Characters of one YAML text the project reads (releases.yaml is about 30 KB).
MAX_CHARS = 2_000_000
#: Nodes of one YAML document once its aliases are expanded.
MAX_NODES = 200_000


def size_problem(text: str) -> tuple[int, str] | None:
    """(0-based line, reason) if the text is longer than MAX_CHARS."""
    if len(text) <= MAX_CHARS:
        return None
    return text.count("\n", 0, MAX_CHARS), (
        f"is {len(text):,} characters long; YAML the project reads may be at most "
        f"{MAX_CHARS:,} (the limit is crossed on this line)"
    )


def _children(node: Any) -> list[Any]:
    value = getattr(node, "value", None)
    if not isinstance(value, list):
        return []
    return [part for item in value for part in (item if isinstance(item, tuple) else (item,))]


def expansion_problem(root: Any, limit: int = MAX_NODES) -> tuple[int, str] | None:
    """(0-based line, reason) if the composed document grows past `limit` nodes through aliases,
    or an alias refers to the node that contains it. Works on ruamel's and PyYAML's nodes."""
    sizes: dict[int, int] = {}
    path: set[int] = set()  # nodes started and not finished: the current path from the root
    stack: list[tuple[Any, bool]] = [(root, False)] if root is not None else []
    while stack:
        node, done = stack.pop()
        if done:
            path.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[id(node)] > limit:
                return node.start_mark.line, (
                    f"expands to more than {limit:,} nodes once its aliases are followed "
                    "(aliases that multiply, a 'billion laughs' document): this node alone "
                    f"holds {sizes[id(node)]:,}; write the values out or use fewer aliases"
                )
        elif id(node) in path:
            return node.start_mark.line, "has an alias that refers to the node that contains it"
        elif id(node) not in sizes:
            path.add(id(node))
            stack.append((node, True))
            stack.extend((c, False) for c in _children(node) if id(c) not in sizes)
    return None


def bounds_problem(text: str, root: Any) -> tuple[int, str] | None:
    """Size, then expansion, of a text and its composed document (None: within bounds)."""
    return size_problem(text) or expansion_problem(root)


def stream_problem(text: str) -> tuple[int, str] | None:
    """(0-based line, reason) for the first document of a stream that is too big to load.
    Syntax errors propagate as ruamel's MarkedYAMLError, as loading would raise them."""
    found = size_problem(text)
    if found is None:
        for root in _loader().compose_all(text):
            found = expansion_problem(root)
            if found is not None:
                break
    return found


def _refuse(found: tuple[int, str] | None, path: Path | str) -> None:
    """Raise the ProblemsError of a bound a document broke (`found`: its 0-based line, and
    what it broke), naming the file and the line; nothing when `found` is None."""
    if found is not None:
        raise ProblemsError([Problem(path, found[0] + 1, f"YAML refused: the document {found[1]}")])


def check_bounds(text: str, path: Path | str) -> None:
    """Raise a ProblemsError naming file and line if `text` is too big to load."""
    _refuse(stream_problem(text), path)


def _bounded_round_trip(text: str, path: Path | str) -> Any:
    """Compose once, check the bounds on the composed node, construct from that same node (a
    second compose only to count nodes doubled the cost of loading releases.yaml)."""
    found = size_problem(text)
    yaml = _loader()
    root = None if found else yaml.compose(text)
    _refuse(found or (expansion_problem(root) if root is not None else None), path)
    if root is None:
        return None
    return yaml.constructor.construct_document(root)


def safe_load(text: str, path: Path | str) -> Any:
    """`YAML(typ="safe").load`, refusing texts too big to load; a text too big or not YAML is
    a ProblemsError naming file and line."""
    try:
        check_bounds(text, path)
        return YAML(typ="safe").load(text)
    except MarkedYAMLError as exc:
        raise ProblemsError([yaml_problem(exc, path)]) from None


def _yaml_errors() -> tuple[type[Exception], ...]:
    import yaml

    return (YAMLError, yaml.YAMLError)


#: What either loader raises on text that is not YAML.
YAML_ERRORS = _yaml_errors()


def fast_safe_load(text: str) -> Any:
    """One document of a program's output (`helm template`), by libyaml where PyYAML has it:
    ruamel's pure-Python loader was most of the gate's own time on rendered charts. PyYAML's
    loader follows YAML 1.1, ruamel's 1.2; they differ only on plain scalars such as `on`,
    `yes` or `0755`, which a chart's templates quote. Without libyaml, ruamel's loader."""
    import yaml

    loader_class = getattr(yaml, "CSafeLoader", None)
    if loader_class is None:
        check_bounds(text, "rendered output")
        return YAML(typ="safe").load(text)
    # the output may come from a page's own chart: bounded as every YAML the project reads is
    # (size, then aliases that multiply), on the node libyaml composed, before constructing it
    loader = loader_class(text)
    try:
        found = size_problem(text)
        root = None if found else loader.get_single_node()
        found = found or (expansion_problem(root) if root is not None else None)
        if found is not None:
            raise yaml.YAMLError(f"line {found[0] + 1}: YAML refused: the document {found[1]}")
        return None if root is None else loader.construct_document(root)
    finally:
        loader.dispose()


def safe_load_all(text: str, path: Path | str) -> list[Any]:
    """Every document of a stream, as `safe_load` does for one."""
    check_bounds(text, path)
    return list(YAML(typ="safe").load_all(text))


#: the unquoted words go-yaml v2 reads as booleans (its resolve table, YAML 1.1's); 1.2 reads
#: them as strings, but for true and false
_GO_YAML_V2_BOOLEANS = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "off", "Off", "OFF"), False),
}


def as_kubernetes_reads(text: str, path: Path | str) -> list[Any]:
    """Every document of a stream as Kubernetes' YAML library reads it (sigs.k8s.io/yaml,
    which kubectl and Helm use: a fork of go-yaml v2, with YAML 1.1's scalars). What Helm 3 and
    4 read, run here (`kindOf` of each value in a template, tests/test_yaml_as_kubernetes.py):
    an unquoted yes, no, on, off, y or n is a boolean, also anchored, and as a key "true" or
    "false"; 0755 is 493 (octal), 0x010 16; 1:20 and dates are strings as written; `!!str
    yes` and an unknown tag's value are strings. Read once, keeping quotes, then each plain
    scalar as that library resolves it. Each document is composed once, its bounds checked on
    that node and built from it. A ProblemsError names the file and line, as `safe_load`
    does."""
    _refuse(size_problem(text), path)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.Constructor = _DatesAsWritten
    documents = []
    try:
        for root in yaml.compose_all(text):
            _refuse(expansion_problem(root), path)
            documents.append(_as_go_yaml_v2(yaml.constructor.construct_document(root)))
    except MarkedYAMLError as exc:
        raise ProblemsError([yaml_problem(exc, path)]) from None
    return documents


class _DatesAsWritten(RoundTripConstructor):
    """The round-trip constructor, a date or time kept as the text written (Kubernetes' YAML
    library hands it on as a string). A class of its own: add_constructor changes the class
    it is called on, which every other round-trip reading of the gate uses."""


_DatesAsWritten.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


def _key(key: Any) -> str:
    """A mapping key as that library hands it on, as a JSON key: resolved as a value is (an
    unquoted `n:` is a boolean, printed `false`), then written as JSON writes it."""
    value = _as_go_yaml_v2(key)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _as_go_yaml_v2(node: Any) -> Any:
    """A round-trip tree as plain values, its plain scalars resolved as go-yaml v2 does."""
    if isinstance(node, dict):
        return {_key(k): _as_go_yaml_v2(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_as_go_yaml_v2(v) for v in node]
    if type(node) is str or isinstance(node, PlainScalarString):  # unquoted (or anchored)
        return _GO_YAML_V2_BOOLEANS.get(str(node), str(node))
    if isinstance(node, ScalarString):
        return str(node)
    if isinstance(node, TaggedScalar):  # `!!str yes`, or a tag the library does not know
        return str(node.value)
    if type(node) is ScalarInt:  # decimal as written (not 0x, 0o, 0b)
        return _decimal(node)
    if isinstance(node, int) and not isinstance(node, bool):
        return int(node)
    return node


def _decimal(node: ScalarInt) -> int:
    """A decimal integer as go-yaml v2 reads it: written with leading zeros, octal."""
    digits = str(abs(int(node)))
    width = getattr(node, "_width", None) or len(digits)
    if width > len(digits) and set(digits) <= set("01234567"):
        return (-1 if int(node) < 0 else 1) * int(digits, 8)
    return int(node)


def parse_with_lines(text: str, path: Path | str) -> Any:
    try:
        return _bounded_round_trip(text, path)
    except MarkedYAMLError as exc:
        raise ProblemsError([yaml_problem(exc, path)]) from None
    except ReaderError as exc:
        line: int | None = text.count("\n", 0, exc.position) + 1
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


def type_name(value: Any, names: dict[type, str]) -> str | None:
    """What `names` calls the type of a parsed YAML or JSON value (None: a type it does not
    name). Keys are tried in order, so `bool` must come before `int` (True is an int)."""
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return None
