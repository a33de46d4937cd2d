"""Processing in the background: progress in short transactions, polling, the thread runner."""

from __future__ import annotations

import datetime as dt
import itertools
import time

import pytest

from market.accounts.actor import Actor
from market.datasets import services
from market.datasets.models import DatasetVersion
from market.datasets.processing import ProgressWriter, process_version
from market.extensions import db
from tests.conftest import PASSWORD, valid_uscc
from tests.datasets.conftest import csv_bytes, metadata, residue, sample_rows


def _processing_version(department_user, data_dir) -> tuple[DatasetVersion, services.StagedUpload]:
    staged = services.new_staging_file("data.csv")
    services.write_chunks(staged, [csv_bytes(sample_rows())])
    meta = services.PublishMeta.from_dict(metadata())
    version = services.create_dataset(db.session, Actor.from_user(department_user), meta, staged)
    db.session.commit()
    return version, staged


def test_progress_is_written_in_its_own_short_transactions(make_user, data_dir):
    version, staged = _processing_version(make_user("department"), data_dir)
    seen = []
    writer = ProgressWriter(version.id, db.session.get_bind(), interval=3600,
                            echo=lambda d, t: seen.append((d, t)))
    writer(10, 100)
    writer(20, 100)  # within the interval: echoed, not written
    assert seen == [(10, 100), (20, 100)] and writer.writes == 1
    db.session.expire_all()
    row = db.session.get(DatasetVersion, version.id)
    assert (row.progress_done, row.progress_total) == (10, 100)
    assert services.version_status(row)["progress"] == {"done": 10, "total": 100, "percent": 10}
    # the job itself reports through the same writer and ends at 100 %
    assert process_version(version.id, str(staged.path)) == "pending_review"
    db.session.expire_all()
    row = db.session.get(DatasetVersion, version.id)
    assert row.progress_done == row.progress_total > 0
    assert not staged.path.exists() and residue(data_dir) == []


def test_the_first_progress_is_written_even_just_after_boot(make_user, data_dir, monkeypatch):
    # CI machines may be minutes old: the monotonic clock is then below the interval
    version, staged = _processing_version(make_user("department"), data_dir)
    staged.path.unlink()  # only the progress columns matter here
    # (The patch reaches the global time.monotonic: other code, e.g. the connection pool's
    # idle ping, reads it too, so the clock stays at its last value instead of running out.)
    clock = itertools.chain([5.0, 6.0], itertools.repeat(3700.0))
    monkeypatch.setattr("market.datasets.processing.time.monotonic", lambda: next(clock))
    writer = ProgressWriter(version.id, db.session.get_bind(), interval=3600)
    writer(1, 10)
    writer(2, 10)
    assert writer.writes == 1
    writer(3, 10)
    assert writer.writes == 2
    db.session.expire_all()
    assert db.session.get(DatasetVersion, version.id).progress_done == 3


def test_a_version_not_waiting_is_not_processed_and_its_upload_is_dropped(make_user, data_dir):
    version, staged = _processing_version(make_user("department"), data_dir)
    version.status = "failed"
    db.session.commit()
    assert process_version(version.id, str(staged.path)) == "failed"
    assert not staged.path.exists()
    other = services.new_staging_file("x.csv")
    assert process_version(10**9, str(other.path)) is None and not other.path.exists()


def test_thread_runner_processes_in_the_background(live_app):
    from market.accounts import services as accounts

    with live_app.app_context():
        live_app.config["MARKET_JOB_RUNNER"] = "thread"
        live_app.extensions.pop("market.jobs", None)
        org = accounts.create_organization(
            db.session, Actor.system("test"), name="部门", kind="department",
            credit_code=valid_uscc(990_001), check=False)
        user = accounts.create_user(db.session, Actor.system("test"), email="d@dept.example.cn",
                                    password=PASSWORD, organization_id=org.id, check=False)
        token, _ = accounts.issue_token(db.session, user, dt.timedelta(hours=1))
        db.session.commit()
    client = live_app.test_client()
    h = {"Authorization": f"Bearer {token}"}
    import json

    from tests.datasets.conftest import multipart

    body, ctype = multipart([("metadata", json.dumps(metadata())),
                             ("file", (csv_bytes(sample_rows(200)), "data.csv"))])
    r = client.post("/api/v1/datasets", data=body, content_type=ctype, headers=h)
    assert r.status_code == 202, r.get_json()
    assert r.get_json()["status"] in ("processing", "pending_review")
    url = f"/api/v1/datasets/{r.get_json()['id']}/versions/1/status"
    deadline = time.monotonic() + 60
    status = client.get(url, headers=h).get_json()
    while status["status"] == "processing" and time.monotonic() < deadline:
        assert 0 <= status["progress"]["percent"] <= 100
        time.sleep(0.05)
        status = client.get(url, headers=h).get_json()
    assert status["status"] == "pending_review", status
    assert status["progress"]["percent"] == 100
    from pathlib import Path

    data_dir = Path(live_app.config["MARKET_DATA_DIR"])
    assert residue(data_dir) == []
    live_app.extensions["market.jobs"].pool.shutdown(wait=True)


@pytest.mark.parametrize("fail", [False, True])
def test_the_staged_upload_is_dropped_if_the_job_cannot_start(upload, department, data_dir,
                                                              monkeypatch, fail):
    from market import jobs

    def broken(*args):
        raise RuntimeError("queue down")

    if fail:
        monkeypatch.setattr(jobs, "submit", broken)
    r = upload(department[1], csv_bytes(sample_rows()))
    if fail:
        assert r.status_code == 500
        from market.datasets.models import Dataset

        version = db.session.scalars(db.select(Dataset)).one().versions[0]
        assert version.status == "failed" and "could not be started" in version.refusal_reasons[0]
    else:
        assert r.status_code == 202
    assert residue(data_dir) == []
