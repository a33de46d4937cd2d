"""The engine holds even if the policy were bypassed: raw hostile SQL, limits, kills."""

from __future__ import annotations

import os
import time

import pandas as pd
import pytest

from sandbox import DuckDBEngine, EngineError, QueryTimeout, ResourceLimit

LOAN_COLUMNS = ["district", "industry", "amount", "id_no", "note", "ek"]
SLOW = "SELECT COUNT(*) FROM range(1000000000000) t(i) WHERE i % 7 = 3"


@pytest.fixture(scope="module")
def views(data_dir):
    return {"loans": (str(data_dir / "loans.parquet"), LOAN_COLUMNS)}


def test_views_expose_only_the_given_columns(engine, views):
    result = engine.run_sql("SELECT * FROM loans LIMIT 1", views)
    assert result.columns == tuple(LOAN_COLUMNS)
    with pytest.raises(EngineError):
        engine.run_sql("SELECT secret FROM loans", views)


HOSTILE = [
    # (sql, the DuckDB exception class that stopped it)
    ("SELECT * FROM read_csv('/etc/passwd')", "PermissionException"),
    ("SELECT * FROM read_text('/etc/hostname')", "PermissionException"),
    ("SELECT * FROM glob('/*')", "PermissionException"),
    ("SELECT * FROM read_parquet('{other}')", "PermissionException"),
    ("SELECT * FROM query('SELECT * FROM read_csv(''/etc/passwd'')')", "PermissionException"),
    ("COPY (SELECT 1) TO '{out}'", "PermissionException"),
    ("COPY loans TO '{out}'", "PermissionException"),
    ("EXPORT DATABASE '{dir}'", "PermissionException"),
    ("ATTACH '{db}' AS x", "PermissionException"),
    ("INSTALL httpfs", "PermissionException"),
    ("LOAD httpfs", "PermissionException"),
    ("SET enable_external_access = true", "InvalidInputException"),  # configuration locked
    ("SET lock_configuration = false", "InvalidInputException"),
    ("RESET lock_configuration", "InvalidInputException"),
    ("SET allowed_paths = ['/etc/passwd']", "InvalidInputException"),
    ("SET allowed_directories = ['/']", "InvalidInputException"),
    ("SET memory_limit = '64GB'", "InvalidInputException"),
    ("SET threads = 64", "InvalidInputException"),
    ("SET max_execution_time = 0", "InvalidInputException"),
    ("CREATE TABLE kept AS SELECT 1", "InvalidInputException"),  # read-only database
    ("ATTACH ':memory:' AS m", "CatalogException"),  # read-only instance
    ("SELECT * FROM '/etc/passwd'", "CatalogException"),  # no replacement scan of paths
    ("SELECT * FROM df", "CatalogException"),  # no Python replacement scan
]


@pytest.mark.parametrize(("sql", "stopped_by"), HOSTILE, ids=[h[0][:40] for h in HOSTILE])
def test_hostile_sql_cannot_leave_the_sandbox(engine, views, data_dir, tmp_path, sql, stopped_by):
    out = tmp_path / "leak.csv"
    sql = sql.format(
        other=data_dir / "other.parquet", out=out, dir=tmp_path / "export", db=tmp_path / "x.db"
    )
    df = pd.DataFrame({"a": [1]})  # noqa: F841 - the replacement-scan target
    with pytest.raises(EngineError) as caught:
        engine.run_sql(sql, views)
    assert caught.value.detail == stopped_by
    assert "passwd" not in caught.value.message and str(tmp_path) not in caught.value.message
    assert not out.exists() and not (tmp_path / "export").exists()
    assert not (tmp_path / "x.db").exists()


def test_engine_settings_are_locked_down(engine, views):
    result = engine.run_sql(
        "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
        "'lock_configuration', 'autoinstall_known_extensions', 'autoload_known_extensions', "
        "'python_enable_replacements', 'access_mode', 'threads', 'max_execution_time')",
        views,
    )
    settings = dict(result.rows)
    assert settings["enable_external_access"] == "false"
    assert settings["lock_configuration"] == "true"
    assert settings["autoinstall_known_extensions"] == "false"
    assert settings["autoload_known_extensions"] == "false"
    assert settings["python_enable_replacements"] == "false"
    assert settings["access_mode"] == "read_only"
    assert settings["threads"] == "2"
    assert settings["max_execution_time"] != "0"


def test_unlicensed_columns_are_not_in_the_readable_file(engine, data_dir):
    """With a projection directory the only readable file has only licensed columns."""
    prepared = engine.prepare(str(data_dir / "loans.parquet"), ["district", "amount"], "ek")
    assert prepared.path != str(data_dir / "loans.parquet")
    views = {"loans": (prepared.path, ["district", "amount"])}
    raw = engine.run_sql(f"SELECT * FROM read_parquet('{prepared.path}') LIMIT 1", views)
    assert set(raw.columns) == {"district", "amount", "ek", "__sbx_eh"}
    with pytest.raises(EngineError):
        engine.run_sql(f"SELECT * FROM read_parquet('{data_dir / 'loans.parquet'}')", views)
    assert prepared.max_rows == 9  # the largest number of rows one entity has


def test_nothing_survives_between_queries(engine, views):
    engine.run_sql("CREATE TEMP TABLE leak AS SELECT 42 AS x", views)
    engine.run_sql("SET VARIABLE leak = 42", views)
    with pytest.raises(EngineError):
        engine.run_sql("SELECT * FROM leak", views)
    assert engine.run_sql("SELECT getvariable('leak')", views).rows == [(None,)]


def test_row_cap_truncates(engine, views):
    result = engine.run_sql("SELECT * FROM range(50)", views, row_cap=7)
    assert len(result.rows) == 7 and result.truncated
    result = engine.run_sql("SELECT * FROM range(7)", views, row_cap=7)
    assert len(result.rows) == 7 and not result.truncated


def test_engine_errors_do_not_carry_data(engine, views):
    with pytest.raises(EngineError) as caught:
        engine.run_sql("SELECT CAST(id_no || 'x' AS INTEGER) FROM loans", views)
    assert "3101" not in str(caught.value)


def test_memory_limit_is_a_resource_error(tmp_path, views):
    with DuckDBEngine(
        threads=1, memory_limit="32MB", temp_dir=tmp_path, max_temp_size="1MB"
    ) as eng:
        with pytest.raises(ResourceLimit):
            eng.run_sql("SELECT string_agg(i::VARCHAR, ',') FROM range(20000000) t(i)", views)
        assert eng.run_sql("SELECT 1", views).rows == [(1,)]


def test_slow_query_is_interrupted_by_duckdb_without_a_kill(engine, views):
    pids = engine.worker_pids()
    started = time.monotonic()
    with pytest.raises(QueryTimeout):
        engine.run_sql(SLOW, views, timeout_s=0.5)
    assert time.monotonic() - started < 5
    assert engine.worker_pids() == pids
    assert engine.run_sql("SELECT 1", views).rows == [(1,)]


def test_unresponsive_worker_is_killed_and_replaced(tmp_path, views):
    # Without DuckDB's own limit only the wall-clock kill can stop the query.
    with DuckDBEngine(soft_timeout=False, kill_grace_s=0.2, temp_dir=tmp_path).start() as eng:
        (before,) = eng.worker_pids()
        started = time.monotonic()
        with pytest.raises(QueryTimeout):
            eng.run_sql(SLOW, views, timeout_s=0.5)
        assert 0.5 <= time.monotonic() - started < 5
        (after,) = eng.worker_pids()
        assert after != before
        with pytest.raises(ProcessLookupError):
            os.kill(before, 0)
        assert eng.run_sql("SELECT 2", views).rows == [(2,)]
        # the killed worker's directory (spill space, empty databases) is gone
        assert len(list(tmp_path.glob("sbx-worker-*"))) == 1


def test_missing_data_file_is_a_config_error(engine, ctx):
    from sandbox import check

    q = check("SELECT COUNT(*) FROM loans", ctx)
    with pytest.raises(EngineError) as caught:
        engine.run(q, {})
    assert caught.value.kind == "config"
    with pytest.raises(EngineError):
        engine.run(q, {"loans": "/nonexistent/loans.parquet"})
