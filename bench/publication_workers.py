"""Publication throughput with 1 vs 2 Celery workers (MARKET_JOB_RUNNER=celery, real Redis).

    PYTHONPATH=$PWD .venv/bin/python bench/publication_workers.py --uploads 4 --rows 200000

For each worker count: a fresh SQLite instance, `market serve` on a loopback port with the
Celery runner, N `celery -A market.worker worker --pool solo` processes, then `--uploads`
uploads of the same generated CSV (one per dataset) sent at once through the API; reports the
wall time from the first upload until every version left `processing`, and the throughput.
Needs Redis at CELERY_BROKER_URL (default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=4)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()

    from tests.conftest import TEST_SECRETS
    from tests.datasets.conftest import metadata, multipart, uscc
    from tests.datasets.test_crash_recovery import Server
    from tests.scale.conftest import REDIS_URL, celery_env, start_worker

    lines = ["统一社会信用代码,所属区,行业,纳税额(元)"]
    districts = ["浦东新区", "徐汇区", "静安区", "黄浦区"]
    for i in range(args.rows):
        lines.append(f"{uscc(10_000 + i % 50_000)},{districts[i % 4]},制造业,{1000 + i % 5000}.{i % 100:02d}")
    content = ("\n".join(lines) + "\n").encode()
    print(f"CSV: {args.rows:,} rows, {len(content) / 1e6:.1f} MB; {args.uploads} uploads at once")
    results = {}
    for count in [int(c) for c in args.workers.split(",")]:
        tmp = Path(tempfile.mkdtemp(prefix="bench-pub-"))
        (tmp / "instance").mkdir()
        env = celery_env({
            **os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
            "MARKET_INSTANCE_PATH": str(tmp / "instance"), "MARKET_COOKIE_SECURE": "0",
            **TEST_SECRETS,
            "MARKET_UPLOAD_RATE_LIMIT": "1000 per hour", "CELERY_BROKER_URL": REDIS_URL,
        })
        env["MARKET_JOB_RUNNER"] = "celery"
        token = _seed(env)
        headers = {"Authorization": f"Bearer {token}"}
        workers = [start_worker(env, tmp / f"worker{i}.log", queue=env["MARKET_CELERY_QUEUE"])
                   for i in range(count)]
        server = Server(env, tmp / "server.log")
        try:
            _start(server)
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            while len(list(client.scan_iter(
                    match=f"market:workers:{env['MARKET_CELERY_QUEUE']}:*"))) < count:
                time.sleep(0.1)
            accepted: list[tuple[int, int]] = []
            started = time.perf_counter()

            def send(i: int, server=server, headers=headers, accepted=accepted) -> None:
                body, ctype = multipart([
                    ("metadata", json.dumps(metadata(title=f"基准{i}", category="tax"),
                                            ensure_ascii=False)),
                    ("file", (content, "bench.csv"))])
                status, out = server.request("POST", "/api/v1/datasets", headers, body, ctype)
                assert status == 202, out
                accepted.append((out["id"], out["version"]))

            threads = [threading.Thread(target=send, args=(i,)) for i in range(args.uploads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            statuses = {}
            while len(statuses) < len(accepted):
                for ds, v in accepted:
                    st, out = server.request(
                        "GET", f"/api/v1/datasets/{ds}/versions/{v}/status", headers)
                    if out.get("status") not in (None, "processing"):
                        statuses[(ds, v)] = out["status"]
                time.sleep(0.2)
            wall = time.perf_counter() - started
            results[count] = wall
            print(f"{count} worker(s): {wall:.1f} s for {args.uploads} uploads "
                  f"({args.uploads * args.rows / wall:,.0f} rows/s); outcomes {sorted(set(statuses.values()))}")
        finally:
            server.stop()
            for w in workers:
                w.stop()
    if 1 in results and 2 in results:
        print(f"speed-up 2 vs 1 worker: {results[1] / results[2]:.2f}x (cores: {os.cpu_count()})")


def _start(server, timeout: float = 600) -> None:
    """Server.start() with a longer wait (a loaded machine imports the app slowly)."""
    import subprocess
    import urllib.request

    market = [sys.executable, "-c", "from market.cli import main; main()"]
    with open(server.log, "ab") as log:
        server.proc = subprocess.Popen([*market, "serve", "--port", str(server.port)],
                                       env=server.env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{server.url}/api/v1/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the server did not start")


def _seed(env: dict[str, str]) -> str:
    """Migrate the instance and make a department with a token (in a child process)."""
    import subprocess

    code = (
        "import datetime as dt\n"
        "from market import create_app\n"
        "from flask_migrate import upgrade\n"
        "from market.accounts import services\n"
        "from market.accounts.actor import Actor\n"
        "from market.extensions import db\n"
        "from market.idcodes import uscc_check_char\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    upgrade()\n"
        "    body = '11310000MB0000017'\n"
        "    org = services.create_organization(db.session, Actor.system('bench'), name='基准局',"
        " kind='department', credit_code=body + uscc_check_char(body), check=False)\n"
        "    user = services.create_user(db.session, Actor.system('bench'), email='b@dep.example.cn',"
        " password='correct horse battery staple', organization_id=org.id, check=False)\n"
        "    token, _ = services.issue_token(db.session, user, dt.timedelta(hours=2))\n"
        "    db.session.commit()\n"
        "    print(token)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"seeding failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


if __name__ == "__main__":
    main()
