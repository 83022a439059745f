"""Attacks in pixel space: the RMSE search of Woods et al. (Algorithm 1) and PGD.

Hand-written: Algorithm 1 exists in no library. PGD is written here too (not
``captum.robust.PGD``) because every caller needs per-example objectives,
targeted and custom losses, and a guaranteed projection onto the eps-ball
intersected with [0, 1]; tests check it against its definition.

Distances: the RMSE search measures perturbations by per-image RMSE,
sqrt(mean((x' - x)^2)) over all pixels and channels; PGD uses l-inf
(max |x' - x|) or per-image l2 (sqrt(sum (x' - x)^2)).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .checks import InputError, check_choice, check_images, check_labels, check_logits, check_positive
from .models import eval_mode

__all__ = ["SEARCH_MODES", "SearchResult", "LateCriterionWarning", "rmse", "step_sizes", "rmse_search", "pgd"]

SEARCH_MODES = ("l2", "l2min", "attack", "btr", "explain")


class LateCriterionWarning(UserWarning):
    """Some examples met the search criterion only after T/2 steps (bound unreliable)."""


@dataclass
class SearchResult:
    """Output of :func:`rmse_search`.

    Attributes:
        x_adv: x + delta: the final delta for "l2"/"explain"; for the minimal
            modes ("l2min", "attack", "btr") the smallest-RMSE delta that met
            the criterion (the final delta where it was never met).
        distances: per-example RMSE of the best delta (inf where never met);
            0 where the criterion held at delta = 0. Minimal modes only, else the
            RMSE of the final delta.
        first_met: step at which the criterion was first met (-1: never).
        unreliable: met after T/2 steps, or never (minimal modes only).
    """

    x_adv: torch.Tensor
    distances: torch.Tensor
    first_met: torch.Tensor
    unreliable: torch.Tensor


def rmse(delta: torch.Tensor) -> torch.Tensor:
    """Per-example RMSE sqrt(mean(delta^2)) over all pixels and channels."""
    return delta.pow(2).mean(dim=tuple(range(1, delta.dim()))).sqrt()  # any memory layout, no copy


def step_sizes(eps: float, steps: int, overshoot: float = 1.0) -> torch.Tensor:
    """Linearly decreasing ramp: step t has size eps * o * (T - t) / (T (T + 1) / 2); sums to eps * o."""
    t = torch.arange(steps, dtype=torch.float64)
    return eps * overshoot * (steps - t) / (steps * (steps + 1) / 2)


def rmse_search(
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    *,
    mode: str,
    eps: float,
    steps: int,
    overshoot: float = 1.0,
    momentum: float = 0.0,
    clip: bool = False,
    mask: torch.Tensor | None = None,
    on_late: str = "flag",
    progress=None,
) -> SearchResult:
    r"""Algorithm 1 of Woods et al. (2019): the RMSE search behind adversarial training, ARA and AEs.

    Start at delta = 0 and walk a total path length eps * o in T steps of
    linearly decreasing size (:func:`step_sizes`). At each step, per example,
    a flag says whether to keep pushing:

    - "l2": RMSE(delta) < eps (stay inside the budget), ascending CE(labels);
    - "l2min" and "attack": the prediction is still ``labels``, ascending CE;
    - "btr": softmax probability of ``labels`` > 1/C, ascending CE;
    - "explain": RMSE(delta) < eps, *descending* CE(labels) (labels = targets).

    Direction = the CE gradient (signed as above) where the flag is set, else
    -delta (shrink back toward x); each direction is scaled to unit RMSE. With
    momentum m > 0, v <- m v + direction and the step follows v / RMSE(v), so
    every step keeps its ramp length. The minimal modes keep, per example, the
    smallest-RMSE delta at which the criterion was met (prediction changed /
    probability <= 1/C); first met after T/2 steps marks the bound unreliable.

    Args:
        labels: true classes (ascent modes) or target classes ("explain").
        eps: RMSE budget (> 0); steps: T (>= 1); overshoot: o (default 1).
        momentum: m in [0, 1). Default 0.
        clip: evaluate and keep x + delta inside [0, 1]. Default False, as in
            the reference implementation (deltas may leave the pixel range).
        mask: bool (N,): perturb only these examples (half-and-half training).
        on_late: "flag" (default; see ``unreliable``), "warn" or "raise" when
            an example meets its criterion late or never (raise eps or steps).
        progress: optional tqdm bar, advanced by N per step.
    """
    check_choice(mode, "mode", SEARCH_MODES)
    check_images(x, "x")
    n = x.shape[0]
    check_positive(eps, "eps")
    check_positive(steps, "steps", integer=True)
    check_positive(overshoot, "overshoot")
    check_choice(on_late, "on_late", ("flag", "warn", "raise"))
    if not 0.0 <= momentum < 1.0:
        raise InputError(f"momentum: expected a value in [0, 1), got {momentum!r}")
    minimal = mode in ("l2min", "attack", "btr")
    sign = -1.0 if mode == "explain" else 1.0
    sizes = step_sizes(eps, steps, overshoot).tolist()
    if mask is not None and (not isinstance(mask, torch.Tensor) or tuple(mask.shape) != (n,)):
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise InputError(f"mask: expected a bool tensor of shape ({n},), one flag per image, got {got}")
    active = torch.ones(n, dtype=torch.bool, device=x.device) if mask is None else mask.to(x.device).bool()
    delta = torch.zeros_like(x)
    velocity = torch.zeros_like(x)
    best = torch.zeros_like(x)
    dist = torch.full((n,), math.inf, device=x.device)
    first = torch.full((n,), -1, dtype=torch.long, device=x.device)
    with eval_mode(model):
        for t in range(steps + 1):  # the extra pass only scores the final delta
            d = delta.detach().requires_grad_(t < steps)
            logits = model(_nhwc(_apply(x, d, clip)))
            if t == 0:
                check_logits(logits, n)
                check_labels(labels, n, logits.shape[1], "labels")
            push = _push(mode, logits.detach(), labels, rmse(d.detach()), eps)
            if minimal:
                met = ~push & active
                r = rmse(d.detach())
                better = met & (r < dist)
                dist = torch.where(better, r, dist)
                best = torch.where(better[:, None, None, None], d.detach(), best)
                first = torch.where(met & (first < 0), torch.full_like(first, t), first)
            if t == steps:
                break
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(F.cross_entropy(logits, labels, reduction="sum"), d)
            direction = torch.where(push[:, None, None, None], sign * grad, -delta)
            direction = _unit_rmse(direction)
            if momentum > 0:
                velocity = momentum * velocity + direction
                direction = _unit_rmse(velocity)
            delta = delta + sizes[t] * direction * active[:, None, None, None]
            if clip:
                delta = _apply(x, delta, True) - x
            if progress is not None:
                progress.update(n)
    if minimal:
        unreliable = active & ((first < 0) | (first > steps // 2))
        x_adv = x + torch.where(torch.isfinite(dist)[:, None, None, None], best, delta)
        _report_late(unreliable, on_late, mode, eps, steps)
        distances = torch.where(active, dist, torch.zeros_like(dist))
    else:
        x_adv = _apply(x, delta, clip)
        unreliable = torch.zeros(n, dtype=torch.bool, device=x.device)
        distances = rmse(delta)
    return SearchResult(x_adv.detach(), distances.detach(), first, unreliable)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    eps: float,
    steps: int = 40,
    step_size: float = 0.01,
    norm: str = "linf",
    random_start: bool = False,
    targets: torch.Tensor | None = None,
    objective=None,
    clip: bool = True,
) -> torch.Tensor:
    r"""Projected gradient ascent in the eps-ball (Madry et al. 2018); returns x' (detached).

    Each step: g = grad of the per-example objective summed over the batch;
    "linf": delta <- clamp(delta + step_size * sign(g), -eps, eps);
    "l2": delta <- Proj_{||.||_2 <= eps}(delta + step_size * g / ||g||_2)
    (per-image l2 norm); with ``clip`` (default True) x + delta is then kept
    in [0, 1]. The objective is CE(model(x'), y) (untargeted), or
    -CE(model(x'), targets) with ``targets``, or ``objective(x') -> (N,)``.

    Args:
        random_start: start uniformly in the l-inf ball, or at a random
            direction with radius U(0, eps) for l2. Default False.
    """
    check_images(x, "x")
    check_positive(eps, "eps", allow_zero=True)
    check_positive(steps, "steps", integer=True, allow_zero=True)
    check_positive(step_size, "step_size")
    check_choice(norm, "norm", ("linf", "l2"))
    n = x.shape[0]
    if objective is None:
        if (y is None) == (targets is None):
            raise InputError("y/targets: pass exactly one of y (untargeted) or targets (targeted)")
        labels, sgn = (y, 1.0) if targets is None else (targets, -1.0)

        def objective(xa):
            logits = model(xa)
            check_labels(labels, n, logits.shape[1], "targets" if sgn < 0 else "y")
            return sgn * F.cross_entropy(logits, labels, reduction="none")

    delta = torch.zeros_like(x)
    if random_start and eps > 0:
        if norm == "linf":
            delta = (torch.rand_like(x) * 2 - 1) * eps
        else:
            u = torch.randn_like(x)
            delta = u / _l2(u)[:, None, None, None] * eps * torch.rand(n, 1, 1, 1, device=x.device)
        delta = _project(x, delta, eps, norm, clip)
    with eval_mode(model):
        for _ in range(steps):
            d = delta.detach().requires_grad_(True)
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(objective(x + d).sum(), d)
            if norm == "linf":
                step = step_size * grad.sign()
            else:
                step = step_size * grad / _l2(grad).clamp_min(1e-12)[:, None, None, None]
            delta = _project(x, delta + step, eps, norm, clip)
    return (x + delta).detach()


def _push(mode, logits, labels, r, eps):
    if mode in ("l2", "explain"):
        return r < eps
    if mode in ("l2min", "attack"):
        return logits.argmax(1) == labels
    probs = logits.softmax(1).gather(1, labels[:, None]).squeeze(1)  # btr
    return probs > 1.0 / logits.shape[1]


def _apply(x, delta, clip):
    return (x + delta).clamp(0, 1) if clip else x + delta


def _nhwc(x):
    """A differentiable copy of x in channels-last (NHWC) strides on CPU, values unchanged.

    The search spends its time in the model's forward and input-gradient passes;
    oneDNN convolutions and max-pooling on CPU run faster in NHWC, and a layer's
    output follows its input's layout. For C = 1 the two layouts hold the same
    bytes and ``contiguous(channels_last)`` (like ``x + d``) keeps NCHW strides,
    so an explicit copy sets the stride of C to 1: the first convolution then
    sees NHWC and the layers after it stay NHWC. Other devices keep x as is.
    """
    if x.device.type != "cpu" or x.dim() != 4 or x.stride(1) == 1:
        return x
    return torch.empty_like(x, memory_format=torch.channels_last).copy_(x)


def _unit_rmse(v):
    r = rmse(v)
    return v / torch.where(r > 0, r, torch.ones_like(r))[:, None, None, None]


def _l2(v):
    return v.flatten(1).norm(dim=1)


def _project(x, delta, eps, norm, clip):
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        scale = (eps / _l2(delta).clamp_min(1e-12)).clamp(max=1.0)
        delta = delta * scale[:, None, None, None]
    return ((x + delta).clamp(0, 1) - x) if clip else delta


def _report_late(unreliable, on_late, mode, eps, steps):
    k = int(unreliable.sum())
    if not k or on_late == "flag":
        return
    msg = (
        f"{k} example(s) met the {mode!r} criterion only after T/2 = {steps // 2} steps or never: "
        f"their minimal distance is unreliable; raise eps (now {eps}) or steps (now {steps})"
    )
    if on_late == "raise":
        raise InputError(msg)
    warnings.warn(msg, LateCriterionWarning, stacklevel=3)
