"""Input validation for every public entry point; errors name the argument, the expectation and the value."""

from __future__ import annotations

import math
from collections.abc import Iterable

from .errors import AdvexpError, CheckpointError, InputError, InputTypeError  # noqa: F401 (re-exported)


def check_images(x, name: str = "x", *, channels: int | None = None):
    """Check ``x`` is a float tensor N x C x H x W with finite values in [0, 1]."""
    import torch  # here, not at the top: settings-only modules (the CLI parser) start without torch

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
        raise InputError(
            f"{name}: pixels must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]; the models here take "
            f"raw [0, 1] pixels and normalize inside: wrap a network trained on normalized inputs with "
            f"advexp_lib.models.with_normalization(net, mean, std) and pass it [0, 1] pixels"
        )
    return x


def check_labels(y, n: int, num_classes: int | None, name: str = "y"):
    """Check ``y`` is an integer tensor of ``n`` labels in [0, num_classes)."""
    import torch

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


def check_logits(logits, n: int, name: str = "model"):
    """Check a model's output is N x C logits."""
    import torch

    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != n:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise InputError(
            f"{name}: expected the model to return logits of shape ({n}, num_classes), got {shape}"
        )
    bad = ~torch.isfinite(logits.detach()).all(1)
    if bad.any():
        raise InputError(
            f"{name}: returned NaN or inf logits for {int(bad.sum())} of {n} image(s); the model (or its "
            f"weights) is broken there, not the attack's budget"
        )
    return logits


def check_model_input(model, x, name: str = "x") -> None:
    """Check ``model``'s parameters (or buffers) live on ``x``'s device, with its dtype; errors name both."""
    tensor = next(iter(model.parameters()), None)
    if tensor is None:
        tensor = next(iter(model.buffers()), None)
    if tensor is None:
        return
    if tensor.device != x.device or (tensor.is_floating_point() and tensor.dtype != x.dtype):
        raise InputError(
            f"{name}: on {x.device} as {x.dtype}, but the model's parameters are on {tensor.device} as "
            f"{tensor.dtype}; move one to the other, e.g. model.to({name}.device, {name}.dtype)"
        )


def as_labels(value, n: int, num_classes: int | None, name: str = "y"):
    """Labels (an int for all ``n`` images, ints, or a tensor) as int64 (n,), :func:`check_labels`-checked."""
    import torch

    if isinstance(value, bool) or (
        isinstance(value, (list, tuple)) and any(isinstance(v, bool) for v in value)
    ):
        raise InputTypeError(f"{name}: expected class indices, got {value!r}")
    if isinstance(value, int):
        if num_classes is not None and not 0 <= value < num_classes:
            raise InputError(f"{name}: class index must lie in [0, {num_classes - 1}], got {value}")
        return torch.full((n,), value, dtype=torch.long)
    if isinstance(value, (list, tuple)):
        if not all(isinstance(v, int) for v in value):
            raise InputTypeError(f"{name}: expected a list of integer class indices, got {value!r}")
        value = torch.tensor(value, dtype=torch.long)
    return check_labels(value, n, num_classes, name)


def progress_enabled(progress) -> bool:
    """``progress`` as given; None (default): on unless ``ADVEXP_PROGRESS=0`` (the notebook runner's)."""
    if progress is None:
        import os

        return os.environ.get("ADVEXP_PROGRESS", "1") != "0"
    return bool(progress)
