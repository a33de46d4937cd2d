"""The stream's own session (market.csvutil), in-process on a database of its own: it reads
in a read-only transaction that never blocks the writers of a busy market."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from market.accounts.actor import Actor
from market.csvutil import ERROR_LINE_PREFIX, StreamAborted, end_visibly, stream_session


def _append(n: int = 1) -> None:
    from market.audit import services
    from market.extensions import db

    for i in range(n):
        services.record(db.session, "test.event", Actor.system("test"), None, {"i": i})
    db.session.commit()


def test_a_slow_download_does_not_block_writers(live_app):
    from market.audit.models import AuditEvent
    from market.extensions import db

    with live_app.app_context():
        _append(3)
        with stream_session(db.engine) as session:
            seen = session.scalars(sa.select(AuditEvent.seq).order_by(AuditEvent.seq)).all()
            assert seen == [1, 2, 3]
            # A writer in another thread, while the stream's transaction is still open.
            done = threading.Event()
            errors: list[BaseException] = []

            def write():
                try:
                    with live_app.app_context():
                        _append(1)
                        db.session.remove()
                    done.set()
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)

            t = threading.Thread(target=write)
            t.start()
            t.join(timeout=10)
            assert done.is_set(), errors or "the writer was blocked by the stream's transaction"
            # One snapshot for the whole file on PostgreSQL (REPEATABLE READ); SQLite's
            # deferred transaction took its snapshot at the first read, too.
            again = session.scalars(sa.select(AuditEvent.seq).order_by(AuditEvent.seq)).all()
            assert again == [1, 2, 3]
        db.session.remove()


def test_the_stream_session_cannot_write(live_app):
    from market.extensions import db

    with live_app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite has no read-only transactions; the deferred BEGIN is tested above")
        with stream_session(db.engine) as session, pytest.raises(sa.exc.DBAPIError,
                                                                 match="read-only"):
            session.execute(sa.text("DELETE FROM audit_events"))


def test_end_visibly_adds_an_error_line_then_raises():
    def chunks():
        yield "a,b\r\n"
        raise RuntimeError("boom")

    out = []
    with pytest.raises(StreamAborted):
        for chunk in end_visibly(chunks(), "The export failed."):
            out.append(chunk)
    assert out[0] == "a,b\r\n"
    assert out[-1].strip() == f"{ERROR_LINE_PREFIX} The export failed."
    assert list(end_visibly(iter(["x"]), "unused")) == ["x"]
