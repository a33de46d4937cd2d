"""DCAT-AP 3.0.1 conformance of the catalogue: pyshacl validates the served JSON-LD against the
official SHACL shapes (``301-shapes.ttl`` + ``301-range.ttl``) with no violation. The
recommended shapes (``301-shapes_recommended.ttl``) are reported, not enforced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rdflib import Graph, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF, SKOS

pyshacl = pytest.importorskip("pyshacl")

SHAPES = Path(__file__).resolve().parents[1] / "fixtures" / "dcat-ap"
SH = Namespace("http://www.w3.org/ns/shacl#")
ODRL = Namespace("http://www.w3.org/ns/odrl/2/")

pytestmark = pytest.mark.filterwarnings(
    "ignore:ConjunctiveGraph is deprecated:DeprecationWarning"
)


def _shapes(*names: str) -> Graph:
    g = Graph()
    for name in names:
        g.parse(SHAPES / name, format="turtle")
    return g


def _results(data: Graph, shapes: Graph) -> list[dict[str, str]]:
    _, report, _ = pyshacl.validate(data, shacl_graph=shapes, inference="none",
                                    allow_warnings=True)
    out = []
    for r in report.subjects(RDF.type, SH.ValidationResult):
        out.append({
            "severity": str(report.value(r, SH.resultSeverity)).rsplit("#", 1)[-1],
            "focus": str(report.value(r, SH.focusNode)),
            "path": str(report.value(r, SH.resultPath)),
            "message": str(report.value(r, SH.resultMessage)),
        })
    return out


@pytest.fixture
def catalogue(client, make_dataset, make_org):
    from market.extensions import db

    tax = make_org("department", name="国家税务总局上海市税务局")
    make_org("operator", name="上海数据集团有限公司")
    important = make_dataset(title="企业月度纳税信息", category="tax", department=tax,
                             grade="conditional")
    important.security_level = "important"
    make_dataset(title="企业登记注册信息", frequency="daily")
    make_dataset(title="Utility payments", category="utilities", frequency="weekly")
    make_dataset(title="新类别数据", category="brand_new_category", frequency="yearly")
    db.session.commit()
    r = client.get("/api/v1/catalog.jsonld")
    assert r.status_code == 200
    doc = json.loads(r.get_data(as_text=True))
    themes = client.get("/api/v1/catalog/themes.jsonld")
    assert themes.status_code == 200 and themes.mimetype == "application/ld+json"
    g = Graph().parse(data=json.dumps(doc), format="json-ld")
    g.parse(data=themes.get_data(as_text=True), format="json-ld")
    return doc, g


def test_no_violation_of_the_mandatory_and_range_shapes(catalogue):
    _, g = catalogue
    results = _results(g, _shapes("301-shapes.ttl", "301-range.ttl"))
    violations = [r for r in results if r["severity"] == "Violation"]
    assert violations == [], json.dumps(violations, ensure_ascii=False, indent=1)


def test_recommended_shapes_are_reported(catalogue, capsys):
    _, g = catalogue
    results = _results(g, _shapes("301-shapes_recommended.ttl"))
    summary = sorted({(r["severity"], r["path"], r["message"]) for r in results})
    with capsys.disabled():
        print(f"\nDCAT-AP 3.0.1 recommended shapes: {len(results)} results, "
              f"{len(summary)} distinct")
        for severity, path, message in summary:
            print(f"  {severity}: {path}: {message}")


def test_every_node_is_typed_and_tagged(catalogue):
    doc, g = catalogue
    datasets = list(g.subjects(RDF.type, DCAT.Dataset))
    assert len(datasets) == 4
    scheme = g.value(URIRef(doc["@id"]), DCAT.themeTaxonomy)
    assert (scheme, RDF.type, SKOS.ConceptScheme) in g
    for ds in datasets:
        assert str(ds).startswith("urn:market:dataset:")
        for theme in g.objects(ds, DCAT.theme):
            assert (theme, RDF.type, SKOS.Concept) in g
        own = [t for t in g.objects(ds, DCAT.theme) if (t, SKOS.inScheme, scheme) in g]
        assert own, "each dataset has a theme of the published taxonomy"
        assert g.value(ds, DCTERMS.rightsHolder) == g.value(ds, DCTERMS.publisher)
        assert g.value(ds, DCAT.contactPoint) is not None
        assert str(g.value(ds, DCTERMS.spatial)) == "https://sws.geonames.org/1796236/"
        assert g.value(ds, DCTERMS.temporal) is not None
        assert g.value(ds, DCTERMS.language) is not None
        policy = g.value(ds, ODRL.hasPolicy)
        assert (policy, RDF.type, ODRL.Offer) in g
        assert g.value(policy, ODRL.target) == ds  # the offer targets the DCAT dataset IRI
    langs = {t.language for t in g.objects(URIRef(doc["@id"]), DCTERMS.title)}
    assert langs == {"zh", "en"}
    rights = [r for ds in datasets for r in g.objects(ds, DCTERMS.rights)]
    assert {lbl.language for r in rights for lbl in g.objects(r, URIRef(
        "http://www.w3.org/2000/01/rdf-schema#label"))} == {"zh", "en"}


def test_security_level_is_published(catalogue):
    doc, _ = catalogue
    tax = next(d for d in doc["dcat:dataset"]
               if d["dct:title"][0]["@value"] == "企业月度纳税信息")
    assert tax["market:securityLevel"] == "important"
    assert tax["dct:rights"]["market:securityLevel"] == "important"


def test_the_offer_has_a_price_in_yuan(catalogue):
    doc, _ = catalogue
    for d in doc["dcat:dataset"]:
        offer = d["odrl:hasPolicy"]
        amount = offer["odrl:permission"]["odrl:duty"]["odrl:constraint"]["odrl:rightOperand"]
        assert amount["@type"] == "xsd:decimal" and float(amount["@value"]) > 0
