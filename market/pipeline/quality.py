"""Data quality score, 0-100, measured on the data itself (GB/T 36344-2018 dimensions).

Every dimension is accumulated chunk by chunk, so the score costs no second pass and bounded
memory. Each dimension is a share scaled to 0-100:

- **completeness** (完整性): non-null cells / all cells.
- **validity** (规范性): values that pass their format check / values checked. Checked are
  the columns of a detected PII kind (check characters, formats, real birth dates) and the
  typed columns (the value parses as the column's type). Free-text columns are not checked.
- **accuracy** (准确性): values that pass a domain rule / values checked
  (:mod:`market.pipeline.domains`): district columns hold current divisions of the
  administrative-division list, declared amounts are not negative, no date lies in the future.
- **uniqueness** (唯一性): 1 - duplicate rows / rows; when the entity key should be unique,
  the mean of that and 1 - duplicate keys / keys.
- **consistency** (一致性): cross-field checks passed / made: the birth date embedded in a
  resident ID equals the birth-date column and its sex digit agrees with the gender column.
- **timeliness** (时效性): the data's as-of date against the declared update frequency,
  relative to ``now``: 100 while the age is within one period, then falling linearly to 0 at
  four periods. The as-of date is the latest date of an as-of column (统计日期, 截止日期, 所属期,
  更新日期, …), else of the event dates (判决日期, …); attribute dates (成立日期, 出生日期)
  never count. With a declared frequency and no such date, freshness is unproven: 0.

The score is the weighted mean of the dimensions that apply (:data:`WEIGHTS`), and at most
:data:`WEAKEST_MARGIN` points above the weakest intrinsic dimension (all but timeliness), so
that a high average cannot hide one bad dimension. A dimension that does not apply (no
checked column, no domain rule, no cross-field check, no declared frequency, no rows) is
``None`` — shown as "—" — and the other weights are rescaled; a dimension is never reported
as 100 for want of anything to measure. docs/quality.md says the same.

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
    "completeness": 0.20,
    "validity": 0.20,
    "accuracy": 0.20,
    "uniqueness": 0.15,
    "consistency": 0.10,
    "timeliness": 0.15,
}
#: The dimensions of the data itself (timeliness is about its age).
INTRINSIC = ("completeness", "validity", "accuracy", "uniqueness", "consistency")
#: The score is at most this many points above the weakest intrinsic dimension.
WEAKEST_MARGIN = 5.0
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
        # Two sorted runs: a stable sort merges them in linear time (np.unique would sort the
        # whole, growing table again at every merge).
        order = np.argsort(allh, kind="stable")
        allh, allc = allh[order], allc[order]
        first = np.ones(len(allh), dtype=bool)
        np.not_equal(allh[1:], allh[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        self._hashes = allh[starts]
        self._counts = np.add.reduceat(allc, starts) if len(starts) else allc
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
        self.accuracy_checks: dict[str, list[int]] = {}
        self.accuracy_columns: dict[str, list[int]] = {}
        #: Latest past date of the as-of columns, and of the event-date columns.
        self.latest_as_of: np.datetime64 | None = None
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

    def add_accuracy(self, rule: str, made: int, passed: int, column: str | None = None) -> None:
        counts = self.accuracy_checks.setdefault(rule, [0, 0])
        counts[0] += made
        counts[1] += passed
        if column is not None:
            per_column = self.accuracy_columns.setdefault(column, [0, 0])
            per_column[0] += made
            per_column[1] += passed

    def add_as_of(self, date: np.datetime64 | None) -> None:
        """An as-of date read from a period column (``2025-10``), not a date column."""
        if date is not None:
            self.latest_as_of = date if self.latest_as_of is None else max(
                self.latest_as_of, date
            )

    def add_dates(
        self,
        dates: np.ndarray,
        *,
        timely: bool,
        as_of: bool = False,
        column: str | None = None,
    ) -> None:
        """Future dates fail accuracy (``dates_not_in_future``). The others of a ``timely``
        column may set the latest event date, or with ``as_of`` the latest as-of date."""
        present = dates[~np.isnat(dates)]
        if not len(present):
            return
        today = np.datetime64(self.now.date(), "D")
        past = present[present <= today]
        self.add_accuracy("dates_not_in_future", len(present), len(past), column)
        if not len(past):
            return
        latest = past.max()
        if as_of:
            self.latest_as_of = latest if self.latest_as_of is None else max(
                self.latest_as_of, latest
            )
        elif timely:
            self.latest = latest if self.latest is None else max(self.latest, latest)

    def result(self) -> QualityReport:
        cells = self.rows * len(self.columns)
        non_null = sum(c.non_null for c in self.columns.values())
        checked = sum(c.checked for c in self.columns.values())
        valid = sum(c.valid for c in self.columns.values())
        dims: dict[str, float | None] = {
            "completeness": _pct(non_null, cells) if cells else None,
            "validity": _pct(valid, checked) if checked else None,
            "accuracy": None,
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
        made = sum(v[0] for v in self.accuracy_checks.values())
        passed = sum(v[1] for v in self.accuracy_checks.values())
        if made:
            dims["accuracy"] = _pct(passed, made)
        details["accuracy_checks"] = {
            rule: {"made": m, "passed": p} for rule, (m, p) in sorted(self.accuracy_checks.items())
        }
        details["accuracy_columns"] = {
            name: {"made": m, "passed": p}
            for name, (m, p) in sorted(self.accuracy_columns.items())
        }

        dims["timeliness"], details["timeliness"] = self._timeliness()
        return QualityReport(score_of(dims), dims, details)

    def _timeliness(self) -> tuple[float | None, dict[str, object]]:
        freq = self.update_frequency
        as_of = self.latest_as_of if self.latest_as_of is not None else self.latest
        source = "as_of_column" if self.latest_as_of is not None else "event_dates"
        latest = None if as_of is None else str(as_of.astype("datetime64[D]"))
        info: dict[str, object] = {"latest_date": latest, "update_frequency": freq}
        if freq is None or freq not in UPDATE_FREQUENCY_DAYS:
            return None, info  # no promise of freshness: timeliness does not apply
        if as_of is None:
            # Promised, but the data carries no date that shows its age: unproven.
            info["reason"] = "no_as_of_date"
            return 0.0, info
        info["source"] = source
        period = UPDATE_FREQUENCY_DAYS[freq]
        age = int((np.datetime64(self.now.date(), "D") - as_of).astype(np.int64))
        info["age_days"] = age
        fresh, stale = FRESH_PERIODS * period, STALE_PERIODS * period
        if age <= fresh:
            value = 1.0
        else:
            value = max(0.0, 1.0 - (age - fresh) / (stale - fresh))
        return round(100 * value, 2), info


def score_of(dims: dict[str, float | None]) -> float:
    """The weighted mean of the dimensions that apply, capped at :data:`WEAKEST_MARGIN` above
    the weakest intrinsic one; 0 when none applies."""
    measured = {k: v for k, v in dims.items() if v is not None}
    total_weight = sum(WEIGHTS[k] for k in measured)
    if not total_weight:
        return 0.0
    score = sum(WEIGHTS[k] * v for k, v in measured.items()) / total_weight
    intrinsic = [v for k, v in measured.items() if k in INTRINSIC]
    if intrinsic:
        score = min(score, min(intrinsic) + WEAKEST_MARGIN)
    return round(score, 2)


def _pct(part: int, whole: int) -> float:
    """``part / whole`` in percent; the caller decides what an empty ``whole`` means."""
    if not whole:
        raise ValueError("nothing was measured")
    return round(100.0 * part / whole, 2)


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0
