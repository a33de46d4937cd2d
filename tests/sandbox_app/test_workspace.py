"""Building a license's workspace from catalogue rows (plain objects stand in for the ORM)."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace as NS

from sandbox.workspace import SandboxSettings, build_workspace, table_for

SETTINGS = SandboxSettings(row_cap=50, timeout_s=5)


def col(name, role="dimension", treatment="none", lower=None, upper=None, type_="string"):
    return NS(
        name=name,
        role=role,
        treatment=treatment,
        lower_bound=lower,
        upper_bound=upper,
        type=type_,
    )


def dataset(
    columns,
    *,
    grade="conditional",
    dp=None,
    slug="t1",
    path="d/1.parquet",
    version=True,
    status="listed",
    ranges=None,
):
    current = (
        NS(id=30, version=3, parquet_path=path, parquet_sha256=None, columns=columns,
           status=status) if version else None
    )
    return NS(
        id=7,
        slug=slug,
        title="T",
        open_grade=grade,
        k_min=8,
        dp_epsilon_budget=dp,
        dp_epsilon_per_query=Decimal("0.25"),
        dp_delta=None,
        dp_max_groups_per_entity=None,
        dp_max_rows_per_entity=None,
        dp_version_budget=None,
        dp_ranges=ranges,
        current_version=current,
    )


COLUMNS = [
    col("key", "entity_key", "pseudonymized"),
    col("district"),
    # Bounds the pipeline once derived from the data are never used: only declared ranges.
    col("amount", "measure", lower=Decimal("5.0000"), upper=Decimal("77.0000")),
    col("rate", "measure"),
    col("phone", "other", "masked"),
    col("alias", "dimension", "pseudonymized"),
    col("dropped", "dimension", "suppressed"),
    col("half", "measure", lower=Decimal(1)),
    col("not_licensed"),
]
RANGES = {"amount": ["0", "1000000.0000"], "rate": ["0.5000", "2.2500"], "district": ["0", "1"]}
LICENSED = ["district", "amount", "rate", "phone", "alias", "dropped", "half"]


def test_licensed_columns_kinds_and_bounds():
    table = table_for(dataset(COLUMNS, dp=Decimal(3), ranges=RANGES), LICENSED, SETTINGS)
    assert table is not None
    kinds = {c.name: c.kind for c in table.columns}
    # The key always comes along; masked or pseudonymized columns are identifiers whatever the
    # declared role; suppressed and unlicensed columns are absent.
    assert kinds == {
        "key": "entity_key",
        "district": "dimension",
        "amount": "measure",
        "rate": "measure",
        "phone": "identifier",
        "alias": "identifier",
        "half": "measure",
    }
    bounds = {c.name: (c.lower, c.upper) for c in table.columns}
    assert bounds["amount"] == (Decimal(0), Decimal(1_000_000))
    assert str(bounds["amount"][1]) == "1000000" and str(bounds["rate"][0]) == "0.5"
    assert bounds["half"] == (None, None)  # no declared range: unbounded (data bounds ignored)
    assert bounds["district"] == (None, None)  # ranges apply to measures only
    assert table.dp_epsilon_per_query == Decimal("0.25") and table.k_min == 8
    assert table.privacy is not None and table.privacy.epsilon_budget == Decimal(3)
    assert table.version_id == 30
    spec = table.spec()
    assert spec.entity_key == "key" and spec.column("amount").bounded
    assert not spec.column("half").bounded


def test_tables_that_cannot_be_served():
    assert table_for(dataset(COLUMNS, version=False), LICENSED, SETTINGS) is None
    assert table_for(dataset(COLUMNS, path=None), LICENSED, SETTINGS) is None
    assert table_for(dataset(COLUMNS, status="pending_review"), LICENSED, SETTINGS) is None
    assert table_for(dataset(COLUMNS, grade="restricted"), LICENSED, SETTINGS) is None
    assert table_for(dataset(COLUMNS[1:]), LICENSED, SETTINGS) is None  # no entity key
    assert table_for(dataset(COLUMNS, slug="bad-slug"), LICENSED, SETTINGS) is None
    # DP applies to conditional data only, and always to it (no budget set: the defaults).
    assert (
        table_for(
            dataset(COLUMNS, grade="open", dp=Decimal(1)), LICENSED, SETTINGS
        ).dp_epsilon_per_query
        is None
    )
    assert table_for(dataset(COLUMNS), LICENSED, SETTINGS).privacy.epsilon_budget > 0


def test_workspace_context_and_files():
    good = dataset(COLUMNS, dp=Decimal(1))
    gone = dataset(COLUMNS, slug="t2", version=False)
    gone.title = "Gone"
    lic = NS(id=5, items=[NS(dataset=good, columns=LICENSED), NS(dataset=gone, columns=[])])
    ws = build_workspace(lic, SETTINGS)
    assert [t.slug for t in ws.tables] == ["t1"] and ws.unavailable == ("Gone",)
    assert ws.uses_dp and ws.data_versions == "t1@3"
    ctx = ws.context()
    assert ctx.row_cap == 50 and ctx.table("T1") is not None
    assert ws.files(lambda key: f"/data/{key}") == {"t1": "/data/d/1.parquet"}


def test_settings_from_config():
    s = SandboxSettings.from_config({"MARKET_SANDBOX_ROW_CAP": 10, "MARKET_SANDBOX_TIMEOUT_S": "2.5"})
    assert (s.row_cap, s.timeout_s) == (10, 2.5)
    assert SandboxSettings.from_config({}) == SandboxSettings()
