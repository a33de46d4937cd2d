"""Sandbox over HTTP, DP on: end-to-end latency of one new (uncached) question through
gunicorn on PostgreSQL, against the same SQL run directly in DuckDB on the Parquet file.

    PYTHONPATH=$PWD /work/main/.venv/bin/python bench/sandbox_http.py --rows 1000000 --repeat 7

It makes a throwaway PostgreSQL database (127.0.0.1:5432, like the tests), a conditional
dataset of ``--rows`` rows (12 rows per enterprise, 16 districts), a buyer with a license,
starts gunicorn (gthread, 1 worker) on a free loopback port, and times ``--repeat`` distinct
questions (each a new release: budget charged, noise drawn, release stored) over HTTP with
``urllib``, then the same questions again (cached releases: no engine, the app's own cost).
Raw: the same GROUP BY in DuckDB (2 threads) on the same file. Target (issue #12):
end-to-end <= max(1.5 x raw, raw + 25 ms). The file is prepared (projection and per-entity
rollup) as the publication job prepares it, before the server starts
(``prepared_at_publication_ms``); ``--lazy-prepare`` leaves that to the first question.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict, token: str, timeout: float = 120) -> tuple[int, float]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=timeout) as r:
        r.read()
        status = r.status
    return status, (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-rollups", action="store_true",
                        help="MARKET_SANDBOX_ROLLUPS off: the raw bounded SQL (for comparison)")
    parser.add_argument("--lazy-prepare", action="store_true",
                        help="skip the publication job's preparation of the file: the first "
                             "question builds the projection and rollup (as before)")
    args = parser.parse_args()

    import datetime as dt

    import duckdb

    from tests import pg
    from tests.conftest import PASSWORD, TEST_SECRETS, make_test_app, migrate_to_head
    from tests.sandbox_app import data

    url = pg.create_database()
    tmp = Path(tempfile.mkdtemp(prefix="bench-sbx-http-"))
    server = None
    try:
        app = make_test_app(url, tmp / "instance")
        migrate_to_head(app)
        from market.accounts import services as accounts
        from market.accounts.actor import Actor
        from market.extensions import db

        with app.app_context():
            buyer = data.org(db.session, "buyer")
            user = accounts.create_user(
                db.session, Actor.system("bench"), email="bench@buyer.example.cn",
                password=PASSWORD, organization_id=buyer.id, check=False,
            )
            ds = data.dataset(db.session, app.config["MARKET_DATA_DIR"], "loans",
                              dp_budget="1000", version_budget="1000")
            lic = data.license_for(db.session, buyer.id, [(ds, None)], quota=1000)
            token, _ = accounts.issue_token(db.session, user, dt.timedelta(hours=2))
            key = ds.current_version.parquet_path
            db.session.commit()
            lic_id = lic.id
            version_id = ds.current_version.id
        parquet = Path(app.config["MARKET_DATA_DIR"]) / key
        con = duckdb.connect()
        con.execute(
            f"COPY (SELECT (['黄浦','徐汇','静安','浦东','长宁','普陀','虹口','杨浦','闵行','宝山',"
            f"'嘉定','金山','松江','青浦','奉贤','崇明'])[1 + (i // 12) % 16] AS district, "
            f"(['retail','tech','farm'])[1 + i % 3] AS industry, "
            f"CAST((hash(i) % 90000) AS BIGINT) AS amount, md5(CAST(i // 12 AS VARCHAR)) AS ek, "
            f"'x' AS id_no, 'unlicensed' AS secret FROM range({args.rows}) t(i)) "
            f"TO '{parquet}' (FORMAT PARQUET)"
        )
        con.close()
        prepare_ms = None
        if not args.no_rollups and not args.lazy_prepare:
            # What the publication job does once the file is final (sandbox.app_engine).
            from market.datasets.models import DatasetVersion
            from sandbox import app_engine

            with app.app_context():
                version = db.session.get(DatasetVersion, version_id)
                version.row_count = args.rows
                plan = app_engine.publication_plan(app.config, version, db.session)
                db.session.rollback()
            if plan is not None:  # None below MARKET_SANDBOX_PREPARE_MIN_ROWS
                started = time.perf_counter()
                app_engine.prepare_file(app.config, str(parquet), plan[1])
                prepare_ms = (time.perf_counter() - started) * 1000

        port = _free_port()
        config = {
            "SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(tmp / "instance"),
            "MARKET_DATA_DIR": app.config["MARKET_DATA_DIR"], "SESSION_COOKIE_SECURE": False,
            "MARKET_JOB_RUNNER": "inline", "MARKET_SANDBOX_TIMEOUT_S": 60, **TEST_SECRETS,
            "MARKET_SANDBOX_ROLLUPS": not args.no_rollups,
        }
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SBX_SLOW_CONFIG": json.dumps(config),
               "SBX_SLOW_SECONDS": "0"}
        gunicorn = Path(sys.executable).parent / "gunicorn"
        server = subprocess.Popen(
            [str(gunicorn), "-k", "gthread", "--threads", "4", "-w", "1", "--timeout", "300",
             "-b", f"127.0.0.1:{port}", "tests.sandbox_app.slow_server:create()"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                with urllib.request.urlopen(base + "/api/v1/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.2)
        sql = ("SELECT district, COUNT(*) AS n, SUM(amount) AS total FROM loans "
               "WHERE industry <> '{x}' GROUP BY district")
        qurl = f"{base}/api/v1/sandbox/{lic_id}/queries"
        # worker start, first connection (and with --lazy-prepare the one-time projection and
        # rollup of the file)
        started = time.perf_counter()
        _post(qurl, {"sql": sql.format(x="warm0")}, token, timeout=1800)
        first_ms = (time.perf_counter() - started) * 1000
        raw_con = duckdb.connect()
        raw_con.execute("SET threads = 2")
        raw_sql = sql.replace("FROM loans", f"FROM read_parquet('{parquet}')")
        raw_con.execute(raw_sql.format(x="warm")).fetchall()
        http, raw = [], []
        for i in range(args.repeat):  # alternated, so that both see the same machine load
            started = time.perf_counter()
            raw_con.execute(raw_sql.format(x=f"q{i}")).fetchall()
            raw.append((time.perf_counter() - started) * 1000)
            status, ms = _post(qurl, {"sql": sql.format(x=f"q{i}")}, token)
            assert status == 200, status
            http.append(ms)
        cached = []  # the same questions again: stored releases, no engine (the app's own cost)
        for i in range(args.repeat):
            status, ms = _post(qurl, {"sql": sql.format(x=f"q{i}")}, token)
            assert status == 200, status
            cached.append(ms)
        r, h = statistics.median(raw), statistics.median(http)
        target = max(1.5 * r, r + 25)
        print(json.dumps({
            "rows": args.rows, "repeat": args.repeat, "raw_duckdb_median_ms": round(r, 1),
            "http_end_to_end_median_ms": round(h, 1), "http_p_max_ms": round(max(http), 1),
            "http_cached_median_ms": round(statistics.median(cached), 1),
            "target_ms": round(target, 1), "within_target": h <= target,
            "rollups": not args.no_rollups, "first_question_ms": round(first_ms, 1),
            "prepared_at_publication_ms": None if prepare_ms is None else round(prepare_ms),
            "raw_ms": [round(x, 1) for x in raw], "http_ms": [round(x, 1) for x in http],
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        pg.drop_database(url)


if __name__ == "__main__":
    main()
