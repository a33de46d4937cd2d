"""The operator's and the regulator's pages: review queue, settlements, revenue and payouts,
blacklist, public-welfare bodies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from wtforms import SelectChoice

from licenses import blacklist as blacklist_services
from licenses import ledger, payment_refunds, payments, welfare
from licenses import permissions as perm
from licenses.errors import LicenseError
from licenses.forms import (
    BlacklistForm,
    BlacklistRemoveForm,
    CreditNotePayForm,
    PayoutForm,
    ReviewForm,
    SettleForm,
)
from licenses.models import BlacklistEntry, License, Payment, PaymentState, PublicWelfareBody
from licenses.states import LicenseStatus
from licenses.views import bp
from licenses.views.common import failed, require
from market.accounts.models import Organization
from market.auth import login_required
from market.db import utcnow
from market.errors import DomainError, Forbidden
from market.extensions import db
from market.governance import services as governance


@bp.get("/licenses/review")
@login_required
def review_queue():
    require(perm.can_review_license(g.actor))
    # Red-listed buyers' applications first (the red list's fast track), oldest first in each.
    pending = governance.fast_track_first(
        db.session,
        db.session.scalars(
            sa.select(License)
            .where(License.status == LicenseStatus.PENDING_REVIEW.value)
            .order_by(License.created_at, License.id)
        ).all(),
    )
    eligibility = {
        lic.id: welfare.eligibility(db.session, lic.buyer)
        for lic in pending
        if lic.price_total_fen == 0
    }
    return render_template(
        "licenses/review_queue.html", pending=pending, form=ReviewForm(), eligibility=eligibility
    )


@bp.route("/payments/settlements", methods=["GET", "POST"])
@login_required
def settlements():
    require(perm.can_settle_payment(g.actor))
    form = SettleForm()
    failed_id = None
    status = 200
    if form.validate_on_submit():
        try:
            payment = payments.settle_invoice(
                db.session,
                g.actor,
                int(form.payment_id.data),
                form.bank_reference.data,
                config=current_app.config,
            )
        except (DomainError, LicenseError, ValueError) as exc:
            failed_id = form.payment_id.data
            status = failed(exc, form) if not isinstance(exc, ValueError) else 422
        else:
            flash(
                _(
                    "Invoice %(number)s settled: license %(id)s is active.",
                    number=payment.invoice_number,
                    id=payment.license_id,
                ),
                "success",
            )
            return redirect(url_for("licenses.settlements"))
    elif request.method == "POST":
        failed_id = form.payment_id.data
        status = 422
    pending = db.session.scalars(
        sa.select(Payment)
        .where(Payment.provider == "invoice", Payment.status == PaymentState.pending.value)
        .order_by(Payment.created_at, Payment.id)
    ).all()
    recent = db.session.scalars(
        sa.select(Payment)
        .where(Payment.status == PaymentState.settled.value)
        .order_by(Payment.settled_at.desc(), Payment.id.desc())
        .limit(20)
    ).all()
    return render_template(
        "licenses/settlements.html",
        pending=pending,
        recent=recent,
        form=form,
        failed_id=str(failed_id) if failed_id else None,
        credit_notes=payment_refunds.pending_credit_notes(db.session),
        credit_note_form=CreditNotePayForm(formdata=None),
    ), status


@bp.post("/payments/credit-notes/<int:refund_id>/pay")
@login_required
def pay_credit_note(refund_id: int):
    """The operator paid a credit note (an invoice refund) back to the buyer."""
    require(perm.can_pay_credit_note(g.actor))
    form = CreditNotePayForm()
    if not form.validate_on_submit():
        for message in form.reference.errors or [_("Enter the reference of the bank transfer.")]:
            flash(message, "error")
        return redirect(url_for("licenses.settlements"))
    try:
        refund = payment_refunds.pay_credit_note(
            db.session, g.actor, refund_id, form.reference.data
        )
    except (DomainError, LicenseError) as exc:
        failed(exc)
    else:
        flash(
            _(
                "Credit note %(number)s paid back to the buyer.",
                number=refund.credit_note_number,
            ),
            "success",
        )
    return redirect(url_for("licenses.settlements"))


@bp.post("/payments/credit-notes/<int:refund_id>/retry")
@login_required
def retry_refund(refund_id: int):
    """The operator retries a Stripe refund that failed when its license was revoked."""
    # No field to validate: CSRFProtect (app-wide) has already checked the token.
    require(perm.can_pay_credit_note(g.actor))
    try:
        refund = payment_refunds.retry_refund(
            db.session, g.actor, refund_id, config=current_app.config
        )
    except (DomainError, LicenseError) as exc:
        failed(exc)
    else:
        if refund.status == payment_refunds.CREDIT_NOTE_PAID:
            flash(
                _(
                    "Stripe refunded %(number)s to the buyer (%(ref)s).",
                    number=refund.credit_note_number,
                    ref=refund.paid_reference,
                ),
                "success",
            )
        else:
            flash(
                _(
                    "Stripe refused the refund again (%(error)s); it stays pending. Retry "
                    "later or pay it back by bank transfer.",
                    error=refund.last_error,
                ),
                "error",
            )
    return redirect(url_for("licenses.settlements"))


# ------------------------------------------------------------------------------------ revenue


def _departments() -> list[Organization]:
    return list(
        db.session.scalars(
            sa.select(Organization)
            .where(Organization.kind == "department")
            .order_by(Organization.name)
        )
    )


@bp.route("/revenue", methods=["GET", "POST"])
@login_required
def revenue():
    actor = g.actor
    period = request.args.get("period") or ledger.period_of(utcnow())
    try:
        ledger.parse_period(period)
    except DomainError:
        flash(_("The period must look like 2025-03; showing this month."), "warning")
        period = ledger.period_of(utcnow())
    departments = _departments() if actor.role in ("operator", "regulator") else []
    if actor.role == "department":
        department = db.session.get(Organization, actor.org_id)
    elif actor.role in ("operator", "regulator"):
        wanted = request.args.get("department_id", type=int)
        department = next((d for d in departments if d.id == wanted), None) or (
            departments[0] if departments else None
        )
    else:
        raise Forbidden(_("Only departments, the operator and the regulator see revenue."))

    payout_form = None
    status = 200
    if perm.can_record_payout(actor):
        payout_form = PayoutForm()
        payout_form.department_id.choices = [SelectChoice(d.id, d.name) for d in departments]
        if department is not None and request.method == "GET":
            payout_form.department_id.data = department.id
        if request.method == "POST":
            if payout_form.validate_on_submit():
                try:
                    ledger.record_payout(
                        db.session,
                        actor,
                        payout_form.department_id.data,
                        payout_form.amount_fen,
                        payout_form.reference.data,
                    )
                except DomainError as exc:
                    status = failed(exc, payout_form)
                else:
                    flash(_("Payout recorded."), "success")
                    return redirect(
                        url_for(
                            "licenses.revenue",
                            period=period,
                            department_id=payout_form.department_id.data,
                        )
                    )
            else:
                status = 422
    elif request.method == "POST":
        raise Forbidden(_("Only the operator records payouts."))

    statement = ledger.statement(db.session, department, period) if department else None
    from licenses.earnings import earnings as earnings_of

    earned = (
        earnings_of(db.session, department.id, *ledger.period_bounds(period)) if department else None
    )
    chart = ledger.monthly_revenue(db.session, department.id, period, 12) if department else []
    summary = []
    if actor.role in ("operator", "regulator"):
        summary = [(d, ledger.statement(db.session, d, period)) for d in departments]
    return render_template(
        "licenses/revenue.html",
        period=period,
        prev_period=ledger.shift_period(period, -1),
        next_period=ledger.shift_period(period, 1),
        department=department,
        departments=departments,
        statement=statement,
        earnings=earned,
        payable=ledger.department_payable(db.session, department.id) if department else 0,
        chart={
            "labels": [p for p, _v in chart],
            "values": [v for _p, v in chart],
            "label": _("Revenue (yuan)"),
        },
        summary=summary,
        payout_form=payout_form,
    ), status


# ------------------------------------------------------- blacklist and public-welfare bodies


@dataclass(frozen=True)
class _OrgList:
    """One of the operator's lists of organizations, shown and edited on one page shape."""

    endpoint: str
    template: str
    list_testid: str
    kinds: tuple[str, ...]
    can_read: Callable[..., bool]
    can_change: Callable[..., bool]
    listed_ids: Callable[[], sa.Select]
    entries: Callable[[], sa.Select]
    add: Callable[..., Any]
    remove: Callable[..., None]
    added: Callable[[str], str]
    removed: Callable[[], str]


_BLACKLIST = _OrgList(
    endpoint="licenses.blacklist",
    template="licenses/blacklist.html",
    list_testid="blacklist",
    kinds=("buyer", "department", "subject"),
    can_read=perm.can_read_blacklist,
    can_change=perm.can_change_blacklist,
    listed_ids=lambda: sa.select(BlacklistEntry.organization_id),
    entries=blacklist_services.list_entries,
    add=blacklist_services.add,
    remove=blacklist_services.remove,
    added=lambda name: _("%(name)s is on the blacklist.", name=name),
    removed=lambda: _("Removed from the blacklist."),
)

_WELFARE_BODIES = _OrgList(
    endpoint="licenses.welfare_bodies",
    template="licenses/welfare_bodies.html",
    list_testid="welfare-bodies",
    kinds=("buyer",),
    can_read=perm.can_read_welfare_whitelist,
    can_change=perm.can_change_welfare_whitelist,
    listed_ids=lambda: sa.select(PublicWelfareBody.organization_id),
    entries=lambda: welfare.list_bodies(g.actor),
    add=welfare.add,
    remove=welfare.remove,
    added=lambda name: _("%(name)s is on the list of public-welfare bodies.", name=name),
    removed=lambda: _("Removed from the list of public-welfare bodies."),
)


def _org_list_page(kind: _OrgList):
    require(kind.can_read(g.actor))
    can_change = kind.can_change(g.actor)
    form = BlacklistForm()
    candidates = db.session.scalars(
        sa.select(Organization)
        .where(Organization.kind.in_(kind.kinds), Organization.id.not_in(kind.listed_ids()))
        .order_by(Organization.kind, Organization.name)
    ).all()
    form.organization_id.choices = [
        SelectChoice(o.id, f"{o.name} ({o.credit_code})") for o in candidates
    ]
    status = 200
    if request.method == "POST":
        require(can_change)
        if form.validate_on_submit():
            try:
                entry = kind.add(db.session, g.actor, form.organization_id.data, form.reason.data)
            except DomainError as exc:
                status = failed(exc, form)
            else:
                flash(kind.added(entry.organization.name), "success")
                return redirect(url_for(kind.endpoint))
        else:
            status = 422
    entries = db.session.scalars(kind.entries()).all()
    return render_template(
        kind.template,
        entries=entries,
        form=form,
        can_change=can_change,
        remove_form=BlacklistRemoveForm(),
        remove_endpoint=f"{kind.endpoint}_remove",
        list_testid=kind.list_testid,
    ), status


def _org_list_remove(kind: _OrgList, organization_id: int):
    require(kind.can_change(g.actor))
    form = BlacklistRemoveForm()
    if not form.validate_on_submit():
        flash(_("Give the reason for the removal."), "error")
        return redirect(url_for(kind.endpoint))
    try:
        kind.remove(db.session, g.actor, organization_id, form.reason.data)
    except DomainError as exc:
        failed(exc)
    else:
        flash(kind.removed(), "success")
    return redirect(url_for(kind.endpoint))


@bp.route("/blacklist", methods=["GET", "POST"])
@login_required
def blacklist():
    return _org_list_page(_BLACKLIST)


@bp.post("/blacklist/<int:organization_id>/remove")
@login_required
def blacklist_remove(organization_id: int):
    return _org_list_remove(_BLACKLIST, organization_id)


@bp.route("/public-welfare-bodies", methods=["GET", "POST"])
@login_required
def welfare_bodies():
    """The operator's whitelist of public-welfare bodies, eligible for free licenses."""
    return _org_list_page(_WELFARE_BODIES)


@bp.post("/public-welfare-bodies/<int:organization_id>/remove")
@login_required
def welfare_bodies_remove(organization_id: int):
    return _org_list_remove(_WELFARE_BODIES, organization_id)
