"""Why a dataset version failed or was refused, and the pipeline report's warnings, stored so
that they are shown in the reader's language.

``DatasetVersion.refusal_reasons`` is a JSON list whose entries are either

- a string: an English msgid without params (marked ``N_``), or, for rows written before
  reasons were stored this way, already formatted English text (shown as it is when the
  catalogue does not know it); or
- ``{"msgid": "... %(name)s ...", "params": {"name": ...}}``: a msgid with its values, which
  are JSON-native (column names, row numbers, sizes, type names; never a cell value).

:func:`render` is the one place that turns an entry into text: in the current locale
(pages, API answers) or, with ``english=True``, in English (the CLI, audit events, logs).
The report's ``warnings`` (:func:`market.pipeline.report.note`) are stored the same way.

Params named in :data:`LABELLED_PARAMS` hold a stored code (a PII kind, a treatment, a
generalization level); in the current locale they are shown by their translated name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from market.i18n import translate
from market.pipeline.errors import PipelineError

#: A stored reason: a param-less msgid (or old English text), or a msgid with its params.
Reason = str | dict[str, Any]


def entry(msgid: str, params: Mapping[str, Any] | None = None) -> Reason:
    """The stored form of ``msgid`` with ``params`` (a plain string when there are none)."""
    if not params:
        return msgid
    return {"msgid": msgid, "params": dict(params)}


def of_error(exc: PipelineError) -> Reason:
    """The stored form of a pipeline error's message."""
    return entry(exc.msgid, exc.params)


#: Params whose value is a stored code, and the label tables
#: (:func:`market.datasets.forms.label`) that name it in the reader's language, tried in
#: order. ``allowed`` is a comma-separated list of treatments.
LABELLED_PARAMS: dict[str, tuple[str, ...]] = {
    "pii_kind": ("pii",),
    "treatment": ("treatment",),
    "generalization": ("generalization",),
    "what": ("pii", "type"),  # a PII kind, or the column's type
    "allowed": ("treatment",),
}


def _name(kinds: tuple[str, ...], value: Any) -> Any:
    from market.datasets.forms import label

    for kind in kinds:
        named = label(kind, value)
        if named is not value:
            return str(named)
    return value


def labelled(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the codes of :data:`LABELLED_PARAMS` replaced by their names in the
    current locale. English keeps the codes (they are English words already, and API clients
    have read them so); outside an app context nothing changes."""
    from flask import has_app_context

    if not has_app_context():
        return dict(params)
    from flask_babel import get_locale

    locale = get_locale()
    if locale is None or locale.language == "en":
        return dict(params)
    out = dict(params)
    for key, kinds in LABELLED_PARAMS.items():
        value = out.get(key)
        if not isinstance(value, str):
            continue
        if key == "allowed":
            out[key] = "、".join(str(_name(kinds, v.strip())) for v in value.split(","))
        else:
            out[key] = _name(kinds, value)
    return out


def _parts(reason: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(reason, Mapping):
        params = reason.get("params")
        return str(reason.get("msgid") or ""), dict(params) if isinstance(params, Mapping) else {}
    return str(reason), {}


def render(reason: Any, *, english: bool = False) -> str:
    """``reason`` (a stored entry) as text: in the current locale, or in English.

    Never raises: an entry whose params do not fit its msgid (a damaged row) shows the msgid.
    """
    msgid, params = _parts(reason)
    try:
        if english:
            return msgid % params if params else msgid
        return translate(msgid, labelled(params)) if params else translate(msgid)
    except (KeyError, TypeError, ValueError):
        return msgid


def render_all(reasons: Iterable[Any] | None, *, english: bool = False) -> list[str]:
    """Every entry of ``reasons`` (``None`` reads as none) rendered by :func:`render`."""
    return [render(r, english=english) for r in reasons or []]
