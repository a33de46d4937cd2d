"""#17.1 (queries): sandbox queries on a separate Celery queue answer as in-process ones.

A real ``celery -A market.worker worker -Q <sandbox queue>`` (prefork: Celery's time limits
need it) on the machine's Redis; the API is driven through the test client of an app on its
own database. With noise disabled through the test-only seam, the HTTP answers of the same
queries are equal whether the engine ran in-process or on the queue, and a query that runs
past its timeout gets the same QueryTimeout.
"""

from __future__ import annotations

import os

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


@pytest.fixture
def sandbox_worker(celery_available, live_app, tmp_path, monkeypatch):
    base = {
        **os.environ, **TEST_SECRETS,
        "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": live_app.config["SQLALCHEMY_DATABASE_URI"],
        "MARKET_INSTANCE_PATH": str(tmp_path / "worker-instance"),
        "MARKET_DATA_DIR": live_app.config["MARKET_DATA_DIR"],
        "MARKET_SANDBOX_WORKERS": "1",
    }
    env = celery_env(base)
    worker = start_worker(env, tmp_path / "sandbox-worker.log",
                          queue=env["MARKET_CELERY_SANDBOX_QUEUE"], pool="prefork",
                          concurrency=1, announce=False)
    monkeypatch.setenv("MARKET_CELERY_SANDBOX_QUEUE", env["MARKET_CELERY_SANDBOX_QUEUE"])
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
