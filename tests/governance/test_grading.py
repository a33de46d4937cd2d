"""Data grading (GB/T 43697-2024): core is refused like confidential data, important data gets
the stricter privacy defaults and only opens conditionally; the level shows in the API, the
catalogue facets and the regulator's page."""

from __future__ import annotations

from decimal import Decimal

import pytest

from market.governance import grading
from tests.datasets.conftest import csv_bytes, event_types, metadata, residue, sample_rows


@pytest.mark.parametrize(
    ("level", "dp_required", "epsilon_budget", "k_min"),
    [("general", False, None, None), ("important", True, Decimal("1.0"), 20)],
)
def test_privacy_defaults(level, dp_required, epsilon_budget, k_min):
    got = grading.privacy_defaults(level)
    assert got["dp_required"] is dp_required
    assert got["epsilon_budget"] == epsilon_budget
    assert got["k_min"] == k_min
    got["k_min"] = 1  # a copy: callers cannot loosen the module's defaults
    assert grading.privacy_defaults(level)["k_min"] == k_min


def test_important_defaults_are_stricter_than_general():
    important = grading.privacy_defaults("important")
    assert important["epsilon_per_query"] < important["epsilon_budget"] <= Decimal(1)
    assert important["delta"] < Decimal("1e-6")


@pytest.mark.parametrize("level", ["core", "secret", ""])
def test_privacy_defaults_refuse_core_and_unknown(level):
    with pytest.raises(ValueError):
        grading.privacy_defaults(level)


def test_core_upload_is_refused_and_nothing_is_stored(upload, department, data_dir):
    r = upload(department[1], csv_bytes(sample_rows()), meta=metadata(security_level="core"))
    body = r.get_json()
    assert r.status_code == 202 and body["status"] == "refused", body
    assert residue(data_dir) == [] and not list(data_dir.rglob("*.parquet"))
    assert "dataset.refused" in event_types(body["id"])


def test_core_refusal_reason_is_given(client, upload, department):
    r = upload(department[1], csv_bytes(sample_rows()), meta=metadata(security_level="core"))
    dataset_id = r.get_json()["id"]
    got = client.get(
        f"/api/v1/datasets/{dataset_id}/versions/1/status", headers=department[1]
    ).get_json()
    assert got["status"] == "refused"
    assert any("core" in reason for reason in got["refusal_reasons"])


def test_core_upload_without_a_file_is_refused_too(upload, department):
    r = upload(department[1], None, meta=metadata(security_level="core"))
    assert r.status_code == 202 and r.get_json()["status"] == "refused"


def test_unknown_level_is_a_validation_error(upload, department):
    r = upload(department[1], csv_bytes(sample_rows()), meta=metadata(security_level="secret"))
    assert r.status_code == 422


def test_important_data_opens_only_conditionally(upload, department):
    r = upload(
        department[1],
        csv_bytes(sample_rows()),
        meta=metadata(security_level="important", open_grade="open"),
    )
    assert r.status_code == 422
    assert "open_grade" in r.get_json()["errors"]


def test_important_data_gets_the_stricter_defaults(client, published, department):
    dataset_id = published(security_level="important", k_min=2)
    got = client.get(f"/api/v1/datasets/{dataset_id}", headers=department[1]).get_json()
    assert got["security_level"] == "important"
    assert got["k_min"] == 20  # raised to the level's minimum, never left looser

    from market.datasets.models import Dataset
    from market.extensions import db

    assert db.session.get(Dataset, dataset_id).dp_epsilon_budget == Decimal("1.0")


def test_general_is_the_default(client, published, department):
    dataset_id = published()
    got = client.get(f"/api/v1/datasets/{dataset_id}", headers=department[1]).get_json()
    assert got["security_level"] == "general"


def test_catalogue_facet_and_filter(client, make_dataset):
    from market.extensions import db

    a = make_dataset(title="重要数据集", grade="conditional")
    a.security_level = "important"
    make_dataset(title="一般数据集")
    db.session.commit()
    got = client.get("/api/v1/datasets").get_json()
    facet = {f["value"]: f["count"] for f in got["facets"]["security_level"]}
    assert facet["important"] >= 1 and facet["general"] >= 1
    only = client.get("/api/v1/datasets?security_level=important").get_json()
    assert {d["title"] for d in only["items"]} >= {"重要数据集"}
    assert all(d["security_level"] == "important" for d in only["items"])
    page = client.get("/catalog?security_level=important")
    assert page.status_code == 200 and "重要数据集" in page.get_data(as_text=True)
    assert 'data-facet="security_level"' in page.get_data(as_text=True)


def test_regulator_page_shows_levels(client, make_dataset, make_user, login):
    from market.extensions import db

    d = make_dataset(title="重要企业数据", grade="conditional")
    d.security_level = "important"
    db.session.commit()
    login(make_user("regulator"))
    r = client.get("/governance/grading")
    text = r.get_data(as_text=True)
    assert r.status_code == 200, text
    assert "重要企业数据" in text and 'data-testid="chart-grading"' in text
    assert 'data-testid="grading-important"' in text


@pytest.mark.parametrize("kind", ["buyer", "department", "subject"])
def test_grading_page_is_for_regulator_and_operator(client, make_user, login, kind):
    login(make_user(kind))
    assert client.get("/governance/grading").status_code == 403


def test_upload_form_offers_the_level(client, make_user, login):
    login(make_user("department"))
    text = client.get("/datasets/upload").get_data(as_text=True)
    assert 'name="security_level"' in text and 'value="core"' in text


def test_cli_passes_the_level_through(runner, make_user, tmp_path, data_dir):
    import json

    user = make_user("department")
    source = tmp_path / "a.csv"
    source.write_bytes(csv_bytes(sample_rows(10)))
    result = runner.invoke(args=["datasets", "publish", str(source), "--metadata",
                                 json.dumps(metadata(security_level="core")),
                                 "--department-email", user.email])
    assert result.exit_code == 1 and "refused" in result.output and "core" in result.output
    assert residue(data_dir) == []
