"""The app's one DuckDB engine: created on first use, shared by every request, closed at exit.

The engine owns a pool of worker processes, so there is exactly one per app (tests build
several apps in one process; each gets its own, reused across its tests). Projections of the
licensed columns are cached under ``MARKET_DATA_DIR/projections``.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from pathlib import Path
from typing import Any

from .engine import DuckDBEngine

_lock = threading.Lock()
_engines: weakref.WeakKeyDictionary[Any, DuckDBEngine] = weakref.WeakKeyDictionary()


def _build(config: Any) -> DuckDBEngine:
    data_dir = Path(config["MARKET_DATA_DIR"])
    return DuckDBEngine(
        threads=int(config.get("MARKET_SANDBOX_THREADS", 2)),
        memory_limit=str(config.get("MARKET_SANDBOX_MEMORY_LIMIT", "1GB")),
        workers=int(config.get("MARKET_SANDBOX_WORKERS", 2)),
        projection_dir=data_dir / "projections",
    )


def engine_for(app: Any) -> DuckDBEngine:
    """The engine of ``app`` (a Flask app), created on first call. Workers start lazily."""
    with _lock:
        eng = _engines.get(app)
        if eng is None:
            eng = _build(app.config)
            _engines[app] = eng
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
    if eng is not None:
        eng.close()


def close_all() -> None:
    """Stop every engine this process started (at exit, and at the end of a test session)."""
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
    for eng in engines:
        eng.close()


atexit.register(close_all)
