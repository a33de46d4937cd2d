"""Each permission check on its own: role and object, table-driven."""

import pytest

from market.accounts import permissions as perm
from market.accounts.actor import ANONYMOUS, Actor

ROLES = ["department", "buyer", "operator", "regulator", "subject"]


def actor(role: str, org_id: int = 1, status: str = "active") -> Actor:
    return Actor(user_id=10, org_id=org_id, role=role, org_status=status)


@pytest.mark.parametrize(
    "check, allowed",
    [
        (perm.can_create_organization, {"operator"}),
        (perm.can_list_organizations, {"operator", "regulator"}),
        (perm.can_list_users, {"operator", "regulator"}),
        (perm.can_admit_organization, {"operator"}),
        (perm.can_read_audit, {"operator", "regulator"}),
        (perm.can_export_audit, {"operator", "regulator"}),
    ],
)
@pytest.mark.parametrize("role", ROLES)
def test_role_checks(check, allowed, role):
    assert check(actor(role)) is (role in allowed)
    assert check(ANONYMOUS) is False


@pytest.mark.parametrize("role", ROLES)
def test_view_organization_is_per_object(role):
    own, other = 1, 2
    assert perm.can_view_organization(actor(role, org_id=own), own)
    assert perm.can_view_organization(actor(role, org_id=own), other) is (role in ("operator", "regulator"))


def test_pending_operator_cannot_act():
    assert not perm.can_create_organization(actor("operator", status="pending"))
    assert not perm.can_create_user(actor("operator", status="pending"), 1)


def test_require_raises_forbidden():
    from market.errors import Forbidden

    with pytest.raises(Forbidden):
        perm.require(False)
    perm.require(True)


def test_denials_are_audited(app, client, as_role):
    import sqlalchemy as sa

    from market.audit.models import AuditEvent
    from market.extensions import db

    buyer, h = as_role("buyer")
    r = client.post("/api/v1/organizations", headers=h, json={"name": "n", "kind": "buyer", "credit_code": "91350100M000100Y43"})
    assert r.status_code == 403
    denied = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type == "access.denied")).all()
    assert denied and denied[-1].actor_user_id == buyer.id
    assert denied[-1].data["path"] == "/api/v1/organizations"
