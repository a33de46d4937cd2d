"""Writing the demo tables as CSV files in the encodings departments really use."""

from __future__ import annotations

import codecs
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from market.demo import DEFAULT_ENCODINGS, DEPARTMENT_KEYS, DemoData, DemoDataError, generate
from market.demo.data import main, write_csvs

TODAY = dt.date(2026, 11, 21)


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate(rows=40, seed=11, months=3, today=TODAY)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(str)


def test_every_table_round_trips_in_its_encoding(demo: DemoData, tmp_path: Path) -> None:
    paths = write_csvs(demo, tmp_path / "out")
    assert set(paths) == set(DEPARTMENT_KEYS)
    for key, path in paths.items():
        assert path == tmp_path / "out" / f"{key}.csv"
        back = pd.read_csv(path, encoding=DEFAULT_ENCODINGS[key], dtype=str,
                           keep_default_na=False)
        pd.testing.assert_frame_equal(back, _as_text(demo.department(key).frame),
                                      check_dtype=False)


def test_market_supervision_is_gbk_with_crlf(demo: DemoData, tmp_path: Path) -> None:
    path = write_csvs(demo, tmp_path)["market_supervision"]
    raw = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gbk")
    assert text.startswith("统一社会信用代码,企业名称,法定代表人,法定代表人身份证号")
    assert text.count("\r\n") == len(demo.registry) + 1
    assert demo.subject.name_zh in text


@pytest.mark.parametrize("key", DEPARTMENT_KEYS)
def test_byte_order_marks_follow_the_encoding(demo: DemoData, tmp_path: Path,
                                              key: str) -> None:
    raw = write_csvs(demo, tmp_path)[key].read_bytes()
    assert raw.startswith(codecs.BOM_UTF8) == (DEFAULT_ENCODINGS[key] == "utf-8-sig")
    if DEFAULT_ENCODINGS[key].startswith("utf-8"):
        raw.decode("utf-8-sig")  # no error


def test_encodings_can_be_overridden(demo: DemoData, tmp_path: Path) -> None:
    paths = write_csvs(demo, tmp_path, {"tax": "gb18030", "market_supervision": "utf-8"})
    back = pd.read_csv(paths["tax"], encoding="gb18030", dtype=str)
    assert list(back.columns) == list(demo.department("tax").frame.columns)
    assert paths["market_supervision"].read_bytes().decode("utf-8")


@pytest.mark.parametrize("override", [{"nobody": "utf-8"}, {"tax": "no-such-codec"}])
def test_bad_overrides_are_refused(demo: DemoData, tmp_path: Path,
                                   override: dict[str, str]) -> None:
    with pytest.raises(DemoDataError):
        write_csvs(demo, tmp_path, override)
    assert not any(tmp_path.iterdir())


def test_main_writes_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rows", "6", "--months", "2", "--today", "2026-11-21",
                 "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{k}.csv" for k in DEPARTMENT_KEYS)
    tax = pd.read_csv(tmp_path / "tax.csv", encoding="utf-8-sig", dtype=str)
    assert len(tax) == 12
    assert "subject:" in capsys.readouterr().out


def test_main_refuses_bad_rows(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--rows", "0", "--out", str(tmp_path)])
    assert exc.value.code == 2


def test_runs_as_a_module_without_warnings(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "market.demo.data", "--rows", "3", "--months",
         "1", "--today", "2026-11-21", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert (tmp_path / "market_supervision.csv").exists()
