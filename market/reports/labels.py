"""Translated headings of the report's PDF and page."""

from __future__ import annotations

from flask_babel import gettext as _


def pdf_labels() -> dict[str, str]:
    return {
        "title": _("Regulator report"),
        "generated_at": _("Generated"),
        "audit_head": _("Audit head"),
        "licenses": _("Licenses"),
        "granted": _("Licenses granted"),
        "category": _("Category"),
        "amount_fen": _("Amount (fen)"),
        "department": _("Department"),
        "items": _("Items"),
        "scenario": _("Scenario"),
        "product": _("Data product"),
        "none": _("(none)"),
        "operator_fen": _("Operator (fen)"),
        "departments_fen": _("Departments (fen)"),
        "revenue": _("Revenue against the caps"),
        "party": _("Party"),
        "revenue_fen": _("Revenue (fen)"),
        "cap_fen": _("Cap (fen)"),
        "excess_fen": _("Excess (fen)"),
        "queries": _("Sandbox queries"),
        "rule": _("Rule"),
        "count": _("Count"),
        "buyer": _("Buyer"),
        "epsilon": _("Epsilon spent"),
        "consents": _("Consents and lookups"),
        "lookups": _("Lookups"),
        "refused": _("refused"),
        "governance": _("Suspensions and list changes"),
        "event": _("Event"),
        "kpis": _("Operation KPIs"),
        "datasets_listed": _("Datasets listed"),
        "datasets_listed_during_month": _("Datasets listed at any time in the month"),
        "buyers_served": _("Buyers served"),
        "revenue_returned_to_departments_bps": _("Revenue returned to departments (bp)"),
        "sandbox_query_p95_ms": _("p95 sandbox query latency (ms)"),
        "sandbox_queries_timed": _("Sandbox queries timed"),
        "http_p95_ms": _("p95 HTTP latency (ms, bucket upper bound)"),
        "http_requests_timed": _("API requests timed"),
        "http_latency_by_route_group": _("API latency by route group"),
        "signature": _("Signature"),
    }
