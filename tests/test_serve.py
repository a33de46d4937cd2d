"""`market serve` really serves (Flask ignores app.run() inside its CLI, so test the process)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import TEST_SECRETS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_market_serve_answers_http(tmp_path: Path):
    port = _free_port()
    env = {**os.environ, **TEST_SECRETS, "MARKET_INSTANCE_PATH": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    market = [sys.executable, "-c", "from market.cli import main; main()"]
    subprocess.run([*market, "init"], env=env, check=True, capture_output=True, timeout=120)
    proc = subprocess.Popen([*market, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "market serve did not answer within 60 s"
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as r:
            assert "登录" in r.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
