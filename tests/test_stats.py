"""Confidence intervals against scipy and against their promised coverage."""

import math

import numpy as np
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


def test_seed_mean_difference_by_hand_and_its_interval_widens_with_the_spread_between_seeds():
    from advexp_lib.stats import paired_mean_difference, seed_mean_difference

    g = torch.Generator().manual_seed(0)
    a = (torch.rand(1, 200, generator=g) < 0.7).double()
    b = (torch.rand(200, generator=g) < 0.5).double()
    one = seed_mean_difference(a, b)
    assert one.value == pytest.approx(a.mean().item() - b.mean().item())
    flat = paired_mean_difference(a[0], b)  # one seed a side: the image-level paired bootstrap
    assert one.lo == pytest.approx(flat.lo, abs=0.02) and one.hi == pytest.approx(flat.hi, abs=0.02)
    # two seeds that disagree completely: the mean difference is 0, and the interval must span
    # the seeds' spread (an image-only bootstrap would call it about 0 +- 0.05)
    split = torch.stack([torch.ones(200), torch.zeros(200)]).double()
    wide = seed_mean_difference(split, torch.full((200,), 0.5, dtype=torch.float64))
    assert wide.value == pytest.approx(0.0) and wide.lo < -0.4 and wide.hi > 0.4
    with pytest.raises(InputError, match=r"b: expected the 200 images of a, got 199"):
        seed_mean_difference(a, b[:199])
    with pytest.raises(InputError, match=r"a: expected finite values of shape \(seeds, images\)"):
        seed_mean_difference(torch.ones(2, 3, 4), b)


def test_hierarchical_resamples_draws_images_once_for_every_group_then_each_groups_seeds():
    """Recomputed by hand from the same generator: one image draw shared by both groups, then seed draws."""
    from advexp_lib.stats import hierarchical_resamples

    a = np.array([[0.0, 1.0, 2.0], [10.0, 11.0, 12.0]])
    b = np.array([[5.0, 6.0, 7.0]])
    ta, tb = hierarchical_resamples([a, b], lambda v: v.mean(-1), resamples=3, seed=7)
    rng = np.random.default_rng(7)
    images = rng.integers(0, 3, size=(3, 3))
    pick_a = rng.integers(0, 2, size=(3, 2))
    pick_b = rng.integers(0, 1, size=(3, 1))
    want_a = [np.mean([a[s, images[i]].mean() for s in pick_a[i]]) for i in range(3)]
    want_b = [np.mean([b[s, images[i]].mean() for s in pick_b[i]]) for i in range(3)]
    np.testing.assert_allclose(ta, want_a)
    np.testing.assert_allclose(tb, want_b)
    assert not np.allclose(ta, ta[0])  # the draws vary: the test can tell a shared draw from none
