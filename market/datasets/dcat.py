"""The catalogue as DCAT-AP style JSON-LD (W3C DCAT 3, DQV for quality). Pure: no Flask, no DB.

The caller passes plain descriptions of the listed datasets and the absolute URLs it wants
published. What the export says about access is deliberate: the platform sells **usage rights
only** (所有权与使用权分离), and raw data never leaves the operation domain, so every
distribution names the sandbox as its access service and none has a ``dcat:downloadURL``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CONTEXT: dict[str, str] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "dqv": "http://www.w3.org/ns/dqv#",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "owl": "http://www.w3.org/2002/07/owl#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}

EU_FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
EU_THEME = "http://publications.europa.eu/resource/authority/data-theme/"
EU_ACCESS_RIGHT = "http://publications.europa.eu/resource/authority/access-right/"
EU_FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"

FREQUENCIES = {
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "monthly": "MONTHLY",
    "quarterly": "QUARTERLY",
    "yearly": "ANNUAL",
}

#: Platform categories → EU data themes (DCAT-AP requires a theme from that vocabulary).
THEMES = {
    "enterprise_registry": "ECON",
    "market_supervision": "ECON",
    "tax": "ECON",
    "social_security": "SOCI",
    "housing_fund": "SOCI",
    "judicial": "JUST",
    "environment": "ENVI",
    "ecology_environment": "ENVI",
    "natural_resources": "ENVI",
    "housing_construction": "REGI",
    "science_technology": "TECH",
    "utilities": "ENER",
}

QUALITY_DIMENSIONS = (
    "completeness", "validity", "accuracy", "uniqueness", "consistency", "timeliness",
)  # fmt: skip

USAGE_RIGHTS_NOTE = (
    "Usage rights only (公共数据授权运营): ownership stays with the public authority. Access is "
    "licensed per purpose, duration and query quota, through the data sandbox; buyers receive "
    "query results, never the rows themselves. No download."
)


@dataclass(frozen=True)
class DcatDataset:
    """One listed dataset as the export describes it (its current listed version)."""

    id: int
    slug: str
    title: str
    description: str
    category: str
    open_grade: str
    update_frequency: str | None
    department_id: int
    department_name: str
    landing_page: str
    version: int | None = None
    issued: dt.datetime | None = None
    modified: dt.datetime | None = None
    row_count: int | None = None
    quality_score: int | None = None
    quality_dimensions: Mapping[str, float | None] = field(default_factory=dict)
    k_anonymity: int | None = None
    columns: Sequence[str] = ()


@dataclass(frozen=True)
class DcatCatalog:
    uri: str
    title: str
    description: str
    homepage: str
    #: The sandbox's API base (the access service of every distribution).
    sandbox_url: str
    #: The OpenAPI document that describes the sandbox API.
    api_description_url: str
    publisher_name: str | None
    datasets: Sequence[DcatDataset]
    modified: dt.datetime | None = None


def _datetime(value: dt.datetime) -> dict[str, str]:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return {
        "@value": value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "@type": "xsd:dateTime",
    }


def _decimal(value: float | int) -> dict[str, str]:
    return {"@value": str(value), "@type": "xsd:decimal"}


def _quality(catalog_uri: str, ds: DcatDataset) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if ds.quality_score is not None:
        out.append(
            {
                "@type": "dqv:QualityMeasurement",
                "dqv:isMeasurementOf": {
                    "@id": f"{catalog_uri}#metric-score",
                    "@type": "dqv:Metric",
                    "skos:prefLabel": "quality score (GB/T 36344, 0-100)",
                },
                "dqv:value": _decimal(ds.quality_score),
            }
        )
    for name in QUALITY_DIMENSIONS:
        value = ds.quality_dimensions.get(name)
        if value is None:
            continue
        out.append(
            {
                "@type": "dqv:QualityMeasurement",
                "dqv:isMeasurementOf": {
                    "@id": f"{catalog_uri}#metric-{name}",
                    "@type": "dqv:Metric",
                    "skos:prefLabel": name,
                    "dqv:inDimension": {"@id": f"{catalog_uri}#dimension-{name}"},
                },
                "dqv:value": _decimal(round(value, 2)),
            }
        )
    if ds.k_anonymity is not None:
        out.append(
            {
                "@type": "dqv:QualityMeasurement",
                "dqv:isMeasurementOf": {
                    "@id": f"{catalog_uri}#metric-k-anonymity",
                    "@type": "dqv:Metric",
                    "skos:prefLabel": "k-anonymity",
                },
                "dqv:value": {"@value": str(ds.k_anonymity), "@type": "xsd:integer"},
            }
        )
    return out


def dataset_node(catalog: DcatCatalog, ds: DcatDataset) -> dict[str, Any]:
    node: dict[str, Any] = {
        "@id": ds.landing_page,
        "@type": "dcat:Dataset",
        "dct:identifier": ds.slug,
        "dct:title": ds.title,
        "dct:description": ds.description or ds.title,
        "dct:publisher": {
            "@id": f"{catalog.uri}#department-{ds.department_id}",
            "@type": "foaf:Organization",
            "foaf:name": ds.department_name,
        },
        "dcat:keyword": [ds.category, ds.open_grade],
        "dcat:theme": [
            {"@id": f"{catalog.uri}#theme-{ds.category}", "skos:prefLabel": ds.category}
        ],
        "dcat:landingPage": {"@id": ds.landing_page},
        "dct:accessRights": {
            # Every grade needs a license: even "open" (无条件开放) data is opened for a fee.
            "@id": EU_ACCESS_RIGHT + "RESTRICTED",
            "rdfs:label": f"open grade: {ds.open_grade}",
        },
        "dcat:distribution": [
            {
                "@id": f"{ds.landing_page}#sandbox",
                "@type": "dcat:Distribution",
                "dct:title": "Data sandbox access (query results only)",
                "dcat:accessURL": {"@id": catalog.sandbox_url},
                "dcat:accessService": {
                    "@id": f"{catalog.uri}#sandbox",
                    "@type": "dcat:DataService",
                    "dct:title": "Data sandbox (数据沙箱)",
                    "dcat:endpointURL": {"@id": catalog.sandbox_url},
                    "dcat:endpointDescription": {"@id": catalog.api_description_url},
                },
                "dct:format": {"@id": EU_FILE_TYPE + "PARQUET"},
                "dct:license": {"@type": "dct:LicenseDocument", "rdfs:label": USAGE_RIGHTS_NOTE},
                "dct:rights": {"@type": "dct:RightsStatement", "rdfs:label": USAGE_RIGHTS_NOTE},
            }
        ],
    }
    theme = THEMES.get(ds.category)
    if theme:
        node["dcat:theme"].append({"@id": EU_THEME + theme})
    if ds.update_frequency in FREQUENCIES:
        node["dct:accrualPeriodicity"] = {"@id": EU_FREQUENCY + FREQUENCIES[ds.update_frequency]}
    if ds.version is not None:
        node["dcat:version"] = str(ds.version)
        node["owl:versionInfo"] = str(ds.version)
    if ds.issued is not None:
        node["dct:issued"] = _datetime(ds.issued)
    if ds.modified is not None:
        node["dct:modified"] = _datetime(ds.modified)
    if ds.row_count is not None:
        node["rdfs:comment"] = f"{ds.row_count} rows in version {ds.version}"
    measurements = _quality(catalog.uri, ds)
    if measurements:
        node["dqv:hasQualityMeasurement"] = measurements
    return node


def catalog_jsonld(catalog: DcatCatalog) -> dict[str, Any]:
    """The whole catalogue: one ``dcat:Catalog`` with a ``dcat:Dataset`` per listed dataset."""
    doc: dict[str, Any] = {
        "@context": dict(CONTEXT),
        "@id": catalog.uri,
        "@type": "dcat:Catalog",
        "dct:title": catalog.title,
        "dct:description": catalog.description,
        "foaf:homepage": {"@id": catalog.homepage},
        "dct:license": {"@type": "dct:LicenseDocument", "rdfs:label": USAGE_RIGHTS_NOTE},
        "dcat:service": [{"@id": f"{catalog.uri}#sandbox"}],
        "dcat:dataset": [dataset_node(catalog, ds) for ds in catalog.datasets],
    }
    if catalog.publisher_name:
        doc["dct:publisher"] = {
            "@id": f"{catalog.uri}#operator",
            "@type": "foaf:Organization",
            "foaf:name": catalog.publisher_name,
        }
    if catalog.modified is not None:
        doc["dct:modified"] = _datetime(catalog.modified)
    return doc
