"""Every page of the licence, quote, consent, audit and governance areas, as every role, in
Chinese: no English sentence in the visible text (codes in tooltips, e-mails, SQL and numbers
are allowed) (#15). Refusal pages (403) are read too: their message is a sentence a person reads.
"""

from __future__ import annotations

from tests.licenses_app.conftest import apply
from tests.licenses_app.test_web import login
from tests.zh_text import CJK, english_sentences, visible_text

AREAS = ("consents", "licenses", "quotes", "audit", "governance", "web")
ROLES = ("buyer", "operator", "regulator", "department", "subject")


def _pages(app, lic_id: int) -> list[str]:
    paths = sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods
        and not rule.arguments
        and not rule.rule.startswith("/api")
        and rule.endpoint.split(".")[0] in AREAS
    )
    return [
        *paths,
        f"/licenses/{lic_id}",
        f"/licenses/{lic_id}/document",
        "/audit?type=license",
    ]


def _active_license(client, market) -> dict:
    """A paid license whose data (title, columns, purpose) is Chinese, as real data is: the
    walk looks for English in the interface, not in what people typed."""
    dataset = market.dataset(
        columns=("统一社会信用代码", "区县", "行业", "营业收入"), title="企业纳税信用"
    )
    quote = market.quote([(dataset, 100_000)])
    lic = apply(client, market, quote, statement="中小企业信用风险评分").get_json()
    pay = client.post(
        f"/api/v1/licenses/{lic['id']}/payments",
        json={"provider": "invoice"},
        headers=market.buyer.headers,
    ).get_json()
    r = client.post(
        f"/api/v1/payments/{pay['payment_id']}/settle",
        json={"bank_reference": "BANK-1"},
        headers=market.operator.headers,
    )
    assert r.status_code == 200, r.get_json()
    return client.get(f"/api/v1/licenses/{lic['id']}", headers=market.buyer.headers).get_json()


def test_every_page_as_every_role_is_chinese(app, client, market):
    lic = _active_license(client, market)
    read = 0
    for role in ROLES:
        party = (
            getattr(market, role)
            if role in ("buyer", "operator", "regulator")
            else (market.party(role))
        )
        login(client, party)
        for path in _pages(app, lic["id"]):
            r = client.get(path)
            if r.status_code in (301, 302, 404) or "html" not in r.content_type:
                continue
            text = visible_text(r.get_data(as_text=True))
            where = f"{role} {path} ({r.status_code})"
            assert CJK.search(text), where
            assert not english_sentences(text), (where, english_sentences(text)[:10])
            read += 1
        client.get("/logout")
    assert read > 40  # the walk did read pages, not only redirects


def test_audit_page_names_event_types_and_keeps_the_code_in_a_tooltip(app, client, market):
    _active_license(client, market)
    login(client, market.regulator)
    html = client.get("/audit?type=license").get_data(as_text=True)
    assert 'title="license.activated"' in html and "许可生效" in html
    assert "<code>license.activated</code>" not in html


def test_label_names_follow_the_locale(app):
    from flask_babel import force_locale

    from market.web.labels import label_filter, name

    with app.test_request_context("/"):
        with force_locale("zh"):
            assert name("event", "sandbox.query") == "沙箱查询"
            assert name("category", "environment") == "生态环境"
            assert name("license_status", "suspended") == "已暂停"
            assert name("rule", "no_valid_consent") == "没有有效授权"
            assert name("event", "no.such_code") == "no.such_code"
            assert (
                label_filter("<x>", "event")
                == '<span class="code-label" title="&lt;x&gt;">&lt;x&gt;</span>'
            )
        with force_locale("en"):
            assert name("event", "sandbox.query") == "Sandbox query"
