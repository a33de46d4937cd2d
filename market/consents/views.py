"""Web pages for consents and lookups; they call the same services as the API.

- a bank: its consent requests (and a form to ask), the lookup form and the enterprise
  profile it returns (per table a table of rows, plus a chart of monthly tax and insured
  headcount when those columns are licensed);
- an enterprise: the requests about it with grant / deny / revoke, and its access log;
- the operator: every consent, and recording a paper authorization letter on a request.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from licenses.models import License
from market.api_base import paginate
from market.auth import login_required
from market.consents import lookups, services
from market.consents import permissions as perm
from market.consents.api import lookup_rate_limit, run_lookup
from market.consents.forms import (
    ConsentRequestForm,
    DecisionForm,
    LookupForm,
    RecordForm,
    RevokeForm,
)
from market.consents.models import Consent, ConsentStatus, Lookup
from market.db import utcnow
from market.errors import DomainError, Forbidden
from market.extensions import db
from market.web import registry

bp = Blueprint("consents", __name__)

registry.nav_link(
    "consents.index",
    _l("Consents"),
    roles={"buyer", "subject", "operator", "regulator"},
    order=55,
)
registry.nav_link("consents.lookup", _l("Lookups"), roles={"buyer"}, order=56)
registry.nav_link("consents.access_log", _l("Access log"), roles={"subject"}, order=57)

STATUS_LABELS = {
    "requested": _l("Awaiting decision"),
    "granted": _l("Granted"),
    "denied": _l("Denied"),
    "revoked": _l("Revoked"),
    "expired": _l("Expired"),
}
EVENT_LABELS = {
    "consent.requested": _l("The bank asked for consent"),
    "consent.granted": _l("Consent granted in the platform"),
    "consent.denied": _l("Consent denied"),
    "consent.recorded": _l("The operator recorded a paper authorization letter"),
    "consent.revoked": _l("Consent revoked"),
    "lookup.performed": _l("The bank looked up the records"),
}
PAGE_SIZE = 30


def _failed(exc: DomainError, form=None) -> int:
    """Undo the failed change, keep any refusal event, and show the errors on the page."""
    db.session.rollback()
    if exc.audit is not None:
        from market.audit import services as audit

        type_, subject, data = exc.audit
        audit.record(db.session, type_, g.actor, subject, data)
        db.session.commit()
    placed = False
    for name, messages in (exc.errors or {}).items():
        field = getattr(form, name, None) if form is not None else None
        if field is not None and hasattr(field, "errors"):
            field.errors = list(field.errors or []) + list(messages)
            placed = True
    if not placed:
        flash(exc.message, "error")
    return exc.status


def _license_choices(usable: list) -> list[tuple[int, str]]:
    return [
        (
            lic.id,
            _(
                "License #%(id)s · ends %(end)s",
                id=lic.id,
                end=lic.ends_at.astimezone(services.LOCAL_TZ).date().isoformat(),
            ),
        )
        for lic in usable
        if lic.ends_at is not None
    ]


def _subject_code() -> str | None:
    return services.subject_code_of(db.session, g.actor)


# ------------------------------------------------------------------------------- consents


@bp.get("/consents")
@login_required
def index():
    status = request.args.get("status") or None
    if status not in STATUS_LABELS:
        status = None
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    stmt = services.list_consents(db.session, g.actor, status=status)
    result = paginate(db.session, stmt, page, PAGE_SIZE)
    return render_template(
        "consents/index.html",
        page=result,
        pages=max((result["total"] + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        status=status,
        now=utcnow(),
        role=g.actor.role,
        labels=STATUS_LABELS,
        decision_form=DecisionForm(),
        revoke_form=RevokeForm(),
    )


@bp.route("/consents/new", methods=["GET", "POST"])
@login_required
def new():
    if not perm.can_request_consent(g.actor):
        raise Forbidden(_("Only buyers request consents."))
    form = ConsentRequestForm()
    usable = services.usable_licenses(db.session, g.actor)
    form.license_id.choices = _license_choices(usable)
    status = 200
    existing = None
    if form.validate_on_submit():
        lic_ends = next((lic.ends_at for lic in usable if lic.id == form.license_id.data), None)
        try:
            consent = services.request_consent(
                db.session,
                g.actor,
                license_id=form.license_id.data,
                subject_credit_code=form.subject_credit_code.data,
                purpose=form.purpose.data,
                valid_until=services.end_of_local_day(form.valid_until.data, lic_ends),
            )
        except DomainError as exc:
            existing = getattr(exc, "existing_consent_id", None)
            status = _failed(exc, form)
        else:
            flash(
                _(
                    "Consent request %(id)s sent: the enterprise can now grant or deny it.",
                    id=consent.id,
                ),
                "success",
            )
            return redirect(url_for("consents.detail", consent_id=consent.id))
    elif form.errors:
        status = 422
    return render_template("consents/new.html", form=form, existing=existing), status


@bp.route("/consents/<int:consent_id>", methods=["GET"])
@login_required
def detail(consent_id: int):
    consent = services.get_consent(db.session, g.actor, consent_id)
    return _detail_page(consent, RecordForm())


def _detail_page(consent: Consent, record_form: RecordForm, status: int = 200):
    code = _subject_code()
    lookups_made = db.session.scalar(
        sa.select(sa.func.count()).select_from(Lookup).where(Lookup.consent_id == consent.id)
    )
    from market.consents.lookups import item_scope

    lic = db.session.get(License, consent.license_id)
    now = utcnow()
    return render_template(
        "consents/detail.html",
        scope=[item_scope(item) for item in lic.items] if lic is not None else [],
        days_left=max(0, (consent.valid_until - now).days),
        consent=consent,
        now=utcnow(),
        labels=STATUS_LABELS,
        can_decide=perm.can_decide_consent(g.actor, consent, code),
        can_record=perm.can_record_authorization(g.actor),
        is_buyer=perm.is_buyer(g.actor) and consent.buyer_org_id == g.actor.org_id,
        lookups_made=lookups_made,
        decision_form=DecisionForm(),
        revoke_form=RevokeForm(),
        record_form=record_form,
    ), status


@bp.post("/consents/<int:consent_id>/decision")
@login_required
def decide(consent_id: int):
    form = DecisionForm()
    if not form.validate_on_submit():
        flash(_("The form expired; please try again."), "error")
        return redirect(url_for("consents.index"))
    try:
        consent = services.decide_consent(
            db.session, g.actor, consent_id, decision=form.decision.data
        )
    except DomainError as exc:
        _failed(exc)
    else:
        if consent.status == ConsentStatus.granted:
            flash(
                _("Consent %(id)s granted to %(bank)s.", id=consent.id, bank=consent.buyer.name),
                "success",
            )
        else:
            flash(_("Consent %(id)s denied.", id=consent.id), "success")
    if request.form.get("next_page") == "detail":
        return redirect(url_for("consents.detail", consent_id=consent_id))
    return redirect(url_for("consents.index"))


@bp.get("/consents/<int:consent_id>/revoke")
@login_required
def confirm_revoke(consent_id: int):
    """Revoking asks first: what stops, for whom; the POST below does it."""
    consent = services.get_consent(db.session, g.actor, consent_id)
    if not perm.can_decide_consent(g.actor, consent, _subject_code()):
        raise Forbidden(_("Only the enterprise named in a consent can revoke it."))
    if consent.status_at(utcnow()) != ConsentStatus.granted:
        flash(_("Consent %(id)s is not granted, so there is nothing to revoke.", id=consent.id),
              "warning")
        return redirect(url_for("consents.detail", consent_id=consent.id))
    return render_template("consents/revoke.html", consent=consent, form=RevokeForm())


@bp.post("/consents/<int:consent_id>/revoke")
@login_required
def revoke(consent_id: int):
    form = RevokeForm()
    if not form.validate_on_submit():
        flash(_("The form expired; please try again."), "error")
        return redirect(url_for("consents.index"))
    try:
        consent = services.revoke_consent(db.session, g.actor, consent_id)
    except DomainError as exc:
        _failed(exc)
    else:
        flash(
            _(
                "Consent %(id)s revoked: %(bank)s can no longer look up your records.",
                id=consent.id,
                bank=consent.buyer.name,
            ),
            "success",
        )
    return redirect(url_for("consents.index"))


@bp.post("/consents/<int:consent_id>/record")
@login_required
def record(consent_id: int):
    form = RecordForm()
    if form.validate_on_submit():
        try:
            consent = services.record_paper_authorization(
                db.session,
                g.actor,
                consent_id,
                authorization_reference=form.authorization_reference.data,
            )
        except DomainError as exc:
            status = _failed(exc, form)
        else:
            flash(
                _("Paper authorization recorded: consent %(id)s is granted.", id=consent.id),
                "success",
            )
            return redirect(url_for("consents.detail", consent_id=consent.id))
    else:
        status = 422
    consent = services.get_consent(db.session, g.actor, consent_id)
    return _detail_page(consent, form, status)


# ------------------------------------------------------------------------------- lookups


@bp.route("/lookups", methods=["GET", "POST"])
@login_required
@lookup_rate_limit
def lookup():
    if not perm.can_look_up(g.actor):
        raise Forbidden(_("Only buyers make lookups."))
    form = LookupForm()
    form.license_id.choices = _license_choices(services.usable_licenses(db.session, g.actor))
    if request.method == "GET":
        form.license_id.data = request.args.get("license_id", type=int)
        form.subject_credit_code.data = request.args.get("subject", "")
    result = None
    status = 200
    if form.validate_on_submit():
        try:
            result = run_lookup(g.actor, form.license_id.data, form.subject_credit_code.data)
        except DomainError as exc:
            status = _failed(exc, form)
    elif form.errors:
        status = 422
    granted = db.session.scalars(
        services.list_consents(db.session, g.actor, status=ConsentStatus.granted.value).limit(20)
    ).all()
    recent = db.session.scalars(lookups.list_lookups(db.session, g.actor).limit(10)).all()
    return render_template(
        "consents/lookup.html", form=form, result=result, granted=granted, recent=recent
    ), status


# ------------------------------------------------------------------------------- access log


@bp.get("/consents/access-log")
@login_required
def access_log():
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    result = lookups.access_log(db.session, g.actor, page=page, per_page=PAGE_SIZE)
    return render_template(
        "consents/access_log.html",
        page=result,
        pages=max((result["total"] + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        labels=EVENT_LABELS,
        table_names=_table_names({s for e in result["items"] for s in e.tables}),
    )


def _table_names(slugs: set[str]) -> dict[str, str]:
    """The datasets' titles for the sandbox table names (slugs) an access log mentions: the
    subject reads which dataset was read; the slug stays in a tooltip."""
    if not slugs:
        return {}
    from market.datasets.models import Dataset

    rows = db.session.execute(
        sa.select(Dataset.slug, Dataset.title).where(Dataset.slug.in_(sorted(slugs)))
    )
    return {slug: title for slug, title in rows}


# ------------------------------------------------------------------------------- panels


@registry.panel("consent_requests", roles={"subject"}, title=_l("Consent requests"), order=20)
def _consent_requests_panel(user):
    if user.organization.status != "active":
        return {"pending": True}
    code = user.organization.credit_code
    now = utcnow()
    requested = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Consent)
        .where(Consent.subject_credit_code == code, Consent.status == ConsentStatus.requested.value)
    )
    granted = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Consent)
        .where(
            Consent.subject_credit_code == code,
            Consent.status == ConsentStatus.granted.value,
            Consent.valid_until > now,
        )
    )
    return {"pending": False, "requested": requested, "granted": granted}


@registry.panel("access_log", roles={"subject"}, title=_l("Who looked at my records"), order=21)
def _access_log_panel(user):
    if user.organization.status != "active":
        return {"pending": True}
    result = lookups.access_log(db.session, g.actor, page=1, per_page=5)
    return {
        "pending": False,
        "entries": result["items"],
        "total": result["total"],
        "labels": EVENT_LABELS,
    }


@registry.panel("lookups", roles={"buyer"}, title=_l("Consented lookups"), order=25)
def _lookups_panel(user):
    now = utcnow()
    org_id = user.organization_id
    counts = dict(
        db.session.execute(
            sa.select(Consent.status, sa.func.count())
            .where(
                Consent.buyer_org_id == org_id,
                sa.or_(Consent.status != ConsentStatus.granted.value, Consent.valid_until > now),
            )
            .group_by(Consent.status)
        ).all()
    )
    recent = db.session.scalars(
        sa.select(Lookup)
        .where(Lookup.buyer_org_id == org_id)
        .order_by(Lookup.created_at.desc(), Lookup.id.desc())
        .limit(3)
    ).all()
    return {"counts": counts, "recent": recent}
