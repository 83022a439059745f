"""Explanation methods as :class:`Explainer` classes: Captum's attributions, CAM, the adversarial explanation.

CAM (Zhou et al. 2016) is hand-written because Captum has none. Maps: N x C x H x W like x, or N x 1 x H x W.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from captum.attr import GuidedGradCam as _CaptumGuidedGradCam
from captum.attr import IntegratedGradients as _CaptumIntegratedGradients
from captum.attr import LayerAttribution, LayerGradCam, NoiseTunnel
from captum.attr import Saliency as _CaptumSaliency
from torch import nn
from tqdm.auto import tqdm

from .attacks.search import AE_PAPER, EXPLAIN, SearchConfig, rmse_search
from .checks import (
    InputError,
    as_labels,
    check_choice,
    check_images,
    check_logits,
    check_model_input,
    check_positive,
    progress_enabled,
)
from .models import CamCNN, PreActResNet, WithNormalization, eval_mode
from .results import Result

__all__ = [
    "Explainer",
    "Saliency",
    "IntegratedGradients",
    "SmoothGrad",
    "GradCam",
    "GuidedGradCam",
    "Cam",
    "AdversarialExplanation",
    "adversarial_explanation",
    "ExplanationResult",
    "UnreachedTargetWarning",
    "EXPLAINERS",
    "METHODS",
    "explainer",
    "as_explainer",
    "attribute",
    "class_activation_maps",
    "gradcam_layer",
    "GradCamResolutionWarning",
    "integrated_gradients_of",
    "quadrature",
    "IG_METHODS",
]

INTERPOLATE_MODES = ("nearest", "bilinear", "bicubic", "area")


class Explainer:
    """An explanation method: subclasses set ``name``, ``shaped_like_x``, ``differentiable``, ``_attribute``.

    Examples:
        >>> e = IntegratedGradients(n_steps=8)
        >>> e.name, e.shaped_like_x, e.differentiable
        ('integrated_gradients', True, True)
    """

    name: ClassVar[str] = ""
    shaped_like_x: ClassVar[bool] = True
    differentiable: ClassVar[bool] = False

    def attribute(
        self, model: nn.Module, x: torch.Tensor, target, differentiable: bool = False
    ) -> torch.Tensor:
        """The map of ``model`` (in eval mode) at ``x`` for ``target``: an int or (N,) int tensor in [0, C).

        Args:
            model, x: a classifier of raw [0, 1] pixels (N x C logits); float N x C x H x W images in [0, 1].
            differentiable: keep the autograd graph (default False: detached); raises if the method cannot.
        """
        check_images(x, "x")
        check_model_input(model, x)
        if differentiable and not self.differentiable:
            able = ", ".join(n for n, c in EXPLAINERS.items() if c.differentiable)
            raise InputError(
                f"differentiable: method {self.name!r} cannot keep the autograd graph "
                f"(Captum detaches it); differentiable methods: {able}"
            )
        with eval_mode(model):
            with torch.no_grad():
                logits = model(x[:1])
            check_logits(logits, 1)
            targets = as_labels(target, x.shape[0], logits.shape[1], "target").to(x.device)
            # a fresh leaf requiring grad: Captum needs input gradients and warns if it has to switch them on
            out = self._attribute(
                model, x if differentiable else x.detach().requires_grad_(True), targets, differentiable
            )
        return out if differentiable else out.detach()

    def _attribute(self, model, x, targets, differentiable) -> torch.Tensor:
        raise NotImplementedError

    def options(self) -> dict:
        """The constructor's arguments as set (what :func:`explainer` takes besides the name)."""
        return {k: getattr(self, k) for k in inspect.signature(type(self)).parameters}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.options().items())})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.options() == other.options()

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted((k, repr(v)) for k, v in self.options().items()))))


class Saliency(Explainer):
    """|d f_t / dx| (Captum ``Saliency``), f_t the class-t logit; ``abs=False`` (default True) keeps the sign.

    Examples:
        >>> Saliency().attribute(model, x, y).shape
        torch.Size([4, 1, 8, 8])
    """

    name, differentiable = "saliency", True

    def __init__(self, abs: bool = True):
        self.abs = bool(abs)

    def _attribute(self, model, x, targets, differentiable):
        if differentiable:
            x = x if x.requires_grad else x.detach().requires_grad_(True)
            with torch.enable_grad():
                out = model(x).gather(1, targets[:, None]).sum()
                (g,) = torch.autograd.grad(out, x, create_graph=True)
            return g.abs() if self.abs else g
        return _CaptumSaliency(model).attribute(x, target=targets, abs=self.abs)


class IntegratedGradients(Explainer):
    r"""(x - 0) * \int_0^1 d f_t(a x) / dx da, zero baseline (Captum ``IntegratedGradients``), differentiable.

    Defaults: ``n_steps`` 50 nodes, ``ig_method`` "gausslegendre", ``internal_batch_size`` None (all at once).

    Examples:
        >>> ig = IntegratedGradients(n_steps=16).attribute(model, x, y)
        >>> ig.shape == x.shape
        True
    """

    name, differentiable = "integrated_gradients", True

    def __init__(self, n_steps: int = 50, ig_method: str = "gausslegendre", internal_batch_size=None):
        self.n_steps = check_positive(n_steps, "n_steps", integer=True)
        self.ig_method = ig_method
        self.internal_batch_size = internal_batch_size

    def _attribute(self, model, x, targets, differentiable):
        if not differentiable:
            return _CaptumIntegratedGradients(model).attribute(
                x,
                baselines=torch.zeros_like(x),
                target=targets,
                n_steps=self.n_steps,
                method=self.ig_method,
                internal_batch_size=self.internal_batch_size,
            )

        def fn(z):
            return model(z).gather(1, targets[:, None]).squeeze(1)

        return integrated_gradients_of(
            fn, x, torch.zeros_like(x), n_steps=self.n_steps, ig_method=self.ig_method
        )


class SmoothGrad(Explainer):
    """SmoothGrad (Smilkov et al. 2017): mean saliency at x + N(0, stdevs^2) (Captum ``NoiseTunnel``).

    Options: ``nt_samples`` (default 25), ``stdevs`` in [0, 1] pixel units (default 0.15, Smilkov et al.'s
    15%), ``abs`` (default True), ``nt_samples_batch_size`` (default None). Global RNG; not differentiable.

    Examples:
        >>> SmoothGrad(nt_samples=4).attribute(model, x, y).shape
        torch.Size([4, 1, 8, 8])
    """

    name = "smoothgrad"

    def __init__(
        self, nt_samples: int = 25, stdevs: float = 0.15, abs: bool = True, nt_samples_batch_size=None
    ):
        self.nt_samples = check_positive(nt_samples, "nt_samples", integer=True)
        self.stdevs = check_positive(stdevs, "stdevs")
        self.abs = bool(abs)
        self.nt_samples_batch_size = nt_samples_batch_size

    def _attribute(self, model, x, targets, differentiable):
        return NoiseTunnel(_CaptumSaliency(model)).attribute(
            x,
            nt_type="smoothgrad",
            nt_samples=self.nt_samples,
            stdevs=self.stdevs,
            nt_samples_batch_size=self.nt_samples_batch_size,
            target=targets,
            abs=self.abs,
        )


class GradCamResolutionWarning(UserWarning):
    """Grad-CAM's layer has a 1 x 1 (or constant) map at this input size: the map says nothing about where.

    Examples:
        >>> issubclass(GradCamResolutionWarning, UserWarning)
        True
    """


class GradCam(Explainer):
    r"""Grad-CAM (Selvaraju et al. 2017): sum_k mean_{hw}(d f_t / dA_k) A_k (Captum ``LayerGradCam``).

    ``relu`` (default True), ``interpolate_mode`` (default "bilinear"), ``upsample`` (default True, else the
    layer's grid), ``layer`` (A's module or name, default :func:`gradcam_layer`); 1 x 1 / constant maps warn.

    Examples:
        >>> GradCam().attribute(model, x, y).shape
        torch.Size([4, 1, 8, 8])
    """

    name, shaped_like_x, differentiable = "grad_cam", False, True

    def __init__(
        self, relu: bool = True, interpolate_mode: str = "bilinear", upsample: bool = True, layer=None
    ):
        self.relu, self.upsample = bool(relu), bool(upsample)
        self.interpolate_mode = check_choice(interpolate_mode, "interpolate_mode", INTERPOLATE_MODES)
        if layer is not None and not isinstance(layer, (str, nn.Module)):
            raise InputError(f"layer: expected a module or its name, got {type(layer).__name__}")
        self.layer = layer

    def _attribute(self, model, x, targets, differentiable):
        layer = _resolve_layer(model, self.layer)
        x = x if (not differentiable or x.requires_grad) else x.detach().requires_grad_(True)
        kwargs = {"grad_kwargs": {"create_graph": True}} if differentiable else {}
        with torch.enable_grad():
            maps = LayerGradCam(model, layer).attribute(
                x, target=targets, relu_attributions=self.relu, **kwargs
            )
        grid = tuple(maps.shape[-2:])
        if grid == (1, 1):
            better = _finest_coarse_layer(model, x, grid)
            warnings.warn(
                f"layer: Grad-CAM's layer gives a 1 x 1 map at this input size, constant over the image; "
                f"pass GradCam(layer={better!r}), the last layer with a larger grid",
                GradCamResolutionWarning,
                stacklevel=3,
            )
        elif not bool((maps.detach().flatten(1).std(1) > 1e-12).any()):
            better = _finest_coarse_layer(model, x, grid)
            hint = "relu=False (the ReLU zeroes an all-negative map), or " if self.relu else ""
            warnings.warn(
                f"layer: Grad-CAM's {grid[0]} x {grid[1]} map is constant over every image here; try "
                f"{hint}GradCam(layer={better!r}), the last layer with a larger grid",
                GradCamResolutionWarning,
                stacklevel=3,
            )
        return _upsample(maps, x.shape[-2:], self.interpolate_mode) if self.upsample else maps


class GuidedGradCam(Explainer):
    """Guided backprop x upsampled Grad-CAM on :func:`gradcam_layer` (Captum ``GuidedGradCam``).

    Guided backprop overrides ``nn.ReLU`` only. ``interpolate_mode``: default "nearest". Not differentiable.

    Examples:
        >>> GuidedGradCam().attribute(model, x, y).shape
        torch.Size([4, 1, 8, 8])
    """

    name = "guided_grad_cam"

    def __init__(self, interpolate_mode: str = "nearest"):
        self.interpolate_mode = check_choice(interpolate_mode, "interpolate_mode", INTERPOLATE_MODES)

    def _attribute(self, model, x, targets, differentiable):
        with warnings.catch_warnings():  # Captum announces its (temporary) ReLU backward hooks on every call
            warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
            return _CaptumGuidedGradCam(model, gradcam_layer(model)).attribute(
                x, target=targets, interpolate_mode=self.interpolate_mode
            )


class Cam(Explainer):
    r"""CAM (Zhou et al. 2016) of the target class, CAM_t = sum_k W_tk A_k; hand-written (Captum has none).

    For ``cam_cnn``, pre-activation ResNets and nets whose last nn.AdaptiveAvgPool2d feeds the last nn.Linear
    (others refused). Defaults: ``interpolate_mode`` "bilinear", ``upsample`` True (False: the feature grid).

    Examples:
        >>> Cam(upsample=False).attribute(cam_model, x, y).shape
        torch.Size([4, 1, 2, 2])
    """

    name, shaped_like_x, differentiable = "cam", False, True

    def __init__(self, interpolate_mode: str = "bilinear", upsample: bool = True):
        self.interpolate_mode = check_choice(interpolate_mode, "interpolate_mode", INTERPOLATE_MODES)
        self.upsample = bool(upsample)

    def _attribute(self, model, x, targets, differentiable):
        with torch.set_grad_enabled(differentiable):
            feats, weight = _cam_parts(model, x)
            # only the requested class: A weighted by W_t, (N, K, h, w) x (N, K) -> (N, 1, h, w)
            maps = torch.einsum("nk,nkhw->nhw", weight[targets], feats)[:, None]
            if self.upsample and maps.shape[-2:] != x.shape[-2:]:
                maps = _upsample(maps, x.shape[-2:], self.interpolate_mode)
        return maps


class AdversarialExplanation(Explainer):
    """x' - x of :func:`adversarial_explanation` (Woods et al. 2019), a map; ``config`` default ``AE_PAPER``.

    Examples:
        >>> AdversarialExplanation().attribute(model, x, y).shape
        torch.Size([4, 1, 8, 8])
    """

    name = "ae"

    def __init__(self, config: SearchConfig = AE_PAPER):
        if not isinstance(config, SearchConfig):
            raise InputError(f"config: expected a SearchConfig (e.g. AE_PAPER), got {type(config).__name__}")
        self.config = config

    def _attribute(self, model, x, targets, differentiable):
        x = x.detach()
        return rmse_search(model, x, targets, criterion=EXPLAIN, config=self.config).x_adv - x


class UnreachedTargetWarning(UserWarning):
    """Some adversarial explanations did not reach their target class within the budget rho.

    Examples:
        >>> import warnings
        >>> from dataclasses import replace
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     _ = adversarial_explanation(model, x, y, config=replace(AE_PAPER, eps=1e-4, steps=2))
        >>> any(issubclass(w.category, UnreachedTargetWarning) for w in caught) or bool(_.reached.all())
        True
    """


@dataclass
class ExplanationResult(Result):
    """Output of :func:`adversarial_explanation` (N images); tensors are (N,) unless noted.

    Attributes:
        x_adv: the explanations x' (N, C, H, W), detached. targets: the classes explained toward.
        reached: bool, x' is classified as its target. p_target: the model's probability of it on x'.
        rmse: RMSE(x' - x). rho, steps: ``config.eps``, ``.steps``. unreliable: bool, RMSE < rho at T // 2.
    Examples:
        >>> r = adversarial_explanation(model, x, (y + 1) % 3, on_miss="flag")
        >>> r.x_adv.shape, r.reached.dtype, sorted(r.to_dict())[:3]
        (torch.Size([4, 1, 8, 8]), torch.bool, ['p_target', 'reached', 'rho'])
    """

    x_adv: torch.Tensor
    targets: torch.Tensor
    reached: torch.Tensor
    p_target: torch.Tensor
    rmse: torch.Tensor
    rho: float
    steps: int
    unreliable: torch.Tensor


def adversarial_explanation(
    model: nn.Module,
    x: torch.Tensor,
    targets=None,
    *,
    target=None,
    config: SearchConfig = AE_PAPER,
    on_late: str = "warn",
    on_miss: str = "warn",
    progress=None,
) -> ExplanationResult:
    r"""Adversarial explanation (Woods et al. 2019): x' = x + delta, delta descending CE(model(x'), target).

    Args:
        targets: an int (every image), a list or an (N,) tensor; or ``target=``, Captum's name.
        config: Algorithm 1's explanation mode (:func:`~advexp_lib.attacks.rmse_search`, ``EXPLAIN``, eval
            mode): ``steps`` linearly shrinking steps (path rho * overshoot) descending while RMSE(delta) <
            rho (``config.eps``), else back. Default :data:`~advexp_lib.protocols.AE_PAPER` (x' in [0, 1]).
        on_late: RMSE below rho at step T // 2: "warn" (default), "raise" (the reference) or "flag".
        on_miss: x' not classified as its target: "warn" (default, :class:`UnreachedTargetWarning`) or "flag".
        progress: a bar over the steps (default on, :func:`advexp_lib.checks.progress_enabled`).
    Returns:
        :class:`ExplanationResult`.
    Examples:
        >>> r = adversarial_explanation(model, x, (y + 1) % 3, on_late="flag", on_miss="flag")
        >>> r.x_adv.shape == x.shape, r.reached.dtype
        (True, torch.bool)
    """
    check_images(x, "x")
    check_model_input(model, x)
    check_choice(on_miss, "on_miss", ("warn", "flag"))
    with eval_mode(model), torch.no_grad():
        num_classes = check_logits(model(x[:1]), 1).shape[1]
    targets = as_labels(_one_of(targets, target), x.shape[0], num_classes, "targets").to(x.device)
    bar = _bar(progress, x.shape[0] * config.steps, "adversarial explanation")
    res = rmse_search(model, x, targets, criterion=EXPLAIN, config=config, on_late=on_late, progress=bar)
    if bar is not None:
        bar.close()
    with eval_mode(model), torch.no_grad():
        p = model(res.x_adv).softmax(1)
    reached = p.argmax(1) == targets
    missed = int((~reached).sum())
    if missed and on_miss == "warn":
        warnings.warn(
            f"{missed} of {len(reached)} adversarial explanation(s) did not reach their target class within "
            f"rho {config.eps:g} (RMSE); raise rho (config.eps) for a larger budget",
            UnreachedTargetWarning,
            stacklevel=2,
        )
    return ExplanationResult(
        x_adv=res.x_adv,
        targets=targets,
        reached=reached,
        p_target=p.gather(1, targets[:, None]).squeeze(1).detach(),
        rmse=res.distances,
        rho=float(config.eps),
        steps=config.steps,
        unreliable=res.unreliable,
    )


def _one_of(targets, target):
    """The classes given as ``targets`` or under Captum's name ``target`` (not both)."""
    if targets is not None and target is not None:
        raise InputError("target: give the classes once, as targets or as target")
    if targets is None and target is None:
        raise InputError("targets: expected the classes to explain (an int, a list or a tensor)")
    return targets if target is None else target


def _bar(progress, total: int, desc: str):
    return (
        tqdm(total=total, desc=desc, unit="img-step", unit_scale=True, leave=False)
        if progress_enabled(progress)
        else None
    )


EXPLAINERS: dict = {
    c.name: c
    for c in (Saliency, IntegratedGradients, SmoothGrad, GradCam, GuidedGradCam, Cam, AdversarialExplanation)
}
"""Method name -> :class:`Explainer` class."""
METHODS = tuple(EXPLAINERS)


def explainer(name: str, **options) -> Explainer:
    """The explainer ``name`` (one of :data:`METHODS`) with ``options`` (its constructor's arguments).

    Examples:
        >>> explainer("integrated_gradients", n_steps=64)
        IntegratedGradients(n_steps=64, ig_method='gausslegendre', internal_batch_size=None)
    """
    cls = EXPLAINERS[check_choice(name, "method", METHODS)]
    valid = set(inspect.signature(cls).parameters)
    unknown = set(options) - valid
    if unknown:
        raise InputError(
            f"options: unknown option(s) {sorted(unknown)} for method {name!r}; "
            f"valid: {sorted(valid) or 'none'}"
        )
    return cls(**options)


def as_explainer(method, **options) -> Explainer:
    """``method`` itself if it is an :class:`Explainer` (then no ``options``), else :func:`explainer`.

    Examples:
        >>> as_explainer("cam", upsample=False)
        Cam(interpolate_mode='bilinear', upsample=False)
    """
    if isinstance(method, Explainer):
        if options:
            raise InputError(
                f"options: {sorted(options)} given with an explainer object {method!r}; set them in it"
            )
        return method
    return explainer(method, **options)


def attribute(
    model: nn.Module,
    x: torch.Tensor,
    targets=None,
    *,
    target=None,
    method="saliency",
    differentiable: bool = False,
    **options,
) -> torch.Tensor:
    """``as_explainer(method, **options).attribute(model, x, targets, differentiable)`` (or ``target=``).

    Examples:
        >>> attribute(model, x, y, method="integrated_gradients", n_steps=8).shape
        torch.Size([4, 1, 8, 8])
    """
    return as_explainer(method, **options).attribute(model, x, _one_of(targets, target), differentiable)


def class_activation_maps(
    model: nn.Module, x: torch.Tensor, *, upsample: bool = True, interpolate_mode: str = "bilinear"
) -> torch.Tensor:
    r"""CAM of every class (Zhou et al. 2016): N x num_classes x h x w, differentiable.

    CAM_c = sum_k W_ck A_k, so logit_c = mean_{hw} CAM_c + b_c (A: N x K x h x w last conv features, W: C x K
    classifier; nets as :class:`Cam`). Hand-written (Captum has none); model mode untouched. ``upsample``
    (default True): to H x W; ``interpolate_mode``: "bilinear" (default), "nearest", "bicubic" or "area".

    Examples:
        >>> class_activation_maps(cam_model, x, upsample=False).shape
        torch.Size([4, 3, 2, 2])
    """
    check_images(x, "x")
    feats, weight = _cam_parts(model, x)
    maps = torch.einsum("ck,nkhw->nchw", weight, feats)
    if upsample and maps.shape[-2:] != x.shape[-2:]:
        maps = _upsample(maps, x.shape[-2:], interpolate_mode)
    return maps


def gradcam_layer(model: nn.Module) -> nn.Module:
    """Grad-CAM's layer: ``model.gradcam_layer`` if set, else the last ``nn.Conv2d`` (``InputError`` if none).

    Examples:
        >>> gradcam_layer(model)
        Conv2d(16, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    """
    named = getattr(type(model), "gradcam_layer", None)
    if named is not None:
        return model.gradcam_layer
    last = None
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            last = m
    if last is None:
        raise InputError(
            f"model: {type(model).__name__} has no nn.Conv2d layer; grad_cam and "
            f"guided_grad_cam need a convolutional network"
        )
    return last


def _resolve_layer(model, layer):
    if layer is None:
        return gradcam_layer(model)
    if isinstance(layer, nn.Module):
        return layer
    modules = dict(model.named_modules())
    if layer not in modules:
        raise InputError(f"layer: the model has no module named {layer!r}")
    return modules[layer]


def _finest_coarse_layer(model, x, grid: tuple[int, int]) -> str | None:
    """Name of the last conv or stage whose 4-d output grid at this input is larger than ``grid``."""
    sizes, hooks = {}, []
    for name, m in model.named_modules():
        if name and (isinstance(m, nn.Conv2d) or len(list(m.children())) > 0):
            hooks.append(m.register_forward_hook(lambda mod, i, out, n=name: sizes.__setitem__(n, out)))
    try:
        with torch.no_grad():
            model(x[:1].detach())
    finally:
        for h in hooks:
            h.remove()
    good = [
        n
        for n, out in sizes.items()
        if isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[-2:].numel() > grid[0] * grid[1]
    ]
    return good[-1] if good else None


def integrated_gradients_of(
    fn, x: torch.Tensor, baseline: torch.Tensor, *, n_steps: int = 50, ig_method: str = "gausslegendre"
) -> torch.Tensor:
    r"""Differentiable IG of a per-example scalar function ``fn(z) -> (N,)`` from ``baseline`` to ``x``.

    IG(x) = (x - b) * sum_k w_k  d fn(b + a_k (x - b)) / dx, with Captum's nodes a_k and weights w_k for
    ``ig_method`` (:func:`quadrature`); ``create_graph=True``: gradients flow to ``x``, ``baseline``, weights.

    Examples:
        >>> square = lambda z: z.flatten(1).pow(2).sum(1)
        >>> ig = integrated_gradients_of(square, x, torch.zeros_like(x), n_steps=20)
        >>> torch.allclose(ig.flatten(1).sum(1), square(x), rtol=1e-3)  # completeness
        True
    """
    check_positive(n_steps, "n_steps", integer=True)
    alphas, weights = quadrature(ig_method, n_steps)
    diff = x - baseline
    total = torch.zeros_like(x)
    with torch.enable_grad():
        for a, w in zip(alphas, weights):
            z = baseline + a * diff
            if not z.requires_grad:  # nothing upstream needs a graph: still need d fn / dz
                z = z.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(fn(z).sum(), z, create_graph=True)
            total = total + w * g
    return diff * total


IG_METHODS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")
"""The quadratures of ``captum.attr.IntegratedGradients(method=...)``, which :func:`quadrature` reproduces."""


def quadrature(method: str, n: int) -> tuple[list[float], list[float]]:
    r"""Nodes a_k in [0, 1] and weights w_k of Captum's IG ``method`` with ``n`` points (private in Captum).

    "gausslegendre": a_k = (1 + t_k) / 2, w_k = v_k / 2, (t_k, v_k) = numpy's ``leggauss(n)`` on [-1, 1];
    "riemann_left" / "riemann_right" / "riemann_middle": w_k = 1/n at a_k = k/n, (k+1)/n, (k+1/2)/n;
    "riemann_trapezoid": a_k = k/(n-1), w_k = 1/n, end weights halved (sum 1 - 1/n). Riemann rules: n >= 2.

    Examples:
        >>> a, w = quadrature("gausslegendre", 2)
        >>> [round(v, 4) for v in a], [round(v, 4) for v in w]
        ([0.2113, 0.7887], [0.5, 0.5])
    """
    check_choice(method, "ig_method", IG_METHODS)
    check_positive(n, "n_steps", integer=True)
    if method == "gausslegendre":
        t, v = np.polynomial.legendre.leggauss(n)
        return [float(a) for a in (1 + t) / 2], [float(w) for w in v / 2]
    if n < 2:
        raise InputError(f"n_steps: Captum's Riemann rules need at least 2 steps, got {n}")
    k = np.arange(n)
    nodes = {
        "riemann_left": k / n,
        "riemann_right": (k + 1) / n,
        "riemann_middle": (k + 0.5) / n,
        "riemann_trapezoid": k / (n - 1),
    }[method]
    weights = np.full(n, 1 / n)
    if method == "riemann_trapezoid":
        weights[[0, -1]] /= 2
    return [float(a) for a in nodes], [float(w) for w in weights]


def _cam_parts(model, x):
    """(A, W): the features before the global average pooling and the classifier's weights (C, K)."""
    if isinstance(model, WithNormalization):
        return _cam_parts(model.net, model.normalize(x))
    if isinstance(model, CamCNN):
        return model.features(model.normalize(x)), model.classifier.weight
    if isinstance(model, PreActResNet):  # its features() normalizes itself; 1x1 conv classifier
        return model.features(x), model.classifier.weight.flatten(1)
    return _pooled_linear_parts(model, x)


def _pooled_linear_parts(model, x):
    """(A, W) of conv -> nn.AdaptiveAvgPool2d(1) -> nn.Linear; refused unless logits = mean_hw(A) W^T + b."""
    name = type(model).__name__
    pools = [m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not pools or not linears:
        raise InputError(
            f"model: CAM needs conv features -> global average pooling -> a linear classifier, but {name} "
            f"has no {'nn.AdaptiveAvgPool2d' if not pools else 'nn.Linear'}; use GradCam instead"
        )
    pool, fc = pools[-1], linears[-1]
    caught = {}
    hook = pool.register_forward_hook(lambda m, inputs, out: caught.__setitem__("a", inputs[0]))
    try:
        logits = model(x)
    finally:
        hook.remove()
    a = caught.get("a")
    if a is None or a.dim() != 4 or a.shape[1] != fc.in_features:
        raise InputError(
            f"model: CAM needs the global average pooling's features to feed the last nn.Linear of {name}; "
            f"here they do not ({None if a is None else tuple(a.shape)} into {fc.in_features} inputs)"
        )
    pooled = a.mean(dim=(2, 3)) @ fc.weight.T + (fc.bias if fc.bias is not None else 0.0)
    if not torch.allclose(pooled, logits, rtol=1e-4, atol=1e-5 * (1 + logits.abs().max().item())):
        raise InputError(
            f"model: CAM needs logits = linear(global average of the last features), but {name} changes them "
            f"between its pooling and its classifier; use GradCam instead"
        )
    return a, fc.weight


def _upsample(maps, size, mode):
    check_choice(mode, "interpolate_mode", INTERPOLATE_MODES)
    return LayerAttribution.interpolate(maps, tuple(size), interpolate_mode=mode)
