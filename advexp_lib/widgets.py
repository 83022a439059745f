"""Interactive explorer: a Captum map and the adversarial explanation of one image, side by side.

:func:`explorer` returns an ipywidgets box with controls (model, explanation
method, image index, target class, rho) and a figure that redraws whenever
a control changes. The computation lives in :func:`explorer_views` and the
drawing in :func:`advexp_lib.plotting.plot_views`, so the same views can be rendered statically
(:func:`explorer_grid`) where no kernel runs, e.g. in the rendered book.

The adversarial explanation is Woods et al.'s Algorithm 1 in explanation
mode (:func:`advexp_lib.explanation_attacks.adversarial_explanation`): descend the
target class's cross-entropy within an RMSE budget rho (overshoot 5, 35
steps, no momentum, pixels kept in [0, 1]).
"""

from __future__ import annotations

import ipywidgets
import matplotlib.pyplot as plt
import torch
from IPython.display import display
from torch import nn

from .attributions import attribute
from .checks import InputError, check_choice, check_images, check_labels, check_positive
from .data import class_name
from .explanation_attacks import adversarial_explanation
from .plotting import plot_views

__all__ = ["EXPLORER_METHODS", "explorer_views", "explorer_grid", "Explorer", "explorer"]

EXPLORER_METHODS = ("saliency", "integrated_gradients", "grad_cam", "smoothgrad")


def explorer_views(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    *,
    method: str = "saliency",
    rho: float = 0.1,
    steps: int = 35,
    overshoot: float = 5.0,
) -> dict:
    """Everything the explorer shows for one image ``x`` (1 x C x H x W) and one target class.

    Returns:
        dict with ``x``, ``map`` (``method``'s attribution for ``target``,
        :func:`advexp_lib.attributions.attribute`), ``x_ae`` (the adversarial
        explanation toward ``target`` with RMSE budget ``rho``), ``pred`` and
        ``pred_ae`` (predicted classes), ``p_target`` and ``p_target_ae``
        (softmax probability of ``target`` before and after), and the settings.
    """
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
    return {
        "x": x.detach(),
        "map": amap,
        "x_ae": x_ae.clamp(0, 1),
        "target": int(target),
        "method": method,
        "rho": float(rho),
        "pred": int(p.argmax()),
        "pred_ae": int(p_ae.argmax()),
        "p_target": float(p[t]),
        "p_target_ae": float(p_ae[t]),
    }


def explorer_grid(
    models: dict,
    x: torch.Tensor,
    y: torch.Tensor,
    classes=None,
    *,
    settings,
    steps: int = 35,
    overshoot: float = 5.0,
):
    """Static version of the explorer: one row of :func:`advexp_lib.plotting.plot_views` per setting.

    Args:
        models: {name: model}; x, y: the images and labels the explorer browses.
        settings: list of dicts with keys ``model``, ``index``, ``target``,
            ``method`` and ``rho`` (the explorer's controls).
    Returns:
        matplotlib Figure.
    """
    settings = list(settings)
    if not settings:
        raise InputError("settings: expected at least one dict(model, index, target, method, rho)")
    fig, axes = plt.subplots(len(settings), 4, figsize=(8.4, 2.4 * len(settings)), squeeze=False)
    for row, s in zip(axes, settings):
        check_choice(s["model"], "settings.model", list(models))
        i = int(s["index"])
        views = explorer_views(
            models[s["model"]],
            x[i : i + 1],
            s["target"],
            method=s["method"],
            rho=s["rho"],
            steps=steps,
            overshoot=overshoot,
        )
        plot_views(views, classes, axes=row, label=f"{s['model']}, #{i} (y {class_name(y[i], classes)}): ")
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

    def __init__(
        self,
        models: dict,
        x: torch.Tensor,
        y: torch.Tensor,
        classes=None,
        *,
        methods=EXPLORER_METHODS,
        rho: float = 0.1,
        steps: int = 35,
        overshoot: float = 5.0,
    ):
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
            "model": ipywidgets.Dropdown(options=list(self.models), description="model"),
            "method": ipywidgets.Dropdown(options=list(methods), description="method"),
            "index": ipywidgets.IntSlider(0, min=0, max=x.shape[0] - 1, description="image"),
            "target": ipywidgets.IntSlider(int(y[0]), min=0, max=num_classes - 1, description="target class"),
            "rho": ipywidgets.FloatSlider(rho, min=0.02, max=0.5, step=0.02, description="rho (RMSE)"),
        }
        for c in self.controls.values():
            c.continuous_update = False  # sliders recompute on release, not on every pixel of drag
            c.observe(self._on_change, names="value")
        self.output = ipywidgets.Output()
        self.widget = ipywidgets.VBox(
            [
                ipywidgets.HBox(list(self.controls.values())[:2]),
                ipywidgets.HBox(list(self.controls.values())[2:]),
                self.output,
            ]
        )
        self.views, self.updates, self._cache = None, 0, {}
        self.update()

    def settings(self) -> dict:
        """The controls' current values."""
        return {k: c.value for k, c in self.controls.items()}

    def update(self):
        """Recompute the views for the current settings and redraw; returns the views dict."""
        s = self.settings()
        key = tuple(s.values())
        if key not in self._cache:
            i = int(s["index"])
            self._cache[key] = explorer_views(
                self.models[s["model"]],
                self.x[i : i + 1],
                s["target"],
                method=s["method"],
                rho=s["rho"],
                steps=self.steps,
                overshoot=self.overshoot,
            )
        self.views = self._cache[key]
        self.updates += 1
        fig = plot_views(
            self.views, self.classes, label=f"y {class_name(self.y[int(s['index'])], self.classes)}: "
        )
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
