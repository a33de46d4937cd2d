"""The publication pipeline: read -> detect -> desensitize -> k-anonymity -> quality -> Parquet.

One pass over the input, one chunk at a time. The first chunk decides the column types and PII
kinds; every chunk is then checked (quality counts), desensitized and appended to the output as
one Parquet row group. The output is written to a temporary name in the output directory and
renamed into place only when everything succeeded; on any failure every partial file is
removed. Raw values never reach the output, a temporary file, a log line or an error message.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from market.i18n import N_

from . import domains, kinds
from . import vectorized as vz
from .columns import (
    ColumnChunk,
    Plan,
    analyse_and_treat,
    consistency_checks,
    counts_repeat,
    distinct_counts,
)
from .desensitize import Pseudonymizer, coarsen, hash64, levels_for
from .detect import Detection, detect_column
from .errors import KAnonymityTooLow, PipelineError
from .kanon import GroupCounter, QuasiIdentifier, choose_step
from .quality import QualityAccumulator
from .readers import DEFAULT_LIMITS, Chunk, ReadLimits, Source, open_source
from .report import ColumnInspection, ColumnReport, InspectReport, Note, PipelineReport, note
from .schema import infer
from .sealed import InputFile
from .treatments import allowed_treatments, check_entity_key, default_treatment, validate_overrides

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
COMPRESSION = "zstd"
#: In the first chunk, a share of repeated keys above this means the key is not unique.
KEY_REPEAT_SHARE = 0.05
#: Threads that process the columns of a chunk (Arrow, numpy and DuckDB release the GIL).
WORKERS = 2
#: False-positive rate of the entity key's Parquet Bloom filters (one per row group), which
#: let a consented lookup skip the row groups that cannot hold the enterprise.
KEY_BLOOM_FPP = 0.01


def use_jemalloc() -> bool:
    """Make jemalloc Arrow's allocator in this process, if this pyarrow has it (once).

    The pipeline allocates and frees a chunk's worth of column buffers per chunk. With Arrow's
    default allocator (mimalloc) much of that memory goes back to the OS between chunks and
    is faulted in again, zeroed by the kernel, for the next: at 1M rows that page traffic was
    about a tenth of the run's CPU (docs/benchmarks.md, issue #17). jemalloc keeps freed pages
    for reuse a little longer. Only the allocator changes, never a value; it is the
    process-wide default pool (`pyarrow.set_memory_pool`), so it is set before any
    pipeline allocation and never switched back.
    """
    global _JEMALLOC
    if _JEMALLOC is None:
        try:
            pa.set_memory_pool(pa.jemalloc_memory_pool())
            _JEMALLOC = True
        except NotImplementedError:
            # pyarrow's wheels for some platforms are built without jemalloc: Arrow's
            # default allocator stays, the pipeline is only slower (same output).
            _JEMALLOC = False
    return _JEMALLOC


_JEMALLOC: bool | None = None


def _now(now: dt.datetime | None) -> dt.datetime:
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(dt.UTC).replace(tzinfo=None) if now.tzinfo else now


def _first_chunk(source: Source) -> tuple[Chunk, object]:
    chunks = source.chunks()
    first = next(chunks, None)
    if first is None:
        raise PipelineError(N_("the file has no data rows"), row=2)
    return first, chunks


def _detect(first: Chunk, today: dt.date) -> list[Detection]:
    out = []
    for name in first.table.column_names:
        raw = first.table.column(name)
        text = vz.trim(vz.as_string(raw))
        native = (
            raw.type
            if not pa.types.is_string(raw.type) and not pa.types.is_large_string(raw.type)
            else None
        )
        out.append(detect_column(name, text, infer(name, text, native), today))
    return out


def inspect(
    source_path: InputFile,
    filename: str,
    *,
    entity_key: str | None = None,
    chunk_rows: int = 200_000,
    now: dt.datetime | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> InspectReport:
    """Detect types and PII kinds and propose treatments, without writing anything.

    Reads only the first chunk. Raises the reader errors (UnsupportedFormat, EncodingError,
    MalformedFile), InvalidEntityKey, or PipelineError for a file without data rows.
    """
    today = _now(now).date()
    with open_source(source_path, filename, chunk_rows=chunk_rows, limits=limits) as source:
        first, chunks = _first_chunk(source)
        detections = _detect(first, today)
        chunks.close()  # type: ignore[attr-defined]
    check_entity_key(detections, entity_key)
    columns = [
        ColumnInspection(
            name=d.name,
            type=d.type,
            pii_kind=d.pii_kind,
            embedded=d.embedded,
            detection_share=round(d.share, 4),
            header_hint=d.hint,
            default_treatment=default_treatment(d, is_entity_key=d.name == entity_key),
            allowed_treatments=allowed_treatments(d, is_entity_key=d.name == entity_key),
        )
        for d in detections
    ]
    return InspectReport(
        source.format, source.encoding, columns, first.table.num_rows, list(source.warnings)
    )


def run_pipeline(
    source_path: InputFile,
    *,
    filename: str,
    out_path: str | os.PathLike[str],
    key: bytes,
    entity_key: str | None,
    update_frequency: str | None,
    overrides: Mapping[str, str] | None = None,
    k_min: int = 5,
    chunk_rows: int = 200_000,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
    key_unique: bool | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> PipelineReport:
    """Publish ``source_path`` (uploaded as ``filename``) as desensitized Parquet at ``out_path``.

    ``key`` is the platform pseudonym key. ``key_unique`` says whether the entity key should
    be unique (None: decided from the first chunk). ``progress(done, total)`` is called after
    every chunk, in bytes for CSV and rows otherwise.

    ``source_path`` may be a :class:`~market.pipeline.sealed.SealedFile` (an encrypted staging
    file). ``limits`` caps workbooks (zip bombs). NUL bytes in text cells are removed and
    reported as warnings.

    Raises UnsupportedFormat, EncodingError, MalformedFile, LimitExceeded, InvalidEntityKey,
    InvalidOverride, KAnonymityTooLow or PipelineError; in every case no output file is left
    behind.
    """
    if not key:
        raise ValueError("the pseudonym key is empty")
    use_jemalloc()
    if k_min < 1 or chunk_rows < 1:
        raise ValueError("k_min and chunk_rows must be at least 1")
    if update_frequency is not None and update_frequency not in kinds.UPDATE_FREQUENCY_DAYS:
        raise PipelineError(
            N_("unknown update frequency '%(value)s'; use one of %(allowed)s"),
            value=str(update_frequency),
            allowed=", ".join(kinds.UPDATE_FREQUENCY_DAYS),
        )
    request = _Request(
        source_path=source_path if not isinstance(source_path, str) else Path(source_path),
        filename=filename,
        out_path=Path(out_path),
        entity_key=entity_key,
        update_frequency=update_frequency,
        overrides=dict(overrides or {}),
        k_min=k_min,
        chunk_rows=chunk_rows,
        key_unique=key_unique,
        limits=limits,
    )
    request.out_path.parent.mkdir(parents=True, exist_ok=True)
    temps: list[Path] = []
    con = duckdb.connect(":memory:")
    try:
        report = _Job(con, key, _now(now), progress).run(request, temps)
        os.replace(temps[-1], request.out_path)
        report.output_bytes = request.out_path.stat().st_size
        logger.info(
            "published %d rows, %d columns, quality %.1f, k=%s",
            report.row_count,
            len(report.columns),
            report.quality["score"],
            report.k_anonymity,
        )
        return report
    except BaseException:
        for path in temps:
            path.unlink(missing_ok=True)
        raise
    finally:
        con.close()


@dataclass(frozen=True)
class _Request:
    source_path: InputFile
    filename: str
    out_path: Path
    entity_key: str | None
    update_frequency: str | None
    overrides: dict[str, str]
    k_min: int
    chunk_rows: int
    key_unique: bool | None
    limits: ReadLimits = DEFAULT_LIMITS


def _temp(out_path: Path, temps: list[Path]) -> Path:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".part")
    os.close(fd)
    temps.append(Path(name))
    return Path(name)


class _Job:
    """One run of the pipeline: the state accumulated over the chunks."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        key: bytes,
        now: dt.datetime,
        progress: Progress | None,
    ):
        self.con = con
        self.pseudonyms = Pseudonymizer(key)
        self.now = now
        self.today = now.date()
        self.progress = progress
        self.warnings: list[Note] = []

    def run(self, req: _Request, temps: list[Path]) -> PipelineReport:
        self.k_min = req.k_min
        entity_key = req.entity_key
        with open_source(
            req.source_path, req.filename, chunk_rows=req.chunk_rows, limits=req.limits
        ) as source:
            self.warnings.extend(source.warnings)
            logger.info(
                "pipeline: %s file, encoding %s, %d columns",
                source.format,
                source.encoding,
                len(source.columns),
            )
            first, chunks = _first_chunk(source)
            detections = _detect(first, self.today)
            treatments = validate_overrides(detections, req.overrides, entity_key)
            plans = [Plan(d, treatments[d.name], d.name == entity_key) for d in detections]
            self._note_detections(plans)
            key_plan = next((p for p in plans if p.is_key), None)
            # PII columns whose values repeat (codes, genders, birth dates) are analysed once
            # per distinct value; the first chunk decides.
            counts = {
                p.name: distinct_counts(vz.trim(vz.as_string(first.table.column(p.name))))
                for p in plans
                if p.kind is not None and not p.det.embedded
            }
            self.distinct = {
                p.name: p.name in counts and counts_repeat(*counts[p.name]) for p in plans
            }
            for name, (distinct, present) in counts.items():
                if present:
                    self.pseudonyms.expect_distinct(name, distinct / present)
            check_key = self._key_unique(first, key_plan, req.key_unique)
            self.quality = QualityAccumulator(
                [p.name for p in plans],
                now=self.now,
                update_frequency=req.update_frequency,
                check_key=check_key,
            )
            self.qis = [
                QuasiIdentifier(p.name, p.kind, p.coarsenable) for p in plans if p.quasi_identifier
            ]
            self.groups = GroupCounter(self.qis)
            self.failed = {p.name: 0 for p in plans}
            self.truncated = {p.name: 0 for p in plans}
            schema = self._schema(plans)
            # Parquet tries a dictionary for every column and gives up on the mostly distinct
            # ones (IDs, their pseudonyms and masks) only after building 1 MB of it.
            plain = {
                p.name
                for p in plans
                if p.name in counts
                and counts[p.name][1]
                and not self.distinct[p.name]
                and p.treatment != kinds.GENERALIZED
            }
            self.write_options = self._write_options(
                key_plan, req.chunk_rows, [f.name for f in schema if f.name not in plain]
            )
            temp = _temp(req.out_path, temps)
            rows = 0
            # One I/O thread reads the next chunk and writes the previous one while this thread
            # processes the current one; at most three chunks are in memory at a time.
            with (
                pq.ParquetWriter(temp, schema, **self.write_options) as writer,
                ThreadPoolExecutor(1, thread_name_prefix="pipeline-io") as io,
                ThreadPoolExecutor(WORKERS, thread_name_prefix="pipeline") as pool,
            ):
                chunk: Chunk | None = first
                written: Future[None] | None = None
                while chunk is not None:
                    upcoming = io.submit(next, chunks, None)
                    table = self._chunk(chunk, plans, key_plan, schema, pool)
                    if written is not None:
                        written.result()
                    written = io.submit(writer.write_table, table, max(1, table.num_rows))
                    rows += chunk.table.num_rows
                    if self.progress is not None:
                        done = source.position()
                        self.progress(done, max(done, source.total))
                    chunk = upcoming.result()
                if written is not None:
                    written.result()
        if self.progress is not None:
            final = max(source.total, source.position())
            self.progress(final, final)
        step, k = choose_step(self.groups, self.k_min)
        names = [q.column for q in self.qis]
        if k is not None and k < self.k_min:
            raise KAnonymityTooLow(
                N_("k-anonymity is %(k)s on the quasi-identifiers %(columns)s even at the "
                   "coarsest generalization, below the required %(k_min)s: suppress or drop "
                   "one of these columns"),
                k=k,
                k_min=self.k_min,
                quasi_identifiers=names,
                columns=", ".join(names),
            )
        if step:
            self._coarsen(temps, req.out_path, step, req.chunk_rows)
        quality = self.quality.result()
        columns = self._column_reports(plans, step, rows)
        return PipelineReport(
            format=source.format,
            encoding=source.encoding,
            row_count=rows,
            columns=columns,
            quality=quality.to_dict(),
            k_anonymity=k,
            k_min=self.k_min,
            quasi_identifiers=names,
            generalization_step=step,
            entity_key=entity_key,
            key_unique=check_key if entity_key else None,
            warnings=self.warnings + self._parse_warnings() + _nul_warnings(source),
        )

    # ------------------------------------------------------------------ set-up

    def _note_detections(self, plans: list[Plan]) -> None:
        for p in plans:
            d = p.det
            if d.hint and d.pii_kind is None:
                self.warnings.append(note(
                    N_("column '%(name)s': the header suggests %(pii_kind)s but the values do "
                       "not look like it; it is published without treatment"),
                    name=d.name, pii_kind=d.hint,
                ))
            if d.pii_kind is not None and p.treatment == kinds.NONE and d.pii_kind != kinds.GENDER:
                self.warnings.append(note(
                    N_("column '%(name)s' holds %(pii_kind)s values and is published without "
                       "treatment, as the department chose"),
                    name=d.name, pii_kind=d.pii_kind,
                ))

    def _key_unique(self, first: Chunk, plan: Plan | None, declared: bool | None) -> bool:
        if plan is None:
            return False
        if declared is not None:
            return declared
        norm = vz.normalize(plan.kind, first.table.column(plan.name))
        present = norm.drop_null()
        if len(present) == 0:
            return False
        repeated = 1 - len(pc.unique(present)) / len(present)
        if repeated > KEY_REPEAT_SHARE:
            self.warnings.append(note(
                N_("entity key '%(name)s' repeats (%(percent)s%% of the first rows), so it is "
                   "treated as not unique; declare key_unique to change this"),
                name=plan.name, percent=round(100 * repeated),
            ))
            return False
        return True

    @staticmethod
    def _write_options(key_plan: Plan | None, chunk_rows: int, dictionary: list[str]) -> dict:
        options: dict = {"compression": COMPRESSION, "use_dictionary": dictionary}
        if key_plan is not None and key_plan.published:
            options["bloom_filter_options"] = {
                key_plan.name: {"ndv": max(1, chunk_rows), "fpp": KEY_BLOOM_FPP}
            }
        return options

    def _schema(self, plans: list[Plan]) -> pa.Schema:
        fields = [
            pa.field(p.name, p.out_type.arrow_type)
            for p in plans
            if p.treatment != kinds.SUPPRESSED
        ]
        meta = {
            "columns": [
                {"name": p.name, "pii_kind": p.kind, "treatment": p.treatment}
                for p in plans
                if p.treatment != kinds.SUPPRESSED
            ]
        }
        return pa.schema(fields, metadata={"market.pipeline": json.dumps(meta, ensure_ascii=False)})

    # ------------------------------------------------------------------ per chunk

    def _chunk(
        self,
        chunk: Chunk,
        plans: list[Plan],
        key_plan: Plan | None,
        schema: pa.Schema,
        pool: ThreadPoolExecutor,
    ) -> pa.Table:
        last = chunk.first_row + chunk.table.num_rows - 1
        try:
            return self._process(chunk.table, plans, key_plan, schema, pool)
        except PipelineError:
            raise
        except (pa.ArrowException, ValueError, TypeError, duckdb.Error) as exc:
            failure = type(exc).__name__  # the message may quote a value: not kept
        raise PipelineError(
            N_("processing failed in rows %(first)s-%(last)s (%(failure)s)"),
            row=chunk.first_row,
            first=chunk.first_row,
            last=last,
            failure=failure,
        )

    def _process(
        self,
        table: pa.Table,
        plans: list[Plan],
        key_plan: Plan | None,
        schema: pa.Schema,
        pool: ThreadPoolExecutor,
    ) -> pa.Table:
        q = self.quality

        def column(p: Plan) -> tuple[ColumnChunk, pa.Array | None]:
            return analyse_and_treat(
                p, table.column(p.name), self.today, self.pseudonyms, distinct=self.distinct[p.name]
            )

        # The slowest columns (pseudonyms) first, so that the threads finish together.
        order = sorted(plans, key=lambda p: p.treatment != kinds.PSEUDONYMIZED)
        futures = {p.name: pool.submit(column, p) for p in order}
        row_hashes = pool.submit(hash64, self.con, table)
        results = {name: f.result() for name, f in futures.items()}
        cols = {name: r[0] for name, r in results.items()}
        q.add_rows(table.num_rows)
        q.row_hashes.add(row_hashes.result())
        for p in plans:
            col = cols[p.name]
            q.add_column(
                p.name,
                non_null=col.present,
                checked=col.present if col.checked else 0,
                valid=int(col.valid.sum()) if col.checked else 0,
            )
            self.failed[p.name] += col.failed
            self.truncated[p.name] += col.truncated
            if col.dates is not None and p.kind != kinds.RESIDENT_ID:
                role = domains.date_role(p.name)
                q.add_dates(
                    col.dates,
                    timely=p.kind is None and role == domains.EVENT,
                    as_of=p.kind is None and role == domains.AS_OF,
                    column=p.name,
                )
            elif p.kind is None and domains.date_role(p.name) == domains.AS_OF:
                q.add_as_of(domains.latest_period_end(col.text, self.today))
            for rule, (made, passed) in domains.domain_checks(
                p.name, p.out_type.type, col.text, col.typed
            ).items():
                q.add_accuracy(rule, made, passed, p.name)
        for rule, (made, passed) in consistency_checks(plans, cols).items():
            q.add_check(rule, made, passed)
        if key_plan is not None and q.check_key:
            key_norm = cols[key_plan.name].norm
            hashes = hash64(self.con, pa.table({"k": key_norm}))
            q.key_hashes.add(hashes[vz.to_bool(pc.is_valid(key_norm))])
        out = pa.Table.from_arrays([results[f.name][1] for f in schema], schema=schema)
        self.groups.add(out)
        return out

    # ------------------------------------------------------------------ finishing

    def _coarsen(self, temps: list[Path], out_path: Path, step: int, chunk_rows: int) -> None:
        """Rewrite the (already desensitized) output with coarser generalized columns."""
        source = temps[-1]
        target = _temp(out_path, temps)
        levels = {q.column: (q.kind, min(step, q.max_level)) for q in self.qis if q.generalized}
        pf = pq.ParquetFile(source)
        with pq.ParquetWriter(target, pf.schema_arrow, **self.write_options) as writer:
            for batch in pf.iter_batches(batch_size=chunk_rows):
                arrays = [
                    coarsen(levels[name][0], batch.column(name), levels[name][1])
                    if name in levels
                    else batch.column(name)
                    for name in batch.schema.names
                ]
                writer.write_table(pa.Table.from_arrays(arrays, schema=pf.schema_arrow))
        pf.close()
        source.unlink()
        temps.remove(source)
        # One warning per column, so that each level is a code the reader's language names.
        for name, (kind, level) in levels.items():
            self.warnings.append(note(
                N_("k-anonymity below %(k_min)s at the default generalization: column "
                   "'%(name)s' was generalized further, to %(generalization)s"),
                k_min=self.k_min, name=name, generalization=levels_for(kind)[level],
            ))

    def _column_reports(self, plans: list[Plan], step: int, rows: int) -> list[ColumnReport]:
        reports = []
        for p in plans:
            cq = self.quality.columns[p.name]
            generalization = None
            if p.treatment == kinds.GENERALIZED:
                level = min(step, len(levels_for(p.kind)) - 1) if p.coarsenable else 0
                generalization = levels_for(p.kind)[level]
            reports.append(
                ColumnReport(
                    name=p.name,
                    type=p.out_type.type,
                    pii_kind=p.kind,
                    treatment=p.treatment,
                    output_name=None if p.treatment == kinds.SUPPRESSED else p.name,
                    source_type=p.det.type,
                    quasi_identifier=p.quasi_identifier,
                    embedded=p.det.embedded,
                    generalization=generalization,
                    detection_share=round(p.det.share, 4),
                    completeness=round(100 * cq.non_null / rows, 2) if rows else 100.0,
                    validity=round(100 * cq.valid / cq.checked, 2) if cq.checked else None,
                )
            )
        return reports

    def _parse_warnings(self) -> list[Note]:
        out = []
        for name, count in self.failed.items():
            if count:
                out.append(note(
                    N_("column '%(name)s': %(count)s values do not parse as its type and are "
                       "published as null"),
                    name=name, count=count,
                ))
        for name, count in self.truncated.items():
            if count:
                out.append(note(
                    N_("column '%(name)s': %(count)s decimals had more digits than the column's "
                       "scale and were truncated"),
                    name=name, count=count,
                ))
        return out


def _nul_warnings(source: Source) -> list[Note]:
    return [
        note(N_("column %(name)r: NUL bytes were removed from %(count)s values"),
             name=name, count=count)
        for name, count in source.nul_cells.items()
    ]
