"""Values documentation of a Helm chart: parse `## @param` comments, generate schema and table.

Convention (Bitnami style, read from the comment block directly above each key of values.yaml):

    ## @section Backend
    ## @param backend.replicas [integer] Number of backend pods
    ## @schema {"const": 1}
    replicas: 1

- every mapping key must carry exactly one `## @param <dotted.path>` naming that very key;
- `[modifiers]` (optional, comma separated) set the type when the default does not show it:
  string, integer, number, boolean, array, object, nullable, and two kinds of open mapping:
  `map` (names to strings: labels, annotations) and `freeform` (any content: affinity);
- `## @schema {json}` lines add JSON Schema keywords (enum, const, pattern, minimum...) to the
  parameter above them; `## @section Title` starts a new table in the reference;
- single-hash comments (`# ...`) are free text for readers and are ignored.

Every other mapping is closed (`additionalProperties: false`), so a misspelled key fails
`helm install`, `helm template` and `helm lint` with the key's name.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from ..errors import Problem, ProblemsError
from ..yamlio import load_with_lines, to_plain, type_name

SCHEMA_FILE = "values.schema.json"
README_FILE = "README.md"
TABLE_START = "<!-- values:start -->"
TABLE_END = "<!-- values:end -->"
REGENERATE = "python -m betrace_dist.artefacts.chart_values {command} {chart}"

_PARAM = re.compile(r"^##\s+@param\s+(?P<path>\S+)(?:\s+\[(?P<mods>[^\]]*)\])?\s+(?P<text>\S.*)$")
_SCHEMA = re.compile(r"^##\s+@schema\s+(?P<json>\{.*\})\s*$")
_SECTION = re.compile(r"^##\s+@section\s+(?P<title>\S.*)$")
_TYPES = {"string", "integer", "number", "boolean", "array", "object"}
_MODIFIERS = _TYPES | {"nullable", "map", "freeform"}


@dataclass
class Param:
    """One documented key of values.yaml."""

    path: str
    line: int
    description: str
    default: Any
    modifiers: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    section: str = ""
    children: list[Param] = field(default_factory=list)

    @property
    def open_mapping(self) -> bool:
        return "map" in self.modifiers or "freeform" in self.modifiers

    @property
    def type_name(self) -> str:
        declared = [m for m in self.modifiers if m in _TYPES]
        if declared:
            name = declared[0]
        elif self.open_mapping:
            name = "object"
        else:
            name = _json_type(self.default) or "null"
        return f"{name}, nullable" if "nullable" in self.modifiers else name

    @property
    def shown_type(self) -> str:
        """The type the README shows: the schema's own list where `@schema` gives one."""
        declared = self.extra.get("type")
        if not isinstance(declared, list):
            return self.type_name
        listed = " or ".join(str(t) for t in declared)
        return f"{listed}, nullable" if "nullable" in self.modifiers else listed


@dataclass
class ValuesDoc:
    """The documented keys of one values.yaml, as a tree (top-level keys first)."""

    path: Path
    params: list[Param]

    def walk(self) -> list[Param]:
        out: list[Param] = []

        def visit(items: list[Param]) -> None:
            for item in items:
                out.append(item)
                visit(item.children)

        visit(self.params)
        return out


#: JSON Schema's names of the types a values file holds (bool before int: True is an int).
_JSON_TYPES: dict[type, str] = {bool: "boolean", int: "integer", float: "number", str: "string"}
_JSON_TYPES |= {list: "array", dict: "object"}


def _json_type(value: Any) -> str | None:
    return type_name(value, _JSON_TYPES)


def _comment_block(lines: list[str], key_line: int) -> list[tuple[int, str]]:
    """The contiguous comment lines right above a 1-based line, top to bottom."""
    block: list[tuple[int, str]] = []
    index = key_line - 2
    while index >= 0 and lines[index].strip().startswith("#"):
        block.append((index + 1, lines[index].strip()))
        index -= 1
    return list(reversed(block))


@dataclass
class _Reader:
    """One read of values.yaml: its lines and sections, the comment lines used, what is wrong."""

    path: Path
    lines: list[str]
    problems: list[Problem] = field(default_factory=list)
    documented_lines: set[int] = field(default_factory=set)
    used_lines: set[int] = field(default_factory=set)
    sections: list[tuple[int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sections = [
            (number, match["title"].strip())
            for number, text in enumerate(self.lines, start=1)
            if (match := _SECTION.match(text.strip()))
        ]

    def problem(self, line: int, message: str, key_path: str | None = None) -> None:
        self.problems.append(Problem(self.path, line, message, key_path))

    def section_of(self, line: int) -> str:
        return next((title for number, title in reversed(self.sections) if number < line), "")

    def visit(self, node: CommentedMap, prefix: str) -> list[Param]:
        """The documented keys of one mapping, children included."""
        return [self._read_key(node, key, prefix) for key in node]

    def _read_key(self, node: CommentedMap, key: Any, prefix: str) -> Param:
        line = node.lc.key(key)[0] + 1
        key_path = f"{prefix}{key}"
        param = self._param_of_key(self._read_comments(line), line, key_path)
        self._read_value(param, node[key], line, key_path)
        return param

    def _read_comments(self, line: int) -> list[Param]:
        """The `## @param` lines of the comment block above a key, with their `## @schema`."""
        found: list[Param] = []
        section = self.section_of(line)
        for number, text in _comment_block(self.lines, line):
            self.used_lines.add(number)
            if _SECTION.match(text):
                continue
            if match := _PARAM.match(text):
                found.append(self._read_param(match, number, line, section))
            elif match := _SCHEMA.match(text):
                self._read_schema(match, number, found)
            elif text.startswith("## @"):
                self.problem(number, f"unknown annotation: {text}")
        return found

    def _read_param(self, match: re.Match[str], number: int, line: int, section: str) -> Param:
        """One `## @param` line; each modifier must be a known one."""
        self.documented_lines.add(number)
        mods = [m.strip() for m in (match["mods"] or "").split(",") if m.strip()]
        for mod in mods:
            if mod not in _MODIFIERS:
                self.problem(
                    number,
                    f"unknown modifier [{mod}]; known: " + ", ".join(sorted(_MODIFIERS)),
                    match["path"],
                )
        return Param(match["path"], line, match["text"].strip(), None, mods, {}, section)

    def _read_schema(self, match: re.Match[str], number: int, found: list[Param]) -> None:
        """One `## @schema` line: JSON keywords for the `## @param` above it."""
        if not found:
            self.problem(number, "@schema without an @param above it")
            return
        try:
            found[-1].extra.update(json.loads(match["json"]))
        except json.JSONDecodeError as exc:
            self.problem(number, f"@schema is not JSON ({exc.msg})", found[-1].path)

    def _param_of_key(self, found: list[Param], line: int, key_path: str) -> Param:
        """The one `## @param` of a key, naming that very key."""
        if not found:
            self.problem(
                line,
                f"no documentation: add '## @param {key_path} <description>' "
                "on the line above the key",
                key_path,
            )
            return Param(key_path, line, "", None, [], {}, self.section_of(line))
        param = found[-1]
        if len(found) > 1:
            self.problem(line, f"{len(found)} @param lines above one key", key_path)
        if param.path != key_path:
            self.problem(
                line,
                f"the comment documents '{param.path}' but the key below it is '{key_path}'",
                key_path,
            )
            param.path = key_path
        return param

    def _read_value(self, param: Param, value: Any, line: int, key_path: str) -> None:
        """The default of a key: a closed mapping is read key by key; {} and null need a type."""
        param.default = to_plain(value)
        if isinstance(value, CommentedMap) and value and not param.open_mapping:
            param.children = self.visit(value, key_path + ".")
        elif isinstance(value, dict) and not value and not param.open_mapping:
            self.problem(
                line, "an empty mapping needs [map] (names to strings) or [freeform]", key_path
            )
        elif param.default is None and not param.modifiers:
            self.problem(line, "a null default needs a type, e.g. [string, nullable]", key_path)

    def stray_annotations(self) -> None:
        """`## @` lines that no key used: a `## @param` apart from its key, or an orphan."""
        for number, text in enumerate(self.lines, start=1):
            text = text.strip()
            if _PARAM.match(text) and number not in self.documented_lines:
                self.problem(number, "this @param is not directly above the key it documents")
            elif (
                text.startswith("## @")
                and number not in self.used_lines
                and not _SECTION.match(text)
            ):
                self.problem(number, f"annotation not above any key: {text}")


def parse_values(chart_dir: Path) -> ValuesDoc:
    """Read values.yaml and its `## @param` comments; raise ProblemsError on any gap."""
    path = Path(chart_dir) / "values.yaml"
    root = load_with_lines(path)
    reader = _Reader(path, path.read_text(encoding="utf-8").splitlines())
    if not isinstance(root, CommentedMap):
        raise ProblemsError([Problem(path, 1, "values.yaml is not a mapping")])
    params = reader.visit(root, "")
    reader.stray_annotations()
    if reader.problems:
        raise ProblemsError(reader.problems)
    return ValuesDoc(path, params)


def _param_schema(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"description": param.description}
    type_name = param.type_name.split(",")[0]
    schema["type"] = [type_name, "null"] if "nullable" in param.modifiers else type_name
    if "map" in param.modifiers:
        schema["additionalProperties"] = {"type": "string"}
    elif "freeform" in param.modifiers:
        pass
    elif type_name == "object":
        schema["properties"] = {c.path.rsplit(".", 1)[-1]: _param_schema(c) for c in param.children}
        schema["additionalProperties"] = False
    elif type_name == "array" and param.default:
        item_type = _json_type(param.default[0])
        if item_type in {"string", "integer", "number", "boolean"}:
            schema["items"] = {"type": item_type}
    schema.update(param.extra)
    return schema


#: Keys of the schema that values.yaml must not have: a parent chart's `condition:
#: betrace.enabled` sets `enabled`, which the closed schema would refuse, while a default in
#: values.yaml would resolve that condition to true over the parent's `tags` (Helm reads the
#: condition first, from values that include the subchart's defaults).
SCHEMA_ONLY: dict[str, Any] = {
    "enabled": {
        "description": "Read by a parent chart's condition (dependencies[].condition, such as "
        "betrace.enabled), which decides whether the parent installs this chart; this chart "
        "itself ignores it (false given to this chart alone turns nothing off) and gives it no "
        "default, so that the parent's tags decide when it is unset",
        "type": "boolean",
    }
}


def build_schema(doc: ValuesDoc) -> dict[str, Any]:
    """JSON Schema (draft-07, which Helm 3.8+ and Helm 4 both read) of the documented values,
    and the SCHEMA_ONLY keys."""
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Values of the BeTrace Helm chart",
        "description": "Generated from the comments of values.yaml by "
        + REGENERATE.format(command="schema", chart="helm/betrace")
        + "; do not edit by hand.",
        "type": "object",
        "properties": {p.path: _param_schema(p) for p in doc.params} | SCHEMA_ONLY,
        "additionalProperties": False,
    }


def schema_text(doc: ValuesDoc) -> str:
    return json.dumps(build_schema(doc), indent=2, ensure_ascii=False) + "\n"


def _cell(text: str) -> str:
    """Code-span text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _prose(text: str) -> str:
    """Prose safe inside a Markdown table cell (no raw HTML from <placeholders>)."""
    return _cell(html.escape(text, quote=False))


def _default_cell(param: Param) -> str:
    if param.children:
        return ""
    text = json.dumps(param.default, ensure_ascii=False)
    return f"`{_cell(text)}`"


def render_table(doc: ValuesDoc) -> str:
    """Markdown reference of every key: one table per `@section`."""
    out: list[str] = []
    current: str | None = None
    for param in doc.walk():
        if param.section != current:
            current = param.section
            if out:
                out.append("")
            if current:
                out += [f"### {current}", ""]
            out += ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
        extra = ""
        for keyword in ("enum", "const", "pattern", "minimum", "maximum"):
            if keyword in param.extra:
                value = param.extra[keyword]
                shown = value if isinstance(value, str) else json.dumps(value)
                extra += f" ({keyword}: `{_cell(shown)}`)"
        out.append(
            f"| `{param.path}` | {param.shown_type} | {_default_cell(param)} | "
            f"{_prose(param.description)}{extra} |"
        )
        if param.path == "global":  # the other key a parent chart sets, beside it
            out += [
                f"| `{key}` | {schema['type']} | (none) | {_prose(schema['description'])} |"
                for key, schema in SCHEMA_ONLY.items()
            ]
    return "\n".join(out) + "\n"


def readme_with_table(readme: str, table: str, path: Path) -> str:
    """The README text with the table placed between the values markers."""
    start, end = readme.find(TABLE_START), readme.find(TABLE_END)
    if start < 0 or end < start:
        raise ProblemsError(
            [Problem(path, None, f"markers {TABLE_START} and {TABLE_END} not found (in order)")]
        )
    return readme[: start + len(TABLE_START)] + "\n\n" + table + "\n" + readme[end:]


def stale_files(chart_dir: Path) -> list[str]:
    """Generated files that differ from what values.yaml says, each with the command to fix it."""
    chart_dir = Path(chart_dir)
    doc = parse_values(chart_dir)
    out: list[str] = []
    schema_path = chart_dir / SCHEMA_FILE
    current = schema_path.read_text(encoding="utf-8") if schema_path.is_file() else ""
    if current != schema_text(doc):
        out.append(
            f"{schema_path} is out of date with values.yaml; run "
            + REGENERATE.format(command="schema", chart=chart_dir)
        )
    readme_path = chart_dir / README_FILE
    readme = readme_path.read_text(encoding="utf-8") if readme_path.is_file() else ""
    try:
        expected = readme_with_table(readme, render_table(doc), readme_path)
    except ProblemsError as exc:
        out.append(str(exc))
    else:
        if readme != expected:
            out.append(
                f"the values table in {readme_path} is out of date with values.yaml; run "
                + REGENERATE.format(command="readme", chart=chart_dir)
            )
    return out


#: Lengths the values schema holds a rule's fields to, and the backend's limit each one is
#: (releases.yaml backend.limits): a rule the schema lets through the backend also takes.
RULE_FIELD_LIMITS = {"name": "rule_name"}


def limit_problems(doc: ValuesDoc, limits: dict[str, int]) -> list[str]:
    """`values.yaml:LINE: ...` where a rule field's maxLength in the schema is not the backend's
    limit for it (`limits`: releases.yaml backend.limits, by name)."""
    out = []
    for param in doc.walk():
        if param.path != "backend.rules":
            continue
        fields = param.extra.get("items", {}).get("properties", {})
        for name, limit in RULE_FIELD_LIMITS.items():
            found = fields.get(name, {}).get("maxLength")
            if found != limits[limit]:
                out.append(
                    f"{doc.path}:{param.line}: backend.rules[].{name} has maxLength {found}, "
                    f"but the backend's limit is {limits[limit]} (releases.yaml backend.limits "
                    f"{limit})"
                )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m betrace_dist.artefacts.chart_values",
        description="Generate values.schema.json and the values table from values.yaml comments.",
    )
    parser.add_argument(
        "command",
        choices=["schema", "table", "readme", "check"],
        help="schema: write values.schema.json; table: print the Markdown table; "
        "readme: write the table into README.md; check: fail if anything is stale",
    )
    parser.add_argument("chart", type=Path, help="chart directory, e.g. helm/betrace")
    args = parser.parse_args(argv)
    try:
        doc = parse_values(args.chart)
        if args.command == "schema":
            (args.chart / SCHEMA_FILE).write_text(schema_text(doc), encoding="utf-8")
        elif args.command == "table":
            sys.stdout.write(render_table(doc))
        elif args.command == "readme":
            readme_path = args.chart / README_FILE
            text = readme_path.read_text(encoding="utf-8")
            readme_path.write_text(
                readme_with_table(text, render_table(doc), readme_path), encoding="utf-8"
            )
        else:
            stale = stale_files(args.chart)
            for line in stale:
                print(line, file=sys.stderr)
            return 1 if stale else 0
    except ProblemsError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
