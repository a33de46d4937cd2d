"""Pages of a dataset after publication: upload a new version, edit the metadata, withdraw
it, and the operator's review of a proposed change. They call the services of
``market.datasets.lifecycle`` and ``market.datasets.services``, like the API."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField
from wtforms import HiddenField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, Optional

from market.auth import login_required
from market.datasets import api as publication_api
from market.datasets import catalog, lifecycle, services
from market.datasets import permissions as perms
from market.datasets.explain import explain as explain_report
from market.datasets.forms import FREQUENCY_LABELS, UPLOAD_EXTENSIONS, _cost_field, yuan_to_fen
from market.datasets.models import ChangeStatus, Dataset, DatasetChangeRequest, VersionStatus
from market.errors import DomainError, Forbidden
from market.extensions import db
from pricing.categories import CATEGORY_LABELS

bp = Blueprint("dataset_lifecycle", __name__)

#: Words in a rejection comment that ask for the file again (the button is shown either way;
#: these make it the first thing on the page).
REUPLOAD_WORDS = ("re-upload", "reupload", "upload again", "new version", "重新上传", "重传", "再上传", "新版本")


class EditForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=10_000)],
                                render_kw={"rows": 4})
    update_frequency = SelectField(
        _l("Update frequency"), choices=[SelectChoice(k, v) for k, v in FREQUENCY_LABELS.items()]
    )
    category = SelectField(
        _l("Category"), choices=[SelectChoice(k, _l(v)) for k, v in CATEGORY_LABELS.items()]
    )
    cost_collection = _cost_field(_l("Collection cost (yuan)"))
    cost_processing = _cost_field(_l("Processing cost (yuan)"))
    cost_storage_monthly = _cost_field(_l("Storage cost per month (yuan)"))

    def fill(self, dataset: Dataset) -> None:
        self.title.data = dataset.title
        self.description.data = dataset.description
        self.update_frequency.data = dataset.update_frequency
        self.category.data = dataset.category
        self.cost_collection.data = _yuan(dataset.cost_collection_fen)
        self.cost_processing.data = _yuan(dataset.cost_processing_fen)
        self.cost_storage_monthly.data = _yuan(dataset.cost_storage_monthly_fen)

    def edit(self) -> lifecycle.MetadataEdit:
        return lifecycle.MetadataEdit(
            title=self.title.data.strip(),
            description=(self.description.data or "").strip(),
            update_frequency=self.update_frequency.data,
            category=self.category.data,
            costs={
                "collection": yuan_to_fen(self.cost_collection.data),
                "processing": yuan_to_fen(self.cost_processing.data),
                "storage_monthly": yuan_to_fen(self.cost_storage_monthly.data),
            },
        )


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


class WithdrawForm(FlaskForm):
    reason = TextAreaField(
        _l("Why is it withdrawn?"),
        validators=[DataRequired(message=_l("Say why: the reason is kept in the audit log and shown on the dataset page.")),
                    Length(max=2000)],
        render_kw={"rows": 3},
    )


class ChangeReviewForm(FlaskForm):
    decision = HiddenField(validators=[AnyOf(["approve", "reject"])])
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=2000)])


class VersionForm(FlaskForm):
    file = FileField(
        _l("Data file (CSV, XLSX or Parquet; UTF-8 or GBK)"),
        validators=[FileAllowed(UPLOAD_EXTENSIONS, message=_l("Upload a .csv, .xlsx or .parquet file."))],
    )
    replaces = HiddenField()


# -- template helpers ---------------------------------------------------------------------------


def lifecycle_context(dataset: Dataset) -> dict[str, Any]:
    """What the dataset page shows about edits, withdrawal and re-uploads, for this visitor."""
    actor = g.actor
    insider = perms.can_see_unlisted(actor, dataset)
    owner = perms.can_manage_versions(actor, dataset)
    change = lifecycle.pending_change(db.session, dataset) if insider else None
    latest = dataset.versions[-1] if dataset.versions else None
    comment = (latest.review_comment or "") if latest is not None else ""
    open_ = dataset.withdrawn_at is None and dataset.status != VersionStatus.refused and not dataset.confidential
    withdrawn = dataset.withdrawn_at is not None
    return {
        "owner": owner,
        "withdrawn": withdrawn,
        # A buyer still licensed on a withdrawn dataset: which licenses, to reach them.
        "held": catalog.holder_licenses(db.session, actor, dataset) if withdrawn else [],
        "can_edit": owner and open_,
        "can_new_version": owner and open_ and not any(
            v.status in (VersionStatus.processing, VersionStatus.pending_review)
            for v in dataset.versions
        ),
        "change": change,
        "can_review_change": change is not None and perms.can_review(actor),
        "review_form": ChangeReviewForm(formdata=None),
        "rejected": latest if latest is not None and latest.status == VersionStatus.rejected else None,
        "asks_reupload": any(w in comment.lower() for w in REUPLOAD_WORDS),
        "field_names": {
            "title": _("Title"), "description": _("Description"),
            "update_frequency": _("Update frequency"), "category": _("Category"),
            "costs": _("Costs"), "privacy": _("Differential privacy"),
        },
        "privacy_names": {
            "epsilon_budget": _("Budget per buyer organization (ε)"),
            "version_budget": _("Budget per version, all buyers (ε)"),
            "epsilon_per_query": _("ε per new question"),
            "delta": _("δ per new question"),
            "max_groups_per_entity": _("Groups per enterprise per query"),
            "max_rows_per_entity": _("Rows per enterprise counted per group"),
            "ranges": _("Declared ranges"),
        },
    }


def pending_change_requests() -> list[DatasetChangeRequest]:
    """Change requests awaiting the operator, oldest first (for the review queue)."""
    return list(db.session.scalars(
        sa.select(DatasetChangeRequest)
        .where(DatasetChangeRequest.status == ChangeStatus.pending)
        .order_by(DatasetChangeRequest.proposed_at)
        .limit(100)
    ))


@bp.record_once
def _globals(state) -> None:
    state.app.jinja_env.globals.update(
        lifecycle_context=lifecycle_context, pending_change_requests=pending_change_requests,
        dataset_by_id=lambda i: db.session.get(Dataset, i),
        explain_report=explain_report,
    )


def _owned(dataset_id: int) -> Dataset:
    dataset = catalog.get_visible(db.session, g.actor, dataset_id)
    if not perms.can_manage_versions(g.actor, dataset):
        raise Forbidden(_("Only the department that owns this dataset can change it."))
    return dataset


def _detail(dataset_id: int, anchor: str = "") -> Any:
    return redirect(url_for("datasets.detail", dataset_id=dataset_id) + anchor)


# -- edit -----------------------------------------------------------------------------------------


@bp.route("/datasets/<int:dataset_id>/edit", methods=["GET", "POST"])
@login_required
def edit(dataset_id: int):
    """Edit the metadata: wording applies at once, category and costs go to review."""
    dataset = _owned(dataset_id)
    form = EditForm()
    if request.method == "GET":
        form.fill(dataset)
    elif form.validate_on_submit():
        try:
            result = lifecycle.edit_metadata(db.session, g.actor, dataset, form.edit())
        except DomainError as exc:
            db.session.rollback()
            _attach(form, exc)
        else:
            db.session.commit()
            if result.applied:
                flash(_("Saved: the new wording is in the catalogue now."), "success")
            if result.change_request is not None:
                flash(_("The category or cost change awaits the operator's review; until then the current values stay in force."), "info")
            return _detail(dataset_id)
    return render_template(
        "datasets/edit.html", dataset=dataset, form=form,
        change=lifecycle.pending_change(db.session, dataset),
    ), (422 if request.method == "POST" else 200)


def _attach(form: FlaskForm, exc: DomainError) -> None:
    attached = False
    for key, messages in (exc.errors or {}).items():
        name = {"costs": "cost_collection"}.get(key.split(".")[0], key.split(".")[0])
        field = form._fields.get(name)
        if field is not None and name != "csrf_token":
            field.errors = [*field.errors, *[str(m) for m in messages]]
            attached = True
    if not attached:
        form.form_errors.append(exc.message)


# -- review of a change -------------------------------------------------------------------------


@bp.post("/datasets/<int:dataset_id>/changes/review")
@login_required
def review_change(dataset_id: int):
    dataset = catalog.get_visible(db.session, g.actor, dataset_id)
    if not perms.can_review(g.actor):
        raise Forbidden(_("Only the operator reviews publications."))
    form = ChangeReviewForm()
    if not form.validate_on_submit():
        flash(_("The form expired; reload the page and decide again."), "error")
        return _detail(dataset_id, "#change-request")
    try:
        lifecycle.review_change(db.session, g.actor, dataset, form.decision.data, form.comment.data or "")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _detail(dataset_id, "#change-request")
    db.session.commit()
    flash(_("The change is approved and in force.") if form.decision.data == "approve"
          else _("The change is rejected; the department sees your comment."), "success")
    return _detail(dataset_id)


# -- withdraw -------------------------------------------------------------------------------------


@bp.route("/datasets/<int:dataset_id>/withdraw", methods=["GET", "POST"])
@login_required
def withdraw(dataset_id: int):
    dataset = _owned(dataset_id)
    form = WithdrawForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                lifecycle.withdraw(db.session, g.actor, dataset, form.reason.data)
            except DomainError as exc:
                db.session.rollback()
                _attach(form, exc)
            else:
                db.session.commit()
                flash(_("The dataset is withdrawn: it left the catalogue; licenses already granted run to their end."), "success")
                return _detail(dataset_id)
        status = 422
    return render_template(
        "datasets/withdraw.html", dataset=dataset, form=form,
        active_licenses=lifecycle.active_license_count(db.session, dataset),
    ), status


# -- a new version --------------------------------------------------------------------------------


@bp.url_value_preprocessor
def _stage(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # Before the CSRF check parses the form: the file part streams to a sealed staging file
    # under the data folder, never to the system temp dir.
    if endpoint == "dataset_lifecycle.new_version" and request.method == "POST":
        publication_api.install_upload_stream()


@bp.teardown_request
def _discard(exc: BaseException | None) -> None:
    for staged in request.environ.pop("market.staged_uploads", []):
        staged.discard()


@bp.route("/datasets/<int:dataset_id>/versions/new", methods=["GET", "POST"])
@login_required
def new_version(dataset_id: int):
    """Upload a new version of one's own dataset (also the one-click answer to a rejection)."""
    dataset = _owned(dataset_id)
    form = VersionForm()
    replaces = request.values.get("replaces", type=int)
    rejected = next((v for v in dataset.versions if v.version == replaces
                     and v.status == VersionStatus.rejected), None)
    if request.method == "GET":
        form.replaces.data = str(rejected.version) if rejected else ""
    status = 200
    if request.method == "POST":
        status = 422
        if form.validate_on_submit():
            staged = None
            try:
                received = publication_api.receive_upload(lambda _raw: True)
                staged = received.upload
                if staged is None or not received.filename:
                    form.file.errors = [*form.file.errors, _("Choose the file to upload.")]
                    raise _NoFile
                services.precheck_upload(staged, entity_key=dataset.entity_key or "", treatments={})
                version = services.create_version(
                    db.session, g.actor, dataset, services.VersionMeta(), staged
                )
                db.session.commit()
                services.start_processing(version, staged)
                staged = None
            except _NoFile:
                pass
            except DomainError as exc:
                if exc.status >= 500 or exc.status in (401, 403, 413):
                    raise
                db.session.rollback()
                _attach_file(form, exc)
            else:
                flash(_("Version %(v)s is uploaded and being processed; this page shows the progress.", v=version.version), "success")
                return _detail(dataset_id)
            finally:
                if staged is not None:
                    staged.discard()
    return render_template("datasets/new_version.html", dataset=dataset, form=form,
                           rejected=rejected), status


class _NoFile(Exception):
    pass


def _attach_file(form: VersionForm, exc: DomainError) -> None:
    texts = [str(m) for messages in (exc.errors or {}).values() for m in (
        messages if isinstance(messages, list | tuple) else [messages])]
    form.file.errors = [*form.file.errors, exc.message, *[t for t in texts if t != exc.message]]
