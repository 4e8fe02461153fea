"""The doc gate: every fenced block of every page, rendered as readers see it, gets checked."""

from pathlib import Path

from betrace_dist.gate.collect import site_hooks

pytest_configure, pytest_collect_file = site_hooks(Path(__file__).parent.parent / "mkdocs.yml")
