"""#14.6 (edge): NUL (U+0000) in a query parameter, a path, a form field or any JSON string is
a 422 naming the field, decided before any view (PostgreSQL cannot store NUL in text, and
used to answer 500). Run it with ``MARKET_TEST_DB=postgres`` too."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import PASSWORD, valid_uscc
from tests.reliability.conftest import World
from tests.reliability.test_bad_input import assert_envelope

#: One world for the module (``shared_world``): each test runs in a savepoint of the module's
#: transaction, rolled back after it (tests/conftest.py, ``app``).
pytestmark = pytest.mark.module_transaction


@pytest.fixture
def world(shared_world: World) -> World:
    return shared_world


NUL = "a\x00b"


def _json_cases():
    yield "token email", "POST", "/api/v1/auth/token", "anonymous", lambda w: {
        "email": "nul\x00@example.cn", "password": PASSWORD}, "email"
    yield "token password", "POST", "/api/v1/auth/token", "anonymous", lambda w: {
        "email": "nul@example.cn", "password": "pass\x00word-long"}, "password"
    yield "register name", "POST", "/api/v1/register", "anonymous", lambda w: {
        "organization_name": NUL, "credit_code": valid_uscc(980_001), "kind": "buyer",
        "email": "nulreg@example.cn", "password": PASSWORD}, "organization_name"
    yield "settle reference", "POST", "/api/v1/payments/{A:payment_open}/settle", "operator", \
        lambda w: {"bank_reference": NUL}, "bank_reference"
    yield "review comment", "POST", "/api/v1/datasets/{A:dataset_unlisted}/review", "operator", \
        lambda w: {"decision": "approve", "comment": NUL}, "comment"
    yield "license review comment", "POST", "/api/v1/licenses/{A:license_review}/review", \
        "operator", lambda w: {"decision": "approve", "comment": NUL}, "comment"
    yield "sandbox literal", "POST", "/api/v1/sandbox/{A:license_active}/queries", "buyer", \
        lambda w: {"sql": f"SELECT COUNT(*) FROM {w.of('A', 'listed_slug')} "
                          "WHERE district = 'd\x00'"}, "sql"
    yield "nested quote item", "POST", "/api/v1/quotes", "buyer", lambda w: {
        "items": [{"dataset_id": w.of("A", "dataset_listed"), "columns": ["x\x00"]}],
        "duration_months": 6, "purpose": "research", "query_quota": 10}, "items.0.columns.0"
    yield "a key", "POST", "/api/v1/licenses/verify", "anonymous", lambda w: {
        "policy": {"u\x00id": "x"}, "signature": "AAAA"}, "policy"


@pytest.mark.parametrize(
    ("method", "path", "caller", "body", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in _json_cases()],
)
def test_nul_in_a_json_string_is_422_naming_the_field(app, client, world, method, path, caller,
                                                      body, field):
    path = re.sub(r"\{A:(\w+)\}", lambda m: str(world.of("A", m.group(1))), path)
    r = client.open(path, method=method, json=body(world), headers=world.caller(caller))
    payload = assert_envelope(r, 422)
    assert field in payload["errors"], payload
    assert "NUL" in payload["message"]


@pytest.mark.parametrize(
    ("path", "caller"),
    [
        ("/api/v1/datasets?q=%00", "anonymous"),
        ("/api/v1/datasets?q=abc%00def", "buyer"),
        ("/api/v1/audit/events?type=%00", "regulator"),
        ("/api/v1/organizations?kind=buyer%00", "operator"),
        ("/catalog?q=%00", "anonymous"),
    ],
)
def test_nul_in_a_query_parameter_is_422_naming_it(client, world, path, caller):
    r = client.get(path, headers={**world.caller(caller), "Accept": "application/json"})
    payload = assert_envelope(r, 422)
    name = path.split("?")[1].split("=")[0]
    assert name in payload["errors"], payload


def test_nul_in_a_form_field_is_refused(client):
    from tests.accounts.test_web import csrf_from

    token = csrf_from(client.get("/login").get_data(as_text=True))
    r = client.post("/login", data={"email": "a\x00@b.cn", "password": "x" * 12,
                                    "csrf_token": token},
                    headers={"Accept": "application/json"})
    payload = assert_envelope(r, 422)
    assert "email" in payload["errors"]


def test_nul_needs_a_caller_first(client):
    """The edge check does not reveal a closed route's fields to an anonymous caller."""
    r = client.post("/api/v1/payments/1/settle", json={"bank_reference": NUL})
    assert r.status_code == 401


def test_an_escaped_backslash_is_not_a_nul(client, world):
    """``"\\\\u0000"`` in JSON is a backslash and five characters, not a NUL."""
    body = json.dumps({"email": "x@example.cn", "password": "\\u0000" + "p" * 10})
    assert "\\\\u0000" in body
    r = client.post("/api/v1/auth/token", data=body, content_type="application/json")
    assert r.status_code == 401
