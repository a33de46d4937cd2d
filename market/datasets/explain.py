"""The quality and k-anonymity reports in words: what was measured, on which columns, and why a
dimension shows "—" (it does not apply) rather than a number.

Reads only what the pipeline stored with the version (``quality.details`` and the report's
columns): no raw value is ever shown, only counts, shares, column names and dates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _

from market.datasets.forms import DIMENSION_LABELS, FREQUENCY_LABELS, label
from market.datasets.models import Dataset, DatasetVersion
from market.pipeline import kinds
from market.pipeline.domains import is_district_column
from market.pipeline.quality import WEAKEST_MARGIN, WEIGHTS

PERSONAL_QI = sorted(kinds.QUASI_IDENTIFIER_KINDS)


@dataclass
class Dimension:
    key: str
    label: str
    value: float | None
    #: What was measured, or why it does not apply.
    text: str
    applies: bool


@dataclass
class Explained:
    dimensions: list[Dimension] = field(default_factory=list)
    score_text: str = ""
    k_value: int | None = None
    k_text: list[str] = field(default_factory=list)


def _pct(share: float) -> str:
    return f"{100 * share:.2f}%".replace(".00%", "%")


def _checks(made_passed: dict[str, Any]) -> tuple[int, int]:
    made = sum(int(v.get("made", 0)) for v in made_passed.values() if isinstance(v, dict))
    passed = sum(int(v.get("passed", 0)) for v in made_passed.values() if isinstance(v, dict))
    return made, passed


def _columns(version: DatasetVersion) -> list[dict[str, Any]]:
    return [c for c in (version.report or {}).get("columns") or [] if isinstance(c, dict)]


def _dimension_text(key: str, value: float | None, details: dict[str, Any],
                    columns: list[dict[str, Any]], dataset: Dataset) -> str:
    if key == "completeness":
        if value is None:
            return _("Does not apply: the file has no row.")
        return _("Share of filled cells over all rows and columns; empty and blank cells count as missing.")
    if key == "validity":
        if value is None:
            return _("Does not apply: no column has a format that can be checked (no personal-data kind and no number or date column); free text is not checked.")
        checked = [c["name"] for c in columns if c.get("validity") is not None]
        return _("Values checked against their format (check characters of ID numbers and credit codes, numbers and dates that parse) in: %(cols)s.",
                 cols=", ".join(checked) or "—")
    if key == "accuracy":
        if value is None:
            return _("Does not apply: no column is covered by a domain rule (a Shanghai district, a declared amount that must not be negative, a date that must not be in the future).")
        cols = details.get("accuracy_columns") or {}
        made, passed = _checks(cols)
        return _("%(passed)s of %(made)s values pass a domain rule, in: %(cols)s.",
                 passed=f"{passed:,}", made=f"{made:,}", cols=", ".join(sorted(cols)) or "—")
    if key == "uniqueness":
        if value is None:
            return _("Does not apply: the file has no row.")
        rows = (details.get("duplicate_rows") or {}).get("share", 0.0)
        keys = details.get("duplicate_keys")
        if keys is not None:
            return _("Duplicate rows: %(rows)s; repeated entity keys (%(key)s is expected to be unique): %(keys)s.",
                     rows=_pct(rows), key=dataset.entity_key or "—", keys=_pct(keys.get("share", 0.0)))
        return _("Duplicate rows: %(rows)s. The entity key may repeat in this data (e.g. one row per month), so repeated keys are not counted.",
                 rows=_pct(rows))
    if key == "consistency":
        if value is None:
            return _("Does not apply: there is no resident-ID column together with a birth-date or gender column, so no two fields can be cross-checked.")
        made, passed = _checks(details.get("consistency_checks") or {})
        return _("%(passed)s of %(made)s cross-field checks pass (birth date and gender agree with the resident ID).",
                 passed=f"{passed:,}", made=f"{made:,}")
    if key == "timeliness":
        info = details.get("timeliness") or {}
        freq = info.get("update_frequency") or dataset.update_frequency
        if value is None:
            return _("Does not apply: no update frequency is declared, so there is no promise of freshness to measure.")
        freq_name = str(FREQUENCY_LABELS.get(freq, freq))
        if info.get("reason") == "no_as_of_date":
            return _("0: the dataset promises a %(freq)s update but carries no date that shows its age, so its freshness is unproven.",
                     freq=freq_name)
        return _("The latest date in the data is %(date)s, %(days)s days old, against a %(freq)s update: full marks within one period, falling to 0 at four.",
                 date=info.get("latest_date") or "—", days=info.get("age_days", "—"), freq=freq_name)
    return ""


def explain(dataset: Dataset, version: DatasetVersion | None) -> Explained | None:
    """The reports of ``version`` in words, or None before processing."""
    if version is None or not version.quality:
        return None
    quality = version.quality or {}
    dims = quality.get("dimensions") or {}
    # The version keeps score and dimensions; the counts behind them are in the report.
    details = quality.get("details") or ((version.report or {}).get("quality") or {}).get("details") or {}
    columns = _columns(version)
    out = Explained()
    for key in [k for k in DIMENSION_LABELS if k in dims]:
        value = dims[key]
        out.dimensions.append(Dimension(
            key, str(label("dimension", key)), None if value is None else round(float(value), 1),
            _dimension_text(key, value, details, columns, dataset), value is not None,
        ))
    missing = [d.label for d in out.dimensions if not d.applies]
    weights = ", ".join(f"{label('dimension', k)} {round(100 * w)}" for k, w in WEIGHTS.items())
    if missing:
        out.score_text = _("The score is the weighted mean of the dimensions that apply (weights: %(weights)s), at most %(margin)s points above the weakest. %(missing)s show “—”: they do not apply to this file and their weight goes to the others, so they neither lower nor raise the score.",
                           weights=weights, margin=int(WEAKEST_MARGIN), missing=", ".join(missing))
    else:
        out.score_text = _("The score is the weighted mean of the dimensions (weights: %(weights)s), at most %(margin)s points above the weakest.",
                           weights=weights, margin=int(WEAKEST_MARGIN))
    out.k_value = version.k_anonymity
    out.k_text = k_sentences(dataset, version, columns)
    return out


def k_sentences(dataset: Dataset, version: DatasetVersion,
                columns: list[dict[str, Any]] | None = None) -> list[str]:
    """Why k-anonymity is what it is (or "—"), naming the columns."""
    columns = _columns(version) if columns is None else columns
    kinds_names = ", ".join(str(label("pii", k)) for k in PERSONAL_QI)
    qi = list((version.report or {}).get("quasi_identifiers") or [])
    sentences = []
    if version.k_anonymity is None or not qi:
        sentences.append(_("k-anonymity shows “—” because it does not apply: it counts how many rows share each combination of quasi-identifiers, the published columns that could single out a person together (%(kinds)s). This file publishes none of them.",
                           kinds=kinds_names))
    else:
        step = (version.report or {}).get("generalization_step") or 0
        sentences.append(_("Every combination of the quasi-identifiers %(cols)s is shared by at least %(k)s rows; the minimum required is %(min)s.",
                           cols=", ".join(qi), k=version.k_anonymity, min=dataset.k_min))
        if step:
            sentences.append(_("To reach it, these columns were coarsened %(n)s step(s) (e.g. month → year, district → city).", n=step))
    districts = [c.get("output_name") or c.get("name") for c in columns
                 if not c.get("pii_kind") and is_district_column(str(c.get("name") or ""))]
    if districts:
        sentences.append(_("%(cols)s names an area of the city, not something about a person: on its own it cannot single anyone out, so it is not a quasi-identifier. It is checked for accuracy against Shanghai’s districts instead.",
                           cols=", ".join(districts)))
    if dataset.open_grade == "conditional":
        sentences.append(_("Buyers never see rows of this dataset: the sandbox answers with aggregates only, with differential-privacy noise, and does not release groups of too few enterprises."))
    return sentences
