"""Latency histograms: fixed bucket bounds, the bucket of a duration, and a percentile from
merged bucket counts. Pure (no Flask, no database).

A histogram of fixed buckets merges by adding counts, which is what several gunicorn workers
(or hosts) need: each keeps its own counts and adds them to the shared rows. The price is
resolution: a percentile is known only up to its bucket, so :func:`percentile` answers the
bucket's upper bound (an upper estimate, never an understatement).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping

#: Upper bounds in milliseconds (a duration d falls in the first bucket with d <= bound),
#: roughly 1-2-5 per decade up to a minute.
BOUNDS_MS: tuple[int, ...] = (
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000,
)
#: The bucket of everything slower than the last bound (stored with this bound).
OVERFLOW_MS = 2_147_483_647


def bucket_of(duration_ms: float) -> int:
    """The upper bound of the bucket ``duration_ms`` falls in (``OVERFLOW_MS`` past the last).

    Raises ValueError for a negative or non-finite duration."""
    if not math.isfinite(duration_ms) or duration_ms < 0:
        raise ValueError(f"not a duration: {duration_ms!r}")
    i = bisect.bisect_left(BOUNDS_MS, duration_ms)
    return BOUNDS_MS[i] if i < len(BOUNDS_MS) else OVERFLOW_MS


def merge(*histograms: Mapping[int, int]) -> dict[int, int]:
    """Bucket-wise sum of histograms ``{bound: count}``."""
    out: dict[int, int] = {}
    for h in histograms:
        for bound, count in h.items():
            out[bound] = out.get(bound, 0) + count
    return out


def percentile(counts: Mapping[int, int] | Iterable[tuple[int, int]], q: int = 95) -> int | None:
    """The nearest-rank ``q``-th percentile of a histogram ``{bound: count}``, as the upper
    bound of the bucket holding it; ``None`` without observations or when it lies in the
    overflow bucket (slower than the last bound: no upper bound to give).

    Raises ValueError for ``q`` outside 1..100 or a negative count."""
    if not 1 <= q <= 100:
        raise ValueError("q is a percentage in 1..100")
    items = sorted(dict(counts).items() if isinstance(counts, Mapping) else counts)
    if any(c < 0 for _, c in items):
        raise ValueError("counts are >= 0")
    total = sum(c for _, c in items)
    if total == 0:
        return None
    rank = math.ceil(q * total / 100)  # exact: integers only
    seen = 0
    for bound, count in items:
        seen += count
        if seen >= rank:
            return None if bound == OVERFLOW_MS else bound
    raise AssertionError("unreachable: rank <= total")
