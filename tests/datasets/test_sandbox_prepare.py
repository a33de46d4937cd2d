"""The publication job prepares the sandbox's projection and per-entity rollup of a new file
(issue 12: the first buyer question was 1.6 s at 1M rows while it built them), and the files
derived from a data file go when it is deleted."""

from __future__ import annotations

import json
import os

import pytest

from market.datasets.models import Dataset
from market.extensions import db
from tests.datasets.conftest import events


@pytest.fixture
def prepare_small(app, monkeypatch):
    """Prepare even the small test files (the default skips files under 100,000 rows)."""
    monkeypatch.setitem(app.config, "MARKET_SANDBOX_PREPARE_MIN_ROWS", 1)


def _derived(data_dir):
    folder = data_dir / "projections"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_a_published_version_is_prepared_for_the_sandbox_and_its_first_question_reuses_it(
    published, operator, client, data_dir, prepare_small, tmp_path
):
    from sandbox.engine import DuckDBEngine
    from sandbox.workspace import SandboxSettings, full_view, table_for

    dataset_id = published()
    names = _derived(data_dir)
    # The projection and its sidecar; the rollup too where it is worth having (not here: one
    # row per entity, so it would not be smaller than the projection).
    assert len(names) == 2 + sum(n.endswith(".rollup.parquet") for n in names), names
    sidecar = next(data_dir.joinpath("projections").glob("*.json"))
    info = json.loads(sidecar.read_text())
    version = db.session.get(Dataset, dataset_id).versions[0]
    source = data_dir / version.parquet_path
    assert info["source"] == os.path.realpath(source)

    r = client.post(f"/api/v1/datasets/{dataset_id}/review", headers=operator[1],
                    json={"decision": "approve"})
    assert r.status_code == 200, r.get_json()
    dataset = db.session.get(Dataset, dataset_id)
    # The prepared column set is exactly the engine view of a license of every column.
    table = table_for(dataset, [c.name for c in dataset.current_version.columns],
                      SandboxSettings())
    assert table is not None
    view = tuple(c.name for c in table.spec().visible_columns)
    assert full_view(dataset.current_version) == (view, table.entity_key)

    # A query engine of the same data folder finds the files: no worker job to prepare.
    eng = DuckDBEngine(projection_dir=data_dir / "projections", temp_dir=tmp_path)
    try:
        def no_job(*a, **k):
            raise AssertionError("the file was prepared again")

        eng._call = no_job  # type: ignore[method-assign]
        prepared = eng.prepare(str(source), view, table.entity_key)
        assert prepared.path == info["path"]
        assert (prepared.rollup is None) == (info["rollup"] is None)
    finally:
        eng.close()


def test_a_rejected_versions_sandbox_files_are_deleted_with_it(
    published, operator, client, data_dir, prepare_small
):
    dataset_id = published()
    assert len(_derived(data_dir)) >= 2
    r = client.post(f"/api/v1/datasets/{dataset_id}/review", headers=operator[1],
                    json={"decision": "reject", "comment": "no"})
    assert r.status_code == 200 and r.get_json()["status"] == "rejected"
    assert _derived(data_dir) == []
    assert list(data_dir.rglob("*.parquet")) == []
    assert events(dataset_id)[-1].data["decision"] == "reject"


def test_small_files_are_left_to_the_first_question(published, data_dir):
    published()
    assert _derived(data_dir) == []


def test_a_failed_preparation_does_not_fail_the_publication(
    published, data_dir, prepare_small, monkeypatch
):
    from sandbox import app_engine

    def broken(*a, **k):
        raise RuntimeError("no engine here")

    monkeypatch.setattr(app_engine, "prepare_file", broken)
    dataset_id = published()  # asserts pending_review
    assert db.session.get(Dataset, dataset_id).versions[0].status == "pending_review"
    assert _derived(data_dir) == []


def test_the_plan_prepares_the_column_sets_of_active_licenses_then_all_columns(
    published, operator, client, data_dir, prepare_small, app, as_role
):
    from sandbox import app_engine
    from sandbox.workspace import full_view, licensed_view
    from tests.sandbox_app import data

    dataset_id = published()
    r = client.post(f"/api/v1/datasets/{dataset_id}/review", headers=operator[1],
                    json={"decision": "approve"})
    assert r.status_code == 200, r.get_json()
    dataset = db.session.get(Dataset, dataset_id)
    buyer, _ = as_role("buyer")
    data.license_for(db.session, buyer.organization_id, [(dataset, ["所属区"])])
    data.license_for(db.session, buyer.organization_id, [(dataset, ["行业"])], status="suspended")
    version = dataset.current_version
    key, views = app_engine.publication_plan(app.config, version, db.session)
    assert key == version.parquet_path
    subset = licensed_view(version, ["所属区"])
    assert views == [subset, full_view(version)]
    assert len(subset[0]) == 2  # the district and the entity key
    assert app_engine.publication_plan(app.config, version) == (key, [full_view(version)])
