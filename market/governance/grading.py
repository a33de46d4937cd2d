"""Data grading of GB/T 43697-2024 《数据安全技术 数据分类分级规则》, beside the open grade.

Pure: no Flask, no database.

- ``general`` (一般数据): operated as today.
- ``important`` (重要数据): operated only with differential privacy, with the stricter
  defaults of :func:`privacy_defaults`, and each license needs the regulator's approval as well
  as the operator's.
- ``core`` (核心数据): never operated; an upload declaring it is refused and nothing of the file
  is stored (like a confidential upload).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from market.i18n import N_

GENERAL = "general"
IMPORTANT = "important"
CORE = "core"
LEVELS: tuple[str, ...] = (GENERAL, IMPORTANT, CORE)
#: Levels the market may operate (list, license, query).
OPERABLE: frozenset[str] = frozenset({GENERAL, IMPORTANT})

#: Chinese names, as GB/T 43697-2024 writes them (shown beside the English code).
LABELS_ZH = {GENERAL: "一般数据", IMPORTANT: "重要数据", CORE: "核心数据"}

#: The refusal reason of a ``core`` upload (an English msgid; translated where shown).
CORE_REFUSAL = N_(
    "security level 'core' (核心数据, GB/T 43697-2024): core data is never operated on the market"
)

#: Differential-privacy defaults per level. ``general`` keeps the platform's own defaults
#: (``None`` values: the caller's defaults apply, DP stays optional on conditional data).
_GENERAL_DEFAULTS: dict[str, Any] = {
    "dp_required": False,
    "epsilon_per_query": None,
    "epsilon_budget": None,
    "delta": None,
    "k_min": None,
}
#: ``important``: DP is mandatory, with a small per-query epsilon and a small total budget per
#: license, a tiny delta, and larger minimum groups. Values follow the usual guidance for
#: sensitive statistical releases (ε ≤ 1 per release, total ε of a few units).
_IMPORTANT_DEFAULTS: dict[str, Any] = {
    "dp_required": True,
    "epsilon_per_query": Decimal("0.1"),
    "epsilon_budget": Decimal("1.0"),
    "delta": Decimal("1e-7"),
    "k_min": 20,
}


class UnknownSecurityLevel(ValueError):
    """A security level outside :data:`LEVELS`."""


def check_level(level: str) -> str:
    """``level`` if it is a known level; raises :class:`UnknownSecurityLevel` otherwise."""
    if level not in LEVELS:
        raise UnknownSecurityLevel(level)
    return level


def is_operable(level: str) -> bool:
    """Whether data of ``level`` may be listed and licensed (not ``core``)."""
    return level in OPERABLE


def requires_regulator_approval(level: str) -> bool:
    """Whether a license over data of ``level`` needs the regulator's approval too."""
    return level == IMPORTANT


def privacy_defaults(security_level: str) -> dict[str, Any]:
    """The differential-privacy settings a dataset of ``security_level`` starts from.

    Keys: ``dp_required`` (bool), ``epsilon_per_query``, ``epsilon_budget`` (per license),
    ``delta`` (Decimal or ``None`` = the platform default), ``k_min`` (int or ``None``).
    For ``important`` data the values are the *loosest* a dataset may have: a department may
    choose stricter ones (smaller epsilon/delta, larger k), never looser ones.

    Raises :class:`UnknownSecurityLevel` for an unknown level, and ``ValueError`` for ``core``
    (core data is never operated, so it has no privacy settings).
    """
    check_level(security_level)
    if security_level == CORE:
        raise ValueError("core data is never operated")
    base = _IMPORTANT_DEFAULTS if security_level == IMPORTANT else _GENERAL_DEFAULTS
    return dict(base)
