"""`market serve` really serves (Flask ignores app.run() inside its CLI, so test the process)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRETS
from tests.e2e import harness


def _free_port() -> int:
    return harness.free_port()


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


# ------------------------------------------------------------- gunicorn, as in production

ROOT = Path(__file__).resolve().parent.parent


def _raw_get(port: int, target: str, headers: str = "") -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 GET over a plain socket (urllib refuses some of what we send)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}\r\n"
                  .encode("latin1"))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, fields, body


def _gunicorn(tmp_path: Path, env_extra: dict[str, str]):
    port = _free_port()
    env = {**os.environ, **TEST_SECRETS, "MARKET_INSTANCE_PATH": str(tmp_path),
           "MARKET_COOKIE_SECURE": "0", "PYTHONPATH": str(ROOT), "WEB_CONCURRENCY": "1",
           "MARKET_BIND": f"127.0.0.1:{port}", **env_extra}
    env.pop("DATABASE_URL", None)
    market = [sys.executable, "-c", "from market.cli import main; main()"]
    subprocess.run([*market, "init"], env=env, check=True, capture_output=True, timeout=120,
                   cwd=ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
         "market:create_app()"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as r:
                assert r.status == 200
                return proc, port
        except OSError:
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
            time.sleep(0.3)


def test_gunicorn_with_the_shipped_config(tmp_path: Path):
    """The README's production command: over-long request lines are JSON (from the app below
    the app's limit, from gunicorn above its own), 405 has Allow, and behind the trusted
    proxy https gets HSTS."""
    import json

    proc, port = _gunicorn(tmp_path, {"MARKET_TRUSTED_PROXIES": "1"})
    try:
        # Past the app's limit, within gunicorn's: the app's 414.
        status, headers, body = _raw_get(port, "/api/v1/datasets?q=" + "x" * 8050)
        assert status == 414 and headers["content-type"] == "application/json"
        assert json.loads(body)["code"] == 414
        # Past gunicorn's own limit: gunicorn refuses, in the same envelope.
        status, headers, body = _raw_get(port, "/api/v1/datasets?q=" + "x" * 9000)
        assert status == 414 and headers["content-type"] == "application/json", body[:200]
        payload = json.loads(body)
        assert payload["code"] == 414 and payload["status"] == "Request-URI Too Long"
        status, headers, _ = _raw_get(port, "/api/v1/health")
        assert status == 200 and "strict-transport-security" not in headers
        status, headers, _ = _raw_get(port, "/api/v1/health", "X-Forwarded-Proto: https\r\n")
        assert status == 200 and headers["strict-transport-security"].startswith("max-age=")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"DELETE /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = s.recv(65536).decode("latin1")
        assert reply.startswith("HTTP/1.1 405") and "\r\nAllow: " in reply
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        proc.stdout.close()


@pytest.mark.slow
def test_logout_ends_the_session_over_the_wire(tmp_path: Path):
    """#14.3 against gunicorn: the cookie captured before POST /logout is dead after it."""
    import http.cookiejar
    import re as _re
    import urllib.parse

    proc, port = _gunicorn(tmp_path, {})
    base = f"http://127.0.0.1:{port}"
    try:
        env = {**os.environ, **TEST_SECRETS, "MARKET_INSTANCE_PATH": str(tmp_path),
               "PYTHONPATH": str(ROOT)}
        env.pop("DATABASE_URL", None)
        email, password = "wire@example.cn", "correct-horse-battery"
        made = subprocess.run(
            [sys.executable, "-c", (
                "from tests.conftest import valid_uscc\n"
                "from market import create_app\n"
                "from market.accounts import services\n"
                "from market.accounts.actor import Actor\n"
                "from market.extensions import db\n"
                "app = create_app()\n"
                "with app.app_context():\n"
                "    org = services.create_organization(db.session, Actor.system('t'), "
                "name='Wire', kind='buyer', credit_code=valid_uscc(4242), check=False)\n"
                f"    services.create_user(db.session, Actor.system('t'), email='{email}', "
                f"password='{password}', organization_id=org.id, check=False)\n"
                "    db.session.commit()\n")],
            env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert made.returncode == 0, made.stderr[-2000:]
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(f"{base}/login").read().decode()
        token = _re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or \
            _re.search(r'name="csrf_token" value="([^"]+)"', page)
        data = urllib.parse.urlencode({"email": email, "password": password,
                                       "csrf_token": token.group(1)}).encode()
        opener.open(f"{base}/login", data=data)
        captured = next(c.value for c in jar if c.name == "market_session")

        def with_cookie(path):
            req = urllib.request.Request(f"{base}{path}",
                                         headers={"Cookie": f"market_session={captured}"})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, r.geturl()
            except urllib.error.HTTPError as e:
                return e.code, path

        assert with_cookie("/api/v1/me")[0] == 200
        dashboard = opener.open(f"{base}/dashboard").read().decode()
        token = _re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', dashboard) or \
            _re.search(r'name="csrf_token" value="([^"]+)"', dashboard)
        opener.open(f"{base}/logout",
                    data=urllib.parse.urlencode({"csrf_token": token.group(1)}).encode())
        assert with_cookie("/api/v1/me")[0] == 401
        status, url = with_cookie("/dashboard")
        assert "/login" in url  # redirected to the login page, not the dashboard
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        proc.stdout.close()
