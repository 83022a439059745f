"""The figures of the explorer and the command line, with matplotlib.

Functions return their Figure. :func:`show_map` draws signed maps with "RdBu_r" centred at 0 (red positive),
others with "magma", limits per panel (``max |map|``): a panel shows *where*, not *how much*.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from torch import nn

from .attacks import AE_PAPER, SearchConfig
from .attributions import adversarial_explanation
from .checks import InputError, check_images, check_positive
from .data import class_name
from .models import runner_up

__all__ = [
    "to_display",
    "show_map",
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
