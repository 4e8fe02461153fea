"""The "Last update" date under each page in the Zensical build, by the plugin's own code.

Under MkDocs the git-revision-date-localized plugin puts the date of the page's last commit into
the page's `git_revision_date_localized` meta, which the theme's `partials/source-file.html`
shows, both Material's and Zensical's. Zensical does not run MkDocs plugins, so the Zensical build
calls the same plugin's `Util` (its `git log`, its date formats, its markup) with the options
mkdocs.yml gives it, defaults filled in by the plugin's own configuration scheme.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs_git_revision_date_localized_plugin.plugin import GitRevisionDateLocalizedPlugin
from mkdocs_git_revision_date_localized_plugin.util import Util


class PageDates:
    """The plugin, configured as mkdocs.yml configures it."""

    def __init__(self, options: dict[str, Any], docs_dir: Path) -> None:
        plugin = GitRevisionDateLocalizedPlugin()  # type: ignore[no-untyped-call]
        errors, _ = plugin.load_config(options)
        if errors:
            raise ValueError(f"git-revision-date-localized: {errors}")
        self.config = plugin.config
        self.util = Util(self.config, str(docs_dir))

    def revision_date(self, path: Path) -> str:
        """The page meta value the plugin sets, markup included (English unless mkdocs.yml
        gives the plugin a locale: the site's theme sets none)."""
        _, stamp = self.util.get_git_commit_timestamp(str(path))
        locale = str(self.config.get("locale") or "en")
        formats = self.util.get_date_formats_for_timestamp(stamp, locale=locale)
        return formats[str(self.config["type"])]
