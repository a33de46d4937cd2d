"""The Shanghai demo generator: determinism, valid identifiers, consistency across tables."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.demo import (
    DEMO_PASSWORDS,
    DEPARTMENT_KEYS,
    ENTITY_KEY,
    DemoData,
    DemoDataError,
    generate,
)
from market.demo.data import MAX_MONTHS, MAX_ROWS, make_uscc, org_code_check_char
from market.demo.names import DISTRICTS, INDUSTRIES, TAX_GRADES
from market.idcodes import is_valid_resident_id, is_valid_uscc, resident_id_birth_date

TODAY = dt.date(2026, 11, 21)
ROWS = 120
MONTHS = 14  # crosses a year end and a July (housing-fund base re-declaration)
MONTHLY = ("tax", "hrss", "housing_fund", "utilities")
DISTRICT_BY_CODE = {d.code: d.name for d in DISTRICTS}


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate(rows=ROWS, seed=7, months=MONTHS, today=TODAY)


def _registry_by_uscc(demo: DemoData) -> pd.DataFrame:
    return demo.registry.set_index(ENTITY_KEY)


# --------------------------------------------------------------------------- determinism


def test_same_arguments_give_identical_data(demo: DemoData) -> None:
    again = generate(rows=ROWS, seed=7, months=MONTHS, today=TODAY)
    for key in DEPARTMENT_KEYS:
        pd.testing.assert_frame_equal(demo.department(key).frame, again.department(key).frame)
    assert demo.organizations == again.organizations
    assert demo.users == again.users


def test_another_seed_gives_other_enterprises(demo: DemoData) -> None:
    other = generate(rows=ROWS, seed=8, months=MONTHS, today=TODAY)
    assert not set(other.registry[ENTITY_KEY]) & set(demo.registry[ENTITY_KEY])


# --------------------------------------------------------------------------- identifiers


@pytest.mark.parametrize("code", [
    "91440300708461136T",
    "9144030071526726XG",
    "91330100716105852F",
    "91110000802100433B",
])
def test_org_code_check_agrees_with_real_credit_codes(code: str) -> None:
    assert org_code_check_char(code[8:16]) == code[16]
    assert make_uscc(code[:2], code[2:8], code[8:16]) == code


@pytest.mark.parametrize("body", ["1234567", "123456789", "abcdefgh", "1234-567", "１２３４５６７８"])
def test_org_code_check_rejects_bad_bodies(body: str) -> None:
    with pytest.raises(ValueError):
        org_code_check_char(body)


def test_every_credit_code_is_valid_and_shanghai_shaped(demo: DemoData) -> None:
    reg = demo.registry
    assert reg[ENTITY_KEY].is_unique
    for code, district in zip(reg[ENTITY_KEY], reg["所属区"], strict=True):
        assert is_valid_uscc(code)
        assert code.startswith("91")
        # The division code in the USCC is the district the firm is registered in.
        assert DISTRICT_BY_CODE[code[2:8]] == district
        assert org_code_check_char(code[8:16]) == code[16]
    for dept in demo.departments:
        assert all(is_valid_uscc(c) for c in dept.frame[ENTITY_KEY]), dept.key


def test_legal_representatives_have_valid_shanghai_ids(demo: DemoData) -> None:
    reg = demo.registry
    assert reg["法定代表人身份证号"].is_unique
    for rid, founded in zip(reg["法定代表人身份证号"], reg["成立日期"], strict=True):
        assert is_valid_resident_id(rid, today=TODAY)
        assert rid[:6] in DISTRICT_BY_CODE
        born = resident_id_birth_date(rid)
        assert born is not None
        assert dt.date(1960, 1, 1) <= born <= dt.date(2000, 12, 31)
        assert born.year <= founded.year - 20


def test_contact_details_look_real(demo: DemoData) -> None:
    reg = demo.registry
    assert reg["联系电话"].is_unique
    assert reg["联系电话"].str.fullmatch(r"1[3-9]\d{9}").all()
    for address, district in zip(reg["注册地址"], reg["所属区"], strict=True):
        assert address.startswith("上海市" + district)
        assert re.fullmatch(r"上海市\w+?[区](\w+?(路|大道|公路))\d+号(\d+幢)?\d+室", address)
    assert reg["法定代表人"].str.fullmatch(r"[\u4e00-\u9fff]{2,4}").all()
    assert reg["企业名称"].is_unique
    assert reg["企业名称"].str.fullmatch(r"上海\w+有限公司").all()


# --------------------------------------------------------------------------- table shapes


def test_row_counts_scale_with_enterprises_and_months(demo: DemoData) -> None:
    assert len(demo.registry) == ROWS
    for key in MONTHLY:
        frame = demo.department(key).frame
        assert len(frame) == ROWS * MONTHS, key
        # Exactly one row per enterprise and month: a complete panel.
        assert not frame.duplicated([ENTITY_KEY, "所属期"]).any(), key
        assert frame.groupby(ENTITY_KEY).size().eq(MONTHS).all(), key
    # Event tables concern a minority of enterprises.
    for key in ("court", "environment"):
        firms = demo.department(key).frame[ENTITY_KEY].nunique()
        assert 0 < firms < ROWS / 2, key


def test_periods_are_the_complete_months_before_today(demo: DemoData) -> None:
    expected = tuple(p.strftime("%Y-%m") for p in pd.period_range("2025-09", "2026-10", freq="M"))
    assert demo.periods == expected
    for key in MONTHLY:
        assert tuple(sorted(demo.department(key).frame["所属期"].unique())) == expected


@pytest.mark.parametrize("kwargs", [
    {"rows": 0}, {"rows": MAX_ROWS + 1}, {"rows": 2.5}, {"months": 0},
    {"months": MAX_MONTHS + 1}, {"today": dt.date(1996, 6, 1)},
    {"today": dt.date(2005, 6, 1), "months": 120},
])
def test_bad_arguments_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(DemoDataError):
        generate(**{"today": TODAY, **kwargs})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- consistency


def test_every_table_joins_to_the_registry(demo: DemoData) -> None:
    reg = _registry_by_uscc(demo)
    for dept in demo.departments:
        frame = dept.frame
        assert set(frame[ENTITY_KEY]) <= set(reg.index), dept.key
        # Redundant descriptive columns agree with the registry.
        assert (frame["所属区"].to_numpy() == reg.loc[frame[ENTITY_KEY], "所属区"].to_numpy()).all()
        if "行业" in frame:
            assert (frame["行业"].to_numpy() == reg.loc[frame[ENTITY_KEY], "行业"].to_numpy()).all()


def test_subject_enterprise_appears_in_several_tables(demo: DemoData) -> None:
    code = demo.subject.credit_code
    assert is_valid_uscc(code)
    assert demo.registry.loc[demo.registry[ENTITY_KEY] == code, "企业名称"].item() == \
        demo.subject.name_zh
    present = {d.key for d in demo.departments if (d.frame[ENTITY_KEY] == code).any()}
    assert {"market_supervision", "tax", "hrss", "housing_fund", "utilities", "court"} <= present
    assert demo.organization("subject") == demo.subject


def test_values_are_plausible(demo: DemoData) -> None:
    hrss = demo.department("hrss").frame
    hf = demo.department("housing_fund").frame
    util = demo.department("utilities").frame
    tax = demo.department("tax").frame
    # Same row order in every monthly table: period-major, enterprises in registry order.
    for frame in (hf, util, tax):
        assert (frame[[ENTITY_KEY, "所属期"]].to_numpy() == hrss[[ENTITY_KEY, "所属期"]]
                .to_numpy()).all()
    assert (hf["缴存人数"] <= hrss["参保人数"]).all()
    assert (hrss["参保人数"] >= 0).all()
    assert set(tax["纳税信用等级"]) <= set(TAX_GRADES)
    assert set(util["是否欠费"]) <= {"是", "否"}
    # Electricity prices between 0.65 and 1.10 yuan per kWh, give or take rounding.
    used = util["用电量(千瓦时)"] > 100
    price = util.loc[used, "电费(元)"].map(float) / util.loc[used, "用电量(千瓦时)"]
    assert price.between(0.64, 1.11).all()
    # Housing-fund contributions are whole yuan per person, within Shanghai's base bounds.
    per_person = (hf.loc[hf["缴存人数"] > 0, "缴存金额(元)"].map(Decimal)
                  / hf.loc[hf["缴存人数"] > 0, "缴存人数"].map(Decimal))
    assert per_person.between(Decimal(2690) * 2 * Decimal("0.05") - 1,
                              Decimal(37302) * 2 * Decimal("0.07") + 1).all()


@pytest.mark.parametrize(("key", "column"), [
    ("market_supervision", "注册资本(万元)"),
    ("tax", "纳税额(元)"),
    ("housing_fund", "缴存金额(元)"),
    ("court", "涉案金额(元)"),
    ("environment", "罚款金额(元)"),
    ("utilities", "电费(元)"),
])
def test_money_is_decimal_with_two_places(demo: DemoData, key: str, column: str) -> None:
    values = demo.department(key).frame[column]
    assert all(isinstance(v, Decimal) and v.as_tuple().exponent == -2 and v >= 0 for v in values)


def test_more_staff_means_more_tax() -> None:
    demo = generate(rows=400, seed=3, months=3, today=TODAY)
    staff = demo.department("hrss").frame.groupby(ENTITY_KEY)["参保人数"].mean()
    tax = (demo.department("tax").frame.assign(t=lambda f: f["纳税额(元)"].map(float))
           .groupby(ENTITY_KEY)["t"].sum())
    power = (demo.department("utilities").frame.groupby(ENTITY_KEY)["用电量(千瓦时)"].sum())
    rank = np.corrcoef(staff.rank(), tax.loc[staff.index].rank())[0, 1]
    assert rank > 0.6
    assert np.corrcoef(staff.rank(), power.loc[staff.index].rank())[0, 1] > 0.5


def test_event_tables_are_well_formed(demo: DemoData) -> None:
    court = demo.department("court").frame
    assert court["案号"].is_unique
    assert court["案号"].str.fullmatch(r"\(20\d\d\)沪01\d\d民初\d+号").all()
    assert set(court["当事人地位"]) <= {"原告", "被告"}
    assert all(dt.date(2023, 1, 1) <= d < TODAY for d in court["判决日期"])
    assert all(int(no[1:5]) <= d.year for no, d in zip(court["案号"], court["判决日期"],
                                                         strict=True))
    env = demo.department("environment").frame
    assert env["处罚决定书文号"].is_unique
    assert env["处罚决定书文号"].str.fullmatch(r"沪\w环罚〔20\d\d〕\d+号").all()
    assert all(d < TODAY for d in env["处罚日期"])
    violations = {v for i in INDUSTRIES for v in i.violations}
    assert set(env["违法类型"]) <= violations


# --------------------------------------------------------------------------- metadata


def test_department_metadata(demo: DemoData) -> None:
    assert tuple(d.key for d in demo.departments) == DEPARTMENT_KEYS
    grades = {d.key: d.dataset.open_grade for d in demo.departments}
    assert grades["market_supervision"] == "conditional"
    assert grades["court"] == "open"
    assert sum(g == "conditional" for g in grades.values()) > len(grades) / 2
    assert len({d.dataset.category for d in demo.departments}) == len(DEPARTMENT_KEYS)
    for dept in demo.departments:
        meta = dept.dataset
        assert is_valid_uscc(dept.credit_code) and dept.credit_code.startswith("11")
        assert meta.entity_key == ENTITY_KEY
        assert meta.entity_key in dept.frame.columns
        assert set(meta.pii_columns) <= set(dept.frame.columns)
        assert meta.update_frequency in {"daily", "weekly", "monthly"}
        costs = meta.costs.as_dict()
        assert set(costs) == {"collection", "processing", "storage_monthly"}
        assert all(isinstance(v, int) and v > 0 for v in costs.values())
        assert costs["storage_monthly"] < costs["processing"] < costs["collection"]
    assert set(demo.department("market_supervision").dataset.pii_columns.values()) == {
        "uscc", "person_name", "resident_id", "mobile", "address"}


def test_organizations_and_users(demo: DemoData) -> None:
    orgs = demo.all_organizations()
    assert len({o.credit_code for o in orgs}) == len(orgs)
    assert all(is_valid_uscc(o.credit_code) for o in orgs)
    kinds = [o.kind for o in demo.organizations]
    assert sorted(kinds) == ["buyer"] * 4 + ["operator", "regulator", "subject"]
    assert demo.organization("regulator").name_zh == "上海市数据局"
    emails = [u.email for u in demo.users]
    assert len(set(emails)) == len(emails)
    assert "operator@demo.market" in emails
    for user in demo.users:
        org = demo.organization(user.organization_key)
        assert org.kind == user.role
        assert user.password == DEMO_PASSWORDS[user.role]
    with pytest.raises(KeyError):
        demo.organization("nobody")
    with pytest.raises(KeyError):
        demo.department("nobody")


# --------------------------------------------------------------------------- properties


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 25), months=st.integers(1, 15),
       today=st.dates(dt.date(2020, 1, 1), dt.date(2035, 12, 31)))
def test_invariants_hold_for_any_seed_and_size(seed: int, rows: int, months: int,
                                               today: dt.date) -> None:
    demo = generate(rows=rows, seed=seed, months=months, today=today)
    registry = set(demo.registry[ENTITY_KEY])
    assert len(registry) == rows
    assert demo.subject.credit_code in registry
    for dept in demo.departments:
        assert set(dept.frame[ENTITY_KEY]) <= registry
    for key in MONTHLY:
        assert len(demo.department(key).frame) == rows * months
    assert all(is_valid_resident_id(r, today=today) for r in demo.registry["法定代表人身份证号"])
    assert all(f < dt.date.fromisoformat(demo.periods[0] + "-01")
               for f in demo.registry["成立日期"])


# --------------------------------------------------------------------------- the Shanghai pilot


def test_the_demo_matches_the_shanghai_pilot(demo: DemoData) -> None:
    """Seed 000/004: 8 departments plus 公积金 and 公用事业, the four pilot banks, and over 300
    data items (columns) across the datasets."""
    names = {d.key: d.name_zh for d in demo.departments}
    for short in ("市场监督", "税务", "人力资源和社会保障", "生态环境", "高级人民法院",
                  "科学技术委员会", "规划和自然资源", "住房和城乡建设", "公积金", "公用事业"):
        assert sum(short in n for n in names.values()) == 1, short
    banks = sorted(o.name_zh for o in demo.organizations if o.kind == "buyer")
    assert len(banks) == 4
    for bank in ("建设银行", "交通银行", "浦东发展银行", "上海银行"):
        assert sum(bank in b for b in banks) == 1, bank
    assert sum(d.frame.shape[1] for d in demo.departments) >= 300


def test_pilot_tables_have_annual_indicators_and_no_personal_data(demo: DemoData) -> None:
    from market.demo import pilot

    years = pilot.annual_years(demo.periods[-1])
    assert years == (2023, 2024, 2025)
    for table in pilot.TABLES:
        dept = demo.department(table.key)
        frame = dept.frame
        assert frame[ENTITY_KEY].is_unique and demo.subject.credit_code in set(frame[ENTITY_KEY])
        for ind in table.indicators:
            assert all(f"{ind.name}_{y}" in frame.columns for y in years), ind.name
        assert dict(dept.dataset.pii_columns) == {ENTITY_KEY: "uscc"}
        # Only the enterprise key identifies anything: no name, ID, phone or address column.
        assert not {"法定代表人", "法定代表人身份证号", "联系电话", "注册地址"} & set(frame.columns)
        counts = [c for c in frame.columns if c.endswith(f"_{years[0]}")
                  and frame[c].dtype.kind == "i"]
        assert counts and all((frame[c] >= 0).all() for c in counts)
