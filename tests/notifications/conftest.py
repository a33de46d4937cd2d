"""The licenses and consents tests' builders, reused: notifications come from their flows."""

from tests.consents.conftest import world  # noqa: F401
from tests.licenses_app.conftest import market  # noqa: F401
