"""Data quality score, 0-100, measured on the data itself (GB/T 36344-2018 dimensions).

Every dimension is accumulated chunk by chunk, so the score costs no second pass and bounded
memory. Each dimension is a share scaled to 0-100:

- **completeness** (完整性): non-null cells / all cells.
- **validity** (规范性/准确性): values that pass their check / values checked. Checked are
  the columns of a detected PII kind (check characters, formats, real birth dates) and the
  typed columns (the value parses as the column's type). Free-text columns are not checked.
- **uniqueness** (唯一性): 1 - duplicate rows / rows; when the entity key should be unique,
  the mean of that and 1 - duplicate keys / keys.
- **consistency** (一致性): checks passed / checks made: the birth date embedded in a resident
  ID equals the birth-date column and its sex digit agrees with the gender column in the same
  row, and no date or datetime lies in the future.
- **timeliness** (时效性): the latest date in the data (birth dates excluded) against the
  declared update frequency, relative to ``now``: 100 while the age is within one period, then
  falling linearly to 0 at four periods.

The score is the weighted mean of the measured dimensions, with the weights below
(completeness 25, validity 25, uniqueness 20, consistency 15, timeliness 15). A dimension with
nothing to measure (no checked column, no consistency check, no date or no declared frequency)
is reported as ``None`` and the other weights are rescaled. docs/quality.md says the same.

Duplicates are counted on 64-bit hashes of rows and keys. Up to :data:`EXACT_LIMIT` distinct
hashes the count is exact; beyond it a fixed share of the hash space is kept (all rows with the
same content fall on the same side), so the duplicate share is estimated from a sample whose
size stays bounded.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from .kinds import UPDATE_FREQUENCY_DAYS

WEIGHTS = {
    "completeness": 0.25,
    "validity": 0.25,
    "uniqueness": 0.20,
    "consistency": 0.15,
    "timeliness": 0.15,
}
EXACT_LIMIT = 2_000_000
#: Ages (in periods) at which timeliness starts to fall and reaches 0.
FRESH_PERIODS, STALE_PERIODS = 1.0, 4.0


class DistinctSketch:
    """Counts duplicates among 64-bit hashes in bounded memory (see the module docstring)."""

    def __init__(self, limit: int = EXACT_LIMIT):
        self.limit = limit
        self.level = 0  # only hashes below 2**(64 - level) are kept
        self._hashes = np.empty(0, dtype=np.uint64)
        self._counts = np.empty(0, dtype=np.int64)
        self._pending: list[np.ndarray] = []
        self._pending_size = 0

    def add(self, hashes: np.ndarray) -> None:
        hashes = self._keep(hashes.astype(np.uint64, copy=False))
        self._pending.append(hashes)
        self._pending_size += len(hashes)
        if self._pending_size >= self.limit // 2:
            self._merge()

    def _keep(self, hashes: np.ndarray) -> np.ndarray:
        if self.level == 0:
            return hashes
        return hashes[hashes < np.uint64(1 << (64 - self.level))]

    def _merge(self) -> None:
        if not self._pending:
            return
        new, new_counts = np.unique(np.concatenate(self._pending), return_counts=True)
        self._pending, self._pending_size = [], 0
        allh = np.concatenate([self._hashes, new])
        allc = np.concatenate([self._counts, new_counts])
        uniq, inverse = np.unique(allh, return_inverse=True)
        self._hashes, self._counts = uniq, np.bincount(inverse, weights=allc).astype(np.int64)
        while len(self._hashes) > self.limit:
            self.level += 1
            keep = self._hashes < np.uint64(1 << (64 - self.level))
            self._hashes, self._counts = self._hashes[keep], self._counts[keep]

    def result(self) -> tuple[int, int, bool]:
        """(values seen in the sample, duplicates among them, exact?)."""
        self._merge()
        seen = int(self._counts.sum())
        return seen, seen - len(self._hashes), self.level == 0


@dataclass
class ColumnQuality:
    non_null: int = 0
    checked: int = 0
    valid: int = 0


@dataclass
class QualityReport:
    score: float
    dimensions: dict[str, float | None]
    details: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"score": self.score, "dimensions": dict(self.dimensions), "details": self.details}


class QualityAccumulator:
    """Collects the counts of every dimension chunk by chunk; :meth:`result` scores them."""

    def __init__(
        self,
        columns: list[str],
        *,
        now: dt.datetime,
        update_frequency: str | None,
        check_key: bool,
    ):
        self.columns = {name: ColumnQuality() for name in columns}
        self.rows = 0
        self.now = now
        self.update_frequency = update_frequency
        self.check_key = check_key
        self.row_hashes = DistinctSketch()
        self.key_hashes = DistinctSketch()
        self.consistency_checks: dict[str, list[int]] = {}
        self.latest: np.datetime64 | None = None

    def add_rows(self, n: int) -> None:
        self.rows += n

    def add_column(self, name: str, *, non_null: int, checked: int = 0, valid: int = 0) -> None:
        c = self.columns[name]
        c.non_null += non_null
        c.checked += checked
        c.valid += valid

    def add_check(self, rule: str, made: int, passed: int) -> None:
        counts = self.consistency_checks.setdefault(rule, [0, 0])
        counts[0] += made
        counts[1] += passed

    def add_dates(self, dates: np.ndarray, *, timely: bool) -> None:
        """Future dates fail consistency; the others may also set the latest date."""
        present = dates[~np.isnat(dates)]
        if not len(present):
            return
        today = np.datetime64(self.now.date(), "D")
        past = present[present <= today]
        self.add_check("dates_not_in_future", len(present), len(past))
        if timely and len(past):
            latest = past.max()
            self.latest = latest if self.latest is None else max(self.latest, latest)

    def result(self) -> QualityReport:
        cells = self.rows * len(self.columns)
        non_null = sum(c.non_null for c in self.columns.values())
        checked = sum(c.checked for c in self.columns.values())
        valid = sum(c.valid for c in self.columns.values())
        dims: dict[str, float | None] = {
            "completeness": _pct(non_null, cells),
            "validity": _pct(valid, checked) if checked else None,
            "uniqueness": None,
            "consistency": None,
            "timeliness": None,
        }
        details: dict[str, object] = {}

        seen, dup, exact = self.row_hashes.result()
        details["duplicate_rows"] = {"share": _share(dup, seen), "exact": exact}
        uniq = 1.0 - (dup / seen if seen else 0.0)
        if self.check_key:
            kseen, kdup, kexact = self.key_hashes.result()
            details["duplicate_keys"] = {"share": _share(kdup, kseen), "exact": kexact}
            uniq = (uniq + 1.0 - (kdup / kseen if kseen else 0.0)) / 2
        dims["uniqueness"] = round(100 * uniq, 2) if self.rows else None

        made = sum(v[0] for v in self.consistency_checks.values())
        passed = sum(v[1] for v in self.consistency_checks.values())
        if made:
            dims["consistency"] = _pct(passed, made)
        details["consistency_checks"] = {
            rule: {"made": m, "passed": p}
            for rule, (m, p) in sorted(self.consistency_checks.items())
        }

        dims["timeliness"], details["timeliness"] = self._timeliness()
        measured = {k: v for k, v in dims.items() if v is not None}
        total_weight = sum(WEIGHTS[k] for k in measured)
        score = (
            sum(WEIGHTS[k] * v for k, v in measured.items()) / total_weight if total_weight else 0.0
        )
        return QualityReport(round(score, 2), dims, details)

    def _timeliness(self) -> tuple[float | None, dict[str, object]]:
        freq = self.update_frequency
        latest = None if self.latest is None else str(self.latest.astype("datetime64[D]"))
        info: dict[str, object] = {"latest_date": latest, "update_frequency": freq}
        if freq is None or freq not in UPDATE_FREQUENCY_DAYS or self.latest is None:
            return None, info
        period = UPDATE_FREQUENCY_DAYS[freq]
        age = int((np.datetime64(self.now.date(), "D") - self.latest).astype(np.int64))
        info["age_days"] = age
        fresh, stale = FRESH_PERIODS * period, STALE_PERIODS * period
        if age <= fresh:
            value = 1.0
        else:
            value = max(0.0, 1.0 - (age - fresh) / (stale - fresh))
        return round(100 * value, 2), info


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 2) if whole else 100.0


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0
