"""Vocabulary shared by the pipeline modules: PII kinds, treatments, logical types."""

from __future__ import annotations

# PII kinds (the values of ``pii_kind`` in the API).
RESIDENT_ID = "resident_id"
MOBILE = "mobile"
BANK_CARD = "bank_card"
CREDIT_CODE = "credit_code"
EMAIL = "email"
PERSON_NAME = "person_name"
ADDRESS = "address"
BIRTH_DATE = "birth_date"
# Quasi-identifiers that are not personal data on their own but narrow a person down.
GENDER = "gender"
AGE = "age"

PII_KINDS = (
    RESIDENT_ID,
    MOBILE,
    BANK_CARD,
    CREDIT_CODE,
    EMAIL,
    PERSON_NAME,
    ADDRESS,
    BIRTH_DATE,
    GENDER,
    AGE,
)

#: Identifiers that single out a person or an enterprise by themselves: never published raw.
DIRECT_IDENTIFIERS = frozenset({RESIDENT_ID, MOBILE, BANK_CARD, CREDIT_CODE, EMAIL})

#: Kinds counted as quasi-identifiers for k-anonymity (when not suppressed).
QUASI_IDENTIFIER_KINDS = frozenset({BIRTH_DATE, ADDRESS, GENDER, AGE})

# Treatments (the values of ``treatment`` in the API).
PSEUDONYMIZED = "pseudonymized"
MASKED = "masked"
GENERALIZED = "generalized"
SUPPRESSED = "suppressed"
NONE = "none"
TREATMENTS = (PSEUDONYMIZED, MASKED, GENERALIZED, SUPPRESSED, NONE)

DEFAULT_TREATMENT: dict[str | None, str] = {
    CREDIT_CODE: PSEUDONYMIZED,
    RESIDENT_ID: PSEUDONYMIZED,
    BANK_CARD: PSEUDONYMIZED,
    MOBILE: PSEUDONYMIZED,
    EMAIL: PSEUDONYMIZED,
    PERSON_NAME: MASKED,
    ADDRESS: GENERALIZED,
    BIRTH_DATE: GENERALIZED,
    AGE: GENERALIZED,
    GENDER: NONE,
    None: NONE,
}

# Logical types (the values of ``type`` in the API).
STRING = "string"
INTEGER = "integer"
DECIMAL = "decimal"
DATE = "date"
DATETIME = "datetime"
BOOLEAN = "boolean"
LOGICAL_TYPES = (STRING, INTEGER, DECIMAL, DATE, DATETIME, BOOLEAN)

#: Update frequencies a department may declare, with the longest acceptable age in days.
UPDATE_FREQUENCY_DAYS = {
    "daily": 1,
    "weekly": 7,
    "monthly": 31,
    "quarterly": 92,
    "yearly": 366,
}
