"""``market agreements …``: the expiry sweeper (the web processes also run it on a timer,
:mod:`market.agreements.sweeper`; cron may run this too)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from market.accounts.actor import Actor


@click.group("agreements")
def agreements_group() -> None:
    """Authorization agreements (授权运营协议)."""


@agreements_group.command("expire")
@with_appcontext
def expire_cmd() -> None:
    """Expire agreements whose term has ended and delist the datasets they covered (active
    licenses run to their end)."""
    from market.agreements.services import expire_agreements
    from market.extensions import db

    expired = expire_agreements(db.session, Actor.system("cli"))
    db.session.commit()
    for agreement in expired:
        click.echo(f"{agreement.number}: expired")
    click.echo(f"{len(expired)} agreement(s) expired")
