"""Amounts in Chinese capitals (大写金额), as written on invoices and bank forms.

Written from integer fen, never from a float, following the rules of 《支付结算办法》
(附一《正确填写票据和结算凭证的基本规定》): one 零 for any run of zeros inside the number, none
for trailing zeros of a section, 壹拾 (not 拾) at the start, 整 after 元 (and after 角) when
there are no 分. Pure: no Flask, no database.
"""

from __future__ import annotations

DIGITS = "零壹贰叁肆伍陆柒捌玖"
#: Within a four-digit section: units, tens, hundreds, thousands.
SMALL_UNITS = ("", "拾", "佰", "仟")
#: The section units: 10^0, 10^4, 10^8, 10^12.
SECTION_UNITS = ("", "万", "亿", "万亿")
MAX_FEN = 10 ** (4 * len(SECTION_UNITS)) * 100 - 1


def _integer_capitals(value: int) -> str:
    """``value`` > 0 in capitals, without 元."""
    digits = str(value)
    out: list[str] = []
    zero_pending = False
    length = len(digits)
    for index, char in enumerate(digits):
        position = length - 1 - index  # 0 = units
        digit = int(char)
        if digit == 0:
            if out:
                zero_pending = True
        else:
            if zero_pending:
                out.append("零")
                zero_pending = False
            out.append(DIGITS[digit] + SMALL_UNITS[position % 4])
        if position % 4 == 0 and position > 0:
            section = digits[max(0, index - 3) : index + 1]
            if int(section):
                out.append(SECTION_UNITS[position // 4])
                # A section's own trailing zeros need no 零 (壹拾万柒仟); the next section's
                # leading zeros set it again (壹万零伍).
                zero_pending = False
    return "".join(out)


def amount_in_capitals(fen: int) -> str:
    """``fen`` (integer fen, ≥ 0) as a Chinese capital amount, e.g. 123456 → 壹仟贰佰叁拾肆元伍角陆分.

    Raises TypeError unless ``fen`` is an int (bool excluded), ValueError if it is negative
    or beyond 万亿 (10^16 yuan).
    """
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError("amounts are integer fen")
    if fen < 0:
        raise ValueError("amounts in capitals are never negative")
    if fen > MAX_FEN:
        raise ValueError("amount too large for capitals")
    yuan, rest = divmod(fen, 100)
    jiao, fen_digit = divmod(rest, 10)
    if yuan == 0 and rest == 0:
        return "零元整"
    text = _integer_capitals(yuan) + "元" if yuan else ""
    if jiao:
        # 元位是 0 而角位不是 0: one 零 between (e.g. 壹拾元零伍角).
        if yuan and yuan % 10 == 0:
            text += "零"
        text += DIGITS[jiao] + "角"
    if fen_digit:
        # 角位是 0 而分位不是 0: 零 before the 分 (e.g. 叁佰贰拾伍元零肆分).
        if yuan and not jiao:
            text += "零"
        text += DIGITS[fen_digit] + "分"
    else:
        text += "整"
    return text
