from tests.licenses_app.conftest import market  # noqa: F401  (the licenses tests' builder)
