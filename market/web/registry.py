"""Extension points for the web shell, so that each area adds its pages without editing
shared templates: navigation links and dashboard panels, per role.

An area registers in its ``views.py`` at import time::

    nav_link("datasets.catalogue", _l("Catalogue"), roles={"buyer", "operator"})

    @panel("my_datasets", roles={"department"}, title=_l("My datasets"))
    def my_datasets(user):
        return {"datasets": ...}  # rendered with templates/panels/my_datasets.html
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NavLink:
    endpoint: str
    label: Any
    roles: frozenset[str]
    order: int = 100


@dataclass(frozen=True)
class Panel:
    key: str
    title: Any
    roles: frozenset[str]
    context: Callable[[Any], dict[str, Any]]
    order: int = 100
    template: str = field(default="")


NAV: list[NavLink] = []
PANELS: dict[str, Panel] = {}


def nav_link(endpoint: str, label: Any, roles: set[str] | frozenset[str], order: int = 100) -> None:
    if not any(link.endpoint == endpoint for link in NAV):
        NAV.append(NavLink(endpoint, label, frozenset(roles), order))
        NAV.sort(key=lambda link: link.order)


def panel(key: str, roles: set[str], title: Any, order: int = 100):
    def register(fn: Callable[[Any], dict[str, Any]]):
        PANELS[key] = Panel(key, title, frozenset(roles), fn, order, f"panels/{key}.html")
        return fn

    return register


def links_for(role: str | None) -> list[NavLink]:
    return [link for link in NAV if role in link.roles]


def panels_for(role: str | None) -> list[Panel]:
    return sorted((p for p in PANELS.values() if role in p.roles), key=lambda p: p.order)


@dataclass(frozen=True)
class NavMenu:
    """A group of links shown as one dropdown in the header (``<details>``: no script needed,
    opened by click, tap, Enter or Space)."""

    key: str
    label: Any
    links: tuple[NavLink, ...]


def _menu_labels() -> dict[str, Any]:
    from flask_babel import lazy_gettext as _l

    return {
        "review": _l("Review"),
        "trading": _l("Trading"),
        "pricing": _l("Pricing"),
        "oversight": _l("Oversight"),
        "institutions": _l("Institutions"),
    }


#: Menus of the header, in order, and the links each holds (by endpoint). A link that is in
#: no menu (a new area's) stays a plain link in the header.
MENUS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("review", (
        "datasets.review_queue", "licenses.review_queue", "accounts.admissions",
        "governance.license_approvals", "governance.grading",
    )),
    ("trading", (
        "licenses.index", "licenses.settlements", "licenses.revenue", "consents.index",
        "scenarios.index", "scenarios.products",
    )),
    ("pricing", ("quotes.parameters", "quotes.revenue_caps")),
    ("oversight", (
        "audit.explorer", "audit.insights_page", "licenses.blacklist", "governance.lists",
        "agreements.report",
    )),
    ("institutions", ("accounts.organizations", "accounts.security", "agreements.index",
                      "licenses.welfare_bodies")),
)
#: Roles with at most this many links see them flat; more, and the menus group them.
MAX_FLAT_LINKS = 8


def menus_for(role: str | None) -> list[NavLink | NavMenu]:
    """The header's items for ``role``: few links stay flat; otherwise the links in no menu
    first, then the menus in :data:`MENUS` order (a menu holding one link is that link)."""
    links = links_for(role)
    if len(links) <= MAX_FLAT_LINKS:
        return list(links)
    grouped = {endpoint: key for key, endpoints in MENUS for endpoint in endpoints}
    labels = _menu_labels()
    members: dict[str, list[NavLink]] = {key: [] for key, _ in MENUS}
    for link in links:
        if link.endpoint in grouped:
            members[grouped[link.endpoint]].append(link)
    items: list[NavLink | NavMenu] = [link for link in links if link.endpoint not in grouped]
    for key, _ in MENUS:
        found = members[key]
        if len(found) == 1:
            items.append(found[0])
        elif found:
            items.append(NavMenu(key, labels[key], tuple(found)))
    return items
