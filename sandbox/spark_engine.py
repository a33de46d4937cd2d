"""Spark SQL behind the sandbox's engine adapter (``MARKET_SANDBOX_ENGINE=spark``).

The policy, the contribution bounding and the noise do not change: the policy checks the
buyer's query and rewrites it (in DuckDB's dialect) into ``CheckedQuery.engine_sql``; this
engine transpiles that text with sqlglot to Spark SQL — never assembling SQL by hand — runs it
and returns the bounded aggregates to the same post-processing (threshold and noise).

The same locked-down stance as DuckDB's workers:

- every query gets its own Spark session (``newSession``: own temp views and SQL settings,
  shared cluster); in it, only the licensed Parquet files of the query are registered, as
  temporary views that select exactly the licensed columns plus the entity hash
  (``xxhash64`` of the entity key, the DuckDB engine's ``hash``: an 8-byte key for the
  per-entity grouping);
- the transpiled SQL is parsed again (Spark dialect) and refused unless it is one query that
  names only those views and its own CTEs (no catalog or schema qualifier, so no
  ``parquet.`/path``` file tables), and calls no function sqlglot does not know except
  ``HASH`` (``reflect``, ``java_method``, ``input_file_name``… are all unknown to it) and no
  ``read_*`` file function;
- the session itself has an in-memory catalog (no Hive metastore), ``runSQLOnFiles`` off and
  no UI; nothing registers UDFs.

The DuckDB engine breaks ties in the bounding (which groups an entity keeps when it has more
than ``max_groups_per_entity``) by DuckDB's ``hash``; Spark's ``HASH`` is another function, so
for such an entity the two engines may keep different groups — both are valid bounds; where
no entity exceeds the bound the answers are equal (tests/scale/test_spark_engine.py).

Timeouts cancel the query's Spark job group (the executors stop its tasks) and answer
QueryTimeout. Error replies carry a category, never Spark's message (it can quote data).
Needs ``pip install -e '.[spark]'`` and Java 17.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import sqlglot
from sqlglot import exp

from .engine import EngineResult
from .errors import EngineError, QueryTimeout, ResourceLimit
from .query import ENTITY_HASH_COLUMN, CheckedQuery

#: Functions sqlglot parses as "anonymous" that the rewrite itself emits.
_ALLOWED_ANONYMOUS = frozenset({"HASH"})


def to_spark(engine_sql: str) -> str:
    """The checked query's engine SQL (DuckDB dialect) in Spark SQL, by sqlglot.

    One rewrite on the syntax tree first: DuckDB's ``TRY(expr)`` (NULL instead of an error,
    which the policy wraps around WHERE predicates) has no Spark counterpart; Spark runs with
    ``spark.sql.ansi.enabled=false``, where casts and arithmetic already give NULL instead of
    failing, so the expression is kept as it is. Anything else sqlglot cannot express in Spark
    is refused (``unsupported_level=RAISE``), never dropped.
    """
    try:
        tree = sqlglot.parse_one(engine_sql, read="duckdb")
        tree = tree.transform(lambda node: node.this if isinstance(node, exp.Try) else node)
        return tree.sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
    except sqlglot.errors.SqlglotError as exc:
        raise EngineError("the query cannot be run on Spark", kind="transpile") from exc


def check_spark_sql(sql: str, views: set[str]) -> None:
    """Refuse Spark SQL that is not one query over ``views`` (and its own CTEs) with known
    functions. Raises EngineError(kind="permission")."""
    refused = EngineError("the query tried to access something outside the sandbox",
                          kind="permission")
    try:
        statements = sqlglot.parse(sql, read="spark")
    except sqlglot.errors.SqlglotError as exc:
        raise refused from exc
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise refused
    tree = statements[0]
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    allowed = {v.lower() for v in views} | ctes
    for table in tree.find_all(exp.Table):
        if table.args.get("db") or table.args.get("catalog") or table.name.lower() not in allowed:
            raise refused
        if not isinstance(table.this, exp.Identifier):  # a table-valued function
            raise refused
    for func in tree.find_all(exp.Func):
        if isinstance(func, exp.Anonymous) and func.name.upper() not in _ALLOWED_ANONYMOUS:
            raise refused
        if type(func).__name__.startswith("Read"):
            raise refused
    for bad in (exp.Command, exp.Create, exp.Insert, exp.Drop, exp.Set):
        if tree.find(bad) is not None:
            raise refused


class SparkEngine:
    """Runs checked queries on Spark (``master``: ``local[2]``, ``spark://host:7077``…).

    The session starts on first use (a JVM: seconds) and is shared by every query; each query
    runs in a session of its own derived from it. ``conf`` adds Spark settings.
    """

    def __init__(
        self,
        *,
        master: str = "local[2]",
        app_name: str = "market-sandbox",
        shuffle_partitions: int = 4,
        conf: Mapping[str, str] | None = None,
    ) -> None:
        self.master = master
        self.app_name = app_name
        self.conf = {
            "spark.sql.catalogImplementation": "in-memory",
            "spark.sql.runSQLOnFiles": "false",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.session.timeZone": "UTC",
            # NULL instead of an error on bad casts and overflow, as DuckDB's TRY (to_spark).
            "spark.sql.ansi.enabled": "false",
            "spark.sql.shuffle.partitions": str(shuffle_partitions),
            "spark.sql.adaptive.enabled": "true",
            **({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
               if master.startswith("local") else {}),
            **dict(conf or {}),
        }
        self._spark: Any = None
        self._lock = threading.Lock()

    def session(self) -> Any:
        """The shared SparkSession (started on first call)."""
        with self._lock:
            if self._spark is None:
                from pyspark.sql import SparkSession

                builder = SparkSession.builder.master(self.master).appName(self.app_name)
                for key, value in self.conf.items():
                    builder = builder.config(key, value)
                self._spark = builder.getOrCreate()
                self._spark.sparkContext.setLogLevel("ERROR")
            return self._spark

    def start(self) -> SparkEngine:
        self.session()
        return self

    def close(self) -> None:
        with self._lock:
            spark, self._spark = self._spark, None
        if spark is not None:
            spark.stop()

    def __enter__(self) -> SparkEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _register(self, session: Any, query: CheckedQuery, tables: Mapping[str, str]) -> None:
        from pyspark.sql import functions as F

        for view in query.views:
            path = tables.get(view.slug)
            if path is None:
                raise EngineError("a table of the query has no data file", kind="config")
            frame = session.read.parquet(str(path))
            present = {name.lower(): name for name in frame.columns}
            if any(c.lower() not in present for c in view.columns):
                raise EngineError("a data file lacks a licensed column", kind="config")
            cols = [F.col(present[c.lower()]).alias(c) for c in view.columns]
            if view.entity_key:
                if view.entity_key.lower() not in present:
                    raise EngineError("a data file lacks a licensed column", kind="config")
                cols.append(F.xxhash64(F.col(present[view.entity_key.lower()]))
                            .alias(ENTITY_HASH_COLUMN))
            frame.select(*cols).createOrReplaceTempView(view.slug)

    def run(
        self,
        query: CheckedQuery,
        tables: Mapping[str, str],
        *,
        timeout_s: float = 10.0,
        row_cap: int | None = None,
    ) -> EngineResult:
        """Run a checked query; ``tables`` maps each slug to its Parquet file.

        Raises QueryTimeout, ResourceLimit, EngineError.
        """
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        sql = to_spark(query.engine_sql)
        check_spark_sql(sql, {v.slug for v in query.views})
        cap = query.engine_row_cap if row_cap is None else min(row_cap, query.engine_row_cap)
        started = time.perf_counter()
        spark = self.session()
        session = spark.newSession()
        group = f"sbx-{uuid.uuid4().hex}"
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                spark.sparkContext.setJobGroup(group, "sandbox query", interruptOnCancel=True)
                self._register(session, query, tables)
                frame = session.sql(sql)
                outcome["columns"] = tuple(frame.columns)
                outcome["rows"] = [tuple(r) for r in frame.limit(cap + 1).collect()]
            except BaseException as exc:  # noqa: BLE001 - categorized below
                outcome["error"] = exc

        thread = threading.Thread(target=work, name="sbx-spark", daemon=True)
        thread.start()
        thread.join(timeout_s)
        if thread.is_alive():
            spark.sparkContext.cancelJobGroup(group)
            thread.join(5)
            raise QueryTimeout()
        error = outcome.get("error")
        if error is not None:
            raise _categorize(error) from None
        rows = outcome["rows"]
        elapsed = (time.perf_counter() - started) * 1000
        return EngineResult(outcome["columns"], rows[:cap], len(rows) > cap, elapsed)


def _categorize(exc: BaseException) -> Exception:
    if isinstance(exc, EngineError | QueryTimeout | ResourceLimit):
        return exc
    name = type(exc).__name__
    text = str(exc)
    if "OutOfMemory" in text or isinstance(exc, MemoryError):
        return ResourceLimit()
    if "cancelled" in text.lower() and "job group" in text.lower():
        return QueryTimeout()
    return EngineError("the query could not be executed", kind="engine", detail=name)
