"""Figures with matplotlib: image grids (torchvision's make_grid), training curves.

Every helper returns the matplotlib Figure so notebooks can show or save it.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from torchvision.utils import make_grid

__all__ = ["image_grid", "plot_history", "to_display"]


def to_display(img: torch.Tensor):
    """C x H x W tensor in [0, 1] -> array for imshow (H x W for 1 channel, H x W x 3 else)."""
    img = img.detach().cpu().float()
    return img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).clamp(0, 1).numpy()


def image_grid(x: torch.Tensor, y: torch.Tensor | None = None, classes=None, *, nrow: int = 10,
               title: str | None = None, scale: float = 0.9):
    """A grid of images ``x`` (N, C, H, W) in [0, 1]; with labels, a caption row per grid row."""
    grid = make_grid(x.detach().cpu(), nrow=nrow, padding=2, pad_value=1.0)
    rows = (x.shape[0] + nrow - 1) // nrow
    fig, ax = plt.subplots(figsize=(scale * min(nrow, x.shape[0]), scale * rows + 0.4))
    ax.imshow(to_display(grid), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if y is not None:
        names = [classes[int(c)] if classes else str(int(c)) for c in y]
        h, w = x.shape[2] + 2, x.shape[3] + 2
        for i, name in enumerate(names):
            ax.text((i % nrow) * w + w / 2, (i // nrow) * h + h - 1, name, ha="center", va="bottom",
                    fontsize=7, color="tab:red")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_history(histories, keys=("loss", "train_accuracy", "test_accuracy"), *, extra=()):
    """Training curves: one panel per key, one line per run.

    Args:
        histories: a history (list of per-epoch dicts) or {label: history}.
        keys: per-epoch fields to plot; ``extra`` adds more (e.g. "psi").
    """
    if isinstance(histories, list):
        histories = {"": histories}
    keys = [k for k in (*keys, *extra) if any(k in row for h in histories.values() for row in h)]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for label, h in histories.items():
            pts = [(row["epoch"], row[key]) for row in h if key in row]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, label=label or None)
        ax.set_xlabel("epoch")
        ax.set_title(key.replace("_", " "))
        ax.grid(alpha=0.3)
        if "psi" in key:
            ax.set_yscale("log")
    if any(histories):
        axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    return fig
