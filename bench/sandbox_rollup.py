"""Sandbox engine with and without the per-entity rollup (issue 12), against raw DuckDB.

    PYTHONPATH=$PWD /work/main/.venv/bin/python bench/sandbox_rollup.py --rows 1000000 --repeat 7

The data is the HTTP bench's (`bench/sandbox_http.py`): 12 rows per enterprise, the district
fixed per enterprise (16), the industry varying (3), an amount in [0, 90000). The question is
the HTTP bench's, `SELECT district, COUNT(*), SUM(amount) ... WHERE industry <> '<x>' GROUP BY
district`, a new literal each time. Alternated in one process, medians in ms:

- raw: the plain aggregate in an in-process DuckDB (2 threads) on the Parquet file;
- rollup: `DuckDBEngine.run` (worker process, locked-down instance) answered from the rollup;
- bounded_raw: the same engine and question without the rollup plan (the raw bounded SQL).

Both engine sides return the same rows (checked on every run). No policy, noise or app here:
the engine's part only. The one-time preparation (projection + rollup) is timed separately.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    import duckdb

    from sandbox import ColumnSpec, DuckDBEngine, PolicyContext, TablePrivacy, TableSpec, check

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "sbx-rollup"))
    args = parser.parse_args()
    root = Path(args.data_dir) / str(args.rows)
    root.mkdir(parents=True, exist_ok=True)
    pq = root / "loans.parquet"
    if not pq.exists():
        con = duckdb.connect()
        con.execute(
            "COPY (SELECT (['黄浦','徐汇','静安','浦东','长宁','普陀','虹口','杨浦','闵行','宝山',"
            "'嘉定','金山','松江','青浦','奉贤','崇明'])[1 + (i // 12) % 16] AS district, "
            "(['retail','tech','farm'])[1 + i % 3] AS industry, "
            "CAST((hash(i) % 90000) AS BIGINT) AS amount, md5(CAST(i // 12 AS VARCHAR)) AS ek "
            f"FROM range({args.rows}) t(i)) TO '{pq}' (FORMAT PARQUET)"
        )
        con.close()
    spec = TableSpec(
        slug="loans",
        grade="conditional",
        columns={
            "district": ColumnSpec("district", "dimension"),
            "industry": ColumnSpec("industry", "dimension"),
            "amount": ColumnSpec("amount", "measure", Decimal(0), Decimal(100000)),
        },
        entity_key="ek",
        privacy=TablePrivacy.default(),
    )
    ctx = PolicyContext({"loans": spec})
    eng = DuckDBEngine(threads=2, memory_limit="1GB", temp_dir=root, projection_dir=root / "proj")
    eng.start()
    try:
        started = time.perf_counter()
        prepared = eng.prepare(str(pq), ["district", "industry", "amount"], "ek")
        prepare_ms = (time.perf_counter() - started) * 1000
        sql = (
            "SELECT district, COUNT(*) AS n, SUM(amount) AS total FROM loans "
            "WHERE industry <> '{x}' GROUP BY district"
        )
        raw = duckdb.connect()
        raw.execute("SET threads = 2")
        raw_sql = sql.replace("FROM loans", f"FROM read_parquet('{pq}')")
        times: dict[str, list[float]] = {"raw": [], "rollup": [], "bounded_raw": []}
        tables = {"loans": str(pq)}
        for i in range(args.repeat):
            q = check(sql.format(x=f"q{i}"), ctx)
            started = time.perf_counter()
            raw.execute(raw_sql.format(x=f"q{i}")).fetchall()
            times["raw"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            fast = eng.run(q, tables, timeout_s=120)
            times["rollup"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            slow = eng.run(dataclasses.replace(q, rollup=None), tables, timeout_s=120)
            times["bounded_raw"].append((time.perf_counter() - started) * 1000)
            assert fast.rollup and not slow.rollup
            assert sorted(fast.rows) == sorted(slow.rows)
        med = {k: round(statistics.median(v), 1) for k, v in times.items()}
        r = med["raw"]
        print(json.dumps({
            "rows": args.rows, "repeat": args.repeat, "prepare_ms": round(prepare_ms),
            "rollup": dataclasses.asdict(prepared.rollup) if prepared.rollup else None,
            "median_ms": med, "target_ms": round(max(1.5 * r, r + 25), 1),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }, ensure_ascii=False))
    finally:
        eng.close()


if __name__ == "__main__":
    main()
