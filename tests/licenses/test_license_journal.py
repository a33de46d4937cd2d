from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from licenses import journal as jr
from licenses.errors import UnbalancedJournal
from licenses.journal import Journal, JournalKind, JournalLine
from licenses.refunds import split_refund
from licenses.split import Split, split_payment

SPLIT = Split(150, {1: 600, 2: 250})


def test_invoice_issued() -> None:
    j = jr.invoice_issued("INV-202501-000001", 7, 1000)
    assert j.kind == JournalKind.INVOICE_ISSUED
    assert j.lines == (
        ("receivable:buyer:7", 1000, 0),
        ("deferred:sales", 0, 1000),
    )
    assert j.amount == 1000


def test_invoice_voided_reverses_the_invoice() -> None:
    issued = jr.invoice_issued("INV-1", 7, 1000)
    voided = jr.invoice_voided("INV-1", 7, 1000)
    assert all(v == 0 for v in jr.balances([issued, voided]).values())


def test_settlement_of_an_invoice() -> None:
    j = jr.payment_settled("pay-1", 7, SPLIT, invoiced=True)
    assert j.lines == (
        ("cash", 1000, 0),
        ("receivable:buyer:7", 0, 1000),
        ("deferred:sales", 1000, 0),
        ("payable:department:1", 0, 600),
        ("payable:department:2", 0, 250),
        ("revenue:platform_fee", 0, 150),
    )


def test_settlement_without_invoice() -> None:
    j = jr.payment_settled("pi_123", 7, SPLIT, invoiced=False)
    assert j.lines == (
        ("cash", 1000, 0),
        ("payable:department:1", 0, 600),
        ("payable:department:2", 0, 250),
        ("revenue:platform_fee", 0, 150),
    )


def test_the_split_entries_sum_to_the_payment() -> None:
    split = split_payment(99_999, Fraction(3, 20), [(1, 5, [(1, 1), (2, 1), (3, 1)])])
    j = jr.payment_settled("pi_1", 7, split, invoiced=False)
    credits = [line for line in j.lines if line.credit]
    assert len(credits) == 4  # one per department plus the operator's fee
    assert sum(line.credit for line in credits) == 99_999


def test_free_licence_settles_to_an_empty_journal() -> None:
    split = split_payment(0, Fraction(1, 10), [(1, 0, [(1, 1)])])
    assert jr.payment_settled("free", 7, split, invoiced=False).lines == ()


@pytest.mark.parametrize(
    ("via_credit_note", "target"), [(False, "cash"), (True, "credit_notes:buyer:7")]
)
def test_refund_reverses_the_parties(via_credit_note: bool, target: str) -> None:
    refund = split_refund(100, SPLIT)
    j = jr.refund_issued("re_1", 7, refund, via_credit_note=via_credit_note)
    assert j.lines == (
        ("payable:department:1", 60, 0),
        ("payable:department:2", 25, 0),
        ("refunds", 15, 0),
        (target, 0, 100),
    )


def test_credit_note_paid_and_payout() -> None:
    assert jr.credit_note_paid("CN-1", 7, 40).lines == (
        ("credit_notes:buyer:7", 40, 0),
        ("cash", 0, 40),
    )
    assert jr.payout("PO-1", 2, 250).lines == (("payable:department:2", 250, 0), ("cash", 0, 250))


@pytest.mark.parametrize(
    "lines",
    [
        [("cash", 10, 0), ("payable:department:1", 0, 9)],
        [("cash", 10, 0)],
        [("cash", -10, 0), ("x", 0, -10)],
        [("cash", 10, 10)],
        [("cash", 1.5, 0), ("x", 0, 1.5)],
        [("cash", True, 0), ("x", 0, True)],
        [("", 1, 0), ("x", 0, 1)],
    ],
)
def test_malformed_journals_are_refused(lines) -> None:
    with pytest.raises(UnbalancedJournal):
        Journal(JournalKind.PAYOUT, "bad", tuple(lines))


@pytest.mark.parametrize("amount", [-1, 1.5])
def test_bad_amounts_are_refused(amount) -> None:
    with pytest.raises(UnbalancedJournal):
        jr.invoice_issued("INV-1", 7, amount)


def test_lines_are_plain_tuples() -> None:
    j = Journal(JournalKind.PAYOUT, "ok", [("cash", 0, 5), ("payable:department:1", 5, 0)])
    assert j.lines[0] == JournalLine("cash", 0, 5) == ("cash", 0, 5)
    assert isinstance(j.lines, tuple)


def test_department_balances() -> None:
    ledger = [
        jr.payment_settled("p", 7, SPLIT, invoiced=False),
        jr.payout("po", 1, 500),
    ]
    assert jr.department_balances(jr.balances(ledger)) == {"1": 100, "2": 250}


# --- random flows --------------------------------------------------------------------------


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_random_flows_keep_the_books_consistent(data) -> None:
    """Invoices, settlements, refunds, credit notes and payouts in random order.

    Invariants checked after every step:
    - the ledger balances (sum of all balances is 0);
    - department payables + payouts + net fees == settled − refunded;
    - cash == settled − cash refunds − credit notes paid − payouts;
    - receivables == deferred sales == open invoices;
    - credit-note liabilities == credit notes issued − paid.
    """
    ledger: list[Journal] = []
    payments: list[dict] = []
    settled = refunded = cash_refunds = notes_issued = notes_paid = paid_out = 0
    open_invoices = 0

    for step in range(data.draw(st.integers(1, 25), label="steps")):
        action = data.draw(
            st.sampled_from(["new", "settle", "void", "refund", "pay_note", "payout"]),
            label="action",
        )
        balances = jr.balances(ledger)
        if action == "new":
            total = data.draw(st.integers(0, 10**6), label="total")
            share = data.draw(st.fractions(0, 1, max_denominator=50), label="share")
            depts = data.draw(
                st.lists(st.tuples(st.integers(1, 5), st.integers(1, 9)), min_size=1, max_size=3),
                label="departments",
            )
            invoiced = data.draw(st.booleans(), label="invoiced")
            payment = {
                "ref": f"pay-{step}",
                "buyer": data.draw(st.integers(1, 3), label="buyer"),
                "split": split_payment(total, share, [(1, max(total, 1), depts)]),
                "invoiced": invoiced,
                "state": "open",
                "refunded": None,
            }
            payments.append(payment)
            if invoiced:
                ledger.append(jr.invoice_issued(payment["ref"], payment["buyer"], total))
                open_invoices += total
        elif action in ("settle", "void"):
            open_ones = [p for p in payments if p["state"] == "open"]
            if not open_ones:
                continue
            p = data.draw(st.sampled_from(open_ones), label="payment")
            total = p["split"].total
            if action == "void":
                if not p["invoiced"]:
                    continue
                ledger.append(jr.invoice_voided(p["ref"], p["buyer"], total))
                p["state"] = "void"
            else:
                ledger.append(
                    jr.payment_settled(p["ref"], p["buyer"], p["split"], invoiced=p["invoiced"])
                )
                p["state"] = "settled"
                p["refunded"] = Split(0, {d: 0 for d in p["split"].departments})
                settled += total
            if p["invoiced"]:
                open_invoices -= total
        elif action == "refund":
            done = [p for p in payments if p["state"] == "settled"]
            if not done:
                continue
            p = data.draw(st.sampled_from(done), label="payment")
            left = p["split"].total - p["refunded"].total
            amount = data.draw(st.integers(0, left), label="refund")
            part = split_refund(amount, p["split"], p["refunded"])
            p["refunded"] = Split(
                p["refunded"].operator_fee + part.operator_fee,
                {d: p["refunded"].departments[d] + v for d, v in part.departments.items()},
            )
            ledger.append(
                jr.refund_issued(f"re-{step}", p["buyer"], part, via_credit_note=p["invoiced"])
            )
            refunded += amount
            if p["invoiced"]:
                notes_issued += amount
            else:
                cash_refunds += amount
        elif action == "pay_note":
            owed = {a: -b for a, b in balances.items() if a.startswith("credit_notes:") and b < 0}
            if not owed:
                continue
            account = data.draw(st.sampled_from(sorted(owed)), label="note")
            amount = data.draw(st.integers(1, owed[account]), label="paid")
            ledger.append(jr.credit_note_paid(f"cn-{step}", account.rsplit(":", 1)[1], amount))
            notes_paid += amount
        else:
            owed = {d: v for d, v in jr.department_balances(balances).items() if v > 0}
            if not owed:
                continue
            dept = data.draw(st.sampled_from(sorted(owed)), label="department")
            amount = data.draw(st.integers(1, owed[dept]), label="payout")
            ledger.append(jr.payout(f"po-{step}", dept, amount))
            paid_out += amount

        b = jr.balances(ledger)
        assert sum(b.values()) == 0
        payables = sum(jr.department_balances(b).values())
        net_fees = -b.get(jr.PLATFORM_FEE_REVENUE, 0) - b.get(jr.REFUNDS, 0)
        assert payables + paid_out + net_fees == settled - refunded
        assert b.get(jr.CASH, 0) == settled - cash_refunds - notes_paid - paid_out
        receivables = sum(v for a, v in b.items() if a.startswith("receivable:"))
        assert receivables == -b.get(jr.DEFERRED_SALES, 0) == open_invoices
        notes = -sum(v for a, v in b.items() if a.startswith("credit_notes:"))
        assert notes == notes_issued - notes_paid
