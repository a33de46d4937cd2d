"""Browser-facing security, checked over every route the app registers.

- Every route that accepts POST (pages and the API used with a session cookie) refuses a
  request without the CSRF token: 400, nothing changed.
- A GET never changes state: no page or read endpoint adds, removes or edits a row.
- Sessions: cookie flags, the idle timeout and the absolute lifetime.
- XSS: names and texts that people type (organization names, dataset titles, purpose
  statements, reasons, notes, audit data) holding ``<script>`` and attribute-breaking
  payloads are escaped on every accounts, admissions, organizations, audit, licenses and
  quotes page, for every role. (The catalogue and consents pages are tested by their owners.)
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from tests.reliability.conftest import ROLES, World
from tests.reliability.test_authz_matrix import flask_route

#: One world for the module (``shared_world``): each test runs in a savepoint of the module's
#: transaction, rolled back after it (tests/conftest.py, ``app``).
pytestmark = pytest.mark.module_transaction


@pytest.fixture
def world(shared_world: World) -> World:
    return shared_world


SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
PAYLOADS = (SCRIPT, ATTRIBUTE)
#: What must never reach a page unescaped (the tags the payloads would inject).
RAW = ("<script>alert(1)", "<img src=x onerror=alert(1)>")
ESCAPED = ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;")

#: Path parameter -> the world object (side A) a page is shown for.
PAGE_IDS = {
    "license_id": "license_active",
    "quote_id": "quote",
    "dataset_id": "dataset_listed",
    "consent_id": "consent_requested",
    "organization_id": "blacklisted_org",
    "org_id": "buyer",
}

#: Blueprints whose pages this file checks for XSS (the others test their own pages).
XSS_BLUEPRINTS = {"web", "accounts", "audit", "licenses", "quotes"}


def login_session(client, world: World, role: str) -> None:
    """Sign ``role`` in the way /login does, without paying for argon2 on every test."""
    from market.accounts.models import User
    from market.auth import session_values
    from market.extensions import db

    user = db.session.get(User, world.users[role].user_id)
    values = session_values(user)
    db.session.commit()
    with client.session_transaction() as session:
        session.clear()
        session.update(values)


def _age_session(client, **delta) -> None:
    """Move this client's server-side session back in time (its last request, its login)."""
    import hashlib

    from market.accounts.models import UserSession
    from market.extensions import db

    with client.session_transaction() as session:
        sid = session["sid"]
    row = db.session.scalar(sa.select(UserSession).where(
        UserSession.sid_hash == hashlib.sha256(sid.encode()).hexdigest()))
    for field, value in delta.items():
        setattr(row, field, getattr(row, field) - value)
    db.session.commit()


def web_rules(app, method: str):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static" or method not in rule.methods:
            continue
        yield rule


def concrete(rule_path: str, world: World) -> str | None:
    """The rule with its parameters filled from side A of the world, or None if unknown."""
    path = flask_route(rule_path)
    for name in re.findall(r"\{(\w+)\}", path):
        if name not in PAGE_IDS:
            return None
        path = path.replace("{" + name + "}", str(world.of("A", PAGE_IDS[name])))
    return path


def table_rows(session) -> dict[str, int]:
    """Row counts of every table, in one query."""
    from market.db import Base

    tables = sorted(Base.metadata.tables)
    query = " UNION ALL ".join(f"SELECT '{t}', COUNT(*) FROM {t}" for t in tables)
    return dict(session.execute(sa.text(query)).all())


# ------------------------------------------------------------------------------------ CSRF


def test_every_post_route_refuses_a_request_without_the_csrf_token(app, client, world):
    """Pages and session-authenticated API calls alike: no token, no state change."""
    from market.extensions import db

    login_session(client, world, "operator")
    before = table_rows(db.session)
    checked, accepted = 0, []
    for rule in web_rules(app, "POST"):
        path = concrete(rule.rule, world) or re.sub(r"<[^>]+>", "1", rule.rule)
        r = client.post(path, data={"reason": "csrf", "decision": "approve"})
        checked += 1
        if r.status_code != 400:
            accepted.append(f"{rule.rule} -> {r.status_code}")
    for rule in web_rules(app, "PUT"):
        r = client.put(concrete(rule.rule, world) or re.sub(r"<[^>]+>", "1", rule.rule), json={})
        checked += 1
        if r.status_code != 400:
            accepted.append(f"PUT {rule.rule} -> {r.status_code}")
    for rule in web_rules(app, "DELETE"):
        r = client.delete(concrete(rule.rule, world) or re.sub(r"<[^>]+>", "1", rule.rule),
                          json={"reason": "csrf"})
        checked += 1
        if r.status_code != 400:
            accepted.append(f"DELETE {rule.rule} -> {r.status_code}")
    assert checked > 40
    assert not accepted, "accepted without a CSRF token:\n" + "\n".join(accepted)
    changed = {t: (n, table_rows(db.session)[t]) for t, n in before.items()
               if table_rows(db.session)[t] != n and t != "audit_events"}
    assert not changed, changed


def test_anonymous_posts_need_the_csrf_token_too(app, client):
    """Login CSRF and registration spam: the forms that work without a session."""
    for path in ("/login", "/register", "/logout"):
        r = client.post(path, data={"email": "a@b.cn", "password": "x" * 12})
        assert r.status_code == 400, (path, r.status_code)


def test_a_bearer_token_needs_no_csrf_token(client, world):
    """The API's own clients are not browsers: CSRF applies to cookies only."""
    r = client.post("/api/v1/licenses/verify", json={"policy": {}, "signature": "AAAA"},
                    headers=world.caller("buyer"))
    assert r.status_code == 200


# ------------------------------------------------------------------------- GET is safe


@pytest.mark.parametrize("role", ROLES)
def test_no_get_changes_state(app, client, world, role):
    """Every page and read endpoint, as every role: row counts stay exactly the same."""
    from market.extensions import db

    login_session(client, world, role)
    client.get("/dashboard")  # first request of the session
    changed = []
    visited = 0
    for rule in web_rules(app, "GET"):
        path = concrete(rule.rule, world)
        if path is None or rule.rule.endswith(("/export.csv", ".csv")):
            continue
        before = table_rows(db.session)
        r = client.get(path)
        r.get_data()
        r.close()
        visited += 1
        after = table_rows(db.session)
        # Denials (403) are audited by design: the regulator must see refused attempts. An
        # audited event may also close a checkpoint (every N events or T minutes, whichever
        # comes first), so a denial can sign one too.
        delta = {t: after[t] - n for t, n in before.items() if after[t] != n}
        if r.status_code in (401, 403) and set(delta) <= {"audit_events", "audit_checkpoints"}:
            continue
        # By design (#13 item 9): reading the audit head signs it if events were appended since
        # the last checkpoint, and a regulator's visit records the head it saw. A regulator
        # report carries the signed head it was computed from (#16 item 6): the same signing.
        signs_head = path in ("/api/v1/audit/head", "/audit") or path.startswith("/reports")
        if signs_head and set(delta) <= {
            "audit_checkpoints", "audit_head_observations"
        }:
            continue
        if delta:
            changed.append(f"GET {path} ({r.status_code}): {delta}")
    assert visited > 40
    assert not changed, "GET changed state:\n" + "\n".join(changed)


# ---------------------------------------------------------------------------- sessions


def test_session_cookie_flags_with_the_default_configuration(app, client, world, monkeypatch):
    from market.config import build_config

    monkeypatch.delenv("MARKET_COOKIE_SECURE", raising=False)
    defaults = build_config(app.instance_path and __import__("pathlib").Path(app.instance_path),
                            {k: app.config[k] for k in ("MARKET_SECRET_KEY",
                                                        "MARKET_PSEUDONYM_KEY",
                                                        "MARKET_SIGNING_KEY")})
    assert defaults["SESSION_COOKIE_SECURE"] is True
    assert defaults["SESSION_COOKIE_HTTPONLY"] is True
    assert defaults["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert defaults["PERMANENT_SESSION_LIFETIME"] <= dt.timedelta(hours=8)
    assert defaults["MARKET_SESSION_IDLE_MINUTES"] <= 60


def test_an_idle_session_expires(app, client, world):
    login_session(client, world, "operator")
    assert client.get("/dashboard").status_code == 200
    idle = app.config["MARKET_SESSION_IDLE_MINUTES"]
    # The server decides: the cookie is the same one that just worked.
    _age_session(client, last_seen_at=dt.timedelta(minutes=idle + 1))
    r = client.get("/dashboard")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    # ... and the API does not accept the dead session either.
    assert client.get("/api/v1/me").status_code == 401


def test_an_active_session_slides_but_a_cookie_without_a_server_session_is_dead(
    app, client, world
):
    login_session(client, world, "buyer")
    idle = app.config["MARKET_SESSION_IDLE_MINUTES"]
    _age_session(client, last_seen_at=dt.timedelta(minutes=idle - 1))
    assert client.get("/dashboard").status_code == 200  # within the window: renewed
    _age_session(client, last_seen_at=dt.timedelta(minutes=2))
    assert client.get("/dashboard").status_code == 200  # renewed above: still live
    # A cookie of the old kind (user id and epoch, signed with the right key) grants nothing.
    user_id = world.users["buyer"].user_id
    with client.session_transaction() as session:
        del session["sid"]
        session["uid"] = user_id
    assert client.get("/dashboard").status_code == 302


def test_a_session_ends_at_its_absolute_lifetime_however_active(app, client, world):
    login_session(client, world, "operator")
    hours = app.config["MARKET_SESSION_MAX_HOURS"]
    _age_session(client, created_at=dt.timedelta(hours=hours, minutes=1))
    r = client.get("/dashboard")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert client.get("/api/v1/me").status_code == 401


def test_the_session_cookie_expires_with_the_absolute_lifetime(app, client, make_user):
    from tests.accounts.test_web import login

    user = make_user("buyer")
    r = login(client, user.email)
    cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith("market_session="))
    match = re.search(r"Expires=([^;]+)", cookie)
    assert match, cookie  # a permanent session: the browser drops it at the lifetime's end
    expires = dt.datetime.strptime(match.group(1), "%a, %d %b %Y %H:%M:%S GMT").replace(
        tzinfo=dt.UTC)
    lifetime = app.config["PERMANENT_SESSION_LIFETIME"]
    assert expires - dt.datetime.now(dt.UTC) <= lifetime + dt.timedelta(minutes=1)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


# ---------------------------------------------------------------------------------- XSS


def _poison(app, world: World) -> None:
    """Put the payloads in every text field these pages show."""
    from licenses.models import BlacklistEntry, License
    from market.accounts.actor import Actor
    from market.accounts.models import Organization
    from market.audit import services as audit
    from market.datasets.models import Dataset
    from market.extensions import db
    from market.quotes import parameters

    for n, org in enumerate(db.session.scalars(sa.select(Organization)).all()):
        org.name = f"{PAYLOADS[n % 2]} {n}"
    for n, dataset in enumerate(db.session.scalars(sa.select(Dataset)).all()):
        dataset.title = f"{PAYLOADS[n % 2]} {n}"
        dataset.description = PAYLOADS[(n + 1) % 2]
    for n, lic in enumerate(db.session.scalars(sa.select(License)).all()):
        lic.purpose_statement = PAYLOADS[n % 2]
    for entry in db.session.scalars(sa.select(BlacklistEntry)).all():
        entry.reason = ATTRIBUTE
    db.session.flush()
    parameters.save_parameters(db.session, world.users["operator"],
                               {"reasonable_return": "0.09"}, note=SCRIPT)
    audit.record(db.session, "reliability.xss", world.users["operator"], ("license", SCRIPT),
                 {"note": SCRIPT, "reason": ATTRIBUTE})
    audit.record(db.session, SCRIPT, Actor.system(ATTRIBUTE), None, {})
    db.session.commit()


@pytest.mark.parametrize("role", ROLES)
def test_typed_text_is_escaped_on_every_page(app, client, world, role):
    _poison(app, world)
    login_session(client, world, role)
    unescaped, shown, visited = [], 0, 0
    for rule in web_rules(app, "GET"):
        if rule.endpoint.split(".")[0] not in XSS_BLUEPRINTS:
            continue
        path = concrete(rule.rule, world)
        if path is None:
            continue
        r = client.get(path)
        if r.mimetype != "text/html":
            continue
        visited += 1
        html = r.get_data(as_text=True)
        for raw in RAW:
            if raw in html:
                at = html.index(raw)
                unescaped.append(f"{path} ({r.status_code}): ...{html[max(0, at - 80):at + 40]}")
        shown += sum(html.count(e) for e in ESCAPED)
    assert visited >= 5
    assert not unescaped, "unescaped payload:\n" + "\n".join(unescaped)
    # The test means something only if the pages really show the poisoned texts.
    assert shown > 0, f"no page showed the payloads to {role}"


def test_the_xss_check_sees_pages_of_every_checked_area(app, world):
    areas = {rule.endpoint.split(".")[0] for rule in web_rules(app, "GET")
             if concrete(rule.rule, world) is not None}
    assert XSS_BLUEPRINTS <= areas, XSS_BLUEPRINTS - areas
