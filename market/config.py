"""Configuration from environment variables, with secrets generated on first run.

Every setting API.md lists is read here and nowhere else. Secrets that are not set in the
environment are generated once into ``<instance>/secrets.json`` (mode 0600) so that a fresh
checkout runs without set-up and no secret is ever committed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from market.crypto import private_key_to_b64

_SECRET_NAMES = ("MARKET_SECRET_KEY", "MARKET_PSEUDONYM_KEY", "MARKET_SIGNING_KEY")


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _generate_secrets() -> dict[str, str]:
    return {
        "MARKET_SECRET_KEY": secrets.token_urlsafe(48),
        "MARKET_PSEUDONYM_KEY": secrets.token_urlsafe(48),
        "MARKET_SIGNING_KEY": private_key_to_b64(Ed25519PrivateKey.generate()),
    }


def load_instance_secrets(instance_path: Path) -> dict[str, str]:
    """Read ``secrets.json``, creating it exclusively if it does not exist yet.

    ``O_EXCL`` makes concurrent first starts (several gunicorn workers) agree on one file.
    """
    instance_path.mkdir(parents=True, exist_ok=True)
    path = instance_path / "secrets.json"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return json.loads(path.read_text("utf-8"))
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        generated = _generate_secrets()
        json.dump(generated, fh)
    return generated


def build_config(instance_path: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The app's configuration: defaults < environment < ``overrides``."""
    overrides = dict(overrides or {})
    data_dir = Path(
        overrides.get("MARKET_DATA_DIR") or os.environ.get("MARKET_DATA_DIR") or instance_path / "data"
    )
    database_url = (
        overrides.get("SQLALCHEMY_DATABASE_URI")
        or os.environ.get("DATABASE_URL")
        or f"sqlite:///{instance_path / 'market.db'}"
    )
    # Heroku-style URLs name the scheme "postgres"; SQLAlchemy wants the psycopg driver.
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgres://") :]
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]

    config: dict[str, Any] = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "MARKET_DATA_DIR": str(data_dir),
        "MARKET_VERSION": "0.1.0",
        "MAX_CONTENT_LENGTH": _env_int("MARKET_MAX_UPLOAD_BYTES", 512 * 1024 * 1024),
        # Upload shape limits, checked before anything is stored (422 above them).
        "MARKET_MAX_COLUMNS": _env_int("MARKET_MAX_COLUMNS", 2000),
        "MARKET_UPLOAD_RATE_LIMIT": os.environ.get("MARKET_UPLOAD_RATE_LIMIT", "30 per hour"),
        "MARKET_MAX_LINE_BYTES": _env_int("MARKET_MAX_LINE_BYTES", 64 * 1024),
        # JSON bodies are parsed in memory whole: a much smaller cap (413 above it).
        "MARKET_MAX_JSON_BYTES": _env_int("MARKET_MAX_JSON_BYTES", 1024 * 1024),
        "MARKET_TOKEN_TTL": dt.timedelta(hours=_env_int("MARKET_TOKEN_TTL_HOURS", 24)),
        "MARKET_AUDIT_CHECKPOINT_EVERY": _env_int("MARKET_AUDIT_CHECKPOINT_EVERY", 100),
        # ... and at the first event after this many minutes without a checkpoint.
        "MARKET_AUDIT_CHECKPOINT_MINUTES": _env_int("MARKET_AUDIT_CHECKPOINT_MINUTES", 10),
        "MARKET_JOB_RUNNER": os.environ.get("MARKET_JOB_RUNNER", "thread"),
        # MARKET_JOB_RUNNER=celery: the broker of `celery -A market.worker worker`.
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL"),
        # Where desensitized Parquet lives: local (MARKET_DATA_DIR) or s3 (docs/scaling.md).
        "MARKET_STORAGE": os.environ.get("MARKET_STORAGE", "local"),
        "MARKET_S3_BUCKET": os.environ.get("MARKET_S3_BUCKET"),
        "MARKET_S3_ENDPOINT_URL": os.environ.get("MARKET_S3_ENDPOINT_URL"),
        "MARKET_S3_REGION": os.environ.get("MARKET_S3_REGION"),
        "MARKET_S3_PREFIX": os.environ.get("MARKET_S3_PREFIX", ""),
        "MARKET_STORAGE_CACHE_DIR": os.environ.get("MARKET_STORAGE_CACHE_DIR"),
        "MARKET_QUOTE_VALID_DAYS": _env_int("MARKET_QUOTE_VALID_DAYS", 7),
        "MARKET_QUOTE_RATE_LIMIT": os.environ.get("MARKET_QUOTE_RATE_LIMIT", "60 per minute"),
        #: The operator's fee as a decimal string (never a float): 0.10 = 10 %.
        "MARKET_OPERATOR_FEE_SHARE": os.environ.get("MARKET_OPERATOR_FEE_SHARE", "0.10"),
        "MARKET_JOB_WORKERS": _env_int("MARKET_JOB_WORKERS", 2),
        # Crash-safe jobs (market.leases): a job's lease lasts this long unless its process
        # renews it; expired jobs are swept at start-up and every MARKET_JOB_SWEEP_SECONDS.
        "MARKET_JOB_LEASE_SECONDS": _env_int("MARKET_JOB_LEASE_SECONDS", 60),
        "MARKET_JOB_SWEEP_SECONDS": _env_int("MARKET_JOB_SWEEP_SECONDS", 60),
        # Agreements whose term ended are expired (datasets delisted) at each web process's
        # first request and every MARKET_AGREEMENT_SWEEP_SECONDS (market.agreements.sweeper).
        "MARKET_AGREEMENT_SWEEP_SECONDS": _env_int("MARKET_AGREEMENT_SWEEP_SECONDS", 300),
        # XLSX zip-bomb caps, checked before a workbook is parsed (413/422 above them).
        "MARKET_XLSX_MAX_UNPACKED_BYTES": _env_int("MARKET_XLSX_MAX_UNPACKED_BYTES", 1 << 30),
        "MARKET_XLSX_MAX_RATIO": _env_int("MARKET_XLSX_MAX_RATIO", 100),
        "MARKET_XLSX_MAX_ROWS": _env_int("MARKET_XLSX_MAX_ROWS", 1_048_576),
        "MARKET_XLSX_MAX_CELLS": _env_int("MARKET_XLSX_MAX_CELLS", 50_000_000),
        # The data sandbox (sandbox.services): result row cap, wall-clock limit per query,
        # DuckDB limits per worker process, and the epsilon each DP query spends (a string).
        "MARKET_SANDBOX_ROW_CAP": _env_int("MARKET_SANDBOX_ROW_CAP", 1000),
        "MARKET_SANDBOX_TIMEOUT_S": _env_int("MARKET_SANDBOX_TIMEOUT_S", 10),
        "MARKET_SANDBOX_MEMORY_LIMIT": os.environ.get("MARKET_SANDBOX_MEMORY_LIMIT", "1GB"),
        "MARKET_SANDBOX_THREADS": _env_int("MARKET_SANDBOX_THREADS", 2),
        "MARKET_SANDBOX_WORKERS": _env_int("MARKET_SANDBOX_WORKERS", 2),
        # Per-entity rollups next to the projections (sandbox.engine.Rollup; dp-preagg).
        "MARKET_SANDBOX_ROLLUPS": _env_bool("MARKET_SANDBOX_ROLLUPS", True),
        "MARKET_SANDBOX_DP_EPSILON_PER_QUERY": os.environ.get(
            "MARKET_SANDBOX_DP_EPSILON_PER_QUERY", "0.5"
        ),
        # duckdb | spark; inline | celery (docs/scaling.md)
        "MARKET_SANDBOX_ENGINE": os.environ.get("MARKET_SANDBOX_ENGINE", "duckdb"),
        "MARKET_SPARK_MASTER": os.environ.get("MARKET_SPARK_MASTER", "local[2]"),
        "MARKET_SANDBOX_RUNNER": os.environ.get("MARKET_SANDBOX_RUNNER", "inline"),
        "CELERY_RESULT_BACKEND": os.environ.get("CELERY_RESULT_BACKEND"),
        "MARKET_SANDBOX_RATE_LIMIT": os.environ.get("MARKET_SANDBOX_RATE_LIMIT", "120 per minute"),
        "STRIPE_API_KEY": os.environ.get("STRIPE_API_KEY"),
        "STRIPE_API_BASE": os.environ.get("STRIPE_API_BASE"),
        "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET"),
        "STRIPE_PUBLISHABLE_KEY": os.environ.get("STRIPE_PUBLISHABLE_KEY"),
        "REDIS_URL": os.environ.get("REDIS_URL"),
        # Notifications (market.notifications): e-mail them through the outbox, which
        # `market notify send` delivers over SMTP.
        "MARKET_NOTIFY_EMAIL": _env_bool("MARKET_NOTIFY_EMAIL", False),
        "MARKET_SMTP_HOST": os.environ.get("MARKET_SMTP_HOST", "localhost"),
        "MARKET_SMTP_PORT": _env_int("MARKET_SMTP_PORT", 25),
        "MARKET_SMTP_USER": os.environ.get("MARKET_SMTP_USER"),
        "MARKET_SMTP_PASSWORD": os.environ.get("MARKET_SMTP_PASSWORD"),
        "MARKET_SMTP_STARTTLS": _env_bool("MARKET_SMTP_STARTTLS", False),
        "MARKET_SMTP_FROM": os.environ.get("MARKET_SMTP_FROM", "noreply@market.invalid"),
        # The operator's details printed on invoices (licenses.invoice_pdf).
        "MARKET_INVOICE_PAYEE_NAME": os.environ.get("MARKET_INVOICE_PAYEE_NAME", ""),
        "MARKET_INVOICE_BANK_NAME": os.environ.get("MARKET_INVOICE_BANK_NAME", ""),
        "MARKET_INVOICE_BANK_ACCOUNT": os.environ.get("MARKET_INVOICE_BANK_ACCOUNT", ""),
        "MARKET_INVOICE_TAX_NUMBER": os.environ.get("MARKET_INVOICE_TAX_NUMBER", ""),
        "MARKET_INVOICE_DUE_DAYS": _env_int("MARKET_INVOICE_DUE_DAYS", 30),
        # Cookies: Secure by default; `market serve` relaxes it only for plain-HTTP loopback.
        "SESSION_COOKIE_SECURE": _env_bool("MARKET_COOKIE_SECURE", True),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_NAME": "market_session",
        "PERMANENT_SESSION_LIFETIME": dt.timedelta(hours=_env_int("MARKET_SESSION_MAX_HOURS", 8)),
        "MARKET_SESSION_IDLE_MINUTES": _env_int("MARKET_SESSION_IDLE_MINUTES", 60),
        # Sessions live on the server (market.accounts.sessions): absolute lifetime, and the
        # per-account login backoff (free failures, then 1 s doubling up to the cap).
        "MARKET_SESSION_MAX_HOURS": _env_int("MARKET_SESSION_MAX_HOURS", 8),
        "MARKET_LOGIN_FREE_ATTEMPTS": _env_int("MARKET_LOGIN_FREE_ATTEMPTS", 5),
        "MARKET_LOGIN_BACKOFF_MAX_SECONDS": _env_int("MARKET_LOGIN_BACKOFF_MAX_SECONDS", 300),
        # Reverse proxies in front of the app whose X-Forwarded-* headers are believed
        # (ProxyFix); 0 = none, the socket's peer is the client.
        "MARKET_TRUSTED_PROXIES": _env_int("MARKET_TRUSTED_PROXIES", 0),
        # Longer URLs get a 414 in the JSON envelope (gunicorn's limit_request_line is above).
        "MARKET_MAX_URL_BYTES": _env_int("MARKET_MAX_URL_BYTES", 8000),
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_CSRF_SSL_STRICT": False,
        "BABEL_DEFAULT_LOCALE": "zh",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
        "API_TITLE": "Public Data Market API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "RATELIMIT_STORAGE_URI": os.environ.get("REDIS_URL") or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        # Pooled connections are pinged only after sitting idle this long (seconds), instead
        # of pool_pre_ping's round trip on every checkout (market.database).
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False},
        "MARKET_DB_PING_IDLE_S": float(os.environ.get("MARKET_DB_PING_IDLE_S", "10")),
        # Seconds between writes of the request-latency counts (market.metrics.recorder);
        # unset: 30 s (never under TESTING).
        "MARKET_HTTP_METRICS_FLUSH_S": os.environ.get("MARKET_HTTP_METRICS_FLUSH_S") or None,
    }
    env_secrets = {name: os.environ.get(name) for name in _SECRET_NAMES}
    missing = [n for n, v in env_secrets.items() if not v and n not in overrides]
    stored = load_instance_secrets(instance_path) if missing else {}
    for name in _SECRET_NAMES:
        config[name] = overrides.get(name) or env_secrets[name] or stored[name]
    config["SECRET_KEY"] = config["MARKET_SECRET_KEY"]
    config.update(overrides)
    return config
