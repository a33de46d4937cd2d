"""Which treatment each column gets: defaults, what a department may choose, and the checks.

Defaults: direct identifiers (credit code, resident ID, bank card, mobile, email) are
pseudonymized; person names are masked (张*); addresses, birth dates and ages are generalized
(district, month, 5-year band); gender and non-personal columns are published as they are.
Columns with identifiers inside free text are masked in place.

The entity-key column is pseudonymized whenever it holds personal data, so that it stays a join
key without exposing the identifier; it can be neither masked nor suppressed.

A department may override a treatment before review, with limits: a direct identifier (or
free text containing one) is never published as ``none``, the entity key must stay
pseudonymized, and ``generalized`` exists only for dates, addresses and ages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from market.i18n import N_

from . import kinds
from .detect import Detection
from .errors import InvalidEntityKey, InvalidOverride

GENERALIZABLE_KINDS = frozenset({kinds.BIRTH_DATE, kinds.ADDRESS, kinds.AGE})


def default_treatment(det: Detection, *, is_entity_key: bool = False) -> str:
    if det.pii_kind is None:
        return kinds.NONE
    if is_entity_key:
        return kinds.PSEUDONYMIZED
    if det.embedded:
        return kinds.MASKED
    return kinds.DEFAULT_TREATMENT[det.pii_kind]


def generalizable(det: Detection) -> bool:
    if det.embedded:
        return False
    return det.pii_kind in GENERALIZABLE_KINDS or (
        det.pii_kind is None and det.type in (kinds.DATE, kinds.DATETIME)
    )


def allowed_treatments(det: Detection, *, is_entity_key: bool = False) -> tuple[str, ...]:
    """The treatments a department may choose for this column, in display order."""
    if is_entity_key:
        # The key must stay a join key: pseudonymized if personal, else as it is.
        if det.pii_kind is not None and not det.embedded:
            return (kinds.PSEUDONYMIZED,)
        return (kinds.PSEUDONYMIZED, kinds.NONE)
    allowed = [kinds.PSEUDONYMIZED, kinds.MASKED]
    if generalizable(det):
        allowed.append(kinds.GENERALIZED)
    allowed.append(kinds.SUPPRESSED)
    if det.pii_kind not in kinds.DIRECT_IDENTIFIERS:
        allowed.append(kinds.NONE)
    return tuple(allowed)


def check_entity_key(detections: Sequence[Detection], entity_key: str | None) -> None:
    """Raises InvalidEntityKey if ``entity_key`` is not one of the columns."""
    if entity_key is not None and entity_key not in {d.name for d in detections}:
        raise InvalidEntityKey(
            N_("the entity key column '%(name)s' is not in the file"),
            column=entity_key,
            name=entity_key,
        )


def validate_overrides(
    detections: Sequence[Detection],
    overrides: Mapping[str, str] | None,
    entity_key: str | None = None,
) -> dict[str, str]:
    """The final treatment of every column: the defaults, with valid overrides applied.

    Raises InvalidOverride (naming the column) for an unknown column, an unknown treatment, or
    a treatment the column does not allow (see :func:`allowed_treatments`), and
    InvalidEntityKey if the entity key is not a column.
    """
    check_entity_key(detections, entity_key)
    by_name = {d.name: d for d in detections}
    result = {d.name: default_treatment(d, is_entity_key=d.name == entity_key) for d in detections}
    for column, treatment in (overrides or {}).items():
        det = by_name.get(column)
        if det is None:
            raise InvalidOverride(
                N_("column '%(name)s' is not in the file"), column=column, name=column
            )
        if treatment not in kinds.TREATMENTS:
            raise InvalidOverride(
                N_("column '%(name)s': unknown treatment '%(treatment)s'; use one of "
                   "%(allowed)s"),
                column=column,
                name=column,
                treatment=str(treatment),
                allowed=", ".join(kinds.TREATMENTS),
            )
        allowed = allowed_treatments(det, is_entity_key=column == entity_key)
        if treatment not in allowed:
            raise InvalidOverride(
                _refusal(det, treatment, column == entity_key),
                column=column,
                name=det.name,
                treatment=treatment,
                what=det.pii_kind or det.type,
                allowed=", ".join(allowed),
            )
        result[column] = treatment
    return result


def _refusal(det: Detection, treatment: str, is_key: bool) -> str:
    """The msgid saying why ``treatment`` is refused; params ``name``, ``treatment``, ``what``
    (the PII kind or type) and ``allowed``."""
    if is_key:
        return N_("column '%(name)s' cannot be %(treatment)s: it is the entity key, which must "
                  "stay a join key; allowed: %(allowed)s")
    if treatment == kinds.NONE and det.embedded:
        return N_("column '%(name)s' cannot be %(treatment)s: it contains direct identifiers "
                  "(%(what)s) that must not be published as they are; allowed: %(allowed)s")
    if treatment == kinds.NONE:
        return N_("column '%(name)s' cannot be %(treatment)s: it holds direct identifiers "
                  "(%(what)s) that must not be published as they are; allowed: %(allowed)s")
    return N_("column '%(name)s' cannot be %(treatment)s: %(treatment)s does not apply to "
              "%(what)s values; allowed: %(allowed)s")
