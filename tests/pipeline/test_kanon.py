"""k-anonymity: counting across chunks, generalizing further, refusing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from market.pipeline import KAnonymityTooLow, kinds
from market.pipeline.kanon import GroupCounter, QuasiIdentifier, choose_step
from market.pipeline.report import note_text
from tests.pipeline.factories import write_csv


def test_group_counter_merges_chunks() -> None:
    qis = [
        QuasiIdentifier("birth", kinds.BIRTH_DATE, True),
        QuasiIdentifier("sex", kinds.GENDER, False),
    ]
    counter = GroupCounter(qis)
    counter.MERGE_EVERY = 2
    chunks = [
        {"birth": ["1990-01", "1990-01", "1990-02"], "sex": ["男", "男", "女"]},
        {"birth": ["1990-02", "1991-05", None], "sex": ["女", "男", "女"]},
        {"birth": ["1990-01"], "sex": ["男"]},
    ]
    for chunk in chunks:
        counter.add(pa.table(chunk))
    assert counter.k_at(0) == 1  # 1991-05/男 and null/女 are alone
    assert counter.k_at(1) == 1  # 1991 is still alone
    assert counter.k_at(3) == 1  # null/女 never merges with anything
    groups = counter.groups().to_pylist()
    assert {"q0": "1990-01", "q1": "男", "__rows": 3} in groups
    assert sum(g["__rows"] for g in groups) == 7


def test_choose_step_stops_at_first_sufficient_level() -> None:
    counter = GroupCounter([QuasiIdentifier("birth", kinds.BIRTH_DATE, True)])
    months = [f"19{y}-{m:02d}" for y in range(80, 90) for m in range(1, 13)]
    counter.add(pa.table({"birth": months * 2}))  # each month twice, each year 24 times
    assert choose_step(counter, 2) == (0, 2)
    assert choose_step(counter, 5) == (1, 24)
    assert choose_step(counter, 100) == (2, 120)
    assert choose_step(counter, 1000) == (3, 240)  # the last step, still below: caller refuses


def _people(n: int, months: int) -> list[list[str]]:
    return [
        [f"{1980 + i % 10}-{1 + (i // 10) % months:02d}-15", "男" if i % 2 else "女", str(i)]
        for i in range(n)
    ]


def test_pipeline_generalizes_further_to_reach_k(tmp_path: Path, publish) -> None:
    source = write_csv(tmp_path / "births.csv", ["出生日期", "性别", "金额"], _people(200, 12))
    report, table = publish(source, k_min=5, chunk_rows=37)
    birth = next(c for c in report.columns if c.name == "出生日期")
    assert report.generalization_step == 1
    assert birth.generalization == "year"
    assert report.k_anonymity >= 5
    assert report.quasi_identifiers == ["出生日期", "性别"]
    assert set(table.column("出生日期").to_pylist()) == {str(1980 + y) for y in range(10)}
    assert any("generalized further" in w for w in map(note_text, report.warnings))
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["births.parquet"]


def test_pipeline_keeps_month_when_k_is_met(tmp_path: Path, publish) -> None:
    source = write_csv(tmp_path / "births.csv", ["出生日期", "性别", "金额"], _people(400, 2))
    report, table = publish(source, k_min=5)
    assert report.generalization_step == 0
    assert report.k_anonymity == 20  # 10 years x 2 months (gender follows the year)
    assert table.column("出生日期").to_pylist()[0] == "1980-01"


def test_pipeline_refuses_when_k_cannot_be_met(tmp_path: Path, publish) -> None:
    data = [[f"1990-01-{1 + i:02d}", "男", f"上海市浦东新区张江路{i}号"] for i in range(3)]
    source = write_csv(tmp_path / "tiny.csv", ["出生日期", "性别", "住址"], data)
    with pytest.raises(KAnonymityTooLow) as err:
        publish(source, k_min=5)
    assert err.value.k == 3 and err.value.k_min == 5
    assert err.value.quasi_identifiers == ["出生日期", "性别", "住址"]
    assert list((tmp_path / "out").iterdir()) == []


def test_suppressing_a_quasi_identifier_removes_it(tmp_path: Path, publish) -> None:
    data = [[f"19{50 + i}-01-01", str(i)] for i in range(6)]
    source = write_csv(tmp_path / "dob.csv", ["出生日期", "n"], data)
    report, table = publish(
        source, k_min=5, overrides={"出生日期": "suppressed"}, now=dt.datetime(2025, 1, 1)
    )
    assert report.k_anonymity is None and report.quasi_identifiers == []
    assert table.column_names == ["n"]
