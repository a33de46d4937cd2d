"""Synthetic Shanghai demo data: enterprises and the tables seven departments upload.

The names below are loaded lazily so that ``python -m market.demo.data`` runs without the
package having imported the module first.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from market.demo.data import (
        DEFAULT_ENCODINGS,
        DEMO_PASSWORDS,
        DEPARTMENT_KEYS,
        ENTITY_KEY,
        DemoCosts,
        DemoData,
        DemoDatasetMeta,
        DemoDepartment,
        DemoOrganization,
        DemoUser,
        generate,
        write_csvs,
    )
    from market.demo.errors import DemoDataError

__all__ = [
    "DEFAULT_ENCODINGS",
    "DEMO_PASSWORDS",
    "DEPARTMENT_KEYS",
    "ENTITY_KEY",
    "DemoCosts",
    "DemoData",
    "DemoDataError",
    "DemoDatasetMeta",
    "DemoDepartment",
    "DemoOrganization",
    "DemoUser",
    "generate",
    "write_csvs",
]


def __getattr__(name: str) -> Any:
    if name == "DemoDataError":
        return import_module("market.demo.errors").DemoDataError
    if name in __all__:
        return getattr(import_module("market.demo.data"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
