from tests.licenses_app.conftest import market  # noqa: F401
