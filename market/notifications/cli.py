"""``market notify send``: deliver the e-mail outbox."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group("notify")
def notify_group() -> None:
    """Notifications."""


@notify_group.command("send")
@click.option("--limit", default=100, show_default=True, help="Mails to send in this run.")
@with_appcontext
def send_cmd(limit: int) -> None:
    """Send the pending e-mails of the outbox over SMTP (MARKET_SMTP_*); failures stay
    pending for the next run. Exits 1 if any failed."""
    from market.extensions import db
    from market.notifications.sender import default_sender, deliver_outbox

    report = deliver_outbox(db.session, default_sender(), limit=limit)
    click.echo(f"sent {report.sent}, failed {report.failed}")
    if report.failed:
        raise SystemExit(1)
