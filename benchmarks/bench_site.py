"""Time the doc gate and the site build: several runs, medians, JSON + a Markdown table.

Run with `make bench` (or `python benchmarks/bench_site.py --help`). Results go to
benchmarks/results/<date>-<label>.json (not committed) and the table is printed.

What is measured (each a median of BENCH_RUNS runs unless said otherwise):

- the gate on the real site, `pytest docs/`: cold (a fresh, empty bytecode cache, so every module
  is compiled as on a first run) and warm (a primed bytecode cache);
- the gate on one page alone (the Compose guide);
- `mkdocs build --strict`, and `mkdocs serve`: the time from editing a page until the served
  page shows the edit (on a temporary copy of the site);
- where the time goes: one profiled gate run (BETRACE_GATE_PROFILE, see
  src/betrace_dist/gate/profile.py): per checker, per external tool, and the engine's own time
  per block;
- scaling: synthetic sites made of N copies of the real pages (1x, 10x, 50x blocks), the gate's
  time per block at each size, and the same corpus through plain Sybil with parse-only checks;
- `pytest -n 2 --dist=loadfile` against serial on the 10x corpus.

`--root DIR` measures another checkout of the repository (for a before/after comparison): its
`src/` is put first on PYTHONPATH and its `.tools/bin` first on PATH.
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

HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = HERE.parent
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
COMPOSE_PAGE = "docs/guides/deploy-with-docker-compose.md"
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
        self.warm_cache = keep / "pycache-warm"

    # -- running -----------------------------------------------------------------------------
    def env(self, cold: bool = False, **extra: str) -> dict[str, str]:
        env = dict(os.environ, NO_MKDOCS_2_WARNING="1", **extra)
        env["PATH"] = os.pathsep.join(
            [str(self.root / ".tools" / "bin"), str(Path(self.py).parent), env.get("PATH", "")]
        )
        env["PYTHONPATH"] = str(self.root / "src")
        env.pop("BETRACE_GATE_PROFILE", None) if "BETRACE_GATE_PROFILE" not in extra else None
        if cold:  # an empty bytecode cache: every module is compiled, as on a first run
            env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="pyc-cold-", dir=self.keep)
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:  # a primed bytecode cache of our own (the checkout's __pycache__ is left alone)
            env["PYTHONPYCACHEPREFIX"] = str(self.warm_cache)
            env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env

    def timed(self, cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
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
    def gate(self) -> list[dict]:
        cmd = self.pytest("docs")
        self.timed(cmd, self.root, self.env())  # primes the warm bytecode cache
        return [
            self.repeat(
                "gate: pytest docs/ (cold)", lambda: self.timed(cmd, self.root, self.env(True))
            ),
            self.repeat(
                "gate: pytest docs/ (warm)", lambda: self.timed(cmd, self.root, self.env())
            ),
            self.repeat(
                "gate: one page (Compose guide)",
                lambda: self.timed(self.pytest(COMPOSE_PAGE), self.root, self.env()),
            ),
        ]

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

    def profile(self, target: str = "docs", cwd: Path | None = None) -> dict[str, Any]:
        path = self.keep / f"profile-{time.time_ns()}.json"
        env = self.env(BETRACE_GATE_PROFILE=str(path))
        self.timed(self.pytest(target), cwd or self.root, env)
        return load_profile(path)

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
def summary(name: str, times: list[float]) -> dict[str, Any]:
    return {
        "name": name,
        "runs": len(times),
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
    }


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
        out += ["", "| external tool / engine phase | calls | total (s) |", "|---|---|---|"]
        for name, t in sorted(prof["tools"].items(), key=lambda kv: -kv[1]["seconds"]):
            out.append(f"| {name} | {t['calls']} | {t['seconds']:.3f} |")
        for name, t in sorted(prof["phases"].items()):
            out.append(f"| ({name}) | {t['calls']} | {t['seconds']:.3f} |")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="checkout to measure")
    parser.add_argument("--label", default="", help="suffix of the results file")
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per measurement")
    parser.add_argument(
        "--scales", default=os.environ.get("BENCH_SCALES", "1,10,50"), help="synthetic sizes"
    )
    parser.add_argument("--scale-runs", type=int, default=1, help="runs per synthetic size")
    parser.add_argument(
        "--only", default="", help="comma list: gate,build,serve,profile,scale,xdist"
    )
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))

    def wanted(part: str) -> bool:
        return not only or part in only

    root = args.root.resolve()
    folder = HERE / "results"
    folder.mkdir(exist_ok=True)
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "root": str(root),
        "label": args.label,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "results": [],
    }
    name = report["when"][:19].replace(":", "") + (f"-{args.label}" if args.label else "")
    out = folder / f"{name}.json"

    def save() -> None:  # after each part, so a long run that stops keeps what it measured
        out.write_text(json.dumps(report, indent=2) + "\n")

    with tempfile.TemporaryDirectory(prefix="betrace-bench-") as scratch:
        bench = Bench(root, args.runs, Path(scratch))
        print(f"measuring {root} ({args.runs} runs each)", flush=True)
        if wanted("gate"):
            report["results"] += bench.gate()
            save()
        if wanted("build"):
            report["results"].append(bench.build())
            save()
        if wanted("serve"):
            try:
                report["results"].append(bench.serve())
            except (TimeoutError, OSError) as exc:  # reported, the other measurements go on
                report["serve_error"] = str(exc)
                print(f"  mkdocs serve: {exc}", flush=True)
            save()
        if wanted("profile"):
            report["profile"] = bench.profile()
            report["profile_compose_page"] = {
                k: v for k, v in bench.profile(COMPOSE_PAGE).items() if k != "per_block"
            }
            save()
        scales = [int(s) for s in args.scales.split(",") if s]
        if wanted("scale"):
            report["scaling"] = []
            for n in scales:
                report["scaling"] += bench.scaling([n], args.scale_runs)
                save()
        if wanted("xdist"):
            report["xdist"] = bench.xdist(10, args.scale_runs)
            save()
    print()
    print(table(report))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
