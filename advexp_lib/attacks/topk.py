"""The prediction-preserving top-k attack on attribution maps (Ghorbani et al. 2019; Chen et al. 2019).

Hand-written: no library's attack keeps the prediction. Distance Measure: Linf.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..attributions import IntegratedGradients, as_explainer
from ..checks import InputError, check_images, check_logits, check_positive
from ..metrics import top_k_intersection
from ..models import eval_mode
from ..results import Result

__all__ = ["TopkAttackResult", "topk_attribution_attack"]


@dataclass
class TopkAttackResult(Result):
    """Output of :func:`topk_attribution_attack`: ``labels`` (the prediction on x, kept), their ``maps`` of x.

    Attributes:
        x_adv, maps_adv: the accepted iterate with the least top-k intersection (x if none), and its maps.
        intersection: top-k intersection of the two maps (1: unchanged); accepted: accepted steps per image.

    Examples:
        >>> ig = IntegratedGradients(n_steps=4)
        >>> r = topk_attribution_attack(model, x, eps=0.1, k=10, steps=2, explainer=ig)
        >>> r.x_adv.shape == x.shape and bool((r.accepted >= 0).all())
        True
    """

    x_adv: torch.Tensor
    labels: torch.Tensor
    intersection: torch.Tensor
    maps: torch.Tensor
    maps_adv: torch.Tensor
    accepted: torch.Tensor


def topk_attribution_attack(
    model: nn.Module,
    x: torch.Tensor,
    *,
    eps: float,
    k: int,
    steps: int = 50,
    step_size: float | None = None,
    explainer=None,
) -> TopkAttackResult:
    r"""Prediction-preserving top-k attack on attribution maps (Ghorbani et al. 2019; Chen et al. 2019).

    Steps x' <- Proj(x' - s sign(grad sum_{i in B} |I_c(x')_i|)) onto the l-inf eps-ball and [0, 1], B
    the k top entries of |I_c(x)| (all channels), c the prediction, I a differentiable ``explainer`` (default
    ``IntegratedGradients()``). A step changing c is rejected, halving that image's s (default 2.5 eps/steps).

    Examples:
        >>> ig = IntegratedGradients(n_steps=4)
        >>> r = topk_attribution_attack(model, x, eps=0.1, k=10, steps=3, explainer=ig)
        >>> bool((r.intersection <= 1).all())
        True
    """
    check_images(x, "x")
    check_positive(eps, "eps")
    check_positive(steps, "steps", integer=True)
    explainer = IntegratedGradients() if explainer is None else as_explainer(explainer)
    if not explainer.differentiable:
        raise InputError(
            f"explainer: the attack descends the map, so it must be differentiable; got {explainer!r}"
        )
    step_size = 2.5 * eps / steps if step_size is None else check_positive(step_size, "step_size")
    n = x.shape[0]
    with eval_mode(model), torch.no_grad():
        labels = check_logits(model(x), n).argmax(1)
    maps = explainer.attribute(model, x, labels)
    numel = maps[0].numel()
    check_positive(k, "k", integer=True)
    if k > numel:
        raise InputError(f"k: expected at most the {numel} entries of a map, got {k}")
    top = torch.zeros_like(maps.flatten(1), dtype=torch.bool)
    top.scatter_(1, maps.flatten(1).abs().topk(k, dim=1).indices, True)
    top = top.view_as(maps).to(maps.dtype)
    cur, best = x.detach().clone(), x.detach().clone()
    best_score = torch.ones(n, device=x.device, dtype=maps.dtype)
    best_maps = maps
    sizes = torch.full((n,), float(step_size), device=x.device, dtype=x.dtype)
    accepted = torch.zeros(n, dtype=torch.long, device=x.device)
    for t in range(steps + 1):  # the extra pass only scores the last accepted iterate
        z = cur.clone().requires_grad_(True)
        m = explainer.attribute(model, z, labels, differentiable=True)
        score = top_k_intersection(maps, m.detach(), k)
        better = score < best_score
        best_score = torch.where(better, score, best_score)
        best = torch.where(better[:, None, None, None], cur, best)
        best_maps = torch.where(better.view(-1, *[1] * (maps.dim() - 1)), m.detach(), best_maps)
        if t == steps:
            break
        mass = (m.abs() * top).sum()
        if mass.requires_grad:  # a map that does not depend on x (a linear model's saliency) gets g = 0
            (g,) = torch.autograd.grad(mass, z, allow_unused=True, materialize_grads=True)
        else:
            g = torch.zeros_like(z)
        cand = x + (cur - sizes[:, None, None, None] * g.sign() - x).clamp(-eps, eps)
        cand = cand.clamp(0, 1).detach()
        with eval_mode(model), torch.no_grad():
            keep = model(cand).argmax(1) == labels
        cur = torch.where(keep[:, None, None, None], cand, cur)
        sizes = torch.where(keep, sizes, sizes / 2)
        accepted += keep.long()
    return TopkAttackResult(best, labels, best_score, maps, best_maps, accepted)
