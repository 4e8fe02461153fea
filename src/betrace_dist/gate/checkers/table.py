"""The checkers of the gate, in the order they claim blocks (checkers/__init__.claim)."""

from __future__ import annotations

from . import Checker
from .json_ import JsonChecker
from .markdown import MarkdownChecker
from .nix import NixChecker
from .python import PythonChecker
from .rules import RuleChecker
from .shell import ShellChecker
from .yaml_ import YamlChecker


def registry(live_on: bool = False) -> list[Checker]:
    """The checkers; `live_on`: the run's live tier is on (its curl steps run for real)."""
    return [
        RuleChecker(),  # before YAML: a titled `Rule:` block is YAML the rules checker claims
        YamlChecker(),
        JsonChecker(),
        ShellChecker(live_on),
        PythonChecker(),
        MarkdownChecker(),
        NixChecker(),
    ]
