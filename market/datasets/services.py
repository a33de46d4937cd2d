"""Publishing datasets: upload → background pipeline → operator review → listing.

Front ends (API, CLI, demo seeding, web pages) call these functions in the same order:

1. stage the upload under the data folder (:func:`new_staging_file` / :func:`stage_file`) —
   or not at all when the metadata alone refuses it (:func:`refusal_reasons`);
2. :func:`precheck_upload` (column cap, treatment overrides against the file's header);
3. :func:`create_dataset` or :func:`create_version` (flush, never commit);
4. the caller commits, then :func:`start_processing` hands the staged file to the job
   (``market.datasets.processing.process_version``), which deletes it when done;
5. :func:`review` (operator) lists or rejects the processed version.

Raw uploads live only as ``.partial-…`` files under ``MARKET_DATA_DIR/uploads`` while they
are processed, sealed (AES-256-GCM, :mod:`market.pipeline.sealed`) with a random key that
exists only in this process's memory: a crash leaves unreadable ciphertext. Whatever happens,
the job (or the caller, if the job is never started) deletes them; if the process dies, the
job's lease (:mod:`market.leases`) expires and the sweeper fails the version and deletes them.
Only the desensitized Parquet is kept.

Treatment overrides are chosen at upload (``metadata.treatments``; the upload page offers
them per column from :func:`inspect_upload` on the file's first lines). After processing the raw
file is gone, so :func:`change_treatments` can only make the published output *stricter* by
rewriting it: today that means suppressing (dropping) a column. Anything that would need the
raw values — loosening a treatment, or moving e.g. ``none`` to ``masked`` — is refused with
422 and needs a new upload (a new version).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from market import jobs
from market.accounts.actor import Actor
from market.accounts.permissions import require
from market.audit.services import record
from market.datasets import permissions as perms
from market.datasets import privacy
from market.datasets import reasons as reasons_text
from market.datasets.models import (
    Dataset,
    DatasetContributor,
    DatasetVersion,
    OpenGrade,
    Treatment,
    VersionStatus,
)
from market.db import utcnow
from market.errors import Conflict, Forbidden, NotFound, TooLarge, ValidationFailed
from market.i18n import N_, translate
from market.pipeline import InvalidEntityKey, PipelineError, validate_overrides
from market.pipeline.detect import Detection
from market.pipeline.errors import LimitExceeded
from market.pipeline.readers import ReadLimits, check_workbook, detect_format
from market.pipeline.schema import TypeInfo
from market.pipeline.sealed import InputFile, SealedFile, SealedWriter, new_key, open_input
from market.storage import storage

log = logging.getLogger(__name__)

#: Where raw uploads are staged while they are processed (relative to MARKET_DATA_DIR).
UPLOAD_KEY = "uploads/upload"
DEFAULT_MAX_COLUMNS = 2000
#: Longest physical CSV line accepted (MARKET_MAX_LINE_BYTES): a single huge cell would make
#: PII detection crawl, so it is refused up front.
DEFAULT_MAX_LINE_BYTES = 64 * 1024
#: Bytes of a CSV read to find its header line for the column cap.
HEADER_PROBE_BYTES = 4 << 20
_COPY_BLOCK = 1 << 20
_KNOWN_EXTENSIONS = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".parquet", ".pq")

#: Job that processes a staged upload: ``process_version(version_id, staging_path)``.
PROCESS_JOB = "market.datasets.processing.process_version"
#: Lease kind of that job (market.leases).
PUBLICATION_LEASE = "publication"

#: Keys of the sealed staging files of this process, by path. Never written anywhere: when
#: the process ends, its staging files become unreadable.
_STAGING_KEYS: dict[str, bytes] = {}

#: Stricter-only order of treatments on already published output (see change_treatments).
_STRICTNESS = {
    Treatment.none: 0,
    Treatment.generalized: 1,
    Treatment.masked: 2,
    Treatment.pseudonymized: 3,
    Treatment.suppressed: 4,
}


# ----------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Costs:
    """Cost basis in integer fen."""

    collection: int
    processing: int
    storage_monthly: int


@dataclass(frozen=True)
class PublishMeta:
    """Validated upload metadata (see ``schemas.PublishMetadataSchema``)."""

    title: str
    category: str
    open_grade: str
    confidential: bool
    entity_key: str
    update_frequency: str
    costs: Costs
    description: str = ""
    k_min: int | None = None
    treatments: Mapping[str, str] = field(default_factory=dict)
    #: GB/T 43697-2024 grade (``market.governance.grading``).
    security_level: str = "general"
    #: Validated ``metadata.privacy`` (``market.datasets.privacy.parse_privacy``), if given.
    privacy: Mapping[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PublishMeta:
        costs = data["costs"]
        return cls(
            title=data["title"].strip(),
            description=data.get("description") or "",
            category=data["category"],
            open_grade=data["open_grade"],
            confidential=bool(data["confidential"]),
            entity_key=data["entity_key"],
            update_frequency=data["update_frequency"],
            costs=Costs(costs["collection"], costs["processing"], costs["storage_monthly"]),
            k_min=data.get("k_min"),
            treatments=dict(data.get("treatments") or {}),
            security_level=data.get("security_level") or "general",
            privacy=data.get("privacy"),
        )


@dataclass(frozen=True)
class VersionMeta:
    """Optional metadata of a new version: treatments, updated costs, k_min."""

    treatments: Mapping[str, str] = field(default_factory=dict)
    costs: Costs | None = None
    k_min: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> VersionMeta:
        data = data or {}
        costs = data.get("costs")
        return cls(
            treatments=dict(data.get("treatments") or {}),
            costs=Costs(costs["collection"], costs["processing"], costs["storage_monthly"])
            if costs
            else None,
            k_min=data.get("k_min"),
        )


@dataclass
class StagedUpload:
    """A raw upload written under the data folder (a sealed ``.partial-…`` file).

    Write it with :meth:`open_writer` (or :func:`write_chunks`), read it with :attr:`source`
    (what the pipeline opens); the file on disk is ciphertext under :attr:`key`, which lives
    only in this process.
    """

    path: Path
    #: The sanitized original name; only its extension matters (format detection).
    filename: str
    size_bytes: int = 0
    key: bytes = field(default_factory=new_key, repr=False)

    def __post_init__(self) -> None:
        _STAGING_KEYS[str(self.path)] = self.key

    @property
    def source(self) -> SealedFile:
        return SealedFile(self.path, self.key)

    @property
    def storage_key(self) -> str:
        """The path relative to MARKET_DATA_DIR (what a lease lists)."""
        root = Path(current_app.config["MARKET_DATA_DIR"]).resolve()
        return self.path.resolve().relative_to(root).as_posix()

    def open_writer(self) -> SealedWriter:
        """A new (truncating) writer of the plaintext; ``close()`` completes the file."""
        return _CountingWriter(self)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        _STAGING_KEYS.pop(str(self.path), None)


class _CountingWriter(SealedWriter):
    def __init__(self, staged: StagedUpload):
        super().__init__(staged.path, staged.key)
        self._staged = staged
        staged.size_bytes = 0

    def write(self, data) -> int:  # noqa: ANN001 - bytes-like
        n = super().write(data)
        self._staged.size_bytes += n
        return n


def staged_source(path: str | os.PathLike[str]) -> SealedFile | None:
    """The readable view of a staging file made by this process (None if its key is not
    here: another process made it, or it was discarded)."""
    key = _STAGING_KEYS.get(str(path))
    return SealedFile(Path(path), key) if key is not None else None


def forget_staging_key(path: str | os.PathLike[str]) -> None:
    _STAGING_KEYS.pop(str(path), None)


def receive_shared_upload(key: str) -> SealedFile | None:
    """The readable view of a sealed upload that a web host shared through the object store
    (``market.storage.S3Storage.share_staging``): downloaded, still sealed, into this host's
    data folder, and opened with the key unwrapped for this worker (None if that key is not
    here). Raises the storage's errors if the object cannot be fetched."""
    secret = _STAGING_KEYS.pop(key, None)
    if secret is None:
        return None
    local = storage().fetch_staging(key)  # type: ignore[attr-defined]
    _STAGING_KEYS[str(local)] = secret
    return SealedFile(local, secret)


# ----------------------------------------------------------------------------- helpers

_UNSAFE_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')


def safe_filename(raw: str | None, *, max_length: int = 200) -> str:
    """The last path component of ``raw``, without control or shell-special characters.

    The result is only ever stored and displayed, never used as a path: ``../../etc/passwd``
    becomes ``passwd``. Chinese names are kept. Returns ``upload`` if nothing is left.
    """
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_CHARS.sub("", name)
    name = "".join(ch for ch in name if ch.isprintable()).strip().lstrip(".").strip()
    if not name:
        return "upload"
    if len(name) > max_length:
        stem, ext = os.path.splitext(name)
        ext = ext[:16]
        name = stem[: max_length - len(ext)] + ext
    return name


def refusal_reasons(
    open_grade: str, confidential: bool, security_level: str = "general"
) -> list[str]:
    """Why metadata alone refuses an upload (empty list: admissible)."""
    from market.governance import grading

    reasons = []
    if open_grade == OpenGrade.restricted:
        reasons.append(
            N_("open grade 'restricted' (不予开放): restricted data is never listed on the market")
        )
    if confidential:
        reasons.append(
            N_("the data is declared confidential (涉密): only non-confidential data may be opened")
        )
    if not grading.is_operable(security_level):
        reasons.append(grading.CORE_REFUSAL)
    return reasons


def make_slug(dataset_id: int, category: str) -> str:
    """Stable ASCII table name for the sandbox, e.g. ``d7_tax``."""
    clean = re.sub(r"[^a-z0-9_]+", "_", category.lower()).strip("_")[:50]
    return f"d{dataset_id}_{clean}" if clean else f"d{dataset_id}"


def parquet_key(dataset_id: int, version: int) -> str:
    return f"datasets/{dataset_id}/v{version}.parquet"


def max_columns() -> int:
    return int(current_app.config.get("MARKET_MAX_COLUMNS", DEFAULT_MAX_COLUMNS))


def sync_dataset_status(dataset: Dataset) -> None:
    """``listed`` while a version is listed, otherwise the latest version's status; a
    withdrawn dataset stays ``withdrawn`` (``market.datasets.lifecycle``); a dataset delisted
    because its authorization agreement ended stays delisted until a review under a new
    agreement lists it again (or a new agreement covers it)."""
    if dataset.withdrawn_at is not None:
        dataset.status = "withdrawn"
        return
    if dataset.status == "delisted":
        return
    if any(v.status == VersionStatus.listed for v in dataset.versions):
        dataset.status = VersionStatus.listed
    elif dataset.versions:
        dataset.status = dataset.versions[-1].status


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_COPY_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- staging


def new_staging_file(filename: str | None) -> StagedUpload:
    """An empty staging file for an upload about to be streamed (``.partial-…``).

    Never the system temp dir: the data folder is the one place raw data may sit, and the
    job deletes it when done.
    """
    name = safe_filename(filename)
    # Keep a known extension: some readers (openpyxl) check the file's own name.
    ext = Path(name).suffix.lower()
    path = storage().staging_path(UPLOAD_KEY + (ext if ext in _KNOWN_EXTENSIONS else ""))
    path.touch(mode=0o600, exist_ok=False)
    staged = StagedUpload(path, name)
    staged.open_writer().close()  # a complete (empty) sealed file until the upload is written
    return staged


def stage_file(source: str | os.PathLike[str], filename: str | None = None) -> StagedUpload:
    """Copy a local file (CLI, demo) into a staging file; the original is left untouched."""
    src = Path(source)
    staged = new_staging_file(filename or src.name)
    try:
        with open(src, "rb") as fin, staged.open_writer() as fout:
            shutil.copyfileobj(fin, fout, _COPY_BLOCK)
    except BaseException:
        staged.discard()
        raise
    return staged


def write_chunks(staged: StagedUpload, chunks: Iterable[bytes]) -> StagedUpload:
    """Write ``chunks`` as the staging file's whole content (sealed)."""
    with staged.open_writer() as fh:
        for chunk in chunks:
            fh.write(chunk)
    return staged


# ----------------------------------------------------------------------------- prechecks


def first_long_line(path: InputFile, limit: int, *, skip: int = 0) -> int | None:
    """Number of the first physical line longer than ``limit`` bytes, or None.

    The first ``skip`` lines are not checked.
    Splits 1 MiB blocks at C speed rather than reading line by line.
    """
    carry = 0  # length of the line still open at the end of the previous block
    lines_before = 0
    with open_input(path) as fh:
        for block in iter(lambda: fh.read(_COPY_BLOCK), b""):
            lengths = list(map(len, block.split(b"\n")))
            lengths[0] += carry
            if max(lengths) > limit:
                for index, n in enumerate(lengths):
                    if n > limit and lines_before + index + 1 > skip:
                        return lines_before + index + 1
            lines_before += len(lengths) - 1
            carry = lengths[-1]
    return None


def _csv_header_columns(path: InputFile) -> int | None:
    with open_input(path) as fh:
        head = fh.read(HEADER_PROBE_BYTES)
    if not head:
        return None
    line = head.split(b"\n", 1)[0]
    # Comma, tab, semicolon and pipe are ASCII and never GBK/UTF-8 continuation bytes, so
    # counting bytes is safe without decoding. Quoted separators only over-count.
    return max(line.count(sep) for sep in (b",", b"\t", b";", b"|")) + 1


def count_columns(path: InputFile, filename: str) -> int | None:
    """Columns in the upload if cheaply knowable from its header, else None."""
    ext = Path(filename).suffix.lower()
    try:
        if ext in (".csv", ".txt", ".tsv"):
            return _csv_header_columns(path)
        if ext in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            with open_input(path) as fh:
                return pq.read_metadata(fh).num_columns
        if ext in (".xlsx", ".xlsm"):
            import warnings

            from openpyxl import load_workbook

            with warnings.catch_warnings(), open_input(path) as fh:
                warnings.simplefilter("ignore")
                wb = load_workbook(fh, read_only=True)
                try:
                    return wb.worksheets[0].max_column if wb.worksheets else None
                finally:
                    wb.close()
    except Exception:  # noqa: BLE001 - a broken file is the pipeline's to report, by row
        return None
    return None


def _detections_from(columns: Iterable[Mapping[str, Any]]) -> list[Detection]:
    """Detections rebuilt from a report's column descriptions (they hold no values)."""
    out = []
    for c in columns:
        out.append(
            Detection(
                name=c["name"],
                type_info=TypeInfo(c.get("source_type") or c["type"]),
                pii_kind=c.get("pii_kind"),
                share=float(c.get("detection_share") or 0.0),
                embedded=bool(c.get("embedded")),
                hint=c.get("header_hint"),
                sampled=0,
            )
        )
    return out


def _override_error(exc: PipelineError, prefix: str) -> ValidationFailed:
    name = f"{prefix}{exc.column}" if exc.column else prefix.rstrip(".") or "treatments"
    text = pipeline_error_text(exc)
    return ValidationFailed(text, {name: [text]})


def read_limits() -> ReadLimits:
    """The workbook caps (zip bombs) from the configuration."""
    config = current_app.config
    base = ReadLimits()
    return ReadLimits(
        xlsx_max_unpacked_bytes=int(
            config.get("MARKET_XLSX_MAX_UNPACKED_BYTES", base.xlsx_max_unpacked_bytes)
        ),
        xlsx_max_ratio=int(config.get("MARKET_XLSX_MAX_RATIO", base.xlsx_max_ratio)),
        xlsx_max_rows=int(config.get("MARKET_XLSX_MAX_ROWS", base.xlsx_max_rows)),
        xlsx_max_cells=int(config.get("MARKET_XLSX_MAX_CELLS", base.xlsx_max_cells)),
    )


def pipeline_error_text(exc: PipelineError) -> str:
    """The pipeline error's message in the reader's language (its msgid and params)."""
    if not exc.params:
        return translate(exc.msgid)
    return translate(exc.msgid, reasons_text.labelled(exc.params))


def check_upload_workbook(upload: StagedUpload) -> None:
    """Refuse an XLSX zip bomb or DTD before anything parses it.

    Raises TooLarge (413) when the workbook unpacks beyond MARKET_XLSX_MAX_UNPACKED_BYTES or is
    compressed more than MARKET_XLSX_MAX_RATIO to 1; ValidationFailed (422) when its first
    sheet declares more rows or cells than allowed, or for a DTD or a damaged archive.
    """
    limits = read_limits()
    try:
        detect_format(upload.source, upload.filename)
    except PipelineError:
        return  # not a workbook at all: the job records why
    try:
        check_workbook(upload.source, limits)
        _check_declared_size(upload, limits)
    except LimitExceeded as exc:
        text = pipeline_error_text(exc)
        errors = {"file": [text], "limit": [exc.limit]}
        if exc.limit in ("unpacked", "ratio"):
            raise TooLarge(text, errors) from None
        raise ValidationFailed(text, errors) from None
    except PipelineError as exc:
        text = pipeline_error_text(exc)
        raise ValidationFailed(text, {"file": [text]}) from None


def _check_declared_size(upload: StagedUpload, limits: ReadLimits) -> None:
    """The first sheet's ``dimension`` against the row and cell caps (no row is parsed)."""
    import warnings

    from openpyxl import load_workbook

    from market.pipeline.readers import _check_dimension

    try:
        with warnings.catch_warnings(), open_input(upload.source) as fh:
            warnings.simplefilter("ignore")
            wb = load_workbook(fh, read_only=True)
            try:
                if wb.worksheets:
                    sheet = wb.worksheets[0]
                    rows, cols = sheet.max_row, sheet.max_column
                else:
                    rows = cols = None
            finally:
                wb.close()
    except PipelineError:
        raise
    except Exception:  # noqa: BLE001 - a broken workbook is the pipeline's to report, by row
        return
    _check_dimension(rows, cols, limits)


def precheck_upload(
    upload: StagedUpload, *, entity_key: str, treatments: Mapping[str, str]
) -> None:
    """Cheap checks before anything is recorded.

    Raises TooLarge (413) or ValidationFailed (422) for an XLSX zip bomb, a DTD or a sheet
    beyond the row and cell caps (:func:`check_upload_workbook`), before anything parses it.
    Raises ValidationFailed (422) when the header has more columns than MARKET_MAX_COLUMNS,
    when a CSV data line is longer than MARKET_MAX_LINE_BYTES, or when a treatment override
    is not allowed for its column (``never none for a direct identifier``), naming the
    column under ``treatments.<column>``. Other problems of the
    file are left to the job, which records them on the version with the row or column.
    """
    if Path(upload.filename).suffix.lower() in (".xlsx", ".xlsm"):
        check_upload_workbook(upload)
    cap = max_columns()
    ncols = count_columns(upload.source, upload.filename)
    if ncols is not None and ncols > cap:
        raise ValidationFailed(
            _("The file has %(ncols)s columns; at most %(cap)s are accepted.",
              ncols=ncols, cap=cap),
            {"file": [_("the file has %(ncols)s columns; at most %(cap)s are accepted",
                        ncols=ncols, cap=cap)]},
        )
    if Path(upload.filename).suffix.lower() in (".csv", ".txt", ".tsv"):
        # The header is bounded by the column cap; the data lines by the line cap.
        limit = int(current_app.config.get("MARKET_MAX_LINE_BYTES", DEFAULT_MAX_LINE_BYTES))
        long_line = first_long_line(upload.source, limit, skip=1)
        if long_line is not None:
            message = _(
                "line %(line)s is longer than %(limit)s bytes; cells this large are not "
                "accepted (split the text or leave it out)",
                line=long_line,
                limit=limit,
            )
            raise ValidationFailed(message, {"file": [message]})
    if not treatments:
        return
    from market.pipeline import inspect

    try:
        report = inspect(
            upload.source, upload.filename, entity_key=entity_key, limits=read_limits()
        )
    except InvalidEntityKey as exc:
        text = pipeline_error_text(exc)
        raise ValidationFailed(text, {"entity_key": [text]}) from None
    except PipelineError:
        return  # the job will fail with the row or column; the record explains it
    detections = _detections_from(c.to_dict() for c in report.columns)
    try:
        validate_overrides(detections, treatments, entity_key)
    except PipelineError as exc:
        raise _override_error(exc, "treatments.") from None


def inspect_upload(upload: StagedUpload, *, entity_key: str | None) -> dict[str, Any]:
    """Detected types and PII kinds of ``upload``'s first rows, with the default and the
    allowed treatments of each column, so that a department chooses its overrides before
    publishing. Nothing is recorded; the caller discards the file.

    Raises ValidationFailed: the caps of :func:`precheck_upload`, an unknown entity key, or
    the reader's reason (format, encoding, malformed row), which never quotes a value.
    """
    from market.pipeline import inspect

    precheck_upload(upload, entity_key=entity_key or "", treatments={})
    try:
        report = inspect(
            upload.source, upload.filename, entity_key=entity_key or None, limits=read_limits()
        )
    except InvalidEntityKey as exc:
        text = pipeline_error_text(exc)
        raise ValidationFailed(text, {"entity_key": [text]}) from None
    except PipelineError as exc:
        text = pipeline_error_text(exc)
        raise ValidationFailed(text, {"file": [text]}) from None
    return report.to_dict()


# ----------------------------------------------------------------------------- creation


def _new_version(
    dataset: Dataset, actor: Actor, number: int, upload: StagedUpload | None, filename: str
) -> DatasetVersion:
    version = DatasetVersion(
        dataset=dataset,
        version=number,
        status=VersionStatus.processing,
        filename=upload.filename if upload else safe_filename(filename),
        size_bytes=upload.size_bytes if upload else 0,
        progress_done=0,
        progress_total=upload.size_bytes if upload else 0,
        created_by_id=actor.user_id,
    )
    return version


def create_dataset(
    session: Session,
    actor: Actor,
    meta: PublishMeta,
    upload: StagedUpload | None,
    *,
    filename: str | None = None,
) -> DatasetVersion:
    """Record a new dataset and its version 1; returns the version.

    A ``restricted`` or confidential upload is recorded as ``refused`` with reasons (the
    staged file, if any, is deleted at once: nothing of it is kept), audited
    ``dataset.refused``. Otherwise the version is ``processing``, audited ``dataset.uploaded``;
    the caller commits and then calls :func:`start_processing`.

    Raises Forbidden if ``actor`` may not publish, ValidationFailed if there is no file.
    """
    require(perms.can_upload(actor), "Only an active department can publish datasets.")
    reasons = refusal_reasons(meta.open_grade, meta.confidential, meta.security_level)
    if not reasons:
        from market.governance.services import check_grading

        check_grading(meta.open_grade, meta.security_level)
    if reasons and upload is not None:
        upload.discard()
        upload = None
    if not reasons and upload is None:
        raise ValidationFailed(_("Attach the data file."), {"file": [_("missing")]})
    dataset = Dataset(
        slug=f"pending-{os.urandom(8).hex()}",
        department_id=actor.org_id,
        title=meta.title,
        description=meta.description,
        category=meta.category,
        open_grade=meta.open_grade,
        confidential=meta.confidential,
        security_level=meta.security_level,
        update_frequency=meta.update_frequency,
        entity_key=meta.entity_key,
        status=VersionStatus.refused if reasons else VersionStatus.processing,
        cost_collection_fen=meta.costs.collection,
        cost_processing_fen=meta.costs.processing,
        cost_storage_monthly_fen=meta.costs.storage_monthly,
    )
    if meta.k_min is not None:
        dataset.k_min = meta.k_min
    if meta.privacy and meta.open_grade == OpenGrade.conditional:
        privacy.store(dataset, meta.privacy)  # audited with dataset.uploaded below
    if not reasons:
        from market.governance.services import apply_grading_defaults

        apply_grading_defaults(dataset)
    session.add(dataset)
    session.flush()
    dataset.slug = make_slug(dataset.id, meta.category)
    dataset.contributors.append(DatasetContributor(department_id=actor.org_id, weight=1))
    version = _new_version(dataset, actor, 1, upload, filename or "")
    version.treatment_overrides = dict(meta.treatments) or None
    session.add(version)
    if reasons:
        version.status = VersionStatus.refused
        version.refusal_reasons = reasons
        version.processed_at = utcnow()
        session.flush()
        record(
            session,
            "dataset.refused",
            actor,
            ("dataset", dataset.id),
            {
                "version": 1,
                "open_grade": meta.open_grade,
                "confidential": meta.confidential,
                "security_level": meta.security_level,
                "reasons": reasons,
            },
        )
        return version
    session.flush()
    _lease(session, version, upload)
    record(
        session,
        "dataset.uploaded",
        actor,
        ("dataset", dataset.id),
        {
            "version": 1,
            "version_id": version.id,
            "size_bytes": version.size_bytes,
            "category": meta.category,
            "open_grade": meta.open_grade,
            "security_level": meta.security_level,
            "overrides": sorted(meta.treatments),
            "privacy": privacy.effective_privacy(dataset).as_json()  # type: ignore[union-attr]
            if privacy.uses_dp(dataset)
            else None,
        },
    )
    return version


def create_version(
    session: Session,
    actor: Actor,
    dataset: Dataset,
    meta: VersionMeta,
    upload: StagedUpload,
) -> DatasetVersion:
    """Record a new version of ``dataset`` (``processing``), audited ``dataset.uploaded``.

    Updated costs and k_min apply to the dataset at once. Raises NotFound/Forbidden for
    callers other than the owning department, Conflict if the dataset was refused or another
    version is still being processed or reviewed.
    """
    _require_manage(actor, dataset)
    if dataset.status == VersionStatus.refused or dataset.confidential or (
        dataset.open_grade == OpenGrade.restricted
    ):
        raise Conflict(_("A refused dataset cannot get new versions; publish a new dataset."))
    if dataset.withdrawn_at is not None:
        raise Conflict(
            _("A withdrawn dataset cannot get new versions; publish a new dataset."),
            {"status": ["withdrawn"]},  # a status code, not prose
        )
    busy = [
        v.version
        for v in dataset.versions
        if v.status in (VersionStatus.processing, VersionStatus.pending_review)
    ]
    if busy:
        raise Conflict(
            _("Version %(number)s is still being processed or reviewed; wait for its review.",
              number=busy[-1]),
            {"version": [_("version %(number)s is not reviewed yet", number=busy[-1])]},
        )
    number = max((v.version for v in dataset.versions), default=0) + 1
    version = _new_version(dataset, actor, number, upload, upload.filename)
    version.treatment_overrides = dict(meta.treatments) or None
    session.add(version)
    changed: dict[str, Any] = {}
    if meta.costs is not None:
        dataset.cost_collection_fen = meta.costs.collection
        dataset.cost_processing_fen = meta.costs.processing
        dataset.cost_storage_monthly_fen = meta.costs.storage_monthly
        changed["costs"] = {
            "collection": meta.costs.collection,
            "processing": meta.costs.processing,
            "storage_monthly": meta.costs.storage_monthly,
        }
    if meta.k_min is not None:
        dataset.k_min = meta.k_min
        changed["k_min"] = meta.k_min
    session.flush()
    _lease(session, version, upload)
    sync_dataset_status(dataset)
    record(
        session,
        "dataset.uploaded",
        actor,
        ("dataset", dataset.id),
        {
            "version": number,
            "version_id": version.id,
            "size_bytes": version.size_bytes,
            "overrides": sorted(meta.treatments),
            **changed,
        },
    )
    return version


def _lease(session: Session, version: DatasetVersion, upload: StagedUpload | None) -> None:
    """The job's lease, in the transaction that records the version: if this process dies
    before the job ends, the sweeper fails the version and deletes the staged file."""
    from market import leases

    files = [upload.storage_key] if upload is not None else []
    leases.acquire(session, PUBLICATION_LEASE, version.id, files)


def start_processing(version: DatasetVersion, upload: StagedUpload) -> None:
    """Hand the staged upload to the background job (call after the commit).

    From here on the job owns the staged file and deletes it whatever happens. With a queue
    runner and no live worker to take it, the version fails at once with a clear reason (and
    the upload is deleted): nothing would ever be able to read it.
    """
    try:
        jobs.submit(PROCESS_JOB, version.id, str(upload.path))
    except jobs.NoWorker:
        from market.datasets.processing import NO_WORKER, record_failure
        from market.extensions import db

        upload.discard()
        record_failure(db.session, version.id, VersionStatus.failed, [NO_WORKER], "no_worker")


# ----------------------------------------------------------------------------- reading


def get_dataset(session: Session, actor: Actor, dataset_id: int) -> Dataset:
    """The dataset if ``actor`` may read it. Raises NotFound otherwise (unlisted = unknown)."""
    from market.agreements.services import is_lapsed

    dataset = session.get(Dataset, dataset_id)
    if dataset is None or not perms.can_read_dataset(actor, dataset):
        raise NotFound(_("Dataset %(id)s does not exist.", id=dataset_id))
    if not perms.can_see_unlisted(actor, dataset) and is_lapsed(session, dataset):
        # Its authorization agreement ended before the sweeper ran: delisted already.
        raise NotFound(_("Dataset %(id)s does not exist.", id=dataset_id))
    return dataset


def dataset_for_versions(session: Session, actor: Actor, dataset_id: int) -> Dataset:
    """The dataset whose version history ``actor`` asks for.

    Raises NotFound if the caller may not know the dataset exists (unlisted, not its own), and
    Forbidden if it may read the listed dataset but not its history (buyers, other departments).
    """
    dataset = session.get(Dataset, dataset_id)
    if dataset is None or not perms.can_read_dataset(actor, dataset):
        raise NotFound(_("Dataset %(id)s does not exist.", id=dataset_id))
    if not perms.can_view_versions(actor, dataset):
        raise Forbidden(
            _("Only the owning department, the operator and the regulator see versions.")
        )
    return dataset


def get_version(session: Session, actor: Actor, dataset_id: int, number: int) -> DatasetVersion:
    """Version ``number`` of a dataset, for its owner, the operator or the regulator.

    Raises NotFound or Forbidden (see ``dataset_for_versions``), or NotFound if there is no
    such version.
    """
    dataset_for_versions(session, actor, dataset_id)
    version = session.scalar(
        sa.select(DatasetVersion).where(
            DatasetVersion.dataset_id == dataset_id, DatasetVersion.version == number
        )
    )
    if version is None:
        raise NotFound(_("Dataset %(id)s has no version %(number)s.", id=dataset_id, number=number))
    return version


def version_status(version: DatasetVersion) -> dict[str, Any]:
    """``{status, progress: {done, total, percent}, refusal_reasons}`` for polling."""
    from market.datasets.schemas import progress_of

    return {
        "status": version.status,
        "progress": progress_of(version),
        # Reasons are stored as English msgids with params (the job has no reader).
        "refusal_reasons": reasons_text.render_all(version.refusal_reasons),
    }


def _require_manage(actor: Actor, dataset: Dataset) -> None:
    if not perms.can_read_dataset(actor, dataset):
        raise NotFound(_("Dataset %(id)s does not exist.", id=dataset.id))
    require(
        perms.can_manage_versions(actor, dataset),
        "Only the department that owns this dataset can change it.",
    )


# ----------------------------------------------------------------------------- review


def review(
    session: Session, actor: Actor, dataset: Dataset, decision: str, comment: str = ""
) -> DatasetVersion:
    """Approve or reject the version awaiting review; returns it.

    Approve: the version is ``listed`` and becomes the current one, the previously listed
    version is ``superseded``; audited ``dataset.reviewed`` and ``dataset.listed``. Reject:
    ``rejected`` with the comment, its output file deleted; audited ``dataset.reviewed``.

    Raises Forbidden unless ``actor`` is an active operator, ValidationFailed for an unknown
    decision, Conflict if no version is pending review, or (rule ``no_active_agreement``) if no active
    authorization agreement of the department covers the dataset.
    """
    require(perms.can_review(actor), "Only the operator reviews publications.")
    if decision not in ("approve", "reject"):
        raise ValidationFailed(
            _("Decide approve or reject."), {"decision": [_("approve or reject")]}
        )
    pending = [v for v in dataset.versions if v.status == VersionStatus.pending_review]
    if not pending:
        latest = dataset.versions[-1].status if dataset.versions else "none"
        raise Conflict(
            _("Dataset %(id)s has no version pending review (latest: %(status)s).",
              id=dataset.id, status=latest),
            {"status": [_("review is only allowed from pending_review, not %(status)s",
                          status=latest)]},
        )
    version = pending[-1]
    now = utcnow()
    if decision == "approve":
        # 授权运营协议: only data its department has authorized the operator for is listed.
        from market.agreements.services import require_listing_agreement

        require_listing_agreement(session, dataset, now)
    version.reviewed_by_id = actor.user_id
    version.reviewed_at = now
    version.review_comment = comment or None
    previous = dataset.current_version
    if decision == "approve":
        version.status = VersionStatus.listed
        if previous is not None and previous.id != version.id and (
            previous.status == VersionStatus.listed
        ):
            previous.status = VersionStatus.superseded
        dataset.current_version = version
        dataset.listed_at = now
        if dataset.status == "delisted":
            dataset.status = VersionStatus.listed
    else:
        version.status = VersionStatus.rejected
        if version.parquet_path:
            storage().delete(version.parquet_path)
            version.parquet_path = None
    sync_dataset_status(dataset)
    session.flush()
    record(
        session,
        "dataset.reviewed",
        actor,
        ("dataset", dataset.id),
        {"version": version.version, "decision": decision, "comment": comment or ""},
    )
    if decision == "approve":
        record(
            session,
            "dataset.listed",
            actor,
            ("dataset", dataset.id),
            {
                "version": version.version,
                "superseded": previous.version
                if previous is not None and previous.id != version.id
                else None,
                "quality_score": version.quality_score,
            },
        )
        from market.governance.services import issue_certificate

        issue_certificate(session, actor, version, now=now)
    return version


# ----------------------------------------------------------------------------- treatments


def change_treatments(
    session: Session,
    actor: Actor,
    dataset: Dataset,
    number: int,
    changes: Mapping[str, str],
) -> DatasetVersion:
    """Make a processed version's treatments stricter before review; returns the version.

    Every change is first validated as an override would be (``validate_overrides``: never
    ``none`` for a direct identifier, the entity key stays pseudonymized). Then, since the raw
    upload no longer exists, only changes that can be applied to the published output are
    accepted: the same treatment (no-op) or ``suppressed`` (the column is dropped from the
    Parquet). Loosening, or any other stricter treatment, is refused: upload a new version
    with ``metadata.treatments`` instead. Audited ``dataset.treatments_changed``.

    Raises NotFound/Forbidden (not the owner), Conflict unless the version is
    ``pending_review``, ValidationFailed naming the column.
    """
    _require_manage(actor, dataset)
    version = next((v for v in dataset.versions if v.version == number), None)
    if version is None:
        raise NotFound(_("Dataset %(id)s has no version %(number)s.", id=dataset.id, number=number))
    if version.status != VersionStatus.pending_review:
        raise Conflict(
            _("Treatments can only change while the version awaits review."),
            {"status": [_("version %(number)s is %(status)s", number=number,
                          status=version.status)]},
        )
    report_columns = list((version.report or {}).get("columns") or [])
    current = {c["name"]: c["treatment"] for c in report_columns}
    try:
        validate_overrides(
            _detections_from(report_columns), {**current, **changes}, dataset.entity_key
        )
    except PipelineError as exc:
        raise _override_error(exc, "") from None
    drop: list[str] = []
    for column, wanted in changes.items():
        have = current[column]
        if wanted == have:
            continue
        if _STRICTNESS[Treatment(wanted)] < _STRICTNESS[Treatment(have)]:
            message = _(
                "column '%(name)s' is %(have)s; %(wanted)s would loosen it, which needs the raw "
                "file: upload a new version with metadata.treatments",
                name=column,
                have=have,
                wanted=wanted,
            )
            raise ValidationFailed(message, {column: [message]})
        if wanted != Treatment.suppressed:
            message = _(
                "column '%(name)s': %(have)s → %(wanted)s needs the raw file, which is not kept; "
                "after processing a column can only be suppressed (upload a new version with "
                "metadata.treatments to choose another treatment)",
                name=column,
                have=have,
                wanted=wanted,
            )
            raise ValidationFailed(message, {column: [message]})
        drop.append(column)
    if drop:
        from market.datasets.processing import suppress_columns

        suppress_columns(session, version, drop)
        record(
            session,
            "dataset.treatments_changed",
            actor,
            ("dataset", dataset.id),
            {"version": number, "suppressed": sorted(drop)},
        )
    return version


__all__ = [
    "Costs",
    "PublishMeta",
    "StagedUpload",
    "VersionMeta",
    "change_treatments",
    "count_columns",
    "create_dataset",
    "create_version",
    "get_dataset",
    "inspect_upload",
    "get_version",
    "make_slug",
    "new_staging_file",
    "parquet_key",
    "precheck_upload",
    "refusal_reasons",
    "review",
    "safe_filename",
    "sha256_file",
    "stage_file",
    "start_processing",
    "sync_dataset_status",
    "version_status",
    "write_chunks",
]
