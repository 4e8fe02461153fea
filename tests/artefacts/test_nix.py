"""The Nix artefacts, evaluated and built with the real Nix, offline.

nixpkgs and the BeTrace source flake cannot be fetched offline, so every flake is evaluated with
its inputs replaced (`--override-input`) by the stand-ins in tests/artefacts/nix_stubs/, which
imitate the few nixpkgs functions used and record the arguments they were given. Builds of those
stand-ins run for the host system in a store relocated into a temporary directory; HOME, XDG
and Nix config point there too, so nothing reaches the network, /nix or the user's settings.
Each guarantee has a test that breaks it on purpose and reads the message.
"""

from __future__ import annotations

import copy
import json
import platform
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from betrace_dist import REPO_ROOT, upstream
from betrace_dist.artefacts import nix as nixa
from betrace_dist.gate.commands.nix import UPSTREAM_AS_ROOT
from betrace_dist.release import ReleaseData, load_release_data

STUBS = Path(__file__).parent / "nix_stubs"
#: The upstream commit the current release pins (read: a release that moves it leaves these
#: tests as they are), its short form, and a short form no release has.
UPSTREAM = load_release_data().current.upstream
SHORT = UPSTREAM.commit[:8]
OTHER = ("d" if SHORT[0] != "d" else "e") + SHORT[1:]
DOCKER_INPUTS = {
    "betrace": STUBS / "betrace",
    "betrace/nixpkgs": STUBS / "nixpkgs",
    "betrace/flake-utils": STUBS / "flake-utils",
    # the real series: a path input relative to docker/flake.nix, given here as an absolute path
    "patches": REPO_ROOT / "patches",
}
EXAMPLE_INPUTS = {
    "betrace": STUBS / "betrace",
    "nixpkgs": STUBS / "nixpkgs",
    "betrace/flake-utils": STUBS / "flake-utils",
}
IMAGES = {"backend": "backend-image", "grafana-plugin": "grafana-plugin-image",
          "plugin-init": "plugin-init-image"}  # fmt: skip
HOST_SYSTEM = {"x86_64": "x86_64-linux", "aarch64": "aarch64-linux"}.get(platform.machine())
PACKAGES = {
    "betrace-backend": nixa.BY_NAME / "be/betrace-backend/package.nix",
    "grafana-betrace-app": nixa.BY_NAME / "gr/grafana-betrace-app/package.nix",
}


@pytest.fixture(scope="session")
def nix(tool: Callable[[str, str], str], tmp_path_factory: pytest.TempPathFactory) -> nixa.Nix:
    return nixa.Nix(tool("nix"), tool("nix-instantiate"), tmp_path_factory.mktemp("nix"))


def broken_copy(source: Path, dest_dir: Path, old: str, new: str, name: str = "") -> Path:
    """A copy of `source` in dest_dir with `old` replaced (which must be there) by `new`."""
    text = source.read_text(encoding="utf-8")
    assert old in text, f"{source} no longer contains {old!r}: update this break test"
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / (name or source.name)
    target.write_text(text.replace(old, new), encoding="utf-8")
    return target


def images_recorded(nix: nixa.Nix, flake_dir: Path, system: str = "x86_64-linux") -> Any:
    return nix.flake_json(
        "eval",
        f"{flake_dir}#packages.{system}",
        DOCKER_INPUTS,
        "--apply",
        "ps: builtins.mapAttrs (_: p: p.recorded.args) ps",
    )


def flake_release(nix: nixa.Nix, flake_dir: Path) -> Any:
    return nix.flake_json("eval", f"{flake_dir}#lib.release", DOCKER_INPUTS)


# --- every .nix file ---------------------------------------------------------------------------


def test_every_nix_file_parses(nix: nixa.Nix, repo_root: Path) -> None:
    files = list(nixa.nix_files(repo_root))
    assert repo_root / nixa.DOCKER_FLAKE in files, "docker/flake.nix was not found"
    assert len(files) >= 9, f"expected the flakes, packages and stand-ins, found {files}"
    problems = [f"{f}: {p}" for f in files if (p := nix.parse_problem(f))]
    assert not problems, "\n".join(problems)


def test_parse_catches_an_undefined_variable_with_file_and_line(
    nix: nixa.Nix, repo_root: Path, tmp_path: Path
) -> None:
    broken = broken_copy(
        repo_root / PACKAGES["betrace-backend"], tmp_path, "lib.licenses.mit", "licences.mit"
    )
    problem = nix.parse_problem(broken)
    assert problem is not None
    assert "undefined variable 'licences'" in problem
    assert f"{broken}:" in problem


# --- nixpkgs expressions -----------------------------------------------------------------------


def test_by_name_paths_follow_the_two_letter_shard(repo_root: Path) -> None:
    assert nixa.by_name_problems(repo_root) == []
    for name, rel in PACKAGES.items():
        assert (repo_root / rel).is_file(), f"{rel} is missing"
        assert rel.parts[-3] == name[:2], rel


def test_wrong_by_name_shard_is_caught(repo_root: Path, tmp_path: Path) -> None:
    wrong = tmp_path / nixa.BY_NAME / "bt" / "betrace-backend"
    broken_copy(repo_root / PACKAGES["betrace-backend"], wrong, "", "")
    problems = nixa.by_name_problems(tmp_path)
    assert problems == [
        "nix/pkgs/by-name/bt/betrace-backend/package.nix: wrong shard 'bt' for 'betrace-backend'; "
        "expected nix/pkgs/by-name/be/betrace-backend/package.nix"
    ]


# The submission guide's check for comments that mean nothing inside nixpkgs, and the words that
# mark a comment as one about this repository or the submission.
SUBMISSION_GUIDE = Path("docs/guides/submit-betrace-to-nixpkgs.md")
LEFTOVER_GREP = "grep -nE '^#|release data|submission|submitter|once nixpkgs has it|distribution'"
ABOUT_US = re.compile(
    r"release data|releases\.yaml|a test|tests/|distribution|submi|\.\./\.\./|flake guide"
    r"|betrace-dist|chart",
    re.I,
)
#: the files the submission guide copies into nixpkgs: the two packages and the module
SUBMITTED = PACKAGES | {"module": Path("nix/modules/betrace-backend.nix")}


def comments_the_grep_misses(text: str) -> list[str]:
    """Comment lines about this repository that the guide's grep would not print."""
    pattern = re.compile(r"^#|release data|submission|submitter|once nixpkgs has it|distribution")
    return [
        f"{number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), start=1)
        if line.lstrip().startswith("#") and ABOUT_US.search(line) and not pattern.search(line)
    ]


@pytest.mark.parametrize("name", sorted(SUBMITTED))
def test_the_submission_guide_finds_every_comment_about_this_repository(
    repo_root: Path, name: str
) -> None:
    guide = (repo_root / SUBMISSION_GUIDE).read_text(encoding="utf-8")
    assert LEFTOVER_GREP in guide and str(SUBMITTED[name].name) in guide
    text = (repo_root / SUBMITTED[name]).read_text(encoding="utf-8")
    assert comments_the_grep_misses(text) == []


def removal_rows(guide: str) -> list[str]:
    """The start of each comment the guide's removal table names: its first column's code, up
    to its '...'."""
    table = guide[guide.index("| Comment | In | Remove |") :].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines()[2:] if line.startswith("| `")]
    return [row.split("`")[1].split("...")[0].strip() for row in rows]


def lines_the_table_misses(text: str, rows: list[str]) -> list[str]:
    """Lines after the header that the guide's grep prints and no row of its table names."""
    pattern = re.compile(r"release data|submission|submitter|once nixpkgs has it|distribution")
    body = text.splitlines()
    start = next(i for i, line in enumerate(body) if line.startswith("{"))
    return [
        f"{number}: {line.strip()}"
        for number, line in enumerate(body[start:], start=start + 1)
        if pattern.search(line) and not any(r in line for r in rows)
    ]


@pytest.mark.parametrize("name", sorted(SUBMITTED))
def test_every_line_the_grep_prints_has_a_row_of_the_removal_table(
    repo_root: Path, name: str
) -> None:
    rows = removal_rows((repo_root / SUBMISSION_GUIDE).read_text(encoding="utf-8"))
    text = (repo_root / SUBMITTED[name]).read_text(encoding="utf-8")
    assert lines_the_table_misses(text, rows) == []
    broken = text.replace("\n  # ", "\n  # See the distribution's site.\n  # ", 1)
    assert [line.split(": ", 1)[1] for line in lines_the_table_misses(broken, rows)] == [
        "# See the distribution's site."
    ]


def test_a_comment_about_this_repository_the_grep_misses_is_caught(repo_root: Path) -> None:
    text = (repo_root / PACKAGES["betrace-backend"]).read_text(encoding="utf-8")
    broken = text.replace("  modRoot =", "  # As in this project's chart.\n  modRoot =", 1)
    line = broken.splitlines().index("  # As in this project's chart.") + 1
    assert comments_the_grep_misses(broken) == [f"{line}: # As in this project's chart."]


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_package_follows_nixpkgs_rules_and_release_data(
    nix: nixa.Nix, repo_root: Path, release_data: ReleaseData, name: str
) -> None:
    recorded = nix.eval_expr(nixa.package_expr(STUBS, repo_root / PACKAGES[name]))
    assert nixa.package_problems(recorded, name, release_data, name) == []


def test_backend_package_recorded_arguments(
    nix: nixa.Nix, repo_root: Path, release_data: ReleaseData
) -> None:
    rec = nix.eval_expr(nixa.package_expr(STUBS, repo_root / PACKAGES["betrace-backend"]))
    args = rec["args"]
    assert rec["function"] == "buildGoModule"
    assert args["vendorHash"] is None
    assert args["modRoot"] == "backend"
    assert args["subPackages"] == ["cmd/betrace-backend"]
    assert args["meta"]["license"]["spdxId"] == "MIT"
    assert args["meta"]["mainProgram"] == "betrace-backend"
    # upstream has no tags: the commit the release data pins, versioned as nixpkgs does
    upstream = release_data.current.upstream
    assert upstream.tag is None
    assert args["src"]["rev"] == upstream.commit
    assert "tag" not in args["src"]
    assert args["version"] == f"0-unstable-{upstream.date.isoformat()}"
    assert f"-X main.version={args['version']}" in args["ldflags"]
    assert args["passthru"]["updateScript"] == {
        "updater": "nix-update-script",
        "args": {"extraArgs": ["--version=branch"]},
    }


def test_plugin_package_recorded_arguments(
    nix: nixa.Nix, repo_root: Path, release_data: ReleaseData
) -> None:
    rec = nix.eval_expr(nixa.package_expr(STUBS, repo_root / PACKAGES["grafana-betrace-app"]))
    args = rec["args"]
    assert rec["function"] == "buildNpmPackage"
    upstream = release_data.current.upstream
    assert args["version"] == f"0-unstable-{upstream.date.isoformat()}"
    assert args["sourceRoot"] == "source/grafana-betrace-app"
    assert args["src"]["rev"] == upstream.commit
    assert "--version=branch" in args["passthru"]["updateScript"]["args"]["extraArgs"]
    assert "npmFlags" not in args, "npm ci works at the pinned commit without extra flags"
    assert args["meta"]["license"]["spdxId"] == "MIT"


#: Each nixpkgs expression's patch series (the release data's field) and its patchFlags: the
#: app's paths start at the repository root, one level above sourceRoot (-p2); the backend's are
#: applied at the repository root (None: the default -p1; buildGoModule enters modRoot only
#: after the patch phase). Each series' folder under patches/ has the package's name.
SERIES = {"grafana-betrace-app": ("plugin", ["-p2"]), "betrace-backend": ("backend", None)}


def patch_problems(package: str, args: dict[str, Any], release_data: ReleaseData) -> list[str]:
    """The nixpkgs expression applies the release's series for it, in order, with its flags."""
    field, flags = SERIES[package]
    want = [Path(p.file).name for p in getattr(release_data.current, field).patches]
    got = [Path(p).name for p in args.get("patches", [])]
    problems = []
    if got != want:
        problems.append(f"{package}: patches are {got}, the release carries {want}")
    if args.get("patchFlags") != flags:
        shown = flags or "unset (the default -p1)"
        problems.append(f"{package}: patchFlags is {args.get('patchFlags')}, not {shown}")
    return problems


@pytest.mark.parametrize("package", sorted(SERIES))
def test_package_applies_the_release_patches(
    nix: nixa.Nix, repo_root: Path, release_data: ReleaseData, package: str
) -> None:
    path = repo_root / PACKAGES[package]
    args = nix.eval_expr(nixa.package_expr(STUBS, path))["args"]
    assert patch_problems(package, args, release_data) == []
    # each file beside package.nix is the series' own (a link), not a copy that could drift
    for name in args["patches"]:
        assert (path.parent / Path(name).name).resolve() == (
            repo_root / "patches" / package / Path(name).name
        ).resolve()


@pytest.mark.parametrize(
    ("package", "line"),
    [
        ("grafana-betrace-app", "    ./0003-use-the-backend-paths-and-answers.patch\n"),
        ("betrace-backend", "    ./0001-dsl-read-the-keyword-false-as-false.patch\n"),
    ],
)
def test_package_without_a_patch_is_reported(
    nix: nixa.Nix,
    repo_root: Path,
    release_data: ReleaseData,
    tmp_path: Path,
    package: str,
    line: str,
) -> None:
    broken = broken_copy(repo_root / PACKAGES[package], tmp_path, line, "")
    args = nix.eval_expr(nixa.package_expr(STUBS, broken))["args"]
    (problem,) = patch_problems(package, args, release_data)
    assert "the release carries" in problem and Path(line.strip()).name[:12] in problem


def test_backend_package_applied_with_p2_is_reported(
    nix: nixa.Nix, repo_root: Path, release_data: ReleaseData, tmp_path: Path
) -> None:
    text = (repo_root / PACKAGES["betrace-backend"]).read_text()
    broken = tmp_path / "package.nix"
    broken.write_text(text.replace("  patches = [", '  patchFlags = [ "-p2" ];\n  patches = ['))
    args = nix.eval_expr(nixa.package_expr(STUBS, broken))["args"]
    assert patch_problems("betrace-backend", args, release_data) == [
        "betrace-backend: patchFlags is ['-p2'], not unset (the default -p1)"
    ]


BREAKS = [
    ("betrace-backend", "lib.licenses.mit", "lib.licenses.asl20",
     "meta.license is Apache-2.0, but BeTrace is MIT"),
    ("betrace-backend", "vendorHash = null;", 'vendorHash = "sha256-' + "B" * 43 + '=";',
     "vendorHash must be null"),
    ("betrace-backend", 'mainProgram = "betrace-backend";', 'mainProgram = "betrace";',
     "meta.mainProgram is 'betrace', expected 'betrace-backend'"),
    ("betrace-backend", 'version = "0-unstable-', 'version = "2.0.0-unstable-',
     f"nixpkgs wants '0-unstable-{UPSTREAM.date.isoformat()}'"),
    ("betrace-backend", f'rev = "{SHORT}', 'tag = "v2.0.0"; rev = "0000',
     f"releases.yaml pins rev = '{UPSTREAM.commit}'"),
    ("betrace-backend", f'rev = "{UPSTREAM.commit}";', 'tag = "v2.0.0";',
     "src.tag is 'v2.0.0'; releases.yaml pins rev"),
    ("betrace-backend", '"--version=branch"', "",
     "passthru.updateScript must follow the branch"),
    ("betrace-backend", "passthru.updateScript =", "passthru.somethingElse =",
     "passthru.updateScript is missing"),
    ("betrace-backend", 'modRoot = "backend";', "",
     "modRoot must be 'backend'"),
    ("betrace-backend", "description = ", "summary = ",
     "meta.description is missing"),
    ("grafana-betrace-app", "lib.licenses.mit", "lib.licenses.asl20",
     "meta.license is Apache-2.0, but BeTrace is MIT"),
    ("grafana-betrace-app", 'version = "0-unstable-', 'version = "0.1.0"; x = "',
     "version is '0.1.0'"),
    ("grafana-betrace-app", f'rev = "{SHORT}', f'rev = "{OTHER}',
     f"src.rev is '{OTHER}"),
    ("grafana-betrace-app", "cp -R dist $out", "mkdir $out",
     "installPhase must install dist/ as $out"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "old", "new", "message"), BREAKS, ids=[b[3][:30] for b in BREAKS])
def test_broken_package_is_reported(
    nix: nixa.Nix,
    repo_root: Path,
    release_data: ReleaseData,
    tmp_path: Path,
    name: str,
    old: str,
    new: str,
    message: str,
) -> None:
    broken = broken_copy(repo_root / PACKAGES[name], tmp_path, old, new)
    recorded = nix.eval_expr(nixa.package_expr(STUBS, broken))
    problems = nixa.package_problems(recorded, name, release_data, name)
    assert any(message in p for p in problems), problems


# --- docker/flake.nix --------------------------------------------------------------------------


def test_images_flake_shows_every_image_and_app(nix: nixa.Nix, repo_root: Path) -> None:
    shown = nix.flake_json("flake show", str(repo_root / "docker"), DOCKER_INPUTS)
    for system in ("x86_64-linux", "aarch64-linux"):
        assert set(shown["packages"][system]) == set(IMAGES.values())
        apps = set(shown["apps"][system])
        assert "build-all" in apps
        for image in IMAGES.values():
            assert {f"load-{image}", f"push-{image}"} <= apps
    assert set(shown["packages"]) == {"x86_64-linux", "aarch64-linux"}


def test_images_flake_nixpkgs_follows_betrace(nix: nixa.Nix, repo_root: Path) -> None:
    meta = nix.flake_json("flake metadata", str(repo_root / "docker"), DOCKER_INPUTS)
    root = meta["locks"]["nodes"]["root"]["inputs"]
    assert root["nixpkgs"] == ["betrace", "nixpkgs"]
    original = meta["locks"]["nodes"]["betrace"]["original"]
    assert (original["type"], original["owner"], original["repo"]) == (
        "github",
        "betrace-hq",
        "betrace",
    )


def test_images_flake_release_equals_release_data(
    nix: nixa.Nix, repo_root: Path, release_data: ReleaseData
) -> None:
    assert nixa.release_problems(flake_release(nix, repo_root / "docker"), release_data) == []


def test_images_flake_without_a_backend_patch_is_reported(
    nix: nixa.Nix, repo_root: Path, release_data: ReleaseData, tmp_path: Path
) -> None:
    names = [Path(p.file).name for p in release_data.current.backend.patches]
    line = f'          "{names[1]}"\n'
    broken_copy(repo_root / nixa.DOCKER_FLAKE, tmp_path, line, "")
    (problem,) = nixa.release_problems(flake_release(nix, tmp_path), release_data)
    left = [names[0], *names[2:]]
    assert problem.endswith(f"release.backendPatches is {left!r}, releases.yaml carries {names!r}")


def test_images_flake_with_old_version_or_port_8080_is_reported(
    nix: nixa.Nix, repo_root: Path, release_data: ReleaseData, tmp_path: Path
) -> None:
    flake = broken_copy(repo_root / nixa.DOCKER_FLAKE, tmp_path, "http = 12011", "http = 8080")
    text = flake.read_text(encoding="utf-8")
    flake.write_text(
        text.replace(f'version = "{release_data.current.version}"', 'version = "1.9.0"')
    )
    problems = nixa.release_problems(flake_release(nix, tmp_path), release_data)
    assert f"release.version is '1.9.0', releases.yaml says '{release_data.current.version}'" in (
        nixa.problems_text(problems)
    )
    assert "release.ports is {'grpc': 12012, 'http': 8080}" in nixa.problems_text(problems)


@pytest.mark.parametrize("system", ["x86_64-linux", "aarch64-linux"])
def test_images_recorded_arguments_follow_the_rules(
    nix: nixa.Nix, repo_root: Path, release_data: ReleaseData, system: str
) -> None:
    recorded = images_recorded(nix, repo_root / "docker", system)
    problems = [p for name, attr in IMAGES.items()
                for p in nixa.image_problems(name, recorded[attr], release_data)]  # fmt: skip
    assert problems == []
    backend = recorded["backend-image"]["config"]
    assert backend["ExposedPorts"] == {"12011/tcp": {}, "12012/tcp": {}}
    assert "BETRACE_DATA_DIR=/var/lib/betrace" in backend["Env"]
    assert backend["User"] == "10001:10001"


IMAGE_BREAKS = [
    ('User = "${backendUid}:${backendUid}";', 'User = "0:0";', "backend: runs as root"),
    ('"BETRACE_DATA_DIR=${release.dataDir}"', '"PORT=12011"',
     "backend: BETRACE_DATA_DIR is not set"),
    ("chown -R ${backendUid}:${backendUid} .${release.dataDir}", "true",
     "is not made writable for user 10001"),
    ('"${toString release.ports.grpc}/tcp" = { };', '"8080/tcp" = { };',
     "the binary listens on ['12011/tcp', '12012/tcp']"),
    ('"GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS=${release.plugin.id}"',
     '"GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS=*"',
     "GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS is '*'"),
    ('name = "${release.registry}/plugin-init";', 'name = "ghcr.io/betrace-hq/plugin-init";',
     "plugin-init: image is ghcr.io/betrace-hq/plugin-init:"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "message"), IMAGE_BREAKS, ids=[b[2][:30] for b in IMAGE_BREAKS]
)
def test_broken_image_is_reported(
    nix: nixa.Nix,
    repo_root: Path,
    release_data: ReleaseData,
    tmp_path: Path,
    old: str,
    new: str,
    message: str,
) -> None:
    broken_copy(repo_root / nixa.DOCKER_FLAKE, tmp_path, old, new)
    recorded = images_recorded(nix, tmp_path)
    problems = [p for name, attr in IMAGES.items()
                for p in nixa.image_problems(name, recorded[attr], release_data)]  # fmt: skip
    assert any(message in p for p in problems), problems


def test_apps_on_macos_explain_that_images_are_linux_only(nix: nixa.Nix, repo_root: Path) -> None:
    for system in ("aarch64-darwin", "x86_64-darwin"):
        proc = nix.flake(
            "eval --raw", f"{repo_root / 'docker'}#apps.{system}.build-all.program", DOCKER_INPUTS
        )
        assert proc.returncode != 0
        assert f"builds OCI images, which are Linux-only, and {system} is not Linux" in proc.stderr
        # a Linux builder builds for Linux, but `nix run` would run the Linux script here
        assert "nix build ./docker#packages.aarch64-linux.backend-image" in proc.stderr
        assert "nix run" not in proc.stderr


def test_without_the_macos_apps_nix_run_would_only_say_attribute_missing(
    nix: nixa.Nix, repo_root: Path, tmp_path: Path
) -> None:
    broken_copy(
        repo_root / nixa.DOCKER_FLAKE, tmp_path, "// lib.genAttrs otherSystems linuxOnlyApps", ""
    )
    proc = nix.flake(
        "eval --raw", f"{tmp_path}#apps.aarch64-darwin.build-all.program", DOCKER_INPUTS
    )
    assert proc.returncode != 0
    assert "Linux-only" not in proc.stderr
    assert "does not provide attribute" in proc.stderr


# --- built images (stand-in builds, host system only) ------------------------------------------

needs_host_build = pytest.mark.skipif(
    HOST_SYSTEM is None, reason=f"stand-in builds need a Linux host, not {platform.machine()}"
)


@pytest.fixture(scope="module")
def built(nix: nixa.Nix, repo_root: Path) -> dict[str, Path]:
    return {
        attr: nix.build(f"{repo_root / 'docker'}#packages.{HOST_SYSTEM}.{attr}", DOCKER_INPUTS)
        for attr in IMAGES.values()
    }


@needs_host_build
def test_plugin_init_payload_is_the_plugin_package(built: dict[str, Path], tmp_path: Path) -> None:
    image = built["plugin-init-image"]
    config = json.loads((image / "config.json").read_text())
    source = dict(e.split("=", 1) for e in config["Env"])["BETRACE_PLUGIN_SOURCE"]
    assert nixa.plugin_dir_problems(Path(source), "payload") == []
    assert sorted(p.name for p in Path(source).iterdir()) == ["img", "module.js", "plugin.json"]
    target = tmp_path / "plugins" / "betrace-app"
    assert nixa.run_plugin_init(image, target) == []
    assert (target / "img" / "logo.svg").is_file()


@needs_host_build
def test_plugin_init_with_an_empty_payload_fails_loudly(
    nix: nixa.Nix, repo_root: Path, tmp_path: Path
) -> None:
    broken_copy(
        repo_root / nixa.DOCKER_FLAKE,
        tmp_path / "flake",
        'payload="${plugin}"',
        'payload="${pkgs.runCommand "empty-payload" { } "mkdir $out"}"',
    )
    image = nix.build(
        f"{tmp_path / 'flake'}#packages.{HOST_SYSTEM}.plugin-init-image", DOCKER_INPUTS
    )
    problems = nixa.run_plugin_init(image, tmp_path / "target")
    assert len(problems) == 1
    assert "entrypoint exited 1" in problems[0]
    assert "empty-payload has no plugin.json: this image carries no plugin" in problems[0]


@needs_host_build
def test_grafana_image_has_the_plugin_in_the_plugins_dir(
    built: dict[str, Path], release_data: ReleaseData
) -> None:
    rootfs = built["grafana-plugin-image"] / "rootfs"
    plugin_dir = rootfs / release_data.current.plugin.plugins_dir.lstrip("/") / "betrace-app"
    assert nixa.plugin_dir_problems(plugin_dir, "grafana-plugin image") == []


@needs_host_build
def test_grafana_image_plugin_is_built_with_the_release_patches(
    built: dict[str, Path], release_data: ReleaseData
) -> None:
    plugin_dir = (
        built["grafana-plugin-image"] / "rootfs"
        / release_data.current.plugin.plugins_dir.lstrip("/") / "betrace-app"
    )  # fmt: skip
    want = " ".join(Path(p.file).name for p in release_data.current.plugin.patches)
    # the stand-in's module.js names the patches the flake's override gave it, in order, and
    # the flags: the patches' paths start one level above the app's source
    assert f"patches: {want}; flags: -p2 */" in (plugin_dir / "module.js").read_text()


@needs_host_build
def test_backend_image_program_is_built_with_the_release_patches(
    built: dict[str, Path], release_data: ReleaseData
) -> None:
    image = built["backend-image"]
    program = Path(json.loads((image / "config.json").read_text())["Entrypoint"][0])
    want = " ".join(Path(p.file).name for p in release_data.current.backend.patches)
    # the stand-in names the patches the flake's override gave it, in order, and the flags:
    # the patches' paths start one level above upstream's backend package's source (backend/)
    recorded = program.parent.parent / "share" / "betrace-backend" / "patches"
    assert recorded.read_text() == f"patches: {want}\nflags: -p2\n"


@needs_host_build
def test_the_backend_stand_in_records_the_flags_the_flake_gives(
    nix: nixa.Nix, repo_root: Path, tmp_path: Path
) -> None:
    """The stand-in records the flake's patchFlags as given, so the test above fails on a flake
    with other flags. That -p2 is right for upstream's backend package, and -p1 for the
    nixpkgs expression, is tests/backend's (GNU patch on upstream's tree with each layout)."""
    flake = broken_copy(
        repo_root / nixa.DOCKER_FLAKE,
        tmp_path / "flake",
        'release.backendPatches;\n            patchFlags = [ "-p2" ];',
        'release.backendPatches;\n            patchFlags = [ "-p1" ];',
    )
    assert flake.is_file()
    image = nix.build(f"{tmp_path / 'flake'}#packages.{HOST_SYSTEM}.backend-image", DOCKER_INPUTS)
    program = Path(json.loads((image / "config.json").read_text())["Entrypoint"][0])
    recorded = (program.parent.parent / "share" / "betrace-backend" / "patches").read_text()
    assert recorded.endswith("flags: -p1\n"), recorded


@needs_host_build
def test_backend_image_entrypoint_and_data_dir_exist(built: dict[str, Path]) -> None:
    image = built["backend-image"]
    config = json.loads((image / "config.json").read_text())
    assert Path(config["Entrypoint"][0]).is_file()
    assert (image / "rootfs/var/lib/betrace").is_dir()
    assert "betrace:x:10001:10001:" in (image / "rootfs/etc/passwd").read_text()


def _app_script(nix: nixa.Nix, repo_root: Path, app: str) -> Path:
    """Build an app's script (its program path) through the derivation that produces it."""
    program = Path(
        nix.flake_json(
            "eval", f"{repo_root / 'docker'}#apps.{HOST_SYSTEM}.{app}.program", DOCKER_INPUTS
        )
    )
    out = program.parents[1]
    store = Path(nix.env["NIX_STORE_DIR"])
    drv = next(p for p in store.glob(f"*-{app}.drv") if str(out) in p.read_text())
    nix.run(["nix-store", "--realise", str(drv)], check=True)
    return program


@needs_host_build
def test_build_all_builds_and_lists_every_image(
    nix: nixa.Nix, repo_root: Path, built: dict[str, Path]
) -> None:
    script = _app_script(nix, repo_root, "build-all")
    listed = dict(line.split(" ", 1) for line in _run(script).splitlines())
    assert listed == {attr: str(path) for attr, path in built.items()}


@needs_host_build
def test_push_app_copies_the_archive_with_a_digest_file(
    nix: nixa.Nix, repo_root: Path, built: dict[str, Path], tmp_path: Path
) -> None:
    script = _app_script(nix, repo_root, "push-backend-image")
    fake = tmp_path / "bin" / "skopeo"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$SKOPEO_ARGS"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin", "SKOPEO_ARGS": str(tmp_path / "args"),
           "DIGEST_FILE": str(tmp_path / "digest")}  # fmt: skip
    _run(script, "2.0.0-amd64", env=env)
    assert (tmp_path / "args").read_text().splitlines() == [
        "copy",
        "--digestfile",
        str(tmp_path / "digest"),
        f"docker-archive:{built['backend-image']}",
        "docker://ghcr.io/betrace-hq/betrace/backend:2.0.0-amd64",
    ]


@needs_host_build
@pytest.mark.parametrize("app", ["build-all", "push-plugin-init-image", "load-backend-image"])
def test_app_scripts_pass_shellcheck(
    nix: nixa.Nix, repo_root: Path, tool: Callable[[str, str], str], app: str
) -> None:
    shellcheck = tool("shellcheck")
    script = _app_script(nix, repo_root, app)
    proc = _proc([shellcheck, "--shell=bash", str(script)])
    assert proc.returncode == 0, proc.stdout


def _proc(args: list[str], env: dict[str, str] | None = None) -> Any:
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=30, check=False)


def _run(script: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = _proc([str(script), *args], env=env or {"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# --- the example consumer flakes ---------------------------------------------------------------


@pytest.mark.parametrize("example", sorted(nixa.EXAMPLES))
def test_example_flake_consumes_the_backend_at_the_release_version(
    nix: nixa.Nix, repo_root: Path, release_data: ReleaseData, example: str
) -> None:
    problems = example_problems(nix, repo_root / nixa.EXAMPLES[example], example, release_data)
    assert problems == []


def example_problems(
    nix: nixa.Nix,
    flake: Path,
    kind: str,
    data: ReleaseData,
    inputs: dict[str, Path] = EXAMPLE_INPUTS,
) -> list[str]:
    meta = nix.flake_json("flake metadata", str(flake), inputs)
    nodes = meta["locks"]["nodes"]
    out: list[str] = []
    if nodes["betrace"].get("inputs", {}).get("nixpkgs") != ["nixpkgs"]:
        out.append(f"{kind}: betrace.inputs.nixpkgs does not follow the flake's nixpkgs")
    original = nodes["betrace"]["original"]
    version = data.current.version
    if kind == "github":
        # upstream has no tags yet: the commit the release data pins
        found = (original.get("owner"), original.get("repo"), original.get("rev"))
        want = ("betrace-hq", "betrace", data.current.upstream.ref)
    else:
        found = original.get("url")
        want = f"https://flakehub.com/f/{data.project.flakehub}/={version}.tar.gz"
    if found != want:
        out.append(f"{kind}: betrace input is {found!r}, releases.yaml means {want!r}")
    shown = nix.flake_json("flake show", str(flake), inputs)
    name = shown["packages"]["x86_64-linux"]["default"].get("name", "")
    if not name.startswith("betrace-backend"):
        out.append(f"{kind}: packages.default is {name!r}, not the BeTrace backend")
    return out


@pytest.mark.parametrize(
    ("example", "old", "new", "message"),
    [
        (
            "github",
            f"betrace/{SHORT}",
            f"betrace/{OTHER}",
            f"github: betrace input is ('betrace-hq', 'betrace', '{OTHER}",
        ),
        (
            "github",
            f"betrace/{UPSTREAM.commit}",
            "betrace/v2.0.0",
            "github: betrace input is ('betrace-hq', 'betrace', None)",
        ),
        ("flakehub", "betrace/=", "betrace/=1.", "flakehub: betrace input is 'https://flakehub"),
        ("github", 'inputs.nixpkgs.follows = "nixpkgs";', "", "does not follow"),
    ],
)
def test_broken_example_flake_is_reported(
    nix: nixa.Nix,
    repo_root: Path,
    release_data: ReleaseData,
    tmp_path: Path,
    example: str,
    old: str,
    new: str,
    message: str,
) -> None:
    broken_copy(repo_root / nixa.EXAMPLES[example] / "flake.nix", tmp_path, old, new)
    # Without follows, the stand-in BeTrace would fetch the real nixpkgs: point it at the stand-in.
    inputs = {**EXAMPLE_INPUTS, "betrace/nixpkgs": STUBS / "nixpkgs"} if not new else EXAMPLE_INPUTS
    problems = example_problems(nix, tmp_path, example, release_data, inputs)
    assert any(message in p for p in problems), problems


DEV_TOOLS_FOLLOWS = {
    "github": 'inputs.dev-tools.follows = "nixpkgs";',
    "flakehub": 'inputs.dev-tools.follows = "nixpkgs";',
    "docker": 'betrace.inputs.dev-tools.follows = "betrace/nixpkgs";',
}


@pytest.mark.parametrize("flake", sorted(DEV_TOOLS_FOLLOWS))
def test_a_flake_that_leaves_upstreams_dev_tools_input_fails_to_lock(
    nix: nixa.Nix, repo_root: Path, tmp_path: Path, flake: str
) -> None:
    """Each flake that takes BeTrace as an input makes dev-tools follow another input; without
    that line the Nix of the tests fails on the stand-in's missing folder, as Nix 2.26 and later
    fail on upstream's (checked against a model of Nix's locking, read in its source)."""
    folder = repo_root / ("docker" if flake == "docker" else nixa.EXAMPLES[flake])
    copy = tmp_path / flake
    broken_copy(folder / "flake.nix", copy, DEV_TOOLS_FOLLOWS[flake], "")
    inputs = DOCKER_INPUTS if flake == "docker" else EXAMPLE_INPUTS
    done = nix.flake("flake show", str(copy), inputs, "--json")
    assert done.returncode != 0 and "/nonexistent/betrace-dev-tools" in done.stderr, done.stderr
    kept = nix.flake("flake show", str(folder), inputs, "--json")
    assert kept.returncode == 0, kept.stderr


# --- the stand-in of upstream's flake ---------------------------------------------------------


def test_upstream_stand_in_has_an_app_that_shadows_the_backend_package(nix: nixa.Nix) -> None:
    """Upstream's flake.nix (at the pinned commit) exports apps.<system>.backend, a development
    script, next to packages.<system>.backend: the doc gate's Nix model depends on both."""
    shown = nix.flake_json("flake show", str(STUBS / "betrace"), UPSTREAM_AS_ROOT)
    systems = {"x86_64-linux", "aarch64-linux", "x86_64-darwin", "aarch64-darwin"}
    for category in ("packages", "apps", "devShells"):
        assert set(shown[category]) == systems, category
    linux = {category: set(shown[category]["x86_64-linux"]) for category in shown}
    assert {"backend", "grafana-plugin", "frontend", "all", "default"} <= linux["packages"]
    assert {"backend", "frontend", "dev", "default"} <= linux["apps"]
    plugin = nix.flake_json(
        "eval",
        f"{STUBS / 'betrace'}#packages.x86_64-linux.grafana-plugin.pname",
        UPSTREAM_AS_ROOT,
    )
    assert plugin == "betrace-grafana-plugin"


# --- each rule, broken in the recorded arguments -------------------------------------------------


@pytest.fixture(scope="module")
def recorded_packages(nix: nixa.Nix, repo_root: Path) -> dict[str, Any]:
    return {
        name: nix.eval_expr(nixa.package_expr(STUBS, repo_root / path))
        for name, path in PACKAGES.items()
    }


def _set(*path_and_value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to recorded arguments: set args[a][b]... to a value (a missing value deletes)."""
    *path, value = path_and_value

    def change(args: dict[str, Any]) -> None:
        node = args
        for key in path[:-1]:
            node = node[key]
        if value is _MISSING:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return change


_MISSING = object()
_OTHER_HASH = "sha256-" + "B" * 43 + "="
PACKAGE_RULE_BREAKS = [
    ("betrace-backend", _set("pname", "betrace"), "pname is 'betrace', not 'betrace-backend'"),
    ("betrace-backend", _set("meta", "homepage", "https://example.org"),
     "meta.homepage is 'https://example.org', expected https://github.com/betrace-hq/betrace"),
    ("betrace-backend", _set("src", "fetcher", "fetchurl"),
     "src is not pinned with fetchFromGitHub"),
    ("betrace-backend", _set("src", "owner", "someone"),
     "src is someone/betrace, expected betrace-hq/betrace"),
    ("betrace-backend", _set("src", "hash", "sha256:abc"), "src.hash is not an SRI sha256 hash"),
    ("betrace-backend", _set("subPackages", ["cmd/other"]),
     "subPackages is ['cmd/other'], expected ['cmd/betrace-backend']"),
    ("betrace-backend", _set("ldflags", ["-s", "-w"]),
     "ldflags must set -X main.version=${version}"),
    ("betrace-backend", _set("vendorHash", _MISSING),
     "vendorHash must be null (vendor/ is committed), found None"),
    ("grafana-betrace-app", _set("sourceRoot", "source"),
     "sourceRoot must point at grafana-betrace-app/"),
    ("grafana-betrace-app", _set("npmDepsHash", _MISSING), "npmDepsHash is missing"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "change", "message"),
    PACKAGE_RULE_BREAKS,
    ids=[b[2][:30] for b in PACKAGE_RULE_BREAKS],
)
def test_each_package_rule_is_reported(
    recorded_packages: dict[str, Any],
    release_data: ReleaseData,
    name: str,
    change: Callable[[dict[str, Any]], None],
    message: str,
) -> None:
    recorded = copy.deepcopy(recorded_packages[name])
    change(recorded["args"])
    problems = nixa.package_problems(recorded, name, release_data, "pkg.nix")
    assert f"pkg.nix: {message}" in problems, problems


def test_package_of_another_builder_is_reported(
    recorded_packages: dict[str, Any], release_data: ReleaseData
) -> None:
    recorded = {**recorded_packages["betrace-backend"], "function": "stdenv.mkDerivation"}
    problems = nixa.package_problems(recorded, "betrace-backend", release_data, "pkg.nix")
    assert problems == [
        "pkg.nix: built with stdenv.mkDerivation, not buildGoModule/buildNpmPackage"
    ]


@pytest.fixture(scope="module")
def recorded_images(nix: nixa.Nix, repo_root: Path) -> Any:
    return images_recorded(nix, repo_root / "docker")


def _env_var(name: str, value: str) -> Callable[[dict[str, Any]], None]:
    def change(args: dict[str, Any]) -> None:
        env = [e for e in args["config"]["Env"] if not e.startswith(f"{name}=")]
        args["config"]["Env"] = [*env, f"{name}={value}"]

    return change


IMAGE_RULE_BREAKS = [
    ("backend", _set("config", "Entrypoint", ["/bin/sh"]),
     "backend: Entrypoint ['/bin/sh'] is not the betrace-backend binary"),
    ("backend", _env_var("BETRACE_PORT_GRPC", "9000"),
     "backend: BETRACE_PORT_GRPC=9000 but the grpc port is 12012"),
    ("backend", _env_var("BACKEND_PORT", "1"),
     "backend: sets BACKEND_PORT, which the backend never reads"),
    ("grafana-plugin", _env_var("GF_PATHS_PLUGINS", "/plugins"),
     "grafana-plugin: GF_PATHS_PLUGINS is '/plugins'; it must be '/var/lib/grafana/plugins' "
     "(releases.yaml plugin.plugins_dir), where the image has it"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "change", "message"), IMAGE_RULE_BREAKS, ids=[b[2][:30] for b in IMAGE_RULE_BREAKS]
)
def test_each_image_rule_is_reported(
    recorded_images: Any,
    release_data: ReleaseData,
    name: str,
    change: Callable[[dict[str, Any]], None],
    message: str,
) -> None:
    args = copy.deepcopy(recorded_images[IMAGES[name]])
    assert nixa.image_problems(name, args, release_data) == []
    change(args)
    assert message in nixa.image_problems(name, args, release_data)


def test_the_stand_in_lacks_the_subflakes_upstreams_commit_lacks() -> None:
    """Upstream's flake.lock locks relative path inputs (`path:./X`); the stand-in declares as
    missing exactly those whose folder has no flake.nix in upstream's source at the pinned
    commit, so the model follows upstream: once it adds dev-tools, this test fails."""
    tree = upstream.source_tree()
    lock = json.loads((tree / "flake.lock").read_text(encoding="utf-8"))
    nodes = lock["nodes"]
    relative = {
        name: nodes[node]["locked"]["path"]
        for name, node in nodes["root"]["inputs"].items()
        if nodes[node].get("locked", {}).get("type") == "path"
        and str(nodes[node]["locked"].get("path", "")).startswith("./")
    }
    assert relative, "upstream's lock has no relative path input any more: drop the stand-in's"
    missing = {name for name, path in relative.items() if not (tree / path / "flake.nix").is_file()}
    stand_in = (STUBS / "betrace" / "flake.nix").read_text(encoding="utf-8")
    declared = set(re.findall(r'inputs\.([\w-]+)\.url = "path:/nonexistent/', stand_in))
    assert declared == missing
