"""Figures with matplotlib: image grids (torchvision's make_grid), training curves.

Every helper returns the matplotlib Figure so notebooks can show or save it.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from torchvision.utils import make_grid

__all__ = ["image_grid", "plot_history", "to_display", "plot_ara_curves", "explanation_panel"]


def to_display(img: torch.Tensor):
    """C x H x W tensor in [0, 1] -> array for imshow (H x W for 1 channel, H x W x 3 else)."""
    img = img.detach().cpu().float()
    return img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).clamp(0, 1).numpy()


def image_grid(x: torch.Tensor, y: torch.Tensor | None = None, classes=None, *, nrow: int = 10,
               title: str | None = None, scale: float = 0.9):
    """A grid of images ``x`` (N, C, H, W) in [0, 1]; with labels, a caption row per grid row."""
    from .checks import check_images, check_labels, check_positive

    check_images(x, "x")
    check_positive(nrow, "nrow", integer=True)
    if y is not None:
        check_labels(y, x.shape[0], len(classes) if classes else None, "y")
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


def plot_ara_curves(results: dict, *, ax=None, title: str | None = None):
    """Accuracy-robustness curves A(r) of several models, their ARA in the legend.

    Args:
        results: {label: AraResult} (all of one ``kind``); chance 1/C is drawn dashed.
    """
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5.5, 3.6))
    for label, res in results.items():
        r, a = res.curve()
        ax.step(r.numpy(), a.numpy(), where="post", label=f"{label} (ARA {res.ara:.4f})")
    first = next(iter(results.values()))
    ax.axhline(1 / first.num_classes, ls="--", c="gray", lw=1, label="chance 1/C")
    ax.set_xlabel("perturbation RMSE r")
    ax.set_ylabel("A(r): share with $d_i > r$")
    ax.set_title(title or f"accuracy-robustness curves ({first.kind})")
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def explanation_panel(x, explanations, titles, *, row_titles=("image", "change"), scale=1.5):
    """Image + explanations (top) and each explanation's change from the image (bottom).

    Args:
        x: one image (C, H, W) in [0, 1]; explanations: (K, C, H, W) images;
        titles: K column titles. The change row uses a symmetric red-blue map.
    """
    k = explanations.shape[0]
    fig, axes = plt.subplots(2, k + 1, figsize=(scale * (k + 1), scale * 2.2), squeeze=False)
    delta = (explanations - x[None]).detach().cpu().sum(1)  # channel sum: where pixels got brighter
    lim = float(delta.abs().max()) or 1.0
    axes[0][0].imshow(to_display(x), cmap="gray", vmin=0, vmax=1)
    axes[0][0].set_title("input", fontsize=8)
    for j in range(k):
        axes[0][j + 1].imshow(to_display(explanations[j].clamp(0, 1)), cmap="gray", vmin=0, vmax=1)
        axes[0][j + 1].set_title(titles[j], fontsize=8)
        axes[1][j + 1].imshow(delta[j].numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1][0].set_visible(False)
    axes[0][0].set_ylabel(row_titles[0], fontsize=8)
    axes[1][1].set_ylabel(row_titles[1], fontsize=8)
    fig.tight_layout()
    return fig
