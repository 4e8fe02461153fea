"""Time the doc gate with figures that compare across machines: a fresh clone, the machine's
record, baselines measured in the same run, ratios, instruction counts and a profile.

Run with `make bench` (or `python benchmarks/bench_site.py --help`); benchmarks/README.md says
how to read the figures. Results go to benchmarks/results/<date>-<label>.json and .md (not
committed) and the table is printed.

By default (`--only` empty) the run measures, on a fresh `git clone` of HEAD:

- the machine: cores, CPU model, load before and after, how much CPU other work used meanwhile,
  Python and tool versions, whether the gate's isolation (bubblewrap) is active;
- baselines: `python -c pass`, one representative call of each external program the gate runs
  (the tool floor), and plain Sybil parsing the same pages;
- the gate, `pytest docs/`, three ways: a first run (no project bytecode, as after a clone), with
  no bytecode at all (every module compiled), and warm; every run is profiled
  (BETRACE_GATE_PROFILE, see src/betrace_dist/gate/profile.py: cheap) for the engine's time per
  block in wall and CPU seconds;
- one warm gate run under cProfile: where the engine's own time goes;
- instruction counts (callgrind) of one page's ledger, in process: repeatable under load.

Opt-in parts (name them in --only): build, serve, scale, xdist (the older site-wide timings).
`--in-place` measures the working tree itself, labelled "not a fresh clone".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench_baselines as baselines
import bench_machine as machine
import bench_report as report_lib

HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = HERE.parent
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
DEFAULT_PARTS = ("baselines", "gate", "budgets", "cprofile", "instructions")
ALL_PARTS = (*DEFAULT_PARTS, "suite", "build", "serve", "scale", "xdist")
COLD_FIRST = "first run (no project bytecode)"
COLD_ALL = "no bytecode at all"
WARM = "warm"
#: what a synthetic site needs beside docs/ (read by the macros, the snippets and the hooks)
SITE_PARTS = ("mkdocs.yml", "macros", "releases.yaml", "src", "helm", "docker", "nix", ".github")
SITE_PARTS += ("Makefile", "pyproject.toml", "README.md")
PARSE_ONLY_CONFTEST = '''"""Plain Sybil, parse only: every fenced block found, nothing checked."""

import re
from pathlib import Path

from sybil import Sybil
from sybil.parsers.markdown import CodeBlockParser

FENCE = re.compile(r"^[ \\t>]*(?:```|~~~)[ \\t]*\\{?\\.?([\\w+-]+)", re.M)
PAGES = Path(__file__).parent.rglob("*.md")
LANGUAGES = sorted({m.group(1) for page in PAGES for m in FENCE.finditer(page.read_text())})


def _parse_only(example):
    return None


pytest_collect_file = Sybil(
    parsers=[CodeBlockParser(language, _parse_only) for language in LANGUAGES],
    patterns=["*.md"],
).pytest()
'''


class Bench:
    def __init__(self, root: Path, runs: int, keep: Path) -> None:
        self.root = root
        self.runs = runs
        self.keep = keep  # scratch space for this benchmark run
        self.py = sys.executable
        self.last_cpu = 0.0
        self.last_code = 0

    # -- running -----------------------------------------------------------------------------
    def env(self, cold: bool = False, **extra: str) -> dict[str, str]:
        env = dict(os.environ, NO_MKDOCS_2_WARNING="1", **extra)
        env["PATH"] = os.pathsep.join(
            [str(self.root / ".tools" / "bin"), str(Path(self.py).parent), env.get("PATH", "")]
        )
        env["PYTHONPATH"] = str(self.root / "src")
        env.pop("BETRACE_GATE_PROFILE", None) if "BETRACE_GATE_PROFILE" not in extra else None
        env.pop("PYTHONPYCACHEPREFIX", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if cold:  # an empty bytecode cache: every module is compiled, the venv's and stdlib's too
            env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="pyc-cold-", dir=self.keep)
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env  # otherwise the checkout's own __pycache__, as a reader's runs use it

    def timed(
        self, cmd: list[str], cwd: Path, env: dict[str, str], allowed: tuple[int, ...] = (0,)
    ) -> float:
        """Wall seconds of a command; its CPU seconds (all its processes) in self.last_cpu;
        self.last_code its exit status, which must be one of `allowed`."""
        cpu = baselines.children_cpu()
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        self.last_cpu = baselines.children_cpu() - cpu
        self.last_code = done.returncode
        if done.returncode not in allowed:
            sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
        return elapsed

    def repeat(self, name: str, once: Callable[[], float], runs: int | None = None) -> dict:
        runs = runs or self.runs
        times = [once() for _ in range(runs)]
        row = summary(name, times)
        print(f"  {name}: median {row['median_s']} s ({runs} runs)", flush=True)
        return row

    def pytest(self, target: str, cwd: Path | None = None, *extra: str) -> list[str]:
        return [self.py, "-m", "pytest", target, "-q", "-p", "no:cacheprovider", *extra]

    # -- the real site -----------------------------------------------------------------------
    def gate_run(self, cold: bool) -> tuple[float, float, dict[str, Any], float]:
        """One profiled gate run: wall and CPU seconds, its profile, the 1-minute load after."""
        path = self.keep / f"profile-{time.time_ns()}.json"
        env = self.env(cold, BETRACE_GATE_PROFILE=str(path))
        wall = self.timed(self.pytest("docs"), self.root, env)
        profile = load_profile(path)
        # jailed programs are reaped in their PID namespaces: the children's usage misses
        # them, the pages' cpuacct groups do not (the profile's `jailed`)
        jailed = sum(t.get("cpu_seconds", 0.0) for t in profile.get("jailed", {}).values())
        return wall, self.last_cpu + jailed, profile, machine.load_average()[:1][0]

    def gate(self, runs: int) -> dict[str, dict[str, Any]]:
        """The gate three ways; every run profiled (engine time per block, wall and CPU)."""
        out: dict[str, dict[str, Any]] = {}
        for variant in (COLD_FIRST, COLD_ALL, WARM):
            walls, cpus, profiles, loads = [], [], [], []
            for _ in range(runs):
                if variant == COLD_FIRST:
                    remove_bytecode(self.root)
                wall, cpu, prof, load = self.gate_run(cold=variant == COLD_ALL)
                walls.append(wall)
                cpus.append(cpu)
                profiles.append(prof)
                loads.append(load)
            out[variant] = {
                "wall": summary(f"gate: pytest docs/ ({variant})", walls, cpus),
                "profile": report_lib.profile_summary(profiles),
                "load_after_each": loads,
            }
            out[variant]["tools"] = profiles[-1]["tools"]
            out[variant]["phases"] = profiles[-1]["phases"]
            out[variant]["notes"] = profiles[-1].get("notes", {})
            print(f"  gate ({variant}): median {out[variant]['wall']['median_s']} s", flush=True)
        return out

    # -- the budgets of the performance issue ------------------------------------------------
    def budgets(self, runs: int) -> dict[str, Any]:
        """The figures the budgets name: every page run on 2 workers, a warm run with nothing
        changed (the result cache on), each page alone (as while writing it), the build."""
        out: dict[str, Any] = {}
        env = {k: v for k, v in self.env().items() if k != "CI"}  # CI turns the cache off
        every = self.pytest("docs", None, "-n", "2")
        out["cold_2_workers"] = self._walls("gate, every page run, -n 2", every, env, runs)
        # --no-live: the live tier runs every page, so with it on the cache is never used and
        # this figure would be one more full run
        cached = [self.py, "-m", "pytest", "docs", "-q", "-n", "0", "--no-live"]
        self.timed([*cached, "--cache-clear"], self.root, env)  # fills the cache
        out["warm_cached"] = self._walls("gate, nothing changed (cache)", cached, env, runs)
        pages: dict[str, Any] = {}
        for page in sorted((self.root / "docs").rglob("*.md")):
            name = page.relative_to(self.root).as_posix()
            cmd = self.pytest(name, None, "-n", "0")
            self.timed(cmd, self.root, env, allowed=(0, 5))  # 5: no block to check
            if self.last_code == 0:
                pages[name] = self._walls(f"one page: {name}", cmd, env, runs)
        slowest = max(pages, key=lambda n: pages[n]["median_s"])
        out["one_page"] = {"pages": pages, "slowest": slowest, **pages[slowest]}
        build = [self.py, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(self.keep / "b")]
        out["build"] = self._walls("mkdocs build --strict", build, env, runs)
        return out

    def suite(self) -> dict[str, Any]:
        """The whole test suite as `make test` runs it, once (it takes minutes)."""
        cmd = [
            self.py,
            "-m",
            "pytest",
            "-n",
            "2",
            "--dist=loadfile",
            "-q",
            "-p",
            "no:cacheprovider",
        ]
        return self._walls("make test (pytest -n 2)", cmd, self.env(), 1)

    def _walls(self, name: str, cmd: list[str], env: dict[str, str], runs: int) -> dict:
        walls, cpus = [], []
        for _ in range(runs):
            walls.append(self.timed(cmd, self.root, env))
            cpus.append(self.last_cpu)
        row = summary(name, walls, cpus)
        print(f"  {name}: median {row['median_s']} s", flush=True)
        return row

    def cprofile(self) -> dict[str, Any]:
        """One warm gate run under cProfile, summarised (own time, cumulative, by area)."""
        out = self.keep / "gate.prof"
        cmd = [self.py, "-m", "cProfile", "-o", str(out), "-m", "pytest", "docs", "-q"]
        self.timed([*cmd, "-p", "no:cacheprovider"], self.root, self.env())
        return report_lib.cprofile_summary(str(out))

    def sybil_parse_only(self, runs: int) -> dict[str, Any]:
        site = self.keep / "parse-only-1x"
        synthetic_site(self.root, site, 1)
        (site / "docs" / "conftest.py").write_text(PARSE_ONLY_CONFTEST)
        self.timed(self.pytest("docs"), site, self.env())  # warm-up: compiles the conftest
        walls, cpus = [], []
        for _ in range(runs):
            walls.append(self.timed(self.pytest("docs"), site, self.env()))
            cpus.append(self.last_cpu)
        return summary("plain Sybil, parse only, same pages", walls, cpus)

    def build(self) -> dict:
        out = self.keep / "site"
        cmd = [self.py, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)]
        return self.repeat("mkdocs build --strict", lambda: self.timed(cmd, self.root, self.env()))

    def serve(self) -> dict:
        """Edit a page of a running `mkdocs serve`; time until the served page has the edit."""
        site = self.keep / "serve-site"
        copy_site(self.root, site)
        port = free_port()
        log = (self.keep / "serve.log").open("w")
        proc = subprocess.Popen(
            [self.py, "-m", "mkdocs", "serve", "-a", f"127.0.0.1:{port}"],
            cwd=site,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with everything it started
        )
        page = site / "docs" / "reference" / "compose-stack.md"
        url = f"http://127.0.0.1:{port}{served_path(site)}reference/compose-stack/"
        original = page.read_text(encoding="utf-8")
        try:
            wait_for(url, lambda body: True, timeout=120)  # the first build
            times = []
            for i in range(self.runs):
                marker = f"bench-edit-{i}-{time.time_ns()}"
                time.sleep(1.0)  # let the watcher settle after the previous rebuild
                start = time.perf_counter()
                page.write_text(original + f"\n{marker}\n", encoding="utf-8")
                wait_for(url, lambda body, m=marker: m in body, timeout=120)
                times.append(time.perf_counter() - start)
        finally:
            stop(proc)
            log.close()
        row = summary("mkdocs serve: rebuild after editing a page", times)
        print(f"  {row['name']}: median {row['median_s']} s", flush=True)
        return row

    # -- scaling -----------------------------------------------------------------------------
    def scaling(self, sizes: list[int], runs: int) -> list[dict]:
        rows = []
        for n in sizes:
            site = self.keep / f"synthetic-{n}x"
            pages = synthetic_site(self.root, site, n)
            parse_only = self.keep / f"parse-only-{n}x"
            synthetic_site(self.root, parse_only, n)
            (parse_only / "docs" / "conftest.py").write_text(PARSE_ONLY_CONFTEST)
            walls, engine, blocks = [], [], 0
            for _ in range(runs):
                path = self.keep / f"profile-{n}x-{time.time_ns()}.json"
                env = self.env(BETRACE_GATE_PROFILE=str(path))
                walls.append(self.timed(self.pytest("docs"), site, env))
                rep = load_profile(path)
                blocks = rep["blocks"]
                engine.append(rep["engine_ms_per_block"])
            sybil = [self.timed(self.pytest("docs"), parse_only, self.env()) for _ in range(runs)]
            wall = statistics.median(walls)
            row = {
                "size": f"{n}x",
                "pages": pages,
                "blocks": blocks,
                "runs": runs,
                "gate_median_s": round(wall, 3),
                "gate_ms_per_block": round(1000 * wall / blocks, 2),
                "engine_ms_per_block": round(statistics.median(engine), 3),
                "sybil_parse_only_median_s": round(statistics.median(sybil), 3),
                "sybil_parse_only_ms_per_block": round(1000 * statistics.median(sybil) / blocks, 3),
            }
            print(f"  scaling {row}", flush=True)
            rows.append(row)
        return rows

    def xdist(self, n: int, runs: int) -> dict:
        site = self.keep / f"synthetic-{n}x"
        if not site.exists():
            synthetic_site(self.root, site, n)
        serial = [self.timed(self.pytest("docs"), site, self.env()) for _ in range(runs)]
        two = self.pytest("docs", None, "-n", "2", "--dist=loadfile")
        parallel = [self.timed(two, site, self.env()) for _ in range(runs)]
        row = {
            "corpus": f"{n}x",
            "runs": runs,
            "serial_median_s": round(statistics.median(serial), 3),
            "n2_loadfile_median_s": round(statistics.median(parallel), 3),
            "speedup": round(statistics.median(serial) / statistics.median(parallel), 2),
        }
        print(f"  xdist {row}", flush=True)
        return row


# -- helpers ---------------------------------------------------------------------------------
def summary(name: str, times: list[float], cpus: list[float] | None = None) -> dict[str, Any]:
    row = {
        "name": name,
        "runs": len(times),
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
    }
    if cpus:
        row["cpu_median_s"] = round(statistics.median(cpus), 3)
    return row


def load_profile(path: Path) -> dict[str, Any]:
    """The profile a run wrote (several files under xdist: merged)."""
    sys.path.insert(0, str(DEFAULT_ROOT / "src"))
    from betrace_dist.gate.profile import merge

    files = sorted(path.parent.glob(f"{path.stem}*.json"))
    return merge([json.loads(f.read_text()) for f in files])


def copy_site(root: Path, dest: Path) -> None:
    """A copy of the site's sources (what `mkdocs serve` and the gate read)."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in (*SITE_PARTS, "docs"):
        src = root / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / part)


def synthetic_site(root: Path, dest: Path, copies: int) -> int:
    """The real site with its pages copied `copies` times (docs/ + docs/copy2/ ...): the same
    pages, blocks per page and mkdocs.yml. Returns the number of pages."""
    if dest.exists():
        shutil.rmtree(dest)
    copy_site(root, dest)
    docs = dest / "docs"
    pages = [p for p in docs.rglob("*.md") if "overrides" not in p.parts]
    for k in range(2, copies + 1):
        for page in pages:
            target = docs / f"copy{k}" / page.relative_to(docs)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(page, target)
    return len(pages) * copies


def served_path(site: Path) -> str:
    """The path `mkdocs serve` serves the site under: the path of its site_url."""
    for line in (site / "mkdocs.yml").read_text(encoding="utf-8").splitlines():
        if line.startswith("site_url:"):
            path = urllib.parse.urlparse(line.split(":", 1)[1].strip()).path
            return path if path.endswith("/") else path + "/"
    return "/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, ok: Callable[[str], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - local server
                if ok(response.read().decode("utf-8", "replace")):
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.02)
    raise TimeoutError(f"{url} did not show the change within {timeout} s")


def stop(proc: subprocess.Popen[Any]) -> None:
    """Stop a server and everything it started (its process group), forcefully if it hangs."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def table(report: dict[str, Any]) -> str:
    out = ["| what | median (s) | min | max | runs |", "|---|---|---|---|---|"]
    for r in report["results"]:
        out.append(f"| {r['name']} | {r['median_s']} | {r['min_s']} | {r['max_s']} | {r['runs']} |")
    prof = report.get("profile")
    if prof:
        out += [
            "",
            f"Profile of one warm gate run: {prof['blocks']} blocks, "
            f"{prof['block_seconds']} s in blocks, {prof['external_seconds']} s in external "
            f"tools, engine {prof['engine_ms_per_block']} ms per block",
            "",
        ]
        out += [
            "| checker | blocks | total (s) | external (s) | engine (s) |",
            "|---|---|---|---|---|",
        ]
        for name, c in sorted(prof["checkers"].items(), key=lambda kv: -kv[1]["seconds"]):
            out.append(
                f"| {name} | {int(c['blocks'])} | {c['seconds']:.3f} | {c['external']:.3f} "
                f"| {c['engine']:.3f} |"
            )
        out += [
            "",
            "| external tool / engine phase | calls | total (s) | CPU (s) |",
            "|---|---|---|---|",
        ]
        for name, t in sorted(prof["tools"].items(), key=lambda kv: -kv[1]["seconds"]):
            out.append(f"| {name} | {t['calls']} | {t['seconds']:.3f} | {_cpu(t)} |")
        for name, t in sorted(prof["phases"].items()):
            out.append(f"| ({name}) | {t['calls']} | {t['seconds']:.3f} | {_cpu(t)} |")
        out += [f"- {k}: {v}" for k, v in sorted(prof.get("notes", {}).items())]
    if report.get("scaling"):
        out += [
            "",
            "| corpus | pages | blocks | gate (s) | ms/block | engine ms/block "
            "| Sybil parse-only (s) | parse-only ms/block |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in report["scaling"]:
            out.append(
                f"| {r['size']} | {r['pages']} | {r['blocks']} | {r['gate_median_s']} "
                f"| {r['gate_ms_per_block']} | {r['engine_ms_per_block']} "
                f"| {r['sybil_parse_only_median_s']} | {r['sybil_parse_only_ms_per_block']} |"
            )
    x = report.get("xdist")
    if x:
        out += [
            "",
            f"xdist on the {x['corpus']} corpus: serial {x['serial_median_s']} s, "
            f"-n 2 --dist=loadfile {x['n2_loadfile_median_s']} s, speed-up {x['speedup']}x",
        ]
    return "\n".join(out)


def _cpu(t: dict[str, Any]) -> str:
    """A profile entry's CPU seconds (older profiles of engine phases have none)."""
    return f"{t['cpu_seconds']:.3f}" if "cpu_seconds" in t else "-"


def remove_bytecode(root: Path) -> None:
    """Delete the checkout's __pycache__ folders (not the venv's, not the tools'): the state of a
    fresh clone. They are caches, rebuilt by the next run."""
    for folder in ("src", "docs", "macros", "tests", "benchmarks"):
        for cache in (root / folder).rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)


def fresh_clone(root: Path, dest: Path) -> dict[str, Any]:
    """`git clone` of the checkout's HEAD into `dest`; the venv running this script and the
    checkout's .tools (downloaded binaries, not in git) are reused, and the record says so."""
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(root), str(dest)], check=True)
    tools = root / ".tools"
    if tools.is_dir():
        (dest / ".tools").symlink_to(tools.resolve(), target_is_directory=True)
        # .gitignore's `/.tools/` matches a folder, not a link: keep the link out of the files
        # the gate lays out in a page's sandbox, as a real folder would be
        with (dest / ".git" / "info" / "exclude").open("a", encoding="utf-8") as exclude:
            exclude.write("/.tools\n")
    # The live tier needs upstream's snapshot beside the checkout, and a clone in a temporary
    # folder has none: the runs take the source checkout's snapshot and its backend build, so
    # the gate runs its backend steps as `make test` does there (and builds nothing meanwhile).
    for name, value in upstream_env().items():
        os.environ.setdefault(name, value)
    status = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return checkout_record(root, dest, machine.FRESH, bool(status.strip()))


def upstream_env() -> dict[str, str]:
    """Where the source checkout keeps upstream's snapshot and the backend built from it."""
    from betrace_dist import upstream  # the venv's install: the source checkout's paths

    return {
        upstream.SNAPSHOT_ENV: str(upstream.snapshot_dir()),
        upstream.CACHE_ENV: str(upstream.cache_root()),
    }


def checkout_record(root: Path, measured: Path, label: str, dirty: bool) -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "-C", str(measured), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "label": label,
        "measured": str(measured),
        "source": str(root),
        "commit": commit,
        "uncommitted_changes_in_source": dirty
        and label == machine.FRESH,  # a clone measures the commit, not the changes
        "venv_reused": sys.prefix,
        "tools_reused": str(root / ".tools"),
        "upstream_reused": {k: os.environ.get(k, "") for k in upstream_env()},
    }


def check_imports_from(env: dict[str, str], root: Path, py: str) -> None:
    """The measured checkout's code must be what runs (not the venv's editable install)."""
    where = subprocess.run(
        [py, "-c", "import betrace_dist; print(betrace_dist.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        check=True,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(root.resolve()):
        sys.exit(f"betrace_dist is imported from {where}, not from the measured {root}")


def measure(bench: Bench, args: argparse.Namespace, report: dict[str, Any], save) -> None:
    parts = set(filter(None, args.only.split(","))) or set(DEFAULT_PARTS)
    env = bench.env()
    if "baselines" in parts or "gate" in parts:
        base = report["baselines"]
        base["python_startup"] = baselines.python_startup(bench.py, env)
        calls = baselines.tool_calls(bench.root, bench.keep, bench.py)
        base["tools"] = baselines.tool_units(calls, env, bench.root, args.runs)
        base["sybil_parse_only"] = bench.sybil_parse_only(args.runs)
        base["jail"] = baselines.jail_overhead(bench.py, env, bench.root)
        print(f"  baselines: {json.dumps(base['python_startup'])}", flush=True)
        print(f"  isolation, one command: {json.dumps(base['jail'])}", flush=True)
        save()
    if "gate" in parts:
        report["gate"] = bench.gate(args.runs)
        report["profile_tools"] = report["gate"][WARM]["tools"]
        blocks = int(report["gate"][WARM]["profile"].get("blocks") or 0)
        per_block = baselines.isolation_per_block(
            report["baselines"].get("jail", {}), report["profile_tools"], blocks
        )
        report["isolation_ms_per_block"] = per_block
        print(f"  isolation per block: {per_block} ms", flush=True)
        save()
    if "budgets" in parts:
        report["budgets"] = bench.budgets(args.runs)
        save()
    if "suite" in parts:
        report["suite"] = bench.suite()
        save()
    if "cprofile" in parts:
        report["cprofile"] = bench.cprofile()
        save()
    if "instructions" in parts:
        report["instructions"] = instructions(bench, env)
        save()
    legacy(bench, parts, args, report, save)


def instructions(bench: Bench, env: dict[str, str]) -> dict[str, Any]:
    perf = baselines.perf_instructions(env["PATH"])
    valgrind = baselines.callgrind_available(env["PATH"])
    if valgrind is None:
        return {"perf_stat_instructions": perf, "callgrind": "valgrind not installed"}
    counts = baselines.instruction_counts(
        valgrind, bench.py, bench.root / "mkdocs.yml", env, bench.root
    )
    print(f"  instructions: {counts}", flush=True)
    return {"perf_stat_instructions": perf, **counts}


def legacy(bench: Bench, parts: set[str], args: argparse.Namespace, report, save) -> None:
    """The older site-wide timings, on request: build, serve, scale, xdist."""
    if "build" in parts:
        report["results"].append(bench.build())
        save()
    if "serve" in parts:
        try:
            report["results"].append(bench.serve())
        except (TimeoutError, OSError) as exc:  # reported, the other measurements go on
            report["serve_error"] = str(exc)
        save()
    if "scale" in parts:
        report["scaling"] = []
        for n in [int(s) for s in args.scales.split(",") if s]:
            report["scaling"] += bench.scaling([n], args.scale_runs)
            save()
    if "xdist" in parts:
        report["xdist"] = bench.xdist(10, args.scale_runs)
        save()


def finish(report: dict[str, Any]) -> None:
    """Ratios to the baselines, and the explanations, from what was measured."""
    base = report.get("baselines", {})
    floor: dict[str, Any] = {}
    if base.get("tools") and report.get("profile_tools"):
        floor = baselines.tool_floor(base["tools"], {"tools": report["profile_tools"]})
        base["tool_floor"] = floor
    startup, sybil = base.get("python_startup", {}), base.get("sybil_parse_only", {})
    bases = {
        "python_startup": (startup.get("median_s"), startup.get("cpu_median_s")),
        "tool_floor": (floor.get("floor_s"), floor.get("floor_cpu_s")),
        "sybil_parse_only": (sybil.get("median_s"), sybil.get("cpu_median_s")),
    }
    figures: list[tuple[str, float | None, float | None]] = []
    for variant, g in report.get("gate", {}).items():
        figures.append((f"gate, {variant}", g["wall"]["median_s"], g["wall"].get("cpu_median_s")))
    warm = report.get("gate", {}).get(WARM, {}).get("profile", {})
    if warm:
        figures += [
            ("gate warm: inside external programs", warm["external_seconds"], None),
            ("gate warm: external programs' CPU", None, warm["external_cpu_seconds"]),
            ("gate warm: engine", warm["engine_seconds"], warm["engine_cpu_seconds"]),
            (
                "gate warm: engine per block",
                _ms_to_s(warm["engine_ms_per_block"]),
                _ms_to_s(warm["engine_cpu_ms_per_block"]),
            ),
        ]
    report["ratios"] = report_lib.ratio_rows(figures, bases)
    report["explanations"] = report_lib.explanations(report)


def _ms_to_s(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 1000, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="checkout to measure")
    parser.add_argument(
        "--in-place",
        action="store_true",
        help='measure --root itself, not a fresh clone of it (labelled "not a fresh clone")',
    )
    parser.add_argument("--label", default="", help="suffix of the results file")
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per measurement")
    parser.add_argument(
        "--scales", default=os.environ.get("BENCH_SCALES", "1,10,50"), help="synthetic sizes"
    )
    parser.add_argument("--scale-runs", type=int, default=1, help="runs per synthetic size")
    parser.add_argument("--only", default="", help="comma list of " + ",".join(ALL_PARTS))
    parser.add_argument(
        "--report", type=Path, help="print the Markdown of an earlier results .json and stop"
    )
    args = parser.parse_args()
    if args.report:  # e.g. another machine's results, read with this version's report
        earlier = json.loads(args.report.read_text(encoding="utf-8"))
        finish(earlier)
        print(report_lib.markdown(earlier))
        return
    unknown = set(filter(None, args.only.split(","))) - set(ALL_PARTS)
    if unknown:
        parser.error(f"--only: unknown parts {sorted(unknown)}; known: {', '.join(ALL_PARTS)}")
    run(args)


def run(args: argparse.Namespace) -> None:
    source = args.root.resolve()
    folder = HERE / "results"
    folder.mkdir(exist_ok=True)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    name = when[:19].replace(":", "") + (f"-{args.label}" if args.label else "")
    out = folder / f"{name}.json"
    before = machine.CpuTimes.sample()
    load_before = machine.load_average()
    with tempfile.TemporaryDirectory(prefix="betrace-bench-") as scratch:
        keep = Path(scratch)
        if args.in_place:
            root, checkout = source, checkout_record(source, source, machine.IN_PLACE, False)
            print(f"NOT A FRESH CLONE: measuring the working tree {source} as it is", flush=True)
        else:
            root = keep / "clone"
            checkout = fresh_clone(source, root)
            print(f"measuring a fresh clone of {source} at {checkout['commit'][:12]}", flush=True)
        bench = Bench(root, args.runs, keep)
        check_imports_from(bench.env(), root, bench.py)
        report: dict[str, Any] = {
            "when": when,
            "label": args.label,
            "note": report_lib.RATIO_NOTE,
            "checkout": checkout,
            "machine": machine.record(bench.env()["PATH"], root, checkout["label"]),
            "baselines": {},
            "results": [],
        }
        report["machine"]["load_before"] = load_before

        def save() -> None:  # after each part, so a long run that stops keeps what it measured
            out.write_text(json.dumps(report, indent=2) + "\n")

        measure(bench, args, report, save)
    report["machine"]["load_after"] = machine.load_average()
    cores = report["machine"]["cores"]
    report["machine"]["sharing"] = machine.sharing(before, machine.CpuTimes.sample(), cores)
    finish(report)
    save()
    text = report_lib.markdown(report)
    if report["results"] or report.get("scaling") or report.get("xdist"):
        text += "\n\n" + table(report)
    out.with_suffix(".md").write_text(text + "\n")
    print()
    print(text)
    print(f"\nwritten to {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
