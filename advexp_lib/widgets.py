"""Interactive explorer: a Captum map and the adversarial explanation of one image, side by side.

:func:`explorer` is an ipywidgets box whose figure redraws when a control (model, method, image, target, rho)
changes; :func:`explorer_views` computes the views, :func:`advexp_lib.plotting.plot_views` draws them and
:func:`explorer_grid` renders them statically. The explanation is Woods et al.'s Algorithm 1 in explanation
mode (:func:`advexp_lib.attributions.adversarial_explanation`, ``AE_PAPER`` with RMSE budget rho). Only
:class:`Explorer` and :func:`explorer` need the optional ipywidgets (``pip install "advexp_lib[widgets]"``).
"""

from __future__ import annotations

import functools
import html
from dataclasses import replace

import matplotlib.pyplot as plt
import torch
from torch import nn

from .attacks import AE_PAPER, SearchConfig
from .attributions import adversarial_explanation, as_explainer
from .checks import InputError, check_choice, check_images, check_labels, check_positive
from .data import class_name
from .models import runner_up
from .plotting import METHOD_NAMES, plot_views

__all__ = [
    "EXPLORER_METHODS",
    "MODEL_LABELS",
    "explorer_views",
    "explorer_grid",
    "first_view",
    "Explorer",
    "explorer",
]

EXPLORER_METHODS = ("saliency", "integrated_gradients", "grad_cam", "smoothgrad")
MODEL_LABELS = {
    "standard": "standard (no defence)",
    "adv": "adversarial training (RMSE)",
    "robust": "robust (half-Huber + L_adv)",
    "all": "robust (half-Huber + L_adv + adv. training)",
}
"""Zoo recipe name -> what the explorer's model menu shows (other names are shown as they are)."""


def explorer_views(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    *,
    method: str = "saliency",
    rho: float | None = None,
    config: SearchConfig = AE_PAPER,
) -> dict:
    """Everything the explorer shows for one image ``x`` (1 x C x H x W) and one target class.

    ``method``: one of :data:`EXPLORER_METHODS`; ``rho``: the RMSE budget (default ``config.eps``);
    ``config``: the search (default :data:`AE_PAPER`).

    Returns:
        dict with ``x``, ``map`` (``method``'s attribution for ``target``), ``x_ae`` (the explanation toward
        ``target`` within ``rho``; an unreliable search is flagged, never warned), ``pred`` / ``pred_ae`` and
        ``p_target`` / ``p_target_ae`` (prediction and probability of ``target`` before / after), ``p_pred``
        (probability of ``pred``), ``rmse`` (RMSE(x' - x)), ``reached`` (``pred_ae == target``), the settings.
    """
    check_images(x, "x")
    if x.shape[0] != 1:
        raise InputError(f"x: expected one image (1 x C x H x W), got {tuple(x.shape)}")
    check_choice(method, "method", EXPLORER_METHODS)
    rho = config.eps if rho is None else check_positive(rho, "rho")
    t = torch.tensor([int(target)], device=x.device)
    amap = as_explainer(method).attribute(model, x, t)
    x_ae = adversarial_explanation(
        model, x, t, config=replace(config, eps=rho), on_late="flag", on_miss="flag", progress=False
    ).x_adv
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
        "p_pred": float(p.max()),
        "rmse": float((x_ae - x).pow(2).mean().sqrt()),
        "pred_ae": int(p_ae.argmax()),
        "p_target": float(p[t]),
        "p_target_ae": float(p_ae[t]),
        "reached": int(p_ae.argmax()) == int(target),
    }


def explorer_grid(
    models: dict,
    x: torch.Tensor,
    y: torch.Tensor,
    classes=None,
    *,
    settings,
    config: SearchConfig = AE_PAPER,
):
    """Static version of the explorer: one row of :func:`advexp_lib.plotting.plot_views` per setting.

    ``models``: {name: model}; ``x``, ``y``: the browsed images and labels; ``settings``: dicts with keys
    ``model``, ``index``, ``target``, ``method``, ``rho``; ``config``: the search besides rho (default
    :data:`AE_PAPER`). Returns a matplotlib Figure.
    """
    settings = list(settings)
    if not settings:
        raise InputError("settings: expected at least one dict(model, index, target, method, rho)")
    fig, axes = plt.subplots(len(settings), 4, figsize=(9.6, 2.7 * len(settings)), squeeze=False)
    for row, s in zip(axes, settings):
        check_choice(s["model"], "settings.model", list(models))
        i = int(s["index"])
        views = explorer_views(
            models[s["model"]],
            x[i : i + 1],
            s["target"],
            method=s["method"],
            rho=s["rho"],
            config=config,
        )
        plot_views(views, classes, axes=row, label=f"{s['model']}, #{i} (y {class_name(y[i], classes)}): ")
    fig.tight_layout()
    return fig


def first_view(
    models: dict,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    compare=None,
    config: SearchConfig = AE_PAPER,
) -> dict:
    r"""The image and target the explorer should open on: where two models' explanations differ most.

    For image i, t_i is the first compared model's runner-up class (:func:`advexp_lib.models.runner_up`), d_a,
    d_b the two models' changes x' - x toward t_i (search ``config``), and
    ``D_i = 1 - <d_a, d_b> / (||d_a|| ||d_b||)`` (0: same edit, 1: unrelated, 2: opposite). The chosen image
    maximizes D_i among those both models classify correctly (all, if none). ``models``: {name: model}; ``x``
    (N, C, H, W) in [0, 1], ``y`` (N,): the explored images; ``compare``: two names (default: first and last).

    Returns:
        dict with ``index``, ``target`` (t_i of that image), ``compare`` and ``distance`` (D, tensor (N,)).
    """
    names = list(models)
    compare = tuple(compare) if compare is not None else (names[0], names[-1])
    if len(compare) != 2:
        raise InputError(f"compare: expected two model names, got {compare!r}")
    for name in compare:
        check_choice(name, "compare", names)
    check_images(x, "x")
    check_labels(y, x.shape[0], None, "y")
    a, b = (models[n] for n in compare)
    with torch.no_grad():
        logits_a, logits_b = a(x), b(x)
    targets = runner_up(logits_a, y)
    changes = [
        (
            adversarial_explanation(m, x, targets, config=config, on_late="flag", on_miss="flag").x_adv - x
        ).flatten(1)
        for m in (a, b)
    ]
    distance = 1 - torch.nn.functional.cosine_similarity(*changes, dim=1, eps=1e-12)
    correct = (logits_a.argmax(1) == y) & (logits_b.argmax(1) == y)
    candidates = distance.masked_fill(~correct, float("-inf")) if correct.any() else distance
    i = int(candidates.argmax())
    return {"index": i, "target": int(targets[i]), "compare": compare, "distance": distance}


class Explorer:
    """State and controls of the interactive explorer (see :func:`explorer`).

    Attributes:
        controls: {"model", "method", "index", "target", "rho"} -> ipywidgets control (values: the keys).
        note: ``ipywidgets.HTML`` under the controls: empty, or a hint when the explanation missed.
        output: ``ipywidgets.Output`` with the current figure (views cached per setting).
        widget: the ``ipywidgets.VBox`` to display (controls, note, figure).
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
        index: int = 0,
        target: int | None = None,
        labels: dict | None = None,
        config: SearchConfig = AE_PAPER,
    ):
        try:
            import ipywidgets  # optional dependency: the computation above works without it
        except ImportError:
            raise ImportError("the explorer needs ipywidgets: pip install 'advexp_lib[widgets]'") from None

        if not models:
            raise InputError("models: expected at least one {name: model}")
        check_images(x, "x")
        check_labels(y, x.shape[0], None, "y")
        for m in methods:
            check_choice(m, "methods", EXPLORER_METHODS)
        if not 0 <= int(index) < x.shape[0]:
            raise InputError(f"index: expected 0 <= index < {x.shape[0]}, got {index}")
        self.models, self.x, self.y, self.classes = dict(models), x, y, classes
        self.config = config
        first = next(iter(self.models.values()))
        with torch.no_grad():
            logits = first(x[int(index) : int(index) + 1])
        num_classes = len(classes) if classes else int(logits.shape[1])
        if target is None:  # the closest wrong class: an explanation toward the true class shows nothing
            target = int(runner_up(logits, y[int(index) : int(index) + 1])[0])
        if not 0 <= int(target) < num_classes:
            raise InputError(f"target: expected a class in [0, {num_classes - 1}], got {target}")
        self.controls = _controls(
            ipywidgets,
            self.models,
            methods,
            {**MODEL_LABELS, **(labels or {})},
            int(index),
            int(target),
            x.shape[0],
            num_classes,
            config.eps,
        )
        self.note = ipywidgets.HTML()
        self.views, self.updates = None, 0
        self._views = functools.lru_cache(maxsize=256)(self._compute)  # one search per setting
        # not ipywidgets.interactive_output: outside a notebook its clear_output prints escape codes,
        # and a call of update() from Python would draw outside the widget
        self.output = ipywidgets.Output()
        for c in self.controls.values():
            c.observe(lambda _: self.update(), names="value")
        self.update()
        rows = list(self.controls.values())
        self.widget = ipywidgets.VBox(
            [ipywidgets.HBox(rows[:2]), ipywidgets.HBox(rows[2:]), self.note, self.output]
        )

    def settings(self) -> dict:
        """The controls' current values."""
        return {k: c.value for k, c in self.controls.items()}

    def _compute(self, model: str, method: str, index: int, target: int, rho: float) -> dict:
        x = self.x[index : index + 1]
        return explorer_views(self.models[model], x, target, method=method, rho=rho, config=self.config)

    def update(self):
        """Recompute the views for the current settings (cached) and redraw; returns the views dict."""
        from IPython import get_ipython  # comes with ipywidgets
        from IPython.display import display

        s = self.settings()
        v = self._views(s["model"], s["method"], int(s["index"]), int(s["target"]), float(s["rho"]))
        self.views, self.updates = v, self.updates + 1
        self.note.value = "" if v["reached"] else html.escape(_miss_hint(v, self.classes))
        fig = plot_views(v, self.classes, label=f"y {class_name(self.y[int(s['index'])], self.classes)}: ")
        fig.tight_layout()
        if get_ipython() is not None:  # outside a notebook there is no output area: print nothing
            with self.output:
                self.output.clear_output(wait=True)
                display(fig)
        plt.close(fig)
        return v


def _controls(ipywidgets, models, methods, labels, index, target, n, num_classes, rho) -> dict:
    """The explorer's controls; sliders recompute on release, not on every pixel of a drag."""
    wide = {"layout": ipywidgets.Layout(width="max-content"), "style": {"description_width": "initial"}}
    controls = {
        "model": ipywidgets.Dropdown(
            options=[(labels.get(m, m), m) for m in models], description="model", **wide
        ),
        "method": ipywidgets.Dropdown(
            options=[(METHOD_NAMES.get(m, m), m) for m in methods], description="method", **wide
        ),
        "index": ipywidgets.IntSlider(index, min=0, max=n - 1, description="image"),
        "target": ipywidgets.IntSlider(target, min=0, max=num_classes - 1, description="target class"),
        "rho": ipywidgets.FloatSlider(rho, min=0.02, max=0.5, step=0.02, description="rho (RMSE)"),
    }
    for c in controls.values():
        c.continuous_update = False
    return controls


def explorer(models: dict, x: torch.Tensor, y: torch.Tensor, classes=None, **kwargs):
    """The interactive explorer widget (ipywidgets VBox) for ``models`` on images ``x`` with labels ``y``.

    The box's ``explorer`` attribute is the :class:`Explorer`. ``kwargs``: ``methods``; ``index`` (initial
    image, default 0; see :func:`first_view`); ``target`` (default the runner-up under the first model);
    ``labels`` ({name: menu label}, added to :data:`MODEL_LABELS`); ``config`` (its ``eps`` is the initial
    rho; default :data:`AE_PAPER`).
    """
    ex = Explorer(models, x, y, classes, **kwargs)
    ex.widget.explorer = ex
    return ex.widget


def _miss_hint(views: dict, classes) -> str:
    t = class_name(views["target"], classes)
    return (
        f"The explanation did not reach class {t} (pred {class_name(views['pred_ae'], classes)}, "
        f"p({t}) {views['p_target_ae']:.2f} at rho {views['rho']:g}): raise rho to give it a larger budget."
    )
