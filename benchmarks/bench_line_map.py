"""How long the line map of a rendered page takes on large inputs (no test asserts a speed).

    python benchmarks/bench_line_map.py [--lines 30000] [--runs 3]

`gate.render.map_lines` maps each rendered line back to its source line, so that a failure names
`page.md:LINE`. Its tests (tests/test_bad_input.py) check that the map is right on a 30,000-line
page of repeated lines and on a 1 MB page; this prints how long the map alone takes on such a
page, the median of `--runs`, with the load average, so that a change that makes it quadratic
shows in the figure. difflib's SequenceMatcher (autojunk off) did not finish within a minute on
30,000 identical lines, which is why the project keeps its own map.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from betrace_dist.gate.render import map_lines


def repeated_page(lines: int) -> tuple[list[str], list[str]]:
    """Source and rendered lines: mostly two repeated lines, a macro every tenth that renders
    as two lines (the case a diff finds hardest: many equal candidates)."""
    source: list[str] = []
    rendered: list[str] = []
    for i in range(lines):
        if i % 10 == 5:
            source.append("{{ macro }}")
            rendered += ["expanded", "expanded"]
        else:
            source.append("same" if i % 2 else "")
            rendered.append(source[-1])
    return source, rendered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    source, rendered = repeated_page(args.lines)
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        map_lines(source, rendered)
        times.append(time.perf_counter() - start)
    load = os.getloadavg()[0]
    print(
        f"map_lines, {args.lines:,} source lines: median {statistics.median(times):.3f} s "
        f"of {args.runs} runs (load average {load:.2f} at the end)"
    )


if __name__ == "__main__":
    main()
