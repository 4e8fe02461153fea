"""A model of Grafana's plugin proxy for an app plugin, for one plugin.json: NOT Grafana.

No Grafana can run here, so the Node test of the patched app's client talks to this instead. It
does what Grafana's app plugin proxy does with a request to
`/api/plugin-proxy/<plugin id>/<rest>`, as read in grafana/grafana's source (not run):
pkg/api/plugin_proxy.go (the path cleaned by path.Join), pkg/api/pluginproxy/pluginproxy.go
(PluginProxy.HandleRequest, hasAccessToRoute, director) and pkg/web/tree.go (how a route's
`path` matches; grafana/grafana@e6c13507), and "Add authentication for app plugins" in
Grafana's plugin-tools docs:

- takes the routes of plugin.json in order, skipping one whose `method` is neither empty, `*`
  nor the request's, and picks the first whose `path` matches `<rest>` as web.Tree matches it:
  a plain path matches only itself (`backend` never matches `backend/v1/rules`), a path ending
  in `/*` matches anything below it and forwards that part (`v1/rules`); no match is 404
  "plugin route match not found";
- refuses the request with 403 "plugin proxy route access denied" when the picked route has a
  valid `reqRole` (Viewer, Editor, Admin, None) that the signed-in user's org role does not
  include (Admin includes Editor, Editor includes Viewer), without trying later routes; an
  invalid `reqRole` (a misspelt one) checks nothing, as in Grafana;
- interpolates `{{ .JsonData.<key> }}` and `{{ .SecureJsonData.<key> }}` in the route's `url`
  and in its `headers` from the app's settings, which Grafana keeps on its server;
- sends the request to the url's scheme and host, with the url's path joined to the forwarded
  part, the query string kept, Cookie headers dropped and the route's headers set;
- answers with the target's status and body.

What it does not model: sign-in itself (the user's org role is given to the model), RBAC
actions (`reqAction`), Grafana's own headers (X-Grafana-Context, X-Grafana-User), token auth,
body templates, route paths with parameters (`:id`, regular expressions, `*.*`, `?`),
percent-escapes in the request path, and any template syntax beyond those two forms: each is
refused with 500, so a route using it fails the test rather than passing.
Every forwarded request is appended, as one JSON line, to the `--log` file.

Usage: python3 grafana_proxy_model.py PLUGIN_JSON SETTINGS_JSON PORT LOG ROLE
(SETTINGS_JSON: {"jsonData": {...}, "secureJsonData": {...}}; ROLE: the signed-in user's org
role); it prints `ready` when listening.
"""

from __future__ import annotations

import json
import posixpath
import re
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

TEMPLATE = re.compile(r"\{\{\s*\.(JsonData|SecureJsonData)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
PREFIX = "/api/plugin-proxy/"


class TemplateError(Exception):
    pass


def interpolate(text: str, settings: dict[str, Any]) -> str:
    """Grafana's route template, limited to `{{ .JsonData.k }}` and `{{ .SecureJsonData.k }}`."""

    def value(match: re.Match[str]) -> str:
        section = "jsonData" if match.group(1) == "JsonData" else "secureJsonData"
        # Go's text/template prints a missing map key as "<no value>"
        return str(settings.get(section, {}).get(match.group(2), "<no value>"))

    result = TEMPLATE.sub(value, text)
    if "{{" in result:
        raise TemplateError(f"template outside the model: {text!r}")
    return result


def join_url_fragments(base: str, rest: str) -> str:
    """Grafana's util.JoinURLFragments: one slash between the two, a trailing one kept."""
    if not rest:
        return base
    if base.endswith("/") and rest.startswith("/"):
        return base + rest[1:]
    if not base.endswith("/") and not rest.startswith("/"):
        return base + "/" + rest
    return base + rest


#: org.RoleType values that IsValid accepts, each with the roles it includes: RoleType.Includes
#: in grafana/grafana's package roletype (read, not run; its path not noted), a precedence
#: None < Viewer < Editor < Admin
ROLES = {
    "Admin": {"Admin", "Editor", "Viewer", "None"},
    "Editor": {"Editor", "Viewer", "None"},
    "Viewer": {"Viewer", "None"},
    "None": {"None"},
}


class AccessDenied(Exception):
    pass


def tree_match(pattern: str, rest: str) -> str | None:
    """web.Tree's match of one route path: None, or the part forwarded ('' for a plain path)."""
    pattern = pattern.removesuffix("/").removeprefix("/")  # Tree.Add, addNextSegment
    wild = pattern == "*" or pattern.endswith("/*")
    if re.search(r"[:?()]|\*\.", pattern) or pattern.count("*") > int(wild):
        raise TemplateError(f"route path outside the model: {pattern!r}")
    if "%" in rest:
        raise TemplateError(f"percent-escape outside the model: {rest!r}")
    url = rest.removeprefix("/").removesuffix("/")  # Tree.Match
    if not wild:
        return "" if url == pattern else None
    below = pattern.removesuffix("*")  # "" for "*" (anything, even nothing), "backend/"
    return url[len(below) :] if url.startswith(below) else None  # `url` ends in no "/"


def go_join(rest: str) -> str:
    """path.Join("/", rest), as plugin_proxy.go joins the proxied path: cleaned, with one
    leading "/" (Python's normpath keeps two, as POSIX allows; Go's Clean does not)."""
    return "/" + posixpath.normpath("/" + rest).lstrip("/")


def match_route(
    manifest: dict[str, Any], rest: str, method: str, role: str
) -> tuple[dict[str, Any], str]:
    rest = go_join(rest)
    for route in manifest.get("routes", []):
        if route.get("method", "") not in ("", "*", method):
            continue
        forwarded = tree_match(route["path"], rest)
        if forwarded is None:
            continue
        required = route.get("reqRole", "")
        if required in ROLES and required not in ROLES[role]:
            raise AccessDenied("plugin proxy route access denied")
        return route, forwarded
    raise LookupError(f"plugin route match not found: no route of plugin.json matches {rest!r}")


class Handler(BaseHTTPRequestHandler):
    manifest: ClassVar[dict[str, Any]] = {}
    settings: ClassVar[dict[str, Any]] = {}
    role: ClassVar[str] = "None"
    log_path: Path = Path("/dev/null")

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _target(self) -> tuple[str, dict[str, str]]:
        parts = urlsplit(self.path)
        own = f"{PREFIX}{self.manifest['id']}/"
        if not parts.path.startswith(own):
            raise LookupError(f"not a plugin-proxy path of {self.manifest['id']}: {parts.path}")
        route, rest = match_route(self.manifest, parts.path[len(own) :], self.command, self.role)
        target = urlsplit(interpolate(route["url"], self.settings))
        url = f"{target.scheme}://{target.netloc}{join_url_fragments(target.path, rest)}"
        if parts.query:
            url += "?" + parts.query
        headers = {k: v for k, v in self.headers.items() if k.lower() not in {"cookie", "host"}}
        for header in route.get("headers", []):
            headers[header["name"]] = interpolate(header["content"], self.settings)
        return url, headers

    def _forward(self) -> None:
        try:
            url, headers = self._target()
        except LookupError as error:
            self._answer(404, json.dumps({"message": str(error)}).encode())
            return
        except AccessDenied as error:
            self._answer(403, json.dumps({"message": str(error)}).encode())
            return
        except TemplateError as error:
            self._answer(500, json.dumps({"message": str(error)}).encode())
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if not url.startswith(("http://", "https://")):
            self._answer(500, json.dumps({"message": f"not an http(s) URL: {url}"}).encode())
            return
        request = urllib.request.Request(url, data=body, headers=headers, method=self.command)  # noqa: S310 - http(s) only, checked above
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - as above
                status, data = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, data = error.code, error.read()
        record = {
            "method": self.command,
            "from": self.path,
            "to": url,
            "client_api_key": self.headers.get("X-API-Key"),
            "sent_api_key": headers.get("X-API-Key"),
            "status": status,
        }
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        self._answer(status, data)

    do_GET = do_POST = do_PUT = do_DELETE = _forward


def main(argv: list[str]) -> None:
    manifest_path, settings_json, port, log, role = argv
    if role not in ROLES:
        raise SystemExit(f"ROLE must be one of {', '.join(ROLES)}, not {role!r}")
    Handler.role = role
    Handler.manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    Handler.settings = json.loads(settings_json)
    Handler.log_path = Path(log)
    server = ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
