"""The training loop's extension points, and the eps warm-up the PGD-based hooks share.

Recipes plug into :func:`advexp_lib.training.train` via :class:`BatchHook`: :class:`LossTerm` (an extra
loss, :mod:`advexp_lib.regularizers`), :class:`InputTransform` (:mod:`advexp_lib.adversarial_training`).
"""

from __future__ import annotations

import torch
from torch import nn

from .checks import InputError, check_positive

__all__ = ["BatchHook", "LossTerm", "InputTransform", "PgdWarmup", "warmup_eps", "ramp_eps"]


class BatchHook:
    """Base of the loop's extension points: optional per-epoch and per-step calls, and state.

    ``state_dict`` holds only tensors, numbers, strings, lists and dicts (a ``weights_only`` checkpoint).
    """

    def start_epoch(self, epoch: int, num_epochs: int) -> None:
        """Called before each epoch (e.g. eps warm-up)."""

    def start_step(self, step: int) -> None:
        """Called before each optimizer step with the run's step index (0, 1, ...; per-step schedules)."""

    def observe_ce(self, ce: float) -> None:
        """Called with the mean CE of the batch trained on (global under torchrun), before the loss
        term: adaptive psi updates here, so this batch's L_adv uses the new psi (as Woods et al.'s reference).
        """

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""


class LossTerm(BatchHook):
    """An extra loss: ``term(model, x, y, logits) -> (loss, stats)``; ``stats``: name -> float (epoch mean).

    ``requires_input_grad = True``: ``x`` comes with ``requires_grad`` and ``logits = model(x)`` built on it.
    """

    requires_input_grad = False

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, logits: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError


class InputTransform(BatchHook):
    """Replaces a batch's inputs: ``transform(model, x, y) -> x'`` (same shape)."""

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class PgdWarmup:
    """PGD settings (eps, steps, step_size) with an eps warm-up, for the hooks that draw x' by PGD.

    Per epoch (:func:`warmup_eps`, in ``start_epoch``) or per step (:func:`ramp_eps`, in ``start_step``;
    Boopathy et al.'s), at most one, by index (resumes match). While ``current_eps`` is 0, x' = x (no PGD).

    Args:
        eps, steps, step_size: budget after warm-up (> 0), PGD iterations (>= 1), step length (> 0).
        warmup_epochs: W >= 0 (0: none); ramp_steps: (s0, s1) with 0 <= s0 < s1, or None (default).
    """

    def __init__(
        self,
        *,
        eps: float,
        steps: int,
        step_size: float,
        warmup_epochs: int,
        ramp_steps: tuple[int, int] | None = None,
    ):
        check_positive(eps, "eps")
        check_positive(steps, "steps", integer=True)
        check_positive(step_size, "step_size")
        check_positive(warmup_epochs, "warmup_epochs", integer=True, allow_zero=True)
        if ramp_steps is not None:
            ok = (
                isinstance(ramp_steps, (tuple, list))
                and len(ramp_steps) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in ramp_steps)
                and 0 <= ramp_steps[0] < ramp_steps[1]
            )
            if not ok:
                raise InputError(
                    f"ramp_steps: expected (s0, s1) integers with 0 <= s0 < s1, got {ramp_steps!r}"
                )
            if warmup_epochs:
                raise InputError("ramp_steps: give either ramp_steps or warmup_epochs, not both")
            ramp_steps = (int(ramp_steps[0]), int(ramp_steps[1]))
        self.eps, self.steps, self.step_size = float(eps), steps, float(step_size)
        self.warmup_epochs, self.ramp_steps = warmup_epochs, ramp_steps
        self.current_eps = (
            ramp_eps(self.eps, 0, *ramp_steps) if ramp_steps else warmup_eps(self.eps, 0, warmup_epochs)
        )

    def start_epoch(self, epoch: int, num_epochs: int) -> None:
        if self.ramp_steps is None:
            self.current_eps = warmup_eps(self.eps, epoch, self.warmup_epochs)

    def start_step(self, step: int) -> None:
        if self.ramp_steps is not None:
            self.current_eps = ramp_eps(self.eps, step, *self.ramp_steps)


def warmup_eps(eps: float, epoch: int, warmup_epochs: int) -> float:
    """Linear budget warm-up: eps * min(1, (epoch + 1) / warmup_epochs); eps itself when warmup_epochs = 0."""
    return eps if warmup_epochs <= 0 else eps * min(1.0, (epoch + 1) / warmup_epochs)


def ramp_eps(eps: float, step: int, s0: int, s1: int) -> float:
    """Boopathy et al.'s per-step budget: 0 for step <= s0, eps (step - s0) / (s1 - s0) up to s1, then eps."""
    if step <= s0:
        return 0.0
    return eps * min(1.0, (step - s0) / (s1 - s0))
