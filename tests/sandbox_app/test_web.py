"""The sandbox pages through a browser session: the license list, the console, the dashboard
panel, and the JSON API called with the session cookie plus X-CSRFToken (as sandbox.js does)."""

from __future__ import annotations

import re

from tests.conftest import PASSWORD


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match
    return match.group(1)


def login(client, party) -> str:
    page = client.get("/login").get_data(as_text=True)
    r = client.post(
        "/login", data={"email": party.user.email, "password": PASSWORD, "csrf_token": _csrf(page)}
    )
    assert r.status_code == 302
    return _csrf(client.get("/dashboard").get_data(as_text=True))


def test_console_renders_for_the_owning_buyer_only(world, client):
    buyer, stranger = world.party(), world.party()
    world.dataset("loans", dp_budget="2.0")
    lic = world.license(buyer, [("loans", ["district", "amount"])])
    token = login(client, buyer)
    r = client.get(f"/sandbox/{lic.id}?lang=en")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert 'id="sandbox-console"' in page and "js/sandbox.js" in page
    kinds = re.findall(r'data-testid="schema-column" data-kind="(\w+)"', page)
    assert kinds == ["entity_key", "dimension", "measure"]  # only licensed columns (+ the key)
    assert "id_no" not in page and "secret" not in page
    assert 'data-testid="quota-remaining">100<' in page
    # The organization's budget (not the license's) is shown before running, with ranges.
    assert 'data-testid="budget-remaining">2.0000<' in page
    assert "range 0 to 100000" in page
    assert "SELECT district, COUNT(*) AS n" in page  # a starting example

    # The page's JavaScript calls the API with the session and the CSRF header.
    url = f"/api/v1/sandbox/{lic.id}/queries"
    sql = {"sql": "SELECT district, COUNT(*) AS n FROM loans GROUP BY district"}
    assert client.post(url, json=sql).status_code == 400  # no CSRF token: refused
    r = client.post(url, json=sql, headers={"X-CSRFToken": token})
    assert r.status_code == 200 and r.get_json()["quota_remaining"] == 99
    assert client.get(url).get_json()["total"] == 1

    client.post("/logout", data={"csrf_token": token})
    login(client, stranger)
    assert client.get(f"/sandbox/{lic.id}").status_code == 404
    client.post(
        "/logout", data={"csrf_token": _csrf(client.get("/dashboard").get_data(as_text=True))}
    )
    login(client, world.party("operator"))
    assert client.get(f"/sandbox/{lic.id}").status_code == 403
    assert client.get("/sandbox").status_code == 403


def test_a_revoked_license_console_warns_and_the_list_shows_only_active(world, client):
    buyer = world.party()
    active = world.license(buyer, ["loans"])
    revoked = world.license(buyer, ["loans"], status="revoked")
    login(client, buyer)
    page = client.get(f"/sandbox/{revoked.id}").get_data(as_text=True)
    assert 'data-testid="license-not-usable"' in page
    listing = client.get("/sandbox").get_data(as_text=True)
    assert f'data-testid="open-console-{active.id}"' in listing
    assert f"open-console-{revoked.id}" not in listing
    dash = client.get("/dashboard").get_data(as_text=True)
    assert 'data-panel="sandbox"' in dash and f"/sandbox/{active.id}" in dash
    assert 'href="/sandbox"' in dash  # the navigation link


def test_empty_states_say_what_to_do(world, client):
    buyer = world.party()
    login(client, buyer)
    listing = client.get("/sandbox").get_data(as_text=True)
    assert 'data-testid="sandbox-empty"' in listing and "/licenses" in listing
    assert "数据沙箱" in listing  # Chinese by default
