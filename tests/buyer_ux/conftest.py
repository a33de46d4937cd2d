from tests.consents.conftest import world  # noqa: F401, E402
from tests.quotes.conftest import make_dataset, quote_body  # noqa: F401
