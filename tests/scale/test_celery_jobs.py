"""#17.1: publication jobs run in a real ``celery -A market.worker worker`` on the machine's Redis.

A real server (``market serve``) with ``MARKET_JOB_RUNNER=celery`` on a queue of its own, a
real worker process, uploads through the API. The sealed upload's key reaches the worker only
wrapped for that worker's in-memory key pair (market.jobkeys): the broker never holds it in
the clear. A worker killed with ``kill -9`` mid-file: the version is failed by the lease
sweeper with a clear reason and no staging file, partial output or listing is left.
"""

from __future__ import annotations

import time

import pytest

from tests.datasets.conftest import csv_bytes, metadata, sample_rows
from tests.datasets.test_crash_recovery import (  # noqa: F401 - crash_site is a fixture
    Server,
    _pii_csv,
    _scan,
    _upload,
    crash_site,
)
from tests.scale.conftest import REDIS_URL, celery_env, start_worker

ROWS = 450_000


def _wait_status(server: Server, headers: dict, dataset_id: int, number: int,
                 timeout: float = 60) -> dict:
    path = f"/api/v1/datasets/{dataset_id}/versions/{number}/status?lang=en"
    deadline = time.monotonic() + timeout
    while True:
        status, st = server.request("GET", path, headers)
        assert status == 200, st
        if st["status"] != "processing":
            return st
        assert time.monotonic() < deadline, f"still processing after {timeout}s"
        time.sleep(0.2)


def _broker_messages(queue_prefix: str) -> list[bytes]:
    """Every message still sitting in the broker for this test's queues."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    found = []
    for key in client.scan_iter(match=f"{queue_prefix}*"):
        if client.type(key) == b"list":
            found += client.lrange(key, 0, -1)
    return found


def test_publication_runs_in_the_worker_and_a_kill_9_mid_file_is_failed_and_cleaned(
    celery_available, crash_site, tmp_path  # noqa: F811 - the imported fixture
):
    env = {**celery_env(crash_site["env"]), "MARKET_WORKER_ANNOUNCE_SECONDS": "3"}
    headers = crash_site["headers"]
    data_dir = crash_site["instance"] / "data"
    worker = start_worker(env, tmp_path / "worker.log", queue=env["MARKET_CELERY_QUEUE"])
    server = Server(env, crash_site["log"])
    try:
        server.start()
        # 1. An ordinary upload is processed by the worker and awaits review.
        status, body = _upload(server, headers, csv_bytes(sample_rows(60)), meta=metadata())
        assert status == 202, body
        st = _wait_status(server, headers, body["id"], body["version"])
        assert st["status"] == "pending_review", st
        assert "processed" in worker.text(), "the job did not run in the worker"
        assert not list((data_dir / "uploads").glob(".partial-*"))

        # 2. A large upload; the worker is killed with -9 while it writes the output.
        content, needles = _pii_csv(ROWS)
        status, body = _upload(server, headers, content, meta=metadata(title="人员名单"))
        assert status == 202, body
        dataset_id, number = body["id"], body["version"]
        output_dir = data_dir / "datasets" / str(dataset_id)
        deadline = time.monotonic() + 120
        while not (output_dir.is_dir() and list(output_dir.glob(".*.part"))):
            assert time.monotonic() < deadline, "no partial output appeared"
            time.sleep(0.01)
        worker.kill9()
        assert list(output_dir.glob(".*.part")), "the job ended before the kill"
        assert list((data_dir / "uploads").glob(".partial-*")), "nothing was left to clean"
        assert _scan([data_dir, crash_site["temp"]], needles) == []

        # The web process's sweeper (lease 2 s, every 1 s) fails it with a clear reason.
        st = _wait_status(server, headers, dataset_id, number, timeout=30)
        assert st["status"] == "failed"
        assert "server running it stopped" in st["refusal_reasons"][0]
        assert not output_dir.exists()
        assert not list((data_dir / "uploads").glob(".partial-*"))
        status, listing = server.request("GET", f"/api/v1/datasets/{dataset_id}", headers)
        assert status == 200 and listing["status"] == "failed", listing

        # 3. With no worker alive (its announcement expired), an upload fails at once and
        # plainly: nobody could read it.
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        deadline = time.monotonic() + 30
        while list(client.scan_iter(match=f"market:workers:{env['MARKET_CELERY_QUEUE']}:*")):
            assert time.monotonic() < deadline, "the dead worker's announcement never expired"
            time.sleep(0.2)
        status, body = _upload(server, headers, content[: content.index(b"\n", 4000) + 1],
                               path=f"/api/v1/datasets/{dataset_id}/versions")
        assert status == 202, body
        st = _wait_status(server, headers, dataset_id, body["version"], timeout=10)
        assert st["status"] == "failed"
        assert "no publication worker is running" in st["refusal_reasons"][0]
        assert [p for p in (data_dir / "uploads").rglob("*") if p.is_file()] == []
        assert not output_dir.exists()
        # Nothing the broker still holds carries readable data or a clear key.
        assert all(n not in m for m in _broker_messages(env["MARKET_CELERY_QUEUE"])
                   for n in needles)
    finally:
        server.stop()
        worker.stop()


def test_the_key_in_the_broker_message_is_useless_to_anyone_but_its_worker():
    """The wrapped key opens only with the worker's private key and only for its path."""
    from market.jobkeys import KeyUnwrapError, WorkerKeyPair, wrap_for
    from market.pipeline.sealed import new_key

    worker, other = WorkerKeyPair(), WorkerKeyPair()
    key = new_key()
    wrapped = wrap_for(worker.public_b64, key, "/data/uploads/.partial-a")
    assert key not in wrapped.encode() and key.hex() not in wrapped
    assert worker.unwrap(wrapped, "/data/uploads/.partial-a") == key
    with pytest.raises(KeyUnwrapError):
        other.unwrap(wrapped, "/data/uploads/.partial-a")
    with pytest.raises(KeyUnwrapError):
        worker.unwrap(wrapped, "/data/uploads/.partial-b")


def test_a_forged_worker_announcement_is_ignored():
    """Whoever can write to Redis cannot pose as a worker to receive upload keys."""
    from market.jobkeys import WorkerKeyPair

    pair = WorkerKeyPair()
    genuine = pair.announce("the-secret", "q.w.1")
    forged = WorkerKeyPair().announce("a-guess", "q.w.1")
    assert genuine.verify("the-secret")
    assert not forged.verify("the-secret")
