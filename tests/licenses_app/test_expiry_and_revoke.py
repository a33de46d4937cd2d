"""Expiry (on access and by the CLI) and revocation with pro-rata refunds by credit note."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from tests.licenses_app.conftest import active_license, apply


def _set_term(license_id: int, starts: dt.datetime, ends: dt.datetime) -> None:
    from licenses.models import License
    from market.extensions import db

    db.session.execute(
        sa.update(License).where(License.id == license_id).values(starts_at=starts, ends_at=ends)
    )
    db.session.commit()


def _audit_count(type_: str) -> int:
    from market.audit.models import AuditEvent
    from market.extensions import db

    return db.session.scalar(
        sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.type == type_)
    )


def test_expires_on_access_once(client, market):
    lic = active_license(client, market)
    now = dt.datetime.now(dt.UTC)
    _set_term(lic["id"], now - dt.timedelta(days=400), now - dt.timedelta(seconds=1))
    body = client.get(f"/api/v1/licenses/{lic['id']}", headers=market.buyer.headers).get_json()
    assert body["status"] == "expired"
    client.get(f"/api/v1/licenses/{lic['id']}", headers=market.operator.headers)
    assert _audit_count("license.expired") == 1
    # Expired is final for the regulator's actions too.
    r = client.post(
        f"/api/v1/licenses/{lic['id']}/suspend",
        json={"reason": "x"},
        headers=market.regulator.headers,
    )
    assert r.status_code == 409


def test_cli_expires_due_licenses_including_suspended(client, market, runner):
    now = dt.datetime.now(dt.UTC)
    due = active_license(client, market)
    suspended = active_license(client, market)
    running = active_license(client, market)
    client.post(
        f"/api/v1/licenses/{suspended['id']}/suspend",
        json={"reason": "check"},
        headers=market.regulator.headers,
    )
    for lic in (due, suspended):
        _set_term(lic["id"], now - dt.timedelta(days=40), now - dt.timedelta(minutes=5))

    result = runner.invoke(args=["licenses", "expire"])
    assert result.exit_code == 0, result.output
    assert "Expired 2 licenses." in result.output
    statuses = {
        lic["id"]: client.get(
            f"/api/v1/licenses/{lic['id']}", headers=market.operator.headers
        ).get_json()["status"]
        for lic in (due, suspended, running)
    }
    assert statuses == {due["id"]: "expired", suspended["id"]: "expired", running["id"]: "active"}
    assert "Expired 0 licenses." in runner.invoke(args=["licenses", "expire"]).output


def test_revocation_refunds_the_unused_term_by_credit_note(app, client, market):
    from licenses.models import LedgerJournal, Payment, Refund
    from licenses.refunds import prorata_refund
    from market.extensions import db

    lic = active_license(client, market, amount=123_457)
    now = dt.datetime.now(dt.UTC)
    starts, ends = now - dt.timedelta(days=100), now + dt.timedelta(days=265)
    _set_term(lic["id"], starts, ends)

    r = client.post(
        f"/api/v1/licenses/{lic['id']}/revoke",
        json={"reason": "department withdrew the data"},
        headers=market.operator.headers,
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "revoked"

    refund = db.session.scalar(sa.select(Refund))
    expected = prorata_refund(123_457, starts, ends, refund.created_at)
    assert 0 < refund.amount_fen == expected < 123_457
    assert refund.credit_note_number.startswith("CN-") and refund.status == "pending"
    payment = db.session.scalar(sa.select(Payment).where(Payment.license_id == lic["id"]))
    assert payment.refunded_fen == expected
    journal = db.session.scalar(
        sa.select(LedgerJournal).where(LedgerJournal.kind == "refund_issued")
    )
    lines = {line.account: (line.debit_fen, line.credit_fen) for line in journal.lines}
    assert lines[f"credit_notes:buyer:{market.buyer.org.id}"] == (0, expected)
    assert sum(d for d, _ in lines.values()) == expected
    assert _audit_count("payment.refunded") == 1

    # Access stops at once.
    from flask_babel import force_locale

    from licenses import services
    from market.accounts.actor import Actor
    from market.errors import Forbidden

    try:
        with force_locale("en"):  # a service called outside a request speaks the default, zh
            services.active_license_for(
                db.session, lic["id"], Actor.from_user(market.buyer.user)
            )
    except Forbidden as exc:
        assert "revoked" in exc.message
    else:  # pragma: no cover
        raise AssertionError("a revoked license must not be usable")


def test_revocation_for_breach_refunds_nothing(app, client, market):
    from licenses.models import Refund
    from market.extensions import db

    lic = active_license(client, market)
    r = client.post(
        f"/api/v1/licenses/{lic['id']}/revoke",
        json={"reason": "data resold", "refund": False},
        headers=market.regulator.headers,
    )
    assert r.status_code == 200
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 0


def test_revoking_an_unpaid_license_voids_its_invoice(app, client, market):
    from licenses.models import LedgerJournal, Payment
    from market.extensions import db

    lic = apply(client, market, market.quote([(market.dataset(), 9_900)])).get_json()
    client.post(
        f"/api/v1/licenses/{lic['id']}/payments",
        json={"provider": "invoice"},
        headers=market.buyer.headers,
    )
    client.post(
        f"/api/v1/licenses/{lic['id']}/revoke",
        json={"reason": "no longer needed"},
        headers=market.operator.headers,
    )
    kinds = db.session.scalars(sa.select(LedgerJournal.kind).order_by(LedgerJournal.id)).all()
    assert kinds == ["invoice_issued", "invoice_voided"]
    assert db.session.scalar(sa.select(Payment.status)) == "canceled"
