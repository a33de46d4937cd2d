"""The fast path of a question already released (``sandbox.fastpath``, issue 14's throughput):
it answers exactly what the full path answers, writes the same log row and audit event, and
whenever any check does not hold it leaves the request to the full path with nothing
written (so every refusal is still the full path's, logged and audited)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from tests.sandbox_app.conftest import query

Q1 = "SELECT district, COUNT(*) AS n FROM loans GROUP BY district"


#: Each test starts and ends with empty process caches (checks, workspaces).
pytestmark = pytest.mark.usefixtures("empty_sandbox_caches")


@pytest.fixture
def spy(monkeypatch):
    """Which requests the fast path answered (True) or left to the full path (False)."""
    from sandbox import fastpath

    seen: list[bool] = []
    real = fastpath.answer_cached

    def wrapped(*args, **kw):
        out = real(*args, **kw)
        seen.append(out is not None)
        return out

    monkeypatch.setattr(fastpath, "answer_cached", wrapped)
    return seen


def _log_rows(world, lic_id):
    from sandbox.models import SandboxQuery

    world.session.expire_all()
    return world.session.scalars(
        sa.select(SandboxQuery).where(SandboxQuery.license_id == lic_id).order_by(SandboxQuery.id)
    ).all()


def _events(world, type_="sandbox.query"):
    from market.audit.models import AuditEvent

    world.session.expire_all()
    return world.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.type == type_).order_by(AuditEvent.seq)
    ).all()


def _quota(world, lic_id):
    from licenses.models import License

    world.session.expire_all()
    return world.session.get(License, lic_id).quota_remaining


@pytest.mark.parametrize(
    "tables",
    [
        [("loans", None)],
        [("loans", ["district", "industry"])],
        [("loans", None), ("firms", None)],
    ],
)
def test_the_workspace_from_core_rows_equals_the_orm_workspace(world, tables):
    from market.accounts.actor import Actor
    from sandbox import fastpath, services
    from sandbox.workspace import SandboxSettings

    buyer = world.party()
    lic = world.license(buyer, tables)
    for settings in (SandboxSettings(), SandboxSettings(row_cap=7)):
        _, orm = services.workspace_of(world.session, Actor.from_user(buyer.user), lic.id, settings)
        core = fastpath.load_workspace(world.session, lic.id, settings)
        assert core == orm and repr(core.tables) == repr(orm.tables)
        assert fastpath.load_workspace(world.session, lic.id, settings) is core  # memoized


def test_a_change_of_privacy_settings_is_a_new_workspace(world, client):
    from market.datasets.models import Dataset
    from sandbox import fastpath
    from sandbox.workspace import SandboxSettings

    buyer = world.party()
    lic = world.license(buyer, ["loans"])
    before = fastpath.load_workspace(world.session, lic.id, SandboxSettings())
    ds = world.session.get(Dataset, world.dataset("loans").id)
    ds.dp_epsilon_per_query = before.tables[0].privacy.epsilon_per_query / 2
    world.session.commit()
    after = fastpath.load_workspace(world.session, lic.id, SandboxSettings())
    assert after != before
    assert after.tables[0].privacy.epsilon_per_query == ds.dp_epsilon_per_query


def test_a_cached_answer_is_the_full_paths_answer_with_the_same_log_and_audit(
    world, client, spy
):
    from market.audit.services import verify_chain
    from market.keys import public_keys

    buyer = world.party()
    lic = world.license(buyer, ["loans"], quota=10)
    first = query(client, lic.id, Q1, buyer.headers)
    assert first.status_code == 200 and first.get_json()["cached"] is False
    assert spy == [False]  # a new question: the full path
    # The same question once through the full path (fast path off) and once through it.
    from sandbox import fastpath

    real = fastpath.answer_cached
    fastpath.answer_cached = lambda *a, **k: None
    try:
        slow = query(client, lic.id, Q1, buyer.headers)
    finally:
        fastpath.answer_cached = real
    fast = query(client, lic.id, Q1, buyer.headers)
    assert spy[-1] is True
    assert slow.status_code == fast.status_code == 200
    slow_body, fast_body = slow.get_json(), fast.get_json()
    assert slow_body["cached"] is fast_body["cached"] is True
    assert fast_body["quota_remaining"] == slow_body["quota_remaining"] - 1 == 7
    assert _quota(world, lic.id) == 7
    for key in ("id", "elapsed_ms", "quota_remaining"):
        slow_body.pop(key), fast_body.pop(key)
    assert fast_body == slow_body
    rows = _log_rows(world, lic.id)
    assert len(rows) == 3
    cols = ("license_id", "buyer_org_id", "user_id", "sql_text", "sql_hash", "canonical_hash",
            "status", "rule", "rows_returned", "suppressed_groups", "truncated", "quota_charged",
            "epsilon_spent", "release_id")
    assert [getattr(rows[2], c) for c in cols] == [getattr(rows[1], c) for c in cols]
    events = _events(world)
    assert len(events) == 3
    slow_event, fast_event = events[1], events[2]
    assert fast_event.actor == slow_event.actor and fast_event.subject_id == str(lic.id)
    for key in ("query_id", "elapsed_ms"):
        slow_event.data.pop(key), fast_event.data.pop(key)
    assert fast_event.data == slow_event.data
    assert verify_chain(world.session, public_keys()).valid


@pytest.mark.parametrize("change", ["suspend", "expire", "blacklist", "quota", "columns"])
def test_after_a_change_the_full_path_refuses_and_logs(world, client, spy, change):
    """A question answered before; then the license or its holder changes: the fast path
    leaves it (nothing written) and the full path refuses it, logged and audited."""
    from licenses.blacklist import BlacklistEntry
    from licenses.models import License, LicenseItem

    buyer = world.party()
    lic = world.license(buyer, ["loans"], quota=3)
    assert query(client, lic.id, Q1, buyer.headers).status_code == 200
    assert query(client, lic.id, Q1, buyer.headers).status_code == 200 and spy == [False, True]
    row = world.session.get(License, lic.id)
    expected = {"suspend": (403, "license_not_active"), "expire": (403, "license_not_active"),
                "blacklist": (403, "blacklisted"), "quota": (429, "quota_exhausted"),
                "columns": (422, "not_licensed")}[change]
    if change == "suspend":
        row.status = "suspended"
    elif change == "expire":
        row.ends_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    elif change == "blacklist":
        world.session.add(BlacklistEntry(organization_id=buyer.org_id, reason="test"))
    elif change == "quota":
        row.quota_remaining = 0
    else:  # the license no longer grants the column the question groups by
        item = world.session.scalar(sa.select(LicenseItem).where(LicenseItem.license_id == lic.id))
        item.columns = ["industry"]
    world.session.commit()
    events_before = len(_events(world))
    r = query(client, lic.id, Q1, buyer.headers)
    assert (r.status_code, r.get_json()["errors"]["rule"]) == expected
    assert spy[-1] is False
    rows = _log_rows(world, lic.id)
    assert rows[-1].status != "ok" and rows[-1].rule == expected[1]
    assert len(_events(world)) == events_before + 1  # the refusal, audited once
    if change in ("quota", "columns", "blacklist"):
        assert _quota(world, lic.id) == (0 if change == "quota" else 1)


def test_another_buyers_license_is_not_found_and_writes_no_log_row(world, client, spy):
    owner, other = world.party(), world.party()
    lic = world.license(owner, ["loans"])
    assert query(client, lic.id, Q1, owner.headers).status_code == 200
    r = query(client, lic.id, Q1, other.headers)
    assert r.status_code == 404 and spy[-1] is False
    assert len(_log_rows(world, lic.id)) == 1


def test_the_chain_holds_over_many_fast_answers(world, client, spy):
    from market.audit.services import verify_chain
    from market.keys import public_keys

    buyer = world.party()
    lic = world.license(buyer, ["loans"], quota=50)
    for _ in range(12):
        assert query(client, lic.id, Q1, buyer.headers).status_code == 200
    assert spy.count(True) == 11
    assert _quota(world, lic.id) == 38
    assert verify_chain(world.session, public_keys()).valid


def test_concurrent_cached_questions_take_the_quota_exactly(live_app, spy):
    """Forty requests at once for a stored release against nine units left: the fast path's
    atomic UPDATE gives exactly nine answers, the rest are the full path's 429 (logged), and
    the chain holds every event unforked. Run on PostgreSQL too."""
    from collections import Counter

    from sandbox import app_engine
    from tests.sandbox_app.test_concurrency import _hammer, _seed, _state

    license_id, token = _seed(live_app, quota=10)
    try:
        assert _hammer(live_app, license_id, token, [Q1]) == [200]  # the release
        codes = _hammer(live_app, license_id, token, [Q1] * 40)
    finally:
        app_engine.close_engine(live_app)
    assert Counter(codes) == {200: 9, 429: 31}
    assert spy.count(True) == 9  # every answer from the stored release came the fast way
    quota, spent, log, events, valid = _state(live_app, license_id)
    assert quota == 0
    assert log == {("ok", None): 10, ("refused", "quota_exhausted"): 31}
    assert events == 41 and valid


def test_statements_built_by_a_racing_thread_are_reused_not_tested_for_truth():
    """Two requests of a fresh process both miss the statement cache; the second finds the
    first's statement once it holds the lock. It used `get(name) or build()`, and a SQLAlchemy
    statement has no truth value: the second request failed with a 500 (seen with two
    gunicorn servers under concurrent load, tests/scale/test_two_app_servers.py)."""
    import sqlalchemy as sa

    from sandbox.fastpath import _Statements

    built = sa.select(sa.literal_column("1")).where(sa.literal_column("x") == sa.bindparam("x"))

    class _Racing(dict):
        """Misses once (before the lock), as if another thread stored it right after."""

        def __init__(self) -> None:
            super().__init__()
            self.misses = 1

        def get(self, key, default=None):
            if self.misses:
                self.misses -= 1
                self[key] = built  # the other thread's statement
                return None
            return super().get(key, default)

    stmts = _Statements()
    stmts._built = _Racing()
    calls = []
    got = stmts.get("license", lambda: calls.append(1) or built)
    assert got is built and calls == []  # reused, not rebuilt, no TypeError
    assert stmts.get("license", lambda: calls.append(1) or built) is built and calls == []
