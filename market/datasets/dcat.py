"""The catalogue as DCAT-AP 3.0.1 JSON-LD (W3C DCAT 3, DQV for quality, ODRL for offers).
Pure: no Flask, no DB.

The caller passes plain descriptions of the listed datasets and the absolute URLs it wants
published. What the export says about access is deliberate: the platform sells **usage rights
only** (所有权与使用权分离), and raw data never leaves the operation domain, so every
distribution names the sandbox as its access service and none has a ``dcat:downloadURL``.

Conformance (tests/governance/test_dcat_ap_shacl.py validates with the DCAT-AP 3.0.1 SHACL
shapes): every node is typed (``foaf:Agent`` publishers, ``skos:Concept`` themes in the
platform's own ``skos:ConceptScheme`` — :func:`theme_scheme_jsonld`, served by the app —,
``dct:RightsStatement``, ``dct:Frequency``, ``dct:MediaType``, ``dct:Location``,
``dct:PeriodOfTime``, ``dct:LinguisticSystem``, ``vcard:Kind``), text is tagged ``@zh`` and
``@en``, and each dataset carries an ODRL ``Offer`` (``odrl:hasPolicy``) whose target is the
dataset's IRI — the same IRI a license's ODRL targets name (:func:`dataset_iri`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

CONTEXT: dict[str, str] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dcatap": "http://data.europa.eu/r5r/",
    "dct": "http://purl.org/dc/terms/",
    "dqv": "http://www.w3.org/ns/dqv#",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "gsp": "http://www.opengis.net/ont/geosparql#",
    "odrl": "http://www.w3.org/ns/odrl/2/",
    "owl": "http://www.w3.org/2002/07/owl#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "market": "urn:market:vocab:",
}

EU_FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
EU_THEME = "http://publications.europa.eu/resource/authority/data-theme/"
EU_ACCESS_RIGHT = "http://publications.europa.eu/resource/authority/access-right/"
EU_FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
EU_LANGUAGE = "http://publications.europa.eu/resource/authority/language/"
IANA_MEDIA_TYPE = "https://www.iana.org/assignments/media-types/"
#: 上海市 in the GeoNames gazetteer (the operation's territory), its centroid and bounding box.
SHANGHAI = "https://sws.geonames.org/1796236/"
SHANGHAI_CENTROID = "POINT(121.4737 31.2304)"
SHANGHAI_BBOX = "POLYGON((120.85 30.67,122.20 30.67,122.20 31.88,120.85 31.88,120.85 30.67))"
AVAILABLE = "http://publications.europa.eu/resource/authority/planned-availability/AVAILABLE"
ADMS_PUBLISHER_TYPE = "http://purl.org/adms/publishertype/"
ADMS_LICENCE_TYPE = "http://purl.org/adms/licencetype/"
OPENAPI_STANDARD = "https://spec.openapis.org/oas/v3.1.0"

FREQUENCIES = {
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "monthly": "MONTHLY",
    "quarterly": "QUARTERLY",
    "yearly": "ANNUAL",
}
FREQUENCY_LABELS = {
    "daily": ("每日", "daily"),
    "weekly": ("每周", "weekly"),
    "monthly": ("每月", "monthly"),
    "quarterly": ("每季度", "quarterly"),
    "yearly": ("每年", "annual"),
}

#: Platform categories → EU data themes (DCAT-AP recommends a theme from that vocabulary).
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
#: EU data themes (the Publications Office's labels) → (中文, English).
EU_THEME_LABELS = {
    "ECON": ("经济与金融", "Economy and finance"),
    "SOCI": ("人口与社会", "Population and society"),
    "JUST": ("司法、法律体系与公共安全", "Justice, legal system and public safety"),
    "ENVI": ("环境", "Environment"),
    "REGI": ("地区与城市", "Regions and cities"),
    "TECH": ("科学与技术", "Science and technology"),
    "ENER": ("能源", "Energy"),
}
#: The platform's theme taxonomy: category → (中文, English).
THEME_LABELS = {
    "enterprise_registry": ("企业登记", "Enterprise registration"),
    "market_supervision": ("市场监管", "Market supervision"),
    "tax": ("税务", "Tax"),
    "social_security": ("社会保险", "Social security"),
    "housing_fund": ("住房公积金", "Housing provident fund"),
    "judicial": ("司法", "Judicial"),
    "environment": ("生态环境", "Ecology and environment"),
    "ecology_environment": ("生态环境", "Ecology and environment"),
    "natural_resources": ("规划资源", "Planning and natural resources"),
    "housing_construction": ("住房建设", "Housing and construction"),
    "science_technology": ("科学技术", "Science and technology"),
    "utilities": ("公用事业", "Public utilities"),
}
SECURITY_LEVEL_LABELS = {
    "general": ("一般数据", "general data"),
    "important": ("重要数据", "important data"),
    "core": ("核心数据", "core data"),
}
OPEN_GRADE_LABELS = {
    "open": ("无条件开放", "open"),
    "conditional": ("有条件开放", "conditional"),
    "restricted": ("不予开放", "restricted"),
}

QUALITY_DIMENSIONS = (
    "completeness", "validity", "accuracy", "uniqueness", "consistency", "timeliness",
)  # fmt: skip

USAGE_RIGHTS_NOTE = (
    "Usage rights only (公共数据授权运营): ownership stays with the public authority. Access is "
    "licensed per purpose, duration and query quota, through the data sandbox; buyers receive "
    "query results, never the rows themselves. No download."
)
USAGE_RIGHTS_NOTE_ZH = (
    "仅授予数据使用权（公共数据授权运营），数据所有权归属公共管理部门。按用途、期限和查询额度授权，"
    "通过数据沙箱访问；使用方只获得查询结果，不获得数据本身，不提供下载。"
)
RENMINBI = "http://dbpedia.org/resource/Renminbi"

_CJK = re.compile(r"[\u3400-\u9fff]")


def dataset_iri(dataset_id: int | str) -> str:
    """The IRI of a dataset in the catalogue, and the one license ODRL assets point to
    (``dct:isVersionOf`` of ``urn:market:dataset:{id}:v{version}``)."""
    return f"urn:market:dataset:{dataset_id}"


def text(value: str, lang: str | None = None) -> dict[str, str]:
    """A language-tagged literal; without ``lang``, ``zh`` if it holds Chinese, else ``en``."""
    return {"@value": value, "@language": lang or ("zh" if _CJK.search(value) else "en")}


def bilingual(zh: str, en: str) -> list[dict[str, str]]:
    return [text(zh, "zh"), text(en, "en")]


def _split_bilingual(value: str) -> list[dict[str, str]]:
    """``"中文 · English"`` → both tagged literals; anything else → one tagged literal."""
    if " · " in value:
        zh, en = value.split(" · ", 1)
        if _CJK.search(zh) and not _CJK.search(en):
            return bilingual(zh.strip(), en.strip())
    return [text(value)]


@dataclass(frozen=True)
class DcatOffer:
    """The reference offer of a dataset (ODRL ``Offer``): its price for one standard scope."""

    price_fen: int
    duration_months: int
    query_quota: int
    purpose: str


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
    security_level: str = "general"
    #: When the dataset was first published (start of ``dct:temporal``).
    created: dt.datetime | None = None
    offer: DcatOffer | None = None


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
    #: The platform theme taxonomy (``skos:ConceptScheme``), see :func:`theme_scheme_jsonld`.
    themes_uri: str | None = None
    #: Where people ask about the catalogue (``dcat:contactPoint``).
    contact_url: str | None = None
    contact_email: str | None = None


def _datetime(value: dt.datetime) -> dict[str, str]:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return {
        "@value": value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "@type": "xsd:dateTime",
    }


def _decimal(value: float | int | Decimal) -> dict[str, str]:
    return {"@value": str(value), "@type": "xsd:decimal"}


def _yuan(fen: int) -> str:
    return str((Decimal(fen) / 100).quantize(Decimal("0.01")))


def _themes_uri(catalog: DcatCatalog) -> str:
    return catalog.themes_uri or f"{catalog.uri}#themes"


def theme_iri(scheme_uri: str, category: str) -> str:
    return f"{scheme_uri}#{category}"


def _concept(scheme_uri: str, category: str, *, full: bool = True) -> dict[str, Any]:
    zh, en = THEME_LABELS.get(category, (category, category))
    node: dict[str, Any] = {
        "@id": theme_iri(scheme_uri, category),
        "@type": "skos:Concept",
        "skos:prefLabel": bilingual(zh, en) if (zh, en) != (category, category) else [
            text(category, "en")
        ],
        "skos:inScheme": {"@id": scheme_uri},
        "skos:notation": category,
    }
    if full and category in THEMES:
        node["skos:exactMatch"] = {"@id": EU_THEME + THEMES[category]}
    return node


def theme_scheme_jsonld(scheme_uri: str, categories: Sequence[str] = ()) -> dict[str, Any]:
    """The platform's theme taxonomy: one ``skos:Concept`` per category (the known ones and
    ``categories``), each matched to its EU data theme."""
    cats = sorted(set(THEME_LABELS) | set(categories))
    scheme = {
        "@id": scheme_uri,
        "@type": "skos:ConceptScheme",
        "dct:title": bilingual("公共数据主题分类", "Public data themes"),
        "skos:hasTopConcept": [{"@id": theme_iri(scheme_uri, c)} for c in cats],
    }
    concepts = [{**_concept(scheme_uri, c), "skos:topConceptOf": {"@id": scheme_uri}}
                for c in cats]
    return {"@context": dict(CONTEXT), "@graph": [scheme, *concepts]}


#: ADMS publisher types: the departments are local (municipal) authorities; the operator is a
#: company (授权运营单位).
PUBLISHER_TYPES = {
    "LocalAuthority": ("地方政府部门", "Local authority"),
    "Company": ("企业", "Company"),
}


def _agent(iri: str, name: str, kind: str = "LocalAuthority") -> dict[str, Any]:
    return {
        "@id": iri,
        "@type": ["foaf:Agent", "foaf:Organization"],
        "foaf:name": [text(name)],
        "dct:type": {
            "@id": ADMS_PUBLISHER_TYPE + kind,
            "@type": "skos:Concept",
            "skos:prefLabel": bilingual(*PUBLISHER_TYPES[kind]),
        },
    }


def _location() -> dict[str, Any]:
    return {
        "@id": SHANGHAI,
        "@type": "dct:Location",
        "skos:prefLabel": bilingual("上海市", "Shanghai"),
        "dcat:centroid": {"@value": SHANGHAI_CENTROID, "@type": "gsp:wktLiteral"},
        "dcat:bbox": {"@value": SHANGHAI_BBOX, "@type": "gsp:wktLiteral"},
    }


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


def _rights_statement(ds: DcatDataset) -> dict[str, Any]:
    grade_zh, grade_en = OPEN_GRADE_LABELS.get(ds.open_grade, (ds.open_grade, ds.open_grade))
    level_zh, level_en = SECURITY_LEVEL_LABELS.get(
        ds.security_level, (ds.security_level, ds.security_level)
    )
    return {
        "@type": "dct:RightsStatement",
        "rdfs:label": bilingual(
            f"开放等级：{grade_zh}；数据分级（GB/T 43697-2024）：{level_zh}",
            f"open grade: {grade_en}; security level (GB/T 43697-2024): {level_en}",
        ),
        "market:openGrade": ds.open_grade,
        "market:securityLevel": ds.security_level,
    }


def _offer(ds: DcatDataset, iri: str, assigner: str) -> dict[str, Any]:
    offer = ds.offer
    assert offer is not None
    return {
        "@id": f"{iri}#offer",
        "@type": "odrl:Offer",
        "odrl:uid": {"@id": f"{iri}#offer"},
        "odrl:assigner": {"@id": assigner},
        "odrl:target": {"@id": iri},
        "odrl:permission": {
            "@type": "odrl:Permission",
            "odrl:target": {"@id": iri},
            "odrl:action": {"@id": "odrl:use"},
            "odrl:constraint": [
                {
                    "@type": "odrl:Constraint",
                    "odrl:leftOperand": {"@id": "odrl:purpose"},
                    "odrl:operator": {"@id": "odrl:eq"},
                    "odrl:rightOperand": offer.purpose,
                },
                {
                    "@type": "odrl:Constraint",
                    "odrl:leftOperand": {"@id": "odrl:elapsedTime"},
                    "odrl:operator": {"@id": "odrl:lteq"},
                    "odrl:rightOperand": {
                        "@value": f"P{offer.duration_months}M",
                        "@type": "xsd:duration",
                    },
                },
                {
                    "@type": "odrl:Constraint",
                    "odrl:leftOperand": {"@id": "odrl:count"},
                    "odrl:operator": {"@id": "odrl:lteq"},
                    "odrl:rightOperand": {
                        "@value": str(offer.query_quota),
                        "@type": "xsd:integer",
                    },
                },
            ],
            "odrl:duty": {
                "@type": "odrl:Duty",
                "odrl:action": {"@id": "odrl:compensate"},
                "odrl:constraint": {
                    "@type": "odrl:Constraint",
                    "odrl:leftOperand": {"@id": "odrl:payAmount"},
                    "odrl:operator": {"@id": "odrl:eq"},
                    "odrl:rightOperand": _decimal(Decimal(_yuan(offer.price_fen))),
                    "odrl:unit": {"@id": RENMINBI},
                },
            },
        },
        "odrl:prohibition": [
            {"@type": "odrl:Prohibition", "odrl:target": {"@id": iri},
             "odrl:action": {"@id": "odrl:distribute"}},
            {"@type": "odrl:Prohibition", "odrl:target": {"@id": iri},
             "odrl:action": {"@id": "odrl:transfer"}},
        ],
    }


def dataset_node(catalog: DcatCatalog, ds: DcatDataset) -> dict[str, Any]:
    iri = dataset_iri(ds.id)
    scheme = _themes_uri(catalog)
    department = f"{catalog.uri}#department-{ds.department_id}"
    operator = f"{catalog.uri}#operator"
    theme_nodes: list[dict[str, Any]] = [_concept(scheme, ds.category, full=False)]
    node: dict[str, Any] = {
        "@id": iri,
        "@type": "dcat:Dataset",
        "dct:identifier": ds.slug,
        "dct:title": [text(ds.title)],
        "dct:description": [text(ds.description or ds.title)],
        "dct:publisher": _agent(department, ds.department_name),
        "dct:rightsHolder": {"@id": department},
        "dcat:contactPoint": _contact(catalog, ds.department_name, department),
        "dcat:keyword": [text(ds.category, "en"), text(ds.open_grade, "en"),
                         text(ds.security_level, "en")],
        "dcat:theme": theme_nodes,
        "dcat:landingPage": {"@id": ds.landing_page, "@type": "foaf:Document"},
        "dct:spatial": _location(),
        "dct:language": [
            {"@id": EU_LANGUAGE + "ZHO", "@type": "dct:LinguisticSystem"},
        ],
        "dct:accessRights": {
            # Every grade needs a license: even "open" (无条件开放) data is opened for a fee.
            "@id": EU_ACCESS_RIGHT + "RESTRICTED",
            "@type": "dct:RightsStatement",
        },
        "dct:rights": _rights_statement(ds),
        "market:securityLevel": ds.security_level,
        "dcat:distribution": [
            {
                "@id": f"{iri}#sandbox",
                "@type": "dcat:Distribution",
                "dct:title": bilingual("数据沙箱访问（仅返回查询结果）",
                                       "Data sandbox access (query results only)"),
                "dct:description": bilingual(
                    "在数据沙箱中按许可执行聚合查询，结果以 JSON 返回；不提供数据下载。",
                    "Licensed aggregate queries in the data sandbox, answered as JSON; the "
                    "rows themselves are never downloaded.",
                ),
                "dcatap:availability": {"@id": AVAILABLE, "@type": "skos:Concept",
                                        "skos:prefLabel": bilingual("可用", "available")},
                "dcat:accessURL": {"@id": catalog.sandbox_url},
                "dcat:accessService": {"@id": f"{catalog.uri}#sandbox"},
                "dct:format": {"@id": EU_FILE_TYPE + "JSON", "@type": "dct:MediaTypeOrExtent"},
                "dcat:mediaType": {"@id": IANA_MEDIA_TYPE + "application/json",
                                   "@type": "dct:MediaType"},
                "dct:license": _license(f"{catalog.uri}#usage-rights"),
                "dct:rights": {
                    "@type": "dct:RightsStatement",
                    "rdfs:label": bilingual(USAGE_RIGHTS_NOTE_ZH, USAGE_RIGHTS_NOTE),
                },
            }
        ],
    }
    theme = THEMES.get(ds.category)
    if theme:
        theme_nodes.append(
            {
                "@id": EU_THEME + theme,
                "@type": "skos:Concept",
                "skos:prefLabel": bilingual(*EU_THEME_LABELS[theme]),
                "skos:inScheme": {"@id": EU_THEME[:-1]},
            }
        )
    if ds.update_frequency in FREQUENCIES:
        zh, en = FREQUENCY_LABELS[ds.update_frequency]
        node["dct:accrualPeriodicity"] = {
            "@id": EU_FREQUENCY + FREQUENCIES[ds.update_frequency],
            "@type": "dct:Frequency",
            "skos:prefLabel": bilingual(zh, en),
        }
    if ds.version is not None:
        node["dcat:version"] = str(ds.version)
        node["owl:versionInfo"] = str(ds.version)
    if ds.issued is not None:
        node["dct:issued"] = _datetime(ds.issued)
    if ds.modified is not None:
        node["dct:modified"] = _datetime(ds.modified)
    # The period the published versions cover: from the first publication to the last update.
    moments = [m for m in (ds.created, ds.issued, ds.modified) if m is not None]
    if moments:
        node["dct:temporal"] = {
            "@type": "dct:PeriodOfTime",
            "dcat:startDate": _datetime(min(moments)),
            "dcat:endDate": _datetime(max(moments)),
        }
    if ds.row_count is not None:
        node["rdfs:comment"] = text(f"{ds.row_count} rows in version {ds.version}", "en")
    measurements = _quality(catalog.uri, ds)
    if measurements:
        node["dqv:hasQualityMeasurement"] = measurements
    if ds.offer is not None:
        node["odrl:hasPolicy"] = _offer(ds, iri, operator)
    return node


def _license(iri: str) -> dict[str, Any]:
    return {
        "@id": iri,
        "@type": "dct:LicenseDocument",
        "rdfs:label": bilingual(USAGE_RIGHTS_NOTE_ZH, USAGE_RIGHTS_NOTE),
        "dct:type": {
            "@id": ADMS_LICENCE_TYPE + "RoyaltiesRequired",
            "@type": "skos:Concept",
            "skos:prefLabel": bilingual("需付费", "Royalties required"),
        },
    }


def _contact(catalog: DcatCatalog, name: str, iri: str) -> dict[str, Any]:
    node: dict[str, Any] = {
        "@id": f"{iri}-contact",
        "@type": ["vcard:Kind", "vcard:Organization"],
        "vcard:fn": text(name),
    }
    if catalog.contact_email:
        node["vcard:hasEmail"] = {"@id": f"mailto:{catalog.contact_email}"}
    node["vcard:hasURL"] = {"@id": catalog.contact_url or catalog.homepage}
    return node


def catalog_jsonld(catalog: DcatCatalog) -> dict[str, Any]:
    """The whole catalogue: one ``dcat:Catalog`` with a ``dcat:Dataset`` per listed dataset."""
    scheme = _themes_uri(catalog)
    publisher = catalog.publisher_name or "公共数据授权运营平台"
    doc: dict[str, Any] = {
        "@context": dict(CONTEXT),
        "@id": catalog.uri,
        "@type": "dcat:Catalog",
        "dct:title": _split_bilingual(catalog.title),
        "dct:description": _split_bilingual(catalog.description),
        "foaf:homepage": {"@id": catalog.homepage, "@type": "foaf:Document"},
        "dct:license": _license(f"{catalog.uri}#usage-rights"),
        "dct:language": [{"@id": EU_LANGUAGE + "ZHO", "@type": "dct:LinguisticSystem"},
                         {"@id": EU_LANGUAGE + "ENG", "@type": "dct:LinguisticSystem"}],
        "dct:spatial": _location(),
        "dcat:themeTaxonomy": {
            "@id": scheme,
            "@type": "skos:ConceptScheme",
            "dct:title": bilingual("公共数据主题分类", "Public data themes"),
        },
        "dcat:service": [
            {
                "@id": f"{catalog.uri}#sandbox",
                "@type": "dcat:DataService",
                "dct:title": bilingual("数据沙箱", "Data sandbox"),
                "dcat:endpointURL": {"@id": catalog.sandbox_url},
                "dcat:endpointDescription": {"@id": catalog.api_description_url},
                "dcat:servesDataset": [{"@id": dataset_iri(d.id)} for d in catalog.datasets],
                "dct:description": bilingual(
                    "按许可对脱敏数据执行聚合查询的接口，数据不出运营域。",
                    "An API for licensed aggregate queries over desensitized data; the data "
                    "never leaves the operation domain.",
                ),
                "dct:conformsTo": {"@id": OPENAPI_STANDARD, "@type": "dct:Standard"},
                "dct:publisher": {"@id": f"{catalog.uri}#operator"},
                "dcat:contactPoint": _contact(catalog, publisher, f"{catalog.uri}#operator"),
                "dcat:keyword": [text("数据沙箱", "zh"), text("sandbox", "en")],
                "dcat:theme": [
                    {"@id": EU_THEME + "ECON", "@type": "skos:Concept",
                     "skos:prefLabel": bilingual(*EU_THEME_LABELS["ECON"]),
                     "skos:inScheme": {"@id": EU_THEME[:-1]}}
                ],
                "dct:accessRights": {"@id": EU_ACCESS_RIGHT + "RESTRICTED",
                                     "@type": "dct:RightsStatement"},
                "dct:license": {"@id": f"{catalog.uri}#usage-rights"},
            }
        ],
        "dcat:dataset": [dataset_node(catalog, ds) for ds in catalog.datasets],
    }
    doc["dct:publisher"] = _agent(f"{catalog.uri}#operator", publisher, "Company")
    issued = [d.issued for d in catalog.datasets if d.issued is not None]
    if issued:
        doc["dct:issued"] = _datetime(min(issued))
    if catalog.modified is not None:
        doc["dct:modified"] = _datetime(catalog.modified)
    return doc
