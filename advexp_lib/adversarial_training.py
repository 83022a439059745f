"""Adversarial training as input transforms: Woods et al.'s RMSE search and Madry et al.'s PGD.

Each class is an :class:`~advexp_lib.hooks.InputTransform`: the training loop
replaces every batch's inputs by what it returns and then takes an ordinary
step on them.
"""

from __future__ import annotations

import torch

from .attacks import pgd, rmse_search
from .checks import check_choice, check_positive
from .distributed import global_draw
from .hooks import InputTransform, PgdWarmup

__all__ = ["RmseAdversarialTraining", "PgdAdversarialTraining"]


class RmseAdversarialTraining(InputTransform):
    """Woods-style adversarial training: replace (a random half of) each batch by its RMSE-search example.

    Args:
        mode: "l2" (stay within eps) or "l2min" (smallest misclassifying delta).
        eps: RMSE budget; paper: 0.01 for "l2", 0.1 for "l2min".
        steps: search steps (paper: 7). half: perturb a random half only (default True).
    """

    def __init__(
        self,
        *,
        mode: str = "l2",
        eps: float = 0.01,
        steps: int = 7,
        half: bool = True,
        momentum: float = 0.0,
        overshoot: float = 1.0,
    ):
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
        return rmse_search(
            model,
            x,
            y,
            mode=self.mode,
            eps=self.eps,
            steps=self.steps,
            momentum=self.momentum,
            overshoot=self.overshoot,
        ).x_adv


class PgdAdversarialTraining(PgdWarmup, InputTransform):
    r"""Madry et al. (2018) adversarial training: train on PGD examples x' = pgd(model, x, y).

    x' maximizes CE(f(x'), y) in the l-inf (or per-image l2) eps-ball within
    [0, 1] (:func:`~advexp_lib.attacks.pgd`, random start by default, as
    Madry). With ``warmup_epochs`` = W > 0 the budget grows linearly over the
    first W epochs: eps_e = eps * min(1, (e + 1) / W) for epoch e = 0, 1, ...

    Args:
        eps: budget; default 0.3 (MNIST l-inf, Madry/Chalasani).
        steps, step_size: PGD settings; default 40 x 0.01 (MNIST).
        norm: "linf" (default) or "l2". random_start: default True.
        warmup_epochs: linear eps warm-up length in epochs; default 0 (none).
    """

    def __init__(
        self,
        *,
        eps: float = 0.3,
        steps: int = 40,
        step_size: float = 0.01,
        norm: str = "linf",
        random_start: bool = True,
        warmup_epochs: int = 0,
    ):
        super().__init__(eps=eps, steps=steps, step_size=step_size, warmup_epochs=warmup_epochs)
        check_choice(norm, "norm", ("linf", "l2"))
        self.norm, self.random_start = norm, bool(random_start)

    def __call__(self, model, x, y):
        return pgd(
            model,
            x,
            y,
            eps=self.current_eps,
            steps=self.steps,
            step_size=self.step_size,
            norm=self.norm,
            random_start=self.random_start,
        )
