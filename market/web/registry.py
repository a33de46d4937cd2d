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
