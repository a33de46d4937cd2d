"""#17.3 (staging): with ``MARKET_STORAGE=s3`` raw uploads reach a worker on another host
through the bucket, still sealed, so web hosts and workers need not share ``MARKET_DATA_DIR``.

Against moto's S3 server on loopback: the shared staging object is the sealed file (AES-256-GCM
ciphertext, ``MKSEAL01`` header, no raw value in it); a host with another data folder fetches
and opens it only with the key; it is deleted on success, on failure, by the lease sweeper
(``purge``) and, if nothing protects it, by the staging sweep. Then over the wire: ``market
serve`` with one data folder, a real Celery worker with another, the worker paused while the
upload sits in the bucket, then a processed upload and a failed one, each leaving nothing in
the bucket's ``uploads/`` nor in either folder.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
from pathlib import Path

import pytest

from market.pipeline.sealed import MAGIC, SealedFile, SealedFileError, SealedWriter, new_key
from market.storage import S3Storage
from tests.datasets.test_crash_recovery import crash_site  # noqa: F401 - a fixture

PART = 5 << 20


def _objects(client, bucket: str, prefix: str) -> list[str]:
    listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in listing.get("Contents") or []]


def _sealed_upload(store: S3Storage, plaintext: bytes) -> tuple[Path, bytes]:
    key = new_key()
    path = store.staging_path("uploads/upload.csv")
    with SealedWriter(path, key) as out:
        out.write(plaintext)
    return path, key


def test_a_shared_staging_upload_is_sealed_fetched_by_another_host_and_swept(s3_bucket, tmp_path):
    _, bucket, client = s3_bucket
    web = S3Storage(tmp_path / "web", bucket=bucket, client=client, prefix="prod",
                    part_bytes=PART)
    worker = S3Storage(tmp_path / "worker", bucket=bucket, client=client, prefix="prod",
                       part_bytes=PART)
    needle = b"310101199001011234"
    plaintext = b"id,name\n" + b"".join(needle + b",x%d\n" % i for i in range(200_000))
    path, secret = _sealed_upload(web, plaintext)

    key = web.share_staging(path)
    assert key.startswith("uploads/.partial-") and not path.exists()
    blob = client.get_object(Bucket=bucket, Key=f"prod/{key}")["Body"].read()
    assert blob.startswith(MAGIC) and needle not in blob and len(blob) > len(plaintext)

    local = worker.fetch_staging(key)
    assert local == (tmp_path / "worker" / key).resolve()
    assert not (tmp_path / "web" / key).exists()
    with SealedFile(local, secret).open() as fh:
        assert fh.read() == plaintext
    with pytest.raises(SealedFileError):  # any key but the upload's
        with SealedFile(local, new_key()).open() as fh:
            fh.read()
    worker.delete_staging(key)
    assert not local.exists() and _objects(client, bucket, "prod/uploads/") == []
    worker.delete_staging(key)  # again: nothing to do, no error

    # The lease sweeper (a dead worker's lease lists the key): purge deletes the object.
    key = web.share_staging(_sealed_upload(web, b"a,b\n1,2\n")[0])
    assert web.purge(key) >= 1 and _objects(client, bucket, "prod/uploads/") == []

    # The staging sweep: a live lease protects it, a recent one is kept, an old one goes.
    key = web.share_staging(_sealed_upload(web, b"a,b\n1,2\n")[0])
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    web.sweep_staging(protected={key}, older_than=later)
    web.sweep_staging(protected=set(), older_than=later - dt.timedelta(hours=1))
    assert _objects(client, bucket, "prod/uploads/") == [f"prod/{key}"]
    assert web.sweep_staging(protected=set(), older_than=later) == 1
    assert _objects(client, bucket, "prod/uploads/") == []

    # Only staging uploads are shared or fetched.
    other = web.staging_path("datasets/1/v1.parquet")
    other.write_bytes(b"PAR1")
    with pytest.raises(ValueError):
        web.share_staging(other)
    with pytest.raises(ValueError):
        worker.fetch_staging("datasets/1/v1.parquet")


def test_a_worker_with_another_data_folder_processes_uploads_staged_in_the_bucket(
    celery_available, s3_bucket, crash_site, tmp_path  # noqa: F811 - imported fixture
):
    from tests.datasets.conftest import csv_bytes, metadata, sample_rows
    from tests.datasets.test_crash_recovery import Server, _scan, _upload
    from tests.scale.conftest import celery_env, start_worker
    from tests.scale.test_celery_jobs import _wait_status

    endpoint, bucket, client = s3_bucket
    s3 = {"MARKET_STORAGE": "s3", "MARKET_S3_BUCKET": bucket, "MARKET_S3_ENDPOINT_URL": endpoint,
          "MARKET_S3_PREFIX": "prod", "AWS_ACCESS_KEY_ID": "test",
          "AWS_SECRET_ACCESS_KEY": "test"}
    # A long announcement: the worker is paused for a moment below, and must stay chosen.
    env = {**celery_env(crash_site["env"]), **s3, "MARKET_WORKER_ANNOUNCE_SECONDS": "60"}
    web_dir = Path(env["MARKET_DATA_DIR"])
    worker_dir = tmp_path / "worker-host" / "data"
    worker_env = {**env, "MARKET_DATA_DIR": str(worker_dir),
                  "MARKET_INSTANCE_PATH": str(tmp_path / "worker-host")}
    headers = crash_site["headers"]
    rows = sample_rows(60)
    needles = [r[c].encode() for r in rows for c in ("法定代表人身份证号", "联系电话")]
    worker = start_worker(worker_env, tmp_path / "worker.log", queue=env["MARKET_CELERY_QUEUE"])
    server = Server(env, crash_site["log"])
    try:
        server.start()
        # 1. While the worker is paused, the upload waits in the bucket, sealed.
        os.killpg(worker.proc.pid, signal.SIGSTOP)
        try:
            status, body = _upload(server, headers, csv_bytes(rows), meta=metadata())
            assert status == 202, body
            staged = _objects(client, bucket, "prod/uploads/")
            assert len(staged) == 1, staged
            blob = client.get_object(Bucket=bucket, Key=staged[0])["Body"].read()
            assert blob.startswith(MAGIC)
            assert not [n for n in needles if n in blob]
            assert not list((web_dir / "uploads").glob(".partial-*"))  # moved, not copied
        finally:
            os.killpg(worker.proc.pid, signal.SIGCONT)
        st = _wait_status(server, headers, body["id"], body["version"], timeout=120)
        assert st["status"] == "pending_review", (st, worker.text()[-3000:])
        assert "processed" in worker.text()
        assert _objects(client, bucket, "prod/uploads/") == []
        assert _objects(client, bucket, f"prod/datasets/{body['id']}/")
        # The output was written on the worker's host (its cache), never in the web's folder.
        assert list((worker_dir / ".cache").glob("*.parquet"))
        assert not web_dir.exists() or not list(web_dir.rglob("*.parquet"))

        # 2. A failing upload (a ragged row): failed, and its staging object deleted too.
        status, body = _upload(server, headers, csv_bytes(sample_rows(20)) + b"1,2\n",
                               meta=metadata(title="坏文件"))
        assert status == 202, body
        st = _wait_status(server, headers, body["id"], body["version"], timeout=120)
        assert st["status"] == "failed" and "row 22" in st["refusal_reasons"][0], st
        assert _objects(client, bucket, "prod/uploads/") == []
        for folder in (web_dir, worker_dir):
            assert not list(folder.rglob(".partial-*")), list(folder.rglob("*"))
        assert _scan([web_dir, worker_dir, crash_site["temp"]], needles) == []
    finally:
        server.stop()
        worker.stop()


def test_a_failed_move_to_the_bucket_leaves_no_local_upload(app):
    """If the sealed upload cannot reach the bucket, the web host deletes its local copy and
    forgets the key before the error reaches the caller (which fails the version)."""
    from market import jobs
    from market.datasets import services

    class Unreachable:
        def create_multipart_upload(self, **_):
            raise ConnectionError("the object store is unreachable")

    app.extensions["market.storage"] = S3Storage(app.config["MARKET_DATA_DIR"], bucket="b",
                                                 client=Unreachable())
    try:
        staged = services.write_chunks(services.new_staging_file("rows.csv"), [b"a,b\n1,2\n"])
        assert services.staged_source(staged.path) is not None
        with pytest.raises(ConnectionError):
            jobs.CeleryRunner(app)._share(str(staged.path))
        assert not staged.path.exists()
        assert services.staged_source(staged.path) is None
    finally:
        app.extensions.pop("market.storage", None)
