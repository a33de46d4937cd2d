"""Fixtures of the governance tests: the licenses app's market builder, the datasets upload
helpers and the catalogue's dataset maker are reused as they are."""

from __future__ import annotations

from tests.catalog.conftest import login, make_dataset  # noqa: F401
from tests.datasets.conftest import (  # noqa: F401
    _cheap_password_hashing,
    data_dir,
    department,
    operator,
    published,
    upload,
)
from tests.licenses_app.conftest import apply, market  # noqa: F401
