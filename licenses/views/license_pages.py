"""A license's own pages: the list, applying with a quote, the license, paying, reviewing,
supervising, and the printable signed document."""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from licenses import payments, services
from licenses import permissions as perm
from licenses.errors import LicenseError, PaymentProviderError
from licenses.forms import (
    ApplyForm,
    PayForm,
    ReviewForm,
    StatusForm,
)
from licenses.models import License, Payment, Refund
from licenses.states import allowed_events
from licenses.views import bp
from licenses.views.common import STATUS_LABELS, failed
from market.api_base import paginate
from market.auth import login_required
from market.datasets.models import Dataset
from market.db import utcnow
from market.errors import DomainError, NotFound
from market.extensions import db
from market.quotes.models import Quote


def _usable_quotes(org_id: int) -> list[Quote]:
    used = sa.select(License.quote_id)
    stmt = (
        sa.select(Quote)
        .where(Quote.buyer_org_id == org_id, Quote.expires_at > utcnow(), Quote.id.not_in(used))
        .order_by(Quote.created_at.desc())
        .limit(20)
    )
    if hasattr(Quote, "upgrade_of_license_id"):
        stmt = stmt.where(Quote.upgrade_of_license_id.is_(None))
    return list(db.session.scalars(stmt))


@bp.get("/licenses")
@login_required
def index():
    status = request.args.get("status") or None
    if status not in STATUS_LABELS:
        status = None
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    stmt = services.list_licenses(db.session, g.actor, status)
    result = paginate(db.session, stmt, page, 30)
    quotes = _usable_quotes(g.actor.org_id) if g.actor.role == "buyer" else []
    return render_template(
        "licenses/index.html",
        page=result,
        status=status,
        quotes=quotes,
        pages=max((result["total"] + 29) // 30, 1),
    )


@bp.route("/licenses/apply/<int:quote_id>", methods=["GET", "POST"])
@login_required
def apply(quote_id: int):
    quote = db.session.get(Quote, quote_id)
    if quote is None or quote.buyer_org_id != g.actor.org_id:
        raise NotFound(_("No such quote."))
    form = ApplyForm()
    status = 200
    if form.validate_on_submit():
        try:
            lic = services.apply_for_license(
                db.session,
                g.actor,
                quote_id=quote.id,
                purpose_statement=form.purpose_statement.data,
                free_use_justification=form.free_use_justification.data,
            )
        except DomainError as exc:
            status = failed(exc, form)
        else:
            flash(
                _(
                    "Application sent: license %(id)s is %(status)s.",
                    id=lic.id,
                    status=STATUS_LABELS[lic.status],
                ),
                "success",
            )
            return redirect(url_for("licenses.detail", license_id=lic.id))
    elif form.errors:
        status = 422
    used = db.session.scalar(sa.select(License.id).where(License.quote_id == quote.id))
    datasets = [(db.session.get(Dataset, item["dataset_id"]), item) for item in quote.items]
    return render_template(
        "licenses/apply.html",
        quote=quote,
        form=form,
        datasets=datasets,
        used=used,
        expired=quote.expires_at <= utcnow(),
        conditional=any(d is not None and d.open_grade == "conditional" for d, _i in datasets),
    ), status


def _stripe_status(payment: Payment | None) -> str | None:
    """The PaymentIntent's status as Stripe sees it now, or None if it cannot be asked."""
    if payment is None or payment.provider != "stripe" or not payment.provider_id:
        return None
    if not payments.stripe_configured(current_app.config):
        return None
    try:
        with payments.stripe_provider(current_app.config) as stripe:
            return stripe.retrieve(payment.provider_id).status
    except PaymentProviderError:
        return None


@bp.get("/licenses/<int:license_id>")
@login_required
def detail(license_id: int):
    lic = services.get_license(db.session, g.actor, license_id)
    events = allowed_events(lic.status)
    open_payment = next(
        (p for p in reversed(lic.payments) if p.status in ("pending", "failed")), None
    )
    refunds = db.session.scalars(
        sa.select(Refund).where(Refund.license_id == lic.id).order_by(Refund.id)
    ).all()
    return render_template(
        "licenses/detail.html",
        lic=lic,
        events={e.value for e in events},
        open_payment=open_payment,
        stripe_status=_stripe_status(open_payment),
        stripe_enabled=payments.stripe_configured(current_app.config),
        stripe_publishable=bool(current_app.config.get("STRIPE_PUBLISHABLE_KEY")),
        can_pay=perm.can_pay_license(g.actor, lic.buyer_org_id),
        can_review=perm.can_review_license(g.actor),
        can_revoke=perm.can_revoke_license(g.actor),
        can_suspend=perm.can_suspend_license(g.actor),
        pay_form=PayForm(),
        review_form=ReviewForm(),
        status_form=StatusForm(),
        refunds=refunds,
    )


@bp.post("/licenses/<int:license_id>/pay")
@login_required
def pay(license_id: int):
    form = PayForm()
    if not form.validate_on_submit():
        flash(_("Choose how to pay."), "error")
        return redirect(url_for("licenses.detail", license_id=license_id))
    try:
        payment, provided, _created = payments.create_payment(
            db.session, g.actor, license_id, form.provider.data, config=current_app.config
        )
    except (DomainError, LicenseError) as exc:
        failed(exc)
    else:
        if payment.provider == "invoice":
            flash(
                _(
                    "Invoice %(number)s for %(amount)s: pay it by bank transfer, quoting the "
                    "invoice number. The license turns active when the operator records "
                    "your transfer.",
                    number=payment.invoice_number,
                    amount=_fen(payment.amount_fen),
                ),
                "success",
            )
        else:
            flash(
                _(
                    "Card payment started with Stripe (PaymentIntent %(id)s).",
                    id=payment.provider_id,
                ),
                "success",
            )
    return redirect(url_for("licenses.detail", license_id=license_id))


def _fen(amount: int) -> str:
    from market.web import fen

    return fen(amount)


@bp.post("/licenses/<int:license_id>/review")
@login_required
def review(license_id: int):
    form = ReviewForm()
    back = (
        url_for("licenses.review_queue")
        if request.form.get("return_to") == "queue"
        else url_for("licenses.detail", license_id=license_id)
    )
    if not form.validate_on_submit():
        flash(_("The decision could not be read; try again."), "error")
        return redirect(back)
    try:
        lic = services.review_license(
            db.session,
            g.actor,
            license_id,
            decision=form.decision.data,
            comment=form.comment.data,
        )
    except (DomainError, LicenseError) as exc:
        if getattr(exc, "errors", None) and "comment" in exc.errors:
            db.session.rollback()
            flash(_("Give the reason for the rejection in the comment."), "error")
        else:
            failed(exc)
    else:
        flash(
            _("License %(id)s: %(status)s.", id=lic.id, status=STATUS_LABELS[lic.status]), "success"
        )
    return redirect(back)


@bp.post("/licenses/<int:license_id>/status")
@login_required
def change_status(license_id: int):
    form = StatusForm()
    if not form.validate_on_submit():
        flash(_("Give the reason."), "error")
        return redirect(url_for("licenses.detail", license_id=license_id))
    action, reason = form.action.data, form.reason.data
    try:
        if action == "suspend":
            lic = services.suspend_license(db.session, g.actor, license_id, reason)
        elif action == "reinstate":
            lic = services.reinstate_license(db.session, g.actor, license_id, reason)
        else:
            lic = services.revoke_license(
                db.session,
                g.actor,
                license_id,
                reason,
                config=current_app.config,
                refund=bool(form.refund.data),
            )
    except (DomainError, LicenseError) as exc:
        failed(exc)
    else:
        flash(
            _("License %(id)s: %(status)s.", id=lic.id, status=STATUS_LABELS[lic.status]), "success"
        )
    return redirect(url_for("licenses.detail", license_id=license_id))


@bp.get("/licenses/<int:license_id>/document")
@login_required
def document(license_id: int):
    lic = services.get_license(db.session, g.actor, license_id)
    if lic.document is None:
        flash(_("The signed document is issued when the license turns active."), "warning")
        return redirect(url_for("licenses.detail", license_id=license_id))
    return render_template(
        "licenses/document.html",
        lic=lic,
        terms=_terms(lic),
        policy_json=json.dumps(lic.document, indent=2, ensure_ascii=False, sort_keys=True),
    )


#: The document page is bilingual whatever the UI language, so these are not translated.
_PURPOSES_BILINGUAL = {
    "public_welfare": ("公共治理与公益", "Public governance and welfare"),
    "research": ("科学研究", "Research"),
    "internal_risk_control": ("内部风险控制", "Internal risk control"),
    "commercial_product": ("商业产品", "Commercial product"),
}


def _terms(lic: License) -> dict:
    """The signed terms, read from the signed policy itself (not from the editable row)."""
    doc = lic.document or {}
    rule = (doc.get("permission") or [{}])[0]
    constraints = {
        (c["leftOperand"], c["operator"]): c["rightOperand"] for c in rule.get("constraint", [])
    }
    price = None
    for duty in rule.get("duty", []):
        for action in duty.get("action", []):
            for refinement in action.get("refinement", []):
                if refinement.get("leftOperand") == "payAmount":
                    price = refinement["rightOperand"]["@value"]
    titles = {str(item.dataset_id): item.dataset.title for item in lic.items}
    purpose = constraints.get(("purpose", "eq"), lic.purpose)
    return {
        "uid": doc.get("uid"),
        "assigner": doc.get("assigner", {}),
        "assignee": doc.get("assignee", {}),
        "targets": [
            {**t, "title": titles.get(t.get("market:dataset"), "")} for t in doc.get("target", [])
        ],
        "purpose": purpose,
        "purpose_zh": _PURPOSES_BILINGUAL.get(purpose, (purpose, purpose))[0],
        "purpose_en": _PURPOSES_BILINGUAL.get(purpose, (purpose, purpose))[1],
        "start": (constraints.get(("dateTime", "gteq")) or {}).get("@value"),
        "end": (constraints.get(("dateTime", "lt")) or {}).get("@value"),
        "quota": constraints.get(("count", "lteq")),
        "price": price,
        "remark": doc.get("market:remark"),
    }
