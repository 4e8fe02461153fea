"""A model of Grafana's plugin proxy for an app plugin, for one plugin.json: NOT Grafana.

No Grafana can run here, so the Node test of the patched app's client talks to this instead. It
does what Grafana's app plugin proxy does with a request to
`/api/plugin-proxy/<plugin id>/<rest>` (grafana/grafana, pkg/api/pluginproxy/pluginproxy.go, and
"Add authentication for app plugins" in Grafana's plugin-tools documentation):

- picks the first route of plugin.json whose `path` begins `<rest>` (and whose `method`, when it
  has one, is the request's), and drops that prefix;
- interpolates `{{ .JsonData.<key> }}` and `{{ .SecureJsonData.<key> }}` in the route's `url`
  and in its `headers` from the app's settings, which Grafana keeps on its server;
- sends the request to the url's scheme and host, with the url's path joined to what is left of
  `<rest>`, the query string kept, Cookie headers dropped and the route's headers set;
- answers with the target's status and body.

What it does not model: sign-in, roles (`reqRole`), Grafana's own headers (X-Grafana-Context,
X-Grafana-User), token auth, body templates, and any template syntax beyond those two forms (any
other `{{ ... }}` is refused with 500, so a route using it fails the test rather than passing).
Every forwarded request is appended, as one JSON line, to the `--log` file.

Usage: python3 grafana_proxy_model.py PLUGIN_JSON SETTINGS_JSON PORT LOG
(SETTINGS_JSON: {"jsonData": {...}, "secureJsonData": {...}}); it prints `ready` when listening.
"""

from __future__ import annotations

import json
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


def match_route(manifest: dict[str, Any], rest: str, method: str) -> tuple[dict[str, Any], str]:
    for route in manifest.get("routes", []):
        if route.get("method") and route["method"].upper() != method:
            continue
        if rest.startswith(route["path"]):
            return route, rest[len(route["path"]) :]
    raise LookupError(f"no route of plugin.json matches {rest!r}")


class Handler(BaseHTTPRequestHandler):
    manifest: ClassVar[dict[str, Any]] = {}
    settings: ClassVar[dict[str, Any]] = {}
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
        route, rest = match_route(self.manifest, parts.path[len(own) :], self.command)
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
    manifest_path, settings_json, port, log = argv
    Handler.manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    Handler.settings = json.loads(settings_json)
    Handler.log_path = Path(log)
    server = ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
