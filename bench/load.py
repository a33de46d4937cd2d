"""Load benchmark: the app under gunicorn on loopback, driven by a bounded thread pool.

    .venv/bin/python bench/load.py                 # SQLite and PostgreSQL, 300 requests each
    .venv/bin/python bench/load.py --quick         # SQLite only, 100 requests, 1 and 8 clients
    .venv/bin/python bench/load.py --backends postgres --requests 500 --clients 1 8 32

For each backend it seeds a throwaway demo database (``market demo --rows 2000 --no-serve``
in a temporary MARKET_INSTANCE_PATH; on PostgreSQL a database created and dropped through
``tests/pg.py``), starts ``gunicorn 'market:create_app()'`` on 127.0.0.1 and a free port, and
sends a fixed number of requests per scenario and client count:

- ``catalogue``: GET /api/v1/datasets and GET /api/v1/datasets/{id}, anonymous;
- ``quotes``: POST /api/v1/quotes as the demo bank (signed quotes, priced per request);
- ``sandbox``: POST /api/v1/sandbox/{license}/queries, one aggregate over a licensed table,
  asked again and again: answered from its stored release (policy check, quota UPDATE, query
  log and audit append per request; no engine);
- ``sandbox-new``: a new question each time (a unique literal in WHERE): budget charge,
  DuckDB worker, noise and a stored release per request;
- ``sandbox-mix``: three in four ``sandbox``, one in four ``sandbox-new`` (issue 14's mix).

With PostgreSQL it uses Redis for the rate limiter's counters, as in production (``--redis``).
``--instance``/``--database-url`` reuse a demo seeded once (``market demo --no-serve``).

It prints requests/s, p50, p95, the server's CPU per request (gunicorn, its workers and their
DuckDB workers, user + system: the app's own cost, which other load on the machine does not
change, unlike the latencies) and errors (any answer other than 2xx, or no answer) in a rich
table. It never targets anything but 127.0.0.1, stops the server itself, and is bounded by the
request counts and ``--max-seconds``. The per-user rate limits are raised for the run (they
would otherwise answer 429 by design); everything else is the production configuration.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

HOST = "127.0.0.1"  # the only address this script ever talks to
VENV_BIN = Path(sys.executable).parent
console = Console(width=120)


# ------------------------------------------------------------------------------ set-up


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Target:
    backend: str
    env: dict[str, str]
    instance: Path
    database_url: str | None = None
    cleanup: list = field(default_factory=list)


def prepare(backend: str, rows: int, redis_url: str | None,
            seeded: tuple[str, str | None] | None = None) -> Target:
    """A seeded target: a fresh demo, or (``seeded``: instance folder and database URL) one
    seeded before with ``market demo --no-serve``, which is reused and kept."""
    instance = (Path(seeded[0]) if seeded
                else Path(tempfile.mkdtemp(prefix=f"market-load-{backend}-")))
    env = {
        **os.environ,
        "MARKET_INSTANCE_PATH": str(instance),
        "MARKET_JOB_RUNNER": "inline",
        "MARKET_COOKIE_SECURE": "0",
        # The bench measures capacity, not the per-user limits (which answer 429 on purpose).
        "MARKET_QUOTE_RATE_LIMIT": "1000000 per minute",
        "MARKET_SANDBOX_RATE_LIMIT": "1000000 per minute",
        "PYTHONPATH": str(ROOT),
    }
    if redis_url:
        env["REDIS_URL"] = redis_url  # rate-limit counters shared by the workers, as deployed
    else:
        env.pop("REDIS_URL", None)
    target = Target(backend, env, instance)
    if seeded:
        if seeded[1]:
            env["DATABASE_URL"] = target.database_url = seeded[1]
        else:
            env.pop("DATABASE_URL", None)
        return target
    if backend == "postgres":
        from tests import pg

        if not pg.available():
            raise SystemExit(f"PostgreSQL does not answer at {pg.base_url()}")
        url = pg.create_database(prefix="market_load")
        target.database_url = url
        target.cleanup.append(lambda: pg.drop_database(url))
        env["DATABASE_URL"] = url
    else:
        env.pop("DATABASE_URL", None)
    started = time.perf_counter()
    done = subprocess.run(
        [str(VENV_BIN / "market"), "demo", "--rows", str(rows), "--no-serve"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(f"seeding failed:\n{done.stderr[-3000:]}")
    console.print(f"[dim]{backend}: demo seeded in {time.perf_counter() - started:.1f} s[/dim]")
    return target


@dataclass
class Fixture:
    buyer_token: str
    dataset_ids: list[int]
    license_id: int | None
    sql: str | None
    #: A question with a numeric literal (``{n}``): each distinct value is a new question
    #: (policy, budget charge, DuckDB run, noise, stored release); repeated, it is cached.
    new_sql: str | None = None


def fixture(target: Target) -> Fixture:
    """Tokens and ids, read and issued in-process against the seeded database."""
    os.environ.update({k: v for k, v in target.env.items() if k.startswith(("MARKET_", "DATABASE"))})
    if target.database_url is None:
        os.environ.pop("DATABASE_URL", None)
    import datetime as dt
    from decimal import Decimal

    import sqlalchemy as sa

    from licenses.models import License
    from market import create_app
    from market.accounts import services
    from market.accounts.models import User
    from market.datasets.models import Dataset
    from market.datasets.privacy import effective_privacy
    from market.extensions import db

    # This process only prepares the run; the server's own latency counts are what matter, and
    # the throwaway database is gone when this process exits (no write at exit).
    app = create_app({"MARKET_HTTP_METRICS_FLUSH_S": -1})
    with app.app_context():
        buyer = db.session.scalar(sa.select(User).where(User.email == "buyer@demo.market"))
        token, _ = services.issue_token(db.session, buyer, dt.timedelta(hours=2))
        ids = db.session.scalars(
            sa.select(Dataset.id).where(Dataset.status == "listed").order_by(Dataset.id)
        ).all()
        lic = db.session.scalar(
            sa.select(License).where(License.buyer_org_id == buyer.organization_id,
                                     License.status == "active").order_by(License.id)
        )
        license_id = sql = None
        if lic is not None:
            # Enough quota for every request of the run: a 429 here would be by design.
            lic.query_quota = lic.quota_remaining = 10**9
            license_id = lic.id
            # Enough privacy budget for every new question of the run (the largest the
            # settings allow), for the same reason.
            for item in lic.items:
                dataset = db.session.get(Dataset, item.dataset_id)
                if dataset is not None and effective_privacy(dataset) is not None:
                    dataset.dp_epsilon_per_query = Decimal("0.1")
                    dataset.dp_epsilon_budget = dataset.dp_version_budget = Decimal(1000)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    new_sql = None
    if license_id is not None:
        sql, new_sql = _sandbox_sql(app, token, license_id)
    return Fixture(token, list(ids), license_id, sql, new_sql)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sandbox_sql(app, token: str, license_id: int) -> tuple[str | None, str | None]:
    """Two aggregates over the first licensed table with a dimension column: a fixed one (the
    cached question) and one with a numeric threshold (``{n}``: a new question per value)."""
    client = app.test_client()
    r = client.get(f"/api/v1/sandbox/{license_id}/tables",
                   headers={"Authorization": f"Bearer {token}"})
    if r.status_code != 200:
        return None, None
    for table in r.get_json()["items"]:
        dims = [_quoted(c["name"]) for c in table["columns"] if c.get("role") == "dimension"]
        if dims:
            fixed = (f"SELECT {dims[0]}, COUNT(*) AS n FROM {table['slug']} "
                     f"GROUP BY {dims[0]}")
            # On differentially private data WHERE compares dimensions with literals: a
            # literal that every value passes, different each time, is a new question that
            # reads the whole table.
            new = (f"SELECT {dims[0]}, COUNT(*) AS n FROM {table['slug']} "
                   f"WHERE {dims[0]} >= '{{n}}' GROUP BY {dims[0]}")
            return fixed, new
        if table["columns"]:
            return f"SELECT COUNT(*) AS n FROM {table['slug']}", None
    return None, None


class Server:
    def __init__(self, target: Target, workers: int, threads: int):
        self.port = free_port()
        self.log = open(target.instance / "gunicorn.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "--bind", f"{HOST}:{self.port}",
             "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
             "--timeout", "60", "--graceful-timeout", "5", "market:create_app()"],
            env=target.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 300  # a shared, loaded machine boots slowly
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited: see {self.log.name}")
            try:
                status, _ = request(self.port, "GET", "/api/v1/health")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit("gunicorn did not become healthy within 300 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()


def tree_cpu(root: int) -> dict[int, int]:
    """CPU clock ticks (user + system) of ``root`` and each live descendant (gunicorn, its
    workers, their DuckDB workers): the app's own cost, whatever else loads the machine."""
    parent: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        ticks[pid] = int(fields[11]) + int(fields[12])  # utime, stime
    out = {}
    for pid, t in ticks.items():
        p = pid
        while p and p != root:
            p = parent.get(p, 0)
        if p == root:
            out[pid] = t
    return out


def cpu_seconds_between(before: dict[int, int], after: dict[int, int]) -> float:
    """CPU used between two ``tree_cpu`` snapshots by the processes alive at the second (a
    DuckDB worker killed on a timeout in between takes its CPU with it: an undercount)."""
    ticks = sum(t - before.get(pid, 0) for pid, t in after.items())
    return ticks / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------- driving

_local = threading.local()


def request(port: int, method: str, path: str, body: dict | None = None,
            token: str | None = None) -> tuple[int, bytes]:
    """One request on this thread's keep-alive connection to 127.0.0.1:port."""
    conn = getattr(_local, "conn", None)
    if conn is None or getattr(_local, "port", None) != port:
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        _local.conn, _local.port = conn, port
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        conn.close()
        _local.conn = None
        raise


@dataclass
class Result:
    backend: str
    scenario: str
    clients: int
    requests: int
    elapsed: float
    latencies: list[float]
    errors: int
    sample_error: str = ""
    cpu_seconds: float = 0.0  # the server's process tree (see tree_cpu)

    @property
    def cpu_ms(self) -> float:
        return self.cpu_seconds * 1000 / self.requests if self.requests else 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def scenarios(fx: Fixture) -> dict[str, callable]:
    rng = random.Random(20261122)

    def catalogue(port: int, i: int):
        if i % 2 == 0:
            query = urlencode({"page": 1, "per_page": 20, **({"q": "企业"} if i % 4 == 0 else {})})
            return request(port, "GET", f"/api/v1/datasets?{query}")
        return request(port, "GET", f"/api/v1/datasets/{rng.choice(fx.dataset_ids)}")

    def quotes(port: int, i: int):
        body = {"items": [{"dataset_id": fx.dataset_ids[i % len(fx.dataset_ids)], "columns": None}],
                "duration_months": 6 + i % 12, "purpose": "internal_risk_control",
                "query_quota": 1000}
        return request(port, "POST", "/api/v1/quotes", body, fx.buyer_token)

    def sandbox(port: int, i: int):
        return request(port, "POST", f"/api/v1/sandbox/{fx.license_id}/queries",
                       {"sql": fx.sql}, fx.buyer_token)

    counter = iter(range(1, 10**9))
    counter_lock = threading.Lock()
    run = f"0{random.SystemRandom().getrandbits(32):08x}"  # new questions in every run

    def sandbox_new(port: int, i: int):
        with counter_lock:
            n = next(counter)
        return request(port, "POST", f"/api/v1/sandbox/{fx.license_id}/queries",
                       {"sql": fx.new_sql.format(n=f"{run}-{n}")}, fx.buyer_token)

    def sandbox_mix(port: int, i: int):
        # Three in four asked before (the cached release), one in four new.
        return sandbox_new(port, i) if i % 4 == 3 else sandbox(port, i)

    out = {"catalogue": catalogue, "quotes": quotes}
    if fx.license_id is not None and fx.sql:
        out["sandbox"] = sandbox  # the cached question only
        if fx.new_sql:
            out["sandbox-new"] = sandbox_new
            out["sandbox-mix"] = sandbox_mix
    return out


def drive(backend: str, port: int, name: str, work, clients: int, total: int,
          deadline: float, server_pid: int | None = None) -> Result:
    latencies: list[float] = []
    errors = 0
    sample = ""
    lock = threading.Lock()

    def one(i: int) -> None:
        nonlocal errors, sample
        if time.monotonic() > deadline:
            with lock:
                errors += 1
                sample = sample or "skipped: --max-seconds reached"
            return
        started = time.perf_counter()
        try:
            status, payload = work(port, i)
            ok = 200 <= status < 300
            text = f"{status} {payload[:160]!r}"
        except Exception as exc:  # no answer at all counts as an error too
            ok, text = False, f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - started
        with lock:
            latencies.append(elapsed)
            if not ok:
                errors += 1
                sample = sample or text

    for i in range(min(clients, 4)):  # warm-up: connections, DuckDB workers, caches
        try:
            work(port, i)
        except Exception:
            pass
    cpu_before = tree_cpu(server_pid) if server_pid else {}
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, range(total)))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds_between(cpu_before, tree_cpu(server_pid)) if server_pid else 0.0
    return Result(backend, name, clients, total, elapsed, latencies, errors, sample, cpu)


# --------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="SQLite, 100 requests, 1 and 8 clients")
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"],
                        choices=["sqlite", "postgres"])
    parser.add_argument("--requests", type=int, default=300, help="per scenario and client count")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--rows", type=int, default=2000,
                        help="demo enterprises (2000: the demo's 24k-row tables)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary instance folders (database, gunicorn.log)")
    parser.add_argument("--scenarios", nargs="+", default=None,
                        help="only these scenarios (catalogue quotes sandbox sandbox-new "
                             "sandbox-mix)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13",
                        help="REDIS_URL of the rate limiter, as in production ('' for none)")
    parser.add_argument("--instance", default=None,
                        help="reuse this seeded MARKET_INSTANCE_PATH (with --database-url for "
                             "PostgreSQL) instead of seeding a throwaway demo; it is kept")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--max-seconds", type=float, default=900,
                        help="stop sending after this long (remaining requests count as errors)")
    args = parser.parse_args()
    if args.quick:
        args.backends, args.requests, args.clients = ["sqlite"], 100, [1, 8]

    deadline = time.monotonic() + args.max_seconds
    results: list[Result] = []
    for backend in args.backends:
        seeded = (args.instance, args.database_url) if args.instance else None
        target = prepare(backend, args.rows, args.redis or None, seeded)
        server = None
        try:
            fx = fixture(target)
            server = Server(target, args.workers, args.threads)
            console.print(f"[dim]{backend}: gunicorn on {HOST}:{server.port} "
                          f"({args.workers} workers x {args.threads} threads)[/dim]")
            for name, work in scenarios(fx).items():
                if args.scenarios and name not in args.scenarios:
                    continue
                for clients in args.clients:
                    result = drive(backend, server.port, name, work, clients, args.requests,
                                   deadline, server.proc.pid)
                    results.append(result)
                    console.print(f"  {backend:<8} {name:<11} {clients:>3} clients: "
                                  f"{result.rps:7.1f} req/s  p50 {result.pct(0.5):6.1f} ms  "
                                  f"p95 {result.pct(0.95):7.1f} ms  "
                                  f"app CPU {result.cpu_ms:5.1f} ms/req  "
                                  f"load {os.getloadavg()[0]:.1f}  errors {result.errors}")
                    if result.errors:
                        console.print(f"    [yellow]first error: {result.sample_error}[/yellow]")
        finally:
            if server is not None:
                server.stop()
            for step in target.cleanup:
                step()
            if args.keep or seeded:
                console.print(f"[dim]kept {target.instance}[/dim]")
            else:
                shutil.rmtree(target.instance, ignore_errors=True)

    table = Table(title=f"Load: {args.requests} requests per row, gunicorn {args.workers}x"
                        f"{args.threads} (gthread) on {HOST}, {os.cpu_count()} cores")
    for column in ("backend", "scenario", "clients", "req/s", "p50 ms", "p95 ms",
                   "app CPU ms/req", "errors"):
        table.add_column(column, justify="right" if column not in ("backend", "scenario") else "left")
    for r in results:
        table.add_row(r.backend, r.scenario, str(r.clients), f"{r.rps:.1f}", f"{r.pct(0.5):.1f}",
                      f"{r.pct(0.95):.1f}", f"{r.cpu_ms:.1f}", str(r.errors))
    console.print(table)
    if any(r.errors for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
