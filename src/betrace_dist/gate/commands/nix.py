"""`nix`: the flake a command names must exist and have the output it asks for (evaluated with
real Nix, inputs replaced by the recording stand-ins of nixpkgs); remote flake references must be
the project's, at the upstream commit (or tag) the release data pins, and resolve as Nix resolves
them against the outputs of upstream's real flake (its stand-in, tests/artefacts/nix_stubs/betrace,
carries the output names of upstream's flake.nix at the pinned commit)."""

from __future__ import annotations

import atexit
import json
import re
import shutil
import tempfile
from functools import cache
from pathlib import Path

from ... import REPO_ROOT, tools
from ...artefacts.nix import Nix
from ..session import CommandError, Invocation
from ..world import closest

STUBS = REPO_ROOT / "tests" / "artefacts" / "nix_stubs"
UPSTREAM = STUBS / "betrace"
# flake-utils' default systems, which upstream's flake exports (the same names for each)
SYSTEMS = ("x86_64-linux", "aarch64-linux", "x86_64-darwin", "aarch64-darwin")
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
_VALUE = {
    "--override-input",
    "-o",
    "--out-link",
    "--profile",
    "--system",
    "--option",
    "-f",
    "--file",
}


@cache
def _nix() -> Nix | None:
    nix, inst = tools.find("nix"), tools.find("nix-instantiate")
    if not nix or not inst:
        return None
    home = Path(tempfile.mkdtemp(prefix="gate-nix-"))
    # The relocated store is rebuilt per process; remove it when the process ends.
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return Nix(nix=nix, nix_instantiate=inst, home=home)


def _overrides(directory: Path) -> dict[str, Path]:
    """Every input, and the inputs of inputs, replaced by a stand-in: nothing may be fetched."""
    if directory.resolve() == UPSTREAM.resolve():
        return {"nixpkgs": STUBS / "nixpkgs"}
    text = (directory / "flake.nix").read_text(encoding="utf-8")
    used: dict[str, Path] = {}
    if re.search(r"\bbetrace\b", text):
        used |= {"betrace": UPSTREAM, "betrace/nixpkgs": STUBS / "nixpkgs"}
    if re.search(r"\bnixpkgs\.url\b|inputs\.nixpkgs\s*=", text):
        used["nixpkgs"] = STUBS / "nixpkgs"
    return used


@cache
def _outputs(flake_dir: str, stamp: float) -> dict[str, list[str]]:
    """Output names per category (packages, apps, ...) for x86_64-linux, from `nix flake show`."""
    nix = _nix()
    assert nix is not None
    proc = nix.flake("flake show", flake_dir, _overrides(Path(flake_dir)), "--json")
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error")]
        raise CommandError(f"nix flake show fails on {flake_dir}: {' '.join(lines[-2:])}")
    shown = json.loads(proc.stdout)
    out: dict[str, list[str]] = {}
    for category in ("packages", "apps", "devShells", "nixosModules", "overlays"):
        node = shown.get(category) or {}
        names = set(
            node.get("x86_64-linux", {}) if category in ("packages", "apps", "devShells") else node
        )
        out[category] = sorted(names)
    return out


def _remote(inv: Invocation, ref: str) -> None:
    data = inv.session.release
    version = data.current.version
    upstream = data.current.upstream
    owner_repo = data.project.repository.removeprefix("https://github.com/")
    if ref.startswith("github:"):
        want = f"github:{owner_repo}"
        if not (ref == want or ref.startswith(want + "/") or ref.startswith(want + "#")):
            raise CommandError(f"'{ref}' is not BeTrace's flake; it is {want}/{upstream.ref}")
        rev = ref.removeprefix(want).lstrip("/").split("#")[0]
        listed = {upstream.commit, *([upstream.tag] if upstream.tag else [])}
        if rev and rev not in listed:
            raise CommandError(
                f"'{ref}' names {rev}, which the release data does not list for BeTrace "
                f"{version}: "
                + (
                    f"pin the tag {upstream.tag} or the commit {upstream.commit}"
                    if upstream.tag
                    else f"upstream has no tags yet; pin the commit {upstream.commit} "
                    "(releases.yaml releases[0].upstream.commit)"
                )
            )
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
    (`packages.x86_64-linux.backend`) is taken as written."""
    parts = attr.split(".")
    if len(parts) == 3 and parts[0] in outputs:
        category, system, name = parts
        return (category, name) if system in SYSTEMS and name in outputs[category] else None
    order = {"run": ["apps", "packages"], "develop": ["devShells", "packages"]}
    for category in order.get(sub, ["packages"]):
        if attr in outputs[category]:
            return category, attr
    return None


def _check_upstream_attr(inv: Invocation, sub: str, ref: str, attr: str) -> None:
    """`nix run github:betrace-hq/betrace/<rev>#backend`: resolved against upstream's outputs."""
    _require_nix()
    outputs = _outputs(str(UPSTREAM), (UPSTREAM / "flake.nix").stat().st_mtime)
    found = _resolve(sub, attr or "default", outputs)
    if found is None:
        category = {"run": "apps", "develop": "devShells"}.get(sub, "packages")
        raise CommandError(
            f"BeTrace's flake has no {category[:-1]} '{attr}'{closest(attr, outputs[category])}; "
            f"packages: {', '.join(outputs['packages'])}"
        )
    category, name = found
    if category == "apps" and name in _CHECKOUT_APPS:
        flake = ref.partition("#")[0]
        raise CommandError(
            f"Nix picks apps before packages, so this runs upstream's apps.<system>.{name}, "
            f"{_CHECKOUT_APPS[name]}; run the package instead: "
            f"nix {sub} {flake}#packages.<system>.{name}"
        )


def _require_nix() -> None:
    if _nix() is None:
        # like any missing tool: the block is skipped with the reason, a failure in CI
        try:
            tools.require("nix", "apt-get install nix-bin")
        except tools.ToolMissing as exc:
            raise CommandError(str(exc)) from None


def nix(inv: Invocation) -> None:
    args = inv.argv[1:]
    words = []
    i = 0
    while i < len(args):
        if args[i] in ("--override-input", "--option"):
            i += 3  # NAME VALUE
            continue
        if args[i] in _VALUE:
            i += 2
            continue
        if args[i] == "--extra-experimental-features":
            i += 2
            continue
        if not args[i].startswith("-"):
            words.append(args[i])
        i += 1
    sub = words[:2] if words[:1] == ["flake"] else words[:1]
    refs = words[len(sub) :]
    if (sub and sub[0] in ("hash", "store", "path-info", "log", "profile")) or sub == [
        "flake",
        "metadata",
    ]:
        for ref in refs:
            if ref.startswith(("github:", "https://flakehub.com")):
                _remote(inv, ref)
        return
    if not sub or sub[0] not in ("run", "build", "flake", "develop", "shell", "eval"):
        raise CommandError(f"nix {' '.join(sub)} is not modelled")
    for ref in refs or ["."]:
        flake, _, attr = ref.partition("#")
        if flake.startswith(("github:", "https://")):
            _remote(inv, flake)
            if sub[0] in ("run", "build", "shell", "develop"):
                _check_upstream_attr(inv, sub[0], ref, attr)
            continue
        directory = inv.session.path(flake or ".")
        if not (directory / "flake.nix").is_file():
            raise CommandError(f"there is no flake.nix in '{inv.session.shown(directory)}'")
        if not attr:
            continue
        _require_nix()
        outputs = _outputs(str(directory), (directory / "flake.nix").stat().st_mtime)
        if sub[0] == "eval":
            _eval(inv, directory, attr)
            continue
        category = {"run": "apps", "develop": "devShells"}.get(sub[0], "packages")
        names = outputs[category] + (outputs["packages"] if sub[0] in ("run", "shell") else [])
        if attr.split(".")[-1] not in names:
            raise CommandError(
                f"the flake in '{inv.session.shown(directory)}' has no {category[:-1]} "
                f"'{attr}'{closest(attr, names)}; {category}: {', '.join(outputs[category])}"
            )


def _eval(inv: Invocation, directory: Path, attr: str) -> None:
    """`nix eval ./flake#attr.path`: evaluated for real with the stand-in inputs."""
    nix = _nix()
    assert nix is not None
    proc = nix.flake("eval --json", f"{directory}#{attr}", _overrides(directory))
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error")]
        raise CommandError(f"nix eval of '{attr}' fails: {' '.join(lines[-2:])}")


MODELS = {"nix": nix}
