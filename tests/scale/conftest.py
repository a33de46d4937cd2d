"""Fixtures for the scale-out seams: real Redis, real Celery workers, S3, Spark.

Each real part is used when it is present and skipped plainly when it is not, unless its
``REQUIRE_*`` variable is ``1`` (``.ci/run`` sets them), under which a missing part fails the
test instead: ``REQUIRE_CELERY`` (Redis at ``TEST_REDIS_URL`` and the ``celery`` package),
``REQUIRE_S3`` (``moto[server]`` and ``boto3``), ``REQUIRE_SPARK`` (``pyspark`` and Java).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require(flag: str, missing: str | None) -> None:
    """Skip (or fail under ``flag=1``) when ``missing`` names what is absent."""
    if missing is None:
        return
    if os.environ.get(flag) == "1":
        pytest.fail(f"{flag}=1 but {missing}", pytrace=False)
    pytest.skip(f"SKIPPED: {missing} (set {flag}=1 to make this a failure)")


def redis_missing() -> str | None:
    if importlib.util.find_spec("celery") is None:
        return "the celery package is not installed (pip install -e '.[test]')"
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"Redis is not reachable at {REDIS_URL} ({type(exc).__name__})"
    return None


@pytest.fixture
def celery_available() -> None:
    require("REQUIRE_CELERY", redis_missing())


@dataclass
class Worker:
    proc: subprocess.Popen
    log: Path

    def kill9(self) -> None:
        import signal

        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        from tests.e2e.harness import stop

        stop(self.proc)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_worker(env: dict[str, str], log: Path, *, queue: str, pool: str = "solo",
                 concurrency: int = 1, announce: bool = True, timeout: float = 60,
                 app: str = "market.worker") -> Worker:
    """``celery -A market.worker worker`` (or ``app``) as its own process group; waits until
    it is ready (and, for a publication worker, until it is announced in Redis)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", app, "worker", "--pool", pool,
             "-c", str(concurrency), "-Q", queue, "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-l", "INFO", "-n", f"w{uuid.uuid4().hex[:8]}@%h"],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    worker = Worker(proc, log)
    deadline = time.monotonic() + timeout
    while "ready." not in worker.text():
        if proc.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            raise RuntimeError(f"the celery worker did not start:\n{worker.text()[-3000:]}")
        time.sleep(0.2)
    if announce:
        import redis

        client = redis.Redis.from_url(env["CELERY_BROKER_URL"])
        prefix = f"market:workers:{env['MARKET_CELERY_QUEUE']}:"
        while not list(client.scan_iter(match=prefix + "*")):
            assert time.monotonic() < deadline, "the worker never announced itself"
            time.sleep(0.1)
    return worker


def celery_env(base: dict[str, str]) -> dict[str, str]:
    """``base`` switched to the Celery runner on a queue of its own (other tests, other
    people's runs share this Redis)."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    return {**base, "MARKET_JOB_RUNNER": "celery", "CELERY_BROKER_URL": REDIS_URL,
            "MARKET_CELERY_QUEUE": queue, "MARKET_CELERY_SANDBOX_QUEUE": f"{queue}-sandbox"}


def java_missing() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install -e '.[spark]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime (java on PATH or JAVA_HOME) for Spark"
    return None


def s3_missing() -> str | None:
    for module, package in (("boto3", "boto3"), ("moto", "moto[server]"), ("flask_cors", "moto[server]")):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's standalone S3-compatible server on a free loopback port (its own process)."""
    require("REQUIRE_S3", s3_missing())
    import urllib.request

    from tests.e2e.harness import free_port, stop

    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            pytest.fail(f"moto server did not start:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)
    yield url
    stop(proc)


@pytest.fixture
def s3_bucket(s3_server, monkeypatch):
    """A fresh bucket on the moto server; returns (endpoint, bucket, client)."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    bucket = f"market-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return s3_server, bucket, client
