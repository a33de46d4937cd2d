"""Every streamed (CSV) endpoint, read to its last byte through gunicorn.

The Flask test client runs a streamed body inside the request; a real server runs it after
``after_request`` has committed and the session is gone, which is where these broke.
"""

from __future__ import annotations

import csv
import io

import requests

from tests.e2e.conftest import month


def read_csv(r: requests.Response) -> list[list[str]]:
    assert r.status_code == 200, r.text[:800]
    assert r.headers["Content-Type"].startswith("text/csv")
    text = r.content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows and not rows[-1][0].startswith("#"), "the stream ended with an error line"
    return rows


def test_audit_export_streams_every_event(live):
    regulator = live.api("regulator")
    verified = regulator.ok("GET", "/api/v1/audit/verify")
    r = regulator.get("/api/v1/audit/export.csv")
    rows = read_csv(r)
    assert rows[0][:3] == ["seq", "at", "type"]
    seqs = [int(row[0]) for row in rows[1:]]
    # Every event up to the head verified just before (more may have been appended since).
    assert seqs[: verified["events"]] == list(range(1, verified["events"] + 1))
    assert rows[verified["events"]][8] == verified["head"]


def test_audit_export_filtered_streams(live):
    r = live.api("regulator").get("/api/v1/audit/export.csv", params={"type": "dataset"})
    rows = read_csv(r)
    assert len(rows) > 1 and all(row[2].startswith("dataset") for row in rows[1:])


def test_revenue_statements_csv_streams(live):
    for role in ("operator", "regulator", "department"):
        r = live.api(role).get("/api/v1/revenue/statements.csv", params={"period": month()})
        rows = read_csv(r)
        assert rows[0][:4] == ["period", "department_id", "department", "line"]
        lines = {row[3] for row in rows[1:]}
        assert {"opening_balance", "closing_balance"} <= lines, (role, lines)


def test_statements_format_csv_streams(live):
    r = live.api("operator").get("/api/v1/revenue/statements",
                                 params={"period": month(), "format": "csv"})
    read_csv(r)
