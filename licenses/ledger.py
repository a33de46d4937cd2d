"""The ledger in the database: persisting :mod:`licenses.journal` journals, balances, monthly
statements per department, and payouts.

Lines are only ever inserted. A journal's ``(kind, reference)`` is unique, so a settlement,
refund or payout is written at most once even if two transactions race past every other
check; the loser gets :class:`market.errors.Conflict`.

**Statement periods** are calendar months in Asia/Shanghai time (UTC+8, no daylight saving):
the departments and the operator keep their books in Shanghai, so a payment settled at
2025-03-31 23:30 Shanghai time (15:30 UTC) belongs to March, as it does on their bank
statements. ``period_bounds`` gives the UTC instants of a period's start and end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from licenses import journal as jr
from licenses import permissions as perm
from licenses.models import LedgerJournal, LedgerLine
from licenses.split import Split
from market.accounts.actor import Actor
from market.accounts.models import Organization
from market.audit import services as audit
from market.db import utcnow
from market.errors import Conflict, Forbidden, ValidationFailed
from pricing import InvalidRevenueInput
from pricing import parse_period as pricing_parse_period

STATEMENT_TZ = ZoneInfo("Asia/Shanghai")
_PAYABLE_PREFIX = "payable:department:"
MAX_PAYOUT_REFERENCE = 120


def transfer_reference(
    value: str | None, *, field: str, max_length: int, message: str, hint: str
) -> str:
    """A bank transfer's reference as recorded in the books: stripped, 1 to ``max_length``
    characters. Raises ValidationFailed(``message``, {field: [hint]}) otherwise."""
    reference = (value or "").strip()
    if not reference or len(reference) > max_length:
        raise ValidationFailed(message, {field: [hint]})
    return reference


def department_of(account: str) -> int | None:
    """The department id of a ``payable:department:{id}`` account, else None."""
    if account.startswith(_PAYABLE_PREFIX):
        suffix = account.removeprefix(_PAYABLE_PREFIX)
        if suffix.isdigit():
            return int(suffix)
    return None


def post(
    session: Session,
    journal: jr.Journal,
    *,
    actor: Actor | None = None,
    posted_at: dt.datetime | None = None,
    license_id: int | None = None,
    payment_id: int | None = None,
    refund_id: int | None = None,
    department_id: int | None = None,
    memo: str | None = None,
) -> LedgerJournal:
    """Persist a balanced journal (already checked by :class:`licenses.journal.Journal`).

    Raises Conflict if a journal of the same kind and reference exists.
    """
    row = LedgerJournal(
        kind=str(journal.kind),
        reference=journal.reference,
        posted_at=posted_at or utcnow(),
        license_id=license_id,
        payment_id=payment_id,
        refund_id=refund_id,
        department_id=department_id,
        memo=memo,
        created_by_id=actor.user_id if actor else None,
    )
    row.lines = [
        LedgerLine(
            account=line.account,
            debit_fen=line.debit,
            credit_fen=line.credit,
            department_id=department_of(line.account),
        )
        for line in journal.lines
    ]
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise Conflict(
            _(
                "The ledger already holds a %(kind)s journal for %(reference)s.",
                kind=journal.kind,
                reference=journal.reference,
            )
        ) from None
    return row


def journal_exists(session: Session, kind: jr.JournalKind, reference: str) -> bool:
    return (
        session.scalar(
            sa.select(LedgerJournal.id).where(
                LedgerJournal.kind == str(kind), LedgerJournal.reference == reference
            )
        )
        is not None
    )


# ------------------------------------------------------------------ splits back from the ledger


def _split_from_lines(lines: Iterable[tuple[str, int, int]], *, debit_side: bool) -> Split:
    fee = 0
    departments: dict[int, int] = {}
    for account, debit, credit in lines:
        amount = debit if debit_side else credit
        dept = department_of(account)
        if dept is not None:
            departments[dept] = departments.get(dept, 0) + amount
        elif account == (jr.REFUNDS if debit_side else jr.PLATFORM_FEE_REVENUE):
            fee += amount
    return Split(operator_fee=fee, departments=dict(sorted(departments.items())))


def _journal_lines(session: Session, kind: jr.JournalKind, payment_id: int) -> list[tuple]:
    return session.execute(
        sa.select(LedgerLine.account, LedgerLine.debit_fen, LedgerLine.credit_fen)
        .join(LedgerJournal)
        .where(LedgerJournal.kind == str(kind), LedgerJournal.payment_id == payment_id)
    ).all()


def settled_split(session: Session, payment_id: int) -> Split:
    """How a settled payment was split, read back from its ``payment_settled`` journal.

    Departments listed with 0 fen in the original split have no line (zero lines are left
    out), which does not matter for refunds: they have nothing to give back.
    """
    return _split_from_lines(
        _journal_lines(session, jr.JournalKind.PAYMENT_SETTLED, payment_id), debit_side=False
    )


def refunded_split(session: Session, payment_id: int) -> Split:
    """What earlier refunds of the payment took from each party."""
    return _split_from_lines(
        _journal_lines(session, jr.JournalKind.REFUND_ISSUED, payment_id), debit_side=True
    )


# ------------------------------------------------------------------------------- balances


def account_balances(session: Session) -> dict[str, int]:
    """Debit-minus-credit per account over the whole ledger."""
    rows = session.execute(
        sa.select(
            LedgerLine.account,
            sa.func.sum(LedgerLine.debit_fen) - sa.func.sum(LedgerLine.credit_fen),
        ).group_by(LedgerLine.account)
    ).all()
    return {account: int(balance) for account, balance in sorted(rows)}


def totals(session: Session) -> tuple[int, int]:
    """(total debits, total credits) over the whole ledger: equal when it balances."""
    debit, credit = session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(LedgerLine.debit_fen), 0),
            sa.func.coalesce(sa.func.sum(LedgerLine.credit_fen), 0),
        )
    ).one()
    return int(debit), int(credit)


def department_payable(
    session: Session, department_id: int, before: dt.datetime | None = None
) -> int:
    """What the operator owes the department (credits minus debits on its payable account),
    over the whole ledger or over journals posted before ``before``."""
    stmt = sa.select(
        sa.func.coalesce(sa.func.sum(LedgerLine.credit_fen - LedgerLine.debit_fen), 0)
    ).where(LedgerLine.department_id == department_id)
    if before is not None:
        stmt = stmt.join(LedgerJournal).where(LedgerJournal.posted_at < before)
    return int(session.scalar(stmt))


# ----------------------------------------------------------------------------- statements


def parse_period(period: str) -> tuple[int, int]:
    """``"YYYY-MM"`` → (year, month), by ``pricing.parse_period`` (which also bounds the
    year); raises ValidationFailed otherwise."""
    try:
        return pricing_parse_period(period or "")
    except InvalidRevenueInput as exc:
        raise ValidationFailed(_("The period is not valid."), exc.to_errors()) from None


def period_bounds(period: str) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants where the Asia/Shanghai month ``period`` starts and ends (exclusive)."""
    year, month = parse_period(period)
    start = dt.datetime(year, month, 1, tzinfo=STATEMENT_TZ)
    end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=STATEMENT_TZ)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def period_of(moment: dt.datetime) -> str:
    """The statement period (Asia/Shanghai month) an instant falls in."""
    return moment.astimezone(STATEMENT_TZ).strftime("%Y-%m")


def shift_period(period: str, months: int) -> str:
    year, month = parse_period(period)
    index = year * 12 + (month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@dataclass
class StatementEntry:
    journal_id: int
    posted_at: dt.datetime
    kind: str
    reference: str
    license_id: int | None
    #: Positive: owed to the department (revenue); negative: refunds and payouts.
    amount: int


@dataclass
class Statement:
    department_id: int
    department_name: str
    period: str
    opening_balance: int = 0
    revenue: int = 0
    refunds: int = 0
    payouts: int = 0
    entries: list[StatementEntry] = field(default_factory=list)

    @property
    def closing_balance(self) -> int:
        return self.opening_balance + self.revenue - self.refunds - self.payouts


def statement(session: Session, department: Organization, period: str) -> Statement:
    """The department's statement for ``period`` (Asia/Shanghai month), from its ledger lines.

    Revenue is the credits from settlements, refunds and payouts the debits from refund and
    payout journals; the closing balance is what the operator owes at the end of the month.
    """
    start, end = period_bounds(period)
    result = Statement(department.id, department.name, period)
    result.opening_balance = department_payable(session, department.id, before=start)
    rows = session.execute(
        sa.select(LedgerJournal, LedgerLine.debit_fen, LedgerLine.credit_fen)
        .join(LedgerLine, LedgerLine.journal_id == LedgerJournal.id)
        .where(
            LedgerLine.department_id == department.id,
            LedgerJournal.posted_at >= start,
            LedgerJournal.posted_at < end,
        )
        .order_by(LedgerJournal.posted_at, LedgerJournal.id, LedgerLine.id)
    ).all()
    for journal, debit, credit in rows:
        amount = credit - debit
        if journal.kind == jr.JournalKind.PAYOUT:
            result.payouts += debit - credit
        elif journal.kind == jr.JournalKind.REFUND_ISSUED:
            result.refunds += debit - credit
        else:
            result.revenue += amount
        result.entries.append(
            StatementEntry(
                journal.id,
                journal.posted_at,
                journal.kind,
                journal.reference,
                journal.license_id,
                amount,
            )
        )
    return result


def statement_departments(
    session: Session, actor: Actor, department_id: int | None = None
) -> sa.Select:
    """The departments whose statements ``actor`` may read, as a query (for pagination).

    Raises Forbidden if the actor may read none, or asks for another department's.
    """
    stmt = sa.select(Organization).where(Organization.kind == "department")
    if actor.role == "department":
        if department_id is not None and department_id != actor.org_id:
            raise Forbidden(_("A department reads only its own statement."))
        department_id = actor.org_id
    elif actor.role not in ("operator", "regulator") or not actor.is_user:
        raise Forbidden(_("Only departments, the operator and the regulator read statements."))
    if department_id is not None:
        if not perm.can_read_statement(actor, department_id):
            raise Forbidden(_("A department reads only its own statement."))
        stmt = stmt.where(Organization.id == department_id)
    return stmt.order_by(Organization.id)


def monthly_revenue(
    session: Session, department_id: int, last_period: str, months: int = 12
) -> list[tuple[str, int]]:
    """``[(period, revenue net of refunds)]`` for ``months`` periods ending at ``last_period``
    (for the revenue chart)."""
    first = shift_period(last_period, -(months - 1))
    start, _end = period_bounds(first)
    _start, end = period_bounds(last_period)
    rows = session.execute(
        sa.select(LedgerJournal.posted_at, LedgerLine.debit_fen, LedgerLine.credit_fen)
        .join(LedgerLine, LedgerLine.journal_id == LedgerJournal.id)
        .where(
            LedgerLine.department_id == department_id,
            LedgerJournal.kind != str(jr.JournalKind.PAYOUT),
            LedgerJournal.posted_at >= start,
            LedgerJournal.posted_at < end,
        )
    ).all()
    by_period = {shift_period(first, i): 0 for i in range(months)}
    for posted_at, debit, credit in rows:
        by_period[period_of(posted_at)] += credit - debit
    return list(by_period.items())


# -------------------------------------------------------------------------------- ledger list


def lines_query(
    *, kind: str | None = None, account: str | None = None, license_id: int | None = None
) -> sa.Select:
    """Journal lines with their journal, newest first; ``account`` matches a prefix."""
    stmt = (
        sa.select(LedgerLine, LedgerJournal)
        .join(LedgerJournal, LedgerLine.journal_id == LedgerJournal.id)
        .order_by(LedgerJournal.posted_at.desc(), LedgerLine.id.desc())
    )
    if kind:
        stmt = stmt.where(LedgerJournal.kind == kind)
    if account:
        escaped = account.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(LedgerLine.account.like(escaped + "%", escape="\\"))
    if license_id is not None:
        stmt = stmt.where(LedgerJournal.license_id == license_id)
    return stmt


def line_dict(line: LedgerLine, journal: LedgerJournal) -> dict:
    return {
        "id": line.id,
        "journal_id": journal.id,
        "kind": journal.kind,
        "reference": journal.reference,
        "posted_at": journal.posted_at,
        "account": line.account,
        "debit": line.debit_fen,
        "credit": line.credit_fen,
        "currency": "CNY",
        "license_id": journal.license_id,
        "payment_id": journal.payment_id,
        "department_id": line.department_id,
    }


# -------------------------------------------------------------------------------- payouts


def record_payout(
    session: Session, actor: Actor, department_id: int, amount_fen: int, reference: str
) -> LedgerJournal:
    """The operator paid ``amount_fen`` to a department by bank transfer ``reference``.

    Raises Forbidden (not the operator), ValidationFailed (unknown department, amount ≤ 0,
    no reference), Conflict if the amount exceeds what the department is owed or the same
    reference was already recorded for it.
    """
    if not perm.can_record_payout(actor):
        raise Forbidden(_("Only the operator records payouts."))
    reference = transfer_reference(
        reference,
        field="reference",
        max_length=MAX_PAYOUT_REFERENCE,
        message=_("The payout needs its bank reference."),
        hint=_("Give the transfer reference (1 to %(max)s characters).", max=MAX_PAYOUT_REFERENCE),
    )
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
        raise ValidationFailed(
            _("The amount must be positive."), {"amount": [_("Give a positive amount in fen.")]}
        )
    # Lock the department's row: concurrent payouts to one department are serialized, so the
    # balance read below cannot be spent twice (SQLite: BEGIN IMMEDIATE already serializes).
    department = session.execute(
        sa.select(Organization).where(Organization.id == department_id).with_for_update()
    ).scalar_one_or_none()
    if department is None or department.kind != "department":
        raise ValidationFailed(
            _("No such department."), {"department_id": [_("Choose a providing department.")]}
        )
    owed = department_payable(session, department_id)
    if amount_fen > owed:
        raise Conflict(
            _(
                "The payout of %(amount_fen)s fen exceeds the %(owed)s fen owed to this department.",
                amount_fen=amount_fen,
                owed=owed,
            ),
            {"amount": [_("At most %(owed)s fen is payable.", owed=owed)]},
        )
    row = post(
        session,
        jr.payout(f"department:{department_id}:{reference}", department_id, amount_fen),
        actor=actor,
        department_id=department_id,
        memo=reference,
    )
    audit.record(
        session,
        "revenue.payout",
        actor,
        ("organization", department_id),
        {"amount": amount_fen, "reference": reference, "journal_id": row.id},
    )
    return row
