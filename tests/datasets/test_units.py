"""Small pieces of publication: file names, refusals, slugs, limits, metadata, permissions."""

from __future__ import annotations

import json

import pytest

from market.accounts.actor import Actor
from market.datasets import permissions as perms
from market.datasets.models import Dataset
from market.datasets.schemas import (
    MAX_METADATA_BYTES,
    MetadataInvalid,
    PublishMetadataSchema,
    parse_metadata,
    progress_of,
)
from market.datasets.services import (
    count_columns,
    first_long_line,
    make_slug,
    refusal_reasons,
    safe_filename,
)
from tests.datasets.conftest import metadata


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("社保缴费.csv", "社保缴费.csv"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\x.xlsx", "x.xlsx"),
        ("/abs/path/data.parquet", "data.parquet"),
        ("..", "upload"),
        ("", "upload"),
        (None, "upload"),
        (".hidden.csv", "hidden.csv"),
        ("a\x00b\r\n<c>|d?.csv", "abcd.csv"),
        ("x" * 300 + ".csv", "x" * 196 + ".csv"),
    ],
)
def test_safe_filename(raw, expected):
    assert safe_filename(raw) == expected
    assert "/" not in safe_filename(raw) and "\\" not in safe_filename(raw)


@pytest.mark.parametrize(
    ("grade", "confidential", "count"),
    [("open", False, 0), ("conditional", False, 0), ("restricted", False, 1),
     ("open", True, 1), ("restricted", True, 2)],
)
def test_refusal_reasons(grade, confidential, count):
    reasons = refusal_reasons(grade, confidential)
    assert len(reasons) == count
    if grade == "restricted":
        assert any("restricted" in r for r in reasons)
    if confidential:
        assert any("confidential" in r for r in reasons)


@pytest.mark.parametrize(
    ("dataset_id", "category", "slug"),
    [(7, "tax", "d7_tax"), (12, "enterprise_registry", "d12_enterprise_registry"),
     (3, "Odd-Name!", "d3_odd_name"), (4, "___", "d4"), (5, "x" * 80, "d5_" + "x" * 50)],
)
def test_make_slug(dataset_id, category, slug):
    assert make_slug(dataset_id, category) == slug


def test_slugs_satisfy_the_sandbox_table_name_rule():
    from sandbox.specs import _SLUG

    assert _SLUG.match(make_slug(123456, "y" * 64))


def test_first_long_line(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b"a,b\n" + b"x" * 10 + b"\n" + b"y" * 100 + b"\nz\n")
    assert first_long_line(path, 50) == 3
    assert first_long_line(path, 100) is None
    assert first_long_line(path, 5, skip=1) == 2
    # a long line that spans several read blocks
    path.write_bytes(b"h\n" * 5 + b"q" * (3 << 20) + b"\n")
    assert first_long_line(path, 1 << 20) == 6


def test_count_columns(tmp_path):
    csv = tmp_path / "a.csv"
    csv.write_bytes("统一社会信用代码,名称,金额\n1,2,3\n".encode("gbk"))
    assert count_columns(csv, "a.csv") == 3
    tsv = tmp_path / "a.tsv"
    tsv.write_bytes(b"a\tb\tc\td\n")
    assert count_columns(tsv, "a.tsv") == 4
    broken = tmp_path / "b.parquet"
    broken.write_bytes(b"PAR1 not really")
    assert count_columns(broken, "b.parquet") is None


def test_parse_metadata_accepts_valid_and_names_bad_fields():
    data = parse_metadata(json.dumps(metadata(treatments={"联系电话": "suppressed"})),
                          PublishMetadataSchema())
    assert data["costs"]["collection"] == 100_000
    assert data["treatments"] == {"联系电话": "suppressed"}
    bad = metadata(open_grade="secret", costs={"collection": -1, "processing": 1.5,
                                               "storage_monthly": 0})
    del bad["title"]
    with pytest.raises(MetadataInvalid) as exc:
        parse_metadata(json.dumps(bad), PublishMetadataSchema())
    assert {"title", "open_grade", "costs"} <= set(exc.value.errors)
    assert any("collection" in m for m in exc.value.errors["costs"])


@pytest.mark.parametrize(
    ("raw", "field"),
    [("not json", "metadata"), ("[1, 2]", "metadata"), ("x" * (MAX_METADATA_BYTES + 1), "metadata"),
     (json.dumps({**metadata(), "surprise": 1}), "surprise"),
     (json.dumps(metadata(treatments={"a": "deleted"})), "treatments"),
     (json.dumps(metadata(update_frequency="hourly")), "update_frequency")],
)
def test_parse_metadata_rejects(raw, field):
    with pytest.raises(MetadataInvalid) as exc:
        parse_metadata(raw, PublishMetadataSchema())
    assert field in exc.value.errors


class _Version:
    def __init__(self, status, done, total):
        self.status, self.progress_done, self.progress_total = status, done, total


@pytest.mark.parametrize(
    ("status", "done", "total", "percent"),
    [("processing", 0, 0, 0), ("processing", 50, 200, 25), ("processing", 300, 200, 100),
     ("pending_review", 10, 200, 100), ("failed", 10, 200, 5)],
)
def test_progress_percent(status, done, total, percent):
    assert progress_of(_Version(status, done, total))["percent"] == percent


DEPT, OTHER_DEPT, BUYER, OPERATOR, REGULATOR = (
    Actor(1, 10, "department", "active"),
    Actor(2, 11, "department", "active"),
    Actor(3, 12, "buyer", "active"),
    Actor(4, 13, "operator", "active"),
    Actor(5, 14, "regulator", "active"),
)
ANON = Actor(None, None, None, None, "anonymous")
PENDING_DEPT = Actor(6, 10, "department", "pending")


@pytest.mark.parametrize(
    ("actor", "unlisted", "listed", "manage", "upload", "review"),
    [
        (DEPT, True, True, True, True, False),
        (OTHER_DEPT, False, True, False, True, False),
        (BUYER, False, True, False, False, False),
        (OPERATOR, True, True, False, False, True),
        (REGULATOR, True, True, False, False, False),
        (ANON, False, True, False, False, False),
        (PENDING_DEPT, True, True, False, False, False),
    ],
)
def test_permissions(actor, unlisted, listed, manage, upload, review):
    pending = Dataset(department_id=10, status="pending_review")
    listed_ds = Dataset(department_id=10, status="listed")
    assert perms.can_read_dataset(actor, pending) is unlisted
    assert perms.can_view_versions(actor, pending) is unlisted
    assert perms.can_read_dataset(actor, listed_ds) is listed
    assert perms.can_manage_versions(actor, listed_ds) is manage
    assert perms.can_upload(actor) is upload
    assert perms.can_review(actor) is review
