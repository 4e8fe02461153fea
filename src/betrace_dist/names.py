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


def closest(name: str, choices: list[str]) -> str:
    """', did you mean X?' or an empty string."""
    match = difflib.get_close_matches(name, choices, n=1)
    return f", did you mean '{match[0]}'?" if match else ""


#: at most ten digits: enough for every count and port the models read, and int() of a longer
#: string is refused by Python itself past 4300 digits (an internal error, not a verdict)
_NUMBER = re.compile(r"[0-9]{1,10}")


def is_number(text: str) -> bool:
    """ASCII digits only, as Go's strconv.Atoi, Helm and kubectl read a number: str.isdigit()
    also takes '²', which int() then refuses, and other scripts' digits, which it reads. At
    most ten of them (_NUMBER)."""
    return _NUMBER.fullmatch(text) is not None


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
