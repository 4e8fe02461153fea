"""Time the doc gate and the site build on the real site: several runs, medians, JSON + table.

Run with `make bench`. Results go to benchmarks/results/<date>.json (not committed).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("BENCH_RUNS", "5"))


def timed(cmd: list[str]) -> float:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed


def measure(name: str, cmd: list[str]) -> dict[str, object]:
    times = [timed(cmd) for _ in range(RUNS)]
    return {
        "name": name,
        "command": " ".join(cmd),
        "runs": RUNS,
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
    }


def main() -> None:
    py = sys.executable
    with tempfile.TemporaryDirectory() as out:
        results = [
            measure(
                "gate: pytest docs/", [py, "-m", "pytest", "docs", "-q", "-p", "no:cacheprovider"]
            ),
            measure(
                "mkdocs build --strict", [py, "-m", "mkdocs", "build", "--strict", "-q", "-d", out]
            ),
            measure("ledger (parse only)", [py, "-m", "betrace_dist.cli", "ledger"]),
        ]
    blocks = (
        subprocess.run(
            [py, "-m", "betrace_dist.cli", "ledger"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "site": blocks,
        "results": results,
    }
    folder = ROOT / "benchmarks" / "results"
    folder.mkdir(exist_ok=True)
    (folder / f"{report['when'][:10]}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['site']}\n")
    print("| what | median (s) | min | max | runs |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['name']} | {r['median_s']} | {r['min_s']} | {r['max_s']} | {r['runs']} |")


if __name__ == "__main__":
    main()
