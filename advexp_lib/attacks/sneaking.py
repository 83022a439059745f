"""The interpretability sneaking attack (ISA) of Boopathy et al. (2020): a targeted attack hiding from a map.

Hand-written (no library has it), as AkhilanB/Proper-Interpretability's ``funcs.py``. Distance Measure: Linf.
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
        eps, success: (N,) the attack alone's smallest l-inf budget (``eps_max`` if none) and success there.
        x_attack: (N, ...) the attack alone at ``eps``; baseline: its {"one": D1, "two": D2}, each (N,).
        multiples: the P multiples p; the ISA runs at eps_p = min(p eps, eps_max).
        hidden: measure -> {"x_adv": (P, N, ...), "gamma", "success", "one", "two": (P, N)}: the ISA
            hiding from it, largest successful gamma (0 where none: the attack alone).
        alone: {"x_adv", "success", "one", "two"}, each (P, ...): the attack alone at eps_p (the control).
    D1, D2: normalized map discrepancies (:func:`advexp_lib.metrics.map_discrepancy`).

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
        """(1 - D_hidden / D_alone, ok) at multiple ``i`` hiding from ``measure``; ok: both succeeded.

        ``against``: D_alone at the minimal eps ("minimal", default, the paper's) or at p x eps ("equal").
        """
        check_choice(against, "against", ("minimal", "equal"))
        h = self.hidden[measure]
        if against == "minimal":
            alone, ok = self.baseline[measure], self.success
        else:
            alone, ok = self.alone[measure][i], self.alone["success"][i] & self.success
        return 1 - h[measure][i] / alone.clamp(min=1e-12), h["success"][i] & ok

    def reduction_difference(self, *, against: str = "minimal") -> dict:
        """Per p: paired mean (95% bootstrap CI) of D1's minus D2's :meth:`reduction` (same ``against``),
        each hiding from itself, where both succeeded (None: no image). Positive: "one" is easier to hide.
        """
        out = {}
        for i, p in enumerate(self.multiples):
            (r1, ok1), (r2, ok2) = (self.reduction(m, i, against=against) for m in ("one", "two"))
            both = ok1 & ok2
            out[p] = paired_mean_difference(r1[both], r2[both]) if both.any() else None
        return out

    def normalized_slope(self, measure: str, x: torch.Tensor) -> torch.Tensor:
        r"""Per image (N,), how fast hiding from ``measure`` trades budget for discrepancy; NaN if undefined.

        As the reference's ``isa_cam``: points (eps_0, D_0) of the attack alone, (eps_k, D_k) of the ISA
        (x: the clean images; eps = ||x' - x||_inf; successes only; D its running minimum); last (eps_L, D_L):

            s = ((D_0 - D_L) / (eps_L - eps_0)) / (D_0 / eps_0),

        NaN where the attack alone failed, D_L = D_0 (the reference skips those images) or eps_L = eps_0.
        Deviation on purpose: the reference averages the sum of slopes over the envelope points; average s
        over images instead (e.g. :func:`advexp_lib.stats.bootstrap_mean` of the non-NaN values).
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

    Minimizes per image i (f: logits, t: target, I: maps of ``explainer``, default unupsampled CAM):

        max(max_{j != t} f_j(x') - f_t(x'), -kappa) + gamma_i * D(x, x'),
        D_one = sum |I_y(x') - I_y(x)|,   D_two = (D_one + sum |I_t(x') - I_t(x)|) / 2

    by ``steps`` steps x' <- Proj(x' - 0.2 eps_i clip(1000 g, -1, 1)) onto the eps_i l-inf ball and [0, 1], as
    the reference (per image, not batch-averaged). Returns (x_adv, success: the prediction is the target).

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
    r"""The ISA of Boopathy et al. (2020), searched as their reference does; returns an :class:`IsaResult`.

    Distance Measure: Linf. :class:`~advexp_lib.attacks.bisection.Bisection`\ s of ``search_steps`` rounds:

    1. Attack alone (gamma = 0, :func:`sneaking_attack`): the smallest eps in (0, ``eps_max``] reaching the
       target, from min(``eps_start``, ``eps_max``), lo = 0, hi = ``eps_max``: success: hi = eps,
       eps = (lo + hi) / 2; failure: lo = eps, eps = min(2 eps, (lo + hi) / 2). Result eps = hi
       (``eps_max``, ``success`` False, if never reached).
    2. Per measure ("one": the true class's map; "two": true and target class) and multiple p: the largest
       gamma in [0, 1] keeping the attack successful at eps_p = min(p eps, ``eps_max``), from ``gamma_start``:
       success: lo = gamma, gamma = min(2 gamma, (lo + hi) / 2); failure: hi = gamma, gamma = (lo + hi) / 2;
       then the attack with gamma = lo.

    CAM runs on :func:`advexp_lib.speedups.cam_view` of the model (same logits and maps up to rounding).
    Reported discrepancies are normalized: D(I, I') = ||I - I'|| / (max I - min I) over the clean map.

    Args:
        targets: (N,) attacked classes, each != y. measures: to hide from (default both).
        multiples: the p of step 2 (each >= 1); ours, as the reference records none. norm: reported
            discrepancy's, "l1" (default) or "l2".
        explainer: differentiable :class:`~advexp_lib.attributions.Explainer` or its name; default
            ``Cam(upsample=False)``, the paper's maps. kappa: margin confidence (default 0.1, the paper's).
        steps, eps_max, eps_start, gamma_start, search_steps: attack and search settings (the reference's).

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
    _check_isa_labels(model, x, y, targets)

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


def _check_isa_labels(model, x, y, targets) -> None:
    """``y`` and ``targets``: (N,) classes of ``model``'s outputs, each target other than y."""
    with eval_mode(model), torch.no_grad():
        num_classes = check_logits(model(x), x.shape[0]).shape[1]
    check_labels(y, x.shape[0], num_classes, "y")
    check_labels(targets, x.shape[0], num_classes, "targets")
    if (targets == y).any():
        raise InputError("targets: every target must differ from the true class y")


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
