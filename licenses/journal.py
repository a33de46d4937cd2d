"""Double-entry journals for invoices, settlements, refunds and payouts.

Each function returns a :class:`Journal`: a list of ``(account, debit_fen, credit_fen)`` lines
that balances, checked when it is built. The database layer stores the lines as they are.

Chart of accounts (the operator's books; the operator collects on behalf of departments):

======================================  =========  =============================================
account                                 kind       meaning
======================================  =========  =============================================
``cash``                                asset      the operator's collection account
``receivable:buyer:{id}``               asset      invoiced and not yet paid by the buyer
``deferred:sales``                      liability  invoiced, not yet paid, so nothing is owed to
                                                   departments and no fee is earned yet
``payable:department:{id}``             liability  owed to a providing department
``revenue:platform_fee``                revenue    the operator's fee
``refunds``                             contra-rev the operator's fee given back in refunds
``credit_notes:buyer:{id}``             liability  refunds promised by credit note, not yet paid
======================================  =========  =============================================

Why ``deferred:sales`` and not revenue at invoice time: a licence only becomes active when
its payment settles, so at invoice time the buyer owes money for a right not yet granted.
The invoice is recorded as a receivable against deferred sales; on settlement the deferral
is released into the split. A licence is a right to use data as it exists, granted at a point
in time (IFRS 15 B56–B58 / CAS 14), so the fee is recognised in full at settlement rather
than spread over the term. A Stripe payment has no invoice: it settles straight from cash.

A refund reverses the split: departments' payables and the fee (through ``refunds``) are
debited by the refund split, and cash (Stripe) or a credit note (invoice) is credited. A
department already paid out ends with a debit balance on its payable, which is netted from
its next payout.

Zero-amount lines are left out, so a free licence's settlement is an empty (balanced) journal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from licenses.errors import UnbalancedJournal
from licenses.split import DepartmentId, Split
from market.i18n import N_

CASH = "cash"
DEFERRED_SALES = "deferred:sales"
PLATFORM_FEE_REVENUE = "revenue:platform_fee"
REFUNDS = "refunds"


def receivable(buyer_id: int | str) -> str:
    return f"receivable:buyer:{buyer_id}"


def payable(department_id: DepartmentId) -> str:
    return f"payable:department:{department_id}"


def credit_note(buyer_id: int | str) -> str:
    return f"credit_notes:buyer:{buyer_id}"


class JournalKind(StrEnum):
    INVOICE_ISSUED = "invoice_issued"
    INVOICE_VOIDED = "invoice_voided"
    PAYMENT_SETTLED = "payment_settled"
    REFUND_ISSUED = "refund_issued"
    CREDIT_NOTE_PAID = "credit_note_paid"
    PAYOUT = "payout"


class JournalLine(NamedTuple):
    account: str
    debit: int
    credit: int


def _check_line(line: JournalLine) -> None:
    if not isinstance(line.account, str) or not line.account:
        raise UnbalancedJournal(N_("a journal line needs an account name"))
    for value in (line.debit, line.credit):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UnbalancedJournal(
                N_("%(account)s: amounts must be non-negative integer fen"), account=line.account
            )
    if line.debit and line.credit:
        raise UnbalancedJournal(
            N_("%(account)s: a line is either a debit or a credit"), account=line.account
        )


@dataclass(frozen=True)
class Journal:
    """A balanced set of lines recorded together, about one business ``reference``.

    Raises :class:`UnbalancedJournal` on construction if debits ≠ credits or a line is
    malformed (negative, non-integer, or both debit and credit).
    """

    kind: JournalKind
    reference: str
    lines: tuple[JournalLine, ...]

    def __post_init__(self) -> None:
        lines = tuple(JournalLine(*line) for line in self.lines)
        object.__setattr__(self, "lines", lines)
        for line in lines:
            _check_line(line)
        debits = sum(line.debit for line in lines)
        credits = sum(line.credit for line in lines)
        if debits != credits:
            raise UnbalancedJournal(
                N_("%(kind)s %(reference)s: debits %(debits)s ≠ credits %(credits)s"),
                kind=str(self.kind), reference=self.reference, debits=debits, credits=credits,
            )

    @property
    def amount(self) -> int:
        """Total debits (= total credits)."""
        return sum(line.debit for line in self.lines)


def _journal(kind: JournalKind, reference: str, lines: Iterable[tuple[str, int, int]]) -> Journal:
    return Journal(kind, reference, tuple(JournalLine(*x) for x in lines if x[1] or x[2]))


def _split_credits(split: Split) -> list[tuple[str, int, int]]:
    lines = [(payable(dept), 0, amount) for dept, amount in split.departments.items()]
    lines.append((PLATFORM_FEE_REVENUE, 0, split.operator_fee))
    return lines


def invoice_issued(reference: str, buyer_id: int | str, amount_fen: int) -> Journal:
    """Dr ``receivable:buyer``, Cr ``deferred:sales``."""
    return _journal(
        JournalKind.INVOICE_ISSUED,
        reference,
        [(receivable(buyer_id), amount_fen, 0), (DEFERRED_SALES, 0, amount_fen)],
    )


def invoice_voided(reference: str, buyer_id: int | str, amount_fen: int) -> Journal:
    """Cancels an unpaid invoice: the reverse of :func:`invoice_issued`."""
    return _journal(
        JournalKind.INVOICE_VOIDED,
        reference,
        [(DEFERRED_SALES, amount_fen, 0), (receivable(buyer_id), 0, amount_fen)],
    )


def payment_settled(
    reference: str, buyer_id: int | str, split: Split, *, invoiced: bool
) -> Journal:
    """A payment of ``split.total`` arrives and is split.

    With ``invoiced=True``: Dr cash, Cr receivable; Dr deferred:sales, Cr each department's
    payable and the platform fee. With ``invoiced=False`` (Stripe): Dr cash, Cr the split.
    """
    total = split.total
    if invoiced:
        head = [
            (CASH, total, 0),
            (receivable(buyer_id), 0, total),
            (DEFERRED_SALES, total, 0),
        ]
    else:
        head = [(CASH, total, 0)]
    return _journal(JournalKind.PAYMENT_SETTLED, reference, head + _split_credits(split))


def refund_issued(
    reference: str, buyer_id: int | str, refund: Split, *, via_credit_note: bool
) -> Journal:
    """Reverse ``refund`` (from :func:`licenses.refunds.split_refund`) across the parties.

    Dr each department's payable, Dr ``refunds`` for the fee part; Cr ``cash`` (a Stripe
    refund) or Cr ``credit_notes:buyer`` (an invoice refund, paid later by bank transfer).
    """
    lines = [(payable(dept), amount, 0) for dept, amount in refund.departments.items()]
    lines.append((REFUNDS, refund.operator_fee, 0))
    target = credit_note(buyer_id) if via_credit_note else CASH
    lines.append((target, 0, refund.total))
    return _journal(JournalKind.REFUND_ISSUED, reference, lines)


def credit_note_paid(reference: str, buyer_id: int | str, amount_fen: int) -> Journal:
    """The operator pays a credit note back: Dr ``credit_notes:buyer``, Cr ``cash``."""
    return _journal(
        JournalKind.CREDIT_NOTE_PAID,
        reference,
        [(credit_note(buyer_id), amount_fen, 0), (CASH, 0, amount_fen)],
    )


def payout(reference: str, department_id: DepartmentId, amount_fen: int) -> Journal:
    """The operator pays a department: Dr ``payable:department``, Cr ``cash``."""
    return _journal(
        JournalKind.PAYOUT,
        reference,
        [(payable(department_id), amount_fen, 0), (CASH, 0, amount_fen)],
    )


def balances(journals: Iterable[Journal]) -> dict[str, int]:
    """Debit-minus-credit balance per account (liabilities and revenue come out negative)."""
    totals: dict[str, int] = {}
    for journal in journals:
        for account, debit, credit in journal.lines:
            totals[account] = totals.get(account, 0) + debit - credit
    return dict(sorted(totals.items()))


def department_balances(account_balances: Mapping[str, int]) -> dict[str, int]:
    """What the operator owes each department (credit balance, so positive = owed)."""
    prefix = "payable:department:"
    return {
        account.removeprefix(prefix): -balance
        for account, balance in account_balances.items()
        if account.startswith(prefix)
    }
