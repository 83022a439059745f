"""Input validation shared by every public entry point.

Bad input raises a subclass of :class:`AdvexpError` naming the argument, what
was expected and what came. Nothing is clipped or coerced silently.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


class AdvexpError(Exception):
    """Base class of every error this library raises on purpose."""


class InputError(AdvexpError, ValueError):
    """An argument has the wrong value (range, shape, name ...)."""


class InputTypeError(AdvexpError, TypeError):
    """An argument has the wrong type or dtype."""


class CheckpointError(AdvexpError, ValueError):
    """A checkpoint is corrupt, foreign, unsafe or does not fit the model."""


def check_images(x, name: str = "x", *, channels: int | None = None) -> torch.Tensor:
    """Check ``x`` is a float tensor N x C x H x W with finite values in [0, 1]."""
    if not isinstance(x, torch.Tensor):
        raise InputTypeError(f"{name}: expected a torch.Tensor of images, got {type(x).__name__}")
    if not x.is_floating_point():
        raise InputTypeError(
            f"{name}: expected a floating-point tensor with pixels in [0, 1], got dtype {x.dtype}"
        )
    if x.dim() != 4:
        raise InputError(f"{name}: expected shape N x C x H x W (4 dims), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise InputError(f"{name}: expected at least one image, got an empty batch {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise InputError(f"{name}: expected {channels} channel(s), got {x.shape[1]} (shape {tuple(x.shape)})")
    if not torch.isfinite(x).all():
        raise InputError(f"{name}: contains NaN or inf")
    lo, hi = x.min().item(), x.max().item()
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{name}: pixels must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
    return x


def check_labels(y, n: int, num_classes: int | None, name: str = "y") -> torch.Tensor:
    """Check ``y`` is an integer tensor of ``n`` labels in [0, num_classes)."""
    if not isinstance(y, torch.Tensor):
        raise InputTypeError(f"{name}: expected a torch.Tensor of class indices, got {type(y).__name__}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise InputTypeError(f"{name}: expected an integer tensor, got dtype {y.dtype}")
    if y.dim() != 1 or y.shape[0] != n:
        raise InputError(f"{name}: expected shape ({n},) to match the images, got {tuple(y.shape)}")
    if num_classes is not None and n and (y.min().item() < 0 or y.max().item() >= num_classes):
        raise InputError(
            f"{name}: labels must lie in [0, {num_classes - 1}], "
            f"got values in [{y.min().item()}, {y.max().item()}]"
        )
    return y


def check_positive(value, name: str, *, integer: bool = False, allow_zero: bool = False):
    """Check a scalar hyper-parameter is a finite number > 0 (or >= 0)."""
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an integer" if integer else "a number"
        raise InputTypeError(f"{name}: expected {what}, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name}: expected a finite value {bound}, got {value!r}")
    return value


def check_choice(value, name: str, choices: Iterable[str]) -> str:
    """Check ``value`` is one of ``choices``; the message lists them."""
    choices = list(choices)
    if value not in choices:
        raise InputError(f"{name}: unknown value {value!r}; valid: {', '.join(map(str, choices))}")
    return value


def check_logits(logits: torch.Tensor, n: int, name: str = "model") -> torch.Tensor:
    """Check a model's output is N x C logits."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != n:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise InputError(
            f"{name}: expected the model to return logits of shape ({n}, num_classes), got {shape}"
        )
    return logits
