from tests.quotes.conftest import make_dataset, quote_body  # noqa: F401
