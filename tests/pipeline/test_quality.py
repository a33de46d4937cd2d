"""Quality dimensions on crafted data, and the bounded duplicate counter."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from market.pipeline.quality import WEAKEST_MARGIN, WEIGHTS, DistinctSketch, QualityAccumulator
from market.pipeline.report import note_text
from tests.pipeline.factories import luhn_complete, resident_id, write_csv

NOW = dt.datetime(2025, 1, 15)


def _quality(report) -> dict:
    return report.quality["dimensions"]


def test_completeness_counts_null_cells(tmp_path: Path, publish) -> None:
    data = [["1", "a"], ["2", ""], ["3", "  "], ["", "d"]]
    report, _ = publish(write_csv(tmp_path / "c.csv", ["n", "s"], data))
    assert _quality(report)["completeness"] == pytest.approx(100 * 5 / 8, abs=0.01)
    by_name = {c.name: c for c in report.columns}
    assert by_name["s"].completeness == 50.0


def test_validity_from_checksums_and_types(tmp_path: Path, publish) -> None:
    ids = [resident_id("310115", dt.date(1980, 1, 1) + dt.timedelta(days=i), i) for i in range(40)]
    ids[30:] = [r[:17] + ("1" if r[17] != "1" else "2") for r in ids[30:]]  # 10 bad check chars
    cards = [luhn_complete(f"622202{i:012d}") for i in range(40)]
    counts = [str(i) for i in range(40)]
    counts[7] = "x"  # 39 of 40 parse: still an integer column, with one invalid value
    data = [list(r) for r in zip(ids, cards, counts, strict=True)]
    report, table = publish(write_csv(tmp_path / "v.csv", ["身份证号", "银行卡号", "次数"], data))
    by_name = {c.name: c for c in report.columns}
    assert by_name["身份证号"].validity == 75.0
    assert by_name["银行卡号"].validity == 100.0
    assert by_name["次数"].type == "integer" and by_name["次数"].validity == 97.5
    assert _quality(report)["validity"] == pytest.approx(100 * (30 + 40 + 39) / 120, abs=0.01)
    assert table.column("次数").to_pylist()[7] is None  # did not parse: published as null
    assert any("次数" in w and "1 values" in w for w in map(note_text, report.warnings))


def test_uniqueness_rows_and_keys(tmp_path: Path, publish) -> None:
    data = [["A", "1"], ["A", "1"], ["B", "2"], ["C", "3"]]
    source = write_csv(tmp_path / "u.csv", ["key", "n"], data)
    report, _ = publish(source)
    assert _quality(report)["uniqueness"] == 75.0
    report, _ = publish(source, entity_key="key", key_unique=True)
    assert _quality(report)["uniqueness"] == 75.0  # (0.75 rows + 0.75 keys) / 2
    data = [["A", "1"], ["A", "2"], ["B", "3"], ["C", "4"]]
    source = write_csv(tmp_path / "u2.csv", ["key", "n"], data)
    report, _ = publish(source, entity_key="key", key_unique=True)
    assert _quality(report)["uniqueness"] == 87.5
    report, _ = publish(source, entity_key="key", key_unique=False)
    assert _quality(report)["uniqueness"] == 100.0  # monthly records: keys may repeat
    report, _ = publish(source, entity_key="key")  # undeclared: 25% repeats -> not unique
    assert report.key_unique is False
    assert any("treated as not unique" in w for w in map(note_text, report.warnings))


def test_consistency_birth_date_gender_and_future(tmp_path: Path, publish) -> None:
    born = [dt.date(1980, 1, 1) + dt.timedelta(days=400 * i) for i in range(4)]
    rids = [resident_id("310115", b, 11 + i) for i, b in enumerate(born)]  # odd, even, odd, even
    data = [
        [rids[0], born[0].isoformat(), "男", "2024-12-01"],
        [rids[1], "1999-09-09", "女", "2024-12-02"],  # birth date disagrees with the ID
        [rids[2], born[2].isoformat(), "女", "2024-12-03"],  # gender disagrees with the ID
        [rids[3], born[3].isoformat(), "女", "2026-01-01"],  # registered in the future
    ]
    source = write_csv(tmp_path / "k.csv", ["身份证号", "出生日期", "性别", "登记日期"], data)
    report, _ = publish(source, overrides={"出生日期": "suppressed"})
    checks = report.quality["details"]["consistency_checks"]
    assert checks["resident_id_birth_date"] == {"made": 4, "passed": 3}
    assert checks["resident_id_gender"] == {"made": 4, "passed": 3}
    assert _quality(report)["consistency"] == pytest.approx(100 * 6 / 8, abs=0.01)
    # A date in the future is a domain rule: accuracy, not consistency.
    accuracy = report.quality["details"]["accuracy_checks"]
    assert accuracy["dates_not_in_future"] == {"made": 8, "passed": 7}


@pytest.mark.parametrize(
    ("frequency", "latest", "expected"),
    [
        ("monthly", "2025-01-01", 100.0),  # 14 days old
        ("weekly", "2025-01-01", 100 * (1 - (14 - 7) / 21)),
        ("daily", "2025-01-01", 0.0),
        ("yearly", "2024-03-01", 100.0),
        (None, "2025-01-01", None),
    ],
)
def test_timeliness(
    tmp_path: Path, publish, frequency: str | None, latest: str, expected: float | None
) -> None:
    data = [["2020-01-01", "1"], [latest, "2"], ["2030-01-01", "3"]]  # the future date is ignored
    report, _ = publish(
        write_csv(tmp_path / "t.csv", ["更新日期", "n"], data), update_frequency=frequency
    )
    value = _quality(report)["timeliness"]
    assert value == (None if expected is None else pytest.approx(expected, abs=0.01))
    assert report.quality["details"]["timeliness"]["latest_date"] == latest


def test_score_is_weighted_mean_of_measured_dimensions() -> None:
    acc = QualityAccumulator(["a", "b"], now=NOW, update_frequency=None, check_key=False)
    acc.add_rows(4)
    acc.add_column("a", non_null=4, checked=4, valid=2)
    acc.add_column("b", non_null=2)
    acc.row_hashes.add(np.array([1, 2, 3, 4], dtype=np.uint64))
    result = acc.result()
    dims = result.dimensions
    assert dims == {
        "completeness": 75.0, "validity": 50.0, "accuracy": None, "uniqueness": 100.0,
        "consistency": None, "timeliness": None,
    }  # fmt: skip
    weights = WEIGHTS["completeness"] + WEIGHTS["validity"] + WEIGHTS["uniqueness"]
    mean = (
        75 * WEIGHTS["completeness"] + 50 * WEIGHTS["validity"] + 100 * WEIGHTS["uniqueness"]
    ) / weights
    assert mean > 50 + WEAKEST_MARGIN
    # The average cannot hide the weak validity: capped at the weakest + the margin.
    assert result.score == pytest.approx(50 + WEAKEST_MARGIN, abs=0.01)


def test_nothing_measured_is_never_100() -> None:
    acc = QualityAccumulator(["a"], now=NOW, update_frequency="monthly", check_key=False)
    result = acc.result()  # no rows at all
    assert result.dimensions["completeness"] is None
    assert result.dimensions["uniqueness"] is None
    assert result.dimensions["timeliness"] == 0.0  # promised monthly, nothing shows its age
    assert result.score == 0.0


def test_unknown_update_frequency_refused(tmp_path: Path, publish) -> None:
    with pytest.raises(Exception, match="unknown update frequency"):
        publish(write_csv(tmp_path / "f.csv", ["a"], [["1"]]), update_frequency="hourly")


def test_distinct_sketch_exact_then_sampled() -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 2**63, 50_000, dtype=np.uint64)
    data = np.concatenate([values, values[:10_000]])  # 10,000 duplicates of 60,000
    rng.shuffle(data)
    exact = DistinctSketch(limit=1_000_000)
    for part in np.array_split(data, 7):
        exact.add(part)
    assert exact.result() == (60_000, 10_000, True)

    small = DistinctSketch(limit=8_000)
    for part in np.array_split(data, 7):
        small.add(part)
    seen, dup, is_exact = small.result()
    assert not is_exact and seen < 60_000
    assert dup / seen == pytest.approx(10_000 / 60_000, abs=0.03)


class _UniqueSketch(DistinctSketch):
    """The merge as it was (np.unique over the whole table), to compare with."""

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


@pytest.mark.parametrize(("limit", "seed"), [(1_000_000, 2), (9_000, 3), (2_000, 4), (10, 5)])
def test_distinct_sketch_linear_merge_equals_the_unique_merge(limit: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2**64 - 1, 30_000, dtype=np.uint64, endpoint=True)
    data = np.concatenate([values, values[:12_000], values[:3_000], np.zeros(5, np.uint64)])
    rng.shuffle(data)
    new, old = DistinctSketch(limit=limit), _UniqueSketch(limit=limit)
    for part in [*np.array_split(data, 11), np.empty(0, np.uint64)]:
        new.add(part)
        old.add(part)
    new._merge()
    old._merge()
    assert new.result() == old.result()
    assert np.array_equal(new._hashes, old._hashes) and np.array_equal(new._counts, old._counts)
    assert new._counts.dtype == old._counts.dtype == np.int64
