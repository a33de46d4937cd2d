"""Web pages for licenses, payments, revenue and the blacklist.

They call the same services as the API; the request boundary commits
(``market._commit_on_success``). Other areas link to ``licenses.apply`` (quote → application).
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("licenses", __name__)

# The pages register themselves on ``bp`` when imported.
from licenses.views import common, license_pages, operator_pages, panels  # noqa: E402,F401
