import datetime as dt

import pytest

from market.idcodes import (
    is_valid_resident_id,
    is_valid_uscc,
    resident_id_birth_date,
    resident_id_check_char,
    uscc_check_char,
)


@pytest.mark.parametrize(
    "code, valid",
    [
        ("91350100M000100Y43", True),  # published example code
        ("91310000MA1FL8XQ37", True),
        ("91310000MA1FL8XQ38", False),  # wrong check character
        ("91310000MA1FL8XQ3", False),  # too short
        ("91310000MA1FL8XQ3I", False),  # I is not in the alphabet
        ("91310000ma1fl8xq37", True),  # case-insensitive
        ("", False),
    ],
)
def test_uscc(code, valid):
    assert is_valid_uscc(code) is valid


def test_uscc_check_char_rejects_foreign_characters():
    with pytest.raises(ValueError):
        uscc_check_char("9131000OMA1FL8XQ3")  # letter O


@pytest.mark.parametrize(
    "rid, valid",
    [
        ("11010519491231002X", True),  # the standard's example
        ("110105194912310021", False),  # wrong check character
        ("110105194902300025", False),  # 30 February
        ("110105209912310028", False),  # born in the future
        ("110105491231002", True),  # legacy 15-digit
        ("11010549123100A", False),
        ("1101051949123100", False),
    ],
)
def test_resident_id(rid, valid):
    assert is_valid_resident_id(rid, today=dt.date(2026, 11, 21)) is valid


def test_resident_id_helpers():
    assert resident_id_check_char("11010519491231002") == "X"
    assert resident_id_birth_date("11010519491231002X") == dt.date(1949, 12, 31)
    assert resident_id_birth_date("110105491231002") == dt.date(1949, 12, 31)
