"""``market datasets …``: publish a file and review publications from the command line.

The commands call the same services as the API; the pipeline runs inline with a progress bar.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from market.accounts.actor import Actor


@click.group("datasets")
def datasets_group() -> None:
    """Publish and review datasets."""


def _read_metadata(value: str | None) -> str | None:
    """``--metadata`` is JSON text, or ``@path`` to a JSON file."""
    if value is None:
        return None
    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            raise click.BadParameter(f"no such file: {path}", param_hint="--metadata")
        return path.read_text("utf-8")
    return value


def _org_actor(kind: str, email: str | None, name: str | None, label: str) -> Actor:
    """The acting organization: through one of its users (``email``) or by ``name``."""
    from market.accounts.models import Organization, User
    from market.extensions import db

    if email:
        user = db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))
        if user is None or not user.is_active:
            raise click.ClickException(f"No active user with e-mail {email}.")
        if user.organization.kind != kind:
            raise click.ClickException(f"{email} is not a member of a {kind} organization.")
        return Actor.from_user(user)
    stmt = sa.select(Organization).where(Organization.kind == kind)
    if name:
        stmt = stmt.where(Organization.name == name)
    org = db.session.scalars(stmt.order_by(Organization.id)).first()
    if org is None:
        raise click.ClickException(f"No {kind} organization{' named ' + repr(name) if name else ''}.")
    return Actor(None, org.id, org.kind, org.status, label)


def _domain_error(exc: Any) -> click.ClickException:
    detail = "; ".join(f"{k}: {' '.join(map(str, v if isinstance(v, list) else [v]))}"
                       for k, v in (exc.errors or {}).items())
    return click.ClickException(f"{exc.message} {detail}".strip())


def _print_result(console: Any, version: Any) -> None:
    from rich.table import Table

    dataset = version.dataset
    console.print(
        f"Dataset {dataset.id} [bold]{dataset.title}[/bold] v{version.version}: "
        f"[bold]{version.status}[/bold]"
    )
    if version.refusal_reasons:
        from market.datasets import reasons

        for reason in reasons.render_all(version.refusal_reasons, english=True):
            console.print(f"  reason: {reason}", markup=False, highlight=False)
        return
    dims = (version.quality or {}).get("dimensions", {})
    console.print(
        f"  rows {version.row_count}, format {version.file_format}, encoding {version.encoding}, "
        f"quality {version.quality_score}, k-anonymity {version.k_anonymity}",
        highlight=False,
    )
    console.print(
        "  quality: " + ", ".join(f"{k} {v}" for k, v in dims.items() if v is not None),
        highlight=False,
    )
    table = Table("column", "type", "pii kind", "treatment", "role", title="Published columns")
    for col in version.columns:
        table.add_row(col.name, col.type, col.pii_kind or "-", col.treatment, col.role)
    console.print(table)


@datasets_group.command("publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--metadata", "metadata_text", help="Upload metadata as JSON, or @file.json.")
@click.option("--department-email", help="Publish as this department user.")
@click.option("--department", "department_name", help="Publish for the department of this name.")
@click.option("--dataset", "dataset_id", type=int, help="Upload a new version of this dataset.")
@with_appcontext
def publish_cmd(file, metadata_text, department_email, department_name, dataset_id) -> None:
    """Publish FILE (CSV, XLSX or Parquet) through the pipeline, inline.

    Exits 1 when the upload is refused or fails, printing the reason.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeElapsedColumn

    from market.datasets import services
    from market.datasets.models import Dataset, VersionStatus
    from market.datasets.processing import publish_inline
    from market.datasets.schemas import (
        MetadataInvalid,
        PublishMetadataSchema,
        VersionMetadataSchema,
        parse_metadata,
    )
    from market.errors import DomainError
    from market.extensions import db

    if not department_email and not department_name:
        raise click.UsageError("Give --department-email or --department.")
    actor = _org_actor("department", department_email, department_name, "cli")
    raw = _read_metadata(metadata_text)
    try:
        if dataset_id is None:
            if raw is None:
                raise click.UsageError("A new dataset needs --metadata.")
            meta: Any = services.PublishMeta.from_dict(parse_metadata(raw, PublishMetadataSchema()))
            dataset = None
            vmeta = None
        else:
            meta = None
            vmeta = services.VersionMeta.from_dict(parse_metadata(raw, VersionMetadataSchema()))
            dataset = db.session.get(Dataset, dataset_id)
            if dataset is None:
                raise click.ClickException(f"Dataset {dataset_id} does not exist.")
    except MetadataInvalid as exc:
        detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.errors.items())
        raise click.ClickException(f"Invalid metadata: {detail}") from None

    console = Console(stderr=False, soft_wrap=True)
    try:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task(f"Processing {file.name}", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=max(total, 1))

            version = publish_inline(
                db.session, actor, file, meta=meta, dataset=dataset, version_meta=vmeta,
                progress=progress,
            )
    except DomainError as exc:
        db.session.rollback()
        raise _domain_error(exc) from None
    _print_result(console, version)
    if version.status in (VersionStatus.failed, VersionStatus.refused):
        sys.exit(1)


@datasets_group.command("review")
@click.argument("dataset_id", type=int)
@click.option("--approve/--reject", "approve", required=True, help="The decision.")
@click.option("--comment", default="", help="Review comment (shown to the department).")
@click.option("--operator-email", help="Review as this operator user (default: the operator).")
@with_appcontext
def review_cmd(dataset_id, approve, comment, operator_email) -> None:
    """Approve or reject the version of DATASET_ID that awaits review."""
    from market.datasets import services
    from market.datasets.models import Dataset
    from market.errors import DomainError
    from market.extensions import db

    actor = _org_actor("operator", operator_email, None, "cli")
    dataset = db.session.get(Dataset, dataset_id)
    if dataset is None:
        raise click.ClickException(f"Dataset {dataset_id} does not exist.")
    try:
        version = services.review(
            db.session, actor, dataset, "approve" if approve else "reject", comment
        )
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise _domain_error(exc) from None
    click.echo(f"Dataset {dataset.id} v{version.version}: {version.status} ({dataset.status})")


@datasets_group.command("status")
@click.argument("dataset_id", type=int)
@with_appcontext
def status_cmd(dataset_id) -> None:
    """Print a dataset's versions and their status as JSON."""
    from market.datasets.models import Dataset
    from market.datasets.schemas import DatasetVersionBriefSchema
    from market.extensions import db

    dataset = db.session.get(Dataset, dataset_id)
    if dataset is None:
        raise click.ClickException(f"Dataset {dataset_id} does not exist.")
    click.echo(json.dumps({
        "id": dataset.id, "title": dataset.title, "status": dataset.status,
        "versions": DatasetVersionBriefSchema(many=True).dump(dataset.versions),
    }, ensure_ascii=False, indent=2))
