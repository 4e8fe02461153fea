"""A small secrets scan over the files the repository publishes.

It looks for what leaks in practice: private key blocks, the token shapes of AWS, GitHub, GitLab
and Slack, and long random-looking values assigned to names such as password, secret, token or
key. It is deliberately plain (regular expressions and an entropy threshold), so every finding
is explainable; it cannot know that a low-entropy word such as `hunter2` is a real password.

Values that only refer to a secret are not secrets: expressions (`${{ secrets.X }}`, `${VAR}`,
`$(openssl rand -hex 32)`), templates (`{{ .Values.x }}`), placeholders (`<token>`, `changeme`,
`example`), names of Kubernetes objects (`betrace-signature-key-credentials`) and file paths
(`ci/gitops-values.yaml`); a value in Markdown's backticks is read as a quoted one. A line that
must hold a secret-shaped string on purpose carries `secrets-scan: allow <reason>`.
"""

from __future__ import annotations

import math
import re
import subprocess
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

#: The marker that lets one line through; a reason must follow it.
ALLOW_MARKER = "secrets-scan: allow"
#: Files larger than this are not text anyone reviews; they are reported, never skipped silently.
MAX_BYTES = 2 * 1024 * 1024

#: (rule, pattern): shapes that are secrets wherever they appear.
TOKEN_SHAPES: list[tuple[str, re.Pattern[str]]] = [
    (
        "private key",
        re.compile(
            r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"
        ),
    ),
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b")),
    (
        "GitHub token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})\b"),
    ),
    (
        "JSON Web Token",
        re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    ),
    ("GitLab token", re.compile(r"\bgl(?:pat|dt|rt|ptt|cbt)-[A-Za-z0-9_-]{20,}\b")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b")),
    (
        "Slack webhook",
        re.compile(r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{16,}"),
    ),
]

_NAME = (
    r"(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key"
    r"|signature[_-]?key|client[_-]?secret|credentials?)"
)
#: NAME = value, NAME: value, "NAME": "value", --name=value; the name may be part of a longer one.
#: A name starts where a run of name characters starts (the lookbehind): tried from inside a
#: run too, each start scanned the rest of the run again, quadratic in a long line.
_ASSIGNMENT = re.compile(
    rf"""(?ix)
    (?<![A-Za-z0-9_.-])(?P<name>[A-Za-z0-9_.-]*{_NAME}[A-Za-z0-9_.-]*)
    ["']?\s*(?::|=|:=)\s*
    (?P<value>"[^"]*"|'[^']*'|`[^`]*`|[^\s,;#]+)
    """
)
#: A value that only names or points at a secret: an expression, a template, a placeholder.
_REFERENCE = re.compile(
    r"""(?ix)
    ^(?:\$|<|%|@|\*{3}|\.\.\.|/|~/|\./|file:|env:|secretKeyRef)
    | \$\(|\$\{|\{\{
    | changeme|change-me|example|placeholder|dummy|redacted|not-a-secret|your[_-]|xxxx
    """
)
#: A value made of lowercase words: an object's or a key's name, a file path; not a random string.
_WORDS = re.compile(r"^[a-z]+[0-9]*(?:[-_./][a-z]+[0-9]*)*$")
#: An unquoted value that is code: a call, a container, or a dotted name (`self.password`).
_CODE = re.compile(r"[()\[\]{}\"']|^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")
#: Hex or base64 text at least this long and this random counts as a secret in an assignment.
MIN_LENGTH = 16
MIN_ENTROPY = 3.5  # bits per character; English words sit near 3, random base64 near 5


@dataclass(frozen=True)
class Finding:
    """One secret-shaped string, at one place; the value is shown redacted."""

    path: str
    line: int
    rule: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.excerpt}"


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    if not value:
        return 0.0
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def redact(value: str) -> str:
    """Enough of a value to find it again, never enough to use it."""
    return value[:4] + "…" if len(value) > 6 else "…"


def looks_random(value: str) -> bool:
    """A long value of mixed characters with high entropy: what a generated secret looks like."""
    if len(value) < MIN_LENGTH or _REFERENCE.search(value) or _WORDS.match(value):
        return False
    if " " in value:
        return False  # prose, not a token
    classes = sum(
        bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]")
    )
    return classes >= 2 and entropy(value) >= MIN_ENTROPY


def scan_text(text: str, path: str) -> Iterator[Finding]:
    """Every finding in one file's text."""
    for number, line in enumerate(text.splitlines(), 1):
        if ALLOW_MARKER in line and line.split(ALLOW_MARKER, 1)[1].strip():
            continue
        shaped = False
        for rule, pattern in TOKEN_SHAPES:
            for match in pattern.finditer(line):
                shown = match.group(0) if rule == "private key" else redact(match.group(0))
                shaped = True
                yield Finding(path, number, rule, shown)
        if shaped:
            continue  # the line is reported already, by the more precise rule
        for match in _ASSIGNMENT.finditer(line):
            raw = match["value"]
            quoted = raw[:1] in "\"'`" and raw[-1:] == raw[:1] and len(raw) > 1
            if not quoted and _CODE.search(raw):
                continue
            value = raw[1:-1] if quoted else raw
            if looks_random(value):
                yield Finding(
                    path,
                    number,
                    "high-entropy value assigned to a secret name",
                    f"{match['name']} = {redact(value)}",
                )


def published_files(root: Path) -> list[str]:
    """The files git tracks (relative paths): what a commit publishes."""
    done = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return sorted({name for name in done.stdout.split("\0") if name})


def scan(root: Path, names: Iterable[str] | None = None) -> list[Finding]:
    """Every finding in the published files under `root` (or the named files)."""
    found: list[Finding] = []
    for name in published_files(root) if names is None else names:
        path = root / name
        if not path.is_file() or path.is_symlink():
            continue  # deleted in the work tree, or a link whose target is scanned itself
        data = path.read_bytes()
        if len(data) > MAX_BYTES:
            found.append(Finding(name, 1, "too large to scan", f"{len(data)} bytes"))
            continue
        if b"\0" in data[:8192]:
            continue  # binary: images and archives hold no reviewable text
        found += scan_text(data.decode("utf-8", errors="replace"), name)
    return found
