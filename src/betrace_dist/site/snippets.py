"""Snippet inclusion from an allow-list: a page may include only files the project names.

`pymdownx.snippets` includes any file under its base path, and the project's base path is the
repository's root (pages include artefacts: the chart's values, Nix expressions, workflows), so
a page could pull `.git/config`, a dotfile or, through a link, a file of the machine into the
built HTML. Here the extension keeps its name and options in mkdocs.yml, and the path of every
snippet is checked after links are resolved: it must lie under one of ALLOWED (relative to a
base path), no component of it may be a dotfile or dot-folder (but the `.github/workflows`
the project names), and it must be a regular file. Anything else is refused with the path.
The site build (hooks.py, `on_config`) and the gate's renderer (gate/render.py) both use it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pymdownx.snippets import (  # type: ignore[import-untyped]
    SnippetExtension,
    SnippetMissingError,
    SnippetPreprocessor,
)

from . import limits

#: Folders, relative to a snippet base path, that pages may include files from.
ALLOWED = ("docs", "helm", "nix", "docker", ".github/workflows")
NAME = "pymdownx.snippets"


def allowed(base: Path, path: Path) -> str | None:
    """Why `path` (resolved) may not be included from `base` (resolved), or None if it may."""
    try:
        rel = path.relative_to(base).as_posix()
    except ValueError:
        return "it is outside the repository"
    if not any(rel == folder or rel.startswith(folder + "/") for folder in ALLOWED):
        return f"it is not under a folder pages may include from ({', '.join(ALLOWED)})"
    inner = rel.removeprefix(".github/workflows/") if rel.startswith(".github/") else rel
    if any(part.startswith(".") for part in inner.split("/")):
        return "it is a dotfile or lies in a dot-folder"
    if not path.is_file():
        return "it is not a regular file"
    return None


class _Checked(SnippetPreprocessor):  # type: ignore[misc]
    #: characters the snippets of one page may bring in, all inclusions counted: files that
    #: include each other N times each multiply (N to the depth) long before the page's own
    #: size limit is checked, and a 4.5 KB set of files grew to 189 MB
    budget = limits.MAX_MARKDOWN

    def run(self, lines: list[str]) -> list[str]:
        self.included = 0
        result: list[str] = super().run(lines)
        return result

    def read_lines(self, path: str) -> list[str]:
        lines: list[str] = super().read_lines(path)
        self.included = getattr(self, "included", 0) + sum(len(line) + 1 for line in lines)
        if self.included > self.budget:
            raise SnippetMissingError(
                f"snippet '{self._shown(path)}' is refused: the page's snippets would bring in "
                "more than "
                f"{self.budget:,} characters (each inclusion counted)"
            )
        return lines

    def _shown(self, path: str) -> str:
        """A snippet's path as the page names it (from its base), never the checkout's place."""
        for base, is_dir in self.get_bases():
            if is_dir and Path(path).is_relative_to(base):
                return Path(path).relative_to(base).as_posix()
        return Path(path).name

    def get_snippet_path(self, path: str) -> str | None:
        found: str | None = super().get_snippet_path(path)
        if found is None:
            return None
        resolved = Path(os.path.realpath(found))
        bases = [Path(os.path.realpath(base)) for base, is_dir in self.get_bases() if is_dir]
        reasons = [allowed(base, resolved) for base in bases]
        if all(reason is not None for reason in reasons):
            raise SnippetMissingError(f"snippet '{path}' is refused: {reasons[0]}")
        return found


class AllowListedSnippets(SnippetExtension):  # type: ignore[misc]
    """pymdownx.snippets whose every path is checked (see the module's docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["restrict_base_path"] = True
        kwargs["url_download"] = False
        super().__init__(**kwargs)

    def extendMarkdown(self, md: Any) -> None:
        self.md = md
        md.registerExtension(self)
        md.preprocessors.register(_Checked(self.getConfigs(), md), "snippet", 32)


def is_snippets(extension: Any) -> bool:
    """True for pymdownx.snippets, by name or as the allow-listed instance."""
    return bool(extension == NAME or isinstance(extension, AllowListedSnippets))


def replace_in(extensions: list[Any], configs: dict[str, Any]) -> list[Any]:
    """`extensions` with pymdownx.snippets replaced by the allow-listed one (same options,
    which stay in `configs` for whoever reads them there)."""
    if NAME not in extensions:
        return extensions
    checked = AllowListedSnippets(**dict(configs.get(NAME) or {}))
    return [checked if ext == NAME else ext for ext in extensions]
