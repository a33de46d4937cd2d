"""PostgreSQL helpers for the test suite: availability check and throwaway databases.

Run as a script, ``python tests/pg.py check`` exits 0 when the server answers.
"""

from __future__ import annotations

import os
import sys
import uuid

import sqlalchemy as sa
from sqlalchemy.engine import make_url

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def base_url() -> str:
    url = os.environ.get("TEST_POSTGRES_URL") or DEFAULT_URL
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def available(url: str | None = None) -> bool:
    try:
        engine = sa.create_engine(url or base_url(), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def _admin_engine() -> sa.Engine:
    return sa.create_engine(base_url(), isolation_level="AUTOCOMMIT")


def create_database(prefix: str = "market_test", template: str | None = None) -> str:
    """Create a uniquely named database and return its URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    engine = _admin_engine()
    with engine.connect() as conn:
        if template:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        else:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(base_url()).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    name = make_url(url).database
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "check":
        sys.exit(0 if available() else 1)
    print(__doc__)
