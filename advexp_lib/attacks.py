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
from .regularizers import _PgdWarmup, global_draw, tandem_margin
from .training import InputTransform

__all__ = ["SEARCH_MODES", "SearchResult", "rmse", "step_sizes", "rmse_search", "pgd",
           "RmseAdversarialTraining", "LateCriterionWarning",
           "IsaResult", "interpretability_sneaking_attack", "TopkAttackResult", "topk_attribution_attack",
           "PgdAdversarialTraining"]

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


def rmse_search(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, *, mode: str, eps: float,
                steps: int, overshoot: float = 1.0, momentum: float = 0.0, clip: bool = False,
                mask: torch.Tensor | None = None, on_late: str = "flag", progress=None) -> SearchResult:
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


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *, eps: float, steps: int = 40,
        step_size: float = 0.01, norm: str = "linf", random_start: bool = False,
        targets: torch.Tensor | None = None, objective=None, clip: bool = True) -> torch.Tensor:
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


class RmseAdversarialTraining(InputTransform):
    """Woods-style adversarial training: replace (a random half of) each batch by its RMSE-search example.

    Args:
        mode: "l2" (stay within eps) or "l2min" (smallest misclassifying delta).
        eps: RMSE budget; paper: 0.01 for "l2", 0.1 for "l2min".
        steps: search steps (paper: 7). half: perturb a random half only (default True).
    """

    def __init__(self, *, mode: str = "l2", eps: float = 0.01, steps: int = 7, half: bool = True,
                 momentum: float = 0.0, overshoot: float = 1.0):
        check_choice(mode, "mode", ("l2", "l2min"))
        check_positive(eps, "eps")
        check_positive(steps, "steps", integer=True)
        self.mode, self.eps, self.steps, self.half = mode, eps, steps, half
        self.momentum, self.overshoot = momentum, overshoot

    def __call__(self, model, x, y):
        if not self.half:
            return self._search(model, x, y)
        mask = global_draw(lambda m: torch.rand(m, device=x.device), x.shape[0]) < 0.5
        out = x.clone()
        if mask.any():  # search only the chosen half: examples are independent in eval mode
            out[mask] = self._search(model, x[mask], y[mask])
        return out

    def _search(self, model, x, y):
        return rmse_search(model, x, y, mode=self.mode, eps=self.eps, steps=self.steps,
                           momentum=self.momentum, overshoot=self.overshoot).x_adv


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
    msg = (f"{k} example(s) met the {mode!r} criterion only after T/2 = {steps // 2} steps or never: "
           f"their minimal distance is unreliable; raise eps (now {eps}) or steps (now {steps})")
    if on_late == "raise":
        raise InputError(msg)
    warnings.warn(msg, LateCriterionWarning, stacklevel=3)



# ---------------------------------------------------------------------------------------------------------
# Attacks on explanations (l-inf): the interpretability sneaking attack of Boopathy et al. (2020), the
# prediction-preserving top-k attribution attack (Ghorbani et al. 2019; Chen et al. 2019), and Madry
# l-inf PGD adversarial training. Hand-written: no library has ISA or the label-preserving top-k attack.
# Maps come from advexp_lib.explain (imported lazily: explain imports this module).


@dataclass
class IsaResult:
    """Output of :func:`interpretability_sneaking_attack` (all tensors have N rows).

    Attributes:
        x_adv: the attacked images (where even ``eps_max`` failed, see ``success``, the eps_max attempt).
        eps: per-image l-inf budget found by the bisection (``eps_max`` where it failed).
        gamma: per-image largest discrepancy weight that kept the attack successful (0: none did).
        success: bool, prediction of x_adv == target.
        one_class, two_class: normalized discrepancies D1, D2 of the result (``measure``'s maps and norm).
        baseline_one, baseline_two: the same for the attack alone (gamma = 0) at the same eps.
        measure: the discrepancy the attack hid from ("one" or "two").
    """

    x_adv: torch.Tensor
    eps: torch.Tensor
    gamma: torch.Tensor
    success: torch.Tensor
    one_class: torch.Tensor
    two_class: torch.Tensor
    baseline_one: torch.Tensor
    baseline_two: torch.Tensor
    measure: str


def interpretability_sneaking_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor, *,
                                     measure: str = "two", method: str = "cam", norm: str = "l1",
                                     eps_max: float = 0.3, steps: int = 100, step_size: float | None = None,
                                     kappa: float = 0.1, gamma_min: float = 1e-3, gamma_max: float = 10.0,
                                     eps_search_steps: int = 8, gamma_search_steps: int = 8,
                                     **options) -> IsaResult:
    r"""Interpretability sneaking attack, ISA (Boopathy et al. 2020): a targeted l-inf attack that hides from a map.

    Per image, PGD (:func:`pgd` through its ``objective`` hook) minimizes

        max(max_{j != t} f_j(x') - f_t(x'), -kappa) + gamma * D(I(x), I(x'))

    in the l-inf ball ||x' - x||_inf <= eps, x' in [0, 1], where D is the
    normalized discrepancy (:func:`advexp_lib.metrics.map_discrepancy`)
    "one": D(I_y) or "two": (D(I_y) + D(I_t)) / 2, with maps from
    ``explain.attribute(method, differentiable=True)``. Two bisections:

    1. eps (gamma = 0, the attack alone): the smallest eps in (0, eps_max]
       where the targeted attack succeeds (``eps_search_steps`` halvings);
    2. gamma at that eps: the largest gamma in [gamma_min, gamma_max] (halving
       in log space, ``gamma_search_steps`` times) that still succeeds.

    Budgets differ per image, while :func:`pgd` takes one float: PGD runs in
    the eps_max ball and the objective evaluates x + s (x' - x) with
    s = eps_i / eps_max. The effective perturbation lies in the eps_i ball
    and in [0, 1] (a convex combination of x and x'), and the effective step
    is s * step_size (proportional to eps_i, as usual). The result is then
    clamped to the eps_i ball and [0, 1] against round-off, so
    ||x_adv - x||_inf <= eps_i always.

    Args:
        y: true classes; targets: attacked classes (N,), each != y.
        measure: "two" (default) or "one": the discrepancy hidden from.
        method: map method (default "cam", the paper's; any of
            ``explain.DIFFERENTIABLE``); ``options`` go to ``attribute``.
        norm: discrepancy norm "l1" (default) or "l2".
        eps_max: largest l-inf budget (default 0.3, MNIST).
        steps: PGD steps per attack (default 100); step_size: default 2.5 * eps_max / steps.
        kappa: margin confidence (default 0.1, the paper's).
        gamma_min, gamma_max: gamma search range (defaults 1e-3, 10).
    Returns:
        :class:`IsaResult`.
    """
    from .explain import DIFFERENTIABLE, attribute
    from .metrics import map_discrepancy

    check_images(x, "x")
    check_choice(measure, "measure", ("one", "two"))
    check_choice(method, "method", DIFFERENTIABLE)
    check_choice(norm, "norm", ("l1", "l2"))
    check_positive(eps_max, "eps_max")
    check_positive(steps, "steps", integer=True)
    check_positive(kappa, "kappa", allow_zero=True)
    check_positive(gamma_min, "gamma_min")
    check_positive(gamma_max, "gamma_max")
    check_positive(eps_search_steps, "eps_search_steps", integer=True, allow_zero=True)
    check_positive(gamma_search_steps, "gamma_search_steps", integer=True, allow_zero=True)
    if gamma_min >= gamma_max:
        raise InputError(f"gamma_min: expected gamma_min < gamma_max, got {gamma_min} >= {gamma_max}")
    step_size = 2.5 * eps_max / steps if step_size is None else check_positive(step_size, "step_size")
    n = x.shape[0]
    with eval_mode(model), torch.no_grad():
        num_classes = check_logits(model(x), n).shape[1]
    check_labels(y, n, num_classes, "y")
    check_labels(targets, n, num_classes, "targets")
    if (targets == y).any():
        raise InputError("targets: every target must differ from the true class y")
    clean_y = attribute(model, x, y, method=method, **options)
    clean_t = attribute(model, x, targets, method=method, **options)

    def discrepancy(z, classes, clean, differentiable):  # D(I_classes(x), I_classes(z))
        return map_discrepancy(clean, attribute(model, z, classes, method=method, differentiable=differentiable,
                                                **options), norm=norm)

    def disc(z, differentiable, measure=measure):  # -> (D1, the measure: D1 or D2)
        d_y = discrepancy(z, y, clean_y, differentiable)
        if measure == "one":
            return d_y, d_y
        return d_y, (d_y + discrepancy(z, targets, clean_t, differentiable)) / 2

    def run(eps, gamma):
        s = (eps / eps_max).to(x.dtype)[:, None, None, None]

        def objective(xa):
            z = (x + s * (xa - x)).clamp(0, 1)  # clamp only guards round-off: z is a convex combination
            loss = (-tandem_margin(model(z), targets)).clamp(min=-kappa)  # max_{j != t} f_j - f_t
            if (gamma > 0).any():
                loss = loss + gamma * disc(z, True)[1]  # [1]: the measure hidden from
            return -loss  # pgd ascends

        xa = pgd(model, x, eps=eps_max, steps=steps, step_size=step_size, objective=objective)
        delta = torch.maximum(torch.minimum(s * (xa - x), eps[:, None, None, None]), -eps[:, None, None, None])
        xa = (x + delta).clamp(0, 1).detach()
        with eval_mode(model), torch.no_grad():
            ok = model(xa).argmax(1) == targets
        return xa, ok

    zeros = torch.zeros(n, device=x.device, dtype=x.dtype)
    hi = torch.full((n,), float(eps_max), device=x.device, dtype=x.dtype)
    best, success = run(hi, zeros)
    lo = zeros.clone()
    for _ in range(eps_search_steps):  # 1. smallest eps for the attack alone
        mid = (lo + hi) / 2
        xa, ok = run(mid, zeros)
        ok = ok & success
        hi, lo = torch.where(ok, mid, hi), torch.where(ok, lo, mid)
        best = torch.where(ok[:, None, None, None], xa, best)
    eps = hi
    baseline = best
    gamma = zeros.clone()
    glo = torch.full_like(zeros, math.log(gamma_min))
    ghi = torch.full_like(zeros, math.log(gamma_max))
    for _ in range(gamma_search_steps):  # 2. largest gamma that still succeeds at that eps
        mid = (glo + ghi) / 2
        trial = torch.where(success, mid.exp(), zeros)
        xa, ok = run(eps, trial)
        ok = ok & success
        gamma = torch.where(ok, trial, gamma)
        best = torch.where(ok[:, None, None, None], xa, best)
        glo, ghi = torch.where(ok, mid, glo), torch.where(ok, ghi, mid)
    one, two = (d.detach() for d in disc(best, False, "two"))
    b_one, b_two = (d.detach() for d in disc(baseline, False, "two"))
    return IsaResult(best, eps, gamma, success, one, two, b_one, b_two, measure)


@dataclass
class TopkAttackResult:
    """Output of :func:`topk_attribution_attack`.

    Attributes:
        x_adv: the accepted iterate with the smallest top-k intersection (x itself if none helped).
        labels: the predicted classes of x, kept by every accepted step.
        intersection: top-k intersection of the maps of x and x_adv (1 = attack did nothing).
        maps, maps_adv: the (detached) maps of x and x_adv for ``labels``.
        accepted: number of accepted steps per image.
    """

    x_adv: torch.Tensor
    labels: torch.Tensor
    intersection: torch.Tensor
    maps: torch.Tensor
    maps_adv: torch.Tensor
    accepted: torch.Tensor


def topk_attribution_attack(model: nn.Module, x: torch.Tensor, *, eps: float, k: int, steps: int = 50,
                            step_size: float | None = None, method: str = "integrated_gradients",
                            **options) -> TopkAttackResult:
    r"""Prediction-preserving top-k attack on attribution maps (Ghorbani et al. 2019, as used by Chen et al. 2019).

    With B the top-k entries of |I_c(x)| (c = the prediction on x), each step
    x'' = Proj(x' - step * sign(grad_x' sum_{i in B} |I_c(x')_i|)) onto the
    l-inf eps-ball around x intersected with [0, 1] moves attribution mass
    away from B. A step is taken only if the prediction stays c; otherwise
    it is rejected and that image's step size halves (so the attack does not
    retry the same step). Returns, per image, the accepted iterate with the
    smallest top-k intersection with the clean map, so the prediction never
    changes. Maps are ``explain.attribute(method, differentiable=True)`` with
    ``options`` (for IG, e.g. ``n_steps``, default 50; fewer is faster).

    Args:
        eps: l-inf budget (> 0), e.g. 0.3 on MNIST.
        k: size of the top set (entries over all channels), e.g. 100 on MNIST.
        steps: iterations (default 50); step_size: default 2.5 * eps / steps.
        method: one of ``explain.DIFFERENTIABLE`` (default "integrated_gradients").
    Returns:
        :class:`TopkAttackResult`.
    """
    from .explain import DIFFERENTIABLE, attribute
    from .metrics import top_k_intersection

    check_images(x, "x")
    check_positive(eps, "eps")
    check_positive(steps, "steps", integer=True)
    check_choice(method, "method", DIFFERENTIABLE)
    step_size = 2.5 * eps / steps if step_size is None else check_positive(step_size, "step_size")
    n = x.shape[0]
    with eval_mode(model), torch.no_grad():
        labels = check_logits(model(x), n).argmax(1)
    maps = attribute(model, x, labels, method=method, **options)
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
        m = attribute(model, z, labels, method=method, differentiable=True, **options)
        score = top_k_intersection(maps, m.detach(), k)
        better = score < best_score
        best_score = torch.where(better, score, best_score)
        best = torch.where(better[:, None, None, None], cur, best)
        best_maps = torch.where(better.view(-1, *[1] * (maps.dim() - 1)), m.detach(), best_maps)
        if t == steps:
            break
        (g,) = torch.autograd.grad((m.abs() * top).sum(), z)
        cand = x + (cur - sizes[:, None, None, None] * g.sign() - x).clamp(-eps, eps)
        cand = cand.clamp(0, 1).detach()
        with eval_mode(model), torch.no_grad():
            keep = model(cand).argmax(1) == labels
        cur = torch.where(keep[:, None, None, None], cand, cur)
        sizes = torch.where(keep, sizes, sizes / 2)
        accepted += keep.long()
    return TopkAttackResult(best, labels, best_score, maps, best_maps, accepted)


class PgdAdversarialTraining(_PgdWarmup, InputTransform):
    r"""Madry et al. (2018) adversarial training: train on PGD examples x' = pgd(model, x, y).

    x' maximizes CE(f(x'), y) in the l-inf (or per-image l2) eps-ball within
    [0, 1] (:func:`pgd`, random start by default, as Madry). With
    ``warmup_epochs`` = W > 0 the budget grows linearly over the first W
    epochs: eps_e = eps * min(1, (e + 1) / W) for epoch e = 0, 1, ...
    (set in :meth:`start_epoch`, so a resumed run gets the same budget).

    Args:
        eps: budget; default 0.3 (MNIST l-inf, Madry/Chalasani).
        steps, step_size: PGD settings; default 40 x 0.01 (MNIST).
        norm: "linf" (default) or "l2". random_start: default True.
        warmup_epochs: linear eps warm-up length in epochs; default 0 (none).
    """

    def __init__(self, *, eps: float = 0.3, steps: int = 40, step_size: float = 0.01, norm: str = "linf",
                 random_start: bool = True, warmup_epochs: int = 0):
        super().__init__(eps=eps, steps=steps, step_size=step_size, warmup_epochs=warmup_epochs)
        check_choice(norm, "norm", ("linf", "l2"))
        self.norm, self.random_start = norm, bool(random_start)

    def __call__(self, model, x, y):
        return pgd(model, x, y, eps=self.current_eps, steps=self.steps, step_size=self.step_size, norm=self.norm,
                   random_start=self.random_start)
