"""The zh-leak walk over the areas the licence walk (tests/licenses_app/test_i18n_pages.py)
does not read: datasets, the sandbox, accounts, and the API reference page, as every role
(#15). No English sentence in the visible text of a Chinese page."""

from __future__ import annotations

from tests.licenses_app.conftest import market  # noqa: F401 - shared fixture
from tests.licenses_app.test_i18n_pages import ROLES, _active_license
from tests.licenses_app.test_web import login
from tests.zh_text import CJK, english_sentences, visible_text

AREAS = ("datasets", "sandbox", "accounts", "catalog", "insights")


def _pages(app) -> list[str]:
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods
        and not rule.arguments
        and not rule.rule.startswith("/api")
        and rule.endpoint.split(".")[0] in AREAS
    ) + ["/api/v1/docs"]


def test_other_areas_pages_as_every_role_are_chinese(app, client, market):  # noqa: F811
    _active_license(client, market)
    read, leaks = 0, []
    for role in ROLES:
        party = getattr(market, role) if role in ("buyer", "operator", "regulator") else (
            market.party(role)
        )
        login(client, party)
        for path in _pages(app):
            r = client.get(path)
            if r.status_code in (301, 302, 404) or "html" not in r.content_type:
                continue
            text = visible_text(r.get_data(as_text=True))
            where = f"{role} {path} ({r.status_code})"
            if not CJK.search(text) or english_sentences(text):
                leaks.append((where, english_sentences(text)[:6]))
            read += 1
        client.get("/logout")
    assert not leaks, leaks
    assert read > 20
