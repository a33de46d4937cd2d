"""Where the milliseconds of one new (uncached) sandbox question go, in the app's process.

    PYTHONPATH=$PWD /work/main/.venv/bin/python bench/sandbox_newq_profile.py --rows 1000000 \
        --repeat 20 [--cprofile out.prof]

The HTTP bench's set-up (``bench/sandbox_http.py``: a throwaway PostgreSQL database, a DP
dataset of ``--rows`` rows, a buyer with a license), but the app runs in this process and the
questions go through Flask's test client, so that the request's own work can be split:
``spans`` times the phases of ``sandbox.services.run_query`` (by wrapping its helpers), and
``--cprofile`` writes a cProfile of the timed questions (the engine's worker is another
process: in the profile it is the time spent waiting on its pipe). CPU time of this process
(``process_cpu_ms``) is reported next to wall time, since wall time is noisy on a shared
machine. Not a target measurement (that is ``bench/sandbox_http.py``, over gunicorn).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPANS: dict[str, list[float]] = defaultdict(list)


def _timed(owner, name: str, label: str) -> None:
    fn = getattr(owner, name, None)
    if fn is None:  # gone from this version of the code
        return

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        started = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            SPANS[label].append((time.perf_counter() - started) * 1000)

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--cprofile", default=None, help="write a cProfile of the timed runs")
    parser.add_argument("--statements", action="store_true",
                        help="print the SQL statements of the last timed request")
    args = parser.parse_args()

    import datetime as dt

    import duckdb

    from tests import pg
    from tests.conftest import PASSWORD, TEST_SECRETS, migrate_to_head
    from tests.sandbox_app import data

    url = pg.create_database()
    tmp = Path(tempfile.mkdtemp(prefix="bench-sbx-prof-"))
    try:
        from market import create_app

        config = {
            "SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(tmp / "instance"),
            "MARKET_DATA_DIR": str(tmp / "instance" / "data"), "SESSION_COOKIE_SECURE": False,
            "MARKET_JOB_RUNNER": "inline", "MARKET_SANDBOX_TIMEOUT_S": 60, **TEST_SECRETS,
        }
        app = create_app(config)
        migrate_to_head(app)
        from market.accounts import services as accounts
        from market.accounts.actor import Actor
        from market.extensions import db, limiter

        limiter.enabled = False
        with app.app_context():
            buyer = data.org(db.session, "buyer")
            user = accounts.create_user(
                db.session, Actor.system("bench"), email="bench@buyer.example.cn",
                password=PASSWORD, organization_id=buyer.id, check=False,
            )
            ds = data.dataset(db.session, app.config["MARKET_DATA_DIR"], "loans",
                              dp_budget="1000", version_budget="1000")
            lic = data.license_for(db.session, buyer.id, [(ds, None)], quota=10_000)
            token, _ = accounts.issue_token(db.session, user, dt.timedelta(hours=2))
            key = ds.current_version.parquet_path
            db.session.commit()
            lic_id = lic.id
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

        from sandbox import engine as engine_mod
        from sandbox import runner, services

        _timed(services, "_usable_license", "a.license")
        _timed(services, "_workspace", "a.workspace")
        _timed(services, "_check", "a.policy_check")
        _timed(services, "_take_quota", "a.quota")
        _timed(services, "_claim", "a.claim")
        _timed(services, "_find_release", "a+c.find_release")
        _timed(services, "_charge_budget", "a.charge_budget")
        _timed(services, "_store_release", "c.store_release")
        _timed(services, "budgets_of", "c.budgets_of")
        _timed(services, "_quota_of", "c.quota_of")
        _timed(services.audit, "record", "a+c.audit_record")
        _timed(services, "_answer", "c.answer_json")
        _timed(services, "run_checked", "b.run_checked(engine+noise)")
        _timed(engine_mod.DuckDBEngine, "run", "b.engine.run")
        _timed(engine_mod.DuckDBEngine, "_call", "b.engine.worker_roundtrip")
        _timed(runner, "postprocess", "b.postprocess(noise)")

        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        sql = ("SELECT district, COUNT(*) AS n, SUM(amount) AS total FROM loans "
               "WHERE industry <> '{x}' GROUP BY district")
        qurl = f"/api/v1/sandbox/{lic_id}/queries"
        started = time.perf_counter()
        r = client.post(qurl, json={"sql": sql.format(x="warm0")}, headers=headers)
        assert r.status_code == 200, r.get_json()
        first_ms = (time.perf_counter() - started) * 1000
        for i in range(3):  # warm: statement caches, the policy's imports, the worker spares
            client.post(qurl, json={"sql": sql.format(x=f"warm{i + 1}")}, headers=headers)
        SPANS.clear()
        statements: list[str] = []
        if args.statements:
            import sqlalchemy as sa

            with app.app_context():
                sa.event.listen(db.engine, "before_cursor_execute",
                                lambda conn, cur, stmt, *a: statements.append(stmt))
        prof = cProfile.Profile() if args.cprofile else None
        wall, cpu = [], []
        for i in range(args.repeat):
            time.sleep(0.05)  # let the worker open its spare instances, as between requests
            c0, w0 = time.process_time(), time.perf_counter()
            with prof or contextlib.nullcontext():
                r = client.post(qurl, json={"sql": sql.format(x=f"q{i}")}, headers=headers)
            wall.append((time.perf_counter() - w0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
            assert r.status_code == 200 and not r.get_json()["cached"], r.get_json()
            if i < args.repeat - 1:
                statements.clear()
        if prof is not None:
            prof.dump_stats(args.cprofile)
        for stmt in statements:
            print(" ".join(stmt.split())[:160], file=sys.stderr)
        if args.statements:
            print(f"{len(statements)} statements in the last request", file=sys.stderr)
        print(json.dumps({
            "rows": args.rows, "repeat": args.repeat, "first_question_ms": round(first_ms, 1),
            "request_wall_median_ms": round(statistics.median(wall), 1),
            "process_cpu_median_ms": round(statistics.median(cpu), 1),
            "spans_median_ms": {k: round(statistics.median(v), 2) for k, v in sorted(SPANS.items())},
            "spans_calls_per_request": {k: round(len(v) / args.repeat, 1)
                                        for k, v in sorted(SPANS.items())},
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }, indent=1, ensure_ascii=False))
    finally:
        from sandbox import app_engine

        app_engine.close_all()
        with contextlib.suppress(Exception):
            with app.app_context():
                db.engine.dispose()
        pg.drop_database(url)


if __name__ == "__main__":
    main()
