"""#17.3: S3Storage against a real S3-compatible server (moto's standalone server on loopback).

Multipart upload then complete (an object appears whole or not at all), a query host's
content-hash cache, the SHA-256 checked on every fetch (a tampered object is refused), and a
publication through the API with ``MARKET_STORAGE=s3``.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from market.storage import S3Storage, StorageIntegrityError

PART = 5 << 20


def _host(tmp_path, name: str, bucket: str, client, **kw) -> S3Storage:
    return S3Storage(tmp_path / name, bucket=bucket, client=client, prefix="market",
                     part_bytes=PART, **kw)


def _staged(store: S3Storage, key: str, data: bytes):
    path = store.staging_path(key)
    path.write_bytes(data)
    return path


def test_commit_is_a_completed_multipart_upload_and_hosts_fetch_verified(s3_bucket, tmp_path):
    _, bucket, client = s3_bucket
    writer = _host(tmp_path, "writer", bucket, client)
    data = os.urandom(PART + 123_456)  # two parts
    staging = _staged(writer, "datasets/7/v1.parquet", data)

    local = writer.commit(staging, "datasets/7/v1.parquet")
    assert not staging.exists()
    digest = hashlib.sha256(data).hexdigest()
    assert local.name == f"{digest}.parquet" and local.read_bytes() == data
    head = client.head_object(Bucket=bucket, Key="market/datasets/7/v1.parquet")
    assert head["Metadata"]["sha256"] == digest
    assert head["ETag"].strip('"').endswith("-2"), "not a two-part multipart upload"
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")

    # Another query host, empty cache: downloads, verifies against the database's record.
    reader = _host(tmp_path, "reader", bucket, client, digest_of={"datasets/7/v1.parquet": digest}.get)
    fetched = reader.local_path("datasets/7/v1.parquet")
    assert fetched.read_bytes() == data and fetched.name == f"{digest}.parquet"
    assert writer.exists("datasets/7/v1.parquet")
    writer.delete("datasets/7/v1.parquet")
    assert not writer.exists("datasets/7/v1.parquet")


@pytest.mark.parametrize("keep_metadata", [True, False])
def test_a_tampered_object_is_refused_and_never_cached(s3_bucket, tmp_path, keep_metadata):
    _, bucket, client = s3_bucket
    writer = _host(tmp_path, "writer", bucket, client)
    data = b"PAR1 genuine desensitized rows PAR1"
    writer.commit(_staged(writer, "datasets/1/v1.parquet", data), "datasets/1/v1.parquet")
    digest = hashlib.sha256(data).hexdigest()
    # Whoever can write to the bucket swaps the content (keeping or dropping the recorded hash).
    forged = b"PAR1 forged rows PAR1"
    client.put_object(Bucket=bucket, Key="market/datasets/1/v1.parquet", Body=forged,
                      Metadata={"sha256": digest} if keep_metadata else {})

    for digest_of in ({"datasets/1/v1.parquet": digest}.get, None):
        reader = _host(tmp_path, f"reader-{digest_of is None}", bucket, client, digest_of=digest_of)
        with pytest.raises(StorageIntegrityError):
            reader.local_path("datasets/1/v1.parquet")
        assert not reader.cache.exists() or list(reader.cache.iterdir()) == []


def test_a_failed_upload_is_aborted_and_leaves_no_object(s3_bucket, tmp_path, monkeypatch):
    _, bucket, client = s3_bucket
    writer = _host(tmp_path, "writer", bucket, client)
    staging = _staged(writer, "datasets/2/v1.parquet", os.urandom(PART + 10))
    calls = []
    real = client.upload_part

    def flaky(**kw):
        calls.append(kw["PartNumber"])
        if kw["PartNumber"] == 2:
            raise ConnectionError("the network went away")
        return real(**kw)

    monkeypatch.setattr(client, "upload_part", flaky)
    with pytest.raises(ConnectionError):
        writer.commit(staging, "datasets/2/v1.parquet")
    assert calls == [1, 2]
    assert not writer.exists("datasets/2/v1.parquet")
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    writer.discard(staging)
    assert not staging.exists()


def test_publication_through_the_api_lands_in_the_bucket(s3_bucket, live_app):
    """MARKET_STORAGE=s3: an upload is processed into the bucket; nothing stays in the data
    folder but the content-hash cache, and a fresh host fetches the exact recorded file."""
    endpoint, bucket, client = s3_bucket
    from pathlib import Path

    from market.accounts import services as accounts
    from market.accounts.actor import Actor
    from market.datasets.models import DatasetVersion
    from market.extensions import db
    from tests.datasets.conftest import csv_bytes, metadata, multipart, sample_rows
    from tests.datasets.test_crash_recovery import _credit_code

    live_app.config.update(MARKET_STORAGE="s3", MARKET_S3_BUCKET=bucket,
                           MARKET_S3_ENDPOINT_URL=endpoint, MARKET_S3_PREFIX="prod")
    with live_app.app_context():
        system = Actor.system("test")
        org = accounts.create_organization(db.session, system, name="对象存储测试局",
                                           kind="department", credit_code=_credit_code(),
                                           check=False)
        user = accounts.create_user(db.session, system, email="s3@department.example.cn",
                                    password="correct horse battery staple",
                                    organization_id=org.id, check=False)
        import datetime as dt

        token, _ = accounts.issue_token(db.session, user, dt.timedelta(hours=1))
        db.session.commit()
    import json

    body, content_type = multipart([("metadata", json.dumps(metadata(), ensure_ascii=False)),
                                    ("file", (csv_bytes(sample_rows(60)), "rows.csv"))])
    with live_app.test_client() as http:
        res = http.post("/api/v1/datasets", data=body, content_type=content_type,
                        headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"})
    assert res.status_code == 202, res.get_json()
    with live_app.app_context():
        version = db.session.query(DatasetVersion).one()
        assert version.status == "pending_review", version.refusal_reasons
        key, digest = version.parquet_path, version.parquet_sha256
    head = client.head_object(Bucket=bucket, Key=f"prod/{key}")
    assert head["Metadata"]["sha256"] == digest
    data_dir = Path(live_app.config["MARKET_DATA_DIR"])
    files = sorted(p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file())
    assert files == [f".cache/{digest}.parquet"], files
    fresh = S3Storage(data_dir.parent / "host2", bucket=bucket, client=client, prefix="prod",
                      digest_of={key: digest}.get)
    assert hashlib.sha256(fresh.local_path(key).read_bytes()).hexdigest() == digest


def test_the_sweep_aborts_an_incomplete_upload_only_once_it_has_seen_it_that_long(
    s3_bucket, tmp_path
):
    """An upload in flight is never aborted by a sweep, whatever ``Initiated`` the store
    reports (moto's server reports 2010-11-10 for every upload, so a worker's commit was
    aborted between its parts and its complete: a publication failed in the suite). An
    upload this process has seen incomplete since before the cutoff is aborted."""
    import datetime as dt

    _, bucket, client = s3_bucket
    store = _host(tmp_path, "sweeper", bucket, client)
    started = client.create_multipart_upload(Bucket=bucket, Key="market/datasets/9/v1.parquet")
    listed = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    now = dt.datetime.now(dt.UTC)
    assert listed[0]["Initiated"] < now - dt.timedelta(days=365)  # the store's claim

    # In flight: the first sweep that sees it keeps it, with a cutoff in the past as in
    # production (now minus twice the lease).
    store.sweep_staging(protected=set(), older_than=now - dt.timedelta(seconds=4))
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    # Still incomplete at a later sweep whose cutoff is after it was first seen: abandoned.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    assert store.sweep_staging(protected=set(), older_than=later) == 1
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    with pytest.raises(client.exceptions.ClientError):
        client.complete_multipart_upload(
            Bucket=bucket, Key="market/datasets/9/v1.parquet", UploadId=started["UploadId"],
            MultipartUpload={"Parts": []},
        )
