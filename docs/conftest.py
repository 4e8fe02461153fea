"""The doc gate: every fenced block of every page, rendered as readers see it, gets checked."""

from pathlib import Path

from betrace_dist.gate.collect import Gate

gate = Gate(Path(__file__).resolve().parent.parent / "mkdocs.yml")
pytest_collect_file = gate.pytest()


def pytest_configure(config):
    gate.prepare(config)
