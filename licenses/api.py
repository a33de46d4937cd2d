"""JSON API: licenses, payments, revenue statements, the ledger and the blacklist."""

from __future__ import annotations

import dataclasses

import marshmallow as ma
import sqlalchemy as sa
from flask import Response, current_app, request
from flask.views import MethodView
from flask_babel import gettext as _
from flask_smorest import Blueprint

from licenses import (
    blacklist,
    ledger,
    odrl,
    payment_refunds,
    payments,
    services,
    webhooks,
    welfare,
)
from licenses import permissions as perm
from licenses.models import Payment, Refund
from licenses.schemas import (
    BlacklistAddSchema,
    BlacklistEntrySchema,
    CreditNotePaySchema,
    DocumentSchema,
    LedgerArgs,
    LedgerLineSchema,
    LicenseApplySchema,
    LicenseListArgs,
    LicenseSchema,
    PaymentCreateSchema,
    PaymentListArgs,
    PaymentResultSchema,
    PaymentSchema,
    PayoutCreateSchema,
    PayoutSchema,
    ReasonSchema,
    RefundListArgs,
    RefundSchema,
    ReviewSchema,
    RevokeSchema,
    SettleSchema,
    StatementArgs,
    StatementPageSchema,
    VerifyRequestSchema,
    VerifyResultSchema,
    WebhookResultSchema,
    WelfareBodyAddSchema,
    WelfareBodySchema,
    license_view,
)
from market.api_base import PageArgs, page_of, paginate
from market.auth import current_actor, public
from market.csvutil import csv_response
from market.db import iso
from market.errors import Conflict, Forbidden
from market.extensions import db
from market.keys import public_keys
from market.web import labels

# The web pages own the blueprint name "licenses" (other areas link to "licenses.apply").
blp = Blueprint(
    "licensing",
    __name__,
    url_prefix="/api/v1",
    description="Licenses, payments, revenue sharing, the ledger and the blacklist",
)


# ---------------------------------------------------------------------------------- licenses


@blp.route("/licenses")
class Licenses(MethodView):
    @blp.arguments(LicenseListArgs, location="query")
    @blp.response(200, page_of(LicenseSchema))
    def get(self, args):
        """List licenses: a buyer its own, the operator and the regulator all."""
        stmt = services.list_licenses(db.session, current_actor(), args.get("status"))
        page = paginate(db.session, stmt, args["page"], args["per_page"])
        page["items"] = [license_view(lic) for lic in page["items"]]
        return page

    @blp.arguments(LicenseApplySchema)
    @blp.response(201, LicenseSchema)
    def post(self, body):
        """Apply for a license with a quote and a purpose statement (buyer)."""
        lic = services.apply_for_license(db.session, current_actor(), **body)
        return license_view(lic)


@blp.route("/licenses/verify")
class Verify(MethodView):
    @public
    @blp.arguments(VerifyRequestSchema)
    @blp.response(200, VerifyResultSchema)
    def post(self, body):
        """Check a license document's signature against the platform's keys (anyone)."""
        valid = odrl.verify_policy(
            public_keys(), body["policy"], body["signature"], body.get("public_key_id")
        )
        return {"valid": valid}


@blp.route("/licenses/<int:license_id>")
class LicenseItem(MethodView):
    @blp.response(200, LicenseSchema)
    def get(self, license_id):
        """One license (its buyer, the operator, the regulator). Expires it if due."""
        return license_view(services.get_license(db.session, current_actor(), license_id))


@blp.route("/licenses/<int:license_id>/review")
class Review(MethodView):
    @blp.arguments(ReviewSchema)
    @blp.response(200, LicenseSchema)
    def post(self, body, license_id):
        """Approve or reject a license pending review (operator)."""
        lic = services.review_license(db.session, current_actor(), license_id, **body)
        return license_view(lic)


@blp.route("/licenses/<int:license_id>/document")
class Document(MethodView):
    @blp.response(200, DocumentSchema)
    def get(self, license_id):
        """The signed ODRL policy of an active (or formerly active) license."""
        lic = services.get_license(db.session, current_actor(), license_id)
        if lic.document is None:
            raise Conflict(
                _(
                    "License %(id)s is %(status)s; its document is issued when it turns active.",
                    id=lic.id,
                    status=labels.name("license_status", lic.status),
                )
            )
        return {"policy": lic.document, "signature": lic.signature, "public_key_id": lic.key_id}


@blp.route("/licenses/<int:license_id>/revoke")
class Revoke(MethodView):
    @blp.arguments(RevokeSchema)
    @blp.response(200, LicenseSchema)
    def post(self, body, license_id):
        """Revoke a license (operator, regulator), at once; refunds the unused share of term
        and quota (the smaller); a failed Stripe refund becomes a pending credit note."""
        lic = services.revoke_license(
            db.session,
            current_actor(),
            license_id,
            body["reason"],
            config=current_app.config,
            refund=body["refund"],
        )
        return license_view(lic)


@blp.route("/licenses/<int:license_id>/suspend")
class Suspend(MethodView):
    @blp.arguments(ReasonSchema)
    @blp.response(200, LicenseSchema)
    def post(self, body, license_id):
        """Suspend an active license (regulator)."""
        lic = services.suspend_license(db.session, current_actor(), license_id, body["reason"])
        return license_view(lic)


@blp.route("/licenses/<int:license_id>/reinstate")
class Reinstate(MethodView):
    @blp.arguments(ReasonSchema)
    @blp.response(200, LicenseSchema)
    def post(self, body, license_id):
        """Lift a suspension (regulator)."""
        lic = services.reinstate_license(db.session, current_actor(), license_id, body["reason"])
        return license_view(lic)


# ---------------------------------------------------------------------------------- payments


@blp.route("/licenses/<int:license_id>/payments")
class LicensePayments(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(PaymentSchema))
    def get(self, args, license_id):
        """The payments of a license (its buyer, the operator, the regulator)."""
        services.get_license(db.session, current_actor(), license_id)
        stmt = sa.select(Payment).where(Payment.license_id == license_id).order_by(Payment.id)
        return paginate(db.session, stmt, args["page"], args["per_page"])

    @blp.arguments(PaymentCreateSchema)
    @blp.response(201, PaymentResultSchema)
    @blp.alt_response(200, schema=PaymentResultSchema, description="The open payment, again.")
    def post(self, body, license_id):
        """Pay for a license awaiting payment (its buyer): by invoice or with Stripe."""
        payment, provided, created = payments.create_payment(
            db.session, current_actor(), license_id, body["provider"], config=current_app.config
        )
        return payments.payment_result(payment, provided), (201 if created else 200)


class InvoiceArgs(ma.Schema):
    payment_id = ma.fields.Integer(
        load_default=None, validate=ma.validate.Range(min=1),
        metadata={"description": "one invoice payment of the license; default its latest"},
    )


@blp.route("/licenses/<int:license_id>/invoice.pdf")
class LicenseInvoicePdf(MethodView):
    @blp.arguments(InvoiceArgs, location="query")
    @blp.response(200, content_type="application/pdf")
    def get(self, args, license_id):
        """The invoice of a license as a PDF (its buyer, the operator, the regulator; 404 for
        anyone else, or if the license has no such invoice)."""
        from licenses.invoice_views import find_invoice, invoice_response

        lic = services.get_license(db.session, current_actor(), license_id)
        return invoice_response(lic, find_invoice(db.session, lic, args["payment_id"]))


@blp.route("/payments")
class Payments(MethodView):
    @blp.arguments(PaymentListArgs, location="query")
    @blp.response(200, page_of(PaymentSchema))
    def get(self, args):
        """Payments, oldest first, by status and provider (operator, regulator)."""
        stmt = payments.list_payments(
            current_actor(), status=args.get("status"), provider=args.get("provider")
        )
        return paginate(db.session, stmt, args["page"], args["per_page"])


@blp.route("/payments/<int:payment_id>/settle")
class Settle(MethodView):
    @blp.arguments(SettleSchema)
    @blp.response(200, PaymentSchema)
    def post(self, body, payment_id):
        """Settle an invoice with the buyer's bank reference (operator); activates the license."""
        return payments.settle_invoice(
            db.session,
            current_actor(),
            payment_id,
            body["bank_reference"],
            config=current_app.config,
        )


@blp.route("/refunds")
class Refunds(MethodView):
    @blp.arguments(RefundListArgs, location="query")
    @blp.response(200, page_of(RefundSchema))
    def get(self, args):
        """Refunds, oldest first; ``status=pending``: credit notes to pay back (operator,
        regulator)."""
        if not perm.can_list_payments(current_actor()):
            raise Forbidden(_("Only the operator and the regulator list refunds."))
        stmt = sa.select(Refund).order_by(Refund.created_at, Refund.id)
        if args.get("status"):
            stmt = stmt.where(Refund.status == args["status"])
        return paginate(db.session, stmt, args["page"], args["per_page"])


@blp.route("/refunds/<int:refund_id>/pay")
class PayCreditNote(MethodView):
    @blp.arguments(CreditNotePaySchema)
    @blp.response(200, RefundSchema)
    def post(self, body, refund_id):
        """Record that an invoice refund's credit note was paid back to the buyer by bank
        transfer (operator): the ledger moves it from ``credit_notes:buyer`` to ``cash``."""
        return payment_refunds.pay_credit_note(
            db.session, current_actor(), refund_id, body["reference"]
        )


@blp.route("/refunds/<int:refund_id>/retry")
class RetryRefund(MethodView):
    @blp.response(200, RefundSchema)
    def post(self, refund_id):
        """Retry a Stripe refund that failed on revocation (operator). 200 either way: the
        refund is ``paid`` (Stripe refunded it) or still ``pending`` with ``last_error``."""
        return payment_refunds.retry_refund(
            db.session, current_actor(), refund_id, config=current_app.config
        )


@blp.route("/payments/stripe/webhook")
class StripeWebhook(MethodView):
    @public
    @blp.response(200, WebhookResultSchema)
    def post(self):
        """Stripe's signed events (no auth: the signature is the authentication).

        ``payment_intent.succeeded`` settles, ``payment_intent.payment_failed`` marks the
        payment failed; replays of an event id change nothing.
        """
        return webhooks.handle_stripe_webhook(
            db.session,
            request.get_data(cache=False),
            request.headers.get("Stripe-Signature"),
            config=current_app.config,
        )


# ----------------------------------------------------------------------------------- revenue


def _statements(args, actor):
    stmt = ledger.statement_departments(db.session, actor, args.get("department_id"))
    ledger.parse_period(args["period"])
    return stmt


def _statement_view(st: ledger.Statement, department) -> dict:
    return {
        "department": {"id": department.id, "name": department.name, "kind": department.kind},
        "period": st.period,
        "currency": "CNY",
        "opening_balance": st.opening_balance,
        "revenue": st.revenue,
        "refunds": st.refunds,
        "payouts": st.payouts,
        "closing_balance": st.closing_balance,
        "entries": [dataclasses.asdict(e) for e in st.entries],
    }


def _csv_response(args, actor) -> Response:
    from market.accounts.models import Organization

    # The stream reads through a session of its own (market.csvutil): only ids cross over.
    department_ids = db.session.scalars(
        _statements(args, actor).with_only_columns(Organization.id)
    ).all()
    period = args["period"]
    header = [
        "period",
        "department_id",
        "department",
        "line",
        "posted_at_utc",
        "posted_at_shanghai",
        "kind",
        "reference",
        "license_id",
        "amount_fen",
    ]

    def rows(session):
        for department_id in department_ids:
            department = session.get(Organization, department_id)
            st = ledger.statement(session, department, period)
            base = [period, department.id, department.name]
            yield [*base, "opening_balance", "", "", "", "", "", st.opening_balance]
            for e in st.entries:
                local = e.posted_at.astimezone(ledger.STATEMENT_TZ).strftime("%Y-%m-%d %H:%M:%S")
                yield [
                    *base,
                    "entry",
                    iso(e.posted_at),
                    local,
                    e.kind,
                    e.reference,
                    e.license_id or "",
                    e.amount,
                ]
            for label, value in (
                ("revenue", st.revenue),
                ("refunds", st.refunds),
                ("payouts", st.payouts),
                ("closing_balance", st.closing_balance),
            ):
                yield [*base, label, "", "", "", "", "", value]

    return csv_response(header, rows, f"revenue-{period}.csv")


@blp.route("/revenue/statements")
class Statements(MethodView):
    @blp.arguments(StatementArgs, location="query")
    @blp.response(200, StatementPageSchema)
    def get(self, args):
        """Monthly statements per department (Asia/Shanghai months): a department its own,
        the operator and the regulator all (optionally one ``department_id``).

        ``?format=csv`` answers with the CSV of ``/revenue/statements.csv`` instead.
        """
        actor = current_actor()
        ledger.statement_departments(db.session, actor)  # the caller first, then the arguments
        if args["format"] == "csv":
            return _csv_response(args, actor)
        page = paginate(db.session, _statements(args, actor), args["page"], args["per_page"])
        page["items"] = [
            _statement_view(ledger.statement(db.session, d, args["period"]), d)
            for d in page["items"]
        ]
        page["period"] = args["period"]
        page["timezone"] = str(ledger.STATEMENT_TZ)
        return page


@blp.route("/revenue/statements.csv")
class StatementsCsv(MethodView):
    @blp.arguments(StatementArgs, location="query")
    @blp.response(200, content_type="text/csv")
    def get(self, args):
        """The same statements as CSV (UTF-8 with BOM, for Excel)."""
        return _csv_response(args, current_actor())


@blp.route("/revenue/payouts")
class Payouts(MethodView):
    @blp.arguments(PayoutCreateSchema)
    @blp.response(201, PayoutSchema)
    def post(self, body):
        """Record a payout to a department (operator); at most what it is owed."""
        row = ledger.record_payout(
            db.session, current_actor(), body["department_id"], body["amount"], body["reference"]
        )
        return {
            "journal_id": row.id,
            "department_id": body["department_id"],
            "amount": body["amount"],
            "currency": "CNY",
            "reference": row.memo,
            "posted_at": row.posted_at,
            "payable_after": ledger.department_payable(db.session, body["department_id"]),
        }


@blp.route("/ledger")
class Ledger(MethodView):
    @blp.arguments(LedgerArgs, location="query")
    @blp.response(200, page_of(LedgerLineSchema))
    def get(self, args):
        """Journal lines, newest first (operator, regulator)."""
        if not perm.can_read_ledger(current_actor()):
            raise Forbidden(_("Only the operator and the regulator read the ledger."))
        stmt = ledger.lines_query(
            kind=args.get("kind"), account=args.get("account"), license_id=args.get("license_id")
        )
        page = paginate(db.session, stmt, args["page"], args["per_page"], scalars=False)
        page["items"] = [ledger.line_dict(line, journal) for line, journal in page["items"]]
        return page


# --------------------------------------------------------------------------------- blacklist


@blp.route("/blacklist")
class Blacklist(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(BlacklistEntrySchema))
    def get(self, args):
        """The blacklist (operator, regulator)."""
        if not perm.can_read_blacklist(current_actor()):
            raise Forbidden(_("Only the operator and the regulator read the blacklist."))
        return paginate(db.session, blacklist.list_entries(), args["page"], args["per_page"])

    @blp.arguments(BlacklistAddSchema)
    @blp.response(201, BlacklistEntrySchema)
    def post(self, body):
        """Blacklist an organization, with the reason (regulator)."""
        return blacklist.add(db.session, current_actor(), body["organization_id"], body["reason"])


@blp.route("/blacklist/<int:organization_id>")
class BlacklistItem(MethodView):
    @blp.arguments(ReasonSchema)
    @blp.response(204)
    def delete(self, body, organization_id):
        """Take an organization off the blacklist, with the reason (regulator)."""
        blacklist.remove(db.session, current_actor(), organization_id, body["reason"])
        return None


# ------------------------------------------------------------------ public-welfare bodies


@blp.route("/public-welfare-bodies")
class WelfareBodies(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(WelfareBodySchema))
    def get(self, args):
        """The operator's whitelist of public-welfare bodies, eligible for free licenses
        (operator, regulator)."""
        stmt = welfare.list_bodies(current_actor())
        return paginate(db.session, stmt, args["page"], args["per_page"])

    @blp.arguments(WelfareBodyAddSchema)
    @blp.response(201, WelfareBodySchema)
    def post(self, body):
        """Add a buyer organization to the whitelist, with the reason (operator)."""
        return welfare.add(db.session, current_actor(), body["organization_id"], body["reason"])


@blp.route("/public-welfare-bodies/<int:organization_id>")
class WelfareBody(MethodView):
    @blp.arguments(ReasonSchema)
    @blp.response(204)
    def delete(self, body, organization_id):
        """Take an organization off the whitelist, with the reason (operator)."""
        welfare.remove(db.session, current_actor(), organization_id, body["reason"])
        return None
