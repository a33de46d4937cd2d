"""Default treatments, the department's overrides and their limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from market.pipeline import (
    InvalidEntityKey,
    InvalidOverride,
    inspect,
    kinds,
    validate_overrides,
)
from market.pipeline.report import ColumnInspection, note_text
from tests.pipeline.conftest import NOW
from tests.pipeline.factories import HEADER, rows, write_csv


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "people.csv", HEADER, rows(30, seed=5))


def test_inspect_proposes_defaults(source: Path) -> None:
    report = inspect(source, source.name, entity_key="统一社会信用代码", now=NOW)
    by_name = {c.name: c for c in report.columns}
    expected = {
        "统一社会信用代码": ("credit_code", "pseudonymized"),
        "单位名称": (None, "none"),
        "姓名": ("person_name", "masked"),
        "身份证号": ("resident_id", "pseudonymized"),
        "性别": ("gender", "none"),
        "出生日期": ("birth_date", "generalized"),
        "手机号": ("mobile", "pseudonymized"),
        "银行卡号": ("bank_card", "pseudonymized"),
        "电子邮箱": ("email", "pseudonymized"),
        "住址": ("address", "generalized"),
        "缴费基数": (None, "none"),
        "参保日期": (None, "none"),
    }
    for name, (kind, treatment) in expected.items():
        assert (by_name[name].pii_kind, by_name[name].default_treatment) == (kind, treatment), name
    assert by_name["统一社会信用代码"].allowed_treatments == ("pseudonymized",)
    assert "none" not in by_name["手机号"].allowed_treatments
    assert "generalized" in by_name["参保日期"].allowed_treatments
    assert "generalized" not in by_name["单位名称"].allowed_treatments
    assert report.encoding == "utf-8" and report.sampled_rows == 30
    # The inspection holds kinds, shares and names, never values.
    dumped = json.dumps(report.to_dict(), ensure_ascii=False)
    assert not [v for row in rows(30, seed=5) for v in row if len(v) >= 4 and v in dumped]


@pytest.mark.parametrize(
    ("overrides", "column", "fragment"),
    [
        ({"手机号": "none"}, "手机号", "must not be published as they are"),
        ({"身份证号": "none"}, "身份证号", "direct identifiers"),
        ({"统一社会信用代码": "masked"}, "统一社会信用代码", "entity key"),
        ({"统一社会信用代码": "suppressed"}, "统一社会信用代码", "entity key"),
        ({"单位名称": "generalized"}, "单位名称", "does not apply"),
        ({"姓名": "redacted"}, "姓名", "unknown treatment"),
        ({"不存在": "none"}, "不存在", "not in the file"),
    ],
)
def test_overrides_refused(source: Path, overrides: dict, column: str, fragment: str) -> None:
    report = inspect(source, source.name, entity_key="统一社会信用代码", now=NOW)
    with pytest.raises(InvalidOverride) as err:
        validate_overrides(report.columns, overrides, "统一社会信用代码")
    assert err.value.column == column
    assert fragment in err.value.message


def test_overrides_applied_and_checked_by_the_pipeline(source: Path, publish) -> None:
    overrides = {
        "姓名": "suppressed",
        "手机号": "masked",
        "住址": "none",
        "单位名称": "pseudonymized",
    }
    report, table = publish(source, overrides=overrides, entity_key="统一社会信用代码")
    treatments = {c.name: c.treatment for c in report.columns}
    assert treatments["姓名"] == "suppressed" and "姓名" not in table.column_names
    assert next(c for c in report.columns if c.name == "姓名").output_name is None
    assert all("****" in v for v in table.column("手机号").to_pylist())
    assert all(v.startswith("id_") for v in table.column("单位名称").to_pylist())
    assert any("住址" in w and "without treatment" in w for w in map(note_text, report.warnings))
    with pytest.raises(InvalidOverride):
        publish(source, overrides={"电子邮箱": "none"})


def test_unknown_entity_key(source: Path, publish) -> None:
    with pytest.raises(InvalidEntityKey) as err:
        publish(source, entity_key="企业代码")
    assert err.value.column == "企业代码"


def test_validate_overrides_accepts_serialized_inspection(source: Path) -> None:
    report = inspect(source, source.name, now=NOW)
    restored = [ColumnInspection.from_dict(c.to_dict()) for c in report.columns]
    result = validate_overrides(restored, {"出生日期": "suppressed"})
    assert result["出生日期"] == kinds.SUPPRESSED
    assert result["身份证号"] == kinds.PSEUDONYMIZED


def test_non_personal_entity_key_stays_a_key(source: Path) -> None:
    report = inspect(source, source.name, entity_key="单位名称", now=NOW)
    key = next(c for c in report.columns if c.name == "单位名称")
    assert key.allowed_treatments == ("pseudonymized", "none")
    assert (
        validate_overrides(report.columns, {"单位名称": "pseudonymized"}, "单位名称")["单位名称"]
        == "pseudonymized"
    )
    with pytest.raises(InvalidOverride, match="join key"):
        validate_overrides(report.columns, {"单位名称": "suppressed"}, "单位名称")
