"""Deterministic test data for the pipeline: valid identifiers and realistic rows."""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

from market.idcodes import USCC_ALPHABET, resident_id_check_char, uscc_check_char

HEADER = [
    "统一社会信用代码", "单位名称", "姓名", "身份证号", "性别", "出生日期", "手机号",
    "银行卡号", "电子邮箱", "住址", "缴费基数", "缴费月数", "参保日期", "备注",
]  # fmt: skip
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华"
DISTRICTS = {"310115": "浦东新区", "310104": "徐汇区", "310105": "长宁区", "310106": "静安区"}
ROADS = ["张江路", "南京西路", "淮海中路", "四平路"]


def resident_id(region: str, born: dt.date, seq: int) -> str:
    body = f"{region}{born:%Y%m%d}{seq:03d}"
    return body + resident_id_check_char(body)


def credit_code(body_tail: str) -> str:
    body = ("91310000" + body_tail)[:17]
    return body + uscc_check_char(body)


def luhn_complete(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def rows(n: int, seed: int = 1, companies: int = 3) -> list[list[str]]:
    """``n`` realistic rows for :data:`HEADER`, with consistent IDs, births and genders."""
    rng = random.Random(seed)
    codes = [
        credit_code("".join(rng.choice(USCC_ALPHABET) for _ in range(9))) for _ in range(companies)
    ]
    out = []
    for i in range(n):
        region = rng.choice(list(DISTRICTS))
        born = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randrange(0, 40 * 365))
        seq = rng.randrange(0, 1000)
        rid = resident_id(region, born, seq)
        company = i % companies
        out.append(
            [
                codes[company],
                f"上海测试{company}有限公司",
                rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(["", rng.choice(GIVEN)]),
                rid,
                "男" if seq % 2 else "女",
                born.isoformat(),
                f"13{rng.randrange(0, 10)}{rng.randrange(0, 10**8):08d}",
                luhn_complete(f"622202{rng.randrange(0, 10**12):012d}"),
                f"user{i}@example.com",
                f"上海市{DISTRICTS[region]}{rng.choice(ROADS)}{rng.randrange(1, 999)}号{rng.randrange(1, 30)}01室",
                f"{rng.randrange(3000, 30000)}.{rng.randrange(0, 100):02d}",
                str(rng.randrange(1, 360)),
                (dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(0, 365))).isoformat(),
                rng.choice(["", "按时缴费", "补缴"]),
            ]
        )
    return out


def write_csv(
    path: Path, header: list[str], data: list[list[str]], encoding: str = "utf-8"
) -> Path:
    with open(path, "w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(data)
    return path
