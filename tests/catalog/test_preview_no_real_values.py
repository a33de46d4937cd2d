"""#13.8: the synthetic preview contains no real value.

A conditional loans file goes through the real upload pipeline (profiles and all); then the
preview (50 rows) is scanned for every value of the source. Rule under test: a real value may
appear only if its column has a small closed domain (at most ``SMALL_DOMAIN`` distinct
values) AND the value belongs to a public vocabulary the platform ships (Shanghai's
districts, genders, the GB/T 4754 industry sections); everything else is generated.
"""

from __future__ import annotations

import csv
import io
import random
from decimal import Decimal, InvalidOperation

import pytest

from market.datasets.preview import SMALL_DOMAIN
from market.pipeline.domains import public_vocabulary
from tests.accounts.test_web import csrf_from
from tests.conftest import valid_uscc

JSON = {"Accept": "application/json"}
DISTRICTS = ("浦东新区", "闵行区", "徐汇区")
INDUSTRIES = ("制造业", "批发和零售业", "信息传输、软件和信息技术服务业")


def loans_csv(seed: int = 7) -> tuple[bytes, dict[str, list[str]]]:
    rng = random.Random(seed)
    header = ["统一社会信用代码", "企业名称", "所属区", "行业", "贷款类型", "贷款余额", "员工人数",
              "放款日期"]
    names = [f"上海{w}{i}号实业有限公司" for i, w in enumerate("东南西北中华申浦江海" * 3)]
    rows = []
    for i in range(240):
        firm = i % len(names)  # each firm has 8 loans: the name column is a dimension
        rows.append([
            valid_uscc(800_000 + firm),
            names[firm],
            DISTRICTS[firm % 3],
            INDUSTRIES[firm % 3],
            ("经营贷", "科创贷")[i % 2],  # small but NOT a public domain
            f"{rng.randint(1_000, 9_999_999) / 100:.2f}" if i else "1.23",  # the minimum: unique
            str(rng.randint(3, 900)),
            f"20{rng.randint(15, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        ])
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    columns = {name: [row[i] for row in rows] for i, name in enumerate(header)}
    return buf.getvalue().encode("utf-8"), columns


@pytest.fixture
def department(member, login):
    user = member("department")
    login(user)
    return user


def _same(cell, raw: str) -> bool:
    text = str(cell)
    if text == raw or (len(raw) >= 4 and raw in text):
        return True
    try:
        return Decimal(text) == Decimal(raw)
    except (InvalidOperation, ValueError):
        return False


def test_no_real_value_in_the_preview(client, department):
    data, source = loans_csv()
    form = {
        "csrf_token": csrf_from(client.get("/datasets/upload").get_data(as_text=True)),
        "title": "企业贷款余额",
        "description": "本市企业贷款余额。",
        "category": "market_supervision",
        "open_grade": "conditional",
        "entity_key": "统一社会信用代码",
        "update_frequency": "monthly",
        "cost_collection": "1000",
        "cost_processing": "1000",
        "cost_storage_monthly": "10",
        "file": (io.BytesIO(data), "loans.csv"),
    }
    r = client.post("/datasets/upload", data=form, headers=JSON,
                    content_type="multipart/form-data")
    assert r.status_code == 202, r.get_json()
    dataset_id = r.get_json()["id"]
    body = client.get(f"/api/v1/datasets/{dataset_id}/preview", query_string={"rows": 50})
    preview = body.get_json()
    assert preview["synthetic"] is True and len(preview["rows"]) == 50
    shown = {c["name"] for c in preview["columns"]}
    assert {"企业名称", "贷款余额", "放款日期", "所属区"} <= shown

    public = public_vocabulary()
    for column, raw_values in source.items():
        if column not in shown:
            continue
        distinct = set(raw_values)
        cells = [row[column] for row in preview["rows"] if row[column] is not None]
        assert cells, column
        for cell in cells:
            leaked = [raw for raw in distinct if _same(cell, raw)]
            if len(distinct) <= SMALL_DOMAIN:
                # A small closed domain: only values of a public vocabulary may appear.
                assert all(raw in public for raw in leaked), (column, cell)
            else:
                assert not leaked, (column, cell, leaked[:3])
    # The public small domain is still useful: districts do appear.
    assert {row["所属区"] for row in preview["rows"]} & set(DISTRICTS)
    # The non-public small domain is generated, not copied.
    assert not {row["贷款类型"] for row in preview["rows"]} & {"经营贷", "科创贷"}
