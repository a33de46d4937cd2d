"""The sandbox's permission checks, each on its own: role and object."""

from __future__ import annotations

import pytest

from market.accounts.actor import Actor
from sandbox import permissions as perm

BUYER = Actor(1, 10, "buyer", "active")
OTHER_BUYER = Actor(2, 11, "buyer", "active")
OPERATOR = Actor(3, 20, "operator", "active")
REGULATOR = Actor(4, 30, "regulator", "active")
DEPARTMENT = Actor(5, 40, "department", "active")
SYSTEM = Actor.system("cli")


@pytest.mark.parametrize(
    ("actor", "run", "history", "console"),
    [
        (BUYER, True, True, True),
        (OTHER_BUYER, True, False, False),
        (OPERATOR, False, True, False),
        (REGULATOR, False, True, False),
        (DEPARTMENT, False, False, False),
        (SYSTEM, False, False, False),
    ],
)
def test_checks_per_role_and_license_owner(actor, run, history, console):
    owner_org = 10
    assert perm.can_run_queries(actor) is run
    assert perm.can_read_history(actor, owner_org) is history
    assert perm.can_open_console(actor, owner_org) is console
