"""A Grafana setting as Grafana reads it in the pod the Grafana chart makes from a page's values:
the values' env over grafana.ini, a list split as Grafana splits it, and what the gate cannot
tell left unjudged. The rules are read from Grafana's and the chart's source (the module's
docstring names the files); these tests are models of them, not runs of Grafana."""

from __future__ import annotations

from typing import Any

import pytest

from betrace_dist.gate.grafana_settings import ini_path, setting, split_list, unsigned_problem

APP = "betrace-app"
VAR = "GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS"


def _ini(value: Any) -> dict[str, Any]:
    return {"grafana.ini": {"plugins": {"allow_loading_unsigned_plugins": value}}}


@pytest.mark.parametrize(
    "values",
    [
        _ini(APP),
        _ini(f"other-panel,{APP}"),
        _ini(f"other-panel {APP}"),
        _ini(["other-panel", APP]),  # the chart writes a list as JSON, which Grafana reads
        {"env": {VAR: APP}},
        _ini("other-panel") | {"env": {VAR: APP}},  # env wins over the ini file
        _ini(f'"{APP}"'),  # Grafana trims the quotes
    ],
)
def test_values_that_allow_the_app_pass(values: dict[str, Any]) -> None:
    assert unsigned_problem(values, APP) is None


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({}, "Grafana's default (grafana.ini sets no plugins.allow_loading_unsigned_plugins)"),
        (_ini("betrace"), "grafana.ini plugins.allow_loading_unsigned_plugins gives 'betrace'"),
        (_ini(f"{APP}x"), "gives 'betrace-appx'"),
        (_ini(APP) | {"env": {VAR: "other-panel"}}, f"env {VAR} gives 'other-panel'"),
        # a list under env is printed by the chart as Go prints it, which Grafana cannot read
        ({"env": {VAR: ["other-panel", APP]}}, f"env {VAR} gives '[other-panel {APP}]'"),
        (
            {"grafana.ini": {"plugins": {"allow_loading_unsigned_plugin": APP}}},
            "grafana.ini plugins has 'allow_loading_unsigned_plugin', which Grafana does not read",
        ),
        (
            {"env": {"GF_PLUGINS_ALLOW_UNSIGNED_PLUGINS": APP}},
            "env has 'GF_PLUGINS_ALLOW_UNSIGNED_PLUGINS', which Grafana does not read",
        ),
    ],
)
def test_values_that_do_not_allow_the_app_are_refused(values: dict[str, Any], said: str) -> None:
    problem = unsigned_problem(values, APP)
    assert problem is not None and said in problem, problem
    assert "Grafana skips the app" in problem, problem


def test_an_empty_variable_leaves_the_ini_file_in_force() -> None:
    """Grafana applies a GF_ variable only when it is not empty (applyEnvVariableOverrides)."""
    assert unsigned_problem(_ini(APP) | {"env": {VAR: ""}}, APP) is None


def test_the_app_in_disable_plugins_is_refused() -> None:
    values = _ini(APP)
    values["grafana.ini"]["plugins"]["disable_plugins"] = f"other,{APP}"
    problem = unsigned_problem(values, APP)
    assert problem is not None and "in [plugins] disable_plugins" in problem, problem


@pytest.mark.parametrize(
    "values",
    [
        {"envFromSecret": "grafana-env"},
        {"envFromConfigMaps": [{"name": "grafana-env"}]},
        {"envValueFrom": {VAR: {"secretKeyRef": {"name": "s", "key": "k"}}}},
        _ini("{{ .Values.unsigned }}"),
        _ini("$__file{/etc/secrets/unsigned}"),
    ],
)
def test_what_the_gate_cannot_tell_is_not_judged(values: dict[str, Any]) -> None:
    assert setting(values, "plugins", "allow_loading_unsigned_plugins") is None
    assert unsigned_problem(values, APP) is None


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("", []),
        ("a,b", ["a", "b"]),
        ("a, b  c", ["a", "b", "c"]),
        ('["a", "b"]', ["a", "b"]),
        ("[not json", []),
        ('"betrace-app"', ["betrace-app"]),  # quotes trimmed
        ('"a b", c', ["a b", "c"]),  # a quoted item keeps its space
        ("[a b]", []),  # a list Go printed: no JSON, no item
    ],
)
def test_a_list_setting_is_split_as_grafana_splits_it(text: str, items: list[str]) -> None:
    assert split_list(text) == items


def test_a_path_comes_from_env_over_grafana_ini_over_the_default() -> None:
    default = "/var/lib/grafana/plugins"
    assert ini_path({}, "plugins", default) == default
    ini = {"grafana.ini": {"paths": {"plugins": "/data/plugins/"}}}
    assert ini_path(ini, "plugins", default) == "/data/plugins"
    env = ini | {"env": {"GF_PATHS_PLUGINS": "/opt/plugins"}}
    assert ini_path(env, "plugins", default) == "/opt/plugins"
