"""``GET /api/v1/reports/{YYYY-MM}``: the signed monthly regulator report (JSON, CSV, PDF)."""

from __future__ import annotations

import json

import marshmallow as ma
from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from market.auth import current_actor
from market.extensions import db
from market.reports import services
from market.reports.labels import pdf_labels
from market.reports.pdf import report_pdf
from market.web import validators as mv

blp = Blueprint(
    "reports_api", __name__, url_prefix="/api/v1",
    description="Regulator reports (监管报送), signed, with the audit head they were computed from",
)


class ReportArgs(ma.Schema):
    format = ma.fields.String(load_default="json", validate=mv.OneOf(["json", "csv", "pdf"]))


def report_response(signed: dict, fmt: str) -> Response:
    period = signed["report"]["period"]
    if fmt == "csv":
        response = Response(services.report_csv(signed), mimetype="text/csv")
        response.headers["Content-Disposition"] = f'attachment; filename="report-{period}.csv"'
    elif fmt == "pdf":
        response = Response(report_pdf(signed, pdf_labels()), mimetype="application/pdf")
        response.headers["Content-Disposition"] = f'attachment; filename="report-{period}.pdf"'
    else:
        response = Response(json.dumps(signed, ensure_ascii=False), mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/reports/<period>")
class Report(MethodView):
    @blp.arguments(ReportArgs, location="query")
    @blp.response(200)
    def get(self, args, period):
        """The monthly report ``{report, signature, public_key_id}`` (regulator, operator);
        ``?format=csv`` or ``?format=pdf`` for the same report as a file."""
        signed = services.build_report(db.session, current_actor(), period)
        # The signed head may have been checkpointed just now: keep it.
        db.session.commit()
        return report_response(signed, args["format"])
