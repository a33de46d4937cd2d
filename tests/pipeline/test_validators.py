"""Validators: the scalar reference rules, and the vectorized ones agreeing with them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from market.idcodes import is_valid_resident_id, is_valid_uscc
from market.pipeline import dates as vd
from market.pipeline import kinds
from market.pipeline import validators as v
from market.pipeline import vectorized as vz
from tests.pipeline.factories import credit_code, luhn_complete, resident_id

TODAY = dt.date(2025, 7, 1)
RID = resident_id("110105", dt.date(1949, 12, 31), 2)  # 11010519491231002X


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (RID, True),
        (RID.lower(), True),  # lower-case x
        ("１１０１０５１９４９１２３１００２Ｘ", True),  # full-width
        ("110105 19491231 002X", True),
        (RID[:17] + "1", False),  # wrong check character
        (resident_id("110105", dt.date(1990, 1, 1), 5)[:-1] + "X", False),
        ("110105" + "19900230" + "0011", False),  # 30 February, whatever the check char
        (resident_id("110105", dt.date(2030, 1, 1), 1), False),  # born in the future
        (resident_id("110105", dt.date(1899, 12, 31), 1), False),  # before 1900
        ("110105491231002", True),  # legacy 15 digits: 1949-12-31
        ("110105490230002", False),  # legacy, impossible date
        ("11010549123100", False),  # 14 digits
        ("11010519491231002Y", False),
        ("", False),
    ],
)
def test_resident_id(value: str, valid: bool) -> None:
    assert v.is_resident_id(value, TODAY) is valid
    norm = v.normalize(kinds.RESIDENT_ID, value)
    arr = pa.array([norm], pa.string())
    assert bool(vz.resident_id_valid(arr, TODAY)[0]) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (credit_code("MA1FL8XQ3"), True),
        (credit_code("MA1FL8XQ3").lower(), True),
        (credit_code("MA1FL8XQ3")[:17] + "0", False),
        ("91310000MA1FL8XQ3I", False),  # I is not in the alphabet
        ("91310000MA1FL8XQ3", False),
    ],
)
def test_credit_code(value: str, valid: bool) -> None:
    assert v.is_credit_code(value) is valid
    arr = pa.array([v.normalize(kinds.CREDIT_CODE, value)], pa.string())
    assert bool(vz.credit_code_valid(arr)[0]) is valid


@pytest.mark.parametrize(
    ("digits", "ok"),
    [
        ("79927398713", True),  # the textbook example
        ("79927398710", False),
        ("4111111111111111", True),
        ("4111111111111112", False),
        ("0", True),
        ("12a4", False),
    ],
)
def test_luhn(digits: str, ok: bool) -> None:
    assert v.luhn_ok(digits) is ok


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (luhn_complete("622202123456789012"), True),  # 19-digit UnionPay
        ("4111 1111 1111 1111", True),  # 16 digits, spaces
        ("4111-1111-1111-1111", True),
        ("4111111111111112", False),  # Luhn fails
        (luhn_complete("12345678901234"), False),  # 15 digits: too short
        (luhn_complete("1234567890123456"), False),  # 17 digits but prefix 1
        (luhn_complete("72345678901234567"), False),  # prefix 7
        (luhn_complete("62220212345678901234"), False),  # 21 digits
    ],
)
def test_bank_card(value: str, valid: bool) -> None:
    assert v.is_bank_card(value) is valid
    arr = pa.array([v.normalize(kinds.BANK_CARD, value)], pa.string())
    assert bool(vz.bank_card_valid(arr)[0]) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("13812345678", True),
        ("+86 138 1234 5678", True),
        ("0086-13812345678", True),
        ("8613812345678", True),
        ("138-1234-5678", True),
        ("12812345678", False),  # 12x is not a mobile range
        ("1381234567", False),
        ("138123456789", False),
        ("电话13812345678", False),  # not the whole value
    ],
)
def test_mobile(value: str, valid: bool) -> None:
    assert v.is_mobile(value) is valid
    arr = pa.array([v.normalize(kinds.MOBILE, value)], pa.string())
    assert bool(vz.mobile_valid(arr)[0]) is valid


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("电话13812345678号", {kinds.MOBILE}),  # CJK on both sides: \b would miss it
        ("联系13812345678", {kinds.MOBILE}),
        ("编号213812345678", set()),  # 12 digits: not a mobile
        ("138123456780", set()),
        (f"身份证{RID}已核验", {kinds.RESIDENT_ID}),
        (f"证件{RID[:17]}1", set()),  # bad check character
        ("邮箱 a.b@example.com 联系", {kinds.EMAIL}),
        (f"卡号{luhn_complete('622202123456789012')}", {kinds.BANK_CARD}),
        (f"企业{credit_code('MA1FL8XQ3')}", {kinds.CREDIT_CODE}),
        ("电话１３８１２３４５６７８", {kinds.MOBILE}),  # full-width digits
        ("没有个人信息", set()),
    ],
)
def test_find_embedded(text: str, found: set[str]) -> None:
    assert v.find_embedded(text, TODAY) == found


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("a.b+tag@example.com", True),
        ("USER@Example.COM", True),
        ("a@b", False),
        ("@example.com", False),
        ("a b@example.com", False),
    ],
)
def test_email(value: str, valid: bool) -> None:
    assert v.is_email(value) is valid


@pytest.mark.parametrize(
    ("value", "chinese"),
    [
        ("张三", True),
        ("欧阳娜娜", True),
        ("司马相如", True),
        ("买买提·艾力", True),
        ("黄浦区", False),  # starts with a surname but is a district
        ("金融服务中心", False),  # too long, and an institution
        ("上海", False),  # 上 is not a surname
        ("张", False),
    ],
)
def test_chinese_name(value: str, chinese: bool) -> None:
    assert v.is_chinese_name(value) is chinese
    assert bool(vz.chinese_name_like(pa.array([value]))[0]) is chinese


@pytest.mark.parametrize(
    ("address", "region", "detailed"),
    [
        ("上海市浦东新区张江路100号", "上海市浦东新区", True),
        ("浙江省杭州市西湖区文三路1号501室", "浙江省杭州市西湖区", True),
        ("杭州市西湖区", "杭州市西湖区", False),
        ("上海市长宁路100号小区", "上海市", True),  # a street is not a district
        ("江苏省昆山市玉山镇人民路5号", "江苏省昆山市", True),
        ("新疆维吾尔自治区乌鲁木齐市天山区", "新疆维吾尔自治区乌鲁木齐市天山区", False),
        ("some street 5", None, False),
    ],
)
def test_address(address: str, region: str | None, detailed: bool) -> None:
    assert v.region_of(address) == region
    assert v.is_detailed_address(address) is detailed
    assert vz.region(pa.array([address])).to_pylist() == [region]
    assert bool(vz.detailed_address_like(pa.array([address]))[0]) is detailed


@pytest.mark.parametrize(
    ("value", "compact", "expected"),
    [
        ("2024-02-29", False, dt.date(2024, 2, 29)),
        ("2023-02-29", False, None),
        ("2024/1/5", False, dt.date(2024, 1, 5)),
        ("2024.01.05", False, dt.date(2024, 1, 5)),
        ("2024年1月5日", False, dt.date(2024, 1, 5)),
        ("20240105", False, None),
        ("20240105", True, dt.date(2024, 1, 5)),
        ("2024-13-01", False, None),
        ("01/05/2024", False, None),
    ],
)
def test_dates(value: str, compact: bool, expected: dt.date | None) -> None:
    assert v.parse_date(value, compact=compact) == expected
    ok, dates = vd.parse_dates(pa.array([value]), compact=compact)
    assert bool(ok[0]) is (expected is not None)
    if expected is not None:
        assert dates[0] == np.datetime64(expected)


def test_datetimes() -> None:
    arr = pa.array(
        [
            "2024-01-05 13:45:10",
            "2024-01-05T13:45",
            "2024-01-05 13:45:10.25Z",
            "2024-01-05",
            "2024-01-05 24:00:00",
            None,
        ]  # fmt: skip
    )
    ok, stamps = vd.parse_datetimes(arr)
    assert ok.tolist() == [True, True, True, True, False, False]
    assert str(stamps[0]) == "2024-01-05T13:45:10.000000"
    assert str(stamps[2]) == "2024-01-05T13:45:10.250000"
    assert str(stamps[3]) == "2024-01-05T00:00:00.000000"


@pytest.mark.parametrize(
    ("value", "gender"), [("男", "M"), ("Female", "F"), ("未知", None), ("x", None)]
)
def test_gender(value: str, gender: str | None) -> None:
    assert v.gender_of(value) == gender


def test_resident_id_gender_and_birth() -> None:
    assert v.resident_id_gender(RID) == "F"  # sequence digit 2: even
    assert v.resident_id_birth(RID) == dt.date(1949, 12, 31)
    assert vz.resident_id_gender(pa.array([RID, "110105491231003", None])).tolist() == [2, 1, 0]


# ---------------------------------------------------------------------------- agreement

_ID_CHARS = st.sampled_from("0123456789Xx -")
_CODE_CHARS = st.sampled_from("0123456789ABCDEFGHJKLMNPQRTUWXYIOZSVab -")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(_ID_CHARS, min_size=13, max_size=20), min_size=1, max_size=20))
def test_resident_id_agrees(values: list[str]) -> None:
    norms = [v.normalize(kinds.RESIDENT_ID, x) for x in values]
    expected = [n is not None and is_valid_resident_id(n, TODAY) for n in norms]
    arr = vz.normalize(kinds.RESIDENT_ID, pa.array(values))
    assert arr.to_pylist() == norms
    assert vz.resident_id_valid(arr, TODAY).tolist() == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(_CODE_CHARS, min_size=16, max_size=20), min_size=1, max_size=20))
def test_credit_code_agrees(values: list[str]) -> None:
    norms = [v.normalize(kinds.CREDIT_CODE, x) for x in values]
    arr = vz.normalize(kinds.CREDIT_CODE, pa.array(values))
    assert arr.to_pylist() == norms
    assert vz.credit_code_valid(arr).tolist() == [n is not None and is_valid_uscc(n) for n in norms]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.sampled_from("0123456789 -"), min_size=14, max_size=22), max_size=20))
def test_bank_card_agrees(values: list[str]) -> None:
    arr = vz.normalize(kinds.BANK_CARD, pa.array(values, pa.string()))
    assert vz.bank_card_valid(arr).tolist() == [v.is_bank_card(x) for x in values]


#: Characters whose Unicode upper case is not one character (ß → SS in Python, ẞ in ICU) are
#: left out: Arrow and Python legitimately differ there, and no identifier contains them, so
#: both normalizations end in a value every validator rejects.
_SIMPLE_CASE = st.characters(blacklist_categories=("Cs",)).filter(lambda c: len(c.upper()) == 1 and len(c.lower()) == 1)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(_SIMPLE_CASE, min_size=0, max_size=12), max_size=20), st.sampled_from(kinds.PII_KINDS))
# U+1DFCD is unassigned in Python 3.11's Unicode 14.0, and Arrow's newer utf8proc maps it:
# the scalar NFKC must be Arrow's too (found by test_column_pseudonyms_match_scalar).
@example(["\U0001dfcd", "１２３ ｘ"], kinds.RESIDENT_ID)
def test_normalize_agrees(values: list[str], kind: str) -> None:
    assert vz.normalize(kind, pa.array(values, pa.string())).to_pylist() == [
        v.normalize(kind, x) for x in values
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1890, 2100), st.integers(0, 13), st.integers(0, 32)),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from(
        ["{y:04d}-{m:02d}-{d:02d}", "{y}/{m}/{d}", "{y}年{m}月{d}日", "{y:04d}{m:02d}{d:02d}"]
    ),
    st.booleans(),
)
def test_dates_agree(triples: list[tuple[int, int, int]], fmt: str, compact: bool) -> None:
    values = [fmt.format(y=y, m=m, d=d) for y, m, d in triples]
    ok, dates = vd.parse_dates(pa.array(values), compact=compact)
    for value, good, date in zip(values, ok, dates, strict=True):
        expected = v.parse_date(value, compact=compact)
        assert bool(good) is (expected is not None)
        if expected is not None:
            assert date == np.datetime64(expected)
