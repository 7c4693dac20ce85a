"""Bootstrap statistics for eval runs: confidence intervals and paired comparison of two runs.

Everything here is a percentile bootstrap (Efron & Tibshirani 1993, ch. 13) with a seeded
``numpy.random.Generator``, so the same inputs and seed always give the same numbers.

Paired comparison of a base run and a new run on the same cases (Koehn 2004 style):

* pairs are the case ids that have a finite value in both runs;
* ``d_i = new_i - base_i`` and ``delta = mean(d)``;
* each bootstrap replicate resamples the case ids with replacement and takes ``mean(d*)``;
* the ``1 - alpha`` interval is the ``alpha/2`` and ``1 - alpha/2`` quantiles of the replicates;
* the two-sided p-value is ``min(1, 2 * share of replicates on the other side of 0 from delta)``
  ("other side" counts replicates equal to 0; ``delta == 0`` gives ``p = 1``);
* the change is significant iff the interval excludes 0 and there are at least
  ``MIN_PAIRED`` pairs: with fewer cases the bootstrap distribution is too coarse to trust;
* a regression is a significant change in the bad direction (down when higher is better,
  up when lower is better, e.g. latency or cost).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

MIN_PAIRED = 5  # fewer pairs than this are never reported as a significant change
_CHUNK_CELLS = 4_000_000  # bound on resampled values held in memory at once


def bootstrap_means(values: Sequence[float], n_boot: int, seed: int = 0) -> np.ndarray:
    """``n_boot`` means of ``values`` resampled with replacement (same size as ``values``).

    Replicate ``b`` is ``mean(values[i_1..i_n])`` with ``i_j`` uniform on ``0..n-1``.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("cannot bootstrap an empty sample")
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_CELLS // data.size)
    out = np.empty(n_boot, dtype=float)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        idx = rng.integers(0, data.size, size=(stop - start, data.size))
        out[start:stop] = data[idx].mean(axis=1)
    return out


def percentile_interval(replicates: np.ndarray, alpha: float) -> tuple[float, float]:
    """``(q(alpha/2), q(1 - alpha/2))`` of the replicates, linear interpolation."""
    check_alpha(alpha)
    low, high = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


@dataclass
class Comparison:
    """Base vs new on one metric, over the cases both runs scored."""

    metric: str
    base_mean: float | None
    new_mean: float | None
    delta: float | None  # mean(new - base) over the paired cases
    ci_low: float | None
    ci_high: float | None
    n_paired: int
    p_value: float | None
    significant: bool
    regression: bool
    higher_is_better: bool

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def paired_values(
    base: Mapping[str, float | None], new: Mapping[str, float | None]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Sorted case ids with a finite value in both runs, and the two value arrays."""
    ids = sorted(
        cid for cid in base.keys() & new.keys() if _finite(base[cid]) and _finite(new[cid])
    )
    b = np.array([base[cid] for cid in ids], dtype=float)
    n = np.array([new[cid] for cid in ids], dtype=float)
    return ids, b, n


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def two_sided_p(replicates: np.ndarray, delta: float) -> float:
    """``min(1, 2 * share of replicates on the other side of 0 from delta)``; 1 when delta is 0."""
    if delta == 0:
        return 1.0
    other = replicates <= 0 if delta > 0 else replicates >= 0
    return min(1.0, 2.0 * float(np.mean(other)))


def paired_bootstrap(
    base: Mapping[str, float | None],
    new: Mapping[str, float | None],
    metric: str,
    higher_is_better: bool = True,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> Comparison:
    """Paired percentile bootstrap of ``mean(new - base)`` over the shared cases.

    ``base_mean`` and ``new_mean`` are over the paired cases only, so ``delta`` is exactly
    ``new_mean - base_mean``. With no pairs every number is None; with one pair there is a delta
    but no interval or p-value. Never significant with fewer than ``MIN_PAIRED`` pairs.
    """
    check_alpha(alpha)
    _, b, n = paired_values(base, new)
    if b.size == 0:
        return Comparison(
            metric, None, None, None, None, None, 0, None, False, False, higher_is_better
        )
    diffs = n - b
    delta = float(diffs.mean())
    ci_low = ci_high = p_value = None
    if diffs.size >= 2:
        reps = bootstrap_means(diffs, n_boot, seed)
        ci_low, ci_high = percentile_interval(reps, alpha)
        p_value = two_sided_p(reps, delta)
    excludes_zero = ci_low is not None and ci_high is not None and (ci_low > 0 or ci_high < 0)
    significant = diffs.size >= MIN_PAIRED and excludes_zero
    worse = delta < 0 if higher_is_better else delta > 0
    return Comparison(
        metric=metric,
        base_mean=float(b.mean()),
        new_mean=float(n.mean()),
        delta=delta,
        ci_low=ci_low,
        ci_high=ci_high,
        n_paired=int(diffs.size),
        p_value=p_value,
        significant=significant,
        regression=significant and worse,
        higher_is_better=higher_is_better,
    )


def compare_runs(
    base: Mapping[str, Mapping[str, float | None]],
    new: Mapping[str, Mapping[str, float | None]],
    higher_is_better: Mapping[str, bool],
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> list[Comparison]:
    """``paired_bootstrap`` for every metric in both runs (``run[metric][case_id] = value``).

    Metrics are compared in sorted order; a metric missing from ``higher_is_better`` is an
    error rather than a guess at its direction.
    """
    out = []
    for metric in sorted(base.keys() & new.keys()):
        if metric not in higher_is_better:
            raise KeyError(f"no direction (higher_is_better) given for metric {metric!r}")
        out.append(
            paired_bootstrap(
                base[metric], new[metric], metric, higher_is_better[metric], n_boot, seed, alpha
            )
        )
    return out


def mean_ci(
    values: Sequence[float], n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float | None, float | None, float | None]:
    """``(mean, ci_low, ci_high)``: percentile-bootstrap ``1 - alpha`` interval of the mean.

    The mean is None for no values; the interval is None for fewer than 2 values.
    """
    check_alpha(alpha)
    if not values:
        return None, None, None
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, None, None
    low, high = percentile_interval(bootstrap_means(values, n_boot, seed), alpha)
    return mean, low, high


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (``q`` in 0..100) by linear interpolation between closest ranks.

    Over the sorted values ``x_0..x_{n-1}``, with ``h = (n - 1) q / 100``:
    ``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])`` (numpy's default).
    None for no values; non-finite values are an error.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    if not values:
        return None
    data = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(data)):
        raise ValueError("percentile of non-finite values")
    return float(np.percentile(data, q))
