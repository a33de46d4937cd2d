"""Publication API: upload, new versions, processing status, treatments, review.

Uploads are read from the raw request stream with Werkzeug's incremental multipart decoder
instead of ``request.files``: Werkzeug would spool the file to the system temp dir, and the
metadata must be judged *before* any byte of the file is written. When the ``metadata`` part
comes first (as clients normally send it) a refused upload is never written at all; when the
file comes first it is streamed to a ``.partial-…`` file under the data folder and deleted as
soon as the metadata refuses it, before the answer is sent.

If something parsed the form before the view (Flask-WTF's CSRF check reads ``request.form``
for browser-session API calls), :func:`install_upload_stream` has already pointed Werkzeug's
file stream at a staging file under the data folder, and the view takes the file from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import marshmallow as ma
from flask import current_app, request
from flask.views import MethodView
from flask_babel import gettext as _
from flask_smorest import Blueprint
from werkzeug.datastructures import FileStorage
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from market.accounts.permissions import require
from market.api_base import PageArgs, page_of, paginate
from market.auth import current_actor
from market.datasets import permissions as perms
from market.datasets import reasons, services
from market.datasets.models import Dataset, DatasetVersion
from market.datasets.schemas import (
    MAX_METADATA_BYTES,
    DatasetAcceptedSchema,
    DatasetSchema,
    InspectReportSchema,
    MetadataInvalid,
    PublishMetadataSchema,
    ReviewSchema,
    VersionMetadataSchema,
    VersionSchema,
    VersionStatusSchema,
    parse_metadata,
)
from market.errors import NotFound, ValidationFailed
from market.extensions import db, limiter, per_user_key

blp = Blueprint(
    "datasets_api", __name__, url_prefix="/api/v1", description="Dataset publication and review"
)

READ_BLOCK = 256 * 1024
MAX_PARTS = 16

_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "metadata": {
                            "type": "string",
                            "description": "JSON: {title, description, category, open_grade, "
                            "confidential, entity_key, update_frequency, costs: {collection, "
                            "processing, storage_monthly} (fen), k_min?, treatments?: "
                            "{column: treatment}}. Send it before the file.",
                        },
                        "file": {"type": "string", "format": "binary"},
                    },
                    "required": ["metadata", "file"],
                }
            }
        },
    }
}
_VERSION_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "metadata": {
                            "type": "string",
                            "description": "Optional JSON: {treatments?, costs?, k_min?}.",
                        },
                        "file": {"type": "string", "format": "binary"},
                    },
                    "required": ["file"],
                }
            }
        },
    }
}


# ----------------------------------------------------------------------------- multipart


@dataclass
class ReceivedUpload:
    #: Raw text of the ``metadata`` part (None if absent).
    metadata: str | None
    #: The staged file, or None when it was not stored (refused, or no file part).
    upload: services.StagedUpload | None
    filename: str | None
    file_seen: bool


def read_multipart(
    stream: IO[bytes],
    boundary: bytes,
    *,
    store_file: Callable[[str | None], bool],
    max_field_bytes: int = MAX_METADATA_BYTES,
) -> ReceivedUpload:
    """Stream a multipart body: the ``metadata`` text part in memory, the ``file`` part to a
    staging file under the data folder.

    ``store_file(metadata_text_or_None)`` is asked when the file part begins; False discards
    its bytes unwritten (a refused upload). It may raise (invalid metadata), in which case
    nothing is kept. Raises ValidationFailed for oversized or repeated parts.
    """
    decoder = MultipartDecoder(boundary, max_parts=MAX_PARTS)
    metadata: str | None = None
    staged: services.StagedUpload | None = None
    filename: str | None = None
    file_seen = False
    part: Field | File | None = None
    buffer: list[bytes] = []
    size = 0
    sink = None
    complete = False
    try:
        while True:
            chunk = stream.read(READ_BLOCK)
            event = _next(decoder, chunk or None)
            while not isinstance(event, Epilogue | NeedData):
                if isinstance(event, Field):
                    part, buffer, size = event, [], 0
                elif isinstance(event, File):
                    part = event
                    if event.name != "file" or file_seen:
                        raise ValidationFailed(
                            _("Send exactly one file, in the part named 'file'."),
                            {"file": [_("exactly one file part named 'file'")]},
                        )
                    file_seen = True
                    filename = event.filename
                    if store_file(metadata):
                        staged = services.new_staging_file(filename)
                        sink = staged.open_writer()  # sealed: no plaintext on disk
                elif isinstance(event, Data):
                    if isinstance(part, Field):
                        size += len(event.data)
                        if size > max_field_bytes:
                            raise ValidationFailed(
                                _("Form field %(name)r is larger than %(limit)s bytes.",
                                  name=part.name, limit=max_field_bytes),
                                {part.name: [_("larger than %(limit)s bytes",
                                               limit=max_field_bytes)]},
                            )
                        buffer.append(event.data)
                        if not event.more_data and part.name == "metadata":
                            metadata = b"".join(buffer).decode("utf-8", "replace")
                    elif sink is not None and staged is not None:
                        sink.write(event.data)
                        if not event.more_data:
                            sink.close()
                            sink = None
                event = _next(decoder)
            complete = isinstance(event, Epilogue)
            if not chunk or complete:
                break
        if sink is not None or not complete:
            raise _malformed()
        return ReceivedUpload(metadata, staged, filename, file_seen)
    except BaseException:
        if sink is not None:
            sink.close()
        if staged is not None:
            staged.discard()
        raise
    finally:
        if sink is not None and not sink.closed:
            sink.close()


def _malformed() -> ValidationFailed:
    return ValidationFailed(
        _("The multipart body is malformed or truncated."),
        {"file": [_("malformed or truncated upload")]},
    )


def _next(decoder: MultipartDecoder, data: bytes | None = b"") -> Any:
    """The decoder's next event; its ValueError (malformed or cut-off body) becomes a 422."""
    try:
        if data != b"":
            decoder.receive_data(data)
        return decoder.next_event()
    except ValueError:
        raise _malformed() from None


def install_upload_stream() -> None:
    """Point Werkzeug's file-part streams of this request at staging files in the data folder.

    Only matters if something parses ``request.form`` before the view does (the CSRF check of
    browser-session calls); otherwise the view streams the body itself.
    """
    def factory(total_content_length, content_type, filename=None, content_length=None):  # noqa: ANN001
        staged = services.new_staging_file(filename)
        request.environ.setdefault("market.staged_uploads", []).append(staged)
        return staged.open_writer()  # sealed; Werkzeug owns it (seek(0) completes it)

    request._get_file_stream = factory  # type: ignore[method-assign]


def _discard_preparsed() -> None:
    for staged in request.environ.pop("market.staged_uploads", []):
        staged.discard()


@blp.url_value_preprocessor
def _before(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # Runs before the app's before_request handlers (and thus before the CSRF check).
    if request.method in ("POST", "PUT"):
        install_upload_stream()


@blp.teardown_request
def _teardown(exc: BaseException | None) -> None:
    _discard_preparsed()


def receive_upload(
    store_file: Callable[[str | None], bool], *, require_file: bool = True
) -> ReceivedUpload:
    """Read the current request's multipart body (see :func:`read_multipart`)."""
    mimetype, options = parse_options_header(request.headers.get("Content-Type", ""))
    if mimetype != "multipart/form-data" or not options.get("boundary"):
        raise ValidationFailed(
            _("Send multipart/form-data with a 'metadata' part and a 'file' part."),
            {"file": [_("multipart/form-data expected")]},
        )
    if "form" in request.__dict__ or "files" in request.__dict__:
        received = _from_preparsed(store_file)
    else:
        received = read_multipart(
            request.stream, options["boundary"].encode("latin-1"), store_file=store_file
        )
    if require_file and not received.file_seen:
        raise ValidationFailed(_("Attach the data file in the part named 'file'."),
                               {"file": [_("missing")]})
    return received


def _from_preparsed(store_file: Callable[[str | None], bool]) -> ReceivedUpload:
    metadata = request.form.get("metadata")
    if metadata is not None and len(metadata.encode("utf-8")) > MAX_METADATA_BYTES:
        raise ValidationFailed(
            _("Form field %(name)r is larger than %(limit)s bytes.",
              name="metadata", limit=MAX_METADATA_BYTES),
            {"metadata": [_("larger than %(limit)s bytes", limit=MAX_METADATA_BYTES)]},
        )
    storage_: FileStorage | None = request.files.get("file")
    if storage_ is None:
        return ReceivedUpload(metadata, None, None, False)
    staged_list: list[services.StagedUpload] = request.environ.get("market.staged_uploads", [])
    storage_.stream.flush()
    staged = next(
        (s for s in staged_list if getattr(storage_.stream, "name", None) == str(s.path)), None
    )
    keep = store_file(metadata)
    if staged is None:  # parsed without our stream factory: copy it into the data folder
        if not keep:
            return ReceivedUpload(metadata, None, storage_.filename, True)
        staged = services.new_staging_file(storage_.filename)
        with staged.open_writer() as sink:
            storage_.save(sink)
    else:
        staged_list.remove(staged)
        staged.filename = services.safe_filename(storage_.filename)
        if not keep:
            staged.discard()
            return ReceivedUpload(metadata, None, storage_.filename, True)
    return ReceivedUpload(metadata, staged, storage_.filename, True)


# ----------------------------------------------------------------------------- views


def _load_metadata(raw: str | None, schema: ma.Schema) -> dict[str, Any]:
    try:
        return parse_metadata(raw, schema)
    except MetadataInvalid as exc:
        raise ValidationFailed(
            _("The metadata is not valid; see errors for each field."), exc.errors
        ) from None


def _accepted(version: DatasetVersion) -> dict[str, Any]:
    db.session.refresh(version)
    out = {"id": version.dataset_id, "version": version.version, "status": version.status}
    if version.refusal_reasons:
        out["refusal_reasons"] = reasons.render_all(version.refusal_reasons)
    return out


def _dispatch(version: DatasetVersion, staged: services.StagedUpload) -> None:
    """Commit the records, then hand the staged file to the job (which then owns it)."""
    db.session.commit()
    try:
        services.start_processing(version, staged)
    except Exception:
        from market.datasets.processing import NOT_STARTED, record_failure

        db.session.rollback()
        record_failure(db.session, version.id, "failed", [NOT_STARTED], "not_started")
        raise


class DatasetUploadAcceptedSchema(DatasetAcceptedSchema):
    refusal_reasons = ma.fields.List(ma.fields.String())


#: Each upload is staged to disk and starts a processing job: limit them per user
#: (``MARKET_UPLOAD_RATE_LIMIT``).
upload_rate_limit = limiter.limit(
    lambda: current_app.config.get("MARKET_UPLOAD_RATE_LIMIT", "30 per hour"), key_func=per_user_key
)


_INSPECT_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "The file, or for CSV its first lines (whole lines).",
                        }
                    },
                    "required": ["file"],
                }
            }
        },
    },
    "parameters": [
        {
            "name": "entity_key",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "maxLength": 200},
            "description": "The column that will be the entity key (always pseudonymized).",
        }
    ],
}


@blp.route("/datasets/inspect")
class DatasetInspect(MethodView):
    @upload_rate_limit
    @blp.doc(**_INSPECT_DOC)
    @blp.response(200, InspectReportSchema)
    def post(self):
        """Detect types, PII kinds and the allowed treatments of a file's first rows
        (department), to choose ``metadata.treatments`` before publishing. Nothing is kept."""
        actor = current_actor()
        require(perms.can_upload(actor), "Only an active department can publish datasets.")
        entity_key = (request.args.get("entity_key") or "").strip()[:200]
        staged = receive_upload(lambda _raw: True).upload
        try:
            if staged is None:
                raise ValidationFailed(_("Attach the data file in the part named 'file'."),
                                       {"file": [_("missing")]})
            return services.inspect_upload(staged, entity_key=entity_key)
        finally:
            if staged is not None:
                staged.discard()


@blp.route("/datasets")
class DatasetUpload(MethodView):
    @upload_rate_limit
    @blp.doc(**_UPLOAD_DOC)
    @blp.response(202, DatasetUploadAcceptedSchema)
    def post(self):
        """Publish a dataset: multipart ``metadata`` (JSON) and ``file`` (department).

        Answers 202 ``{id, version, status}``; poll
        ``/datasets/{id}/versions/{version}/status`` for progress. A restricted or
        confidential upload answers ``status: refused`` with reasons, and nothing of the file
        is stored.
        """
        actor = current_actor()
        require(perms.can_upload(actor), "Only an active department can publish datasets.")
        parsed: dict[str, Any] = {}

        def store_file(raw: str | None) -> bool:
            if raw is None:
                return True  # metadata not seen yet: stage, judge it when it arrives
            parsed.update(_load_metadata(raw, PublishMetadataSchema()))
            return not services.refusal_reasons(
                parsed["open_grade"], parsed["confidential"], parsed["security_level"]
            )

        received = receive_upload(store_file, require_file=False)
        staged = received.upload
        try:
            if not parsed:
                parsed.update(_load_metadata(received.metadata, PublishMetadataSchema()))
            meta = services.PublishMeta.from_dict(parsed)
            if services.refusal_reasons(meta.open_grade, meta.confidential, meta.security_level):
                if staged is not None:
                    staged.discard()
                version = services.create_dataset(
                    db.session, actor, meta, None, filename=received.filename
                )
                db.session.commit()
                return _accepted(version)
            if staged is None:
                raise ValidationFailed(_("Attach the data file in the part named 'file'."),
                                       {"file": [_("missing")]})
            services.precheck_upload(staged, entity_key=meta.entity_key,
                                     treatments=meta.treatments)
            version = services.create_dataset(db.session, actor, meta, staged)
            _dispatch(version, staged)
            staged = None
            return _accepted(version)
        finally:
            if staged is not None:
                staged.discard()


@blp.route("/datasets/<int:dataset_id>/versions")
class DatasetVersions(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(VersionSchema))
    def get(self, args, dataset_id):
        """List a dataset's versions (owning department, operator, regulator)."""
        services.dataset_for_versions(db.session, current_actor(), dataset_id)
        stmt = (
            db.select(DatasetVersion)
            .where(DatasetVersion.dataset_id == dataset_id)
            .order_by(DatasetVersion.version.desc())
        )
        return paginate(db.session, stmt, args["page"], args["per_page"])

    @upload_rate_limit
    @blp.doc(**_VERSION_DOC)
    @blp.response(202, DatasetUploadAcceptedSchema)
    def post(self, dataset_id):
        """Upload a new version of a dataset (owning department): multipart ``file`` and
        optional ``metadata`` ``{treatments, costs, k_min}``. Answers 202."""
        actor = current_actor()
        dataset = db.session.get(Dataset, dataset_id)
        if dataset is None or not perms.can_read_dataset(actor, dataset):
            raise NotFound(_("Dataset %(id)s does not exist.", id=dataset_id))
        require(perms.can_manage_versions(actor, dataset),
                 "Only the department that owns this dataset can add versions.")
        parsed: dict[str, Any] = {}

        def store_file(raw: str | None) -> bool:
            if raw is not None:
                parsed.update(_load_metadata(raw, VersionMetadataSchema()))
            return True

        received = receive_upload(store_file)
        staged = received.upload
        try:
            if not parsed:
                parsed.update(_load_metadata(received.metadata, VersionMetadataSchema()))
            meta = services.VersionMeta.from_dict(parsed)
            if staged is None:
                raise ValidationFailed(_("Attach the data file."), {"file": [_("missing")]})
            services.precheck_upload(staged, entity_key=dataset.entity_key or "",
                                     treatments=meta.treatments)
            version = services.create_version(db.session, actor, dataset, meta, staged)
            _dispatch(version, staged)
            staged = None
            return _accepted(version)
        finally:
            if staged is not None:
                staged.discard()


@blp.route("/datasets/<int:dataset_id>/versions/<int:number>")
class DatasetVersionItem(MethodView):
    @blp.response(200, VersionSchema)
    def get(self, dataset_id, number):
        """One version with its columns, quality and report summary (owner, operator,
        regulator)."""
        return services.get_version(db.session, current_actor(), dataset_id, number)


@blp.route("/datasets/<int:dataset_id>/versions/<int:number>/status")
class DatasetVersionStatus(MethodView):
    @blp.response(200, VersionStatusSchema)
    def get(self, dataset_id, number):
        """Processing status and progress of a version, for polling (owner, operator,
        regulator)."""
        version = services.get_version(db.session, current_actor(), dataset_id, number)
        return services.version_status(version)


class DatasetTreatmentChangesSchema(ma.Schema):
    """``{column: treatment}``; after processing only ``suppressed`` can be applied."""

    class Meta:
        unknown = ma.INCLUDE

    @ma.post_load
    def _check(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        errors = {}
        allowed = {"pseudonymized", "masked", "generalized", "suppressed", "none"}
        for key, value in data.items():
            if not isinstance(value, str) or value not in allowed:
                errors[str(key)] = [
                    _("must be one of %(allowed)s", allowed=", ".join(sorted(allowed)))
                ]
        if not data:
            errors["_schema"] = [_("give at least one {column: treatment}")]
        if errors:
            raise ma.ValidationError(errors)
        return data


@blp.route("/datasets/<int:dataset_id>/versions/<int:number>/treatments")
class DatasetVersionTreatments(MethodView):
    @blp.arguments(DatasetTreatmentChangesSchema)
    @blp.response(200, VersionSchema)
    def put(self, changes, dataset_id, number):
        """Make treatments stricter before review (owning department, ``pending_review``).

        The raw upload is not kept, so only ``suppressed`` (dropping the column from the
        published file) can be applied now; other treatments are chosen at upload time
        through ``metadata.treatments``. Loosening answers 422 naming the column.
        """
        actor = current_actor()
        dataset = db.session.get(Dataset, dataset_id)
        if dataset is None:
            raise NotFound(_("Dataset %(id)s does not exist.", id=dataset_id))
        return services.change_treatments(db.session, actor, dataset, number, changes)


@blp.route("/datasets/<int:dataset_id>/review")
class DatasetReview(MethodView):
    @blp.arguments(ReviewSchema)
    @blp.response(200, DatasetSchema)
    def post(self, body, dataset_id):
        """Approve or reject the version pending review (operator); 409 from other states.

        Answers the dataset as it now stands."""
        actor = current_actor()
        dataset = db.session.get(Dataset, dataset_id)
        if dataset is None or not perms.can_read_dataset(actor, dataset):
            raise NotFound(_("Dataset %(id)s does not exist.", id=dataset_id))
        services.review(db.session, actor, dataset, body["decision"], body["comment"])
        return dataset
