"""Sandbox benchmark: full DP query path (policy + bounded SQL + OpenDP noise) vs raw DuckDB.

    .venv/bin/python bench/sandbox.py            # 10M rows (the file is cached between runs)
    .venv/bin/python bench/sandbox.py --quick    # 1M rows, fewer repeats
    .venv/bin/python bench/sandbox.py --rows 2000000 --repeat 7

Both sides run the same SQL text on the same Parquet file in the same run, with the same
DuckDB thread count. "raw" is the plain aggregate on an in-process DuckDB connection; "full" is
`sandbox.run_query` on conditional data with entity-level differential privacy: policy check,
rewrite (per-entity pre-aggregation, at most one group per entity by the smallest (entity,
group) hash, per-entity clamps; the projection is ordered by the entity hash), a fresh
locked-down DuckDB instance in a worker process, then OpenDP's noisy group threshold and noise. "engine" is the worker's part alone (bounded SQL, measured by the engine),
"post" the threshold + noise + post-processing. Quota and audit (database work done by the
caller) plug into `run_query(before_run=...)`; `--hook` installs a no-op one to show the seam.
Target: full <= max(1.5 x raw, raw + 25 ms). Reports the policy check alone as well.

`--engine spark` (or `both`) also runs the same checked queries on the Spark SQL engine
(`sandbox.spark_engine`, `--spark-master local[2]` by default; needs `.[spark]` and Java) and
prints DuckDB and Spark side by side: full path ms and the engine's part, plus the one-time
Spark session start. Spark's own bounding tie-break hash differs from DuckDB's, so for entities
over the group bound the released groups can differ slightly; the table shows both counts.

`--service` adds the application's whole path against a temporary SQLite app (create_app with a
temporary instance; the Parquet file is the dataset's current version): "service" calls
`sandbox.services.run_query` (license check, workspace from the database, policy, the atomic
quota UPDATE, engine, log row, audit-chain append) and commits; "http" POSTs the query to
`/api/v1/sandbox/<license>/queries` with a Bearer token through the Flask test client (adds
auth, JSON and the request boundary). Both are compared with raw DuckDB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from sandbox import (  # noqa: E402
    ColumnSpec,
    DuckDBEngine,
    PolicyContext,
    TablePrivacy,
    TableSpec,
    check,
    postprocess,
    run_query,
)

QUERIES = {
    "Q1 district: COUNT/AVG/SUM": (
        "SELECT district, COUNT(*) AS n, AVG(amount) AS avg_amount, SUM(amount) AS total "
        "FROM loans GROUP BY district"
    ),
    "Q2 district x industry: COUNT/AVG": (
        "SELECT district, industry, COUNT(*) AS n, AVG(amount) AS avg_amount "
        "FROM loans GROUP BY district, industry"
    ),
}

DISTRICTS = [
    "黄浦", "徐汇", "长宁", "静安", "普陀", "虹口", "杨浦", "闵行",
    "宝山", "嘉定", "浦东", "金山", "松江", "青浦", "奉贤", "崇明",
]  # fmt: skip


def make_data(path: Path, rows: int) -> None:
    """Deterministic synthetic loans: 16 districts, 20 industries, ~10 rows per entity."""
    entities = max(rows // 10, 100)
    districts = "[" + ", ".join(f"'{d}'" for d in DISTRICTS) + "]"
    tmp = path.with_suffix(".tmp")
    con = duckdb.connect(config={"threads": 2})
    con.execute("SET enable_progress_bar = false")
    con.execute(
        f"""
        COPY (
          SELECT
            {districts}[1 + (hash(i) % 16)::INTEGER] AS district,
            'industry_' || lpad(((hash(i * 7 + 1) % 20))::VARCHAR, 2, '0') AS industry,
            (hash(i * 13 + 5) % 1000000)::BIGINT AS amount,
            md5('entity-' || (hash(i * 31 + 3) % {entities})::VARCHAR) AS entity_key
          FROM range({rows}) r(i)
        ) TO '{tmp}' (FORMAT parquet)
        """
    )
    con.close()
    os.replace(tmp, path)


def spec() -> PolicyContext:
    loans = TableSpec(
        slug="loans",
        grade="conditional",
        columns={
            "district": ColumnSpec("district", "dimension"),
            "industry": ColumnSpec("industry", "dimension"),
            "amount": ColumnSpec("amount", "measure", Decimal(0), Decimal(1_000_000)),
            "entity_key": ColumnSpec("entity_key", "entity_key"),
        },
        entity_key="entity_key",
        privacy=TablePrivacy.default(),  # epsilon 0.5, delta 1e-6, 1 group, 12 rows per entity
    )
    return PolicyContext({"loans": loans}, row_cap=1000)


def _norm(rows) -> list:
    """Rows sorted, floats rounded (both sides sum in different orders)."""
    return sorted(tuple(round(v, 6) if isinstance(v, float) else v for v in r) for r in rows)


def timed(fn, repeat: int) -> tuple[float, object]:
    fn()  # warm-up
    times, last = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        last = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), last


def interleaved(fns: dict, repeat: int) -> dict[str, tuple[float, object]]:
    """Median ms of each function, runs alternated so background load hits all alike."""
    for fn in fns.values():
        fn()  # warm-up: file cache, prepared projection, worker spares
    times: dict[str, list[float]] = {name: [] for name in fns}
    last: dict[str, object] = {}
    for _ in range(repeat):
        for name, fn in fns.items():
            started = time.perf_counter()
            last[name] = fn()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: (statistics.median(times[name]), last[name]) for name in fns}


def service_app(data_dir: Path, parquet: Path, threads: int, instance: Path):
    """A temporary SQLite app with one buyer, the loans dataset and an active license.

    Returns (app, license_id, bearer token).
    """
    import datetime as dt

    from flask_migrate import upgrade

    from licenses.models import License, LicenseItem
    from market import create_app
    from market.accounts import services as accounts
    from market.accounts.actor import Actor
    from market.datasets.models import Dataset, DatasetColumn, DatasetVersion
    from market.extensions import db
    from market.idcodes import uscc_check_char
    from market.quotes.models import Quote

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'market.db'}",
            "INSTANCE_PATH": str(instance),
            "MARKET_DATA_DIR": str(data_dir),
            "MARKET_SANDBOX_THREADS": threads,
            "MARKET_SANDBOX_WORKERS": 1,
            "MARKET_SANDBOX_MEMORY_LIMIT": "2GB",
            "MARKET_SANDBOX_TIMEOUT_S": 120,
            "RATELIMIT_ENABLED": False,
        }
    )
    system = Actor.system("bench")
    with app.app_context():
        upgrade()
        orgs = {
            kind: accounts.create_organization(
                db.session, system, name=f"bench {kind}", kind=kind,
                credit_code=code + uscc_check_char(code), check=False,
            )
            for kind, code in (("buyer", "91310000MA1K00001"), ("department", "11310000MB2F00001"))
        }
        user = accounts.create_user(
            db.session, system, email="buyer@bench.example.cn", password="bench-password-1",
            organization_id=orgs["buyer"].id, check=False,
        )
        dataset = Dataset(
            slug="loans", department_id=orgs["department"].id, title="loans", category="bench",
            open_grade="conditional", status="listed", k_min=10,
        )
        db.session.add(dataset)
        db.session.flush()
        version = DatasetVersion(
            dataset_id=dataset.id, version=1, status="listed", filename=parquet.name,
            parquet_path=parquet.name,
        )
        version.columns = [
            DatasetColumn(position=0, name="entity_key", type="string", role="entity_key",
                          treatment="pseudonymized"),
            DatasetColumn(position=1, name="district", type="string", role="dimension"),
            DatasetColumn(position=2, name="industry", type="string", role="dimension"),
            DatasetColumn(position=3, name="amount", type="integer", role="measure",
                          lower_bound=Decimal(0), upper_bound=Decimal(1_000_000)),
        ]
        db.session.add(version)
        db.session.flush()
        dataset.current_version_id = version.id
        now = dt.datetime.now(dt.UTC)
        quote = Quote(
            buyer_org_id=orgs["buyer"].id, params_version=1, model_version="bench",
            purpose="research", duration_months=12, query_quota=1_000_000, total_fen=0,
            items=[], document={}, signature="-", key_id="-",
            expires_at=now + dt.timedelta(days=1),
        )
        db.session.add(quote)
        db.session.flush()
        lic = License(
            buyer_org_id=orgs["buyer"].id, quote_id=quote.id, status="active", purpose="research",
            purpose_statement="bench", duration_months=12, query_quota=1_000_000,
            quota_remaining=1_000_000, price_total_fen=0, starts_at=now,
            ends_at=now + dt.timedelta(days=365),
        )
        lic.items = [
            LicenseItem(dataset_id=dataset.id, dataset_version=1, amount_fen=0,
                        columns=["district", "industry", "amount"])
        ]
        db.session.add(lic)
        token, _ = accounts.issue_token(db.session, user, dt.timedelta(hours=2))
        db.session.commit()
        return app, lic.id, token, Actor.from_user(user)


def service_runner(app, license_id: int, actor):
    """One query through sandbox.services.run_query, committed (what the API view does)."""
    from market.extensions import db
    from market.keys import pseudonym_key
    from market.storage import storage
    from sandbox import app_engine, services
    from sandbox.workspace import SandboxSettings

    settings = SandboxSettings.from_config(app.config)

    def run(sql: str):
        with app.app_context():
            outcome = services.run_query(
                db.session, actor, license_id, sql, engine=app_engine.engine(),
                local_path=storage().local_path, settings=settings, dp_key=pseudonym_key(),
            )
            db.session.commit()
            return outcome.result.rows

    return run


def http_runner(app, license_id: int, token: str):
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def run(sql: str):
        r = client.post(f"/api/v1/sandbox/{license_id}/queries", json={"sql": sql}, headers=headers)
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.get_json()}")
        return [tuple(row) for row in r.get_json()["rows"]]

    return run


def _norm_json(rows) -> list:
    """Service/HTTP rows: exact decimals come back as strings (JSON); compare as floats."""
    out = []
    for r in rows:
        out.append(tuple(
            round(float(v), 6) if isinstance(v, (float, Decimal)) or (
                isinstance(v, str) and v.replace(".", "", 1).isdigit()
            ) else v
            for v in r
        ))
    return sorted(out)


def spark_table(console, args, ctx, tables, duck, hook) -> None:
    """DuckDB and Spark side by side on the same checked queries and files."""
    from sandbox.spark_engine import SparkEngine

    started = time.perf_counter()
    spark = SparkEngine(master=args.spark_master).start()
    start_s = time.perf_counter() - started
    table = Table(title=f"DuckDB vs Spark SQL ({args.spark_master}), {args.rows:,} rows, "
                        f"{args.threads} DuckDB threads")
    for col in ("query", "duckdb ms", "spark ms", "spark/duckdb", "duckdb engine ms",
                "spark engine ms", "groups duckdb", "groups spark"):
        table.add_column(col, justify="left" if col == "query" else "right")
    limit = args.spark_timeout
    try:
        for name, sql in QUERIES.items():
            sides = {
                "duckdb": lambda sql=sql: run_query(sql, ctx, tables, duck, timeout_s=limit,
                                                    before_run=hook),
                "spark": lambda sql=sql: run_query(sql, ctx, tables, spark, timeout_s=limit,
                                                   before_run=hook),
            }
            if args.spark_once:
                # One run each (DuckDB's file cache and projection are warm from the main
                # table; Spark's first run is cold), and no engine-only rerun.
                once = {}
                for side, fn in sides.items():
                    started = time.perf_counter()
                    outcome = fn()
                    once[side] = ((time.perf_counter() - started) * 1000, outcome)
                    console.print(f"{name}: {side} {once[side][0]:.0f} ms (one run)")
                (d_ms, d_out), (s_ms, s_out) = once["duckdb"], once["spark"]
                table.add_row(name, f"{d_ms:.1f}", f"{s_ms:.1f}", f"{s_ms / d_ms:.1f}x",
                              "-", "-", str(len(d_out.result.rows)),
                              str(len(s_out.result.rows)))
                continue
            measured = interleaved(sides, args.repeat)
            checked = check(sql, ctx)
            d_engine = duck.run(checked, tables, timeout_s=limit)
            s_engine = spark.run(checked, tables, timeout_s=limit)
            (d_ms, d_out), (s_ms, s_out) = measured["duckdb"], measured["spark"]
            table.add_row(name, f"{d_ms:.1f}", f"{s_ms:.1f}", f"{s_ms / d_ms:.1f}x",
                          f"{d_engine.elapsed_ms:.1f}", f"{s_engine.elapsed_ms:.1f}",
                          str(len(d_out.result.rows)), str(len(s_out.result.rows)))
    finally:
        spark.close()
    console.print(table)
    console.print(f"Spark session start (JVM, {args.spark_master}): {start_s:.1f} s, once")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1M rows, 3 repeats")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "sandbox-bench"))
    parser.add_argument("--hook", action="store_true", help="no-op before_run hook (quota/audit)")
    parser.add_argument(
        "--service",
        action="store_true",
        help="also time the app's full path (quota UPDATE, log, audit) on a temporary SQLite app",
    )
    parser.add_argument(
        "--naive",
        action="store_true",
        help="also time raw SQL plus COUNT(DISTINCT entity_key), the textbook k rewrite",
    )
    parser.add_argument("--engine", choices=("duckdb", "spark", "both"), default="duckdb",
                        help="spark/both: also run every query on the Spark SQL engine")
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--spark-timeout", type=float, default=600,
                        help="seconds per query on either engine in the side-by-side table")
    parser.add_argument("--spark-once", action="store_true",
                        help="one run per query and engine, no warm-up, and no DuckDB-only "
                             "table (for sizes where one Spark query takes minutes)")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeat = min(args.rows, 1_000_000), 3

    console = Console(width=130)
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"loans-{args.rows}.parquet"
    if not path.exists():
        started = time.perf_counter()
        make_data(path, args.rows)
        console.print(f"generated {path} in {time.perf_counter() - started:.1f} s")
    ctx = spec()
    tables = {"loans": str(path)}
    hook = (lambda checked: None) if args.hook else None

    raw = duckdb.connect(config={"threads": args.threads})
    raw.execute(f"CREATE VIEW loans AS SELECT * FROM read_parquet('{path}')")

    engine = DuckDBEngine(
        threads=args.threads,
        memory_limit="2GB",
        workers=1,
        projection_dir=data_dir / "projections",
    ).start()
    started = time.perf_counter()
    view = ctx.tables["loans"]
    engine.prepare(str(path), [c.name for c in view.visible_columns], view.entity_key)
    prepare_s = time.perf_counter() - started

    service = http = None
    instance = None
    if args.service:
        instance = Path(tempfile.mkdtemp(prefix="sandbox-bench-app-"))
        app, license_id, token, actor = service_app(data_dir, path, args.threads, instance)
        service = service_runner(app, license_id, actor)
        http = http_runner(app, license_id, token)

    if args.spark_once:
        for sql in QUERIES.values():  # warm DuckDB's side as the main table would
            run_query(sql, ctx, tables, engine, timeout_s=args.spark_timeout)
        console.print(f"one-time prepare (projection, cached on disk): {prepare_s:.1f} s")
        spark_table(console, args, ctx, tables, engine, hook)
        engine.close()
        return
    table = Table(title=f"sandbox vs raw DuckDB, {args.rows:,} rows, {args.threads} threads")
    for col in ("query", "raw ms", "full ms", "engine ms", "post ms", "ratio", "+ms",
                "target ms", "ok", "groups"):
        table.add_column(col, justify="right" if col not in ("query", "ok") else "left")
    svc_table = Table(
        title="the app's whole path (SQLite app: quota UPDATE, log row, audit append, commit)"
    )
    for col in ("query", "raw ms", "service ms", "http ms", "service - raw", "http - raw",
                "http ratio", "target ms", "ok"):
        svc_table.add_column(col, justify="left" if col in ("query", "ok") else "right")
    check_ms = []
    for name, sql in QUERIES.items():
        parts: dict[str, list[float]] = {"engine": [], "post": []}

        def full(sql=sql, parts=parts):
            outcome = run_query(sql, ctx, tables, engine, timeout_s=120, before_run=hook)
            return outcome

        def split(sql=sql, parts=parts):
            checked = check(sql, ctx)
            raw_result = engine.run(checked, tables, timeout_s=120)
            started = time.perf_counter()
            postprocess(checked, raw_result)
            parts["post"].append((time.perf_counter() - started) * 1000)
            parts["engine"].append(raw_result.elapsed_ms)

        sides = {
            "raw": lambda sql=sql: raw.execute(sql).fetchall(),
            "full": full,
            "split": split,
        }
        if service is not None and http is not None:
            sides["service"] = lambda sql=sql: service(sql)
            sides["http"] = lambda sql=sql: http(sql)
        measured = interleaved(sides, args.repeat)
        raw_ms, raw_rows = measured["raw"]
        full_ms, outcome = measured["full"]
        result = outcome.result  # type: ignore[attr-defined]
        target = max(1.5 * raw_ms, raw_ms + 25)
        table.add_row(
            name,
            f"{raw_ms:.1f}",
            f"{full_ms:.1f}",
            f"{statistics.median(parts['engine']):.1f}",
            f"{statistics.median(parts['post']):.2f}",
            f"{full_ms / raw_ms:.2f}x",
            f"{full_ms - raw_ms:+.1f}",
            f"{target:.1f}",
            "yes" if full_ms <= target else "NO",
            f"{len(result.rows)} of {len(raw_rows)}",  # type: ignore[arg-type]
        )
        check_ms.append(timed(lambda sql=sql: check(sql, ctx), 200)[0])
        if "service" in measured:
            svc_ms, svc_rows = measured["service"]
            http_ms, http_rows = measured["http"]
            if len(svc_rows) != len(result.rows) or len(http_rows) != len(result.rows):
                console.print(f"[yellow]service/http released other groups for {name}[/yellow]")
            svc_table.add_row(
                name,
                f"{raw_ms:.1f}",
                f"{svc_ms:.1f}",
                f"{http_ms:.1f}",
                f"{svc_ms - raw_ms:+.1f}",
                f"{http_ms - raw_ms:+.1f}",
                f"{http_ms / raw_ms:.2f}x",
                f"{target:.1f}",
                "yes" if http_ms <= target else "NO",
            )
    console.print(table)
    if args.engine in ("spark", "both"):
        spark_table(console, args, ctx, tables, engine, hook)
    if service is not None:
        console.print(svc_table)
    if args.naive:
        for name, sql in QUERIES.items():
            naive = sql.replace(" FROM loans", ", COUNT(DISTINCT entity_key) AS k FROM loans")
            ms, _ = timed(lambda naive=naive: raw.execute(naive).fetchall(), 1)
            console.print(f"naive k rewrite, raw DuckDB, {name}: {ms:.0f} ms")
    console.print(
        f"policy check alone: {', '.join(f'{m:.2f} ms' for m in check_ms)} (median of 200)"
    )
    console.print(
        f"one-time prepare (projection + max rows per entity; cached on disk): {prepare_s:.1f} s"
    )
    engine.close()
    if instance is not None:
        from sandbox import app_engine

        app_engine.close_all()
        import shutil

        shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    main()
