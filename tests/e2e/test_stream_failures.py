"""A stream that fails is never mistaken for a complete file; an error before the first byte
is the JSON envelope (gunicorn's own HTML 500 page was what clients got)."""

from __future__ import annotations

import http.client
import sys

import pytest
import requests

from market.csvutil import ERROR_LINE_PREFIX
from tests.e2e import harness


@pytest.fixture(scope="module")
def failing_server(tmp_path_factory):
    instance = tmp_path_factory.mktemp("failing-instance")
    env = harness.instance_env(instance, None)
    log = instance / "gunicorn.log"
    import subprocess

    # Health answers 503 until the schema is at the migrations' head.
    subprocess.run([*harness.market_command(), "init"], env=env, cwd=harness.ROOT, check=True,
                   capture_output=True, timeout=180)

    # Wait on the test-only route, not health: only this app answers it, so a server of
    # another test that took the same free port is never mistaken for ours; a lost race for
    # the port (our gunicorn exits) is retried on a new one.
    for attempt in range(3):
        port = harness.free_port()
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--bind", f"{harness.HOST}:{port}",
                 "--workers", "1", "--worker-class", "gthread", "--threads", "2",
                 "tests.e2e.failing_app:make()"],
                env=env, cwd=harness.ROOT, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://{harness.HOST}:{port}"
        try:
            harness.wait_http(f"{url}/api/v1/test-only/failing.csv?fail=never", proc, log)
            break
        except RuntimeError:
            if attempt == 2:
                raise
    try:
        yield url
    finally:
        harness.stop(proc)


def test_error_before_the_first_byte_is_a_json_500(failing_server):
    r = requests.get(f"{failing_server}/api/v1/test-only/failing.csv",
                     params={"fail": "early", "lang": "en"}, timeout=30)
    assert r.status_code == 500
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["code"] == 500 and "went away" not in body["message"]


def test_error_mid_stream_ends_with_an_error_line_and_an_aborted_transfer(failing_server):
    r = requests.get(f"{failing_server}/api/v1/test-only/failing.csv",
                     params={"fail": "late", "lang": "en"}, timeout=30, stream=True)
    assert r.status_code == 200
    received = bytearray()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for chunk in r.iter_content(chunk_size=None):
            received += chunk
    text = received.decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[-1].startswith(ERROR_LINE_PREFIX)
    assert "incomplete" in lines[-1]
    assert "went away" not in text  # the cause stays in the server's log


def test_raw_http_client_sees_an_incomplete_read(failing_server):
    host, port = failing_server.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", "/api/v1/test-only/failing.csv?fail=late")
    response = conn.getresponse()
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead):
        response.read()
    conn.close()


def test_complete_stream_reads_to_the_end(failing_server):
    r = requests.get(f"{failing_server}/api/v1/test-only/failing.csv", params={"fail": "never"},
                     timeout=30)
    assert r.status_code == 200
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "n,label" and lines[-1] == "1200,row 1200" and len(lines) == 1201
