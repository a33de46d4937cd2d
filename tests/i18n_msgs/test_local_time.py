"""Times on screen are Shanghai time in one format, whether they come as datetimes or as the ISO
8601 strings that API dicts carry."""

from __future__ import annotations

import datetime as dt

import pytest

from market.web import local_time


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 12, 7, 15, 6, 50, 173621, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 7, 15, 6, 50, 173621),
        "2026-12-07T15:06:50.173621Z",
        "2026-12-07T15:06:50.173621+00:00",
    ],
)
def test_utc_is_shown_in_shanghai_time(value):
    assert local_time(value) == "2026-12-07 23:06"


def test_no_time_is_a_dash():
    assert local_time(None) == "—"
