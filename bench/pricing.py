"""Benchmark: in-process pricing quotes per second.

Run: ``.venv/bin/python bench/pricing.py [--quick]``

Scenarios:
- single-item quote with a warm curve cache (scopes repeat, the usual case in production);
- single-item quote with the curve cache cleared before every quote (worst case);
- a 20-item bundle quote.

The target from the issue is below 1 ms per single-item quote. The bundle row shows the
same budget scaled per item (20 ms for 20 items) for comparison only.
Timings are integer nanoseconds from ``perf_counter_ns``; the table is formatted with Decimal.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

# This script is named like the package it measures: take bench/ off the path so that
# ``import pricing`` finds the package, not this file.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from pricing import (  # noqa: E402
    PURPOSE_ORDER,
    Costs,
    DatasetInfo,
    PricingParameters,
    Scope,
    quote,
)
from pricing._num import power_ratio  # noqa: E402

TARGET_NS_PER_ITEM = 1_000_000  # 1 ms
CATEGORIES = (
    "market_supervision",
    "tax",
    "judicial",
    "social_security",
    "natural_resources",
    "utilities",
)


def make_datasets(rng: random.Random, count: int) -> list[DatasetInfo]:
    datasets = []
    for i in range(1, count + 1):
        n_columns = rng.randint(5, 40)
        columns = {f"col_{j}": Decimal(rng.randint(1, 300)).scaleb(-2) for j in range(n_columns)}
        columns["uscc"] = Decimal(1)
        datasets.append(
            DatasetInfo(
                dataset_id=i,
                category=rng.choice(CATEGORIES),
                quality_score=Decimal(rng.randint(60, 100)),
                costs=Costs(
                    rng.randint(10**5, 10**8),
                    rng.randint(0, 10**7),
                    rng.randint(0, 10**6),
                    rng.randint(0, 10**7),
                ),
                columns=columns,
                entity_key="uscc",
            )
        )
    return datasets


def make_scope(rng: random.Random, dataset: DatasetInfo) -> Scope:
    names = sorted(dataset.columns)
    columns = (
        None
        if rng.randint(1, 10) <= 3
        else frozenset(rng.sample(names, rng.randint(1, len(names))))
    )
    return Scope(
        columns=columns,
        duration_months=rng.randint(1, 60),
        purpose=rng.choice(PURPOSE_ORDER[1:]),
        query_quota=rng.randint(1, 200_000),
    )


def time_calls(calls: list[Callable[[], object]], repeats: int) -> int:
    """Median over ``repeats`` of the mean ns per call (each repeat runs every call once)."""
    per_call = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for call in calls:
            call()
        per_call.append((time.perf_counter_ns() - start) // len(calls))
    per_call.sort()
    return per_call[len(per_call) // 2]


def fmt_ms(ns: int) -> str:
    return f"{Decimal(ns) / Decimal(1_000_000):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer quotes, for a smoke run")
    args = parser.parse_args()
    singles, bundles, repeats = (300, 30, 3) if args.quick else (3_000, 300, 7)

    rng = random.Random(20250701)
    params = PricingParameters.default()
    datasets = make_datasets(rng, 200)
    single_items = [
        [(ds, make_scope(rng, ds))] for ds in (rng.choice(datasets) for _ in range(singles))
    ]
    bundle_items = [
        [(ds, make_scope(rng, ds)) for ds in rng.sample(datasets, 20)] for _ in range(bundles)
    ]

    def cold(items):
        power_ratio.cache_clear()
        return quote(items, params)

    # Warm the cache and the interpreter once before measuring.
    for items in single_items[:50]:
        quote(items, params)

    rows = [
        (
            "single item, warm curve cache",
            1,
            time_calls([lambda i=i: quote(i, params) for i in single_items], repeats),
        ),
        (
            "single item, cache cleared each quote",
            1,
            time_calls([lambda i=i: cold(i) for i in single_items], repeats),
        ),
        (
            "20-item bundle, warm curve cache",
            20,
            time_calls([lambda i=i: quote(i, params) for i in bundle_items], repeats),
        ),
        (
            "20-item bundle, cache cleared each quote",
            20,
            time_calls([lambda i=i: cold(i) for i in bundle_items], repeats),
        ),
    ]

    table = Table(title="pricing: in-process quote time vs the 1 ms per single-item target")
    for column in ("scenario", "quotes × repeats", "ms / quote", "quotes / s", "ms / item"):
        table.add_column(column, justify="right" if column != "scenario" else "left")
    table.add_column("target ms / quote", justify="right")
    table.add_column("vs target", justify="right")
    table.add_column("ok", justify="center")
    for name, n_items, ns in rows:
        target = TARGET_NS_PER_ITEM * n_items
        count = singles if n_items == 1 else bundles
        table.add_row(
            name,
            f"{count} × {repeats}",
            fmt_ms(ns),
            f"{Decimal(1_000_000_000) / Decimal(ns):,.0f}",
            fmt_ms(ns // n_items),
            fmt_ms(target) + ("" if n_items == 1 else " (1 ms/item)"),
            f"{Decimal(ns) * 100 / Decimal(target):.1f} %",
            "[green]yes[/]" if ns < target else "[red]no[/]",
        )
    # Wide enough for the table when the output is piped into a file.
    console = Console(width=None if sys.stdout.isatty() else 132)
    console.print(table)
    console.print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} cores; command: .venv/bin/python bench/pricing.py"
        + (" --quick" if args.quick else "")
    )


if __name__ == "__main__":
    main()
