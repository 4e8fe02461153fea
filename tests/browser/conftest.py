"""One strict build of the site, one local web server and one Chromium for the whole session.

The server lays the build out as mike deploys it on GitHub Pages: the site under
`/distribution/<version>/` (here the same build as `dev` and as `2.0`), `versions.json` beside
the version folders, and the site's `404.html` for any other address. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import shutil
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import pytest

from betrace_dist import REPO_ROOT

from ..conftest import SiteBuild, require_tool, run_mkdocs, skip_or_fail

HERE = Path(__file__).parent
FIXTURE_SITE = HERE / "fixture-site"
T = TypeVar("T")
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    # WebRTC sends UDP past any request filter: none but through a proxy, and there is none.
    # The switch is --webrtc-ip-handling-policy: the --force-... spelling found in older
    # writings gathers as before in Chromium 156 (tried; test_no_network.py measures it)
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
]
#: Where the site lives below the host: the path of `site_url` (mike adds the version to it).
SITE_PATH = "/distribution/"
#: The versions mike would list; the build is served as both, `dev` first as the workflow does.
VERSIONS = [
    {"version": "dev", "title": "dev", "aliases": []},
    {"version": "2.0", "title": "2.0", "aliases": ["latest"]},
]
FIXTURE_PATH = "/fixture/"


#: Run in every frame before the page's own scripts: the ways out that no routing sees go.
#: WebRTC reaches a TURN server over TCP (and STUN over UDP without the Chromium switch), and
#: WebTransport speaks QUIC over UDP; both were seen reaching loopback listeners. A script that
#: got a constructor from a frame before this ran would keep it: pages run no script
#: (site/active_content.py), and this is the second wall.
NO_SIDE_DOORS = """
for (const name of ["RTCPeerConnection", "webkitRTCPeerConnection", "WebTransport"]) {
  try { delete globalThis[name]; } catch (e) {}
  try { Object.defineProperty(globalThis, name, {value: undefined}); } catch (e) {}
}
"""


def keep_on_this_machine(context: Any, origin: str, noted: Callable[[], list[str]]) -> None:
    """Refuse, and note in `noted()`, every request of a browser context to another place than
    `origin`: HTTP(S) through Playwright's request routing, and WebSockets, which that routing
    never sees (a page's script reached a listener that way), through its WebSocket routing,
    which closes them before any connection is made; WebRTC and WebTransport are taken away
    (NO_SIDE_DOORS)."""
    context.add_init_script(NO_SIDE_DOORS)

    def refuse(route: Any) -> None:
        noted().append(route.request.url)
        route.abort()

    def refuse_socket(socket: Any) -> None:
        noted().append(socket.url)
        socket.close()

    context.route(lambda url: not url.startswith(origin + "/"), refuse)
    context.route_web_socket(lambda url: True, refuse_socket)


async def keep_on_this_machine_async(
    context: Any, origin: str, noted: Callable[[], list[str]]
) -> None:
    """keep_on_this_machine for Playwright's asynchronous API."""
    await context.add_init_script(NO_SIDE_DOORS)

    async def refuse(route: Any) -> None:
        noted().append(route.request.url)
        await route.abort()

    async def refuse_socket(socket: Any) -> None:
        noted().append(socket.url)
        await socket.close()

    await context.route(lambda url: not url.startswith(origin + "/"), refuse)
    await context.route_web_socket(lambda url: True, refuse_socket)


def require_module(name: str, hint: str) -> ModuleType:
    """An importable Python package, or a skip (a failure under BETRACE_REQUIRE_TOOLS=1)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        skip_or_fail(f"Python package '{name}' is not installed ({hint})")


def require_file(path: Path, hint: str) -> Path:
    if path.is_file():
        return path
    skip_or_fail(f"{path.relative_to(REPO_ROOT)} is missing ({hint})")


@dataclass(frozen=True)
class Build:
    site: Path


def build(config: Path, out: Path) -> Build:
    result = run_mkdocs(["build", "--strict", "-f", str(config), "-d", str(out)], cwd=REPO_ROOT)
    problems = [line for line in result.stderr.splitlines() if not line.startswith("INFO")]
    assert result.returncode == 0, f"mkdocs build --strict -f {config} failed:\n" + "\n".join(
        problems
    )
    return Build(out)


@pytest.fixture(scope="session")
def real_build(real_site: SiteBuild) -> Build:
    problems = [line for line in real_site.stderr.splitlines() if not line.startswith("INFO")]
    assert real_site.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(problems)
    return Build(real_site.site)


@pytest.fixture(scope="session")
def fixture_build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return build(FIXTURE_SITE / "mkdocs.yml", tmp_path_factory.mktemp("fixture-site"))


class Layout:
    """Which file answers which address: the mike layout of the real build, and the fixture."""

    def __init__(self, site: Path, fixture: Path, versions_json: Path) -> None:
        self.site = site
        self.fixture = fixture
        self.versions_json = versions_json

    def path_for(self, address: str) -> Path | None:
        """The file or folder (one with an index.html) that answers `address`, if any."""
        path = unquote(urlsplit(address).path)
        if path in ("/versions.json", SITE_PATH + "versions.json"):
            return self.versions_json
        root, rest = self.site, None
        for version in VERSIONS:
            prefix = f"{SITE_PATH}{version['version']}/"
            if path.startswith(prefix):
                rest = path[len(prefix) :]
        if rest is None and path.startswith(FIXTURE_PATH):
            root, rest = self.fixture, path[len(FIXTURE_PATH) :]
        if rest is None and path.startswith(SITE_PATH):
            rest = path[len(SITE_PATH) :]  # a plain (unversioned) deployment: the 404 page's links
        if rest is None:
            return None
        target = (root / rest).resolve()
        if not target.is_relative_to(root.resolve()):
            return None
        if target.is_file() or (target / "index.html").is_file():
            return target
        return None

    def page_for(self, address: str) -> Path | None:
        """The HTML file a browser gets for `address` (a folder's index.html)."""
        found = self.path_for(address)
        if found is not None and found.is_dir():
            return found / "index.html"
        return found


def serve(layout: Layout) -> ThreadingHTTPServer:
    class Handler(SimpleHTTPRequestHandler):
        def send_head(self) -> Any:
            if layout.path_for(self.path) is not None:
                return super().send_head()  # folders: redirect to add the slash, then index.html
            body = (layout.site / "404.html").read_bytes()  # what GitHub Pages does
            self.send_response(HTTPStatus.NOT_FOUND)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None

        def translate_path(self, path: str) -> str:
            return str(layout.path_for(path))

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass(frozen=True)
class Served:
    origin: str  # http://127.0.0.1:PORT
    layout: Layout

    def version_url(self, version: str = "dev", page: str = "") -> str:
        return f"{self.origin}{SITE_PATH}{version}/{page}"

    def fixture_url(self, page: str = "") -> str:
        return f"{self.origin}{FIXTURE_PATH}{page}"


@pytest.fixture(scope="session")
def served(
    real_build: Build, fixture_build: Build, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    versions = tmp_path_factory.mktemp("gh-pages") / "versions.json"
    versions.write_text(json.dumps(VERSIONS), encoding="utf-8")
    layout = Layout(real_build.site, fixture_build.site, versions)
    server = serve(layout)
    host, port = server.server_address[:2]
    try:
        yield Served(f"http://{host}:{port}", layout)
    finally:
        server.shutdown()
        server.server_close()


PLAYWRIGHT_HINT = "pip install playwright; the system chromium is used, never 'playwright install'"


def chromium_path() -> str:
    """The system Chromium, once Playwright is importable; else a skip (in CI a failure)."""
    chromium = require_tool("chromium")
    require_module("playwright.sync_api", PLAYWRIGHT_HINT)
    return chromium


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    chromium = chromium_path()
    sync_api = importlib.import_module("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def in_parallel(jobs: Sequence[T], run: Callable[[Any, T], Awaitable[None]]) -> None:
    """`await run(browser, job)` for all jobs at once, in a Chromium of their own, driven by
    Playwright's asynchronous API in a thread of its own (the session's `browser` is the
    synchronous API, whose event loop holds this thread)."""
    chromium = chromium_path()

    async def all_jobs() -> None:
        from playwright.async_api import async_playwright

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                await asyncio.gather(*(run(browser, job) for job in jobs))
            finally:
                await browser.close()

    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(lambda: asyncio.run(all_jobs())).result()


@pytest.fixture(scope="session")
def axe_source() -> str:
    return require_file(AXE, "run: npm ci --prefix tests/browser").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BETRACE_SCREENSHOTS if set (CI keeps that folder), else a temporary folder."""
    named = os.environ.get("BETRACE_SCREENSHOTS")
    folder = Path(named) if named else tmp_path_factory.mktemp("screenshots")
    if named and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
