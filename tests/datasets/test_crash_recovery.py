"""#14.1: ``kill -9`` of the server in the middle of processing an upload.

A real server process (``market serve``) on a free loopback port, a real upload of generated
personal data (Faker), SIGKILL while the version is being processed, then a restart. After it:
no raw value anywhere in the data folder or the temp folder, no partial Parquet, the version
``failed`` with a reason, and the dataset takes a new version. On SQLite and PostgreSQL
(``MARKET_TEST_DB=postgres``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRETS
from tests.datasets.conftest import metadata, multipart

#: Rows of the large upload: enough that processing is still running when it is killed
#: (the partial output appears after the first 200,000-row chunk).
ROWS = 450_000
LEASE_SECONDS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pii_csv(rows: int) -> tuple[bytes, list[bytes]]:
    """A CSV of people and enterprises with Faker PII, and raw values to hunt for later."""
    from faker import Faker

    from tests.datasets.conftest import uscc

    fake = Faker("zh_CN")
    Faker.seed(14)
    people = [(fake.name(), fake.ssn(), fake.phone_number()) for _ in range(3000)]
    lines = ["统一社会信用代码,法定代表人,法定代表人身份证号,联系电话,所属区,纳税额(元)"]
    districts = ["浦东新区", "徐汇区", "静安区", "黄浦区"]
    for i in range(rows):
        name, ssn, phone = people[i % len(people)]
        lines.append(
            f"{uscc(10_000 + i)},{name},{ssn},{phone},{districts[i % 4]},{1000 + i % 5000}.{i % 100:02d}"
        )
    content = ("\n".join(lines) + "\n").encode("utf-8")
    # Identity numbers and phones are unique enough to be found as bytes anywhere.
    needles = sorted({p[1].encode() for p in people[:25]} | {p[2].encode() for p in people[:25]})
    return content, needles


def _scan(roots: list[Path], needles: list[bytes]) -> list[str]:
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            hits = [n for n in needles if n in data]
            if hits:
                found.append(f"{path} holds {len(hits)} raw values")
    return found


class Server:
    def __init__(self, env: dict[str, str], log: Path):
        self.env = env
        self.port = _free_port()
        self.log = log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        market = [sys.executable, "-c", "from market.cli import main; main()"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*market, "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            assert self.proc.poll() is None, self.log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def request(self, method: str, path: str, headers: dict, body: bytes | None = None,
                content_type: str | None = None) -> tuple[int, dict]:
        req = urllib.request.Request(f"{self.url}{path}", data=body, method=method,
                                     headers={**headers, "Accept-Language": "en"})
        if content_type:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")


@pytest.fixture
def crash_site(live_app, tmp_path):
    """A migrated database of its own, a department with a token, the server's environment."""
    import datetime as dt

    from market.accounts import services
    from market.accounts.actor import Actor
    from market.extensions import db

    url = live_app.config["SQLALCHEMY_DATABASE_URI"]
    instance = tmp_path / "server-instance"
    with live_app.app_context():
        system = Actor.system("test")
        org = services.create_organization(
            db.session, system, name="崩溃测试局", kind="department",
            credit_code=_credit_code(), check=False,
        )
        user = services.create_user(db.session, system, email="crash@department.example.cn",
                                     password="correct horse battery staple",
                                     organization_id=org.id, check=False)
        token, _ = services.issue_token(db.session, user, dt.timedelta(hours=1))
        db.session.commit()
        db.session.remove()
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {
        **os.environ,
        **TEST_SECRETS,
        "PYTHONPATH": os.environ.get("PYTHONPATH", str(Path(__file__).resolve().parents[2])),
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": url,
        "MARKET_INSTANCE_PATH": str(instance),
        "MARKET_DATA_DIR": str(instance / "data"),
        "MARKET_COOKIE_SECURE": "0",
        "MARKET_JOB_LEASE_SECONDS": str(LEASE_SECONDS),
        "MARKET_JOB_SWEEP_SECONDS": "1",
        "MARKET_UPLOAD_RATE_LIMIT": "1000 per hour",
        # Whatever the server would spool to a temp file lands where this test looks.
        "TMPDIR": str(temp),
    }
    return {"env": env, "headers": {"Authorization": f"Bearer {token}"}, "instance": instance,
            "temp": temp, "log": tmp_path / "server.log"}


def _credit_code() -> str:
    from market.idcodes import uscc_check_char

    body = "11310000MB0000014"
    return body + uscc_check_char(body)


def _upload(server: Server, headers: dict, content: bytes, path: str = "/api/v1/datasets",
            meta: dict | None = None) -> tuple[int, dict]:
    parts: list = []
    if meta is not None:
        parts.append(("metadata", json.dumps(meta, ensure_ascii=False)))
    parts.append(("file", (content, "people.csv")))
    body, content_type = multipart(parts)
    return server.request("POST", path, headers, body, content_type)


def test_kill_9_mid_processing_leaves_no_raw_data_and_frees_the_dataset(crash_site):
    content, needles = _pii_csv(ROWS)
    headers = crash_site["headers"]
    data_dir = crash_site["instance"] / "data"
    server = Server(crash_site["env"], crash_site["log"])
    try:
        server.start()
        meta = metadata(title="人员名单", k_min=2)
        status, body = _upload(server, headers, content, meta=meta)
        assert status == 202, body
        dataset_id, number = body["id"], body["version"]
        status_path = f"/api/v1/datasets/{dataset_id}/versions/{number}/status?lang=en"
        output_dir = data_dir / "datasets" / str(dataset_id)
        deadline = time.monotonic() + 60
        while True:  # kill it once it is writing its output: visibly half-way
            partial = list(output_dir.glob(".*.part")) if output_dir.is_dir() else []
            if partial:
                break
            assert time.monotonic() < deadline, "no partial output appeared"
            time.sleep(0.01)
        server.kill9()
        assert list(output_dir.glob(".*.part")), "the job ended before the kill"

        # What the crash left: the staged upload and a partial output, but no readable PII.
        staged = [p for p in (data_dir / "uploads").glob(".partial-*")]
        assert staged, "the kill came after the upload was deleted: nothing was tested"
        assert _scan([data_dir, crash_site["temp"]], needles) == []

        server.start()  # the same environment: a fresh process with the sweeper
        deadline = time.monotonic() + 20
        while True:
            status, st = server.request("GET", status_path, headers)
            assert status == 200, st
            if st["status"] != "processing":
                break
            assert time.monotonic() < deadline, "the expired job was never swept"
            time.sleep(0.2)
        assert st["status"] == "failed"
        assert st["refusal_reasons"] and "server running it stopped" in st["refusal_reasons"][0]

        leftovers = [p for p in data_dir.rglob("*") if p.is_file()]
        assert leftovers == [], leftovers
        assert not (data_dir / "datasets" / str(dataset_id)).exists()
        assert _scan([data_dir, crash_site["temp"]], needles) == []

        # The dataset is free: a new version is accepted (not 409).
        small = content[: content.index(b"\n", 4000) + 1]
        status, body = _upload(server, headers, small,
                               path=f"/api/v1/datasets/{dataset_id}/versions")
        assert status == 202, body
        assert body["version"] == number + 1
    finally:
        server.stop()
