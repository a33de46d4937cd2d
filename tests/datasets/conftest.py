"""Fixtures for publication tests: an isolated data folder, CSV builders with known PII."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from market.idcodes import resident_id_check_char, uscc_check_char


def uscc(n: int) -> str:
    body = f"91310000{n:09d}"[:17]
    return body + uscc_check_char(body)


def resident_id(n: int, birth: str = "19800101", region: str = "310101") -> str:
    body = f"{region}{birth}{n % 1000:03d}"
    return body + resident_id_check_char(body)


SURNAMES = "王李张刘陈杨黄赵吴周"
GIVEN = ["伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "军"]
DISTRICTS = ["浦东新区", "徐汇区", "静安区", "黄浦区"]


def sample_rows(n: int = 60) -> list[dict[str, str]]:
    """Enterprise rows with valid identifiers of every kind the pipeline detects."""
    rows = []
    for i in range(n):
        district = DISTRICTS[i % len(DISTRICTS)]
        rows.append(
            {
                "统一社会信用代码": uscc(500 + i),
                "法定代表人": SURNAMES[i % 10] + GIVEN[(i // 10) % 10] + GIVEN[(i * 7) % 10],
                "法定代表人身份证号": resident_id(i, birth=f"19{60 + i % 30:02d}0{1 + i % 9}15"),
                "联系电话": f"139{(i * 7919) % 100000000:08d}",
                "注册地址": f"上海市{district}世纪大道{100 + i}号{i % 20 + 1}楼",
                "所属区": district,
                "行业": ["制造业", "批发和零售业", "信息技术"][i % 3],
                "纳税额(元)": f"{1000 + (i * 37) % 5000}.{i % 100:02d}",
                "所属期": f"2025-{1 + i % 12:02d}",
            }
        )
    return rows


def csv_bytes(rows: list[dict[str, str]], encoding: str = "utf-8", newline: str = "\n") -> bytes:
    header = list(rows[0])
    lines = [",".join(header)] + [",".join(r[h] for h in header) for r in rows]
    return (newline.join(lines) + newline).encode(encoding)


def metadata(**overrides) -> dict:
    base = {
        "title": "企业登记注册信息",
        "description": "测试",
        "category": "enterprise_registry",
        "open_grade": "conditional",
        "confidential": False,
        "entity_key": "统一社会信用代码",
        "update_frequency": "monthly",
        "costs": {"collection": 100_000, "processing": 50_000, "storage_monthly": 1_000},
        "k_min": 2,
    }
    base.update(overrides)
    return base


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    """These tests create many users; hashing strength is tested in tests/accounts."""
    from argon2 import PasswordHasher

    from market.accounts import services

    monkeypatch.setattr(services, "_hasher", PasswordHasher(time_cost=1, memory_cost=64,
                                                            parallelism=1))


@pytest.fixture
def data_dir(app, tmp_path) -> Path:
    """A data folder of this test's own, so that scans and residue checks see only it."""
    path = tmp_path / "data"
    path.mkdir()
    old = app.config["MARKET_DATA_DIR"]
    app.config["MARKET_DATA_DIR"] = str(path)
    app.extensions.pop("market.storage", None)
    yield path
    app.config["MARKET_DATA_DIR"] = old
    app.extensions.pop("market.storage", None)


def multipart(parts: list[tuple[str, object]]) -> tuple[bytes, str]:
    """Encode ``parts`` in this order: ``(name, text)`` or ``(name, (bytes, filename))``.

    Built in memory: the test client would spool a large body to the system temp dir.
    """
    boundary = "----market-test-boundary-7d1c"
    out = io.BytesIO()
    for name, value in parts:
        out.write(f"--{boundary}\r\n".encode())
        if isinstance(value, tuple):
            content, filename = value
            out.write(
                f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n".encode()
            )
            out.write(content)
        else:
            out.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
            out.write(str(value).encode("utf-8"))
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def upload(client, data_dir) -> Callable:
    """``upload(headers, content, filename, meta=..., metadata_first=True)`` → response."""

    def post(headers, content: bytes | None, filename: str = "data.csv", meta: dict | None = None,
             *, metadata_first: bool = True, raw_metadata: str | None = None,
             url: str = "/api/v1/datasets"):
        meta_text = raw_metadata if raw_metadata is not None else json.dumps(
            meta if meta is not None else metadata(), ensure_ascii=False)
        parts: list[tuple[str, object]] = [("metadata", meta_text)]
        if content is not None:
            parts.append(("file", (content, filename)))
        if not metadata_first:
            parts.reverse()
        body, content_type = multipart(parts)
        return client.post(url, data=body, headers=headers, content_type=content_type)

    return post


def residue(data_dir: Path) -> list[Path]:
    """Raw or partial files left in the data folder (only final Parquet may remain)."""
    return [p for p in data_dir.rglob("*") if p.is_file() and not (
        p.suffix == ".parquet" and not p.name.startswith("."))]


def events(subject_id: int | None = None, prefix: str = "dataset.") -> list:
    """Audit events about datasets (optionally one dataset), oldest first."""
    import sqlalchemy as sa

    from market.audit.models import AuditEvent
    from market.extensions import db

    stmt = sa.select(AuditEvent).where(AuditEvent.type.startswith(prefix)).order_by(AuditEvent.seq)
    if subject_id is not None:
        stmt = stmt.where(AuditEvent.subject_type == "dataset",
                          AuditEvent.subject_id == str(subject_id))
    return list(db.session.scalars(stmt))


def event_types(subject_id: int) -> list[str]:
    return [e.type for e in events(subject_id)]


@pytest.fixture
def department(as_role):
    """(user, headers) of a fresh department."""
    return as_role("department")


@pytest.fixture
def operator(as_role):
    return as_role("operator")


@pytest.fixture
def published(upload, department, client):
    """``published(content=None, **meta)`` → dataset id, processed and pending review."""

    def make(content: bytes | None = None, filename: str = "data.csv", headers=None, **meta):
        r = upload(headers or department[1], content or csv_bytes(sample_rows()), filename,
                   metadata(**meta))
        assert r.status_code == 202, r.get_json()
        assert r.get_json()["status"] == "pending_review", r.get_json()
        return r.get_json()["id"]

    return make
