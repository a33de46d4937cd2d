"""Synthetic preview rows: what a dataset looks like, without a single real value.

Pure: no Flask, no database, and no access to the stored Parquet. The rows are generated from
what the catalogue already publishes about each column: its type, PII kind, treatment and the
distribution summary (``DatasetColumn.profile``) the pipeline computed — by type, by pattern,
and in a generalized domain, never by copying.

The rule (#13.8): **no real value of a column appears, except a value of a small, closed,
public domain.** A profile's top value is shown only if the column has at most
:data:`SMALL_DOMAIN` distinct values AND the value belongs to a public vocabulary the
platform ships (:func:`market.pipeline.domains.public_vocabulary`: Shanghai's 16 districts,
the GB/T 4754 industry sections, genders). Everything else is generated:

- pseudonymized columns get random tokens of the same shape (``ent_`` + 24 hex digits): a
  real pseudonym is an HMAC under the platform key, so a random one reveals nothing;
- masked columns get fake values masked the same way (``138****5678``, ``张*``);
- generalized columns draw from their generalized domain (districts, months, age bands);
- numbers are shown as a band of two significant digits (``1200–1300``), drawn inside the
  profile's range around its mean: a band is never a value of the data, and the exact
  minimum, maximum or mean never appears;
- dates and datetimes are shown as their month (``2019-03``), drawn within the range;
- other strings are made-up tokens of the column's pattern: ``样例企业K3PQ有限公司`` for
  enterprise names, ``SYN-…`` references for identifiers, ``样例-XY`` categories otherwise
  (a small domain that is not public, e.g. a bank's loan types, is not shown either).

Suppressed columns are not in the published table, so they are not in the preview either.
"""

from __future__ import annotations

import datetime as dt
import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from faker import Faker

from market.pipeline.domains import SHANGHAI_DISTRICTS, is_district_column, is_public_value

#: Prefixes of the platform's pseudonyms, per PII kind (see market.pipeline.desensitize).
PSEUDONYM_PREFIX: dict[str | None, str] = {
    "credit_code": "ent_",
    "resident_id": "rid_",
    "mobile": "mob_",
    "bank_card": "card_",
    "email": "mail_",
    "person_name": "name_",
    "address": "addr_",
    "birth_date": "dob_",
    "gender": "sex_",
    "age": "age_",
    None: "id_",
}
PSEUDONYM_HEX = 24
DEFAULT_ROWS = 10
#: A top value is shown only if at least this many rows share it.
MIN_SHARED_COUNT = 3
MAX_ROWS = 50
#: Roles whose values single out an entity: never filled from profile values.
IDENTIFYING_ROLES = frozenset({"identifier", "entity_key"})
#: At most this many distinct values: a small closed domain, whose PUBLIC values may be shown.
SMALL_DOMAIN = 20
#: Shown between the two bounds of a numeric band.
BAND_DASH = "–"
_CODE = string.ascii_uppercase + string.digits
#: Column-name hints of an enterprise or organization name.
NAME_HINTS = ("企业", "公司", "名称", "单位", "机构")


@dataclass(frozen=True)
class PreviewColumn:
    """What the catalogue publishes about one column (no values beyond the profile)."""

    name: str
    type: str
    pii_kind: str | None = None
    treatment: str = "none"
    role: str = "other"
    #: ``DatasetColumn.profile``: null share, min/max/mean/std, top values, true share.
    profile: Mapping[str, Any] | None = None
    #: The generalization level from the pipeline report ("month", "district", "5-year band").
    generalization: str | None = None


@dataclass(frozen=True)
class Preview:
    columns: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    synthetic: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"synthetic": self.synthetic, "columns": self.columns, "rows": self.rows}


@dataclass
class _Profile:
    """A tolerant reading of a column profile (the pipeline's keys, and common aliases)."""

    null_share: float = 0.0
    minimum: Any = None
    maximum: Any = None
    mean: Any = None
    std: Any = None
    scale: int | None = None
    true_share: float | None = None
    top: list[tuple[Any, float]] = field(default_factory=list)
    distinct: int | None = None


def _first(data: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in data and data[key] is not None:
            return data[key]
    return None


def _top_values(raw: Any) -> list[tuple[Any, float]]:
    """``[[v, n], …]``, ``[{"value": v, "count": n}, …]`` or ``{v: n}`` → ``[(v, weight)]``."""
    out: list[tuple[Any, float]] = []
    if isinstance(raw, Mapping):
        items: list[Any] = list(raw.items())
    elif isinstance(raw, list | tuple):
        items = list(raw)
    else:
        return out
    for item in items:
        if isinstance(item, Mapping):
            value = _first(item, "value", "v", "label")
            weight = _first(item, "count", "n", "share", "frequency", "weight")
        elif isinstance(item, list | tuple) and len(item) == 2:
            value, weight = item
        else:
            value, weight = item, 1
        try:
            w = float(weight if weight is not None else 1)
        except (TypeError, ValueError):
            w = 1.0
        if value is not None and w > 0:
            out.append((value, w))
    return out


def _shared_values(top: list[tuple[Any, float]]) -> list[tuple[Any, float]]:
    """Only values that many rows share: a value seen in one or two rows is as good as a
    record of its own, and a preview must not echo records (counts, not shares, tell)."""
    if top and all(float(w).is_integer() and w >= 1 for _, w in top):
        return [(v, w) for v, w in top if w >= MIN_SHARED_COUNT]
    return top


def read_profile(profile: Mapping[str, Any] | None) -> _Profile:
    if not profile:
        return _Profile()
    data: dict[str, Any] = dict(profile)
    for nested in ("numeric", "stats", "date", "string", "categorical"):
        if isinstance(data.get(nested), Mapping):
            data = {**data[nested], **{k: v for k, v in data.items() if k != nested}}
    null_share = _first(data, "null_share", "null_fraction", "null_ratio", "nulls_share")
    if null_share is None and isinstance(data.get("nulls"), int | float) and data.get("count"):
        null_share = data["nulls"] / max(1, data["count"] + data["nulls"])
    try:
        null_share_f = float(null_share or 0)
    except (TypeError, ValueError):
        null_share_f = 0.0
    if 1 < null_share_f <= 100:  # given in percent
        null_share_f /= 100
    null_share_f = min(max(null_share_f, 0.0), 1.0)
    true_share = _first(data, "true_share", "true_fraction")
    scale = _first(data, "scale", "decimals")
    distinct = _first(data, "distinct", "distinct_count", "n_distinct")
    return _Profile(
        null_share=null_share_f,
        minimum=_first(data, "min", "minimum", "lo"),
        maximum=_first(data, "max", "maximum", "hi"),
        mean=_first(data, "mean", "avg", "average"),
        std=_first(data, "std", "stddev", "sd"),
        scale=int(scale) if isinstance(scale, int | float | str) and str(scale).isdigit() else None,
        true_share=float(true_share) if isinstance(true_share, int | float) else None,
        top=_shared_values(
            _top_values(_first(data, "top", "top_values", "values", "categories", "frequencies"))
        ),
        distinct=int(distinct) if isinstance(distinct, int | float) else None,
    )


def public_top(profile: _Profile) -> list[tuple[Any, float]]:
    """The top values the preview may show: those of a public vocabulary, and only when the
    column's domain is small (at most :data:`SMALL_DOMAIN` distinct values)."""
    size = profile.distinct if profile.distinct is not None else len(profile.top)
    if size > SMALL_DOMAIN:
        return []
    return [(v, w) for v, w in profile.top if is_public_value(v)]


def _format(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def band(value: float, *, integer: bool, scale: int = 2) -> str:
    """``value``'s band of two significant digits, ``"1200–1300"``; never narrower than the
    column's precision (1 for integers, ``10**-scale`` for decimals)."""
    exact = Decimal(repr(value))
    finest = Decimal(1) if integer else Decimal(1).scaleb(-scale)
    if exact == 0:
        width = finest
    else:
        width = max(Decimal(1).scaleb(exact.copy_abs().adjusted() - 1), finest)
    low = (exact / width).to_integral_value(rounding="ROUND_FLOOR") * width
    return f"{_format(low)}{BAND_DASH}{_format(low + width)}"


def _num(value: Any) -> float | None:
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError, TypeError):
        return None


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


class _Generator:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(seed)

    # -- shapes of the platform's treatments --------------------------------------------------

    def pseudonym(self, kind: str | None) -> str:
        digits = "".join(self.rng.choice("0123456789abcdef") for _ in range(PSEUDONYM_HEX))
        return PSEUDONYM_PREFIX.get(kind, "id_") + digits

    def masked(self, kind: str | None) -> str:
        f, rng = self.fake, self.rng
        if kind == "mobile":
            number = f.phone_number()
            return number[:3] + "****" + number[-4:]
        if kind == "resident_id":
            rid = f.ssn()
            return rid[:6] + "*" * (len(rid) - 10) + rid[-4:]
        if kind == "bank_card":
            card = f.credit_card_number()
            return card[:6] + "******" + card[-4:]
        if kind == "credit_code":
            head = "91310" + "".join(rng.choice(string.digits) for _ in range(3))
            return head + "*" * 10
        if kind == "email":
            user = f.user_name()
            return user[:1] + "***@" + f.free_email_domain()
        if kind == "person_name":
            return f.last_name() + "*"
        if kind == "address":
            return rng.choice(SHANGHAI_DISTRICTS) + "****"
        if kind == "birth_date":
            return str(rng.randint(1950, 2005)) + "-**-**"
        return f.word()[:1] + "***"

    def generalized(self, column: PreviewColumn, profile: _Profile) -> Any:
        shown = public_top(profile)
        if shown:
            return self.pick(shown)
        kind, level = column.pii_kind, (column.generalization or "").lower()
        if kind == "address" or level in ("district", "city", "province"):
            return (
                "上海市" if level in ("city", "province") else self.rng.choice(SHANGHAI_DISTRICTS)
            )
        if kind == "age":
            width = 20 if level.startswith("20") else 10 if level.startswith("10") else 5
            low = self.rng.randrange(20, 80, width)
            return f"{low}-{low + width - 1}"
        if (
            kind == "birth_date"
            or column.type in ("date", "datetime")
            or level in ("month", "year", "5-year band", "decade")
        ):
            day = self.date_between(profile, default_years=40)
            if level in ("5-year band", "decade"):
                width = 5 if level.startswith("5") else 10
                low = day.year - day.year % width
                return f"{low}-{low + width - 1}"
            return f"{day.year}" if level == "year" else f"{day.year}-{day.month:02d}"
        return self.category()

    # -- plain values -------------------------------------------------------------------------

    def pick(self, top: list[tuple[Any, float]]) -> Any:
        values = [v for v, _ in top]
        weights = [w for _, w in top]
        return self.rng.choices(values, weights=weights, k=1)[0]

    def date_between(self, profile: _Profile, default_years: int = 2) -> dt.date:
        lo, hi = _date(profile.minimum), _date(profile.maximum)
        today = dt.date.today()
        if hi is None:
            hi = today
        if lo is None or lo > hi:
            lo = hi - dt.timedelta(days=365 * default_years)
        return lo + dt.timedelta(days=self.rng.randint(0, (hi - lo).days))

    def number(self, column: PreviewColumn, profile: _Profile) -> str:
        lo, hi = _num(profile.minimum), _num(profile.maximum)
        mean, std = _num(profile.mean), _num(profile.std)
        if lo is None or hi is None or lo > hi:
            lo, hi = (
                (0.0, 1000.0) if mean is None else (mean - 3 * (std or 1), mean + 3 * (std or 1))
            )
        if mean is not None and std and std > 0 and lo <= mean <= hi:
            value = self.rng.gauss(mean, std)
            if not lo <= value <= hi:  # redraw inside rather than pile up on the bounds
                value = self.rng.uniform(lo, hi)
        else:
            value = self.rng.uniform(lo, hi)
        scale = profile.scale if profile.scale is not None else 2
        return band(value, integer=column.type == "integer", scale=scale)

    def code(self, n: int) -> str:
        return "".join(self.rng.choice(_CODE) for _ in range(n))

    def category(self) -> str:
        return "样例-" + "".join(self.rng.choice(string.ascii_uppercase) for _ in range(2))

    def month(self, profile: _Profile) -> str:
        day = self.date_between(profile)
        return f"{day.year}-{day.month:02d}"

    def plain(self, column: PreviewColumn, profile: _Profile) -> Any:
        kind, type_ = column.pii_kind, column.type
        identifying = column.role in IDENTIFYING_ROLES
        if type_ in ("integer", "decimal"):
            return self.number(column, profile)
        if type_ in ("date", "datetime"):
            return self.month(profile)
        if type_ == "boolean":
            share = profile.true_share if profile.true_share is not None else 0.5
            return self.rng.random() < share
        if identifying:
            # A made-up reference number: the shape of an identifier, from no stored value.
            return "SYN-" + self.code(10)
        shown = public_top(profile)
        if shown:
            return self.pick(shown)
        if kind == "gender":
            return self.rng.choice(("男", "女"))
        if kind == "address" or is_district_column(column.name):
            return self.rng.choice(SHANGHAI_DISTRICTS)
        if any(hint in column.name for hint in NAME_HINTS):
            return "样例企业" + self.code(4) + self.rng.choice(("有限公司", "股份有限公司"))
        return self.category()

    def value(self, column: PreviewColumn, profile: _Profile) -> Any:
        treatment = column.treatment
        if treatment == "pseudonymized":
            return self.pseudonym(column.pii_kind)
        if treatment == "masked":
            return self.masked(column.pii_kind)
        if treatment == "generalized":
            return self.generalized(column, profile)
        return self.plain(column, profile)


def synthetic_preview(
    columns: Sequence[PreviewColumn], rows: int = DEFAULT_ROWS, seed: int = 0
) -> Preview:
    """``rows`` synthetic rows shaped like ``columns`` (suppressed columns left out).

    Deterministic for a given ``seed``, so that a page shows the same preview on every visit.
    Raises ValueError if ``rows`` is not between 1 and :data:`MAX_ROWS`.
    """
    if not 1 <= rows <= MAX_ROWS:
        raise ValueError(f"rows must be between 1 and {MAX_ROWS}")
    shown = [c for c in columns if c.treatment != "suppressed"]
    gen = _Generator(seed)
    profiles = {c.name: read_profile(c.profile) for c in shown}
    out_rows: list[dict[str, Any]] = []
    for _ in range(rows):
        row: dict[str, Any] = {}
        for column in shown:
            profile = profiles[column.name]
            # Keep at least some values in nearly empty columns, so the shape stays visible.
            if profile.null_share and gen.rng.random() < min(profile.null_share, 0.9):
                row[column.name] = None
            else:
                row[column.name] = gen.value(column, profile)
        out_rows.append(row)
    described = [
        {
            "name": c.name,
            "type": c.type,
            "pii_kind": c.pii_kind,
            "treatment": c.treatment,
            "role": c.role,
        }
        for c in shown
    ]
    return Preview(columns=described, rows=out_rows)
