"""Confidence intervals for the book's headline figures: Wilson for shares, bootstrap for means and medians.

Hand-written on purpose (a dozen lines each) to avoid a statistics dependency
for two formulas; each is tested against scipy in ``tests/test_stats.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .checks import InputError, check_positive

__all__ = ["Estimate", "wilson", "bootstrap", "bootstrap_mean", "bootstrap_median"]

_Z95 = 1.959963984540054  # the 97.5% quantile of the standard normal


@dataclass(frozen=True)
class Estimate:
    """A statistic with its sample size and a 95% confidence interval [lo, hi]."""

    value: float
    lo: float
    hi: float
    n: int

    def __str__(self) -> str:
        return f"{self.value:.3g} [{self.lo:.3g}, {self.hi:.3g}] (n={self.n})"

    def as_dict(self) -> dict:
        return {"value": self.value, "lo": self.lo, "hi": self.hi, "n": self.n}


def wilson(successes: int, n: int) -> Estimate:
    r"""Share k / n with its 95% Wilson score interval (Wilson 1927).

        centre = (k + z^2/2) / (n + z^2),
        half = z / (n + z^2) * sqrt(k (n - k) / n + z^2 / 4),     z = 1.96.

    Unlike the normal approximation it stays inside [0, 1] and is not empty
    at k = 0 or k = n. ``n = 0`` gives NaN everywhere.
    """
    if (
        isinstance(successes, bool)
        or isinstance(n, bool)
        or not all(isinstance(v, int) for v in (successes, n))
    ):
        raise InputError(f"successes, n: expected integers, got {successes!r}, {n!r}")
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise InputError(f"successes: expected 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    z2 = _Z95**2
    centre = (successes + z2 / 2) / (n + z2)
    half = _Z95 / (n + z2) * math.sqrt(successes * (n - successes) / n + z2 / 4)
    return Estimate(successes / n, max(0.0, centre - half), min(1.0, centre + half), n)


def bootstrap_mean(values, *, resamples: int = 2000, seed: int = 0) -> Estimate:
    """Mean of ``values`` with a 95% percentile-bootstrap interval (Efron & Tibshirani 1993).

    Resamples ``values`` with replacement ``resamples`` times (a seeded
    generator: the same values give the same interval) and takes the 2.5% and
    97.5% quantiles of the resampled means. NaN values are refused.
    """
    return _bootstrap(values, resamples, seed, lambda v: v.mean(-1))


def bootstrap_median(values, *, resamples: int = 2000, seed: int = 0) -> Estimate:
    """Median of ``values`` with a 95% percentile-bootstrap interval, as :func:`bootstrap_mean`.

    For statistics with a heavy tail (e.g. a discrepancy divided by a map's
    near-zero range), where one image would move the mean.
    """
    return _bootstrap(values, resamples, seed, lambda v: v.quantile(0.5, dim=-1))


def bootstrap(values, statistic, *, resamples: int = 2000, seed: int = 0) -> Estimate:
    """Any statistic of ``values`` with a 95% percentile-bootstrap interval, as :func:`bootstrap_mean`.

    ``statistic`` maps a (R, n) float64 tensor of R resampled rows to (R,) values
    (it also gets the original values as a (n,) row).
    """
    return _bootstrap(values, resamples, seed, statistic)


def _bootstrap(values, resamples, seed, statistic) -> Estimate:
    v = torch.as_tensor(values, dtype=torch.float64).flatten().cpu()
    check_positive(resamples, "resamples", integer=True)
    if v.numel() == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    if not torch.isfinite(v).all():
        raise InputError("values: expected finite numbers, got NaN or inf")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(v.numel(), (resamples, v.numel()), generator=g)
    stats = statistic(v[idx])
    lo, hi = torch.quantile(stats, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return Estimate(float(statistic(v)), lo, hi, v.numel())
