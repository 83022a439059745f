"""The training loop's extension points, and the eps warm-up the PGD-based hooks share.

A recipe plugs into :func:`advexp_lib.training.train` through two kinds of
:class:`BatchHook`:

- :class:`LossTerm`: an extra per-batch loss added to the cross-entropy
  (the regularizers of :mod:`advexp_lib.regularizers`);
- :class:`InputTransform`: replaces each training batch's inputs
  (adversarial training, :mod:`advexp_lib.adversarial_training`).
"""

from __future__ import annotations

import torch
from torch import nn

from .checks import check_positive

__all__ = ["BatchHook", "LossTerm", "InputTransform", "PgdWarmup", "warmup_eps"]


class BatchHook:
    """Base of the loop's extension points: optional per-epoch and per-step calls, and state.

    ``state_dict`` must hold only tensors, numbers, strings, lists and dicts
    (it goes into a ``weights_only`` checkpoint).
    """

    def start_epoch(self, epoch: int, num_epochs: int) -> None:
        """Called before each epoch (e.g. eps warm-up)."""

    def observe_ce(self, ce: float) -> None:
        """Called with each batch's mean cross-entropy after the forward pass, before the loss term.

        ``ce`` is the batch actually trained on (after the input transform), at
        the current weights; under torchrun, the global batch's. Adaptive psi
        updates here, so the batch's own L_adv already uses the new psi, as in
        Woods et al.'s reference implementation.
        """

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""


class LossTerm(BatchHook):
    """An extra loss: ``term(model, x, y, logits) -> (loss, stats)``.

    Set ``requires_input_grad = True`` to receive ``x`` with ``requires_grad``
    and ``logits = model(x)`` built on it (input-gradient regularizers).
    ``stats`` (name -> float) are averaged per epoch into the history.
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
    """PGD settings (eps, steps, step_size) with a linear eps warm-up, for the hooks that draw x' by PGD.

    ``current_eps`` = :func:`warmup_eps` (eps, epoch, warmup_epochs), set in
    ``start_epoch``, so a resumed run gets the same budget.

    Args:
        eps: the l-inf (or l2) budget after warm-up (> 0).
        steps, step_size: PGD iterations (>= 1) and step length (> 0).
        warmup_epochs: W >= 0; the budget of epoch e is eps * min(1, (e + 1) / W).
    """

    def __init__(self, *, eps: float, steps: int, step_size: float, warmup_epochs: int):
        check_positive(eps, "eps")
        check_positive(steps, "steps", integer=True)
        check_positive(step_size, "step_size")
        check_positive(warmup_epochs, "warmup_epochs", integer=True, allow_zero=True)
        self.eps, self.steps, self.step_size = float(eps), steps, float(step_size)
        self.warmup_epochs = warmup_epochs
        self.current_eps = warmup_eps(self.eps, 0, warmup_epochs)

    def start_epoch(self, epoch: int, num_epochs: int) -> None:
        self.current_eps = warmup_eps(self.eps, epoch, self.warmup_epochs)


def warmup_eps(eps: float, epoch: int, warmup_epochs: int) -> float:
    """Linear budget warm-up: eps * min(1, (epoch + 1) / warmup_epochs); eps itself when warmup_epochs = 0."""
    return eps if warmup_epochs <= 0 else eps * min(1.0, (epoch + 1) / warmup_epochs)
