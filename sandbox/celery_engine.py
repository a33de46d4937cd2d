"""Sandbox queries on a separate Celery queue (``MARKET_SANDBOX_RUNNER=celery``).

The web process keeps everything that decides what a buyer gets — the license, quota and
budget charges, the policy check and rewrite, the noise and post-processing — and sends only
the engine's part (the rewritten SQL, the views and their files) to the ``sandbox`` queue,
where ``celery -A market.worker worker -Q sandbox`` runs it on its own engine (DuckDB, or
Spark with ``MARKET_SANDBOX_ENGINE=spark``). So query hosts scale apart from web hosts, and
the HTTP answer is the one the in-process engine gives: same errors, same noise path.

Each task carries a Celery ``time_limit`` of the query's timeout plus a grace period (the
worker's pool kills the task's process beyond it, even one stuck in C code that no signal but
SIGKILL reaches) and the web process stops waiting a few seconds later: the buyer gets
QueryTimeout either way, charged like any engine failure after the charge. Values cross the
broker as tagged JSON (Decimal, dates and bytes keep their types); errors cross as their
category only.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .engine import EngineResult
from .errors import EngineError, QueryTimeout, ResourceLimit
from .query import CheckedQuery, PivotPlan, RollupPlan, StoredTable, ViewSpec

#: Seconds beyond the query's timeout before the worker's pool kills the task (``time_limit``).
GRACE_S = 5.0
#: The web process waits this much longer than the task's hard time limit, so that the pool's
#: kill of a task that ignored its timeouts (reported as TimeLimitExceeded) is normally what it
#: sees, and the buyer is answered after the work is gone, not while it still runs.
KILL_MARGIN_S = 3.0


@dataclass(frozen=True)
class EngineQuery:
    """The engine's part of a checked query (what `Engine.run` reads), rebuilt on a worker."""

    engine_sql: str
    views: tuple[ViewSpec, ...]
    engine_row_cap: int
    rollup: RollupPlan | None = None


#: A table as the job names it: a path on a folder every host shares, or a storage key with
#: its digest that the query host resolves through its own storage (S3 and its cache).
TableRef = str | StoredTable


def _encode_table(ref: TableRef) -> Any:
    if isinstance(ref, StoredTable):
        return {"key": ref.key, "sha256": ref.sha256}
    return str(ref)


def _decode_table(value: Any) -> TableRef:
    if isinstance(value, Mapping):
        sha = value.get("sha256")
        return StoredTable(str(value["key"]), None if sha is None else str(sha))
    return str(value)


def encode_job(query: CheckedQuery, tables: Mapping[str, TableRef], timeout_s: float,
               row_cap: int | None) -> dict[str, Any]:
    return {
        "sql": query.engine_sql,
        "views": [[v.slug, list(v.columns), v.entity_key] for v in query.views],
        "engine_row_cap": int(query.engine_row_cap),
        "tables": {slug: _encode_table(ref) for slug, ref in tables.items()},
        "timeout_s": float(timeout_s),
        "row_cap": row_cap,
        "rollup": None if query.rollup is None else {
            "slug": query.rollup.slug, "sql": query.rollup.sql,
            "dimensions": list(query.rollup.dimensions), "measures": list(query.rollup.measures),
            "key_dimensions": list(query.rollup.key_dimensions),
            "constant_sql": query.rollup.constant_sql,
            "pivot": None if query.rollup.pivot is None else {
                "keys": [list(k) for k in query.rollup.pivot.keys],
                "terms": [[sql, list(reads)] for sql, reads in query.rollup.pivot.terms],
                "columns": [list(c) for c in query.rollup.pivot.columns],
            },
        },
    }


def decode_job(
    job: Mapping[str, Any],
) -> tuple[EngineQuery, dict[str, TableRef], float, int | None]:
    query = EngineQuery(
        str(job["sql"]),
        tuple(ViewSpec(str(s), tuple(map(str, cols)), str(ek)) for s, cols, ek in job["views"]),
        int(job["engine_row_cap"]),
        _decode_rollup(job.get("rollup")),
    )
    tables = {str(slug): _decode_table(v) for slug, v in job["tables"].items()}
    return query, tables, float(job["timeout_s"]), job.get("row_cap")


def _decode_rollup(plan: Mapping[str, Any] | None) -> RollupPlan | None:
    if not plan:
        return None
    return RollupPlan(
        str(plan["slug"]), str(plan["sql"]), tuple(map(str, plan["dimensions"])),
        tuple(map(str, plan["measures"])), tuple(map(str, plan.get("key_dimensions") or ())),
        None if plan.get("constant_sql") is None else str(plan["constant_sql"]),
        _decode_pivot(plan.get("pivot")),
    )


def _decode_pivot(plan: Mapping[str, Any] | None) -> PivotPlan | None:
    if not plan:
        return None
    return PivotPlan(
        keys=tuple((str(sql), str(name)) for sql, name in plan["keys"]),
        terms=tuple((str(sql), tuple(map(str, reads))) for sql, reads in plan["terms"]),
        columns=tuple(
            (str(c), str(kind), None if m is None else str(m), str(final))
            for c, kind, m, final in plan["columns"]
        ),
    )


def _enc(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$d": str(value)}
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return {"$f": "nan"}
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return {"$f": repr(value)}
    return value


def _dec(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, raw),) = value.items()
        if tag == "$d":
            return Decimal(raw)
        if tag == "$dt":
            return dt.datetime.fromisoformat(raw)
        if tag == "$date":
            return dt.date.fromisoformat(raw)
        if tag == "$b":
            return base64.b64decode(raw)
        if tag == "$f":
            return float(raw)
    return value


def encode_result(result: EngineResult) -> dict[str, Any]:
    return {"ok": True, "columns": list(result.columns),
            "rows": [[_enc(v) for v in row] for row in result.rows],
            "truncated": result.truncated, "elapsed_ms": result.elapsed_ms}


def encode_error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, QueryTimeout):
        return {"ok": False, "error": "timeout"}
    if isinstance(exc, ResourceLimit):
        return {"ok": False, "error": "resource"}
    if isinstance(exc, EngineError):
        return {"ok": False, "error": "engine", "kind": exc.kind,
                "message": str(exc.args[0]) if exc.args else ""}
    return {"ok": False, "error": "engine", "kind": "engine", "message": ""}


def decode_reply(reply: Mapping[str, Any]) -> EngineResult:
    """The worker's reply as the engine's result. Raises the engine's own errors."""
    if reply.get("ok"):
        return EngineResult(
            tuple(reply["columns"]), [tuple(_dec(v) for v in row) for row in reply["rows"]],
            bool(reply["truncated"]), float(reply["elapsed_ms"]),
        )
    error = reply.get("error")
    if error == "timeout":
        raise QueryTimeout()
    if error == "resource":
        raise ResourceLimit()
    if reply.get("kind") == "permission":
        raise EngineError("the query tried to access something outside the sandbox",
                          kind="permission")
    raise EngineError("the query could not be executed", kind=str(reply.get("kind") or "engine"))


class CeleryEngine:
    """An Engine whose `run` happens on the ``sandbox`` queue's workers.

    It is given the tables as storage keys with their digests (:class:`StoredTable`), not as
    this host's paths: a query host fetches and checks the files through its own storage (the
    S3 bucket and its content-hash cache, or a shared folder), and the web host never
    downloads a file it does not query itself."""

    #: ``sandbox.services`` passes ``Workspace.stored()`` instead of local paths.
    reads_storage_keys = True

    def __init__(self, broker_url: str, *, queue: str = "sandbox",
                 backend_url: str | None = None, grace_s: float = GRACE_S) -> None:
        from market.worker import make_celery

        self.celery = make_celery(broker_url)
        self.celery.conf.result_backend = backend_url or broker_url
        self.celery.conf.task_ignore_result = False
        self.queue = queue
        self.grace_s = grace_s

    def run(self, query: CheckedQuery, tables: Mapping[str, TableRef], *, timeout_s: float = 10.0,
            row_cap: int | None = None) -> EngineResult:
        """Raises QueryTimeout, ResourceLimit, EngineError (as the in-process engine does)."""
        from celery.exceptions import TimeLimitExceeded
        from celery.exceptions import TimeoutError as CeleryTimeout

        from market.worker import RUN_SANDBOX

        started = time.perf_counter()
        limit = timeout_s + self.grace_s
        async_result = self.celery.send_task(
            RUN_SANDBOX, args=[encode_job(query, tables, timeout_s, row_cap)], queue=self.queue,
            time_limit=limit, soft_time_limit=timeout_s + self.grace_s / 2,
            expires=limit,  # a query nobody picked up in time is not run at all
        )
        try:
            reply = async_result.get(timeout=limit + KILL_MARGIN_S, propagate=True,
                                     disable_sync_subtasks=False)
        except (CeleryTimeout, TimeLimitExceeded):
            async_result.revoke()
            raise QueryTimeout() from None
        except (QueryTimeout, ResourceLimit, EngineError):
            raise
        except Exception as exc:  # noqa: BLE001 - the worker died, the broker went away…
            if type(exc).__name__ in {"SoftTimeLimitExceeded", "TaskRevokedError"}:
                raise QueryTimeout() from None
            raise EngineError("the query engine stopped unexpectedly", kind="crash") from None
        finally:
            async_result.forget()
        result = decode_reply(reply)
        elapsed = (time.perf_counter() - started) * 1000
        return EngineResult(result.columns, result.rows, result.truncated, elapsed)
