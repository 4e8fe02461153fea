"""What the Grafana that runs the app must be given, as environment variables: one rule per
variable, called by every artefact that sets them (Compose stack, chart, images flake,
Dockerfile), so that they cannot drift apart.

The app is unsigned, so Grafana must allow exactly its id to load unsigned; its images put the
app in the release's plugins folder, so Grafana must read plugins from there; and anonymous
access stays off. A variable the artefact leaves unset is judged by what applies then, which the
caller gives (`unset`): the image's own setting, or Grafana's default.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .release import Plugin

UNSIGNED = "GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS"
PLUGINS = "GF_PATHS_PLUGINS"
ANONYMOUS = "GF_AUTH_ANONYMOUS_ENABLED"


def problems(
    env: Mapping[str, str | None],
    plugin: Plugin,
    names: Iterable[str] = (UNSIGNED, PLUGINS, ANONYMOUS),
    unset: Mapping[str, str] | None = None,
) -> list[str]:
    """A sentence for each variable of `names` that gives Grafana the wrong value."""
    want = {
        UNSIGNED: (plugin.id, "(releases.yaml plugin.id), and no other unsigned plugin"),
        PLUGINS: (plugin.plugins_dir, "(releases.yaml plugin.plugins_dir), where the image has it"),
        ANONYMOUS: ("false", "(anonymous access off)"),
    }
    out = []
    for name in names:
        given = env.get(name)
        value = given if given is not None else (unset or {}).get(name)
        right, why = want[name]
        if (value or "").lower() != right.lower():
            out.append(f"{name} is {value!r}; it must be {right!r} {why}")
    return out
