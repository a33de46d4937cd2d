"""Privacy settings of a dataset: differential privacy of its sandbox answers.

Every conditional dataset answers the sandbox with entity-level differential privacy; there is
no switch to turn it off. What the department chooses (and the operator may only tighten):

- ``epsilon_budget``: epsilon one buyer organization may spend on the dataset, across all its
  licenses (a bank with three licenses has one budget);
- ``version_budget``: epsilon all buyers together may spend on one version (two banks can pool
  their answers); once spent, the version answers only questions already released until a new
  version is published;
- ``epsilon_per_query``, ``delta``: the cost of one new question;
- ``max_groups_per_entity``, ``max_rows_per_entity``: contribution bounds of one enterprise;
- ``ranges``: ``{column: [lo, hi]}``, the declared range of one enterprise's contribution to a
  SUM, public metadata. A SUM or AVG over a column without a declared range is refused by the
  policy (``unbounded_aggregate``); nothing is derived from the data.

A field left unset takes the dataset's default (:func:`default_privacy`), stricter for a
dataset graded ``important``. Values are validated here; errors name the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import gettext as _

from market.accounts.actor import Actor
from market.audit.services import record
from market.errors import Forbidden, NotFound, ValidationFailed

from . import permissions as perms
from .models import ColumnRole, Dataset, OpenGrade

FIELDS = (
    "epsilon_budget",
    "version_budget",
    "epsilon_per_query",
    "delta",
    "max_groups_per_entity",
    "max_rows_per_entity",
    "ranges",
)
#: Model attribute of each scalar setting.
_ATTRS = {
    "epsilon_budget": "dp_epsilon_budget",
    "version_budget": "dp_version_budget",
    "epsilon_per_query": "dp_epsilon_per_query",
    "delta": "dp_delta",
    "max_groups_per_entity": "dp_max_groups_per_entity",
    "max_rows_per_entity": "dp_max_rows_per_entity",
}
_EPS_MAX = Decimal(10)
_BUDGET_MAX = Decimal(1000)
_DELTA_MAX = Decimal("0.0001")  # sandbox.specs.TablePrivacy.MAX_DELTA
_EPS_PLACES = Decimal("0.0001")
_RANGE_ABS_MAX = Decimal(10) ** 15
MAX_RANGES = 200


@dataclass(frozen=True)
class PrivacySettings:
    epsilon_budget: Decimal
    version_budget: Decimal
    epsilon_per_query: Decimal
    delta: Decimal
    max_groups_per_entity: int
    max_rows_per_entity: int
    ranges: Mapping[str, tuple[Decimal, Decimal]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("epsilon_budget", "version_budget", "epsilon_per_query"):
            out[key] = format(self.__getattribute__(key).quantize(_EPS_PLACES), "f")
        out["delta"] = format(self.delta.normalize(), "f")
        out["ranges"] = {
            name: [_plain(lo), _plain(hi)] for name, (lo, hi) in sorted(self.ranges.items())
        }
        return out


def _plain(value: Decimal) -> str:
    value = value.normalize()
    return format(value.quantize(Decimal(1)) if value == value.to_integral_value() else value, "f")


def _important_limits() -> dict[str, Decimal]:
    """The loosest settings GB/T 43697 重要数据 may have (``market.governance.grading``); the
    version budget allows four organizations' worth of answers."""
    from market.governance.grading import IMPORTANT, privacy_defaults

    limits = privacy_defaults(IMPORTANT)
    return {
        "epsilon_budget": limits["epsilon_budget"],
        "version_budget": limits["epsilon_budget"] * 4,
        "epsilon_per_query": limits["epsilon_per_query"],
        "delta": limits["delta"],
    }


def _is_important(dataset: Dataset) -> bool:
    return getattr(dataset, "security_level", None) == "important"


def default_privacy(dataset: Dataset) -> PrivacySettings:
    """The defaults of ``dataset``: a function of the dataset, stricter when it is graded
    ``important`` (GB/T 43697 重要数据)."""
    if _is_important(dataset):
        return PrivacySettings(**_important_limits(), max_groups_per_entity=1, max_rows_per_entity=12)
    return PrivacySettings(
        epsilon_budget=Decimal("5"),
        version_budget=Decimal("20"),
        epsilon_per_query=Decimal("0.5"),
        delta=Decimal("1E-6"),
        max_groups_per_entity=1,
        max_rows_per_entity=12,
    )


def uses_dp(dataset: Dataset) -> bool:
    """Whether the dataset's sandbox answers are differentially private (every conditional
    dataset)."""
    return dataset.open_grade == OpenGrade.conditional.value


def effective_privacy(dataset: Dataset) -> PrivacySettings | None:
    """The settings in force (stored values, defaults for the others); None if not DP."""
    if not uses_dp(dataset):
        return None
    base = default_privacy(dataset)
    values: dict[str, Any] = {}
    for key, attr in _ATTRS.items():
        stored = getattr(dataset, attr, None)
        if stored is None:
            values[key] = getattr(base, key)
        elif key.startswith("max_"):
            values[key] = int(stored)
        else:
            values[key] = Decimal(str(stored))
    if _is_important(dataset):
        # Important data never answers more loosely than its level allows, whatever is stored.
        for key, limit in _important_limits().items():
            values[key] = min(values[key], limit)
    ranges: dict[str, tuple[Decimal, Decimal]] = {}
    for name, pair in (dataset.dp_ranges or {}).items():
        ranges[name] = (Decimal(str(pair[0])), Decimal(str(pair[1])))
    return PrivacySettings(**values, ranges=ranges)


# ------------------------------------------------------------------------------ validation


def _decimal(raw: Any, name: str, errors: dict[str, list[str]]) -> Decimal | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        errors[name] = [_("Give a number.")]
        return None
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        errors[name] = [_("Give a number.")]
        return None
    if not value.is_finite():
        errors[name] = [_("Give a finite number.")]
        return None
    return value


def _epsilon(raw: Any, name: str, top: Decimal, errors: dict[str, list[str]]) -> Decimal | None:
    value = _decimal(raw, name, errors)
    if value is None:
        return None
    if value <= 0 or value > top:
        errors[name] = [_("Give a value above 0 and at most %(max)s.", max=str(top))]
        return None
    if value != value.quantize(_EPS_PLACES):
        errors[name] = [_("Use at most four decimal places.")]
        return None
    return value


def _integer(raw: Any, name: str, top: int, errors: dict[str, list[str]]) -> int | None:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= top:
        errors[name] = [_("Give a whole number from 1 to %(max)s.", max=top)]
        return None
    return raw


def parse_privacy(
    data: Any, *, columns: Mapping[str, str] | None = None, partial: bool = True
) -> dict[str, Any]:
    """Validate a ``privacy`` object; returns the given fields, normalized.

    ``columns`` maps column names of the dataset to their sandbox role (ranges must name a
    measure column); None skips that check (an upload, whose columns are not known yet).
    Raises ValidationFailed naming each wrong field as ``privacy.<field>``.
    """
    errors: dict[str, list[str]] = {}
    if not isinstance(data, Mapping):
        raise ValidationFailed(
            _("The privacy settings are not valid."), {"privacy": [_("Give a JSON object.")]}
        )
    out: dict[str, Any] = {}
    for key in data:
        if key not in FIELDS:
            errors[f"privacy.{key}"] = [_("Unknown field.")]
    for key, top in (
        ("epsilon_per_query", _EPS_MAX),
        ("epsilon_budget", _BUDGET_MAX),
        ("version_budget", _BUDGET_MAX),
    ):
        if data.get(key) is not None:
            value = _epsilon(data[key], f"privacy.{key}", top, errors)
            if value is not None:
                out[key] = value
    if data.get("delta") is not None:
        value = _decimal(data["delta"], "privacy.delta", errors)
        if value is not None:
            if value <= 0 or value > _DELTA_MAX:
                errors["privacy.delta"] = [
                    _("Give a value above 0 and at most %(max)s.", max=format(_DELTA_MAX, "f"))
                ]
            else:
                out["delta"] = value
    for key, top in (("max_groups_per_entity", 100), ("max_rows_per_entity", 10_000)):
        if data.get(key) is not None:
            value = _integer(data[key], f"privacy.{key}", top, errors)
            if value is not None:
                out[key] = value
    if data.get("ranges") is not None:
        ranges = _ranges(data["ranges"], columns, errors)
        if ranges is not None:
            out["ranges"] = ranges
    if not errors:
        per_query = out.get("epsilon_per_query")
        for key in ("epsilon_budget", "version_budget"):
            if per_query is not None and key in out and out[key] < per_query:
                errors[f"privacy.{key}"] = [
                    _("Must be at least the epsilon of one query (%(eps)s).", eps=str(per_query))
                ]
    if errors:
        raise ValidationFailed(_("The privacy settings are not valid."), errors)
    return out


def _ranges(
    raw: Any, columns: Mapping[str, str] | None, errors: dict[str, list[str]]
) -> dict[str, tuple[Decimal, Decimal]] | None:
    if not isinstance(raw, Mapping) or len(raw) > MAX_RANGES:
        errors["privacy.ranges"] = [_("Give an object {column: [low, high]}.")]
        return None
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for name, pair in raw.items():
        key = f"privacy.ranges.{name}"
        if not isinstance(name, str) or not name or len(name) > 128:
            errors["privacy.ranges"] = [_("Give an object {column: [low, high]}.")]
            continue
        if columns is not None and name not in columns:
            errors[key] = [_("No such column in this dataset.")]
            continue
        if columns is not None and columns[name] != ColumnRole.measure.value:
            errors[key] = [_("Only measure columns take a range.")]
            continue
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            errors[key] = [_("Give [low, high].")]
            continue
        sub: dict[str, list[str]] = {}
        lo, hi = _decimal(pair[0], key, sub), _decimal(pair[1], key, sub)
        if sub or lo is None or hi is None:
            errors[key] = [_("Give [low, high] as numbers.")]
            continue
        if lo > hi or abs(lo) > _RANGE_ABS_MAX or abs(hi) > _RANGE_ABS_MAX:
            errors[key] = [_("Give low <= high, each within ±10^15.")]
            continue
        if lo != lo.quantize(_EPS_PLACES) or hi != hi.quantize(_EPS_PLACES):
            errors[key] = [_("Use at most four decimal places.")]
            continue
        out[name] = (lo, hi)
    return out


def _tighter(old: PrivacySettings, new: Mapping[str, Any]) -> dict[str, list[str]]:
    """What in ``new`` loosens ``old`` (the operator may only tighten)."""
    errors: dict[str, list[str]] = {}
    for key in _ATTRS:
        if key in new and new[key] > getattr(old, key):
            errors[f"privacy.{key}"] = [_("The operator may only lower this value.")]
    if "ranges" in new:
        for name, (lo, hi) in new["ranges"].items():
            was = old.ranges.get(name)
            if was is None or lo < was[0] or hi > was[1]:
                errors[f"privacy.ranges.{name}"] = [
                    _("The operator may only narrow a declared range.")
                ]
    return errors


def store(dataset: Dataset, values: Mapping[str, Any]) -> None:
    """Write validated values (from :func:`parse_privacy`) on the dataset; no audit."""
    for key, attr in _ATTRS.items():
        if key in values:
            setattr(dataset, attr, values[key])
    if "ranges" in values:
        dataset.dp_ranges = {
            name: [_plain(lo), _plain(hi)] for name, (lo, hi) in sorted(values["ranges"].items())
        } or None


def measure_columns(dataset: Dataset) -> dict[str, str]:
    """Column name -> role of the dataset's current (else latest) version."""
    version = dataset.current_version or (dataset.versions[-1] if dataset.versions else None)
    if version is None:
        return {}
    return {c.name: c.role for c in version.columns}


@dataclass
class PrivacyUpdate:
    """What :func:`update_privacy` did."""

    #: The settings in force after the call.
    settings: PrivacySettings
    #: Settings that changed and are in force now.
    applied: list[str]
    #: The change request holding the looser settings, awaiting the operator (listed datasets).
    change_request: Any = None


def _loosened(old: PrivacySettings, values: Mapping[str, Any]) -> set[str]:
    """The settings of ``values`` that would loosen ``old`` (``ranges`` counts as one)."""
    return {key.split(".")[1] for key in _tighter(old, values)}


def _changed(old: PrivacySettings, values: Mapping[str, Any]) -> set[str]:
    out = {key for key in values if key != "ranges" and values[key] != getattr(old, key)}
    if "ranges" in values and dict(values["ranges"]) != dict(old.ranges):
        out.add("ranges")
    return out


def as_json_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validated values (from :func:`parse_privacy`) as JSON-native text, as stored on a change
    request; :func:`parse_privacy` reads them back."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "ranges":
            out[key] = {name: [_plain(lo), _plain(hi)] for name, (lo, hi) in sorted(value.items())}
        elif key.startswith("max_"):
            out[key] = int(value)
        else:
            out[key] = format(Decimal(value).normalize(), "f")
    return out


def _check_budgets(merged: Mapping[str, Any]) -> None:
    for key in ("epsilon_budget", "version_budget"):
        if merged[key] < merged["epsilon_per_query"]:
            raise ValidationFailed(
                _("The privacy settings are not valid."),
                {f"privacy.{key}": [_("Must be at least the epsilon of one query (%(eps)s).",
                                      eps=str(merged["epsilon_per_query"]))]},
            )


def apply_reviewed(dataset: Dataset, proposed: Mapping[str, Any]) -> None:
    """Store the privacy settings of an approved change request (``lifecycle.review_change``).

    Raises Conflict if they no longer fit the dataset (a column gone, a budget now below the
    epsilon of one query): the operator rejects the change and the department proposes again.
    """
    from market.errors import Conflict

    old = effective_privacy(dataset)
    if old is None:
        raise Conflict(_("Only conditional datasets have privacy settings."), {"privacy": []})
    try:
        values = parse_privacy(proposed, columns=measure_columns(dataset))
        _check_budgets({**asdict(old), **values})
    except ValidationFailed as exc:
        raise Conflict(
            _("The proposed privacy settings no longer fit the dataset; reject the change."),
            exc.errors,
        ) from exc
    store(dataset, values)


def update_privacy(session: Any, actor: Actor, dataset: Dataset, data: Any) -> PrivacyUpdate:
    """Change the privacy settings of ``dataset``: its department sets them, the operator may
    only tighten. Audited ``dataset.privacy_changed`` with the old and new settings.

    On a dataset buyers may rely on (listed, or listed before), the department's stricter
    values apply at once and its looser ones become a change request the operator reviews
    (``market.datasets.lifecycle``, audited ``dataset.change_proposed``): a looser setting
    never applies before approval, while protecting the data more needs nobody's approval. A
    setting the department changes replaces what a pending request proposed for it; the
    others stay proposed.

    Raises NotFound for a caller who may not see the dataset, Forbidden for anyone else or
    for a dataset that is not conditional, Conflict once withdrawn, ValidationFailed (fields
    named) for bad values.
    """
    from market.datasets import lifecycle

    if not perms.can_read_dataset(actor, dataset):
        raise NotFound(_("Dataset %(id)s does not exist.", id=dataset.id))
    owner = perms.can_manage_versions(actor, dataset)
    if not owner and not perms.can_review(actor):  # the (active) operator
        raise Forbidden(_("Only the department that owns this dataset or the operator can "
                          "change its privacy settings."))
    old = effective_privacy(dataset)
    if old is None:
        raise Forbidden(_("Only conditional datasets have privacy settings."))
    values = parse_privacy(data, columns=measure_columns(dataset))
    if not owner:
        errors = _tighter(old, values)
        if errors:
            raise ValidationFailed(_("The privacy settings are not valid."), errors)
    # The budgets are checked on the final state: the stricter part applied alone is then
    # consistent too (a lowered budget stays above the old, lower or equal, epsilon per query).
    _check_budgets({**asdict(old), **values})
    reviewed = owner and lifecycle.ever_listed(dataset)
    if reviewed:
        if dataset.withdrawn_at is not None:
            from market.errors import Conflict

            raise Conflict(
                _("Dataset %(id)s was withdrawn; it cannot change any more.", id=dataset.id),
                {"status": [lifecycle.WITHDRAWN]},
            )
        changed = _changed(old, values)
        looser = _loosened(old, values) & changed
        at_once = {k: v for k, v in values.items() if k in changed and k not in looser}
        to_review = {k: v for k, v in values.items() if k in looser}
    else:
        at_once, to_review, changed = dict(values), {}, _changed(old, values)
    store(dataset, at_once)
    session.flush()
    new = effective_privacy(dataset)
    assert new is not None
    if at_once or not reviewed:
        record(
            session,
            "dataset.privacy_changed",
            actor,
            ("dataset", dataset.id),
            {"before": old.as_json(), "after": new.as_json(), "by": actor.role},
        )
    request = None
    if to_review:
        proposal = as_json_values(to_review)

        def merge(previous: Mapping[str, Any], newer: Mapping[str, Any]) -> dict[str, Any]:
            kept = {
                k: v for k, v in (previous.get("privacy") or {}).items() if k not in changed
            }
            return {**previous, **newer, "privacy": {**kept, **newer["privacy"]}}

        request = lifecycle.propose_change(
            session, actor, dataset, {"privacy": proposal}, merge=merge
        )
    elif reviewed and changed:
        # A setting changed now supersedes what a pending request proposed for it.
        pending = lifecycle.pending_change(session, dataset)
        proposed = dict((pending.changes or {}).get("privacy") or {}) if pending else {}
        if proposed and set(proposed) & changed:
            left = {k: v for k, v in proposed.items() if k not in changed}
            rest = {k: v for k, v in pending.changes.items() if k != "privacy"}
            if left:
                rest["privacy"] = left
            if rest:
                request = lifecycle.propose_change(
                    session, actor, dataset, rest, merge=lambda _prev, newer: dict(newer)
                )
            else:
                pending.status = "rejected"
                pending.reviewed_at = _utcnow()
                pending.review_comment = _("Replaced by a newer proposal.")
                session.flush()
                record(
                    session, "dataset.change_superseded", actor, ("dataset", dataset.id),
                    {"change_request": pending.id, "changed": sorted(changed)},
                )
    return PrivacyUpdate(new, sorted(at_once), request)


def _utcnow():
    from market.db import utcnow

    return utcnow()


__all__ = [
    "FIELDS",
    "PrivacyUpdate",
    "apply_reviewed",
    "as_json_values",
    "PrivacySettings",
    "default_privacy",
    "effective_privacy",
    "parse_privacy",
    "store",
    "update_privacy",
    "uses_dp",
]
