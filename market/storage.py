"""Where desensitized Parquet files live.

One small interface, so that object storage (S3-compatible) can replace the local folder
without touching the pipeline or the sandbox. Keys are relative POSIX paths such as
``datasets/7/v2.parquet``; they never come from user input.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from flask import current_app


class Storage(Protocol):
    def staging_path(self, key: str) -> Path:
        """A fresh temporary file next to ``key``'s final place (same file system)."""

    def commit(self, staging: Path, key: str) -> Path:
        """Atomically move a finished staging file to ``key``; returns its local path."""

    def discard(self, staging: Path) -> None:
        """Remove a staging file after a failure (no error if it is gone)."""

    def local_path(self, key: str) -> Path:
        """A local path the sandbox engine can read."""

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...

    def purge(self, key: str) -> int:
        """Delete ``key``, its temp files and its folder if left empty; returns files deleted."""

    def sweep_staging(self, *, protected: set[str], older_than: dt.datetime) -> int:
        """Delete staging files not in ``protected`` last written before ``older_than``."""


#: Folders whose emptiness means nothing is left of a dataset: ``datasets/<id>/``.
_PRUNABLE = "datasets"
#: Where raw uploads are staged (``market.datasets.services.UPLOAD_KEY``'s folder).
_UPLOADS = "uploads"


class LocalStorage:
    """Files under ``MARKET_DATA_DIR``. Staging files start with ``.partial-``; the pipeline's
    own temp files next to a staging output are ``.<staging name>.<random>.part``."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def _resolve(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError("storage key escapes the data folder")
        return path

    def staging_path(self, key: str) -> Path:
        final = self._resolve(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        return final.parent / f".partial-{uuid.uuid4().hex}-{final.name}"

    def commit(self, staging: Path, key: str) -> Path:
        final = self._resolve(key)
        os.replace(staging, final)
        return final

    def discard(self, staging: Path) -> None:
        staging.unlink(missing_ok=True)
        self._prune(staging.parent)

    def _prune(self, folder: Path) -> None:
        """Remove ``datasets/<id>/`` if it is empty (a failed upload leaves nothing behind).

        A concurrent job of the same dataset re-creates it (``mkdir`` before each write)."""
        try:
            folder = folder.resolve()
            if folder.parent == self.root / _PRUNABLE and folder.is_dir():
                folder.rmdir()
        except OSError:
            pass  # not empty, or already gone

    def local_path(self, key: str) -> Path:
        return self._resolve(key)

    def delete(self, key: str) -> None:
        path = self._resolve(key)
        path.unlink(missing_ok=True)
        self._drop_derived(path)
        self._prune(path.parent)

    def _drop_derived(self, path: Path) -> None:
        """The sandbox's projections and rollups of a deleted data file (under
        ``<data dir>/projections``, see ``sandbox.app_engine``): they hold its columns."""
        from sandbox.engine import drop_prepared

        try:
            drop_prepared(self.root / "projections", path)
        except OSError as exc:  # a leftover costs disk, never a wrong answer (never read)
            log.warning("sandbox files of a deleted data file not removed (%s)",
                        type(exc).__name__)

    def purge(self, key: str) -> int:
        path = self._resolve(key)
        victims = [path]
        if path.parent.is_dir():
            victims += list(path.parent.glob(f".{path.name}.*.part"))
        deleted = 0
        for victim in victims:
            try:
                victim.unlink()
                deleted += 1
            except FileNotFoundError:
                pass
        self._drop_derived(path)
        self._prune(path.parent)
        return deleted

    def sweep_staging(self, *, protected: set[str], older_than: dt.datetime) -> int:
        keep = {self._resolve(k) for k in protected}
        cutoff = older_than.timestamp()
        deleted = 0
        folders = [self.root / "uploads"]
        datasets = self.root / _PRUNABLE
        if datasets.is_dir():
            folders += [d for d in datasets.iterdir() if d.is_dir()]
        for folder in folders:
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if not path.name.startswith((".partial-", "..partial-")):
                    continue
                owner = path
                if path.name.startswith("..partial-"):  # .<staging name>.<random>.part
                    owner = path.with_name(path.name[1:].removesuffix(".part").rsplit(".", 1)[0])
                if path in keep or owner in keep:
                    continue
                try:
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        deleted += 1
                except FileNotFoundError:
                    continue
            # A folder made a moment ago may be about to receive a job's output: only old ones.
            try:
                stale = folder.stat().st_mtime < cutoff
            except FileNotFoundError:
                continue
            if folder != self.root / "uploads" and stale:
                self._prune(folder)
        return deleted

    def exists(self, key: str) -> bool:
        return self._resolve(key).exists()


log = logging.getLogger(__name__)


class StorageIntegrityError(Exception):
    """A fetched object does not hash to the SHA-256 recorded when it was written."""


#: Multipart part size: S3's minimum for every part but the last is 5 MiB.
DEFAULT_PART_BYTES = 8 << 20
_HASH_BLOCK = 1 << 20


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


class S3Storage(LocalStorage):
    """Desensitized Parquet in an S3-compatible bucket (``MARKET_STORAGE=s3``).

    Staging files are written locally, under ``MARKET_DATA_DIR`` (the pipeline writes its
    output next to where the inherited local methods expect it). A raw upload handed to a
    queue worker moves to the bucket as the sealed file it is (:meth:`share_staging`:
    AES-256-GCM ciphertext whose key travels only wrapped for that worker), so that the worker
    needs no shared folder; the job deletes it (:meth:`delete_staging`), and the lease sweeper
    and :meth:`sweep_staging` delete what a dead process left.
    :meth:`commit` sends a finished staging file with a multipart upload and completes it,
    so the object appears whole or not at all (a failed upload is aborted); the object
    carries its SHA-256 as metadata. Query hosts read through a local cache keyed by content
    hash (``<cache>/<sha256>.parquet``): :meth:`local_path` downloads an object it does not
    hold yet, hashes it and refuses it (:class:`StorageIntegrityError`) unless the hash
    matches the one recorded in the database for that key (``digest_of``), or, for a key the
    database does not know, the one recorded at commit.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        bucket: str,
        client: Any,
        prefix: str = "",
        cache_dir: str | Path | None = None,
        digest_of: Callable[[str], str | None] | None = None,
        part_bytes: int = DEFAULT_PART_BYTES,
    ):
        super().__init__(root)
        self.bucket = bucket
        self.client = client
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.cache = Path(cache_dir).resolve() if cache_dir else self.root / ".cache"
        self.digest_of = digest_of
        self.part_bytes = max(5 << 20, part_bytes)
        #: Incomplete multipart uploads by id: when this process first listed each one.
        self._first_seen: dict[str, dt.datetime] = {}
        self._seen_lock = threading.Lock()

    def _object(self, key: str) -> str:
        self._resolve(key)  # the same rule as local keys: no escaping
        return self.prefix + key

    def commit(self, staging: Path, key: str) -> Path:
        digest = _sha256_of(staging)
        self._upload(staging, self._object(key), {"sha256": digest})
        self.cache.mkdir(parents=True, exist_ok=True)
        cached = self.cache / f"{digest}.parquet"
        os.replace(staging, cached)
        self._prune(staging.parent)
        return cached

    def _upload(self, path: Path, name: str, metadata: dict[str, str]) -> None:
        """``path`` as object ``name``: a multipart upload, completed, or aborted on failure."""
        upload = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=name, Metadata=metadata
        )
        upload_id = upload["UploadId"]
        try:
            parts = []
            with open(path, "rb") as fh:
                for number, block in enumerate(iter(lambda: fh.read(self.part_bytes), b""), 1):
                    done = self.client.upload_part(
                        Bucket=self.bucket, Key=name, UploadId=upload_id,
                        PartNumber=number, Body=block,
                    )
                    parts.append({"PartNumber": number, "ETag": done["ETag"]})
            if not parts:  # an empty file is still one (empty) part
                done = self.client.upload_part(
                    Bucket=self.bucket, Key=name, UploadId=upload_id, PartNumber=1, Body=b""
                )
                parts.append({"PartNumber": 1, "ETag": done["ETag"]})
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=name, UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
            except Exception as exc:  # noqa: BLE001 - the sweep aborts it later
                log.warning("multipart upload not aborted (%s)", type(exc).__name__)
            raise

    # ------------------------------------------------- staging uploads shared between hosts

    def share_staging(self, path: Path) -> str:
        """Move a sealed staging upload of this host into the bucket, under its storage key
        (``uploads/.partial-…``), so that a worker on another host, with another data folder,
        can process it. Returns that key. The object is the sealed file as it is on disk
        (AES-256-GCM ciphertext; its key never goes with it). The local file is deleted once
        the object is complete; on failure the upload is aborted and the local file kept (the
        caller discards it)."""
        key = path.resolve().relative_to(self.root).as_posix()
        if not key.startswith(f"{_UPLOADS}/"):
            raise ValueError("only staging uploads are shared")
        self._upload(path, self._object(key), {"market-staging": "sealed"})
        path.unlink(missing_ok=True)
        return key

    def fetch_staging(self, key: str) -> Path:
        """The shared staging upload ``key`` downloaded to this host's data folder (its local
        path, the same key). Raises botocore's ClientError if it is gone."""
        local = self._resolve(key)
        if not key.startswith(f"{_UPLOADS}/"):
            raise ValueError("only staging uploads are shared")
        local.parent.mkdir(parents=True, exist_ok=True)
        temp = local.with_name(f".{local.name}.{uuid.uuid4().hex}.fetch")
        try:
            self.client.download_file(self.bucket, self._object(key), str(temp))
            os.chmod(temp, 0o600)
            os.replace(temp, local)
        finally:
            temp.unlink(missing_ok=True)
        return local

    def delete_staging(self, key: str) -> None:
        """Delete the shared staging upload ``key`` from the bucket and this host (no error if
        it is gone; a failure is logged and left to the sweeper)."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._object(key))
        except Exception as exc:  # noqa: BLE001 - the sweeper deletes it later
            log.warning("shared staging upload not deleted (%s)", type(exc).__name__)
        self._resolve(key).unlink(missing_ok=True)

    def _expected(self, key: str) -> str:
        recorded = self.digest_of(key) if self.digest_of is not None else None
        if recorded:
            return recorded
        head = self.client.head_object(Bucket=self.bucket, Key=self._object(key))
        meta = head.get("Metadata") or {}
        if "sha256" not in meta:
            raise StorageIntegrityError(f"{key}: no SHA-256 is recorded for this object")
        return meta["sha256"]

    def local_path(self, key: str) -> Path:
        """The verified local copy of ``key``. Raises StorageIntegrityError if the object's
        content does not hash to the recorded SHA-256 (nothing is then cached)."""
        expected = self._expected(key)
        cached = self.cache / f"{expected}.parquet"
        if cached.exists():
            return cached
        self.cache.mkdir(parents=True, exist_ok=True)
        temp = self.cache / f".fetch-{uuid.uuid4().hex}"
        try:
            self.client.download_file(self.bucket, self._object(key), str(temp))
            actual = _sha256_of(temp)
            if actual != expected:
                log.error("object %s failed its SHA-256 check: refused", key)
                raise StorageIntegrityError(
                    f"{key}: content hashes to {actual[:12]}…, {expected[:12]}… was recorded"
                )
            os.replace(temp, cached)
        finally:
            temp.unlink(missing_ok=True)
        return cached

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._object(key))
        self._prune(self._resolve(key).parent)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._object(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise

    def purge(self, key: str) -> int:
        deleted = 0
        if self.exists(key):
            self.client.delete_object(Bucket=self.bucket, Key=self._object(key))
            deleted += 1
        return deleted + super().purge(key)

    def sweep_staging(self, *, protected: set[str], older_than: dt.datetime) -> int:
        """Local staging files as for LocalStorage; shared staging uploads (``uploads/…``
        objects) that no live lease protects, written before ``older_than``; and multipart
        uploads left incomplete (a process died between create and complete) started before
        ``older_than``.

        An incomplete upload is aborted only once this process has itself seen it incomplete
        since before ``older_than`` too: the ``Initiated`` time a store reports is not trusted
        alone (moto's server reports a fixed 2010 date, so every upload in flight looked
        abandoned and a sweep aborted a worker's commit between its parts and its complete).
        A really abandoned upload goes one sweep period later."""
        deleted = super().sweep_staging(protected=protected, older_than=older_than)
        paginator = self.client.get_paginator("list_objects_v2")
        shared = self.prefix + f"{_UPLOADS}/"
        for page in paginator.paginate(Bucket=self.bucket, Prefix=shared):
            for item in page.get("Contents") or []:
                key = item["Key"][len(self.prefix):]
                written = item["LastModified"]
                if written.tzinfo is None:
                    written = written.replace(tzinfo=dt.UTC)
                if key in protected or written >= older_than:
                    continue
                self.client.delete_object(Bucket=self.bucket, Key=item["Key"])
                deleted += 1
        listing = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=self.prefix)
        uploads = listing.get("Uploads") or []
        now = dt.datetime.now(dt.UTC)
        with self._seen_lock:
            seen = {u["UploadId"]: self._first_seen.get(u["UploadId"], now) for u in uploads}
            self._first_seen = seen  # forget the ones that completed or were aborted
        for upload in uploads:
            started = upload["Initiated"]
            if started.tzinfo is None:
                started = started.replace(tzinfo=dt.UTC)
            if started < older_than and seen[upload["UploadId"]] < older_than:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                deleted += 1
        return deleted


def s3_client(config: Any) -> Any:
    """A boto3 S3 client from ``MARKET_S3_*`` (credentials: the usual AWS variables)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=config.get("MARKET_S3_ENDPOINT_URL") or None,
        region_name=config.get("MARKET_S3_REGION") or "us-east-1",
        config=Config(retries={"max_attempts": 3, "mode": "standard"},
                      s3={"addressing_style": "path"}),
    )


def _recorded_digest(engine: Any) -> Callable[[str], str | None]:
    def digest_of(key: str) -> str | None:
        import sqlalchemy as sa
        from sqlalchemy.orm import Session

        from market.datasets.models import DatasetVersion

        with Session(bind=engine) as s:
            return s.scalar(
                sa.select(DatasetVersion.parquet_sha256)
                .where(DatasetVersion.parquet_path == key)
                .limit(1)
            )

    return digest_of


def local_copy(store: Storage, key: str, sha256: str | None) -> Path:
    """This host's verified file for ``key``, for a query host sent a key and its digest
    (``sandbox.query.StoredTable``) rather than another host's path: S3 storage downloads it
    into the content-hash cache unless it is there, checks it, and it must be the content the
    query was checked against; local storage resolves it in this host's (shared) data folder.

    Raises StorageIntegrityError when the content differs, KeyError or OSError when the key
    is unknown here."""
    path = store.local_path(key)
    if sha256 and isinstance(store, S3Storage) and path.name != f"{sha256}.parquet":
        raise StorageIntegrityError(f"{key}: this host's copy is not the checked content")
    return path


def storage() -> Storage:
    """The app's storage: ``MARKET_STORAGE=local`` (default) or ``s3`` (:class:`S3Storage`)."""
    ext = current_app.extensions
    if "market.storage" not in ext:
        config = current_app.config
        if config.get("MARKET_STORAGE", "local") == "s3":
            from market.extensions import db

            ext["market.storage"] = S3Storage(
                config["MARKET_DATA_DIR"],
                bucket=config["MARKET_S3_BUCKET"],
                client=s3_client(config),
                prefix=config.get("MARKET_S3_PREFIX") or "",
                cache_dir=config.get("MARKET_STORAGE_CACHE_DIR") or None,
                digest_of=_recorded_digest(db.engine),
            )
        else:
            ext["market.storage"] = LocalStorage(config["MARKET_DATA_DIR"])
    return ext["market.storage"]
