"""Experiments: the measurements behind the book's claims, each returning data (tables live in ``report``).

- :func:`explanation_shift`: does a small targeted attack move the map a user
  sees more than random noise of the same size does? (Woods et al. 2019)
- :func:`ae_agreement`: do other networks see class t in a network's
  adversarial explanations toward t?
- :func:`explanation_fidelity`: Quantus's faithfulness and robustness metrics of each map.
- :func:`counterfactual_fidelity`: the change of log p(t) from an equal-RMSE edit on each map's
  top-k pixels (at a per-network budget, :func:`explanation_budget`).
- :func:`ara_results`: Attack and BTR ARA of several models on the same images.
- :func:`robustness_audit`: Carlini et al. (2019)'s checklist for a robustness claim.
- :func:`evaluate_all`: every model on every headline metric of the three papers.
- :func:`reference_difference`: our images against a reference implementation's 8-bit files.

Hand-written: no library has these protocols. Distances: RMSE for the Woods
et al. methods, l-inf for PGD.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from advexp_lib.attacks import (
    AE_PAPER,
    AE_REFERENCE,
    ARA_PAPER,
    SearchConfig,
    as_criterion,
    criterion_met,
    independent_attack,
    line_search,
    pgd,
    rmse,
    rmse_search,
)
from advexp_lib.attacks.topk import topk_attribution_attack
from advexp_lib.attributions import (
    AdversarialExplanation,
    GradCam,
    IntegratedGradients,
    Saliency,
    adversarial_explanation,
    as_explainer,
)
from advexp_lib.checks import (
    InputError,
    check_choice,
    check_images,
    check_labels,
    check_logits,
    check_positive,
)
from advexp_lib.data import as_8bit
from advexp_lib.metrics import (
    accuracy_robustness_area,
    ara_from_distances,
    ensemble_ara,
    gini,
    kendall_tau,
    map_discrepancy,
    predict,
    robust_accuracy_curve,
)
from advexp_lib.models import eval_mode, runner_up
from advexp_lib.protocols import PGD_MNIST
from advexp_lib.regularizers import IGNormRegularizer, ig_norm
from advexp_lib.results import Result
from advexp_lib.stats import (
    Estimate,
    bootstrap_mean,
    hierarchical_resamples,
    paired_mean_difference,
    seed_mean_difference,
    wilson,
)

__all__ = [
    "ShiftResult",
    "explanation_shift",
    "sparsity_over_seeds",
    "seed_mean",
    "seed_difference",
    "correct_over_seeds",
    "true_class_edit",
    "edit_of_size",
    "deletion_fidelity",
    "fidelity_lead",
    "fidelity_interaction",
    "win_rates",
    "deletion_means",
    "energy_outside_salient",
    "energy_outside",
    "ae_reach",
    "ae_agreement",
    "FIDELITY_EXPLAINERS",
    "explanation_fidelity",
    "COUNTERFACTUAL_EXPLAINERS",
    "explanation_budget",
    "accuracies",
    "counterfactual_fidelity",
    "counterfactual_differences",
    "ara_results",
    "AuditResult",
    "robustness_audit",
    "evaluate_all",
    "sparsity",
    "attribution_stability",
    "accuracy_matched",
    "ig_norm_attacks",
    "reference_difference",
    "reference_explanations",
]


# ------------------------------------------------------------------------------------------------------
# Explanations under attack


@dataclass
class ShiftResult(Result):
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
            This compares maps of two classes, so a method whose map depends on
            the class can score high with no change of the input at all.
        comparisons: method -> {"same_class": D(I_y(x), I_y(x')), "class_swap":
            D(I_y(x), I_t(x)), "new_class": D(I_t(x), I_t(x')),
            "same_class_control": D(I_y(x), I_y(x_c)), "new_class_control":
            D(I_t(x), I_t(x_c))}, each (N,): the comparisons that separate the
            input's change from the class's.
        comparison_share: method -> {"same_class", "class_swap", "new_class"}:
            Estimates (Wilson), the share of successful attacks whose comparison
            exceeds the 95th percentile of its noise control (the class swap is
            judged against the same-class control: does the class change alone
            move the map more than noise does?).
        share_beyond_class_swap: method -> Estimate, ``comparison_share[m]["new_class"]``:
            the share of successful attacks whose attacked map of the new class
            differs, beyond noise, from that class's clean map, i.e. more than
            the class change alone explains.
        share_beyond_structured_null: method -> Estimate,
            ``comparison_share[m]["new_class_vs_structured"]``: the same share
            against the structured null x_s instead of noise: an edit of the
            attack's RMSE up the gradient of the true class's logit margin, which moves the image as
            far along the model's own gradients without leaving the true class.
            A map that moves as much under it is moved by any gradient-aligned
            edit, not by the attack's change of class.
        structured_keeps_class: Estimate (Wilson): the share of the successful
            attacks' x_s still classified y.
        x, x_adv, x_control, x_structured, y, targets, clean_pred, adv_pred: images and classes.
        maps: method -> {"clean", "attacked", "control"}: the maps as seen (N, H, W).
        attack, eps: the attack used ("rmse": per-image RMSE budget; "linf").

    Examples:
        >>> r = explanation_shift(model, x, y, eps=0.05, config=replace(AE_PAPER, steps=5))
        >>> r.success.shape, sorted(r.maps["saliency"])
        (torch.Size([4]), ['attacked', 'clean', 'control'])
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
    comparisons: dict = field(default_factory=dict, repr=False)
    comparison_share: dict = field(default_factory=dict)
    share_beyond_class_swap: dict = field(default_factory=dict)
    x_structured: torch.Tensor | None = field(default=None, repr=False)
    share_beyond_structured_null: dict = field(default_factory=dict)
    structured_keeps_class: Estimate | None = None


def explanation_shift(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    explainers=None,
    *,
    eps: float,
    targets: torch.Tensor | None = None,
    attack: str = "rmse",
    config: SearchConfig = AE_PAPER,
    linf_steps: int = 40,
    step_size: float | None = None,
    seed: int = 0,
) -> ShiftResult:
    r"""Does a small attack change the explanation a user sees, more than random noise of its size does?

    Each image is attacked toward ``targets`` (default: its runner-up class).
    A user who explains the prediction sees I_y(x) before and I_t(x') after
    the attack, t the new prediction. Maps are compared as a user sees them:
    summed over channels and divided by their largest absolute value (the
    per-panel colour scale), so a map that only changes scale does not count.
    For each explainer,

        shift = D(I_y(x), I_t(x')),     control_shift = D(I_y(x), I_y(x_c)),

    with D Boopathy et al.'s normalized discrepancy
    (:func:`advexp_lib.metrics.map_discrepancy`, l1) and x_c = x + noise of the
    same RMSE as the image's attack after clipping to [0, 1] (Gaussian
    direction, :func:`edit_of_size`).
    ``share`` counts the successful attacks whose shift exceeds the 95th
    percentile of their controls' shifts; Kendall's tau-b of the same map
    pairs is reported beside it. The shift changes the input and the class
    at once, so ``comparisons`` separates them:
    (a) D(I_y(x), I_y(x')), the map of the class the user asked about;
    (b) D(I_y(x), I_t(x)), the class change alone, with no attack;
    (c) D(I_t(x), I_t(x')), the attacked map of the new class against its
    clean map, whose share beyond its noise control D(I_t(x), I_t(x_c)) is
    ``share_beyond_class_swap``. On a linear softmax model, whose saliency
    of class c is |W_c| for every input, (a) and (c) are 0 and nothing is
    invalidated, while ``share`` reads 1.

    Args:
        explainers: :class:`~advexp_lib.attributions.Explainer`\ s (or names),
            one or a list. Default: ``[Saliency()]``.
        eps: the attack budget: per-image RMSE for ``attack="rmse"`` (e.g.
            0.05), l-inf for ``attack="linf"`` (e.g. 0.1).
        targets: (N,) attacked classes, each != y; default the runner-up.
        attack: "rmse" (default): Woods et al.'s search in explanation mode,
            ``config`` with budget ``eps`` and pixels kept in [0, 1]; "linf":
            targeted :func:`~advexp_lib.attacks.projected_gradient.pgd` (``linf_steps`` steps of
            ``step_size``, default eps / 10).
        config: the explanation search (its budget is replaced by ``eps``). Default: ``AE_PAPER``.
        seed: seed of the control noise (a private generator). Default 0.
    Returns:
        :class:`ShiftResult`.

    Examples:
        >>> r = explanation_shift(model, x, y, [Saliency()], eps=0.05, config=replace(AE_PAPER, steps=5))
        >>> sorted(r.shift)
        ['saliency']
    """
    check_images(x, "x")
    check_positive(eps, "eps")
    check_choice(attack, "attack", ("rmse", "linf"))
    explainers = _explainers([Saliency()] if explainers is None else explainers)
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
    x_adv = _attacked(model, x, targets, eps, attack, config, linf_steps, step_size)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype).to(x.device)
    x_control = edit_of_size(x, noise, rmse(x_adv - x))  # as large as the attack after clipping
    x_structured = true_class_edit(model, x, y, rmse(x_adv - x))
    with eval_mode(model), torch.no_grad():
        adv_pred, structured_pred = model(x_adv).argmax(1), model(x_structured).argmax(1)
    correct = clean_pred == y
    success = correct & (adv_pred == targets)
    keys = ("shift", "control_shift", "rank", "control_rank", "threshold", "share", "maps", "comparisons")
    fields_ = {
        k: {} for k in (*keys, "comparison_share", "share_beyond_class_swap", "share_beyond_structured_null")
    }
    images = dict(x=x, x_adv=x_adv, x_control=x_control, x_structured=x_structured)
    for e in explainers:
        for key, value in _method_shift(e, model, images, y, adv_pred, targets, success).items():
            fields_[key][e.name] = value
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
        x_structured=x_structured.detach(),
        structured_keeps_class=wilson(int((structured_pred == y)[success].sum()), int(success.sum())),
        **fields_,
    )


def _attacked(model, x, targets, eps, attack, config, linf_steps, step_size) -> torch.Tensor:
    """:func:`explanation_shift`'s attack: the RMSE search in explanation mode, or targeted l-inf PGD."""
    if attack == "rmse":
        search = replace(config, eps=eps, clip=True)
        x_adv = rmse_search(model, x, targets, criterion="explain", config=search).x_adv
    else:
        settings = dict(eps=eps, steps=linf_steps, step_size=step_size or eps / 10, progress=False)
        x_adv = pgd(model, x, targets=targets, **settings)
    return x_adv.clamp(0, 1)  # rmse_search adds the clipped delta back to x: remove round-off outside [0, 1]


def _method_shift(e, model, images: dict, y, adv_pred, targets, success) -> dict:
    """One explainer's fields of :class:`ShiftResult` ({field: value}), from the clean, attacked,
    noise-control and structured-null images of :func:`explanation_shift`."""
    x, x_adv, x_control, x_structured = (images[k] for k in ("x", "x_adv", "x_control", "x_structured"))
    clean = _as_seen(e.attribute(model, x, y))
    attacked = _as_seen(e.attribute(model, x_adv, adv_pred))
    control = _as_seen(e.attribute(model, x_control, y))
    out = {
        "shift": map_discrepancy(clean, attacked),
        "control_shift": map_discrepancy(clean, control),
        "rank": kendall_tau(clean, attacked),
        "control_rank": kendall_tau(clean, control),
    }
    out["share"], out["threshold"] = _share_beyond(out["shift"], out["control_shift"], success)
    out["maps"] = {"clean": clean, "attacked": attacked, "control": control}
    new_clean = _as_seen(e.attribute(model, x, targets))
    c = {
        "same_class": map_discrepancy(clean, _as_seen(e.attribute(model, x_adv, y))),
        "class_swap": map_discrepancy(clean, new_clean),
        "new_class": map_discrepancy(new_clean, _as_seen(e.attribute(model, x_adv, targets))),
        "same_class_control": out["control_shift"],
        "new_class_control": map_discrepancy(new_clean, _as_seen(e.attribute(model, x_control, targets))),
        "new_class_structured": map_discrepancy(
            new_clean, _as_seen(e.attribute(model, x_structured, targets))
        ),
    }
    out["comparisons"] = c
    out["comparison_share"] = {
        name: _share_beyond(c[value], c[ctrl], success)[0]
        for name, value, ctrl in (
            ("same_class", "same_class", "same_class_control"),
            ("class_swap", "class_swap", "same_class_control"),
            ("new_class", "new_class", "new_class_control"),
            ("new_class_vs_structured", "new_class", "new_class_structured"),
        )
    }
    out["share_beyond_class_swap"] = out["comparison_share"]["new_class"]
    out["share_beyond_structured_null"] = out["comparison_share"]["new_class_vs_structured"]
    return out


def true_class_edit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    r"""The structured null of :func:`explanation_shift`: x_s = clip(x + c_i g_i, 0, 1) of RMSE size_i.

    g = grad_x (z_y - max_{j != y} z_j), the gradient of the true class's logit
    margin over the strongest other class (a margin, not log p_y, whose float32
    gradient vanishes where the softmax saturates): an edit along the model's
    own gradient that pushes toward no other class. c_i is found per image
    (:func:`edit_of_size`) so that the edit *after* clipping to [0, 1] is as
    large as the attack's, ``size`` (N,).

    Examples:
        >>> xs = true_class_edit(model, x, y, torch.full((x.shape[0],), 0.01))
        >>> bool((xs >= 0).all() and (xs <= 1).all()), xs.shape == x.shape
        (True, True)
    """
    z = x.detach().clone().requires_grad_(True)
    with eval_mode(model), torch.enable_grad():
        logits = model(z)
        others = logits.scatter(1, y[:, None], float("-inf")).amax(1)
        (g,) = torch.autograd.grad((logits.gather(1, y[:, None])[:, 0] - others).sum(), z)
    return edit_of_size(x, g, size)


def edit_of_size(
    x: torch.Tensor, direction: torch.Tensor, size: torch.Tensor, *, rounds: int = 40
) -> torch.Tensor:
    r"""clip(x + c_i d_i, 0, 1) with c_i >= 0 such that RMSE(result_i - x_i) = size_i, per image.

    The RMSE after clipping grows with c, so c is bisected (``rounds`` halvings,
    between 0 and the scale at which the unclipped edit is 1,000 times
    ``size``); where even that falls short (the direction points out of the
    box almost everywhere), the largest edit is returned. Hand-written: a
    null edit must be as large as the attack it is compared with, and
    clipping alone can remove a third of it on a digit's black background.

    Examples:
        >>> x = torch.zeros(1, 1, 2, 2); d = torch.tensor([[[[1.0, -1.0], [1.0, -1.0]]]])
        >>> e = edit_of_size(x, d, torch.tensor([0.1]))
        >>> round(float(rmse(e - x)), 6)
        0.1
    """
    unit = direction / rmse(direction).clamp_min(1e-30)[:, None, None, None]
    lo = torch.zeros_like(size, dtype=torch.float64)
    hi = 1000 * size.double()
    for _ in range(rounds):
        mid = (lo + hi) / 2
        big = rmse((x + unit * mid.to(x.dtype)[:, None, None, None]).clamp(0, 1) - x).double() > size.double()
        hi, lo = torch.where(big, mid, hi), torch.where(big, lo, mid)
    return (x + unit * lo.to(x.dtype)[:, None, None, None]).clamp(0, 1).detach()


def energy_outside_salient(
    x: torch.Tensor, x_adv: torch.Tensor, maps: torch.Tensor, fraction: float
) -> torch.Tensor:
    r"""Per image, the share of an attack's perturbation energy outside the top-``fraction`` pixels of a map.

    With delta = x' - x summed over channels to e_p = sum_c delta_{c,p}^2 per
    pixel p, and S the ``fraction`` of pixels with the largest |map| (ties
    broken by order), returns sum_{p not in S} e_p / sum_p e_p, (N,); NaN
    where delta = 0. Chance, for energy spread evenly, is 1 - fraction. A
    share above chance means the attack works mostly where the explanation
    says nothing matters (Woods et al.'s reading of invalidation).

    Args:
        x, x_adv: (N, C, H, W) clean and attacked images.
        maps: (N, H, W) or (N, C', H, W) clean maps (channels summed).
        fraction: share of the pixels in S, in (0, 1).

    Examples:
        >>> x = torch.zeros(1, 1, 2, 2); x_adv = x.clone(); x_adv[0, 0, 0, 0] = 0.1
        >>> energy_outside_salient(x, x_adv, torch.tensor([[[0.0, 1.0], [0.0, 0.0]]]), 0.25)
        tensor([1.], dtype=torch.float64)
    """
    check_images(x, "x")
    if x_adv.shape != x.shape:
        raise InputError(f"x_adv: expected the shape of x {tuple(x.shape)}, got {tuple(x_adv.shape)}")
    if not 0 < fraction < 1:
        raise InputError(f"fraction: expected a share of the pixels in (0, 1), got {fraction!r}")
    m = maps.detach().abs()
    m = m.sum(1) if m.dim() == 4 else m
    if m.shape != (x.shape[0], *x.shape[-2:]):
        raise InputError(
            f"maps: expected (N, H, W) maps of x's {tuple(x.shape[-2:])} pixels, got {tuple(maps.shape)}"
        )
    energy = (x_adv - x).detach().double().pow(2).sum(1).flatten(1)
    k = max(1, round(fraction * energy.shape[1]))
    top = m.flatten(1).topk(k, dim=1).indices
    inside = energy.gather(1, top).sum(1)
    total = energy.sum(1)
    return torch.where(total > 0, 1 - inside / total.clamp_min(1e-300), torch.full_like(total, float("nan")))


def _share_beyond(values: torch.Tensor, control: torch.Tensor, among: torch.Tensor) -> tuple[Estimate, float]:
    """(Wilson share of ``values[among]`` above the threshold, the threshold: the 95th percentile of
    ``control[among]``, NaN where ``among`` is empty)."""
    ok = control[among]
    threshold = torch.quantile(ok.double(), 0.95).item() if ok.numel() else float("nan")
    return wilson(int((values[among] > threshold).sum()), int(among.sum())), threshold


def _as_seen(maps: torch.Tensor) -> torch.Tensor:
    """Maps as a user sees them: summed over channels, divided by their largest |value| (N, H, W)."""
    a = maps.detach().sum(1)
    top = a.flatten(1).abs().amax(1).clamp_min(1e-30)
    return a / top[:, None, None]


def _explainers(explainers) -> list:
    """A list of explainer objects from one explainer, one name, or a list of either."""
    if isinstance(explainers, str) or not hasattr(explainers, "__iter__"):
        explainers = [explainers]
    out = [as_explainer(e) for e in explainers]
    if not out:
        raise InputError("explainers: expected at least one explainer")
    return out


# ------------------------------------------------------------------------------------------------------
# How faithful are adversarial explanations? (Woods et al. claim: more than saliency, on robust networks)


def ae_reach(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, targets=None, config: SearchConfig = AE_PAPER
) -> dict:
    """How far an adversarial explanation toward each image's runner-up class (or ``targets``) gets.

    Returns {"p before": Estimate, "p after": Estimate (bootstrap means of the
    model's probability of the target on x and on the AE), "reached": Estimate
    (Wilson: the share of AEs the model classifies as the target)}; the AEs come
    from :func:`~advexp_lib.attributions.adversarial_explanation` with ``config``
    (unreliable ones flagged silently).

    Examples:
        >>> sorted(ae_reach(model, x, y, config=replace(AE_PAPER, steps=5)))
        ['p after', 'p before', 'reached']
    """
    check_images(x, "x")
    with eval_mode(model), torch.no_grad():
        p = check_logits(model(x), x.shape[0]).softmax(1)
    targets = runner_up(p, y) if targets is None else targets
    x_ae = adversarial_explanation(model, x, targets, config=config, on_late="flag", on_miss="flag").x_adv
    with eval_mode(model), torch.no_grad():
        p_ae = model(x_ae).softmax(1)
    hit = p_ae.argmax(1) == targets
    return {
        "p before": bootstrap_mean(p.gather(1, targets[:, None]).cpu()),
        "p after": bootstrap_mean(p_ae.gather(1, targets[:, None]).cpu()),
        "reached": wilson(int(hit.sum()), hit.numel()),
    }


def ae_agreement(
    model: nn.Module, others: dict, x: torch.Tensor, targets: torch.Tensor, *, config: SearchConfig = AE_PAPER
) -> dict:
    """Do other models see class t in the adversarial explanations toward t of ``model``?

    Independently trained models (another seed, another recipe) classify the
    AEs (:func:`~advexp_lib.attributions.adversarial_explanation` toward
    ``targets`` with ``config``, clipped to [0, 1]). If an AE shows what
    defines class t rather than what fools one network, other networks call it t too.

    Returns:
        {name: {"share_t": Estimate (Wilson), "p_t": Estimate (bootstrap mean of
        p_B(t | x')), "p_t_clean": Estimate (the same on x), "hit": bool (N,)
        (the judge calls the AE t)}} for every model in ``others`` and, under
        "self", ``model`` itself.

    Examples:
        >>> a = ae_agreement(model, {"twin": model}, x, (y + 1) % 3, config=replace(AE_PAPER, steps=5))
        >>> sorted(a)
        ['self', 'twin']
    """
    check_images(x, "x")
    settings = dict(config=replace(config, clip=True), on_late="flag", on_miss="flag")
    aes = adversarial_explanation(model, x, targets, **settings).x_adv
    out = {}
    for name, other in {"self": model, **others}.items():
        with eval_mode(other), torch.no_grad():
            p, p_clean = other(aes).softmax(1), other(x).softmax(1)
        hit = p.argmax(1) == targets
        out[name] = {
            "share_t": wilson(int(hit.sum()), hit.numel()),
            "p_t": bootstrap_mean(p.gather(1, targets[:, None]).squeeze(1).cpu()),
            "p_t_clean": bootstrap_mean(p_clean.gather(1, targets[:, None]).squeeze(1).cpu()),
            "hit": hit.cpu(),
        }
    return out


FIDELITY_EXPLAINERS = (
    Saliency(),
    IntegratedGradients(),
    GradCam(),
    AdversarialExplanation(AE_PAPER),
)
"""The maps :func:`explanation_fidelity` scores by default (the AE's change clipped to valid pixels)."""


def explanation_fidelity(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    explainers=FIDELITY_EXPLAINERS,
    nr_runs: int = 50,
    subset_size: int = 28,
    sensitivity_samples: int = 10,
    sensitivity_radius: float = 0.05,
    seed: int = 0,
) -> dict:
    r"""Quantus's faithfulness and robustness metrics of each explainer's maps for the true class.

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

    Both faithfulness metrics replace pixels by black, which is biased
    against maps that put mass where the image is already black (an AE's
    additive edit on a digit's background). Quantus draws from numpy's
    global RNG, seeded here with ``seed``.

    Returns:
        {explainer name: {metric: (N,) tensor}}.

    Examples:
        >>> settings = dict(nr_runs=3, subset_size=4, sensitivity_samples=2)
        >>> f = explanation_fidelity(model, x, y, explainers=[Saliency()], **settings)
        >>> sorted(f["saliency"])
        ['faithfulness', 'max_sensitivity', 'pixel_flipping']
    """
    import numpy as np  # quantus works on numpy arrays
    import quantus  # an optional dependency (the notebooks' extra): imported where it is used

    check_images(x, "x")
    n = x.shape[0]
    with eval_mode(model), torch.no_grad():
        check_labels(y, n, check_logits(model(x), n).shape[1], "y")
    explainers = _explainers(explainers)

    def explain(model, inputs, targets, explainer=None, **kw):
        xs = torch.as_tensor(inputs, dtype=x.dtype, device=x.device).clamp(0, 1)
        ts = torch.as_tensor(targets, dtype=torch.long, device=x.device)
        return explainer.attribute(model, xs, ts).detach().cpu().numpy()

    x_np, y_np = x.detach().cpu().numpy(), y.detach().cpu().numpy()
    per_row = x.shape[-1]
    out = {}
    with eval_mode(model):
        for e in explainers:
            a = explain(model, x_np, y_np, explainer=e)
            if a.shape[1] != x.shape[1]:  # one map per image (Grad-CAM): the same map for every channel
                a = np.repeat(a, x.shape[1], axis=1)
            kw = dict(
                model=model,
                x_batch=x_np,
                y_batch=y_np,
                a_batch=a,
                device=str(x.device),
                explain_func=explain,
                explain_func_kwargs={"explainer": e},
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
            out[e.name] = {
                "faithfulness": torch.as_tensor(np.asarray(faith, dtype=float)),
                "pixel_flipping": torch.as_tensor(curves.mean(1)),
                "max_sensitivity": torch.as_tensor(np.asarray(sens, dtype=float)),
            }
    return out


COUNTERFACTUAL_EXPLAINERS = (
    Saliency(abs=False),
    IntegratedGradients(),
    GradCam(),
)
"""The maps :func:`counterfactual_fidelity` scores beside the AE's change (signed saliency)."""


def explanation_budget(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    multiple: float = 1.5,
    distances: torch.Tensor | None = None,
) -> dict:
    """A per-network explanation budget: ``multiple`` x the median minimal RMSE of its correct images.

    The minimal RMSEs d_i are the ARA protocol's (:func:`~advexp_lib.metrics.accuracy_robustness_area`,
    attack criterion, :data:`~advexp_lib.attacks.ARA_PAPER`); images misclassified unperturbed
    (d_i = 0) are left out of the median. Woods et al.'s rho = 0.1 is the reference code's budget
    for CIFAR-10; networks on other data, or of other robustness, need their own.

    Args:
        distances: (N,) those d_i of ``x``, e.g. an Attack ARA's ``distances`` already
            computed, reused instead of searching again. Default None: searched here.
    Returns:
        {"rho": multiple * median, "median": the median, "n": images in it, "multiple": multiple}.

    Examples:
        >>> sorted(explanation_budget(model, x, y))
        ['median', 'multiple', 'n', 'rho']
    """
    check_positive(multiple, "multiple")
    if distances is None:
        distances = accuracy_robustness_area(model, x, y, progress=False, on_late="flag").distances
    elif tuple(distances.shape) != (x.shape[0],):
        got = tuple(distances.shape)
        raise InputError(f"distances: expected one per image of x, ({x.shape[0]},), got {got}")
    d = distances[distances > 0]
    if d.numel() == 0:
        raise InputError("x: the model misclassifies every image, so it has no minimal RMSE to scale")
    median = float(d.median())
    return {"rho": multiple * median, "median": median, "n": int(d.numel()), "multiple": float(multiple)}


def accuracies(models: dict, x: torch.Tensor, y: torch.Tensor) -> dict:
    """{label: Estimate}: each model's top-1 accuracy on (x, y), with a 95% Wilson interval.

    Examples:
        >>> accuracies({"m": model}, x, y)["m"].n
        4
    """
    check_images(x, "x")
    out = {}
    for label, model in models.items():
        with eval_mode(model):
            logits = check_logits(predict(model, x), x.shape[0])
        check_labels(y, x.shape[0], logits.shape[1], "y")
        out[label] = wilson(int((logits.argmax(1) == y.to(logits.device)).sum()), x.shape[0])
    return out


def counterfactual_differences(counterfactual: dict) -> dict:
    """{network: {method: Estimate}}: the AE's Delta log p(t) minus each other map's, paired over images.

    ``counterfactual`` = {network: :func:`counterfactual_fidelity` output}. An image where either
    edit fell short of rho (``reached`` False) is left out of that pair: the comparison is at equal RMSE.

    Examples:
        >>> quick = replace(AE_PAPER, steps=3)
        >>> t = (y + 1) % 3
        >>> r = counterfactual_fidelity(model, x, t, rho=0.1, explainers=[Saliency()], ae_config=quick)
        >>> sorted(counterfactual_differences({"m": r})["m"])
        ['random', 'saliency']
    """

    def at_rho(r, m):  # NaN where the edit is not at the budget: paired_mean_difference drops those
        return torch.where(r[m]["reached"], r[m]["delta_log_p"].double(), torch.tensor(math.nan))

    return {
        name: {m: paired_mean_difference(at_rho(r, "ae"), at_rho(r, m)) for m in r if m != "ae"}
        for name, r in counterfactual.items()
    }


def deletion_fidelity(
    model: nn.Module, shift: ShiftResult, *, fraction: float = 0.1, sigma: float = 2.0, seed: int = 0
) -> dict:
    r"""Fidelity by blurred deletion (MoRF with a blurred baseline, as ROAD), a test no map optimizes.

    ROAD: Rong et al. 2022, "A consistent and efficient evaluation strategy for attribution methods".

    For each map of the true class y in an :func:`explanation_shift` result
    (its ``maps[m]["clean"]``), the attack as an explanation ("ae": the energy
    sum_c delta_c^2 of its edit x' - x per pixel: the attack shows where the
    image must change to leave y) and a random ranking ("random", the floor):
    the ``fraction`` of pixels with the largest |map| are replaced by a
    Gaussian blur of the image (``sigma`` pixels, torchvision's
    ``gaussian_blur``), and the drop of the true class's log-probability,

        Delta_i = log p_y(x_i) - log p_y(x_i with its top pixels blurred),

    is recorded per image. A faithful map's top pixels carry the evidence, so
    blurring them costs the most. No map here is computed to maximize
    Delta: the attack maximizes log p_t of an additive edit, not the loss of
    y under blurring, so a lead of the AE is not one by construction.

    Returns:
        {method: (N,) float64 Delta}, every image of the result (a failed
        attack still has an edit to rank pixels by).

    Examples:
        >>> r = explanation_shift(model, x, y, eps=0.05, config=replace(AE_PAPER, steps=5))
        >>> sorted(deletion_fidelity(model, r))
        ['ae', 'random', 'saliency']
    """
    from torchvision.transforms.functional import gaussian_blur  # the field's blur, on (N, C, H, W)

    if not 0.0 < fraction < 1.0:
        raise InputError(f"fraction: expected a share in (0, 1), got {fraction!r}")
    check_positive(sigma, "sigma")
    x, y = shift.x, shift.y
    size = 2 * math.ceil(3 * sigma) + 1
    blurred = gaussian_blur(x, [size, size], [sigma, sigma])
    g = torch.Generator().manual_seed(seed)
    maps = {m: v["clean"].abs() for m, v in shift.maps.items()}
    maps["ae"] = (shift.x_adv - x).pow(2).sum(1)
    maps["random"] = torch.rand(maps["ae"].shape, generator=g).to(x.device)
    with eval_mode(model), torch.no_grad():
        before = torch.log_softmax(model(x), 1).gather(1, y[:, None])[:, 0]
        out = {}
        for m, a in maps.items():
            flat = a.flatten(1)
            k = max(1, round(fraction * flat.shape[1]))
            top = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, flat.topk(k, dim=1).indices, True)
            mask = top.view(a.shape)[:, None].to(x.dtype)
            after = torch.log_softmax(model(x * (1 - mask) + blurred * mask), 1).gather(1, y[:, None])[:, 0]
            out[m] = (before - after).double().cpu()
    return out


def fidelity_lead(deletion: dict, methods=None) -> dict:
    """{method: Estimate}: the AE's drop of log p_y minus each map's, paired over images, for one
    :func:`deletion_fidelity` output; above 0, the attack is the more faithful explanation there.

    Examples:
        >>> d = {"ae": torch.tensor([3.0, 4.0]), "saliency": torch.tensor([1.0, 1.0])}
        >>> fidelity_lead(d)["saliency"].value
        2.5
    """
    methods = [m for m in deletion if m != "ae"] if methods is None else list(methods)
    return {m: paired_mean_difference(deletion["ae"], deletion[m]) for m in methods}


def fidelity_interaction(robust: dict, standard: dict, methods=None) -> dict:
    """{method: Estimate}: how much more often the AE beats each map on the robust network than on the
    standard one, mean_i 1[Delta_ae > Delta_m]_robust - mean_i 1[Delta_ae > Delta_m]_standard, paired
    over images.

    ``robust`` and ``standard``: :func:`deletion_fidelity` outputs on the same images. A win rate
    compares two rankings on one network, so it does not depend on how strongly that network reacts
    to blur at all (a standard network's drops are larger for every ranking, random included, which
    a difference of raw leads would read as fidelity). Above 0: the attack is the better explanation
    more often on the robust network (Woods et al.'s "with very robust networks"). ``methods``:
    default every map but "ae".

    Examples:
        >>> a = {"ae": torch.tensor([3.0, 4.0]), "saliency": torch.tensor([1.0, 1.0])}
        >>> b = {"ae": torch.tensor([1.0, 9.0]), "saliency": torch.tensor([2.0, 1.0])}
        >>> fidelity_interaction(a, b)["saliency"].value
        0.5
    """
    methods = [m for m in robust if m != "ae"] if methods is None else list(methods)
    return {
        m: paired_mean_difference(
            (robust["ae"] > robust[m]).double(), (standard["ae"] > standard[m]).double()
        )
        for m in methods
    }


def win_rates(deletion: dict, methods=None) -> dict:
    """{method: share of images where the AE's drop of log p_y beats the map's}, for one
    :func:`deletion_fidelity` output (the arms of :func:`fidelity_interaction`).

    Examples:
        >>> win_rates({"ae": torch.tensor([3.0, 0.0]), "saliency": torch.tensor([1.0, 1.0])})
        {'saliency': 0.5}
    """
    methods = [m for m in deletion if m != "ae"] if methods is None else list(methods)
    return {m: float((deletion["ae"] > deletion[m]).double().mean()) for m in methods}


def deletion_means(deletion: dict) -> dict:
    """{network: {method: Estimate}}: the mean drop of log p_y of each map, with a 95% bootstrap
    interval over images, for {network: :func:`deletion_fidelity` output}.

    Examples:
        >>> deletion_means({"net": {"ae": torch.tensor([3.0, 4.0])}})["net"]["ae"].value
        3.5
    """
    return {r: {m: bootstrap_mean(v) for m, v in d.items()} for r, d in deletion.items()}


def energy_outside(shifts: dict, fractions=(0.1, 0.2)) -> dict:
    """Woods et al.'s spatial reading of invalidation, for :func:`explanation_shift` results.

    For each {label: ShiftResult} and each of its methods, over its successful
    attacks: the mean share of the attack's energy outside the clean map's
    top-k region (:func:`energy_outside_salient`), and that share minus
    chance (1 - k), each with a 95% bootstrap interval, for each k of ``fractions``.

    Returns:
        {(label, method): {"outside_k10": Estimate, "minus_chance_k10": Estimate, ...}} (k in percent).

    Examples:
        >>> r = explanation_shift(model, x, y, eps=0.05, config=replace(AE_PAPER, steps=5))
        >>> sorted(energy_outside({"m": r}, fractions=(0.1,))[("m", "saliency")])
        ['minus_chance_k10', 'outside_k10']
    """
    out = {}
    for label, res in shifts.items():
        ok = res.success
        for m, maps in res.maps.items():
            row = {}
            for k in fractions:
                if not ok.any():  # no successful attack: nothing to read the energy of
                    row[f"outside_k{k:.0%}"[:-1]] = row[f"minus_chance_k{k:.0%}"[:-1]] = _UNDEFINED
                    continue
                share = energy_outside_salient(res.x[ok], res.x_adv[ok], maps["clean"][ok], k)
                row[f"outside_k{k:.0%}"[:-1]] = bootstrap_mean(share)
                row[f"minus_chance_k{k:.0%}"[:-1]] = bootstrap_mean(share - (1 - k))
            out[(label, m)] = row
    return out


_UNDEFINED = Estimate(math.nan, math.nan, math.nan, 0)


def counterfactual_fidelity(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    *,
    rho: float,
    fraction: float = 0.1,
    explainers=COUNTERFACTUAL_EXPLAINERS,
    ae_config: SearchConfig = AE_PAPER,
    seed: int = 0,
) -> dict:
    r"""Does editing where a map points, the way it points, move the model toward t? At equal RMSE.

    For each map M of class t (the ``explainers``, the adversarial explanation's
    change x' - x at budget ``rho`` (``ae_config`` with eps = rho, clipped), and a
    control of k random pixels), the edit lives on the map's top-k pixels by
    |M| (k = ``fraction`` of the pixels), with M's sign and one magnitude c:

        x_M = clip(x + c * sign(M) * 1[top-k |M|], 0, 1),    RMSE(x_M - x) = rho,

    c found per image by bisection (clipping makes RMSE grow monotonically in c);
    where even c = 1 falls short, the edit is the largest there is and
    ``reached`` says so. Maps without a negative value (Grad-CAM's, absolute
    saliency) and the random control take the sign of the input gradient of
    log p(t) on their pixels. The score is
    the counterfactual effect

        Delta log p(t) = log p_t(x_M) - log p_t(x)    (higher: the map shows a change the model follows).

    Hand-written: Quantus's faithfulness metrics replace pixels by black, which
    cannot add a stroke where the image is black; an edit of the map's own sign can.

    Returns:
        {method: {"delta_log_p": (N,) tensor, "rmse": (N,) tensor, "reached": (N,) bool,
        "hit": (N,) bool (the model calls x_M t)}}, methods: the explainers' names, "ae", "random".

    Examples:
        >>> r = counterfactual_fidelity(model, x, (y + 1) % 3, rho=0.1, ae_config=replace(AE_PAPER, steps=5))
        >>> sorted(r)
        ['ae', 'grad_cam', 'integrated_gradients', 'random', 'saliency']
    """
    check_images(x, "x")
    check_positive(rho, "rho")
    if not 0 < fraction <= 1:
        raise InputError(f"fraction: expected a share of the pixels in (0, 1], got {fraction!r}")
    n = x.shape[0]
    with eval_mode(model), torch.no_grad():
        logp = check_logits(model(x), n).log_softmax(1)
    check_labels(targets, n, logp.shape[1], "targets")
    x = x.detach()
    with eval_mode(model):
        z = x.clone().requires_grad_(True)
        grad_sign = torch.autograd.grad(model(z).log_softmax(1).gather(1, targets[:, None]).sum(), z)[
            0
        ].sign()
        maps = {e.name: e.attribute(model, x, targets) for e in _explainers(explainers)}
        ae = AdversarialExplanation(replace(ae_config, eps=float(rho), clip=True))
        maps["ae"] = ae.attribute(model, x, targets)
    g = torch.Generator().manual_seed(seed)
    maps["random"] = torch.rand(x.shape, generator=g).to(x.device)
    k = max(1, round(fraction * x[0].numel()))
    out = {}
    for name, m in maps.items():
        m = m.expand_as(x) if m.shape != x.shape else m  # one map per image (Grad-CAM): every channel
        signed = name != "random" and bool((m < 0).any())  # a map with no negative value has no sign
        sign = m.sign() if signed else grad_sign
        top = m.abs().flatten(1).topk(k, dim=1).indices
        mask = torch.zeros_like(x).flatten(1).scatter_(1, top, 1.0).view_as(x)
        x_m, got = _edit_at_rmse(x, sign * mask, rho)
        with eval_mode(model), torch.no_grad():
            lp = model(x_m).log_softmax(1)
        out[name] = {
            "delta_log_p": (lp - logp).gather(1, targets[:, None]).squeeze(1).cpu(),
            "rmse": got.cpu(),
            "reached": (got >= rho * (1 - 1e-3)).cpu(),
            "hit": (lp.argmax(1) == targets).cpu(),
        }
    return out


def _edit_at_rmse(x: torch.Tensor, direction: torch.Tensor, rho: float, iters: int = 40):
    """clip(x + c * direction) with c in [0, 1] per image bisected so its RMSE from x is rho (or c = 1)."""

    def edit(c):
        return (x + c.view(-1, *[1] * (x.dim() - 1)) * direction).clamp(0, 1)

    lo, hi = torch.zeros(x.shape[0], device=x.device), torch.ones(x.shape[0], device=x.device)
    short = rmse(edit(hi) - x) <= rho  # even c = 1 is not enough: take it
    for _ in range(iters):
        mid = (lo + hi) / 2
        over = rmse(edit(mid) - x) > rho
        hi, lo = torch.where(over, mid, hi), torch.where(over, lo, mid)
    x_m = edit(torch.where(short, torch.ones_like(hi), lo))
    return x_m, rmse(x_m - x)


# ------------------------------------------------------------------------------------------------------
# Robustness: ARA of several models, the audit of a robustness claim, every metric of every model


def ara_results(
    models: dict,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    config: SearchConfig = ARA_PAPER,
    kinds=("attack", "btr"),
    progress: bool = False,
) -> dict:
    """Attack and BTR ARA of several models on the same images: {kind: {label: AraResult}}.

    Runs :func:`advexp_lib.metrics.accuracy_robustness_area` (Woods et al.
    Algorithm 1; RMSE distances, no clipping, as the reference) for every
    model and every kind, retrying with unit steps the images the reference
    search cannot move (``never_met="retry"``; ``AraResult.retried``).
    :func:`advexp_book.report.ara_table` tabulates the result.

    Examples:
        >>> r = ara_results({"m": model}, x, y, config=replace(ARA_PAPER, steps=30))
        >>> sorted(r), sorted(r["btr"])
        (['attack', 'btr'], ['m'])
    """
    if not models:
        raise InputError("models: expected at least one {label: model}")
    kinds = [as_criterion(k, ("attack", "btr"), name="kinds").name for k in kinds]
    return {
        kind: {
            label: accuracy_robustness_area(
                m, x, y, kind=kind, config=config, progress=progress, on_late="flag", never_met="retry"
            )
            for label, m in models.items()
        }
        for kind in kinds
    }


@dataclass
class AuditResult(Result):
    """Output of :func:`robustness_audit`.

    Attributes:
        rows: {model: {check: value}}, checks ``n``, ``broken`` (share of images some attack broke),
            ``rmse_ara``, ``longer_change``, ``restarts_change`` (relative ARA changes), ``transfer_beats``,
            ``transfer_ara``, ``boundary_beats`` (shares of images beaten), ``ensemble_ara``,
            ``ensemble_over_rmse`` and ``ok`` (:func:`advexp_book.report.audit_table` labels them).
        ensembles: {model: EnsembleAraResult} of the RMSE search, DDN and FMN.
        searches: {model: AraResult} of the RMSE search itself.
        reference: the model whose perturbations were transferred.
        restarts, n_boundary: the settings the check names carry.

    Examples:
        >>> quick = dict(config=replace(ARA_PAPER, steps=10), boundary_steps=20, n_boundary=2)
        >>> a = robustness_audit({"m": model}, x, y, **quick)
        >>> isinstance(a, AuditResult), "ok" in a.rows["m"]
        (True, True)
    """

    rows: dict
    ensembles: dict
    searches: dict
    reference: str
    restarts: int
    n_boundary: int


def robustness_audit(
    models: dict,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    kind="attack",
    reference: str | None = None,
    config: SearchConfig = ARA_PAPER,
    restarts: int = 2,
    boundary_steps: int = 2000,
    n_boundary: int | None = 20,
    tolerance: float = 0.05,
    seed: int = 0,
    progress: bool = False,
    base: dict | None = None,
    double_steps: bool = True,
) -> AuditResult:
    """The standard checklist for a robustness claim (Carlini et al. 2019), for each model.

    On the same images, for each model, every search with ``config``:

    - **unbounded**: the share of images some attack breaks (it must be 1: an
      unbounded attack always succeeds);
    - **2x steps** (with ``double_steps``, default True): relative change of the RMSE
      search's ARA with twice the steps (a check of the search's convergence; NaN and
      left out of ``ok`` without it);
    - **restarts**: relative change of its ARA when each image's distance is
      the smallest over ``restarts`` extra searches from x + U(-1/255, 1/255)
      (distances measured from x);
    - **transfer**: the ``reference`` model's minimal perturbations, scaled
      along their direction until they break this model
      (:func:`advexp_lib.attacks.line_search`): the share of images where
      transfer beats the white-box ensemble by more than 2% (should be small;
      the RMSE search records points of its path, a line search lands on the
      boundary, hence the margin), and the transfer ARA (not for the
      reference itself);
    - **boundary**: the gradient-free decision-based attack on the first
      ``n_boundary`` images: the share where it beats the RMSE search;
    - **ensemble**: the ARA from the best of the RMSE search, DDN and FMN
      (:func:`advexp_lib.metrics.ensemble_ara`), and its ratio to the RMSE
      search's ARA.

    ``base``: {label: AraResult} of every model from
    :func:`advexp_lib.metrics.accuracy_robustness_area` on these images with
    this ``kind`` and ``config`` (``never_met="retry"``), e.g.
    :func:`ara_results`' entry for ``kind``, reused instead of searching
    again (default None: searched here).

    ``ok`` says whether the first four checks pass: all broken, both changes
    within ``tolerance`` (the 2x-steps one only where it ran), and no more than
    ``tolerance`` of the images broken more cheaply by transfer or by the boundary attack.

    Returns:
        :class:`AuditResult`; :func:`advexp_book.report.audit_table` tabulates it.

    Examples:
        >>> quick = dict(config=replace(ARA_PAPER, steps=10), boundary_steps=20, n_boundary=2)
        >>> a = robustness_audit({"m": model}, x, y, **quick)
        >>> a.rows["m"]["broken"]
        1.0
    """
    if not models:
        raise InputError("models: expected at least one {label: model}")
    criterion = as_criterion(kind, ("attack", "btr"), name="kind")
    reference = reference or next(iter(models))
    check_choice(reference, "reference", list(models))
    settings = dict(kind=criterion, config=config, progress=progress, on_late="flag", never_met="retry")
    if base is None:
        base = {label: accuracy_robustness_area(m, x, y, **settings) for label, m in models.items()}
    _check_base(base, models, criterion.name, x.shape[0])
    ref_found = rmse_search(models[reference], x, y, criterion=criterion, config=config)
    directions = ref_found.x_adv - x
    g = torch.Generator().manual_seed(seed)
    nb = x.shape[0] if n_boundary is None else min(n_boundary, x.shape[0])
    rows, ensembles = {}, {}
    for label, model in models.items():
        ara = base[label].ara
        twice = {**settings, "config": replace(config, steps=2 * config.steps)}
        longer = accuracy_robustness_area(model, x, y, **twice) if double_steps else None
        best = _restarted(model, x, y, base[label].distances.double(), criterion, config, restarts, g)
        transfer = line_search(model, x, y, directions, criterion=criterion).distances.double()
        own = label == reference
        ens = ensemble_ara(
            model, x, y, kind=criterion, config=config, progress=progress, rmse_result=base[label]
        )
        ensembles[label] = ens
        boundary = independent_attack(
            model, x[:nb], y[:nb], attack="boundary", criterion=criterion, steps=boundary_steps
        )
        white = ens.distances
        attacked = white > 0
        num_classes = base[label].num_classes
        row = {
            "n": x.shape[0],
            "broken": float(torch.isfinite(white).double().mean()),
            "rmse_ara": ara,
            "longer_change": math.nan if longer is None else _change(longer.ara, ara),
            "restarts_change": _change(ara_from_distances(best, num_classes), ara),
            "transfer_beats": math.nan if own else _share(transfer < 0.98 * white, attacked),
            "transfer_ara": math.nan if own else _ara_or_inf(transfer, num_classes),
            "boundary_beats": _share(
                boundary.distances.double() < base[label].distances[:nb].double() - 1e-12, attacked[:nb]
            ),
            "ensemble_ara": ens.ara,
            "ensemble_over_rmse": _change(ens.ara, ara) + 1,
        }
        row["ok"] = _audit_ok(row, tolerance, longer_run=longer is not None)
        rows[label] = row
    return AuditResult(rows, ensembles, base, reference, restarts, nb)


def _check_base(base, models: dict, kind: str, n: int) -> None:
    """Refuse a :func:`robustness_audit` ``base`` lacking a model, or of another kind or image count."""
    for label in models:
        given = base.get(label) if isinstance(base, dict) else None
        if given is None or given.kind != kind or given.distances.shape[0] != n:
            raise InputError(f"base: expected a {kind!r} ARA of these {n} images for {label!r}")


def _restarted(model, x, y, best, criterion, config, restarts: int, g) -> torch.Tensor:
    """Each image's smallest distance (float64) over ``best`` and ``restarts`` searches from starts
    shifted by uniform noise of at most 1/255 (drawn from ``g``); a failed search counts as inf."""
    for _ in range(restarts):
        start = (x + (torch.rand(x.shape, generator=g) * 2 - 1).to(x) / 255).clamp(0, 1)
        found = rmse_search(model, start, y, criterion=criterion, config=config).x_adv
        met = criterion_met(model, found, y, criterion)
        best = torch.minimum(
            best, torch.where(met, rmse(found - x), torch.full_like(best, math.inf)).double()
        )
    return best


def _audit_ok(row: dict, tolerance: float, *, longer_run: bool) -> bool:
    """Every check of an audit row passes: all broken, the ARA stable under 2x steps (if run) and
    restarts, and neither transfer nor the boundary attack beats the white-box attacks."""
    return bool(
        row["broken"] == 1.0
        and (not longer_run or abs(row["longer_change"]) <= tolerance)
        and abs(row["restarts_change"]) <= tolerance
        and not row["transfer_beats"] > tolerance
        and row["boundary_beats"] <= tolerance
    )


def _change(new: float, old: float) -> float:
    """Relative change new / old - 1; 0 where both are 0 (a network at chance has ARA 0), inf from 0 up."""
    if old == 0:
        return 0.0 if new == 0 else math.inf
    return new / old - 1


def _ara_or_inf(distances: torch.Tensor, num_classes: int) -> float:
    return ara_from_distances(distances, num_classes) if torch.isfinite(distances).all() else math.inf


def _share(flags: torch.Tensor, among: torch.Tensor) -> float:
    return float(flags[among].double().mean()) if among.any() else math.nan


def evaluate_all(
    models: dict,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    config: SearchConfig = ARA_PAPER,
    linf_eps=(0.1, 0.2),
    pgd_steps: int = PGD_MNIST.steps,
    pgd_step_size: float = PGD_MNIST.step_size,
    ig_steps: int = 50,
    progress: bool = False,
) -> dict:
    """Every model on every headline metric of the three papers: {label: {metric: Estimate}}.

    Metrics: ``accuracy`` (Wilson); ``attack_ara`` and ``btr_ara`` (Woods et
    al.; the RMSE search with ``config``; bootstrap intervals over the images);
    ``robust_acc@<eps>`` (Boopathy et al.; l-inf PGD, ``pgd_steps`` x
    ``pgd_step_size``, through :func:`advexp_lib.metrics.robust_accuracy_curve`;
    Wilson); ``ig_gini`` (Chalasani et al.; mean Gini index of integrated
    gradients of the true class, zero baseline, ``ig_steps`` nodes; bootstrap
    over the images whose map is not blank). :func:`advexp_book.report.evaluation_table`
    tabulates it.

    Examples:
        >>> quick = dict(config=replace(ARA_PAPER, steps=10), pgd_steps=2, ig_steps=4)
        >>> rows = evaluate_all({"m": model}, x, y, **quick)
        >>> sorted(rows["m"])
        ['accuracy', 'attack_ara', 'btr_ara', 'ig_gini', 'robust_acc@0.1', 'robust_acc@0.2']
    """
    aras = ara_results(models, x, y, config=config, progress=progress)
    n = x.shape[0]
    out = {}
    for label, model in models.items():
        row = {"accuracy": wilson(round(aras["attack"][label].accuracy * n), n)}
        for kind in ("attack", "btr"):
            row[f"{kind}_ara"] = aras[kind][label].interval()
        eps, acc = robust_accuracy_curve(
            model, x, y, list(linf_eps), steps=pgd_steps, step_size=pgd_step_size
        )
        for e, a in zip(eps.tolist(), acc.tolist()):
            row[f"robust_acc@{e:g}"] = wilson(round(a * n), n)
        g = gini(IntegratedGradients(n_steps=ig_steps).attribute(model, x, y))
        row["ig_gini"] = bootstrap_mean(g[~g.isnan()])  # a blank map has no Gini index
        out[label] = row
    return out


def sparsity(models: dict, x: torch.Tensor, y: torch.Tensor, *, explainer=None) -> dict:
    """Accuracy and attribution sparsity of each model on the same images (Chalasani et al. 2020).

    Returns {label: {"accuracy": Estimate (Wilson), "gini": Estimate (bootstrap
    mean over the images whose map is not blank), "per_image": (N,) Gini
    indices, NaN for a blank map, and "gini_digit" / "per_image_digit": the
    same over each image's nonzero pixels only (``x > 0``, the digit's
    strokes: a black-baseline IG is zero elsewhere, which inflates the
    Gini over all pixels)}} with the maps of ``explainer`` for the true
    class (default: ``IntegratedGradients()``, black baseline) and
    :func:`advexp_lib.metrics.gini`. Compare two models with
    :func:`advexp_lib.stats.paired_mean_difference` of their ``per_image``.

    Examples:
        >>> s = sparsity({"m": model}, x, y, explainer=IntegratedGradients(n_steps=4))
        >>> sorted(s["m"])
        ['accuracy', 'correct', 'gini', 'gini_digit', 'per_image', 'per_image_digit']
    """
    explainer = IntegratedGradients() if explainer is None else as_explainer(explainer)
    out = {}
    for label, model in models.items():
        with eval_mode(model), torch.no_grad():
            hit = check_logits(model(x), x.shape[0]).argmax(1) == y
        maps = explainer.attribute(model, x, y)
        g = gini(maps).cpu()
        gd = gini(maps, mask=x > 0).cpu() if maps.shape == x.shape else torch.full_like(g, float("nan"))
        out[label] = {"accuracy": wilson(int(hit.sum()), hit.numel()), "gini": bootstrap_mean(g[~g.isnan()])}
        out[label].update(per_image=g, gini_digit=bootstrap_mean(gd[~gd.isnan()]), per_image_digit=gd)
        out[label]["correct"] = hit.cpu()
    return out


def attribution_stability(
    models: dict, x: torch.Tensor, *, eps: float, k: int, steps: int, explainer
) -> dict:
    """Per-image stability of each model's maps under the top-k attribution attack (Ghorbani et al. 2019).

    :func:`~advexp_lib.attacks.topk.topk_attribution_attack` (prediction kept) on
    every model, the same images; per image the top-k intersection of the clean
    and attacked maps and Kendall's tau between them (NaN where a map is constant).

    Returns:
        {name: {"intersection": (N,) tensor, "kendall_tau": (N,) tensor}}; compare two
        models with :func:`~advexp_lib.stats.paired_mean_difference` on the same images.

    Examples:
        >>> ig = IntegratedGradients(n_steps=4)
        >>> s = attribution_stability({"m": model}, x, eps=0.1, k=5, steps=2, explainer=ig)
        >>> sorted(s["m"])
        ['intersection', 'kendall_tau']
    """
    out = {}
    for name, model in models.items():
        res = topk_attribution_attack(model, x, eps=eps, k=k, steps=steps, explainer=explainer)
        out[name] = {
            "intersection": res.intersection.cpu(),
            "kendall_tau": kendall_tau(res.maps, res.maps_adv),
        }
    return out


def sparsity_over_seeds(models: dict, x: torch.Tensor, y: torch.Tensor, *, explainer=None) -> dict:
    """:func:`sparsity` of several training seeds per label, pooled: {label: {"accuracy", "gini",
    "gini_digit": Estimates over seeds and images (two-level bootstrap, :func:`seed_mean`),
    "per_image", "per_image_digit", "correct": (S, N) tensors, one row per seed}}.

    ``models`` = {label: [one network per training seed]}, all on the same images. Compare two
    labels with :func:`seed_difference` of their (S, N) rows.

    Examples:
        >>> s = sparsity_over_seeds({"m": [model, model]}, x, y, explainer=IntegratedGradients(n_steps=4))
        >>> tuple(s["m"]["per_image"].shape) == (2, x.shape[0])
        True
    """
    out = {}
    for label, nets in models.items():
        runs = [sparsity({label: m}, x, y, explainer=explainer)[label] for m in nets]
        rows = {k: torch.stack([r[k] for r in runs]) for k in ("per_image", "per_image_digit", "correct")}
        out[label] = {
            "accuracy": seed_mean(rows["correct"]),
            "gini": seed_mean(rows["per_image"]),
            "gini_digit": seed_mean(rows["per_image_digit"]),
            **rows,
        }
    return out


def correct_over_seeds(models, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 500) -> torch.Tensor:
    """(S, N) bool: whether each network of ``models`` (one per training seed) classifies each image right.

    Examples:
        >>> tuple(correct_over_seeds([model, model], x, y).shape) == (2, x.shape[0])
        True
    """
    rows = []
    for m in models:
        with eval_mode(m), torch.no_grad():
            pred = torch.cat([m(x[i : i + batch_size]).argmax(1) for i in range(0, x.shape[0], batch_size)])
        rows.append((pred == y).cpu())
    return torch.stack(rows)


def seed_difference(a: torch.Tensor, b: torch.Tensor) -> Estimate:
    """:func:`advexp_lib.stats.seed_mean_difference` of (S_a, N) and (S_b, N) rows, on the images where
    every seed of both sides is defined (a NaN, e.g. the Gini of a blank map, drops its image from
    both; ``n`` counts the images kept).

    Examples:
        >>> a = torch.tensor([[1.0, float("nan"), 3.0], [1.0, 2.0, 3.0]])
        >>> seed_difference(a, torch.zeros(3)).n
        2
    """
    a, b = (torch.as_tensor(v, dtype=torch.float64).cpu() for v in (a, b))
    a, b = (v[None] if v.dim() == 1 else v for v in (a, b))
    keep = ~(a.isnan().any(0) | b.isnan().any(0))
    return seed_mean_difference(a[:, keep], b[:, keep])


def seed_mean(rows: torch.Tensor) -> Estimate:
    """Mean of (S, N) values (training seeds x the same images; bool as 0 / 1), with the two-level
    bootstrap interval of :func:`advexp_lib.stats.hierarchical_resamples`, on the images where every
    seed is defined (as :func:`seed_difference`).

    Examples:
        >>> seed_mean(torch.tensor([[1.0, 0.0], [1.0, 1.0]])).value
        0.75
    """
    v = torch.as_tensor(rows, dtype=torch.float64).cpu()
    v = (v[None] if v.dim() == 1 else v)[:, ~v.isnan().reshape(-1, v.shape[-1]).any(0)].numpy()
    if v.shape[1] < 2:
        return Estimate(float(v.mean()) if v.size else math.nan, math.nan, math.nan, int(v.shape[1]))
    (draws,) = hierarchical_resamples([v], lambda a: a.mean(-1))
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return Estimate(float(v.mean()), float(lo), float(hi), int(v.shape[1]))


def accuracy_matched(points: dict, reference: str, candidates) -> tuple[str | None, Estimate | None]:
    """The sparsest of ``candidates`` whose accuracy is within reach of ``reference``'s, and the paired
    Gini difference reference minus it.

    ``points`` as :func:`sparsity` or :func:`sparsity_over_seeds` returns; a
    candidate is within reach when the upper end of its accuracy interval
    reaches the lower end of the reference's (the intervals meet). The
    difference is :func:`advexp_lib.stats.seed_mean_difference` (images paired;
    a single network is one seed). Returns (None, None) when none is.

    Examples:
        >>> s = sparsity({"a": model, "b": model}, x, y, explainer=IntegratedGradients(n_steps=4))
        >>> accuracy_matched(s, "a", ["b"])[0]
        'b'
    """
    ref = points[reference]
    near = [c for c in candidates if points[c]["accuracy"].hi >= ref["accuracy"].lo]
    if not near:
        return None, None
    best = max(near, key=lambda c: points[c]["gini"].value)
    return best, seed_difference(ref["per_image"], points[best]["per_image"])


def ig_norm_attacks(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, settings: dict, *, seed: int = 0
) -> dict:
    """||IG of the loss from x to x'||_1 (Chen et al. 2019) at three choices of x', per image.

    ``settings``: the keyword arguments of an IG-NORM recipe's loss term
    (:class:`~advexp_lib.regularizers.IGNormRegularizer`; its warm-up is
    dropped: the trained budget counts). The x' are the recipe's (PGD on the
    cross-entropy, "ce_recipe_steps"), the reference code's objective (PGD on
    the IG norm itself) with the recipe's steps ("ig_recipe_steps"), and with the reference's 40
    steps of 0.01 ("ig_reference_steps"). Each finder runs after ``torch.manual_seed(seed)``, so
    random starts are comparable; the norm is measured with the reference
    code's quadrature (50 right-Riemann nodes). Returns {label: (N,) float64}.

    Examples:
        >>> from advexp_lib.recipes import recipe
        >>> settings = {**recipe("mnist5k", "ig_norm").loss_term[1], "steps": 1}
        >>> sorted(ig_norm_attacks(cam_model, x, y, settings))[0]
        'ce_recipe_steps'
    """
    settings = {k: v for k, v in settings.items() if k != "warmup_epochs"}
    finders = {
        "ce_recipe_steps": IGNormRegularizer(**settings, x_adv="ce"),
        "ig_recipe_steps": IGNormRegularizer(**settings, x_adv="ig"),
        "ig_reference_steps": IGNormRegularizer(
            **{**settings, "steps": PGD_MNIST.steps, "step_size": PGD_MNIST.step_size}, x_adv="ig"
        ),
    }
    out = {}
    for label, finder in finders.items():
        torch.manual_seed(seed)
        x_adv = finder.find_x_adv(model, x, y)
        loss = lambda z: torch.nn.functional.cross_entropy(model(z), y, reduction="none")  # noqa: E731
        out[label] = ig_norm(loss, x_adv, x, 50, "riemann_right").detach().double().cpu()
    return out


def reference_difference(ours: torch.Tensor, reference: torch.Tensor, x: torch.Tensor) -> pd.DataFrame:
    """How far our images are from a reference implementation's saved 8-bit images, per image.

    ``ours`` is quantized as a PNG stores it (round(255 v), clamped to 0..255);
    ``reference`` and ``x`` are (N, C, H, W) in [0, 1] read from 8-bit files.
    Columns: the largest and the mean absolute pixel difference, in 8-bit
    levels (of 255), and the Pearson correlation between the two changes from
    the image, ours - x and reference - x (1: the same edit up to scale).

    Examples:
        >>> reference_difference(x, x, x)["max_diff_255"].tolist()
        [0.0, 0.0, 0.0, 0.0]
    """
    for name, t in (("ours", ours), ("reference", reference)):
        if t.shape != x.shape:
            raise InputError(f"{name}: expected the shape of x {tuple(x.shape)}, got {tuple(t.shape)}")
    mine = as_8bit(ours.detach().double().cpu()) * 255
    ref, base = (t.detach().double().cpu().mul(255).round() for t in (reference, x))
    diff = (mine - ref).abs().flatten(1)
    changes = torch.stack([(mine - base).flatten(1), (ref - base).flatten(1)], 1)
    corr = [float(torch.corrcoef(c)[0, 1]) for c in changes]
    return pd.DataFrame(
        {
            "max_diff_255": diff.max(1).values.tolist(),
            "mean_diff_255": diff.mean(1).tolist(),
            "change_corr": corr,
        }
    )


def reference_explanations(
    models: dict,
    x: torch.Tensor,
    y: torch.Tensor,
    reference: dict,
    *,
    config: SearchConfig | None = None,
    seed: int = 0,
) -> dict:
    """Our adversarial explanations toward the true class beside a reference implementation's 8-bit images.

    For each model: our AEs (:func:`~advexp_lib.attributions.adversarial_explanation`
    with ``config``, default the reference's own search :data:`~advexp_lib.protocols.AE_REFERENCE`;
    unreliable ones flagged silently), their
    :func:`reference_difference` from ``reference[name]``, and the same
    difference for our own search run twice more, once on the input moved by
    Gaussian noise of std 1e-6 (``seed``) and once in float64, both compared
    with our float32 AEs as a PNG would hold them: how far the search's own
    rounding moves the result, the bound on how close any reproduction can come.

    Returns:
        {"ours": {name: x'}, "vs reference": {name: DataFrame},
        "input moved 1e-6": {name: DataFrame}, "float64": {name: DataFrame}}.

    Examples:
        >>> r = reference_explanations({"m": model}, x, y, {"m": x}, config=replace(AE_PAPER, steps=3))
        >>> sorted(r)
        ['float64', 'input moved 1e-6', 'ours', 'vs reference']
    """
    config = AE_REFERENCE if config is None else config
    g = torch.Generator().manual_seed(seed)
    noise = 1e-6 * torch.randn(x.shape, generator=g).to(x)
    out = {"ours": {}, "vs reference": {}, "input moved 1e-6": {}, "float64": {}}
    for name, model in models.items():
        ours = _explain(model, x, y, config)
        saved = as_8bit(ours)  # ours as a PNG would hold it
        moved = _explain(model, (x + noise).clamp(0, 1), y, config)
        wide = _explain(copy.deepcopy(model).double(), x.double(), y, config)
        out["ours"][name] = ours
        out["vs reference"][name] = reference_difference(ours, reference[name].to(x), x)
        out["input moved 1e-6"][name] = reference_difference(moved, saved, x)
        out["float64"][name] = reference_difference(wide.float(), saved, x)
    return out


def _explain(model, x, y, config):
    return adversarial_explanation(
        model, x, y, config=config, on_late="flag", on_miss="flag", progress=False
    ).x_adv
