"""One run's state lives in one object (gate/run.py), none in the gate's modules: two runs in
one process share nothing, and no module of src/betrace_dist/gate changes module-level state
while it runs (an `ast` check, with a written allow-list)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.gate.checkers.shell import ShellChecker
from betrace_dist.gate.collect import Gate
from betrace_dist.gate.lexer import blocks
from betrace_dist.gate.live import Ran
from betrace_dist.gate.run import run_of

from .conftest import require_tool
from .test_live_tier import STAND_IN, live_site

pytest_plugins = ["pytester"]

GATE = REPO_ROOT / "src" / "betrace_dist" / "gate"
#: methods that change a list, dict or set in place
MUTATORS = frozenset(
    {"append", "extend", "insert", "update", "setdefault", "pop", "popitem", "clear", "add"}
    | {"discard", "remove"}
)
#: Module-level names the gate may change while it runs, each with why that is no run state.
ALLOWED = {
    "_openat2_works": "safefs.py: whether this kernel has openat2, a fact of the machine found "
    "once, the same for every run",
    "ACTIVE": "profile.py: opt-in timing of the whole process (BETRACE_GATE_PROFILE), off unless "
    "an operator asks; it wraps subprocess for the process, not for one run",
    "RECORDER": "profile.py: what that opt-in timing recorded, written when the process ends",
    "subprocess.Popen": "profile.py: the same opt-in timing's wrapper of every subprocess",
    "flags.HELP_STORE": "collect.py: where the tools' help texts are kept, each under the "
    "sha256 of its program file: a cache whose entries are the same for every run",
    "os.environ": "render.py: NO_MKDOCS_2_WARNING, mkdocs' own switch, the same for every run",
}


def _dotted(node: ast.expr) -> tuple[str | None, str]:
    """The name an expression starts from, and its dotted path without subscripts
    (`a`, `a.b.d` of `a.b[c].d`)."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute | ast.Subscript):
        if isinstance(node, ast.Attribute):
            attrs.insert(0, node.attr)
        node = node.value
    root = node.id if isinstance(node, ast.Name) else None
    return root, ".".join([str(root), *attrs])


def _allowed(dotted: str) -> bool:
    return any(dotted == name or dotted.startswith(name + ".") for name in ALLOWED)


def _module_names(tree: ast.Module) -> set[str]:
    """Names the module binds at its top level: assignments and imports."""
    names: set[str] = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
        if isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _locals(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    args = func.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    names = {a.arg for a in every if a is not None}
    stored = (
        n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    )
    return names | set(stored)


def _changed(node: ast.AST) -> ast.expr | None:
    """What a statement or call changes in place: `x.append(...)`, `x[k] = v`, `m.X = v`."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.value if node.func.attr in MUTATORS else None
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign | ast.Delete):
        targets = node.targets
    elif isinstance(node, ast.AugAssign | ast.AnnAssign):
        targets = [node.target]
    return next((t for t in targets if isinstance(t, ast.Attribute | ast.Subscript)), None)


def module_state_changes(package: Path) -> list[str]:
    """Every place a module of `package` changes module-level state at run time:
    `path:LINE: NAME (how)`, for names outside ALLOWED."""
    found = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = _module_names(tree)
        where = path.relative_to(package.parent).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.Global):
                names = (n for n in node.names if not _allowed(n))
                found += [f"{where}:{node.lineno}: {n} (global)" for n in names]
        funcs = (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
        for func in funcs:
            local = _locals(func)
            for node in ast.walk(func):
                target = _changed(node)
                root, dotted = _dotted(target) if target is not None else (None, "")
                if root in top and root not in local and not _allowed(dotted):
                    found.append(f"{where}:{node.lineno}: {dotted} (changed in {func.name})")
    return sorted(found, key=lambda f: (f.split(":")[0], int(f.split(":")[1])))


def test_no_module_of_the_gate_changes_module_level_state() -> None:
    assert module_state_changes(GATE) == [], "keep a run's state on its GateRun (gate/run.py)"


def test_module_level_state_is_named_with_its_line(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text(
        "RAN = []\nSEEN = {}\n_on = False\n\n\n"
        "def note(x):\n    RAN.append(x)\n    SEEN[x] = 1\n\n\n"
        "def enable():\n    global _on\n    _on = True\n\n\n"
        "def fine(RAN):\n    RAN.append(1)\n    local = []\n    local.append(2)\n"
    )
    assert module_state_changes(pkg) == [
        "pkg/a.py:7: RAN (changed in note)",
        "pkg/a.py:8: SEEN (changed in note)",
        "pkg/a.py:12: _on (global)",
    ]


def _gate(pytester: pytest.Pytester, site: Path, *args: str) -> str:
    ini = str(site / "pytest.ini")
    result = pytester.runpytest_inprocess(
        str(site / "docs"), "-c", ini, "--rootdir", str(site), "-q", "-p", "no:randomly", *args
    )
    return str(result.stdout)


def test_two_runs_in_one_process_share_nothing(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """The first run sends the page's curl to a live backend; the second, in the same process
    with the live tier off, neither lists that command nor runs against that backend."""
    require_tool("bwrap")
    site = live_site(tmp_path)
    # the modules a page's rendering imports (mkdocs' Markdown extensions), imported before
    # the runs: pytester forgets the modules a run imported, and classes must stay the same
    Gate(site / "mkdocs.yml").analyse(site / "docs" / "index.md")
    first = _gate(pytester, site, "--live-backend", str(STAND_IN))
    assert "command(s) sent to the real backend" in first, first[-3000:]
    second = _gate(pytester, site, "--no-live")
    assert "off: --no-live" in second, second[-3000:]
    assert "sent to the real backend" not in second and str(STAND_IN) not in second, second


def test_two_configs_alive_at_once_keep_their_own_live_tier(pytester: pytest.Pytester) -> None:
    """Configured one after the other, each keeps its own tier: the second does not turn the
    first's off, and what one run sends is not in the other's list."""
    on = run_of(pytester.parseconfigure("--live-backend", str(STAND_IN)))
    off = run_of(pytester.parseconfigure("--no-live"))
    assert (on.live.program, on.live.off_reason) == (STAND_IN.resolve(), None)
    assert (off.live.program, off.live.off_reason) == (None, "--no-live")
    on.live.ran.append(Ran(3, "curl http://localhost:8080/v1/health", 200, True, "index.md"))
    assert off.live.ran == [] and off.live_lines == [] and off.gates == []
    assert ShellChecker(on.live.program is not None).plan(_CURL) is None  # curl: run for real
    assert ShellChecker(off.live.program is not None).plan(_CURL) is not None


_CURL = blocks("```console\n$ curl -s http://localhost:12011/v1/health\n{}\n```\n")[0]


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:3000/api/health",  # Grafana: only a model of its paths runs here
        "http://localhost:12012/v1/health",  # the gRPC port
        "$BETRACE_URL/v1/health",  # not known before the block runs
    ],
)
def test_a_curl_to_anything_but_the_backend_is_labelled_modelled(url: str) -> None:
    """The live tier runs only the backend: a curl to Grafana was counted as run for real
    whenever the tier was on (the label said more than what ran)."""
    block = blocks(f"```bash\ncurl -fsS {url}\n```\n")[0]
    planned = ShellChecker(live_on=True).plan(block)
    assert planned is not None and planned[0] == "modelled", planned
    assert "the running services" in planned[1], planned


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:3000/api/plugin-proxy/betrace-app/backend/v1/rules",
        "http://127.0.0.1:3000/api/plugin-proxy/betrace-app/backend/v1/health",
    ],
)
def test_a_call_through_grafanas_proxy_route_is_labelled_run(url: str) -> None:
    """The live tier sends a call of Grafana's app proxy route to the real backend behind it
    (tests/test_live_tier.py): with the tier on, the block ran for real; off, it is modelled."""
    block = blocks(f"```bash\ncurl -fsS -u admin {url}\n```\n")[0]
    assert ShellChecker(live_on=True).plan(block) is None
    planned = ShellChecker(live_on=False).plan(block)
    assert planned is not None and planned[0] == "modelled", planned
    elsewhere = "https://grafana.example/api/plugin-proxy/betrace-app/backend/v1/health"
    remote = blocks(f"```bash\ncurl -fsS -u admin {elsewhere}\n```\n")  # a reader's Grafana
    planned = ShellChecker(live_on=True).plan(remote[0])
    assert planned is not None and planned[0] == "modelled", planned
