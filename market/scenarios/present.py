"""Scenarios and products as the API and the pages show them."""

from __future__ import annotations

from typing import Any

from flask_babel import get_locale
from sqlalchemy.orm import Session

from market.scenarios import services
from market.scenarios.models import DataProduct, Scenario


def title_of(obj: Scenario | DataProduct) -> str:
    """The English title on English pages when there is one, else the Chinese."""
    locale = get_locale()
    if locale is not None and locale.language == "en" and obj.title_en:
        return obj.title_en
    return obj.title


def scenario_view(scenario: Scenario) -> dict[str, Any]:
    return {
        "id": scenario.id,
        "code": scenario.code,
        "title": scenario.title,
        "title_en": scenario.title_en,
        "description": scenario.description,
        "status": scenario.status,
        "purposes": list(scenario.purposes),
        "datasets": [{"id": sd.dataset_id, "title": sd.dataset.title} for sd in scenario.datasets],
        "submitted_at": scenario.submitted_at,
        "decided_at": scenario.decided_at,
        "decision_comment": scenario.decision_comment,
        "created_at": scenario.created_at,
        "starts_at": scenario.starts_at,
        "ends_at": scenario.ends_at,
        "effective_status": services.effective_status(scenario),
        "withdrawn_at": scenario.withdrawn_at,
        "withdrawal_reason": scenario.withdrawal_reason,
    }


def product_view(session: Session, product: DataProduct) -> dict[str, Any]:
    amounts: dict[int, int] = {}
    price = None
    try:
        quote = services.product_quote(session, product)
        price = quote.total
        amounts = {item.dataset_id: item.amount for item in quote.items}
    except services.ValidationFailed:
        pass
    return {
        "id": product.id,
        "code": product.code,
        "title": product.title,
        "title_en": product.title_en,
        "description": product.description,
        "access": product.access,
        "purpose": product.purpose,
        "duration_months": product.duration_months,
        "query_quota": product.query_quota,
        "status": product.status,
        "items": [
            {
                "dataset_id": item.dataset_id,
                "title": item.dataset.title,
                "columns": item.columns,
                "amount": amounts.get(item.dataset_id),
            }
            for item in product.items
        ],
        "price": price,
        "currency": "CNY",
        "scenarios": [
            {"id": s.id, "code": s.code, "title": s.title}
            for s in services.scenarios_for_product(session, product)
        ],
        "published_at": product.published_at,
        "created_at": product.created_at,
    }
