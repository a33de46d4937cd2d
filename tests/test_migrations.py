"""Alembic has exactly one head, and the models match the migrations."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def _script() -> ScriptDirectory:
    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg)


def test_exactly_one_head():
    heads = _script().get_heads()
    assert len(heads) == 1, f"several Alembic heads: {heads}"


def test_file_names_are_date_prefixed_and_descriptive():
    for path in (MIGRATIONS / "versions").glob("*.py"):
        stem = path.stem
        assert stem[:8].isdigit() and stem[8] == "_", stem
        assert len(stem.split("_", 2)[-1]) >= 8, f"{stem}: give the migration a descriptive slug"


def test_models_match_migrations(app):
    import market.models  # noqa: F401
    from market.db import Base
    from market.extensions import db

    # The test's own connection: on SQLite a second one would wait for its write lock.
    ctx = MigrationContext.configure(db.session.connection(), opts={"compare_type": True})
    diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations differ; run `flask db migrate`: {diff}"


def test_head_is_applied(app):
    from market.extensions import db

    current = MigrationContext.configure(db.session.connection()).get_current_heads()
    assert set(current) == set(_script().get_heads())
