"""Entity-level differential privacy for conditional data, on OpenDP's core measurements.

What is released, per aggregate-mode query (the engine SQL has already bounded each entity's
contribution: at most `max_groups_per_entity` groups, its rows counted at most
`max_rows_per_entity` times per group, its own SUM total clamped into the declared range):

- with GROUP BY, which groups exist: the number of distinct entities per group plus Laplace
  noise, kept only if it reaches tau (OpenDP `make_laplace_threshold`; Wilson et al. 2020,
  "Differentially Private SQL with Bounded User Contribution"; Rogers et al. 2023). tau is
  the smallest integer for which OpenDP's own privacy map gives at most the table's delta;
- each COUNT: discrete Laplace over the integer vector of the released groups;
- each SUM: Laplace over the float vector of the released groups.

The query's epsilon is split evenly over these releases; each scale is calibrated so that
OpenDP's privacy map of the release is within its share. Noise is fresh randomness from
OpenDP's samplers (no seeding): consistency is the caller's release cache (`release_key`).

There is no sampler here. `NoNoise` is a test seam (exact values) that code passes explicitly;
nothing in config or a request can select it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol

from .query import Release

ALPHA = 0.05  # error bounds are 95% intervals
_SHARE_MARGIN = 1 - 1e-9  # keep each release's float epsilon strictly within its Decimal share

_dp: Any = None


def _opendp() -> Any:
    """OpenDP's prelude with the `contrib` features on (imported on first use: ~20 ms)."""
    global _dp
    if _dp is None:
        import opendp.prelude as dp

        dp.enable_features("contrib")
        _dp = dp
    return _dp


def _float_up(value: Decimal) -> float:
    """The smallest float >= value (sensitivities must not shrink in conversion)."""
    f = float(value)
    if Decimal(f) < value:
        f = math.nextafter(f, math.inf)
    return f


def _dec(value: float) -> Decimal:
    return Decimal(repr(float(value)))


# -- measurements (cached: building one costs ~0.5 ms, invoking it draws fresh noise) ------


@lru_cache(maxsize=512)
def _int_laplace(scale: float) -> Any:
    dp = _opendp()
    return dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=dp.i64)), dp.l1_distance(T=dp.i64), scale=scale
    )


@lru_cache(maxsize=512)
def _float_laplace(scale: float) -> Any:
    dp = _opendp()
    return dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=dp.f64, nan=False)), dp.l1_distance(T=dp.f64), scale=scale
    )


@lru_cache(maxsize=512)
def _threshold(scale: float, tau: int) -> Any:
    dp = _opendp()
    return dp.m.make_laplace_threshold(
        dp.map_domain(dp.atom_domain(T=dp.String), dp.atom_domain(T=dp.i64)),
        dp.l01inf_distance(dp.absolute_distance(T=dp.i64)),
        scale=scale,
        threshold=tau,
    )


# -- calibration ---------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def calibrate_laplace(kind: str, sensitivity: Decimal, epsilon: Decimal) -> tuple[float, Decimal]:
    """(scale, epsilon) of a `count` (integer) or `sum` (float) release of L1 `sensitivity`
    whose OpenDP privacy map is at most `epsilon`. Raises ValueError for bad inputs."""
    if sensitivity <= 0 or epsilon <= 0:
        raise ValueError("sensitivity and epsilon must be positive")
    target = float(epsilon) * _SHARE_MARGIN
    if kind == "count":
        d_in: Any = int(sensitivity)
        if Decimal(d_in) != sensitivity:
            raise ValueError("a count's sensitivity is an integer")
        make = _int_laplace
    elif kind == "sum":
        d_in = _float_up(sensitivity)
        make = _float_laplace
    else:
        raise ValueError(f"unknown release kind {kind!r}")
    scale = float(d_in) / target
    for _ in range(64):
        eps = make(scale).map(d_in)
        if eps <= target:
            return scale, _dec(eps)
        scale = math.nextafter(scale * (1 + 1e-12), math.inf)
    raise ValueError("could not calibrate the noise scale")  # pragma: no cover


@lru_cache(maxsize=256)
def calibrate_threshold(
    groups_per_entity: int, epsilon: Decimal, delta: Decimal
) -> tuple[float, int, Decimal, Decimal]:
    """(scale, tau, epsilon, delta) of the noisy group selection.

    One entity changes at most `groups_per_entity` groups' distinct counts, each by one. The
    scale gives OpenDP's epsilon within `epsilon`; tau is the smallest integer threshold for
    which OpenDP's delta is at most `delta`. Raises ValueError for bad inputs.
    """
    if groups_per_entity < 1 or epsilon <= 0 or not 0 < delta < 1:
        raise ValueError("bad threshold parameters")
    g = int(groups_per_entity)
    d_in = (g, g, 1)
    target_eps = float(epsilon) * _SHARE_MARGIN
    target_delta = float(delta)
    scale = g / target_eps
    # Laplace tail: delta ~ g * exp(-(tau - 1) / scale) / 2; then walk to the exact minimum.
    tau = max(2, math.ceil(1 + scale * math.log(max(g / (2 * target_delta), 1.0))))

    def measure(t: int) -> tuple[float, float]:
        return _threshold(scale, t).map(d_in)

    for _ in range(64):
        eps, _ = measure(tau)
        if eps <= target_eps:
            break
        scale = math.nextafter(scale * (1 + 1e-12), math.inf)
    else:  # pragma: no cover
        raise ValueError("could not calibrate the threshold scale")
    while measure(tau)[1] > target_delta:
        tau += 1
    while tau > 1 and measure(tau - 1)[1] <= target_delta:
        tau -= 1
    eps, dlt = measure(tau)
    return scale, tau, _dec(eps), _dec(dlt)


@lru_cache(maxsize=1024)
def count_accuracy(scale: float) -> Decimal:
    """Half-width of the 95% interval of a discrete-Laplace count of this scale."""
    return _dec(_opendp().discrete_laplacian_scale_to_accuracy(scale=scale, alpha=ALPHA))


@lru_cache(maxsize=1024)
def sum_accuracy(scale: float) -> Decimal:
    """Half-width of the 95% interval of a Laplace sum of this scale."""
    return _dec(_opendp().laplacian_scale_to_accuracy(scale=scale, alpha=ALPHA))


@lru_cache(maxsize=1024)
def split_accuracy(kind: str, scale: float, alpha: float) -> float:
    """Half-width of the (1 - alpha) interval (used for AVG's union bound)."""
    dp = _opendp()
    if kind == "count":
        return float(dp.discrete_laplacian_scale_to_accuracy(scale=scale, alpha=alpha))
    return float(dp.laplacian_scale_to_accuracy(scale=scale, alpha=alpha))


# -- noise ---------------------------------------------------------------------------------


class Noise(Protocol):
    """Where a release's randomness comes from."""

    def threshold(self, counts: Mapping[str, int], release: Release) -> dict[str, int]:
        """The groups (by label) that pass the noisy threshold, with their noisy counts."""
        ...

    def laplace(self, values: Sequence[Any], release: Release) -> list[Any]:
        """`values` with the release's noise added (ints for counts, floats for sums)."""
        ...


class OpenDPNoise:
    """The default: OpenDP's measurements, fresh randomness on every call."""

    def threshold(self, counts: Mapping[str, int], release: Release) -> dict[str, int]:
        assert release.threshold is not None
        if not counts:
            return {}
        return dict(_threshold(release.scale, release.threshold)(dict(counts)))

    def laplace(self, values: Sequence[Any], release: Release) -> list[Any]:
        if not values:
            return []
        if release.kind == "count":
            return list(_int_laplace(release.scale)([int(v) for v in values]))
        return list(_float_laplace(release.scale)([float(v) for v in values]))


class NoNoise:
    """Test seam: exact values. Groups pass if their exact distinct count reaches
    `min_entities` (default: the release's tau). Never reachable from config or a request."""

    def __init__(self, min_entities: int | None = None) -> None:
        self.min_entities = min_entities

    def threshold(self, counts: Mapping[str, int], release: Release) -> dict[str, int]:
        floor = self.min_entities if self.min_entities is not None else release.threshold
        assert floor is not None
        return {k: int(v) for k, v in counts.items() if int(v) >= floor}

    def laplace(self, values: Sequence[Any], release: Release) -> list[Any]:
        if release.kind == "count":
            return [int(v) for v in values]
        return [float(v) for v in values]


def laplace_noise(*_args: object, **_kwargs: object) -> Decimal:
    """Removed: the hand-written Decimal sampler is gone (issue #12); noise comes from OpenDP.

    Kept as a name only so that old imports fail loudly when called. Raises RuntimeError.
    """
    raise RuntimeError("laplace_noise was removed; use sandbox.dp.OpenDPNoise")
