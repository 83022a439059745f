"""Attribution maps of image classifiers: Captum's methods, CAM, and a differentiable IG.

:func:`attribute` is one entry point for every map the book shows. All methods
but CAM are Captum's (``Saliency``, ``IntegratedGradients``, ``NoiseTunnel``,
``LayerGradCam``, ``GuidedGradCam``); CAM (Zhou et al. 2016, used by Boopathy
et al. 2020) is hand-written because Captum has no CAM. With
``differentiable=True`` the map keeps its autograd graph (``create_graph``) so
attacks and training losses can differentiate through it; where Captum cannot
keep the graph (Integrated Gradients) the same quadrature is written out here
(:func:`integrated_gradients_of`).

Shapes: "saliency", "integrated_gradients", "smoothgrad" and "guided_grad_cam"
return maps shaped like ``x`` (N x C x H x W); "grad_cam" and "cam" return
N x 1 x H x W (one map per image, upsampled from the last conv layer's grid).
"""

from __future__ import annotations

import warnings

import torch
from captum.attr import (
    GuidedGradCam,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Saliency,
)
from captum.attr._utils.approximation_methods import approximation_parameters
from torch import nn

from .checks import InputError, check_choice, check_images, check_labels, check_logits, check_positive
from .models import CamCNN, PreActResNet, eval_mode

__all__ = [
    "METHODS",
    "MAP_SHAPED_LIKE_X",
    "DIFFERENTIABLE",
    "OPTIONS",
    "attribute",
    "class_activation_maps",
    "gradcam_layer",
    "integrated_gradients_of",
]

METHODS = ("saliency", "integrated_gradients", "smoothgrad", "grad_cam", "guided_grad_cam", "cam")
MAP_SHAPED_LIKE_X = ("saliency", "integrated_gradients", "smoothgrad", "guided_grad_cam")
DIFFERENTIABLE = ("saliency", "integrated_gradients", "grad_cam", "cam")
OPTIONS = {  # method -> the options attribute() accepts for it
    "saliency": {"abs"},
    "integrated_gradients": {"n_steps", "ig_method", "internal_batch_size"},
    "smoothgrad": {"nt_samples", "stdevs", "abs", "nt_samples_batch_size"},
    "grad_cam": {"relu", "interpolate_mode", "upsample"},
    "guided_grad_cam": {"interpolate_mode"},
    "cam": {"interpolate_mode", "upsample"},
}


def attribute(
    model: nn.Module, x: torch.Tensor, targets, *, method: str, differentiable: bool = False, **options
) -> torch.Tensor:
    r"""Attribution map of ``model`` at images ``x`` for class(es) ``targets``.

    Methods (f_t = logit of class t, x in [0, 1] pixel space):

    - "saliency": |d f_t / dx| (Captum ``Saliency``). Option ``abs`` (default
      True; False keeps the signed gradient).
    - "integrated_gradients": (x - 0) * \int_0^1 d f_t(a x) / dx da with the
      zero (black) baseline (Captum ``IntegratedGradients``). Options
      ``n_steps`` (default 50), ``ig_method`` (Captum's quadrature, default
      "gausslegendre"), ``internal_batch_size`` (default None).
    - "smoothgrad": mean over ``nt_samples`` (default 25) of saliency at
      x + N(0, stdevs^2) (Captum ``NoiseTunnel`` over ``Saliency``);
      ``stdevs`` default 0.15 (15% of the [0, 1] range, as Smilkov et al.
      recommend), ``abs`` default True. Noise comes from torch's global RNG.
    - "grad_cam": Captum ``LayerGradCam`` on the last ``nn.Conv2d`` of the
      model (:func:`gradcam_layer`), sum_k mean_{hw}(d f_t / dA_k) A_k,
      upsampled to H x W with ``LayerAttribution.interpolate``. Options
      ``relu`` (default True, as in the Grad-CAM paper),
      ``interpolate_mode`` (default "bilinear") and ``upsample`` (default
      True; False returns the layer's grid).
    - "guided_grad_cam": Captum ``GuidedGradCam`` (guided backprop x upsampled
      Grad-CAM) on the same layer; guided backprop overrides ``nn.ReLU``
      modules only. Option ``interpolate_mode`` (default "nearest", Captum's).
    - "cam": hand-written CAM for conv -> global-average-pool -> linear nets
      (:func:`class_activation_maps`): CAM_t = sum_k W_tk A_k, upsampled.
      Options ``interpolate_mode`` (default "bilinear"), ``upsample`` (default
      True; False returns the feature-grid map).

    Args:
        model: classifier taking raw [0, 1] pixels, returning N x C logits.
        x: images, float N x C x H x W in [0, 1].
        targets: class per image, an int (same class for all) or an integer
            tensor of shape (N,) in [0, C).
        method: one of :data:`METHODS`.
        differentiable: keep the autograd graph so the map can be
            differentiated w.r.t. ``x`` and the model's weights (default
            False: a detached map). Supported for :data:`DIFFERENTIABLE`;
            "smoothgrad" and "guided_grad_cam" raise. Saliency then uses
            ``torch.autograd.grad(create_graph=True)``, Grad-CAM passes
            ``create_graph`` to Captum, IG uses Captum's quadrature nodes and
            weights in an explicit sum (Captum's IG detaches).
        options: method options listed above; unknown ones raise.
    Returns:
        N x C x H x W for :data:`MAP_SHAPED_LIKE_X`, N x 1 x H x W for
        "grad_cam" and "cam". The model is in eval mode during the call and
        restored to its previous mode after.
    """
    check_choice(method, "method", METHODS)
    check_images(x, "x")
    unknown = set(options) - OPTIONS[method]
    if unknown:
        raise InputError(
            f"options: unknown option(s) {sorted(unknown)} for method {method!r}; "
            f"valid: {sorted(OPTIONS[method]) or 'none'}"
        )
    if differentiable and method not in DIFFERENTIABLE:
        raise InputError(
            f"differentiable: method {method!r} cannot keep the autograd graph "
            f"(Captum detaches it); differentiable methods: {', '.join(DIFFERENTIABLE)}"
        )
    with eval_mode(model):
        with torch.no_grad():
            logits = model(x[:1])
        check_logits(logits, 1)
        targets = _targets(targets, x.shape[0], logits.shape[1], x.device)
        fn = _DISPATCH[method]
        # a fresh leaf requiring grad: Captum needs input gradients and warns if it has to switch them on
        out = fn(
            model,
            x if differentiable else x.detach().requires_grad_(True),
            targets,
            differentiable,
            **options,
        )
    return out if differentiable else out.detach()


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


def _targets(targets, n, num_classes, device) -> torch.Tensor:
    if isinstance(targets, bool):
        raise InputError(f"targets: expected a class index or a tensor of them, got {targets!r}")
    if isinstance(targets, int):
        if not 0 <= targets < num_classes:
            raise InputError(f"targets: class index must lie in [0, {num_classes - 1}], got {targets}")
        return torch.full((n,), targets, dtype=torch.long, device=device)
    check_labels(targets, n, num_classes, "targets")
    return targets.to(device)


def _saliency(model, x, target, differentiable, abs=True):
    if differentiable:
        x = x if x.requires_grad else x.detach().requires_grad_(True)
        with torch.enable_grad():
            out = model(x).gather(1, target[:, None]).sum()
            (g,) = torch.autograd.grad(out, x, create_graph=True)
        return g.abs() if abs else g
    return Saliency(model).attribute(x, target=target, abs=abs)


def _integrated_gradients(
    model, x, target, differentiable, n_steps=50, ig_method="gausslegendre", internal_batch_size=None
):
    check_positive(n_steps, "n_steps", integer=True)
    if not differentiable:
        return IntegratedGradients(model).attribute(
            x,
            baselines=torch.zeros_like(x),
            target=target,
            n_steps=n_steps,
            method=ig_method,
            internal_batch_size=internal_batch_size,
        )

    def fn(z):
        return model(z).gather(1, target[:, None]).squeeze(1)

    return integrated_gradients_of(fn, x, torch.zeros_like(x), n_steps=n_steps, ig_method=ig_method)


def integrated_gradients_of(
    fn, x: torch.Tensor, baseline: torch.Tensor, *, n_steps: int = 50, ig_method: str = "gausslegendre"
) -> torch.Tensor:
    r"""Differentiable IG of a per-example scalar function ``fn`` from ``baseline`` to ``x``.

        IG(x) = (x - b) * sum_k w_k  d fn(b + a_k (x - b)) / dx

    with Captum's quadrature nodes a_k and weights w_k for ``ig_method``
    (so it matches ``captum.attr.IntegratedGradients``), computed with
    ``create_graph=True``: gradients flow to ``x``, ``baseline`` and weights.
    Used by attribute(..., differentiable=True), the top-k attribution attack
    and IG-NORM training. ``fn(z) -> (N,)``.
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


def _smoothgrad(
    model, x, target, differentiable, nt_samples=25, stdevs=0.15, abs=True, nt_samples_batch_size=None
):
    check_positive(nt_samples, "nt_samples", integer=True)
    check_positive(stdevs, "stdevs")
    return NoiseTunnel(Saliency(model)).attribute(
        x,
        nt_type="smoothgrad",
        nt_samples=nt_samples,
        stdevs=stdevs,
        nt_samples_batch_size=nt_samples_batch_size,
        target=target,
        abs=abs,
    )


def _grad_cam(model, x, target, differentiable, relu=True, interpolate_mode="bilinear", upsample=True):
    x = x if (not differentiable or x.requires_grad) else x.detach().requires_grad_(True)
    kwargs = {"grad_kwargs": {"create_graph": True}} if differentiable else {}
    with torch.enable_grad():
        maps = LayerGradCam(model, gradcam_layer(model)).attribute(
            x, target=target, relu_attributions=relu, **kwargs
        )
    return _upsample(maps, x.shape[-2:], interpolate_mode) if upsample else maps


def _guided_grad_cam(model, x, target, differentiable, interpolate_mode="nearest"):
    with warnings.catch_warnings():  # Captum announces its (temporary) ReLU backward hooks on every call
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        return GuidedGradCam(model, gradcam_layer(model)).attribute(
            x, target=target, interpolate_mode=interpolate_mode
        )


def _cam(model, x, target, differentiable, interpolate_mode="bilinear", upsample=True):
    with torch.set_grad_enabled(differentiable):
        feats, weight = _cam_parts(model, x)
        # only the requested class: A weighted by W_t, (N, K, h, w) x (N, K) -> (N, 1, h, w)
        maps = torch.einsum("nk,nkhw->nhw", weight[target], feats)[:, None]
        if upsample and maps.shape[-2:] != x.shape[-2:]:
            maps = _upsample(maps, x.shape[-2:], interpolate_mode)
    return maps


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
    check_choice(mode, "interpolate_mode", ("nearest", "bilinear", "bicubic", "area"))
    return LayerAttribution.interpolate(maps, tuple(size), interpolate_mode=mode)


_DISPATCH = {
    "saliency": _saliency,
    "integrated_gradients": _integrated_gradients,
    "smoothgrad": _smoothgrad,
    "grad_cam": _grad_cam,
    "guided_grad_cam": _guided_grad_cam,
    "cam": _cam,
}
