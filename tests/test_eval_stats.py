"""Paired bootstrap comparison of eval runs on synthetic data with a known effect."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evals.stats import (
    MIN_PAIRED,
    bootstrap_means,
    compare_runs,
    mean_ci,
    paired_bootstrap,
    paired_values,
    two_sided_p,
)

N = 200


def runs(
    shift: float, seed: int = 1, centred: bool = False
) -> tuple[dict[str, float], dict[str, float]]:
    """Base ~ N(0.5, 0.1) on N cases; new = base + shift + N(0, 0.05) noise per case."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.5, 0.1, N)
    noise = rng.normal(0.0, 0.05, N)
    if centred:
        noise -= noise.mean()  # mean difference exactly 0 (up to rounding)
    ids = [f"q{i:03d}" for i in range(N)]
    new = base + shift + noise
    return dict(zip(ids, base.tolist(), strict=True)), dict(zip(ids, new.tolist(), strict=True))


def test_known_shift_is_significant() -> None:
    base, new = runs(0.2)
    c = paired_bootstrap(base, new, "token_f1")
    assert c.n_paired == N
    # delta = 0.2 + mean(noise); sd of that mean = 0.05 / sqrt(200) = 0.0035
    assert c.delta == pytest.approx(0.2, abs=0.015)
    assert c.ci_low is not None and c.ci_high is not None and c.delta is not None
    assert 0 < c.ci_low < c.delta < c.ci_high
    assert c.ci_high - c.ci_low < 0.03  # about 2 * 1.96 * 0.0035 = 0.014
    assert c.significant and not c.regression
    assert c.p_value == 0.0  # no replicate of 2000 crosses 0
    assert c.new_mean is not None and c.base_mean is not None
    assert c.new_mean - c.base_mean == pytest.approx(c.delta)


def test_known_drop_is_a_regression() -> None:
    base, new = runs(-0.2)
    c = paired_bootstrap(base, new, "token_f1")
    assert c.significant and c.regression
    assert c.ci_high is not None and c.ci_high < 0


def test_no_shift_is_not_significant() -> None:
    base, new = runs(0.0, centred=True)
    c = paired_bootstrap(base, new, "token_f1")
    assert c.delta == pytest.approx(0.0, abs=1e-12)
    assert c.ci_low is not None and c.ci_high is not None
    assert c.ci_low < 0 < c.ci_high
    assert not c.significant and not c.regression
    assert c.p_value is not None and c.p_value > 0.5


def test_latency_increase_is_a_regression_when_lower_is_better() -> None:
    rng = np.random.default_rng(7)
    base = {f"q{i}": float(x) for i, x in enumerate(rng.uniform(200, 400, 50))}
    slower = {k: v * 1.5 for k, v in base.items()}  # every case 50% slower
    c = paired_bootstrap(base, slower, "latency_ms", higher_is_better=False)
    assert c.delta is not None and c.delta > 0
    assert c.significant and c.regression and not c.higher_is_better
    faster = {k: v * 0.5 for k, v in base.items()}
    c = paired_bootstrap(base, faster, "latency_ms", higher_is_better=False)
    assert c.significant and not c.regression


def test_disjoint_ids_have_no_pairs() -> None:
    c = paired_bootstrap({"a": 1.0, "b": 0.0}, {"c": 1.0, "d": 1.0}, "em")
    assert c.n_paired == 0
    assert (c.delta, c.ci_low, c.ci_high, c.p_value, c.base_mean) == (None,) * 5
    assert not c.significant and not c.regression
    assert c.as_json()["n_paired"] == 0


def test_few_pairs_never_significant() -> None:
    ids = [f"q{i}" for i in range(MIN_PAIRED - 1)]
    base = dict.fromkeys(ids, 0.0)
    new = {k: 1.0 + 0.01 * i for i, k in enumerate(ids)}  # large, consistent gain
    c = paired_bootstrap(base, new, "em")
    assert c.n_paired == MIN_PAIRED - 1
    assert c.delta == pytest.approx(1.015)  # 1 + 0.01 * (0 + 1 + 2 + 3) / 4
    assert c.ci_low is not None and c.ci_low > 0  # the interval excludes 0 ...
    assert not c.significant and not c.regression  # ... but 4 pairs are too few
    single = paired_bootstrap({"a": 0.0}, {"a": 1.0}, "em")
    assert (single.n_paired, single.delta, single.ci_low, single.p_value) == (1, 1.0, None, None)


def test_missing_and_nan_values_are_not_paired() -> None:
    base = {"a": 1.0, "b": None, "c": math.nan, "d": 0.0}
    new = {"a": 0.0, "b": 1.0, "c": 1.0, "d": 1.0, "e": 1.0}
    ids, b, n = paired_values(base, new)
    assert ids == ["a", "d"]
    assert b.tolist() == [1.0, 0.0] and n.tolist() == [0.0, 1.0]


def test_seeded_and_reproducible() -> None:
    base, new = runs(0.01, seed=5)
    assert paired_bootstrap(base, new, "f1", seed=3) == paired_bootstrap(base, new, "f1", seed=3)


def test_two_sided_p() -> None:
    reps = np.array([-0.1, 0.1, 0.2, 0.3])
    assert two_sided_p(reps, 0.15) == 0.5  # 1 of 4 at or below 0, doubled
    assert two_sided_p(reps, -0.05) == 1.0  # 3 of 4 at or above 0, doubled, capped at 1
    assert two_sided_p(reps, 0.0) == 1.0


def test_bootstrap_means_and_mean_ci() -> None:
    reps = bootstrap_means([1.0, 1.0, 1.0], 100)
    assert reps.shape == (100,) and np.all(reps == 1.0)
    with pytest.raises(ValueError):
        bootstrap_means([], 10)
    with pytest.raises(ValueError):
        bootstrap_means([1.0], 0)
    assert mean_ci([]) == (None, None, None)
    assert mean_ci([0.3]) == (0.3, None, None)
    mean, low, high = mean_ci([0.0, 1.0] * 20, n_boot=1000)
    assert mean == 0.5 and low is not None and high is not None and low < 0.5 < high
    with pytest.raises(ValueError):
        mean_ci([1.0, 2.0], alpha=1.5)


def test_compare_runs_needs_a_direction_for_each_metric() -> None:
    base, new = runs(0.2)
    results = compare_runs(
        {"f1": base, "latency_ms": base},
        {"f1": new, "latency_ms": new},
        {"f1": True, "latency_ms": False},
        n_boot=500,
    )
    assert [c.metric for c in results] == ["f1", "latency_ms"]
    assert not results[0].regression and results[1].regression  # slower latency is worse
    with pytest.raises(KeyError):
        compare_runs({"f1": base}, {"f1": new}, {})
