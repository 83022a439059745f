"""Projected gradient descent (Madry et al. 2018) in the l-inf or l2 ball, intersected with [0, 1].

Hand-written, not captum's or torchattacks': callers need per-example objectives and an exact projection.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..checks import (
    InputError,
    check_choice,
    check_images,
    check_labels,
    check_model_input,
    check_positive,
    progress_enabled,
)
from ..models import eval_mode
from ..protocols import PGD_MNIST

__all__ = ["NORMS", "pgd"]

NORMS = ("linf", "l2")


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    eps: float,
    steps: int = PGD_MNIST.steps,
    step_size: float = PGD_MNIST.step_size,
    norm: str = "linf",
    random_start: bool = False,
    targets: torch.Tensor | None = None,
    objective=None,
    clip: bool = True,
    progress=None,
) -> torch.Tensor:
    r"""Projected gradient ascent in the eps-ball (Madry et al. 2018); returns x' (detached).

    Distance Measure: Linf or per-image L2 (``norm``). g: gradient of the summed per-example objective
    (CE(f(x'), y); -CE(f(x'), targets); or ``objective(x') -> (N,)``); x + delta kept in [0, 1] if ``clip``:

        "linf": delta <- clamp(delta + step_size * sign(g), -eps, eps)
        "l2":   delta <- Proj_{||.||_2 <= eps}(delta + step_size * g / ||g||_2)

    Args:
        x: (N, C, H, W) in [0, 1]; y, targets: (N,) classes. eps: l-inf eps > 1 warns (meant 8/255?).
        steps, step_size: default 40 x 0.01 (:data:`~advexp_lib.protocols.PGD_MNIST`); progress: default on.
        random_start: uniform in the l-inf ball, or radius U(0, eps) on a random l2 direction; default False.

    Examples:
        >>> x_adv = pgd(model, x, y, eps=0.1, steps=10, step_size=0.02)
        >>> bool(((x_adv - x).abs() <= 0.1 + 1e-6).all())
        True
    """
    check_images(x, "x")
    check_positive(eps, "eps", allow_zero=True)
    check_positive(steps, "steps", integer=True, allow_zero=True)
    check_positive(step_size, "step_size")
    check_choice(norm, "norm", NORMS)
    if norm == "linf" and eps > 1:
        warnings.warn(
            f"eps: an l-inf budget of {eps:g} exceeds the pixel range [0, 1] (did you mean {eps:g}/255?)",
            UserWarning,
            stacklevel=2,
        )
    if objective is None:
        check_model_input(model, x)
    n = x.shape[0]
    if objective is None:
        if (y is None) == (targets is None):
            raise InputError("y/targets: pass exactly one of y (untargeted) or targets (targeted)")
        labels, sgn = (y, 1.0) if targets is None else (targets, -1.0)

        def objective(xa):
            logits = model(xa)
            check_labels(labels, n, logits.shape[1], "targets" if sgn < 0 else "y")
            return sgn * F.cross_entropy(logits, labels, reduction="none")

    delta = torch.zeros_like(x)
    if random_start and eps > 0:
        if norm == "linf":
            delta = (torch.rand_like(x) * 2 - 1) * eps
        else:
            u = torch.randn_like(x)
            delta = u / _l2(u)[:, None, None, None] * eps * torch.rand(n, 1, 1, 1, device=x.device)
        delta = _project(x, delta, eps, norm, clip)
    bar = tqdm(total=steps, desc="PGD", unit="step", leave=False) if progress_enabled(progress) else None
    with eval_mode(model):
        for _ in range(steps):
            d = delta.detach().requires_grad_(True)
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(objective(x + d).sum(), d)
            if norm == "linf":
                step = step_size * grad.sign()
            else:
                step = step_size * grad / _l2(grad).clamp_min(1e-12)[:, None, None, None]
            delta = _project(x, delta + step, eps, norm, clip)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return (x + delta).detach()


def _l2(v):
    return v.flatten(1).norm(dim=1)


def _project(x, delta, eps, norm, clip):
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        scale = (eps / _l2(delta).clamp_min(1e-12)).clamp(max=1.0)
        delta = delta * scale[:, None, None, None]
    return ((x + delta).clamp(0, 1) - x) if clip else delta
