"""The attacks of issue #12 at the app level, over HTTP (the test client): each one tries to
learn one enterprise's value, or whether a row exists, from the shape of the answers.

- HAVING before the threshold answered yes/no about a group of one;
- ``suppressed_groups`` told whether a group below the threshold existed;
- a data-dependent runtime error was a free yes/no (refusals cost nothing);
- an error's message or rule told which error it was.
"""

from __future__ import annotations

import sqlalchemy as sa

from tests.sandbox_app import data
from tests.sandbox_app.conftest import query


def _frame():
    return data.loans_frame()


def _quota_and_spent(world, lic_id: int, org_id: int, dataset_id: int):
    from decimal import Decimal

    from licenses.models import License
    from sandbox.models import PrivacySpending

    world.session.expire_all()
    spent = world.session.scalar(
        sa.select(PrivacySpending.epsilon_spent).where(
            PrivacySpending.buyer_org_id == org_id, PrivacySpending.dataset_id == dataset_id
        )
    )
    return world.session.get(License, lic_id).quota_remaining, Decimal(str(spent or 0))


def _shape(response) -> tuple:
    """What an attacker can compare between two answers, values aside."""
    body = response.get_json()
    privacy = body.get("privacy") or {}
    return (
        response.status_code,
        tuple(sorted(body)),
        (body.get("errors") or {}).get("rule"),
        body.get("message"),
        len(body.get("rows") or []),
        privacy.get("notice"),
    )


def test_having_on_a_group_of_one_is_no_oracle(world, client):
    """``GROUP BY d HAVING SUM(amount) >= v`` once answered yes/no about a single enterprise's
    value. On DP data HAVING is refused before anything is charged, whatever ``v`` is."""
    world.dataset("loans")
    buyer = world.party()
    lic = world.license(buyer, ["loans"])
    frame = _frame()
    small = frame[frame["district"] == data.SMALL]
    target = int(small["amount"].sum())
    answers = []
    for v in (target - 1, target, target + 1, 10**12):
        sql = (
            "SELECT district, COUNT(*) AS n FROM loans GROUP BY district "
            f"HAVING SUM(amount) >= {v}"
        )
        answers.append(query(client, lic.id, sql, buyer.headers))
    shapes = {_shape(r) for r in answers}
    assert len(shapes) == 1, shapes  # the answer never depends on v
    [only] = shapes
    if only[0] == 422:
        from sandbox.errors import RULES

        # A policy refusal (``having_not_released`` on DP data): data-independent, no charge.
        assert only[2] in RULES | {"having_not_released"} and only[2] != "execution_error"
    else:
        # Post-processing on released values only: the small district never shows up.
        assert all(
            data.SMALL not in [row[0] for row in r.get_json()["rows"]] for r in answers
        )
        assert all("suppressed_groups" not in r.get_json() for r in answers)


def test_a_group_below_the_threshold_looks_like_an_absent_one(world, client):
    """``suppressed_groups`` and an exact k once told whether a row matched a filter; now a
    withheld group and a group that does not exist give the same answer."""
    world.dataset("loans")
    buyer = world.party()
    lic = world.license(buyer, ["loans"])
    small = query(
        client,
        lic.id,
        f"SELECT district, COUNT(*) AS n FROM loans WHERE district = '{data.SMALL}' "
        "GROUP BY district",
        buyer.headers,
    )
    absent = query(
        client,
        lic.id,
        "SELECT district, COUNT(*) AS n FROM loans WHERE district = '不存在' GROUP BY district",
        buyer.headers,
    )
    assert small.status_code == absent.status_code == 200
    assert _shape(small) == _shape(absent)
    for r in (small, absent):
        body = r.get_json()
        assert body["rows"] == [] and "suppressed_groups" not in body
        assert body["privacy"]["notice"]
    # Also with the exact rating-style probe: one more AND term on a withheld cell.
    probe = query(
        client,
        lic.id,
        f"SELECT district, COUNT(*) AS n FROM loans WHERE district = '{data.SMALL}' "
        "AND industry = 'retail' GROUP BY district",
        buyer.headers,
    )
    assert _shape(probe) == _shape(absent)


def test_a_data_dependent_error_is_charged_and_answers_like_no_error(world, client):
    """``GROUP BY CAST(CASE WHEN <row predicate> THEN 'x' ELSE '1' END AS INTEGER)`` failed
    exactly when some row matched, for free. Whatever the predicate, the answers now look
    the same (the policy refuses it, or it runs without a data-dependent error); and every
    accepted query is charged."""
    ds = world.dataset("loans")
    buyer = world.party()
    lic = world.license(buyer, ["loans"])
    frame = _frame()
    existing = int(frame["amount"].iloc[3])
    missing = 123_456_789
    answers = []
    for value in (existing, missing):
        sql = (
            f"SELECT CAST(CASE WHEN amount = {value} THEN 'x' ELSE '1' END AS INTEGER) AS g, "
            f"COUNT(*) AS n FROM loans GROUP BY CAST(CASE WHEN amount = {value} THEN 'x' ELSE '1' END "
            "AS INTEGER)"
        )
        before = _quota_and_spent(world, lic.id, buyer.org_id, ds.id)
        r = query(client, lic.id, sql, buyer.headers)
        after = _quota_and_spent(world, lic.id, buyer.org_id, ds.id)
        answers.append((r, before, after))
    (r1, b1, a1), (r2, b2, a2) = answers
    assert (r1.status_code, _rule(r1)) == (r2.status_code, _rule(r2))
    assert r1.get_json().get("message") == r2.get_json().get("message")
    # Either both refused by the policy before any charge, or both charged alike.
    assert (b1[0] - a1[0], a1[1] - b1[1]) == (b2[0] - a2[0], a2[1] - b2[1])
    if r1.status_code == 422:
        assert _rule(r1) != "execution_error"


def _rule(response):
    return (response.get_json().get("errors") or {}).get("rule")


class _FailingEngine:
    """A test-only engine seam: every run fails the way a runtime error in DuckDB does."""

    def __init__(self, error):
        self.error = error
        self.runs = 0

    def run(self, *args, **kwargs):
        self.runs += 1
        raise self.error

    def close(self):
        pass


def test_every_engine_error_is_charged_and_answers_one_generic_message(world, client, app):
    from sandbox import app_engine
    from sandbox.errors import EngineError, ResourceLimit
    from sandbox.models import SandboxQuery

    ds = world.dataset("loans")
    buyer = world.party()
    lic = world.license(buyer, ["loans"], quota=20)
    seen = set()
    errors = [
        EngineError("Conversion Error: Could not convert string 'ACTIVE' to INT32", kind="engine"),
        EngineError("division by zero", kind="engine"),
        ResourceLimit("out of memory"),
        EngineError("permission denied", kind="permission"),
        ValueError("a bug in a noise step that only some data triggers"),
    ]
    real = app_engine._engines.get(app)
    try:
        for i, error in enumerate(errors):
            app_engine._engines[app] = _FailingEngine(error)
            before = _quota_and_spent(world, lic.id, buyer.org_id, ds.id)
            sql = (
                f"SELECT district, COUNT(*) AS n FROM loans WHERE industry <> 'x{i}' "
                "GROUP BY district"
            )
            r = query(client, lic.id, sql, buyer.headers)
            after = _quota_and_spent(world, lic.id, buyer.org_id, ds.id)
            assert r.status_code == 422 and _rule(r) == "execution_error"
            body = r.get_json()
            assert "ACTIVE" not in body["message"] and "zero" not in body["message"]
            seen.add(body["message"])
            assert before[0] - after[0] == 1  # one unit of quota
            assert after[1] - before[1] > 0  # and the budget of a release
    finally:
        if real is None:
            app_engine._engines.pop(app, None)
        else:
            app_engine._engines[app] = real
    assert len(seen) == 1
    world.session.expire_all()
    log = world.session.scalars(
        sa.select(SandboxQuery).where(SandboxQuery.license_id == lic.id)
    ).all()
    assert [(q.status, q.rule, q.quota_charged) for q in log] == [
        ("error", "execution_error", True)
    ] * 5
    assert all(q.epsilon_spent > 0 for q in log)


def test_a_timeout_is_charged_too(world, client, app):
    from sandbox import app_engine
    from sandbox.errors import QueryTimeout

    ds = world.dataset("loans")
    buyer = world.party()
    lic = world.license(buyer, ["loans"], quota=5)
    real = app_engine._engines.get(app)
    app_engine._engines[app] = _FailingEngine(QueryTimeout("stopped"))
    try:
        before = _quota_and_spent(world, lic.id, buyer.org_id, ds.id)
        r = query(client, lic.id, "SELECT COUNT(*) AS n FROM loans", buyer.headers)
        after = _quota_and_spent(world, lic.id, buyer.org_id, ds.id)
    finally:
        if real is None:
            app_engine._engines.pop(app, None)
        else:
            app_engine._engines[app] = real
    assert r.status_code == 422 and _rule(r) == "timeout"
    assert before[0] - after[0] == 1 and after[1] > before[1]
