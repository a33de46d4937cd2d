"""#17.1 (queries): sandbox queries on a separate Celery queue answer as in-process ones.

A real ``celery -A market.worker worker -Q <sandbox queue>`` (prefork: Celery's time limits
need it) on the machine's Redis; the API is driven through the test client of an app on its
own database. With noise disabled through the test-only seam, the HTTP answers of the same
queries are equal whether the engine ran in-process or on the queue, and a query that runs
past its timeout gets the same QueryTimeout.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.conftest import TEST_SECRETS
from tests.sandbox_app import data
from tests.sandbox_app.test_availability import _seed
from tests.scale.conftest import ROOT, celery_env, start_worker

#: Equivalent questions with different text (a repeated text could come from the release
#: cache and never reach the engine).
QUERIES = [
    "SELECT district, COUNT(*) AS n, SUM(amount) AS total FROM loans "
    "WHERE industry <> 'none{i}' GROUP BY district",
    "SELECT COUNT(*) AS n, AVG(amount) AS mean FROM loans WHERE district <> 'none{i}'",
]
VOLATILE = {"query_id", "id", "elapsed_ms", "created_at", "quota_remaining", "budget",
            "epsilon_remaining", "remaining", "privacy_budget_remaining", "budget_remaining",
            "budgets"}


def _stable(body):
    if isinstance(body, dict):
        return {k: _stable(v) for k, v in body.items() if k not in VOLATILE}
    if isinstance(body, list):
        return [_stable(v) for v in body]
    return body


def _start_sandbox_worker(live_app, tmp_path, monkeypatch, name: str, *, app: str = "market.worker",
                          **extra: str):
    """A ``sandbox`` queue worker (prefork, one process) on ``live_app``'s database, its
    ``MARKET_DATA_DIR`` the app's unless ``extra`` says otherwise; returns (env, worker)."""
    base = {
        **os.environ, **TEST_SECRETS,
        "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": live_app.config["SQLALCHEMY_DATABASE_URI"],
        "MARKET_INSTANCE_PATH": str(tmp_path / f"{name}-instance"),
        "MARKET_DATA_DIR": live_app.config["MARKET_DATA_DIR"],
        "MARKET_SANDBOX_WORKERS": "1",
        **extra,
    }
    env = celery_env(base)
    worker = start_worker(env, tmp_path / f"{name}.log", queue=env["MARKET_CELERY_SANDBOX_QUEUE"],
                          pool="prefork", concurrency=1, announce=False, app=app)
    monkeypatch.setenv("MARKET_CELERY_SANDBOX_QUEUE", env["MARKET_CELERY_SANDBOX_QUEUE"])
    return env, worker


@pytest.fixture
def sandbox_worker(celery_available, live_app, tmp_path, monkeypatch):
    env, worker = _start_sandbox_worker(live_app, tmp_path, monkeypatch, "sandbox-worker")
    yield env, worker
    worker.stop()


def test_the_queue_gives_the_in_process_http_answer(sandbox_worker, live_app):
    from sandbox import NoNoise, app_engine

    env, worker = sandbox_worker
    license_id, token, _ = _seed(live_app)
    live_app.extensions["sandbox.noise"] = NoNoise(min_entities=data.K)
    # The worker's first query starts its DuckDB pool and prepares the projection: on a busy
    # machine that alone can take seconds.
    live_app.config["MARKET_SANDBOX_TIMEOUT_S"] = 90
    headers = {"Authorization": f"Bearer {token}", "Accept-Language": "en"}
    url = f"/api/v1/sandbox/{license_id}/queries"

    def ask(sql: str):
        with live_app.test_client() as http:
            res = http.post(url, json={"sql": sql}, headers=headers)
        return res.status_code, res.get_json()

    try:
        local = [ask(q.format(i=1)) for q in QUERIES]
        app_engine.close_engine(live_app)
        live_app.config.update(MARKET_SANDBOX_RUNNER="celery",
                               CELERY_BROKER_URL=env["CELERY_BROKER_URL"])
        queued = [ask(q.format(i=2)) for q in QUERIES]
        assert type(app_engine.engine_for(live_app)).__name__ == "CeleryEngine"
    finally:
        app_engine.close_engine(live_app)
        live_app.config["MARKET_SANDBOX_RUNNER"] = "inline"
    for (s1, b1), (s2, b2) in zip(local, queued, strict=True):
        assert s1 == s2 == 200, (b1, b2, worker.text()[-3000:])
        assert b1["rows"], "nothing released: the comparison would be empty"
        assert _stable(b1) == _stable(b2)
    # The worker logs a task's success after storing its result, so the web process may have
    # the answer before the line is written: wait for it.
    deadline = time.monotonic() + 30
    while worker.text().count("succeeded") < len(QUERIES) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert worker.text().count("succeeded") >= len(QUERIES), worker.text()[-2000:]


def test_a_query_past_its_timeout_on_the_queue_is_a_timeout(sandbox_worker):
    """The worker's engine stops it; the web process answers QueryTimeout as in-process."""
    from sandbox.celery_engine import CeleryEngine, EngineQuery
    from sandbox.errors import QueryTimeout

    env, _ = sandbox_worker
    engine = CeleryEngine(env["CELERY_BROKER_URL"], queue=env["MARKET_CELERY_SANDBOX_QUEUE"],
                          grace_s=5)
    endless = EngineQuery(
        "SELECT COUNT(*) FROM range(1000000000000) t(i) WHERE i % 7 = 3", (), 10
    )
    with pytest.raises(QueryTimeout):
        engine.run(endless, {}, timeout_s=1)


@pytest.fixture
def hanging_worker(celery_available, live_app, tmp_path, monkeypatch):
    """A sandbox queue worker (prefork, one process) whose engine hangs once in C code."""
    flag = tmp_path / "hung-once"
    env, worker = _start_sandbox_worker(live_app, tmp_path, monkeypatch, "hung-worker",
                                        app="tests.scale.hung_engine_worker",
                                        MARKET_TEST_HANG_ONCE=str(flag))
    yield env, worker, flag
    worker.stop()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie waiting to be reaped by the pool is dead too.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_task_that_ignores_its_timeout_is_killed_and_charged_once(hanging_worker, live_app):
    """An engine stuck in C code ignores the engine's timeout, Celery's soft limit and SIGTERM:
    the pool's hard ``time_limit`` kills it. The buyer gets the one charged timeout answer that
    an in-process timeout gives; the worker serves the next query; no claim is left behind, and
    quota and budget were each charged exactly once per accepted query."""
    import time

    import sqlalchemy as sa

    from licenses.models import License
    from market.audit.services import verify_chain
    from market.extensions import db
    from market.keys import public_keys
    from sandbox import NoNoise, app_engine
    from sandbox.celery_engine import GRACE_S
    from sandbox.models import PrivacySpending, SandboxQuery, SandboxRelease, SandboxReleaseClaim

    env, worker, flag = hanging_worker
    license_id, token, _ = _seed(live_app)
    live_app.extensions["sandbox.noise"] = NoNoise(min_entities=data.K)  # rows to compare
    headers = {"Authorization": f"Bearer {token}", "Accept-Language": "en"}
    url = f"/api/v1/sandbox/{license_id}/queries"
    sql = QUERIES[0].format(i=7)

    def ask():
        started = time.monotonic()
        with live_app.test_client() as http:
            res = http.post(url, json={"sql": sql}, headers=headers)
        return res.status_code, res.get_json(), time.monotonic() - started

    def state():
        with live_app.app_context():
            db.session.expire_all()
            out = (
                db.session.scalar(sa.select(License.quota_remaining)
                                  .where(License.id == license_id)),
                db.session.scalars(sa.select(SandboxQuery).where(
                    SandboxQuery.license_id == license_id).order_by(SandboxQuery.id)).all(),
                db.session.scalar(sa.select(sa.func.sum(PrivacySpending.epsilon_spent))),
                db.session.scalar(sa.select(sa.func.count()).select_from(SandboxReleaseClaim)),
                db.session.scalar(sa.select(sa.func.count()).select_from(SandboxRelease)),
            )
            db.session.remove()
        return out

    quota_before = state()[0]
    configured_timeout = live_app.config["MARKET_SANDBOX_TIMEOUT_S"]
    timeout_s = 3
    live_app.config.update(MARKET_SANDBOX_RUNNER="celery", MARKET_SANDBOX_TIMEOUT_S=timeout_s,
                           CELERY_BROKER_URL=env["CELERY_BROKER_URL"])
    app_engine.close_engine(live_app)
    try:
        status, body, waited = ask()
        hung_pid = int(flag.read_text())
        assert status == 422, (body, worker.text()[-3000:])
        assert body["errors"]["rule"] == "timeout", body
        assert body["message"] == "The query ran too long and was stopped; narrow it down " \
            "and try again.", body
        # Answered once the hard limit was reached (the pool reports it, then kills).
        assert waited >= timeout_s + GRACE_S, waited
        assert "Hard time limit" in worker.text(), worker.text()[-3000:]
        deadline = time.monotonic() + 30  # the pool sends TERM, then KILL, then reaps it
        while _process_alive(hung_pid):
            assert time.monotonic() < deadline, ("the stuck process survived", worker.text())
            time.sleep(0.2)
        quota, rows, eps, claims, releases = state()
        assert quota == quota_before - 1  # charged, once
        assert [(r.status, r.rule, r.quota_charged) for r in rows] == [
            ("timeout", "timeout", True)]
        spent_first = rows[0].epsilon_spent
        assert spent_first > 0 and eps == spent_first
        assert claims == 0 and releases == 0  # nothing released, no claim left to block

        # The worker recovered (a new pool process) and answers the same question, charged.
        live_app.config["MARKET_SANDBOX_TIMEOUT_S"] = 90
        status, body, _ = ask()
        assert status == 200, (body, worker.text()[-3000:])
        assert body["rows"]
        quota, rows, eps, claims, releases = state()
        assert quota == quota_before - 2
        assert [(r.status, r.quota_charged) for r in rows] == [("timeout", True), ("ok", True)]
        assert eps == spent_first + rows[1].epsilon_spent
        assert claims == 0 and releases == 1
    finally:
        app_engine.close_engine(live_app)
        live_app.config.update(MARKET_SANDBOX_RUNNER="inline",
                               MARKET_SANDBOX_TIMEOUT_S=configured_timeout)
    with live_app.app_context():
        verdict = verify_chain(db.session, public_keys())
        assert verdict.valid, verdict.to_dict()
        db.session.remove()


def test_a_query_host_with_its_own_data_folder_fetches_the_files_from_the_bucket(
    celery_available, s3_bucket, live_app, tmp_path, monkeypatch
):
    """``MARKET_STORAGE=s3`` and the sandbox queue: the web host sends storage keys and their
    digests, never its own paths, and downloads nothing; the query host, with another data
    folder, fetches each file into its own content-hash cache, checked, and answers as an
    in-process engine would."""
    import hashlib
    from pathlib import Path

    import sqlalchemy as sa

    from market.datasets.models import DatasetVersion
    from market.extensions import db
    from market.storage import S3Storage
    from sandbox import NoNoise, app_engine

    endpoint, bucket, client = s3_bucket
    s3 = {"MARKET_STORAGE": "s3", "MARKET_S3_BUCKET": bucket, "MARKET_S3_ENDPOINT_URL": endpoint,
          "MARKET_S3_PREFIX": "prod"}
    license_id, token, _ = _seed(live_app)
    live_app.extensions["sandbox.noise"] = NoNoise(min_entities=data.K)
    live_app.config["MARKET_SANDBOX_TIMEOUT_S"] = 90
    web_dir = Path(live_app.config["MARKET_DATA_DIR"])
    headers = {"Authorization": f"Bearer {token}", "Accept-Language": "en"}
    url = f"/api/v1/sandbox/{license_id}/queries"

    def ask(sql: str):
        with live_app.test_client() as http:
            res = http.post(url, json={"sql": sql}, headers=headers)
        return res.status_code, res.get_json()

    local = [ask(q.format(i=1)) for q in QUERIES]  # in-process, from the web host's folder
    # Publication as on S3: the files go to the bucket with their digests recorded, and the
    # web host keeps no copy (as a web host that never published them).
    uploader = S3Storage(tmp_path / "publisher", bucket=bucket, client=client, prefix="prod")
    digests = {}
    with live_app.app_context():
        for version in db.session.scalars(sa.select(DatasetVersion)):
            path = web_dir / version.parquet_path
            version.parquet_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
            uploader._upload(path, uploader._object(version.parquet_path),
                             {"sha256": version.parquet_sha256})
            digests[version.parquet_path] = version.parquet_sha256
            path.unlink()
        db.session.commit()
    assert digests

    worker_dir = tmp_path / "query-host" / "data"
    env, worker = _start_sandbox_worker(live_app, tmp_path, monkeypatch, "query-host", **s3,
                                        MARKET_DATA_DIR=str(worker_dir))
    try:
        app_engine.close_engine(live_app)
        live_app.extensions.pop("market.storage", None)
        live_app.config.update(MARKET_SANDBOX_RUNNER="celery",
                               CELERY_BROKER_URL=env["CELERY_BROKER_URL"], **s3)
        queued = [ask(q.format(i=2)) for q in QUERIES]
    finally:
        app_engine.close_engine(live_app)
        live_app.extensions.pop("market.storage", None)
        live_app.config.update(MARKET_SANDBOX_RUNNER="inline", MARKET_STORAGE="local")
        worker.stop()
    for (s1, b1), (s2, b2) in zip(local, queued, strict=True):
        assert s1 == s2 == 200, (b1, b2, worker.text()[-3000:])
        assert b1["rows"] and _stable(b1) == _stable(b2)
    # The query host fetched each file into its own cache, checked; the web host holds none.
    cached = {p.name for p in (worker_dir / ".cache").glob("*.parquet")}
    assert cached == {f"{d}.parquet" for d in digests.values()}, worker.text()[-2000:]
    # (Its projections folder holds what the in-process questions above derived.)
    assert not list((web_dir / ".cache").glob("*")), "the web host downloaded a file"
    assert not [k for k in digests if (web_dir / k).exists()]
