"""The development server (``market serve``, the browser tests) closes a response whose client
dropped the connection: Werkzeug's own handler skips ``close()`` then, which leaked the open
static file in CI and can leak a streamed response's database session (and its locks)."""

from __future__ import annotations

import socket
import struct
import threading
import time

from werkzeug.serving import make_server

from market.devserver import make_dev_server


class _Body:
    """A small body that is slow to finish, and records whether it was closed."""

    def __init__(self) -> None:
        self.closed = threading.Event()
        self.sent = threading.Event()

    def __iter__(self):
        yield b"x" * 10
        self.sent.set()
        time.sleep(0.5)  # the client resets the connection meanwhile

    def close(self) -> None:
        self.closed.set()


def _serve(factory, body: _Body):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", "10")])
        return body

    server = factory(app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def _drop_mid_response(port: int, body: _Body) -> None:
    """Ask for the body and, once its first bytes are out, reset the connection (RST, not
    FIN): the server's drain of the socket then fails with ECONNRESET."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert body.sent.wait(10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_werkzeug_alone_leaves_a_dropped_response_open():
    """The defect being repaired: the plain handler never closes the body."""
    body = _Body()
    server, thread = _serve(lambda app: make_server("127.0.0.1", 0, app, threaded=True), body)
    try:
        _drop_mid_response(server.server_port, body)
        assert not body.closed.wait(3)
    finally:
        server.shutdown()
        thread.join(5)
        body.close()


def test_the_dev_server_closes_a_dropped_response():
    body = _Body()
    server, thread = _serve(lambda app: make_dev_server("127.0.0.1", 0, app), body)
    try:
        _drop_mid_response(server.server_port, body)
        assert body.closed.wait(10), "the response was never closed"
    finally:
        server.shutdown()
        thread.join(5)
