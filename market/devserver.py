"""The threaded Werkzeug server used by ``market serve`` (development and the demo) and by the
browser tests, with one repair: a response is always closed, even when the client drops the
connection.

Werkzeug's request handler closes the application's response iterator in a ``finally`` that
first drains the socket; when the client has reset the connection (a browser navigating away
while a favicon or an export is still on its way) that drain raises, and ``close()`` is never
called. For a file that leaks a descriptor; for a streamed response it leaks the request's
context and its database session, which may hold the audit chain's lock, so that every later
audited request waits on it. Here the iterator is kept in the WSGI environ and closed from
``connection_dropped``, which Werkzeug calls in exactly that case. gunicorn needs none of this.
"""

from __future__ import annotations

from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

RESPONSE_KEY = "market.devserver.response"


class ClosingRequestHandler(WSGIRequestHandler):
    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        response = environ.get(RESPONSE_KEY) if environ else None
        if response is not None:
            environ[RESPONSE_KEY] = None
            close = getattr(response, "close", None)
            if close is not None:
                close()


def remember_response(wsgi_app):
    """Wrap a WSGI callable so that its response can be closed by :class:`ClosingRequestHandler`."""

    def app(environ, start_response):
        response = wsgi_app(environ, start_response)
        environ[RESPONSE_KEY] = response
        return response

    return app


def make_dev_server(host: str, port: int, app) -> BaseWSGIServer:
    """A threaded server for ``app`` whose responses are closed even on a dropped connection."""
    return make_server(host, port, remember_response(app), threaded=True,
                       request_handler=ClosingRequestHandler)


def run(host: str, port: int, app) -> None:
    """Serve ``app`` until interrupted (Ctrl-C)."""
    server = make_dev_server(host, port, app)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
