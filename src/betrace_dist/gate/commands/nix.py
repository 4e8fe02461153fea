"""`nix`: the flake a command names must exist and have the output it asks for (evaluated with
real Nix, inputs replaced by the recording stand-ins of nixpkgs); remote flake references must be
the project's, at the upstream commit (or tag) the release data pins, and resolve as Nix resolves
them against the outputs of upstream's real flake (its stand-in, tests/artefacts/nix_stubs/betrace,
carries the output names of upstream's flake.nix at the pinned commit)."""

from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path
from urllib.parse import parse_qsl

from ... import REPO_ROOT, backend_env, tools
from ...artefacts.nix import EXPERIMENTAL, Nix
from ...names import closest, is_number
from ...release import ReleaseData
from .. import missing
from ..session import CommandError, Invocation, Session
from ..shellwords import SUBSTITUTED
from ..world import Listener
from . import git
from .flags import CommandLine, nix_arguments, nix_command_path, options

STUBS = REPO_ROOT / "tests" / "artefacts" / "nix_stubs"
UPSTREAM = STUBS / "betrace"
#: Upstream's flake as the flake a command names (`nix build github:...#backend`): its own lock
#: is kept and its missing dev-tools folder never read (Nix's computeLocks, read in its source,
#: not run), so that input of the stand-in is given a flake that exists.
UPSTREAM_AS_ROOT = {
    "nixpkgs": STUBS / "nixpkgs",
    "flake-utils": STUBS / "flake-utils",
    "dev-tools": STUBS / "nixpkgs",
}
#: What the Nix of the tests says when a flake takes the stand-in as an input and leaves its
#: dev-tools input as upstream declares it (tests/artefacts/nix_stubs/betrace/flake.nix).
_DEV_TOOLS_MISSING = "/nonexistent/betrace-dev-tools"
# flake-utils' default systems, which upstream's flake exports (the same names for each)
SYSTEMS = ("x86_64-linux", "aarch64-linux", "x86_64-darwin", "aarch64-darwin")
# stand-ins are built for the machine the gate runs on
_HOST = {"aarch64": "aarch64-linux", "arm64": "aarch64-linux"}.get(platform.machine(), SYSTEMS[0])
# Upstream's apps that run from a source checkout, not from the packaged program (flake.nix at
# c5f17ae4a572472e1afa62fa32a6f5fbecb1718d: `cd backend && exec go run ...`, `cd bff && exec npm
# run dev`, `nix build .#all`). `nix run <flake>#backend` picks the app before the package.
_CHECKOUT_APPS = {
    "backend": "a development script (`cd backend && go run ./cmd/betrace-backend`) that fails "
    "outside a source checkout",
    "frontend": "a development server (`cd bff && npm run dev`) that fails outside a checkout",
    "build": "`nix build .#all` in a source checkout",
    "dev": "a script that only prints how to start the services with Flox",
    "default": "upstream's `dev` app, a script that only prints how to start services with Flox",
}


def _nix(session: Session) -> Nix | None:
    """The page's Nix: its store, state and home inside the page's sandbox, every command run in
    the page's jail (a page writes the flakes it evaluates, so evaluation is untrusted)."""
    found = getattr(session, "nix", None)
    if found is None:
        nix, inst = tools.find("nix"), tools.find("nix-instantiate")
        if not nix or not inst:
            return None
        found = Nix(
            nix=nix,
            nix_instantiate=inst,
            home=session.tmp / "nix",
            runner=lambda args, env: session.process(args, env=env),
        )
        found.env["PATH"] = session.env["PATH"]
        session.nix = found  # type: ignore[attr-defined]
    return found


def _overrides(session: Session, directory: Path) -> dict[str, Path]:
    """Every input, and the inputs of BeTrace's, replaced by a stand-in: nothing may be
    fetched. Which input is which is told by what it names (its url), in whatever form the
    flake declares it: the inputs Nix reads from it, evaluated."""
    if directory == UPSTREAM:
        return dict(UPSTREAM_AS_ROOT)
    used: dict[str, Path] = {}
    for name, spec in _declared_inputs(session, directory).items():
        url = _input_url(spec)
        if url is None:  # follows another input: nothing of its own to fetch
            continue
        if url.startswith("path:."):
            # a relative path input (docker/flake.nix's patches = { url = "path:../patches"; }):
            # the same folder by its absolute path, which Nix before 2.26 needs; the page wrote
            # the path, so the kernel resolves it beneath the sandbox (one leading out is
            # refused, never looked at)
            rel = url.removeprefix("path:")
            used[name] = session.real_path(directory / rel, "read", leads_out_only=True)
            continue
        stand_in = _stand_in(url)
        if stand_in is None:
            raise CommandError(
                f"the flake's input '{name}' ({url}) cannot be fetched offline and has no "
                "stand-in here: the gate evaluates flakes with stand-ins of nixpkgs, "
                "flake-utils and BeTrace's flake only"
            )
        used[name] = stand_in
        problem = _unpinned(session.release, url) if stand_in == UPSTREAM else None
        if problem:
            raise CommandError(f"the flake's input '{name}': {problem}")
        if stand_in == UPSTREAM:  # and BeTrace's own (over a follows: the same stand-ins)
            used[f"{name}/nixpkgs"] = STUBS / "nixpkgs"
            used[f"{name}/flake-utils"] = STUBS / "flake-utils"
    return used


#: What an input's url names -> its stand-in (tests/artefacts/nix_stubs): nixpkgs (any branch,
#: from GitHub, FlakeHub, git or a GitHub tarball, or the flake registry's name), flake-utils,
#: and BeTrace's flake. A URL is compared in lower case; a registry name as written.
_STAND_INS = (
    (
        (
            "github:nixos/nixpkgs",
            "https://flakehub.com/f/nixos/nixpkgs/",
            "git+https://github.com/nixos/nixpkgs",
            "https://github.com/nixos/nixpkgs/archive/",
        ),
        ("nixpkgs", "flake:nixpkgs"),
        STUBS / "nixpkgs",
    ),
    (
        (
            "github:numtide/flake-utils",
            "https://flakehub.com/f/numtide/flake-utils/",
            "git+https://github.com/numtide/flake-utils",
        ),
        ("flake-utils", "flake:flake-utils"),
        STUBS / "flake-utils",
    ),
    (
        (
            "github:betrace-hq/betrace",
            "https://flakehub.com/f/betrace-hq/betrace/",
            "git+https://github.com/betrace-hq/betrace",
        ),
        (),
        UPSTREAM,
    ),
)


def _stand_in(url: str) -> Path | None:
    """The stand-in of what an input's url names, or None. A path with `.` or `..` in it may
    lead to another repository once Git or curl resolves it: it names nothing known."""
    path = url.split("?", 1)[0]
    if any(part in (".", "..") for part in path.split("/")):
        return None
    for urls, names, stand_in in _STAND_INS:
        if any(url == n or url.startswith(n + "/") for n in names):
            return stand_in
        if any(_names(url.lower(), prefix) for prefix in urls):
            return stand_in
    return None


def _names(url: str, prefix: str) -> bool:
    """`url` names what `prefix` does: a GitHub or FlakeHub reference with any revision after
    it, a git URL with only `.git` or a query after it, a tarball of the archive folder."""
    if not url.startswith(prefix):
        return False
    rest = url[len(prefix) :]
    if prefix.endswith("/archive/"):
        return "/" not in rest
    if prefix.startswith("git+"):
        return rest.removeprefix(".git")[:1] in ("", "?")
    return prefix.endswith("/") or rest[:1] in ("", "/", "?")


def _input_url(spec: object) -> str | None:
    """An input's url as Nix reads it: `url`, or `type`/`owner`/`repo` (github, gitlab,
    sourcehut); None for one that follows another."""
    if not isinstance(spec, dict) or "follows" in spec:
        return None
    if isinstance(spec.get("url"), str):
        return str(spec["url"])
    kind, owner, repo = (str(spec.get(k, "")) for k in ("type", "owner", "repo"))
    pinned = "&".join(f"{k}={spec[k]}" for k in ("ref", "rev") if isinstance(spec.get(k), str))
    url = f"{kind}:{owner}/{repo}" if kind and owner and repo else f"{kind}:"
    return f"{url}?{pinned}" if pinned else url  # its ref and rev, as a url's parameters


#: A flake's inputs: those it declares, and those its outputs function takes without declaring
#: them, which Nix looks up in the flake registry by their name (`flake:NAME`).
_INPUTS = (
    "{ flake }: let f = import flake; declared = f.inputs or { }; "
    "takes = if builtins.isFunction (f.outputs or null) then builtins.functionArgs f.outputs "
    'else { }; implicit = removeAttrs takes ([ "self" ] ++ builtins.attrNames declared); '
    'in declared // builtins.mapAttrs (name: _: { url = "flake:${name}"; }) implicit'
)


def _declared_inputs(session: Session, directory: Path) -> dict[str, object]:
    """The flake's inputs, as Nix reads them from its flake.nix (evaluated in the page's jail,
    its outputs function's arguments but never its body): once per page for a flake and its
    flake.nix's mtime."""
    flake = directory / "flake.nix"
    key = ("nix flake inputs", str(flake), str(session.beneath(flake, "read").stat().st_mtime))
    if key not in session.resolved:
        nix = _nix(session)
        assert nix is not None
        # the path as an argument, never in the expression's text (a folder the page named
        # may hold `${...}`)
        expr = _INPUTS
        argv = [nix.nix_instantiate, "--eval", "--strict", "--json", "--argstr", "flake"]
        argv += [str(flake), "-E", expr]
        proc = nix.run(argv)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error")]
            raise CommandError(f"Nix cannot read the inputs of {flake}: {' '.join(lines[-2:])}")
        try:
            found = json.loads(proc.stdout)
        except ValueError:  # Nix prints `inf` for an overflowing float, which is no JSON
            raise CommandError(f"the inputs of {flake} are not data Nix can print") from None
        session.resolved[key] = found if isinstance(found, dict) else {}
    return dict(session.resolved[key])


DEV_TOOLS_MESSAGE = (
    "the flake takes BeTrace as an input, whose flake declares dev-tools = path:./dev-tools, a "
    "folder its commit does not have: Nix 2.26 and later fail to lock it (known issue "
    'flake-input-dev-tools-missing); add `inputs.dev-tools.follows = "nixpkgs";` (or another '
    "input the flake has) to the betrace input"
)


def _outputs(session: Session, flake_dir: Path, stamp: float) -> dict[str, list[str]]:
    """Output names per category (packages, apps, ...) for x86_64-linux, from `nix flake show`:
    once per page for a flake (its directory and flake.nix's mtime)."""
    key = ("nix flake show", str(flake_dir), str(stamp))
    if key in session.resolved:
        return dict(session.resolved[key])
    nix = _nix(session)
    assert nix is not None
    proc = nix.flake("flake show", str(flake_dir), _overrides(session, flake_dir), "--json")
    if proc.returncode != 0:
        if _DEV_TOOLS_MISSING in proc.stderr:
            raise CommandError(DEV_TOOLS_MESSAGE)
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error")]
        raise CommandError(f"nix flake show fails on {flake_dir}: {' '.join(lines[-2:])}")
    try:
        shown = json.loads(proc.stdout)
    except ValueError:
        raise CommandError(f"nix flake show prints no JSON for {flake_dir}") from None
    out: dict[str, list[str]] = {}
    for category in ("packages", "apps", "devShells", "nixosModules", "overlays"):
        node = shown.get(category) or {}
        names = set(
            node.get("x86_64-linux", {}) if category in ("packages", "apps", "devShells") else node
        )
        out[category] = sorted(names)
    session.resolved[key] = out
    return dict(out)


def _unpinned(data: ReleaseData, ref: str) -> str | None:
    """Why a reference of BeTrace's flake (on a command line, or an input's url: `github:` or
    `git+https:`) names a revision the release data does not list for the release: a
    `github:` path's third part, or its `rev` or `ref` parameter; or names none, and follows
    upstream's default branch. None when the release data lists it."""
    owner_repo = data.project.repository.removeprefix("https://github.com/")
    flake = ref.split("#")[0]
    path, _, query = flake.partition("?")
    revs = [path[len(f"github:{owner_repo}") :].lstrip("/")] if path.startswith("github:") else []
    revs += [v.removeprefix("refs/tags/") for k, v in parse_qsl(query) if k in ("rev", "ref")]
    upstream = data.current.upstream
    listed = {upstream.commit, *([upstream.tag] if upstream.tag else [])}
    if not any(revs):
        return (
            f"'{ref}' names no revision of BeTrace: it follows upstream's default branch, "
            f"whatever it holds when locked, not the commit release {data.current.version} "
            f"pins; pin {upstream.ref}"
        )
    rev = next((r for r in revs if r and r not in listed), None)
    if rev is None:
        return None
    return (
        f"'{ref}' names {rev}, which the release data does not list for BeTrace "
        f"{data.current.version}: "
        + (
            f"pin the tag {upstream.tag} or the commit {upstream.commit}"
            if upstream.tag
            else f"upstream has no tags yet; pin the commit {upstream.commit} "
            "(releases.yaml releases[0].upstream.commit)"
        )
    )


def _remote(inv: Invocation, ref: str) -> None:
    data = inv.session.release
    upstream = data.current.upstream
    owner_repo = data.project.repository.removeprefix("https://github.com/")
    if ref.startswith("github:"):
        want = f"github:{owner_repo}"
        if not (ref == want or ref.startswith(want + "/") or ref.startswith(want + "#")):
            raise CommandError(f"'{ref}' is not BeTrace's flake; it is {want}/{upstream.ref}")
        problem = _unpinned(data, ref)
        if problem:
            raise CommandError(problem)
        return
    if ref.startswith("https://flakehub.com/f/"):
        want = f"https://flakehub.com/f/{data.project.flakehub}/"
        if not ref.startswith(want):
            raise CommandError(f"'{ref}' is not BeTrace's FlakeHub flake ({want}...)")
        return
    raise CommandError(f"the flake reference '{ref}' is not modelled")


def _resolve(sub: str, attr: str, outputs: dict[str, list[str]]) -> tuple[str, str] | None:
    """(category, name) that `nix <sub> flake#attr` picks, in Nix's order, or None.

    `nix run` tries apps.<system>.attr, then packages.<system>.attr; `nix build` and
    `nix shell` packages; `nix develop` devShells, then packages. A full path
    (`packages.x86_64-linux.backend`) is taken as written. Read in Nix's source, the same at
    2.8.0 and 2.35.2 (getDefaultFlakeAttrPathPrefixes in src/nix/run.cc, src/nix/develop.cc
    and src/libcmd/installables.cc); their last resort, legacyPackages, and the old names
    (defaultPackage, defaultApp, devShell) are not modelled."""
    parts = attr.split(".")
    if len(parts) == 3 and parts[0] in outputs:
        category, system, name = parts
        return (category, name) if system in SYSTEMS and name in outputs[category] else None
    order = {"run": ["apps", "packages"], "develop": ["devShells", "packages"]}
    for category in order.get(sub, ["packages"]):
        if attr in outputs[category]:
            return category, attr
    return None


def _check_upstream_attr(inv: Invocation, sub: str, ref: str, attr: str) -> tuple[str, str]:
    """`nix run github:betrace-hq/betrace/<rev>#backend`: resolved against upstream's outputs."""
    _require_nix(inv.session)
    outputs = _outputs(inv.session, UPSTREAM, (UPSTREAM / "flake.nix").stat().st_mtime)
    found = _resolve(sub, attr or "default", outputs)
    if found is None:
        category = {"run": "apps", "develop": "devShells"}.get(sub, "packages")
        raise CommandError(
            f"BeTrace's flake has no {category[:-1]} '{attr}'{closest(attr, outputs[category])}; "
            f"packages: {', '.join(outputs['packages'])}"
        )
    category, name = found
    if category == "packages":
        _builds_in_the_sandbox(sub, name)
    if category == "apps" and name in _CHECKOUT_APPS:
        flake = ref.partition("#")[0]
        raise CommandError(
            f"Nix picks apps before packages, so this runs upstream's apps.<system>.{name}, "
            f"{_CHECKOUT_APPS[name]}; run the package instead: "
            f"nix {sub} {flake}#packages.<system>.{name}"
        )
    return found


#: upstream's packages that build its Grafana plugin, whose build runs a plain `npm install`
#: (grafana-betrace-app/flake.nix, buildPhase, at the pinned commit): without network in Nix's
#: sandbox it cannot fetch the dependencies, so these fail to build. The images of
#: nix/containers.nix take the plugin into the grafana image (its line 282) and join that image
#: into `all` (583-592). Read in upstream's source, not run (the stand-in flake builds them).
_NO_SANDBOX_BUILD = {
    "grafana-plugin": "the plugin itself",
    "container-grafana": "the Grafana image, which copies the plugin in",
    "containers-all": "every image, the Grafana image with the plugin among them",
}


def _builds_in_the_sandbox(sub: str, name: str) -> None:
    """A package that cannot build in Nix's sandbox, refused where the command builds it."""
    if sub in ("build", "run", "shell", "profile") and name in _NO_SANDBOX_BUILD:
        raise CommandError(
            f"upstream's packages.<system>.{name} ({_NO_SANDBOX_BUILD[name]}) does not build: "
            "the plugin's build runs a plain `npm install` (grafana-betrace-app/flake.nix at the "
            "pinned commit), which cannot download anything in Nix's sandbox, so the build "
            "fails; the plugin ships in the plugin-init image built with Docker"
        )


def _require_nix(session: Session) -> None:
    if _nix(session) is None:
        # like any missing tool: the block is skipped with the reason, a failure in CI
        missing.require("nix", CommandError)


def command_line(args: list[str]) -> CommandLine:
    """The words after `nix` up to a `--` (what follows goes to the program `nix run` starts),
    split as Nix splits them: its flags, and how many words each takes, are the ones Nix
    describes for the subcommand (flags.nix_options); a flag it does not have is refused."""
    binary = missing.require("nix", CommandError)
    args = args[: args.index("--")] if "--" in args else args
    # `nix shell|develop ... -c|--command PROGRAM ARGS...` takes every word after it as the
    # program and its arguments, never installables ("Command and arguments to be executed",
    # `nix shell --help`; `nix __dump-args` gives it no fixed arity)
    at = next((i for i, w in enumerate(args) if w in ("-c", "--command")), None)
    if at is not None:
        program = " ".join(args[at + 1 :]) or "$SHELL"
        raise CommandError(
            f"`{args[at]} {program}`: a program run inside the Nix environment is not "
            "modelled, so what it does could not be checked; `nix run` starts the backend"
        )
    first = CommandLine(args, options(binary), 3).sub
    path, unknown = nix_command_path(binary, first)
    if unknown is not None:
        raise CommandError(unknown)
    known = options(binary, *path)
    line = CommandLine(args, known, len(path))
    for name, _ in line.flags:
        if name not in known.names:
            command = " ".join(["nix", *path])
            hint = closest(name, sorted(known.names))
            raise CommandError(f"{command} has no flag '{name}'{hint}")
    return line


#: the setting of Nix's experimental features, and the one that adds to it
_FEATURES, _EXTRA = "experimental-features", "extra-experimental-features"
#: how a flake reference begins (a registry name has `#`; a store path is no flake)
_FLAKE_REF = ("github:", "gitlab:", "flake:", "path:", "git+", "https://", ".", "~")


def _flake_ref(word: str) -> bool:
    if word.startswith("/"):
        return not word.startswith("/nix/store/")
    return "#" in word or word.startswith(_FLAKE_REF)


def _features_needed(line: CommandLine) -> list[str]:
    """The experimental features a command line of `nix` needs, in Nix's words: every
    subcommand of the new command line needs nix-command, and one that reads a flake needs
    flakes (Nix 2.8 here: "experimental Nix feature 'flakes' is disabled"): `nix flake`, or a
    subcommand that takes installables (as `nix __dump-args` labels its words) given a flake
    reference, or none and no --expr or --file (Nix then takes `.`, a flake)."""
    binary = missing.require("nix", CommandError)
    sub, refs = line.sub, line.positional
    labels = nix_arguments(binary, *sub)
    installing = bool({"installable", "installables"} & set(labels))
    default = installing and not refs and not line.has("--expr", "--file", "-f")
    flake = sub[:1] == ["flake"] or (installing and any(_flake_ref(r) for r in refs))
    return ["nix-command", *(["flakes"] if flake or default else [])]


def _config_features(config: str) -> tuple[set[str] | None, set[str]]:
    """What a NIX_CONFIG text sets experimental-features to (None: not set), and adds."""
    found: set[str] | None = None
    extra: set[str] = set()
    for raw in config.splitlines():
        name, eq, value = raw.partition("=")
        if eq and name.strip() == _FEATURES:
            found = set(value.split())
        elif eq and name.strip() == _EXTRA:
            extra |= set(value.split())
    return found, extra


def _settings(line: CommandLine) -> list[tuple[str, str]]:
    """(setting, value) of each way the command line sets a feature setting, in its order:
    `--NAME VALUE` (or `=VALUE`), and `--option NAME VALUE` (its two words, as split by
    CommandLine from Nix's own description of its flags)."""
    out: list[tuple[str, str]] = []
    for flag, value in line.flags:
        if flag == "--option":
            name, _, value = (value or "").partition(" ")
        else:
            name = flag.removeprefix("--")
        if name in (_FEATURES, _EXTRA):
            out.append((name, value or ""))
    return out


def _features_given(inv: Invocation, line: CommandLine) -> None:
    """A command line that sets Nix's experimental features (a flag, `--option`, NIX_CONFIG
    given to it) must turn on those it needs: the flag is for a Nix whose nix.conf enables
    none, which refuses it otherwise. `--experimental-features` replaces, the extra form adds,
    in the order written. A line that sets none relies on nix.conf, as the pages'
    prerequisites say, and is not judged."""
    env = inv.session.exported_env() | inv.session.assignments(inv.command)
    base, extra = _config_features(env.get("NIX_CONFIG", ""))
    settings = _settings(line)
    if base is None and not extra and not settings:
        return
    turned_on = (base or set()) | extra
    for name, value in settings:
        turned_on = set(value.split()) if name == _FEATURES else turned_on | set(value.split())
    lacking = [f for f in _features_needed(line) if f not in turned_on]
    if lacking:
        raise CommandError(
            f"nix {' '.join(line.sub)} needs the experimental feature(s) {', '.join(lacking)}, "
            "which its command line does not turn on: a Nix that does not enable them in "
            f"nix.conf refuses it (\"experimental Nix feature '{lacking[0]}' is disabled\")"
        )


def nix(inv: Invocation) -> str | None:
    line = command_line(inv.argv[1:])
    sub, refs = line.sub, line.positional
    if line.has("--help", "--version"):
        # Nix prints the subcommand's manual or its version once it has read the line, and
        # exits: nothing is evaluated, built or run (src/nix/main.cc; observed with Nix 2.8.0:
        # `nix run FLAKE --help` and `--version` exit 0 on a flake whose evaluation aborts).
        # A word after `--` is the program's, never Nix's (command_line stops there).
        return None
    _features_given(inv, line)
    if line.has("--expr") and sub == ["eval"]:
        return _eval_expr(inv)
    if (sub and sub[0] in ("hash", "store", "path-info", "log", "profile")) or sub == [
        "flake",
        "metadata",
    ]:
        for ref in refs:
            if ref.startswith(("github:", "https://flakehub.com")):
                _remote(inv, ref)
        return None
    if not sub or sub[0] not in ("run", "build", "flake", "develop", "shell", "eval"):
        raise CommandError(f"nix {' '.join(sub)} is not modelled")
    _installables(inv, line)
    return None


def _installables(inv: Invocation, line: CommandLine) -> None:
    """Each flake the command names, checked: `nix build` leaves its result links, and `nix
    run` of the backend's program starts the backend."""
    sub = line.sub[0]
    link = None if line.has("--no-link") else line.get("-o", "--out-link") or "result"
    for index, ref in enumerate(_flake_refs(line)):
        built = _installable(inv, sub, _substituted(inv, ref))
        if built is None:
            continue
        if sub == "build" and link is not None:
            _out_link(inv, link if index == 0 else f"{link}-{index}", *built)
        if sub == "run" and _starts_backend(inv, *built):
            words = inv.argv[1:]
            after = words[words.index("--") + 1 :] if "--" in words else []
            _backend_runs(inv, f"nix run {ref}", line.positional[1:] + after)


def _ignored_arguments(words: list[str], binary: str) -> None:
    """Refuses arguments given to the backend: it reads none, so a page that passes `--port
    9090` tells its reader of a setting that changes nothing.

    backend/cmd/betrace-backend/main.go at c5f17ae4a572472e1afa62fa32a6f5fbecb1718d reads no
    argument (it imports no flag package and never looks at os.Args; its settings are BETRACE_*
    variables), so `nix run FLAKE#backend -- --help`, or any word after `--` or after the
    flake reference, starts it serving all the same; observed on the built backend
    (`betrace-backend --help` logged its listeners and answered /v1/health until stopped)."""
    if words:
        raise CommandError(
            f"{binary} reads no command-line arguments ('{' '.join(words)}' would change "
            "nothing: it starts and serves as without them); its settings are BETRACE_* "
            "variables, see the backend's configuration reference"
        )


def _backend_runs(inv: Invocation, source: str, arguments: list[str]) -> None:
    """`nix run` started the backend: it answers on its ports (_ignored_arguments: none given).

    It serves in the foreground and never returns: the block stops there, and a command after
    it in the same block never runs (the guides end the block with it and go on in the next
    one, another terminal, or start it with `&`)."""
    _ignored_arguments(arguments, inv.session.release.current.backend.binary)
    _backend_listens(inv, _checked_env(inv), source, "build")
    inv.never_returns("`nix run` starts the backend, which serves")


#: The program `nix run` starts: an app's program, else a package's meta.mainProgram, else its
#: pname, else its name without the version (src/nix/app.cc, the same at Nix 2.8.0 and 2.35.2),
#: as a path.
_PROGRAM = (
    'x: builtins.unsafeDiscardStringContext (if (x.type or "") == "app" then x.program else '
    '"${x}/bin/${x.meta.mainProgram or x.pname or (builtins.parseDrvName x.name).name}")'
)


def _starts_backend(inv: Invocation, directory: Path, attr: str, inputs: dict[str, Path]) -> bool:
    """`nix run` of it starts the backend: the program it runs, evaluated for real with the
    stand-in inputs, is the backend's binary in the output of BeTrace's backend package (the
    stand-in's, as the Nix guide runs it), whatever the output's name: `default` may be it, and
    a page's own `backend` may be something else. A wrapper of the page's that starts the
    backend, and a patched build of it (an overrideAttrs), are not recognised: no guide runs
    one with `nix run`, and such a page is refused (nothing answers)."""
    if attr.count(".") != 2:  # as written: resolved as `nix run` resolves it
        outputs = _outputs(inv.session, directory, (directory / "flake.nix").stat().st_mtime)
        found = _resolve("run", attr, outputs)
        if found is None:
            return False
        attr = f"{found[0]}.{_HOST}.{found[1]}"
    nix = _nix(inv.session)
    assert nix is not None
    proc = nix.flake("eval --raw", f"{directory}#{attr}", inputs, "--apply", _PROGRAM)
    expected = _backend_program(inv.session)
    return bool(proc.returncode == 0 and expected and proc.stdout.strip() == expected)


def _backend_program(session: Session) -> str:
    """Where the backend's binary is in the output of the stand-in of BeTrace's backend package
    (evaluated once per page), or "" where it cannot be evaluated."""
    key = ("nix backend program",)
    if key not in session.resolved:
        nix = _nix(session)
        assert nix is not None
        ref = f"{UPSTREAM}#packages.{_HOST}.backend.outPath"
        proc = nix.flake("eval --raw", ref, dict(UPSTREAM_AS_ROOT))
        binary = session.release.current.backend.binary
        out = proc.stdout.strip() if proc.returncode == 0 else ""
        session.resolved[key] = f"{out}/bin/{binary}" if out else ""
    return str(session.resolved[key])


def _flake_refs(line: CommandLine) -> list[str]:
    """The flakes a command names: its positional words, or the working folder's flake; for
    `nix flake update [INPUT...]` the words are inputs to update, and the flake is --flake's;
    for `nix run INSTALLABLE ARGS...` the first word alone, the rest are the program's
    arguments (its synopsis; observed with Nix 2.8.0: `nix run FLAKE foo bar` ran the app with
    `foo bar`)."""
    if line.sub[:2] == ["flake", "update"]:
        return [str(line.get("--flake") or ".")]
    if line.sub[:1] == ["run"]:
        return line.positional[:1] or ["."]
    return line.positional or ["."]


def _eval_expr(inv: Invocation) -> str:
    """`nix eval --expr EXPR` (no flake): evaluated for real, with the page's flags, in its jail.
    `--impure --raw --expr builtins.currentSystem` prints this machine's system."""
    _require_nix(inv.session)
    nix = _nix(inv.session)
    assert nix is not None
    proc = nix.run([nix.nix, *EXPERIMENTAL, *inv.argv[1:]])
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error")]
        hint = (
            " (builtins.currentSystem needs --impure: pure evaluation does not see the machine)"
            if "'currentSystem' missing" in proc.stderr
            else ""
        )
        raise CommandError(f"nix eval fails: {' '.join(lines[-2:]) or proc.stderr.strip()}{hint}")
    return str(proc.stdout)


def _substituted(inv: Invocation, ref: str) -> str:
    """A flake reference with a `$(...)` in it, such as
    `#packages.$(nix eval --impure --raw --expr builtins.currentSystem).backend`: the value is
    what that `nix eval` prints, evaluated for real. Other substitutions are not read."""
    if SUBSTITUTED not in ref:
        return ref
    subs = inv.command.substitutions
    evals = [s for s in subs if s.argv[:2] == ["nix", "eval"] and "--expr" in s.argv]
    if len(subs) != 1 or len(evals) != 1:
        shown = ", ".join(f"$({s.text})" for s in subs)
        raise CommandError(
            f"the flake reference takes a value from {shown}, which the Nix model does not read; "
            "for the reader's system write $(nix eval --impure --raw --expr builtins.currentSystem)"
        )
    sub = evals[0]
    value = _eval_expr(Invocation(inv.session.expand(sub.model_words), sub, inv.session))
    return ref.replace(SUBSTITUTED, value.strip())


#: a relative path literal of Nix (`./extra.nix`, `../patches`), as a flake names its files
_NIX_PATH = re.compile(r"(?<![\w/.+-])(\.{1,2}/[A-Za-z0-9._+-]+(?:/[A-Za-z0-9._+-]+)*)")
#: how many of the files a flake names are looked at (a page's text is bounded anyway)
_NAMED_FILES = 50


def _tracked(inv: Invocation, directory: Path) -> None:
    """The flake's flake.nix, and each file it names by a relative path, is tracked by git
    when it lies in a clone: Nix copies a flake inside a git repository from the files git
    tracks, and an untracked one does not exist for it (Nix 2.8 here: "getting status of
    '/nix/store/...-source/...': No such file or directory")."""
    flake = directory / "flake.nix"
    named = _NIX_PATH.findall(inv.session.read(str(flake)))[:_NAMED_FILES]
    for path in [flake, *(directory / n for n in named)]:
        if not inv.session.beneath(path, "read").exists():
            continue  # Nix says so itself, when it evaluates
        new = git.untracked(inv, path)
        if new is not None:
            raise CommandError(
                f"git does not track {new}: Nix reads a flake inside a git repository from "
                "the files git tracks, and this one does not exist for it (Nix 2.8 here: "
                "\"getting status of '/nix/store/...-source/...': No such file or directory\"); "
                "`git add` it first"
            )


def _installable(inv: Invocation, sub: str, ref: str) -> tuple[Path, str, dict[str, Path]] | None:
    """Check one flake reference; (flake directory, attribute, inputs) of a package it names."""
    flake, _, attr = ref.partition("#")
    if flake.startswith(("github:", "https://")):
        _remote(inv, flake)
        if sub not in ("run", "build", "shell", "develop"):
            return None
        category, name = _check_upstream_attr(inv, sub, ref, attr)
        return UPSTREAM, f"{category}.{_HOST}.{name}", _overrides(inv.session, UPSTREAM)
    directory = inv.session.where(flake or ".")
    if not inv.session.beneath(directory / "flake.nix", "read").is_file():
        raise CommandError(f"there is no flake.nix in '{inv.session.reader_path(directory)}'")
    _tracked(inv, directory)
    if not attr and sub not in ("run", "build", "shell", "develop", "flake"):
        return None
    _require_nix(inv.session)
    # every one of these locks the flake first (`nix flake show` here does the same)
    outputs = _outputs(inv.session, directory, (directory / "flake.nix").stat().st_mtime)
    if sub == "flake":
        return None
    attr = attr or "default"  # what Nix builds, runs or enters when the reference names none
    if sub == "eval":
        _eval(inv, directory, attr)
        return None
    category = {"run": "apps", "develop": "devShells"}.get(sub, "packages")
    # run, shell and develop fall back to a package of the name (Nix's search: _resolve)
    fallback = outputs["packages"] if sub in ("run", "shell", "develop") else []
    names = outputs[category] + fallback
    if attr.split(".")[-1] not in names:
        raise CommandError(
            f"the flake in '{inv.session.reader_path(directory)}' has no {category[:-1]} "
            f"'{attr}'{closest(attr, names)}; {category}: {', '.join(outputs[category])}"
        )
    if sub == "develop" and attr in outputs["devShells"]:
        # the shell's derivation, evaluated: what it is built from (a misspelt package) too
        _eval(inv, directory, f"devShells.{_HOST}.{attr}.drvPath")
    return directory, attr, _overrides(inv.session, directory)


def _out_link(
    inv: Invocation, link: str, directory: Path, attr: str, inputs: dict[str, Path]
) -> None:
    """`nix build` leaves a link to what it built: the stand-in is built for real, so a later
    `./result/bin/...` finds exactly what the reader's would (or nothing, if it was replaced)."""
    nix = _nix(inv.session)
    assert nix is not None
    proc = nix.flake("build --no-link", f"{directory}#{attr}", inputs, "--json")
    if proc.returncode != 0:
        # Nix's own error lines, without its warnings (the reason, not the noise before it)
        lines = [ln for ln in proc.stderr.splitlines() if ln.lstrip().startswith("error")]
        said = " ".join(lines[-2:]) or (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise CommandError(f"nix build of '{attr}' fails: {said}")
    built = Path(json.loads(proc.stdout)[0]["outputs"]["out"])
    # A copy inside the page's sandbox, so that the page's own processes (jailed to the sandbox)
    # and its snapshots see what the link points at; the stand-ins are a few small files.
    copy = inv.session.tmp / "nix-store" / built.name
    target = inv.session.path(link)
    parent = inv.session.real_path(target.parent)  # the link is made only in the sandbox
    # relative, so that the gate's later looks through it (`./result/bin/...`) resolve beneath
    # the sandbox (Session.beneath refuses an absolute link, as one that may lead out)
    pointing = os.path.relpath(copy, parent)
    # copied and linked in the jail, as the page's user: a link the page planted on the way
    # (nix-store, the link's name) leads nowhere the page could not already write
    script = 'mkdir -p -- "$1" && { [ -e "$2" ] || cp -a -- "$3" "$2"; } && rm -f -- "$4"'
    script += ' && ln -s -- "$5" "$4"'
    argv = ["/bin/sh", "-c", script, "sh", str(copy.parent), str(copy), str(built), str(target)]
    argv.append(pointing)
    done = inv.session.process(argv)
    if done.returncode != 0:
        raise CommandError(f"nix build: the result link cannot be made: {done.stderr.strip()}")


def _backend_listens(
    inv: Invocation, inline: dict[str, str], source: str, first: str = "start"
) -> None:
    """The backend now answers on its ports (from the environment it was started with); in the
    background, once what comes `first` is done (Listener.starting)."""
    session = inv.session
    # what the program sees beside the gate's own environment: the page's exports, its own
    env = session.exported_env() | inline
    for port in session.release.current.backend.ports.values():
        value = env.get(port.env, str(port.port))
        if not is_number(value):
            raise CommandError(f"{port.env}={value} is not a port number")
        held = session.world.held(int(value), source)
        if held is not None:
            raise CommandError(held)
        listener = Listener(int(value), "backend", int(value), source, env, role="backend")
        listener.starting = first if inv.command.background else ""
        listener.foreground = not inv.command.background
        session.world.listeners[int(value)] = listener


def betrace_backend(inv: Invocation) -> None:
    """Running the backend binary (where the page says it is: Session._program_is_there), with
    every variable given to it one it reads, in its form."""
    binary = inv.session.release.current.backend.binary
    _ignored_arguments(inv.argv[1:], binary)
    _backend_listens(inv, _checked_env(inv), f"{binary} started on this machine")
    inv.never_returns(f"{binary} serves")


def _checked_env(inv: Invocation) -> dict[str, str]:
    """The variables a command line sets for the backend it starts (`NAME=value PROGRAM`),
    each one it must read in its form; an exported variable reaches it too, checked when the
    backend reads it or when the release data says it does not (a page exporting it expects
    it to)."""
    session = inv.session
    inline = session.assignments(inv.command)
    backend = session.release.current.backend
    names = backend.read | set(backend.not_read) | set(backend.sdk_env.ignored)
    names |= set(backend.runtime_env.names)
    exported = {k: v for k, v in session.exported_env().items() if k in names}
    for name, problem in backend_env.env_problems(exported | inline, session.release):
        raise CommandError(f"{name} {problem}" + ("" if name in inline else " (exported)"))
    return inline


def _eval(inv: Invocation, directory: Path, attr: str) -> None:
    """`nix eval ./flake#attr.path`: evaluated for real with the stand-in inputs."""
    nix = _nix(inv.session)
    assert nix is not None
    proc = nix.flake("eval --json", f"{directory}#{attr}", _overrides(inv.session, directory))
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error")]
        raise CommandError(f"nix eval of '{attr}' fails: {' '.join(lines[-2:])}")


MODELS = {"nix": nix, "betrace-backend": betrace_backend}
