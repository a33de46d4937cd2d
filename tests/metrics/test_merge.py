"""Request-latency counts merge across processes and app instances in the database, and the
monthly report takes its HTTP p95 from them."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import sqlalchemy as sa

from market.metrics.histogram import percentile
from market.metrics.recorder import month_histogram

ROOT = Path(__file__).resolve().parents[2]
AT = dt.datetime(2026, 3, 10, 4, 30, tzinfo=dt.UTC)  # 2026-03 in Asia/Shanghai too

# Each process observes these (duration ms, count), one flush after every observation, so
# that the two processes' upserts race on the same rows.
WORKLOAD = {"A": [(3, 40), (40, 8), (700, 2)], "B": [(3, 10), (40, 30), (4_000, 10)]}

SCRIPT = textwrap.dedent("""
    import datetime as dt, json, sys
    from tests.conftest import make_test_app
    from market.extensions import db
    from market.metrics.recorder import LatencyRecorder

    url, instance, workload = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    app = make_test_app(url, __import__("pathlib").Path(instance))
    at = dt.datetime.fromisoformat(sys.argv[4])
    with app.app_context():
        recorder = LatencyRecorder()
        for ms, n in workload:
            for _ in range(n):
                recorder.observe("sandbox_api", ms, at)
                recorder.flush(db.engine)
        db.engine.dispose()
""")


def _histogram(app, start, end):
    from market.extensions import db

    with app.app_context():
        return month_histogram(db.session, start, end)


def test_two_processes_merge_their_counts(live_app, tmp_path):
    import json

    url = live_app.config["SQLALCHEMY_DATABASE_URI"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, url, str(tmp_path / name), json.dumps(work),
             AT.isoformat()],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        for name, work in WORKLOAD.items()
    ]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out.decode(errors="replace")[-3000:]

    hist = _histogram(live_app, AT.replace(day=1, hour=0), AT.replace(day=28))
    # Exactly the sum of both processes, bucket by bucket: nothing lost, nothing doubled.
    assert hist == {"sandbox_api": {5: 50, 50: 38, 1_000: 2, 5_000: 10}}
    # 100 requests: the 95th is in the 5 s bucket; A alone would say 50 ms, B alone 5 s.
    assert percentile(hist["sandbox_api"], 95) == 5_000
    assert percentile({5: 40, 50: 8, 1_000: 2}, 95) == 50


def _closed(response) -> int:
    """A server closes each response once sent (that is when the counts are written)."""
    response.close()
    return response.status_code


def _regulator_headers(app) -> dict[str, str]:
    from market.accounts import services
    from market.accounts.actor import Actor
    from market.extensions import db
    from tests.conftest import valid_uscc

    with app.app_context():
        org = services.create_organization(db.session, Actor.system("test"), name="regulator",
                                           kind="regulator", credit_code=valid_uscc(7),
                                           check=False)
        user = services.create_user(db.session, Actor.system("test"), email="reg@x.cn",
                                    password="long-password-1", organization_id=org.id,
                                    check=False)
        token, _ = services.issue_token(db.session, user, dt.timedelta(hours=1))
        db.session.commit()
        db.session.remove()
    return {"Authorization": f"Bearer {token}"}


def test_two_app_instances_measure_requests_and_the_report_reads_them(live_app, tmp_path):
    from market.quotes.revenue import current_period
    from tests.conftest import make_test_app

    second = make_test_app(live_app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "second")
    for app in (live_app, second):
        app.config["MARKET_HTTP_METRICS_FLUSH_S"] = 0  # write after every request
    headers = _regulator_headers(live_app)
    for app, n in ((live_app, 3), (second, 4)):
        client = app.test_client()
        for _ in range(n):
            assert _closed(client.get("/api/v1/health")) == 200
        assert _closed(client.get("/api/v1/reports/2020-01")) == 401  # counted too

    from market.extensions import db
    from market.metrics.models import HttpLatencyBucket

    with live_app.app_context():
        by_group = dict(db.session.execute(
            sa.select(HttpLatencyBucket.route_group, sa.func.sum(HttpLatencyBucket.request_count))
            .group_by(HttpLatencyBucket.route_group)
        ).all())
    assert by_group.get("reports_api") == 2
    assert sum(by_group.values()) == 9  # 7 health checks and 2 refused reports
    # Web pages are not API requests: not measured.
    assert second.test_client().get("/").status_code in (200, 302)

    r = second.test_client().get(f"/api/v1/reports/{current_period()}", headers=headers)
    assert r.status_code == 200, r.get_json()
    kpis = r.get_json()["report"]["kpis"]
    assert kpis["http_requests_timed"] == sum(by_group.values())
    assert isinstance(kpis["http_p95_ms"], int) and kpis["http_p95_ms"] >= 1
    groups = {g["route_group"]: g for g in kpis["http_latency_by_route_group"]}
    assert groups["reports_api"]["requests"] == 2
    assert sum(g["requests"] for g in groups.values()) == kpis["http_requests_timed"]
    # Another month: nothing measured, and said so.
    r = second.test_client().get("/api/v1/reports/2020-01", headers=headers)
    assert r.get_json()["report"]["kpis"]["http_p95_ms"] is None
    for app in (live_app, second):
        app.config["MARKET_HTTP_METRICS_FLUSH_S"] = -1  # off: the database goes with the test
    with second.app_context():
        db.engine.dispose()


def test_a_report_writes_this_processs_pending_counts_before_reading_them(live_app, caplog):
    """The report flushes this process's pending counts on a connection of its own. On SQLite
    the request's own transaction held the write lock from its sign-in on, so that flush
    waited the whole 30 s busy timeout, gave up with a warning, and the report missed these
    requests (found by timing the suite: every report took 30 s on SQLite)."""
    import logging

    from market.quotes.revenue import current_period

    live_app.config["MARKET_HTTP_METRICS_FLUSH_S"] = 3600  # counts wait for the report's flush
    try:
        headers = _regulator_headers(live_app)
        client = live_app.test_client()
        for _ in range(5):
            assert _closed(client.get("/api/v1/health")) == 200
        recorder = live_app.extensions["market.latency"]
        assert recorder.pending()  # not all written yet: the report must write them
        with caplog.at_level(logging.WARNING, logger="market.metrics.recorder"):
            r = client.get(f"/api/v1/reports/{current_period()}", headers=headers)
        assert r.status_code == 200, r.get_json()
        assert "could not write" not in caplog.text
        assert r.get_json()["report"]["kpis"]["http_requests_timed"] == 5
    finally:
        live_app.config["MARKET_HTTP_METRICS_FLUSH_S"] = -1
