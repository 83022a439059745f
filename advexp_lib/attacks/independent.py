"""Minimal-norm l2 attacks from an independent library (foolbox), scored as the RMSE search is.

Adapters only: the attacks are foolbox's (DDN, FMN, the Boundary Attack); this
module runs them for a criterion of :mod:`advexp_lib.attacks.search` and
verifies every image they return. The attacks run on
:func:`advexp_lib.speedups.attack_view` of the model (the same function, faster).
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
    r"""A minimal-norm l2 attack from foolbox, scored as the RMSE search is (distances in RMSE).

    The attacks (:data:`INDEPENDENT_ATTACKS`) minimize the l2 norm of the
    perturbation that breaks the criterion; ours measure it as RMSE = l2 /
    sqrt(C H W). Every returned image is checked here, with the model in eval
    mode: its distance is RMSE(x' - x) if it meets the criterion, inf if it
    does not (a failure is not a distance of 0), and 0 where x itself already
    meets it. Criteria as in :func:`~advexp_lib.attacks.search.rmse_search`:
    ATTACK (prediction no longer y, the default) or BTR (p_y(x') <= 1/C), the
    latter by attacking a two-logit wrapper, [log p_y(x) + log C, 0], whose
    prediction changes exactly when p_y falls below 1/C. foolbox 3.3.4's
    L2FMNAttack never shrinks the perturbation (its projection divides the
    norm by itself); it is used here with that projection written as the
    paper's, min(1, eps / ||d||).

    Args:
        attack: "ddn", "fmn" or "boundary".
        criterion: "attack" (default) or "btr" (or the criterion objects).
        steps: iterations (default: the ARA protocol's, ``ARA_PAPER.steps``;
            the boundary attack needs thousands, each one forward pass and no gradient).
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
    """Two logits [log p_y(x) + log C, 0] of ``model``: the prediction is class 0 while p_y > 1/C.

    Holds the batch's labels, so it must see the whole batch, in order (as foolbox's attacks call it).
    """

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
