"""Every blueprint the app registers, in one list per kind. Add a line per new module.

API modules expose a flask-smorest ``blp``; web modules expose a Flask ``bp``.
"""

API_MODULES = [
    "market.api_base",
    "market.accounts.api",
    "market.audit.api",
    "licenses.api",
    "market.quotes.api",
    "market.consents.api",
    "market.datasets.api",
    "market.datasets.catalog_api",
    "market.datasets.lifecycle_api",
    "market.governance.api",
    "market.governance.levels_api",
    "market.agreements.api",
    "market.agreements.pdf_routes",
    "market.reports.api",
    "market.scenarios.api",
    "sandbox.api",
    "market.notifications.api",
]

WEB_MODULES = [
    "market.web.views",
    "licenses.views",
    "market.quotes.views",
    "market.accounts.views",
    "market.audit.views",
    "market.consents.views",
    "market.datasets.views",
    "market.datasets.lifecycle_views",
    "market.governance.views",
    "market.governance.levels_views",
    "market.scenarios.views",
    "market.agreements.views",
    "market.agreements.pdf_routes",
    "sandbox.views",
    "market.notifications.views",
    "licenses.invoice_views",
]
