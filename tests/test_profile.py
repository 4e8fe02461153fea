"""The gate's opt-in profile and its in-run speed-ups: timings are filed where they belong, and
the speed-ups give the same answers as the work they save."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from betrace_dist import REPO_ROOT
from betrace_dist.artefacts.chart_policy import HelmError
from betrace_dist.gate import profile, session
from betrace_dist.gate.checkers import shell
from betrace_dist.gate.commands import helm

from .conftest import require_tool


def test_profile_is_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(profile.ENV, raising=False)
    if not profile.ACTIVE:  # a profiled test run keeps it on; nothing to prove then
        assert profile.install() is False
        assert subprocess.Popen is not profile._TimedPopen


def test_programs_are_filed_under_their_name() -> None:
    assert profile.tool_name(["/x/.tools/bin/helm3", "template"]) == "helm3"
    assert profile.tool_name(["bash", "-n"]) == "bash -n"
    assert profile.tool_name(["bash", "-c", "true"]) == "bash"
    assert profile.tool_name(["/usr/bin/python3.11", "-m", "x"]) == "python"
    assert profile.tool_name("docker-compose") == "docker-compose"


def test_engine_time_is_block_time_minus_external_time() -> None:
    rec = profile.Recorder()
    rec.blocks.append(profile._Block("a.md", 3, "shell", "bash", 0.5, 0.4))
    rec.blocks.append(profile._Block("a.md", 9, "yaml", "yaml", 0.1, 0.0))
    rec.tool("helm", 0.4)
    rep = rec.report()
    assert rep["engine_seconds"] == pytest.approx(0.2)
    assert rep["engine_ms_per_block"] == pytest.approx(100.0)
    assert rep["checkers"]["shell"]["engine"] == pytest.approx(0.1)
    assert rep["tools"]["helm"] == {
        "calls": 1,
        "seconds": 0.4,
        "cpu_seconds": 0.0,
        "first_call_seconds": 0.4,
        "example": "",
    }
    merged = profile.merge([rep, rep])
    assert merged["blocks"] == 4
    assert merged["tools"]["helm"]["calls"] == 2
    assert merged["tools"]["helm"]["first_call_seconds"] == pytest.approx(0.4)


def test_programs_that_overlap_are_counted_once_and_only_inside_the_block() -> None:
    """A backend that runs while the page's curl calls do, and one started before the block:
    their time inside the block is the union of their lives, never more than the block."""
    backend, curl_1, curl_2 = (0.0, 10.0), (2.0, 3.0), (4.0, 5.0)
    assert profile.covered([backend, curl_1, curl_2], 1.0, 6.0) == pytest.approx(5.0)
    assert profile.covered([curl_1, curl_2], 1.0, 6.0) == pytest.approx(2.0)
    assert profile.covered([(2.0, 4.0), (3.0, 5.0), (4.5, 4.8)], 0.0, 6.0) == pytest.approx(3.0)
    assert profile.covered([(7.0, 8.0)], 1.0, 6.0) == 0.0


def test_a_block_with_a_program_running_throughout_has_no_negative_engine_time(
    tmp_path: Path,
) -> None:
    out = tmp_path / "profile.json"
    script = textwrap.dedent(
        f"""
        import subprocess
        from betrace_dist.gate import profile
        assert profile.install({str(out)!r})
        server = subprocess.Popen(["sleep", "30"])
        with profile.block("page.md", 3, "shell", "bash"):
            subprocess.run(["sleep", "0.1"], check=True)
            subprocess.run(["sleep", "0.1"], check=True)
            server.kill()
            server.wait()
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, env=env)
    rep = json.loads(out.read_text())
    (block,) = rep["per_block"]
    assert block["external"] <= block["seconds"]  # a sum of lives would be about 0.2 s more
    assert rep["engine_seconds"] >= 0


def test_cpu_time_and_phases_inside_blocks_are_filed_apart() -> None:
    rec = profile.Recorder()
    rec.blocks.append(profile._Block("a.md", 3, "shell", "bash", 0.5, 0.2, cpu=0.1, phases=0.15))
    rec.blocks.append(profile._Block("a.md", 9, "yaml", "yaml", 0.1, 0.0, cpu=0.1))
    rec.tool("helm", 0.15, cpu=0.12, example="helm template x")
    rec.tool("helm", 0.05, cpu=0.04, example="helm lint y")
    rep = rec.report()
    assert rep["engine_cpu_seconds"] == pytest.approx(0.2)
    assert rep["engine_cpu_ms_per_block"] == pytest.approx(100.0)
    assert rep["phase_seconds_in_blocks"] == pytest.approx(0.15)
    assert rep["external_cpu_seconds"] == pytest.approx(0.16)
    helm_ = rep["tools"]["helm"]
    assert (helm_["first_call_seconds"], helm_["example"]) == (0.15, "helm template x")
    merged = profile.merge([rep, {"tools": {"helm": {"calls": 1, "seconds": 1.0}}}])
    assert merged["engine_cpu_seconds"] == pytest.approx(0.2)  # an older file without CPU fields
    assert merged["tools"]["helm"]["calls"] == 3
    assert merged["tools"]["helm"]["first_call_seconds"] == pytest.approx(0.15)


def test_a_call_is_shown_with_short_paths() -> None:
    argv = ["/sandbox/betrace-page-x/.tools/bin/helm", "template", "/a/b/chart"]
    assert profile.example(argv) == "helm template chart"
    assert profile.example(["echo", "a b/c"]) == "echo a b/c"  # not a path: kept
    assert profile.example(["x"] * 10, limit=3) == "x x x ..."


def test_a_profiled_process_writes_its_timings(tmp_path: Path) -> None:
    out = tmp_path / "profile.json"
    script = textwrap.dedent(
        f"""
        import subprocess
        import time
        from betrace_dist.gate import profile
        assert profile.install({str(out)!r})
        with profile.block("page.md", 7, "shell", "bash"):
            subprocess.run(["bash", "-n"], input="echo hi", text=True, check=True)
            subprocess.run(["bash", "-c", "sleep 0.2"], check=True)
            with profile.phase("sandbox copy"):
                time.sleep(0.05)
                sum(range(2_000_000))  # CPU time of the gate's own process, filed with the phase
            profile.note("sandbox", "copy")
        """
    )
    # not as an xdist worker: a worker would name its file after itself
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, env=env)
    rep = json.loads(out.read_text())
    assert rep["tools"]["bash -n"]["calls"] == 1
    assert rep["tools"]["bash"]["seconds"] >= 0.2
    assert rep["tools"]["bash"]["example"] == "bash -c sleep 0.2"
    assert rep["phases"]["sandbox copy"]["calls"] == 1
    assert rep["phases"]["sandbox copy"]["cpu_seconds"] > 0
    assert rep["notes"] == {"sandbox": "copy"}
    assert profile.merge([rep, {}])["notes"] == {"sandbox": "copy"}
    (block,) = rep["per_block"]
    assert (block["page"], block["line"]) == ("page.md", 7)
    assert block["external"] >= 0.2
    assert block["seconds"] >= block["external"]
    assert block["phases"] >= 0.05  # the phase ran inside the block and is filed with it
    assert block["seconds"] >= block["external"] + block["phases"]
    assert block["cpu"] >= 0


def test_shell_checks_are_reused_only_for_the_same_script() -> None:
    good, bad = "echo ok-$RANDOM-profile-test\n", "if then fi-profile-test\n"
    before = shell._bash_n.cache_info()
    assert shell._bash_n(good).returncode == 0
    assert shell._bash_n(bad).returncode != 0  # a different script is checked, not reused
    assert shell._bash_n(good) is shell._bash_n(good)
    after = shell._bash_n.cache_info()
    assert after.misses - before.misses == 2
    shellcheck = require_tool("shellcheck")
    quoted, unquoted = 'echo "$HOME"\n', "echo $HOME\n"
    assert shell._shellcheck(shellcheck, "bash", quoted) == []
    assert shell._shellcheck(shellcheck, "bash", unquoted)[0]["code"] == 2086
    assert shell._shellcheck(shellcheck, "sh", unquoted)[0]["code"] == 2086


def test_a_parsed_render_is_a_fresh_copy_each_time() -> None:
    text = "# Source: c/templates/a.yaml\nkind: ConfigMap\nmetadata:\n  name: a\ndata: {k: v}\n"
    first = helm._parsed(text)
    first[0].doc["data"]["k"] = "changed"
    second = helm._parsed(text)
    assert second[0].doc["data"] == {"k": "v"}
    assert second[0].source == "c/templates/a.yaml"
    other = helm._parsed(text.replace("name: a", "name: b"))
    assert other[0].doc["metadata"]["name"] == "b"
    for _ in range(2):  # an error is raised every time, never remembered as a result
        with pytest.raises(HelmError):
            helm._parsed("# Source: x\n- a list\n")


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_sandboxes_are_full_fresh_clones_and_gone_when_closed() -> None:
    first = session.Session()
    second = session.Session()
    try:
        (first.repo / "README.md").write_text("changed by the first page")
        assert _files(first.repo) == _files(second.repo)
        assert (second.repo / "README.md").read_text() == (REPO_ROOT / "README.md").read_text()
    finally:
        tmp = first.tmp
        first.close()
        second.close()
    assert not tmp.exists()


def test_the_cpu_time_of_jailed_programs_is_counted(tmp_path: Path) -> None:
    """A jailed program is reaped inside its PID namespace, so the gate's children's usage never
    sees its CPU time; the page's cpuacct group does (where the machine lets the gate make one).
    """
    require_tool("bwrap")
    out = tmp_path / "profile.json"
    script = textwrap.dedent(
        f"""
        import sys
        from betrace_dist.gate import profile, session
        assert profile.install({str(out)!r})
        page = session.Session()
        try:
            page.process([sys.executable, "-c", "sum(range(30_000_000))"])
        finally:
            page.close()
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, env=env)
    rep = json.loads(out.read_text())
    if "jailed CPU" in rep["notes"]:
        pytest.skip(f"no cpuacct cgroup on this machine: {rep['notes']['jailed CPU']}")
    burned = rep["jailed"]["python"]["cpu_seconds"]
    assert burned >= 0.2, rep["jailed"]  # the loop alone takes about half a second
    assert rep["tools"]["prlimit"]["cpu_seconds"] < burned  # the wrapper's own figure misses it
    assert rep["external_cpu_seconds"] >= burned
