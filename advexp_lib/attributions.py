"""Explanation methods as small classes: Captum's attributions, CAM, and the adversarial explanation.

Each method is an :class:`Explainer` holding its options, with one call,
``attribute(model, x, target, differentiable=False)``, and two class
attributes saying whether its map is shaped like ``x`` and whether it can keep
its autograd graph. :func:`explainer` builds one from its name; :func:`attribute`
is the one-line form. All but CAM and the adversarial explanation wrap
Captum (``Saliency``, ``IntegratedGradients``, ``NoiseTunnel``,
``LayerGradCam``, ``GuidedGradCam``); CAM (Zhou et al. 2016, used by Boopathy
et al. 2020) is hand-written because Captum has none, and the adversarial
explanation is Woods et al.'s search (:mod:`advexp_lib.attacks.search`).
Where Captum cannot keep the graph (Integrated Gradients) the same
quadrature is written out here (:func:`integrated_gradients_of`).

Shapes: maps shaped like ``x`` are N x C x H x W; Grad-CAM and CAM give
N x 1 x H x W (one map per image, upsampled from the last conv layer's grid).
"""

from __future__ import annotations

import inspect
import warnings
from typing import ClassVar

import torch
from captum.attr import GuidedGradCam as _CaptumGuidedGradCam
from captum.attr import IntegratedGradients as _CaptumIntegratedGradients
from captum.attr import LayerAttribution, LayerGradCam, NoiseTunnel
from captum.attr import Saliency as _CaptumSaliency
from captum.attr._utils.approximation_methods import approximation_parameters
from torch import nn

from .attacks.search import AE_PAPER, EXPLAIN, SearchConfig, rmse_search
from .checks import InputError, check_choice, check_images, check_labels, check_logits, check_positive
from .models import CamCNN, PreActResNet, eval_mode

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
    "EXPLAINERS",
    "METHODS",
    "explainer",
    "as_explainer",
    "attribute",
    "class_activation_maps",
    "gradcam_layer",
    "integrated_gradients_of",
]

INTERPOLATE_MODES = ("nearest", "bilinear", "bicubic", "area")


class Explainer:
    """An explanation method: its options, set once, and :meth:`attribute`.

    Subclasses set ``name``, ``shaped_like_x`` (the map is N x C x H x W like
    ``x``; else N x 1 x H x W) and ``differentiable`` (:meth:`attribute` can
    keep the autograd graph), and implement ``_attribute``.

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
        """The map of ``model`` at images ``x`` for class(es) ``target``.

        Args:
            model: classifier taking raw [0, 1] pixels, returning N x C logits.
            x: images, float N x C x H x W in [0, 1].
            target: class per image: an int (the same class for all) or an
                integer tensor of shape (N,) in [0, C).
            differentiable: keep the autograd graph so the map can be
                differentiated w.r.t. ``x`` and the model's weights (default
                False: a detached map); methods whose ``differentiable`` is
                False raise.
        Returns:
            The map (see ``shaped_like_x``). The model is in eval mode during
            the call and restored to its previous mode after.
        """
        check_images(x, "x")
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
            targets = _targets(target, x.shape[0], logits.shape[1], x.device)
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
    """|d f_t / dx| (Captum ``Saliency``), f_t the logit of class t.

    Args:
        abs: take the absolute value. Default: True (False keeps the signed gradient).

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
    r"""(x - 0) * \int_0^1 d f_t(a x) / dx da, the zero (black) baseline (Captum ``IntegratedGradients``).

    Differentiable through :func:`integrated_gradients_of` (the same quadrature, written out).

    Args:
        n_steps: quadrature nodes. Default: 50.
        ig_method: Captum's quadrature. Default: "gausslegendre".
        internal_batch_size: Captum's batching of the nodes. Default: None (all at once).

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

    Noise comes from torch's global RNG. Not differentiable (Captum detaches).

    Args:
        nt_samples: noisy copies. Default: 25.
        stdevs: noise std, in [0, 1] pixel units. Default: 0.15 (15% of the range, as Smilkov et al. advise).
        abs: absolute saliency. Default: True.
        nt_samples_batch_size: Captum's batching. Default: None.

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


class GradCam(Explainer):
    r"""Grad-CAM (Selvaraju et al. 2017): sum_k mean_{hw}(d f_t / dA_k) A_k (Captum ``LayerGradCam``).

    A is the output of :func:`gradcam_layer`.

    Args:
        relu: ReLU of the map, as in the Grad-CAM paper. Default: True.
        interpolate_mode: upsampling to H x W (``LayerAttribution.interpolate``). Default: "bilinear".
        upsample: False returns the layer's grid. Default: True.

    Examples:
        >>> GradCam().attribute(model, x, y).shape
        torch.Size([4, 1, 8, 8])
    """

    name, shaped_like_x, differentiable = "grad_cam", False, True

    def __init__(self, relu: bool = True, interpolate_mode: str = "bilinear", upsample: bool = True):
        self.relu, self.upsample = bool(relu), bool(upsample)
        self.interpolate_mode = check_choice(interpolate_mode, "interpolate_mode", INTERPOLATE_MODES)

    def _attribute(self, model, x, targets, differentiable):
        x = x if (not differentiable or x.requires_grad) else x.detach().requires_grad_(True)
        kwargs = {"grad_kwargs": {"create_graph": True}} if differentiable else {}
        with torch.enable_grad():
            maps = LayerGradCam(model, gradcam_layer(model)).attribute(
                x, target=targets, relu_attributions=self.relu, **kwargs
            )
        return _upsample(maps, x.shape[-2:], self.interpolate_mode) if self.upsample else maps


class GuidedGradCam(Explainer):
    """Guided backprop x upsampled Grad-CAM on :func:`gradcam_layer` (Captum ``GuidedGradCam``).

    Guided backprop overrides ``nn.ReLU`` modules only. Not differentiable.

    Args:
        interpolate_mode: Default: "nearest" (Captum's).

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
    r"""CAM (Zhou et al. 2016) of the target class: CAM_t = sum_k W_tk A_k (:func:`class_activation_maps`).

    For conv -> global-average-pool -> linear networks; hand-written (Captum has no CAM).

    Args:
        interpolate_mode: Default: "bilinear".
        upsample: False returns the feature-grid map (Boopathy et al.'s scale). Default: True.

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
    """The adversarial explanation's change, x' - x (Woods et al. 2019), used as a map shaped like x.

    x' is the explanation-mode RMSE search toward the target
    (:func:`~advexp_lib.attacks.search.rmse_search` with the
    :data:`~advexp_lib.attacks.search.EXPLAIN` criterion), model in eval mode;
    explanations that meet their budget late are not flagged here
    (:func:`adversarial_explanation` reports them).

    Args:
        config: the search. Default: ``AE_PAPER``, the reference's explanation protocol.

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


def adversarial_explanation(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    *,
    config: SearchConfig = AE_PAPER,
    on_late: str = "warn",
) -> torch.Tensor:
    r"""Adversarial explanation (Woods et al. 2019): x' = x + delta, delta descending CE(model(x'), target).

    The explanation mode of Algorithm 1 (:func:`advexp_lib.attacks.rmse_search`
    with :data:`~advexp_lib.attacks.search.EXPLAIN`), with the model in eval
    mode: a path of length rho * overshoot in ``steps`` linearly shrinking
    steps, descending the target's cross-entropy while RMSE(delta) < rho
    (rho = ``config.eps``) and stepping back toward x otherwise. On a robust
    network the result shows what the network needs to see to call the image
    ``target``. An explanation whose RMSE has not reached rho by step T // 2
    is unreliable (the search barely moved, e.g. on a saturated network): the
    reference implementation raises there.

    Args:
        targets: (N,) class per image.
        config: the search. Default: :data:`~advexp_lib.attacks.search.AE_PAPER`
            (the reference's explanation protocol; no momentum, no clipping).
        on_late: "warn" (default: a ``LateCriterionWarning``), "raise" (the
            reference's behaviour) or "flag" (silent) for unreliable explanations.
    Returns:
        x' (N, C, H, W), detached.

    Examples:
        >>> x_ae = adversarial_explanation(model, x, (y + 1) % 3, on_late="flag")
        >>> x_ae.shape == x.shape
        True
    """
    check_images(x, "x")
    with eval_mode(model), torch.no_grad():
        num_classes = check_logits(model(x[:1]), 1).shape[1]
    check_labels(targets, x.shape[0], num_classes, "targets")
    return rmse_search(model, x, targets, criterion=EXPLAIN, config=config, on_late=on_late).x_adv


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
    model: nn.Module, x: torch.Tensor, targets, *, method="saliency", differentiable: bool = False, **options
) -> torch.Tensor:
    """``as_explainer(method, **options).attribute(model, x, targets, differentiable)`` in one call.

    Examples:
        >>> attribute(model, x, y, method="integrated_gradients", n_steps=8).shape
        torch.Size([4, 1, 8, 8])
    """
    return as_explainer(method, **options).attribute(model, x, targets, differentiable)


def class_activation_maps(
    model: nn.Module, x: torch.Tensor, *, upsample: bool = True, interpolate_mode: str = "bilinear"
) -> torch.Tensor:
    r"""CAM of every class (Zhou et al. 2016): N x num_classes x h x w, differentiable.

    For a conv -> global average pooling -> linear network with last conv
    features A (N x K x h x w) and classifier weights W (C x K),

        CAM_c = sum_k W_ck A_k,    so   logit_c = mean_{hw} CAM_c + b_c.

    Supported: :class:`~advexp_lib.models.CamCNN` (A = features(normalize(x)),
    classifier nn.Linear) and :class:`~advexp_lib.models.PreActResNet`
    (A = features(x), which normalizes itself; 1 x 1 conv classifier).
    Hand-written: Captum has no CAM. The caller controls eval/train mode.

    Args:
        upsample: resize to the input's H x W with Captum's
            ``LayerAttribution.interpolate`` (default True).
        interpolate_mode: "bilinear" (default), "nearest", "bicubic" or "area".

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
    """Grad-CAM's layer: ``model.gradcam_layer`` where the model names one, else its last ``nn.Conv2d``.

    The last ``nn.Conv2d`` in ``model.modules()`` order is the last feature map of
    a plain CNN; a network whose classifier is a 1 x 1 convolution after pooling
    (the pre-activation ResNet, :class:`advexp_lib.models.PreActResNet`) names
    its last spatial layer instead, whose output Grad-CAM weighs. Raises if neither.

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


def integrated_gradients_of(
    fn, x: torch.Tensor, baseline: torch.Tensor, *, n_steps: int = 50, ig_method: str = "gausslegendre"
) -> torch.Tensor:
    r"""Differentiable IG of a per-example scalar function ``fn`` from ``baseline`` to ``x``.

        IG(x) = (x - b) * sum_k w_k  d fn(b + a_k (x - b)) / dx

    with Captum's quadrature nodes a_k and weights w_k for ``ig_method``
    (so it matches ``captum.attr.IntegratedGradients``), computed with
    ``create_graph=True``: gradients flow to ``x``, ``baseline`` and weights.
    Used by :class:`IntegratedGradients` (differentiable), the top-k
    attribution attack and IG-NORM training. ``fn(z) -> (N,)``.

    Examples:
        >>> square = lambda z: z.flatten(1).pow(2).sum(1)
        >>> ig = integrated_gradients_of(square, x, torch.zeros_like(x), n_steps=20)
        >>> torch.allclose(ig.flatten(1).sum(1), square(x), rtol=1e-3)  # completeness
        True
    """
    check_positive(n_steps, "n_steps", integer=True)
    step_fn, alpha_fn = approximation_parameters(ig_method)
    weights, alphas = step_fn(n_steps), alpha_fn(n_steps)
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


def _targets(targets, n, num_classes, device) -> torch.Tensor:
    if isinstance(targets, bool):
        raise InputError(f"targets: expected a class index or a tensor of them, got {targets!r}")
    if isinstance(targets, int):
        if not 0 <= targets < num_classes:
            raise InputError(f"targets: class index must lie in [0, {num_classes - 1}], got {targets}")
        return torch.full((n,), targets, dtype=torch.long, device=device)
    check_labels(targets, n, num_classes, "targets")
    return targets.to(device)


def _cam_parts(model, x):
    if isinstance(model, CamCNN):
        return model.features(model.normalize(x)), model.classifier.weight
    if isinstance(model, PreActResNet):  # its features() normalizes itself; 1x1 conv classifier
        return model.features(x), model.classifier.weight.flatten(1)
    raise InputError(
        f"model: CAM needs a conv -> global-average-pool -> linear network (CamCNN or "
        f"PreActResNet), got {type(model).__name__}; use method='grad_cam' instead"
    )


def _upsample(maps, size, mode):
    check_choice(mode, "interpolate_mode", INTERPOLATE_MODES)
    return LayerAttribution.interpolate(maps, tuple(size), interpolate_mode=mode)
