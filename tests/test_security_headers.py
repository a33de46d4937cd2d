"""Security headers, CSP without inline scripts, login throttling and audited 429s."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

TEMPLATES = Path(__file__).resolve().parent.parent / "market" / "templates"


def test_headers_on_pages_and_api(client):
    for path in ("/", "/login", "/api/v1/health"):
        r = client.get(path)
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert "frame-ancestors 'none'" in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "same-origin"
    assert client.get("/api/v1/health").headers["Cache-Control"] == "no-store"


def test_templates_have_no_inline_scripts_or_handlers():
    """A strict CSP would block them; data goes through data-* or JSON script blocks."""
    offenders = []
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text("utf-8")
        for m in re.finditer(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script>", text, re.S):
            attrs, body = m.group("attrs"), m.group("body").strip()
            if body and "application/json" not in attrs:
                offenders.append(f"{path.name}: inline script")
        if re.search(r"\son[a-z]+\s*=", text):
            offenders.append(f"{path.name}: inline event handler")
    assert not offenders, offenders


def test_failed_logins_are_throttled_and_audited(app, client, make_user, rate_limits):
    from market.audit.models import AuditEvent
    from market.extensions import db

    user = make_user("buyer")
    # Different names: the per-address limit (the per-account backoff: tests/accounts/test_throttle.py).
    codes = [client.post("/api/v1/auth/token", json={"email": f"{n}{user.email}", "password": "wrong-password"}).status_code for n in range(12)]
    assert codes[:10] == [401] * 10 and codes[-1] == 429
    r429 = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.type == "access.rate_limited"))
    assert r429 is not None and r429.data["path"] == "/api/v1/auth/token"


def test_login_page_is_throttled(client, make_user, rate_limits):
    from tests.accounts.test_web import csrf_from

    user = make_user("buyer")
    token = csrf_from(client.get("/login").get_data(as_text=True))
    codes = [client.post("/login", data={"email": f"{n}{user.email}", "password": "nope-nope-nope", "csrf_token": token}).status_code for n in range(11)]
    assert codes[:10] == [401] * 10 and codes[10] == 429
