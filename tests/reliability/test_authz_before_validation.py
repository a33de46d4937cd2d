"""#14.8: authorization before validation, over the whole authorization matrix.

A caller who may not use an endpoint learns nothing about its fields: with an invalid body
or query, every non-permitted caller (403 or 404 in ``MATRIX``) still gets that 403 or 404,
never the 422 that lists the field rules. Permitted callers do get the 422.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.reliability.conftest import CALLERS, World
from tests.reliability.test_authz_matrix import ROWS, Row, api_routes, resolve_path

#: Every test of the module shares the world's transaction (tests/conftest.py, ``app``).
pytestmark = pytest.mark.module_transaction


@pytest.fixture
def world(shared_world: World) -> World:
    """One world for the module: each test's (and each cell's) changes are rolled back."""
    return shared_world


#: Refusal codes that name why the caller may not call (``sandbox.refusals``), not the input.
AUTHORIZATION_RULES = {"not_found", "not_buyer", "blacklisted", "license_not_active"}

#: A body no schema accepts: an unknown field, no required one, wrong types everywhere.
INVALID_JSON = {"__not_a_field__": {"x": [1]}, "page": "abc"}
INVALID_QUERY = "page=-1&per_page=abc&kind=%E2%9C%97&status=nope&period=13-13"


#: Routes whose view or service uses its arguments before it checks the caller: the one-place
#: fix (market.auth.AuthorizationFirst) cannot reorder that; the owner must check first.
#: Strict xfail: the row turns red when fixed, so that it is removed from here.
VALIDATES_FIRST: dict[tuple[str, str], str] = {}


def _cases():
    for row in ROWS:
        for caller in CALLERS:
            if caller == "anonymous":
                continue  # test_anonymous_gets_401_before_any_validation
            own = row.cells[caller][0]
            if own in (403, 404):
                reason = VALIDATES_FIRST.get((row.method, row.path))
                marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
                yield pytest.param(row, caller, own, id=f"{row.id} as {caller}", marks=marks)


def _invalid_request(row: Row) -> dict[str, Any]:
    if row.method == "GET":
        return {"query_string": INVALID_QUERY}
    return {"json": INVALID_JSON, "query_string": INVALID_QUERY}


@pytest.mark.parametrize(("row", "caller", "expected"), list(_cases()))
def test_a_caller_who_may_not_call_gets_403_or_404_whatever_the_input(
    app, client, world, row: Row, caller: str, expected: int
):
    if (row.method, row.path) not in api_routes(app):
        pytest.skip(f"{row.method} {row.path} is not registered (yet)")
    path = resolve_path(row, world, "A", caller)
    r = client.open(path, method=row.method, headers=world.caller(caller), **_invalid_request(row))
    body = r.get_json(silent=True) or {}
    assert r.status_code == expected, (r.status_code, body.get("message"), body.get("errors"))
    errors = body.get("errors") or {}
    # The only detail a refusal may carry is the stable code of the authorization rule that
    # refused the caller (the sandbox's ``errors.rule``), never a field or a rule of the input.
    assert not errors or (set(errors) == {"rule"} and errors["rule"] in AUTHORIZATION_RULES), body


@pytest.mark.parametrize(
    ("method", "path", "caller"),
    [
        ("PUT", "/api/v1/pricing/parameters", "operator"),
        ("POST", "/api/v1/refunds/{refund_id}/pay", "operator"),
        ("POST", "/api/v1/organizations", "operator"),
        ("POST", "/api/v1/blacklist", "regulator"),
    ],
)
def test_a_permitted_caller_still_gets_the_field_rules(app, client, world, method, path, caller):
    from tests.reliability.test_authz_matrix import ROWS as rows

    row = next(r for r in rows if r.method == method and r.path == path)
    if (row.method, row.path) not in api_routes(app):
        pytest.skip(f"{row.method} {row.path} is not registered (yet)")
    r = client.open(resolve_path(row, world, "A", caller), method=method,
                    headers=world.caller(caller), json=INVALID_JSON)
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["errors"]


def test_a_view_that_ignores_an_invalid_body_still_answers_422(app, client, world):
    """The deferred validation error is raised even if the view never reads its arguments."""
    r = client.get("/api/v1/users", headers=world.caller("operator"),
                   query_string={"page": "abc"})
    assert r.status_code == 422 and "page" in r.get_json()["errors"]
