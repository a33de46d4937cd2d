"""The regulator's blacklist: roles, reasons, audit, and ``is_blacklisted``."""

from __future__ import annotations

import sqlalchemy as sa


def test_add_list_remove_with_reasons_and_audit(app, client, market):
    from licenses.blacklist import is_blacklisted
    from market.audit.models import AuditEvent
    from market.extensions import db

    target = market.party("buyer").org
    reg = market.regulator.headers
    r = client.post(
        "/api/v1/blacklist",
        json={"organization_id": target.id, "reason": "forged documents"},
        headers=reg,
    )
    assert r.status_code == 201
    assert r.get_json()["organization"]["id"] == target.id
    assert is_blacklisted(db.session, target.id)
    assert not is_blacklisted(db.session, market.buyer.org.id)
    assert not is_blacklisted(db.session, None)

    r = client.post(
        "/api/v1/blacklist", json={"organization_id": target.id, "reason": "again"}, headers=reg
    )
    assert r.status_code == 409

    for headers in (market.operator.headers, reg):
        page = client.get("/api/v1/blacklist", headers=headers).get_json()
        assert [(e["organization"]["id"], e["reason"]) for e in page["items"]] == [
            (target.id, "forged documents")
        ]
    assert client.get("/api/v1/blacklist", headers=market.buyer.headers).status_code == 403

    r = client.delete(f"/api/v1/blacklist/{target.id}", json={}, headers=reg)
    assert r.status_code == 422
    r = client.delete(
        f"/api/v1/blacklist/{target.id}", json={"reason": "appeal upheld"}, headers=reg
    )
    assert r.status_code == 204
    assert not is_blacklisted(db.session, target.id)
    assert (
        client.delete(
            f"/api/v1/blacklist/{target.id}", json={"reason": "x"}, headers=reg
        ).status_code
        == 404
    )

    events = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.type.like("blacklist.%")).order_by(AuditEvent.seq)
    ).all()
    assert [(e.type, e.data["reason"]) for e in events] == [
        ("blacklist.added", "forged documents"),
        ("blacklist.removed", "appeal upheld"),
    ]


def test_only_the_regulator_changes_it(client, market):
    target = market.party("buyer").org
    for party in (market.operator, market.buyer, market.party("department")):
        r = client.post(
            "/api/v1/blacklist",
            json={"organization_id": target.id, "reason": "x"},
            headers=party.headers,
        )
        assert r.status_code == 403
        r = client.delete(
            f"/api/v1/blacklist/{target.id}", json={"reason": "x"}, headers=party.headers
        )
        assert r.status_code == 403


def test_bad_targets(client, market):
    reg = market.regulator.headers
    for org_id in (999_999, market.operator.org.id, market.regulator.org.id):
        r = client.post(
            "/api/v1/blacklist", json={"organization_id": org_id, "reason": "x"}, headers=reg
        )
        assert r.status_code == 422
    r = client.post(
        "/api/v1/blacklist",
        json={"organization_id": market.buyer.org.id, "reason": "  "},
        headers=reg,
    )
    assert r.status_code == 422
