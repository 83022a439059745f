"""Attacks on, and experiments with, explanations.

- :func:`adversarial_explanation`: Woods et al. (2019), the explanation mode of
  the RMSE search (:func:`advexp_lib.attacks.rmse_search`).
- :func:`explanation_shift`: does a small targeted attack move the map a user
  sees more than random noise of the same size does?
- :func:`interpretability_sneaking_attack`: ISA of Boopathy et al. (2020), a
  targeted l-inf attack that hides from a map discrepancy.
- :func:`topk_attribution_attack`: the prediction-preserving top-k attack on
  attribution maps (Ghorbani et al. 2019, as used by Chen et al. 2019).
- :func:`ae_agreement` and :func:`explanation_fidelity`: are adversarial
  explanations faithful (do other networks see the class in them; Quantus's
  faithfulness and robustness metrics)?

Hand-written: no library has these. Distances: RMSE for the Woods et al.
methods, l-inf for ISA and the top-k attack.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .attacks import pgd, rmse, rmse_search
from .attributions import DIFFERENTIABLE, METHODS, OPTIONS, attribute
from .checks import InputError, check_choice, check_images, check_labels, check_logits, check_positive
from .metrics import kendall_tau, map_discrepancy, top_k_intersection
from .models import eval_mode, runner_up, tandem_margin
from .stats import Estimate, bootstrap_mean, wilson

__all__ = [
    "adversarial_explanation",
    "ShiftResult",
    "explanation_shift",
    "ISA_MEASURES",
    "IsaResult",
    "sneaking_attack",
    "interpretability_sneaking_attack",
    "TopkAttackResult",
    "topk_attribution_attack",
    "FIDELITY_METHODS",
    "explanation_maps",
    "ae_agreement",
    "explanation_fidelity",
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
class ShiftResult:
    """Output of :func:`explanation_shift`: how far a small attack moves the map a user sees.

    Attributes:
        success: bool (N,): clean prediction correct and attacked prediction == target.
        success_rate: :class:`~advexp_lib.stats.Estimate`, share of the
            clean-correct images the attack moved to their target (Wilson interval).
        shift, control_shift: method -> (N,) discrepancy between the map seen
            before, I_y(x), and after, I_t(x') with t the new prediction; and
            between I_y(x) and I_y(x_c) for the random control x_c.
        rank, control_rank: method -> (N,) Kendall tau-b between the same maps.
        threshold: method -> the 95th percentile of the control shifts of the
            successfully attacked images.
        share: method -> :class:`~advexp_lib.stats.Estimate`, the share of
            successful attacks whose shift exceeds ``threshold`` (Wilson interval).
        x, x_adv, x_control, y, targets, clean_pred, adv_pred: images and classes.
        maps: method -> {"clean", "attacked", "control"}: the maps as seen (N, H, W).
        attack, eps: the attack used ("rmse": per-image RMSE budget; "linf").
    """

    success: torch.Tensor
    success_rate: Estimate
    shift: dict
    control_shift: dict
    rank: dict
    control_rank: dict
    threshold: dict
    share: dict
    x: torch.Tensor
    x_adv: torch.Tensor
    x_control: torch.Tensor
    y: torch.Tensor
    targets: torch.Tensor
    clean_pred: torch.Tensor
    adv_pred: torch.Tensor
    maps: dict = field(repr=False)
    attack: str = "rmse"
    eps: float = 0.0


def explanation_shift(
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
    seed: int = 0,
    **options,
) -> ShiftResult:
    r"""Does a small attack change the explanation a user sees, more than random noise of its size does?

    Each image is attacked toward ``targets`` (default: its runner-up class).
    A user who explains the prediction sees I_y(x) before and I_t(x') after
    the attack, t the new prediction. Maps are compared as a user sees them:
    summed over channels and divided by their largest absolute value (the
    per-panel colour scale), so a map that only changes scale does not count.
    For each method,

        shift = D(I_y(x), I_t(x')),     control_shift = D(I_y(x), I_y(x_c)),

    with D Boopathy et al.'s normalized discrepancy
    (:func:`advexp_lib.metrics.map_discrepancy`, l1) and x_c = x + noise of the
    same RMSE as the image's attack (Gaussian direction, clipped to [0, 1]).
    ``share`` counts the successful attacks whose shift exceeds the 95th
    percentile of their controls' shifts; Kendall's tau-b of the same map
    pairs is reported beside it. A model whose maps are the same for every
    class and input scores share 0; the claim "attacks invalidate
    explanations" needs a share well above 5%.

    Args:
        method: a method name or a list of them (see :func:`attribute`).
        eps: the attack budget: per-image RMSE for ``attack="rmse"`` (e.g.
            0.05), l-inf for ``attack="linf"`` (e.g. 0.1).
        targets: (N,) attacked classes, each != y; default the runner-up.
        attack: "rmse" (default): Woods et al.'s search in explanation mode
            (descend the target's CE within RMSE eps, overshoot 5, 35 steps,
            clipped to [0, 1]); "linf": targeted :func:`~advexp_lib.attacks.pgd`
            (default 40 steps of eps / 10).
        steps, overshoot, step_size: attack settings (defaults above).
        seed: seed of the control noise (a private generator). Default 0.
        options: passed to :func:`attribute` (e.g. ``n_steps``).
    Returns:
        :class:`ShiftResult`.
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
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype).to(x.device)
    x_control = (x + noise * (rmse(x_adv - x) / rmse(noise))[:, None, None, None]).clamp(0, 1)
    with eval_mode(model), torch.no_grad():
        adv_pred = model(x_adv).argmax(1)
    correct = clean_pred == y
    success = correct & (adv_pred == targets)
    fields = {k: {} for k in ("shift", "control_shift", "rank", "control_rank", "threshold", "share", "maps")}
    for m in methods:
        opts = {k: v for k, v in options.items() if k in OPTIONS[m]}
        clean = _as_seen(attribute(model, x, y, method=m, **opts))
        attacked = _as_seen(attribute(model, x_adv, adv_pred, method=m, **opts))
        control = _as_seen(attribute(model, x_control, y, method=m, **opts))
        fields["shift"][m] = map_discrepancy(clean, attacked)
        fields["control_shift"][m] = map_discrepancy(clean, control)
        fields["rank"][m] = kendall_tau(clean, attacked)
        fields["control_rank"][m] = kendall_tau(clean, control)
        ok = fields["control_shift"][m][success]
        threshold = torch.quantile(ok.double(), 0.95).item() if ok.numel() else float("nan")
        fields["threshold"][m] = threshold
        fields["share"][m] = wilson(int((fields["shift"][m][success] > threshold).sum()), int(success.sum()))
        fields["maps"][m] = {"clean": clean, "attacked": attacked, "control": control}
    return ShiftResult(
        success=success,
        success_rate=wilson(int(success.sum()), int(correct.sum())),
        x=x.detach(),
        x_adv=x_adv.detach(),
        x_control=x_control.detach(),
        y=y,
        targets=targets,
        clean_pred=clean_pred,
        adv_pred=adv_pred,
        attack=attack,
        eps=float(eps),
        **fields,
    )


def _as_seen(maps: torch.Tensor) -> torch.Tensor:
    """Maps as a user sees them: summed over channels, divided by their largest |value| (N, H, W)."""
    a = maps.detach().sum(1)
    top = a.flatten(1).abs().amax(1).clamp_min(1e-30)
    return a / top[:, None, None]


# ------------------------------------------------------------------------------------------------------
# Interpretability sneaking attack and the top-k attribution attack (l-inf)


ISA_MEASURES = ("one", "two")


@dataclass
class IsaResult:
    """Output of :func:`interpretability_sneaking_attack` (N images, P multiples of the minimal eps).

    Attributes:
        eps: (N,) smallest l-inf budget found for the attack alone (``eps_max``
            where it never succeeded). success: (N,) the attack alone succeeds there.
        x_attack: (N, ...) the attack alone at ``eps``; ``baseline``: {"one": D1,
            "two": D2} of it, each (N,).
        multiples: the P multiples p; the ISA runs at eps_p = p * eps.
        hidden: measure ("one", "two") -> {"x_adv": (P, N, ...), "gamma": (P, N),
            "success": (P, N), "one": D1 (P, N), "two": D2 (P, N)}: the ISA hiding
            from that measure at each multiple, with the largest gamma found
            that still succeeds (0 where none does: then it is the attack alone).
    D1 and D2 are the normalized discrepancies of the reported maps
    (:func:`advexp_lib.metrics.map_discrepancy`).
    """

    eps: torch.Tensor
    success: torch.Tensor
    x_attack: torch.Tensor
    baseline: dict
    multiples: tuple
    hidden: dict = field(repr=False)


def sneaking_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    targets: torch.Tensor,
    *,
    eps: torch.Tensor,
    gamma: torch.Tensor,
    measure: str = "two",
    method: str = "cam",
    kappa: float = 0.1,
    steps: int = 10,
    **options,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One targeted l-inf attack that hides from a map, at per-image budgets and weights (Boopathy et al.).

    Minimizes, per image i, with f the logits, t the target and the maps
    I = ``attribute(method, differentiable=True)`` (CAM at the last conv
    layer's resolution),

        max(max_{j != t} f_j(x') - f_t(x'), -kappa) + gamma_i * D(x, x'),
        D_one = sum |I_y(x') - I_y(x)|,   D_two = (D_one + sum |I_t(x') - I_t(x)|) / 2

    (the reference's unnormalized discrepancy), by ``steps`` steps from x of
    x' <- Proj(x' - 0.2 eps_i clip(1000 g, -1, 1)) onto the eps_i l-inf ball
    and [0, 1], as the reference (AkhilanB/Proper-Interpretability) does. The
    reference averages the objective over its batch, which scales each
    image's gradient by 1 / batch before the clip; this objective is per image.

    Returns:
        (x_adv, success): success = the prediction on x_adv is the target.
    """
    check_choice(measure, "measure", ISA_MEASURES)
    classes = (y, targets) if measure == "two" else (y,)
    clean = [(c, attribute(model, x, c, method=method, **options)) for c in classes]
    e = eps.to(x.dtype)[:, None, None, None]
    x_adv = x.detach().clone()
    with eval_mode(model):
        for _ in range(steps):
            z = x_adv.clone().requires_grad_(True)
            with torch.enable_grad():
                loss = (-tandem_margin(model(z), targets)).clamp(min=-kappa)
                if bool((gamma > 0).any()):
                    d = _raw_discrepancy(model, z, clean, method, options)
                    loss = loss + gamma.to(x.dtype) * d
                (g,) = torch.autograd.grad(loss.sum(), z)
            x_adv = x_adv - 0.2 * e * (1000 * g).clamp(-1, 1)
            x_adv = torch.minimum(torch.maximum(x_adv, x - e), x + e).clamp(0, 1).detach()
        with torch.no_grad():
            success = model(x_adv).argmax(1) == targets
    return x_adv, success


def interpretability_sneaking_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    targets: torch.Tensor,
    *,
    measures=ISA_MEASURES,
    multiples=(1.0, 2.0, 3.0),
    method: str = "cam",
    norm: str = "l1",
    kappa: float = 0.1,
    steps: int = 10,
    eps_max: float = 1.0,
    eps_start: float = 0.05,
    gamma_start: float = 5e-5,
    search_steps: int = 10,
    **options,
) -> IsaResult:
    r"""Interpretability sneaking attack (ISA) of Boopathy et al. (2020), searched as their reference does.

    1. The attack alone (gamma = 0, :func:`sneaking_attack`): per image, the
       smallest l-inf budget eps in (0, ``eps_max``] at which it reaches the
       target, by ``search_steps`` rounds from min(``eps_start``, ``eps_max``)
       with lo = 0 and hi = ``eps_max``: on success hi = eps and
       eps = (lo + hi) / 2; on failure lo = eps and eps = min(2 eps, (lo + hi) / 2).
       The result is eps = hi, so eps never exceeds ``eps_max``. An image the
       attack alone never moved to its target keeps eps = ``eps_max`` and
       ``success`` False there.
    2. For each measure ("one": the true class's map; "two": true and target
       class) and each multiple p: at eps_p = min(p eps, ``eps_max``), the largest gamma in
       [0, 1] that keeps the attack successful, by ``search_steps`` rounds
       from ``gamma_start``: on success lo = gamma and gamma = min(2 gamma,
       (lo + hi) / 2); on failure hi = gamma and gamma = (lo + hi) / 2; then
       the attack with gamma = lo.

    The multiples are ours (the reference takes them on its command line and
    records none); p = 1 leaves no slack, larger p lets the attack trade
    budget for a smaller discrepancy. Reported discrepancies are normalized,
    D(I, I') = ||I - I'|| / (max I - min I) over the clean map's range.

    Args:
        targets: (N,) attacked classes, each != y (the reference draws them at random).
        measures: which discrepancies to hide from (default both).
        multiples: the p of step 2 (each >= 1). Default (1, 2, 3).
        method: map method (default "cam", the paper's, at the feature-map
            resolution); ``options`` go to :func:`attribute`.
        norm: norm of the reported discrepancy, "l1" (default) or "l2".
        kappa: margin confidence (default 0.1, the paper's).
        steps: attack steps (default 10, the reference's); eps_max, eps_start,
            gamma_start, search_steps: the searches' settings (the reference's).
    Returns:
        :class:`IsaResult`.
    """
    check_images(x, "x")
    measures = tuple(measures)
    for m in measures:
        check_choice(m, "measures", ISA_MEASURES)
    check_choice(method, "method", DIFFERENTIABLE)
    check_choice(norm, "norm", ("l1", "l2"))
    for name, v in (("eps_max", eps_max), ("eps_start", eps_start), ("gamma_start", gamma_start)):
        check_positive(v, name)
    check_positive(steps, "steps", integer=True)
    check_positive(search_steps, "search_steps", integer=True)
    check_positive(kappa, "kappa", allow_zero=True)
    unknown = set(options) - OPTIONS[method]
    if unknown:
        raise InputError(f"options: unknown option(s) {sorted(unknown)} for method {method!r}")
    multiples = tuple(float(p) for p in multiples)
    if not multiples or any(not p >= 1 for p in multiples):
        raise InputError(f"multiples: expected budgets as multiples >= 1 of the minimal eps, got {multiples}")
    n = x.shape[0]
    with eval_mode(model), torch.no_grad():
        num_classes = check_logits(model(x), n).shape[1]
    check_labels(y, n, num_classes, "y")
    check_labels(targets, n, num_classes, "targets")
    if (targets == y).any():
        raise InputError("targets: every target must differ from the true class y")
    if "cam" == method and "upsample" not in options:
        options = {**options, "upsample": False}  # the paper's maps: the last conv layer's grid

    def attack(eps, gamma, measure="two"):
        return sneaking_attack(
            model,
            x,
            y,
            targets,
            eps=eps,
            gamma=gamma,
            measure=measure,
            method=method,
            kappa=kappa,
            steps=steps,
            **options,
        )

    zeros = torch.zeros(n, dtype=x.dtype, device=x.device)
    # the search never leaves (0, eps_max]: it starts inside, success only lowers hi, failure moves to
    # min(2 eps, (lo + hi) / 2) <= hi
    eps = torch.full_like(zeros, min(eps_start, eps_max))
    lo, hi = zeros.clone(), torch.full_like(zeros, eps_max)
    for _ in range(search_steps):
        _, ok = attack(eps, zeros)
        hi, lo = torch.where(ok, eps, hi), torch.where(ok, lo, eps)
        eps = torch.where(ok, (lo + hi) / 2, torch.minimum(2 * eps, (lo + hi) / 2))
    x_attack, success = attack(hi, zeros)
    eps = hi
    clean = {
        "y": attribute(model, x, y, method=method, **options),
        "t": attribute(model, x, targets, method=method, **options),
    }

    def reported(z):
        d_y = map_discrepancy(clean["y"], attribute(model, z, y, method=method, **options), norm=norm)
        d_t = map_discrepancy(clean["t"], attribute(model, z, targets, method=method, **options), norm=norm)
        return d_y, (d_y + d_t) / 2

    b_one, b_two = reported(x_attack)
    hidden = {}
    for measure in measures:
        rows = {"x_adv": [], "gamma": [], "success": [], "one": [], "two": []}
        for p in multiples:
            e = (p * eps).clamp(max=eps_max)
            gamma, g_lo, g_hi = torch.full_like(zeros, gamma_start), zeros.clone(), torch.ones_like(zeros)
            for _ in range(search_steps):
                _, ok = attack(e, gamma, measure)
                g_lo, g_hi = torch.where(ok, gamma, g_lo), torch.where(ok, g_hi, gamma)
                gamma = torch.where(ok, torch.minimum(2 * gamma, (g_lo + g_hi) / 2), (g_lo + g_hi) / 2)
            x_adv, ok = attack(e, g_lo, measure)
            one, two = reported(x_adv)
            for k, v in (("x_adv", x_adv), ("gamma", g_lo), ("success", ok), ("one", one), ("two", two)):
                rows[k].append(v.detach())
        hidden[measure] = {k: torch.stack(v) for k, v in rows.items()}
    return IsaResult(
        eps, success, x_attack, {"one": b_one.detach(), "two": b_two.detach()}, multiples, hidden
    )


def _raw_discrepancy(model, z, clean, method, options):
    """The reference's attack-side D: l1 sums of map differences, averaged over the pairs in ``clean``."""
    total = 0.0
    for classes, maps in clean:
        moved = attribute(model, z, classes, method=method, differentiable=True, **options)
        total = total + (moved - maps).abs().flatten(1).sum(1)
    return total / len(clean)


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


# ------------------------------------------------------------------------------------------------------
# How faithful are adversarial explanations? (Woods et al. claim: more than saliency, on robust networks)

FIDELITY_METHODS = ("saliency", "integrated_gradients", "grad_cam", "ae")


def explanation_maps(
    model: nn.Module, x: torch.Tensor, classes: torch.Tensor, method: str, *, rho: float = 0.1, **options
) -> torch.Tensor:
    """One map per image for ``classes``: Captum's :func:`attribute`, or for "ae" the adversarial
    explanation's change x' - x toward the class (:func:`adversarial_explanation`, rho, 35 steps,
    overshoot 5, in [0, 1]), shaped like x. The ``options`` that apply to ``method`` go to
    :func:`attribute`."""
    check_choice(method, "method", (*METHODS, "ae"))
    if method == "ae":
        return adversarial_explanation(model, x, classes, rho=rho, clip=True, on_late="flag") - x
    return attribute(
        model, x, classes, method=method, **{k: v for k, v in options.items() if k in OPTIONS[method]}
    )


def ae_agreement(
    model: nn.Module, others: dict, x: torch.Tensor, targets: torch.Tensor, *, rho: float = 0.1
) -> dict:
    """Do other models see class t in the adversarial explanations toward t of ``model``?

    Independently trained models (another seed, another recipe) classify the
    AEs (:func:`adversarial_explanation` toward ``targets``, rho, clipped to
    [0, 1]). If an AE shows what defines class t rather than what fools one
    network, other networks call it t too.

    Returns:
        {name: {"share_t": Estimate (Wilson), "p_t": Estimate (bootstrap mean of
        p_B(t | x')), "p_t_clean": Estimate (the same on x)}} for every model
        in ``others`` and, under "self", ``model`` itself.
    """
    check_images(x, "x")
    aes = adversarial_explanation(model, x, targets, rho=rho, clip=True, on_late="flag")
    out = {}
    for name, other in {"self": model, **others}.items():
        with eval_mode(other), torch.no_grad():
            p, p_clean = other(aes).softmax(1), other(x).softmax(1)
        hit = p.argmax(1) == targets
        out[name] = {
            "share_t": wilson(int(hit.sum()), hit.numel()),
            "p_t": bootstrap_mean(p.gather(1, targets[:, None]).squeeze(1).cpu()),
            "p_t_clean": bootstrap_mean(p_clean.gather(1, targets[:, None]).squeeze(1).cpu()),
        }
    return out


def explanation_fidelity(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    methods=FIDELITY_METHODS,
    rho: float = 0.1,
    nr_runs: int = 50,
    subset_size: int = 28,
    sensitivity_samples: int = 10,
    sensitivity_radius: float = 0.05,
    seed: int = 0,
    **options,
) -> dict:
    r"""Quantus's faithfulness and robustness metrics of each method's maps for the true class.

    - faithfulness correlation (Bhatt et al. 2020): Pearson correlation, over
      ``nr_runs`` random subsets of ``subset_size`` pixels, between the
      attributions' sum on the subset and the logit's drop when it is set to
      black (higher: more faithful);
    - pixel flipping (Bach et al. 2015): the mean softmax probability of y as
      the pixels are blacked out in the map's order, one image row's worth of
      pixels at a time (lower: more faithful);
    - max-sensitivity (Yeh et al. 2019): the largest change of the map under
      ``sensitivity_samples`` uniform input perturbations of radius
      ``sensitivity_radius`` (lower: more robust).

    "ae" uses the adversarial explanation's change as the map
    (:func:`explanation_maps`). Quantus draws from numpy's global RNG, seeded
    here with ``seed``. Returns {method: {metric: (N,) tensor}}.
    """
    import numpy as np  # quantus works on numpy arrays
    import quantus  # an optional dependency (the notebooks' extra): imported where it is used

    check_images(x, "x")
    n = x.shape[0]
    with eval_mode(model), torch.no_grad():
        check_labels(y, n, check_logits(model(x), n).shape[1], "y")
    for m in methods:
        check_choice(m, "methods", (*METHODS, "ae"))

    def explain(model, inputs, targets, method=None, **kw):
        xs = torch.as_tensor(inputs, dtype=x.dtype, device=x.device).clamp(0, 1)
        ts = torch.as_tensor(targets, dtype=torch.long, device=x.device)
        return explanation_maps(model, xs, ts, method, rho=rho, **options).detach().cpu().numpy()

    x_np, y_np = x.detach().cpu().numpy(), y.detach().cpu().numpy()
    per_row = x.shape[-1]
    out = {}
    with eval_mode(model):
        for m in methods:
            a = explain(model, x_np, y_np, method=m)
            if a.shape[1] != x.shape[1]:  # one map per image (Grad-CAM): the same map for every channel
                a = np.repeat(a, x.shape[1], axis=1)
            kw = dict(
                model=model,
                x_batch=x_np,
                y_batch=y_np,
                a_batch=a,
                device=str(x.device),
                explain_func=explain,
                explain_func_kwargs={"method": m},
            )
            np.random.seed(seed)
            faith = quantus.FaithfulnessCorrelation(
                nr_runs=nr_runs, subset_size=subset_size, return_aggregate=False, disable_warnings=True
            )(**kw)
            curves = np.asarray(quantus.PixelFlipping(features_in_step=per_row, disable_warnings=True)(**kw))
            np.random.seed(seed)
            sens = quantus.MaxSensitivity(
                nr_samples=sensitivity_samples, lower_bound=sensitivity_radius, disable_warnings=True
            )(**kw)
            out[m] = {
                "faithfulness": torch.as_tensor(np.asarray(faith, dtype=float)),
                "pixel_flipping": torch.as_tensor(curves.mean(1)),
                "max_sensitivity": torch.as_tensor(np.asarray(sens, dtype=float)),
            }
    return out
