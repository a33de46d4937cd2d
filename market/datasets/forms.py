"""Browser forms (Flask-WTF, CSRF-protected) for uploading and reviewing datasets, and the
labels the catalogue pages show for stored codes (category, grade, treatment…)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from flask import request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import AnyOf, DataRequired, Length, NumberRange, Optional, ValidationError

import pricing

#: The largest cost figure accepted (one hundred billion yuan), in fen.
MAX_COST_FEN = 10_000_000_000_000
UPLOAD_EXTENSIONS = ("csv", "xlsx", "parquet")

#: The one category vocabulary (``pricing.categories``), with its labels translated lazily.
CATEGORY_LABELS: dict[str, Any] = {
    key: _l(label) for key, label in pricing.CATEGORY_LABELS.items()
}
GRADE_LABELS: dict[str, Any] = {
    "open": _l("Open"),
    "conditional": _l("Conditional"),
    "restricted": _l("Restricted"),
}
SECURITY_LEVEL_LABELS: dict[str, Any] = {
    "general": _l("General (一般数据)"),
    "important": _l("Important (重要数据)"),
    "core": _l("Core (核心数据)"),
}
FREQUENCY_LABELS: dict[str, Any] = {
    "daily": _l("Daily"),
    "weekly": _l("Weekly"),
    "monthly": _l("Monthly"),
    "quarterly": _l("Quarterly"),
    "yearly": _l("Yearly"),
}
STATUS_LABELS: dict[str, Any] = {
    "processing": _l("Processing"),
    "pending_review": _l("Pending review"),
    "listed": _l("Listed"),
    "rejected": _l("Rejected"),
    "refused": _l("Refused"),
    "failed": _l("Failed"),
    "superseded": _l("Superseded"),
    "withdrawn": _l("Withdrawn"),
}
#: The upload page's per-column treatment choices are fields named ``treatment:<column>``
#: (offered after the first lines of the chosen file are inspected).
TREATMENT_FIELD_PREFIX = "treatment:"
TREATMENT_LABELS: dict[str, Any] = {
    "pseudonymized": _l("Pseudonymized"),
    "masked": _l("Masked"),
    "generalized": _l("Generalized"),
    "suppressed": _l("Suppressed"),
    "none": _l("Published as is"),
}
PII_LABELS: dict[str, Any] = {
    "resident_id": _l("Resident ID"),
    "mobile": _l("Mobile number"),
    "bank_card": _l("Bank card"),
    "credit_code": _l("Unified social credit code"),
    "email": _l("E-mail"),
    "person_name": _l("Person name"),
    "address": _l("Address"),
    "birth_date": _l("Date of birth"),
    "gender": _l("Gender"),
    "age": _l("Age"),
}
ROLE_LABELS: dict[str, Any] = {
    "dimension": _l("Dimension: group and filter"),
    "measure": _l("Measure: aggregate only"),
    "identifier": _l("Identifier: never output"),
    "entity_key": _l("Entity key: joins, never output"),
    "other": _l("Other"),
}
BAND_LABELS: dict[str, Any] = {
    "excellent": _l("Excellent (90+)"),
    "good": _l("Good (75-89)"),
    "fair": _l("Fair (60-74)"),
    "poor": _l("Poor (below 60)"),
    "unscored": _l("Not scored"),
}
DIMENSION_LABELS: dict[str, Any] = {
    "completeness": _l("Completeness"),
    "validity": _l("Validity"),
    "accuracy": _l("Accuracy"),
    "uniqueness": _l("Uniqueness"),
    "consistency": _l("Consistency"),
    "timeliness": _l("Timeliness"),
}
GENERALIZATION_LABELS: dict[str, Any] = {
    "month": _l("Month"),
    "year": _l("Year"),
    "5-year band": _l("5-year band"),
    "10-year band": _l("10-year band"),
    "20-year band": _l("20-year band"),
    "decade": _l("Decade"),
    "district": _l("District"),
    "city": _l("City"),
    "province": _l("Province"),
}
TYPE_LABELS: dict[str, Any] = {
    "string": _l("Text"),
    "integer": _l("Integer"),
    "decimal": _l("Decimal"),
    "date": _l("Date"),
    "datetime": _l("Date and time"),
    "boolean": _l("Yes/no"),
}

LABELS: dict[str, dict[str, Any]] = {
    "category": CATEGORY_LABELS,
    "grade": GRADE_LABELS,
    "frequency": FREQUENCY_LABELS,
    "status": STATUS_LABELS,
    "treatment": TREATMENT_LABELS,
    "pii": PII_LABELS,
    "role": ROLE_LABELS,
    "band": BAND_LABELS,
    "security_level": SECURITY_LEVEL_LABELS,
    "dimension": DIMENSION_LABELS,
    "type": TYPE_LABELS,
    "generalization": GENERALIZATION_LABELS,
}


def label(kind: str, value: Any) -> Any:
    """The translated label of a stored code, or the code itself when it has none."""
    if value is None:
        return ""
    return LABELS.get(kind, {}).get(str(value), value)


def yuan_to_fen(text: str | None) -> int:
    """ "1,234.5" → 123450 (exact, via Decimal). Blank is 0.

    Raises ValueError for anything that is not a non-negative amount with at most two decimals.
    """
    cleaned = (text or "").replace(",", "").replace("，", "").replace("¥", "").strip()
    if not cleaned:
        return 0
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError("not a number") from None
    if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.01")):
        raise ValueError("not a non-negative amount with at most two decimals")
    fen = int(value * 100)
    if fen > MAX_COST_FEN:
        raise ValueError("too large")
    return fen


class YuanAmount:
    """Validator: the field holds a cost in yuan, ≥ 0, at most two decimals."""

    def __call__(self, form: FlaskForm, field: StringField) -> None:
        try:
            yuan_to_fen(field.data)
        except ValueError:
            raise ValidationError(
                _l("Enter an amount in yuan, 0 or more, with at most two decimals (e.g. 12000.50).")
            ) from None


def _cost_field(label: Any) -> StringField:
    return StringField(
        label,
        validators=[YuanAmount()],
        default="0",
        render_kw={"inputmode": "decimal", "autocomplete": "off"},
    )


_PRIVACY_SCALARS = (
    "epsilon_budget",
    "version_budget",
    "epsilon_per_query",
    "delta",
    "max_groups_per_entity",
    "max_rows_per_entity",
)


class PrivacyFields(FlaskForm):
    """Differential-privacy settings of a conditional dataset: on the upload form and on the
    dataset page (empty fields take the dataset's defaults; see ``privacy_from_form``)."""

    dp_epsilon_budget = StringField(
        _l("Privacy budget per buyer organization (ε)"), validators=[Optional(), Length(max=20)]
    )
    dp_version_budget = StringField(
        _l("Privacy budget per version, all buyers together (ε)"),
        validators=[Optional(), Length(max=20)],
    )
    dp_epsilon_per_query = StringField(
        _l("ε per new question"), validators=[Optional(), Length(max=20)]
    )
    dp_delta = StringField(_l("δ per new question"), validators=[Optional(), Length(max=30)])
    dp_max_groups_per_entity = StringField(
        _l("Groups per enterprise per query"), validators=[Optional(), Length(max=6)]
    )
    dp_max_rows_per_entity = StringField(
        _l("Rows per enterprise counted per group"), validators=[Optional(), Length(max=6)]
    )
    dp_ranges = TextAreaField(
        _l("Declared ranges of one enterprise's total (one per line: column: low, high)"),
        validators=[Optional(), Length(max=20_000)],
    )


class UploadForm(PrivacyFields):
    title = StringField(
        _l("Title"),
        validators=[DataRequired(message=_l("Give the dataset a title.")), Length(max=200)],
    )
    description = TextAreaField(
        _l("Description"), validators=[Optional(), Length(max=10_000)], render_kw={"rows": 4}
    )
    category = SelectField(
        _l("Category"),
        choices=[SelectChoice("", _l("Choose a category…"))]
        + [SelectChoice(k, v) for k, v in CATEGORY_LABELS.items()],
        validators=[DataRequired(message=_l("Choose a category."))],
    )
    open_grade = SelectField(
        _l("Open grade"),
        choices=[
            SelectChoice("open", _l("Open (无条件开放): any licensed buyer")),
            SelectChoice(
                "conditional",
                _l("Conditional (有条件开放): aggregates only, operator approves each license"),
            ),
            SelectChoice(
                "restricted", _l("Restricted (不予开放): never listed; the upload will be refused")
            ),
        ],
        default="conditional",
    )
    confidential = BooleanField(
        _l("Confidential (涉密): the upload will be refused and nothing stored")
    )
    security_level = SelectField(
        _l("Security level (GB/T 43697-2024)"),
        choices=[
            SelectChoice("general", _l("General (一般数据)")),
            SelectChoice(
                "important",
                _l("Important (重要数据): differential privacy required, regulator approves licenses"),
            ),
            SelectChoice("core", _l("Core (核心数据): never operated; the upload will be refused")),
        ],
        default="general",
    )
    entity_key = StringField(
        _l("Entity key column"),
        validators=[
            DataRequired(message=_l("Name the column that identifies the enterprise or person.")),
            Length(max=128),
        ],
        default="统一社会信用代码",
    )
    update_frequency = SelectField(
        _l("Update frequency"),
        choices=[SelectChoice(k, v) for k, v in FREQUENCY_LABELS.items()],
        default="monthly",
    )
    cost_collection = _cost_field(_l("Collection cost (yuan)"))
    cost_processing = _cost_field(_l("Processing cost (yuan)"))
    cost_storage_monthly = _cost_field(_l("Storage cost per month (yuan)"))
    k_min = IntegerField(
        _l("Minimum group size k (optional)"),
        validators=[Optional(), NumberRange(min=2, max=1000, message=_l("Between 2 and 1000."))],
    )
    file = FileField(
        _l("Data file (CSV, XLSX or Parquet; UTF-8 or GBK)"),
        validators=[
            FileAllowed(UPLOAD_EXTENSIONS, message=_l("Upload a .csv, .xlsx or .parquet file.")),
        ],
    )

    @property
    def refused(self) -> bool:
        """Restricted or confidential: refused on the metadata alone, no file needed."""
        return (
            self.open_grade.data == "restricted"
            or bool(self.confidential.data)
            or self.security_level.data == "core"
        )

    def validate_file(self, field: FileField) -> None:
        if not self.refused and not field.data:
            raise ValidationError(_l("Choose the file to upload."))

    def metadata(self) -> dict[str, Any]:
        """The upload metadata of API.md, costs in integer fen."""
        data: dict[str, Any] = {
            "title": self.title.data.strip(),
            "description": (self.description.data or "").strip(),
            "category": self.category.data,
            "open_grade": self.open_grade.data,
            "confidential": bool(self.confidential.data),
            "security_level": self.security_level.data,
            "entity_key": self.entity_key.data.strip(),
            "update_frequency": self.update_frequency.data,
            "costs": {
                "collection": yuan_to_fen(self.cost_collection.data),
                "processing": yuan_to_fen(self.cost_processing.data),
                "storage_monthly": yuan_to_fen(self.cost_storage_monthly.data),
            },
        }
        if self.k_min.data is not None:
            data["k_min"] = self.k_min.data
        treatments = {
            name.removeprefix(TREATMENT_FIELD_PREFIX): value
            for name, value in request.form.items()
            if name.startswith(TREATMENT_FIELD_PREFIX) and value
        }
        if treatments:
            data["treatments"] = treatments
        privacy = privacy_from_form(self, "dp_")
        if privacy and self.open_grade.data == "conditional":
            data["privacy"] = privacy
        return data

    #: Metadata keys (and nested cost keys) → the form field that shows their errors.
    FIELD_FOR = {
        "costs.collection": "cost_collection",
        "costs.processing": "cost_processing",
        "costs.storage_monthly": "cost_storage_monthly",
        "costs": "cost_collection",
        "metadata": "title",
        **{f"privacy.{name}": f"dp_{name}" for name in _PRIVACY_SCALARS},
        "privacy.ranges": "dp_ranges",
    }


def parse_ranges(text: str) -> dict[str, Any]:
    """``column: low, high`` lines as ``{column: [low, high]}``; a line that does not parse
    keeps its text, so that validation names it."""
    out: dict[str, Any] = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        name, sep, rest = line.partition(":")
        parts = [p.strip() for p in rest.replace("，", ",").split(",")] if sep else []
        out[name.strip() or line] = parts if len(parts) == 2 else line
    return out


def privacy_from_form(form: Any, prefix: str) -> dict[str, Any]:
    """The ``privacy`` settings typed into ``form``'s ``<prefix><setting>`` fields (empty
    ones left out: the dataset's defaults or current values apply)."""
    out: dict[str, Any] = {}
    for name in _PRIVACY_SCALARS:
        raw = (getattr(form, prefix + name).data or "").strip()
        if raw:
            out[name] = int(raw) if name.startswith("max_") and raw.isdigit() else raw
    ranges = getattr(form, prefix + "ranges").data
    if ranges and ranges.strip():
        out["ranges"] = parse_ranges(ranges)
    return out


class PrivacyForm(PrivacyFields):
    """A conditional dataset's privacy settings on its page (department; operator tightens)."""

    def fill(self, settings: Any) -> None:
        """Show the settings in force."""
        for name in _PRIVACY_SCALARS:
            getattr(self, "dp_" + name).data = str(settings.as_json()[name])
        self.dp_ranges.data = "\n".join(
            f"{name}: {lo}, {hi}" for name, (lo, hi) in settings.as_json()["ranges"].items()
        )


class ReviewForm(FlaskForm):
    decision = HiddenField(validators=[AnyOf(["approve", "reject"])])
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=2000)])

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        # Not an inline validator: Optional() stops the chain on an empty comment.
        if self.decision.data == "reject" and not (self.comment.data or "").strip():
            self.comment.errors = [
                *self.comment.errors,
                _l("Say why you reject it: the department sees this comment."),
            ]
            ok = False
        return ok


class TreatmentsForm(FlaskForm):
    """The CSRF token of the stricter-treatments form; choices are read per column."""
