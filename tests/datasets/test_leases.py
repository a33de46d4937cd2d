"""#14.1: job leases and the sweeper, in process (the real kill -9 is test_crash_recovery).

The sweeper works in sessions of its own, so these tests use ``live_app`` (real commits).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time

import pytest
import sqlalchemy as sa

from market.accounts.actor import Actor
from market.db import utcnow
from market.extensions import db
from tests.datasets.conftest import csv_bytes, metadata, sample_rows, uscc

RAW = b"110101199003077777"


@pytest.fixture
def site(live_app):
    from market.accounts import services as accounts

    with live_app.app_context():
        system = Actor.system("test")
        org = accounts.create_organization(db.session, system, name="租约测试局",
                                           kind="department", credit_code=uscc(9001), check=False)
        user = accounts.create_user(db.session, system, email="lease@department.example.cn",
                                    password="correct horse battery staple",
                                    organization_id=org.id, check=False)
        actor = Actor.from_user(user)
        db.session.commit()  # SQLite: no open transaction may hold the write lock
        yield live_app, actor
        db.session.remove()


def _uploaded(actor):
    """A recorded, never processed upload (what a killed process leaves), with its files."""
    from market.datasets import services

    staged = services.new_staging_file("data.csv")
    services.write_chunks(staged, [csv_bytes(sample_rows()) + b"x," + RAW + b"\n"])
    version = services.create_dataset(db.session, actor, services.PublishMeta.from_dict(
        metadata()), staged)
    db.session.commit()
    return version, staged


def _expire(version_id: int, *, keep_holding: bool = False) -> None:
    from market.leases import JobLease, keeper

    db.session.execute(sa.update(JobLease).where(JobLease.subject_id == version_id).values(
        expires_at=utcnow() - dt.timedelta(seconds=5)))
    db.session.commit()
    if not keep_holding:
        keeper().drop("publication", version_id)  # the process "died": no more renewals


def _partial_output(app, version) -> list:
    """A partial Parquet and a pipeline temp file, listed on the lease as the job does."""
    from market.datasets.processing import _key_of
    from market.datasets.services import PUBLICATION_LEASE, parquet_key
    from market.leases import keeper
    from market.storage import storage

    version_id, key = version.id, parquet_key(version.dataset_id, version.version)
    db.session.commit()  # SQLite: no transaction of ours may hold the write lock meanwhile
    out = storage().staging_path(key)
    out.write_bytes(b"PAR1 partial")
    temp = out.parent / f".{out.name}.abc123.part"
    temp.write_bytes(b"PAR1 partial temp")
    keeper().claim(db.engine, PUBLICATION_LEASE, version_id, [_key_of(out)])
    return [out, temp]


def test_cli_sweep_fails_an_expired_job_and_deletes_its_files(site):
    from market.datasets.models import DatasetVersion
    from market.datasets.processing import LEASE_EXPIRED
    from market.leases import JobLease

    app, actor = site
    version, staged = _uploaded(actor)
    partial = _partial_output(app, version)
    assert staged.path.exists() and RAW not in staged.path.read_bytes()  # sealed
    _expire(version.id)
    db.session.commit()

    result = app.test_cli_runner().invoke(args=["jobs", "sweep"])
    assert result.exit_code == 0, result.output
    assert "1 expired job(s) failed" in result.output

    db.session.expire_all()
    row = db.session.get(DatasetVersion, version.id)
    assert row.status == "failed" and row.refusal_reasons == [LEASE_EXPIRED]
    assert row.dataset.status == "failed"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(JobLease)) == 0
    assert not staged.path.exists() and not any(p.exists() for p in partial)
    assert not partial[0].parent.exists()  # no empty datasets/<id>/ folder either
    from market.audit.models import AuditEvent

    failed = list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.type == "dataset.failed")))
    assert [e.data["code"] for e in failed] == ["lease_expired"]

    db.session.commit()
    again = app.test_cli_runner().invoke(args=["jobs", "sweep"])
    assert "0 expired job(s) failed" in again.output  # idempotent


def test_concurrent_sweepers_fail_a_job_once(site):
    from market.audit.models import AuditEvent
    from market.leases import sweep

    app, actor = site
    version, _ = _uploaded(actor)
    _expire(version.id)
    db.session.commit()
    results, errors = [], []
    barrier = threading.Barrier(3)

    def run():
        with app.app_context():
            barrier.wait()
            try:
                results.append(sweep(app))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sum(len(r.expired) for r in results) == 1
    count = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.type == "dataset.failed"))
    assert count == 1


def test_a_live_job_is_left_alone_and_renewals_keep_it_alive(site):
    from market.datasets.models import DatasetVersion
    from market.leases import JobLease, keeper, sweep

    app, actor = site
    version, staged = _uploaded(actor)
    version_id, path = version.id, staged.path
    before = db.session.scalar(sa.select(JobLease.expires_at))
    db.session.commit()
    time.sleep(0.05)
    keeper().renew()
    assert db.session.scalar(sa.select(JobLease.expires_at)) > before
    db.session.commit()
    result = sweep(app)
    assert result.expired == [] and path.exists()
    assert db.session.get(DatasetVersion, version_id).status == "processing"


def test_a_job_whose_lease_was_swept_stops_and_does_not_overwrite_the_failure(site):
    from market.datasets.models import DatasetVersion
    from market.datasets.processing import LEASE_EXPIRED, process_version
    from market.leases import LeaseLost, keeper, sweep

    app, actor = site
    version, staged = _uploaded(actor)
    version_id, path = version.id, str(staged.path)
    db.session.commit()
    keeper().renew()  # seen committed: from now on a missing row means it was taken
    _expire(version_id, keep_holding=True)
    db.session.commit()
    sweep(app)
    keeper().renew()  # the slow job's next renewal finds its lease gone
    with pytest.raises(LeaseLost):
        keeper().check("publication", version_id)
    # the job, started late, neither publishes nor replaces the sweeper's reason
    assert process_version(version_id, path) == "failed"
    db.session.expire_all()
    assert db.session.get(DatasetVersion, version_id).refusal_reasons == [LEASE_EXPIRED]


def test_processing_versions_without_any_lease_are_failed(site):
    """Versions wedged by a crash before leases existed (issue #14: 409 forever)."""
    from market.datasets.models import DatasetVersion
    from market.leases import JobLease, sweep

    app, actor = site
    version, staged = _uploaded(actor)
    db.session.execute(sa.delete(JobLease))
    db.session.execute(sa.update(DatasetVersion).values(
        created_at=utcnow() - dt.timedelta(hours=1)))
    version_id = version.id
    db.session.commit()
    result = sweep(app)
    assert result.unleased == [("publication", version_id)]
    assert db.session.get(DatasetVersion, version_id).status == "failed"


def test_leftover_staging_files_are_deleted_once_old_unless_a_live_lease_holds_them(site):
    from market.leases import sweep
    from market.storage import storage

    app, actor = site
    version, staged = _uploaded(actor)  # live lease: kept whatever its age
    db.session.commit()
    orphan = storage().staging_path("uploads/upload.csv")
    orphan.write_bytes(b"ciphertext of a dead upload")
    fresh = storage().staging_path("uploads/upload.csv")
    fresh.write_bytes(b"an upload being received right now")
    empty = storage().local_path("datasets/999")
    empty.mkdir(parents=True)
    old = time.time() - 3600
    for path in (orphan, staged.path, empty):
        os.utime(path, (old, old))
    result = sweep(app)
    assert result.files_deleted == 1
    assert not orphan.exists() and fresh.exists() and staged.path.exists()
    assert not empty.exists()


def test_a_lease_not_yet_committed_is_not_taken_for_lost(site):
    """acquire() runs inside the request's transaction: a renewal may come before the commit."""
    from market.leases import keeper

    keeper().hold("publication", 10**9)
    keeper().renew()
    keeper().check("publication", 10**9)  # does not raise
    keeper().drop("publication", 10**9)
