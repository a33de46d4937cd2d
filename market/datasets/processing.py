"""The background job that turns a staged upload into a processed dataset version.

``process_version(version_id, staging_path)`` runs the pure pipeline (:mod:`market.pipeline`)
from the staged raw upload to a staging Parquet file, describes the published columns from
that output (roles, clamping bounds, profiles for the synthetic preview), moves the Parquet to
``datasets/{dataset_id}/v{version}.parquet`` and records everything on the version, which then
awaits review. On any failure the version is ``failed`` (``refused`` when k-anonymity cannot
be reached) with a reason that names the row or column, never a value.

Whatever happens, the raw upload is deleted when the job ends, and no partial file is left.
If the process dies mid-way (``kill -9``), the job's lease (:mod:`market.leases`, taken when
the version was recorded and renewed by this process) expires, and the sweeper fails the
version with :data:`LEASE_EXPIRED` and deletes the staged upload (sealed: unreadable without
the key that died with the process) and the partial output.

Column profiles (``DatasetColumn.profile``) describe the DESENSITIZED output only::

    {"null_share": 0.02,                       # every column
     "distinct": 16, "top": [{"value": "浦东新区", "count": 310}, …],   # dimensions (≤ 20)
     "min": 0.0, "max": 9.5e5, "mean": 1.2e4, "std": 3.1e3, "scale": 2,  # numeric
     "min": "2024-01-01", "max": "2025-10-31",  # dates
     "true_share": 0.12}                        # booleans

Top values are never computed for identifier or entity-key columns, nor for any column that
holds personal data published without generalization.
"""

from __future__ import annotations

import logging
import math
import os
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.orm import Session

from market import leases
from market.accounts.actor import Actor
from market.audit.services import record
from market.datasets import reasons
from market.datasets.models import (
    ColumnRole,
    DatasetColumn,
    DatasetVersion,
    Treatment,
    VersionStatus,
)
from market.datasets.services import (
    PUBLICATION_LEASE,
    parquet_key,
    read_limits,
    receive_shared_upload,
    sha256_file,
    staged_source,
    sync_dataset_status,
)
from market.db import utcnow
from market.extensions import db
from market.i18n import N_
from market.keys import pseudonym_key
from market.pipeline import KAnonymityTooLow, PipelineError, PipelineReport, run_pipeline
from market.storage import storage

log = logging.getLogger(__name__)

PIPELINE_ACTOR = Actor.system("pipeline")
#: Distinct values up to which a text column is a dimension (group-by) in the sandbox.
DIMENSION_MAX_DISTINCT = 200
TOP_VALUES = 20
#: Progress is written at most this often (seconds), each time in a short transaction.
PROGRESS_INTERVAL = 0.5
#: DatasetColumn.name is VARCHAR(128).
MAX_COLUMN_NAME = 128
#: Numeric(20, 4): bounds beyond this cannot be stored (the column is then not clamped).
_BOUND_LIMIT = Decimal(10) ** 16
_NUMERIC = ("integer", "decimal")
_DATES = ("date", "datetime")
#: Kinds whose plain values may be shown as top values (when published untreated).
_SHOWABLE_KINDS = (None, "gender")

ProgressCallback = Callable[[int, int], None]

GENERIC_FAILURE = N_("processing failed because of an internal error; the upload was discarded")
NOT_STARTED = N_(
    "processing could not be started; the upload was discarded: upload it again"
)
LEASE_EXPIRED = N_(
    "processing stopped because the server running it stopped; the upload was deleted: "
    "upload it again"
)
NO_WORKER = N_(
    "processing could not be started because no publication worker is running; the upload "
    "was deleted: upload it again later"
)
KEY_UNAVAILABLE = N_(
    "processing could not read the upload (it was received by another server process, which "
    "holds its key); the upload was deleted: upload it again"
)


# ----------------------------------------------------------------------------- progress


class ProgressWriter:
    """Writes ``progress_done/progress_total`` at most every ``interval`` seconds.

    Each write is its own short transaction on a separate session, so that pollers see it
    while the job's work is still uncommitted, and no lock is held between writes.
    """

    def __init__(
        self,
        version_id: int,
        bind: Any,
        *,
        interval: float = PROGRESS_INTERVAL,
        echo: ProgressCallback | None = None,
        check: Callable[[], None] | None = None,
    ):
        self.version_id = version_id
        #: Raises to stop the job (its lease was lost); called on every report.
        self.check = check
        self.bind = bind
        self.interval = interval
        self.echo = echo
        #: When the last write happened; None until the first, which is always written (the
        #: monotonic clock may start near zero on a freshly booted machine).
        self.last: float | None = None
        self.writes = 0

    def __call__(self, done: int, total: int) -> None:
        if self.check is not None:
            self.check()
        if self.echo is not None:
            self.echo(done, total)
        now = time.monotonic()
        if self.last is not None and now - self.last < self.interval:
            return
        self.last = now
        try:
            with Session(bind=self.bind, join_transaction_mode="create_savepoint") as s:
                s.execute(
                    sa.update(DatasetVersion)
                    .where(DatasetVersion.id == self.version_id)
                    .values(progress_done=int(done), progress_total=int(total))
                )
                s.commit()
            self.writes += 1
        except sa.exc.SQLAlchemyError as exc:  # progress is a nicety: never fail the job on it
            log.warning("progress of version %s not recorded (%s)", self.version_id, type(exc).__name__)


# ----------------------------------------------------------------------------- the job


@dataclass(frozen=True)
class _Params:
    version_id: int
    dataset_id: int
    number: int
    filename: str
    entity_key: str | None
    update_frequency: str | None
    overrides: dict[str, str]
    k_min: int


def process_version(
    version_id: int, staging_path: str, progress: ProgressCallback | None = None
) -> str | None:
    """Process the staged upload of version ``version_id``; returns its final status.

    The job's own work is committed here. ``progress(done, total)`` (inline callers only)
    also receives every progress report. The staged upload and every partial file are
    deleted before the outcome is committed, so a poller never sees a finished version
    with files still around.
    """
    session = db.session
    # A relative path is the storage key of an upload shared through the object store by a
    # web host with another data folder (market.jobs.CeleryRunner): fetched below.
    shared = None if os.path.isabs(staging_path) else staging_path
    files = _JobFiles(Path(staging_path), shared=shared)
    source = staged_source(staging_path) if shared is None else None
    try:
        version = session.get(DatasetVersion, version_id)
        if version is None or version.status != VersionStatus.processing:
            log.warning("version %s is not waiting for processing; upload discarded", version_id)
            return version.status if version is not None else None
        if shared is not None:
            source = receive_shared_upload(shared)
            if source is not None:
                files.upload = source.path
        if source is None:
            session.rollback()
            files.cleanup()
            return record_failure(
                session, version_id, VersionStatus.failed, [KEY_UNAVAILABLE], "key_unavailable"
            )
        dataset = version.dataset
        params = _Params(
            version_id=version.id,
            dataset_id=dataset.id,
            number=version.version,
            filename=version.filename,
            entity_key=dataset.entity_key,
            update_frequency=dataset.update_frequency,
            overrides=dict(version.treatment_overrides or {}),
            k_min=int(dataset.k_min),
        )
        # End the read transaction: progress goes through short transactions of its own.
        session.commit()
        files.key = parquet_key(params.dataset_id, params.number)
        files.out = storage().staging_path(files.key)
        keeper = leases.keeper()
        # The partial output joins the lease's files: the sweeper deletes it if we die.
        keeper.claim(session.get_bind(), PUBLICATION_LEASE, version_id, [_key_of(files.out)])
        writer = ProgressWriter(
            version_id,
            session.get_bind(),
            echo=progress,
            check=lambda: keeper.check(PUBLICATION_LEASE, version_id),
        )
        report = run_pipeline(
            source,
            filename=params.filename,
            out_path=files.out,
            key=pseudonym_key(),
            entity_key=params.entity_key,
            update_frequency=params.update_frequency,
            overrides=params.overrides,
            k_min=params.k_min,
            progress=writer,
            limits=read_limits(),
        )
        files.drop_upload()  # the raw upload is not needed a moment longer
        _check_names(report)
        columns = describe_columns(files.out, report)
        digest = sha256_file(files.out)
        keeper.check(PUBLICATION_LEASE, version_id)
        files.place()
        version = session.get(DatasetVersion, version_id)
        if version is None or version.status != VersionStatus.processing:
            raise leases.LeaseLost(f"{PUBLICATION_LEASE} {version_id}")  # swept meanwhile
        _store(session, version, report, columns, files.key, digest)
        leases.release(session, PUBLICATION_LEASE, version_id)
        session.commit()
        files.placed = False
        log.info(
            "dataset %s v%s processed: %d rows, quality %s",
            params.dataset_id, params.number, report.row_count, version.quality_score,
        )
        _prepare_for_sandbox(version)
        return version.status
    except PipelineError as exc:
        session.rollback()
        files.cleanup()
        status = VersionStatus.refused if isinstance(exc, KAnonymityTooLow) else VersionStatus.failed
        return record_failure(session, version_id, status, [reasons.of_error(exc)], exc.code)
    except Exception as exc:  # noqa: BLE001 - any failure must clean up and be recorded
        session.rollback()
        files.cleanup()
        # The message may quote data (engine errors do): log the type and the frames only.
        log.error(
            "processing version %s failed: %s\n%s",
            version_id, type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)),
        )
        return record_failure(
            session, version_id, VersionStatus.failed, [GENERIC_FAILURE], "internal"
        )
    finally:
        files.cleanup()


def _key_of(path: Path) -> str:
    from flask import current_app

    root = Path(current_app.config["MARKET_DATA_DIR"]).resolve()
    return path.resolve().relative_to(root).as_posix()


@dataclass
class _JobFiles:
    """The files one job may leave behind if it stops half-way."""

    upload: Path
    out: Path | None = None
    key: str | None = None
    #: The output was moved to ``key`` but the database does not know it yet.
    placed: bool = False
    #: The storage key of an upload shared through the object store (deleted there too).
    shared: str | None = None

    def drop_upload(self) -> None:
        from market.datasets.services import forget_staging_key

        self.upload.unlink(missing_ok=True)
        forget_staging_key(self.upload)
        if self.shared is not None:
            forget_staging_key(self.shared)
            storage().delete_staging(self.shared)  # type: ignore[attr-defined]
            self.shared = None

    def place(self) -> None:
        assert self.out is not None and self.key is not None
        storage().commit(self.out, self.key)
        self.out, self.placed = None, True

    def cleanup(self) -> None:
        self.drop_upload()
        if self.out is not None:
            storage().discard(self.out)
            self.out = None
        if self.placed and self.key is not None:
            storage().delete(self.key)
            self.placed = False


def _check_names(report: PipelineReport) -> None:
    for position, col in enumerate(report.columns, start=1):
        if len(col.name) > MAX_COLUMN_NAME:
            raise PipelineError(
                N_("the name of column %(position)s is longer than %(max)s characters"),
                row=1,
                position=position,
                max=MAX_COLUMN_NAME,
            )


def record_failure(
    session: Session, version_id: int, status: str, why: list[reasons.Reason], code: str
) -> str | None:
    """Mark the version failed (or refused) with the reasons ``why`` (stored entries, see
    :mod:`market.datasets.reasons`), audited in English, and release its lease; commits.
    A version no longer ``processing`` (a sweeper already failed it) is left as is."""
    version = session.get(DatasetVersion, version_id)
    if version is None:
        return None
    leases.release(session, PUBLICATION_LEASE, version_id)
    if version.status != VersionStatus.processing:
        session.commit()
        return version.status
    version.status = status
    version.refusal_reasons = list(why)
    version.processed_at = utcnow()
    version.parquet_path = None
    sync_dataset_status(version.dataset)
    record(
        session,
        "dataset.failed",
        PIPELINE_ACTOR,
        ("dataset", version.dataset_id),
        {
            "version": version.version,
            "status": status,
            "code": code,
            "reasons": reasons.render_all(why, english=True),
        },
    )
    session.commit()
    return status


def fail_expired_publication(session: Session, version_id: int) -> None:
    """Lease expiry handler (market.leases): the job died; fail its version (no commit).

    The dataset is then free for a new version; the sweeper deletes the lease's files.
    """
    # Compare-and-set: of several sweepers (one per web worker) exactly one fails it.
    taken = session.execute(
        sa.update(DatasetVersion)
        .where(DatasetVersion.id == version_id, DatasetVersion.status == VersionStatus.processing)
        .values(
            status=VersionStatus.failed,
            refusal_reasons=[LEASE_EXPIRED],
            processed_at=utcnow(),
            parquet_path=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken != 1:
        return
    version = session.get(DatasetVersion, version_id)
    session.refresh(version)
    sync_dataset_status(version.dataset)
    session.flush()
    record(
        session,
        "dataset.failed",
        PIPELINE_ACTOR,
        ("dataset", version.dataset_id),
        {
            "version": version.version,
            "status": VersionStatus.failed.value,
            "code": "lease_expired",
            "reasons": [LEASE_EXPIRED],
        },
    )


def unleased_publications(session: Session, older_than: Any) -> list[int]:
    """Versions still ``processing`` recorded before ``older_than`` (the sweeper skips those
    that hold a lease): left by a crash before leases existed."""
    return list(
        session.scalars(
            sa.select(DatasetVersion.id).where(
                DatasetVersion.status == VersionStatus.processing,
                DatasetVersion.created_at < older_than,
            )
        )
    )


def _quality_score(score: Any) -> int:
    return int(Decimal(str(score)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _prepare_for_sandbox(version: DatasetVersion) -> None:
    """The sandbox's projection and rollup of the new file, built now rather than on the
    first buyer question (``sandbox.app_engine.prepare_file``). The version's outcome is
    already committed; the attributes are read, then the transaction that reading began is
    ended before the work (on SQLite every transaction holds the write lock). A failure is
    logged and changes nothing: the first question prepares the file, as before."""
    from flask import current_app

    from sandbox import app_engine

    config = current_app.config
    version_id = version.id
    try:
        plan = app_engine.publication_plan(config, version, db.session)
    finally:
        db.session.rollback()
    if plan is None:
        return
    key, views = plan
    try:
        app_engine.prepare_file(config, str(storage().local_path(key)), views)
        log.info("version %s prepared for the sandbox", version_id)
    except Exception as exc:  # noqa: BLE001 - the first question prepares it instead
        log.warning(
            "version %s not prepared for the sandbox (%s); its first question will be",
            version_id, type(exc).__name__,
        )


def _store(
    session: Session,
    version: DatasetVersion,
    report: PipelineReport,
    columns: list[ColumnFacts],
    key: str,
    digest: str,
) -> None:
    score = _quality_score(report.quality["score"])
    version.status = VersionStatus.pending_review
    version.file_format = report.format
    version.encoding = report.encoding
    version.row_count = report.row_count
    version.parquet_path = key
    version.parquet_sha256 = digest
    version.quality_score = max(0, min(100, score))
    version.quality = {"score": version.quality_score, "dimensions": report.quality["dimensions"]}
    version.k_anonymity = report.k_anonymity
    version.report = report.to_dict()
    version.refusal_reasons = None
    version.processed_at = utcnow()
    version.progress_total = max(int(version.progress_total or 0), 1)
    version.progress_done = version.progress_total
    version.columns.clear()
    for facts in columns:
        version.columns.append(facts.to_model())
    sync_dataset_status(version.dataset)
    session.flush()
    record(
        session,
        "dataset.processed",
        PIPELINE_ACTOR,
        ("dataset", version.dataset_id),
        {
            "version": version.version,
            "row_count": report.row_count,
            "quality_score": version.quality_score,
            "k_anonymity": report.k_anonymity,
            "format": report.format,
            "encoding": report.encoding,
            "treatments": {c.name: c.treatment for c in columns},
            "parquet_sha256": digest,
        },
    )


# ----------------------------------------------------------------------------- columns


@dataclass
class ColumnFacts:
    """What is published about one column (from the report and the output Parquet)."""

    position: int
    name: str
    type: str
    pii_kind: str | None
    treatment: str
    role: str = ColumnRole.other
    lower_bound: Decimal | None = None
    upper_bound: Decimal | None = None
    profile: dict[str, Any] | None = field(default=None)

    def to_model(self) -> DatasetColumn:
        return DatasetColumn(
            position=self.position,
            name=self.name,
            type=self.type,
            pii_kind=self.pii_kind,
            treatment=self.treatment,
            role=self.role,
            lower_bound=self.lower_bound,
            upper_bound=self.upper_bound,
            profile=self.profile,
        )


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _bound(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        out = Decimal(str(value)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return None
    return out if abs(out) < _BOUND_LIMIT else None


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float | Decimal):
        return _number(value)
    return str(value)


def _base_role(col: Mapping[str, Any], entity_key: str | None) -> str:
    if col["treatment"] == Treatment.suppressed:
        return ColumnRole.other
    if entity_key is not None and col["name"] == entity_key:
        return ColumnRole.entity_key
    if col["treatment"] in (Treatment.pseudonymized, Treatment.masked):
        return ColumnRole.identifier
    if col["treatment"] == Treatment.generalized:
        return ColumnRole.dimension
    if col["type"] in _NUMERIC:
        return ColumnRole.measure
    return ColumnRole.other


def _may_show_values(col: Mapping[str, Any], role: str) -> bool:
    if role in (ColumnRole.identifier, ColumnRole.entity_key):
        return False
    return col["treatment"] == Treatment.generalized or (
        col["treatment"] == Treatment.none and col.get("pii_kind") in _SHOWABLE_KINDS
    )


def describe_columns(parquet: Path, report: PipelineReport) -> list[ColumnFacts]:
    """Roles, bounds and profiles of every column, computed on the desensitized output."""
    cols = [c.to_dict() for c in report.columns]
    schema = pq.read_schema(parquet)
    published = set(schema.names)
    con = duckdb.connect(":memory:")
    try:
        con.read_parquet(str(parquet)).create_view("t")
        total = int(con.execute("SELECT count(*) FROM t").fetchone()[0])
        facts: list[ColumnFacts] = []
        for position, col in enumerate(cols):
            name = col["output_name"] or col["name"]
            f = ColumnFacts(
                position=position,
                name=name,
                type=col["type"],
                pii_kind=col.get("pii_kind"),
                treatment=col["treatment"],
                role=_base_role(col, report.entity_key),
            )
            facts.append(f)
            if col["output_name"] is None or name not in published:
                continue
            f.profile = _profile(con, name, col, f, total, schema.field(name).type)
        return facts
    finally:
        con.close()


def _profile(
    con: duckdb.DuckDBPyConnection,
    name: str,
    col: Mapping[str, Any],
    f: ColumnFacts,
    total: int,
    arrow_type: pa.DataType,
) -> dict[str, Any]:
    q = _q(name)
    nulls = int(con.execute(f"SELECT count(*) - count({q}) FROM t").fetchone()[0])
    profile: dict[str, Any] = {"null_share": round(nulls / total, 4) if total else 0.0}
    typ = col["type"]
    if f.role in (ColumnRole.identifier, ColumnRole.entity_key):
        return profile
    if typ in _NUMERIC and f.role == ColumnRole.measure:
        row = con.execute(
            f"SELECT min(CAST({q} AS DOUBLE)), max(CAST({q} AS DOUBLE)), "
            f"avg(CAST({q} AS DOUBLE)), stddev_samp(CAST({q} AS DOUBLE)) "
            "FROM t"
        ).fetchone()
        profile.update(min=_number(row[0]), max=_number(row[1]), mean=_number(row[2]),
                       std=_number(row[3]))
        if pa.types.is_decimal(arrow_type):
            profile["scale"] = arrow_type.scale
        elif typ == "integer":
            profile["scale"] = 0
        # No clamp bounds from the data (its percentiles are one enterprise's values, and
        # were published): the sandbox bounds SUM/AVG by the department's declared ranges.
        f.lower_bound = f.upper_bound = None
        return profile
    if typ in _DATES:
        lo, hi = con.execute(f"SELECT min({q}), max({q}) FROM t").fetchone()
        profile.update(min=_json_value(lo), max=_json_value(hi))
    if typ == "boolean":
        share = con.execute(f"SELECT avg(CAST({q} AS INTEGER)) FROM t").fetchone()[0]
        profile["true_share"] = round(float(share), 4) if share is not None else None
    if f.role == ColumnRole.other and typ not in _NUMERIC:
        distinct = int(con.execute(f"SELECT count(DISTINCT {q}) FROM t").fetchone()[0])
        if distinct <= DIMENSION_MAX_DISTINCT:
            f.role = ColumnRole.dimension
        profile["distinct"] = distinct
    elif f.role == ColumnRole.dimension:
        profile["distinct"] = int(con.execute(f"SELECT count(DISTINCT {q}) FROM t").fetchone()[0])
    if f.role == ColumnRole.dimension and _may_show_values(col, f.role):
        rows = con.execute(
            f"SELECT {q} AS v, count(*) AS n FROM t WHERE {q} IS NOT NULL "
            f"GROUP BY 1 ORDER BY n DESC, 1 LIMIT {TOP_VALUES}"
        ).fetchall()
        profile["top"] = [{"value": _json_value(v), "count": int(n)} for v, n in rows]
    return profile


# ----------------------------------------------------------------------------- stricter


def _k_anonymity(parquet: Path, quasi_identifiers: Sequence[str]) -> int | None:
    if not quasi_identifiers:
        return None
    con = duckdb.connect(":memory:")
    try:
        con.read_parquet(str(parquet)).create_view("t")
        cols = ", ".join(_q(c) for c in quasi_identifiers)
        value = con.execute(f"SELECT min(n) FROM (SELECT count(*) AS n FROM t GROUP BY {cols})")
        found = value.fetchone()[0]
        return int(found) if found is not None else None
    finally:
        con.close()


def _rewrite_without(source: Path, target: Path, drop: Iterable[str]) -> None:
    dropped = set(drop)
    pf = pq.ParquetFile(source)
    try:
        keep = [n for n in pf.schema_arrow.names if n not in dropped]
        schema = pa.schema([pf.schema_arrow.field(n) for n in keep],
                           metadata=pf.schema_arrow.metadata)
        meta = dict(schema.metadata or {})
        raw = meta.get(b"market.pipeline")
        if raw:
            import json

            described = json.loads(raw)
            described["columns"] = [c for c in described.get("columns", [])
                                    if c.get("name") not in dropped]
            meta[b"market.pipeline"] = json.dumps(described, ensure_ascii=False).encode()
            schema = schema.with_metadata(meta)
        with pq.ParquetWriter(target, schema, compression="zstd") as writer:
            for batch in pf.iter_batches(columns=keep):
                writer.write_table(pa.Table.from_batches([batch], schema=schema))
    finally:
        pf.close()


def suppress_columns(session: Session, version: DatasetVersion, drop: Sequence[str]) -> None:
    """Drop ``drop`` from the version's output Parquet and mark them suppressed (flushes).

    The rewritten file replaces the old one atomically; k-anonymity is recomputed on the
    remaining quasi-identifiers (it can only grow).
    """
    key = version.parquet_path
    if not key:
        raise PipelineError(N_("the version has no output file"))
    source = storage().local_path(key)
    target = storage().staging_path(key)
    report = dict(version.report or {})
    qis = [c for c in report.get("quasi_identifiers") or [] if c not in drop]
    try:
        _rewrite_without(source, target, drop)
        k = _k_anonymity(target, qis)
        digest = sha256_file(target)
        storage().commit(target, key)
    except BaseException:
        storage().discard(target)
        raise
    dropped = set(drop)
    for col in version.columns:
        if col.name in dropped:
            col.treatment = Treatment.suppressed
            col.role = ColumnRole.other
            col.lower_bound = col.upper_bound = None
            col.profile = None
    report["columns"] = [
        {**c, "treatment": Treatment.suppressed.value, "output_name": None,
         "quasi_identifier": False}
        if c["name"] in dropped else c
        for c in report.get("columns") or []
    ]
    report["quasi_identifiers"] = qis
    report["k_anonymity"] = k
    version.report = report
    version.k_anonymity = k
    version.parquet_sha256 = digest
    session.flush()


# ----------------------------------------------------------------------------- inline


def publish_inline(
    session: Session,
    actor: Actor,
    source: str | Path,
    *,
    meta: Any = None,
    dataset: Any = None,
    version_meta: Any = None,
    filename: str | None = None,
    progress: ProgressCallback | None = None,
) -> DatasetVersion:
    """Publish a local file end to end in this thread (CLI, demo seeding); commits.

    With ``meta`` (a ``services.PublishMeta``) a new dataset is created; with ``dataset``
    (and optional ``services.VersionMeta``) a new version of it. The file is copied into a
    staging file first, so ``source`` itself is never touched. Returns the version in its
    final state (``pending_review``, ``failed`` or ``refused``).

    Raises what the services raise (Forbidden, ValidationFailed, Conflict) before anything
    is recorded.
    """
    from market.datasets import services

    if (meta is None) == (dataset is None):
        raise ValueError("give either meta (new dataset) or dataset (new version)")
    name = filename or Path(source).name
    if meta is not None and services.refusal_reasons(
        meta.open_grade, meta.confidential, meta.security_level
    ):
        version = services.create_dataset(session, actor, meta, None, filename=name)
        session.commit()
        return version
    staged = services.stage_file(source, name)
    try:
        if meta is not None:
            services.precheck_upload(staged, entity_key=meta.entity_key,
                                     treatments=meta.treatments)
            version = services.create_dataset(session, actor, meta, staged)
        else:
            vmeta = version_meta or services.VersionMeta()
            services.precheck_upload(staged, entity_key=dataset.entity_key or "",
                                     treatments=vmeta.treatments)
            version = services.create_version(session, actor, dataset, vmeta, staged)
        session.commit()
        version_id = version.id
        path, staged = str(staged.path), None
        process_version(version_id, path, progress)
    except BaseException:
        session.rollback()
        raise
    finally:
        if staged is not None:
            staged.discard()
    return session.get(DatasetVersion, version_id)
