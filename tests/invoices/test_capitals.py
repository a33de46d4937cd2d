"""Amounts in Chinese capitals (大写), from integer fen: the 零 rules, 整, 角 and 分."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licenses.capitals import MAX_FEN, amount_in_capitals


@pytest.mark.parametrize(
    ("fen", "expected"),
    [
        (0, "零元整"),
        (1, "壹分"),
        (5, "伍分"),
        (10, "壹角整"),
        (56, "伍角陆分"),
        (100, "壹元整"),
        (150, "壹元伍角整"),
        (1000, "壹拾元整"),  # 壹拾, not 拾
        (1050, "壹拾元零伍角整"),  # 元位是 0, 角位不是 0: one 零
        (1005, "壹拾元零伍分"),  # 角位是 0, 分位不是 0
        (32504, "叁佰贰拾伍元零肆分"),
        (140950, "壹仟肆佰零玖元伍角整"),  # a zero inside: one 零
        (168032, "壹仟陆佰捌拾元零叁角贰分"),
        (123456, "壹仟贰佰叁拾肆元伍角陆分"),
        (100100, "壹仟零壹元整"),  # two zeros in a row: one 零
        (1000500, "壹万零伍元整"),  # the next section's leading zeros
        (1500000, "壹万伍仟元整"),
        (10000000, "壹拾万元整"),  # trailing zeros of a section: no 零
        (10700053, "壹拾万柒仟元零伍角叁分"),
        (100010000, "壹佰万零壹佰元整"),
        (10000000000, "壹亿元整"),
        (10001000000, "壹亿零壹万元整"),
        (10000100000, "壹亿零壹仟元整"),  # a whole zero section: one 零, no 万
        (20100000000, "贰亿零壹佰万元整"),
        (100000000100, "壹拾亿零壹元整"),
        (1200000000000, "壹佰贰拾亿元整"),
        (100000000000000, "壹万亿元整"),
        (MAX_FEN, "玖仟玖佰玖拾玖万亿玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
    ],
)
def test_table(fen, expected):
    assert amount_in_capitals(fen) == expected


@pytest.mark.parametrize("bad", [-1, MAX_FEN + 1])
def test_out_of_range(bad):
    with pytest.raises(ValueError):
        amount_in_capitals(bad)


@pytest.mark.parametrize("bad", [1.5, "100", True, None])
def test_only_integer_fen(bad):
    with pytest.raises(TypeError):
        amount_in_capitals(bad)


_VALUE = dict(zip("零壹贰叁肆伍陆柒捌玖", range(10), strict=True))
_SMALL = {"拾": 10, "佰": 100, "仟": 1000}


def _parse(text: str) -> int:
    """Read capitals back to fen (an independent reader, for the round trip)."""
    text = text.removesuffix("整")
    yuan_text, _, rest = text.rpartition("元") if "元" in text else ("", "", text)
    fen = 0
    if "角" in rest:
        before, _, rest = rest.partition("角")
        fen += _VALUE[before[-1]] * 10
    if "分" in rest:
        fen += _VALUE[rest.removesuffix("分")[-1]]
    total = section = digit = 0
    i = 0
    while i < len(yuan_text):
        char = yuan_text[i]
        if char in _VALUE:
            digit = _VALUE[char]
        elif char in _SMALL:
            section += digit * _SMALL[char]
            digit = 0
        elif yuan_text.startswith("万亿", i):
            total += (section + digit) * 10**12
            section = digit = 0
            i += 1
        elif char == "亿":
            total += (section + digit) * 10**8
            section = digit = 0
        elif char == "万":
            total += (section + digit) * 10**4
            section = digit = 0
        i += 1
    return (total + section + digit) * 100 + fen


@given(st.integers(min_value=0, max_value=MAX_FEN))
def test_round_trip_and_no_double_zero(fen):
    text = amount_in_capitals(fen)
    assert _parse(text) == fen
    assert "零零" not in text
    assert not text.startswith("零") or fen == 0
    assert text.endswith("分") != text.endswith("整")
