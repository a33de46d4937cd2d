"""The operator's pricing-parameter form: scalar fields plus tables for the per-category and
bundle settings, with every error shown next to the field (or table row) it concerns.

Field errors use the pricing model's own dotted names (``reasonable_return``,
``category_coefficients.tax``, ``bundle_discount_brackets[1].rate``), so an
``InvalidParameters`` raised by the model lands on the right input without translation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import Length, Optional

import pricing

MAX_ROWS = 200
_BRACKET = re.compile(r"^bundle_discount_brackets\[(\d+)\](.*)$")
BLANK_CATEGORY_ROWS = 3
BLANK_BRACKET_ROWS = 2


class ParametersForm(FlaskForm):
    """CSRF, the note and the version the edit started from; the parameters themselves are
    read by :class:`ParameterFormState` because their rows are dynamic."""

    note = StringField(_l("Note (why this change)"), validators=[Optional(), Length(max=500)])
    base_version = HiddenField()


class DecisionForm(FlaskForm):
    """The regulator's approve/reject buttons on a proposal (the decision is the button)."""

    note = StringField(_l("Note (optional)"), validators=[Optional(), Length(max=500)])


@dataclass(frozen=True)
class Scalar:
    name: str
    label: Any
    kind: str  # "decimal", "int" or "optional_int" (blank = none)
    help: Any = None


#: The scalar parameters, grouped as on the page.
GROUPS: list[tuple[Any, list[Scalar]]] = [
    (
        _l("Cost basis"),
        [
            Scalar(
                "reasonable_return",
                _l("Reasonable return on cost"),
                "decimal",
                _l("0.08 means 8%."),
            ),
            Scalar("horizon_months", _l("Storage months in the cost basis"), "int"),
            Scalar("expected_licenses", _l("Licenses the cost is spread over"), "int"),
        ],
    ),
    (
        _l("Quality"),
        [
            Scalar(
                "quality_floor",
                _l("Quality floor (0–100)"),
                "decimal",
                _l("Datasets scoring lower cannot be priced."),
            ),
            Scalar("quality_coefficient_at_floor", _l("Coefficient at the floor"), "decimal"),
            Scalar("quality_coefficient_at_max", _l("Coefficient at a score of 100"), "decimal"),
            Scalar("quality_exponent", _l("Curve exponent"), "decimal", _l("1 is linear.")),
        ],
    ),
    (
        _l("Category defaults"),
        [
            Scalar("default_category_coefficient", _l("Default category coefficient"), "decimal"),
            Scalar(
                "default_ceiling_fen",
                _l("Default price ceiling per dataset per year (fen)"),
                "optional_int",
                _l("Blank: no ceiling."),
            ),
            Scalar(
                "default_query_ceiling_fen",
                _l("Default price ceiling per query (fen)"),
                "optional_int",
                _l("Blank: no ceiling."),
            ),
            Scalar(
                "default_revenue_cap_fen",
                _l("Default monthly revenue cap (fen)"),
                "optional_int",
                _l("Blank: uncapped."),
            ),
        ],
    ),
    (
        _l("Scope shares and revenue cap"),
        [
            Scalar(
                "scope_shares.columns",
                _l("Share of the price for the columns"),
                "decimal",
                _l("The three shares add up to 1."),
            ),
            Scalar("scope_shares.duration", _l("Share of the price for the term"), "decimal"),
            Scalar("scope_shares.quota", _l("Share of the price for the query quota"), "decimal"),
            Scalar(
                "over_cap_reduction",
                _l("Reduction once the revenue cap is reached"),
                "decimal",
                _l("0.5 halves new quotes in that category until the month ends."),
            ),
        ],
    ),
    (
        _l("Scope"),
        [
            Scalar(
                "duration_reference_months",
                _l("Reference duration (months)"),
                "int",
                _l("The duration factor is 1 here."),
            ),
            Scalar(
                "duration_exponent",
                _l("Duration exponent"),
                "decimal",
                _l("Strictly between 0 and 1."),
            ),
            Scalar(
                "quota_reference",
                _l("Reference query quota"),
                "int",
                _l("The quota factor is 1 here."),
            ),
            Scalar("quota_cap", _l("Quota above which the price stops rising"), "int"),
            Scalar(
                "quota_exponent", _l("Quota exponent"), "decimal", _l("Strictly between 0 and 1.")
            ),
        ],
    ),
]
SCALARS: dict[str, Scalar] = {s.name: s for _, group in GROUPS for s in group}
PURPOSES = [str(p) for p in pricing.PURPOSE_ORDER]
CATEGORY_MAPS = (
    ("coefficient", "category_coefficients", "decimal"),
    ("ceiling", "category_ceilings_fen", "int"),
    ("query_ceiling", "category_query_ceilings_fen", "int"),
    ("cap", "revenue_caps_fen", "int"),
)
ROW_COLUMNS = ("name", *(col for col, _, _ in CATEGORY_MAPS))
#: What needs the regulator's approval (NDRC 发改价格〔2025〕65号: the price authority reviews
#: ceilings and the operator's revenue cap); the rest of the parameters apply when saved.
REGULATED = pricing.REGULATED_FIELDS


def _get(params: Mapping[str, Any], name: str) -> Any:
    """``params[name]``, where a dotted name reads one level down (``scope_shares.columns``)."""
    head, _, tail = name.partition(".")
    value = params.get(head)
    if tail:
        return value.get(tail) if isinstance(value, Mapping) else None
    return value


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _parse_int(text: str) -> int:
    return int(text.replace(",", "").strip())


@dataclass
class ParameterFormState:
    """What the form shows: the values as text, and the errors by model field name."""

    scalars: dict[str, str]
    purposes: dict[str, str]
    categories: list[dict[str, str]]
    brackets: list[dict[str, str]]
    errors: dict[str, list[str]] = field(default_factory=dict)
    #: Index in the model's bracket list -> row of the form (blank rows are skipped).
    bracket_rows: dict[int, int] = field(default_factory=dict)

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ParameterFormState:
        """From ``PricingParameters.to_dict()`` output (a stored version)."""
        names = sorted(
            set(params.get("category_coefficients", {}))
            | set(params.get("category_ceilings_fen", {}))
            | set(params.get("revenue_caps_fen", {}))
            | set(params.get("category_query_ceilings_fen", {}))
        )
        categories = [
            {
                "name": name,
                **{col: _text(params.get(key, {}).get(name)) for col, key, _ in CATEGORY_MAPS},
            }
            for name in names
        ]
        brackets = [
            {"from_fen": _text(b["from_fen"]), "rate": _text(b["rate"])}
            for b in params.get("bundle_discount_brackets", [])
        ]
        return cls(
            scalars={name: _text(_get(params, name)) for name in SCALARS},
            purposes={p: _text(params.get("purpose_coefficients", {}).get(p)) for p in PURPOSES},
            categories=categories,
            brackets=brackets,
        ).with_blank_rows()

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> ParameterFormState:
        """From submitted form data (``request.form``)."""

        def rows(prefix: str, columns: tuple[str, ...]) -> list[dict[str, str]]:
            out = []
            for i in range(MAX_ROWS):
                if f"{prefix}-{i}-{columns[0]}" not in form:
                    break
                out.append({c: (form.get(f"{prefix}-{i}-{c}") or "").strip() for c in columns})
            return out

        return cls(
            scalars={name: (form.get(name) or "").strip() for name in SCALARS},
            purposes={p: (form.get(f"purpose-{p}") or "").strip() for p in PURPOSES},
            categories=rows("cat", ROW_COLUMNS),
            brackets=rows("bracket", ("from_fen", "rate")),
        )

    def with_blank_rows(self) -> ParameterFormState:
        """Top up the tables to a few empty rows at the end, for adding entries."""

        def top_up(rows: list[dict[str, str]], want: int, blank: dict[str, str]) -> None:
            trailing = 0
            for row in reversed(rows):
                if any(row.values()):
                    break
                trailing += 1
            rows.extend(dict(blank) for _ in range(max(0, want - trailing)))

        top_up(
            self.categories,
            BLANK_CATEGORY_ROWS,
            dict.fromkeys(ROW_COLUMNS, ""),
        )
        top_up(self.brackets, BLANK_BRACKET_ROWS, {"from_fen": "", "rate": ""})
        return self

    # -- reading -------------------------------------------------------------------------------
    def _add(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    def to_changes(self) -> dict[str, Any]:
        """The parameters in ``to_dict`` form; format errors (a whole number expected, a row
        without a category) are collected in ``errors`` for every field at once."""
        changes: dict[str, Any] = {}
        for name, scalar in SCALARS.items():
            text = self.scalars.get(name, "")
            if "." in name:
                head, _, tail = name.partition(".")
                changes.setdefault(head, {})[tail] = text
            elif scalar.kind == "decimal":
                changes[name] = text
            elif scalar.kind == "optional_int" and not text:
                changes[name] = None
            else:
                try:
                    changes[name] = _parse_int(text)
                except ValueError:
                    self._add(name, str(_l("Enter a whole number.")))
        changes["purpose_coefficients"] = dict(self.purposes)

        maps: dict[str, dict[str, Any]] = {key: {} for _, key, _ in CATEGORY_MAPS}
        seen: set[str] = set()
        for i, row in enumerate(self.categories):
            name = row.get("name", "")
            values = {col: row.get(col, "") for col, _, _ in CATEGORY_MAPS}
            if not name:
                if any(values.values()):
                    self._add(f"categories[{i}]", str(_l("Give the category a name.")))
                continue
            if name in seen:
                self._add(f"categories[{i}]", str(_l("This category is already in the table.")))
                continue
            seen.add(name)
            for col, key, kind in CATEGORY_MAPS:
                text = values[col]
                if not text:
                    continue  # the default applies
                if kind == "decimal":
                    maps[key][name] = text
                else:
                    try:
                        maps[key][name] = _parse_int(text)
                    except ValueError:
                        self._add(f"{key}.{name}", str(_l("Enter a whole number.")))
        changes.update(maps)

        brackets = []
        for i, row in enumerate(self.brackets):
            if not row.get("from_fen") and not row.get("rate"):
                continue
            try:
                from_fen = _parse_int(row.get("from_fen", ""))
            except ValueError:
                self._add(
                    f"bundle_discount_brackets[{i}].from_fen", str(_l("Enter a whole number."))
                )
                continue
            self.bracket_rows[len(brackets)] = i
            brackets.append({"from_fen": from_fen, "rate": row.get("rate", "")})
        changes["bundle_discount_brackets"] = brackets
        return changes

    def add_errors(self, errors: Mapping[str, Any], wrap: Any = None) -> None:
        """Add a service's field errors, moving bracket errors to the row they came from.
        ``wrap`` formats each message (the model's messages are English)."""
        for key, messages in errors.items():
            match = _BRACKET.match(key)
            if match and int(match.group(1)) in self.bracket_rows:
                row = self.bracket_rows[int(match.group(1))]
                key = f"bundle_discount_brackets[{row}]{match.group(2)}"
            for message in messages if isinstance(messages, list) else [messages]:
                self._add(key, str(wrap(str(message)) if wrap else message))

    def error(self, key: str) -> list[str]:
        return self.errors.get(key, [])

    def row_errors(self, i: int) -> list[str]:
        """Errors of category row ``i``, whichever map they came from."""
        row = self.categories[i]
        keys = [f"categories[{i}]"] + [f"{key}.{row['name']}" for _, key, _ in CATEGORY_MAPS]
        return [m for k in keys for m in self.error(k)]

    def bracket_errors(self, i: int) -> list[str]:
        keys = [f"bundle_discount_brackets[{i}]"] + [
            f"bundle_discount_brackets[{i}].{c}" for c in ("from_fen", "rate")
        ]
        return [m for k in keys for m in self.error(k)]

    def placed_keys(self) -> set[str]:
        keys = set(SCALARS) | {f"purpose_coefficients.{p}" for p in PURPOSES}
        keys |= {key for _, key, _ in CATEGORY_MAPS} | {"bundle_discount_brackets"}
        for i, row in enumerate(self.categories):
            keys.add(f"categories[{i}]")
            keys |= {f"{key}.{row['name']}" for _, key, _ in CATEGORY_MAPS}
        for i in range(len(self.brackets)):
            keys |= {f"bundle_discount_brackets[{i}]"}
            keys |= {f"bundle_discount_brackets[{i}].{c}" for c in ("from_fen", "rate")}
        return keys

    def unplaced_errors(self) -> list[str]:
        """Errors no input shows (they go at the top of the form)."""
        placed = self.placed_keys()
        return [f"{k}: {m}" for k, msgs in self.errors.items() if k not in placed for m in msgs]
