"""The "Last update" date under each page in the Zensical build.

Under MkDocs the git-revision-date-localized plugin (mkdocs.yml: `type: date`,
`fallback_to_build_date: true`) puts the date of the page's last commit into the page's
`git_revision_date_localized` meta, which the theme's `partials/source-file.html` shows, both
Material's and Zensical's. Zensical does not run the plugin, so the Zensical build sets the same
meta the same way: the author date of the last commit that changed the file (the plugin's
`git log --follow --diff-filter=r --ignore-all-space --ignore-blank-lines`, read in its
util.py), in UTC, written as the plugin writes `type: date` for English (Babel's long date);
the build date for a file git does not know.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def last_commit(path: Path) -> datetime | None:
    """Author date of the last commit that changed `path`, None if git does not know it."""
    try:
        found = subprocess.run(
            [
                "git",
                "log",
                "--date=unix",
                "--format=%at",
                "--diff-filter=r",
                "-n",
                "1",
                "--follow",
                "--ignore-all-space",
                "--ignore-blank-lines",
                "--",
                str(path.resolve()),
            ],
            cwd=path.resolve().parent,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    stamp = found.stdout.strip()
    if found.returncode != 0 or not stamp.isdigit():
        return None
    return datetime.fromtimestamp(int(stamp), tz=UTC)


def long_date(when: datetime) -> str:
    """`November 30, 2026`: Babel's long date format for English."""
    return f"{MONTHS[when.month - 1]} {when.day}, {when.year}"


def revision_date(path: Path) -> str:
    """The page meta value the plugin sets for `type: date`, markup included."""
    when = last_commit(path) or datetime.now(tz=UTC)
    title = f"{long_date(when)} {when:%H:%M:%S} UTC"
    return (
        '<span class="git-revision-date-localized-plugin git-revision-date-localized-plugin-date"'
        f' title="{title}">{long_date(when)}</span>'
    )
