"""Statistics of the book's headline figures: intervals from ``scipy.stats``, and one verdict rule.

Wilson and percentile-bootstrap intervals, a two-level (seeds x images) bootstrap, McNemar's exact
test, and :func:`verdict`: *reproduced*, *not reproduced* or *not shown*.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import asdict, dataclass
from enum import Enum

import numpy as np
import scipy.stats
import torch

from .checks import InputError, check_positive

__all__ = [
    "Estimate",
    "Verdict",
    "wilson",
    "bootstrap",
    "bootstrap_mean",
    "bootstrap_median",
    "paired_mean_difference",
    "seed_mean_difference",
    "hierarchical_resamples",
    "PairedTest",
    "mcnemar",
    "verdict",
]

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A statistic with its sample size and a 95% confidence interval [lo, hi] (NaN: none).

    Examples:
        >>> e = Estimate(0.5, 0.4, 0.6, 100)
        >>> str(e), Estimate.from_dict(e.to_dict()) == e
        ('0.5 [0.4, 0.6] (n=100)', True)
    """

    value: float
    lo: float
    hi: float
    n: int

    def __str__(self) -> str:
        return f"{self.value:.3g} [{self.lo:.3g}, {self.hi:.3g}] (n={self.n})"

    def to_dict(self) -> dict:
        """{"value", "lo", "hi", "n"}: what records store."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Estimate:
        """The inverse of :meth:`to_dict`."""
        return cls(float(d["value"]), float(d["lo"]), float(d["hi"]), int(d["n"]))


def wilson(successes: int, n: int) -> Estimate:
    r"""Share k / n with its 95% Wilson score interval (Wilson 1927; ``scipy.stats.binomtest``); n = 0: NaN.

        centre = (k + z^2/2) / (n + z^2),
        half = z / (n + z^2) * sqrt(k (n - k) / n + z^2 / 4),     z = 1.96.

    Examples:
        >>> str(wilson(57, 150))
        '0.38 [0.306, 0.46] (n=150)'
    """
    if (
        isinstance(successes, bool)
        or isinstance(n, bool)
        or not all(isinstance(v, (int, np.integer)) for v in (successes, n))
    ):
        raise InputError(f"successes, n: expected integers, got {successes!r}, {n!r}")
    successes, n = int(successes), int(n)
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise InputError(f"successes: expected 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    ci = scipy.stats.binomtest(successes, n).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return Estimate(successes / n, float(ci.low), float(ci.high), n)


def bootstrap(values, statistic, *, resamples: int = 2000, seed: int = 0, paired_with=None) -> Estimate:
    """Any statistic of ``values`` with a 95% percentile-bootstrap interval (Efron & Tibshirani 1993).

    ``scipy.stats.bootstrap`` ("percentile"), ``resamples`` draws seeded with ``seed``. ``statistic``
    maps float64 rows, ``(v, axis=-1)``, to one value each; with ``paired_with`` (same length) rows are
    drawn jointly and it gets ``(v, w, axis=-1)``. Fewer than two values: NaN bounds.

    Examples:
        >>> str(bootstrap([1.0, 2.0, 3.0, 4.0], np.max))
        '4 [2, 4] (n=4)'
    """
    check_positive(resamples, "resamples", integer=True)
    data = [_finite_values(values, "values")]
    if paired_with is not None:
        data.append(_finite_values(paired_with, "paired_with"))
        if data[1].shape != data[0].shape:
            raise InputError(f"paired_with: expected {data[0].size} values, got {data[1].size}")
    n = data[0].size
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    value = float(statistic(*data, axis=-1))
    if n == 1:
        return Estimate(value, math.nan, math.nan, 1)
    res = scipy.stats.bootstrap(
        tuple(data),
        statistic,
        n_resamples=resamples,
        confidence_level=CONFIDENCE,
        method="percentile",
        paired=paired_with is not None,
        vectorized=True,
        random_state=np.random.default_rng(seed),
    )
    return Estimate(value, float(res.confidence_interval.low), float(res.confidence_interval.high), n)


def bootstrap_mean(values, *, resamples: int = 2000, seed: int = 0) -> Estimate:
    """Mean of ``values`` with a 95% percentile-bootstrap interval (:func:`bootstrap`). NaN is refused.

    Examples:
        >>> str(bootstrap_mean([1.0, 2.0, 3.0, 4.0]))
        '2.5 [1.5, 3.5] (n=4)'
    """
    return bootstrap(values, np.mean, resamples=resamples, seed=seed)


def bootstrap_median(values, *, resamples: int = 2000, seed: int = 0) -> Estimate:
    """Median of ``values`` with a 95% percentile-bootstrap interval, as :func:`bootstrap_mean` (heavy tails).

    Examples:
        >>> bootstrap_median([1.0, 2.0, 3.0, 100.0]).value
        2.5
    """
    return bootstrap(values, np.median, resamples=resamples, seed=seed)


def paired_mean_difference(a, b, *, resamples: int = 2000, seed: int = 0) -> Estimate:
    """Mean of a_i - b_i over pairs where both are defined (not NaN), with a 95% bootstrap interval.

    Examples:
        >>> str(paired_mean_difference([0.5, 0.7, float("nan"), 0.9], [0.4, 0.5, 0.3, 0.6]))
        '0.2 [0.1, 0.3] (n=3)'
    """
    a, b = (torch.as_tensor(v, dtype=torch.float64).flatten().cpu() for v in (a, b))
    if a.shape != b.shape:
        raise InputError(f"b: expected one value per value of a ({a.numel()}), got {b.numel()}")
    ok = ~(a.isnan() | b.isnan())
    return bootstrap_mean((a - b)[ok], resamples=resamples, seed=seed)


def seed_mean_difference(a, b, *, resamples: int = 4000, seed: int = 0) -> Estimate:
    r"""mean_s mean_i a_si - mean_s mean_i b_si: two recipes over their training seeds, paired by image.

    ``a`` (S_a, N), ``b`` (S_b, N): one value per (seed, image), bool as 0 / 1; (N,) is one network.
    Interval: percentiles of :func:`hierarchical_resamples`. Returns an :class:`Estimate`, n = images.

    Examples:
        >>> a = torch.tensor([[1.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 1.0]])
        >>> b = torch.tensor([0.0, 1.0, 0.0, 0.0])
        >>> seed_mean_difference(a, b).value
        0.375
    """
    check_positive(resamples, "resamples", integer=True)
    rows = []
    for name, v in (("a", a), ("b", b)):
        t = torch.as_tensor(v).detach().cpu().to(torch.float64)
        t = t[None] if t.dim() == 1 else t
        if t.dim() != 2 or t.shape[0] == 0 or t.shape[1] == 0 or not torch.isfinite(t).all():
            raise InputError(f"{name}: expected finite values of shape (seeds, images), got {tuple(t.shape)}")
        rows.append(t.numpy())
    if rows[0].shape[1] != rows[1].shape[1]:
        raise InputError(f"b: expected the {rows[0].shape[1]} images of a, got {rows[1].shape[1]}")
    n = rows[0].shape[1]
    value = float(rows[0].mean() - rows[1].mean())
    if n == 1:
        return Estimate(value, math.nan, math.nan, 1)
    means = hierarchical_resamples(rows, lambda v: v.mean(-1), resamples=resamples, seed=seed)
    lo, hi = np.percentile(means[0] - means[1], [2.5, 97.5])
    return Estimate(value, float(lo), float(hi), n)


def hierarchical_resamples(rows, statistic, *, resamples: int = 4000, seed: int = 0) -> list:
    r"""Two-level bootstrap draws of each group's seed-averaged statistic, paired by image.

    ``rows``: one (S_k, N) array per group (seeds x the same N images). Per resample b the images are
    drawn with replacement once for all groups, then each group's seeds:
    T_kb = mean_{s ~ S_k} statistic(rows_k[s, images_b]), ``statistic`` (..., N) -> (...). Returns
    one (resamples,) array of T per group. Hand-written: ``scipy.stats.bootstrap`` resamples one level.

    Examples:
        >>> a = np.array([[1.0, 1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 1.0]])
        >>> (t,) = hierarchical_resamples([a], lambda v: v.mean(-1), resamples=500)
        >>> t.shape, bool(0 <= t.min() and t.max() <= 1)
        ((500,), True)
    """
    check_positive(resamples, "resamples", integer=True)
    n = rows[0].shape[1]
    rng = np.random.default_rng(seed)
    images = rng.integers(0, n, size=(resamples, n))
    out = []
    for r in rows:
        per = statistic(r[:, images]).T  # (resamples, seeds): each seed's statistic on the resampled images
        pick = rng.integers(0, r.shape[0], size=per.shape)
        out.append(np.take_along_axis(per, pick, axis=1).mean(1))
    return out


@dataclass(frozen=True)
class PairedTest:
    """McNemar's comparison of two classifiers a, b on the same images (:func:`mcnemar`).

    ``difference``: accuracy of a minus b, exact 95% interval; ``a_only`` / ``b_only``: images only a /
    only b gets right; ``p_value``: two-sided; ``a_rate`` / ``b_rate``: accuracies.

    Examples:
        >>> print(mcnemar([1, 1, 1, 0], [0, 0, 1, 0]))
        0.5 [-0.342, 0.5] (n=4), McNemar p = 0.5 (2 vs 0 discordant)
    """

    difference: Estimate
    a_only: int
    b_only: int
    p_value: float
    a_rate: float = math.nan
    b_rate: float = math.nan

    def __str__(self) -> str:
        return (
            f"{self.difference}, McNemar p = {self.p_value:.2g} ({self.a_only} vs {self.b_only} discordant)"
        )

    def to_dict(self) -> dict:
        """{"difference": Estimate.to_dict(), "a_only", "b_only", "p_value", "a_rate", "b_rate"}."""
        return {
            "difference": self.difference.to_dict(),
            "a_only": self.a_only,
            "b_only": self.b_only,
            "p_value": self.p_value,
            "a_rate": self.a_rate,
            "b_rate": self.b_rate,
        }


def mcnemar(a, b) -> PairedTest:
    r"""McNemar's exact test of two classifiers' correctness on the same images, and its interval.

    n_a, n_b: images only ``a`` / only ``b`` gets right, d = n_a + n_b, N all: p = binomtest(n_a, d, 1/2),
    two-sided (1 if d = 0). Difference (n_a - n_b) / N = (2 q - 1) d / N, q = n_a / d, with q's exact
    (Clopper-Pearson) interval mapped likewise ([0, 0] if d = 0): it excludes 0 iff the test rejects at 5%.

    Args:
        a, b: (N,) bool (or 0/1) per image, True where the classifier is right.

    Examples:
        >>> t = mcnemar([1, 1, 1, 1, 1, 1, 0, 1], [0, 0, 0, 0, 0, 0, 0, 1])
        >>> (t.a_only, t.b_only, round(t.p_value, 4))
        (6, 0, 0.0312)
        >>> print(t.difference)
        0.75 [0.0611, 0.75] (n=8)
    """
    a, b = (torch.as_tensor(v).flatten().cpu().bool() for v in (a, b))
    if a.shape != b.shape or a.numel() == 0:
        raise InputError(f"b: expected one outcome per outcome of a ({a.numel()} > 0), got {b.numel()}")
    n = a.numel()
    a_only, b_only = int((a & ~b).sum()), int((b & ~a).sum())
    d = a_only + b_only
    if d:
        test = scipy.stats.binomtest(a_only, d, 0.5)
        q = test.proportion_ci(confidence_level=0.95, method="exact")
        p, lo, hi = test.pvalue, (2 * q.low - 1) * d / n, (2 * q.high - 1) * d / n
    else:
        p, lo, hi = 1.0, 0.0, 0.0
    diff = Estimate((a_only - b_only) / n, float(lo), float(hi), n)
    return PairedTest(diff, a_only, b_only, float(p), float(a.double().mean()), float(b.double().mean()))


class Verdict(str, Enum):
    """What a 95% interval says about a claim (:func:`verdict`).

    Examples:
        >>> str(Verdict.NOT_SHOWN)
        'not shown'
    """

    REPRODUCED = "reproduced"
    NOT_REPRODUCED = "not reproduced"
    NOT_SHOWN = "not shown"
    AT_BOUND = "not judged: both arms at 0 or both at 1"

    def __str__(self) -> str:
        return self.value


_CLAIM = re.compile(r"\s*([<>])\s*(-?\d+(?:\.\d*)?(?:e-?\d+)?)\s*")
_SIDES = {">": operator.gt, "<": operator.lt}


def verdict(estimate: Estimate | None, claim: str, *, arms=None) -> Verdict:
    """The verdict on the claim "the quantity is ``claim``" (e.g. "> 1", "< 0") from its 95% interval.

    - reproduced: the whole interval lies on the claimed side of the bound;
    - not reproduced: the whole interval lies on the other side, the bound included;
    - not shown: the interval contains the bound, or there is none (None, NaN bounds, n = 0);
    - not judged: ``arms`` (the two compared rates) both 0 or both 1: a floor or ceiling.

    Examples:
        >>> verdict(Estimate(1.4, 1.1, 1.8, 100), "> 1")
        <Verdict.REPRODUCED: 'reproduced'>
        >>> str(verdict(Estimate(0.02, -0.01, 0.05, 40), "> 0"))
        'not shown'
        >>> str(verdict(Estimate(0.0, 0.0, 0.0, 40), "> 0", arms=(0.0, 0.0)))
        'not judged: both arms at 0 or both at 1'
    """
    m = _CLAIM.fullmatch(claim) if isinstance(claim, str) else None
    if m is None:
        raise InputError(f"claim: expected '> c' or '< c' with a number c, got {claim!r}")
    side, bound = _SIDES[m.group(1)], float(m.group(2))
    rates = None if arms is None else [float(a) for a in arms]
    if rates and len(set(rates)) == 1 and rates[0] in (0.0, 1.0):
        return Verdict.AT_BOUND
    if estimate is None or not (math.isfinite(estimate.lo) and math.isfinite(estimate.hi)):
        return Verdict.NOT_SHOWN
    if side(estimate.lo, bound) and side(estimate.hi, bound):
        return Verdict.REPRODUCED
    if not side(estimate.lo, bound) and not side(estimate.hi, bound):
        return Verdict.NOT_REPRODUCED
    return Verdict.NOT_SHOWN


def _finite_values(values, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    v = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(v).all():
        raise InputError(f"{name}: expected finite numbers, got NaN or inf")
    return v
