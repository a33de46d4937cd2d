"""Pseudonyms, masks and generalizations."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from market.pipeline import dates as vd
from market.pipeline import kinds, pseudonym
from market.pipeline import vectorized as vz
from market.pipeline.desensitize import (
    Pseudonymizer,
    coarsen,
    generalize_ages,
    generalize_dates,
    mask,
    mask_embedded,
)
from tests.pipeline.factories import credit_code, resident_id

KEY = b"test-pseudonym-key"
CODE = credit_code("MA1FL8XQ3")


def test_pseudonym_is_keyed_hmac_sha256() -> None:
    mac = hmac.new(KEY, b"credit_code\x00" + CODE.encode(), hashlib.sha256).hexdigest()
    assert pseudonym(KEY, kinds.CREDIT_CODE, CODE) == "ent_" + mac[:24]
    assert hashlib.sha256(CODE.encode()).hexdigest()[:24] not in pseudonym(
        KEY, kinds.CREDIT_CODE, CODE
    )
    assert pseudonym(b"another key", kinds.CREDIT_CODE, CODE) != pseudonym(
        KEY, kinds.CREDIT_CODE, CODE
    )


@pytest.mark.parametrize(
    ("kind", "a", "b"),
    [
        (kinds.CREDIT_CODE, CODE, " " + CODE.lower() + " "),
        (kinds.RESIDENT_ID, "11010519491231002X", "１１０１０５１９４９１２３１００２ｘ"),
        (kinds.MOBILE, "13812345678", "+86 138-1234-5678"),
        (kinds.BANK_CARD, "6222021234567890128", "6222 0212 3456 7890 128"),
        (kinds.EMAIL, "a.b@example.com", " A.B@Example.COM"),
    ],
)
def test_pseudonym_normalizes(kind: str, a: str, b: str) -> None:
    assert pseudonym(KEY, kind, a) == pseudonym(KEY, kind, b)


def test_pseudonym_separates_kinds_and_refuses_empty() -> None:
    assert pseudonym(KEY, kinds.MOBILE, "13812345678") != pseudonym(
        KEY, kinds.BANK_CARD, "13812345678"
    )
    with pytest.raises(ValueError):
        pseudonym(KEY, kinds.MOBILE, "  ")
    with pytest.raises(ValueError):
        pseudonym(b"", kinds.MOBILE, "13812345678")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.text(min_size=1, max_size=30)), min_size=1, max_size=40),
    st.sampled_from([*kinds.PII_KINDS, None]),
    st.text(min_size=1, max_size=100),  # up to 400 bytes: keys longer than a block are hashed
)
@example(["\U0001dfcd"], kinds.RESIDENT_ID, "0")  # Unicode versions differ (see validators.nfkc)
def test_column_pseudonyms_match_scalar(
    values: list[str | None], kind: str | None, key_text: str
) -> None:
    key = key_text.encode()
    norm = vz.normalize(kind, pa.array(values, pa.string()))
    out = Pseudonymizer(key).column(kind, norm).to_pylist()
    for value, norm_value, got in zip(values, norm.to_pylist(), out, strict=True):
        assert got == (None if norm_value is None else pseudonym(key, kind, value))


def test_column_pseudonyms_split_over_cores_and_reused_across_chunks() -> None:
    ids = [resident_id("310115", dt.date(1980, 1, 1) + dt.timedelta(days=i % 9000), i % 1000)
           for i in range(60_000)]
    pseudonyms = Pseudonymizer(KEY)
    first = pseudonyms.column(kinds.RESIDENT_ID, pa.array(ids[:50_000]), "身份证号")
    # the next chunk repeats half of the first one's values and brings new ones
    second = pseudonyms.column(kinds.RESIDENT_ID, pa.array(ids[25_000:]), "身份证号")
    assert first.type == second.type == pa.string()
    for i in (0, 1, 24_999, 49_999):
        assert first[i].as_py() == pseudonym(KEY, kinds.RESIDENT_ID, ids[i])
    for i in (0, 24_999, 34_999):
        assert second[i].as_py() == pseudonym(KEY, kinds.RESIDENT_ID, ids[25_000 + i])
    assert first.slice(25_000).equals(second.slice(0, 25_000))


@pytest.mark.parametrize("share", [0.0, 0.5, 0.95, 1.0])
def test_an_expected_distinct_share_changes_the_work_never_a_pseudonym(share: float) -> None:
    ids = [resident_id("310115", dt.date(1970, 1, 1) + dt.timedelta(days=i % 7000), i % 1000)
           for i in range(30_000)]
    chunks = [pa.array(ids[:12_000] + [None]), pa.array(ids[6_000:20_000]), pa.array(ids[:500])]
    plain, told = Pseudonymizer(KEY), Pseudonymizer(KEY)
    told.expect_distinct("身份证号", share)
    for chunk in chunks:
        norm = vz.normalize(kinds.RESIDENT_ID, chunk)
        assert told.column(kinds.RESIDENT_ID, norm, "身份证号").equals(
            plain.column(kinds.RESIDENT_ID, norm, "身份证号")
        )


def test_masking_short_or_null_resident_ids_does_not_fail() -> None:
    arr = vz.normalize(kinds.RESIDENT_ID, pa.array(["123", None, "11010519491231002X"]))
    valid = vz.resident_id_valid(arr, dt.date(2025, 1, 1))
    assert mask(kinds.RESIDENT_ID, arr, valid).to_pylist() == ["1***", None, "110105********002X"]
    nulls = pa.nulls(3, pa.string())
    assert mask(kinds.RESIDENT_ID, nulls, np.zeros(3, bool)).to_pylist() == [None] * 3


def test_the_pseudonym_key_must_be_text() -> None:
    with pytest.raises(ValueError):
        Pseudonymizer(b"\xff\xfe not utf-8")
    with pytest.raises(ValueError):
        Pseudonymizer(b"")


def test_masks() -> None:
    def m(kind: str | None, values: list[str]) -> list[str]:
        arr = vz.normalize(kind, pa.array(values))
        valid = {
            kinds.MOBILE: vz.mobile_valid,
            kinds.RESIDENT_ID: lambda a: vz.resident_id_valid(a, dt.date(2025, 1, 1)),
            kinds.BANK_CARD: vz.bank_card_valid,
            kinds.EMAIL: vz.email_valid,
            kinds.CREDIT_CODE: vz.credit_code_valid,
        }.get(kind, lambda a: np.ones(len(a), bool))(arr)
        return mask(kind, arr, valid).to_pylist()

    assert m(kinds.MOBILE, ["13812341234", "1381234"]) == ["138****1234", "1***"]
    assert m(kinds.PERSON_NAME, ["张三", "欧阳娜娜"]) == ["张*", "欧*"]
    assert m(kinds.RESIDENT_ID, ["11010519491231002X"]) == ["110105********002X"]
    assert m(kinds.BANK_CARD, ["6222021234567890128"]) == ["622202******0128"]
    assert m(kinds.EMAIL, ["alice@example.com"]) == ["a***@example.com"]
    assert m(kinds.CREDIT_CODE, [CODE]) == ["91310000**********"]
    assert m(kinds.ADDRESS, ["上海市浦东新区张江路100号"]) == ["上海市浦东新区****"]
    assert m(None, ["abc", "x"]) == ["a***", "*"]


def test_mask_embedded() -> None:
    rid = resident_id("110105", dt.date(1990, 1, 1), 7)
    text = pa.array(
        [f"电话13812345678号,13912345678;证件{rid}", "mail a.b@example.com", None, "无"]
    )
    out = mask_embedded(text).to_pylist()
    assert out[0] == f"电话138****5678号,139****5678;证件110105********{rid[-4:]}"
    assert out[1] == "mail a***@example.com"
    assert out[2:] == [None, "无"]


def test_generalize_dates_and_coarsen() -> None:
    ok, dates = vd.parse_dates(pa.array(["1990-05-17", "1987-12-01", None]))
    month = generalize_dates(ok, dates, 0)
    assert month.to_pylist() == ["1990-05", "1987-12", None]
    assert coarsen(kinds.BIRTH_DATE, month, 1).to_pylist() == ["1990", "1987", None]
    assert coarsen(kinds.BIRTH_DATE, month, 2).to_pylist() == ["1990-1994", "1985-1989", None]
    assert coarsen(kinds.BIRTH_DATE, month, 3).to_pylist() == ["1990-1999", "1980-1989", None]
    for level in range(4):
        assert (
            coarsen(kinds.BIRTH_DATE, month, level).to_pylist()
            == generalize_dates(ok, dates, level).to_pylist()
        )


def test_generalize_ages_and_coarsen() -> None:
    ages = np.array([3, 34, 35, 90, 101, 0])
    ok = np.array([True, True, True, True, True, False])
    bands = generalize_ages(ok, ages, 0)
    assert bands.to_pylist() == ["0-4", "30-34", "35-39", "90+", "90+", None]
    assert coarsen(kinds.AGE, bands, 1).to_pylist() == ["0-9", "30-39", "30-39", "90+", "90+", None]
    assert coarsen(kinds.AGE, bands, 2).to_pylist() == [
        "0-19",
        "20-39",
        "20-39",
        "90+",
        "90+",
        None,
    ]


def test_address_levels() -> None:
    addresses = pa.array(["浙江省杭州市西湖区文三路1号", "上海市浦东新区张江路100号", "无法识别"])
    district = vz.region(addresses, 0)
    assert district.to_pylist() == ["浙江省杭州市西湖区", "上海市浦东新区", None]
    assert coarsen(kinds.ADDRESS, district, 1).to_pylist() == ["浙江省杭州市", "上海市", None]
    assert coarsen(kinds.ADDRESS, district, 2).to_pylist() == ["浙江省", "上海市", None]
