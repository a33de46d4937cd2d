"""Realistic, deterministic demo data for the Shanghai inclusive-finance pilot.

Pure: no Flask, no database. :func:`generate` builds a population of Shanghai SMEs and the
tables seven departments would upload about them, joined by the enterprise's Unified Social
Credit Code (统一社会信用代码). Everything is synthetic: codes and resident IDs carry valid check
characters but belong to nobody.

``rows`` is the number of **enterprises**, not table rows. Table sizes follow from it:

- market supervision registry: ``rows`` rows (one per enterprise);
- tax, social security, housing fund, utilities: ``rows * months`` rows (one per enterprise
  per month; every enterprise was founded before the first month, so none is missing);
- court judgments and environmental penalties: a minority of enterprises, one or more rows
  each, so the counts vary with the seed.

Same ``(rows, seed, months, today)`` gives identical frames (with the same Faker version, whose
name lists feed the person names). ``today`` defaults to the current date, so pass it when
you need output that is stable across days.

Run ``python -m market.demo.data --rows 100 --out DIR`` to write the CSV files.
"""

from __future__ import annotations

import argparse
import codecs
import datetime as dt
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numpy as np
import pandas as pd
from faker import Faker

from market.demo import pilot
from market.demo.errors import DemoDataError
from market.demo.names import (
    BRAND_CHARS,
    CAUSES_AS_DEFENDANT,
    CAUSES_AS_PLAINTIFF,
    DISTRICTS,
    INDUSTRIES,
    MOBILE_PREFIXES,
    REGISTRATION_REVOKED,
    District,
    Industry,
)
from market.idcodes import resident_id_check_char, uscc_check_char

DEFAULT_ROWS = 2000
DEFAULT_SEED = 20261121
DEFAULT_MONTHS = 12
MAX_ROWS = 100_000
MAX_MONTHS = 120

ENTITY_KEY = "统一社会信用代码"
PERIOD = "所属期"
DISTRICT = "所属区"
INDUSTRY = "行业"

OpenGrade = Literal["open", "conditional"]
OrgKind = Literal["department", "operator", "regulator", "buyer", "subject"]

# Demo logins. Documented on purpose: they only ever exist in demo databases.
DEMO_PASSWORDS: Mapping[str, str] = MappingProxyType({
    "operator": "demo-operator-2026",
    "regulator": "demo-regulator-2026",
    "buyer": "demo-buyer-2026",
    "department": "demo-department-2026",
    "subject": "demo-subject-2026",
})

# One file in GBK (with Windows line ends, like an Excel export) so uploads exercise encoding
# detection; the rest UTF-8, some with a byte-order mark.
DEFAULT_ENCODINGS: Mapping[str, str] = MappingProxyType({
    "market_supervision": "gbk",
    "tax": "utf-8-sig",
    "hrss": "utf-8",
    "housing_fund": "utf-8-sig",
    "court": "utf-8",
    "environment": "utf-8-sig",
    "utilities": "utf-8",
    "science": "utf-8",
    "natural_resources": "utf-8-sig",
    "housing_construction": "utf-8",
})

# Shanghai housing-fund contribution base bounds (yuan per month) used for the demo.
_HF_BASE_MIN = 2690
_HF_BASE_MAX = 37302
_HF_ANNUAL_RAISE = 1.04  # bases are re-declared every July

# Electricity use by calendar month relative to the year's average (air conditioning peaks).
_KWH_SEASON = (1.15, 1.05, 0.95, 0.9, 0.95, 1.05, 1.3, 1.35, 1.1, 0.95, 0.95, 1.1)
_WATER_SEASON = (0.9, 0.85, 0.95, 1.0, 1.05, 1.1, 1.2, 1.2, 1.1, 1.0, 0.9, 0.85)

_CAPITAL_WAN = (10, 30, 50, 100, 200, 300, 500, 1000, 2000, 5000)
_EARLIEST_FOUNDING = dt.date(1995, 1, 1)


# --------------------------------------------------------------------------- public types


@dataclass(frozen=True, slots=True)
class DemoCosts:
    """A dataset's cost basis in integer fen (CNY cents)."""

    collection: int
    processing: int
    storage_monthly: int

    def as_dict(self) -> dict[str, int]:
        return {
            "collection": self.collection,
            "processing": self.processing,
            "storage_monthly": self.storage_monthly,
        }


@dataclass(frozen=True, slots=True)
class DemoDatasetMeta:
    """Publication metadata a department would enter for its upload.

    ``pii_columns`` is the ground truth for the detector: column → kind, where kind is one of
    ``uscc``, ``resident_id``, ``mobile``, ``person_name``, ``address``.
    """

    title: str
    title_en: str
    description: str
    category: str
    open_grade: OpenGrade
    update_frequency: str
    costs: DemoCosts
    pii_columns: Mapping[str, str]
    entity_key: str = ENTITY_KEY


@dataclass(frozen=True, slots=True, eq=False)
class DemoDepartment:
    """A data-providing department, its dataset metadata and the table it uploads."""

    key: str
    name_zh: str
    name_en: str
    credit_code: str
    dataset: DemoDatasetMeta
    frame: pd.DataFrame

    @property
    def file_name(self) -> str:
        return f"{self.key}.csv"

    def as_organization(self) -> DemoOrganization:
        return DemoOrganization(self.key, "department", self.name_zh, self.name_en,
                                self.credit_code)


@dataclass(frozen=True, slots=True)
class DemoOrganization:
    key: str
    kind: OrgKind
    name_zh: str
    name_en: str
    credit_code: str


@dataclass(frozen=True, slots=True)
class DemoUser:
    email: str
    password: str
    role: OrgKind
    organization_key: str
    display_name: str


@dataclass(frozen=True, slots=True, eq=False)
class DemoData:
    """Everything :func:`generate` produces. ``organizations`` excludes the departments."""

    seed: int
    rows: int
    months: int
    today: dt.date
    periods: tuple[str, ...]
    departments: tuple[DemoDepartment, ...]
    organizations: tuple[DemoOrganization, ...]
    users: tuple[DemoUser, ...]
    subject: DemoOrganization
    _by_key: Mapping[str, DemoDepartment] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key",
                           MappingProxyType({d.key: d for d in self.departments}))

    def department(self, key: str) -> DemoDepartment:
        """The department with ``key``. Raises KeyError if there is none."""
        return self._by_key[key]

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        return {d.key: d.frame for d in self.departments}

    @property
    def registry(self) -> pd.DataFrame:
        """The market-supervision table: one row per enterprise."""
        return self._by_key["market_supervision"].frame

    def all_organizations(self) -> tuple[DemoOrganization, ...]:
        """Departments (as organizations) followed by the operator, regulator, buyers, subject."""
        return tuple(d.as_organization() for d in self.departments) + self.organizations

    def organization(self, key: str) -> DemoOrganization:
        """The organization with ``key``, departments included. Raises KeyError if none."""
        for org in self.all_organizations():
            if org.key == key:
                return org
        raise KeyError(key)


# --------------------------------------------------------------------------- identifiers


def _org_code_value(c: str) -> int:
    return int(c) if c.isdigit() else ord(c) - ord("A") + 10


def org_code_check_char(body8: str) -> str:
    """GB 11714-1997 check character of an 8-character organization code body.

    Raises ValueError unless ``body8`` is 8 ASCII digits or upper-case letters.
    """
    if len(body8) != 8 or not body8.isascii() or not body8.isalnum() or body8 != body8.upper():
        raise ValueError("an organization code body has 8 digits or upper-case letters")
    total = sum(_org_code_value(c) * w for c, w in zip(body8, (3, 7, 9, 10, 5, 8, 4, 2),
                                                       strict=True))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def make_uscc(prefix: str, division: str, org_body8: str) -> str:
    """A valid USCC from its registration prefix (e.g. '91'), 6-digit division code and
    8-character organization code body; the two check characters are computed.

    Raises ValueError if a part has the wrong length or a character outside the alphabets.
    """
    if len(prefix) != 2 or len(division) != 6 or not division.isdigit():
        raise ValueError("a USCC needs a 2-character prefix and a 6-digit division code")
    body17 = prefix + division + org_body8 + org_code_check_char(org_body8)
    return body17 + uscc_check_char(body17)


# Letters of the USCC alphabet (GB 32100 excludes I, O, S, V, Z), usable in new org codes.
_ORG_LETTERS = "ABCDEFGHJKLMNPQRTUWXY"
_ORG_CHARS = "0123456789" + _ORG_LETTERS


# --------------------------------------------------------------------------- population


@dataclass(slots=True)
class _Population:
    """Per-enterprise attributes; list/array index i is enterprise i (0 is the subject)."""

    uscc: list[str]
    name: list[str]
    legal_rep: list[str]
    resident_id: list[str]
    mobile: list[str]
    address: list[str]
    district: list[District]
    industry: list[Industry]
    capital_wan: list[int]
    founded: list[dt.date]
    status: list[str]
    tax_grade: list[str]
    h0: np.ndarray  # insured headcount at the start of the window
    distress: np.ndarray  # latent 0..1: drives shrinking, arrears, lawsuits, bad tax grades
    trend: np.ndarray  # monthly log growth of headcount
    active_months: np.ndarray  # months of activity in the window (== months unless revoked)
    tax_rate: np.ndarray  # yuan of tax per employee per month
    coverage: np.ndarray  # share of insured staff who also pay into the housing fund
    hf_base: np.ndarray  # housing-fund base, yuan, at the window start
    hf_rate: np.ndarray  # percent, each side (employer and employee)
    kwh_rate: np.ndarray
    water_rate: np.ndarray
    tariff: np.ndarray  # electricity price in 1/100 fen per kWh


def _unique(draw, taken: set[str]) -> str:
    for _ in range(1000):
        value = draw()
        if value not in taken:
            taken.add(value)
            return value
    raise DemoDataError("could not draw a unique value; ask for fewer rows")


def _population(rows: int, months: int, window_start: dt.date,
                rng: np.random.Generator, fake: Faker) -> _Population:
    d_weights = np.array([d.weight for d in DISTRICTS])
    i_weights = np.array([i.weight for i in INDUSTRIES])
    d_idx = rng.choice(len(DISTRICTS), size=rows, p=d_weights / d_weights.sum())
    i_idx = rng.choice(len(INDUSTRIES), size=rows, p=i_weights / i_weights.sum())
    districts = [DISTRICTS[k] for k in d_idx]
    industries = [INDUSTRIES[k] for k in i_idx]

    median = np.array([ind.median_headcount for ind in industries], dtype=float)
    h0 = np.clip(np.rint(rng.lognormal(np.log(median), 0.9)), 1, 2000).astype(np.int64)
    distress = rng.beta(1.2, 6.0, size=rows)
    trend = rng.normal(0.004, 0.01, size=rows) - 0.03 * distress

    # SMEs are young: ages roughly exponential, at least a month before the window opens.
    max_age = (window_start - _EARLIEST_FOUNDING).days
    age_days = np.clip(rng.exponential(7 * 365.25, size=rows), 30, max_age).astype(np.int64)
    founded = [window_start - dt.timedelta(days=int(a)) for a in age_days]

    revoked = (distress > 0.5) & (rng.random(rows) < 0.25)
    revoked[0] = False
    active_months = np.where(revoked, np.maximum(months - rng.integers(1, 5, size=rows), 0),
                             months)
    score = distress + rng.normal(0, 0.05, size=rows)
    grade = np.select([score < 0.05, score < 0.30, score < 0.45], ["A", "B", "C"], "D")
    young = age_days < 365
    tax_grade = [("D" if revoked[k] else "M" if young[k] else str(grade[k]))
                 for k in range(rows)]
    in_business = rng.random(rows) < 0.04
    status = [REGISTRATION_REVOKED if revoked[k] else "在业" if in_business[k] else "存续"
              for k in range(rows)]

    # The subject (index 0) is a healthy, mid-sized firm so the consented-lookup demo
    # has something sensible to show.
    h0[0] = max(int(h0[0]), 12)
    distress[0] = 0.05
    trend[0] = 0.005
    tax_grade[0] = "B"
    status[0] = "存续"
    if young[0]:
        founded[0] = window_start - dt.timedelta(days=3 * 365)

    cap_step = np.clip(np.rint(np.log10(h0) * 2 + rng.normal(1.0, 1.0, size=rows)), 0,
                       len(_CAPITAL_WAN) - 1).astype(int)
    capital = [_CAPITAL_WAN[k] for k in cap_step]

    tax_per_worker = np.array([ind.tax_per_worker for ind in industries], dtype=float)
    tax_rate = tax_per_worker * rng.lognormal(0, 0.5, size=rows) * (1 - 0.6 * distress)
    coverage = np.clip(rng.normal(0.85, 0.15, size=rows) - 0.3 * distress, 0.3, 1.0)
    wage = np.array([ind.wage for ind in industries], dtype=float)
    hf_base = np.clip(np.rint(wage * rng.lognormal(0, 0.25, size=rows)),
                      _HF_BASE_MIN, _HF_BASE_MAX).astype(np.int64)
    hf_rate = rng.choice(np.array([5, 6, 7]), size=rows, p=[0.3, 0.2, 0.5])
    kwh_rate = np.array([ind.kwh_per_worker for ind in industries]) * rng.lognormal(0, 0.4, rows)
    water_rate = (np.array([ind.water_per_worker for ind in industries])
                  * rng.lognormal(0, 0.4, rows))
    tariff = rng.integers(6500, 11000, size=rows)

    usccs: set[str] = set()
    ids: set[str] = set()
    phones: set[str] = set()
    names: set[str] = set()
    uscc, name, rep, rid, mobile, address = [], [], [], [], [], []
    for k in range(rows):
        district, industry = districts[k], industries[k]
        uscc.append(_unique(lambda d=district, f=founded[k]: _enterprise_uscc(rng, d, f), usccs))
        name.append(_unique(lambda i=industry: _company_name(rng, i), names))
        male = rng.random() < 0.7
        rep.append(fake.last_name() + (fake.first_name_male() if male
                                       else fake.first_name_female()))
        rid.append(_unique(lambda m=male, f=founded[k]: _resident_id(rng, m, f), ids))
        mobile.append(_unique(lambda: _mobile(rng), phones))
        address.append(_address(rng, district))

    return _Population(
        uscc=uscc, name=name, legal_rep=rep, resident_id=rid, mobile=mobile, address=address,
        district=districts, industry=industries, capital_wan=capital, founded=founded,
        status=status, tax_grade=tax_grade, h0=h0, distress=distress, trend=trend,
        active_months=active_months, tax_rate=tax_rate, coverage=coverage, hf_base=hf_base,
        hf_rate=hf_rate, kwh_rate=kwh_rate, water_rate=water_rate, tariff=tariff,
    )


# Organization codes assigned since the 2015 reform start with MA; older firms kept their
# numeric 8-digit code inside the USCC.
_USCC_REFORM = dt.date(2015, 10, 1)


def _enterprise_uscc(rng: np.random.Generator, district: District, founded: dt.date) -> str:
    if founded >= _USCC_REFORM:
        tail = "".join(_ORG_CHARS[k] for k in rng.integers(0, len(_ORG_CHARS), size=5))
        body = "MA1" + tail
    else:
        body = "".join(str(k) for k in rng.integers(0, 10, size=8))
    return make_uscc("91", district.code, body)


def _company_name(rng: np.random.Generator, industry: Industry) -> str:
    # Mostly two-syllable trade names; three-syllable ones keep large populations unique.
    syllables = 2 if rng.random() < 0.85 else 3
    brand = "".join(BRAND_CHARS[k] for k in rng.choice(len(BRAND_CHARS), size=syllables,
                                                      replace=False))
    word = industry.name_words[rng.integers(len(industry.name_words))]
    suffix = "股份有限公司" if rng.random() < 0.03 else "有限公司"
    return f"上海{brand}{word}{suffix}"


def _resident_id(rng: np.random.Generator, male: bool, founded: dt.date) -> str:
    region = DISTRICTS[rng.integers(len(DISTRICTS))].code
    # Born 1960-2000 and at least 20 when the firm was founded.
    latest = min(dt.date(2000, 12, 31), dt.date(founded.year - 20, 12, 31))
    earliest = dt.date(1960, 1, 1)
    born = earliest + dt.timedelta(days=int(rng.integers(0, (latest - earliest).days + 1)))
    sex = rng.choice((1, 3, 5, 7, 9)) if male else rng.choice((0, 2, 4, 6, 8))
    body = f"{region}{born:%Y%m%d}{rng.integers(0, 100):02d}{sex}"
    return body + resident_id_check_char(body)


def _mobile(rng: np.random.Generator) -> str:
    prefix = MOBILE_PREFIXES[rng.integers(len(MOBILE_PREFIXES))]
    return prefix + "".join(str(k) for k in rng.integers(0, 10, size=8))


def _address(rng: np.random.Generator, district: District) -> str:
    road = district.roads[rng.integers(len(district.roads))]
    number = int(rng.integers(1, 2000))
    building = f"{rng.integers(1, 12)}幢" if rng.random() < 0.5 else ""
    room = f"{rng.integers(1, 25)}{rng.integers(1, 20):02d}室"
    return f"上海市{district.name}{road}{number}号{building}{room}"


# --------------------------------------------------------------------------- monthly tables


def _periods(today: dt.date, months: int) -> list[tuple[int, int]]:
    """The ``months`` complete calendar months before the month of ``today``, oldest first."""
    current = today.year * 12 + today.month - 1
    out = []
    for back in range(months, 0, -1):
        year, month0 = divmod(current - back, 12)
        out.append((year, month0 + 1))
    return out


def _yuan(fen: np.ndarray) -> list[Decimal]:
    """Integer fen → Decimal yuan with exactly two places."""
    return [Decimal(int(v)).scaleb(-2) for v in fen.ravel()]


@dataclass(slots=True)
class _Monthly:
    headcount: np.ndarray  # (T, N) int
    tax_fen: np.ndarray
    hf_persons: np.ndarray
    hf_fen: np.ndarray
    kwh: np.ndarray
    power_fen: np.ndarray
    water: np.ndarray
    arrears: np.ndarray  # bool


def _simulate(pop: _Population, periods: Sequence[tuple[int, int]],
              rng: np.random.Generator) -> _Monthly:
    n, t_count = len(pop.uscc), len(periods)
    t = np.arange(t_count)[:, None]
    month = np.array([m for _, m in periods])[:, None]  # calendar month 1..12
    active = t < pop.active_months[None, :]

    walk = np.cumsum(rng.normal(0, 0.03, size=(t_count, n)), axis=0)
    grown = np.rint(pop.h0[None, :] * np.exp(pop.trend[None, :] * t + walk))
    headcount = np.where(active, np.maximum(grown, 1), 0).astype(np.int64)

    # Small-scale taxpayers (here: under 10 staff) pay VAT quarterly, in Jan/Apr/Jul/Oct;
    # in other months only the withheld income tax shows up.
    quarterly = pop.h0 < 10
    q_factor = np.where(np.isin(month, (1, 4, 7, 10)), 2.6, 0.45)
    factor = np.where(quarterly[None, :], q_factor, 1.0)
    # Random amounts are drawn as floats once, then fixed to integer fen for good.
    tax_yuan = headcount * pop.tax_rate[None, :] * factor * rng.lognormal(0, 0.15, (t_count, n))
    grade_d = np.array([g == "D" for g in pop.tax_grade])
    missed = grade_d[None, :] & (rng.random((t_count, n)) < 0.3)
    tax_fen = np.where(missed, 0, np.rint(tax_yuan * 100)).astype(np.int64)

    hf_persons = np.floor(headcount * pop.coverage[None, :]).astype(np.int64)
    # Contribution bases are re-declared every July.
    julys = np.cumsum([t_i > 0 and m == 7 for t_i, (_, m) in enumerate(periods)])[:, None]
    base = np.clip(np.rint(pop.hf_base[None, :] * _HF_ANNUAL_RAISE ** julys),
                   _HF_BASE_MIN, _HF_BASE_MAX).astype(np.int64)
    per_side = (base * pop.hf_rate[None, :] + 50) // 100  # yuan, rounded like the centre does
    hf_fen = hf_persons * per_side * 2 * 100

    # Revoked firms keep a standby meter running.
    load = np.where(active, headcount, 0.05 * pop.h0[None, :])
    kwh_season = np.array(_KWH_SEASON)[month - 1]
    water_season = np.array(_WATER_SEASON)[month - 1]
    noise = rng.lognormal(0, 0.05, size=(t_count, n))
    kwh = np.rint(load * pop.kwh_rate[None, :] * kwh_season * noise).astype(np.int64)
    power_fen = (kwh * pop.tariff[None, :] + 50) // 100
    water = np.rint(load * pop.water_rate[None, :] * water_season
                    * rng.lognormal(0, 0.1, size=(t_count, n))).astype(np.int64)

    start_p = 0.005 + 0.3 * pop.distress**2
    arrears = np.zeros((t_count, n), dtype=bool)
    draws = rng.random((t_count, n))
    for i in range(t_count):
        previous = arrears[i - 1] if i else np.zeros(n, dtype=bool)
        p = np.where(previous, 0.6, start_p)
        p = np.where(active[i], p, 0.5)
        arrears[i] = draws[i] < p
    arrears[:, 0] = False  # the subject pays on time

    return _Monthly(headcount, tax_fen, hf_persons, hf_fen, kwh, power_fen, water, arrears)


def _monthly_frame(pop: _Population, periods: Sequence[str],
                   columns: Mapping[str, object], industry: bool = True) -> pd.DataFrame:
    """A period-major frame: all enterprises for the first month, then the next month, …"""
    n, t_count = len(pop.uscc), len(periods)
    data: dict[str, object] = {
        ENTITY_KEY: np.tile(np.array(pop.uscc, dtype=object), t_count),
        PERIOD: np.repeat(np.array(periods, dtype=object), n),
    }
    data.update(columns)
    data[DISTRICT] = np.tile(np.array([d.name for d in pop.district], dtype=object), t_count)
    if industry:
        data[INDUSTRY] = np.tile(np.array([i.name for i in pop.industry], dtype=object), t_count)
    return pd.DataFrame(data)


# --------------------------------------------------------------------------- event tables


def _random_date(rng: np.random.Generator, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=int(rng.integers(0, (last - first).days + 1)))


def _court_frame(pop: _Population, rng: np.random.Generator, window_start: dt.date,
                 last_day: dt.date) -> pd.DataFrame:
    n = len(pop.uscc)
    first_day = window_start - dt.timedelta(days=730)
    has_cases = rng.random(n) < 0.06 + 0.35 * pop.distress
    has_cases[0] = True
    counts = np.where(has_cases, 1 + rng.poisson(0.5 + 2 * pop.distress), 0)
    serials: dict[tuple[int, str], int] = {}
    records = []
    for k in np.flatnonzero(counts):
        for c in range(int(counts[k])):
            if k == 0 and c == 0:
                defendant = False  # the subject's one case: it sued a customer who didn't pay
            else:
                defendant = bool(rng.random() < 0.35 + 0.5 * pop.distress[k])
            causes = CAUSES_AS_DEFENDANT if defendant else CAUSES_AS_PLAINTIFF
            cause = causes[rng.integers(len(causes))]
            decided = _random_date(rng, first_day, last_day)
            filed_year = decided.year - int(decided.month <= 4 and rng.random() < 0.4)
            # Usually the court where the firm is registered, sometimes the other party's.
            district = (pop.district[k] if rng.random() < 0.85
                        else DISTRICTS[rng.integers(len(DISTRICTS))])
            court = district.court_code
            key = (filed_year, court)
            serials[key] = serials.get(key, int(rng.integers(1000, 20000))) + int(
                rng.integers(1, 40))
            scale = 0.3 if cause in ("劳动争议", "追索劳动报酬纠纷") else 1.0
            amount = np.rint(rng.lognormal(np.log(80_000), 1.0) * scale
                             * (1 + np.log1p(pop.h0[k]) / 3) * 100)
            records.append({
                ENTITY_KEY: pop.uscc[k],
                "案号": f"({filed_year}){court}民初{serials[key]}号",
                "案由": cause,
                "判决日期": decided,
                "涉案金额(元)": Decimal(int(amount)).scaleb(-2),
                "当事人地位": "被告" if defendant else "原告",
                DISTRICT: pop.district[k].name,
            })
    frame = pd.DataFrame.from_records(records, columns=[
        ENTITY_KEY, "案号", "案由", "判决日期", "涉案金额(元)", "当事人地位", DISTRICT])
    return frame.sort_values(["判决日期", "案号"], kind="stable", ignore_index=True)


def _environment_frame(pop: _Population, rng: np.random.Generator, window_start: dt.date,
                       last_day: dt.date) -> pd.DataFrame:
    n = len(pop.uscc)
    first_day = window_start - dt.timedelta(days=365)
    risk = np.array([i.env_risk for i in pop.industry])
    fined = rng.random(n) < 0.005 + 0.08 * risk + 0.05 * pop.distress
    fined[0] = False
    counts = np.where(fined, 1 + (rng.random(n) < 0.2), 0)
    serials: dict[tuple[int, str], int] = {}
    records = []
    for k in np.flatnonzero(counts):
        district, industry = pop.district[k], pop.industry[k]
        for _ in range(int(counts[k])):
            decided = _random_date(rng, first_day, last_day)
            key = (decided.year, district.code)
            serials[key] = serials.get(key, int(rng.integers(10, 200))) + int(
                rng.integers(1, 8))
            # Fines are set in whole thousands of yuan within statutory ranges.
            thousands = int(np.clip(np.rint(rng.lognormal(np.log(50), 0.9)), 5, 1000))
            records.append({
                ENTITY_KEY: pop.uscc[k],
                "处罚决定书文号": f"沪{district.abbr}环罚〔{decided.year}〕{serials[key]}号",
                "处罚日期": decided,
                "罚款金额(元)": Decimal(thousands * 1000).quantize(Decimal("0.01")),
                "违法类型": industry.violations[rng.integers(len(industry.violations))],
                DISTRICT: district.name,
            })
    frame = pd.DataFrame.from_records(records, columns=[
        ENTITY_KEY, "处罚决定书文号", "处罚日期", "罚款金额(元)", "违法类型", DISTRICT])
    return frame.sort_values(["处罚日期", "处罚决定书文号"], kind="stable", ignore_index=True)


# --------------------------------------------------------------------------- metadata


def _gov_code(body8: str) -> str:
    return make_uscc("11", "310000", body8)


_REGISTRY_PII = MappingProxyType({
    ENTITY_KEY: "uscc", "法定代表人": "person_name", "法定代表人身份证号": "resident_id",
    "联系电话": "mobile", "注册地址": "address",
})
_KEY_ONLY = MappingProxyType({ENTITY_KEY: "uscc"})


def _yuan_fen(yuan: int) -> int:
    return yuan * 100


# key → (name_zh, name_en, credit code, metadata)
_DEPARTMENTS: tuple[tuple[str, str, str, str, DemoDatasetMeta], ...] = (
    ("market_supervision", "上海市市场监督管理局",
     "Shanghai Administration for Market Regulation", _gov_code("00248101"),
     DemoDatasetMeta(
         "企业登记注册信息", "Enterprise registration records",
         "本市中小企业的登记注册信息，包括统一社会信用代码、企业名称、法定代表人及其身份证号、"
         "联系电话、注册地址、所属区、行业、注册资本、成立日期和登记状态。",
         "enterprise_registry", "conditional", "daily",
         DemoCosts(_yuan_fen(600_000), _yuan_fen(180_000), _yuan_fen(3_500)), _REGISTRY_PII)),
    ("tax", "国家税务总局上海市税务局",
     "Shanghai Tax Service, State Taxation Administration", _gov_code("00248102"),
     DemoDatasetMeta(
         "企业月度纳税信息", "Monthly enterprise tax payments",
         "按所属期汇总的企业实缴税额及纳税信用等级（A/B/M/C/D）。",
         "tax", "conditional", "monthly",
         DemoCosts(_yuan_fen(900_000), _yuan_fen(300_000), _yuan_fen(5_000)), _KEY_ONLY)),
    ("hrss", "上海市人力资源和社会保障局",
     "Shanghai Municipal Human Resources and Social Security Bureau", _gov_code("00248103"),
     DemoDatasetMeta(
         "企业社会保险参保信息", "Monthly social insurance enrolment",
         "按所属期统计的企业社会保险参保人数。",
         "social_security", "conditional", "monthly",
         DemoCosts(_yuan_fen(500_000), _yuan_fen(150_000), _yuan_fen(3_000)), _KEY_ONLY)),
    ("housing_fund", "上海市公积金管理中心",
     "Shanghai Provident Fund Management Center", _gov_code("00248104"),
     DemoDatasetMeta(
         "单位住房公积金缴存信息", "Monthly housing provident fund contributions",
         "按所属期统计的单位住房公积金缴存人数和缴存金额（单位与个人合计）。",
         "housing_fund", "conditional", "monthly",
         DemoCosts(_yuan_fen(400_000), _yuan_fen(120_000), _yuan_fen(2_500)), _KEY_ONLY)),
    ("court", "上海市高级人民法院",
     "Shanghai High People's Court", _gov_code("00248105"),
     DemoDatasetMeta(
         "企业涉诉裁判信息", "Court judgments involving enterprises",
         "本市各级法院已公开的涉企民商事一审判决，含案号、案由、判决日期、涉案金额和当事人地位。",
         "judicial", "open", "daily",
         DemoCosts(_yuan_fen(300_000), _yuan_fen(200_000), _yuan_fen(2_000)), _KEY_ONLY)),
    ("environment", "上海市生态环境局",
     "Shanghai Municipal Bureau of Ecology and Environment", _gov_code("00248106"),
     DemoDatasetMeta(
         "环境行政处罚信息", "Environmental administrative penalties",
         "已公示的生态环境行政处罚决定，含处罚决定书文号、处罚日期、罚款金额和违法类型。",
         "environment", "open", "weekly",
         DemoCosts(_yuan_fen(150_000), _yuan_fen(60_000), _yuan_fen(1_000)), _KEY_ONLY)),
    ("utilities", "上海市公用事业服务中心",
     "Shanghai Public Utilities Service Center", _gov_code("00248107"),
     DemoDatasetMeta(
         "企业水电缴费信息", "Monthly utility payments",
         "按所属期统计的企业用电量、电费、用水量及是否欠费。",
         "utilities", "conditional", "monthly",
         DemoCosts(_yuan_fen(350_000), _yuan_fen(100_000), _yuan_fen(2_000)), _KEY_ONLY)),
    # The Shanghai pilot's other departments (科委, 规划资源, 住建): wide annual indicator
    # tables (market.demo.pilot) that bring the data items past the pilot's 300.
    ("science", "上海市科学技术委员会",
     "Science and Technology Commission of Shanghai Municipality", _gov_code("00248108"),
     DemoDatasetMeta(
         "企业科技创新年度指标", "Annual science and technology indicators of enterprises",
         "科技型企业近三年研发投入、研发人员、专利、技术合同和科技项目等年度指标。",
         "science_technology", "conditional", "monthly",
         DemoCosts(_yuan_fen(450_000), _yuan_fen(160_000), _yuan_fen(2_500)), _KEY_ONLY)),
    ("natural_resources", "上海市规划和自然资源局",
     "Shanghai Municipal Bureau of Planning and Natural Resources", _gov_code("00248109"),
     DemoDatasetMeta(
         "企业用地及土地绩效年度指标", "Annual land use and land performance of enterprises",
         "企业用地的用途、取得方式、产业区块，以及近三年用地面积、亩均税收、亩均产值等指标。",
         "natural_resources", "conditional", "monthly",
         DemoCosts(_yuan_fen(400_000), _yuan_fen(140_000), _yuan_fen(2_500)), _KEY_ONLY)),
    ("housing_construction", "上海市住房和城乡建设管理委员会",
     "Shanghai Municipal Commission of Housing and Urban-Rural Development",
     _gov_code("00248110"),
     DemoDatasetMeta(
         "企业资质、工程及房屋租赁年度指标",
         "Annual qualifications, construction projects and leases of enterprises",
         "企业建筑业资质、信用等级、房屋租赁备案，以及近三年工程项目、合同额和租赁等指标。",
         "housing_construction", "conditional", "monthly",
         DemoCosts(_yuan_fen(380_000), _yuan_fen(130_000), _yuan_fen(2_200)), _KEY_ONLY)),
)

DEPARTMENT_KEYS: tuple[str, ...] = tuple(d[0] for d in _DEPARTMENTS)

_FIXED_ORGANIZATIONS: tuple[DemoOrganization, ...] = (
    DemoOrganization("operator", "operator", "上海数据集团有限公司", "Shanghai Data Group Co., Ltd.",
                     make_uscc("91", "310115", "MA1K7D2P")),
    DemoOrganization("regulator", "regulator", "上海市数据局",
                     "Shanghai Municipal Data Administration", _gov_code("00248100")),
    # The pilot's four banks (seed 004): 建设银行, 交通银行 and 浦发银行 Shanghai branches and
    # 上海银行. Credit codes are synthetic (valid check characters, nobody's).
    DemoOrganization("buyer_ccb", "buyer", "中国建设银行股份有限公司上海市分行",
                     "China Construction Bank, Shanghai Branch",
                     make_uscc("91", "310115", "83215478")),
    DemoOrganization("buyer_bosc", "buyer", "上海银行股份有限公司", "Bank of Shanghai Co., Ltd.",
                     make_uscc("91", "310000", "13221158")),
    DemoOrganization("buyer_bocom", "buyer", "交通银行股份有限公司上海市分行",
                     "Bank of Communications, Shanghai Branch",
                     make_uscc("91", "310115", "83215479")),
    DemoOrganization("buyer_spdb", "buyer", "上海浦东发展银行股份有限公司上海分行",
                     "Shanghai Pudong Development Bank, Shanghai Branch",
                     make_uscc("91", "310115", "83215480")),
)

_USER_SPECS: tuple[tuple[str, OrgKind, str, str], ...] = (
    ("operator@demo.market", "operator", "operator", "运营管理员"),
    ("regulator@demo.market", "regulator", "regulator", "监管专员"),
    ("buyer@demo.market", "buyer", "buyer_ccb", "建行普惠金融事业部"),
    ("buyer2@demo.market", "buyer", "buyer_bosc", "上海银行小微金融部"),
    ("buyer3@demo.market", "buyer", "buyer_bocom", "交行普惠金融部"),
    ("buyer4@demo.market", "buyer", "buyer_spdb", "浦发银行普惠金融部"),
    ("subject@demo.market", "subject", "subject", "企业经办人"),
)


def _users() -> tuple[DemoUser, ...]:
    users = [DemoUser(email, DEMO_PASSWORDS[role], role, org, display)
             for email, role, org, display in _USER_SPECS]
    for key, name_zh, *_ in _DEPARTMENTS:
        users.append(DemoUser(f"{key.replace('_', '-')}@demo.market",
                              DEMO_PASSWORDS["department"], "department", key,
                              f"{name_zh}数据专员"))
    return tuple(users)


# --------------------------------------------------------------------------- entry points


def generate(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED, months: int = DEFAULT_MONTHS,
             today: dt.date | None = None) -> DemoData:
    """Generate the demo population and every department's table.

    ``rows`` is the number of enterprises (see the module docstring for table sizes);
    ``months`` complete months ending before ``today``'s month are covered.

    Raises DemoDataError if ``rows`` is not in 1..MAX_ROWS, ``months`` not in 1..MAX_MONTHS,
    or the window would start before 1996 (the population is founded from 1995 on).
    """
    if not isinstance(rows, int) or not 1 <= rows <= MAX_ROWS:
        raise DemoDataError(f"rows must be an integer from 1 to {MAX_ROWS}")
    if not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise DemoDataError(f"months must be an integer from 1 to {MAX_MONTHS}")
    today = today or dt.date.today()
    ym = _periods(today, months)
    periods = tuple(f"{y:04d}-{m:02d}" for y, m in ym)
    window_start = dt.date(ym[0][0], ym[0][1], 1)
    if window_start < _EARLIEST_FOUNDING + dt.timedelta(days=365):
        raise DemoDataError(f"the months must start after {_EARLIEST_FOUNDING.year + 1}")
    last_day = today - dt.timedelta(days=1)

    # Independent streams per stage, so e.g. the court table doesn't shift when months change.
    # Later stages take later children: spawn(n)'s first children do not depend on n.
    pop_ss, month_ss, court_ss, env_ss, *pilot_ss = np.random.SeedSequence(seed).spawn(
        4 + len(pilot.TABLES))
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    pop = _population(rows, months, window_start, np.random.default_rng(pop_ss), fake)
    sim = _simulate(pop, ym, np.random.default_rng(month_ss))

    registry = pd.DataFrame({
        ENTITY_KEY: pop.uscc,
        "企业名称": pop.name,
        "法定代表人": pop.legal_rep,
        "法定代表人身份证号": pop.resident_id,
        "联系电话": pop.mobile,
        "注册地址": pop.address,
        DISTRICT: [d.name for d in pop.district],
        INDUSTRY: [i.name for i in pop.industry],
        "注册资本(万元)": [Decimal(c).quantize(Decimal("0.01")) for c in pop.capital_wan],
        "成立日期": pop.founded,
        "登记状态": pop.status,
    })
    grades = np.tile(np.array(pop.tax_grade, dtype=object), months)
    frames = {
        "market_supervision": registry,
        "tax": _monthly_frame(pop, periods, {
            "纳税额(元)": _yuan(sim.tax_fen), "纳税信用等级": grades}),
        "hrss": _monthly_frame(pop, periods, {"参保人数": sim.headcount.ravel()}),
        "housing_fund": _monthly_frame(pop, periods, {
            "缴存人数": sim.hf_persons.ravel(), "缴存金额(元)": _yuan(sim.hf_fen)},
            industry=False),
        "court": _court_frame(pop, np.random.default_rng(court_ss), window_start, last_day),
        "environment": _environment_frame(pop, np.random.default_rng(env_ss), window_start,
                                          last_day),
        "utilities": _monthly_frame(pop, periods, {
            "用电量(千瓦时)": sim.kwh.ravel(), "电费(元)": _yuan(sim.power_fen),
            "用水量(吨)": sim.water.ravel(),
            "是否欠费": np.where(sim.arrears.ravel(), "是", "否").astype(object)},
            industry=False),
    }
    years = pilot.annual_years(periods[-1])
    for table, table_ss in zip(pilot.TABLES, pilot_ss, strict=True):
        frames[table.key] = pilot.table_frame(
            table, uscc=pop.uscc, district=[d.name for d in pop.district],
            industry=[i.name for i in pop.industry], headcount=pop.h0, distress=pop.distress,
            years=years, rng=np.random.default_rng(table_ss), entity_key=ENTITY_KEY,
            district_column=DISTRICT, industry_column=INDUSTRY)

    departments = tuple(
        DemoDepartment(key, name_zh, name_en, code, meta, frames[key])
        for key, name_zh, name_en, code, meta in _DEPARTMENTS
    )
    subject = DemoOrganization("subject", "subject", pop.name[0],
                               "Demo SME (data subject)", pop.uscc[0])
    return DemoData(seed=seed, rows=rows, months=months, today=today, periods=periods,
                    departments=departments, organizations=_FIXED_ORGANIZATIONS + (subject,),
                    users=_users(), subject=subject)


def write_csvs(demo: DemoData, directory: str | Path,
               encoding_for: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Write each department's table to ``directory/<key>.csv`` and return key → path.

    Encodings default to DEFAULT_ENCODINGS (market supervision in GBK with CRLF line ends);
    ``encoding_for`` overrides them per department key.

    Raises DemoDataError for an unknown department key or encoding name, and
    UnicodeEncodeError if a table has text the chosen encoding cannot represent.
    """
    encodings = dict(DEFAULT_ENCODINGS)
    for key, encoding in (encoding_for or {}).items():
        if key not in encodings:
            raise DemoDataError(f"unknown department key {key!r}")
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise DemoDataError(f"unknown encoding {encoding!r}") from None
        encodings[key] = encoding
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for dept in demo.departments:
        encoding = encodings[dept.key]
        # Legacy encodings come from Windows tools (Excel), which end lines with CRLF.
        legacy = codecs.lookup(encoding).name not in ("utf-8", "utf-8-sig")
        path = out / dept.file_name
        dept.frame.to_csv(path, index=False, encoding=encoding,
                          lineterminator="\r\n" if legacy else "\n")
        written[dept.key] = path
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m market.demo.data",
                                     description="Write the Shanghai demo tables as CSV files.")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="number of enterprises")
    parser.add_argument("--months", type=int, default=DEFAULT_MONTHS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--today", type=dt.date.fromisoformat, default=None,
                        help="YYYY-MM-DD; the window ends the month before (default: today)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    args = parser.parse_args(argv)
    try:
        demo = generate(args.rows, args.seed, args.months, args.today)
        paths = write_csvs(demo, args.out)
    except DemoDataError as exc:
        parser.error(str(exc))
    for key, path in paths.items():
        print(f"{path}\t{len(demo.department(key).frame)} rows\t{DEFAULT_ENCODINGS[key]}")
    print(f"subject: {demo.subject.name_zh} {demo.subject.credit_code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
