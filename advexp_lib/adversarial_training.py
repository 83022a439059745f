"""Adversarial training as input transforms: Woods et al.'s RMSE search and Madry et al.'s PGD.

Each class is an :class:`~advexp_lib.hooks.InputTransform`: the loop trains on the batch it returns.
"""

from __future__ import annotations

import torch

from .attacks import ATTACK, BUDGET, SearchConfig, pgd, rmse_search
from .checks import check_choice
from .distributed import global_draw
from .hooks import InputTransform, PgdWarmup
from .protocols import PGD_MNIST

__all__ = ["RmseAdversarialTraining", "PgdAdversarialTraining"]


class RmseAdversarialTraining(InputTransform):
    """Woods et al.'s adversarial training: each batch is replaced by its RMSE-search examples.

    As the reference: :func:`~advexp_lib.attacks.rmse_search` with ``model_mode="train"`` (BatchNorm uses and
    updates the perturbed batch's statistics). With ``half`` each example is perturbed with probability 1/2
    (the reference's half-and-half, which it uses only with the robust additions: the ``all`` recipe).

    Args:
        minimal: False (default): the paper's "l2" mode (ascend the CE, total RMSE ``eps``); True: "l2min",
            the smallest-RMSE perturbation on that path changing the prediction (else the clean image).
        eps: RMSE budget (paper: 0.01 "l2", 0.1 "l2min"); steps: default 7; momentum, overshoot: 0, 1.
    """

    def __init__(
        self,
        *,
        minimal: bool = False,
        eps: float = 0.01,
        steps: int = 7,
        half: bool = False,
        momentum: float = 0.0,
        overshoot: float = 1.0,
    ):
        self.config = SearchConfig(steps=steps, eps=eps, momentum=momentum, overshoot=overshoot)
        self.criterion = ATTACK if minimal else BUDGET
        self.half = bool(half)

    def __call__(self, model, x, y):
        mask = global_draw(lambda m: torch.rand(m, device=x.device), x.shape[0]) < 0.5 if self.half else None
        return rmse_search(
            model, x, y, criterion=self.criterion, config=self.config, mask=mask, model_mode="train"
        ).x_adv


class PgdAdversarialTraining(PgdWarmup, InputTransform):
    r"""Madry et al. (2018) adversarial training: train on PGD examples x' = pgd(model, x, y).

    x' maximizes CE(f(x'), y) in the eps-ball in [0, 1] (:func:`~advexp_lib.attacks.projected_gradient.pgd`).

    Args:
        eps: 0.3 (MNIST, l-inf); steps, step_size: 40 x 0.01 (:data:`~advexp_lib.protocols.PGD_MNIST`).
        norm: "linf" (default) or "l2"; random_start: default True (as Madry).
        warmup_epochs, ramp_steps: eps warm-up per epoch or step (:class:`~advexp_lib.hooks.PgdWarmup`).
    """

    def __init__(
        self,
        *,
        eps: float = PGD_MNIST.eps,
        steps: int = PGD_MNIST.steps,
        step_size: float = PGD_MNIST.step_size,
        norm: str = "linf",
        random_start: bool = True,
        warmup_epochs: int = 0,
        ramp_steps: tuple[int, int] | None = None,
    ):
        super().__init__(
            eps=eps, steps=steps, step_size=step_size, warmup_epochs=warmup_epochs, ramp_steps=ramp_steps
        )
        check_choice(norm, "norm", ("linf", "l2"))
        self.norm, self.random_start = norm, bool(random_start)

    def __call__(self, model, x, y):
        if self.current_eps == 0:  # the per-step ramp's first steps: x' = x, as the reference
            return x
        return pgd(
            model,
            x,
            y,
            eps=self.current_eps,
            steps=self.steps,
            step_size=self.step_size,
            norm=self.norm,
            random_start=self.random_start,
            progress=False,
        )
