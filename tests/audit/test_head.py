"""The signed head: checkpoints every N events and every T minutes, ``GET /audit/head``, the
heads a regulator saw, and truncating the tail (which used to verify as valid)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from market.accounts.actor import Actor

OPERATOR = Actor(1, 1, "operator", "active")


@pytest.fixture
def append(app):
    from market.audit import services
    from market.extensions import db

    def make(n: int):
        for i in range(n):
            services.record(db.session, "test.event", OPERATOR, ("thing", i), {"i": i})
        db.session.commit()
        return db.session

    return make


@pytest.fixture
def checkpoint_rules(app):
    """``checkpoint_rules(every, minutes)`` for one test."""
    saved = {k: app.config.get(k) for k in ("MARKET_AUDIT_CHECKPOINT_EVERY", "MARKET_AUDIT_CHECKPOINT_MINUTES")}

    def set_(every: int, minutes: int) -> None:
        app.config["MARKET_AUDIT_CHECKPOINT_EVERY"] = every
        app.config["MARKET_AUDIT_CHECKPOINT_MINUTES"] = minutes

    yield set_
    app.config.update(saved)


def verify(session, expect_head=None):
    from market.audit.services import verify_chain
    from market.keys import public_keys

    return verify_chain(session, public_keys(), expect_head=expect_head)


def checkpoint_seqs(session) -> list[int]:
    from market.audit.models import AuditCheckpoint

    return session.scalars(sa.select(AuditCheckpoint.seq).order_by(AuditCheckpoint.seq)).all()


def truncate_tail(session, keep: int, *, checkpoints: bool = True, observations: bool = False):
    """Delete every event after ``keep`` as the table owner would: on PostgreSQL the
    append-only triggers refuse it, so the attacker disables them first (the owner may)."""
    pg = session.get_bind().dialect.name == "postgresql"
    tables = ["audit_events"]
    if checkpoints:
        tables.append("audit_checkpoints")
    if observations:
        tables.append("audit_head_observations")
    for table in tables:
        if pg:
            session.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        session.execute(sa.text(f"DELETE FROM {table} WHERE seq > :keep"), {"keep": keep})
        if pg:
            session.execute(sa.text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
    session.expire_all()


# ------------------------------------------------------------------------------ checkpoints


@pytest.mark.parametrize(("every", "n", "expected"), [(5, 12, [1, 5, 10]), (3, 7, [1, 3, 6])])
def test_checkpoint_every_n_events(checkpoint_rules, append, every, n, expected):
    checkpoint_rules(every, 60)
    s = append(n)
    # The first event is signed too: there was no checkpoint at all (the T-minutes rule).
    assert checkpoint_seqs(s) == expected
    assert verify(s).valid


def test_checkpoint_after_t_minutes_without_one(checkpoint_rules, append, monkeypatch):
    from market.audit import services

    checkpoint_rules(0, 10)
    s = append(3)
    assert checkpoint_seqs(s) == [1]
    later = services.utcnow() + dt.timedelta(minutes=11)
    monkeypatch.setattr(services, "utcnow", lambda: later)
    append(2)
    assert checkpoint_seqs(s) == [1, 4]


def test_rules_can_be_switched_off(checkpoint_rules, append):
    checkpoint_rules(0, 0)
    assert checkpoint_seqs(append(4)) == []


# --------------------------------------------------------------------------- GET /audit/head


def test_head_is_signed_current_and_readable_by_regulator_and_operator(
    client, as_role, append, checkpoint_rules
):
    from market.keys import public_keys

    checkpoint_rules(100, 60)
    s = append(7)
    for role in ("regulator", "operator"):
        _, headers = as_role(role)
        r = client.get("/api/v1/audit/head", headers=headers)
        assert r.status_code == 200, r.get_json()
        head = r.get_json()
        assert set(head) == {"seq", "hash", "signed_at", "signature", "public_key_id"}
        result = verify(s)
        # The head covers the whole chain (events appended by the logins included).
        assert head["seq"] == result.events and head["hash"] == result.head
        from market.audit.services import verify_signed_head

        assert verify_signed_head(head, public_keys())
        assert not verify_signed_head({**head, "seq": head["seq"] - 1}, public_keys())


@pytest.mark.parametrize("role", ["buyer", "department", "subject"])
def test_head_is_refused_to_others(client, as_role, append, role):
    append(1)
    _, headers = as_role(role)
    assert client.get("/api/v1/audit/head", headers=headers).status_code == 403
    assert client.get("/api/v1/audit/head").status_code == 401


# ------------------------------------------------------------------------- tail truncation


def test_deleting_the_last_events_after_a_regulator_saw_the_head_fails_verify(
    client, as_role, append, checkpoint_rules
):
    """Issue #13 item 9: deleting the last 3 events verified as valid."""
    checkpoint_rules(100, 60)
    _, reg = as_role("regulator")
    s = append(5)
    head = client.get("/api/v1/audit/head", headers=reg).get_json()
    assert verify(s).valid
    truncate_tail(s, head["seq"] - 3)  # the attacker drops the checkpoints past it too
    result = verify(s)
    assert not result.valid and result.first_invalid_seq == head["seq"] - 2
    assert "regulator saw" in result.reason
    v = client.get("/api/v1/audit/verify", headers=reg).get_json()
    assert v["valid"] is False and v["first_invalid_seq"] == head["seq"] - 2


def test_a_checkpoint_past_the_end_is_found(append, checkpoint_rules):
    checkpoint_rules(5, 60)
    s = append(10)
    truncate_tail(s, 7, checkpoints=False)
    result = verify(s)
    assert not result.valid and result.first_invalid_seq == 8 and "checkpoint" in result.reason


def test_expect_head_catches_a_truncation_that_erased_every_trace(
    client, as_role, append, checkpoint_rules
):
    """The attacker also deletes checkpoints and recorded heads: only a head kept outside
    the system (``--expect-head``) still shows the truncation."""
    checkpoint_rules(100, 60)
    _, reg = as_role("regulator")
    s = append(6)
    head = client.get("/api/v1/audit/head", headers=reg).get_json()
    expected = (head["seq"], head["hash"])
    assert verify(s, expected).valid
    truncate_tail(s, head["seq"] - 3, observations=True)
    assert verify(s).valid  # nothing inside the database betrays it any more
    result = verify(s, expected)
    assert not result.valid and result.first_invalid_seq == head["seq"] - 2
    assert "expected head" in result.reason
    assert not verify(s, (head["seq"] - 4, "0" * 64)).valid  # a wrong hash within the chain


def test_cli_verify_expect_head(client, runner, as_role, append, checkpoint_rules):
    checkpoint_rules(100, 60)
    _, reg = as_role("regulator")
    s = append(6)
    head = client.get("/api/v1/audit/head", headers=reg).get_json()
    spec = f"{head['seq']}:{head['hash']}"
    r = runner.invoke(args=["audit", "verify", "--expect-head", spec])
    assert r.exit_code == 0, r.output
    truncate_tail(s, head["seq"] - 3, observations=True)
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    r = runner.invoke(args=["audit", "verify", "--expect-head", spec])
    assert r.exit_code == 1 and f"seq {head['seq'] - 2}" in r.output
    for bad in ("12", "x:" + "a" * 64, "3:" + "z" * 64, "3:abc"):
        assert runner.invoke(args=["audit", "verify", "--expect-head", bad]).exit_code == 2


@pytest.mark.postgres
def test_postgres_triggers_refuse_deleting_checkpoints_and_observations(
    client, as_role, append
):
    from market.extensions import db

    _, reg = as_role("regulator")
    s = append(2)
    if s.get_bind().dialect.name != "postgresql":
        pytest.skip("the append-only triggers exist on PostgreSQL only")
    client.get("/api/v1/audit/head", headers=reg)
    for table in ("audit_events", "audit_checkpoints", "audit_head_observations"):
        nested = db.session.begin_nested()
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            db.session.execute(sa.text(f"DELETE FROM {table}"))
        nested.rollback()


# ---------------------------------------------------------------------------- the console


def test_console_records_the_head_and_shows_a_later_truncation(
    app, client, make_user, append, checkpoint_rules
):
    from market.audit.models import AuditHeadObservation
    from tests.accounts.test_web import login

    checkpoint_rules(100, 60)
    s = append(5)
    regulator = make_user("regulator")
    login(client, regulator.email)
    page = client.get("/audit")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="signed-head"' in html and 'data-testid="lost-heads"' not in html
    seen = s.scalars(sa.select(AuditHeadObservation)).all()
    assert [(o.observer_user_id, o.source) for o in seen] == [(regulator.id, "console")]
    truncate_tail(s, seen[0].seq - 2)
    html = client.get("/audit").get_data(as_text=True)
    assert 'data-testid="lost-heads"' in html
    assert f"#{seen[0].seq}" in html
