"""A Grafana setting as Grafana reads it in the pod the Grafana chart makes from a page's values.

The chart writes the values' `grafana.ini` map into grafana.ini (templates/_config.tpl at chart
version 12.11.1: a map is a section; a list value is written as JSON) and the values' `env` map
into the grafana container's `env`, after the `GF_PATHS_*` variables it sets from
`grafana.ini.paths` (templates/_pod.tpl). Kubernetes gives a container the last of two `env`
entries of one name, and `env` over `envFrom` (kubelet's makeEnvironmentVariables). Grafana
takes a non-empty `GF_<SECTION>_<KEY>` over the ini file's key (pkg/setting/setting.go,
applyEnvVariableOverrides) and reads a list setting as a JSON list when it starts with `[`,
else as its items: quoted strings (`"a b"`) or runs of characters other than commas and white
space, with their quotes trimmed (pkg/util/strings.go, SplitString, whose older versions split
at commas and spaces alone); `[plugins] allow_loading_unsigned_plugins` and `disable_plugins`
are such lists (pkg/setting/setting_plugins.go). The chart writes a list under `env` as Go
prints it (`tpl (print $value)`: `[a b]`), which is no JSON, so Grafana reads no item of it.
Grafana's files read at stored grafana/grafana versions of its main branch, not at the v13.2.0
tag (which could not be fetched here), and not run here.

A setting the gate cannot tell is None: a value templated by the chart (`{{ }}`) or expanded by
Grafana (`$__env{}`, `$__file{}`...), or a variable that `envValueFrom`, or an `envFrom` source
the chart writes (`envFromSecret`, `envRenderSecret`, `envFromSecrets`, `envFromConfigMaps`),
may set.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..names import close_to

#: the values' keys the chart turns into the grafana container's envFrom (templates/_pod.tpl)
ENV_FROM = ("envFromSecret", "envRenderSecret", "envFromSecrets", "envFromConfigMaps")


@dataclass(frozen=True)
class Setting:
    """What Grafana reads for one key, and where the values give it (for messages)."""

    value: str
    where: str


def env_name(section: str, key: str) -> str:
    """The variable Grafana reads over `[section] key` (setting.go's EnvKey)."""
    name = f"GF_{section}_{key}".upper()
    return name.replace(".", "_").replace("-", "_")


def _text(value: Any, printed: bool = False) -> str:
    """A value as the chart writes it: a list as JSON in grafana.ini (`toJson`), or as Go's
    fmt prints it under env (`printed`)."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "[" + " ".join(_text(v) for v in value) + "]" if printed else json.dumps(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _opaque(text: str) -> bool:
    return "{{" in text or "$__" in text


def setting(values: dict[str, Any], section: str, key: str, default: str = "") -> Setting | None:
    """`[section] key` as Grafana reads it in the chart's pod, or None where it cannot be told."""
    name = env_name(section, key)
    env = values.get("env")
    given = _text(env.get(name), printed=True) if isinstance(env, dict) else ""
    if given:
        return None if _opaque(given) else Setting(given, f"env {name}")
    from_values = values.get("envValueFrom")
    if isinstance(from_values, dict) and name in from_values:
        return None
    if any(values.get(k) for k in ENV_FROM):
        return None
    ini = values.get("grafana.ini")
    table = ini.get(section) if isinstance(ini, dict) else None
    if isinstance(table, dict) and key in table:
        text = _text(table[key])
        return None if _opaque(text) else Setting(text, f"grafana.ini {section}.{key}")
    return Setting(default, f"Grafana's default (grafana.ini sets no {section}.{key})")


#: SplitString's items (pkg/util/strings.go: stringListItemMatcher)
_ITEM = re.compile(r'"[^"]+"|[^,\t\n\v\f\r ]+')


def split_list(text: str) -> list[str]:
    """A list setting's items, as Grafana's SplitString reads them."""
    if not text:
        return []
    if text.strip().startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            return []
        ok = isinstance(items, list) and all(isinstance(i, str) for i in items)
        return list(items) if ok else []
    return [item.strip('"') for item in _ITEM.findall(text)]


def ini_path(values: dict[str, Any], key: str, default: str) -> str:
    """`[paths] key` in the grafana container: the values' env over the chart's variable from
    grafana.ini paths.<key>, else the chart's default. A path the gate cannot tell is taken as
    the ini file's or default one (the checks of it then judge that path)."""
    found = setting(values, "paths", key, default)
    if found is None or not found.value:
        ini = values.get("grafana.ini")
        paths = ini.get("paths") if isinstance(ini, dict) else None
        given = paths.get(key) if isinstance(paths, dict) else None
        return str(given or default).rstrip("/")
    return found.value.rstrip("/")


def _misspelt(values: dict[str, Any], section: str, key: str) -> str | None:
    """A key of the section, or a variable, close to the right one, as the values set it."""
    ini = values.get("grafana.ini")
    table = ini.get(section) if isinstance(ini, dict) else None
    keys = [str(k) for k in table if k != key] if isinstance(table, dict) else []
    if near := close_to(key, keys):
        return f"grafana.ini {section} has '{near}'"
    env = values.get("env")
    name = env_name(section, key)
    names = [str(k) for k in env if k != name] if isinstance(env, dict) else []
    if near := close_to(name, names):
        return f"env has '{near}'"
    return None


def unsigned_sentence(plugin_id: str, setting: str, given: str, near: str | None) -> str:
    """Why Grafana skips the unsigned app `plugin_id`, for every reader of a Grafana's settings
    (the chart's values here, a NixOS host in nix_env): `setting` is the setting as the page
    writes it, `given` what the page gives there, `near` a key the page sets close to the
    setting's name (which Grafana does not read)."""
    hint = f" ({near}, which Grafana does not read)" if near else ""
    return (
        f"the app {plugin_id} is not signed, and Grafana loads it only when {setting} names it; "
        f"{given}{hint}: Grafana skips the app and logs a signature error"
    )


def unsigned_problem(values: dict[str, Any], plugin_id: str) -> str | None:
    """Why Grafana in the pod of these values would not load the unsigned app `plugin_id`, or
    None (it would, or the gate cannot tell)."""
    key = "allow_loading_unsigned_plugins"
    allowed = setting(values, "plugins", key)
    if allowed is not None and plugin_id not in split_list(allowed.value):
        given = f"'{allowed.value}'" if allowed.value else "nothing"
        return unsigned_sentence(
            plugin_id,
            f"[plugins] {key}",
            f"{allowed.where} gives {given}",
            _misspelt(values, "plugins", key),
        )
    disabled = setting(values, "plugins", "disable_plugins")
    if disabled is not None and plugin_id in split_list(disabled.value):
        return (
            f"{disabled.where} lists the app {plugin_id} in [plugins] disable_plugins: Grafana "
            "does not load it"
        )
    return None
