"""Fixtures for the licence tests: signing keys, and a localstripe server.

localstripe (a fake Stripe API, in the test extras) is started once per session as a
subprocess on a free loopback port. The tests that need it skip, saying why, only if it cannot
start; nothing here ever talks to the real Stripe.
"""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# The stock `localstripe --port N` listens on every interface ('::') and pickles its whole
# store to the fixed path /tmp/localstripe.pickle after each write, which parallel workers
# (pytest-xdist) and earlier runs would share. Run the same aiohttp app on 127.0.0.1 instead,
# with an in-memory store.
_LOCALSTRIPE_RUNNER = """
import sys
from aiohttp import web
import localstripe.resources as resources
resources.Store.dump_to_disk = lambda self: None
from localstripe.server import app
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""
_START_TIMEOUT = 15.0


@pytest.fixture(scope="session")
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@dataclass(frozen=True)
class LocalStripe:
    base_url: str
    api_key: str = "sk_test_localstripe"

    def register_webhook(
        self, webhook_id: str, url: str, secret: str, events: list[str] | None = None
    ) -> None:
        """localstripe's own endpoint: POST /_config/webhooks/{id} {url, secret, events?}.

        Every later event (of the listed types) is POSTed to ``url`` about one second after
        it happens, signed like Stripe does (``Stripe-Signature: t=…,v1=HMAC-SHA256``).
        """
        body: dict[str, object] = {"url": url, "secret": secret}
        if events is not None:
            body["events"] = events
        request = urllib.request.Request(
            f"{self.base_url}/_config/webhooks/{webhook_id}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    try:
        import localstripe as _  # noqa: F401
    except ImportError:
        pytest.skip("localstripe is not installed (pip install -e '.[test]')")
    log_path = tmp_path_factory.mktemp("localstripe") / "server.log"
    port = _free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _LOCALSTRIPE_RUNNER, str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-800:]
                pytest.skip(f"localstripe did not start on 127.0.0.1:{port}: {tail or 'no output'}")
            time.sleep(0.05)
        yield LocalStripe(base_url=f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass(frozen=True)
class Delivery:
    path: str
    body: bytes
    signature: str | None


@dataclass(frozen=True)
class WebhookReceiver:
    url: str
    deliveries: queue.Queue[Delivery]

    def wait_for(self, predicate, timeout: float = 10.0) -> Delivery:
        """The first delivery for which ``predicate(json_body)`` holds; fails after ``timeout``.

        Deliveries for other events (earlier tests share the localstripe server) are skipped.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail("no matching webhook delivery arrived in time")
            try:
                delivery = self.deliveries.get(timeout=remaining)
            except queue.Empty:
                continue
            if predicate(json.loads(delivery.body)):
                return delivery


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A tiny HTTP server on a free loopback port that records every POST it receives."""
    deliveries: queue.Queue[Delivery] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            deliveries.put(Delivery(self.path, body, self.headers.get("Stripe-Signature")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield WebhookReceiver(f"http://127.0.0.1:{server.server_address[1]}/stripe", deliveries)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
