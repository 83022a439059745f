"""Attacks on, and experiments with, explanations.

- :func:`adversarial_explanation`: Woods et al. (2019), the explanation mode of
  the RMSE search (:func:`advexp_lib.attacks.rmse_search`).
- :func:`explanation_drag`: does a small targeted attack move the map a user sees?
- :func:`interpretability_sneaking_attack`: ISA of Boopathy et al. (2020), a
  targeted l-inf attack that hides from a map discrepancy.
- :func:`topk_attribution_attack`: the prediction-preserving top-k attack on
  attribution maps (Ghorbani et al. 2019, as used by Chen et al. 2019).

Hand-written: no library has these. Distances: RMSE for the Woods et al.
methods, l-inf for ISA and the top-k attack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .attacks import pgd, rmse_search
from .attributions import DIFFERENTIABLE, METHODS, OPTIONS, attribute
from .checks import InputError, check_choice, check_images, check_labels, check_logits, check_positive
from .metrics import map_discrepancy, top_k_intersection
from .models import eval_mode, runner_up, tandem_margin

__all__ = [
    "adversarial_explanation",
    "DragResult",
    "explanation_drag",
    "IsaResult",
    "interpretability_sneaking_attack",
    "TopkAttackResult",
    "topk_attribution_attack",
]


# ------------------------------------------------------------------------------------------------------
# Adversarial explanations (Woods et al. 2019)


def adversarial_explanation(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    *,
    rho: float = 0.1,
    steps: int = 35,
    overshoot: float = 5.0,
    momentum: float = 0.0,
    clip: bool = False,
    on_late: str = "warn",
) -> torch.Tensor:
    r"""Adversarial explanation (Woods et al. 2019): x' = x + delta, delta descending CE(model(x'), target).

    The explanation mode of Algorithm 1 (:func:`advexp_lib.attacks.rmse_search`),
    with the model in eval mode: a path of length rho * overshoot in ``steps``
    linearly shrinking steps, descending the target's cross-entropy while
    RMSE(delta) < rho and stepping back toward x otherwise. On a robust
    network the result shows what the network needs to see to call the image
    ``target``. An explanation whose RMSE has not reached rho by step T // 2
    is unreliable (the search barely moved, e.g. on a saturated network): the
    reference implementation raises there.

    Args:
        targets: (N,) class per image. rho: RMSE budget (default 0.1, the paper's).
        steps, overshoot, momentum: defaults 35, 5, 0 (the paper's).
        clip: keep x' in [0, 1]. Default False (the reference does not clip).
        on_late: "warn" (default: a ``LateCriterionWarning``), "raise" (the
            reference's behaviour) or "flag" (silent) for unreliable explanations.
    Returns:
        x' (N, C, H, W), detached.
    """
    check_positive(rho, "rho")  # checked here too so messages name rho and targets, not eps and labels
    check_images(x, "x")
    with eval_mode(model), torch.no_grad():
        num_classes = check_logits(model(x[:1]), 1).shape[1]
    check_labels(targets, x.shape[0], num_classes, "targets")
    return rmse_search(
        model,
        x,
        targets=targets,
        mode="explain",
        eps=rho,
        steps=steps,
        overshoot=overshoot,
        momentum=momentum,
        clip=clip,
        on_late=on_late,
    ).x_adv


# ------------------------------------------------------------------------------------------------------
# Explanations under attack


@dataclass
class DragResult:
    """Output of :func:`explanation_drag`.

    Attributes:
        share: method -> share of successfully attacked images whose attacked
            map correlates more with the clean target-class map than with the
            clean true-class map (NaN if no attack succeeded).
        success_rate: share of the clean-correct images the attack moved to
            their target class (over all N images: ``success.float().mean()``
            is also available from ``success``).
        success: bool (N,): clean prediction == y and attacked prediction == target.
        flags: method -> bool (N,): corr(attacked map, clean target map) >
            corr(attacked map, clean true map) (computed for every image).
        corr_target, corr_true: method -> (N,) the two Pearson correlations.
        x, x_adv, y, targets, clean_pred, adv_pred: the images and classes.
        maps: method -> {"clean_true", "clean_target", "attacked"} map tensors.
        attack, eps: the attack used ("rmse": per-image RMSE budget; "linf").
    """

    share: dict
    success_rate: float
    success: torch.Tensor
    flags: dict
    corr_target: dict
    corr_true: dict
    x: torch.Tensor
    x_adv: torch.Tensor
    y: torch.Tensor
    targets: torch.Tensor
    clean_pred: torch.Tensor
    adv_pred: torch.Tensor
    maps: dict = field(repr=False)
    attack: str = "rmse"
    eps: float = 0.0


def explanation_drag(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    method="saliency",
    eps: float,
    targets: torch.Tensor | None = None,
    attack: str = "rmse",
    steps: int | None = None,
    overshoot: float = 5.0,
    step_size: float | None = None,
    **options,
) -> DragResult:
    r"""How often a small targeted attack drags the explanation to the attacked class.

    Attack each image toward ``targets`` (default: the clean runner-up class,
    the easiest wrong class), then for each method compare the attacked
    image's map for its attacked class, I_t(x'), with the clean maps I_t(x)
    and I_y(x) by Pearson correlation over all map entries. The explanation
    "points to the attacked class" when corr(I_t(x'), I_t(x)) >
    corr(I_t(x'), I_y(x)). Reported share = flagged / successful, over the
    images the attack succeeded on (clean prediction correct and attacked
    prediction == target).

    Args:
        method: a method name or a list of them (see :func:`attribute`).
            Default "saliency".
        eps: the attack budget: per-image RMSE for ``attack="rmse"`` (e.g.
            0.05), l-inf for ``attack="linf"`` (e.g. 0.1).
        targets: (N,) attacked classes; must differ from ``y``.
        attack: "rmse" (default): Woods' Algorithm 1 in explanation mode
            (:func:`~advexp_lib.attacks.rmse_search`, mode "explain",
            descending the target's CE within RMSE eps, overshoot 5, 35 steps,
            clipped to [0, 1]); "linf": targeted
            :func:`~advexp_lib.attacks.pgd` (default 40 steps of eps / 10).
        steps, overshoot, step_size: attack settings (defaults above).
        options: passed to :func:`attribute` (e.g. ``n_steps``).
    Returns:
        :class:`DragResult`.
    """
    check_images(x, "x")
    check_positive(eps, "eps")
    check_choice(attack, "attack", ("rmse", "linf"))
    methods = [method] if isinstance(method, str) else list(method)
    for m in methods:
        check_choice(m, "method", METHODS)
    n = x.shape[0]
    with eval_mode(model), torch.no_grad():
        logits = check_logits(model(x), n)
    check_labels(y, n, logits.shape[1], "y")
    clean_pred = logits.argmax(1)
    if targets is None:
        targets = runner_up(logits, y)
    check_labels(targets, n, logits.shape[1], "targets")
    if (targets == y).any():
        raise InputError("targets: every target must differ from the true class y")
    if attack == "rmse":
        x_adv = rmse_search(
            model,
            x,
            targets=targets,
            mode="explain",
            eps=eps,
            steps=steps or 35,
            overshoot=overshoot,
            clip=True,
        ).x_adv
    else:
        x_adv = pgd(model, x, eps=eps, steps=steps or 40, step_size=step_size or eps / 10, targets=targets)
    x_adv = x_adv.clamp(0, 1)  # rmse_search adds the clipped delta back to x: remove round-off outside [0, 1]
    with eval_mode(model), torch.no_grad():
        adv_pred = model(x_adv).argmax(1)
    success = (clean_pred == y) & (adv_pred == targets)
    share, flags, c_t, c_y, maps = {}, {}, {}, {}, {}
    for m in methods:
        opts = {k: v for k, v in options.items() if k in OPTIONS[m]}
        attacked = attribute(model, x_adv, targets, method=m, **opts)
        clean_t = attribute(model, x, targets, method=m, **opts)
        clean_y = attribute(model, x, y, method=m, **opts)
        c_t[m], c_y[m] = _pearson(attacked, clean_t), _pearson(attacked, clean_y)
        flags[m] = c_t[m] > c_y[m]
        share[m] = flags[m][success].float().mean().item() if success.any() else float("nan")
        maps[m] = {"clean_true": clean_y, "clean_target": clean_t, "attacked": attacked}
    correct = clean_pred == y
    rate = success[correct].float().mean().item() if correct.any() else float("nan")
    return DragResult(
        share,
        rate,
        success,
        flags,
        c_t,
        c_y,
        x.detach(),
        x_adv.detach(),
        y,
        targets,
        clean_pred,
        adv_pred,
        maps,
        attack,
        float(eps),
    )


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-example Pearson correlation over all map entries (0 where a map is constant)."""
    a = a.flatten(1).double()
    b = b.flatten(1).double()
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    den = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(den > 0, (a * b).sum(1) / den.clamp_min(1e-300), torch.zeros_like(den))


# ------------------------------------------------------------------------------------------------------
# Interpretability sneaking attack and the top-k attribution attack (l-inf)


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


def interpretability_sneaking_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    targets: torch.Tensor,
    *,
    measure: str = "two",
    method: str = "cam",
    norm: str = "l1",
    eps_max: float = 0.3,
    steps: int = 100,
    step_size: float | None = None,
    kappa: float = 0.1,
    gamma_min: float = 1e-3,
    gamma_max: float = 10.0,
    eps_search_steps: int = 8,
    gamma_search_steps: int = 8,
    **options,
) -> IsaResult:
    r"""Interpretability sneaking attack (ISA, Boopathy et al. 2020): targeted l-inf, hiding from a map.

    Per image, PGD (:func:`pgd` through its ``objective`` hook) minimizes

        max(max_{j != t} f_j(x') - f_t(x'), -kappa) + gamma * D(I(x), I(x'))

    in the l-inf ball ||x' - x||_inf <= eps, x' in [0, 1], where D is the
    normalized discrepancy (:func:`advexp_lib.metrics.map_discrepancy`)
    "one": D(I_y) or "two": (D(I_y) + D(I_t)) / 2, with maps from
    ``attributions.attribute(method, differentiable=True)``. Two bisections:

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
            ``attributions.DIFFERENTIABLE``); ``options`` go to ``attribute``.
        norm: discrepancy norm "l1" (default) or "l2".
        eps_max: largest l-inf budget (default 0.3, MNIST).
        steps: PGD steps per attack (default 100); step_size: default 2.5 * eps_max / steps.
        kappa: margin confidence (default 0.1, the paper's).
        gamma_min, gamma_max: gamma search range (defaults 1e-3, 10).
    Returns:
        :class:`IsaResult`.
    """
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
        return map_discrepancy(
            clean,
            attribute(model, z, classes, method=method, differentiable=differentiable, **options),
            norm=norm,
        )

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
        delta = torch.maximum(
            torch.minimum(s * (xa - x), eps[:, None, None, None]), -eps[:, None, None, None]
        )
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


def topk_attribution_attack(
    model: nn.Module,
    x: torch.Tensor,
    *,
    eps: float,
    k: int,
    steps: int = 50,
    step_size: float | None = None,
    method: str = "integrated_gradients",
    **options,
) -> TopkAttackResult:
    r"""Prediction-preserving top-k attack on attribution maps (Ghorbani et al. 2019; Chen et al. 2019).

    With B the top-k entries of |I_c(x)| (c = the prediction on x), each step
    x'' = Proj(x' - step * sign(grad_x' sum_{i in B} |I_c(x')_i|)) onto the
    l-inf eps-ball around x intersected with [0, 1] moves attribution mass
    away from B. A step is taken only if the prediction stays c; otherwise
    it is rejected and that image's step size halves (so the attack does not
    retry the same step). Returns, per image, the accepted iterate with the
    smallest top-k intersection with the clean map, so the prediction never
    changes. Maps are ``attributions.attribute(method, differentiable=True)`` with
    ``options`` (for IG, e.g. ``n_steps``, default 50; fewer is faster).

    Args:
        eps: l-inf budget (> 0), e.g. 0.3 on MNIST.
        k: size of the top set (entries over all channels), e.g. 100 on MNIST.
        steps: iterations (default 50); step_size: default 2.5 * eps / steps.
        method: one of ``attributions.DIFFERENTIABLE`` (default "integrated_gradients").
    Returns:
        :class:`TopkAttackResult`.
    """
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
