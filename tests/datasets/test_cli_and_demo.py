"""The ``market datasets`` commands and the demo seeding step."""

from __future__ import annotations

import json

import sqlalchemy as sa

from market.datasets.models import Dataset
from market.extensions import db
from tests.datasets.conftest import csv_bytes, event_types, metadata, residue, sample_rows


def test_publish_and_review_from_the_command_line(runner, make_user, make_org, tmp_path,
                                                  data_dir):
    user = make_user("department")
    make_org("operator")
    source = tmp_path / "登记.csv"
    source.write_bytes(csv_bytes(sample_rows(), "gbk", "\r\n"))
    result = runner.invoke(args=["datasets", "publish", str(source), "--metadata",
                                 json.dumps(metadata(), ensure_ascii=False),
                                 "--department-email", user.email])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "pending_review" in out and "quality" in out and "k-anonymity" in out
    for needle in ("统一社会信用代码", "credit_code", "pseudonymized", "entity_key",
                   "person_name", "masked", "generalized"):
        assert needle in out, needle
    assert source.exists()  # the department's own file is left alone
    dataset = db.session.scalars(sa.select(Dataset)).one()
    assert dataset.department_id == user.organization_id
    assert residue(data_dir) == []

    reviewed = runner.invoke(args=["datasets", "review", str(dataset.id), "--approve",
                                   "--comment", "ok"])
    assert reviewed.exit_code == 0, reviewed.output
    assert "listed" in reviewed.output
    assert event_types(dataset.id) == ["dataset.uploaded", "dataset.processed",
                                       "dataset.reviewed", "dataset.listed"]
    again = runner.invoke(args=["datasets", "review", str(dataset.id), "--reject"])
    # The refusal names the state by its code, whatever the language of its sentence.
    assert again.exit_code == 1 and "pending_review" in again.output

    # a new version, by department name, with metadata from a file
    meta_file = tmp_path / "m.json"
    meta_file.write_text(json.dumps({"treatments": {"联系电话": "suppressed"}}))
    v2 = runner.invoke(args=["datasets", "publish", str(source), "--dataset", str(dataset.id),
                             "--metadata", f"@{meta_file}", "--department",
                             user.organization.name])
    assert v2.exit_code == 0, v2.output
    assert "v2: pending_review" in v2.output and "suppressed" in v2.output


def test_publish_exits_non_zero_on_refusal_failure_and_bad_input(runner, make_user, tmp_path,
                                                                 data_dir):
    user = make_user("department")
    good = tmp_path / "a.csv"
    good.write_bytes(csv_bytes(sample_rows(10)))
    ragged = tmp_path / "b.csv"
    ragged.write_bytes(csv_bytes(sample_rows(10)) + b"1,2\n")

    def publish(path, **meta):
        return runner.invoke(args=["datasets", "publish", str(path), "--metadata",
                                   json.dumps(metadata(**meta)), "--department-email",
                                   user.email])

    refused = publish(good, confidential=True)
    assert refused.exit_code == 1 and "refused" in refused.output
    assert "confidential" in refused.output
    failed = publish(ragged)
    assert failed.exit_code == 1 and "failed" in failed.output and "row 12" in failed.output
    bad_override = publish(good, treatments={"联系电话": "none"})
    assert bad_override.exit_code == 1 and "联系电话" in bad_override.output
    bad_meta = runner.invoke(args=["datasets", "publish", str(good), "--metadata", "{}",
                                   "--department-email", user.email])
    assert bad_meta.exit_code == 1 and "title" in bad_meta.output
    nobody = runner.invoke(args=["datasets", "publish", str(good), "--metadata", "{}"])
    assert nobody.exit_code == 2
    buyer = make_user("buyer")
    as_buyer = runner.invoke(args=["datasets", "publish", str(good), "--metadata",
                                   json.dumps(metadata()), "--department-email", buyer.email])
    assert as_buyer.exit_code == 1
    assert residue(data_dir) == []


def test_demo_step_lists_every_department_dataset_idempotently(app, data_dir):
    from market.demo_seed import seed_demo

    report = seed_demo(rows=40)
    listed = db.session.scalars(sa.select(Dataset).where(Dataset.status == "listed")).all()
    # The Shanghai pilot's ten departments (market.demo.DEPARTMENT_KEYS), one dataset each.
    assert len(listed) == 10
    notes = [n for n in report.notes if n.startswith("dataset ")]
    assert len(notes) == 10 and all("listed" in n and "quality" in n for n in notes)
    registry = next(d for d in listed if d.title == "企业登记注册信息")
    cols = {c.name: c for c in registry.current_version.columns}
    assert cols["统一社会信用代码"].role == "entity_key"
    assert cols["法定代表人身份证号"].treatment == "pseudonymized"
    assert registry.current_version.encoding.lower() in ("gbk", "gb18030")
    assert {d.slug.split("_", 1)[1] for d in listed} >= {"tax", "utilities", "judicial"}
    assert residue(data_dir) == []

    again = seed_demo(rows=40)
    assert db.session.scalar(sa.select(sa.func.count(Dataset.id))) == 10
    assert sum("already seeded" in n for n in again.notes) == 10
