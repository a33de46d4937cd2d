"""``market notify send``: deliver the e-mail outbox."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group("notify")
def notify_group() -> None:
    """Notifications."""


@notify_group.command("send")
@click.option("--limit", default=100, show_default=True, help="Mails to send in this run.")
@click.option(
    "--requeue-stuck", is_flag=True,
    help="First put back mails a dead run left half-sent (they may then arrive twice).",
)
@with_appcontext
def send_cmd(limit: int, requeue_stuck: bool) -> None:
    """Send the pending e-mails of the outbox over SMTP (MARKET_SMTP_*); failures stay
    pending for the next run. Runs may overlap: each mail goes at most once. Exits 1 if any
    failed."""
    from market.extensions import db
    from market.notifications import sender as outbox

    if requeue_stuck:
        n = outbox.requeue_stuck(db.session)
        db.session.commit()
        click.echo(f"requeued {n}")
    report = outbox.deliver_outbox(db.session, outbox.default_sender(), limit=limit)
    click.echo(f"sent {report.sent}, failed {report.failed}")
    stuck = outbox.stuck_count(db.session)
    if stuck:
        click.echo(
            f"{stuck} mail(s) were claimed by a run that never finished: their delivery is "
            "unknown; check the SMTP server's log, then run with --requeue-stuck to send them.",
            err=True,
        )
    if report.failed:
        raise SystemExit(1)
