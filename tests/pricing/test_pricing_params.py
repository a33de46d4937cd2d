"""Pricing parameters: JSON round trip and validation that names the field."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from pricing import InvalidParameters, PricingParameters, Purpose

DEFAULT = PricingParameters.default()


def test_default_round_trips_through_json():
    text = json.dumps(DEFAULT.to_dict())
    assert PricingParameters.from_dict(json.loads(text)) == DEFAULT


def test_to_dict_is_json_safe_with_decimals_as_strings():
    data = DEFAULT.to_dict()
    assert data["reasonable_return"] == "0.08"
    assert data["duration_exponent"] == "0.8"
    assert data["purpose_coefficients"] == {
        "public_welfare": "0",
        "research": "0.3",
        "internal_risk_control": "0.7",
        "commercial_product": "1",
    }
    assert data["bundle_discount_brackets"][1] == {"from_fen": 1_000_000, "rate": "0.03"}
    assert data["default_ceiling_fen"] == 20_000_000

    def no_floats(value):
        if isinstance(value, dict):
            return all(no_floats(v) for v in value.values())
        if isinstance(value, list):
            return all(no_floats(v) for v in value)
        return not isinstance(value, float)

    assert no_floats(data)


def test_updated_applies_partial_changes():
    changed = DEFAULT.updated({"version": 2, "category_coefficients": {"tax": "2"}})
    assert changed.version == 2
    assert changed.category_coefficient("tax") == Decimal(2)
    assert changed.category_coefficient("judicial") == DEFAULT.default_category_coefficient
    assert changed.duration_exponent == DEFAULT.duration_exponent


def test_optional_fields_may_be_omitted():
    data = DEFAULT.to_dict()
    del data["revenue_caps_fen"], data["default_revenue_cap_fen"]
    loaded = PricingParameters.from_dict(data)
    assert loaded.revenue_caps_fen == {} and loaded.default_revenue_cap_fen is None


def test_purpose_keys_are_purposes():
    assert set(DEFAULT.purpose_coefficients) == set(Purpose)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"version": 0}, "version"),
        ({"reasonable_return": 0.08}, "reasonable_return"),
        ({"reasonable_return": "-0.1"}, "reasonable_return"),
        ({"reasonable_return": "abc"}, "reasonable_return"),
        ({"reasonable_return": "NaN"}, "reasonable_return"),
        ({"expected_licenses": 0}, "expected_licenses"),
        ({"horizon_months": "36"}, "horizon_months"),
        ({"quality_floor": "100"}, "quality_floor"),
        ({"quality_coefficient_at_floor": "0"}, "quality_coefficient_at_floor"),
        ({"quality_coefficient_at_max": "0.5"}, "quality_coefficient_at_max"),
        ({"quality_exponent": "0"}, "quality_exponent"),
        ({"category_coefficients": {"tax": "0"}}, "category_coefficients.tax"),
        ({"category_coefficients": {"tax": "1.12345678901"}}, "category_coefficients.tax"),
        ({"category_coefficients": ["tax"]}, "category_coefficients"),
        ({"category_ceilings_fen": {"tax": 0}}, "category_ceilings_fen.tax"),
        ({"category_ceilings_fen": {"tax": "100"}}, "category_ceilings_fen.tax"),
        ({"default_ceiling_fen": -5}, "default_ceiling_fen"),
        (
            {"category_coefficients": {"ecology_environment": "1"}},
            "category_coefficients.ecology_environment",
        ),
        ({"category_ceilings_fen": {"court": 5}}, "category_ceilings_fen.court"),
        ({"revenue_caps_fen": {"other": 5}}, "revenue_caps_fen.other"),
        ({"category_query_ceilings_fen": {"tax": 0}}, "category_query_ceilings_fen.tax"),
        ({"category_query_ceilings_fen": {"x": 5}}, "category_query_ceilings_fen.x"),
        ({"default_query_ceiling_fen": 0}, "default_query_ceiling_fen"),
        ({"scope_shares": {"columns": "0.5", "duration": "0.5", "quota": "0.5"}}, "scope_shares"),
        (
            {"scope_shares": {"columns": "0", "duration": "0.5", "quota": "0.5"}},
            "scope_shares.columns",
        ),
        ({"scope_shares": {"columns": "0.5", "duration": "0.5"}}, "scope_shares.quota"),
        (
            {"scope_shares": {"columns": "0.5", "duration": "0.2", "quota": "0.2", "x": "0.1"}},
            "scope_shares.x",
        ),
        ({"over_cap_reduction": "1.5"}, "over_cap_reduction"),
        ({"over_cap_reduction": "-0.1"}, "over_cap_reduction"),
        ({"duration_exponent": "1"}, "duration_exponent"),
        ({"duration_exponent": "1.2"}, "duration_exponent"),
        ({"quota_exponent": "0"}, "quota_exponent"),
        ({"duration_reference_months": 61}, "duration_reference_months"),
        ({"quota_cap": 0}, "quota_cap"),
        (
            {
                "purpose_coefficients": {
                    "public_welfare": "0.1",
                    "research": "0.3",
                    "internal_risk_control": "0.7",
                    "commercial_product": "1",
                }
            },
            "purpose_coefficients.public_welfare",
        ),
        (
            {
                "purpose_coefficients": {
                    "public_welfare": "0",
                    "research": "0.8",
                    "internal_risk_control": "0.7",
                    "commercial_product": "1",
                }
            },
            "purpose_coefficients.internal_risk_control",
        ),
        (
            {
                "purpose_coefficients": {
                    "public_welfare": "0",
                    "research": "0.3",
                    "commercial_product": "1",
                }
            },
            "purpose_coefficients.internal_risk_control",
        ),
        (
            {
                "purpose_coefficients": {
                    "public_welfare": "0",
                    "research": "0.3",
                    "internal_risk_control": "0.7",
                    "commercial_product": "1",
                    "resale": "2",
                }
            },
            "purpose_coefficients.resale",
        ),
        (
            {
                "bundle_discount_brackets": [
                    {"from_fen": 0, "rate": "0.1"},
                    {"from_fen": 100, "rate": "0.05"},
                ]
            },
            "bundle_discount_brackets[1].rate",
        ),
        (
            {
                "bundle_discount_brackets": [
                    {"from_fen": 100, "rate": "0"},
                    {"from_fen": 100, "rate": "0.05"},
                ]
            },
            "bundle_discount_brackets[1].from_fen",
        ),
        (
            {"bundle_discount_brackets": [{"from_fen": 0, "rate": "1"}]},
            "bundle_discount_brackets[0].rate",
        ),
        ({"bundle_discount_brackets": [{"from_fen": 0}]}, "bundle_discount_brackets[0]"),
        (
            {"bundle_discount_brackets": [{"from_fen": 0, "rate": "0", "all_units": True}]},
            "bundle_discount_brackets[0].all_units",
        ),
        ({"bundle_discount_brackets": "0.1"}, "bundle_discount_brackets"),
        ({"revenue_caps_fen": {"tax": 0}}, "revenue_caps_fen.tax"),
        ({"exclusivity_premium": "2"}, "exclusivity_premium"),
    ],
)
def test_invalid_parameters_name_the_field(changes, field):
    with pytest.raises(InvalidParameters) as err:
        DEFAULT.updated(changes)
    assert err.value.field == field
    assert err.value.message
    assert str(err.value).startswith(field)


def test_missing_field_is_named():
    data = DEFAULT.to_dict()
    del data["quota_cap"]
    with pytest.raises(InvalidParameters) as err:
        PricingParameters.from_dict(data)
    assert (err.value.field, err.value.message) == ("quota_cap", "is required")


def test_non_object_is_rejected():
    with pytest.raises(InvalidParameters) as err:
        PricingParameters.from_dict([])  # type: ignore[arg-type]
    assert err.value.field == "parameters"


def test_an_unknown_category_key_is_named_never_defaulted():
    from pricing import CATEGORIES, InvalidParameters

    with pytest.raises(InvalidParameters) as err:
        PricingParameters.default().updated({"category_coefficients": {"ecology_environment": "2"}})
    assert err.value.field == "category_coefficients.ecology_environment"
    assert err.value.params["key"] == "ecology_environment"
    assert "ecology_environment" in err.value.to_errors()[err.value.field][0]
    # Every category of the vocabulary has its own coefficient in the defaults, so none of the
    # demo categories falls back to the default silently.
    assert set(PricingParameters.default().category_coefficients) == set(CATEGORIES)


def test_legacy_parameter_versions_upgrade_to_the_vocabulary():
    from pricing import upgrade_legacy

    stored = PricingParameters.default().to_dict()
    stored["category_coefficients"] = {"ecology_environment": "0.9", "tax": "1.5"}
    stored["scarcity_min"] = "0.8"
    upgraded = upgrade_legacy(stored)
    assert upgraded["category_coefficients"] == {"environment": "0.9", "tax": "1.5"}
    assert "scarcity_min" not in upgraded
    PricingParameters.from_dict(upgraded)
