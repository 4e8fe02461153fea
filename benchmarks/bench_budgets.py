"""How much of its processor budgets the gate uses on the real site (no test asserts a speed).

    python benchmarks/bench_budgets.py [--profile run.json ...]

The gate stops reading a page after `collect.ANALYSIS_SECONDS` and checking a block after
`collect.BLOCK_SECONDS` of its own processor time (limits.ProcessorBudget). This prints, for the
site's pages, the processor time each page's reading takes (measured here, the site loaded
first, as a run does) and, from profiles of a gate run (`BETRACE_GATE_PROFILE=run.json pytest
docs/`, one file per xdist worker: `run.gw0.json`, ...), the processor time of the largest
blocks: a budget that the real site comes near is a budget to raise, with the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from betrace_dist import REPO_ROOT
from betrace_dist.gate import collect
from betrace_dist.gate.collect import Gate


def pages() -> list[tuple[float, str]]:
    gate = Gate(REPO_ROOT / "mkdocs.yml")
    gate.site.config  # noqa: B018 - loaded before, as the run's `prepare` does
    used: list[tuple[float, str]] = []
    for page in gate.pages():
        start = time.thread_time()
        result = gate.analyse(page)
        if result.error and "processor time" in result.error[1]:
            print(f"  {gate.page_name(page)}: stopped by the budget")
        used.append((time.thread_time() - start, gate.page_name(page)))
    return sorted(used, reverse=True)


def blocks(profiles: list[Path]) -> list[tuple[float, str]]:
    used: list[tuple[float, str]] = []
    for path in profiles:
        for block in json.loads(path.read_text(encoding="utf-8")).get("per_block", []):
            name = f"{block['page']}:{block['line']} {block['checker']}"
            used.append((float(block["cpu"]), name))
    return sorted(used, reverse=True)


def report(title: str, used: list[tuple[float, str]], budget: float, top: int = 5) -> None:
    print(f"\n{title} (budget {budget:g} s each)")
    for seconds, name in used[:top]:
        print(f"  {seconds:8.3f} s  {100 * seconds / budget:5.1f} %  {name}")
    if used:
        print(f"  {len(used)} in all; total {sum(s for s, _ in used):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", type=Path, nargs="*", default=[], help="gate profiles")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    report("Reading each page", pages(), collect.ANALYSIS_SECONDS)
    if args.profile:
        report(
            "Checking each block (the gate's process, commands excluded)",
            blocks(args.profile),
            collect.BLOCK_SECONDS,
        )
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
