"""Detection of PII kinds (headers and values) and schema inference."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from market.pipeline import header_hint, kinds
from market.pipeline import vectorized as vz
from market.pipeline.detect import detect_column
from market.pipeline.schema import infer
from tests.pipeline.factories import credit_code, luhn_complete, resident_id

TODAY = dt.date(2025, 7, 1)


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        ("身份证号", kinds.RESIDENT_ID),
        ("法定代表人身份证号码", kinds.RESIDENT_ID),
        ("ID Card No", kinds.RESIDENT_ID),
        ("联系电话", kinds.MOBILE),
        ("联系人电话", kinds.MOBILE),
        ("mobile_phone", kinds.MOBILE),
        ("银行卡号", kinds.BANK_CARD),
        ("统一社会信用代码", kinds.CREDIT_CODE),
        ("电子邮箱", kinds.EMAIL),
        ("E-mail", kinds.EMAIL),
        ("姓名", kinds.PERSON_NAME),
        ("法定代表人", kinds.PERSON_NAME),
        ("联系人", kinds.PERSON_NAME),
        ("Name", kinds.PERSON_NAME),
        ("contactName", kinds.PERSON_NAME),
        ("company_name", None),
        ("单位名称", None),
        ("住址", kinds.ADDRESS),
        ("mailing address", kinds.ADDRESS),
        ("出生日期", kinds.BIRTH_DATE),
        ("date_of_birth", kinds.BIRTH_DATE),
        ("性别", kinds.GENDER),
        ("年龄", kinds.AGE),
        ("缴费基数", None),
    ],
)
def test_header_hints(header: str, kind: str | None) -> None:
    assert header_hint(header) == kind


def _detect(name: str, values: list[str | None]):
    text = vz.trim(pa.array(values, pa.string()))
    return detect_column(name, text, infer(name, text), TODAY)


RIDS = [
    resident_id("310115", dt.date(1980, 1, 1) + dt.timedelta(days=37 * i), i) for i in range(20)
]


@pytest.mark.parametrize(
    ("name", "values", "kind"),
    [
        ("col", RIDS, kinds.RESIDENT_ID),
        ("col", [credit_code(f"MA1FL8X{i:02d}") for i in range(20)], kinds.CREDIT_CODE),
        ("col", [f"138{i:08d}" for i in range(20)], kinds.MOBILE),
        ("col", [f"+86 139-{i:04d}-5678" for i in range(20)], kinds.MOBILE),
        ("col", [luhn_complete(f"622202{i:012d}") for i in range(20)], kinds.BANK_CARD),
        ("col", [f"u{i}@example.com" for i in range(20)], kinds.EMAIL),
        # A header hint lowers the bar: 60% valid is enough for 身份证号.
        (
            "身份证号",
            RIDS[:12] + [r[:17] + ("0" if r[17] != "0" else "1") for r in RIDS[12:]],
            kinds.RESIDENT_ID,
        ),
        # ...and a badly keyed ID column with the hint still counts (shape only).
        ("身份证号", [r[:17] + ("0" if r[17] != "0" else "1") for r in RIDS], kinds.RESIDENT_ID),
        ("姓名", ["张三", "李四", "王五", "赵六", "John Smith"], kinds.PERSON_NAME),
        (
            "col",
            ["张伟", "李娜", "王芳", "刘洋", "陈静", "杨勇", "黄磊", "赵敏", "吴杰", "周涛"],
            kinds.PERSON_NAME,
        ),
        ("区", ["黄浦区", "徐汇区", "长宁区", "静安区"], None),
        ("住址", ["上海市浦东新区", "北京市朝阳区"], kinds.ADDRESS),
        ("col", [f"上海市浦东新区张江路{i}号" for i in range(1, 20)], kinds.ADDRESS),
        ("出生日期", ["1990-01-02", "19850203", "1970/3/4"], kinds.BIRTH_DATE),
        ("日期", ["1990-01-02", "1985-02-03"], None),  # a date, but not a birth date
        ("性别", ["男", "女", "男"], kinds.GENDER),
        ("sex", ["M", "F", "F"], kinds.GENDER),
        ("col", ["男", "女", "女", "男"], kinds.GENDER),
        ("年龄", ["34", "56", "7"], kinds.AGE),
        ("缴费基数", ["3000.50", "4000"], None),
    ],
)
def test_detect_column(name: str, values: list[str], kind: str | None) -> None:
    det = _detect(name, values)
    assert det.pii_kind == kind
    assert not det.embedded


def test_embedded_identifiers_in_free_text() -> None:
    det = _detect("备注", ["请联系13812345678", "无", "已办结", None, "按时缴费"])
    assert det.pii_kind == kinds.MOBILE
    assert det.embedded
    assert det.type == kinds.STRING


def test_mixed_column_without_hint_is_masked_as_text() -> None:
    # 60% valid IDs is not enough for an ID column without a header hint, but the IDs are
    # still found, as identifiers inside text, so the column is masked rather than published.
    det = _detect("col", RIDS[:12] + ["x"] * 8)
    assert (det.pii_kind, det.embedded) == (kinds.RESIDENT_ID, True)


def test_identifier_columns_are_text() -> None:
    det = _detect("col", [f"138{i:08d}" for i in range(20)])
    assert det.type == kinds.STRING  # all digits, but a mobile is not an integer
    assert _detect("出生日期", ["19900102", "19850203"]).type == kinds.DATE


@pytest.mark.parametrize(
    ("name", "values", "logical", "scale"),
    [
        ("n", ["1", "-2", "30"], kinds.INTEGER, 0),
        ("code", ["001", "002", "010"], kinds.STRING, 0),  # leading zeros: a code
        ("amount", ["1.5", "2.25", "3"], kinds.DECIMAL, 2),
        ("flag", ["true", "否", "Yes"], kinds.BOOLEAN, 0),
        ("d", ["2024-01-02", "2024/2/3"], kinds.DATE, 0),
        ("登记日期", ["20240102", "20240203"], kinds.DATE, 0),  # compact with a date header
        ("n", ["20240102", "20240203"], kinds.INTEGER, 0),  # without: a number
        ("t", ["2024-01-02 10:00:00", "2024-01-03 11:30"], kinds.DATETIME, 0),
        ("s", ["a", "b", "1"], kinds.STRING, 0),
        ("n", ["1", "2", None], kinds.INTEGER, 0),
        ("empty", [None, None], kinds.STRING, 0),
    ],
)
def test_infer(name: str, values: list[str | None], logical: str, scale: int) -> None:
    info = infer(name, vz.trim(pa.array(values, pa.string())))
    assert info.type == logical
    assert info.scale == scale
