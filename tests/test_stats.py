"""Confidence intervals against scipy and against their promised coverage."""

import math

import pytest
import scipy.stats
import torch

from advexp_lib import InputError
from advexp_lib.stats import bootstrap_mean, bootstrap_median, wilson


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (57, 150), (1, 1)])
def test_wilson_matches_scipy(k, n):
    ref = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    est = wilson(k, n)
    assert est.value == pytest.approx(k / n)
    assert (est.lo, est.hi) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert est.n == n


def test_wilson_edge_cases_and_errors():
    assert math.isnan(wilson(0, 0).value)
    assert (
        wilson(0, 20).lo == pytest.approx(0.0, abs=1e-12) and wilson(0, 20).hi > 0.1
    )  # not the empty interval of the normal rule
    with pytest.raises(InputError, match="successes"):
        wilson(5, 3)
    with pytest.raises(InputError, match="integers"):
        wilson(0.5, 3)


def test_bootstrap_matches_scipy_percentile():
    x = torch.distributions.Exponential(1.0).sample((60,)).double()
    est = bootstrap_mean(x, resamples=100_000)
    ref = scipy.stats.bootstrap(
        (x.numpy(),),
        lambda v: v.mean(),
        n_resamples=100_000,
        method="percentile",
        confidence_level=0.95,
        random_state=0,
    ).confidence_interval
    spread = x.std().item() / math.sqrt(60)
    assert est.value == pytest.approx(x.mean().item())
    assert est.lo == pytest.approx(ref.low, abs=0.05 * spread) and est.hi == pytest.approx(
        ref.high, abs=0.05 * spread
    )


def test_bootstrap_covers_the_true_mean_about_95_percent_and_can_say_no():
    g = torch.Generator().manual_seed(1)
    covered = 0
    for trial in range(200):
        x = torch.randn(40, generator=g, dtype=torch.float64) + 2.0
        est = bootstrap_mean(x, resamples=500, seed=trial)
        covered += est.lo <= 2.0 <= est.hi
    assert 0.88 <= covered / 200 <= 0.99
    est = bootstrap_mean(torch.randn(200, generator=g, dtype=torch.float64) + 2.0)
    assert not est.lo <= 1.8 <= est.hi  # a wrong mean is excluded
    assert bootstrap_mean(torch.full((5,), 0.3)).lo == pytest.approx(0.3)
    with pytest.raises(InputError, match="values"):
        bootstrap_mean([1.0, float("nan")])


def test_bootstrap_median_matches_numpy_and_resists_an_outlier():
    x = torch.cat([torch.arange(1.0, 21.0), torch.tensor([1e12])])
    est = bootstrap_median(x)
    assert (
        est.value == float(torch.median(x)) == 11.0 and 6 < est.lo < est.hi < 17
    )  # the outlier does not reach it
    assert bootstrap_mean(x).hi > 1e10
