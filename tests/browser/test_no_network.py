"""The browser tests' Chromium keeps a page on this machine: a WebSocket a page's script opens is
closed before it connects, and noted, as its HTTP requests to another place are.

Found by attacking the gate: the request routing every browser test used sees HTTP(S) only, so a
`<script>` opening `ws://127.0.0.1:<port>/` reached a listener there while the test that says
"no page asks any host but the local server" stayed green. Pages may no longer write scripts
(tests/test_active_content.py); this holds the browser side on its own, with a script the test
runs itself. The control shows the same script reaching the listener without the guard.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ..test_safety import Listener
from .conftest import Served, keep_on_this_machine

pytestmark = pytest.mark.slow

#: opens a WebSocket and a fetch to the listener; resolves once the socket has ended either way
OPEN_SOCKET = """async (port) => {
  await fetch(`http://127.0.0.1:${port}/by-fetch`).catch(() => {});
  await new Promise((done) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/by-socket`);
    socket.onclose = () => done();
  });
}"""


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener("browser", socket.AF_INET, ("127.0.0.1", 0))
    try:
        yield found
    finally:
        found.close()


def open_socket(browser: Any, served: Served, port: int, guarded: bool) -> list[str]:
    """What the guard noted while a served page opened a WebSocket (and a fetch) to `port`."""
    noted: list[str] = []
    context = browser.new_context(service_workers="block")
    if guarded:
        keep_on_this_machine(context, served.origin, lambda: noted)
    try:
        page = context.new_page()
        page.goto(served.version_url("dev"), wait_until="load")
        page.evaluate(OPEN_SOCKET, port)
    finally:
        context.close()
    return noted


def test_a_pages_websocket_is_closed_before_it_connects(
    browser: Any, served: Served, listener: Listener
) -> None:
    noted = open_socket(browser, served, listener.port, guarded=True)
    assert listener.hits == []
    assert f"ws://127.0.0.1:{listener.port}/by-socket" in noted, noted
    assert f"http://127.0.0.1:{listener.port}/by-fetch" in noted, noted


def test_without_the_guard_the_same_socket_reaches_the_listener(
    browser: Any, served: Served, listener: Listener
) -> None:
    """The control: the listener and the script work, so the guarded run's silence is the
    guard's doing."""
    open_socket(browser, served, listener.port, guarded=False)
    assert any("GET /by-socket" in hit for hit in listener.hits), listener.hits


#: gathers WebRTC candidates with a STUN server at the port; resolves once gathering is over
GATHER = """async (port) => {
  const peer = new RTCPeerConnection({iceServers: [{urls: `stun:127.0.0.1:${port}`}]});
  peer.createDataChannel("x");
  const over = new Promise((done) => {
    peer.onicegatheringstatechange = () => peer.iceGatheringState === "complete" && done();
  });
  await peer.setLocalDescription(await peer.createOffer());
  await over;
  peer.close();
}"""


def stun_requests(args: list[str], served: Served) -> list[bytes]:
    """The datagrams a STUN server on loopback got while a served page gathered WebRTC
    candidates, in a Chromium started with `args`."""
    import importlib

    from .conftest import chromium_path

    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(0)
    sync_api = importlib.import_module("playwright.sync_api")

    def gather() -> None:  # in a thread of its own: the session's browser holds this one's loop
        with sync_api.sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=chromium_path(), args=args)
            try:
                page = chromium.new_page()
                page.goto(served.version_url("dev"), wait_until="load")
                page.evaluate(GATHER, server.getsockname()[1])
            finally:
                chromium.close()

    try:
        with ThreadPoolExecutor(max_workers=1) as thread:
            thread.submit(gather).result()
        got = []
        while True:
            try:
                got.append(server.recv(2048))
            except BlockingIOError:
                return got
    finally:
        server.close()


def test_webrtc_sends_no_udp(served: Served) -> None:
    """Gathering is over when every way to send has been tried, so an empty socket then means
    none was sent; the control, without the flag, shows the same page reaching the server."""
    from .conftest import CHROMIUM_ARGS

    assert stun_requests(CHROMIUM_ARGS, served) == []
    flag = "--webrtc-ip-handling-policy=disable_non_proxied_udp"
    assert flag in CHROMIUM_ARGS
    assert stun_requests([a for a in CHROMIUM_ARGS if a != flag], served) != []


def test_webrtc_and_webtransport_are_gone_from_a_guarded_page(browser: Any, served: Served) -> None:
    """A review reached a TURN server over TCP through WebRTC, and a UDP listener through
    WebTransport's QUIC, neither of which the routing sees: in a guarded context a page has
    neither constructor; the same page without the guard has both."""
    names = "() => [typeof RTCPeerConnection, typeof WebTransport]"
    for guarded, expected in ((True, ["undefined", "undefined"]), (False, ["function"] * 2)):
        context = browser.new_context(service_workers="block")
        if guarded:
            keep_on_this_machine(context, served.origin, lambda: [])
        try:
            page = context.new_page()
            page.goto(served.version_url("dev"), wait_until="load")
            assert page.evaluate(names) == expected, guarded
        finally:
            context.close()
