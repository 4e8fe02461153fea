"""The Zensical build's configuration, generated from mkdocs.yml: never kept by hand.

Zensical reads mkdocs.yml itself, but three things of this site's configuration it would not
honour as MkDocs does (read in Zensical's `config.py` and `extensions/macros.py`, version pinned
in pyproject.toml):

- the `macros` plugin is mapped to Zensical's own re-implementation of mkdocs-macros, which calls
  `define_env` with an object that has no `config_file_path`, never calls `on_pre_page_macros`,
  and renders pages in a plain Jinja environment that hands them the whole configuration, `git`
  and Jinja's globals: the page sandbox (site/sandbox.py) would not run;
- `hooks:` are not read, so the verified note under each title would be missing;
- plugins it does not know (git-revision-date-localized) are dropped without a word.

So `zensical build` runs on a config written from mkdocs.yml by `write`: the same file with the
`macros` plugin replaced by the Markdown extension of `site/zensical_pages.py` (the same macros
module, rendered in the same sandbox, plus the verified note and the page dates), `hooks:` and
the plugins Zensical ignores removed. It lives beside mkdocs.yml (Zensical wants docs_dir and
site_dir inside the folder of its config file), is ignored by git, and is rewritten before every
Zensical build (`make build-zensical`, the comparison test), so it cannot drift from mkdocs.yml.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from .. import REPO_ROOT
from ..errors import Problem, ProblemsError
from ..gate import result_cache

#: The name of the generated file, beside mkdocs.yml (ignored by git).
GENERATED = "zensical.yml"
#: The Markdown extension that takes over from the macros plugin and the hooks.
EXTENSION = "betrace_dist.site.zensical_pages"
#: Plugins mkdocs.yml uses that Zensical 0.0.x re-implements (the rest it drops silently).
KEPT_PLUGINS = frozenset({"search"})
#: Plugins whose work the extension does instead.
REPLACED_PLUGINS = frozenset({"macros", "git-revision-date-localized"})

HEADER = """\
# GENERATED from {source} by `python -m betrace_dist.site.zensical_config`: edit {source}.
# Zensical builds the site from this file (`make build-zensical`); differences from {source}:
# the macros plugin is replaced by the {extension} Markdown extension, which also adds
# what the hooks and the git-revision-date-localized plugin add under MkDocs.
"""


def _plugins(config: dict[str, Any], source: Path) -> tuple[list[Any], dict[str, Any]]:
    """The plugins Zensical keeps, and the extension's settings (the macros plugin's, which must
    be there, and the dates' if mkdocs.yml shows them)."""
    kept: list[Any] = []
    macros: dict[str, Any] | None = None
    dates: dict[str, Any] | None = None
    for item in config.get("plugins") or []:
        name, settings = (item, {}) if isinstance(item, str) else next(iter(dict(item).items()))
        if name == "macros":
            macros = dict(settings or {})
        elif name == "git-revision-date-localized":
            dates = dict(settings or {})
        elif name in KEPT_PLUGINS:
            kept.append(item)
        elif name not in REPLACED_PLUGINS:
            raise ProblemsError(
                [
                    Problem(
                        source,
                        None,
                        f"plugins: '{name}' has no counterpart in the Zensical build "
                        "(src/betrace_dist/site/zensical_config.py): add one, or say in "
                        "docs/contributing/building-with-zensical.md why the site can do without",
                    )
                ]
            )
    if macros is None:
        raise ProblemsError([Problem(source, None, "plugins: the macros plugin is not enabled")])
    return kept, {"macros": macros} | ({} if dates is None else {"dates": dates})


#: The hooks module whose work (the verified note) the extension does; its other hook, a name
#: for the search dialog, Zensical's own template already gives (partials/search.html).
HOOKS = Path(__file__).with_name("hooks.py")


def _notes(config: dict[str, Any], source: Path) -> bool:
    """Whether pages get the verified note: when mkdocs.yml runs the hooks that add it."""
    hooks = [(source.parent / str(h)).resolve() for h in config.get("hooks") or []]
    others = [str(h) for h in hooks if h != HOOKS.resolve()]
    if others:
        raise ProblemsError(
            [
                Problem(
                    source,
                    None,
                    f"hooks: {', '.join(others)} have no counterpart in the "
                    "Zensical build (src/betrace_dist/site/zensical_config.py)",
                )
            ]
        )
    return bool(hooks)


def build_key(root: Path) -> str:
    """What the pages depend on that Zensical's own cache (`.cache/`, keyed on the page sources,
    the configuration and the theme) does not see: the project's code and installed packages
    (the macros, the sandbox, the gate that counts the note), the macros module, and the commit
    (the page dates). Part of the extension's settings, so a change rebuilds every page. A
    stale cache is never cleared with `zensical build --clean`: it deletes all of `.cache/`,
    the backend build of betrace_dist.upstream included."""
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False
    ).stdout.strip()
    macros = sorted((root / "macros").rglob("*.py")) if (root / "macros").is_dir() else []
    parts = [result_cache.code_digest(), head or "-"]
    parts += [f"{p.relative_to(root)} {result_cache.file_digest(p)}" for p in macros]
    return result_cache.digest("\n".join(parts).encode())[:16]


def generate(source: Path, site_dir: str | None = None) -> dict[str, Any]:
    """The Zensical configuration for the site whose MkDocs configuration is `source`."""
    source = Path(source).resolve()
    try:
        config = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ProblemsError([Problem(source, line, f"not YAML Zensical can read: {exc}")]) from None
    if not isinstance(config, dict):
        raise ProblemsError([Problem(source, 1, "the configuration is not a mapping")])
    plugins, extension = _plugins(config, source)
    extension["notes"] = _notes(config, source)
    out = {k: v for k, v in config.items() if k not in {"plugins", "hooks"}}
    out["plugins"] = plugins
    if site_dir is not None:
        out["site_dir"] = site_dir
    # Zensical's own look ("modern": other fonts and icons) unless mkdocs.yml asks otherwise:
    # the site keeps the look it has under Material for MkDocs.
    out["theme"] = {"variant": "classic", **dict(out.get("theme") or {})}
    # First, so its preprocessor's place is decided by its priority, not by the list's order.
    settings = {"config_file": source.name, **extension, "build_key": build_key(source.parent)}
    out["markdown_extensions"] = [{EXTENSION: settings}, *(config.get("markdown_extensions") or [])]
    return out


def write(source: Path, site_dir: str | None = None, name: str = GENERATED) -> Path:
    """Write the generated configuration beside `source`; returns its path."""
    source = Path(source).resolve()
    target = source.parent / name
    text = HEADER.format(source=source.name, extension=EXTENSION)
    text += yaml.safe_dump(generate(source, site_dir), sort_keys=False, allow_unicode=True)
    target.write_text(text, encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write the Zensical configuration")
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "mkdocs.yml")
    parser.add_argument("--site-dir", help="where Zensical writes the site (inside the repository)")
    parser.add_argument("--output", default=GENERATED, help="file name, beside mkdocs.yml")
    args = parser.parse_args(argv)
    try:
        print(write(args.config, args.site_dir, args.output))
    except ProblemsError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
