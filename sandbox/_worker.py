"""The body of a sandbox worker process (started by `sandbox.engine.DuckDBEngine`).

Each query gets a fresh DuckDB database instance, opened read-only on an empty database file
(an in-memory database cannot be read-only). Before the query runs:
  1. `allowed_paths` is set to exactly the Parquet files of the tables used,
  2. a TEMP VIEW per table exposes only the licensed columns,
  3. external access is switched off and the configuration is locked.
So even SQL that bypassed the policy can read no other file, load no extension and change no
limit. The instance is closed after the query; nothing (temp tables, variables) survives.

Instances are opened ahead by a background thread (two spares, opened between queries) and
closed after the reply is sent, so their start-up and shutdown cost (~12-20 ms together) is off
the query path. Replies carry an error *category* only, never DuckDB's message, which can
quote data.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any

import duckdb

# The worker process imports the sandbox package anyway (this module is inside it): the pivot's
# names and its template filling come from where the SQL is generated, not copies.
from .query import PIVOT_INDEX, pivot_column
from .sqlgen import fill_pivot

ENTITY_HASH = "__sbx_eh"  # also sandbox.query.ENTITY_HASH_COLUMN (no import: keep this light)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _copy_atomically(con, select_sql: str, target: str, row_group_size: int | None = None) -> None:
    """Write ``select_sql``'s rows to the Parquet file ``target`` whole or not at all: into a
    temporary file of this process and thread, then renamed (a crash leaves no half file)."""
    tmp = f"{target}.{os.getpid()}.{threading.get_ident()}.tmp"
    options = "FORMAT parquet"
    if row_group_size:
        options += f", ROW_GROUP_SIZE {int(row_group_size)}"
    try:
        con.execute(f"COPY ({select_sql}) TO {_lit(tmp)} ({options})")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _config(settings: dict[str, Any], spill_dir: str) -> dict[str, Any]:
    return {
        "threads": int(settings["threads"]),
        "memory_limit": str(settings["memory_limit"]),
        "temp_directory": spill_dir,
        "max_temp_directory_size": str(settings["max_temp_size"]),
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,
        "allow_extension_repositories": "forbidden",
        "allow_persistent_secrets": False,
        "python_enable_replacements": False,
    }


def _close(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.close()
    except Exception:  # noqa: BLE001, S110 - closing is best effort
        pass


def classify(exc: BaseException) -> str:
    """An error category for the parent; DuckDB's text stays in this process."""
    if isinstance(exc, duckdb.InterruptException):
        return "timeout"
    if isinstance(exc, duckdb.OutOfMemoryException):
        return "resource"
    if isinstance(exc, duckdb.IOException) and "temp" in str(exc).lower():
        return "resource"
    if isinstance(exc, duckdb.PermissionException):
        return "permission"
    if isinstance(exc, MemoryError):
        return "resource"
    return "engine"


class _Runner:
    def __init__(self, workdir: str, settings: dict[str, Any], spares: int = 2) -> None:
        self.settings = settings
        self.spill = os.path.join(workdir, "spill")
        os.makedirs(self.spill, mode=0o700, exist_ok=True)
        # DuckDB's Python client shares one instance among open connections to the same file,
        # so every live instance needs its own (empty) file: spares, the one in use, the ones
        # being closed.
        self._files: queue.Queue[str] = queue.Queue()
        for i in range(spares + 3):
            path = os.path.join(workdir, f"{i}.duckdb")
            duckdb.connect(path).close()
            self._files.put(path)
        self._owner: dict[int, str] = {}
        self._target = spares
        self._spares: queue.Queue[duckdb.DuckDBPyConnection] = queue.Queue()
        self._retire: queue.Queue[duckdb.DuckDBPyConnection | None] = queue.Queue()
        self._stop = threading.Event()
        self._idle = threading.Event()  # set while no query runs: spares open only then
        self._idle.set()
        self._filler: threading.Thread | None = None
        if spares:
            self._filler = threading.Thread(target=self._fill, name="sbx-spares", daemon=True)
            self._filler.start()

    def _open(self, path: str | None = None) -> duckdb.DuckDBPyConnection:
        if path is None:
            path = self._files.get(timeout=30)
        try:
            con = duckdb.connect(path, read_only=True, config=_config(self.settings, self.spill))
        except BaseException:
            self._files.put(path)
            raise
        self._owner[id(con)] = path
        return con

    def _close(self, con: duckdb.DuckDBPyConnection) -> None:
        _close(con)
        path = self._owner.pop(id(con), None)
        if path is not None:
            self._files.put(path)

    def shutdown(self) -> None:
        """Stop the background thread and close every instance (a clean process exit)."""
        self._stop.set()
        if self._filler is not None:
            self._filler.join(timeout=5)
        for q in (self._spares, self._retire):
            while True:
                try:
                    con = q.get_nowait()
                except queue.Empty:
                    break
                if con is not None:
                    self._close(con)

    def _fill(self) -> None:
        """Background: close finished instances and keep `spares` fresh ones open."""
        while not self._stop.is_set():
            try:
                self._close(self._retire.get_nowait())
                continue  # closing first frees the files that new instances need
            except queue.Empty:
                pass
            have = self._spares.qsize()
            # Opening an instance costs ~15 ms of CPU; do it between queries unless the pool
            # is empty, so it does not compete with a running query for the cores.
            if have < self._target and (have == 0 or self._idle.is_set()):
                try:
                    path = self._files.get_nowait()
                except queue.Empty:
                    path = None
                if path is not None:
                    try:
                        self._spares.put(self._open(path))
                    except Exception:  # noqa: BLE001 - the query path opens its own instance
                        time.sleep(0.5)
                    continue
            try:
                self._close(self._retire.get(timeout=0.05))
            except queue.Empty:
                pass

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self._target:
            try:
                return self._spares.get(timeout=1.0)
            except queue.Empty:
                pass
        return self._open()

    def retire(self, con: duckdb.DuckDBPyConnection) -> None:
        """Close a used instance off the query path."""
        self._idle.set()
        if self._target:
            self._retire.put(con)
        else:
            self._close(con)

    def query(self, job: dict[str, Any]) -> tuple[tuple, duckdb.DuckDBPyConnection]:
        """Run one job on a fresh instance; returns the reply and the instance to retire."""
        con = self._connect()
        self._idle.clear()
        try:
            # The set-up, in this order, as one script (one call and one parse instead of
            # seven; DuckDB runs a script's statements in order and stops at the first error).
            views = job["views"]
            paths = sorted({view[1] for view in views})
            setup = ["SET allowed_paths = [" + ", ".join(_lit(p) for p in paths) + "]"]
            for slug, path, columns, entity_key, stored_hash in views:
                cols = [_q(c) for c in columns]
                if entity_key:
                    # The k-threshold counts distinct entity-key hashes: 8 bytes instead of a
                    # long pseudonym string. A collision can only lower the count (safe side).
                    cols.append(
                        _q(ENTITY_HASH)
                        if stored_hash
                        else f"hash({_q(entity_key)}) AS {_q(ENTITY_HASH)}"
                    )
                setup.append(
                    f"CREATE TEMP VIEW {_q(slug)} AS SELECT {', '.join(cols)} "
                    f"FROM read_parquet({_lit(path)})"
                )
            stats = job.get("entity_rows") or []
            values = (
                ", ".join(
                    f"({_lit(slug)}, {int(rows) if rows is not None else 'NULL'}::BIGINT)"
                    for slug, rows in stats
                )
                or "(NULL, NULL::BIGINT)"
            )
            setup.append(
                f"CREATE TEMP VIEW {_q('__sbx_entity_rows')} AS SELECT * FROM (VALUES {values}) "
                f"AS v(slug, max_rows) WHERE slug IS NOT NULL"
            )
            timeout_ms = job.get("timeout_ms")
            if timeout_ms:
                setup.append(f"SET max_execution_time = {int(timeout_ms)}")
            setup.append("SET enable_progress_bar = false")  # a per-connection setting
            setup.append("SET enable_external_access = false")
            setup.append("SET lock_configuration = true")
            con.execute(";\n".join(setup))
            sql = job["sql"]
            if job.get("mask") is not None:
                # A pivot template (sandbox.sqlgen.pivot_template): its holes are the indexes
                # of the combinations; each becomes TRUE if the mask query says it passes.
                passing = {int(j) for j, ok in con.execute(job["mask"]).fetchall() if ok is True}
                sql = fill_pivot(sql, passing)
            cur = con.execute(sql)
            columns = tuple(d[0] for d in cur.description or ())
            rows = cur.fetchmany(int(job["row_cap"]) + 1)
            return ("ok", columns, rows), con
        except BaseException as exc:  # noqa: BLE001 - everything becomes a category
            return ("error", classify(exc), type(exc).__name__), con

    def prepare(self, job: dict[str, Any]) -> tuple:
        """Trusted set-up for one data file: optional column projection, max rows per entity.

        Runs only SQL built here from paths and column names, never a caller's query.
        """
        source, target = job["path"], job.get("target")
        columns, entity_key = list(job["columns"]), job["entity_key"]
        con = duckdb.connect(
            ":memory:",
            config={
                "threads": int(self.settings["threads"]),
                "memory_limit": str(self.settings["memory_limit"]),
                "temp_directory": self.spill,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
            },
        )
        con.execute("SET enable_progress_bar = false")
        try:
            scan = f"read_parquet({_lit(source)})"
            present = {
                row[0].lower(): row[0]
                for row in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
            }
            missing = [c for c in columns if c.lower() not in present]
            if missing:
                return ("error", "schema", "missing column")
            path = source
            ek = _q(present[entity_key.lower()])
            if target:
                cols = ", ".join(_q(present[c.lower()]) for c in columns)
                # Ordered by the entity hash: each entity's rows are contiguous, so the
                # per-entity GROUP BY and join of the DP path stay cache-local.
                _copy_atomically(
                    con,
                    f"SELECT {cols}, hash({ek}) AS {_q(ENTITY_HASH)} FROM {scan} "
                    f"ORDER BY {_q(ENTITY_HASH)}",
                    target,
                )
                path = target
            (max_rows,) = con.execute(
                f"SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM {scan} GROUP BY {ek})"
            ).fetchone()
            rollup = None
            if target and job.get("rollup_target"):
                rollup = build_rollup(
                    con,
                    target,
                    job["rollup_target"],
                    [present[c.lower()] for c in columns if c.lower() != entity_key.lower()],
                    int(job.get("rollup_max_distinct") or ROLLUP_MAX_DISTINCT),
                )
            return ("ok", path, max_rows, rollup)
        finally:
            con.close()


# The per-entity rollup (also sandbox.query.ROLLUP_*; no import: keep this light).
ROLLUP_ROWS = "__sbx_n"
ROLLUP_COUNT_PREFIX = "__sbx_c:"
ROLLUP_SUM_PREFIX = "__sbx_s:"
ROLLUP_MAX_DISTINCT = 1000  # a dimension has at most this many distinct values
ROLLUP_MAX_RATIO = 0.5  # the rollup is kept only if it has at most this share of the rows
_DIM_TYPES = (
    "VARCHAR",
    "BOOLEAN",
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "DATE",
)
_INT_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
)
_EXACT = 2**53  # every integer of absolute value up to this is an exact double


def build_rollup(
    con: duckdb.DuckDBPyConnection,
    projection: str,
    target: str,
    columns: list[str],
    max_distinct: int,
) -> dict[str, Any] | None:
    """Write the per-entity rollup of a projection: one row per (entity hash, dimension
    values), ordered by the entity hash, with the cell's row count and, per measure, its
    non-NULL count and exact SUM. Returns {"path", "dimensions", "measures"} or None if no
    rollup would be smaller than half the file.

    Dimensions: columns of an exactly groupable type (text, boolean, integer, date) with at
    most `max_distinct` values, fewest values first, as many as keep the estimated number of
    cells within ROLLUP_MAX_RATIO of the rows. Measures: integer columns whose every entity's
    SUM(ABS(value)) is below 2^53, so that the raw path's SUM over DOUBLE is exact too (see
    sandbox.sqlgen._rollup_sum). Constant: the dimensions with one value (NULL included) per
    entity (`sandbox.query.RollupPlan.constant_sql`). Runs only SQL built here from names, never a caller's query.
    """
    scan = f"read_parquet({_lit(projection)})"
    eh = _q(ENTITY_HASH)
    types = {
        row[0]: str(row[1]).upper()
        for row in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
    }
    usable = [c for c in columns if c in types and not c.startswith("__sbx")]
    dim_cands = [c for c in usable if types[c] in _DIM_TYPES]
    int_cols = [c for c in usable if types[c] in _INT_TYPES]
    (rows,) = con.execute(f"SELECT COUNT(*) FROM {scan}").fetchone()
    if not rows:
        return None
    distinct: dict[str, int] = {}
    if dim_cands:
        got = con.execute(
            "SELECT "
            + ", ".join(f"approx_count_distinct({_q(c)})" for c in dim_cands)
            + f" FROM {scan}"
        ).fetchone()
        distinct = {c: int(n) for c, n in zip(dim_cands, got, strict=True)}
    ordered = sorted(
        (c for c in dim_cands if distinct[c] <= max_distinct), key=lambda c: (distinct[c], c)
    )
    prefixes = [ordered[:i] for i in range(len(ordered) + 1)]
    cells = con.execute(
        "SELECT "
        + ", ".join(
            f"approx_count_distinct(hash({', '.join([eh, *map(_q, p)])}))" for p in prefixes
        )
        + f" FROM {scan}"
    ).fetchone()
    dims = None
    for prefix, n in zip(prefixes, cells, strict=True):
        if n <= ROLLUP_MAX_RATIO * rows:
            dims = prefix
    if dims is None:
        return None
    measures: list[str] = []
    if int_cols:
        got = con.execute(
            "SELECT "
            + ", ".join(f"MAX(s{i})" for i in range(len(int_cols)))
            + " FROM (SELECT "
            + ", ".join(
                f"SUM(ABS(TRY_CAST({_q(c)} AS HUGEINT))) AS s{i}" for i, c in enumerate(int_cols)
            )
            + f" FROM {scan} GROUP BY {eh})"
        ).fetchone()
        measures = [c for c, top in zip(int_cols, got, strict=True) if (top or 0) < _EXACT]
    cols = [eh, *map(_q, dims), f"COUNT(*)::BIGINT AS {_q(ROLLUP_ROWS)}"]
    for m in measures:
        cols.append(f"COUNT({_q(m)})::BIGINT AS {_q(ROLLUP_COUNT_PREFIX + m)}")
        cols.append(f"SUM({_q(m)})::BIGINT AS {_q(ROLLUP_SUM_PREFIX + m)}")
    _copy_atomically(
        con, f"SELECT {', '.join(cols)} FROM {scan} GROUP BY ALL ORDER BY {eh}", target
    )
    constant: list[str] = []
    if dims:
        # A dimension is constant if no entity has two values of it, NULL counting as a value
        # (COUNT(DISTINCT) skips NULL, hence the flag); read from the rollup (same values).
        got = con.execute(
            "SELECT "
            + ", ".join(f"MAX(c{i})" for i in range(len(dims)))
            + " FROM (SELECT "
            + ", ".join(
                f"COUNT(DISTINCT {_q(d)}) + MAX(CASE WHEN {_q(d)} IS NULL THEN 1 ELSE 0 END) "
                f"AS c{i}"
                for i, d in enumerate(dims)
            )
            + f" FROM read_parquet({_lit(target)}) GROUP BY {eh})"
        ).fetchone()
        constant = [d for d, top in zip(dims, got, strict=True) if top is not None and top <= 1]
    return {
        "path": target,
        "dimensions": list(dims),
        "measures": measures,
        "constant": constant,
        "pivot": build_pivot(con, target, list(dims), constant, measures),
    }


PIVOT_MAX_COMBINATIONS = 32  # more combinations of the varying dimensions: no pivot
# Rows per Parquet row group of a pivot: DuckDB scans a file's row groups in parallel, and a
# pivot is small (83k rows at 1M data rows: one default group, one thread). 2-3 ms of 14 at 1M.
PIVOT_ROW_GROUP = 30_000


def build_pivot(
    con: duckdb.DuckDBPyConnection,
    rollup: str,
    dims: list[str],
    constant: list[str],
    measures: list[str],
) -> dict[str, Any] | None:
    """Write the per-entity pivot of a rollup: one row per entity with its entity hash, its
    constant dimensions, and for each combination j of the varying dimensions the columns
    `<rollup column>@j` (its cell's row count, non-NULL counts and SUMs; NULL where the entity
    has no such cell). Since the constant dimensions have one value per entity, an entity has
    at most one cell per combination, so each value is one cell's, exactly. The
    combinations (PIVOT_INDEX, then the varying dimensions) go in a file of their own.

    Returns {"path", "combinations", "varying", "count"}, or None if there are more than
    PIVOT_MAX_COMBINATIONS combinations (the rollup alone then answers). Runs only SQL built
    here from names, never a caller's query.
    """
    if rollup.endswith(".rollup.parquet"):
        stem = rollup[: -len(".rollup.parquet")]
    else:
        stem = rollup
    scan = f"read_parquet({_lit(rollup)})"
    varying = [d for d in dims if d not in constant]
    cols = ", ".join(map(_q, varying))
    if varying:
        (count,) = con.execute(f"SELECT COUNT(*) FROM (SELECT DISTINCT {cols} FROM {scan})").fetchone()
        order = ", ".join(f"{_q(v)} ASC NULLS FIRST" for v in varying)
        combinations_sql = (
            f"SELECT (row_number() OVER (ORDER BY {order}) - 1)::INTEGER AS {_q(PIVOT_INDEX)}, "
            f"{cols} FROM (SELECT DISTINCT {cols} FROM {scan})"
        )
    else:
        count = 1
        combinations_sql = f"SELECT 0::INTEGER AS {_q(PIVOT_INDEX)}"
    if not count or count > PIVOT_MAX_COMBINATIONS:
        return None
    combinations = f"{stem}.combinations.parquet"
    _copy_atomically(con, combinations_sql, combinations)
    join = " AND ".join(f"r.{_q(v)} IS NOT DISTINCT FROM k.{_q(v)}" for v in varying) or "TRUE"
    out = [f"r.{_q(ENTITY_HASH)}"] + [f"any_value(r.{_q(c)}) AS {_q(c)}" for c in constant]
    cells = [ROLLUP_ROWS]
    for m in measures:
        cells += [ROLLUP_COUNT_PREFIX + m, ROLLUP_SUM_PREFIX + m]
    for j in range(count):
        for name in cells:
            out.append(
                f"SUM(r.{_q(name)}) FILTER (WHERE k.{_q(PIVOT_INDEX)} = {j})::BIGINT "
                f"AS {_q(pivot_column(name, j))}"
            )
    path = f"{stem}.pivot.parquet"
    _copy_atomically(
        con,
        f"SELECT {', '.join(out)} FROM {scan} AS r JOIN read_parquet({_lit(combinations)}) AS k "
        f"ON {join} GROUP BY r.{_q(ENTITY_HASH)} ORDER BY r.{_q(ENTITY_HASH)}",
        path,
        PIVOT_ROW_GROUP,
    )
    return {"path": path, "combinations": combinations, "varying": varying, "count": int(count)}


def main(conn: Any, workdir: str, settings: dict[str, Any]) -> None:
    """Serve jobs from `conn` until it closes or a None job arrives."""
    runner = _Runner(workdir, settings)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            job = None
        if job is None:
            runner.shutdown()
            return
        used = None
        try:
            if job["op"] == "query":
                reply, used = runner.query(job)
            elif job["op"] == "prepare":
                reply = runner.prepare(job)
            else:
                reply = ("error", "engine", "unknown job")
        except BaseException as exc:  # noqa: BLE001 - everything becomes a category
            reply = ("error", classify(exc), type(exc).__name__)
        try:
            conn.send(reply)
        except Exception:  # noqa: BLE001 - e.g. a value that cannot be pickled
            try:
                conn.send(("error", "engine", "unsendable result"))
            except Exception:  # noqa: BLE001 - the parent is gone
                if used is not None:
                    runner.retire(used)
                runner.shutdown()
                return
        if used is not None:
            runner.retire(used)
