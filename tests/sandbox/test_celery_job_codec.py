"""A sandbox query sent to a Celery worker arrives whole: the engine's SQL, the views, the row
cap and the per-entity rollup plan (without it the worker's engine could not use the rollup,
and before this test it failed on the missing field)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from sandbox.celery_engine import decode_job, encode_job
from sandbox.query import PivotPlan, RollupPlan, StoredTable, ViewSpec


@pytest.mark.parametrize(
    "rollup",
    [
        None,
        RollupPlan("d1_tax", "SELECT 1", ("district",), ("amount",)),
        RollupPlan("d1_tax", "SELECT 1", ("district", "industry"), ("amount",),
                   ("district",), "SELECT 2"),
        # with the pivot's parts (keys, WHERE terms and what each reads, bounded columns)
        RollupPlan("d1_tax", "SELECT 1", ("district", "industry"), ("amount",),
                   ("district",), "SELECT 2",
                   PivotPlan(keys=(('"d1_tax"."district"', "__sbx_g0"),),
                             terms=(("TRY(x <> 'a')", ("industry",)),),
                             columns=(("__sbx_m1", "rows", None, "COUNT(*)"),
                                      ("__sbx_m2", "sum", "amount", "SUM(p)"),
                                      ("__sbx_m3", "none", None, "COUNT(*)")))),
    ],
)
def test_the_job_round_trips_through_json(rollup):
    query = SimpleNamespace(
        engine_sql="SELECT district FROM d1_tax", views=(ViewSpec("d1_tax", ("district",), "k"),),
        engine_row_cap=500, rollup=rollup,
    )
    job = json.loads(json.dumps(encode_job(query, {"d1_tax": "/data/x.parquet"}, 5.0, 100)))
    decoded, tables, timeout_s, row_cap = decode_job(job)
    assert decoded.engine_sql == query.engine_sql
    assert decoded.views == query.views
    assert decoded.engine_row_cap == 500
    assert decoded.rollup == rollup
    assert (tables, timeout_s, row_cap) == ({"d1_tax": "/data/x.parquet"}, 5.0, 100)


def test_tables_named_by_storage_key_and_digest_round_trip():
    """A query host on another machine is sent keys and digests, not the web host's paths."""
    query = SimpleNamespace(engine_sql="SELECT 1", views=(), engine_row_cap=10, rollup=None)
    tables = {"d1_tax": StoredTable("datasets/1/v2.parquet", "ab" * 32),
              "d2_loans": StoredTable("datasets/2/v1.parquet", None),
              "shared": "/mnt/shared/datasets/3/v1.parquet"}
    job = json.loads(json.dumps(encode_job(query, tables, 5.0, None)))
    assert "/work" not in json.dumps(job["tables"]["d1_tax"])
    _, decoded, _, _ = decode_job(job)
    assert decoded == tables
