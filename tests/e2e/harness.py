"""Starting the real app as a separate process, for tests over the wire.

One place for the pieces every live-server test needs: a free loopback port, an environment
for a throwaway instance (SQLite file or a PostgreSQL database of its own), seeding with
``market demo --no-serve``, gunicorn, and waiting for ``/api/v1/health``. Everything binds to
127.0.0.1 only and every process started here is stopped by its process group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def market_command() -> list[str]:
    """``market`` run by this interpreter, so that PYTHONPATH (the worktree) is honoured."""
    return [sys.executable, "-c", "from market.cli import main; main()"]


def instance_env(instance: Path, database_url: str | None, **extra: str) -> dict[str, str]:
    """The environment of a server process on its own instance directory and database."""
    from tests.conftest import TEST_SECRETS

    env = {
        **os.environ,
        **TEST_SECRETS,
        "MARKET_INSTANCE_PATH": str(instance),
        "MARKET_JOB_RUNNER": "inline",
        "MARKET_COOKIE_SECURE": "0",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
        ),
        **extra,
    }
    env.pop("REDIS_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    else:
        env.pop("DATABASE_URL", None)
    return env


def seed_demo(env: dict[str, str], rows: int = 100) -> str:
    """``market demo --rows N --no-serve``: migrate and seed; returns its output."""
    done = subprocess.run(
        [*market_command(), "demo", "--rows", str(rows), "--no-serve"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"market demo failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def wait_http(url: str, proc: subprocess.Popen, log: Path | None, timeout: float = 60) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log if it dies or stalls."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            stop(proc)
            raise RuntimeError(f"server at {url} did not come up:\n{tail}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM the process group (started with ``start_new_session``), then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


@dataclass
class LiveServer:
    """A running server: ``url``, the process, its log and environment."""

    url: str
    port: int
    proc: subprocess.Popen
    log: Path
    env: dict[str, str] = field(repr=False)

    def stop(self) -> None:
        stop(self.proc)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_gunicorn(env: dict[str, str], log: Path, workers: int = 2, threads: int = 4) -> LiveServer:
    """``gunicorn 'market:create_app()'`` (gthread) on a free loopback port."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"{HOST}:{port}",
             "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
             "--timeout", "60", "--graceful-timeout", "5", "market:create_app()"],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://{HOST}:{port}"
    # Booting imports the whole app in each worker: slow on a loaded machine.
    wait_http(f"{url}/api/v1/health", proc, log, timeout=180)
    return LiveServer(url, port, proc, log, env)


def start_process(command: list[str], env: dict[str, str], log: Path, port: int) -> LiveServer:
    """A command that ends up serving on ``port`` (``market serve``, ``make demo``…)."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://{HOST}:{port}"
    wait_http(f"{url}/api/v1/health", proc, log, timeout=180)
    return LiveServer(url, port, proc, log, env)
