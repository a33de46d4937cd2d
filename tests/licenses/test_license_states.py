from __future__ import annotations

import itertools

import pytest

from licenses.errors import IllegalTransition
from licenses.states import (
    TERMINAL_STATUSES,
    TRANSITIONS,
    LicenseEvent,
    LicenseStatus,
    allowed_events,
    grants_access,
    transition,
)

# Written out from the specification, independently of licenses.states.TRANSITIONS.
LEGAL = {
    ("pending_review", "approve"): "awaiting_payment",
    ("pending_review", "reject"): "rejected",
    ("awaiting_payment", "pay_settled"): "active",
    ("active", "expire"): "expired",
    ("suspended", "expire"): "expired",
    ("pending_review", "revoke"): "revoked",
    ("awaiting_payment", "revoke"): "revoked",
    ("active", "revoke"): "revoked",
    ("suspended", "revoke"): "revoked",
    ("active", "suspend"): "suspended",
    ("suspended", "reinstate"): "active",
}
ALL_PAIRS = list(
    itertools.product([s.value for s in LicenseStatus], [e.value for e in LicenseEvent])
)
ILLEGAL = [pair for pair in ALL_PAIRS if pair not in LEGAL]


def test_enums_have_the_api_values() -> None:
    assert [s.value for s in LicenseStatus] == [
        "pending_review",
        "awaiting_payment",
        "active",
        "expired",
        "revoked",
        "suspended",
        "rejected",
    ]
    assert {e.value for e in LicenseEvent} == {
        "approve",
        "reject",
        "pay_settled",
        "expire",
        "revoke",
        "suspend",
        "reinstate",
    }


@pytest.mark.parametrize(("current", "event"), sorted(LEGAL))
def test_legal_transitions(current: str, event: str) -> None:
    new = transition(current, event)
    assert new == LEGAL[(current, event)]
    assert isinstance(new, LicenseStatus)
    assert transition(LicenseStatus(current), LicenseEvent(event)) is new


@pytest.mark.parametrize(("current", "event"), ILLEGAL)
def test_illegal_transitions_raise(current: str, event: str) -> None:
    with pytest.raises(IllegalTransition) as info:
        transition(current, event)
    assert (info.value.current, info.value.event) == (current, event)
    assert current in str(info.value) and event in str(info.value)


def test_table_is_exactly_the_specification() -> None:
    assert {(s.value, e.value): n.value for (s, e), n in TRANSITIONS.items()} == LEGAL
    assert len(LEGAL) + len(ILLEGAL) == 49


@pytest.mark.parametrize(
    ("current", "event"), [("paid", "approve"), ("active", "cancel"), ("", "")]
)
def test_unknown_names_are_value_errors(current: str, event: str) -> None:
    with pytest.raises(ValueError):
        transition(current, event)


def test_terminal_statuses() -> None:
    assert TERMINAL_STATUSES == {"expired", "revoked", "rejected"}
    for status in TERMINAL_STATUSES:
        assert allowed_events(status) == frozenset()


@pytest.mark.parametrize("status", [s.value for s in LicenseStatus])
def test_allowed_events_match_the_table(status: str) -> None:
    assert allowed_events(status) == {e for (s, e) in LEGAL if s == status}


def test_only_active_grants_access() -> None:
    assert [s.value for s in LicenseStatus if grants_access(s)] == ["active"]
