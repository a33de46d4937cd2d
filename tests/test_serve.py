"""`market serve` really serves (Flask ignores app.run() inside its CLI, so test the process)."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

from tests.e2e import harness


def test_market_serve_answers_http(tmp_path: Path):
    env = harness.instance_env(tmp_path, None)
    market = harness.market_command()
    subprocess.run([*market, "init"], env=env, cwd=harness.ROOT, check=True,
                   capture_output=True, timeout=120)
    port = harness.free_port()
    server = harness.start_process([*market, "serve", "--port", str(port)], env,
                                   tmp_path / "serve.log", port)
    try:
        with urllib.request.urlopen(f"{server.url}/login", timeout=5) as r:
            assert "登录" in r.read().decode()
    finally:
        server.stop()
