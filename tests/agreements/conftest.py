"""Fixtures of the agreements tests: the datasets tests' upload helpers, and a department
without any agreement."""

from __future__ import annotations

import pytest

from tests.datasets.conftest import (  # noqa: F401  (fixtures re-exported for these tests)
    _cheap_password_hashing,
    data_dir,
    operator,
    published,
    upload,
)


@pytest.fixture
def department(make_org, make_user, auth_header):
    """(user, headers) of a department that has signed no agreement yet."""
    org = make_org("department", agreement=False)
    user = make_user("department", org=org)
    return user, auth_header(user)


from tests.licenses_app.conftest import market  # noqa: E402,F401
