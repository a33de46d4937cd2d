"""Public reference domains: closed vocabularies the platform ships, and the domain rules that
check values against them (accuracy in :mod:`market.pipeline.quality`; what the synthetic
preview may show in :mod:`market.datasets.preview`).

Pure: no Flask, no database. The accuracy rules (:func:`domain_checks`):

- ``district_in_division_list``: a district column (by its name, :data:`DISTRICT_COLUMN_HINTS`)
  holds current divisions of the administrative-division list;
- ``amount_non_negative``: a numeric column declared an amount by its name
  (:data:`AMOUNT_HINTS`: 金额, 余额, 资本, …) holds no negative value;
- ``dates_not_in_future``: no date or datetime lies after ``now`` (counted in
  :meth:`market.pipeline.quality.QualityAccumulator.add_dates`).

Date columns also have a role for timeliness (:func:`date_role`): the data's as-of date
(统计日期, 截止日期, 所属期, 更新日期, …), an attribute date that says nothing about freshness
(成立日期, 出生日期, 注册日期, …), or an event date (判决日期, 处罚日期, …).

Sources:

- Shanghai's 16 district-level divisions (市辖区), GB/T 2260 codes 310101–310151, as listed by
  the Ministry of Civil Affairs' administrative-division list (2024). Shanghai has had no
  county since 崇明 became a district in 2016. Other provinces are not listed yet: a district
  column whose values are not Shanghai's is reported as unchecked, not as wrong
  (:func:`district_domain`).
- The 20 sections (门类) of GB/T 4754-2017, 国民经济行业分类.
- Gender (GB/T 2261.1).

A value of one of these vocabularies is public knowledge: the preview may show it. Nothing
else of a dataset is.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: GB/T 2260 code → name, Shanghai's districts.
SHANGHAI_DISTRICT_CODES: dict[str, str] = {
    "310101": "黄浦区",
    "310104": "徐汇区",
    "310105": "长宁区",
    "310106": "静安区",
    "310107": "普陀区",
    "310109": "虹口区",
    "310110": "杨浦区",
    "310112": "闵行区",
    "310113": "宝山区",
    "310114": "嘉定区",
    "310115": "浦东新区",
    "310116": "金山区",
    "310117": "松江区",
    "310118": "青浦区",
    "310120": "奉贤区",
    "310151": "崇明区",
}
SHANGHAI_DISTRICTS: tuple[str, ...] = tuple(SHANGHAI_DISTRICT_CODES.values())
#: The province-level name, as generalized addresses at city level read.
SHANGHAI = "上海市"
#: Former names that data files still carry; NOT valid current divisions (accuracy flags them).
FORMER_SHANGHAI_DIVISIONS = frozenset({"闸北区", "南汇区", "卢湾区", "崇明县"})

#: GB/T 4754-2017 sections A–T.
INDUSTRY_SECTIONS: tuple[str, ...] = (
    "农、林、牧、渔业",
    "采矿业",
    "制造业",
    "电力、热力、燃气及水生产和供应业",
    "建筑业",
    "批发和零售业",
    "交通运输、仓储和邮政业",
    "住宿和餐饮业",
    "信息传输、软件和信息技术服务业",
    "金融业",
    "房地产业",
    "租赁和商务服务业",
    "科学研究和技术服务业",
    "水利、环境和公共设施管理业",
    "居民服务、修理和其他服务业",
    "教育",
    "卫生和社会工作",
    "文化、体育和娱乐业",
    "公共管理、社会保障和社会组织",
    "国际组织",
)
GENDERS: tuple[str, ...] = ("男", "女")

#: Column names that hold a district (区/县) of an address; matched as substrings.
DISTRICT_COLUMN_HINTS = ("区县", "所属区", "所在区", "行政区", "辖区", "区域", "district")


@cache
def public_vocabulary() -> frozenset[str]:
    """Every value of every public vocabulary above."""
    return frozenset((*SHANGHAI_DISTRICTS, SHANGHAI, *INDUSTRY_SECTIONS, *GENDERS))


def is_public_value(value: object) -> bool:
    return isinstance(value, str) and value.strip() in public_vocabulary()


def is_district_column(name: str) -> bool:
    lowered = name.lower()
    return any(hint in lowered for hint in DISTRICT_COLUMN_HINTS)


_SUFFIX = re.compile(r"(新区|区|县)$")


def district_domain(values: Iterable[str]) -> frozenset[str] | None:
    """The vocabulary a district column's values belong to, or None if no shipped list covers
    them: Shanghai's when any value names a Shanghai district (current or former), since a
    file mixing a few wrong names into Shanghai's is exactly what accuracy must catch."""
    shanghai = set(SHANGHAI_DISTRICTS) | FORMER_SHANGHAI_DIVISIONS
    for value in values:
        text = value.strip().removeprefix(SHANGHAI) if isinstance(value, str) else ""
        if text in shanghai:
            return frozenset(SHANGHAI_DISTRICTS)
    return None


def valid_district(value: str, domain: frozenset[str]) -> bool:
    """Whether ``value`` is a current division of ``domain`` (``上海市`` prefix allowed)."""
    text = value.strip()
    text = text.removeprefix(SHANGHAI)
    return text in domain and bool(_SUFFIX.search(text))


#: Column-name hints of a monetary amount or other quantity that cannot be negative.
AMOUNT_HINTS = (
    "金额", "余额", "资本", "收入", "营收", "价款", "费用", "工资", "薪酬", "缴费", "税额",
    "保费", "罚款", "价格", "amount", "balance", "price", "fee",
)  # fmt: skip
#: Column-name hints of the data's as-of date (its reference date).
AS_OF_HINTS = (
    "更新日期", "统计日期", "数据日期", "截止日期", "报告期", "所属期", "统计时间", "数据时间",
    "快照", "as_of", "asof", "snapshot", "report_date", "updated",
)  # fmt: skip
#: Column-name hints of dates that describe the entity, not the data's freshness.
ATTRIBUTE_DATE_HINTS = (
    "成立", "出生", "生日", "注册", "开业", "核准", "发证", "入职", "设立", "birth", "founded",
    "established",
)  # fmt: skip

AS_OF, ATTRIBUTE, EVENT = "as_of", "attribute", "event"


def date_role(name: str) -> str:
    """``as_of``, ``attribute`` or ``event`` for a date column named ``name``."""
    lowered = name.lower()
    if any(hint in lowered for hint in AS_OF_HINTS):
        return AS_OF
    if any(hint in lowered for hint in ATTRIBUTE_DATE_HINTS):
        return ATTRIBUTE
    return EVENT


def declares_non_negative(name: str, type_: str) -> bool:
    lowered = name.lower()
    return type_ in ("integer", "decimal") and any(hint in lowered for hint in AMOUNT_HINTS)


def _district_checks(text: pa.Array) -> tuple[int, int] | None:
    present = pc.drop_null(text)
    if not len(present):
        return None
    bare = pc.replace_substring_regex(present, pattern=f"^{SHANGHAI}", replacement="")
    known = pa.array(sorted(set(SHANGHAI_DISTRICTS) | FORMER_SHANGHAI_DIVISIONS), bare.type)
    if not pc.any(pc.is_in(bare, value_set=known)).as_py():
        return None  # no shipped list covers these values: unchecked, not wrong
    current = pa.array(SHANGHAI_DISTRICTS, bare.type)
    passed = pc.sum(pc.is_in(bare, value_set=current)).as_py() or 0
    return len(present), int(passed)


def _non_negative_checks(typed: pa.Array) -> tuple[int, int] | None:
    present = pc.drop_null(typed)
    if not len(present):
        return None
    values = pc.cast(present, pa.float64()).to_numpy(zero_copy_only=False)
    return len(values), int(np.count_nonzero(values >= 0))


def domain_checks(
    name: str, type_: str, text: pa.Array, typed: pa.Array | None
) -> dict[str, tuple[int, int]]:
    """The accuracy rules that apply to one column of one chunk: ``{rule: (made, passed)}``.

    ``text`` is the trimmed text (null for empty cells), ``typed`` the values parsed as the
    column's type (numeric columns). Never raises for odd values: they fail the rule.
    """
    out: dict[str, tuple[int, int]] = {}
    textual = pa.types.is_string(text.type) or pa.types.is_large_string(text.type)
    if is_district_column(name) and textual:
        checked = _district_checks(text)
        if checked is not None:
            out["district_in_division_list"] = checked
    if typed is not None and declares_non_negative(name, type_):
        checked = _non_negative_checks(typed)
        if checked is not None:
            out["amount_non_negative"] = checked
    return out


_PERIOD = re.compile(r"^(\d{4})(?:-|/|年)?(1[0-2]|0?[1-9])(?:月)?$")


def latest_period_end(text: pa.Array, today: dt.date) -> np.datetime64 | None:
    """The last day of the latest month named by a period column's text (``2025-10``,
    ``202510``, ``2025年10月``), no later than ``today``; None if no value is a month."""
    latest: tuple[int, int] | None = None
    for value in pc.unique(pc.drop_null(text)).to_pylist():
        match = _PERIOD.match(str(value).strip())
        if match:
            month = (int(match.group(1)), int(match.group(2)))
            latest = month if latest is None or month > latest else latest
    if latest is None:
        return None
    year, month = latest
    first_of_next = np.datetime64(f"{year + month // 12:04d}-{month % 12 + 1:02d}-01", "D")
    return min(first_of_next - np.timedelta64(1, "D"), np.datetime64(today, "D"))
