"""The e-mail outbox: each mail in its recipient's language, and delivered at most once even
when several ``market notify send`` run at once (real commits, threads; run on PostgreSQL
too: MARKET_TEST_DB=postgres)."""

from __future__ import annotations

import threading
import time
from itertools import count

import pytest
import sqlalchemy as sa

_serial = count(1)


def _seed(session, n: int, languages=("zh", "en", None)) -> list[int]:
    """``n`` pending outbox rows, to users cycling through ``languages``; returns their ids."""
    from market.accounts.models import User
    from market.notifications.models import EmailOutbox, Notification
    from tests.sandbox_app.data import org

    buyer = org(session, "buyer")
    users = []
    for language in languages:
        user = User(email=f"outbox{next(_serial)}@mail.example.cn", password_hash="x",
                    organization_id=buyer.id, language=language)
        session.add(user)
        users.append(user)
    session.flush()
    ids = []
    for i in range(n):
        user = users[i % len(users)]
        note = Notification(recipient_org_id=buyer.id, recipient_user_id=user.id,
                            type="license.approved", params={"license_id": 1000 + i})
        session.add(note)
        session.flush()
        row = EmailOutbox(notification_id=note.id, user_id=user.id, status="pending")
        session.add(row)
        session.flush()
        ids.append(row.id)
    return ids


class Recorder:
    """A sender that records every mail handed to it (thread-safe), slowly, so that runs
    overlap."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.lock = threading.Lock()
        self.sent: list = []

    def send(self, mail) -> None:
        time.sleep(self.delay)
        with self.lock:
            self.sent.append(mail)


def test_each_mail_is_in_its_recipients_language(app):
    from market.extensions import db
    from market.notifications.sender import deliver_outbox

    _seed(db.session, 3)
    sender = Recorder()
    report = deliver_outbox(db.session, sender, commit=db.session.flush)
    assert report.sent == 3
    zh, en, unset = sender.sent
    assert zh.subject != en.subject
    assert "1000" in zh.body and "许可" in zh.body and "License" not in zh.body
    assert en.body == "License 1001 was approved." and en.subject.isascii()
    assert unset.subject == zh.subject and "许可" in unset.body  # never chose: Chinese


def test_a_claimed_row_is_never_sent_by_another_run(app):
    from market.extensions import db
    from market.notifications import sender as mod
    from market.notifications.models import EmailOutbox

    [claimed, free] = _seed(db.session, 2)
    db.session.get(EmailOutbox, claimed).status = "sending"  # another run is sending it
    db.session.get(EmailOutbox, claimed).claimed_at = mod.utcnow()
    db.session.flush()
    sender = Recorder()
    assert mod.deliver_outbox(db.session, sender, commit=db.session.flush).sent == 1
    assert len(sender.sent) == 1
    row = db.session.get(EmailOutbox, claimed)
    db.session.refresh(row)
    assert row.status == "sending" and row.attempts == 0
    # A run that died mid-send leaves the row "sending": reported once stale, requeued only
    # on request (its mail may have gone), then sent.
    assert mod.stuck_count(db.session) == 0
    later = mod.utcnow() + mod.STUCK_AFTER * 2
    assert mod.stuck_count(db.session, now=later) == 1
    assert mod.requeue_stuck(db.session, now=later) == 1
    db.session.refresh(row)
    assert row.status == "pending"
    assert mod.deliver_outbox(db.session, sender, commit=db.session.flush).sent == 1


def test_a_failure_is_retried_by_the_next_run_not_the_same_one(app):
    from market.extensions import db
    from market.notifications.sender import deliver_outbox

    _seed(db.session, 2)

    class Down:
        calls = 0

        def send(self, mail):
            Down.calls += 1
            raise ConnectionRefusedError("smtp down")

    report = deliver_outbox(db.session, Down(), commit=db.session.flush)
    assert (report.sent, report.failed, Down.calls) == (0, 2, 2)
    assert deliver_outbox(db.session, Recorder(), commit=db.session.flush).sent == 2


@pytest.mark.parametrize("runs", [2, 4])
def test_concurrent_runs_send_each_mail_exactly_once(live_app, runs):
    from market.extensions import db
    from market.notifications.models import EmailOutbox
    from market.notifications.sender import deliver_outbox

    with live_app.app_context():
        ids = _seed(db.session, 24)
        db.session.commit()
    sender = Recorder(delay=0.01)
    start = threading.Barrier(runs)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with live_app.app_context():
                start.wait()
                deliver_outbox(db.session, sender, limit=100)
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    bodies = [m.body for m in sender.sent]
    assert len(bodies) == len(ids) == len(set(bodies)), "a mail was sent twice or not at all"
    with live_app.app_context():
        rows = db.session.execute(sa.select(EmailOutbox.status, EmailOutbox.attempts)).all()
    assert {tuple(r) for r in rows} == {("sent", 1)}


def test_the_cli_reports_and_requeues_stuck_mails(app, runner, monkeypatch):
    from market.extensions import db
    from market.notifications import sender as mod
    from market.notifications.models import EmailOutbox

    [stuck] = _seed(db.session, 1)
    row = db.session.get(EmailOutbox, stuck)
    row.status, row.claimed_at = "sending", mod.utcnow() - mod.STUCK_AFTER * 2
    db.session.flush()
    fake = Recorder()
    monkeypatch.setattr(mod, "default_sender", lambda: fake)
    result = runner.invoke(args=["notify", "send"])
    assert result.exit_code == 0 and "sent 0, failed 0" in result.output
    assert "--requeue-stuck" in result.output and not fake.sent
    result = runner.invoke(args=["notify", "send", "--requeue-stuck"])
    assert result.exit_code == 0 and "requeued 1" in result.output
    assert "sent 1, failed 0" in result.output and len(fake.sent) == 1
