"""Hostile and broken input: every answer is a 4xx in the one error envelope, never a 500.

Covers the body size caps (``MAX_CONTENT_LENGTH`` and ``MARKET_MAX_JSON_BYTES``), broken JSON
(invalid UTF-8, not an object, nested past the parser's depth, malformed), wrong content
types, path tricks, numbers no column can hold, over-long strings, CSV injection in every CSV
export, and broken dataset uploads (POST /api/v1/datasets).
"""

from __future__ import annotations

import csv
import io
import json
import re
from http import HTTPStatus
from pathlib import Path

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from tests.conftest import PASSWORD, valid_uscc
from tests.reliability.conftest import World, stripe_signature

#: One world for the module (``shared_world``): each test runs in a savepoint of the module's
#: transaction, rolled back after it (tests/conftest.py, ``app``).
pytestmark = pytest.mark.module_transaction


@pytest.fixture
def world(shared_world: World) -> World:
    return shared_world


# ---------------------------------------------------------------------------- helpers


def assert_envelope(response, *codes: int) -> dict:
    """The response is one of ``codes`` with the standard error body; returns the body."""
    assert response.status_code in codes, (response.status_code, response.get_data()[:500])
    assert response.mimetype == "application/json", response.mimetype
    body = response.get_json()
    assert set(body) <= {"code", "status", "message", "errors"}, body
    assert body["code"] == response.status_code
    assert body["status"] == HTTPStatus(response.status_code).phrase
    assert isinstance(body["message"], str) and body["message"]
    return body


def _quote_body(world: World) -> dict:
    dataset_id = world.ids["A"].get("dataset_listed", 1)  # any id when the body is refused
    return {
        "items": [{"dataset_id": dataset_id, "columns": None}],
        "duration_months": 6,
        "purpose": "research",
        "query_quota": 10,
    }


# ------------------------------------------------------------------------- body size caps


def test_a_body_over_max_content_length_is_413(app, client, callers, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 4096)
    monkeypatch.setitem(app.config, "MARKET_MAX_JSON_BYTES", 10**6)
    body = json.dumps({**_quote_body(callers), "pad": "x" * 8000})
    r = client.post("/api/v1/quotes", data=body, content_type="application/json",
                    headers=callers.caller("buyer"))
    assert_envelope(r, 413)


def test_a_multipart_upload_over_max_content_length_is_413(app, client, callers, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 4096)
    r = client.post(
        "/api/v1/datasets",
        data={"metadata": "{}", "file": (io.BytesIO(b"a,b\n" + b"1,2\n" * 4000), "big.csv")},
        content_type="multipart/form-data",
        headers=callers.caller("department"),
    )
    assert_envelope(r, 413)


def test_the_json_cap_defaults_to_one_megabyte(app):
    from market.config import build_config

    assert build_config(Path(app.instance_path), {**_secrets(app)})["MARKET_MAX_JSON_BYTES"] == 2**20


def _secrets(app) -> dict:
    return {k: app.config[k] for k in ("MARKET_SECRET_KEY", "MARKET_PSEUDONYM_KEY",
                                        "MARKET_SIGNING_KEY")}


#: What a server such as gunicorn sets for a chunked request body (no Content-Length).
CHUNKED = {"wsgi.input_terminated": True}


@pytest.mark.parametrize("chunked", [False, True])
def test_a_json_body_over_market_max_json_bytes_is_413(app, client, callers, monkeypatch, chunked):
    monkeypatch.setitem(app.config, "MARKET_MAX_JSON_BYTES", 2048)
    body = json.dumps({**_quote_body(callers), "pad": "x" * 4000}).encode()
    headers = callers.caller("buyer")
    if chunked:  # no Content-Length: the cap must count what it reads
        headers["Transfer-Encoding"] = "chunked"
        r = client.post("/api/v1/quotes", input_stream=io.BytesIO(body),
                        content_type="application/json", headers=headers,
                        environ_overrides=CHUNKED)
    else:
        r = client.post("/api/v1/quotes", data=body, content_type="application/json",
                        headers=headers)
    body_ = assert_envelope(r, 413)
    assert "2048" in body_["message"]


def test_the_json_cap_does_not_touch_bodies_under_it_or_uploads(app, client, world, monkeypatch):
    monkeypatch.setitem(app.config, "MARKET_MAX_JSON_BYTES", 2048)
    r = client.post("/api/v1/quotes", json=_quote_body(world), headers=world.caller("buyer"))
    assert r.status_code == 201, r.get_json()
    # A chunked JSON body under the cap is read once and still parsed.
    headers = {**world.caller("buyer"), "Transfer-Encoding": "chunked"}
    r = client.post("/api/v1/quotes", input_stream=io.BytesIO(json.dumps(_quote_body(world)).encode()),
                    content_type="application/json", headers=headers, environ_overrides=CHUNKED)
    assert r.status_code == 201, r.get_json()
    # Multipart is capped by MAX_CONTENT_LENGTH only: a 3 kB upload is not "JSON".
    r = client.post(
        "/api/v1/datasets",
        data={"metadata": json.dumps({"open_grade": "restricted"}),
              "file": (io.BytesIO(b"k,v\n" + b"1,2\n" * 800), "small.csv")},
        content_type="multipart/form-data",
        headers=world.caller("department"),
    )
    assert r.status_code != 413


def test_the_json_cap_answers_413_even_to_anonymous_callers(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "MARKET_MAX_JSON_BYTES", 1024)
    r = client.post("/api/v1/register", data=json.dumps({"x": "y" * 5000}),
                    content_type="application/json")
    assert_envelope(r, 413)


# ----------------------------------------------------------------------------- broken JSON

BROKEN_JSON = {
    "invalid utf-8": b'{"purpose": "\xff\xfe\xfa"}',
    "latin-1 text": '{"purpose": "caf\u00e9"}'.encode("latin-1"),
    "utf-16": '{"purpose": "research"}'.encode("utf-16"),
    "truncated": b'{"items": [{"dataset_id": 1',
    "trailing garbage": b'{"purpose": "research"} xyz',
    "a list": b"[]",
    "a string": b'"research"',
    "a number": b"42",
    "null": b"null",
    "true": b"true",
    "empty": b"",
    "nested 100000 deep": b"[" * 100_000 + b"]" * 100_000,
    "nested objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "NaN money": b'{"items": [], "duration_months": NaN, "purpose": "research", "query_quota": 1}',
    "Infinity": b'{"items": [], "duration_months": Infinity, "purpose": "research", "query_quota": 1}',
    "huge number": b'{"items": [], "duration_months": 1' + b"0" * 5000 + b', "purpose": "research"}',
    "nul byte": b'{"purpose": "re\x00search"}',
}


JSON_ENDPOINTS = [("/api/v1/quotes", "buyer"), ("/api/v1/register", "anonymous"),
                  ("/api/v1/licenses/verify", "anonymous"), ("/api/v1/organizations", "operator")]


@pytest.mark.parametrize("payload", list(BROKEN_JSON.values()), ids=list(BROKEN_JSON))
def test_broken_json_is_a_client_error(client, callers, payload):
    for path, caller in JSON_ENDPOINTS:
        r = client.post(path, data=payload, content_type="application/json",
                        headers=callers.caller(caller))
        assert_envelope(r, 400, 413, 422)


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("text/plain", '{"purpose": "research"}'),
        ("application/x-www-form-urlencoded", "purpose=research&duration_months=6"),
        ("application/xml", "<quote><purpose>research</purpose></quote>"),
        ("multipart/form-data; boundary=xyz", "--xyz--"),
        ("application/json; charset=latin-1", '{"purpose": "research"}'),
        ("", '{"purpose": "research"}'),
    ],
)
def test_a_wrong_content_type_is_a_client_error(client, callers, content_type, data):
    r = client.post("/api/v1/quotes", data=data, headers={
        **callers.caller("buyer"), "Content-Type": content_type})
    assert_envelope(r, 400, 415, 422)


# ------------------------------------------------------------------------ URL parameters

PATH_TRICKS = [
    "/api/v1/datasets/..%2F..%2Fetc%2Fpasswd",
    "/api/v1/datasets/1%2F..%2F2",
    "/api/v1/datasets/..;/1",
    "/api/v1/datasets/%2e%2e/1",
    "/api/v1/datasets/1%00",
    "/api/v1/datasets/-1",
    "/api/v1/datasets/1e3",
    "/api/v1/datasets/0x10",
    "/api/v1/datasets/99999999999999999999999",
    "/api/v1/datasets/2147483648",
    "/api/v1/licenses/9223372036854775808",
    "/api/v1/licenses/4294967296/document",
    "/api/v1/sandbox/99999999999/tables",
    "/api/v1/datasets/1/versions/99999999999999999999",
    "/api/v1/pricing/parameters/versions/18446744073709551616",
    "/api/v1/audit/../../etc/passwd",
    "/api/v1//datasets",
]


def test_path_tricks_are_not_found(client, callers):
    for path in PATH_TRICKS:
        r = client.get(path, headers=callers.caller("operator"))
        if r.status_code == 308:  # werkzeug merges "//" by redirecting to the clean path
            continue
        assert r.status_code in (400, 404), (path, r.status_code)
        assert_envelope(r, 400, 404)


def test_non_ascii_digits_in_a_path_name_the_same_object_or_nothing(client, callers):
    """Werkzeug's int converter reads "１" (full-width) as 1: the same object, never a 500."""
    r = client.get("/api/v1/pricing/parameters/versions/１", headers=callers.caller("operator"))
    assert r.status_code in (200, 404)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/licenses", {"quote_id": 2**63, "purpose_statement": "x"}),
        ("POST", "/api/v1/licenses", {"quote_id": -(2**70), "purpose_statement": "x"}),
        ("POST", "/api/v1/licenses", {"quote_id": 2**31, "purpose_statement": "x"}),
        ("POST", "/api/v1/consents", {"license_id": 2**64, "subject_credit_code": "x" * 18,
                                      "purpose": "p", "valid_until": "2030-01-01T00:00:00Z"}),
        ("POST", "/api/v1/lookups", {"license_id": 2**64, "subject_credit_code": "x" * 18}),
    ],
)
def test_numbers_no_column_can_hold_are_client_errors(client, callers, method, path, body):
    r = client.open(path, method=method, json=body, headers=callers.caller("buyer"))
    assert_envelope(r, 403, 404, 409, 422)


OUT_OF_RANGE_QUERIES = [
        ("/api/v1/revenue/statements", {"period": "0000-01"}),
        ("/api/v1/revenue/statements", {"period": "9999-12"}),
        ("/api/v1/revenue/statements.csv", {"period": "0000-01"}),
        ("/api/v1/pricing/revenue-caps", {"period": "0000-01"}),
        ("/api/v1/pricing/revenue-caps", {"period": "9999-12"}),
        ("/api/v1/audit/events", {"since": "0001-01-01T00:00:00Z"}),
        ("/api/v1/audit/events", {"until": "9999-12-31T23:59:59Z"}),
        ("/api/v1/audit/events", {"since": "10000-01-01T00:00:00Z"}),
        ("/api/v1/audit/events", {"page": 2**63}),
        ("/api/v1/audit/events", {"per_page": 2**40}),
        ("/api/v1/ledger", {"license_id": 2**63}),
        ("/api/v1/datasets", {"department_id": 2**64}),
        ("/api/v1/datasets", {"page": 10**12}),
        ("/api/v1/sandbox/1/queries", {"page": 2**63}),
        ("/api/v1/consents", {"page": 2**63, "per_page": 100}),
]


def test_out_of_range_query_values_are_not_server_errors(client, callers):
    for path, query in OUT_OF_RANGE_QUERIES:
        r = client.get(path, query_string=query, headers=callers.caller("regulator"))
        assert r.status_code < 500, (path, query, r.get_data()[:300])
        if r.status_code >= 400:
            assert_envelope(r, 400, 403, 404, 422)


# ----------------------------------------------------------------------- over-long strings

LONG = "長" * 5000


def _long_cases():
    yield "register organization_name", "POST", "/api/v1/register", "anonymous", lambda w: {
        "organization_name": LONG, "credit_code": valid_uscc(970_001), "kind": "buyer",
        "email": "long@example.cn", "password": PASSWORD}, "organization_name"
    yield "register email", "POST", "/api/v1/register", "anonymous", lambda w: {
        "organization_name": "x", "credit_code": valid_uscc(970_002), "kind": "buyer",
        "email": "a" * 5000 + "@example.cn", "password": PASSWORD}, "email"
    yield "register password", "POST", "/api/v1/register", "anonymous", lambda w: {
        "organization_name": "x", "credit_code": valid_uscc(970_003), "kind": "buyer",
        "email": "pw@example.cn", "password": "p" * 5000}, "password"
    yield "token email", "POST", "/api/v1/auth/token", "anonymous", lambda w: {
        "email": LONG, "password": "x"}, "email"
    yield "organization name", "POST", "/api/v1/organizations", "operator", lambda w: {
        "name": LONG, "kind": "buyer", "credit_code": valid_uscc(970_004)}, "name"
    yield "license purpose", "POST", "/api/v1/licenses", "buyer", lambda w: {
        "quote_id": w.of("A", "quote"), "purpose_statement": LONG}, "purpose_statement"
    yield "revoke reason", "POST", "/api/v1/licenses/{A:license_active}/revoke", "operator", \
        lambda w: {"reason": LONG}, "reason"
    yield "settle reference", "POST", "/api/v1/payments/{A:payment_open}/settle", "operator", \
        lambda w: {"bank_reference": LONG}, "bank_reference"
    yield "payout reference", "POST", "/api/v1/revenue/payouts", "operator", lambda w: {
        "department_id": w.of("A", "department"), "amount": 1, "reference": LONG}, "reference"
    yield "blacklist reason", "POST", "/api/v1/blacklist", "regulator", lambda w: {
        "organization_id": w.of("A", "buyer"), "reason": "r" * 5000}, "reason"
    yield "parameters note", "PUT", "/api/v1/pricing/parameters", "operator", lambda w: {
        "parameters": {"reasonable_return": "0.07"}, "note": LONG}, "note"
    yield "consent purpose", "POST", "/api/v1/consents", "buyer", lambda w: {
        "license_id": w.of("A", "license_active"), "subject_credit_code": valid_uscc(970_005),
        "purpose": LONG, "valid_until": "2030-01-01T00:00:00Z"}, "purpose"
    yield "consent credit code", "POST", "/api/v1/consents", "buyer", lambda w: {
        "license_id": w.of("A", "license_active"), "subject_credit_code": LONG,
        "purpose": "p", "valid_until": "2030-01-01T00:00:00Z"}, "subject_credit_code"
    yield "sandbox sql", "POST", "/api/v1/sandbox/{A:license_active}/queries", "buyer", \
        lambda w: {"sql": "SELECT 1 -- " + "x" * 30_000}, "sql"
    yield "verify signature", "POST", "/api/v1/licenses/verify", "anonymous", lambda w: {
        "policy": {}, "signature": "s" * 5000}, "signature"


@pytest.mark.parametrize(
    ("method", "path", "caller", "body", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in _long_cases()],
)
def test_over_long_strings_are_422_naming_the_field(app, client, world, method, path, caller,
                                                     body, field):
    from tests.reliability.test_authz_matrix import api_routes

    path = re.sub(r"\{A:(\w+)\}", lambda m: str(world.of("A", m.group(1))), path)
    template = re.sub(r"/\d+", "/{id}", path)
    if not any(re.sub(r"\{\w+\}", "{id}", p) == template for _, p in api_routes(app)):
        pytest.skip(f"{path} is not registered (yet)")
    r = client.open(path, method=method, json=body(world), headers=world.caller(caller))
    payload = assert_envelope(r, 422)
    assert field in json.dumps(payload.get("errors", {})), payload


def test_every_string_in_a_json_body_has_a_maximum_length(client):
    """A static guard: any new string field must say how long it may be (or be an enum)."""
    spec = client.get("/api/v1/openapi.json").get_json()
    components = spec["components"]["schemas"]
    unbounded: list[str] = []

    def walk(schema: dict, where: str, seen: frozenset) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                walk(components[name], where, seen | {name})
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in schema.get(key, []):
                walk(sub, where, seen)
        if schema.get("readOnly"):
            return
        kind = schema.get("type")
        kinds = set(kind) if isinstance(kind, list) else {kind}
        if "object" in kinds or "properties" in schema:
            for name, sub in schema.get("properties", {}).items():
                walk(sub, f"{where}.{name}", seen)
        if "array" in kinds:
            walk(schema.get("items", {}), f"{where}[]", seen)
        if "string" in kinds and not (
            "maxLength" in schema or "enum" in schema or "pattern" in schema
            or schema.get("format") in {"date-time", "date", "binary", "email"}
        ):
            unbounded.append(where)

    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if method == "parameters":
                continue
            content = (op.get("requestBody") or {}).get("content", {})
            if "application/json" in content:
                walk(content["application/json"]["schema"], f"{method.upper()} {path} body",
                     frozenset())
            for param in op.get("parameters", []):
                if param.get("in") in {"query", "header"}:
                    walk(param.get("schema", {}), f"{method.upper()} {path} ?{param['name']}",
                         frozenset())
    assert not unbounded, "strings without maxLength:\n" + "\n".join(sorted(unbounded))


# -------------------------------------------------------------------------- CSV injection

FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1)",
            "\t=1", "\r=1"]
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def assert_no_formula_cells(text: str) -> int:
    """Every cell that a spreadsheet would run as a formula is neutralized; returns cells."""
    cells = 0
    for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))):
        for cell in row:
            cells += 1
            if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
                assert _NUMBER.match(cell), f"formula cell in CSV: {cell!r}"
    return cells


def test_audit_export_neutralizes_formulas(app, client, callers):
    """Organization names, refusal messages and references reach the audit log; the export
    must not let a spreadsheet run them."""
    from market.accounts import services
    from market.accounts.actor import Actor
    from market.audit import services as audit
    from market.extensions import db

    for i, formula in enumerate(FORMULAS):
        services.create_organization(db.session, Actor.system("test"), name=f"{formula} {i}",
                                     kind="buyer", credit_code=valid_uscc(975_000 + i),
                                     check=False)
        audit.record(db.session, formula, Actor.system(formula), (formula, formula),
                     {"note": formula})
    db.session.commit()
    r = client.get("/api/v1/audit/export.csv", headers=callers.caller("regulator"))
    assert r.status_code == 200 and r.mimetype == "text/csv"
    text = r.get_data(as_text=True)
    assert "'=HYPERLINK" in text  # the type column held the formula, now quoted
    assert assert_no_formula_cells(text) > 100


@pytest.mark.parametrize("path", ["/api/v1/revenue/statements.csv",
                                  "/api/v1/revenue/statements"])
def test_revenue_statement_csv_neutralizes_formulas(app, client, world, path):
    """Department names and payout references are typed by people."""
    import datetime as dt

    from market.accounts.models import Organization
    from market.extensions import db

    department = db.session.get(Organization, world.of("A", "department"))
    department.name = FORMULAS[0]
    db.session.commit()
    for i, formula in enumerate(FORMULAS):
        r = client.post("/api/v1/revenue/payouts", headers=world.caller("operator"), json={
            "department_id": department.id, "amount": 1, "reference": f"{formula}{i}"})
        assert r.status_code == 201, r.get_json()
    period = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    query = {"period": period, "department_id": department.id}
    if not path.endswith(".csv"):
        query["format"] = "csv"
    r = client.get(path, query_string=query, headers=world.caller("operator"))
    assert r.status_code == 200 and r.mimetype == "text/csv", r.get_data()[:300]
    text = r.get_data(as_text=True)
    assert "'=HYPERLINK" in text  # the department's name, neutralized
    assert assert_no_formula_cells(text) > 20


def test_every_csv_endpoint_is_covered(app):
    """A new CSV endpoint must get a formula test here (and use market.csvutil)."""
    spec_csv = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.endswith(".csv"):
            spec_csv.add(rule.rule)
    assert spec_csv <= {"/api/v1/audit/export.csv", "/api/v1/revenue/statements.csv"}, spec_csv


# ------------------------------------------------------------------------ dataset uploads


def _metadata(**overrides) -> str:
    meta = {
        "title": "Bad input",
        "description": "reliability",
        "category": "enterprise_registry",
        "open_grade": "open",
        "confidential": False,
        "entity_key": "fk",
        "update_frequency": "monthly",
        "costs": {"collection": 1000, "processing": 1000, "storage_monthly": 10},
    }
    meta.update(overrides)
    return json.dumps(meta)


def _good_rows(n: int = 40) -> bytes:
    return ("fk,district,capital\n" + "".join(f"k{i:04d},d{i % 4},{i}\n" for i in range(n))
            ).encode()


BAD_UPLOADS = {
    "empty file": b"",
    "header only": b"fk,district,capital\n",
    "binary": bytes(range(256)) * 64,
    "a zip": b"PK\x03\x04" + b"\x00" * 2000,
    "truncated quote": b'fk,district\nk1,"unterminated\nk2,d2\n',
    "utf-16 without bom": "fk,district\nk1,浦东\n".encode("utf-16-le"),
    "invalid utf-8": b"fk,district\n" + b"k1,\xff\xfe\xfd\n" * 50,
    "nul bytes": b"fk,district\n" + b"k1,d\x00\x00\n" * 50,
    "100k columns": (",".join(f"c{i}" for i in range(100_000)) + "\n").encode(),
    "one huge cell": b"fk,district\nk1," + b"x" * 3_000_000 + b"\n",
    "ragged rows": b"fk,district,capital\nk1\nk2,d,1,extra,extra\n",
    "formula cells": b"fk,district\n" + b"k1,=HYPERLINK(\"x\")\n" * 50,
    "no entity key": b"a,b\n1,2\n",
}


@pytest.fixture
def upload_dir(app, tmp_path):
    """A data folder of the test's own, to check that nothing escapes it or stays behind."""
    path = tmp_path / "data"
    path.mkdir()
    old = app.config["MARKET_DATA_DIR"]
    app.config["MARKET_DATA_DIR"] = str(path)
    app.extensions.pop("market.storage", None)
    yield path
    app.config["MARKET_DATA_DIR"] = old
    app.extensions.pop("market.storage", None)


def _upload(client, callers, content: bytes, filename: str = "data.csv", **meta):
    # Encoded in memory: the test client spools large multipart bodies to a temporary file
    # that it never closes when the app answers before reading them to the end.
    boundary, body = encode_multipart(
        {"metadata": _metadata(**meta),
         "file": FileStorage(io.BytesIO(content), filename=filename, content_type="text/csv")}
    )
    return client.post(
        "/api/v1/datasets",
        data=body,
        headers={**callers.caller("department"),
                 "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )


def _version_status(client, callers, accepted: dict) -> str:
    r = client.get(f"/api/v1/datasets/{accepted['id']}/versions/{accepted['version']}/status",
                   headers=callers.caller("department"))
    assert r.status_code == 200, r.get_json()
    return r.get_json()["status"]


@pytest.mark.parametrize("content", list(BAD_UPLOADS.values()), ids=list(BAD_UPLOADS))
def test_bad_uploads_are_refused_cleanly(app, client, callers, upload_dir, content):
    r = _upload(client, callers, content)
    if r.status_code == 202:
        # Accepted for processing: the job must end in a terminal state, never "processing"
        # forever, and a failure leaves no file behind.
        status = _version_status(client, callers, r.get_json())
        assert status in {"pending_review", "failed", "refused", "rejected"}, status
        if status != "pending_review":
            assert not [p for p in upload_dir.rglob("*") if p.is_file()]
    else:
        assert_envelope(r, 400, 413, 422)
        assert not [p for p in upload_dir.rglob("*") if p.is_file()], "staged file left behind"


@pytest.mark.parametrize(
    "filename",
    ["../../../../tmp/evil.csv", "..\\..\\evil.csv", "/etc/passwd", "evil\x00.csv",
     "a/../../b.csv", "%2e%2e%2fevil.csv", "....//....//evil.csv", "CON.csv", "",
     "名字" * 300 + ".csv", "\u202etxt.csv"],
)
def test_upload_file_names_cannot_escape_the_data_folder(app, client, callers, upload_dir,
                                                         tmp_path, filename):
    before = {p for p in tmp_path.parent.rglob("evil*")}
    r = _upload(client, callers, _good_rows(), filename=filename)
    assert r.status_code in (202, 400, 422), r.get_data()[:300]
    if r.status_code != 202:
        assert_envelope(r, 400, 422)
    for path in upload_dir.rglob("*"):
        assert path.resolve().is_relative_to(upload_dir.resolve())
    assert {p for p in tmp_path.parent.rglob("evil*")} == before
    assert not Path("/tmp/evil.csv").exists()
    if r.status_code == 202:
        from market.datasets.models import DatasetVersion
        from market.extensions import db

        version = db.session.scalars(
            db.select(DatasetVersion).where(DatasetVersion.dataset_id == r.get_json()["id"])
        ).one()
        assert "/" not in version.filename and "\\" not in version.filename
        assert ".." not in version.filename and "\x00" not in version.filename
        assert len(version.filename) <= 200


@pytest.mark.parametrize(
    "metadata",
    ["", "not json", "[]", "null", json.dumps({"title": "x"}), "{" * 10_000,
     json.dumps({"title": LONG, "open_grade": "open"}), "\xff\xfe"],
    ids=["empty", "not json", "a list", "null", "incomplete", "deep", "long title", "garbage"],
)
def test_bad_upload_metadata_is_422(client, callers, upload_dir, metadata):
    r = client.post(
        "/api/v1/datasets",
        data={"metadata": metadata, "file": (io.BytesIO(_good_rows()), "ok.csv")},
        content_type="multipart/form-data",
        headers=callers.caller("department"),
    )
    assert_envelope(r, 400, 413, 422)
    assert not [p for p in upload_dir.rglob("*") if p.is_file()]


def test_a_truncated_multipart_body_is_a_client_error(client, callers, upload_dir):
    boundary = "reliabilityboundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n"
        f"{_metadata()}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
        f"filename=\"cut.csv\"\r\nContent-Type: text/csv\r\n\r\nfk,district\r\nk1,d1\r\nk2,"
    ).encode()
    r = client.post("/api/v1/datasets", data=body, headers={
        **callers.caller("department"),
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert_envelope(r, 400, 422)
    assert not [p for p in upload_dir.rglob("*") if p.is_file()]


# ----------------------------------------------------------------------- Stripe webhook

WEBHOOK_SECRET = "whsec_bad_input"


def _event(type_: str = "payment_intent.succeeded", obj=None) -> dict:
    return {"id": "evt_badinput0001", "object": "event", "type": type_, "created": 1,
            "livemode": False, "data": {"object": obj if obj is not None else {
                "id": "pi_unknown", "object": "payment_intent", "amount": 100,
                "currency": "cny", "status": "succeeded", "metadata": {}}}}


def _webhook_cases():
    good = json.dumps(_event()).encode()
    yield "no signature", good, None
    yield "garbage signature", good, "t=1,v1=deadbeef"
    yield "signature of another body", good, stripe_signature(b"{}", WEBHOOK_SECRET)
    yield "stale timestamp", good, stripe_signature(good, WEBHOOK_SECRET, timestamp=1)
    yield "wrong secret", good, stripe_signature(good, "whsec_other")
    yield "huge header", good, "t=1," + "v1=" + "a" * 20_000
    for name, body in [
        ("signed garbage", b"\xff\xfe not json"),
        ("signed list", b"[]"),
        ("signed empty", b""),
        ("signed nested", b"[" * 5000 + b"]" * 5000),
        ("signed event without data", json.dumps({"id": "evt_x", "type": "x"}).encode()),
        ("signed object not a dict", json.dumps(_event(obj=[1, 2])).encode()),
        ("signed unknown payment", good),
        ("signed unknown type", json.dumps(_event("charge.refunded")).encode()),
        ("signed numeric ids", json.dumps(_event(obj={
            "id": 12345, "object": "payment_intent", "amount": 100, "currency": "cny",
            "metadata": {"payment_ref": ["x"]}})).encode()),
        ("signed amount as text", json.dumps(_event(obj={
            "id": "pi_x", "object": "payment_intent", "amount": "lots", "currency": "cny",
            "metadata": {"payment_ref": 5}})).encode()),
    ]:
        yield name, body, stripe_signature(body, WEBHOOK_SECRET)


@pytest.mark.parametrize(("body", "signature"),
                         [pytest.param(b, s, id=n) for n, b, s in _webhook_cases()])
def test_the_stripe_webhook_refuses_bad_deliveries_cleanly(app, client, monkeypatch, body,
                                                          signature):
    """The webhook is excluded from generative fuzzing; these are its hostile deliveries."""
    monkeypatch.setitem(app.config, "STRIPE_API_KEY", "sk_test_bad_input")
    monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    r = client.post("/api/v1/payments/stripe/webhook", data=body, headers=headers)
    if r.status_code == 200:  # a well-signed event the platform has nothing to do with
        assert signature is not None and r.get_json()["outcome"] != "settled", r.get_json()
        return
    assert_envelope(r, 400, 404, 409, 422)
