"""Reference tables generated from the artefacts themselves: the chart's documented values, the
Compose services, ports and variables. Nothing here is typed twice."""

from __future__ import annotations

import html
import re
from functools import cache

from .. import REPO_ROOT
from ..artefacts import chart_values
from ..artefacts.compose import ENV_EXAMPLE, read_env_file
from ..artefacts.container_logs import LogLimit, amount
from . import compose_defaults
from .compose_defaults import _resolve
from .tables import cell, code, table

CHART_DIR = REPO_ROOT / "helm" / "betrace"


#: Class of the block around the chart values tables: site.css keeps each key on one line there
#: and lets the table scroll sideways on a narrow screen.
VALUES_CLASS = "betrace-values"


@cache
def chart_values_table() -> str:
    """The same table helm/betrace/README.md carries, from the values.yaml comments, in a block
    whose class lets the site style it (md_in_html renders the Markdown inside); cached for one
    build: macros.install clears it when the next build starts."""
    tables = chart_values.render_table(chart_values.parse_values(CHART_DIR))
    tables = _KEY_CELL.sub(lambda m: "| " + breakable_key(m["key"]) + " |", tables)
    return f'<div class="{VALUES_CLASS}" markdown>\n\n{tables}\n</div>\n'


#: The first cell of a row of the chart values table: a key in backticks.
_KEY_CELL = re.compile(r"^\| `(?P<key>[^`|]+)` \|", re.MULTILINE)


def breakable_key(key: str) -> str:
    """A key as code that a narrow column may break after a dot, and nowhere else."""
    parts = [html.escape(part, quote=False) for part in key.split(".")]
    return "<code>" + ".<wbr>".join(parts) + "</code>"


def compose_services_table() -> str:
    services = compose_defaults.services()
    rows = []
    for name, service in services.items():
        ports = [_resolve(str(p)) for p in service.get("ports", [])]
        rows.append(
            [
                code(name),
                code(_resolve(str(service.get("image", "")))),
                ", ".join(code(p) for p in ports) or "none (internal)",
                _logs_cell(compose_defaults.log_bound(name)),
            ]
        )
    return table(["Service", "Image", "Published (host:port:container)", "Logs kept"], rows)


def _logs_cell(bound: LogLimit) -> str:
    """'200 MB: 10 files of 20 MB (json-file)'."""
    return (
        f"{amount(bound.total_bytes)}: {bound.files} files of {amount(bound.file_bytes)} "
        f"({code(bound.driver)})"
    )


def compose_env_table() -> str:
    entries = read_env_file(ENV_EXAMPLE)
    rows = [
        [code(e.name), code(e.value) if e.value else "(empty)", cell(e.comment)]
        for e in entries.values()
    ]
    return table(["Variable", "In .env.example", "Meaning"], rows)
