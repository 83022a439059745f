"""Minimal-norm l2 attacks from an independent library (foolbox), scored as the RMSE search is.

Adapters only: foolbox's attacks run on :func:`advexp_lib.speedups.attack_view`; every result is verified.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from ..checks import InputError, check_choice, check_images, check_labels, check_logits, check_positive
from ..models import eval_mode
from ..speedups import attack_view
from .search import ARA_PAPER, SearchResult, as_criterion, criterion_met, rmse

__all__ = ["INDEPENDENT_ATTACKS", "independent_attack"]

INDEPENDENT_ATTACKS = {
    "ddn": "foolbox DDNAttack: decoupled direction and norm (Rony et al. 2019)",
    "fmn": "foolbox L2FMNAttack: fast minimum-norm (Pintor et al. 2021)",
    "boundary": "foolbox BoundaryAttack: gradient-free, decision-based (Brendel et al. 2018)",
}
"""The minimal-norm attacks of :func:`independent_attack`: name -> foolbox class and paper."""


def independent_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    attack: str,
    criterion=None,
    steps: int = ARA_PAPER.steps,
) -> SearchResult:
    r"""A minimal-norm l2 attack from foolbox, scored as the RMSE search is (RMSE = l2 / sqrt(C H W)).

    Each returned image is verified (model in eval mode): distance RMSE(x' - x) if it meets the criterion
    ("attack", default, or "btr": via two logits [log p_y + log C, 0]), inf if not, 0 where x meets it.
    FMN uses the paper's projection min(1, eps / ||d||) (foolbox 3.3.4's never shrinks the perturbation).

    Args:
        attack: "ddn", "fmn" or "boundary" (:data:`INDEPENDENT_ATTACKS`).
        steps: iterations (default ``ARA_PAPER.steps``; the boundary attack needs thousands).
    Returns:
        :class:`~advexp_lib.attacks.search.SearchResult` (``first_met`` -1, ``unreliable`` False).

    Examples:
        >>> res = independent_attack(model, x, y, attack="ddn", steps=20)
        >>> res.distances.shape  # RMSE where verified, 0 where x already fails, inf where the attack failed
        torch.Size([4])
    """
    check_choice(attack, "attack", INDEPENDENT_ATTACKS)
    criterion = as_criterion(criterion or "attack", ("attack", "btr"))
    check_images(x, "x")
    check_positive(steps, "steps", integer=True)
    n = x.shape[0]
    with eval_mode(model), torch.no_grad():
        logits = check_logits(model(x), n)
    check_labels(y, n, logits.shape[1], "y")
    num_classes = logits.shape[1]
    met = criterion_met(model, x, y, criterion)
    x_adv = x.clone()
    todo = torch.nonzero(~met).flatten()
    if todo.numel():
        with eval_mode(model):
            try:
                view = attack_view(model, x)  # the same function, faster; model verifies the results
                x_adv[todo] = _foolbox_run(view, x[todo], y[todo], attack, criterion.name, steps, num_classes)
            except ValueError as err:  # foolbox: no adversarial start found (the boundary attack's init)
                if "init_attack failed" not in str(err):
                    raise
                # x_adv stays x there: verified below as a failure (an infinite distance), not as 0
    ok = criterion_met(model, x_adv, y, criterion)
    distances = torch.where(ok, rmse(x_adv - x), torch.full((n,), math.inf, device=x.device, dtype=x.dtype))
    distances = torch.where(met, torch.zeros_like(distances), distances)
    x_adv = torch.where(met[:, None, None, None], x, x_adv)
    none = torch.zeros(n, dtype=torch.bool, device=x.device)
    return SearchResult(x_adv.detach(), distances.detach(), torch.full((n,), -1, device=x.device), none)


class _ChanceMargin(nn.Module):
    """Logits [log p_y(x) + log C, 0] (class 0 while p_y > 1/C); holds y: needs the whole batch, in order."""

    def __init__(self, model: nn.Module, y: torch.Tensor, num_classes: int):
        super().__init__()
        self.model, self.y, self.log_c = model, y, math.log(num_classes)

    def forward(self, z):
        if z.shape[0] != self.y.shape[0]:
            raise InputError(
                f"x: the btr wrapper holds {self.y.shape[0]} labels, got a batch of {z.shape[0]}"
            )
        logp = self.model(z).log_softmax(1).gather(1, self.y[:, None]) + self.log_c
        return torch.cat([logp, torch.zeros_like(logp)], 1)


def _foolbox_run(model, x, y, attack, kind, steps, num_classes):
    """foolbox's attack on (x, y) for the criterion ``kind``; the images it returns (unverified)."""
    import eagerpy as ep  # foolbox's tensor layer; imported with foolbox, on first use
    import foolbox as fb
    from foolbox.devutils import atleast_kd, flatten

    class L2FMN(fb.attacks.L2FMNAttack):
        def project(self, x, x0, epsilon):  # the paper's projection onto the l2 ball of radius epsilon
            d = x - x0
            norms = ep.maximum(flatten(d).norms.l2(axis=-1), 1e-12)
            return x0 + d * atleast_kd(ep.minimum(1, epsilon / norms), x.ndim)

    net = model if kind == "attack" else _ChanceMargin(model, y, num_classes).eval()
    labels = y if kind == "attack" else torch.zeros_like(y)
    fmodel = fb.PyTorchModel(net, bounds=(0, 1), preprocessing=None, device=x.device)
    make = {
        "ddn": lambda: fb.attacks.DDNAttack(steps=steps),
        "fmn": lambda: L2FMN(steps=steps),
        "boundary": lambda: fb.attacks.BoundaryAttack(steps=steps),
    }[attack]
    with warnings.catch_warnings():
        # the boundary attack starts from blended noise; where no noise is adversarial foolbox warns,
        # and the image is returned unbroken, which the caller verifies and counts as a failure anyway
        warnings.filterwarnings("ignore", message="LinearSearchBlendedUniformNoiseAttack failed")
        _, clipped, _ = make()(fmodel, x, fb.criteria.Misclassification(labels), epsilons=None)
    return clipped.detach()
