"""The authorization matrix: every API endpoint × every caller × own or other's object.

The table below IS the specification (API.md, "Errors"): 401 without a token, 403 for the
wrong role or another organization's object the caller may know exists, 404 for an object
the caller may not even know exists, 2xx when allowed. Each row is one pytest test; each of
its twelve cells (six callers × own/other) runs in a savepoint of its own, so a revocation in
one cell cannot change the next. The world is built once for the module, and each test runs in
a savepoint of the module's transaction (``pytest.mark.module_transaction``), rolled back after
it: no row sees another row's changes.

How to read a row::

    METHOD  PATH  TARGET  anonymous  department  buyer  operator  regulator  subject

- ``TARGET`` fills the path parameters from ``tests/reliability/conftest.py``'s world:
  ``license_id=license_active`` takes side A's active license for the "own" cell and side
  B's for the "other" cell. ``@self`` is the caller's own organization (A) or one of the same
  kind (B); ``#1`` is the literal 1; ``-`` means no path parameter.
- A cell is one status for both cells, or ``own/other`` when they differ (``200/404``: the
  caller gets its own object and may not learn that somebody else's exists).
- Bodies and query strings are built by ``REQUESTS`` below, from the same side's objects.

A route the app does not register (yet) is skipped with a reason; a route the app registers
that the table does not name fails ``test_every_api_route_is_in_the_matrix``.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import PASSWORD, valid_uscc
from tests.reliability.conftest import CALLERS, World

#: Every test of the module shares the world's transaction (tests/conftest.py, ``app``).
pytestmark = pytest.mark.module_transaction


@pytest.fixture
def world(shared_world: World) -> World:
    """One world for the module: each test's (and each cell's) changes are rolled back."""
    return shared_world


MATRIX = """
# method path                                                   target                          anon dept    buyer   oper    reg     subj
GET    /api/v1/health                                            -                               200  200     200     200     200     200
GET    /api/v1/keys                                              -                               200  200     200     200     200     200
GET    /api/v1/openapi.json                                      -                               200  200     200     200     200     200
GET    /api/v1/docs                                              -                               200  200     200     200     200     200
POST   /api/v1/auth/token                                        -                               201  201     201     201     201     201
DELETE /api/v1/auth/token                                        -                               401  204     204     204     204     204
POST   /api/v1/auth/logout-everywhere                            -                               401  200     200     200     200     200
GET    /api/v1/me                                                -                               401  200     200     200     200     200
PATCH  /api/v1/me                                                -                               401  200     200     200     200     200
POST   /api/v1/register                                          -                               201  201     201     201     201     201
GET    /api/v1/organizations                                     -                               401  403     403     200     200     403
POST   /api/v1/organizations                                     -                               401  403     403     201     403     403
GET    /api/v1/organizations/{org_id}                            org_id=@self                    401  200/404 200/404 200     200     200/404
POST   /api/v1/organizations/{org_id}/admission                  org_id=pending_org              401  403     403     200     403     403
GET    /api/v1/users                                             -                               401  403     403     200     200     403
POST   /api/v1/users                                             -                               401  403     403     201     403     403
GET    /api/v1/audit/events                                      -                               401  403     403     200     200     403
GET    /api/v1/audit/verify                                      -                               401  403     403     200     200     403
GET    /api/v1/audit/export.csv                                  -                               401  403     403     200     200     403
GET    /api/v1/audit/head                                        -                               401  403     403     200     200     403
GET    /api/v1/audit/events/{seq}                                seq=#1                          401  403     403     200     200     403
GET    /api/v1/licenses                                          -                               401  403     200     200     200     403
POST   /api/v1/licenses                                          -                               401  403     201/404 403     403     403
POST   /api/v1/licenses/verify                                   -                               200  200     200     200     200     200
GET    /api/v1/licenses/{license_id}                             license_id=license_active       401     404     200/404  200     200     404
GET    /api/v1/licenses/{license_id}/document                    license_id=license_active       401     404     200/404  200     200     404
GET    /api/v1/licenses/{license_id}/payments                    license_id=license_active       401     404     200/404  200     200     404
GET    /api/v1/licenses/{license_id}/invoice.pdf                 license_id=license_active       401     404     200/404  200     200     404
POST   /api/v1/licenses/{license_id}/payments                    license_id=license_awaiting     401     404     200/404  403     403     404
POST   /api/v1/licenses/{license_id}/review                      license_id=license_review       401  403     403     200     403     403
POST   /api/v1/licenses/{license_id}/regulator-review            license_id=#999999              401  403     403     403     404     403
POST   /api/v1/licenses/{license_id}/revoke                      license_id=license_active       401  403     403     200     200     403
POST   /api/v1/licenses/{license_id}/suspend                     license_id=license_active       401  403     403     403     200     403
POST   /api/v1/licenses/{license_id}/reinstate                   license_id=license_suspended    401  403     403     403     200     403
POST   /api/v1/licenses/{license_id}/upgrade-quotes              license_id=license_active       401     404     201/404  403     403     404
GET    /api/v1/payments                                          -                               401  403     403     200     200     403
POST   /api/v1/payments/{payment_id}/settle                      payment_id=payment_open         401  403     403     200     403     403
POST   /api/v1/payments/stripe/webhook                           -                               400  400     400     400     400     400
GET    /api/v1/refunds                                           -                               401  403     403     200     200     403
POST   /api/v1/refunds/{refund_id}/pay                           refund_id=credit_note           401  403     403     200     403     403
POST   /api/v1/refunds/{refund_id}/retry                         refund_id=failed_refund         401  403     403     200     403     403
GET    /api/v1/public-welfare-bodies                             -                               401  403     403     200     200     403
POST   /api/v1/public-welfare-bodies                             -                               401  403     403     201     403     403
DELETE /api/v1/public-welfare-bodies/{organization_id}           organization_id=welfare_body    401  403     403     204     403     403
GET    /api/v1/revenue/statements                                -                               401  200/403 403     200     200     403
GET    /api/v1/revenue/statements.csv                            -                               401  200/403 403     200     200     403
POST   /api/v1/revenue/payouts                                   -                               401  403     403     201     403     403
GET    /api/v1/ledger                                            -                               401  403     403     200     200     403
GET    /api/v1/blacklist                                         -                               401  403     403     200     200     403
POST   /api/v1/blacklist                                         -                               401  403     403     403     201     403
DELETE /api/v1/blacklist/{organization_id}                       organization_id=blacklisted_org 401  403     403     403     204     403
GET    /api/v1/quotes                                            -                               401  403     200     403     403     403
POST   /api/v1/quotes                                            -                               401  403     201     403     403     403
POST   /api/v1/quotes/estimate                                   -                               401  403     200     403     403     403
GET    /api/v1/quotes/{quote_id}                                 quote_id=quote                  401     404     200/404  404     404     404
GET    /api/v1/pricing/parameters                                -                               200  200     200     200     200     200
PUT    /api/v1/pricing/parameters                                -                               401  403     403     200     403     403
GET    /api/v1/pricing/parameters/versions                       -                               200  200     200     200     200     200
GET    /api/v1/pricing/parameters/versions/{version}             version=#1                      200  200     200     200     200     200
GET    /api/v1/pricing/revenue-caps                              -                               401  403     403     200     200     403
GET    /api/v1/pricing/proposals                                 -                               401  403     403     200     200     403
POST   /api/v1/pricing/proposals                                 -                               401  403     403     201     403     403
GET    /api/v1/pricing/proposals/{proposal_id}                   proposal_id=pricing_proposal    401  403     403     200     200     403
POST   /api/v1/pricing/proposals/{proposal_id}/approve           proposal_id=pricing_proposal    401  403     403     403     200     403
POST   /api/v1/pricing/proposals/{proposal_id}/reject            proposal_id=pricing_proposal    401  403     403     403     200     403
GET    /api/v1/consents                                          -                               401  403     200     200     200     200
POST   /api/v1/consents                                          -                               401  403     201/404 403     403     403
GET    /api/v1/consents/{consent_id}                             consent_id=consent_requested    401     404     200/404  200     200     200/404
POST   /api/v1/consents/{consent_id}/decision                    consent_id=consent_requested    401     404     403/404  403     403     200/404
POST   /api/v1/consents/{consent_id}/record                      consent_id=consent_requested    401  403     403     200     403     403
POST   /api/v1/consents/{consent_id}/revoke                      consent_id=consent_granted      401     404     403/404  403     403     200/404
GET    /api/v1/lookups                                           -                               401  403     200     200     200     403
POST   /api/v1/lookups                                           -                               401  403     200/404 403     403     403
GET    /api/v1/subjects/me/access-log                            -                               401  403     403     403     403     200
POST   /api/v1/datasets                                          -                               401  202     403     403     403     403
POST   /api/v1/datasets/inspect                                  -                               401  200     403     403     403     403
GET    /api/v1/datasets                                          -                               200  200     200     200     200     200
GET    /api/v1/datasets/{dataset_id}                             dataset_id=dataset_listed       200  200     200     200     200     200
GET    /api/v1/datasets/{dataset_id}                             dataset_id=dataset_unlisted     404  200/404 404     200     200     404
GET    /api/v1/datasets/{dataset_id}/preview                     dataset_id=dataset_listed       200  200     200     200     200     200
GET    /api/v1/datasets/{dataset_id}/preview                     dataset_id=dataset_unlisted     404  200/404 404     200     200     404
GET    /api/v1/datasets/{dataset_id}/versions                    dataset_id=dataset_listed       401  200/403 403     200     200     403
GET    /api/v1/datasets/{dataset_id}/versions                    dataset_id=dataset_unlisted     401  200/404 404     200     200     404
POST   /api/v1/datasets/{dataset_id}/versions                    dataset_id=dataset_listed       401  202/403 403     403     403     403
GET    /api/v1/datasets/{dataset_id}/versions/{number}           dataset_id=dataset_listed,number=#1    401 200/403 403 200 200 403
GET    /api/v1/datasets/{dataset_id}/versions/{number}/status    dataset_id=dataset_listed,number=#1    401 200/403 403 200 200 403
PUT    /api/v1/datasets/{dataset_id}/versions/{number}/treatments dataset_id=dataset_unlisted,number=#1 401 200/404 404 403 403 404
POST   /api/v1/datasets/{dataset_id}/review                      dataset_id=dataset_unlisted     401  403/404 404     200     403     404
GET    /api/v1/catalog.jsonld                                    -                               200  200     200     200     200     200
GET    /api/v1/catalog/themes.jsonld                             -                               200  200     200     200     200     200
GET    /api/v1/lists                                             -                               200  200     200     200     200     200
POST   /api/v1/lists/{list_name}                                 list_name=#red                  401  403     403     403     201     403
DELETE /api/v1/lists/{list_name}/{organization_id}               list_name=#black,organization_id=blacklisted_org 401 403 403 403 204 403
DELETE /api/v1/lists/{list_name}/subjects/{entry_id}             list_name=#black,entry_id=#999999 401 403 403 403 404 403
GET    /api/v1/licenses/status                                   -                               200  200     200     200     200     200
GET    /api/v1/datasets/{dataset_id}/certificate                 dataset_id=dataset_unlisted     404  404     404     404     404     404
GET    /api/v1/sandbox/{license_id}/tables                       license_id=license_active       401     404     200/404  200     200     404
GET    /api/v1/sandbox/{license_id}/queries                      license_id=license_active       401     404     200/404  200     200     404
POST   /api/v1/sandbox/{license_id}/queries                      license_id=license_active       401  403     200/404 403     403     403
POST   /api/v1/sandbox/{license_id}/queries/cost                 license_id=license_active       401  403     200/404 403     403     403
GET    /api/v1/datasets/{dataset_id}/privacy                     dataset_id=dataset_conditional  200  200     200     200     200     200
PUT    /api/v1/datasets/{dataset_id}/privacy                     dataset_id=dataset_conditional  401  200/403 403     200     403     403
PUT    /api/v1/datasets/{dataset_id}/metadata                    dataset_id=dataset_listed       401  200/403 403     403     403     403
PUT    /api/v1/datasets/{dataset_id}/metadata                    dataset_id=dataset_unlisted     401  200/404 404     403     403     404
GET    /api/v1/datasets/{dataset_id}/changes                     dataset_id=dataset_listed       401  200/403 403     200     200     403
POST   /api/v1/datasets/{dataset_id}/changes/review              dataset_id=dataset_listed       401  403     403     200     403     403
POST   /api/v1/datasets/{dataset_id}/withdraw                    dataset_id=dataset_listed       401  200/403 403     403     403     403
POST   /api/v1/datasets/{dataset_id}/security-level              dataset_id=dataset_conditional  401  201/403 403     403     403     403
GET    /api/v1/security-level-changes                            -                               401  200     403     200     200     403
POST   /api/v1/security-level-changes/{change_id}/decision       change_id=#999999               401  403     403     404     404     403
GET    /api/v1/privacy/spending                                  -                               401  200     403     200     200     403
GET    /api/v1/agreements                                        -                               401  200     403     200     200     403
POST   /api/v1/agreements                                        -                               401  201     403     403     403     403
GET    /api/v1/agreements/keys                                   -                               401  200     403     200     200     403
POST   /api/v1/agreements/keys/{key_id}/revoke                   key_id=#nosuchkey               401  404     403     404     403     403
GET    /api/v1/agreements/{agreement_id}/verification            agreement_id=agreement_proposed 401  200/404 404     200     200     404
POST   /api/v1/agreements/verify                                 -                               200  200     200     200     200     200
POST   /api/v1/agreements/keys                                   -                               401  201     403     403     403     403
GET    /api/v1/agreements/{agreement_id}                         agreement_id=agreement_proposed 401  200/404 404     200     200     404
GET    /api/v1/agreements/{agreement_id}/document                agreement_id=agreement_proposed 401  200/404 404     200     200     404
GET    /api/v1/agreements/{agreement_id}/document.pdf            agreement_id=agreement_proposed 401  200/404 404     200     200     404
POST   /api/v1/agreements/{agreement_id}/sign                    agreement_id=agreement_draft    401  200/404 404     403     403     404
POST   /api/v1/agreements/{agreement_id}/countersign             agreement_id=agreement_proposed 401  403     403     200     403     403
POST   /api/v1/agreements/{agreement_id}/decline                 agreement_id=agreement_proposed 401  403     403     200     403     403
GET    /api/v1/reports/{period}                                  period=#2020-01                 401  403     403     200     200     403
GET    /api/v1/scenarios                                         -                               200  200     200     200     200     200
POST   /api/v1/scenarios                                         -                               401  403     403     201     403     403
GET    /api/v1/scenarios/{scenario_id}                           scenario_id=#999999             404  404     404     404     404     404
PUT    /api/v1/scenarios/{scenario_id}                           scenario_id=#999999             401  403     403     404     403     403
POST   /api/v1/scenarios/{scenario_id}/submit                    scenario_id=#999999             401  403     403     404     403     403
POST   /api/v1/scenarios/{scenario_id}/decision                  scenario_id=#999999             401  403     403     403     404     403
POST   /api/v1/scenarios/{scenario_id}/withdraw                  scenario_id=#999999             401  403     403     404     404     403
GET    /api/v1/scenarios/revenue                                 -                               401  200     403     200     200     403
GET    /api/v1/products                                          -                               200  200     200     200     200     200
POST   /api/v1/products                                          -                               401  403     403     201     403     403
GET    /api/v1/products/{product_id}                             product_id=#999999              404  404     404     404     404     404
POST   /api/v1/products/{product_id}/status                      product_id=#999999              401  403     403     404     403     403
POST   /api/v1/products/{product_id}/apply                       product_id=#999999              401  403     404     403     403     403
GET    /api/v1/notifications                                     -                               401  200     200     200     200     200
POST   /api/v1/notifications/{notification_id}/read              notification_id=#999999         401  404     404     404     404     404
POST   /api/v1/notifications/read-all                            -                               401  200     200     200     200     200
"""

#: Rows whose observed answer differs from the documented one: ``row id -> reason``. They
#: run as xfail(strict=False). Empty: keep it that way.
KNOWN_DEVIATIONS: dict[str, str] = {}


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    target: str
    cells: dict[str, tuple[int, int]]  # caller -> (own, other)

    @property
    def id(self) -> str:
        suffix = "" if self.target == "-" else f" [{self.target}]"
        return f"{self.method} {self.path}{suffix}"


def _parse(table: str) -> list[Row]:
    rows = []
    for line in table.strip().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        method, path, target, *cells = line.split()
        assert len(cells) == len(CALLERS), line
        parsed = {}
        for caller, cell in zip(CALLERS, cells, strict=True):
            own, _, other = cell.partition("/")
            parsed[caller] = (int(own), int(other or own))
        rows.append(Row(method, path, target, parsed))
    return rows


ROWS = _parse(MATRIX)


# ------------------------------------------------------------------------ request bodies

Request = dict[str, Any]


def _csv_upload() -> bytes:
    lines = ["fk,district,capital"] + [f"k{i:04d},d{i % 4},{i * 10}" for i in range(40)]
    return ("\n".join(lines) + "\n").encode()


def _upload_metadata() -> str:
    return json.dumps(
        {
            "title": "Reliability upload",
            "description": "authorization matrix",
            "category": "enterprise_registry",
            "open_grade": "open",
            "confidential": False,
            "entity_key": "fk",
            "update_frequency": "monthly",
            "costs": {"collection": 1000, "processing": 1000, "storage_monthly": 10},
        }
    )


def _register(w: World, side: str, role: str) -> Request:
    n = _unique()
    return {
        "json": {
            "organization_name": f"Registered {n}",
            "credit_code": valid_uscc(910_000 + n),
            "kind": "buyer",
            "email": f"reg{n}@matrix.example.cn",
            "password": PASSWORD,
        }
    }


_counter = iter(range(1, 10**9))


def _unique() -> int:
    return next(_counter)


def _parameters_body(w: World, side: str, role: str) -> Request:
    return {"json": {"parameters": {"reasonable_return": "0.07"}, "note": "matrix"}}


def _in_days(days: int) -> str:
    import datetime as dt

    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat()


def _scenario_body(w: World, side: str) -> dict:
    return {"code": f"matrix-scenario-{_unique()}", "title": "矩阵场景", "description": "m",
            "dataset_ids": [w.of(side, "dataset_listed")], "purposes": ["research"]}


def _period() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).strftime("%Y-%m")



def _pending_change(world, side) -> dict:
    """A change request awaiting the operator on the side's listed dataset (in the savepoint)."""
    from market.datasets.models import DatasetChangeRequest
    from market.extensions import db

    db.session.add(DatasetChangeRequest(
        dataset_id=world.of(side, "dataset_listed"), status="pending",
        changes={"costs": {"collection": 1, "processing": 1, "storage_monthly": 1}},
        before={"costs": {"collection": 0, "processing": 0, "storage_monthly": 0}},
    ))
    db.session.flush()
    return {}

REQUESTS: dict[tuple[str, str], Callable[[World, str, str], Request]] = {
    ("POST", "/api/v1/auth/token"): lambda w, s, r: {
        "json": {"email": w.of("A", "buyer_email"), "password": PASSWORD}
    },
    ("POST", "/api/v1/register"): _register,
    ("PATCH", "/api/v1/me"): lambda w, s, r: {"json": {"language": "en"}},
    ("POST", "/api/v1/organizations"): lambda w, s, r: {
        "json": {"name": f"Matrix org {_unique()}", "kind": "buyer",
                 "credit_code": valid_uscc(920_000 + _unique())}
    },
    ("POST", "/api/v1/organizations/{org_id}/admission"): lambda w, s, r: {
        "json": {"decision": "admit", "reason": "matrix"}
    },
    ("POST", "/api/v1/users"): lambda w, s, r: {
        "json": {"email": f"new{_unique()}@matrix.example.cn", "password": PASSWORD,
                 "organization_id": w.of(s, "buyer")}
    },
    ("POST", "/api/v1/licenses"): lambda w, s, r: {
        "json": {"quote_id": w.of(s, "quote"), "purpose_statement": "matrix"}
    },
    ("POST", "/api/v1/licenses/verify"): lambda w, s, r: {
        "json": {"policy": {"uid": "x"}, "signature": "AAAA"}
    },
    ("POST", "/api/v1/licenses/{license_id}/payments"): lambda w, s, r: {
        "json": {"provider": "invoice"}
    },
    ("POST", "/api/v1/licenses/{license_id}/review"): lambda w, s, r: {
        "json": {"decision": "approve", "comment": "matrix"}
    },
    ("POST", "/api/v1/licenses/{license_id}/revoke"): lambda w, s, r: {
        "json": {"reason": "matrix"}
    },
    ("POST", "/api/v1/licenses/{license_id}/suspend"): lambda w, s, r: {
        "json": {"reason": "matrix"}
    },
    ("POST", "/api/v1/licenses/{license_id}/reinstate"): lambda w, s, r: {
        "json": {"reason": "matrix"}
    },
    ("POST", "/api/v1/licenses/{license_id}/upgrade-quotes"): lambda w, s, r: {
        "json": {"duration_months": 12}
    },
    ("POST", "/api/v1/payments/{payment_id}/settle"): lambda w, s, r: {
        "json": {"bank_reference": f"MATRIX-{_unique()}"}
    },
    ("POST", "/api/v1/public-welfare-bodies"): lambda w, s, r: {
        "json": {"organization_id": w.of(s, "welfare_candidate"), "reason": "matrix"}
    },
    ("DELETE", "/api/v1/public-welfare-bodies/{organization_id}"): lambda w, s, r: {
        "json": {"reason": "matrix"}
    },
    ("POST", "/api/v1/refunds/{refund_id}/pay"): lambda w, s, r: {
        "json": {"reference": f"CN-PAID-{_unique()}"}
    },
    ("POST", "/api/v1/payments/stripe/webhook"): lambda w, s, r: {
        "data": b'{"id": "evt_matrix", "type": "payment_intent.succeeded"}',
        "content_type": "application/json",
    },
    ("GET", "/api/v1/revenue/statements"): lambda w, s, r: {
        "query_string": {"period": _period(), "department_id": w.of(s, "department")}
    },
    ("GET", "/api/v1/revenue/statements.csv"): lambda w, s, r: {
        "query_string": {"period": _period(), "department_id": w.of(s, "department")}
    },
    ("POST", "/api/v1/revenue/payouts"): lambda w, s, r: {
        "json": {"department_id": w.of(s, "department"), "amount": 100,
                 "reference": f"TRF-{_unique()}"}
    },
    ("POST", "/api/v1/blacklist"): lambda w, s, r: {
        "json": {"organization_id": w.of(s, "buyer"), "reason": "matrix"}
    },
    ("DELETE", "/api/v1/blacklist/{organization_id}"): lambda w, s, r: {
        "json": {"reason": "matrix"}
    },
    ("POST", "/api/v1/lists/{list_name}"): lambda w, s, r: {
        "json": {"subject": f"matrix project {_unique()}", "reason": "matrix"}
    },
    ("DELETE", "/api/v1/lists/{list_name}/{organization_id}"): lambda w, s, r: {
        "json": {"reason": "matrix"}
    },
    ("DELETE", "/api/v1/lists/{list_name}/subjects/{entry_id}"): lambda w, s, r: {
        "json": {"reason": "matrix"}
    },
    ("POST", "/api/v1/licenses/{license_id}/regulator-review"): lambda w, s, r: {
        "json": {"decision": "approve"}
    },
    ("POST", "/api/v1/quotes"): lambda w, s, r: {
        "json": {"items": [{"dataset_id": w.of(s, "dataset_listed"), "columns": None}],
                 "duration_months": 6, "purpose": "research", "query_quota": 10}
    },
    ("POST", "/api/v1/scenarios"): lambda w, s, r: {"json": _scenario_body(w, s)},
    ("PUT", "/api/v1/scenarios/{scenario_id}"): lambda w, s, r: {
        "json": {k: v for k, v in _scenario_body(w, s).items() if k != "code"}
    },
    ("POST", "/api/v1/scenarios/{scenario_id}/withdraw"): lambda w, s, r: {
        "json": {"reason": "matrix"}
    },
    ("POST", "/api/v1/scenarios/{scenario_id}/decision"): lambda w, s, r: {
        "json": {"decision": "approve"}
    },
    ("GET", "/api/v1/scenarios/revenue"): lambda w, s, r: {"query_string": {"period": _period()}},
    ("POST", "/api/v1/products"): lambda w, s, r: {
        "json": {"code": f"matrix-product-{_unique()}", "title": "矩阵产品", "description": "m",
                 "access": "both", "purpose": "research", "duration_months": 6,
                 "query_quota": 10,
                 "items": [{"dataset_id": w.of(s, "dataset_listed"), "columns": None}]}
    },
    ("POST", "/api/v1/products/{product_id}/status"): lambda w, s, r: {
        "json": {"action": "publish"}
    },
    ("POST", "/api/v1/products/{product_id}/apply"): lambda w, s, r: {
        "json": {"scenario_id": 999999, "purpose_statement": "matrix"}
    },
    ("POST", "/api/v1/quotes/estimate"): lambda w, s, r: {
        "json": {"items": [{"dataset_id": w.of(s, "dataset_listed"), "columns": None}],
                 "duration_months": 6, "purpose": "research", "query_quota": 10}
    },
    ("PUT", "/api/v1/pricing/parameters"): _parameters_body,
    ("POST", "/api/v1/pricing/proposals"): lambda w, s, r: {
        "json": {"changes": {"default_ceiling_fen": 6_543_210 + _unique()}, "note": "matrix"}
    },
    ("POST", "/api/v1/pricing/proposals/{proposal_id}/approve"): lambda w, s, r: {
        "json": {"note": "matrix"}
    },
    ("POST", "/api/v1/pricing/proposals/{proposal_id}/reject"): lambda w, s, r: {
        "json": {"note": "matrix"}
    },
    ("POST", "/api/v1/consents"): lambda w, s, r: {
        "json": {"license_id": w.of(s, "license_active"),
                 "subject_credit_code": valid_uscc(930_000 + _unique()),
                 "purpose": "matrix loan check", "valid_until": _in_days(30)}
    },
    ("POST", "/api/v1/consents/{consent_id}/decision"): lambda w, s, r: {
        "json": {"decision": "grant"}
    },
    ("POST", "/api/v1/consents/{consent_id}/record"): lambda w, s, r: {
        "json": {"authorization_reference": f"LETTER-{_unique()}"}
    },
    ("POST", "/api/v1/lookups"): lambda w, s, r: {
        "json": {"license_id": w.of(s, "license_active"),
                 "subject_credit_code": w.of(s, "subject_code")}
    },
    ("POST", "/api/v1/datasets"): lambda w, s, r: {
        "data": {"metadata": _upload_metadata(),
                 "file": (io.BytesIO(_csv_upload()), "matrix.csv")},
        "content_type": "multipart/form-data",
    },
    ("POST", "/api/v1/datasets/inspect"): lambda w, s, r: {
        "data": {"file": (io.BytesIO(_csv_upload()), "matrix.csv")},
        "content_type": "multipart/form-data",
    },
    ("POST", "/api/v1/datasets/{dataset_id}/versions"): lambda w, s, r: {
        "data": {"file": (io.BytesIO(_csv_upload()), "matrix-v2.csv")},
        "content_type": "multipart/form-data",
    },
    ("PUT", "/api/v1/datasets/{dataset_id}/versions/{number}/treatments"): lambda w, s, r: {
        "json": {"district": "suppressed"}
    },
    ("POST", "/api/v1/datasets/{dataset_id}/review"): lambda w, s, r: {
        "json": {"decision": "approve", "comment": "matrix"}
    },
    ("POST", "/api/v1/sandbox/{license_id}/queries"): lambda w, s, r: {
        "json": {"sql": f"SELECT district, COUNT(*) AS n FROM {w.of(s, 'listed_slug')} "
                        "GROUP BY district"}
    },
    ("PUT", "/api/v1/datasets/{dataset_id}/privacy"): lambda w, s, r: {
        "json": {"epsilon_budget": "1"}
    },
    ("POST", "/api/v1/agreements"): lambda w, s, r: {"json": _agreement_terms()},
    ("POST", "/api/v1/agreements/keys"): lambda w, s, r: {"json": {"public_key": _new_key()}},
    ("POST", "/api/v1/agreements/keys/{key_id}/revoke"): lambda w, s, r: {
        "json": {"reason": "matrix", "department_id": w.of(s, "department")}
    },
    ("POST", "/api/v1/agreements/verify"): lambda w, s, r: {
        "json": {"document": {"agreement_id": 1}, "department_signature": None}
    },
    ("POST", "/api/v1/agreements/{agreement_id}/sign"): lambda w, s, r: {
        "json": w.of(s, "draft_signature")
    },
    ("POST", "/api/v1/agreements/{agreement_id}/decline"): lambda w, s, r: {
        "json": {"reason": "matrix"}
    },
    ("PUT", "/api/v1/datasets/{dataset_id}/metadata"): lambda w, s, r: {
        "json": {"title": f"matrix title {_unique()}"}
    },
    ("POST", "/api/v1/datasets/{dataset_id}/changes/review"): lambda w, s, r: {
        "json": {"decision": "approve"}, **_pending_change(w, s)
    },
    ("POST", "/api/v1/datasets/{dataset_id}/security-level"): lambda w, s, r: {
        "json": {"to_level": "important", "reason": "matrix"}
    },
    ("POST", "/api/v1/security-level-changes/{change_id}/decision"): lambda w, s, r: {
        "json": {"decision": "approve"}
    },
    ("POST", "/api/v1/datasets/{dataset_id}/withdraw"): lambda w, s, r: {
        "json": {"reason": "matrix"}
    },
    ("POST", "/api/v1/sandbox/{license_id}/queries/cost"): lambda w, s, r: {
        "json": {"sql": f"SELECT district, COUNT(*) AS n FROM {w.of(s, 'listed_slug')} "
                        "GROUP BY district"}
    },
}


def _agreement_terms() -> dict[str, Any]:
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    return {"categories": ["matrix"], "revenue_share_bps": 9000,
            "starts_at": (now - dt.timedelta(days=1)).isoformat(),
            "ends_at": (now + dt.timedelta(days=30)).isoformat()}


def _new_key() -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from market.agreements.document import public_key_b64

    return public_key_b64(Ed25519PrivateKey.generate().public_key())


def _own_org(w: World, side: str, caller: str) -> int:
    if side == "A":
        if caller in ("operator", "regulator"):
            return w.shared[f"{caller}_org"]
        return w.of("A", "buyer" if caller == "anonymous" else caller)
    kind = caller if caller in ("department", "buyer", "subject") else "buyer"
    return w.of("B", kind)


def resolve_path(row: Row, w: World, side: str, caller: str) -> str:
    values: dict[str, Any] = {}
    if row.target != "-":
        for pair in row.target.split(","):
            name, _, source = pair.partition("=")
            if source == "@self":
                values[name] = _own_org(w, side, caller)
            elif source.startswith("#"):
                # ``#1`` is the literal 1, ``#red`` the literal string "red".
                values[name] = int(source[1:]) if source[1:].isdigit() else source[1:]
            else:
                values[name] = w.of(side, source)
    return row.path.format(**values)


def flask_route(rule: str) -> str:
    """``/licenses/<int:license_id>`` → ``/licenses/{license_id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def api_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((method, flask_route(rule.rule)))
    return routes


# ----------------------------------------------------------------------------------- tests


def test_every_api_route_is_in_the_matrix(app):
    """A new endpoint cannot be added without deciding who may call it."""
    listed = {(row.method, row.path) for row in ROWS}
    missing = sorted(api_routes(app) - listed)
    assert not missing, "add these routes to MATRIX:\n" + "\n".join(f"{m} {p}" for m, p in missing)


def test_the_matrix_is_well_formed():
    ids = [row.id for row in ROWS]
    assert len(ids) == len(set(ids)), "duplicate rows"
    for row in ROWS:
        for own, other in row.cells.values():
            assert {own, other} <= {200, 201, 202, 204, 400, 401, 403, 404}, row.id
        # Anonymous callers never see "other" objects differently: no organization.
        assert row.cells["anonymous"][0] == row.cells["anonymous"][1], row.id


def _params():
    for row in ROWS:
        marks = []
        if row.id in KNOWN_DEVIATIONS:
            marks.append(pytest.mark.xfail(reason=KNOWN_DEVIATIONS[row.id], strict=False))
        yield pytest.param(row, id=row.id, marks=marks)


@pytest.mark.parametrize("row", list(_params()))
def test_authorization(app, client, world, row: Row, monkeypatch):
    from market.extensions import db

    # Stripe configured, so that the webhook row tests the signature, not the set-up.
    monkeypatch.setitem(app.config, "STRIPE_API_KEY", "sk_test_matrix")
    monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRET", "whsec_matrix")

    if (row.method, row.path) not in api_routes(app):
        pytest.skip(f"{row.method} {row.path} is not registered (yet)")
    build = REQUESTS.get((row.method, row.path), lambda w, s, r: {})
    connection = db.session.get_bind()
    observed: dict[str, list[int]] = {}
    bodies: dict[tuple[str, str], Any] = {}
    # A row about no object whose cells never differ needs no "other" run: same request.
    sides = ("A", "B") if row.target != "-" or any(a != b for a, b in row.cells.values()) else ("A",)
    for caller in CALLERS:
        observed[caller] = []
        for side in sides:
            path = resolve_path(row, world, side, caller)
            savepoint = connection.begin_nested()
            try:
                response = client.open(
                    path, method=row.method, headers=world.caller(caller),
                    **build(world, side, caller),
                )
                response.get_data()  # drain streamed bodies (CSV) inside the savepoint
                response.close()
                observed[caller].append(response.status_code)
                if response.status_code >= 400 and response.is_json:
                    bodies[(caller, side)] = response.get_json()
            finally:
                db.session.remove()
                savepoint.rollback()
    if len(sides) == 1:
        observed = {caller: codes * 2 for caller, codes in observed.items()}
    wrong = {
        caller: (tuple(observed[caller]), row.cells[caller])
        for caller in CALLERS
        if tuple(observed[caller]) != row.cells[caller]
    }
    if wrong:
        lines = [f"{row.id}: caller  observed(own, other)  expected(own, other)"]
        for caller, (got, want) in wrong.items():
            lines.append(f"  {caller:<10} {got}  {want}")
            for side, _status in zip(("A", "B"), got, strict=True):
                body = bodies.get((caller, side))
                if body:
                    lines.append(f"      {side}: {body.get('message')!s:.160} {body.get('errors') or ''}")
        pytest.fail("\n".join(lines))


_CLOSED_TO_ANONYMOUS = [
    pytest.param(method, path, id=f"{method} {path}")
    for method, path in sorted(
        {(row.method, row.path) for row in ROWS if row.cells["anonymous"][0] == 401}
    )
]


@pytest.mark.parametrize(("method", "path"), _CLOSED_TO_ANONYMOUS)
def test_anonymous_gets_401_before_any_validation(client, method, path):
    """Without a caller, a closed route answers 401 whatever the body or query: its
    validation rules (422) are not revealed to somebody who may not call it."""
    url = re.sub(r"\{[^}]+\}", "1", path) + "?page=-1&per_page=abc&unknown=1"
    response = client.open(
        url, method=method, data=b'{"not": "a valid body"', content_type="application/json"
    )
    assert response.status_code == 401, response.get_data(as_text=True)[:200]
    body = response.get_json()
    assert body["code"] == 401 and body["status"] == "Unauthorized" and body["message"]
