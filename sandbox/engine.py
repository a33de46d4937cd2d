"""Query engines behind a small interface; DuckDB is the one implemented.

The engine is the second line of defence: it assumes the SQL it runs may be hostile (a policy
bug) and still allows reading only the licensed columns of the given files, within memory,
temp-space and time limits. Another engine (Trino, Spark SQL through sqlglot transpilation)
implements `Engine.run` for a `CheckedQuery` without touching the policy.

`DuckDBEngine` runs queries in a small pool of worker processes (forkserver, never a fork of a
threaded web process). DuckDB's own `max_execution_time` stops most slow queries; a worker
that does not answer within the timeout plus a grace period is killed (SIGKILL) and replaced,
because some DuckDB operations cannot be interrupted.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import sqlgen
from .errors import EngineError, QueryTimeout, ResourceLimit
from .query import (
    ENTITY_HASH_COLUMN,
    PIVOT_INDEX,
    ROLLUP_COUNT_PREFIX,
    ROLLUP_ROWS,
    ROLLUP_SUM_PREFIX,
    CheckedQuery,
    RollupPlan,
    pivot_column,
)

# Version of the projection file layout. 2: rows ordered by the entity-key hash, so that the
# per-entity aggregation of the DP path reads each entity's rows together (~2-3x faster
# GROUP BY entity and join on the entity hash than the unordered file). 3: with the per-entity
# rollup next to it (`Rollup`). 4: the rollup records its entity-constant dimensions. 5: with
# the rollup's per-entity pivot (`Pivot`).
PROJECTION_LAYOUT = 5


@dataclass(frozen=True)
class EngineResult:
    """Engine output: `columns` as the engine named them (hidden ones included), at most
    `row_cap` rows, and whether more rows existed."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    truncated: bool = False
    elapsed_ms: float = 0.0
    rollup: bool = False  # answered from the per-entity rollup (`CheckedQuery.rollup`)
    pivot: bool = False  # ... from its per-entity pivot (`Pivot`)


class Engine(Protocol):
    def run(
        self,
        query: CheckedQuery,
        tables: Mapping[str, str],
        *,
        timeout_s: float,
        row_cap: int | None = None,
    ) -> EngineResult:
        """Run `query` with `tables` mapping each slug to its Parquet file.

        Raises QueryTimeout, ResourceLimit or EngineError (generic messages only).
        """
        ...


@dataclass(frozen=True)
class Pivot:
    """The per-entity pivot of a rollup (`sandbox._worker.build_pivot`): one row per entity,
    its constant dimensions, and its cells side by side, one set of columns per combination
    of the `varying` dimensions (numbered in the `combinations` file)."""

    path: str
    combinations: str
    varying: tuple[str, ...]
    count: int

    def columns(self, rollup: Rollup) -> list[str]:
        cells = rollup.cell_columns()
        cols = [ENTITY_HASH_COLUMN, *rollup.constant]
        return cols + [pivot_column(c, j) for j in range(self.count) for c in cells]


@dataclass(frozen=True)
class Rollup:
    """The per-entity rollup of a projection (`sandbox._worker.build_rollup`): one row per
    (entity hash, values of `dimensions`) with the cell's row count and, per measure, its
    non-NULL count and exact SUM. It holds only aggregates of the licensed columns of the
    projection it comes from, lives next to it and is only ever read by the engine."""

    path: str
    dimensions: tuple[str, ...]
    measures: tuple[str, ...]
    constant: tuple[str, ...] = ()  # dimensions with one value per entity
    pivot: Pivot | None = None

    def files(self) -> list[str]:
        extra = [self.pivot.path, self.pivot.combinations] if self.pivot is not None else []
        return [self.path, *extra]

    def sql_for(self, plan: RollupPlan) -> str:
        """The plan's SQL for this rollup: without the group choice if every key is constant
        per entity here (each entity is then in one group only)."""
        if plan.constant_sql is not None and set(plan.key_dimensions) <= set(self.constant):
            return plan.constant_sql
        return plan.sql

    def cell_columns(self) -> list[str]:
        """A cell's values: its row count, then each measure's non-NULL count and SUM."""
        cols = [ROLLUP_ROWS]
        for m in self.measures:
            cols += [ROLLUP_COUNT_PREFIX + m, ROLLUP_SUM_PREFIX + m]
        return cols

    def columns(self) -> list[str]:
        return [ENTITY_HASH_COLUMN, *self.dimensions, *self.cell_columns()]

    def covers(self, plan: RollupPlan) -> bool:
        return set(plan.dimensions) <= set(self.dimensions) and set(plan.measures) <= set(
            self.measures
        )


@dataclass(frozen=True)
class PreparedFile:
    """A data file made ready for queries (see DuckDBEngine.prepare)."""

    path: str  # the file the view reads (a projection, or the original)
    max_rows: int | None  # most rows any one entity has in the file
    stored_hash: bool  # the file has the entity-hash column (projections do)
    rollup: Rollup | None = None  # with a projection directory and rollups on


class _Worker:
    def __init__(self, ctx: Any, temp_root: str, settings: dict[str, Any]) -> None:
        from . import _worker

        self.workdir = tempfile.mkdtemp(prefix="sbx-worker-", dir=temp_root)
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(
            target=_worker.main,
            args=(child, self.workdir, settings),
            daemon=True,
            name="sandbox-duckdb",
        )
        self.proc.start()
        child.close()

    def alive(self) -> bool:
        return self.proc.is_alive()

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    def call(self, job: dict[str, Any], wait_s: float) -> tuple:
        """Send one job and wait for its reply. Raises QueryTimeout, EngineError."""
        try:
            self.conn.send(job)
            if not self.conn.poll(wait_s):
                raise QueryTimeout()
            return self.conn.recv()
        except (EOFError, OSError) as exc:
            raise EngineError("the query engine stopped unexpectedly", kind="crash") from exc

    def stop(self, *, kill: bool) -> None:
        if not kill and self.proc.is_alive():
            try:
                self.conn.send(None)
                self.proc.join(timeout=2)
            except (OSError, ValueError):
                pass
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=5)
        self.conn.close()
        self.proc.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _stop_all(workers: set[_Worker]) -> None:
    for w in list(workers):
        try:
            w.stop(kill=True)
        except Exception:  # noqa: BLE001, S110 - best effort at shutdown
            pass
    workers.clear()


class DuckDBEngine:
    """Hardened DuckDB in a pool of `workers` processes.

    - `threads`, `memory_limit`, `max_temp_size`: per-query DuckDB limits.
    - `temp_dir`: where worker directories (empty database file, spill space) are created.
    - `projection_dir`: if set (recommended), each data file is copied once per licensed
      column set into a file holding only those columns, the entity key and a 64-bit hash of
      it, its rows ordered by that hash. Then even a policy bypass cannot read unlicensed
      columns, and the per-entity bounding reads 8-byte hashes instead of pseudonym strings,
      each entity's rows together (cache-local GROUP BY entity and join). Without it the views still expose
      only licensed columns, but a raw read_parquet() of the allowed file would see all of
      them, and the hash is computed per query.
    - `kill_grace_s`: how long after the timeout a silent worker is killed.
    - `soft_timeout`: also set DuckDB's max_execution_time (stops most queries without a
      kill); False relies on the kill alone.
    - `rollups` (with a projection directory): next to each projection, build once a
      per-entity rollup (`Rollup`) and answer the aggregate queries it covers from it
      (`CheckedQuery.rollup`: the same bounding and the same numbers, over fewer rows).
    """

    def __init__(
        self,
        *,
        threads: int = 2,
        memory_limit: str = "1GB",
        temp_dir: str | os.PathLike[str] | None = None,
        max_temp_size: str = "2GB",
        workers: int = 1,
        projection_dir: str | os.PathLike[str] | None = None,
        kill_grace_s: float = 0.5,
        prepare_timeout_s: float = 600.0,
        soft_timeout: bool = True,
        start_method: str = "forkserver",
        rollups: bool = True,
    ) -> None:
        if workers < 1 or threads < 1:
            raise ValueError("workers and threads must be >= 1")
        self._settings = {
            "threads": threads,
            "memory_limit": memory_limit,
            "max_temp_size": max_temp_size,
        }
        self._temp_root = str(temp_dir) if temp_dir is not None else tempfile.gettempdir()
        self._projection_dir = Path(projection_dir) if projection_dir is not None else None
        self._kill_grace_s = kill_grace_s
        self._soft_timeout = soft_timeout
        self._prepare_timeout_s = prepare_timeout_s
        self._rollups = rollups and projection_dir is not None
        self._ctx = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            # Workers fork from a server that has imported DuckDB once: fast replacement.
            self._ctx.set_forkserver_preload(["sandbox._worker"])
        self._slots = threading.BoundedSemaphore(workers)
        self._size = workers
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._prepared: dict[tuple, PreparedFile] = {}
        self._prepare_locks: dict[tuple, threading.Lock] = {}
        self._closed = False
        self._finalizer = weakref.finalize(self, _stop_all, self._all)

    # -- pool -------------------------------------------------------------------------------

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring and tests)."""
        with self._lock:
            return sorted(w.pid for w in self._all if w.pid is not None)

    def start(self) -> DuckDBEngine:
        """Start every worker now instead of on first use."""
        with self._lock:
            while len(self._all) < self._size:
                self._spawn_locked()
        return self

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._idle = list(self._all), []
            self._all.clear()
        for w in workers:
            w.stop(kill=False)

    def __enter__(self) -> DuckDBEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn_locked(self) -> _Worker:
        w = _Worker(self._ctx, self._temp_root, self._settings)
        self._all.add(w)
        self._idle.append(w)
        return w

    def _acquire(self, wait_s: float) -> _Worker:
        if self._closed:
            raise EngineError("the query engine is closed", kind="closed")
        if not self._slots.acquire(timeout=wait_s):
            raise ResourceLimit("the sandbox is busy; try again shortly")
        try:
            with self._lock:
                while self._idle:
                    w = self._idle.pop()
                    if w.alive():
                        return w
                    self._all.discard(w)
                    w.stop(kill=True)
                w = self._spawn_locked()
                self._idle.remove(w)
                return w
        except BaseException:
            self._slots.release()
            raise

    def _release(self, w: _Worker, *, broken: bool) -> None:
        with self._lock:
            if broken or self._closed:
                self._all.discard(w)
            else:
                self._idle.append(w)
        if broken:
            w.stop(kill=True)
            with self._lock:
                if not self._closed:
                    self._spawn_locked()  # replace at once so the next query finds a worker
        self._slots.release()

    def _call(self, job: dict[str, Any], timeout_s: float) -> tuple:
        w = self._acquire(timeout_s)
        broken = True
        try:
            reply = w.call(job, timeout_s + self._kill_grace_s)
            broken = False
            return reply
        finally:
            self._release(w, broken=broken)

    # -- queries ----------------------------------------------------------------------------

    def run(
        self,
        query: CheckedQuery,
        tables: Mapping[str, str],
        *,
        timeout_s: float = 10.0,
        row_cap: int | None = None,
    ) -> EngineResult:
        """Run a checked query. `tables` maps each slug the query uses to its Parquet file.

        Raises QueryTimeout, ResourceLimit, EngineError.
        """
        views: list[tuple[str, str, list[str], str, bool]] = []
        entity_rows: dict[str, int | None] = {}
        for view in query.views:
            path = tables.get(view.slug)
            if path is None:
                raise EngineError("a table of the query has no data file", kind="config")
            prepared = self.prepare(path, view.columns, view.entity_key)
            views.append(
                (
                    view.slug,
                    prepared.path,
                    list(view.columns),
                    view.entity_key,
                    prepared.stored_hash,
                )
            )
            entity_rows[view.slug] = prepared.max_rows
        cap = query.engine_row_cap if row_cap is None else min(row_cap, query.engine_row_cap)
        plan = query.rollup
        if (
            self._rollups
            and plan is not None
            and len(query.views) == 1
            and query.views[0].slug == plan.slug
        ):
            rollup = self.prepare(
                tables[plan.slug], query.views[0].columns, query.views[0].entity_key
            ).rollup
            if rollup is not None and rollup.covers(plan):
                pivoted = self._run_pivot(plan, rollup, entity_rows, timeout_s, cap)
                if pivoted is not None:
                    return pivoted
                spec = [(plan.slug, rollup.path, rollup.columns(), "", False)]
                result = self._run(rollup.sql_for(plan), spec, entity_rows, timeout_s, cap)
                return EngineResult(
                    result.columns, result.rows, result.truncated, result.elapsed_ms, True
                )
        return self._run(query.engine_sql, views, entity_rows, timeout_s, cap)

    def _run_pivot(
        self,
        plan: RollupPlan,
        rollup: Rollup,
        entity_rows: Mapping[str, int | None],
        timeout_s: float,
        cap: int,
    ) -> EngineResult | None:
        """The rollup question over the rollup's per-entity pivot, or None if it cannot be
        (`sqlgen.pivot_terms`): first which combinations of the varying dimensions pass the
        WHERE (a query over the few combinations), then the question over one row per entity.
        The same rows as the rollup SQL (tests/sandbox/test_sandbox_rollup.py)."""
        pivot = rollup.pivot
        if pivot is None or plan.pivot is None:
            return None
        terms = sqlgen.pivot_terms(plan.pivot, plan.key_dimensions, rollup.constant)
        if terms is None:
            return None
        on_entity, on_combination = terms
        template = sqlgen.pivot_template(plan.pivot, plan.slug, on_entity, pivot.count)
        spec = [(plan.slug, pivot.path, pivot.columns(rollup), "", False)]
        if on_combination:
            # One job: the worker first runs the mask over the combinations, then fills it in.
            combinations = [PIVOT_INDEX, *pivot.varying]
            spec.append((sqlgen.PIVOT_COMBINATIONS, pivot.combinations, combinations, "", False))
            mask = sqlgen.pivot_mask_sql(plan.slug, on_combination)
            result = self._run(template, spec, entity_rows, timeout_s, cap, mask=mask)
        else:
            sql = sqlgen.fill_pivot(template, range(pivot.count))
            result = self._run(sql, spec, entity_rows, timeout_s, cap)
        return EngineResult(
            result.columns, result.rows, result.truncated, result.elapsed_ms, True, True
        )

    def run_sql(
        self,
        sql: str,
        views: Mapping[str, tuple[str, Sequence[str]]],
        *,
        timeout_s: float = 10.0,
        row_cap: int = 1000,
        entity_rows: Mapping[str, int | None] | None = None,
    ) -> EngineResult:
        """Run raw SQL in the locked-down engine; `views` maps slug -> (file, columns).

        No policy is applied: this is the engine's own defence, used by `run`, tests and
        benchmarks. Raises QueryTimeout, ResourceLimit, EngineError.
        """
        specs = [
            (slug, os.path.realpath(path), list(cols), "", False)
            for slug, (path, cols) in views.items()
        ]
        return self._run(sql, specs, entity_rows or {}, timeout_s, row_cap)

    def _run(
        self,
        sql: str | Sequence[str | int],
        views: list[tuple[str, str, list[str], str, bool]],
        entity_rows: Mapping[str, int | None],
        timeout_s: float,
        row_cap: int,
        mask: str | None = None,
    ) -> EngineResult:
        """`sql` and `mask`: a pivot template and its mask query (`sqlgen.pivot_template`),
        run by the worker as one job; otherwise `sql` is the SQL text."""
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if (mask is None) != isinstance(sql, str):
            raise ValueError("a template needs its mask query, and only a template has one")
        job = {
            "op": "query",
            "sql": sql if isinstance(sql, str) else list(sql),
            "mask": mask,
            "views": views,
            "entity_rows": list(entity_rows.items()),
            "row_cap": int(row_cap),
            "timeout_ms": max(1, int(timeout_s * 1000)) if self._soft_timeout else None,
        }
        started = time.perf_counter()
        reply = self._call(job, timeout_s)
        elapsed = (time.perf_counter() - started) * 1000
        if reply[0] != "ok":
            _raise(reply)
        _, columns, rows = reply
        truncated = len(rows) > row_cap
        return EngineResult(tuple(columns), list(rows[:row_cap]), truncated, elapsed)

    # -- data files -------------------------------------------------------------------------

    def prepare(self, path: str, columns: Sequence[str], entity_key: str) -> PreparedFile:
        """Make `path` ready: its column projection (if configured) and max rows per entity.

        Done once per file version and column set; cached in memory and, with a projection
        directory, on disk. Raises EngineError if the file lacks a licensed column.
        """
        real = os.path.realpath(path)
        try:
            st = os.stat(real)
        except OSError as exc:
            raise EngineError("a data file is missing", kind="config") from exc
        wanted = tuple(dict.fromkeys([*columns, entity_key]))
        key = (real, st.st_mtime_ns, st.st_size, wanted, entity_key)
        with self._lock:
            done = self._prepared.get(key)
            if done is not None:
                return done
            lock = self._prepare_locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                done = self._prepared.get(key)
            if done is None:
                done = self._prepare_uncached(key, real, wanted, entity_key)
                with self._lock:
                    self._prepared[key] = done
        return done

    def _prepare_uncached(
        self, key: tuple, real: str, columns: tuple[str, ...], entity_key: str
    ) -> PreparedFile:
        target = None
        sidecar = None
        if self._projection_dir is not None:
            self._projection_dir.mkdir(parents=True, exist_ok=True)
            # The layout version is part of the name: a projection written by an older
            # layout (unsorted) is never reused for the clustered one.
            digest = hashlib.sha256(
                repr((PROJECTION_LAYOUT, key, self._rollups)).encode("utf-8")
            ).hexdigest()[:32]
            target = self._projection_dir / f"{digest}.parquet"
            sidecar = self._projection_dir / f"{digest}.json"
            if sidecar.exists():
                info = json.loads(sidecar.read_text(encoding="utf-8"))
                if Path(info["path"]).exists():
                    rollup = _rollup(info.get("rollup"))
                    if rollup is None or all(Path(f).exists() for f in rollup.files()):
                        return PreparedFile(info["path"], info["max_rows"], True, rollup)
        rollup_target = None
        if target is not None and self._rollups:
            rollup_target = str(target.with_name(f"{target.stem}.rollup.parquet"))
        job = {
            "op": "prepare",
            "path": real,
            "target": str(target) if target is not None else None,
            "columns": list(columns),
            "entity_key": entity_key,
            "rollup_target": rollup_target,
        }
        reply = self._call(job, self._prepare_timeout_s)
        if reply[0] != "ok":
            if reply[1] == "schema":
                raise EngineError("a data file lacks a licensed column", kind="config")
            _raise(reply)
        _, read_path, max_rows, rollup_info = reply
        prepared = PreparedFile(
            str(read_path),
            int(max_rows) if max_rows is not None else None,
            target is not None,
            _rollup(rollup_info),
        )
        if sidecar is not None:
            tmp = sidecar.with_name(f"{sidecar.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(
                json.dumps(
                    {
                        "path": prepared.path,
                        "max_rows": prepared.max_rows,
                        "rollup": rollup_info,
                        "source": real,  # what drop_prepared looks for
                    }
                ),
                encoding="utf-8",
            )
            os.replace(tmp, sidecar)
        return prepared


def drop_prepared(projection_dir: str | os.PathLike[str], source: str | os.PathLike[str]) -> int:
    """Delete every projection and rollup made from the data file ``source`` (whatever its
    column set), with their sidecars: they hold that file's licensed columns, so they go when
    it goes (a deleted or rejected version). Returns how many files were deleted.

    Only files inside ``projection_dir`` are touched, and only those a sidecar names that
    records ``source`` (sidecars written before this field existed are left alone). An engine
    that still has the file in its memory cache fails the next query on it as for any missing
    file (the source itself is gone).
    """
    folder = Path(projection_dir)
    if not folder.is_dir():
        return 0
    real = os.path.realpath(source)
    inside = os.path.realpath(folder)
    deleted = 0
    for sidecar in folder.glob("*.json"):
        try:
            info = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(info, dict) or info.get("source") != real:
            continue
        try:
            rollup = _rollup(info.get("rollup"))
        except (KeyError, TypeError, ValueError):
            rollup = None
        for name in [info.get("path"), *(rollup.files() if rollup is not None else [])]:
            if not name or os.path.dirname(os.path.realpath(name)) != inside:
                continue
            try:
                os.unlink(name)
                deleted += 1
            except FileNotFoundError:
                pass
        try:
            sidecar.unlink()
            deleted += 1
        except FileNotFoundError:
            pass
    return deleted


def _rollup(info: Mapping[str, Any] | None) -> Rollup | None:
    if not info:
        return None
    pivot = info.get("pivot")
    return Rollup(
        str(info["path"]),
        tuple(info["dimensions"]),
        tuple(info["measures"]),
        tuple(info.get("constant") or ()),
        Pivot(
            str(pivot["path"]),
            str(pivot["combinations"]),
            tuple(pivot["varying"]),
            int(pivot["count"]),
        )
        if pivot
        else None,
    )


def _raise(reply: tuple) -> None:
    kind = str(reply[1])
    detail = str(reply[2])[:64] if len(reply) > 2 else ""
    if kind == "timeout":
        raise QueryTimeout()
    if kind == "resource":
        raise ResourceLimit()
    if kind == "permission":
        raise EngineError(
            "the query tried to access something outside the sandbox", kind=kind, detail=detail
        )
    raise EngineError("the query could not be executed", kind=kind, detail=detail)
