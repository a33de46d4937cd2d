"""CSV export that is safe to open in a spreadsheet, streamed correctly under a real server.

A streamed body runs after the view has returned: under gunicorn (or ``market serve``) the
request's ``after_request`` commit has already ended its transaction and session by then. So
a stream never reads through the request's session: :func:`csv_response` gives it a session
and read-only transaction of its own (STYLE.md point 15), reads the first chunk while the view
is still running (an error there is an ordinary JSON 500), and ends a stream that fails later
visibly: a last line saying the file is incomplete, then an aborted chunked transfer, never a
short file that looks whole.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

#: The first characters of the line a failed stream ends with (then the transfer is aborted).
ERROR_LINE_PREFIX = "#ERROR"

#: Rows per chunk written to the client.
CHUNK_ROWS = 500


def safe_cell(value: Any) -> Any:
    """Neutralize spreadsheet formulas (CSV injection) by prefixing a quote.

    Numbers are left alone: -5 is data, not a formula.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def stream_csv(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Yield CSV text chunk by chunk, with a BOM so that Excel reads UTF-8 Chinese."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write("\ufeff")
    writer.writerow([safe_cell(h) for h in header])
    for n, row in enumerate(rows, 1):
        writer.writerow([safe_cell(v) for v in row])
        if n % CHUNK_ROWS == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


class StreamAborted(RuntimeError):
    """Raised out of a stream after its error line, so that the server aborts the transfer."""


def end_visibly(chunks: Iterator[str], error_line: str) -> Iterator[str]:
    """Pass ``chunks`` through; if they fail, yield ``error_line`` and raise StreamAborted.

    The line makes the failure visible to whoever opens the file; the exception makes the
    server drop the connection without the terminating chunk, so that HTTP clients (curl,
    ``requests``, browsers) report an incomplete download instead of a complete file.
    """
    try:
        yield from chunks
    except Exception as exc:
        log.exception("a streamed response failed after it had begun")
        yield f"\r\n{ERROR_LINE_PREFIX} {error_line}\r\n"
        raise StreamAborted(error_line) from exc


@contextmanager
def stream_session(bind: sa.Engine | sa.Connection) -> Iterator[Session]:
    """A session of the stream's own, in a read-only transaction, closed at the end.

    On an Engine (production) the transaction is read-only: on SQLite a deferred ``BEGIN``
    (see ``market.database``), so that a slow download never holds the write lock; on
    PostgreSQL ``REPEATABLE READ READ ONLY``, one consistent snapshot for the whole file.
    On a Connection (the test suite's outer transaction) it joins that connection.
    """
    # On a Connection, "rollback_only" and a bare close() leave its transaction alone.
    session = Session(bind=bind, expire_on_commit=False, autoflush=False,
                      join_transaction_mode="rollback_only")
    try:
        if isinstance(bind, sa.Engine):
            options: dict[str, Any] = {"market_read_only": True}
            if bind.dialect.name == "postgresql":
                options.update(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            session.connection(execution_options=options)
        yield session
    finally:
        # Closing returns an Engine's connection to the pool, which rolls its transaction back.
        session.close()


def csv_response(
    header: list[str],
    rows: Callable[[Session], Iterable[Iterable[Any]]],
    filename: str,
) -> Any:
    """A streamed CSV download whose ``rows(session)`` read through a session of their own.

    Must be called inside a request (the error line is translated into its language).
    Raises whatever reading the first chunk raises, so that the app's error handler answers
    it (a JSON envelope on API paths) before any byte is sent.
    """
    from flask import Response, stream_with_context
    from flask_babel import gettext as _

    from market.extensions import db

    bind = db.session.get_bind()
    error_line = _("The export failed before it was complete; this file is incomplete.")

    def chunks() -> Iterator[str]:
        with stream_session(bind) as session:
            yield from stream_csv(header, rows(session))

    body = chunks()
    try:
        first = next(body)
    except StopIteration:  # pragma: no cover - stream_csv always yields at least the header
        first = ""
    except Exception:
        body.close()
        raise
    return Response(
        stream_with_context(end_visibly(itertools.chain([first], body), error_line)),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={filename}"},
    )
