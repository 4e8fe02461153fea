"""Nix artefacts: offline Nix runs against stand-in inputs, and the rules the flakes, the nixpkgs
expressions and the images they build must follow."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import grafana_env
from ..errors import Problem
from ..names import BETRACE_IMAGES
from ..release import ReleaseData, load_release_data

EXPERIMENTAL = ["--extra-experimental-features", "nix-command flakes"]
BY_NAME = Path("nix/pkgs/by-name")
DOCKER_FLAKE = Path("docker/flake.nix")
EXAMPLES = {"github": Path("nix/examples/github"), "flakehub": Path("nix/examples/flakehub")}
SKIP_DIRS = {".git", ".venv", ".tools", ".cache", "node_modules", "site", "result", "__pycache__"}
_SRI_SHA256 = re.compile(r"^sha256-[A-Za-z0-9+/]{43}=$")


def nix_files(root: Path) -> Iterator[Path]:
    """Every .nix file of the repository (not of the virtualenv, tools or build output)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith(".nix"):
                yield Path(dirpath) / name


@dataclass
class Nix:
    """Nix 2.8 run offline: a relocated store and config under `home`, no substituters."""

    nix: str
    nix_instantiate: str
    home: Path
    env: dict[str, str] = field(init=False)
    #: how a command runs: subprocess here; the gate passes its page jail (page-written flakes
    #: are untrusted: evaluating one may read files or fetch, so it gets the page's walls)
    runner: Callable[[list[str], dict[str, str]], Any] | None = None

    def __post_init__(self) -> None:
        h = self.home
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(h / "home"),
            "XDG_CACHE_HOME": str(h / "cache"),
            "XDG_CONFIG_HOME": str(h / "config"),
            "XDG_DATA_HOME": str(h / "data"),
            "XDG_STATE_HOME": str(h / "state"),
            # A store of our own, so nothing touches /nix or a daemon, and builds of the stand-ins
            # run on the host (their builder is /bin/sh; the store paths are real host paths).
            "NIX_STORE_DIR": str(h / "store"),
            "NIX_STATE_DIR": str(h / "var"),
            "NIX_LOG_DIR": str(h / "log"),
            "NIX_CONF_DIR": str(h / "etc"),
            # No substituters (offline); builds run as the calling user (no nixbld group), so a
            # private temporary directory stays reachable for them.
            "NIX_CONFIG": "substituters =\nsandbox = false\nwarn-dirty = false\n"
            "build-users-group =\nexperimental-features = nix-command flakes\n"
            "allow-import-from-derivation = false",
        }

    def run(self, args: list[str], check: bool = False) -> Any:
        if self.runner is not None:
            proc = self.runner(args, self.env)
        else:
            proc = subprocess.run(
                args, env=self.env, capture_output=True, text=True, timeout=120, check=False
            )
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed:\n{proc.stderr.strip()}")
        return proc

    def parse_problem(self, path: Path) -> str | None:
        """None if the file parses (syntax and undefined variables), else Nix's message."""
        proc = self.run([self.nix_instantiate, "--parse", str(path)])
        return None if proc.returncode == 0 else proc.stderr.strip()

    def eval_expr(self, expr: str) -> Any:
        proc = self.run([self.nix_instantiate, "--eval", "--strict", "--json", "-E", expr], True)
        return json.loads(proc.stdout)

    def flake(self, command: str, ref: str, overrides: Mapping[str, Path], *extra: str) -> Any:
        """`nix <command>` on a flake with inputs replaced by local stand-ins; JSON when asked."""
        args = [self.nix, *EXPERIMENTAL, *command.split(), *extra, f"path:{ref}"]
        for name, target in overrides.items():
            args += ["--override-input", name, f"path:{target}"]
        args.append("--no-write-lock-file")
        return self.run(args)

    def flake_json(self, command: str, ref: str, overrides: Mapping[str, Path], *extra: str) -> Any:
        proc = self.flake(command, ref, overrides, "--json", *extra)
        if proc.returncode != 0:
            raise AssertionError(f"nix {command} {ref} failed:\n{proc.stderr.strip()}")
        return json.loads(proc.stdout)

    def build(self, ref: str, overrides: Mapping[str, Path]) -> Path:
        out = self.flake_json("build --no-link", ref, overrides)
        return Path(out[0]["outputs"]["out"])


def package_expr(stubs: Path, package: Path, system: str = "x86_64-linux") -> str:
    """Expression that calls a by-name package.nix with the stand-in nixpkgs, like callPackage."""
    return (
        f"let lib = import {stubs}/nixpkgs/lib.nix; "
        f'pkgs = import {stubs}/nixpkgs/pkgs.nix {{ inherit lib; system = "{system}"; }}; '
        f"in (pkgs.callPackage {package} {{ }}).recorded"
    )


# --- nixpkgs by-name rules ---------------------------------------------------------------------


def by_name_problems(root: Path) -> list[str]:
    """pkgs/by-name/<first two letters of name, lowercased>/<name>/package.nix, and beside a
    package.nix only the files it uses, such as its patches (nixpkgs keeps those in the
    package's directory)."""
    base = root / BY_NAME
    problems: list[str] = []
    if not base.is_dir():
        return [f"{BY_NAME} does not exist"]
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        rel = path.relative_to(base)
        if (
            len(rel.parts) == 3
            and rel.suffix == ".patch"
            and (path.parent / "package.nix").is_file()
        ):
            continue
        if len(rel.parts) != 3 or rel.name != "package.nix":
            problems.append(f"{BY_NAME / rel}: by-name holds only <shard>/<name>/package.nix files")
            continue
        shard, name, _ = rel.parts
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            problems.append(f"{BY_NAME / rel}: '{name}' is not a valid package name")
        if shard != name[:2].lower():
            problems.append(
                f"{BY_NAME / rel}: wrong shard '{shard}' for '{name}'; expected "
                f"{BY_NAME / name[:2].lower() / name / 'package.nix'}"
            )
    return problems


def _license(meta: Mapping[str, Any]) -> str:
    lic = meta.get("license")
    return lic.get("spdxId", "?") if isinstance(lic, dict) else repr(lic)


@dataclass(frozen=True)
class _Package:
    """The arguments a nixpkgs expression passed to its builder, as the package rules see them."""

    function: str  # buildGoModule, buildNpmPackage...
    args: Mapping[str, Any]
    dir_name: str  # the by-name folder: the pname it must have
    data: ReleaseData

    @property
    def meta(self) -> Mapping[str, Any]:
        meta: Mapping[str, Any] = self.args.get("meta", {})
        return meta

    @property
    def src(self) -> Mapping[str, Any]:
        src: Mapping[str, Any] = self.args.get("src", {})
        return src


def _pname_is_the_folder(p: _Package) -> list[str]:
    pname = p.args.get("pname")
    return [] if pname == p.dir_name else [f"pname is {pname!r}, not {p.dir_name!r}"]


def _meta_is_complete(p: _Package) -> list[str]:
    keys = ("description", "homepage", "license", "maintainers", "platforms")
    return [f"meta.{key} is missing" for key in keys if key not in p.meta]


def _license_is_betraces(p: _Package) -> list[str]:
    license_id = _license(p.meta)
    if license_id == p.data.project.license:
        return []
    return [
        f"meta.license is {license_id}, but BeTrace is {p.data.project.license} (lib.licenses.mit)"
    ]


def _homepage_is_the_repository(p: _Package) -> list[str]:
    homepage = p.meta.get("homepage")
    if homepage == p.data.project.repository:
        return []
    return [f"meta.homepage is {homepage!r}, expected {p.data.project.repository}"]


def _src_is_fetched_from_github(p: _Package) -> list[str]:
    out = []
    if p.src.get("fetcher") != "fetchFromGitHub":
        out.append("src is not pinned with fetchFromGitHub")
    owner_repo = p.data.project.repository.removeprefix("https://github.com/")
    found = f"{p.src.get('owner')}/{p.src.get('repo')}"
    if found != owner_repo:
        out.append(f"src is {found}, expected {owner_repo}")
    return out


def _src_is_pinned(p: _Package) -> list[str]:
    return _pin_problems(p.args, p.data)


def _src_hash_is_sri(p: _Package) -> list[str]:
    if _SRI_SHA256.match(str(p.src.get("hash"))):
        return []
    return ["src.hash is not an SRI sha256 hash"]


def _go_module_builds_the_backend(p: _Package) -> list[str]:
    """buildGoModule: the backend's module, its committed vendor/, its binary, its version."""
    args, out = p.args, []
    binary = p.data.current.backend.binary
    if args.get("modRoot") != "backend":
        out.append("modRoot must be 'backend' (the Go module)")
    if not ("vendorHash" in args and args["vendorHash"] is None):
        out.append(
            f"vendorHash must be null (vendor/ is committed), found {args.get('vendorHash')!r}"
        )
    if args.get("subPackages") != [f"cmd/{binary}"]:
        out.append(f"subPackages is {args.get('subPackages')!r}, expected ['cmd/{binary}']")
    if f"-X main.version={args.get('version')}" not in args.get("ldflags", []):
        out.append("ldflags must set -X main.version=${version}")
    if p.meta.get("mainProgram") != binary:
        out.append(f"meta.mainProgram is {p.meta.get('mainProgram')!r}, expected {binary!r}")
    return out


def _npm_package_builds_the_plugin(p: _Package) -> list[str]:
    """buildNpmPackage: the plugin's folder, its npm dependencies' hash, dist/ installed."""
    args, out = p.args, []
    if not str(args.get("sourceRoot", "")).endswith("/grafana-betrace-app"):
        out.append("sourceRoot must point at grafana-betrace-app/")
    if not _SRI_SHA256.match(str(args.get("npmDepsHash"))):
        out.append("npmDepsHash is missing")
    if re.search(r"\bdist\b.*\$out", str(args.get("installPhase", ""))) is None:
        out.append("installPhase must install dist/ as $out (the plugin directory)")
    return out


def _builder_rules(p: _Package) -> list[str]:
    if p.function == "buildGoModule":
        return _go_module_builds_the_backend(p)
    if p.function == "buildNpmPackage":
        return _npm_package_builds_the_plugin(p)
    return [f"built with {p.function}, not buildGoModule/buildNpmPackage"]


#: The package rules, in the order of the expression.
_PACKAGE_RULES: list[Callable[[_Package], list[str]]] = [
    _pname_is_the_folder,
    _meta_is_complete,
    _license_is_betraces,
    _homepage_is_the_repository,
    _src_is_fetched_from_github,
    _src_is_pinned,
    _src_hash_is_sri,
    _builder_rules,
]


def package_problems(
    recorded: Mapping[str, Any], dir_name: str, data: ReleaseData, where: str
) -> list[str]:
    """Rules for the nixpkgs expressions, from the arguments the stand-in builder recorded."""
    package = _Package(recorded["function"], recorded["args"], dir_name, data)
    return [f"{where}: {problem}" for rule in _PACKAGE_RULES for problem in rule(package)]


def expected_pin(data: ReleaseData) -> tuple[str, str, str]:
    """(src attribute, its value, package version) a nixpkgs expression of this release uses.

    Upstream has no tags yet: the source is the commit the release data pins (`rev`), and the
    version is the nixpkgs form for an untagged snapshot, 0-unstable-<commit date>. Once the
    release data lists a tag, it is `tag = "v<version>"` and the version itself."""
    up = data.current.upstream
    if up.tag:
        return "tag", up.tag, up.tag.removeprefix("v")
    return "rev", up.commit, f"0-unstable-{up.date.isoformat()}"


def _pin_problems(args: Mapping[str, Any], data: ReleaseData) -> list[str]:
    src = args.get("src", {})
    key, value, version = expected_pin(data)
    out = []
    if src.get(key) != value:
        other = "tag" if key == "rev" else "rev"
        if key in src:
            found = f"src.{key} is {src[key]!r}"
        else:
            found = f"src.{other} is {src[other]!r}" if other in src else f"src.{key} is missing"
        out.append(
            f"{found}; releases.yaml pins {key} = {value!r} (releases[0].upstream)"
            + ("; upstream has no tags yet" if key == "rev" else "")
        )
    if args.get("version") != version:
        out.append(
            f"version is {args.get('version')!r}; for {key} {value[:8]} nixpkgs wants {version!r}"
        )
    update = (args.get("passthru") or {}).get("updateScript")
    if not update:
        out.append("passthru.updateScript is missing (nixpkgs' bots update through it)")
    elif key == "rev" and "--version=branch" not in str(update):
        out.append(
            "passthru.updateScript must follow the branch (nix-update-script with "
            "--version=branch): upstream has no tags to update to"
        )
    return out


# --- the images flake --------------------------------------------------------------------------


def release_problems(release_attr: Mapping[str, Any], data: ReleaseData) -> list[str]:
    """docker/flake.nix's `release` block against releases.yaml."""
    cur = data.current
    want = {
        "version": cur.version,
        "registry": data.project.registry,
        "source": data.project.distribution_repository,
        "license": data.project.license,
        "ports": {name: port.port for name, port in cur.backend.ports.items()},
    }
    out = [
        f"{DOCKER_FLAKE}: release.{key} is {release_attr.get(key)!r}, releases.yaml says {value!r}"
        for key, value in want.items()
        if release_attr.get(key) != value
    ]
    plugin = release_attr.get("plugin", {})
    if plugin.get("id") != cur.plugin.id or plugin.get("pluginsDir") != cur.plugin.plugins_dir:
        out.append(f"{DOCKER_FLAKE}: release.plugin {plugin!r} disagrees with releases.yaml")
    for key, got, series in (
        ("plugin.patches", plugin.get("patches"), cur.plugin.patches),
        ("backendPatches", release_attr.get("backendPatches"), cur.backend.patches),
    ):
        names = [Path(p.file).name for p in series]
        if got != names:
            out.append(f"{DOCKER_FLAKE}: release.{key} is {got!r}, releases.yaml carries {names!r}")
    for name in BETRACE_IMAGES:
        tag = getattr(cur.images, name.replace("-", "_")).tag
        if tag != cur.version:
            out.append(f"releases.yaml: image {name} tag {tag} differs from release {cur.version}")
    return out


def _env(config: Mapping[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in config.get("Env", []))


def _non_root(config: Mapping[str, Any]) -> str | None:
    user = str(config.get("User", ""))
    uid = user.split(":", 1)[0]
    if uid in ("", "0", "root"):
        return f"runs as root (User {user!r}); set a numeric non-root User"
    return None


@dataclass(frozen=True)
class _Image:
    """The arguments dockerTools.buildLayeredImage recorded for one image, as its rules see them."""

    name: str  # backend, grafana-plugin, plugin-init
    args: Mapping[str, Any]
    data: ReleaseData
    env: dict[str, str]  # config.Env as a mapping

    @property
    def config(self) -> Mapping[str, Any]:
        config: Mapping[str, Any] = self.args.get("config", {})
        return config


def _image_is_the_releases(image: _Image) -> list[str]:
    expected = image.data.image_ref(image.name)
    ref = f"{image.args.get('name')}:{image.args.get('tag')}"
    if ref == expected.split("@")[0]:
        return []
    return [f"{image.name}: image is {ref}, releases.yaml says {expected}"]


def _image_runs_as_non_root(image: _Image) -> list[str]:
    problem = _non_root(image.config)
    return [f"{image.name}: {problem}"] if problem else []


def _backend_entrypoint_is_the_binary(image: _Image) -> list[str]:
    binary = image.data.current.backend.binary
    entry = image.config.get("Entrypoint", [])
    if entry and entry[0].endswith(f"/bin/{binary}"):
        return []
    return [f"backend: Entrypoint {entry!r} is not the {binary} binary"]


def _backend_exposes_its_ports(image: _Image) -> list[str]:
    ports = {f"{p.port}/tcp" for p in image.data.current.backend.ports.values()}
    exposed = image.config.get("ExposedPorts", {})
    if set(exposed) == ports:
        return []
    return [f"backend: exposes {sorted(exposed)}, the binary listens on {sorted(ports)}"]


def _backend_port_variables_match(image: _Image) -> list[str]:
    env = image.env
    return [
        f"backend: {port.env}={env[port.env]} but the {port_name} port is {port.port}"
        for port_name, port in image.data.current.backend.ports.items()
        if env.get(port.env, str(port.port)) != str(port.port)
    ]


def _backend_data_dir_is_writable(image: _Image) -> list[str]:
    """BETRACE_DATA_DIR is set, and fakeRootCommands chowns it to the image's user."""
    data_dir = image.env.get("BETRACE_DATA_DIR")
    if not data_dir:
        return ["backend: BETRACE_DATA_DIR is not set (the default ./data is not writable)"]
    uid = str(image.config.get("User", "")).split(":", 1)[0]
    chown = re.search(
        rf"chown\s+(-R\s+)?{uid}\S*\s+\.?{re.escape(data_dir)}\b",
        str(image.args.get("fakeRootCommands", "")),
    )
    if chown is not None:
        return []
    return [
        f"backend: BETRACE_DATA_DIR={data_dir} is not made writable for user {uid} "
        "(fakeRootCommands must chown it)"
    ]


def _backend_sets_only_what_it_reads(image: _Image) -> list[str]:
    not_read = image.data.current.backend.not_read
    return [
        f"backend: sets {var}, which the backend never reads"
        for var in image.env
        if var in not_read
    ]


def _grafana_variables(image: _Image) -> list[str]:
    """The shared rules of grafana_env for the image's own environment (nothing else sets it)."""
    names = (grafana_env.UNSIGNED, grafana_env.PLUGINS)
    found = grafana_env.problems(image.env, image.data.current.plugin, names)
    return [f"grafana-plugin: {problem}" for problem in found]


#: The rules of every image, then those of one image, in the order they report.
_IMAGE_RULES: list[Callable[[_Image], list[str]]] = [
    _image_is_the_releases,
    _image_runs_as_non_root,
]
_IMAGE_RULES_BY_NAME: dict[str, list[Callable[[_Image], list[str]]]] = {
    "backend": [
        _backend_entrypoint_is_the_binary,
        _backend_exposes_its_ports,
        _backend_port_variables_match,
        _backend_data_dir_is_writable,
        _backend_sets_only_what_it_reads,
    ],
    "grafana-plugin": [
        _grafana_variables,
    ],
}


def image_problems(name: str, args: Mapping[str, Any], data: ReleaseData) -> list[str]:
    """Rules for one image, from the arguments dockerTools.buildLayeredImage recorded."""
    image = _Image(name, args, data, _env(args.get("config", {})))
    rules = _IMAGE_RULES + _IMAGE_RULES_BY_NAME.get(name, [])
    return [problem for rule in rules for problem in rule(image)]


def plugin_dir_problems(directory: Path, what: str, plugin_id: str | None = None) -> list[str]:
    """A Grafana plugin directory: plugin.json with the app's id (the release's by default),
    module.js."""
    out = [
        f"{what}: {directory} has no {required}"
        for required in ("plugin.json", "module.js")
        if not (directory / required).is_file()
    ]
    if not out:
        want = plugin_id or load_release_data().current.plugin.id
        found = json.loads((directory / "plugin.json").read_text(encoding="utf-8")).get("id")
        if found != want:
            out.append(f"{what}: plugin.json has id {found!r}, not {want!r}")
    return out


def run_plugin_init(image: Path, target: Path) -> list[str]:
    """Run a built plugin-init image's entrypoint (stand-in build) and check what it copied."""
    config = json.loads((image / "config.json").read_text(encoding="utf-8"))
    entry = config["Entrypoint"]
    env = {"PATH": "/usr/bin:/bin", **_env(config)}
    proc = subprocess.run(
        [*entry, str(target)], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    if proc.returncode != 0:
        return [f"plugin-init: entrypoint exited {proc.returncode}: {proc.stderr.strip()}"]
    return plugin_dir_problems(target, "plugin-init copied nothing usable")


def problems_text(problems: list[str] | list[Problem]) -> str:
    return "\n".join(str(p) for p in problems)
