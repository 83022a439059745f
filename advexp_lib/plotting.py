"""The library's figures, with matplotlib (image grids with torchvision's ``make_grid``).

Functions return their Figure. :func:`show_map` draws signed maps with "RdBu_r" centred at 0 (red positive),
others with "magma", limits per panel (``max |map|``): a panel shows *where*, not *how much*.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from torch import nn
from torchvision.utils import make_grid

from .attacks import AE_PAPER, SearchConfig
from .attributions import adversarial_explanation
from .checks import InputError, check_images, check_labels, check_positive
from .data import class_name
from .models import runner_up

__all__ = [
    "to_display",
    "show_map",
    "image_grid",
    "plot_history",
    "plot_ara_curves",
    "plot_robust_accuracy",
    "plot_attributions",
    "explanation_panel",
    "adversarial_explanation_panel",
    "plot_views",
    "no_ticks",
    "METHOD_NAMES",
]

SIGNED_CMAP = "RdBu_r"
MAGNITUDE_CMAP = "magma"
METHOD_NAMES = {
    "saliency": "saliency |gradient|",
    "integrated_gradients": "integrated gradients",
    "smoothgrad": "SmoothGrad",
    "grad_cam": "Grad-CAM",
    "guided_grad_cam": "guided Grad-CAM",
    "cam": "CAM",
}
"""Attribution method identifier -> the name a figure shows."""


def to_display(img: torch.Tensor):
    """C x H x W tensor in [0, 1] -> array for imshow (H x W for 1 channel, H x W x 3 else)."""
    img = img.detach().cpu().float()
    return img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).clamp(0, 1).numpy()


def show_map(ax, a, *, signed: bool | None = None, alpha: float = 1.0, cmap: str | None = None):
    """Draw the 2-D map ``a`` (array or tensor) on ``ax``; return the image (for a colorbar).

    Signed (default: any value < 0): ``SIGNED_CMAP`` in [-m, m], ``m = max |a|``; else ``MAGNITUDE_CMAP`` in
    [0, m]. ``cmap`` overrides the colormap."""
    a = a.detach().float().cpu().numpy() if isinstance(a, torch.Tensor) else a
    signed = bool((a < 0).any()) if signed is None else signed
    lim = float(abs(a).max()) or 1.0
    return ax.imshow(
        a,
        cmap=cmap or (SIGNED_CMAP if signed else MAGNITUDE_CMAP),
        vmin=-lim if signed else 0.0,
        vmax=lim,
        alpha=alpha,
    )


def image_grid(
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    classes=None,
    *,
    nrow: int = 10,
    title: str | None = None,
    scale: float = 0.9,
):
    """A grid of images ``x`` (N, C, H, W) in [0, 1]; with labels, a caption under each image."""
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
        h, w = x.shape[2] + 2, x.shape[3] + 2
        for i, c in enumerate(y):
            ax.text(
                (i % nrow) * w + w / 2,
                (i // nrow) * h + h - 1,
                class_name(c, classes),
                ha="center",
                va="bottom",
                fontsize=7,
                color="tab:red",
            )
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_history(histories, keys=("loss", "train_accuracy", "test_accuracy"), *, extra=()):
    """Training curves: one panel per key, one line per run.

    ``histories``: a list of per-epoch dicts or {label: list}; ``extra``: more keys (e.g. "psi")."""
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

    ``results``: {label: AraResult}, all of one ``kind``; chance 1/C is drawn dashed."""
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


def plot_robust_accuracy(curves: dict, *, ax=None, title: str = "accuracy under l-inf PGD"):
    """Accuracy against the l-inf budget, one line per model: {label: (eps, accuracy, ...)} as
    :func:`advexp_lib.metrics.robust_accuracy_curve` returns them."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5.5, 3.4))
    for label, curve in curves.items():
        ax.plot(curve[0].numpy(), curve[1].numpy(), marker="o", label=label)
    ax.set_xlabel("l-inf budget eps")
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_attributions(
    x: torch.Tensor,
    maps,
    titles=None,
    *,
    row_labels=None,
    cmap: str | None = None,
    overlay: bool = True,
    alpha: float = 0.6,
    scale: float = 1.6,
):
    """Grid of images and their attribution maps -> matplotlib Figure.

    One row per image of ``x`` (N x C x H x W in [0, 1]): the image, then one column per tensor of ``maps`` (a
    tensor or a list, each N x C' x H x W), drawn by :func:`show_map` summed over channels. ``titles``: column
    titles (default "map 0", "map 1" ...); ``row_labels``: optional (e.g. "pred 3"); ``cmap``: one colormap
    for all maps; ``overlay``: the map translucent over the grayscale image (default True).
    """
    check_images(x, "x")
    maps = [maps] if isinstance(maps, torch.Tensor) else list(maps)
    n = x.shape[0]
    for i, m in enumerate(maps):
        if not isinstance(m, torch.Tensor) or m.dim() != 4 or m.shape[0] != n or m.shape[-2:] != x.shape[-2:]:
            got = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
            raise InputError(
                f"maps[{i}]: expected N x C x H x W = ({n}, *, {x.shape[2]}, {x.shape[3]}), got {got}"
            )
    titles = list(titles) if titles is not None else [f"map {i}" for i in range(len(maps))]
    if len(titles) != len(maps):
        raise InputError(f"titles: expected {len(maps)} title(s), one per map, got {len(titles)}")
    cols = 1 + len(maps)
    fig, axes = plt.subplots(n, cols, figsize=(scale * cols, scale * n + 0.3), squeeze=False)
    for r in range(n):
        img = to_display(x[r])
        gray = img if img.ndim == 2 else img.mean(-1)
        axes[r][0].imshow(img, cmap="gray", vmin=0, vmax=1)
        if row_labels is not None:
            axes[r][0].set_ylabel(str(row_labels[r]), fontsize=8)
        for c, m in enumerate(maps, start=1):
            if overlay:
                axes[r][c].imshow(gray, cmap="gray", vmin=0, vmax=1)
            show_map(axes[r][c], m[r].sum(0), alpha=alpha if overlay else 1.0, cmap=cmap)
    for c, t in enumerate(["image"] + titles):
        axes[0][c].set_title(t, fontsize=9)
    no_ticks(axes.flat)
    fig.tight_layout()
    return fig


def explanation_panel(
    x,
    explanations,
    titles,
    *,
    max_cols: int = 6,
    scale: float = 1.5,
    title: str | None = None,
    title_colors=None,
):
    """The input and its explanations in a grid of at most ``max_cols`` columns, each with its change below.

    ``x``: one image (C, H, W) in [0, 1]; ``explanations``: (K, C, H, W); ``titles`` and optional
    ``title_colors`` (e.g. red for a missed target): K each. The changes (x' - x summed over channels: red
    brighter, blue darker) share one symmetric colour scale and colorbar.
    """
    k = explanations.shape[0]
    check_positive(max_cols, "max_cols", integer=True)
    cols = min(max_cols, k + 1)
    blocks = math.ceil((k + 1) / cols)
    fig, axes = plt.subplots(
        2 * blocks, cols, figsize=(scale * cols + 0.8, scale * 2.25 * blocks), squeeze=False
    )
    delta = (explanations - x[None]).detach().cpu().sum(1)  # channel sum: where pixels got brighter
    lim = float(delta.abs().max()) or 1.0
    colors = list(title_colors) if title_colors is not None else ["black"] * k
    image = None
    for j in range(k + 1):
        top, bottom = axes[2 * (j // cols)][j % cols], axes[2 * (j // cols) + 1][j % cols]
        if j == 0:
            top.imshow(to_display(x), cmap="gray", vmin=0, vmax=1)
            top.set_title("input", fontsize=8)
            bottom.set_visible(False)
            continue
        top.imshow(to_display(explanations[j - 1].clamp(0, 1)), cmap="gray", vmin=0, vmax=1)
        top.set_title(titles[j - 1], fontsize=7, color=colors[j - 1])
        image = bottom.imshow(delta[j - 1].numpy(), cmap=SIGNED_CMAP, vmin=-lim, vmax=lim)
    for j in range(k + 1, blocks * cols):  # empty cells of the last block
        axes[2 * (j // cols)][j % cols].set_visible(False)
        axes[2 * (j // cols) + 1][j % cols].set_visible(False)
    no_ticks(axes.flat)
    change_axes = [axes[r][c] for r in range(1, 2 * blocks, 2) for c in range(cols)]
    fig.colorbar(image, ax=change_axes, fraction=0.025, pad=0.02, label="change x' - x").ax.tick_params(
        labelsize=6
    )
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def adversarial_explanation_panel(
    model: nn.Module,
    x: torch.Tensor,
    y: int,
    classes=None,
    *,
    config: SearchConfig = AE_PAPER,
    every_class: bool = True,
    title: str | None = None,
    max_cols: int = 6,
):
    """Figure: the input and its AE toward every class (or the true class and the runner-up), each once.

    ``x``: one image (1, C, H, W) or (C, H, W). Titles: class ("true", "runner-up"), its probability on the
    input and the AE, the AE's RMSE (red: target missed). AEs:
    :func:`~advexp_lib.attributions.adversarial_explanation` with ``config``; ``title`` (e.g. the model's
    name) and rho head the figure."""
    x = x[None] if x.dim() == 3 else x
    check_images(x, "x")
    with torch.no_grad():
        probs = model.eval()(x).softmax(1)[0]
    num_classes = probs.shape[0]
    y = int(y)
    if not 0 <= y < num_classes:
        raise InputError(f"y: expected a class in [0, {num_classes - 1}], got {y}")
    second = int(runner_up(probs[None], torch.tensor([y], device=probs.device))[0])
    targets = list(range(num_classes)) if every_class else [y, second]
    res = adversarial_explanation(
        model,
        x.expand(len(targets), *x.shape[1:]),
        torch.tensor(targets, device=x.device),
        config=config,
        on_late="flag",
        on_miss="flag",
        progress=False,
    )
    marks = {y: " (true)", second: " (runner-up)"}
    titles = [
        f"{class_name(t, classes)}{marks.get(t, '')}\np {probs[t]:.2f} -> {float(res.p_target[i]):.2f}, "
        f"RMSE {float(res.rmse[i]):.3f}"
        for i, t in enumerate(targets)
    ]
    colors = ["black" if bool(r) else "tab:red" for r in res.reached]
    head = f"{title + ': ' if title else ''}adversarial explanations, rho {config.eps:g}"
    head += " (red: target not reached)"
    return explanation_panel(x[0], res.x_adv, titles, max_cols=max_cols, title=head, title_colors=colors)


def plot_views(views: dict, classes=None, *, axes=None, label: str = "", title: str | None = None):
    """Draw :func:`advexp_lib.widgets.explorer_views` as four panels: image, map, AE, change.

    The map and the change (x' - x summed over channels: red brighter, blue darker) have colorbars; methods
    are named by :data:`METHOD_NAMES`; a missed target is titled in red, hinting a larger rho. ``axes``: four
    axes (None: a new 1 x 4 figure); ``title`` (e.g. the model's name) heads a new figure."""
    if axes is None:
        fig, axes = plt.subplots(1, 4, figsize=(9.6, 2.7))
    fig = axes[0].figure
    x, x_ae = views["x"][0], views["x_ae"][0]
    t = class_name(views["target"], classes)
    axes[0].imshow(to_display(x), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(
        f"{label}prediction {class_name(views['pred'], classes)} (p {views['p_pred']:.2f})\n"
        f"p(target {t}) {views['p_target']:.2f}",
        fontsize=8,
    )
    _colorbar(show_map(axes[1], views["map"][0].sum(0)), axes[1])
    axes[1].set_title(f"{METHOD_NAMES.get(views['method'], views['method'])} for {t}", fontsize=8)
    axes[2].imshow(to_display(x_ae), cmap="gray", vmin=0, vmax=1)
    reached = views["reached"]
    outcome = (
        f"prediction {class_name(views['pred_ae'], classes)}, p({t}) {views['p_target_ae']:.2f}"
        if reached
        else f"missed {t}: prediction {class_name(views['pred_ae'], classes)}, "
        f"p({t}) {views['p_target_ae']:.2f}"
        "\ntry a larger rho"
    )
    axes[2].set_title(
        f"adv. explanation -> {t}, RMSE {views['rmse']:.3f} of rho {views['rho']:g}\n{outcome}",
        fontsize=8,
        color="black" if reached else "tab:red",
    )
    _colorbar(show_map(axes[3], (x_ae - x).sum(0), signed=True), axes[3])
    axes[3].set_title("change x' - x\n(red brighter, blue darker)", fontsize=8)
    no_ticks(axes)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def _colorbar(image, ax) -> None:
    """A slim colorbar beside ``ax`` for ``image`` (what :func:`show_map` returns)."""
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)


def no_ticks(axes) -> None:
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
