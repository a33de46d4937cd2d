"""The hash chain: appends, verification, tamper detection, checkpoints, export."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from market.accounts.actor import Actor


@pytest.fixture
def chain(app):
    """Append ``n`` events and return the session."""
    from market.audit import services
    from market.extensions import db

    def make(n: int):
        for i in range(n):
            services.record(db.session, "test.event", Actor(1, 1, "operator", "active"), ("thing", i), {"i": i, "名称": "数据"})
        db.session.commit()
        return db.session

    return make


def verify(session):
    from market.audit.services import verify_chain
    from market.keys import public_keys

    return verify_chain(session, public_keys())


def tamper(session, sql: str, **params):
    """Edit the table as a privileged attacker would: on PostgreSQL the append-only trigger
    must be bypassed first, which only a superuser can do."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SET LOCAL session_replication_role = replica"))
    session.execute(sa.text(sql), params)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SET LOCAL session_replication_role = origin"))


def test_chain_links_and_verifies(chain):
    from market.audit.models import GENESIS_HASH, AuditEvent

    s = chain(5)
    events = s.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [e.seq for e in events] == list(range(1, 6))
    assert events[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    result = verify(s)
    assert result.valid and result.events == 5 and result.head == events[-1].hash


def test_hash_is_sha256_of_prev_and_canonical_json(chain):
    import hashlib

    from market.audit.models import AuditEvent
    from market.crypto import canonical_json
    from market.db import iso

    s = chain(1)
    e = s.scalars(sa.select(AuditEvent)).one()
    content = {"seq": 1, "at": iso(e.at), "type": e.type, "actor": e.actor,
               "subject": {"type": "thing", "id": "0"}, "data": e.data}
    assert e.hash == hashlib.sha256(e.prev_hash.encode() + canonical_json(content)).hexdigest()


@pytest.mark.parametrize(
    "sql, bad_seq",
    [
        ("UPDATE audit_events SET data = '{\"i\": 99}' WHERE seq = 4", 4),
        ("UPDATE audit_events SET type = 'forged' WHERE seq = 2", 2),
        ("UPDATE audit_events SET at = at WHERE seq = 0", None),  # a no-op changes nothing
        ("DELETE FROM audit_events WHERE seq = 3", 3),
        ("UPDATE audit_events SET actor_user_id = 5, actor = '{\"user_id\": 5, \"org_id\": 1, \"role\": \"operator\"}' WHERE seq = 6", 6),
    ],
)
def test_tampering_is_found_at_the_right_seq(chain, sql, bad_seq):
    s = chain(8)
    tamper(s, sql)
    result = verify(s)
    if bad_seq is None:
        assert result.valid
    else:
        assert not result.valid and result.first_invalid_seq == bad_seq, result


def test_reordering_is_found(chain):
    s = chain(6)
    # Swap the content of events 2 and 5 (keeping their seq numbers).
    tamper(s, "UPDATE audit_events SET seq = 1000 WHERE seq = 2")
    tamper(s, "UPDATE audit_events SET seq = 2 WHERE seq = 5")
    tamper(s, "UPDATE audit_events SET seq = 5 WHERE seq = 1000")
    result = verify(s)
    assert not result.valid and result.first_invalid_seq == 2


def test_truncated_tail_is_found_by_checkpoint(app, chain):
    app.config["MARKET_AUDIT_CHECKPOINT_EVERY"] = 5
    try:
        s = chain(10)
        assert verify(s).checkpoints == 3  # seq 1 (no checkpoint yet), 5 and 10
        tamper(s, "DELETE FROM audit_events WHERE seq > 7")
        result = verify(s)
        assert not result.valid and result.first_invalid_seq == 8
    finally:
        app.config["MARKET_AUDIT_CHECKPOINT_EVERY"] = 100


def test_rewritten_history_fails_the_signed_checkpoint(app, chain):
    """Recomputing every hash after an edit still breaks the Ed25519 checkpoint."""
    from market.audit.models import AuditEvent
    from market.audit.services import chain_hash, event_content

    app.config["MARKET_AUDIT_CHECKPOINT_EVERY"] = 4
    try:
        s = chain(6)
        tamper(s, "UPDATE audit_events SET data = '{\"i\": 42}' WHERE seq = 2")
        prev = None
        for e in s.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq)).all():
            s.refresh(e)
            prev = prev or e.prev_hash
            h = chain_hash(prev, event_content(e.seq, e.at, e.type, e.actor, e.subject_type, e.subject_id, e.data))
            tamper(s, "UPDATE audit_events SET prev_hash = :p, hash = :h WHERE seq = :s", p=prev, h=h, s=e.seq)
            prev = h
        result = verify(s)
        assert not result.valid and result.first_invalid_seq == 4
        assert "checkpoint" in result.reason
    finally:
        app.config["MARKET_AUDIT_CHECKPOINT_EVERY"] = 100


@pytest.mark.postgres
def test_postgres_trigger_refuses_update_and_delete(app, chain):
    from market.extensions import db

    s = chain(2)
    if s.get_bind().dialect.name != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL only")
    for sql in ("UPDATE audit_events SET type = 'x' WHERE seq = 1", "DELETE FROM audit_events WHERE seq = 1", "TRUNCATE audit_events"):
        nested = db.session.begin_nested()
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            db.session.execute(sa.text(sql))
        nested.rollback()
    assert verify(s).valid


def test_cli_verify_exit_codes(app, runner, chain):
    s = chain(3)
    r = runner.invoke(args=["audit", "verify"])
    assert r.exit_code == 0 and "OK: 3 events" in r.output
    tamper(s, "UPDATE audit_events SET data = '{}' WHERE seq = 2")
    r = runner.invoke(args=["audit", "verify"])
    assert r.exit_code == 1 and "seq 2" in r.output


def test_api_verify_events_and_export(app, client, as_role, chain):
    chain(3)
    _, reg = as_role("regulator")
    _, op = as_role("operator")
    _, buyer = as_role("buyer")
    v = client.get("/api/v1/audit/verify", headers=reg).get_json()
    assert v["valid"] is True and len(v["head"]) == 64 and v["events"] >= 3
    page = client.get("/api/v1/audit/events?type=test&per_page=2", headers=op).get_json()
    assert page["total"] == 3 and len(page["items"]) == 2
    item = page["items"][0]
    assert set(item) >= {"seq", "at", "type", "actor", "subject", "data", "prev_hash", "hash"}
    assert item["seq"] == 3  # newest first
    orgs = client.get("/api/v1/audit/events?type=organization.created", headers=op).get_json()
    assert orgs["total"] >= 3
    assert client.get("/api/v1/audit/events", headers=buyer).status_code == 403
    assert client.get("/api/v1/audit/export.csv", headers=buyer).status_code == 403
    assert client.get("/api/v1/audit/export.csv?type=test", headers=op).status_code == 200
    r = client.get("/api/v1/audit/export.csv?type=test", headers=reg)
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:3] == ["seq", "at", "type"] and len(rows) == 4
    assert "数据" in rows[1][6]


def test_filters_by_actor_org_and_time(app, client, as_role, chain):
    import datetime as dt

    chain(2)
    _, reg = as_role("regulator")
    by_org = client.get("/api/v1/audit/events?actor_org=1&type=test", headers=reg).get_json()
    assert by_org["total"] == 2
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    assert client.get("/api/v1/audit/events", headers=reg, query_string={"since": future}).get_json()["total"] == 0


def test_csv_export_neutralizes_formulas():
    from market.csvutil import safe_cell

    assert safe_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("+1") == "'+1" and safe_cell("-1") == "'-1"
    assert safe_cell(-1) == -1 and safe_cell("plain") == "plain"


def test_account_changes_and_logins_are_events(app, client, as_role):
    from market.audit.models import AuditEvent
    from market.extensions import db
    from tests.conftest import PASSWORD

    user, _ = as_role("buyer")
    client.post("/api/v1/auth/token", json={"email": user.email, "password": PASSWORD})
    types = set(db.session.scalars(sa.select(AuditEvent.type)))
    assert {"organization.created", "user.created", "auth.token_issued", "auth.login"} <= types


def test_explorer_page_filters_verifies_and_exports(app, client, make_user, chain):
    from tests.accounts.test_web import csrf_from, login

    chain(3)
    reg = make_user("regulator")
    login(client, reg.email)
    page = client.get("/audit?type=test")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-testid="audit-events"' in html and "test.event" in html
    assert "共 3 个事件" in html
    r = client.post("/audit?type=test", data={"csrf_token": csrf_from(html)})
    html = r.get_data(as_text=True)
    assert 'data-testid="verify-result"' in html and "审计链完整" in html
    assert 'data-testid="head-hash"' in html
    export = client.get("/api/v1/audit/export.csv?type=test")
    assert export.status_code == 200 and export.mimetype == "text/csv"


def test_explorer_is_refused_to_buyers(client, make_user):
    from tests.accounts.test_web import login

    buyer = make_user("buyer")
    login(client, buyer.email)
    assert client.get("/audit").status_code == 403
