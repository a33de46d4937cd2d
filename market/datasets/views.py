"""Pages: the catalogue, a dataset's page, the department's upload page and its datasets, the
operator's publication review queue. They call the same services as the API."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import selectinload

from market.auth import login_required
from market.datasets import api as publication_api
from market.datasets import catalog, reasons, services
from market.datasets import permissions as perms
from market.datasets import privacy as dataset_privacy
from market.datasets.forms import (
    DIMENSION_LABELS,
    PII_LABELS,
    TREATMENT_LABELS,
    PrivacyForm,
    ReviewForm,
    TreatmentsForm,
    UploadForm,
    label,
    privacy_from_form,
)
from market.datasets.models import Dataset, DatasetVersion, Treatment, VersionStatus
from market.datasets.schemas import (
    PublishMetadataSchema,
    displayed_version,
    latest_version,
    progress_of,
)
from market.errors import DomainError, Forbidden, ValidationFailed, envelope, wants_json
from market.extensions import db
from market.web import registry

bp = Blueprint("datasets", __name__)


@bp.app_template_filter("refusal_reasons")
def _refusal_reasons_filter(stored: Any) -> list[str]:
    """A version's stored refusal/failure reasons in the page's language."""
    return reasons.render_all(stored)


@bp.app_template_filter("report_warnings")
def _report_warnings_filter(stored: Any) -> list[str]:
    """The pipeline report's stored warnings in the page's language."""
    return reasons.render_all(stored)


EVERYONE = {"department", "buyer", "operator", "regulator", "subject"}
registry.nav_link("datasets.catalogue", _l("Catalogue"), roles=EVERYONE, order=10)
registry.nav_link("datasets.upload", _l("Upload a dataset"), roles={"department"}, order=20)
registry.nav_link("datasets.mine", _l("My datasets"), roles={"department"}, order=21)
registry.nav_link("datasets.review_queue", _l("Publication review"), roles={"operator"}, order=30)

MINE_PER_PAGE = 20
QUEUE_LIMIT = 100


@bp.record_once
def _template_globals(state) -> None:
    # Globals rather than a context processor: imported macros see globals, not the context.
    state.app.jinja_env.globals.update(ds_label=label, status_url=status_url)


def status_url(dataset_id: int, version: int) -> str:
    """The publication API's progress endpoint for one version (polled by datasets.js)."""
    return f"{request.script_root}/api/v1/datasets/{dataset_id}/versions/{version}/status"


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise Forbidden(message)


# -- dashboard panels -------------------------------------------------------------------------


@registry.panel("my_datasets", roles={"department"}, title=_l("My datasets"), order=10)
def _my_datasets_panel(user):
    rows = db.session.execute(
        sa.select(Dataset.status, sa.func.count(Dataset.id))
        .where(Dataset.department_id == user.organization_id)
        .group_by(Dataset.status)
    ).all()
    recent = db.session.scalars(
        sa.select(Dataset)
        .where(Dataset.department_id == user.organization_id)
        .order_by(Dataset.created_at.desc(), Dataset.id.desc())
        .limit(5)
    ).all()
    return {"counts": {status: n for status, n in rows}, "recent": recent}


@registry.panel("publication_queue", roles={"operator"}, title=_l("Publication review"), order=10)
def _publication_queue_panel(user):
    stmt = sa.select(DatasetVersion).where(DatasetVersion.status == VersionStatus.pending_review)
    count = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery())) or 0
    oldest = db.session.scalars(
        stmt.order_by(DatasetVersion.processed_at, DatasetVersion.id).limit(3)
    ).all()
    return {"count": count, "oldest": oldest}


# -- catalogue --------------------------------------------------------------------------------


def _int_arg(name: str, low: int | None = None, high: int | None = None) -> int | None:
    value = request.args.get(name, type=int)
    if value is None:
        return None
    if (low is not None and value < low) or (high is not None and value > high):
        return None
    return value


def _query_from_args() -> catalog.CatalogQuery:
    sort = request.args.get("sort", "updated")
    return catalog.CatalogQuery(
        q=(request.args.get("q") or "").strip()[:200] or None,
        category=(request.args.get("category") or "").strip()[:64] or None,
        department_id=_int_arg("department_id", 1),
        min_quality=_int_arg("min_quality", 0, 100),
        open_grade=request.args.get("open_grade") or None,
        security_level=request.args.get("security_level") or None,
        quality_band=request.args.get("quality_band") or None,
        sort=sort if sort in catalog.SORTS else "updated",
        page=_int_arg("page", 1) or 1,
        per_page=catalog.DEFAULT_PER_PAGE,
    )


@bp.get("/catalog")
def catalogue():
    """The catalogue: anyone, signed in or not."""
    query = _query_from_args()
    result = catalog.search(db.session, query)
    active = query.active()

    def link(**changes: Any) -> str:
        args = {**active, **changes}
        return url_for(
            "datasets.catalogue", **{k: v for k, v in args.items() if v not in (None, "")}
        )

    return render_template(
        "datasets/catalogue.html",
        query=query,
        result=result,
        active=active,
        link=link,
        sorts=catalog.SORTS,
    )


# -- one dataset ------------------------------------------------------------------------------


def _quality_chart(version: DatasetVersion | None) -> dict[str, Any] | None:
    quality = (version.quality or {}) if version else {}
    dims = quality.get("dimensions") or {}
    if not dims:
        return None
    keys = [k for k in DIMENSION_LABELS if k in dims] + [
        k for k in dims if k not in DIMENSION_LABELS
    ]
    return {
        "labels": [str(label("dimension", k)) for k in keys],
        "values": [None if dims[k] is None else round(float(dims[k]), 1) for k in keys],
        "keys": keys,
        "dataset_label": _("Score (0-100)"),
        "score": quality.get("score"),
    }


def _pii_rows(version: DatasetVersion) -> list[dict[str, Any]]:
    """Detected personal data and the treatments applied, from the report and the columns."""
    published = {c.name: c for c in version.columns}
    rows = []
    for entry in (version.report or {}).get("columns") or []:
        if not isinstance(entry, dict):
            continue
        column = published.get(entry.get("output_name") or "") or published.get(
            entry.get("name") or ""
        )
        rows.append(
            {
                "name": entry.get("name"),
                "output_name": entry.get("output_name"),
                "type": entry.get("type") or (column.type if column else None),
                "pii_kind": entry.get("pii_kind"),
                "treatment": entry.get("treatment") or (column.treatment if column else "none"),
                "generalization": entry.get("generalization"),
                "detection_share": entry.get("detection_share"),
                "quasi_identifier": entry.get("quasi_identifier"),
                "embedded": entry.get("embedded"),
                "role": column.role if column else None,
            }
        )
    if not rows:  # no report (e.g. created elsewhere): the published columns say enough
        rows = [
            {
                "name": c.name,
                "output_name": c.name,
                "type": c.type,
                "pii_kind": c.pii_kind,
                "treatment": c.treatment,
                "generalization": None,
                "detection_share": None,
                "quasi_identifier": None,
                "embedded": None,
                "role": c.role,
            }
            for c in version.columns
        ]
    return rows


def _render_detail(
    dataset: Dataset,
    *,
    review_form: ReviewForm | None = None,
    treatments_errors: dict[str, list[str]] | None = None,
    status: int = 200,
    privacy_form: PrivacyForm | None = None,
):
    actor = g.actor
    version = displayed_version(dataset)
    latest = latest_version(dataset)
    insider = perms.can_see_unlisted(actor, dataset)
    pending = catalog.pending_version(dataset) if insider else None
    is_owner = perms.is_owner(actor, dataset)
    preview = catalog.preview(dataset)
    columns = [c for c in (version.columns if version else [])]
    return render_template(
        "datasets/detail.html",
        dataset=dataset,
        version=version,
        latest=latest,
        insider=insider,
        is_owner=is_owner,
        pending=pending,
        pending_rows=_pii_rows(pending) if pending else [],
        can_review=pending is not None and perms.can_review(actor),
        can_change_treatments=pending is not None and perms.can_manage_versions(actor, dataset),
        review_form=review_form or ReviewForm(),
        treatments_form=TreatmentsForm(),
        treatments_errors=treatments_errors or {},
        versions=catalog.visible_versions(actor, dataset),
        columns=columns,
        quality_chart=_quality_chart(version),
        preview=preview,
        latest_progress=progress_of(latest) if latest else None,
        is_buyer=actor.role == "buyer",
        **_privacy_context(dataset, privacy_form),
    ), status


def _privacy_context(dataset: Dataset, form: PrivacyForm | None) -> dict[str, Any]:
    """The privacy section: settings in force for all; the form for who may change them."""
    settings = dataset_privacy.effective_privacy(dataset)
    if settings is None:
        return {"privacy": None, "privacy_form": None}
    editable = perms.can_manage_versions(g.actor, dataset) or perms.can_review(g.actor)
    if editable and form is None:
        form = PrivacyForm(formdata=None)
        form.fill(settings)
    return {"privacy": settings.as_json(), "privacy_form": form if editable else None}


@bp.post("/datasets/<int:dataset_id>/privacy")
@login_required
def privacy_settings(dataset_id: int):
    """Save a conditional dataset's privacy settings (department; the operator tightens)."""
    dataset = catalog.get_visible(db.session, g.actor, dataset_id)
    form = PrivacyForm()
    if form.validate_on_submit():
        try:
            done = dataset_privacy.update_privacy(
                db.session, g.actor, dataset, privacy_from_form(form, "dp_")
            )
        except ValidationFailed as exc:
            db.session.rollback()
            for key, messages in (exc.errors or {}).items():
                name = key.replace("privacy.", "dp_", 1)
                if name.startswith("dp_ranges"):
                    name = "dp_ranges"
                field = form._fields.get(name)
                (field.errors if field is not None else form.form_errors).extend(messages)
            return _render_detail(dataset, privacy_form=form, status=422)
        if done.change_request is not None:
            flash(
                _("The stricter settings apply now; the looser ones apply once the operator "
                  "approves them."),
                "success",
            )
            return redirect(url_for("datasets.detail", dataset_id=dataset_id) + "#change-request")
        flash(_("The privacy settings are saved."), "success")
        return redirect(url_for("datasets.detail", dataset_id=dataset_id) + "#privacy")
    return _render_detail(dataset, privacy_form=form, status=422)


@bp.get("/datasets/<int:dataset_id>")
def detail(dataset_id: int):
    """A dataset's page: listed ones for anyone, others for their department, operator and
    regulator (404 for everyone else)."""
    dataset = catalog.get_visible(db.session, g.actor, dataset_id)
    return _render_detail(dataset)


@bp.post("/datasets/<int:dataset_id>/review")
@login_required
def review(dataset_id: int):
    """The operator approves or rejects the version awaiting review."""
    dataset = catalog.get_visible(db.session, g.actor, dataset_id)
    _require(perms.can_review(g.actor), _("Only the operator reviews publications."))
    form = ReviewForm()
    to_queue = request.form.get("return_to") == "queue"
    if not form.validate_on_submit():
        if to_queue:
            return _render_queue(failed_id=dataset.id, form=form, status=422)
        return _render_detail(dataset, review_form=form, status=422)
    try:
        version = services.review(
            db.session, g.actor, dataset, form.decision.data, (form.comment.data or "").strip()
        )
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(
            url_for("datasets.review_queue")
            if to_queue
            else url_for("datasets.detail", dataset_id=dataset_id)
        )
    if version.status == VersionStatus.listed:
        flash(
            _(
                "%(title)s, version %(v)s, is now listed in the catalogue.",
                title=dataset.title,
                v=version.version,
            ),
            "success",
        )
    else:
        flash(
            _(
                "%(title)s, version %(v)s, was rejected; the department sees your comment.",
                title=dataset.title,
                v=version.version,
            ),
            "success",
        )
    if to_queue:
        return redirect(url_for("datasets.review_queue"))
    return redirect(url_for("datasets.detail", dataset_id=dataset_id))


@bp.post("/datasets/<int:dataset_id>/treatments")
@login_required
def treatments(dataset_id: int):
    """The owning department makes treatments stricter while the version awaits review."""
    dataset = catalog.get_visible(db.session, g.actor, dataset_id)
    _require(
        perms.can_manage_versions(g.actor, dataset),
        _("Only the department that owns this dataset can change it."),
    )
    pending = catalog.pending_version(dataset)
    form = TreatmentsForm()
    if pending is None or not form.validate_on_submit():
        flash(_("Nothing awaits review, or the form expired; reload the page."), "error")
        return redirect(url_for("datasets.detail", dataset_id=dataset_id))
    current = {row["name"]: row["treatment"] for row in _pii_rows(pending)}
    changes = {}
    for name, have in current.items():
        wanted = request.form.get(f"treatment:{name}")
        if wanted and wanted != have and wanted in Treatment.__members__:
            changes[name] = wanted
    if not changes:
        flash(_("No treatment was changed."), "info")
        return redirect(url_for("datasets.detail", dataset_id=dataset_id))
    try:
        services.change_treatments(db.session, g.actor, dataset, pending.version, changes)
    except DomainError as exc:
        db.session.rollback()
        return _render_detail(
            dataset, treatments_errors=exc.errors or {"form": [exc.message]}, status=exc.status
        )
    flash(_("Treatments updated: %(columns)s.", columns=", ".join(sorted(changes))), "success")
    return redirect(url_for("datasets.detail", dataset_id=dataset_id))


# -- the department ---------------------------------------------------------------------------


@bp.url_value_preprocessor
def _stage_upload_stream(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # Runs before the CSRF check, which parses the form: file parts then stream to staging files
    # under the data folder, never to the system temp dir (raw data sits nowhere else).
    if endpoint == "datasets.upload" and request.method == "POST":
        publication_api.install_upload_stream()


@bp.teardown_request
def _discard_staged(exc: BaseException | None) -> None:
    """Delete staged uploads this request did not hand to the processing job."""
    for staged in request.environ.pop("market.staged_uploads", []):
        staged.discard()


def _metadata_errors(messages: Any) -> dict[str, list[str]]:
    """Marshmallow messages (possibly nested, e.g. costs.collection) as flat field errors."""
    out: dict[str, list[str]] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            out.setdefault(prefix or "metadata", []).extend(
                [str(m) for m in value] if isinstance(value, list | tuple) else [str(value)]
            )

    walk("", messages)
    return out


def _attach_errors(form: UploadForm, errors: dict[str, Any], message: str) -> None:
    """Put service and schema errors next to the form field they are about."""
    attached = False
    for key, messages in (errors or {}).items():
        name = UploadForm.FIELD_FOR.get(key, key)
        if name.startswith("privacy.ranges."):
            name = "dp_ranges"
        if name.startswith("treatments.") or name in ("status", "version"):
            name = "file"
        texts = (
            [str(m) for m in messages] if isinstance(messages, list | tuple) else [str(messages)]
        )
        field = form._fields.get(name)
        if field is not None and name != "csrf_token":
            field.errors = [*field.errors, *texts]
            attached = True
        else:
            form.form_errors.extend(texts)
            attached = True
    if not attached:
        form.form_errors.append(message)


def _form_errors(form: UploadForm) -> dict[str, list[str]]:
    errors = {name: [str(e) for e in f.errors] for name, f in form._fields.items() if f.errors}
    if form.form_errors:
        errors["form"] = [str(e) for e in form.form_errors]
    return errors


def _publish(form: UploadForm) -> DatasetVersion:
    """Validate the metadata, stage the file, record the dataset and start processing.

    Raises ValidationFailed (field errors), Forbidden, and whatever the services raise.
    """
    try:
        loaded = PublishMetadataSchema().load(form.metadata())
    except ma.ValidationError as exc:
        raise ValidationFailed(
            _("Some fields are not valid."), _metadata_errors(exc.messages)
        ) from None
    meta = services.PublishMeta.from_dict(loaded)
    refused = bool(
        services.refusal_reasons(meta.open_grade, meta.confidential, meta.security_level)
    )
    received = publication_api.receive_upload(lambda _raw: not refused, require_file=not refused)
    staged = received.upload
    try:
        if refused:
            if staged is not None:
                staged.discard()
                staged = None
            version = services.create_dataset(
                db.session, g.actor, meta, None, filename=received.filename
            )
            db.session.commit()
            return version
        if staged is None:
            raise ValidationFailed(
                _("Choose the file to upload."), {"file": [_("Choose the file to upload.")]}
            )
        services.precheck_upload(staged, entity_key=meta.entity_key, treatments=meta.treatments)
        version = services.create_dataset(db.session, g.actor, meta, staged)
        # The records must be committed before the job (possibly another thread) reads them.
        db.session.commit()
        services.start_processing(version, staged)
        staged = None
        return version
    finally:
        if staged is not None:
            staged.discard()


@bp.route("/datasets/upload", methods=["GET", "POST"])
@login_required
def upload():
    """The department's upload form. Browsers with JavaScript send it with XMLHttpRequest (to
    show transfer progress) and get JSON back; without JavaScript it is a plain form post."""
    _require(perms.can_upload(g.actor), _("Only an active department can publish datasets."))
    form = UploadForm()
    as_json = wants_json()
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                version = _publish(form)
            except DomainError as exc:
                if exc.status >= 500 or exc.status in (401, 403, 413):
                    raise
                db.session.rollback()
                _attach_errors(form, exc.errors, exc.message)
            else:
                dataset_url = url_for("datasets.detail", dataset_id=version.dataset_id)
                if as_json:
                    return jsonify(
                        {
                            "id": version.dataset_id,
                            "version": version.version,
                            "status": version.status,
                            "refusal_reasons": reasons.render_all(version.refusal_reasons),
                            "status_url": status_url(version.dataset_id, version.version),
                            "dataset_url": dataset_url,
                        }
                    ), 202
                if version.status == VersionStatus.refused:
                    flash(
                        _(
                            "The upload was refused: restricted or confidential data is never "
                            "listed, and nothing of the file was kept."
                        ),
                        "warning",
                    )
                else:
                    flash(
                        _("Uploaded. The file is being processed; this page shows the progress."),
                        "success",
                    )
                return redirect(dataset_url)
        if as_json:
            body = envelope(
                422, "The form is not valid; see errors for each field.", _form_errors(form)
            )
            return jsonify(body), 422
        return _upload_page(form), 422
    return _upload_page(form)


def _upload_page(form: UploadForm) -> str:
    labels = {
        "treatment": {k: str(v) for k, v in TREATMENT_LABELS.items()},
        "pii": {k: str(v) for k, v in PII_LABELS.items()},
    }
    return render_template("datasets/upload.html", form=form, upload_labels=labels)


@bp.get("/datasets/mine")
@login_required
def mine():
    _require(g.actor.role == "department", _("Only departments publish datasets."))
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    stmt = (
        sa.select(Dataset)
        .where(Dataset.department_id == g.actor.org_id)
        .order_by(Dataset.created_at.desc(), Dataset.id.desc())
    )
    total = (
        db.session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
        or 0
    )
    datasets = (
        db.session.scalars(
            stmt.options(selectinload(Dataset.versions))
            .limit(MINE_PER_PAGE)
            .offset((page - 1) * MINE_PER_PAGE)
        )
        .unique()
        .all()
    )
    return render_template(
        "datasets/mine.html",
        datasets=datasets,
        page=page,
        pages=max(1, -(-total // MINE_PER_PAGE)),
        latest_version=latest_version,
    )


# -- the operator -----------------------------------------------------------------------------


def _render_queue(
    *, failed_id: int | None = None, form: ReviewForm | None = None, status: int = 200
):
    pending = db.session.scalars(
        sa.select(DatasetVersion)
        .where(DatasetVersion.status == VersionStatus.pending_review)
        .order_by(DatasetVersion.processed_at, DatasetVersion.id)
        .options(selectinload(DatasetVersion.columns))
        .limit(QUEUE_LIMIT)
    ).all()
    items = [
        {
            "version": v,
            "dataset": v.dataset,
            "pii": [r for r in _pii_rows(v) if r["pii_kind"] or r["treatment"] != "none"],
        }
        for v in pending
    ]
    return render_template(
        "datasets/review_queue.html",
        items=items,
        form=form or ReviewForm(),
        failed_id=failed_id,
        blank_form=ReviewForm(),
    ), status


@bp.get("/datasets/review-queue")
@login_required
def review_queue():
    _require(perms.can_review(g.actor), _("Only the operator reviews publications."))
    return _render_queue()
