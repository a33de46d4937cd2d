"""The quality and k-anonymity reports explain themselves: what was measured, and why a
dimension or k shows "—" (it does not apply), in English and Chinese."""

from __future__ import annotations

import re

from tests.datasets.conftest import csv_bytes, sample_rows


def _enterprise_only_rows() -> list[dict[str, str]]:
    """No personal column at all: a credit code, a district, an industry, an amount, a month."""
    keep = ("统一社会信用代码", "所属区", "行业", "纳税额(元)", "所属期")
    return [{k: r[k] for k in keep} for r in sample_rows(40)]


def _page(client, department, dataset_id: int, lang: str) -> str:
    from tests.accounts.test_web import login

    login(client, department[0].email)
    client.get(f"/?lang={lang}")
    return client.get(f"/datasets/{dataset_id}").get_data(as_text=True)


def _section(html: str, testid: str) -> str:
    m = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</(ul|dl|p)>', html, re.S)
    assert m, testid
    return re.sub(r"<[^>]+>", " ", m.group(1))


def test_no_quasi_identifier_says_why_k_is_a_dash(client, department, published):
    dataset_id = published(csv_bytes(_enterprise_only_rows()), title="纳税信息")
    html = _page(client, department, dataset_id, "en")
    k = _section(html, "k-explained")
    assert "does not apply" in k and "publishes none of them" in k
    assert "Date of birth" in k and "Address" in k  # the kinds that would count
    assert "所属区 names an area of the city" in k and "not a quasi-identifier" in k
    quality = _section(html, "quality-explained")
    # Consistency has nothing to cross-check: it says so instead of a bare dash.
    assert re.search(r"Consistency: —\s*</?\w*.*?no resident-ID column", html, re.S)
    assert "Does not apply" in quality
    score = _section(html, "score-explained")
    assert "do not apply to this file" in score and "Consistency" in score
    pending = _section(html, "pending-k-explained")
    assert "publishes none of them" in pending


def test_measured_dimensions_name_their_columns(client, department, published):
    dataset_id = published()
    html = _page(client, department, dataset_id, "en")
    quality = _section(html, "quality-explained")
    assert "纳税额(元)" in quality or "所属区" in quality  # accuracy names the columns it checked
    # A resident ID alone has nothing to be compared with.
    assert "no resident-ID column together with a birth-date or gender column" in quality
    assert "The latest date in the data is" in quality or "unproven" in quality
    assert "values pass a domain rule, in:" in quality
    k = _section(html, "k-explained")
    assert "Every combination of the quasi-identifiers" in k


def test_reports_explain_in_chinese(client, department, published):
    dataset_id = published(csv_bytes(_enterprise_only_rows()))
    html = _page(client, department, dataset_id, "zh")
    k = _section(html, "k-explained")
    assert "不适用" in k and "准标识符" in k
    assert "does not apply" not in html and "Does not apply" not in html
