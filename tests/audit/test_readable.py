"""The audit trail for people: sentences, links, labelled details, SQL as SQL, the type
select, the export of the filtered view, and each event's place in the chain."""

from __future__ import annotations

import datetime as dt
import html as html_lib
import re

import pytest
import sqlalchemy as sa

from market.accounts.actor import Actor

SQL = "SELECT 行政区划, COUNT(*) FROM d1_tax WHERE 年度 = 2024 GROUP BY 行政区划"


@pytest.fixture
def events(app, make_org):
    """A department's event about a license, a sandbox refusal carrying SQL, and a test event."""
    from market.audit import services
    from market.extensions import db

    dept = make_org("department", name="上海市税务局")
    actor = Actor(7, dept.id, "department", "active")
    services.record(db.session, "license.approved", actor, ("license", 42), {"amount": 123456})
    services.record(db.session, "sandbox.query", actor, ("license", 42),
                    {"sql": SQL, "rule": "no_identifiers", "columns": ["行政区划", "年度"]})
    services.record(db.session, "test.event", actor, ("organization", dept.id), {"nested": {"名称": "数据"}})
    db.session.commit()
    return dept


def _login(client, make_user, kind="regulator", lang=None):
    from tests.accounts.test_web import login

    user = make_user(kind)
    login(client, user.email)
    if lang:
        client.get(f"/?lang={lang}")
    return user


def test_events_read_as_sentences_with_links_and_labelled_details(client, make_user, events):
    _login(client, make_user, lang="en")
    html = client.get("/audit").get_data(as_text=True)
    # Actor by name and role; the action by name; the object as a link to its page.
    assert "上海市税务局 (department, user 7) — License approved:" in html
    assert re.search(r'<a href="/licenses/42" data-testid="event-subject">license #42</a>', html)
    assert f"organization “上海市税务局” (#{events.id})" in html
    # Details are a labelled list; money is yuan, not raw fen.
    assert '<dt title="amount">Amount</dt>' in html and "¥1,234.56" in html
    # SQL is shown as SQL (a <pre>, unescaped Chinese), never as \uXXXX JSON.
    assert '<pre class="audit-sql" data-testid="event-sql"><code>' in html
    assert html_lib.escape(SQL, quote=False) in html or SQL in html
    assert "\\u" not in html
    assert "名称" in html  # nested JSON keeps Chinese


def test_zh_sentences_and_type_select_of_human_names(client, make_user, events):
    _login(client, make_user)
    html = client.get("/audit").get_data(as_text=True)
    assert "许可证已批准" in html or "许可" in html
    select = re.search(r'<select id="type" name="type".*?</select>', html, re.S).group(0)
    # Options are names; the code stays in a tooltip.
    assert re.search(r'<option value="sandbox.query" title="sandbox.query"\s*>[^<s][^<]*</option>', select)
    assert '<option value="license"' in select  # a whole area
    assert 'list="event-types"' not in html


def test_type_filter_by_area_and_exact_type(client, make_user, events):
    _login(client, make_user, lang="en")
    html = client.get("/audit?type=sandbox").get_data(as_text=True)
    assert 'data-type="sandbox.query"' in html and 'data-type="license.approved"' not in html
    html = client.get("/audit?type=license.approved").get_data(as_text=True)
    assert 'data-type="license.approved"' in html and 'data-type="sandbox.query"' not in html


def test_export_buttons_carry_the_filters_and_the_export_honours_them(client, make_user, events):
    _login(client, make_user, lang="en")
    today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    html = client.get(f"/audit?type=license&since={today}&until={today}&actor_org={events.id}").get_data(as_text=True)
    href = html_lib.unescape(re.search(r'data-testid="export-csv" href="([^"]+)"', html).group(1))
    assert "type=license" in href and f"actor_org={events.id}" in href and "since=" in href
    r = client.get(href)
    assert r.status_code == 200
    body = r.get_data(as_text=True)
    assert "license.approved" in body and "sandbox.query" not in body
    json_href = html_lib.unescape(re.search(r'data-testid="export-json" href="([^"]+)"', html).group(1))
    page = client.get(json_href).get_json()
    assert [e["type"] for e in page["items"]] == ["license.approved"]
    # Tomorrow's view is empty in the export as on the page.
    later = today + dt.timedelta(days=1)
    html = client.get(f"/audit?type=license&since={later}").get_data(as_text=True)
    href = html_lib.unescape(re.search(r'data-testid="export-csv" href="([^"]+)"', html).group(1))
    assert "license.approved" not in client.get(href).get_data(as_text=True)


def test_the_operator_exports_the_filtered_view_too_and_it_is_audited(client, make_user, events):
    from market.audit.models import AuditEvent
    from market.extensions import db

    user = _login(client, make_user, kind="operator", lang="en")
    html = client.get("/audit?type=license").get_data(as_text=True)
    href = html_lib.unescape(re.search(r'data-testid="export-csv" href="([^"]+)"', html).group(1))
    assert "type=license" in href
    r = client.get(href)
    assert r.status_code == 200
    body = r.get_data(as_text=True)
    assert "license.approved" in body and "sandbox.query" not in body
    exported = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.type == "audit.exported").order_by(AuditEvent.seq)
    ).all()
    assert exported and exported[-1].data == {"filters": {"type": "license"}}
    assert exported[-1].actor_user_id == user.id


def test_a_buyer_has_no_audit_export(client, make_user, events):
    _login(client, make_user, kind="buyer", lang="en")
    assert client.get("/api/v1/audit/export.csv").status_code == 403


def test_hash_is_shown_short_and_full_in_a_title(client, make_user, events):
    from market.audit.models import AuditEvent
    from market.extensions import db

    _login(client, make_user, lang="en")
    html = client.get("/audit").get_data(as_text=True)
    head = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert f'<code class="hash-short" title="{head.hash}">{head.hash[:16]}…</code>' in html


def test_event_page_shows_its_place_in_the_chain_and_the_covering_checkpoint(app, client, make_user, events):
    from market.audit import services
    from market.audit.models import AuditEvent
    from market.extensions import db

    _login(client, make_user, kind="operator", lang="en")
    rows = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq)).all()
    target = next(e for e in rows if e.type == "sandbox.query")
    html = client.get(f"/audit/events/{target.seq}").get_data(as_text=True)
    assert f'data-testid="event-hash">{target.hash}<' in html
    assert f'data-testid="event-prev-hash">{target.prev_hash}<' in html
    assert f'href="/audit/events/{target.seq - 1}" data-testid="previous-event"' in html
    assert f'href="/audit/events/{target.seq + 1}" data-testid="next-event"' in html
    assert "No signed checkpoint covers this event yet" in html
    head = services.signed_head(db.session)
    db.session.commit()
    html = client.get(f"/audit/events/{target.seq}").get_data(as_text=True)
    assert f'data-testid="checkpoint-seq">{head.seq}<' in html
    assert "valid (Ed25519)" in html and "holds" in html and "matches its hash" in html


def test_event_api_and_its_checks(app, client, as_role, events):
    from market.audit.models import AuditEvent
    from market.extensions import db
    from tests.audit.test_chain import tamper

    _, reg = as_role("regulator")
    _, buyer = as_role("buyer")
    seq = db.session.scalar(sa.select(AuditEvent.seq).where(AuditEvent.type == "sandbox.query"))
    assert client.get(f"/api/v1/audit/events/{seq}").status_code == 401
    assert client.get(f"/api/v1/audit/events/{seq}", headers=buyer).status_code == 403
    assert client.get("/api/v1/audit/events/99999", headers=reg).status_code == 404
    body = client.get(f"/api/v1/audit/events/{seq}", headers=reg).get_json()
    assert body["event"]["data"]["sql"] == SQL
    chain = body["chain"]
    assert chain["previous_seq"] == seq - 1 and chain["next_seq"] == seq + 1
    assert chain["link_ok"] and chain["hash_ok"] and chain["checkpoint"] is None
    # An edited event no longer matches its hash; the next one's link still holds (it is the
    # chain walk of /verify that finds the break downstream).
    tamper(db.session, "UPDATE audit_events SET data = '{\"sql\": \"SELECT 1\"}' WHERE seq = :s", s=seq)
    db.session.commit()
    db.session.expire_all()
    chain = client.get(f"/api/v1/audit/events/{seq}", headers=reg).get_json()["chain"]
    assert chain["hash_ok"] is False
    # A deleted predecessor breaks this event's link.
    tamper(db.session, "DELETE FROM audit_events WHERE seq = :s", s=seq)
    db.session.commit()
    chain = client.get(f"/api/v1/audit/events/{seq + 1}", headers=reg).get_json()["chain"]
    assert chain["link_ok"] is False and chain["previous_seq"] == seq - 1


def test_event_page_is_refused_to_departments(client, make_user, events):
    _login(client, make_user, kind="department")
    assert client.get("/audit/events/1").status_code == 403


def test_instants_show_in_shanghai_time_and_org_ids_by_name(client, make_user, events):
    from market.audit import services
    from market.extensions import db

    services.record(db.session, "consent.granted", Actor(1, events.id, "subject", "active"),
                    ("consent", 3), {"valid_until": "2027-06-05T03:57:18.088345Z",
                                     "buyer_org_id": events.id})
    db.session.commit()
    _login(client, make_user, lang="en")
    html = client.get("/audit?type=consent").get_data(as_text=True)
    assert "2027-06-05 11:57:18" in html and "2027-06-05T03:57" not in html
    assert f"上海市税务局 (#{events.id})" in html and '<dt title="buyer_org_id">Buyer</dt>' in html
