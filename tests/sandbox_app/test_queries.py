"""The sandbox API end to end: answers checked against pandas, refusals with their rules,
license states, quota, the query log and the audit chain."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.sandbox_app import data
from tests.sandbox_app.conftest import query

LOANS_BY_DISTRICT = (
    "SELECT district, COUNT(*) AS n, SUM(amount) AS total, AVG(amount) AS mean, "
    "COUNT(DISTINCT ek) AS firms FROM loans GROUP BY district"
)


@pytest.fixture(scope="module")
def loans() -> pd.DataFrame:
    df = data.loans_frame()
    df["clamped"] = df["amount"].clip(0, data.AMOUNT_HI)
    return df


def _events(session, license_id: int) -> list:
    from market.audit.models import AuditEvent

    return list(
        session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.type == "sandbox.query", AuditEvent.subject_id == str(license_id))
            .order_by(AuditEvent.seq)
        )
    )


def _log(session, license_id: int) -> list:
    from sandbox.models import SandboxQuery

    return list(
        session.scalars(
            sa.select(SandboxQuery)
            .where(SandboxQuery.license_id == license_id)
            .order_by(SandboxQuery.id)
        )
    )


def _quota(session, license_id: int) -> int:
    from licenses.models import License

    session.expire_all()
    return session.get(License, license_id).quota_remaining


# ------------------------------------------------------------------------ correct answers


def _within(noisy, exact, bound) -> bool:
    """A noisy value within three times its 95% error bound of the truth (a false alarm has
    probability about 1e-4 per value for Laplace noise)."""
    assert bound is not None and bound["half_width"] is not None, "noisy values carry bounds"
    assert bound["confidence"] == "0.95"
    half = Decimal(bound["half_width"])
    return abs(Decimal(str(noisy)) - Decimal(str(exact))) <= 3 * half + Decimal("0.01")


def test_dp_aggregates_are_within_their_error_bounds_and_small_groups_are_withheld(
    world, client, loans
):
    buyer = world.party()
    # delta 1e-6 puts tau at 11 distinct enterprises: the small district (3) is released with
    # probability ~1e-5 per run, a big one (25) withheld with ~4e-9. With delta 1e-4 (tau 7)
    # the small district came out in about one run in 400: correct DP, but a flaky test.
    world.dataset("loans", eps_per_query="4", delta="0.000001")
    lic = world.license(buyer, ["loans"])
    sql = "SELECT district, COUNT(*) AS n, SUM(amount) AS total FROM loans GROUP BY district"
    r = query(client, lic.id, sql, buyer.headers)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "ok" and body["columns"] == ["district", "n", "total"]
    assert body["column_kinds"] == ["dimension", "count", "sum"]
    assert "suppressed_groups" not in body  # no oracle on conditional data
    privacy = body["privacy"]
    assert privacy["epsilon_spent"] == "4.0000" and privacy["notice"]
    bounds = privacy["error_bounds"]
    assert len(bounds) == 3 and bounds[0] is None
    # The declared range bounds one enterprise's contribution: its rows' total, clamped.
    per_entity = loans.groupby(["district", "ek"])["amount"].sum().clip(0, data.AMOUNT_HI)
    grouped = loans.groupby("district").agg(n=("amount", "size"))
    grouped["total"] = per_entity.groupby("district").sum()
    got = {row[0]: row[1:] for row in body["rows"]}
    assert data.SMALL not in got and set(got) <= set(data.DISTRICTS)
    for district, (n, total) in got.items():
        assert _within(n, grouped.loc[district, "n"], bounds[1])
        assert _within(total, grouped.loc[district, "total"], bounds[2])
    assert body["quota_remaining"] == 99 and body["elapsed_ms"] >= 0


def test_open_table_rows_and_join_on_the_entity_key(world, client):
    buyer = world.party()
    lic = world.license(buyer, ["loans", "firms"])
    frame = data.firms_frame()
    r = query(
        client, lic.id, "SELECT district, capital FROM firms WHERE capital > 500", buyer.headers
    )
    assert r.status_code == 200
    assert sorted(map(tuple, r.get_json()["rows"])) == sorted(
        frame.loc[frame["capital"] > 500, ["district", "capital"]].itertuples(
            index=False, name=None
        )
    )
    # Tables join on the pseudonymized key, which itself is never output; the conditional
    # side makes the answer differentially private.
    r = query(
        client,
        lic.id,
        "SELECT f.district, COUNT(*) AS n FROM loans l JOIN firms f ON l.ek = f.fk "
        "GROUP BY f.district",
        buyer.headers,
    )
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert "suppressed_groups" not in body and Decimal(body["privacy"]["epsilon_spent"]) > 0


def test_tables_lists_only_licensed_columns(world, client, as_role):
    buyer = world.party()
    lic = world.license(buyer, [("loans", ["district", "amount"]), "firms"])
    r = client.get(f"/api/v1/sandbox/{lic.id}/tables", headers=buyer.headers)
    assert r.status_code == 200
    body = r.get_json()
    assert body["total"] == 2 and [t["slug"] for t in body["items"]] == ["loans", "firms"]
    loans = body["items"][0]
    assert loans["grade"] == "conditional" and loans["k_min"] == data.K
    assert [(c["name"], c["kind"]) for c in loans["columns"]] == [
        ("ek", "entity_key"),
        ("district", "dimension"),
        ("amount", "measure"),
    ]
    firms = body["items"][1]
    assert {c["name"]: c["kind"] for c in firms["columns"]}["uscc"] == "identifier"
    # A column the license does not grant is not in the workspace at all.
    r = query(
        client, lic.id, "SELECT industry, COUNT(*) AS n FROM loans GROUP BY industry", buyer.headers
    )
    assert r.status_code == 422 and r.get_json()["errors"]["rule"] == "not_licensed"
    for role in ("operator", "regulator"):
        _, headers = as_role(role)
        assert client.get(f"/api/v1/sandbox/{lic.id}/tables", headers=headers).status_code == 200
    other = world.party()
    assert client.get(f"/api/v1/sandbox/{lic.id}/tables", headers=other.headers).status_code == 404
    assert client.get(f"/api/v1/sandbox/{lic.id}/tables").status_code == 401


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("sql", "rules"),
    [
        ("SELECT id_no, COUNT(*) AS n FROM loans GROUP BY id_no", {"identifier_output"}),
        ("SELECT uscc FROM firms", {"identifier_output"}),
        ("SELECT ek FROM loans", {"identifier_output", "not_aggregated"}),
        ("SELECT district, amount FROM loans", {"not_aggregated"}),
        ("SELECT * FROM read_parquet('/etc/passwd')", {"forbidden_table", "forbidden_function"}),
        ("SELECT COUNT(*) AS n FROM 'loans.parquet'", {"forbidden_table", "not_licensed"}),
        ("SELECT COUNT(*) AS n FROM duckdb_settings()", {"forbidden_table", "forbidden_function"}),
        ("SELECT secret, COUNT(*) AS n FROM loans GROUP BY secret", {"not_licensed"}),
        ("SELECT 1; SELECT 2", {"multiple_statements"}),
        ("DELETE FROM loans", {"not_select", "parse_error"}),
    ],
)
def test_policy_refusals_are_422_with_a_rule_and_cost_nothing(world, client, sql, rules):
    buyer = world.party()
    lic = world.license(buyer, ["loans", "firms"], quota=5)
    r = query(client, lic.id, sql, buyer.headers)
    assert r.status_code == 422
    body = r.get_json()
    assert body["errors"]["rule"] in rules and body["code"] == 422 and body["message"]
    assert "unlicensed" not in r.get_data(as_text=True)  # never a data value
    assert _quota(world.session, lic.id) == 5
    (entry,) = _log(world.session, lic.id)
    assert (entry.status, entry.rule, entry.quota_charged) == (
        "refused",
        body["errors"]["rule"],
        False,
    )
    assert entry.sql_text == sql and entry.canonical_hash is None


@pytest.mark.parametrize(
    "status", ["pending_review", "awaiting_payment", "suspended", "revoked", "expired", "rejected"]
)
def test_a_license_that_is_not_active_is_403(world, client, status):
    buyer = world.party()
    lic = world.license(buyer, ["loans"], status=status, quota=5)
    r = query(client, lic.id, LOANS_BY_DISTRICT, buyer.headers)
    assert r.status_code == 403
    assert r.get_json()["errors"]["rule"] == "license_not_active"
    assert _quota(world.session, lic.id) == 5
    (entry,) = _log(world.session, lic.id)
    assert (entry.status, entry.rule) == ("refused", "license_not_active")
    (event,) = _events(world.session, lic.id)
    assert event.data["decision"] == "refused" and event.data["rule"] == "license_not_active"


def test_a_license_past_its_term_is_expired_on_use(world, client):
    from licenses.models import License

    buyer = world.party()
    lic = world.license(buyer, ["loans"], ends_in=-dt.timedelta(hours=1))
    r = query(client, lic.id, LOANS_BY_DISTRICT, buyer.headers)
    assert r.status_code == 403 and r.get_json()["errors"]["rule"] == "license_not_active"
    world.session.expire_all()
    assert world.session.get(License, lic.id).status == "expired"


def test_revocation_stops_queries_at_once(world, client, as_role):
    buyer = world.party()
    lic = world.license(buyer, ["loans"])
    assert query(client, lic.id, LOANS_BY_DISTRICT, buyer.headers).status_code == 200
    _, regulator = as_role("regulator")
    r = client.post(
        f"/api/v1/licenses/{lic.id}/suspend", json={"reason": "audit finding"}, headers=regulator
    )
    assert r.status_code == 200, r.get_json()
    r = query(client, lic.id, LOANS_BY_DISTRICT, buyer.headers)
    assert r.status_code == 403 and "suspended" in r.get_json()["message"]


def test_another_buyers_license_is_404_and_stays_out_of_its_history(world, client):
    owner, stranger = world.party(), world.party()
    lic = world.license(owner, ["loans"])
    r = query(client, lic.id, LOANS_BY_DISTRICT, stranger.headers)
    assert r.status_code == 404 and r.get_json()["errors"]["rule"] == "not_found"
    assert query(client, 10**9, LOANS_BY_DISTRICT, stranger.headers).status_code == 404
    assert _log(world.session, lic.id) == []  # the probe is audited, not put in the owner's log
    (event,) = _events(world.session, lic.id)
    assert event.actor_org_id == stranger.org_id and event.data["rule"] == "not_found"


def test_only_buyers_run_queries(world, client, as_role):
    buyer = world.party()
    lic = world.license(buyer, ["loans"])
    _, operator = as_role("operator")
    r = query(client, lic.id, LOANS_BY_DISTRICT, operator)
    assert r.status_code == 403 and r.get_json()["errors"]["rule"] == "not_buyer"
    assert (
        client.post(f"/api/v1/sandbox/{lic.id}/queries", json={"sql": "SELECT 1"}).status_code
        == 401
    )


def test_a_blacklisted_buyer_is_told_so(world, client):
    from licenses.models import BlacklistEntry
    from market.audit.models import AuditEvent

    buyer = world.party()
    lic = world.license(buyer, ["loans"], quota=3)
    world.session.add(BlacklistEntry(organization_id=buyer.org_id, reason="fraud"))
    world.session.commit()
    r = query(client, lic.id, LOANS_BY_DISTRICT, buyer.headers)
    assert r.status_code == 403
    body = r.get_json()
    assert body["errors"]["rule"] == "blacklisted" and "blacklist" in body["message"]
    assert _quota(world.session, lic.id) == 3
    refused = world.session.scalar(
        sa.select(AuditEvent)
        .where(AuditEvent.type == "blacklist.refused")
        .order_by(AuditEvent.seq.desc())
    )
    assert refused is not None and refused.data == {"action": "use_license"}


def test_request_validation(world, client):
    buyer = world.party()
    lic = world.license(buyer, ["loans"])
    for bad in ({}, {"sql": ""}, {"sql": "x" * 20_001}):
        r = client.post(f"/api/v1/sandbox/{lic.id}/queries", json=bad, headers=buyer.headers)
        assert r.status_code == 422 and "sql" in r.get_json()["errors"]


# -------------------------------------------------------------------------------- quota


def test_quota_runs_out_with_429_and_refusals_never_use_it(world, client):
    buyer = world.party()
    lic = world.license(buyer, ["loans"], quota=2)
    assert (
        query(client, lic.id, LOANS_BY_DISTRICT, buyer.headers).get_json()["quota_remaining"] == 1
    )
    assert query(client, lic.id, "SELECT id_no FROM loans", buyer.headers).status_code == 422
    assert _quota(world.session, lic.id) == 1
    assert (
        query(client, lic.id, LOANS_BY_DISTRICT, buyer.headers).get_json()["quota_remaining"] == 0
    )
    r = query(client, lic.id, LOANS_BY_DISTRICT, buyer.headers)
    assert r.status_code == 429 and r.get_json()["errors"]["rule"] == "quota_exhausted"
    assert _quota(world.session, lic.id) == 0
    statuses = [(q.status, q.rule, q.quota_charged) for q in _log(world.session, lic.id)]
    assert statuses == [
        ("ok", None, True),
        ("refused", "identifier_output", False),
        ("ok", None, True),
        ("refused", "quota_exhausted", False),
    ]


# --------------------------------------------------------------------- engine failures


class _FailingEngine:
    def __init__(self, exc):
        self.exc = exc

    def run(self, query, tables, *, timeout_s, row_cap=None):
        raise self.exc


def _engine_errors():
    from sandbox.errors import EngineError, QueryTimeout, ResourceLimit

    # Every failure after the charge keeps it (an error must never be a free answer); the
    # query's own failures all answer one rule and message.
    return [
        (QueryTimeout(), 422, "timeout", "timeout", True),
        (ResourceLimit(), 422, "execution_error", "error", True),
        (
            EngineError(kind="engine", detail="ConversionException"),
            422,
            "execution_error",
            "error",
            True,
        ),
        (EngineError(kind="permission"), 422, "execution_error", "error", True),
        (EngineError(kind="crash"), 503, "engine_unavailable", "error", True),
    ]


@pytest.mark.parametrize("case", range(5))
def test_engine_failures_map_to_rules_and_keep_their_charge(
    world, client, monkeypatch, case
):
    from sandbox import app_engine

    exc, status, rule, logged, charged = _engine_errors()[case]
    monkeypatch.setattr(app_engine, "engine", lambda: _FailingEngine(exc))
    buyer = world.party()
    lic = world.license(buyer, ["loans"], quota=5)
    r = query(client, lic.id, LOANS_BY_DISTRICT, buyer.headers)
    assert r.status_code == status and r.get_json()["errors"]["rule"] == rule
    assert "Exception" not in r.get_json()["message"]  # never the engine's own text
    assert _quota(world.session, lic.id) == (4 if charged else 5)
    (entry,) = _log(world.session, lic.id)
    assert (entry.status, entry.rule, entry.quota_charged) == (logged, rule, charged)
    assert entry.canonical_hash is not None  # the policy had accepted it
    (event,) = _events(world.session, lic.id)
    assert event.data["decision"] == "error" and event.data["charged"] is True


# -------------------------------------------------------------------------- log, audit


def test_every_query_is_audited_with_its_decision(world, client):
    from market.audit.services import verify_chain
    from market.keys import public_keys

    buyer = world.party()
    lic = world.license(buyer, ["loans"])
    ok = query(client, lic.id, LOANS_BY_DISTRICT, buyer.headers).get_json()
    query(client, lic.id, "SELECT id_no FROM loans", buyer.headers)
    accepted, refused = _events(world.session, lic.id)
    assert accepted.actor_user_id == buyer.user.id and accepted.subject_type == "license"
    assert accepted.data == {
        "license": lic.id,
        "query_id": ok["id"],
        "sql": LOANS_BY_DISTRICT,
        "sql_hash": accepted.data["sql_hash"],
        "decision": "ok",
        "rule": None,
        "rows": len(ok["rows"]),
        "suppressed_groups": None,  # never recorded on DP data
        "elapsed_ms": accepted.data["elapsed_ms"],
        "epsilon": "0.5",
        "charged": True,
        "cached": False,
        "release_id": accepted.data["release_id"],
    }
    assert accepted.data["release_id"] is not None
    assert len(accepted.data["sql_hash"]) == 64
    assert refused.data["decision"] == "refused" and refused.data["rule"] == "identifier_output"
    assert refused.data["rows"] == 0
    assert verify_chain(world.session, public_keys()).valid


def test_long_sql_is_cut_in_the_log_and_audit(world, client):
    buyer = world.party()
    lic = world.license(buyer, ["loans"])
    sql = LOANS_BY_DISTRICT + " " + "-- padding\n" * 500
    assert query(client, lic.id, sql, buyer.headers).status_code == 200
    (entry,) = _log(world.session, lic.id)
    (event,) = _events(world.session, lic.id)
    assert len(entry.sql_text) == len(event.data["sql"]) == 4000


def test_history_is_newest_first_paginated_and_per_license(world, client, as_role):
    buyer = world.party()
    lic = world.license(buyer, ["loans"])
    answers = [
        query(client, lic.id, sql, buyer.headers).get_json()
        for sql in (LOANS_BY_DISTRICT, "SELECT id_no FROM loans", LOANS_BY_DISTRICT)
    ]
    url = f"/api/v1/sandbox/{lic.id}/queries"
    page = client.get(url + "?per_page=2", headers=buyer.headers).get_json()
    assert page["total"] == 3 and page["per_page"] == 2 and len(page["items"]) == 2
    newest = page["items"][0]
    assert newest["status"] == "ok" and newest["sql"] == LOANS_BY_DISTRICT
    assert (
        page["items"][1]["status"] == "refused" and page["items"][1]["rule"] == "identifier_output"
    )
    assert (
        client.get(url + "?page=2&per_page=2", headers=buyer.headers).get_json()["items"][0][
            "rows_returned"
        ]
        == len(answers[0]["rows"])
    )
    assert answers[2]["cached"] is True and answers[2]["rows"] == answers[0]["rows"]
    for role in ("operator", "regulator"):
        _, headers = as_role(role)
        assert client.get(url, headers=headers).get_json()["total"] == 3
    for headers in (world.party().headers, as_role("department")[1]):
        assert client.get(url, headers=headers).status_code == 404
    # A second license of the same buyer has its own history.
    other = world.license(buyer, ["loans"])
    assert (
        client.get(f"/api/v1/sandbox/{other.id}/queries", headers=buyer.headers).get_json()["total"]
        == 0
    )


def test_openapi_documents_the_sandbox(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    for path in (
        "/api/v1/sandbox/{license_id}/tables",
        "/api/v1/sandbox/{license_id}/queries",
        "/api/v1/sandbox/{license_id}/queries/cost",
    ):
        assert path in spec["paths"]


def test_queries_are_rate_limited_per_user(world, client, app, rate_limits, monkeypatch):
    monkeypatch.setitem(app.config, "MARKET_SANDBOX_RATE_LIMIT", "2 per minute")
    buyer = world.party()
    lic = world.license(buyer, ["loans"])
    codes = [
        query(client, lic.id, "SELECT id_no FROM loans", buyer.headers).status_code
        for _ in range(3)
    ]
    assert codes == [422, 422, 429]
    assert client.get(f"/api/v1/sandbox/{lic.id}/queries", headers=buyer.headers).status_code == 200


@pytest.mark.parametrize(
    ("status", "ends_in", "final"),
    [
        ("revoked", dt.timedelta(days=1), "revoked"),
        ("suspended", dt.timedelta(days=1), "suspended"),
        ("active", -dt.timedelta(seconds=1), "expired"),
    ],
)
def test_the_quota_update_itself_checks_status_and_term(
    world, client, monkeypatch, status, ends_in, final
):
    """A revocation (or the end of the term) between the license check and the charge: the
    atomic UPDATE refuses it, so no query runs on a license that just stopped."""
    from licenses import services as licenses
    from licenses.models import License

    buyer = world.party()
    lic = world.license(buyer, ["loans"], quota=5, status=status, ends_in=ends_in)
    monkeypatch.setattr(
        licenses,
        "active_license_for",
        lambda session, license_id, actor, now=None: session.get(License, license_id),
    )
    r = query(client, lic.id, LOANS_BY_DISTRICT, buyer.headers)
    assert r.status_code == 403 and r.get_json()["errors"]["rule"] == "license_not_active"
    world.session.expire_all()
    lic_now = world.session.get(License, lic.id)
    assert (lic_now.quota_remaining, lic_now.status) == (5, final)
    (entry,) = _log(world.session, lic.id)
    assert entry.canonical_hash is not None and not entry.quota_charged
