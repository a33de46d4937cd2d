"""Reading one enterprise's rows from desensitized Parquet tables (pure: no Flask, no DB).

The scan runs in a fresh in-memory DuckDB connection, which uses the Parquet files' Bloom
filters on the entity key (written by the publication pipeline) to skip the row groups that
cannot hold the enterprise, instead of reading the whole key column. The enterprise's key and
the file's path are bound parameters, never SQL text; column names are quoted identifiers.
The connection may read only that one file, and its configuration is locked before the
query. Only the columns asked for are read, and at most ``limit`` rows are returned per table
(one more is read to tell whether the table had more).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from market.consents.errors import RecordsUnavailable

#: Rows returned per table and lookup; the response says when a table had more.
DEFAULT_ROW_LIMIT = 500

#: The monthly-period column and the measures the profile charts (demo tax and HRSS tables).
PERIOD_COLUMN = "所属期"
CHART_MEASURES = (("tax", "纳税额"), ("headcount", "参保人数"))


@dataclass(frozen=True)
class TableSpec:
    """One licensed table: where its Parquet is, which column holds the entity key, and
    which columns (in order) a lookup may return."""

    slug: str
    path: Path
    key_column: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class TableRows:
    slug: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    truncated: bool


def json_value(value: Any) -> Any:
    """A Parquet value as JSON: decimals as exact strings, dates in ISO 8601."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _connect(paths: Sequence[str]) -> duckdb.DuckDBPyConnection:
    """An in-memory connection that may read only ``paths``, with its configuration locked."""
    con = duckdb.connect(
        ":memory:",
        config={
            "threads": 2,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "python_enable_replacements": False,
        },
    )
    try:
        con.execute("SET allowed_paths = [" + ", ".join(_literal(p) for p in paths) + "]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _read(con: duckdb.DuckDBPyConnection, spec: TableSpec, key_value: str, limit: int) -> TableRows:
    path = str(spec.path)
    try:
        present = set(pq.read_schema(path).names)
        if spec.key_column not in present:
            raise RecordsUnavailable(spec.slug)
        columns = tuple(c for c in spec.columns if c in present)
        selected = ", ".join(_quoted(c) for c in columns) or "NULL AS __row"
        sql = (
            f"SELECT {selected} FROM read_parquet($path) "
            f"WHERE {_quoted(spec.key_column)} = $key LIMIT $limit"
        )
        params = {"path": path, "key": key_value, "limit": limit + 1}
        table = con.sql(sql, params=params).to_arrow_table()
    except RecordsUnavailable:
        raise
    except (OSError, ValueError, duckdb.Error) as exc:  # missing, corrupt, type mismatch
        raise RecordsUnavailable(spec.slug) from exc
    if not columns:
        rows: list[dict[str, Any]] = [{} for _ in range(table.num_rows)]
    else:
        rows = [{k: json_value(v) for k, v in row.items()} for row in table.to_pylist()]
    return TableRows(spec.slug, columns, rows[:limit], len(rows) > limit)


def read_subject_tables(
    specs: Sequence[TableSpec], key_value: str, limit: int = DEFAULT_ROW_LIMIT
) -> list[TableRows]:
    """The rows of each table of ``specs`` whose key column equals ``key_value``, restricted
    to the spec's columns (those the file has), at most ``limit`` per table; one connection
    serves all the tables of a lookup.

    Raises RecordsUnavailable (naming the table) if a file is missing or cannot be read.
    """
    if not specs:
        return []
    con = _connect([str(spec.path) for spec in specs])
    try:
        return [_read(con, spec, key_value, limit) for spec in specs]
    finally:
        con.close()


def read_subject_rows(spec: TableSpec, key_value: str, limit: int = DEFAULT_ROW_LIMIT) -> TableRows:
    """:func:`read_subject_tables` for one table."""
    return read_subject_tables([spec], key_value, limit)[0]


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _find(columns: Iterable[str], needle: str) -> str | None:
    return next((c for c in columns if needle in c), None)


def profile_series(tables: Sequence[TableRows]) -> dict[str, Any] | None:
    """Monthly series for the profile chart: tax paid (纳税额) and insured headcount (参保人数)
    per period (所属期), summed per period, from whichever tables have them.

    Returns ``{"periods": [...], "series": [{"key", "column", "values": [str | None]}]}``
    (values as exact decimal strings, None where a period has no value), or None when no
    table has a period column next to one of the measures.
    """
    found: dict[str, tuple[str, dict[str, Decimal]]] = {}
    for table in tables:
        period = _find(table.columns, PERIOD_COLUMN)
        if period is None:
            continue
        for key, needle in CHART_MEASURES:
            column = _find(table.columns, needle)
            if column is None or key in found:
                continue
            sums: dict[str, Decimal] = {}
            for row in table.rows:
                at, value = row.get(period), _decimal(row.get(column))
                if at is None or value is None:
                    continue
                label = str(at)[:7] if isinstance(at, str) and len(at) >= 7 else str(at)
                sums[label] = sums.get(label, Decimal(0)) + value
            found[key] = (column, sums)
    if not found:
        return None
    periods = sorted({p for _, sums in found.values() for p in sums})
    series = []
    for key, _needle in CHART_MEASURES:
        if key in found:
            column, sums = found[key]
            values = [str(sums[p]) if p in sums else None for p in periods]
            series.append({"key": key, "column": column, "values": values})
    return {"periods": periods, "series": series}


def counts(tables: Mapping[str, TableRows]) -> dict[str, int]:
    return {slug: len(t.rows) for slug, t in tables.items()}
