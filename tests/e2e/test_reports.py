"""The monthly regulator report over the wire (gunicorn, two workers): the same month fetched
as JSON, CSV and PDF, each verified offline with the documented snippet (only
``cryptography``) — the CSV and the PDF carry their signed JSON — and the readable parts of
each file match what is signed. The HTTP p95 comes from the app's own latency metrics, merged
across the two worker processes."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
from pathlib import Path

from tests.e2e.conftest import month
from tests.pdftext import pdf_text

DOC = Path(__file__).resolve().parents[2] / "docs" / "license-verification.md"


def _verify_report():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    code = next(b for b in blocks if "def verify_report" in b)
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 (our own documentation)
    return namespace["verify_report"]


def _canon(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _flatten(f"{prefix}[{i}]", v, out)
    else:
        out[prefix] = "" if value is None else str(value)


def _one_byte_off(signed: dict) -> dict:
    text = json.dumps(signed, ensure_ascii=False)
    i = text.index('"granted": ') + len('"granted": ')
    return json.loads(text[:i] + str(int(text[i]) + 1 if text[i] != "9" else 0) + text[i + 1:])


def test_a_months_report_as_json_csv_and_pdf_verifies_offline(live):
    regulator, operator = live.api("regulator"), live.api("operator")
    keys = live.anonymous().ok("GET", "/api/v1/keys")
    verify_report = _verify_report()
    period = month()

    # Some API traffic on both workers, then the report: by pigeonhole, one of three report
    # requests is served by a worker that served one before and wrote its counts.
    for _ in range(6):
        regulator.ok("GET", "/api/v1/health")
    for _ in range(3):
        signed = regulator.ok("GET", f"/api/v1/reports/{period}")
    assert verify_report(signed, keys) is True
    assert verify_report(_one_byte_off(signed), keys) is False
    report = signed["report"]
    assert report["period"] == period
    kpis = report["kpis"]
    assert kpis["http_requests_timed"] >= 1
    assert isinstance(kpis["http_p95_ms"], int) and kpis["http_p95_ms"] >= 1
    assert kpis["datasets_listed"] >= 1  # the demo lists its datasets through the review
    # The scenario and product rows sum exactly to the totals.
    money = report["revenue"]
    for key in ("by_scenario", "by_product"):
        assert sum(r["total_fen"] for r in money[key]) == money["total_fen"]
        assert sum(r["amount_fen"] for r in report["licenses"][key]) == (
            report["licenses"]["amount_fen"])

    # CSV: the signed JSON it carries verifies, and its rows are that JSON's values.
    r = operator.get(f"/api/v1/reports/{period}", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8"))))
    assert rows[0] == ["section", "key", "value"]
    (embedded,) = [v for s, k, v in rows if (s, k) == ("signature", "signed_json")]
    from_csv = json.loads(embedded)
    assert verify_report(from_csv, keys) is True
    assert verify_report(_one_byte_off(from_csv), keys) is False
    assert ("signature", "ed25519", from_csv["signature"]) in {tuple(x) for x in rows}
    readable = {(s, k): v for s, k, v in rows[1:] if s != "signature"}
    expected: dict = {}
    for section, value in from_csv["report"].items():
        if isinstance(value, dict | list):
            flat: dict = {}
            _flatten("", value, flat)
            expected.update({(section, k): v for k, v in flat.items()})
        else:
            expected[(section, "")] = "" if value is None else str(value)
    # (A text cell that looks like a formula is written with a leading quote.)
    assert {k: v.removeprefix("'") for k, v in readable.items()} == expected

    # PDF: the signed JSON in its Subject verifies; its pages print that JSON's SHA-256,
    # signature and key id.
    r = regulator.get(f"/api/v1/reports/{period}", params={"format": "pdf"})
    assert r.status_code == 200 and r.content.startswith(b"%PDF-")
    subject = re.search(rb"/Subject \(market-signed-report:([A-Za-z0-9+/=]+)\)", r.content)
    assert subject, "the PDF carries its signed JSON"
    from_pdf = json.loads(base64.b64decode(subject.group(1)))
    assert verify_report(from_pdf, keys) is True
    assert verify_report(_one_byte_off(from_pdf), keys) is False
    text = pdf_text(r.content).replace("\n", "")
    assert hashlib.sha256(_canon(from_pdf["report"])).hexdigest() in text
    assert from_pdf["signature"] in text and from_pdf["public_key_id"] in text
