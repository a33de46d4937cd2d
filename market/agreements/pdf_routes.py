"""The authorization agreement as a PDF: ``GET /api/v1/agreements/{id}/document.pdf`` (API
blueprint ``blp``) and ``/agreements/{id}/document.pdf`` (page download, web blueprint ``bp``).

Both read the agreement through ``services.get_agreement``: its department, the operator and
the regulator (role AND object; another department gets 404, like an unknown id).
"""

from __future__ import annotations

from flask import Blueprint as WebBlueprint
from flask import Response, abort, g
from flask.views import MethodView
from flask_babel import gettext as _
from flask_smorest import Blueprint

from market.agreements import services
from market.agreements.models import Agreement
from market.agreements.pdf import agreement_pdf
from market.auth import current_actor, login_required
from market.errors import DomainError
from market.extensions import db

blp = Blueprint(
    "agreements_pdf_api", __name__, url_prefix="/api/v1",
    description="Authorization agreements (授权运营协议) as PDF",
)
bp = WebBlueprint("agreements_pdf", __name__)


def _labels() -> dict[str, str]:
    return {
        "title": _("Authorization agreement"),
        "number": _("Number"),
        "status": _("Status"),
        "department": _("Department"),
        "operator": _("Operator"),
        "categories": _("Categories"),
        "datasets": _("Datasets"),
        "term": _("Term"),
        "share": _("Revenue share (department / operator)"),
        "key_origin": _("Department key"),
        "digest": _("SHA-256 of the signed document"),
        "department_signature": _("Department signature"),
        "operator_signature": _("Operator signature"),
        "not_signed": _("not signed yet"),
        "signed_json": _("The signed agreement (JSON; verify it offline as documented)"),
    }


def _status_label(agreement: Agreement) -> str:
    from market.agreements.views import STATUS_LABELS

    status = services.effective_status(agreement)
    return str(STATUS_LABELS.get(status, status))


def pdf_response(agreement: Agreement) -> Response:
    body = agreement_pdf(services.bundle(agreement), _status_label(agreement), _labels())
    response = Response(body, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{agreement.number}.pdf"'
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/agreements/<int:agreement_id>/document.pdf")
class AgreementPdf(MethodView):
    @blp.response(200)
    def get(self, agreement_id):
        """The agreement as a PDF, with its signatures' key ids and the document's SHA-256
        (its department, the operator, the regulator)."""
        return pdf_response(services.get_agreement(db.session, current_actor(), agreement_id))


@bp.get("/agreements/<int:agreement_id>/document.pdf")
@login_required
def document_pdf(agreement_id: int):
    try:
        agreement = services.get_agreement(db.session, g.actor, agreement_id)
    except DomainError:
        abort(404)
    return pdf_response(agreement)
