"""Worker memory over a series of uploads (issue 14, item 2): RSS of each gunicorn worker after
each upload, with and without recycling.

    PYTHONPATH=$PWD /work/main/.venv/bin/python bench/upload_rss.py --uploads 10 --rows 200000
    PYTHONPATH=$PWD /work/main/.venv/bin/python bench/upload_rss.py --max-requests 0 40

It seeds a small throwaway demo (``bench/load.py``'s set-up: ``market demo --rows 100``, on
PostgreSQL by default; ``--instance``/``--database-url`` reuse a seeded one), writes one
synthetic social-insurance CSV (``bench/publish.py``'s generator: valid credit codes, resident
IDs, bank cards…), and for each ``--max-requests`` value starts gunicorn with the production
settings file (``gunicorn.conf.py``: the job runner is the production ``thread`` runner, so the
pipeline runs inside the worker that received the upload), uploads the file ``--uploads`` times
as the demo department, waits for each to be processed, and prints every worker's RSS
(``/proc/<pid>/status`` VmRSS) and pid after each upload: a pid that changes is a recycled
worker. It only talks to 127.0.0.1 and stops the server itself.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench import load  # noqa: E402
from bench.publish import generate  # noqa: E402

HOST = load.HOST
console = Console(width=140)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def workers_of(arbiter: int) -> list[int]:
    """Pids of the gunicorn workers (the arbiter's children that are not DuckDB helpers)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == arbiter and b"gunicorn" in cmd:
            out.append(int(entry.name))
    return sorted(out)


def department_token(target: load.Target) -> str:
    os.environ.update({k: v for k, v in target.env.items()
                       if k.startswith(("MARKET_", "DATABASE"))})
    if target.database_url is None:
        os.environ.pop("DATABASE_URL", None)
    import datetime as dt

    import sqlalchemy as sa

    from market import create_app
    from market.accounts import services
    from market.accounts.models import Organization, User
    from market.extensions import db

    app = create_app()
    with app.app_context():
        user = db.session.scalar(
            sa.select(User).join(Organization, Organization.id == User.organization_id)
            .where(Organization.kind == "department").order_by(User.id).limit(1)
        )
        token, _ = services.issue_token(db.session, user, dt.timedelta(hours=4))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return token


class Server:
    """gunicorn with gunicorn.conf.py (the production settings) on a free loopback port."""

    def __init__(self, target: load.Target, workers: int, max_requests: int):
        self.port = load.free_port()
        env = {**target.env, "MARKET_BIND": f"{HOST}:{self.port}", "WEB_CONCURRENCY": str(workers),
               "MARKET_MAX_REQUESTS": str(max_requests), "MARKET_MAX_REQUESTS_JITTER": "0",
               "MARKET_JOB_RUNNER": "thread"}
        self.log = open(target.instance / f"gunicorn-rss-{max_requests}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(load.VENV_BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"),
             "--worker-class", "gthread", "--threads", "4", "market:create_app()"],
            env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 300  # a shared, loaded machine boots slowly
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited: see {self.log.name}")
            try:
                if requests.get(self.url("/api/v1/health"), timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.stop()
        raise SystemExit("gunicorn did not become healthy")

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()


def upload(server: Server, token: str, csv_path: Path, i: int, timeout_s: float) -> tuple[str, float]:
    metadata = {
        "title": f"RSS bench {i} {time.monotonic_ns()}",
        "description": "synthetic social-insurance records (bench/upload_rss.py)",
        "category": "social_security",
        "open_grade": "conditional",
        "confidential": False,
        "entity_key": "统一社会信用代码",
        "update_frequency": "monthly",
        "costs": {"collection": 100_000, "processing": 50_000, "storage_monthly": 1_000},
    }
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    with open(csv_path, "rb") as fh:
        r = requests.post(server.url("/api/v1/datasets"), headers=headers, timeout=timeout_s,
                          files={"file": ("social.csv", fh, "text/csv")},
                          data={"metadata": json.dumps(metadata, ensure_ascii=False)})
    if r.status_code != 202:
        return f"{r.status_code} {r.text[:120]}", time.perf_counter() - started
    dataset_id = r.json()["id"]
    deadline = time.monotonic() + timeout_s
    status = "processing"
    while time.monotonic() < deadline:
        try:
            got = requests.get(server.url(f"/api/v1/datasets/{dataset_id}"), headers=headers,
                               timeout=60)
        except requests.RequestException:  # a worker being recycled; ask again
            time.sleep(1.0)
            continue
        status = got.json().get("status", str(got.status_code))
        if status != "processing":
            break
        time.sleep(1.0)
    return status, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=10)
    parser.add_argument("--rows", type=int, default=200_000, help="rows per uploaded CSV")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-requests", type=int, nargs="+", default=[0, 40],
                        help="gunicorn max_requests per run (0: no recycling)")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--instance", default=None)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--timeout", type=float, default=900, help="per upload, seconds")
    args = parser.parse_args()

    seeded = (args.instance, args.database_url) if args.instance else None
    target = load.prepare(args.backend, 100, None, seeded)
    workdir = Path(tempfile.mkdtemp(prefix="market-rss-"))
    csv_path = workdir / "social.csv"
    generate(csv_path, args.rows)
    console.print(f"[dim]{csv_path.stat().st_size / 2**20:.1f} MB CSV, {args.rows} rows[/dim]")
    token = department_token(target)
    table = Table(title=f"Worker RSS (MB) after each upload of {args.rows} rows "
                        f"({csv_path.stat().st_size / 2**20:.0f} MB), {args.workers} workers")
    for column in ("max_requests", "upload", "status", "seconds", "workers: pid RSS"):
        table.add_column(column)
    try:
        for max_requests in args.max_requests:
            server = Server(target, args.workers, max_requests)
            try:
                pids = workers_of(server.proc.pid)
                start = ", ".join(f"{p} {rss_mb(p) or 0:.0f}" for p in pids)
                table.add_row(str(max_requests), "start", "", "", start)
                console.print(f"max_requests={max_requests} start: {start}")
                for i in range(1, args.uploads + 1):
                    status, seconds = upload(server, token, csv_path, i, args.timeout)
                    time.sleep(1.0)  # let the job's thread finish its clean-up
                    pids = workers_of(server.proc.pid)
                    sizes = ", ".join(f"{p} {rss_mb(p) or 0:.0f}" for p in pids)
                    console.print(f"max_requests={max_requests} upload {i}: {status} "
                                  f"{seconds:.1f} s  {sizes}")
                    table.add_row(str(max_requests), str(i), status, f"{seconds:.1f}", sizes)
            finally:
                server.stop()
    finally:
        for step in target.cleanup:
            step()
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
        if not seeded:
            shutil.rmtree(target.instance, ignore_errors=True)
    console.print(table)


if __name__ == "__main__":
    main()
