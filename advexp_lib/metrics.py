"""Metrics: the Accuracy-Robustness Area (Woods et al. 2019) and friends.

ARA is hand-written (no library has it); it is measured with the RMSE search
of :mod:`advexp_lib.attacks`, so distances are per-image RMSE in [0, 1] pixel units.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .attacks import rmse_search
from .checks import check_choice, check_images, check_labels, check_logits, check_positive

__all__ = ["AraResult", "ara_from_distances", "accuracy_robustness_area", "accuracy", "predict"]


@dataclass
class AraResult:
    """ARA of one model. ``distances``: per-image minimal RMSE d_i (0 if failed at the start)."""

    ara: float
    distances: torch.Tensor
    accuracy: float
    kind: str
    num_classes: int
    unreliable: torch.Tensor

    def curve(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Accuracy-robustness curve as step points (r, A(r)), A(r) = share of d_i > r."""
        d = torch.sort(self.distances.double().cpu()).values
        n = d.numel()
        r = torch.cat([torch.zeros(1, dtype=d.dtype), d])
        a = torch.cat([(d > 0).double().mean()[None], 1.0 - torch.arange(1, n + 1, dtype=d.dtype) / n])
        return r, a


def ara_from_distances(distances: torch.Tensor, num_classes: int) -> float:
    r"""ARA = \int_0^\infty max(0, A(r) - 1/C) dr with A(r) = share of d_i > r (exact, step function).

    With d sorted ascending (d_0 = 0), A = (N - k) / N on [d_k, d_{k+1}), so
    ARA = sum_k (d_{k+1} - d_k) max(0, (N - k) / N - 1/C).
    """
    check_positive(num_classes, "num_classes", integer=True)
    d = distances.detach().double().flatten().cpu()
    if d.numel() == 0 or not torch.isfinite(d).all() or (d < 0).any():
        raise ValueError("distances: expected a non-empty tensor of finite values >= 0")
    d = torch.sort(d).values
    n = d.numel()
    widths = torch.diff(torch.cat([torch.zeros(1, dtype=d.dtype), d]))
    share = (n - torch.arange(n, dtype=d.dtype)) / n
    return float((widths * (share - 1.0 / num_classes).clamp(min=0)).sum())


def accuracy_robustness_area(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, kind: str = "attack",
                             steps: int = 450, eps: float = 20.0, momentum: float = 0.9,
                             batch_size: int | None = None, progress: bool = True, clip: bool = False,
                             on_late: str = "warn") -> AraResult:
    r"""Accuracy-Robustness Area of ``model`` on ``(x, y)`` (Woods et al. 2019).

    For each image the RMSE search finds the smallest perturbation d_i that
    breaks the criterion; with A(r) the share of images with d_i > r,

        ARA = \int_0^\infty max(0, A(r) - 1/C) dr.

    Args:
        kind: "attack" (top-1 no longer correct) or "btr" (true-class
            probability no longer above chance, 1/C). Default: "attack".
        steps, eps, momentum: search length, total budget in RMSE units and
            momentum; defaults are the paper's (450, 20, 0.9), overshoot 1.
        batch_size: images per search batch; default None = all at once.
        clip: keep x + delta in [0, 1] (default False, as the reference).
        on_late: what to do when an image meets the criterion after T/2 steps
            ("warn" default, "raise", "flag"); see ``AraResult.unreliable``.
    Returns:
        AraResult with ``ara``, per-image ``distances``, ``accuracy``, ``curve()``.
    """
    check_choice(kind, "kind", ("attack", "btr"))
    check_images(x, "x")
    n = x.shape[0]
    batch_size = n if batch_size is None else check_positive(batch_size, "batch_size", integer=True)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n * steps, desc=f"ARA ({kind})", unit="img-step", unit_scale=True, leave=False)
    dists, late, correct, num_classes = [], [], 0, None
    for i in range(0, n, batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        res = rmse_search(model, xb, yb, mode=kind, eps=eps, steps=steps, momentum=momentum, clip=clip,
                          on_late=on_late, progress=bar)
        dists.append(res.distances.cpu())
        late.append(res.unreliable.cpu())
        with torch.no_grad():
            logits = model(xb)
        num_classes = logits.shape[1]
        correct += (logits.argmax(1) == yb).sum().item()
    if bar is not None:
        bar.close()
    distances = torch.cat(dists)
    return AraResult(ara_from_distances(distances, num_classes), distances, correct / n, kind, num_classes,
                     torch.cat(late))


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """Logits of ``model`` (in its current mode) on ``x``, batched."""
    check_images(x, "x")
    out = torch.cat([model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    return check_logits(out, x.shape[0])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` on (x, y)."""
    logits = predict(model, x)
    check_labels(y, x.shape[0], logits.shape[1], "y")
    return (logits.argmax(1) == y.to(logits.device)).double().mean().item()
