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

from ..errors import Problem
from ..names import BETRACE_IMAGES
from ..release import ReleaseData

EXPERIMENTAL = ["--extra-experimental-features", "nix-command flakes"]
BY_NAME = Path("nix/pkgs/by-name")
DOCKER_FLAKE = Path("docker/flake.nix")
EXAMPLES = {"github": Path("nix/examples/github"), "flakehub": Path("nix/examples/flakehub")}
SKIP_DIRS = {".git", ".venv", ".tools", "node_modules", "site", "result", "__pycache__"}
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
    """pkgs/by-name/<first two letters of name, lowercased>/<name>/package.nix, nothing else."""
    base = root / BY_NAME
    problems: list[str] = []
    if not base.is_dir():
        return [f"{BY_NAME} does not exist"]
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        rel = path.relative_to(base)
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


# over 60 lines: one check per package attribute, in the order of the expression
def package_problems(
    recorded: Mapping[str, Any], dir_name: str, data: ReleaseData, where: str
) -> list[str]:
    """Rules for the nixpkgs expressions, from the arguments the stand-in builder recorded."""
    args = recorded["args"]
    meta = args.get("meta", {})
    release = data.current
    out: list[str] = []

    def want(cond: bool, message: str) -> None:
        if not cond:
            out.append(f"{where}: {message}")

    want(args.get("pname") == dir_name, f"pname is {args.get('pname')!r}, not {dir_name!r}")
    for key in ("description", "homepage", "license", "maintainers", "platforms"):
        want(key in meta, f"meta.{key} is missing")
    want(
        _license(meta) == data.project.license,
        f"meta.license is {_license(meta)}, but BeTrace is {data.project.license} "
        "(lib.licenses.mit)",
    )
    want(
        meta.get("homepage") == data.project.repository,
        f"meta.homepage is {meta.get('homepage')!r}, expected {data.project.repository}",
    )
    src = args.get("src", {})
    want(src.get("fetcher") == "fetchFromGitHub", "src is not pinned with fetchFromGitHub")
    owner_repo = data.project.repository.removeprefix("https://github.com/")
    want(
        f"{src.get('owner')}/{src.get('repo')}" == owner_repo,
        f"src is {src.get('owner')}/{src.get('repo')}, expected {owner_repo}",
    )
    out += [f"{where}: {problem}" for problem in _pin_problems(args, data)]
    want(bool(_SRI_SHA256.match(str(src.get("hash")))), "src.hash is not an SRI sha256 hash")
    if recorded["function"] == "buildGoModule":
        want(args.get("modRoot") == "backend", "modRoot must be 'backend' (the Go module)")
        want(
            "vendorHash" in args and args["vendorHash"] is None,
            f"vendorHash must be null (vendor/ is committed), found {args.get('vendorHash')!r}",
        )
        binary = release.backend.binary
        want(
            args.get("subPackages") == [f"cmd/{binary}"],
            f"subPackages is {args.get('subPackages')!r}, expected ['cmd/{binary}']",
        )
        want(
            f"-X main.version={args.get('version')}" in args.get("ldflags", []),
            "ldflags must set -X main.version=${version}",
        )
        want(
            meta.get("mainProgram") == binary,
            f"meta.mainProgram is {meta.get('mainProgram')!r}, expected {binary!r}",
        )
    elif recorded["function"] == "buildNpmPackage":
        want(
            str(args.get("sourceRoot", "")).endswith("/grafana-betrace-app"),
            "sourceRoot must point at grafana-betrace-app/",
        )
        want(bool(_SRI_SHA256.match(str(args.get("npmDepsHash")))), "npmDepsHash is missing")
        want(
            re.search(r"\bdist\b.*\$out", str(args.get("installPhase", ""))) is not None,
            "installPhase must install dist/ as $out (the plugin directory)",
        )
    else:
        out.append(f"{where}: built with {recorded['function']}, not buildGoModule/buildNpmPackage")
    return out


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
        "source": data.project.repository,
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


# complexity over 12: one branch per image attribute the Nix expression must set; to split
def image_problems(name: str, args: Mapping[str, Any], data: ReleaseData) -> list[str]:  # noqa: C901
    """Rules for one image, from the arguments dockerTools.buildLayeredImage recorded."""
    cur = data.current
    config = args.get("config", {})
    env = _env(config)
    out: list[str] = []
    ref = f"{args.get('name')}:{args.get('tag')}"
    if ref != data.image_ref(name).split("@")[0]:
        out.append(f"{name}: image is {ref}, releases.yaml says {data.image_ref(name)}")
    if problem := _non_root(config):
        out.append(f"{name}: {problem}")
    if name == "backend":
        entry = config.get("Entrypoint", [])
        if not (entry and entry[0].endswith(f"/bin/{cur.backend.binary}")):
            out.append(f"backend: Entrypoint {entry!r} is not the {cur.backend.binary} binary")
        ports = {f"{p.port}/tcp" for p in cur.backend.ports.values()}
        if set(config.get("ExposedPorts", {})) != ports:
            out.append(
                f"backend: exposes {sorted(config.get('ExposedPorts', {}))}, the binary listens "
                f"on {sorted(ports)}"
            )
        for port_name, port in cur.backend.ports.items():
            if env.get(port.env, str(port.port)) != str(port.port):
                out.append(
                    f"backend: {port.env}={env[port.env]} but the {port_name} port is {port.port}"
                )
        data_dir = env.get("BETRACE_DATA_DIR")
        if not data_dir:
            out.append("backend: BETRACE_DATA_DIR is not set (the default ./data is not writable)")
        else:
            uid = str(config.get("User", "")).split(":", 1)[0]
            chown = re.search(
                rf"chown\s+(-R\s+)?{uid}\S*\s+\.?{re.escape(data_dir)}\b",
                str(args.get("fakeRootCommands", "")),
            )
            if chown is None:
                out.append(
                    f"backend: BETRACE_DATA_DIR={data_dir} is not made writable for user {uid} "
                    "(fakeRootCommands must chown it)"
                )
        for var in env:
            if var in cur.backend.not_read:
                out.append(f"backend: sets {var}, which the backend never reads")
    if name == "grafana-plugin":
        allowed = env.get("GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS")
        if allowed != cur.plugin.id:
            out.append(
                f"grafana-plugin: GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS is {allowed!r}; allow "
                f"exactly {cur.plugin.id!r}"
            )
        if env.get("GF_PATHS_PLUGINS") != cur.plugin.plugins_dir:
            out.append(f"grafana-plugin: GF_PATHS_PLUGINS is not {cur.plugin.plugins_dir}")
    return out


def plugin_dir_problems(directory: Path, what: str) -> list[str]:
    """A Grafana plugin directory: plugin.json with the right id, module.js."""
    out = [
        f"{what}: {directory} has no {required}"
        for required in ("plugin.json", "module.js")
        if not (directory / required).is_file()
    ]
    if not out:
        plugin_id = json.loads((directory / "plugin.json").read_text(encoding="utf-8")).get("id")
        if plugin_id != "betrace-app":
            out.append(f"{what}: plugin.json has id {plugin_id!r}, not 'betrace-app'")
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
