"""Which columns hold personal data, from their headers and from a sample of their values.

Detection looks at the first :data:`SAMPLE_SIZE` non-null values of each column in the first
chunk. A column is of an identifier kind (credit code, resident ID, bank card, mobile, email)
when a high share of the sampled values validate, checksums included: :data:`SHARE` without a
header hint, :data:`HINTED_SHARE` with one. Person names, addresses and birth dates are harder
to tell from values alone, so they lean on the header: 姓名/法定代表人/联系人/name,
地址/住址/address, 出生日期/生日/birth. A string column that is none of these but has
identifiers inside its text (备注: 电话13812345678) is flagged ``embedded``.

Detection never keeps values: a :class:`Detection` holds shares and counts only.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import dates as vd
from . import kinds
from . import vectorized as vz
from .schema import TypeInfo
from .validators import find_embedded

SAMPLE_SIZE = 1000
SHARE = 0.8
HINTED_SHARE = 0.5

_HINTS_ZH: dict[str, tuple[str, ...]] = {
    kinds.RESIDENT_ID: ("身份证", "公民身份号码", "证件号"),
    kinds.MOBILE: ("手机", "移动电话", "联系电话", "电话", "联系方式"),
    kinds.BANK_CARD: ("银行卡", "卡号", "银行账号", "银行帐号", "账号", "帐号"),
    kinds.CREDIT_CODE: ("信用代码", "统一代码"),
    kinds.EMAIL: ("邮箱", "电子邮件", "邮件"),
    kinds.PERSON_NAME: (
        "姓名", "法定代表人", "法人代表", "联系人", "负责人", "经办人", "申请人", "持卡人",
        "户主", "监护人", "收件人",
    ),
    kinds.ADDRESS: ("地址", "住址", "住所", "居住地", "户籍地"),
    kinds.BIRTH_DATE: ("出生日期", "出生年月", "生日"),
    kinds.GENDER: ("性别",),
    kinds.AGE: ("年龄",),
}  # fmt: skip
_EXACT_ZH = {"法人": kinds.PERSON_NAME, "名字": kinds.PERSON_NAME, "出生": kinds.BIRTH_DATE}
_HINTS_EN: dict[str, tuple[str, ...]] = {
    kinds.ADDRESS: ("address", "addr"),  # first: "mailing address" is an address
    kinds.RESIDENT_ID: ("idcard", "idno", "idnumber", "residentid", "citizenid", "sfzh",
                        "nationalid", "identitynumber"),
    kinds.MOBILE: ("mobile", "phone", "cellphone", "telephone"),
    kinds.BANK_CARD: ("bankcard", "cardno", "cardnumber", "bankaccount", "accountno", "iban"),
    kinds.CREDIT_CODE: ("uscc", "creditcode"),
    kinds.EMAIL: ("email", "mail"),
    kinds.BIRTH_DATE: ("birth", "dob"),
    kinds.GENDER: ("gender", "sex"),
}  # fmt: skip
_EXACT_EN = {
    **dict.fromkeys(
        ("name", "fullname", "firstname", "lastname", "surname", "givenname", "contact",
         "contactname", "contactperson", "personname", "legalrepresentative", "representative",
         "legalperson", "ownername", "realname", "holdername", "cardholder"),
        kinds.PERSON_NAME,
    ),
    "age": kinds.AGE,
    "tel": kinds.MOBILE,
}  # fmt: skip
_SEPARATORS = re.compile(r"[\s_\-.()（）:：/]+")


@dataclass(frozen=True)
class Detection:
    """What detection concluded about one column. Holds no values."""

    name: str
    #: Logical type of the source values (see :mod:`market.pipeline.schema`).
    type_info: TypeInfo
    pii_kind: str | None
    #: Share of the sampled non-null values that validated as ``pii_kind``.
    share: float
    #: The identifiers are inside free text rather than the whole value.
    embedded: bool
    #: The header suggests ``hint`` (which may differ from what the values say).
    hint: str | None
    sampled: int

    @property
    def type(self) -> str:
        return self.type_info.type


def header_hint(name: str) -> str | None:
    """The PII kind a column header suggests, in Chinese or English, or None."""
    low = _SEPARATORS.sub("", name.strip().lower())
    if low in _EXACT_ZH:
        return _EXACT_ZH[low]
    if low in _EXACT_EN:
        return _EXACT_EN[low]
    for kind, words in _HINTS_ZH.items():
        if any(w in low for w in words):
            return kind
    for kind, words in _HINTS_EN.items():
        if any(w in low for w in words):
            return kind
    return None


def sample(text: pa.Array, size: int = SAMPLE_SIZE) -> pa.Array:
    values = text.drop_null()
    return values.slice(0, size) if len(values) > size else values


_ID_VALIDATORS = {
    kinds.CREDIT_CODE: lambda a, today: vz.credit_code_valid(a),
    kinds.RESIDENT_ID: vz.resident_id_valid,
    kinds.BANK_CARD: lambda a, today: vz.bank_card_valid(a),
    kinds.MOBILE: lambda a, today: vz.mobile_valid(a),
    kinds.EMAIL: lambda a, today: vz.email_valid(a),
}
#: Shapes that an identifier column has even when its check characters are wrong: used only
#: when the header names the kind, so that a badly keyed ID column is still treated as IDs.
_ID_SHAPES = {
    kinds.CREDIT_CODE: r"^[0-9A-Z]{18}$",
    kinds.RESIDENT_ID: r"^(?:[0-9]{17}[0-9X]|[0-9]{15})$",
    kinds.BANK_CARD: r"^[0-9]{12,19}$",
    kinds.MOBILE: r"^1[0-9]{10}$",
    kinds.EMAIL: r"@",
}


def detect_column(name: str, text: pa.Array, type_info: TypeInfo, today: dt.date) -> Detection:
    """Detect the PII kind of one column from its header and trimmed text values."""
    det = _detect(name, text, type_info, today)
    if det.pii_kind is None or det.embedded or type_info.native is not None:
        return det
    # Identifiers are text even when they are all digits (a mobile is not an integer).
    kind_type = {
        kinds.BIRTH_DATE: TypeInfo(kinds.DATE, compact=True),
        kinds.AGE: TypeInfo(kinds.INTEGER),
    }
    return replace(det, type_info=kind_type.get(det.pii_kind, TypeInfo(kinds.STRING)))


def _detect(name: str, text: pa.Array, type_info: TypeInfo, today: dt.date) -> Detection:
    values = sample(text)
    n = len(values)
    hint = header_hint(name)
    if n == 0:
        return Detection(name, type_info, hint if hint else None, 0.0, False, hint, 0)

    def share(mask: np.ndarray) -> float:
        return float(mask.sum()) / n

    scores: dict[str, float] = {}
    for kind, validate in _ID_VALIDATORS.items():
        scores[kind] = share(validate(vz.normalize(kind, values), today))
    best = max(scores, key=lambda k: (scores[k], k == hint))
    needed = HINTED_SHARE if best == hint else SHARE
    if scores[best] >= needed:
        return Detection(name, type_info, best, scores[best], False, hint, n)
    if hint in _ID_SHAPES:
        shaped = share(vz.matches(vz.normalize(hint, values), _ID_SHAPES[hint]))
        if shaped >= HINTED_SHARE:
            return Detection(name, type_info, hint, scores[hint], False, hint, n)

    kind, value_share = _soft_kind(values, hint, today)
    if kind is not None:
        return Detection(name, type_info, kind, value_share, False, hint, n)
    if type_info.type == kinds.STRING:
        embedded = _embedded_kind(values, today)
        if embedded is not None:
            return Detection(name, type_info, embedded[0], embedded[1], True, hint, n)
    return Detection(name, type_info, None, 0.0, False, hint, n)


def _soft_kind(values: pa.Array, hint: str | None, today: dt.date) -> tuple[str | None, float]:
    """Names, addresses, birth dates, gender and age: mostly decided by the header."""
    n = len(values)
    norm = vz.normalize(kinds.PERSON_NAME, values)
    chinese = vz.chinese_name_like(norm)
    if hint == kinds.PERSON_NAME:
        s = float((chinese | vz.latin_name_like(norm)).sum()) / n
        if s >= HINTED_SHARE:
            return kinds.PERSON_NAME, s
    elif chinese.mean() >= 0.9 and len(pc.unique(norm)) >= 0.3 * n:
        return kinds.PERSON_NAME, float(chinese.mean())

    detailed = vz.detailed_address_like(values)
    if hint == kinds.ADDRESS:
        regional = vz.to_bool(pc.is_valid(vz.region(values)))
        s = float((detailed | regional).mean())
        textual = float((~vz.matches(values, r"^[0-9.+\-]*$")).mean())
        if s >= HINTED_SHARE or textual >= SHARE:
            return kinds.ADDRESS, s
    elif detailed.mean() >= SHARE:
        return kinds.ADDRESS, float(detailed.mean())

    if hint == kinds.BIRTH_DATE:
        ok, dates = vd.parse_dates(values, compact=True)
        in_range = ok & (dates >= np.datetime64("1900-01-01")) & (dates <= np.datetime64(today))
        if in_range.mean() >= SHARE:
            return kinds.BIRTH_DATE, float(in_range.mean())

    words = vz.gender_word(values)
    if hint == kinds.GENDER and words.mean() >= SHARE:
        return kinds.GENDER, float(words.mean())
    if hint is None and words.mean() >= 0.95 and len(pc.unique(values)) <= 3:
        return kinds.GENDER, float(words.mean())

    if hint == kinds.AGE:
        ages = vz.matches(values, r"^[0-9]{1,3}$")
        if ages.mean() >= 0.9:
            return kinds.AGE, float(ages.mean())
    return None, 0.0


def _embedded_kind(values: pa.Array, today: dt.date) -> tuple[str, float] | None:
    found: Counter[str] = Counter()
    hits = 0
    for value in values.to_pylist():
        kinds_found = find_embedded(value, today)
        if kinds_found:
            hits += 1
            found.update(kinds_found)
    if not hits:
        return None
    kind = max(found, key=lambda k: (found[k], k))
    return kind, hits / len(values)
