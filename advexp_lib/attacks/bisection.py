"""One per-example bisection, and the transfer attack built on it (a line search along fixed directions).

Hand-written: Boopathy et al.'s reference bracketing rule, shared by the ISA and :func:`line_search`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..checks import InputError, check_images, check_positive
from .search import SearchResult, as_criterion, criterion_met, rmse

__all__ = ["Bisection", "line_search"]


class Bisection:
    r"""Per-example boundary b of a monotone predicate on [lo, hi] ((N,) tensors), from ``start``; per round:

        above (b > v):  lo = v,  v = min(2 v, (lo + hi) / 2)     (doubling while hi is far, e.g. inf)
        below:          hi = v,  v = (lo + hi) / 2               (examples not ``active`` keep theirs)

    Examples:
        >>> b = Bisection(torch.tensor([0.05]), torch.tensor([0.0]), torch.tensor([1.0]))
        >>> for _ in range(20):
        ...     b.update(above=b.value < 0.3)
        >>> round(float(b.hi), 4)
        0.3
    """

    def __init__(self, start: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor):
        self.value, self.lo, self.hi = start, lo, hi

    def update(self, above: torch.Tensor, active: torch.Tensor | None = None) -> None:
        """One round: ``above`` (bool (N,)) says where the boundary lies relative to :attr:`value`."""
        if active is not None:
            up, down = above & active, ~above & active
            self.lo = torch.where(up, self.value, self.lo)
            self.hi = torch.where(down, self.value, self.hi)
            mid = (self.lo + self.hi) / 2
            self.value = torch.where(
                up, torch.minimum(2 * self.value, mid), torch.where(down, mid, self.value)
            )
            return
        self.hi, self.lo = torch.where(above, self.hi, self.value), torch.where(above, self.value, self.lo)
        mid = (self.lo + self.hi) / 2
        self.value = torch.where(above, torch.minimum(2 * self.value, mid), mid)


def line_search(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    directions: torch.Tensor,
    *,
    criterion=None,
    max_rmse: float = 1.0,
    rounds: int = 30,
) -> SearchResult:
    r"""Transfer attack: least s with x_i + s u_i (unclipped) meeting the criterion, u_i unit-RMSE directions.

    s doubles from ``max_rmse`` / 64 until the criterion ("attack", default, or "btr") holds or s > max_rmse,
    then ``rounds`` bisections. Distance: s (inf: none found; 0: x already meets it).

    Examples:
        >>> res = line_search(model, x, y, torch.randn_like(x))
        >>> res.distances.shape
        torch.Size([4])
    """
    criterion = as_criterion(criterion or "attack", ("attack", "btr"))
    check_images(x, "x")
    check_positive(max_rmse, "max_rmse")
    check_positive(rounds, "rounds", integer=True)
    if not isinstance(directions, torch.Tensor) or directions.shape != x.shape:
        raise InputError(f"directions: expected a tensor of the images' shape {tuple(x.shape)}")
    n = x.shape[0]
    norm = rmse(directions)
    u = directions / torch.where(norm > 0, norm, torch.ones_like(norm))[:, None, None, None]

    def met(s):
        return criterion_met(model, x + s[:, None, None, None] * u, y, criterion)

    zero = met(torch.zeros(n, dtype=x.dtype, device=x.device))
    lo = torch.zeros(n, dtype=x.dtype, device=x.device)
    search = Bisection(torch.full_like(lo, max_rmse / 64), lo, torch.full_like(lo, math.inf))
    found = zero.clone()
    while not bool(found.all()) and float(search.value[~found].max()) <= max_rmse:  # bracket: double
        ok = met(search.value) & ~found
        search.update(above=~ok, active=~found)
        found = found | ok
    usable = found & ~zero & (norm > 0)
    for _ in range(rounds):  # bisect the bracketed ones
        search.update(above=~met(search.value), active=usable)
    hi = search.hi
    inf = torch.full_like(lo, math.inf)
    distances = torch.where(zero, torch.zeros_like(lo), torch.where(usable, hi, inf))
    x_adv = x + torch.where(usable, hi, torch.zeros_like(hi))[:, None, None, None] * u
    none = torch.zeros(n, dtype=torch.bool, device=x.device)
    return SearchResult(x_adv.detach(), distances, torch.full((n,), -1, device=x.device), none)
