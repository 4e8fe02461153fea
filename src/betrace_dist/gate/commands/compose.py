"""`docker`: the real Compose binary validates the project the reader is in (the services, ports
and programs a command names must exist); `docker pull`, `docker build` and `docker push` are
models.

There is no Docker daemon here, so nothing is built, pulled or pushed. `docker build` is checked
against the Dockerfile in the page's sandbox: the file and the context directory must exist, the
`--target` must be a stage of it and every `--build-arg` an ARG it declares (Docker itself only
warns about an unused build arg); the tags it names are recorded, with their target where the
Dockerfile is the project's (docker/Dockerfile, the same bytes): only its targets say what an
image runs. `docker push` must push a tag built earlier on the page. Whether the build succeeds
(the network, the base images, the upstream source) and whether the registry accepts the push
are not checked.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ... import REPO_ROOT, backend_env, yamlio
from ...artefacts import dockerfiles
from ...artefacts.compose import (
    IMAGE_CONTENTS,
    ROLE,
    SERVICE_IMAGES,
    ComposeError,
    backend_service_problem,
    compose_binary,
    expected_build_args,
    is_backend_service,
    service_role,
)
from ...errors import ProblemsError
from ...names import BETRACE_IMAGES, closest, is_number
from ...release import ReleaseData
from ..data_volume import data_file_problem
from ..session import VARIABLE_NAME, CommandError, Invocation, Session
from ..shellwords import SUBSTITUTED
from ..world import Listener, World, listing
from .flags import CommandLine, accepted
from .flags import options as flag_table
from .git import checkout_of

_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
_OVERRIDES = tuple(name.replace(".y", ".override.y") for name in _FILES)
#: `docker compose` subcommands whose positionals are all services of the project (Compose
#: v5.6.1 refuses one the project lacks: "no such service: NAME", exit 1)
_SERVICE_ARGS = {
    "up",
    "build",
    "config",
    "down",
    "push",
    "watch",
    "start",
    "stop",
    "restart",
    "logs",
    "pull",
    "ps",
    "rm",
    "kill",
    "create",
    "top",
    "images",
    "pause",
    "unpause",
}
_KNOWN = _SERVICE_ARGS | {
    "exec",
    "run",
    "ls",
    "version",
    "events",
    "port",
    "cp",
    "wait",
}


def docker(inv: Invocation) -> None:
    sub = inv.argv[1] if len(inv.argv) > 1 else ""
    handler = _DOCKER.get(sub)
    if handler is None:
        raise CommandError(
            f"docker {sub}: only `docker {' / '.join(_DOCKER)}` are modelled"
            f"{closest(sub, list(_DOCKER))}"
        )
    handler(inv, inv.argv[2:])


def _pull(inv: Invocation, args: list[str]) -> None:
    if not args:
        raise CommandError("docker pull: name an image")
    data = inv.session.release
    known = [data.image_ref(n) for n in BETRACE_IMAGES]
    known += [
        getattr(data.current.observability, k).ref
        for k in ("grafana", "tempo", "loki", "prometheus", "pyroscope", "otel_collector")
    ]
    if args[0] not in known:
        raise CommandError(
            f"docker pull: '{args[0]}' is not an image of this release{closest(args[0], known)}"
        )


#: `docker build` options the model reads (no Docker binary here lists the rest in its --help)
_BUILD_VALUE = frozenset(
    {"-t", "--tag", "--target", "--build-arg", "-f", "--file", "--platform", "--build-context"}
)
_BUILD_SWITCH = frozenset({"--pull", "--no-cache", "-q", "--quiet"})


@dataclass
class _Build:
    context: str
    tags: list[str] = field(default_factory=list)
    target: str | None = None
    build_args: list[str] = field(default_factory=list)
    file: str | None = None
    contexts: list[str] = field(default_factory=list)  # --build-context NAME=PATH


def build_options(args: list[str]) -> _Build:
    """The options of a `docker build` command line (the words after `build`), split as Docker
    splits them."""
    line = CommandLine(args, _BUILD_VALUE)
    for name, _ in line.flags:
        if name not in _BUILD_VALUE | _BUILD_SWITCH:
            modelled = ", ".join(sorted(_BUILD_VALUE | _BUILD_SWITCH))
            raise CommandError(f"docker build: option '{name}' is not modelled ({modelled})")
    missing = line.missing_value()
    if missing is not None:
        raise CommandError(f"docker build: {missing} needs a value")
    if len(line.positional) != 1:
        raise CommandError("docker build: give exactly one context directory, such as `docker/`")
    return _Build(
        context=line.positional[0],
        tags=line.all("-t", "--tag"),
        target=line.get("--target"),
        build_args=line.all("--build-arg"),
        file=line.get("-f", "--file"),
        contexts=line.all("--build-context"),
    )


# Blanks are spaces and tabs, never newlines: `^\s*` under re.M retried every start across all
# the blank lines that follow, quadratic in a page's Dockerfile (one C call the processor
# budget cannot interrupt: 240,000 blank lines took 12 minutes).
#: Resolved projects a page keeps (each a parsed configuration): enough for a guide's stacks.
RESOLVED_KEPT = 16


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


_STAGE = re.compile(
    r"^[ \t]*FROM[ \t]+(?:--\S+[ \t]+)*\S+[ \t]+AS[ \t]+(\S+)[ \t\r]*$", re.I | re.M
)
_ARG = re.compile(r"^[ \t]*ARG[ \t]+(.+)$", re.I | re.M)


def _within_the_clone(session: Session, name: str, what: str) -> None:
    """A folder a command in one of the page's clones names lies in that clone: the page's
    clone is made inside the sandbox's own copy of the project, so a path leading out of it
    (`../patches`) finds the project there, where the reader has nothing of it."""
    working = checkout_of(session)
    if working is not None and checkout_of(session, session.path(name)) != working:
        raise CommandError(
            f"docker build: {what} leads out of the clone '{working[0].name}' the page works "
            "in: the reader's machine has nothing of the project there"
        )


def _dockerfile(inv: Invocation, build: _Build) -> tuple[Path, str]:
    session = inv.session
    _within_the_clone(session, build.context, f"the context '{build.context}'")
    if build.file:
        _within_the_clone(session, build.file, f"the Dockerfile '{build.file}'")
    context = session.where(build.context)
    if not context.is_dir():
        raise CommandError(
            f"docker build: the context '{build.context}' is no directory at this point of the page"
        )
    # Docker reads -f relative to the current directory, and Dockerfile in the context without it
    dockerfile = (
        session.where(build.file) if build.file else session.beneath(context / "Dockerfile", "read")
    )
    if not dockerfile.is_file():
        raise CommandError(
            f"docker build: there is no Dockerfile '{session.reader_path(dockerfile)}' at this "
            "point of the page"
        )
    return dockerfile, session.read(str(dockerfile))


def _build(inv: Invocation, args: list[str]) -> None:
    build = build_options(args)
    given_env = inv.session.exported_env() | inv.session.assignments(inv.command)
    if given_env.get("DOCKER_BUILDKIT", "").lower() in ("0", "false"):
        raise CommandError(
            "docker build: DOCKER_BUILDKIT=0 builds with the legacy builder, which has no named "
            "build contexts and no ADD of a Git URL: the project's Dockerfile needs BuildKit"
        )
    dockerfile, text = _dockerfile(inv, build)
    where = inv.session.reader_path(dockerfile)
    stages = [s.lower() for s in _STAGE.findall(text)]
    if build.target is not None and build.target.lower() not in stages:
        raise CommandError(
            f"docker build: '{where}' has no stage '{build.target}'"
            f"{closest(build.target, stages)}; {listing('stages', stages)}"
        )
    declared = [w.split("=", 1)[0] for line in _ARG.findall(text) for w in line.split()]
    for arg in build.build_args:
        name = arg.split("=", 1)[0]
        if name not in declared:
            raise CommandError(
                f"docker build: '{where}' declares no ARG '{name}'{closest(name, declared)}; "
                f"{listing('ARGs', sorted(set(declared)))}"
            )
    given = _given_contexts(build.contexts)
    parsed = dockerfiles.parse(dockerfile, text)  # once: both checks below read this parse
    _named_contexts(inv, build, parsed, given)
    folders = {name: inv.session.where(folder) for name, folder in given.items()}
    # a target says what it runs only in the project's Dockerfile: a stage of the page's own
    # named `backend` may run anything
    values: dict[str, str | None] = {}
    for word in build.build_args:  # NAME alone takes the value from the environment: unknown
        name, equals, value = word.partition("=")
        values[name] = value if equals else None
    projects = parsed if inv.session.is_projects(dockerfile, PROJECT_DOCKERFILE) else None
    ours = _projects_build(inv.session, projects, build.target or "", folders, values)
    for tag in build.tags:
        inv.session.world.build(tag, (build.target or "").lower() if ours else None)


#: The project's Dockerfile, relative to the top of the project.
PROJECT_DOCKERFILE = "docker/Dockerfile"

#: The named build contexts of the project's Dockerfile, and the project's folder each is
#: (docker-compose.yml's additional_contexts; a test holds them together).
PROJECT_CONTEXTS = {"patches": "patches"}


def _context_name(raw: str) -> str:
    """A named context as buildx keys it: a reference in its familiar form (`patches:latest`
    and `docker.io/library/patches` are `patches`), lower case only (ParseContextNames in
    docker/buildx's build options, read there, not run)."""
    if raw != raw.lower():
        raise CommandError(f"docker build: the build context name '{raw}' must be lowercase")
    name = raw.removesuffix(":latest")
    for registry in ("index.docker.io/", "docker.io/"):  # Docker Hub, named or not
        name = name.removeprefix(registry)
    return name.removeprefix("library/")


def _given_contexts(words: list[str]) -> dict[str, str]:
    """`--build-context NAME=VALUE` words: NAME (as buildx keys it) to VALUE, the last of a
    name winning."""
    out: dict[str, str] = {}
    for word in words:
        if "=" not in word:
            raise CommandError(f"docker build: --build-context {word}: expected NAME=VALUE")
        name, _, value = word.partition("=")
        out[_context_name(name)] = value
    return out


def _projects_build(
    session: Session,
    parsed: dockerfiles.Dockerfile | None,
    target: str,
    contexts: dict[str, Path],
    args: dict[str, str | None],
) -> bool:
    """True where a build runs what the project's image of its target runs: the project's
    Dockerfile (`parsed`, which the caller has found to be the project's file; None where it
    is not); as each named context the target uses, the project's folder (another `patches`
    folder builds upstream with other patches than the live backend's); and no build arg but
    the release's own values (another BETRACE_COMMIT is other code)."""
    if parsed is None:
        return False
    needed = dockerfiles.named_contexts(parsed, target or (parsed.stages[-1].name or ""))
    expected = expected_build_args(session.release)
    # a context the target does not read as one may still replace a stage or a FROM image of
    # that name (Docker's --build-context documentation): only the needed ones are allowed
    return (
        set(contexts) <= set(needed)
        and all(
            name in PROJECT_CONTEXTS
            and name in contexts
            and session.is_projects(contexts[name], PROJECT_CONTEXTS[name])
            for name in needed
        )
        and all(expected.get(name) == value for name, value in args.items())
    )


def _named_contexts(
    inv: Invocation, build: _Build, parsed: dockerfiles.Dockerfile, given: dict[str, str]
) -> None:
    """Every named context the target of the `parsed` Dockerfile needs is given
    (`--build-context NAME=DIR`), and each given directory exists: without one, BuildKit
    looks for an image called NAME."""
    target = build.target or (parsed.stages[-1].name if parsed.stages else "")
    where = inv.session.reader_path(parsed.path)
    for name, used in sorted(dockerfiles.named_contexts(parsed, target).items()):
        line = used.rsplit(":", 1)[-1]
        if name not in given:
            raise CommandError(
                f"docker build: target {target} needs the build context '{name}' ({where}:{line}):"
                f" add --build-context {name}=<dir>"
            )
        _within_the_clone(inv.session, given[name], f"--build-context {name}={given[name]}")
        if not inv.session.where(given[name]).is_dir():
            raise CommandError(
                f"docker build: --build-context {name}={given[name]}: no such directory at this "
                "point of the page"
            )


def _push(inv: Invocation, args: list[str]) -> None:
    refs = [a for a in args if not a.startswith("-")]
    if len(refs) != 1:
        raise CommandError("docker push: name one image, with its tag")
    built = list(inv.session.world.images)
    if not inv.session.world.built(refs[0]):
        raise CommandError(
            f"docker push: '{refs[0]}' was not built earlier on this page{closest(refs[0], built)}"
            f"; {listing('built', built)}"
        )
    inv.session.world.push(refs[0])


def docker_compose_v1(inv: Invocation) -> None:
    raise CommandError("docker-compose is Compose v1, which is end-of-life: write `docker compose`")


def _project(
    inv: Invocation, files: list[str], env_file: str | None, name: str | None = None
) -> tuple[Path, dict[str, Any]]:
    """The project Compose resolves: from every `-f` file in order, or without one from the
    default file of the working folder and its override file, as Compose finds them; named by
    `-p` when given (else by COMPOSE_PROJECT_NAME, the file's `name`, or its folder: Compose
    says which, in the `name` it prints)."""
    session = inv.session
    if files:
        paths = [session.where(name) for name in files]
        missing = next((p for p in paths if not p.is_file()), None)
        if missing is not None:
            raise CommandError(
                f"there is no Compose file '{session.reader_path(missing)}' at this point of "
                "the page"
            )
        compose_file = paths[0]
    else:
        # each looked at only inside the sandbox (a name may be a link the page planted)
        defaults = [session.beneath(session.cwd / name, "read") for name in _FILES]
        compose_file = next((f for f in defaults if f.is_file()), defaults[-1])
        overrides = [session.beneath(session.cwd / name, "read") for name in _OVERRIDES]
        paths = [compose_file, *(f for f in overrides if f.is_file())]
    if not compose_file.is_file():
        raise CommandError(
            f"there is no Compose file in '{session.reader_path(session.cwd)}' at this point of "
            "the page"
        )
    env_path = session.where(env_file) if env_file else compose_file.parent / ".env"
    env_path = session.beneath(env_path, "read")
    # the gate reads it itself: only a file of the page's (never /proc/self/environ, a host file)
    lines = session.read(str(env_path)).splitlines() if env_path.is_file() else []
    # Variables the page exported, and those it sets for this command alone, override .env, as
    # they do for the real `docker compose`; a plain assignment before stays in the shell.
    given = session.exported_env() | session.assignments(inv.command)
    lines += [f"{k}={v}" for k, v in given.items()]
    env_text = "\n".join(lines) + "\n"
    # A page runs many compose commands on the same project: Compose resolves it once per
    # distinct (files, their texts, environment) -- `config` reads nothing else of this stack;
    # the result is copied, never shared. The .env it gets is written in the sandbox's TMPDIR.
    # Keyed by digests, not the texts (up to 16 MiB each); at most RESOLVED_KEPT kept per page.
    digests = tuple(_digest(session.read(str(path))) for path in paths)
    key = (*map(str, paths), *digests, _digest(env_text), name or "")
    named = paths if files else []  # no -f: Compose finds the file and its override itself
    options = [w for f in named for w in ("-f", str(f))] + (["-p", name] if name else [])
    if key not in session.resolved:
        while len(session.resolved) >= RESOLVED_KEPT:
            del session.resolved[next(iter(session.resolved))]
        session.resolved[key] = _resolve(session, compose_file, options, env_text)
    found = session.resolved[key]
    if isinstance(found, ComposeError):
        reason = str(found).split(": ", 1)[-1]
        raise CommandError(
            f"Compose rejects the project in '{session.reader_path(compose_file.parent)}': {reason}"
        )
    file_lines = session.read(str(env_path)).splitlines() if env_path.is_file() else []
    _settings_used(session, (paths, options, env_text), env_path, file_lines, found)
    return compose_file, copy.deepcopy(found)


#: a variable's name in a .env file, and the prefixes of the variables Compose reads itself
_COMPOSE_OWN = ("COMPOSE_", "DOCKER_", "BUILDKIT_")


def _settings_used(
    session: Session,
    resolving: tuple[list[Path], list[str], str],
    env_path: Path,
    lines: list[str],
    project: dict[str, Any],
) -> None:
    """A variable of the project's .env changes something only where the Compose files
    interpolate it (`${NAME}`) or a service takes it into its environment (`env_file`):
    Compose reads .env for interpolation, and "a container's environment is not set until
    there's an explicit entry in the service configuration" (Docker's Compose documentation,
    "Set environment variables within your container's environment"). Compose's own settings
    (COMPOSE_*, DOCKER_*, BUILDKIT_*) are left out: Compose reads them itself. Found in the
    files' text first, then asked of Compose itself (`config --variables`, in the jail). A value
    with a command substitution is refused too: Compose runs no command in .env, so the
    variable holds the text `$(...)` (real Compose v5.6.1's `config` prints it so)."""
    paths, options, env_text = resolving
    for line in lines:
        name, _, value = line.partition("=")
        if not line.lstrip().startswith("#") and ("$(" in value or "`" in value):
            raise CommandError(
                f"{session.reader_path(env_path)}: {name.strip()} is the text {value.strip()!r}: "
                "Compose runs no command in .env, so the variable holds that text; write the "
                "value itself (a heredoc whose delimiter is quoted, <<'EOF', runs nothing either)"
            )
    names = [line.partition("=")[0].removeprefix("export ").strip() for line in lines]
    given = [n for n in names if VARIABLE_NAME.fullmatch(n) and not n.startswith(_COMPOSE_OWN)]
    services = (project.get("services") or {}).values()
    taken = {str(k) for svc in services for k in dict(svc.get("environment") or {})}
    # a .env value may use an earlier variable of the file (compose-go's dotenv expands it)
    values = [line.partition("=")[2] for line in lines if not line.lstrip().startswith("#")]
    texts = "\n".join([*(session.read(str(p)) for p in paths), *values])
    unused = [
        n for n in given if n not in taken and not re.search(rf"\$\{{?{n}(?![A-Za-z0-9_])", texts)
    ]
    if unused:
        unused = [n for n in unused if n not in _variables(session, options, env_text)]
    if unused:
        raise CommandError(
            f"{session.reader_path(env_path)}: {unused[0]} is set, but no Compose file of the "
            "project uses it (no ${...} of it, and no service takes it in with env_file): "
            "Compose passes no variable of .env to a container by itself, so it changes nothing"
        )


def _variables(session: Session, options: list[str], env_text: str) -> set[str]:
    """The variables Compose interpolates in the project (`config --variables`), asked in the
    page's jail; empty when Compose fails (the project's own resolution said why)."""
    scratch = session.scratch()
    try:
        env = session.write_scratch(scratch, "compose.env", env_text)
        argv = [compose_binary(), *options, "--env-file", str(env)]
        done = session.process([*argv, "config", "--variables", "--format", "json"])
    finally:
        session.sandbox.remove(scratch)
    try:
        found = json.loads(done.stdout) if done.returncode == 0 else {}
    except ValueError:
        found = {}
    return {str(k) for k in found} if isinstance(found, dict) else set()


def _resolve(
    session: Session, compose_file: Path, options: list[str], env_text: str
) -> dict[str, Any] | ComposeError:
    """`docker compose config` of a page's project, run in the page's jail: a Compose file can
    name files to read and remote `include`s, so it gets the page's walls like any command."""
    scratch = session.scratch()  # made by descriptor: never where a link of the page leads
    try:
        env = session.write_scratch(scratch, "compose.env", env_text)
        argv = [compose_binary(), *options, "--env-file", str(env)]
        done = session.process([*argv, "config", "--format", "json"])
    finally:
        session.sandbox.remove(scratch)
    if done.returncode != 0:
        return ComposeError(f"{compose_file}: {done.stderr.strip()}")
    try:
        project: dict[str, Any] = json.loads(done.stdout)
    except ValueError as exc:
        return ComposeError(f"{compose_file}: Compose printed no project ({exc})")
    return project


#: `docker compose` subcommands whose first positional is a service and the rest a command run
#: in its container
_COMMAND_AFTER_SERVICE = ("exec", "run")


@dataclass
class ComposeLine:
    """`docker compose [OPTIONS] SUBCOMMAND [ARGS]`: Compose's own options, the subcommand's."""

    options: CommandLine
    sub: str
    args: CommandLine

    @property
    def files(self) -> list[str]:
        return [f for f in self.options.all("-f", "--file") if f]


def compose_line(args: list[str]) -> ComposeLine:
    """The words after `docker compose`, split as Compose splits them: every option must be one
    the real Compose lists in its help (for the subcommand, in the subcommand's help)."""
    binary = compose_binary()
    options = CommandLine(args, flag_table(binary), sub_arity=1, verbatim_after=0)
    for name, _ in options.flags:
        if name not in accepted(binary):
            raise CommandError(f"docker compose: unknown option '{name}'")
    if not options.sub:
        raise CommandError("docker compose: no subcommand")
    sub = options.sub[0]
    if sub not in _KNOWN:
        raise CommandError(
            f"docker compose: unknown subcommand '{sub}'{closest(sub, sorted(_KNOWN))}"
        )
    after = 1 if sub in _COMMAND_AFTER_SERVICE else None
    line = CommandLine(options.positional, flag_table(binary, sub), verbatim_after=after)
    for name, _ in line.flags:
        if name not in accepted(binary, sub):
            raise CommandError(f"docker compose {sub}: unknown option '{name}'")
    return ComposeLine(options, sub, line)


def compose(inv: Invocation, args: list[str]) -> None:
    """`docker compose ...`: the services it names exist in the project Compose resolves; `up`
    publishes their ports in the page's world, `down` takes them away."""
    line = compose_line(args)
    sub, positional = line.sub, line.args.positional
    files, env_file = line.files, line.options.get("--env-file")
    name = line.options.get("-p", "--project-name")
    compose_file, project = _project(inv, files, env_file, str(name) if name else None)
    services: dict[str, Any] = project.get("services", {})
    _mark_roles(inv.session, services)
    _arguments(sub, positional)
    named = _named_services(sub, positional)
    for name in named:
        if name not in services:
            raise CommandError(_no_service(sub, name, list(services)))
    if sub == "cp":
        _cp_path(inv.session, positional, services)
    _external_networks(inv.session.world, project, line)
    _unjoined_networks(inv.session, compose_file, project, line)
    _loopback_backend_urls(services, inv.session.release)
    _checked_by_compose(inv, args, sub)
    if sub in ("cp", "port"):
        named = []  # they change nothing in the world
    # a project is its name, as Compose knows it: the same name in two folders is one project
    key = str(project.get("name") or compose_file.parent)
    if not line.options.on("--dry-run"):  # --dry-run prints what it would do, and does nothing
        _apply(inv, line, key, project, named)
    if (
        sub in ("logs", "ps", "exec", "stop", "top", "pause", "kill")
        and key not in inv.session.world.compose_projects
    ):
        raise CommandError(
            f"docker compose {sub}: the stack in "
            f"'{inv.session.reader_path(compose_file.parent)}' was not started earlier on this page"
        )
    _is_running(inv.session.world, line, key)
    if sub in _COMMAND_AFTER_SERVICE and len(positional) > 1:
        _program_exists(positional[0], services[positional[0]], positional[1], inv.session)
    if (sub == "logs" and line.args.on("-f", "--follow")) or sub in ("watch", "events"):
        inv.never_returns(f"`docker compose {sub}` streams until stopped: it runs")


#: subcommands that talk to the Docker daemon: Compose checks what it can of their arguments
#: (an option's value, `--rmi everything`) before it connects, and fails to connect here
_DAEMON_SUBCOMMANDS = frozenset({
    "up", "down", "start", "stop", "restart", "rm", "kill", "pause", "unpause", "create",
    "logs", "ps", "top", "exec", "run", "cp", "port", "pull", "push", "images", "events",
})  # fmt: skip
#: where Compose is told the daemon is: a socket that is not there, in the page's jail
_NO_DAEMON = "unix:///nonexistent/docker.sock"
_CONNECT_FAILED = "failed to connect to the docker API"


def _checked_by_compose(inv: Invocation, args: list[str], sub: str) -> None:
    """The page's own command run by the real Compose in the page's jail, with a daemon that
    is not there: what Compose refuses before it connects (a value of an option it checks
    itself, `invalid value for --rmi: "everything"`) is refused here in its words; it never
    gets further than the failed connection (no Docker daemon is ever reached)."""
    if sub not in _DAEMON_SUBCOMMANDS:
        return
    env = inv.session.program_env() | {"DOCKER_HOST": _NO_DAEMON}
    env.pop("DOCKER_CONTEXT", None)
    done = inv.session.process([compose_binary(), *args], env)
    said = f"{done.stderr}\n{done.stdout}".strip()
    if done.returncode == 0 or _CONNECT_FAILED in said or SUBSTITUTED in said:
        return
    # Compose prints its error last, after any warning about the file
    raise CommandError(f"docker compose {sub}: Compose refuses it: {said.splitlines()[-1]}")


def _external_networks(world: World, project: dict[str, Any], line: ComposeLine) -> None:
    """A network the project declares `external: true` is one Compose looks up and does not
    make: at `up` it fails without it ("network ... declared as external, but could not be
    found": Compose v2's words as its users report them; not run here, which has no Docker
    daemon). On a page it is the network of a stack the
    page started (Compose makes a project's networks at `up` and removes them at `down`); the
    network's name is the one `docker compose config` resolves. `config` and `down` of such a
    project need no network, but the file must name one that a stack on this page makes."""
    made = {
        str(net.get("name"))
        for other in world.compose_projects.values()
        for net in (other.get("networks") or {}).values()
        if isinstance(net, dict) and not net.get("external")
    }
    for key, net in (project.get("networks") or {}).items():
        name = str(net.get("name") or key) if isinstance(net, dict) else str(key)
        if isinstance(net, dict) and net.get("external") and name not in made:
            raise CommandError(
                f"docker compose {line.sub}: network {key} is external, named '{name}', which no "
                f"stack started on this page makes ({listing('networks', sorted(made))}): "
                f'Compose does not create it, and `up` fails with "network {name} declared as '
                'external, but could not be found"'
            )


def _unjoined_networks(
    session: Session, compose_file: Path, project: dict[str, Any], line: ComposeLine
) -> None:
    """An external network the file declares and no service joins: Compose leaves it out of
    the project (`config` prints it no more), and the services stay on the project's own
    network, where another stack's services are not reached by name. The declaration says the
    file meant to join it."""
    try:  # the page's file, read beneath the sandbox and bounded
        raw = yamlio.safe_load(session.read(str(compose_file)), compose_file.name)
    except ProblemsError:
        return  # Compose itself reports a file it cannot read
    declared = raw.get("networks") if isinstance(raw, dict) else None
    kept = project.get("networks") or {}
    for key, net in (declared or {}).items() if isinstance(declared, dict) else ():
        if isinstance(net, dict) and net.get("external") and key not in kept:
            name = net.get("name") or key
            raise CommandError(
                f"docker compose {line.sub}: network {key} ('{name}') is external, but no "
                "service joins it: Compose leaves it out, and the services stay on this "
                f"project's own network; list it under the services' networks"
            )


def _loopback_backend_urls(services: dict[str, Any], data: ReleaseData) -> None:
    """A service's variable that sends to the backend's port on localhost: inside a container,
    localhost is the container itself, never the backend's (a published port is the host's)."""
    ports = {p.port for p in data.current.backend.ports.values()}
    for name, service in services.items():
        # network_mode host, service:X or container:X: localhost is the host's, or another's
        if is_backend_service(service, data) or service.get("network_mode"):
            continue
        for variable, value in (service.get("environment") or {}).items():
            host, port = backend_env.host_and_port(value) if isinstance(value, str) else ("", None)
            if port in ports and backend_env.is_loopback(host):
                raise CommandError(
                    f"services.{name}.environment.{variable}: '{value}': inside the "
                    f"container, {host} is the container itself, not the backend; name the "
                    f"backend's service on a network both join (http://backend:{port})"
                )


#: what Docker puts into every container at its start, whatever its image
_RUNTIME_PATHS = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/proc", "/sys", "/dev")


def _cp_path(session: Session, positional: list[str], services: dict[str, Any]) -> None:
    """`docker compose cp` to or from the backend's container: its image holds only what the
    project's Dockerfile copies into its `backend` stage (FROM scratch), so a path is there
    only under those, under the service's volumes, or where Docker puts files at the start
    (_RUNTIME_PATHS). A relative path is under the stage's WORKDIR."""
    name = _cp_service(positional)
    if service_role(services.get(name) or {}, session.release) != "backend":
        return
    word = next(w for w in positional if w.startswith(f"{name}:"))
    stage = _backend_stage()
    if stage is None:
        return
    workdir = ([i.args.strip() for i in stage.all("WORKDIR")] or ["/"])[-1]
    path = posixpath.normpath(posixpath.join(workdir, word.split(":", 1)[1] or "."))
    copied = [i.args.split()[-1].rstrip("/") for i in stage.all("COPY")]
    volumes = services[name].get("volumes") or []
    mounted = [str(v.get("target")) for v in volumes if isinstance(v, dict) and v.get("target")]
    roots = [*copied, *mounted, *_RUNTIME_PATHS]
    if not any(path == root or path.startswith(root + "/") for root in roots):
        raise CommandError(
            f"docker compose cp: the backend's container has no '{path}': its image holds only "
            f"{', '.join(copied)} (docker/Dockerfile's backend stage, FROM scratch), and its "
            f"volumes are at {', '.join(mounted) or 'nothing'}"
        )
    data_dir = dict(services[name].get("environment") or {}).get("BETRACE_DATA_DIR")
    if isinstance(data_dir, str) and data_dir.startswith("/"):
        reading = word is positional[0]
        problem = data_file_problem(path, posixpath.normpath(data_dir), session.release, reading)
        if problem is not None:
            raise CommandError(f"docker compose cp: {problem}")


@functools.cache
def _backend_stage() -> dockerfiles.Stage | None:
    """The `backend` stage of the project's Dockerfile (the checkout's, read with the gate's
    rights: the image the models know, not one a page wrote); read once a run, as the checkout
    does not change under it."""
    parsed = dockerfiles.parse(REPO_ROOT / PROJECT_DOCKERFILE)
    return next((s for s in parsed.stages if s.name.lower() == "backend"), None)


def _is_running(world: World, line: ComposeLine, key: str) -> None:
    """`exec` and `port` look the service's container up among the running ones, and fail
    without one (getSpecifiedContainer, pkg/compose/containers.go of docker/compose v5.5.0,
    called from exec.go and port.go with all=false); the Docker daemon refuses an exec in a
    paused one (its errExecPaused). `cp` looks among all the service's containers, stopped
    ones too, and fails without any (listContainersTargetedForCopy, pkg/compose/cp.go); with
    --all, a one-off container of `run` counts too, which the model does not keep: it is not
    checked then."""
    sub, positional = line.sub, line.args.positional
    if sub in ("exec", "port") and positional:
        service = positional[0]
        if service not in world.running.get(key, set()):
            raise CommandError(f'service "{service}" is not running')
        if sub == "exec" and service in world.paused.get(key, set()):
            raise CommandError(
                f'the container of service "{service}" is paused, and the Docker daemon refuses'
                ' the exec: "Container ... is paused, unpause the container before exec"'
            )
    elif sub == "cp" and not line.args.on("--all"):
        service = _cp_service(positional)
        if service not in world.containers.get(key, set()):
            raise CommandError(f'no container found for service "{service}"')


def _arguments(sub: str, positional: list[str]) -> None:
    """How many arguments `exec` and `port` take, and port's PRIVATE_PORT, as Compose v5.6.1
    checks them before it looks anything up (run here: `exec` wants a SERVICE and a COMMAND,
    `port` a SERVICE and at most one port, a 16-bit number read by strconv.ParseUint)."""
    if sub == "exec" and len(positional) < 2:
        raise CommandError(
            f"docker compose exec: requires at least 2 arg(s), only received {len(positional)}"
        )
    if sub != "port":
        return
    if not 1 <= len(positional) <= 2:
        raise CommandError(
            f"docker compose port: accepts between 1 and 2 arg(s), received {len(positional)}"
        )
    if len(positional) == 2 and not (is_number(positional[1]) and int(positional[1]) < 65536):
        reason = "value out of range" if is_number(positional[1]) else "invalid syntax"
        raise CommandError(
            f'docker compose port: strconv.ParseUint: parsing "{positional[1]}": {reason}'
        )


def _named_services(sub: str, positional: list[str]) -> list[str]:
    """The services a command line names, by the shape of its subcommand's arguments: `exec`
    and `run` SERVICE COMMAND..., `port` SERVICE PRIVATE_PORT, `cp` SERVICE:PATH on one side
    (_cp_service), the others services only."""
    if sub in _COMMAND_AFTER_SERVICE or sub == "port":
        return positional[:1]
    if sub == "cp":
        return [_cp_service(positional)]
    return positional if sub in _SERVICE_ARGS else []


def _cp_service(positional: list[str]) -> str:
    """The service of `cp SERVICE:SRC DEST` or `cp SRC SERVICE:DEST`. A word names a service
    where it has a colon, is not absolute and does not start with `.` (splitCpArg); one on
    each side, or none, is refused (copy, pkg/compose/cp.go of docker/compose v5.5.0); Compose
    takes exactly two words, neither empty (cmd/compose/cp.go; its messages, v5.6.1 run here)."""
    if len(positional) != 2:
        raise CommandError("docker compose cp: 'docker compose cp' requires 2 arguments")
    for side, word in zip(("source", "destination"), positional, strict=True):
        if not word:
            raise CommandError(f"docker compose cp: {side} can not be empty")
    sides = [
        word.split(":", 1)[0]
        for word in positional
        if ":" in word and not word.startswith(("/", "."))
    ]
    if len(sides) == 2:
        raise CommandError("docker compose cp: copying between services is not supported")
    if not sides:
        raise CommandError("docker compose cp: unknown copy direction")
    return sides[0]


def _no_service(sub: str, name: str, services: list[str]) -> str:
    """What Compose says of a service the project lacks: the commands that resolve the project
    refuse the name; `exec` and `port` look its container up (getSpecifiedContainer,
    pkg/compose/containers.go), `cp` its containers (pkg/compose/cp.go, both of docker/compose
    v5.5.0), and find none."""
    hint = f"{closest(name, services)}; {listing('services', services)}"
    if sub in ("exec", "port"):
        return f'service "{name}" is not running: the project has no such service{hint}'
    if sub == "cp":
        return f'no container found for service "{name}": the project has no such service{hint}'
    return f"no such service: {name}{hint}"


def _apply(
    inv: Invocation, line: ComposeLine, key: str, project: dict[str, Any], named: list[str]
) -> None:
    """What a command changes in the page's world: services started, stopped or removed."""
    sub, services, world = line.sub, project.get("services", {}), inv.session.world
    if sub in ("up", "start", "restart", "create", "unpause"):
        _starting(inv, line, key, project, named)
    data = inv.session.release
    touched = _dependents(services, named) if sub == "down" else set(named or services)
    runs_backend = any(  # another project's stop or down leaves the live backend be
        is_backend_service(services[n], data) for n in touched
    )
    if sub in ("restart", "stop", "kill", "pause", "down") and inv.session.live and runs_backend:
        inv.session.live.stop()  # a restart starts again, with the rules it kept, on next use
    if sub in ("stop", "kill", "pause"):  # nothing answers on their ports until start/unpause
        _unpublish(world, key, touched)
    _track_pauses(world, sub, key, touched)
    _track_containers(world, line, key, project, named)
    if sub == "down":
        _unpublish(world, key, touched if named else None)
        if not named:  # `down SERVICE...` leaves the project's other services be
            world.compose_projects.pop(key, None)
            world.containers.pop(key, None)
            world.running.pop(key, None)
        if line.args.has("-v", "--volumes") and inv.session.live and runs_backend:
            inv.session.live.forget()  # the named volume with the rules is gone


def _dependents(services: dict[str, Any], named: list[str]) -> set[str]:
    """What `down` removes: every service without `named` ones, else the named ones and every
    service that depends on them, however far (WithRootNodesAndDown in down, pkg/compose/
    down.go of docker/compose v5.5.0)."""
    if not named:
        return set(services)
    gone, todo = set(named), list(named)
    while todo:
        name = todo.pop()
        for other, service in services.items():
            if other not in gone and name in (service.get("depends_on") or {}):
                gone.add(other)
                todo.append(other)
    return gone


def _track_containers(
    world: World, line: ComposeLine, key: str, project: dict[str, Any], named: list[str]
) -> None:
    """Which services of the project have a container (World.containers) and which of those
    run (World.running), as each command leaves them (pkg/compose of docker/compose v5.5.0):
    `up` makes and starts the named services and what they depend on (all of them without a
    name; --no-start makes them only); `create` makes them; `start` and `restart` start the
    ones that have a container (start.go, restart.go: stopped containers are listed too);
    `stop` and `kill` stop them; `rm` removes the stopped ones (with --stop, every one it
    names); `down` removes them and what depends on them; `run` starts what the service
    depends on, unless --no-deps, and with --detach its own container, which runs on."""
    sub, flags, services = line.sub, line.args, project.get("services", {})
    made = world.containers.setdefault(key, set())
    running = world.running.setdefault(key, set())
    chosen = set(named or services)
    if sub in ("up", "create"):
        deps = sub == "up" and not flags.on("--no-deps")
        chosen = set(_with_dependencies(services, named, deps)) if named else set(services)
        made |= chosen
        if sub == "up" and not flags.on("--no-start"):
            running |= chosen
    elif sub == "run" and named:
        needed = set(_with_dependencies(services, named, not flags.on("--no-deps"))) - set(named)
        made |= needed
        running |= needed | (set(named) if flags.on("-d", "--detach") else set())
        world.compose_projects.setdefault(key, project)  # the project has containers now
    elif sub in ("start", "restart"):
        running |= chosen & made
    removed = _removed(sub, flags, services, named, running)
    if sub in ("stop", "kill"):
        running -= chosen
    made -= removed
    running -= removed


def _removed(
    sub: str, flags: CommandLine, services: dict[str, Any], named: list[str], running: set[str]
) -> set[str]:
    """The services whose containers a command removes: `down` those it names and what depends
    on them (all without a name); `rm` the stopped ones it names (all without a name), with
    --stop the running ones too (remove.go, down.go of docker/compose v5.5.0)."""
    if sub == "down":
        return _dependents(services, named)
    if sub == "rm":
        chosen = set(named or services)
        return chosen if flags.on("-s", "--stop") else chosen - running
    return set()


def _track_pauses(world: World, sub: str, key: str, services: set[str]) -> None:
    """Which services of the project are paused: `pause` pauses them, and any command that
    stops, starts or removes their containers leaves them not paused (unpause reads it)."""
    paused = world.paused.setdefault(key, set())
    if sub == "pause":
        paused |= services
    elif sub in ("unpause", "stop", "kill", "down", "up", "start", "restart", "create", "rm"):
        paused -= services


def _with_dependencies(services: dict[str, Any], named: list[str], deps: bool) -> list[str]:
    """The named services and, with `deps`, every service they depend on (depends_on)."""
    found, todo = [], list(named)
    while todo:
        name = todo.pop()
        if name in found or name not in services:
            continue
        found.append(name)
        if deps:
            todo += list(services[name].get("depends_on") or {})
    return found


def _starting(
    inv: Invocation, line: ComposeLine, key: str, project: dict[str, Any], named: list[str]
) -> None:
    """up, start, restart, create, unpause: which services run now, with which configuration.
    `create` and `up --no-start` make containers that do not run (nothing answers yet); `up
    SERVICE` starts what it depends on too, unless --no-deps. Only `up` and `create` make
    containers from the files as they are now: start, restart and unpause run the containers
    made before, with their configuration (and their ports)."""
    sub, services = line.sub, project.get("services", {})
    running = sub != "create" and not line.args.has("--no-start")
    deps = sub == "up" and not line.args.has("--no-deps")
    started = _with_dependencies(services, named, deps) if named else list(services)
    made = inv.session.world.compose_projects.get(key)
    recreate = sub in ("up", "create") and not line.args.has("--no-recreate")
    if not recreate and made is not None:
        project = made
    flags = line.args
    ready = _ready(services, flags.on("--wait") and sub in ("up", "start"))
    if sub == "unpause":  # its processes went on where they were: they listen already; it
        # unpauses the containers that run, paused ones among them, never a stopped one
        # (getContainers without stopped ones, pkg/compose/pause.go of docker/compose v5.5.0)
        ready = set(services)
        started = [s for s in started if s in inv.session.world.paused.get(key, set())]
    elif sub == "up" and not flags.has("--force-recreate"):
        ready |= _unchanged(inv.session.world, key, project, made)
    elif sub == "start":  # it starts the containers that do not run only (startService's
        # isNotRunning filter, pkg/compose/convergence.go of docker/compose v5.5.0)
        ready |= _answering(inv.session.world, key)
    _start(inv.session, key, project, started if running else [], recreate, ready)
    if sub == "up" and not (flags.on("-d", "--detach") or flags.on("--wait", "--no-start")):
        # attached to the containers' logs until they stop; --wait sets detached, --no-start
        # returns before attaching (cmd/compose/up.go of Compose v5.5.0)
        inv.never_returns("`docker compose up` without -d or --wait stays attached")


def _ready(services: dict[str, Any], waits: bool) -> set[str]:
    """The services that answer once the command returns: with --wait, those with a
    healthcheck, which Compose waits to see healthy; the others it waits to see running only
    (isServiceHealthy with fallbackRunning, pkg/compose/convergence.go of docker/compose
    v5.5.0), which says nothing of their ports."""
    if not waits:
        return set()
    return {name for name, service in services.items() if _has_healthcheck(service)}


def _has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck")
    if not isinstance(check, dict) or check.get("disable"):
        return False
    test = check.get("test")
    return bool(test) and test not in (["NONE"], "NONE")


def _unchanged(
    world: World, key: str, project: dict[str, Any], made: dict[str, Any] | None
) -> set[str]:
    """The services `up` leaves running as they are (their configuration unchanged, so Compose
    does not recreate their containers) and that answered already."""
    if made is None:
        return set()
    before, now = made.get("services", {}), project.get("services", {})
    answering = _answering(world, key)
    return {name for name in answering if name in now and before.get(name) == now[name]}


def _answering(world: World, key: str) -> set[str]:
    """The project's services whose published ports answer already."""
    return {
        listener.source.removeprefix("compose service ")
        for listener in world.listeners.values()
        if listener.owner == key and not listener.starting
    }


def _start(
    session: Session,
    key: str,
    project: dict[str, Any],
    started: list[str],
    recreate: bool,
    ready: set[str],
) -> None:
    """The project as started: held to the backend's and the app's rules, then its ports,
    which answer at once for the `ready` services only (the others are "container",
    Listener.starting)."""
    services: dict[str, Any] = project.get("services", {})
    problem = _stack_problem(services, session.release)
    if problem is not None:
        raise CommandError(problem)
    session.world.compose_projects[key] = project
    if recreate:  # a service made again with this configuration: its old ports are gone
        _unpublish(session.world, key, set(started))
    _publish(session.world, key, services, started, session.release)
    for listener in session.world.listeners.values():
        service = listener.source.removeprefix("compose service ")
        if listener.owner == key and service in started and service not in ready:
            listener.starting = "container"


#: What the stack's provisioning file gives the app as its backendUrl (docker/config/grafana/
#: provisioning/plugins/betrace.yaml: `backendUrl: ${BETRACE_BACKEND_URL}`, Grafana's expansion).
BACKEND_URL_VARIABLE = "BETRACE_BACKEND_URL"


def _stack_problem(services: dict[str, Any], data: ReleaseData) -> str | None:
    """What the page's project, its own files and overrides merged by Compose, gives the backend
    or Grafana wrongly: the backend's variables follow backend_env's one rule, and the app's
    backend URL the shared backendUrl rule, naming the backend service on its HTTP port."""
    for name, service in services.items():
        given = service.get("environment") or {}
        env = {k: None if v is None else str(v) for k, v in given.items()}
        if is_backend_service(service, data):
            for variable, problem in backend_env.env_problems(env, data):
                return f"services.{name}.environment.{variable} {problem}"
        url = env.get(BACKEND_URL_VARIABLE)
        if url is not None:
            wrong = backend_env.backend_url_problem(url) or backend_service_problem(
                url, services, data, name
            )
            if wrong is not None:
                return f"services.{name}.environment.{BACKEND_URL_VARIABLE}: {wrong}"
    return None


#: host addresses a published port answers `localhost` on: every interface, or loopback
_REACHED_AS_LOCALHOST = frozenset({"", "0.0.0.0", "127.0.0.1", "::", "::1"})  # noqa: S104


def _publish(
    world: World, key: str, services: dict[str, Any], started: list[str], data: ReleaseData
) -> None:
    """The ports the started services publish now answer on the host, as `localhost` where
    they are bound to every interface or to loopback, for TCP. The backend listens on the ports
    its variables name (http, grpc): a published port leading to another one reaches nothing,
    whatever the live tier (which picks the port itself) would answer. Docker refuses a host
    port another service holds."""
    for name in started:
        service = services[name]
        given = service.get("environment") or {}
        environment = {k: v for k, v in given.items() if v is not None}  # null: not set
        role = service_role(service, data)
        backend = role == "backend"
        listens = {v: k for k, v in backend_env.listening_ports(environment, data).items() if v}
        for port in service.get("ports", []):
            if not port.get("published") or port.get("protocol", "tcp") != "tcp":
                continue
            if str(port.get("host_ip") or "") not in _REACHED_AS_LOCALHOST:
                continue  # answers on that address only, never as localhost
            published, target = int(str(port["published"]).split("-")[0]), int(port["target"])
            if backend and target not in listens:
                variable: dict[str, str] = {k: p.env for k, p in data.current.backend.ports.items()}
                said = ", ".join(f"{v} ({variable[k]})" for v, k in listens.items())
                raise CommandError(
                    f"the {name} service publishes {published} to its port {target}, "
                    f"but the backend listens on {said}: nothing would answer there"
                )
            _hold(world, published, name, key)
            world.listeners[published] = Listener(
                published,
                role or f"service {name}",  # a name says nothing of what runs
                target,
                f"compose service {name}",
                {k: str(v) for k, v in environment.items()},
                key,
                role,
            )


def _hold(world: World, port: int, service: str, key: str) -> None:
    """Docker publishes a host port once: another service holding it refuses this one."""
    held = world.listeners.get(port)
    if held is not None and (held.owner, held.source) != (key, f"compose service {service}"):
        raise CommandError(
            f"port {port} is published already ({held.source}): Docker does not publish it for "
            f"the {service} service too"
        )


def _unpublish(world: World, key: str, services: set[str] | None) -> None:
    """The ports of these services of the project in `key` (None: of all its services) answer
    no more."""
    for port, listener in list(world.listeners.items()):
        if listener.owner == key and (
            services is None or listener.source.removeprefix("compose service ") in services
        ):
            del world.listeners[port]


def _mark_roles(session: Session, services: dict[str, Any]) -> None:
    """What each service runs where the page decides it (service_role reads ROLE): an image
    built on this page runs what the project's Dockerfile target it was built from runs
    (World.images: nothing known for another Dockerfile); a build of another Dockerfile, an
    inline one, or the project's without a target (its last stage, plugin-init) runs nothing
    the models know. Compose's `config` gives a build's context as an absolute path and its
    dockerfile relative to it. A ROLE the page's own file gave a service is dropped first.
    Services built from one Dockerfile share its parse (this command's, never a later one's:
    a page may change the file between commands)."""
    parsed: dict[tuple[Path, str], dockerfiles.Dockerfile] = {}
    for service in services.values():
        service.pop(ROLE, None)
        build = service.get("build")
        if isinstance(build, dict):
            inline = "dockerfile_inline" in build
            if inline or not build.get("target") or not _service_build_ours(session, build, parsed):
                service[ROLE] = None
            continue
        image = str(service.get("image") or "")
        if session.world.built(image):
            service[ROLE] = session.world.built_role(image)


def _service_build_ours(
    session: Session,
    build: dict[str, Any],
    parsed: dict[tuple[Path, str], dockerfiles.Dockerfile],
) -> bool:
    """_projects_build for a service's `build` as Compose's `config` prints it (absolute
    context, dockerfile relative to it, args resolved). `parsed` holds the Dockerfiles this
    command has parsed, by path and text; a new one is added to it."""
    dockerfile = Path(str(build.get("context") or "")) / str(build.get("dockerfile") or "")
    contexts = build.get("additional_contexts") or {}
    try:
        folders = {_context_name(str(k)): Path(str(v)) for k, v in contexts.items()}
    except CommandError:
        return False
    args = {str(k): None if v is None else str(v) for k, v in (build.get("args") or {}).items()}
    projects = _projects_dockerfile(session, dockerfile, parsed)
    return _projects_build(session, projects, str(build.get("target")), folders, args)


def _projects_dockerfile(
    session: Session, dockerfile: Path, parsed: dict[tuple[Path, str], dockerfiles.Dockerfile]
) -> dockerfiles.Dockerfile | None:
    """The page's `dockerfile` parsed where it is the project's Dockerfile (None where not),
    taken from `parsed` when this command has parsed the same path and text already."""
    if not session.is_projects(dockerfile, PROJECT_DOCKERFILE):
        return None
    key = (dockerfile, session.read(str(dockerfile)))
    if key not in parsed:
        parsed[key] = dockerfiles.parse(*key)
    return parsed[key]


def _program_exists(name: str, service: dict[str, Any], program: str, session: Session) -> None:
    """`docker compose exec|run SERVICE PROGRAM`: what the service runs (service_role, never its
    name) has the program in its image."""
    role = service_role(service, session.release)
    contents = IMAGE_CONTENTS.get(SERVICE_IMAGES.get(role or "", ""))
    problem = contents.exec_problem(name, program) if contents is not None else None
    if problem is not None:
        raise CommandError(problem)


#: `docker SUBCOMMAND` handlers
_DOCKER: dict[str, Callable[[Invocation, list[str]], None]] = {
    "compose": lambda inv, args: compose(inv, args),
    "pull": _pull,
    "build": _build,
    "push": _push,
}

MODELS = {"docker": docker, "docker-compose": docker_compose_v1}
