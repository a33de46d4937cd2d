"""The app's one query engine: created on first use, shared by every request, closed at exit.

``MARKET_SANDBOX_ENGINE``: ``duckdb`` (default) or ``spark`` (``MARKET_SPARK_MASTER``, default
``local[2]``; needs ``.[spark]`` and Java). ``MARKET_SANDBOX_RUNNER=celery`` sends the engine's
part of each query to the ``MARKET_CELERY_SANDBOX_QUEUE`` queue instead
(:mod:`sandbox.celery_engine`); the worker there runs its own local engine
(:func:`local_engine_for`).

The engine owns a pool of worker processes, so there is exactly one per app (tests build
several apps in one process; each gets its own, reused across its tests). Projections of the
licensed columns are cached under ``MARKET_DATA_DIR/projections``, each with its per-entity
rollup (``MARKET_SANDBOX_ROLLUPS``, default on; see :class:`sandbox.engine.Rollup`).
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .engine import DuckDBEngine

_lock = threading.Lock()
_engines: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_local: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _build(config: Any) -> Any:
    if config.get("MARKET_SANDBOX_RUNNER", "inline") == "celery":
        import os

        from .celery_engine import CeleryEngine

        broker = config.get("CELERY_BROKER_URL") or os.environ.get("CELERY_BROKER_URL") or ""
        queue = os.environ.get("MARKET_CELERY_SANDBOX_QUEUE") or "sandbox"
        return CeleryEngine(broker, queue=queue,
                            backend_url=config.get("CELERY_RESULT_BACKEND") or None)
    return _build_local(config)


def _build_local(config: Any) -> Any:
    if config.get("MARKET_SANDBOX_ENGINE", "duckdb") == "spark":
        from .spark_engine import SparkEngine

        return SparkEngine(master=str(config.get("MARKET_SPARK_MASTER") or "local[2]"))
    data_dir = Path(config["MARKET_DATA_DIR"])
    return DuckDBEngine(
        threads=int(config.get("MARKET_SANDBOX_THREADS", 2)),
        memory_limit=str(config.get("MARKET_SANDBOX_MEMORY_LIMIT", "1GB")),
        workers=int(config.get("MARKET_SANDBOX_WORKERS", 2)),
        projection_dir=data_dir / "projections",
        rollups=bool(config.get("MARKET_SANDBOX_ROLLUPS", True)),
    )


#: Below this many rows the first question prepares the file itself in well under a second.
PREPARE_MIN_ROWS = 100_000


#: At most this many licensed column sets are prepared per published version.
PREPARE_MAX_VIEWS = 8


def publication_plan(
    config: Any, version: Any, session: Any = None
) -> tuple[str, list[tuple[tuple[str, ...], str]]] | None:
    """What :func:`prepare_file` should prepare for a newly published ``version``: its storage
    key and the engine views (columns, entity key) of the column sets that the dataset's
    active licenses grant (read through ``session``, if given; a new version of a licensed
    dataset), then of a license of every column, at most ``PREPARE_MAX_VIEWS``; or None. Only
    for the local DuckDB engine with rollups on, a sandbox grade (open, conditional) and at
    least ``MARKET_SANDBOX_PREPARE_MIN_ROWS`` rows (default 100,000; below that the first
    question prepares the file in well under a second). Reads only."""
    from .workspace import full_view, licensed_view

    if (
        not config.get("MARKET_SANDBOX_ROLLUPS", True)
        or config.get("MARKET_SANDBOX_ENGINE", "duckdb") != "duckdb"
        or not version.parquet_path
        or version.dataset.open_grade not in ("open", "conditional")
        or int(version.row_count or 0)
        < int(config.get("MARKET_SANDBOX_PREPARE_MIN_ROWS", PREPARE_MIN_ROWS))
    ):
        return None
    full = full_view(version)
    if full is None:
        return None
    views: list[tuple[tuple[str, ...], str]] = []
    if session is not None:
        import sqlalchemy as sa

        from licenses.models import License, LicenseItem
        from licenses.states import LicenseStatus

        granted = session.scalars(
            sa.select(LicenseItem.columns)
            .join(License, License.id == LicenseItem.license_id)
            .where(
                LicenseItem.dataset_id == version.dataset_id,
                License.status == LicenseStatus.ACTIVE.value,
            )
            .order_by(LicenseItem.id.desc())
        )
        for columns in granted:
            view = licensed_view(version, list(columns or []))
            if view is not None and view not in views:
                views.append(view)
    if full not in views:
        views.append(full)
    return str(version.parquet_path), views[:PREPARE_MAX_VIEWS]


def prepare_file(
    config: Any, path: str, views: Sequence[tuple[Sequence[str], str]]
) -> None:
    """Build now the projections and per-entity rollups that the first sandbox question over
    ``path`` would otherwise build for each of ``views`` (columns, entity key; 1.6 s at 1M
    rows): the publication job calls it once the file is final, so that the first buyer
    question is as fast as the next ones (a license of another column set still prepares its
    own on its first question). It runs in a worker process of its own, started and stopped
    here (a job process keeps no idle engine); the files land in
    ``MARKET_DATA_DIR/projections``, where every engine of this data folder finds them.
    Raises what ``DuckDBEngine.prepare`` raises."""
    eng = _build_local({**config, "MARKET_SANDBOX_WORKERS": 1})
    try:
        for columns, entity_key in views:
            eng.prepare(path, columns, entity_key)
    finally:
        eng.close()


def engine_for(app: Any) -> DuckDBEngine:
    """The engine of ``app`` (a Flask app), created on first call. Workers start lazily."""
    with _lock:
        eng = _engines.get(app)
        if eng is None:
            eng = _build(app.config)
            _engines[app] = eng
        return eng


def local_engine_for(app: Any) -> Any:
    """The engine that runs queries in this process whatever ``MARKET_SANDBOX_RUNNER`` says
    (what a ``sandbox`` queue worker uses)."""
    with _lock:
        eng = _local.get(app)
        if eng is None:
            eng = _build_local(app.config)
            _local[app] = eng
        return eng


def install(app: Any, eng: Any) -> None:
    """Make ``eng`` the engine of ``app`` (a test seam, set by code: a slow or failing engine
    that stands in for, or wraps, DuckDB). The previous engine is left to the caller."""
    with _lock:
        _engines[app] = eng


def engine() -> DuckDBEngine:
    """The current app's engine."""
    from flask import current_app

    return engine_for(current_app._get_current_object())  # type: ignore[attr-defined]


def close_engine(app: Any) -> None:
    """Stop ``app``'s engine and its workers, if it has one (the next use starts a new one)."""
    with _lock:
        eng = _engines.pop(app, None)
    if eng is not None and hasattr(eng, "close"):
        eng.close()


def close_all() -> None:
    """Stop every engine this process started (at exit, and at the end of a test session)."""
    with _lock:
        engines = list(_engines.values()) + list(_local.values())
        _engines.clear()
        _local.clear()
    for eng in engines:
        close = getattr(eng, "close", None)
        if close is not None:
            close()


atexit.register(close_all)
