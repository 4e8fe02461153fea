"""The benchmark's report logic: ratios, the tool floor, the machine record, the checkout label.
Nothing here times anything: speed is never asserted by a test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

import bench_baselines as baselines
import bench_machine as machine
import bench_report as report_lib
import bench_site


def test_ratios_divide_by_the_baseline_and_leave_gaps_visible() -> None:
    assert report_lib.ratio(10.0, 0.05) == 200.0
    assert report_lib.ratio(None, 1.0) is None
    assert report_lib.ratio(1.0, None) is None
    assert report_lib.ratio(1.0, 0.0) is None  # no division by a missing baseline
    bases = {"python_startup": (0.04, 0.03), "tool_floor": (3.0, None)}
    (row,) = report_lib.ratio_rows([("gate", 12.0, 6.0)], bases)
    assert row == {
        "figure": "gate",
        "seconds": 12.0,
        "cpu_seconds": 6.0,
        "python_startup": 300.0,
        "python_startup_cpu": 200.0,  # CPU to CPU, never CPU to wall
        "tool_floor": 4.0,
        "tool_floor_cpu": None,
    }


def test_the_tool_floor_prices_every_gate_call_at_one_bare_call() -> None:
    units = {
        "helm": {"median_s": 0.2, "cpu_median_s": 0.1},
        "shellcheck": {"median_s": 0.01, "cpu_median_s": 0.01},
        "nix": {"error": "nix: not found"},
    }
    profile = {
        "tools": {
            "helm": {"calls": 27, "seconds": 2.9},
            "shellcheck": {"calls": 79, "seconds": 1.0},
            "nix": {"calls": 3, "seconds": 0.1},
            "kubectl": {"calls": 1, "seconds": 0.1},
        }
    }
    floor = baselines.tool_floor(units, profile)
    assert floor["floor_s"] == pytest.approx(27 * 0.2 + 79 * 0.01)
    assert floor["floor_cpu_s"] == pytest.approx(27 * 0.1 + 79 * 0.01)
    assert floor["each_once_s"] == pytest.approx(0.21)
    assert floor["without_representative"] == ["kubectl", "nix"]  # listed, not guessed


def test_other_work_on_the_machine_is_what_we_did_not_use() -> None:
    before = machine.CpuTimes(busy=100.0, total=200.0, steal=1.0, ours=10.0)
    after = machine.CpuTimes(busy=160.0, total=300.0, steal=6.0, ours=40.0)
    share = machine.sharing(before, after, cores=2)
    assert share["our_cpu_seconds"] == 30.0
    assert share["other_work_cpu_seconds"] == 30.0
    assert share["other_work_cores"] == 0.6  # 30 of 100 CPU seconds on 2 cores
    assert share["steal_share"] == 0.05
    assert machine.sharing(after, after, cores=2) == {"measured": False}
    sample = machine.CpuTimes.sample()
    assert sample.total >= sample.busy >= 0


def test_isolation_is_recorded_from_the_switch_the_binary_and_the_gate_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = tmp_path / "src" / "betrace_dist" / "gate"
    gate.mkdir(parents=True)
    (gate / "session.py").write_text("ARGV = ['bwrap', '--unshare-net']\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "bwrap"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.delenv(machine.ISOLATION_ENV, raising=False)
    on = machine.isolation(str(bin_dir), tmp_path)
    assert on["active"] is True
    assert on["bwrap"] == str(fake)
    monkeypatch.setenv(machine.ISOLATION_ENV, "off")
    assert machine.isolation(str(bin_dir), tmp_path)["active"] is False
    monkeypatch.delenv(machine.ISOLATION_ENV)
    assert machine.isolation(str(tmp_path / "empty"), tmp_path)["bwrap"] == "missing"
    (gate / "session.py").write_text("ARGV = []\n")
    assert machine.isolation(str(bin_dir), tmp_path)["gate_code_uses_bwrap"] is False


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_fresh_clone_measures_the_commit_and_says_so(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    _git(source, "init", "-q")
    (source / "a.txt").write_text("one\n")
    (source / ".tools").mkdir()
    _git(source, "add", "a.txt")
    _git(source, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "x")
    (source / "a.txt").write_text("changed, not committed\n")
    record = bench_site.fresh_clone(source, tmp_path / "clone")
    assert record["label"] == machine.FRESH
    assert record["commit"] == _git(source, "rev-parse", "HEAD")
    assert record["uncommitted_changes_in_source"] is True
    assert (tmp_path / "clone" / "a.txt").read_text() == "one\n"  # the commit, not the edit
    assert (tmp_path / "clone" / ".tools").resolve() == (source / ".tools").resolve()
    in_place = bench_site.checkout_record(source, source, machine.IN_PLACE, True)
    assert in_place["label"].startswith("not a fresh clone")
    assert in_place["uncommitted_changes_in_source"] is False  # measured as they are


def test_the_report_heading_says_when_it_is_not_a_fresh_clone() -> None:
    report = _report(machine.IN_PLACE)
    text = report_lib.markdown(report)
    assert text.splitlines()[0] == f"# Gate benchmark: {machine.IN_PLACE}"
    assert report_lib.RATIO_NOTE in text
    assert "| gate, warm | 10.0 | 5.0 | 250.0 / 250.0 |" in text
    assert "| file system calls (built-ins) | 3.6 | 30.0% |" in text


def _report(label: str) -> dict:
    gate = {
        "wall": {"median_s": 10.0, "cpu_median_s": 5.0, "min_s": 9.0, "max_s": 11.0, "runs": 3},
        "phases": {"sandbox copy": {"calls": 11, "seconds": 0.9}},
        "profile": {
            "engine_ms_per_block": 40.0,
            "engine_cpu_ms_per_block": 20.0,
            "engine_seconds": 4.0,
            "engine_cpu_seconds": 2.0,
            "external_seconds": 5.0,
            "phase_seconds_in_blocks": 0.9,
        },
    }
    cold = {**gate, "wall": {**gate["wall"], "median_s": 15.0, "cpu_median_s": 6.0}}
    cold["profile"] = {**gate["profile"], "engine_ms_per_block": 90.0}
    tools = {"helm": {"calls": 4, "seconds": 1.0, "first_call_seconds": 0.7}}
    record = {
        "cores": 2,
        "cores_usable": 2,
        "cpu_model": "cpu",
        "python": "3.11",
        "platform": "linux",
        "tools": {"helm": "v4"},
        "isolation": {
            "active": False,
            "bwrap": "missing",
            "gate_code_uses_bwrap": False,
            "env": {},
        },
        "bytecode": {"compiled_share": 0.5},
        "sharing": {"measured": True, "other_work_cores": 1.2, "steal_share": 0.0},
        "tmp_filesystem": "ext4 on /",
    }
    return {
        "checkout": {"label": label},
        "machine": record,
        "baselines": {"python_startup": {"median_s": 0.04}},
        "gate": {bench_site.COLD_FIRST: cold, bench_site.WARM: gate},
        "profile_tools": tools,
        "ratios": report_lib.ratio_rows(
            [("gate, warm", 10.0, 5.0)], {"python_startup": (0.04, 0.02)}
        ),
        "cprofile": {
            "total_s": 12.0,
            "top_own_time": [],
            "top_engine_cumulative": [],
            "own_time_by_area": [
                {"area": "file system calls (built-ins)", "seconds": 3.6, "share": 0.3},
                {"area": "waiting for external programs (built-ins)", "seconds": 2.4, "share": 0.2},
            ],
        },
    }


def test_explanations_are_drawn_from_the_numbers() -> None:
    lines = report_lib.explanations(_report(machine.FRESH))
    text = "\n".join(lines)
    assert "uses 1.2x the warm run's CPU seconds (1.5x its wall seconds)" in text
    assert "engine CPU per block 20.0 ms against 20.0 ms warm (modules first imported" in text
    report = _report(machine.FRESH)
    report["gate"][bench_site.COLD_FIRST]["wall"]["cpu_median_s"] = 5.1  # as much CPU as warm
    again = "\n".join(report_lib.explanations(report))
    assert "uses 1.02x the warm run's CPU seconds" in again
    assert "compiling costs little here; a larger wall ratio is load" in again
    assert "slow disk shows up here; sandbox copy 11x 0.9 s." in text  # a profile without CPU
    report["gate"][bench_site.WARM]["phases"]["sandbox copy"]["cpu_seconds"] = 0.3
    assert "sandbox copy 11x 0.9 s (CPU 0.3 s)." in "\n".join(report_lib.explanations(report))
    assert "compiled bytecode for 50% of its modules" in text
    assert "engine's wall time is 2.0x its CPU time" in text
    assert "Other work used 1.2 of 2 cores" in text
    assert "helm 0.70 s against 0.100 s" in text  # the first call against the others' mean
    assert "30% of the warm run's own time went to file system calls" in text
    assert "20% to waiting for external programs" in text


def test_callgrind_dumps_are_read_in_order() -> None:
    names = [Path("cg.out"), Path("cg.out.2"), Path("cg.out.1")]
    assert [p.name for p in sorted(names, key=baselines._dump_order)] == [
        "cg.out.1",
        "cg.out.2",
        "cg.out",
    ]
    assert baselines._total_ir("events: Ir\nsummary: 12345\ntotals: 12345\n") == 12345
    with pytest.raises(ValueError, match="no totals"):
        baselines._total_ir("events: Ir\n")


def test_own_time_is_filed_by_area() -> None:
    site = "/v/lib/python3.11/site-packages/yaml/reader.py"
    assert report_lib.area(site, "peek") == "yaml"
    assert report_lib.area("/x/src/betrace_dist/gate/render.py", "f") == "betrace_dist.gate.render"
    assert report_lib.area("/usr/lib/python3.11/shutil.py", "copyfile") == "stdlib shutil"
    wait = "<built-in method posix.waitpid>"
    assert report_lib.area("~", wait) == "waiting for external programs (built-ins)"
    compile_ = "<built-in method builtins.compile>"
    assert report_lib.area("~", compile_) == "importing and compiling modules (built-ins)"


def test_a_cprofile_run_is_summarised_with_shares(tmp_path: Path) -> None:
    out = tmp_path / "run.prof"
    # in a fresh interpreter: a tracer another test left in this worker would slow the profiled
    # loop by orders of magnitude (seen in a full run under xdist)
    script = (
        "import cProfile, sys; p = cProfile.Profile(); "
        "p.runcall(lambda: sorted(str(i) for i in range(20000))); p.dump_stats(sys.argv[1])"
    )
    subprocess.run([sys.executable, "-c", script, str(out)], check=True, timeout=120)
    summary = report_lib.cprofile_summary(str(out), top=3)
    assert len(summary["top_own_time"]) <= 3
    assert all(0 <= row["share"] <= 1 for row in summary["top_own_time"])
    assert sum(a["seconds"] for a in summary["own_time_by_area"]) <= summary["total_s"] + 0.01


def test_a_fresh_clone_state_has_no_project_bytecode(tmp_path: Path) -> None:
    cache = tmp_path / "src" / "pkg" / "__pycache__"
    cache.mkdir(parents=True)
    venv_cache = tmp_path / ".venv" / "lib" / "__pycache__"
    venv_cache.mkdir(parents=True)
    bench_site.remove_bytecode(tmp_path)
    assert not cache.exists()
    assert venv_cache.exists()  # the venv is what a reader installed: left alone


def test_isolation_per_block_prices_each_jailed_command() -> None:
    jail = {"overhead_ms": 10.0}
    tools = {"prlimit": {"calls": 300}, "helm": {"calls": 20}}
    assert baselines.isolation_per_block(jail, tools, 150) == 20.0
    assert baselines.isolation_per_block({"error": "no bwrap"}, tools, 150) is None
    assert baselines.isolation_per_block(jail, {}, 150) is None


def test_budgets_say_which_goals_are_met_and_by_how_much_one_is_missed() -> None:

    report = {
        "budgets": {
            "warm_cached": {"median_s": 1.5},
            "one_page": {"median_s": 4.0, "slowest": "docs/a.md"},
        },
        "gate": {"warm": {"profile": {"engine_ms_per_block": 25.0}}},
    }
    lines = "\n".join(report_lib._budget_lines(report))
    assert "| gate, nothing changed (result cache) | 1.500 | 2 | met |" in lines
    assert "| one page while writing (slowest page) | 4.000 | 2 | missed (2.0x the goal) |" in lines
    assert "| engine time per block | 0.025 | 0.01 | missed (2.5x the goal) |" in lines
    assert "mkdocs build" not in lines  # not measured: no row, never a made-up figure
    assert "Slowest single page: docs/a.md" in lines
    assert report_lib._budget_lines({}) == []
