"""#14.9: statuses and the contract.

- Health is 503 on a database that is not at the migrations' head (empty, or behind).
- A database outage is 503 with Retry-After, not 500 (a dead database URL as the seam).
- Over-long URLs: 414 in the JSON envelope.
- 405 carries Allow.
- The OpenAPI document marks the public endpoints ``security: []``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_test_app
from tests.reliability.test_bad_input import assert_envelope


@pytest.fixture
def unmigrated_app(tmp_path):
    app = make_test_app(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path / "instance")
    yield app
    from market.extensions import db

    with app.app_context():
        db.engine.dispose()


def test_health_is_503_on_an_empty_database(unmigrated_app):
    r = unmigrated_app.test_client().get("/api/v1/health")
    assert r.status_code == 503
    assert r.get_json()["status"] == "degraded" and r.get_json()["schema"] == "missing"


def test_health_is_503_on_a_database_behind_the_head(unmigrated_app):
    from flask_migrate import upgrade

    with unmigrated_app.app_context():
        upgrade(revision="c7a0d1e20700")
    r = unmigrated_app.test_client().get("/api/v1/health")
    assert r.status_code == 503 and r.get_json()["schema"] == "outdated"
    with unmigrated_app.app_context():
        upgrade()
    r = unmigrated_app.test_client().get("/api/v1/health")
    assert r.status_code == 200 and r.get_json()["schema"] == "ok"


def test_health_is_ok_at_the_head(client):
    r = client.get("/api/v1/health")
    assert r.status_code == 200
    assert r.get_json() | {"version": None} == {"status": "ok", "database": "ok", "schema": "ok",
                                                 "version": None}


@pytest.fixture(params=["sqlite", "postgres"])
def dead_database_app(request, tmp_path):
    """An app whose database cannot be reached: a SQLite file in a folder that does not
    exist, or a PostgreSQL port nobody listens on."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'no-such-folder' / 'market.db'}"
    else:
        import socket

        with socket.socket() as s:  # a port that was free a moment ago: nobody listens
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/market?connect_timeout=2"
    app = make_test_app(url, tmp_path / "instance")
    yield app


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/api/v1/me", {"Authorization": "Bearer mk_" + "x" * 43}),
        ("GET", "/api/v1/datasets", {}),
        ("POST", "/api/v1/auth/token", {}),
    ],
)
def test_a_database_outage_is_503_with_retry_after(dead_database_app, method, path, headers):
    client = dead_database_app.test_client()
    kwargs = {"json": {"email": "a@b.cn", "password": "x" * 12}} if method == "POST" else {}
    r = client.open(path, method=method, headers=headers, **kwargs)
    body = assert_envelope(r, 503)
    assert int(r.headers["Retry-After"]) > 0
    assert "internal" not in body["message"].lower()


def test_a_database_outage_page_is_503_too(dead_database_app):
    r = dead_database_app.test_client().get("/catalog")
    assert r.status_code == 503 and r.headers["Retry-After"]


def test_health_reports_the_outage(dead_database_app):
    r = dead_database_app.test_client().get("/api/v1/health")
    assert r.status_code == 503 and r.get_json()["database"] == "unavailable"


def test_an_over_long_url_is_414_in_the_envelope(client, app):
    limit = app.config["MARKET_MAX_URL_BYTES"]
    r = client.get("/api/v1/datasets?q=" + "x" * limit)
    body = assert_envelope(r, 414)
    assert str(limit) in body["message"]
    assert client.get("/api/v1/datasets?q=" + "x" * 100).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/v1/health", {"GET", "HEAD", "OPTIONS"}),
        ("PATCH", "/api/v1/auth/token", {"POST", "DELETE", "OPTIONS"}),
        ("PUT", "/login", {"GET", "HEAD", "POST", "OPTIONS"}),
    ],
)
def test_a_405_says_which_methods_are_allowed(client, method, path, allowed):
    r = client.open(path, method=method, headers={"Accept": "application/json"})
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["Allow"].split(",")} == allowed


def test_the_openapi_document_marks_public_endpoints(app, client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["security"] == [{"bearerAuth": []}]
    public, closed = [], []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1") or rule.endpoint.startswith("api-docs"):
            continue
        view = app.view_functions[rule.endpoint]
        cls = getattr(view, "view_class", None)
        if cls is None:
            continue
        path = rule.rule.replace("<int:", "<").replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = spec["paths"].get(path, {}).get(method.lower())
            if operation is None:
                continue
            is_public = getattr(getattr(cls, method.lower(), None), "market_public", False)
            (public if is_public else closed).append((method, path, operation))
    assert ("GET", "/api/v1/health") in [(m, p) for m, p, _ in public]
    assert ("POST", "/api/v1/auth/token") in [(m, p) for m, p, _ in public]
    for method, path, operation in public:
        assert operation.get("security") == [], (method, path)
    for method, path, operation in closed:
        assert "security" not in operation, (method, path)  # the document's default: a token


def test_gunicorn_conf_is_where_the_readme_says(app):
    root = Path(__file__).resolve().parents[2]
    assert "-c gunicorn.conf.py" in (root / "README.md").read_text("utf-8")
    text = (root / "gunicorn.conf.py").read_text("utf-8")
    for setting in ("limit_request_line", "max_requests", "max_requests_jitter"):
        assert f"\n{setting} = " in text
