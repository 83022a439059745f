"""Interactive explorer: a Captum map and the adversarial explanation of one image, side by side.

:func:`explorer` returns an ipywidgets box with controls (model, explanation
method, image index, target class, rho) and a figure that redraws whenever
a control changes. The computation lives in :func:`explorer_views` and the
drawing in :func:`plot_views`, so the same views can be rendered statically
(:func:`explorer_grid`) where no kernel runs, e.g. in the rendered book.

The adversarial explanation is Woods et al.'s Algorithm 1 in explanation
mode (:func:`advexp_lib.explain.adversarial_explanation`): descend the
target class's cross-entropy within an RMSE budget rho (overshoot 5, 35
steps, no momentum, pixels kept in [0, 1]).
"""
from __future__ import annotations

import torch
from torch import nn

from .checks import InputError, check_choice, check_images, check_labels, check_positive

__all__ = ["EXPLORER_METHODS", "explorer_views", "plot_views", "explorer_grid", "Explorer", "explorer"]

EXPLORER_METHODS = ("saliency", "integrated_gradients", "grad_cam", "smoothgrad")


def explorer_views(model: nn.Module, x: torch.Tensor, target: int, *, method: str = "saliency",
                   rho: float = 0.1, steps: int = 35, overshoot: float = 5.0) -> dict:
    """Everything the explorer shows for one image ``x`` (1 x C x H x W) and one target class.

    Returns:
        dict with ``x``, ``map`` (``method``'s attribution for ``target``,
        :func:`advexp_lib.explain.attribute`), ``x_ae`` (the adversarial
        explanation toward ``target`` with RMSE budget ``rho``), ``pred`` and
        ``pred_ae`` (predicted classes), ``p_target`` and ``p_target_ae``
        (softmax probability of ``target`` before and after), and the settings.
    """
    from .explain import adversarial_explanation, attribute

    check_images(x, "x")
    if x.shape[0] != 1:
        raise InputError(f"x: expected one image (1 x C x H x W), got {tuple(x.shape)}")
    check_choice(method, "method", EXPLORER_METHODS)
    check_positive(rho, "rho")
    t = torch.tensor([int(target)], device=x.device)
    amap = attribute(model, x, t, method=method)
    x_ae = adversarial_explanation(model, x, t, rho=rho, steps=steps, overshoot=overshoot, clip=True)
    with torch.no_grad():
        p, p_ae = model(x).softmax(1)[0], model(x_ae).softmax(1)[0]
    return {"x": x.detach(), "map": amap, "x_ae": x_ae.clamp(0, 1), "target": int(target), "method": method,
            "rho": float(rho), "pred": int(p.argmax()), "pred_ae": int(p_ae.argmax()),
            "p_target": float(p[t]), "p_target_ae": float(p_ae[t])}


def plot_views(views: dict, classes=None, *, axes=None, label: str = ""):
    """Draw :func:`explorer_views` as four panels: image, map, adversarial explanation, change.

    ``axes``: four matplotlib axes to draw into (a new 1 x 4 figure if None). Returns the Figure.
    """
    import matplotlib.pyplot as plt

    from .plotting import to_display

    if axes is None:
        fig, axes = plt.subplots(1, 4, figsize=(8, 2.3))
    fig = axes[0].figure
    name = (lambda c: classes[int(c)]) if classes else (lambda c: str(int(c)))  # noqa: E731
    x, x_ae = views["x"][0], views["x_ae"][0]
    amap = views["map"][0].detach().cpu().sum(0).numpy()
    signed = (amap < 0).any()
    lim = float(abs(amap).max()) or 1.0
    change = (x_ae - x).detach().cpu().sum(0).numpy()
    clim = float(abs(change).max()) or 1.0
    t = name(views["target"])
    axes[0].imshow(to_display(x), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(f"{label}pred {name(views['pred'])}, p({t}) {views['p_target']:.2f}", fontsize=8)
    axes[1].imshow(amap, cmap="bwr" if signed else "magma", vmin=-lim if signed else 0, vmax=lim)
    axes[1].set_title(f"{views['method'].replace('_', ' ')} for {t}", fontsize=8)
    axes[2].imshow(to_display(x_ae), cmap="gray", vmin=0, vmax=1)
    axes[2].set_title(f"adv. explanation -> {t} (rho {views['rho']:g})\npred {name(views['pred_ae'])}, "
                      f"p({t}) {views['p_target_ae']:.2f}", fontsize=8)
    axes[3].imshow(change, cmap="RdBu_r", vmin=-clim, vmax=clim)
    axes[3].set_title("change (red brighter)", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def explorer_grid(models: dict, x: torch.Tensor, y: torch.Tensor, classes=None, *, settings, steps: int = 35,
                  overshoot: float = 5.0):
    """Static version of the explorer: one row of :func:`plot_views` per setting.

    Args:
        models: {name: model}; x, y: the images and labels the explorer browses.
        settings: list of dicts with keys ``model``, ``index``, ``target``,
            ``method`` and ``rho`` (the explorer's controls).
    Returns:
        matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    settings = list(settings)
    if not settings:
        raise InputError("settings: expected at least one dict(model, index, target, method, rho)")
    fig, axes = plt.subplots(len(settings), 4, figsize=(8.4, 2.4 * len(settings)), squeeze=False)
    for row, s in zip(axes, settings):
        check_choice(s["model"], "settings.model", list(models))
        i = int(s["index"])
        views = explorer_views(models[s["model"]], x[i:i + 1], s["target"], method=s["method"], rho=s["rho"],
                               steps=steps, overshoot=overshoot)
        plot_views(views, classes, axes=row, label=f"{s['model']}, #{i} (y {_name(classes, y[i])}): ")
    fig.tight_layout()
    return fig


class Explorer:
    """State and controls of the interactive explorer (see :func:`explorer`).

    Attributes:
        controls: {"model", "method", "index", "target", "rho"} -> ipywidgets control.
        output: ``ipywidgets.Output`` holding the current figure.
        widget: the ``ipywidgets.VBox`` to display (controls above the figure).
        views: the last :func:`explorer_views` result; ``updates``: how many times it was computed.
    """

    def __init__(self, models: dict, x: torch.Tensor, y: torch.Tensor, classes=None, *,
                 methods=EXPLORER_METHODS, rho: float = 0.1, steps: int = 35, overshoot: float = 5.0):
        import ipywidgets as widgets

        if not models:
            raise InputError("models: expected at least one {name: model}")
        check_images(x, "x")
        check_labels(y, x.shape[0], None, "y")
        for m in methods:
            check_choice(m, "methods", EXPLORER_METHODS)
        self.models, self.x, self.y, self.classes = dict(models), x, y, classes
        self.steps, self.overshoot = steps, overshoot
        num_classes = len(classes) if classes else int(next(iter(models.values()))(x[:1]).shape[1])
        self.controls = {
            "model": widgets.Dropdown(options=list(self.models), description="model"),
            "method": widgets.Dropdown(options=list(methods), description="method"),
            "index": widgets.IntSlider(0, min=0, max=x.shape[0] - 1, description="image"),
            "target": widgets.IntSlider(int(y[0]), min=0, max=num_classes - 1, description="target class"),
            "rho": widgets.FloatSlider(rho, min=0.02, max=0.5, step=0.02, description="rho (RMSE)"),
        }
        for c in self.controls.values():
            c.continuous_update = False  # sliders recompute on release, not on every pixel of drag
            c.observe(self._on_change, names="value")
        self.output = widgets.Output()
        self.widget = widgets.VBox([widgets.HBox(list(self.controls.values())[:2]),
                                    widgets.HBox(list(self.controls.values())[2:]), self.output])
        self.views, self.updates, self._cache = None, 0, {}
        self.update()

    def settings(self) -> dict:
        """The controls' current values."""
        return {k: c.value for k, c in self.controls.items()}

    def update(self):
        """Recompute the views for the current settings and redraw; returns the views dict."""
        import matplotlib.pyplot as plt
        from IPython.display import display

        s = self.settings()
        key = tuple(s.values())
        if key not in self._cache:
            i = int(s["index"])
            self._cache[key] = explorer_views(self.models[s["model"]], self.x[i:i + 1], s["target"],
                                              method=s["method"], rho=s["rho"], steps=self.steps,
                                              overshoot=self.overshoot)
        self.views = self._cache[key]
        self.updates += 1
        fig = plot_views(self.views, self.classes, label=f"y {_name(self.classes, self.y[int(s['index'])])}: ")
        fig.tight_layout()
        with self.output:
            self.output.clear_output(wait=True)
            display(fig)
        plt.close(fig)
        return self.views

    def _on_change(self, change):
        self.update()


def explorer(models: dict, x: torch.Tensor, y: torch.Tensor, classes=None, **kwargs):
    """The interactive explorer widget (ipywidgets VBox) for ``models`` on images ``x`` with labels ``y``.

    Controls: model and explanation method (Dropdown), image index and target
    class (IntSlider), RMSE budget rho (FloatSlider). Any change recomputes the
    views (cached per setting). The box's ``explorer`` attribute is the
    :class:`Explorer` (its ``update()`` and ``views`` are usable from Python).

    Args:
        kwargs: ``methods``, ``rho`` (initial, default 0.1), ``steps`` (35), ``overshoot`` (5).
    """
    ex = Explorer(models, x, y, classes, **kwargs)
    ex.widget.explorer = ex
    return ex.widget


def _name(classes, c) -> str:
    return classes[int(c)] if classes else str(int(c))
