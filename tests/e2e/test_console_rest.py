"""Over gunicorn: the operator's filtered audit export read to its last byte (and audited),
and the invoice PDF downloaded through the API by whoever may and refused to the others."""

from __future__ import annotations

from tests.e2e.test_flows import buy, open_dataset
from tests.e2e.test_streams import read_csv


def test_the_operator_reads_the_filtered_audit_export_to_its_end(live):
    operator = live.api("operator")
    verified = operator.ok("GET", "/api/v1/audit/verify")
    r = operator.get("/api/v1/audit/export.csv", params={"type": "dataset"})
    rows = read_csv(r)  # complete: no error line, the chunked transfer ended properly
    assert rows[0][:3] == ["seq", "at", "type"]
    assert len(rows) > 1 and all(row[2].startswith("dataset") for row in rows[1:])
    seqs = [int(row[0]) for row in rows[1:]]
    assert seqs == sorted(seqs) and seqs[-1] <= verified["events"] + 50
    # The export itself is in the log, with its filters (committed before the body streamed).
    exported = read_csv(operator.get("/api/v1/audit/export.csv", params={"type": "audit.exported"}))
    assert any('"type": "dataset"' in row[6] and '"operator"' in row[3] for row in exported[1:])
    # A buyer has no export.
    assert live.api("buyer").get("/api/v1/audit/export.csv").status_code == 403


def test_the_invoice_pdf_downloads_through_the_api(live):
    buyer = live.api("buyer2")
    lic = buy(live, "buyer2", open_dataset(live)["id"])
    pay = buyer.ok("POST", f"/api/v1/licenses/{lic['id']}/payments", json={"provider": "invoice"})
    path = f"/api/v1/licenses/{lic['id']}/invoice.pdf"
    for who in ("buyer2", "operator", "regulator"):
        r = live.api(who).get(path, headers={"Accept": "application/pdf"})
        assert r.status_code == 200, (who, r.text[:300])
        assert r.headers["Content-Type"] == "application/pdf"
        assert r.headers["Content-Disposition"] == (
            f'attachment; filename="{pay["invoice_number"]}.pdf"'
        )
        assert r.content.startswith(b"%PDF-") and r.content.rstrip().endswith(b"%%EOF")
        assert int(r.headers["Content-Length"]) == len(r.content)
    for who in ("buyer", "department"):
        assert live.api(who).get(path).status_code == 404
    assert live.anonymous().get(path).status_code == 401
