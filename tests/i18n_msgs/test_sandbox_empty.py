"""A sandbox answer without rows says why, in the caller's language; on differentially
private data it says one fixed sentence, so that the reason is no oracle (#15)."""

from __future__ import annotations

import pytest

from sandbox.dp import NoNoise
from tests.sandbox_app import data
from tests.sandbox_app.conftest import query
from tests.zh_text import assert_chinese, assert_english

DP_GROUPED = "SELECT district, COUNT(*) AS n FROM loans WHERE district = '{d}' GROUP BY district"


@pytest.fixture
def exact(app, monkeypatch):
    """Exact values: a group passes when its distinct count reaches the release threshold."""
    monkeypatch.setitem(app.extensions, "sandbox.noise", NoNoise())


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_dp_empty_answers_give_one_fixed_reason(world, client, exact, lang):
    buyer = world.party()
    world.dataset("loans", eps_per_query="4", delta="0.000001")  # tau 11
    lic = world.license(buyer, ["loans"])
    h = {**buyer.headers, "Accept-Language": lang}
    reasons = []
    # The filter matches nothing / the filter matches a group below the threshold / rows.
    for district in ("无此区", data.SMALL, data.DISTRICTS[0]):
        r = query(client, lic.id, DP_GROUPED.format(d=district), h)
        assert r.status_code == 200, r.get_json()
        reasons.append(r.get_json().get("empty_reason"))
    nothing, small, big = reasons
    assert big is None  # an answer with rows needs no reason
    assert nothing and nothing == small, reasons  # no oracle: the same words either way
    (assert_chinese if lang == "zh" else assert_english)(nothing, "dp empty reason")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_open_data_empty_answer_says_the_filter_matched_nothing(world, client, lang):
    buyer = world.party()
    lic = world.license(buyer, ["firms"])
    h = {**buyer.headers, "Accept-Language": lang}
    r = query(client, lic.id, "SELECT district, capital FROM firms WHERE capital < 0", h)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["rows"] == [] and body["suppressed_groups"] == 0
    reason = body["empty_reason"]
    (assert_chinese if lang == "zh" else assert_english)(reason, "open empty reason")
    assert ("WHERE" in reason) and ("filter" in reason if lang == "en" else "筛选" in reason)
    r = query(client, lic.id, "SELECT district, capital FROM firms WHERE capital > 500", h)
    assert "empty_reason" not in r.get_json()
