"""``market licenses …``: license housekeeping from the command line."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group("licenses")
def licenses_group() -> None:
    """Licenses."""


@licenses_group.command("expire")
@with_appcontext
def expire_cmd() -> None:
    """Expire every license whose term is over (run it daily, e.g. from cron)."""
    from licenses.services import expire_due
    from market.extensions import db

    try:
        count = expire_due(db.session)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    click.echo(f"Expired {count} license{'s' if count != 1 else ''}.")
