"""The model of Grafana's plugin proxy (grafana_proxy_model.py) held to what Grafana's source
does, case by case. The expected answers were worked out by hand from pkg/web/tree.go
(grafana/grafana@e6c13507: Tree.Add, Tree.Match, matchLeaf, matchSubtree) and
pkg/api/pluginproxy/pluginproxy.go (HandleRequest, hasAccessToRoute), not taken from the model:
read, not run (no Grafana runs here)."""

from __future__ import annotations

from typing import Any

import pytest

from .grafana_proxy_model import AccessDenied, TemplateError, go_join, match_route, tree_match

#: (route path, request path after /api/plugin-proxy/<id>/, what is forwarded or None)
TREE = [
    ("backend", "backend", ""),  # a static leaf matches itself, nothing forwarded
    ("backend", "backend/v1/rules", None),  # ...and nothing below it (no subtree, no "*" leaf)
    ("backend/*", "backend/v1/rules", "v1/rules"),  # the "*" leaf takes the rest
    ("backend/*", "backend/v1", "v1"),
    ("backend/*", "backend", None),  # the root has no leaf "backend"
    ("backend/*", "backend/", None),  # Match trims the trailing "/" first
    ("backend/*", "/backend/v1/", "v1"),
    ("backend/*", "backendx/v1", None),
    ("api/v4/", "api/v4/alerts", None),  # Add trims the "/": a static "v4" leaf
    ("*", "anything/at/all", "anything/at/all"),
]


@pytest.mark.parametrize(("pattern", "path", "forwarded"), TREE)
def test_a_route_path_matches_as_grafanas_tree_does(
    pattern: str, path: str, forwarded: str | None
) -> None:
    assert tree_match(pattern, path) == forwarded


#: Paths that plugin_proxy.go's path.Join cleans before the tree sees them
JOINED = [
    ("backend/*", "//backend/v1", "v1"),
    ("backend/*", "backend/../backend/v1", "v1"),
    ("backend/*", "backend/v1/../../x", None),
]


@pytest.mark.parametrize(("pattern", "path", "forwarded"), TREE + JOINED)
def test_the_gates_curl_model_matches_routes_as_this_model_does(
    pattern: str, path: str, forwarded: str | None
) -> None:
    """The gate's curl model (src) and this model of Grafana's proxy (run as a script, so it
    cannot import src) match a route path the same way; they disagreed on trailing slashes,
    "*" and a leading "/" before."""
    from betrace_dist.gate.commands.curl import _route_forwards

    assert _route_forwards(pattern, path) == forwarded == tree_match(pattern, go_join(path))


@pytest.mark.parametrize("pattern", ["rules/:id", "api/*.*", "?optional", "a/*/b", "back*end"])
def test_a_route_path_outside_the_model_is_refused_not_guessed(pattern: str) -> None:
    with pytest.raises(TemplateError):
        tree_match(pattern, "rules/1")


ROUTES: dict[str, Any] = {
    "routes": [
        {"path": "backend/*", "method": "GET", "url": "http://reads"},
        {"path": "backend/*", "reqRole": "Editor", "url": "http://writes"},
    ]
}


@pytest.mark.parametrize(
    ("method", "role", "url"),
    [
        ("GET", "Viewer", "http://reads"),
        ("GET", "None", "http://reads"),
        ("POST", "Editor", "http://writes"),
        ("DELETE", "Admin", "http://writes"),
    ],
)
def test_routes_are_taken_in_order_by_method_and_path(method: str, role: str, url: str) -> None:
    route, forwarded = match_route(ROUTES, "backend/v1/rules", method, role)
    assert (route["url"], forwarded) == (url, "v1/rules")


@pytest.mark.parametrize(("method", "role"), [("POST", "Viewer"), ("PUT", "None")])
def test_a_role_the_matched_route_requires_is_refused(method: str, role: str) -> None:
    with pytest.raises(AccessDenied, match="plugin proxy route access denied"):
        match_route(ROUTES, "backend/v1/rules", method, role)


def test_a_misspelt_role_is_no_check_at_all() -> None:
    # RoleType.IsValid is false for "editor", so hasAccessToRoute lets everyone through
    routes = {"routes": [{"path": "backend/*", "reqRole": "editor", "url": "http://w"}]}
    assert match_route(routes, "backend/v1/rules", "POST", "Viewer")[1] == "v1/rules"


def test_no_route_matching_is_grafanas_404() -> None:
    with pytest.raises(LookupError, match="plugin route match not found"):
        match_route(
            {"routes": [{"path": "backend", "url": "http://x"}]}, "backend/v1", "GET", "Admin"
        )
