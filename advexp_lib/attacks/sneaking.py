"""The interpretability sneaking attack (ISA) of Boopathy et al. (2020): a targeted attack hiding from a map.

Hand-written (no library has it), searched as the authors' reference code
(AkhilanB/Proper-Interpretability, ``funcs.py``) does. Distance Measure: Linf.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..attributions import Cam, as_explainer
from ..checks import InputError, check_choice, check_images, check_labels, check_logits, check_positive
from ..metrics import DISCREPANCY_NORMS, map_discrepancy
from ..models import eval_mode, tandem_margin
from ..results import Result
from ..speedups import cam_view
from ..stats import paired_mean_difference
from .bisection import Bisection

__all__ = ["ISA_MEASURES", "IsaResult", "sneaking_attack", "interpretability_sneaking_attack"]

ISA_MEASURES = ("one", "two")


@dataclass
class IsaResult(Result):
    """Output of :func:`interpretability_sneaking_attack` (N images, P multiples of the minimal eps).

    Attributes:
        eps: (N,) smallest l-inf budget found for the attack alone (``eps_max``
            where it never succeeded). success: (N,) the attack alone succeeds there.
        x_attack: (N, ...) the attack alone at ``eps``; ``baseline``: {"one": D1,
            "two": D2} of it, each (N,).
        multiples: the P multiples p; the ISA runs at eps_p = min(p eps, eps_max).
        hidden: measure ("one", "two") -> {"x_adv": (P, N, ...), "gamma": (P, N),
            "success": (P, N), "one": D1 (P, N), "two": D2 (P, N)}: the ISA hiding
            from that measure at each multiple, with the largest gamma found
            that still succeeds (0 where none does: then it is the attack alone).
        alone: {"x_adv", "success", "one", "two"}, each (P, ...): the attack alone
            (gamma = 0) at each eps_p, the control at equal budget: the ISA at p
            times the minimal eps against the attack alone at the same budget.
    D1 and D2 are the normalized discrepancies of the reported maps
    (:func:`advexp_lib.metrics.map_discrepancy`).

    Examples:
        >>> r = interpretability_sneaking_attack(cam_model, x, y, (y + 1) % 3, steps=2, search_steps=2)
        >>> r.eps.shape, sorted(r.hidden)
        (torch.Size([4]), ['one', 'two'])
    """

    eps: torch.Tensor
    success: torch.Tensor
    x_attack: torch.Tensor
    baseline: dict
    multiples: tuple
    hidden: dict = field(repr=False)
    alone: dict = field(repr=False, default_factory=dict)

    def reduction(
        self, measure: str, i: int, *, against: str = "minimal"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(1 - D_hidden / D_alone, ok) at multiple ``i`` when hiding from ``measure``: the relative
        reduction of the measure the ISA hid from, and where it is defined (both attacks succeeded).

        ``against``: "minimal" (default), D_alone of the attack alone at the minimal eps (the
        paper's comparison, where the ISA also has p times the budget); "equal": of the attack
        alone at the ISA's own budget p x eps (the control: budget alone cannot explain a reduction).
        """
        check_choice(against, "against", ("minimal", "equal"))
        h = self.hidden[measure]
        if against == "minimal":
            alone, ok = self.baseline[measure], self.success
        else:
            alone, ok = self.alone[measure][i], self.alone["success"][i] & self.success
        return 1 - h[measure][i] / alone.clamp(min=1e-12), h["success"][i] & ok

    def reduction_difference(self, *, against: str = "minimal") -> dict:
        """Per multiple p: the paired mean, over the images where both ISA runs succeeded, of the relative
        reduction of D1 (hiding from it) minus that of D2 (hiding from it), with a 95% bootstrap interval;
        None where no image qualifies. Positive: hiding from the one-class measure is easier (the
        paper's claim). ``against``: the attack alone it is relative to, as :meth:`reduction`.
        """
        out = {}
        for i, p in enumerate(self.multiples):
            (r1, ok1), (r2, ok2) = (self.reduction(m, i, against=against) for m in ("one", "two"))
            both = ok1 & ok2
            out[p] = paired_mean_difference(r1[both], r2[both]) if both.any() else None
        return out

    def normalized_slope(self, measure: str, x: torch.Tensor) -> torch.Tensor:
        r"""Per image, how fast hiding from ``measure`` trades budget for discrepancy: (N,), NaN if undefined.

        As the reference's ``funcs.py`` (``isa_cam``): the points are the
        attack alone (eps_0, D_0) and the ISA at each multiple (eps_k, D_k),
        in budget order, with eps the measured ||x' - x||_inf and only the
        attacks that reached the target; D is replaced by its running minimum
        over the budgets (the monotone envelope: a larger budget can always do
        what a smaller one did). Then, with the last point (eps_L, D_L),

            s = ((D_0 - D_L) / (eps_L - eps_0)) / (D_0 / eps_0),

        the drop of the discrepancy per unit of extra budget, relative to the
        attack alone's discrepancy per unit budget; NaN where the attack alone
        failed, D_L = D_0 (the reference skips those images) or eps_L = eps_0.
        The reference averages the sum of these slopes over the number of
        envelope points; average them over images instead (e.g.
        :func:`advexp_lib.stats.bootstrap_mean` of the non-NaN values).

        Args:
            measure: "one" or "two", the measure hidden from (and reported).
            x: the clean images the attacks started from.
        """
        check_choice(measure, "measure", ISA_MEASURES)
        h = self.hidden[measure]

        def size(z):
            return (z - x).flatten(1).abs().amax(1).cpu().double()

        d0, e0 = self.baseline[measure].cpu().double(), size(self.x_attack)
        best, last_e = d0.clone(), e0.clone()
        for k in range(len(self.multiples)):
            ok = h["success"][k].cpu() & self.success.cpu()
            best = torch.where(ok, torch.minimum(best, h[measure][k].cpu().double()), best)
            last_e = torch.where(ok, size(h["x_adv"][k]), last_e)
        slope = ((d0 - best) / (last_e - e0)) / (d0 / e0)
        undefined = ~self.success.cpu() | (best == d0) | (last_e <= e0) | (d0 <= 0) | (e0 <= 0)
        return slope.masked_fill(undefined, float("nan"))


def sneaking_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    targets: torch.Tensor,
    *,
    eps: torch.Tensor,
    gamma: torch.Tensor,
    measure: str = "two",
    explainer=None,
    kappa: float = 0.1,
    steps: int = 10,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One targeted l-inf attack that hides from a map, at per-image budgets and weights (Boopathy et al.).

    Minimizes, per image i, with f the logits, t the target and the maps
    I = ``explainer.attribute(differentiable=True)`` (default CAM at the last
    conv layer's resolution),

        max(max_{j != t} f_j(x') - f_t(x'), -kappa) + gamma_i * D(x, x'),
        D_one = sum |I_y(x') - I_y(x)|,   D_two = (D_one + sum |I_t(x') - I_t(x)|) / 2

    (the reference's unnormalized discrepancy), by ``steps`` steps from x of
    x' <- Proj(x' - 0.2 eps_i clip(1000 g, -1, 1)) onto the eps_i l-inf ball
    and [0, 1], as the reference (AkhilanB/Proper-Interpretability) does. The
    reference averages the objective over its batch, which scales each
    image's gradient by 1 / batch before the clip; this objective is per image.

    Returns:
        (x_adv, success): success = the prediction on x_adv is the target.

    Examples:
        >>> e, g = torch.full((4,), 0.1), torch.zeros(4)
        >>> x_adv, ok = sneaking_attack(cam_model, x, y, (y + 1) % 3, eps=e, gamma=g, steps=3)
        >>> bool(((x_adv - x).abs() <= 0.1 + 1e-6).all())
        True
    """
    check_choice(measure, "measure", ISA_MEASURES)
    explainer = _differentiable(explainer)
    classes = (y, targets) if measure == "two" else (y,)
    clean = [(c, explainer.attribute(model, x, c)) for c in classes]
    e = eps.to(x.dtype)[:, None, None, None]
    x_adv = x.detach().clone()
    with eval_mode(model):
        for _ in range(steps):
            z = x_adv.clone().requires_grad_(True)
            with torch.enable_grad():
                loss = (-tandem_margin(model(z), targets)).clamp(min=-kappa)
                if bool((gamma > 0).any()):
                    loss = loss + gamma.to(x.dtype) * _raw_discrepancy(model, z, clean, explainer)
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
    explainer=None,
    norm: str = "l1",
    kappa: float = 0.1,
    steps: int = 10,
    eps_max: float = 1.0,
    eps_start: float = 0.05,
    gamma_start: float = 5e-5,
    search_steps: int = 10,
) -> IsaResult:
    r"""Interpretability sneaking attack (ISA) of Boopathy et al. (2020), searched as their reference does.

    Distance Measure: Linf. Both searches are per-image :class:`~advexp_lib.attacks.bisection.Bisection`\ s:

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

    With a CAM explainer the searches run on :func:`advexp_lib.speedups.cam_view`
    of the model (for SmallGap, the head folded into the last convolution: the
    same logits and maps up to rounding, cheaper). The multiples are ours (the
    reference takes them on its command line and records none); p = 1 leaves
    no slack, larger p lets the attack trade budget for a smaller discrepancy.
    Reported discrepancies are normalized, D(I, I') = ||I - I'|| / (max I - min I) over the clean map's range.

    Args:
        targets: (N,) attacked classes, each != y (the reference draws them at random).
        measures: which discrepancies to hide from (default both).
        multiples: the p of step 2 (each >= 1). Default (1, 2, 3).
        explainer: a differentiable :class:`~advexp_lib.attributions.Explainer`
            or its name. Default: ``Cam(upsample=False)``, the paper's maps at
            the feature-map resolution.
        norm: norm of the reported discrepancy, "l1" (default) or "l2".
        kappa: margin confidence (default 0.1, the paper's).
        steps: attack steps (default 10, the reference's); eps_max, eps_start,
            gamma_start, search_steps: the searches' settings (the reference's).
    Returns:
        :class:`IsaResult`.

    Examples:
        >>> r = interpretability_sneaking_attack(cam_model, x, y, (y + 1) % 3, steps=2, search_steps=2)
        >>> r.hidden["two"]["x_adv"].shape[:2]
        torch.Size([3, 4])
    """
    check_images(x, "x")
    measures, multiples = tuple(measures), tuple(float(p) for p in multiples)
    _check_isa_settings(
        measures, norm, multiples, eps_max, eps_start, gamma_start, steps, search_steps, kappa
    )
    explainer = _differentiable(explainer)
    n = x.shape[0]
    if isinstance(explainer, Cam):  # the same logits and CAM, cheaper (SmallGap; others as they are)
        model = cam_view(model)
    with eval_mode(model), torch.no_grad():
        num_classes = check_logits(model(x), n).shape[1]
    check_labels(y, n, num_classes, "y")
    check_labels(targets, n, num_classes, "targets")
    if (targets == y).any():
        raise InputError("targets: every target must differ from the true class y")

    def attack(eps, gamma, measure="two"):
        settings = dict(measure=measure, explainer=explainer, kappa=kappa, steps=steps)
        return sneaking_attack(model, x, y, targets, eps=eps, gamma=gamma, **settings)

    zeros = torch.zeros(n, dtype=x.dtype, device=x.device)
    # the budget never leaves (0, eps_max]: it starts inside and a Bisection stays in [lo, hi]
    budget = Bisection(
        torch.full_like(zeros, min(eps_start, eps_max)), zeros.clone(), torch.full_like(zeros, eps_max)
    )
    for _ in range(search_steps):
        _, ok = attack(budget.value, zeros)
        budget.update(above=~ok)
    eps = budget.hi
    x_attack, success = attack(eps, zeros)
    clean = {"y": explainer.attribute(model, x, y), "t": explainer.attribute(model, x, targets)}

    def reported(z):
        d_y = map_discrepancy(clean["y"], explainer.attribute(model, z, y), norm=norm)
        d_t = map_discrepancy(clean["t"], explainer.attribute(model, z, targets), norm=norm)
        return d_y, (d_y + d_t) / 2

    b_one, b_two = reported(x_attack)
    alone = {"x_adv": [], "success": [], "one": [], "two": []}
    for p in multiples:  # the control: the attack alone at each ISA budget
        x_adv, ok = attack((p * eps).clamp(max=eps_max), zeros)
        for k, v in zip(("x_adv", "success", "one", "two"), (x_adv, ok, *reported(x_adv)), strict=True):
            alone[k].append(v.detach())
    hidden = {}
    for measure in measures:
        rows = {"x_adv": [], "gamma": [], "success": [], "one": [], "two": []}
        for p in multiples:
            e = (p * eps).clamp(max=eps_max)
            weight = Bisection(torch.full_like(zeros, gamma_start), zeros.clone(), torch.ones_like(zeros))
            for _ in range(search_steps):
                _, ok = attack(e, weight.value, measure)
                weight.update(above=ok)
            x_adv, ok = attack(e, weight.lo, measure)
            one, two = reported(x_adv)
            for k, v in (("x_adv", x_adv), ("gamma", weight.lo), ("success", ok), ("one", one), ("two", two)):
                rows[k].append(v.detach())
        hidden[measure] = {k: torch.stack(v) for k, v in rows.items()}
    baseline = {"one": b_one.detach(), "two": b_two.detach()}
    alone = {k: torch.stack(v) for k, v in alone.items()}
    return IsaResult(eps, success, x_attack, baseline, multiples, hidden, alone)


def _check_isa_settings(
    measures, norm, multiples, eps_max, eps_start, gamma_start, steps, search_steps, kappa
):
    """Every setting of :func:`interpretability_sneaking_attack`, checked before any attack runs."""
    for m in measures:
        check_choice(m, "measures", ISA_MEASURES)
    check_choice(norm, "norm", DISCREPANCY_NORMS)
    for name, v in (("eps_max", eps_max), ("eps_start", eps_start), ("gamma_start", gamma_start)):
        check_positive(v, name)
    check_positive(steps, "steps", integer=True)
    check_positive(search_steps, "search_steps", integer=True)
    check_positive(kappa, "kappa", allow_zero=True)
    if not multiples or any(not p >= 1 for p in multiples):
        raise InputError(f"multiples: expected budgets as multiples >= 1 of the minimal eps, got {multiples}")


def _differentiable(explainer):
    explainer = Cam(upsample=False) if explainer is None else as_explainer(explainer)
    if not explainer.differentiable:
        raise InputError(
            f"explainer: the ISA descends the map, so it must be differentiable; got {explainer!r}"
        )
    return explainer


def _raw_discrepancy(model, z, clean, explainer):
    """The reference's attack-side D: l1 sums of map differences, averaged over the pairs in ``clean``."""
    total = 0.0
    for classes, maps in clean:
        moved = explainer.attribute(model, z, classes, differentiable=True)
        total = total + (moved - maps).abs().flatten(1).sum(1)
    return total / len(clean)
