"""#17.2: Spark SQL behind the sandbox's engine adapter, equivalent to DuckDB on the same files.

A corpus of accepted queries runs through the whole sandbox path (policy check, bounded
rewrite, engine, post-processing) on DuckDB and on Spark (``local[2]``, one session for the
module) over the same Parquet files, with noise disabled through the test-only seam
(``NoNoise``): the released aggregates are equal. Skipped plainly without pyspark or Java,
required under ``REQUIRE_SPARK=1``.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from tests.scale.conftest import java_missing, require

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sandbox"))
from sandbox_testdata import WIDE, K, firms_frame, firms_spec, loans_frame, loans_spec  # noqa: E402

from sandbox import DuckDBEngine, NoNoise, PolicyContext, check, run_query  # noqa: E402
from sandbox.errors import EngineError  # noqa: E402

#: Generous: a loaded 2-core machine runs a first Spark query in tens of seconds.
TIMEOUT_S = 600

CORPUS = [
    "SELECT district, COUNT(*) AS n, SUM(amount) AS total, AVG(amount) AS mean "
    "FROM loans GROUP BY district",
    "SELECT industry, COUNT(*) FROM loans GROUP BY industry",
    "SELECT district, industry, COUNT(*) AS n, SUM(amount) AS s FROM loans "
    "GROUP BY district, industry",
    "SELECT COUNT(*), SUM(amount) FROM loans",
    "SELECT district, COUNT(*) AS n FROM loans WHERE industry = 'tech' GROUP BY district",
    "SELECT district, SUM(amount) AS s FROM loans WHERE industry IN ('tech', 'farm') "
    "GROUP BY district ORDER BY s DESC LIMIT 3",
    "SELECT district, AVG(amount) AS a, COUNT(*) AS n FROM loans WHERE district <> 'Edge' "
    "GROUP BY district HAVING COUNT(*) > 20 ORDER BY district",
    "SELECT district, COUNT(*) AS n, SUM(capital) AS c FROM firms GROUP BY district",
    "SELECT name, capital FROM firms WHERE district = 'Xuhui' AND capital > 5000 "
    "ORDER BY name LIMIT 20",
]


#: Settings for a few thousand rows on a shared 2-core machine; none changes what a query
#: answers. One shuffle partition (the engine's ``shuffle_partitions``) instead of four tasks
#: per aggregate; the JVM's quick compiler only (``TieredStopAtLevel=1``: the optimizing one
#: spends seconds of CPU warming up for queries this small) and one garbage-collector thread.
SMALL_LOCAL_DATA = {
    "spark.default.parallelism": "2",
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
}


@pytest.fixture(scope="module")
def spark_engine():
    require("REQUIRE_SPARK", java_missing())
    from sandbox.spark_engine import SparkEngine

    eng = SparkEngine(master="local[2]", shuffle_partitions=1, conf=SMALL_LOCAL_DATA).start()
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("spark-data")
    loans_frame().to_parquet(root / "loans.parquet", index=False)
    firms_frame().to_parquet(root / "firms.parquet", index=False)
    return {"loans": str(root / "loans.parquet"), "firms": str(root / "firms.parquet")}


@pytest.fixture(scope="module")
def duck(tmp_path_factory):
    root = tmp_path_factory.mktemp("spark-duck")
    eng = DuckDBEngine(threads=2, memory_limit="256MB", temp_dir=root,
                       projection_dir=root / "projections").start()
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def ctx() -> PolicyContext:
    return PolicyContext({"loans": loans_spec(privacy=WIDE), "firms": firms_spec()}, row_cap=1000)


def _norm(rows) -> list:
    def v(x):
        if isinstance(x, float):
            return Decimal(repr(x)).quantize(Decimal("0.000001"))
        if isinstance(x, Decimal):
            return x.quantize(Decimal("0.000001"))
        return x

    return sorted((tuple(v(x) for x in r) for r in rows), key=repr)


@pytest.mark.parametrize("sql", CORPUS)
def test_spark_and_duckdb_release_the_same_aggregates(sql, ctx, files, duck, spark_engine):
    noise = NoNoise(min_entities=K)
    on_duck = run_query(sql, ctx, files, duck, timeout_s=TIMEOUT_S, noise=noise).result
    on_spark = run_query(sql, ctx, files, spark_engine, timeout_s=TIMEOUT_S, noise=noise).result
    assert on_spark.columns == on_duck.columns
    assert on_duck.rows, "the corpus query released nothing: it compares nothing"
    assert _norm(on_spark.rows) == _norm(on_duck.rows)
    if "ORDER BY" in sql:  # the order itself is part of the answer
        assert [r[0] for r in on_spark.rows] == [r[0] for r in on_duck.rows]


def test_the_spark_views_expose_only_licensed_columns(ctx, files, spark_engine):
    """A licensed query runs; the unlicensed column is not even in the view."""
    checked = check("SELECT district, COUNT(*) FROM loans GROUP BY district", ctx)
    secret = pd.read_parquet(files["loans"])["secret"]
    assert (secret == "unlicensed").all()
    session = spark_engine.session().newSession()
    spark_engine._register(session, checked, files)
    assert "secret" not in [c.lower() for c in session.table("loans").columns]


@pytest.mark.parametrize("sql", [
    "SELECT reflect('java.lang.System', 'getProperty', 'user.home') FROM loans",
    "SELECT java_method('java.lang.System', 'getenv', 'HOME')",
    "SELECT * FROM parquet.`/etc/passwd`",
    "SELECT input_file_name() FROM loans",
    "SELECT * FROM other_table",
    "SELECT * FROM default.loans",
    "DROP VIEW loans",
    "SELECT 1; SELECT 2",
    "CREATE TEMPORARY FUNCTION f AS 'x.Y' USING JAR '/tmp/x.jar'",
])
def test_spark_sql_outside_the_sandbox_is_refused_before_it_runs(sql):
    """Second line of defence: even SQL that bypassed the policy cannot reach files, catalogs,
    Java methods or UDFs."""
    from sandbox.spark_engine import check_spark_sql

    with pytest.raises(EngineError) as caught:
        check_spark_sql(sql, {"loans"})
    assert caught.value.kind == "permission"


def test_the_corpus_is_accepted_by_the_policy(ctx):
    for sql in CORPUS:
        assert check(sql, ctx).engine_sql
