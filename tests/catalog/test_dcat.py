"""The DCAT JSON-LD export: valid JSON-LD (parsed as RDF), listed datasets only, access through
the sandbox only."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF

from market.datasets import dcat

DQV = Namespace("http://www.w3.org/ns/dqv#")


def _zh(value):
    """The text of a language-tagged literal list (DCAT-AP: ``@zh`` first, else the first)."""
    if isinstance(value, list):
        return next((v["@value"] for v in value if v.get("@language") == "zh"), value[0]["@value"])
    return value["@value"] if isinstance(value, dict) else value


def _en(value):
    return next(v["@value"] for v in value if v.get("@language") == "en")


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@pytest.fixture
def exported(client, make_dataset, make_org):
    tax_dept = make_org("department", name="国家税务总局上海市税务局")
    make_org("operator", name="上海数据集团有限公司")
    listed = [
        make_dataset(
            title="企业月度纳税信息",
            category="tax",
            department=tax_dept,
            quality=91,
            frequency="monthly",
        ),
        make_dataset(
            title="企业登记注册信息", frequency="daily", versions=["listed", "pending_review"]
        ),
    ]
    unlisted = [
        make_dataset(title=f"未上架 {s}", status=s)
        for s in ("processing", "pending_review", "rejected", "refused")
    ]
    r = client.get("/api/v1/catalog.jsonld")
    assert r.status_code == 200 and r.mimetype == "application/ld+json"
    return json.loads(r.get_data(as_text=True)), listed, unlisted


def test_structure(exported):
    doc, listed, unlisted = exported
    assert doc["@type"] == "dcat:Catalog"
    assert doc["@context"]["dcat"] == "http://www.w3.org/ns/dcat#"
    assert doc["@context"]["dct"] == "http://purl.org/dc/terms/"
    assert _zh(doc["dct:publisher"]["foaf:name"]) == "上海数据集团有限公司"
    titles = [_zh(d["dct:title"]) for d in doc["dcat:dataset"]]
    assert sorted(titles) == sorted(d.title for d in listed)
    assert all(d["@type"] == "dcat:Dataset" for d in doc["dcat:dataset"])
    assert not any(u.title in json.dumps(doc, ensure_ascii=False) for u in unlisted)

    tax = next(d for d in doc["dcat:dataset"] if _zh(d["dct:title"]) == "企业月度纳税信息")
    assert _zh(tax["dct:publisher"]["foaf:name"]) == "国家税务总局上海市税务局"
    assert tax["dct:accrualPeriodicity"]["@id"].endswith("/frequency/MONTHLY")
    assert "tax" in [k["@value"] for k in tax["dcat:keyword"]]
    assert {t["@id"] for t in tax["dcat:theme"]} >= {
        "http://publications.europa.eu/resource/authority/data-theme/ECON"
    }
    assert tax["dcat:version"] == "1" and tax["dcat:landingPage"]["@id"].endswith(
        f"/datasets/{listed[0].id}"
    )
    measures = {
        m["dqv:isMeasurementOf"]["skos:prefLabel"]: m["dqv:value"]["@value"]
        for m in tax["dqv:hasQualityMeasurement"]
    }
    assert measures["completeness"] == "98.5" and measures["k-anonymity"] == "12"
    assert any(label.startswith("quality score") and v == "91" for label, v in measures.items())


def test_access_is_through_the_sandbox_only(exported):
    doc, _, _ = exported
    text = json.dumps(doc)
    assert "downloadURL" not in text
    for ds in doc["dcat:dataset"]:
        (dist,) = ds["dcat:distribution"]
        assert dist["dcat:accessURL"]["@id"].endswith("/api/v1/sandbox")
        (service,) = doc["dcat:service"]
        assert dist["dcat:accessService"]["@id"] == service["@id"]
        assert service["@type"] == "dcat:DataService"
        assert service["dcat:endpointDescription"]["@id"].endswith("/openapi.json")
        assert "usage rights only" in _en(dist["dct:license"]["rdfs:label"]).lower()
    assert "usage rights only" in _en(doc["dct:license"]["rdfs:label"]).lower()


# rdflib's own JSON-LD parser still builds a ConjunctiveGraph internally.
@pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")
def test_parses_as_rdf(exported):
    """A JSON-LD processor (rdflib) reads the same facts from it."""
    doc, listed, _ = exported
    g = Graph().parse(data=json.dumps(doc), format="json-ld")
    catalog = URIRef(doc["@id"])
    assert (catalog, RDF.type, DCAT.Catalog) in g
    datasets = set(g.subjects(RDF.type, DCAT.Dataset))
    assert len(datasets) == len(listed)
    assert set(g.objects(catalog, DCAT.dataset)) == datasets
    titles = {str(t) for ds in datasets for t in g.objects(ds, DCTERMS.title)}
    assert titles == {d.title for d in listed}
    for ds in datasets:
        publisher = g.value(ds, DCTERMS.publisher)
        assert g.value(publisher, FOAF.name) is not None
        dist = g.value(ds, DCAT.distribution)
        assert g.value(dist, DCAT.accessService) is not None
        assert g.value(dist, DCAT.downloadURL) is None
        measurements = list(g.objects(ds, DQV.hasQualityMeasurement))
        assert measurements and all(
            isinstance(g.value(m, DQV.value), Literal) for m in measurements
        )


def test_empty_catalogue_is_still_a_catalogue(client):
    doc = client.get("/api/v1/catalog.jsonld").get_json(force=True)
    assert doc["@type"] == "dcat:Catalog" and doc["dcat:dataset"] == []


@pytest.mark.parametrize(
    ("frequency", "expected"),
    [
        ("daily", "DAILY"),
        ("weekly", "WEEKLY"),
        ("monthly", "MONTHLY"),
        ("quarterly", "QUARTERLY"),
        ("yearly", "ANNUAL"),
        ("hourly", None),
        (None, None),
    ],
)
def test_frequency_vocabulary(frequency, expected):
    ds = dcat.DcatDataset(
        id=1,
        slug="d1_tax",
        title="t",
        description="",
        category="tax",
        open_grade="open",
        update_frequency=frequency,
        department_id=2,
        department_name="dept",
        landing_page="https://m.example/datasets/1",
        modified=dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC),
    )
    cat = dcat.DcatCatalog(
        uri="https://m.example/c",
        title="c",
        description="d",
        homepage="https://m.example/",
        sandbox_url="https://m.example/sbx",
        api_description_url="https://m.example/openapi.json",
        publisher_name=None,
        datasets=[ds],
    )
    node = dcat.catalog_jsonld(cat)["dcat:dataset"][0]
    got = node.get("dct:accrualPeriodicity", {}).get("@id")
    assert got == (f"{dcat.EU_FREQUENCY}{expected}" if expected else None)
    assert _zh(node["dct:description"]) == "t"  # DCAT-AP needs one: the title stands in
    assert node["dct:modified"] == {"@value": "2026-01-02T03:04:00Z", "@type": "xsd:dateTime"}
