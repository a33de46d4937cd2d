"""The ``market`` command: a Flask command group reading the same config as the app."""

from __future__ import annotations

import ipaddress
import os
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext


def _create_app():
    from market import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False)
def main() -> None:
    """Public Data Market (公共数据授权运营) management commands.

    The commands live on ``app.cli`` (see ``register_commands``), so that ``flask`` and the
    app's test runner see the same set.
    """


def _cli_actor():
    from market.accounts.actor import Actor

    return Actor.system("cli")


def run_init() -> None:
    from flask_migrate import upgrade

    upgrade()


@click.command("init")
@with_appcontext
def init_cmd() -> None:
    """Create or migrate the database (alembic upgrade head)."""
    run_init()
    click.echo(f"Database is at the latest revision: {current_app.config['SQLALCHEMY_DATABASE_URI'].split('@')[-1]}")


@click.group("users")
def users_group() -> None:
    """Manage users."""


@users_group.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True, prompt=True, hide_input=True, confirmation_prompt=False)
@click.option("--org", "org_name", required=True, help="Organization name; created if it does not exist.")
@click.option(
    "--kind",
    type=click.Choice(["department", "buyer", "operator", "regulator", "subject"]),
    help="Organization kind (needed when the organization is new).",
)
@click.option("--credit-code", help="Unified Social Credit Code (needed when the organization is new).")
@with_appcontext
def users_create(email, password, org_name, kind, credit_code) -> None:
    """Create a user, and its organization if needed."""
    import sqlalchemy as sa

    from market.accounts import services
    from market.accounts.models import Organization
    from market.errors import DomainError
    from market.extensions import db

    actor = _cli_actor()
    try:
        org = db.session.scalar(sa.select(Organization).where(Organization.name == org_name))
        if org is None:
            if not kind or not credit_code:
                raise click.UsageError("The organization is new: give --kind and --credit-code.")
            org = services.create_organization(
                db.session, actor, name=org_name, kind=kind, credit_code=credit_code, check=False
            )
        elif kind and org.kind != kind:
            raise click.UsageError(f"Organization {org_name!r} exists with kind {org.kind!r}.")
        user = services.create_user(
            db.session, actor, email=email, password=password, organization_id=org.id, check=False
        )
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        detail = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in exc.errors.items())
        raise click.ClickException(f"{exc.message} {detail}".strip()) from None
    click.echo(f"Created user {user.email} (id {user.id}) in {org.name} [{org.kind}]")


@click.command("token")
@click.option("--email", required=True)
@with_appcontext
def token_cmd(email) -> None:
    """Print a new API token for a user."""
    import sqlalchemy as sa

    from market.accounts import services
    from market.accounts.models import User
    from market.extensions import db

    user = db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))
    if user is None or not user.is_active:
        raise click.ClickException(f"No active user with e-mail {email}.")
    token, row = services.issue_token(db.session, user, current_app.config["MARKET_TOKEN_TTL"], _cli_actor())
    db.session.commit()
    click.echo(token)
    click.echo(f"expires at {row.expires_at.isoformat()}", err=True)


@click.group("audit")
def audit_group() -> None:
    """The audit chain."""


def _head_option(_ctx, _param, value: str | None) -> tuple[int, str] | None:
    if value is None:
        return None
    seq, _sep, hash_ = value.partition(":")
    if not seq.isdigit() or len(hash_) != 64 or any(c not in "0123456789abcdef" for c in hash_):
        raise click.BadParameter("expected SEQ:HASH, e.g. 120:3f5a… (64 hex digits)")
    return int(seq), hash_


@audit_group.command("verify")
@click.option("--expect-head", callback=_head_option, metavar="SEQ:HASH",
              help="A head kept outside the system (GET /api/v1/audit/head): fail if the chain "
                   "no longer reaches it.")
@with_appcontext
def audit_verify(expect_head) -> None:
    """Verify the audit chain; exits non-zero if it is broken."""
    from market.audit.services import verify_chain
    from market.extensions import db
    from market.keys import public_keys

    result = verify_chain(db.session, public_keys(), expect_head=expect_head)
    if result.valid:
        click.echo(f"OK: {result.events} events, {result.checkpoints} signed checkpoints, head {result.head}")
        return
    click.echo(
        f"BROKEN at seq {result.first_invalid_seq}: {result.reason} ({result.events} events verified before it)",
        err=True,
    )
    sys.exit(1)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve_app(host: str, port: int) -> None:
    """Serve with the threaded Werkzeug server (development and demo use)."""
    app = current_app._get_current_object()
    if _is_loopback(host) and "MARKET_COOKIE_SECURE" not in os.environ:
        # Plain HTTP on loopback: browsers would drop a Secure cookie on some setups.
        app.config["SESSION_COOKIE_SECURE"] = False
    click.echo(f"Serving on http://{host}:{port}  (Ctrl-C to stop)")
    # Not app.run(): Flask ignores it inside its own CLI (FLASK_RUN_FROM_CLI).
    from market import devserver

    devserver.run(host, port, app)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def serve_cmd(host, port) -> None:
    """Serve the app."""
    serve_app(host, port)


@click.command("demo")
@click.option("--rows", default=2000, show_default=True, type=int, help="Enterprises in the demo population.")
@click.option("--no-serve", is_flag=True, help="Seed only; do not start the server.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def demo_cmd(rows, no_serve, host, port) -> None:
    """Seed demo organizations, users and data, print the accounts, then serve."""
    from market.demo_seed import seed_demo

    run_init()
    report = seed_demo(rows=rows, progress=click.echo)
    click.echo("\nDemo accounts (password in brackets):")
    for role, email, password, org in report.accounts:
        click.echo(f"  {role:<10} {email:<34} [{password}]  {org}")
    for note in report.notes:
        click.echo(f"  · {note}")
    if not no_serve:
        serve_app(host, port)


@click.group("jobs")
def jobs_group() -> None:
    """Background jobs."""


@jobs_group.command("sweep")
@with_appcontext
def jobs_sweep() -> None:
    """Fail jobs whose lease expired (their process died) and delete their leftover files."""
    from market.leases import sweep

    click.echo(str(sweep()))


def register_commands(app) -> None:
    from licenses.cli import licenses_group

    for command in (init_cmd, users_group, token_cmd, audit_group, serve_cmd, demo_cmd,
                    jobs_group):
        app.cli.add_command(command)
    app.cli.add_command(licenses_group)
    from market.datasets.cli import datasets_group

    app.cli.add_command(datasets_group)
    from market.agreements.cli import agreements_group

    app.cli.add_command(agreements_group)
    from market.notifications.cli import notify_group

    app.cli.add_command(notify_group)
