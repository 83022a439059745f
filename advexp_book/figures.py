"""The book's figures, with matplotlib; the explorer's and the command line's are :mod:`advexp_lib.plotting`.

Each function returns its matplotlib Figure. Maps are drawn with
:func:`advexp_lib.plotting.show_map` (signed maps diverging around 0, non-negative
maps "magma", limits per panel).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from torch import nn
from torchvision.utils import make_grid

from advexp_lib.checks import InputError, check_choice, check_images, check_labels, check_positive
from advexp_lib.data import as_8bit, class_name
from advexp_lib.models import HalfHuberReLU
from advexp_lib.plotting import no_ticks, show_map, to_display

from .experiments import ShiftResult

__all__ = [
    "image_grid",
    "plot_history",
    "plot_ara_curves",
    "plot_robust_accuracy",
    "plot_attributions",
    "plot_sparsity_accuracy",
    "plot_shift",
    "plot_shift_distribution",
    "plot_half_huber",
    "plot_minimal_examples",
    "plot_reference_comparison",
]


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


def plot_sparsity_accuracy(points: dict, *, ax=None, n: int | None = None):
    """Gini index of the maps against accuracy, one point per model with 95% intervals on both axes.

    ``points``: {label: {"accuracy": Estimate, "gini": Estimate}} (as
    :func:`advexp_book.experiments.sparsity` returns); labels starting with "l1"
    are drawn as circles, the others as squares.
    """
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5.5, 3.6))
    for label, p in points.items():
        a, g = p["accuracy"], p["gini"]
        ax.errorbar(
            a.value,
            g.value,
            xerr=[[a.value - a.lo], [a.hi - a.value]],
            yerr=[[g.value - g.lo], [g.hi - g.value]],
            fmt="o" if label.startswith("l1") else "s",
            capsize=3,
            label=label,
        )
    ax.set_xlabel("test accuracy" + (f" (n={n})" if n else ""))
    ax.set_ylabel("Gini index of the maps (mean)")
    ax.set_title("sparsity against accuracy, 95% intervals", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_shift(
    result: ShiftResult, *, method: str | None = None, index=None, classes=None, max_rows: int = 3
):
    """Figure of :func:`~advexp_book.experiments.explanation_shift`: what a user sees, and a control.

    One row per shown image: the clean image and its map for the true class;
    the attacked image and its map for the new prediction (with the shift D);
    the control image (random noise of the same RMSE) and its map (with its D).
    ``index``: images to show (default: the first ``max_rows`` successful
    ones, else the first ones). ``method``: default the result's first.
    """
    method = method or next(iter(result.maps))
    check_choice(method, "method", list(result.maps))
    if index is None:
        ok = torch.nonzero(result.success).flatten()
        index = (ok if ok.numel() else torch.arange(result.x.shape[0]))[:max_rows]
    index = torch.as_tensor(index).flatten().tolist()
    if not index:
        raise InputError("index: expected at least one image index")
    m = result.maps[method]
    fig, axes = plt.subplots(len(index), 6, figsize=(10, 1.9 * len(index) + 0.4), squeeze=False)
    for r, i in enumerate(index):
        y, t = class_name(result.y[i], classes), class_name(result.adv_pred[i], classes)
        panels = [
            (result.x[i], f"clean: y = {y}", m["clean"][i], f"{method} for {y}"),
            (
                result.x_adv[i],
                f"attacked: pred {t}",
                m["attacked"][i],
                f"{method} for {t}\nD = {result.shift[method][i]:.2f}",
            ),
            (
                result.x_control[i],
                "noise, same RMSE",
                m["control"][i],
                f"{method} for {y}\nD = {result.control_shift[method][i]:.2f}",
            ),
        ]
        for c, (img, img_title, amap, map_title) in enumerate(panels):
            axes[r][2 * c].imshow(to_display(img), cmap="gray", vmin=0, vmax=1)
            axes[r][2 * c].set_title(img_title, fontsize=8)
            show_map(axes[r][2 * c + 1], amap)
            axes[r][2 * c + 1].set_title(map_title, fontsize=8)
    no_ticks(axes.flat)
    fig.suptitle(
        f"{result.attack} attack, eps {result.eps:g}: map shift D against a noise control", fontsize=9
    )
    fig.tight_layout()
    return fig


def plot_shift_distribution(results: dict, *, method: str, ax=None):
    """Histograms of the map shifts of successful attacks against their noise controls, per model.

    Args:
        results: {label: ShiftResult}; method: which map. The dashed line is
            each model's threshold (95th percentile of its controls); the
            legend gives the share above it with its 95% interval.
    """
    fig, axes = (
        (ax.figure, [ax])
        if ax is not None
        else plt.subplots(1, len(results), figsize=(4.2 * len(results), 2.8), squeeze=False)
    )
    axes = list(axes[0]) if ax is None else axes
    for a, (label, res) in zip(axes, results.items()):
        ok = res.success
        shift, control = res.shift[method][ok].numpy(), res.control_shift[method][ok].numpy()
        top = max(shift.max(initial=0), control.max(initial=0)) or 1.0
        bins = torch.linspace(0, top, 25).numpy()
        a.hist(control, bins=bins, alpha=0.6, label="noise control")
        a.hist(shift, bins=bins, alpha=0.6, label=f"attack: {res.share[method]}")
        a.axvline(res.threshold[method], ls="--", c="k", lw=1)
        a.set_title(f"{label}: {method}", fontsize=9)
        a.set_xlabel("discrepancy D from the clean map")
        a.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_half_huber(deltas=(0.25, 0.5, 1.0), *, lo: float = -1.0, hi: float = 2.0):
    r"""The half-Huber ReLU f and its derivative f' for several widths d, beside the ReLU.

    Both curves come from :class:`advexp_lib.models.HalfHuberReLU` (f' by autograd).
    """
    t = torch.linspace(lo, hi, 601, requires_grad=True)
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3))
    a.plot(t.detach(), torch.relu(t).detach(), "k--", lw=1, label="ReLU")
    b.plot(t.detach(), (t > 0).float(), "k--", lw=1, label="ReLU")
    for d in deltas:
        f = HalfHuberReLU(d)(t)
        (g,) = torch.autograd.grad(f.sum(), t)
        a.plot(t.detach(), f.detach(), label=f"d = {d:g}")
        b.plot(t.detach(), g, label=f"d = {d:g}")
    a.set_title("f(x)")
    b.set_title("f'(x)")
    for ax in (a, b):
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_minimal_examples(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    x_adv: torch.Tensor,
    distances: torch.Tensor,
    classes=None,
    *,
    scale: float = 1.3,
):
    """Images (top), their minimal adversarial examples (middle) and the change (bottom).

    Titles give the true class, the adversarial prediction and the RMSE d_i.
    """
    check_images(x, "x")
    n = x.shape[0]
    check_labels(y, n, None if classes is None else len(classes), "y")
    if x_adv.shape != x.shape or distances.shape != (n,):
        raise InputError(
            f"x_adv, distances: expected shapes {tuple(x.shape)} and ({n},), "
            f"got {tuple(x_adv.shape)} and {tuple(distances.shape)}"
        )
    with torch.no_grad():
        pred = model(x_adv).argmax(1)
    fig, axes = plt.subplots(3, n, figsize=(scale * n, scale * 3.3), squeeze=False)
    change = (x_adv - x).detach().cpu().sum(1)
    for i in range(n):
        axes[0][i].imshow(to_display(x[i]), cmap="gray", vmin=0, vmax=1)
        axes[0][i].set_title(f"y = {class_name(y[i], classes)}", fontsize=8)
        axes[1][i].imshow(to_display(x_adv[i].clamp(0, 1)), cmap="gray", vmin=0, vmax=1)
        d = float(distances[i])
        axes[1][i].set_title(
            f"pred {class_name(pred[i], classes)}\nd = {d:.3f}" if math.isfinite(d) else "not found",
            fontsize=8,
        )
        show_map(axes[2][i], change[i], signed=True)
    no_ticks(axes.flat)
    for r, label in enumerate(("image", "minimal adv.", "change")):
        axes[r][0].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return fig


def plot_reference_comparison(x: torch.Tensor, ours: torch.Tensor, reference: torch.Tensor, *, labels=None):
    """Figure: a reference implementation's images beside ours, and where they differ.

    Rows: the input ``x``, the reference's images, ours as an 8-bit PNG would hold
    them (round(255 v), clamped), and |ours - reference| (gray, white = the largest
    difference in the figure, its value in 8-bit levels in the row label; black
    everywhere where the two are the same image). Columns: the N images of ``x``
    (N, C, H, W) in [0, 1]; ``labels``: optional column titles.
    """
    check_images(x, "x")
    for name, t in (("ours", ours), ("reference", reference)):
        if t.shape != x.shape:
            raise InputError(f"{name}: expected the shape of x {tuple(x.shape)}, got {tuple(t.shape)}")
    n = x.shape[0]
    if labels is not None and len(labels) != n:
        raise InputError(f"labels: expected {n} titles, got {len(labels)}")
    saved = as_8bit(ours.detach().cpu())  # as a PNG holds it
    diff = (saved - reference.detach().cpu()).abs().amax(1)
    largest = float(diff.max())
    top = largest or 1.0  # identical images: an all-black row, not noise scaled up
    rows = [("image", x.detach().cpu()), ("reference", reference.detach().cpu()), ("ours", saved)]
    fig, axes = plt.subplots(4, n, figsize=(1.5 * n, 6.2), squeeze=False)
    for j in range(n):
        for i, (_, imgs) in enumerate(rows):
            axes[i, j].imshow(to_display(imgs[j]))
        axes[3, j].imshow(diff[j].numpy(), cmap="gray", vmin=0, vmax=top)
        if labels is not None:
            axes[0, j].set_title(str(labels[j]), fontsize=8)
    scale = f"white: {255 * largest:.0f}/255" if largest else "none"
    for i, name in enumerate([r[0] for r in rows] + [f"|difference|\n({scale})"]):
        axes[i, 0].set_ylabel(name, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
