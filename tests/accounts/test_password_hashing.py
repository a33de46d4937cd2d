"""argon2 parameters: production keeps argon2-cffi's RFC 9106 profile; only a test app that
asks for it (``TESTING`` and ``MARKET_TEST_CHEAP_PASSWORD_HASHING``) hashes cheaply."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from market.accounts import services


def test_production_parameters_are_argon2_cffi_defaults():
    default = PasswordHasher()
    assert services.PRODUCTION_HASHER_PARAMS == {
        "time_cost": default.time_cost,
        "memory_cost": default.memory_cost,
        "parallelism": default.parallelism,
    }
    assert services.PRODUCTION_HASHER_PARAMS["time_cost"] >= 3
    assert services.PRODUCTION_HASHER_PARAMS["memory_cost"] >= 65536


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"TESTING": False, "MARKET_TEST_CHEAP_PASSWORD_HASHING": True},
        {"TESTING": True},
        {"TESTING": True, "MARKET_TEST_CHEAP_PASSWORD_HASHING": False},
    ],
)
def test_only_a_test_app_that_asks_gets_cheap_hashing(config):
    assert services.password_hasher_params(config) == services.PRODUCTION_HASHER_PARAMS


def test_test_app_hashes_cheaply():
    config = {"TESTING": True, "MARKET_TEST_CHEAP_PASSWORD_HASHING": True}
    assert services.password_hasher_params(config) == services.TEST_HASHER_PARAMS


def test_a_production_app_keeps_the_production_hasher(tmp_path, monkeypatch):
    """An app built the way `market serve` builds it (no TESTING), even one whose config
    carries the test key, leaves the production hasher in place and hashes at full cost."""
    from market import create_app

    production = PasswordHasher(**services.PRODUCTION_HASHER_PARAMS)
    monkeypatch.setattr(services, "_hasher", production)
    monkeypatch.setenv("MARKET_TEST_CHEAP_PASSWORD_HASHING", "1")
    create_app({"INSTANCE_PATH": str(tmp_path), "MARKET_TEST_CHEAP_PASSWORD_HASHING": True})
    assert services._hasher is production
    p = services.PRODUCTION_HASHER_PARAMS
    prefix = f"$argon2id$v=19$m={p['memory_cost']},t={p['time_cost']},p={p['parallelism']}$"
    assert services.hash_password("correct-horse-battery").startswith(prefix)


def test_the_module_starts_with_the_production_hasher():
    p = services.PRODUCTION_HASHER_PARAMS
    h = services._PRODUCTION_HASHER
    assert (h.time_cost, h.memory_cost, h.parallelism) == (
        p["time_cost"], p["memory_cost"], p["parallelism"])
