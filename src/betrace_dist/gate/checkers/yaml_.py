"""YAML blocks: must parse (every document of a stream), with no duplicate keys, and stay within
the bounds of betrace_dist.yamlio (no alias bombs, no oversized documents)."""

from __future__ import annotations

from typing import ClassVar

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from ... import yamlio
from ..lexer import Block
from . import CheckFailure, Context, Status, save_titled


class YamlChecker:
    name: ClassVar[str] = "yaml"
    status: ClassVar[Status] = "verified"
    languages: ClassVar[frozenset[str]] = frozenset({"yaml", "yml"})

    def check(self, block: Block, ctx: Context) -> None:
        yaml = YAML(typ="rt")
        yaml.allow_duplicate_keys = False
        try:
            found = yamlio.size_problem(block.body)
            # each document composed once: bounded, then constructed from the same node
            for root in () if found else yaml.compose_all(block.body):
                found = yamlio.expansion_problem(root)
                if found is not None:
                    break
                yaml.constructor.construct_document(root)  # duplicate keys are found here
            if found is not None:
                raise CheckFailure(f"YAML refused: the document {found[1]}", found[0] + 1)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            if exc.context_mark is not None and "<stream end>" in (exc.problem or ""):
                mark = exc.context_mark  # "expected ']' at the end": point where it was opened
            detail = " ".join(s for s in (exc.context, exc.problem) if s)
            raise CheckFailure(f"invalid YAML: {detail}", mark.line + 1 if mark else None) from None
        except YAMLError as exc:
            raise CheckFailure(f"invalid YAML: {exc}") from None
        save_titled(block, ctx)
