"""The synthetic preview: marked, shaped like the schema, and built from no stored value."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.datasets.preview import (
    BAND_DASH,
    MAX_ROWS,
    PreviewColumn,
    band,
    read_profile,
    synthetic_preview,
)
from tests.catalog.conftest import REGISTRY_COLUMNS, Col

SHAPES = {
    ("pseudonymized", "credit_code"): r"ent_[0-9a-f]{24}",
    ("pseudonymized", "mobile"): r"mob_[0-9a-f]{24}",
    ("pseudonymized", "resident_id"): r"rid_[0-9a-f]{24}",
    ("pseudonymized", None): r"id_[0-9a-f]{24}",
    ("masked", "mobile"): r"1\d{2}\*{4}\d{4}",
    ("masked", "person_name"): r"\w\*",
    ("masked", "resident_id"): r"\d{6}\*{8}[0-9X]{4}",
    ("masked", "bank_card"): r"\d{6}\*{6}\d{4}",
    ("masked", "credit_code"): r"[0-9A-Z]{8}\*{10}",
    ("masked", "email"): r".\*\*\*@[\w.-]+",
    ("masked", "address"): r"\w+区\*{4}",
    ("generalized", "birth_date"): r"\d{4}-\d{2}",
    ("generalized", "age"): r"\d{2}-\d{2}",
    ("generalized", "address"): r"\w+区",
}


@pytest.mark.parametrize(("treatment", "kind"), list(SHAPES))
def test_treated_values_have_the_published_shape(treatment, kind):
    column = PreviewColumn("c", "string", kind, treatment)
    preview = synthetic_preview([column], rows=20, seed=3)
    values = [row["c"] for row in preview.rows]
    assert all(re.fullmatch(SHAPES[(treatment, kind)], v) for v in values), values
    assert len(set(values)) > 1  # generated, not one constant


def _bounds(text: str) -> tuple[Decimal, Decimal]:
    """A numeric band ``"1200–1300"`` → its bounds (the dash never starts a negative low)."""
    low, _, high = text.rpartition(BAND_DASH)
    return Decimal(low), Decimal(high)


def _preview_columns(cols=REGISTRY_COLUMNS):
    return [PreviewColumn(c.name, c.type, c.pii_kind, c.treatment, c.role, c.profile) for c in cols]


def test_preview_matches_schema_and_profiles():
    preview = synthetic_preview(_preview_columns(), rows=MAX_ROWS, seed=11)
    assert preview.synthetic is True
    names = [c.name for c in REGISTRY_COLUMNS if c.treatment != "suppressed"]
    assert [c["name"] for c in preview.columns] == names
    assert "法定代表人身份证号" not in preview.columns[0] and all(
        "法定代表人身份证号" not in row for row in preview.rows
    )
    for row in preview.rows:
        assert list(row) == names
        assert row["注册地址"] in {"浦东新区", "闵行区", "静安区"}
        assert row["行业"] in {"制造业", "批发和零售业"}
        # Numbers are bands of two significant digits around a value inside [min, max].
        low, high = _bounds(row["注册资本"])
        assert low < high and low <= Decimal("5000") and high >= Decimal("10")
        low, high = _bounds(row["员工人数"])
        assert low < high and low <= 500 and high >= 1 and low == int(low)
        # Dates are months within the range.
        assert re.fullmatch(r"\d{4}-\d{2}", row["成立日期"])
        assert "2005-01" <= row["成立日期"] <= "2024-06"
        assert isinstance(row["是否存续"], bool)


def test_preview_is_deterministic_per_seed():
    cols = _preview_columns()
    assert synthetic_preview(cols, 5, seed=1).rows == synthetic_preview(cols, 5, seed=1).rows
    assert synthetic_preview(cols, 5, seed=1).rows != synthetic_preview(cols, 5, seed=2).rows


@pytest.mark.parametrize("rows", [0, MAX_ROWS + 1, -3])
def test_row_count_is_bounded(rows):
    with pytest.raises(ValueError):
        synthetic_preview(_preview_columns(), rows=rows)


def test_rarely_shared_values_are_never_echoed():
    """A top value seen in one or two rows is as good as a record: not shown."""
    profile = {
        "top": [
            {"value": "上海独一无二科技有限公司", "count": 1},
            {"value": "甲", "count": 2},
            {"value": "制造业", "count": 30},
        ]
    }
    col = PreviewColumn("企业名称", "string", None, "none", "dimension", profile)
    values = {row["企业名称"] for row in synthetic_preview([col], rows=MAX_ROWS, seed=5).rows}
    assert values == {"制造业"}  # shared by many rows, small domain, and public (GB/T 4754)
    only_rare = PreviewColumn(
        "企业名称",
        "string",
        None,
        "none",
        "dimension",
        {"top": [{"value": "上海独一无二科技有限公司", "count": 1}]},
    )
    values = {row["企业名称"] for row in synthetic_preview([only_rare], rows=MAX_ROWS, seed=5).rows}
    assert "上海独一无二科技有限公司" not in values and len(values) > 1


def test_identifier_columns_ignore_profile_values():
    col = PreviewColumn(
        "处罚决定书文号",
        "string",
        None,
        "none",
        "identifier",
        {"top": [{"value": "沪浦环罚〔2024〕12号", "count": 50}]},
    )
    values = [row["处罚决定书文号"] for row in synthetic_preview([col], rows=20, seed=1).rows]
    assert "沪浦环罚〔2024〕12号" not in values
    assert all(re.fullmatch(r"SYN-[A-Z0-9]{10}", v) for v in values)


def test_null_share_leaves_gaps_but_keeps_some_values():
    col = PreviewColumn("备注", "string", None, "none", "other", {"null_share": 1.0})
    values = [row["备注"] for row in synthetic_preview([col], rows=MAX_ROWS, seed=2).rows]
    assert None in values and any(v is not None for v in values)


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ({"top": [["浦东新区", 5], ["闵行区", 4]]}, [("浦东新区", 5.0), ("闵行区", 4.0)]),
        ({"top_values": {"浦东新区": 5}}, [("浦东新区", 5.0)]),
        ({"top": [{"value": "A", "share": 0.2}]}, [("A", 0.2)]),
        ({"numeric": {"min": 1, "max": 2}}, []),
        (None, []),
    ],
)
def test_profile_reading_is_tolerant(profile, expected):
    assert read_profile(profile).top == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    low=st.decimals(min_value=-(10**6), max_value=10**6, places=2, allow_nan=False),
    span=st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False),
    std=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    integer=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_numbers_stay_within_the_profile_range(low, span, std, integer, seed):
    high = low + span
    mean = low + span / 2
    kind = "integer" if integer else "decimal"
    profile = {"min": float(low), "max": float(high), "mean": float(mean), "std": std, "scale": 2}
    rows = synthetic_preview(
        [PreviewColumn("x", kind, None, "none", "measure", profile)], 10, seed
    ).rows
    for row in rows:
        band_low, band_high = _bounds(row["x"])
        # The band holds a value drawn inside [low, high].
        assert band_low < band_high and band_low <= high and band_high >= low
        assert row["x"] not in (str(low), str(high), str(mean))


@pytest.mark.parametrize(
    ("value", "integer", "scale", "expected"),
    [
        (1234.56, False, 2, "1200–1300"),
        (7.0, True, 0, "7–8"),
        (0.0, False, 2, "0–0.01"),
        (0.0123, False, 2, "0.01–0.02"),
        (-1234.5, False, 2, "-1300–-1200"),
        (98765.0, True, 0, "98000–99000"),
    ],
)
def test_bands(value, integer, scale, expected):
    assert band(value, integer=integer, scale=scale) == expected


# -- the API ------------------------------------------------------------------------------------


def test_api_preview_is_marked_and_matches_the_schema(client, make_dataset):
    d = make_dataset()
    body = client.get(f"/api/v1/datasets/{d.id}/preview", query_string={"rows": 7}).get_json()
    assert body["synthetic"] is True and body["version"] == 1 and len(body["rows"]) == 7
    schema = client.get(f"/api/v1/datasets/{d.id}").get_json()["columns"]
    published = [c for c in schema if c["treatment"] != "suppressed"]
    assert [(c["name"], c["type"], c["pii_kind"], c["treatment"]) for c in body["columns"]] == [
        (c["name"], c["type"], c["pii_kind"], c["treatment"]) for c in published
    ]
    assert (
        client.get(f"/api/v1/datasets/{d.id}/preview", query_string={"rows": 500}).status_code
        == 422
    )


def test_api_preview_never_reads_stored_data(client, make_dataset, app, monkeypatch, tmp_path):
    """The stored Parquet holds real (desensitized) values: none may appear, and the file is
    never opened."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from market.extensions import db

    d = make_dataset(
        columns=[
            Col(
                "统一社会信用代码",
                pii_kind="credit_code",
                treatment="pseudonymized",
                role="entity_key",
            ),
            Col("联系电话", pii_kind="mobile", treatment="masked", role="identifier"),
            Col("案号", role="identifier"),
            Col("罚款金额", type="decimal", role="measure"),
        ]
    )
    stored = {
        "统一社会信用代码": [f"ent_{i:024x}" for i in range(50)],
        "联系电话": [f"139****{i:04d}" for i in range(50)],
        "案号": [f"（2024）沪0115民初{i}号" for i in range(50)],
        "罚款金额": [f"{1000 + i}.00" for i in range(50)],
    }
    path = tmp_path / "v1.parquet"
    pq.write_table(pa.table(stored), path)
    d.current_version.parquet_path = str(path)
    db.session.commit()

    def forbidden(*args, **kwargs):
        raise AssertionError("the preview must not read stored data")

    monkeypatch.setattr(pq, "read_table", forbidden)
    monkeypatch.setattr(pq, "ParquetFile", forbidden)
    monkeypatch.setattr(duckdb, "connect", forbidden)
    body = client.get(f"/api/v1/datasets/{d.id}/preview", query_string={"rows": 50}).get_json()
    assert body["synthetic"] is True
    for name in ("统一社会信用代码", "联系电话", "案号"):
        echoed = {row[name] for row in body["rows"]} & set(stored[name])
        assert not echoed, name


def test_preview_of_a_dataset_without_columns_is_empty(client, make_dataset):
    d = make_dataset(columns=[])
    assert client.get(f"/api/v1/datasets/{d.id}/preview").get_json() == {
        "synthetic": True,
        "version": 1,
        "columns": [],
        "rows": [],
    }
