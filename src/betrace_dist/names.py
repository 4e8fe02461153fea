"""Names and predicates that the release model, the artefact policies, the gate and the site all
use: written once here, so that no two copies can drift apart."""

from __future__ import annotations

import difflib
import re

#: The images the project builds and publishes (docker/Dockerfile's targets, releases.yaml's
#: `images:`), in the order pages list them.
BETRACE_IMAGES = ("backend", "grafana-plugin", "plugin-init")

#: Tags that move over time, so an image pulled by one is not the image that was checked.
FLOATING_TAGS = frozenset({"latest", "stable", "main", "master", "edge", "nightly", "dev"})

#: Variable names that hold a credential: such a variable must never be given a literal value.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|(^|_)KEY$|API_KEY")
#: a variable that claims to configure BeTrace or its OpenTelemetry SDK (BETRACE_*, OTEL_*)
SETTING_VARIABLE = re.compile(r"\b(?:BETRACE|OTEL)_[A-Z0-9_]*[A-Z0-9]\b")
#: What Go's strconv.ParseBool reads as true (Go's src/strconv/atob.go): Helm's flags and the
#: Docker log driver's `compress` are read by it.
GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})


def is_floating_tag(tag: str) -> bool:
    """True for a tag that moves over time (`latest`, `main`, ...), in any letter case."""
    return tag.lower() in FLOATING_TAGS


def image_tag(image: str) -> str:
    """The tag of an image reference ('' when it has none); a digest and the registry's port
    are not tags: `reg:5000/a/b:1.0@sha256:...` -> '1.0'."""
    last = image.split("@")[0].rsplit("/", 1)[-1]
    return last.partition(":")[2]


def image_repository(image: str) -> str:
    """An image reference without its tag and digest: `reg:5000/a/b:1.0@sha256:...` ->
    'reg:5000/a/b'."""
    reference, tag = image.split("@")[0], image_tag(image)
    return reference[: -len(tag) - 1] if tag else reference


#: The role of what each of the project's build targets runs (docker/Dockerfile's targets).
TARGET_ROLES = {"backend": "backend", "grafana-plugin": "grafana"}
#: Images of others' the models know, by repository (no tag or digest), and what they run.
_OTHERS_IMAGES = {
    "grafana/grafana": "grafana",
    "docker.io/grafana/grafana": "grafana",
    "otel/opentelemetry-collector-contrib": "otel-collector",
    "docker.io/otel/opentelemetry-collector-contrib": "otel-collector",
}


def image_role(image: str, registry: str) -> str | None:
    """What an image runs, as the models know it (backend, grafana, otel-collector), or None:
    the project's images under its `registry` by their name, others' images by their
    repository. A name alone elsewhere (`someone/backend:2.0.0`) says nothing, nor does a
    container's or a service's own name."""
    repository = image_repository(image)
    if repository.startswith(registry + "/"):
        return TARGET_ROLES.get(repository[len(registry) + 1 :])
    return _OTHERS_IMAGES.get(repository)


def looks_secret(name: str) -> bool:
    """True for a variable name such as DB_PASSWORD, API_TOKEN or SIGNATURE_KEY."""
    return SECRET_NAME.search(name) is not None


def close_to(name: str, choices: list[str]) -> str | None:
    """The choice closest to `name` (difflib's measure), if one is close enough."""
    match = difflib.get_close_matches(name, choices, n=1)
    return match[0] if match else None


def closest(name: str, choices: list[str]) -> str:
    """', did you mean X?' or an empty string."""
    match = close_to(name, choices)
    return f", did you mean '{match}'?" if match else ""


#: at most ten digits: enough for every count and port the models read, and int() of a longer
#: string is refused by Python itself past 4300 digits (an internal error, not a verdict)
_NUMBER = re.compile(r"[0-9]{1,10}")


def is_number(text: str) -> bool:
    """ASCII digits only, as Go's strconv.Atoi, Helm and kubectl read a number: str.isdigit()
    also takes '²', which int() then refuses, and other scripts' digits, which it reads. At
    most ten of them (_NUMBER). Signs, prefixes and underscores, as Go reads them: go_int."""
    return _NUMBER.fullmatch(text) is not None


class GoNumberError(ValueError):
    """Go's strconv refuses a number: the reason as Go words it ("invalid syntax", "value out
    of range")."""


#: Go's base prefixes after a leading 0 (any letter case) -> the base
_GO_PREFIXES = {"b": 2, "o": 8, "x": 16}
_GO_INT64 = 2**63


def go_int(text: str, base: int = 0) -> int:
    """The int64 Go's strconv.ParseInt(text, base, 64) reads, or GoNumberError. Base 0 is how
    pflag reads an int flag (intValue.Set in spf13/pflag's int.go at v1.0.5 and v1.0.10, which
    Helm 3.11.1 and 4.1.4 build with): an optional sign, then 0b, 0o or 0x (any case) for base
    2, 8 or 16, a leading 0 alone for 8, else 10, and an underscore only between digits or
    after a prefix. Base 10 is strconv.Atoi (no prefix, no underscore; Helm's int is 64 bits).
    As ParseUint and ParseInt do in Go's src/strconv/atoi.go: a digit the base lacks, or no
    digit, is invalid syntax; past the int64 range, out of range, told as soon as the digits
    read so far overflow 64 bits (before a bad character further on); the underscores are
    checked last (underscoreOK)."""
    body = text[1:] if text[:1] in ("+", "-") else text
    digits, radix = body, base
    if base == 0:
        radix = 10
        if body[:1] == "0":
            mark = body[1:2].lower() if body[1:2].isascii() and len(body) >= 3 else ""
            prefix = _GO_PREFIXES.get(mark)
            radix, digits = (prefix, body[2:]) if prefix else (8, body[1:])
    if not body:
        raise GoNumberError("invalid syntax")
    value, underscores = 0, False
    for ch in digits:
        if ch == "_" and base == 0:
            underscores = True
            continue
        digit = int(ch, 36) if ch.isascii() and ch.isalnum() else radix
        if digit >= radix:
            raise GoNumberError("invalid syntax")
        value = value * radix + digit
        if value >= 2**64:
            raise GoNumberError("value out of range")
    if underscores and not _go_underscores_ok(body):
        raise GoNumberError("invalid syntax")
    value = -value if text[:1] == "-" else value
    if not -_GO_INT64 <= value < _GO_INT64:
        raise GoNumberError("value out of range")
    return value


def _go_underscores_ok(body: str) -> bool:
    """Go's underscoreOK, on the number past its sign: each underscore follows a digit or the
    base prefix, and a digit follows it."""
    prefixed = body[:1] == "0" and body[1:2] in ("b", "B", "o", "O", "x", "X")
    digits = "0123456789abcdefABCDEF" if body[1:2] in ("x", "X") and prefixed else "0123456789"
    saw = "0" if prefixed else "^"  # the prefix counts as a digit
    for ch in body[2:] if prefixed else body:
        if ch in digits:
            saw = "0"
        elif ch == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


#: the escapes Go's strconv.Quote writes for these characters
_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_quote(text: str) -> str:
    """`text` as Go's strconv.Quote (and so fmt's %q) writes it, as Helm and Go's errors quote
    a value: printable characters as they are, the rest escaped."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def canonical_image(ref: str) -> str:
    """An image reference as Docker resolves it, so that two spellings of one image compare
    equal: no tag and no digest means `:latest`; a first component with no `.` or `:` (and not
    `localhost`) is on Docker Hub (`docker.io/`), whose single names are under `library/`."""
    name, at, digest = ref.partition("@")
    if ":" not in name.rsplit("/", 1)[-1] and not at:
        name += ":latest"
    first = name.split("/", 1)[0]
    if "/" not in name or ("." not in first and ":" not in first and first != "localhost"):
        name = "docker.io/" + name
    name = name.replace("index.docker.io/", "docker.io/", 1)
    if name.startswith("docker.io/") and name.count("/") == 1:
        name = "docker.io/library/" + name.removeprefix("docker.io/")
    return name + at + digest


def served_name(name: str) -> str:
    """A registry path (`host[:port]/path...`) as the registry is reached: its host in lower
    case (a host is a DNS name, which ignores case: RFC 4343) and without `:443`, the port a
    registry is reached on when none is written (HTTPS's)."""
    host, slash, rest = name.partition("/")
    return f"{host.lower().removesuffix(':443')}{slash}{rest}"


def registry_image(ref: str) -> str:
    """An image as a registry serves it, so that a push and a pull of one image compare equal
    whatever their spelling: canonical_image, then served_name. Not for the local image store,
    whose tags keep the host's case and port as written."""
    return served_name(canonical_image(ref))


#: an image reference as Docker's reference grammar reads it (distribution/reference's
#: regexp.go: a name of lower-case path components under an optional domain and port, then an
#: optional tag and an optional digest)
_DOMAIN = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}(?:\.{_DOMAIN})*(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)


def image_reference_problem(ref: str) -> str | None:
    """Why `ref` is no image reference a container runtime can pull (the kubelet's
    InvalidImageName), or None."""
    if not IMAGE_REFERENCE.fullmatch(ref):
        return f"'{ref}' is no valid image reference (lower-case name, optional :tag and @digest)"
    return None
