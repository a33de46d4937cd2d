"""Typed errors of the demo-data generator."""

from __future__ import annotations


class DemoDataError(ValueError):
    """The generator was asked for something it cannot produce (bad size, key or encoding)."""
