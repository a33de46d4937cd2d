"""Benchmark: one consented lookup (one enterprise's rows from one published table).

Run: ``.venv/bin/python bench/lookup.py [--rows 5000000] [--repeat 9] [--quick]``

A generated table shaped like a published tax table (entity pseudonym, period, amounts; about
ten rows per enterprise, in random order, 200,000-row row groups as the pipeline writes them)
is written twice: with the Bloom filter the pipeline now puts on the entity key, and without.
Each row of the result is the median over ``--repeat`` lookups of random existing keys:

- ``pyarrow scan``: the earlier implementation (a pyarrow dataset scan with the key as a
  filter expression), which reads the key column of every row group;
- ``read_subject_rows``: the current one (DuckDB, the key as a bound parameter), on the
  file without and with Bloom filters; with them, row groups that cannot hold the key are
  skipped.

The figures are for ``docs/benchmarks.md``; nothing here is part of ``make test``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from market.consents.records import TableSpec, read_subject_rows  # noqa: E402
from market.pipeline.runner import KEY_BLOOM_FPP  # noqa: E402

ROW_GROUP = 200_000
KEY = "统一社会信用代码"
COLUMNS = ("所属期", "纳税额", "税种")


def generate(rows: int, seed: int = 5) -> tuple[pa.Table, list[str]]:
    rng = np.random.default_rng(seed)
    entities = max(1, rows // 10)
    names = np.array([f"ent_{x:024x}" for x in rng.integers(0, 2**63, entities)])
    owner = rng.integers(0, entities, rows)
    table = pa.table(
        {
            KEY: pa.array(names[owner]),
            "所属期": pa.array(
                [f"20{y:02d}-{m:02d}" for y, m in zip(rng.integers(20, 26, rows),
                                                        rng.integers(1, 13, rows), strict=True)]
            ),
            "纳税额": pa.array(rng.integers(0, 10_000_000, rows)),
            "税种": pa.array(rng.choice(["增值税", "企业所得税", "印花税"], rows)),
        }
    )
    return table, list(names[rng.integers(0, entities, 64)])


def pyarrow_scan(path: Path, key: str) -> int:
    dataset = pads.dataset(str(path), format="parquet")
    return dataset.scanner(columns=list(COLUMNS), filter=pads.field(KEY) == key).head(501).num_rows


def median_ms(fn, keys: list[str], repeat: int) -> tuple[float, int]:
    times, found = [], 0
    for i in range(repeat):
        start = time.perf_counter()
        found = fn(keys[i % len(keys)])
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="500,000 rows")
    args = parser.parse_args()
    rows = 500_000 if args.quick else args.rows
    console = Console(width=120)
    table, keys = generate(rows)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-lookup-") as tmp:
        plain, bloom = Path(tmp, "plain.parquet"), Path(tmp, "bloom.parquet")
        pq.write_table(table, plain, row_group_size=ROW_GROUP, compression="zstd")
        pq.write_table(
            table, bloom, row_group_size=ROW_GROUP, compression="zstd",
            bloom_filter_options={KEY: {"ndv": ROW_GROUP, "fpp": KEY_BLOOM_FPP}},
        )  # fmt: skip
        groups = pq.ParquetFile(bloom).num_row_groups

        def lookup(path: Path):
            spec = TableSpec("t", path, KEY, COLUMNS)
            return lambda key: len(read_subject_rows(spec, key).rows)

        runs = [
            ("pyarrow scan (earlier), no Bloom filter", plain, lambda k: pyarrow_scan(plain, k)),
            ("read_subject_rows, no Bloom filter", plain, lookup(plain)),
            ("read_subject_rows, Bloom filter on the key", bloom, lookup(bloom)),
        ]
        for name, path, fn in runs:
            fn(keys[-1])  # warm the page cache and the imports
            ms, found = median_ms(fn, keys, args.repeat)
            results.append((name, path.stat().st_size / 1e6, ms, found))

    out = Table(title=f"One lookup in a {rows:,}-row table ({groups} row groups), median ms")
    for col in ("implementation", "file MB", "ms per lookup", "rows found (last)", "vs earlier"):
        out.add_column(col, justify="left" if col == "implementation" else "right")
    base = results[0][2]
    for name, size, ms, found in results:
        out.add_row(name, f"{size:,.1f}", f"{ms:,.1f}", str(found), f"{base / ms:.1f}x")
    console.print(out)


if __name__ == "__main__":
    main()
