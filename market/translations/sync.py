"""Keep the Chinese catalogue complete: ``python -m market.translations.sync [--check]``.

Extracts every translatable string from ``market/`` (Python and Jinja), keeps the existing
translations in ``zh/LC_MESSAGES/messages.po``, fills new ones from ``pending/*.json``
(``{"English msgid": "中文"}``; one file per area, so parallel work never edits the .po at the
same time), writes the .po and compiles the .mo. With ``--check`` it changes nothing and exits
1 if a string has no translation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent
#: Packages with user-facing strings besides ``market`` (their web views and forms).
OTHER_PACKAGES = ("licenses", "sandbox", "pricing")
PO = HERE / "zh" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
METHOD_MAP = [("**.py", "python"), ("templates/**.html", "jinja2")]
#: ``N_`` marks a message in a pure package (pricing, sandbox.policy, licenses' domain code,
#: market.pipeline), which must not import Flask: it returns its argument unchanged, and the
#: app translates the message where it reaches a person (``market.i18n.translate``).
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "lazy_gettext": None,
    "_l": None,
    "N_": None,
}


def extract() -> dict[str, list[tuple[str, int]]]:
    found: dict[str, list[tuple[str, int]]] = {}
    roots = [(PACKAGE, METHOD_MAP)] + [
        (PACKAGE.parent / name, [("**.py", "python")]) for name in OTHER_PACKAGES
    ]
    for root, method_map in roots:
        if not root.is_dir():
            continue
        for filename, lineno, message, _comments, _ctx in extract_from_dir(
            str(root), method_map, keywords=KEYWORDS,
            options_map={"templates/**.html": {"extensions": "jinja2.ext.do"}},
        ):
            msgid = message if isinstance(message, str) else message[0]
            if msgid:
                found.setdefault(msgid, []).append((f"{root.name}/{filename}", lineno))
    return found


def known_translations() -> dict[str, str]:
    known: dict[str, str] = {}
    if PO.exists():
        with PO.open("rb") as fh:
            for m in read_po(fh, locale="zh"):
                if m.id and m.string:
                    known[m.id] = m.string
    for path in sorted((HERE / "pending").glob("*.json")):
        known.update(json.loads(path.read_text("utf-8")))
    return known


def missing() -> list[str]:
    known = known_translations()
    return sorted(m for m in extract() if m not in known)


def sync() -> list[str]:
    found, known = extract(), known_translations()
    catalog = Catalog(locale="zh", project="public-data-market", fuzzy=False)
    for msgid in sorted(found):
        catalog.add(msgid, known.get(msgid, ""), locations=found[msgid][:3])
    PO.parent.mkdir(parents=True, exist_ok=True)
    with PO.open("wb") as fh:
        write_po(fh, catalog, width=100, omit_header=False, sort_output=True)
    compile_mo()
    return [m for m in found if m not in known]


def compile_mo() -> None:
    """Compile the .po plus every pending/*.json translation into the .mo the app reads."""
    with PO.open("rb") as fh:
        catalog = read_po(fh, locale="zh")
    for msgid, string in known_translations().items():
        existing = catalog.get(msgid)
        if existing is None:
            catalog.add(msgid, string)
        elif not existing.string:
            # ``Catalog.add`` on a known id keeps its (empty) string: set it instead.
            existing.string = string
    with MO.open("wb") as fh:
        write_mo(fh, catalog)


def main(argv: list[str]) -> int:
    gaps = missing() if "--check" in argv else sync()
    for msgid in gaps:
        print(f"missing zh translation: {msgid!r}")
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
