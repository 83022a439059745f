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

from .checks import InputError, check_positive

__all__ = ["BatchHook", "LossTerm", "InputTransform", "PgdWarmup", "warmup_eps", "ramp_eps"]


class BatchHook:
    """Base of the loop's extension points: optional per-epoch and per-step calls, and state.

    ``state_dict`` must hold only tensors, numbers, strings, lists and dicts
    (it goes into a ``weights_only`` checkpoint).
    """

    def start_epoch(self, epoch: int, num_epochs: int) -> None:
        """Called before each epoch (e.g. eps warm-up)."""

    def start_step(self, step: int) -> None:
        """Called before each optimizer step with the run's step index (0, 1, ...; per-step schedules)."""

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
    """PGD settings (eps, steps, step_size) with an eps warm-up, for the hooks that draw x' by PGD.

    Two warm-ups, at most one of them on:

    - per epoch, ``warmup_epochs`` = W: :func:`warmup_eps` (eps, epoch, W), set in ``start_epoch``;
    - per step, ``ramp_steps`` = (s0, s1): :func:`ramp_eps` (eps, step, s0, s1), set in
      ``start_step``: Boopathy et al.'s schedule (``train.py``: eps 0 up to step 2,000,
      linear to eps at step 10,000).

    Both are functions of the epoch or step index, so a resumed run gets the same
    budget. While ``current_eps`` is 0 the hooks draw no x' (x' = x), as the reference.

    Args:
        eps: the l-inf (or l2) budget after warm-up (> 0).
        steps, step_size: PGD iterations (>= 1) and step length (> 0).
        warmup_epochs: W >= 0; the budget of epoch e is eps * min(1, (e + 1) / W).
        ramp_steps: (s0, s1) with 0 <= s0 < s1, or None (default).
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
