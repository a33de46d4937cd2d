from tests.quotes.conftest import make_dataset, quote_body  # noqa: F401 - shared fixtures
from tests.sandbox_app.conftest import _close_sandbox_engines, world  # noqa: F401 - shared
