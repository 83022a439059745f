"""Explanations of image classifiers: Captum attributions, CAM, and how attacks drag them.

:func:`attribute` is one entry point for every map the book shows. All methods
but CAM are Captum's (``Saliency``, ``IntegratedGradients``, ``NoiseTunnel``,
``LayerGradCam``, ``GuidedGradCam``); CAM (Zhou et al. 2016, used by Boopathy
et al. 2020) is hand-written because Captum has no CAM. With
``differentiable=True`` the map keeps its autograd graph (``create_graph``) so
attacks and training losses can differentiate through it; where Captum cannot
keep the graph (Integrated Gradients) the same quadrature is written out here.

Shapes: "saliency", "integrated_gradients", "smoothgrad" and "guided_grad_cam"
return maps shaped like ``x`` (N x C x H x W); "grad_cam" and "cam" return
N x 1 x H x W (one map per image, upsampled from the last conv layer's grid).

:func:`explanation_drag` measures the Woods et al. (2019) effect "explanations
fail under attack": after a small targeted attack the attacked image's map
follows the attacked class although the image looks unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .checks import InputError, check_choice, check_images, check_labels, check_logits, check_positive
from .models import eval_mode

__all__ = ["METHODS", "MAP_SHAPED_LIKE_X", "DIFFERENTIABLE", "attribute", "class_activation_maps",
           "last_conv_layer", "integrated_gradients_of",
           "plot_attributions", "DragResult", "explanation_drag", "plot_drag",
           "adversarial_explanation", "adversarial_explanation_panel"]

METHODS = ("saliency", "integrated_gradients", "smoothgrad", "grad_cam", "guided_grad_cam", "cam")
MAP_SHAPED_LIKE_X = ("saliency", "integrated_gradients", "smoothgrad", "guided_grad_cam")
DIFFERENTIABLE = ("saliency", "integrated_gradients", "grad_cam", "cam")
_OPTIONS = {
    "saliency": {"abs"},
    "integrated_gradients": {"n_steps", "ig_method", "internal_batch_size"},
    "smoothgrad": {"nt_samples", "stdevs", "abs", "nt_samples_batch_size"},
    "grad_cam": {"relu", "interpolate_mode"},
    "guided_grad_cam": {"interpolate_mode"},
    "cam": {"interpolate_mode", "upsample"},
}


def attribute(model: nn.Module, x: torch.Tensor, target, *, method: str, differentiable: bool = False,
              **options) -> torch.Tensor:
    r"""Attribution map of ``model`` at images ``x`` for class(es) ``target``.

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
      model (:func:`last_conv_layer`), sum_k mean_{hw}(d f_t / dA_k) A_k,
      upsampled to H x W with ``LayerAttribution.interpolate``. Options
      ``relu`` (default True, as in the Grad-CAM paper) and
      ``interpolate_mode`` (default "bilinear").
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
        target: class per image, an int (same class for all) or an integer
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
    unknown = set(options) - _OPTIONS[method]
    if unknown:
        raise InputError(f"options: unknown option(s) {sorted(unknown)} for method {method!r}; "
                         f"valid: {sorted(_OPTIONS[method]) or 'none'}")
    if differentiable and method not in DIFFERENTIABLE:
        raise InputError(f"differentiable: method {method!r} cannot keep the autograd graph "
                         f"(Captum detaches it); differentiable methods: {', '.join(DIFFERENTIABLE)}")
    with eval_mode(model):
        with torch.no_grad():
            logits = model(x[:1])
        check_logits(logits, 1)
        target = _targets(target, x.shape[0], logits.shape[1], x.device)
        fn = _DISPATCH[method]
        # a fresh leaf requiring grad: Captum needs input gradients and warns if it has to switch them on
        out = fn(model, x if differentiable else x.detach().requires_grad_(True), target, differentiable,
                 **options)
    return out if differentiable else out.detach()


def class_activation_maps(model: nn.Module, x: torch.Tensor, *, upsample: bool = True,
                          interpolate_mode: str = "bilinear") -> torch.Tensor:
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


def last_conv_layer(model: nn.Module) -> nn.Conv2d:
    """The last ``nn.Conv2d`` in ``model.modules()`` order (Grad-CAM's layer); raises if none."""
    last = None
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            last = m
    if last is None:
        raise InputError(f"model: {type(model).__name__} has no nn.Conv2d layer; grad_cam and "
                         f"guided_grad_cam need a convolutional network")
    return last


def plot_attributions(x: torch.Tensor, maps, titles=None, *, row_labels=None, cmap: str | None = None,
                      overlay: bool = True, alpha: float = 0.6, scale: float = 1.6):
    """Grid of images and their attribution maps -> matplotlib Figure.

    Column 0 is the image, then one column per entry of ``maps``; one row per image.
    Signed maps (any negative value) use a diverging colormap ("bwr") centred at
    0 with symmetric limits; non-negative maps a magnitude colormap ("magma").
    Multi-channel maps are summed over channels for display. Limits are per
    panel (max |map|), so panels show where, not how much; compare values
    with the metrics instead.

    Args:
        x: images N x C x H x W in [0, 1].
        maps: a tensor (one map set) or a list of tensors, each N x C' x H x W.
        titles: column titles for the maps (default "map 0", "map 1" ...).
        row_labels: optional per-row labels (e.g. "pred 3").
        cmap: force one colormap for all maps.
        overlay: draw the map translucent over the grayscale image (default True).
    """
    import matplotlib.pyplot as plt

    from .plotting import to_display

    check_images(x, "x")
    maps = [maps] if isinstance(maps, torch.Tensor) else list(maps)
    n = x.shape[0]
    for i, m in enumerate(maps):
        if not isinstance(m, torch.Tensor) or m.dim() != 4 or m.shape[0] != n or m.shape[-2:] != x.shape[-2:]:
            got = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
            raise InputError(f"maps[{i}]: expected N x C x H x W = ({n}, *, {x.shape[2]}, {x.shape[3]}), got {got}")
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
            a = m[r].detach().float().cpu().sum(0).numpy()
            signed = (a < 0).any()
            lim = float(abs(a).max()) or 1.0
            ax = axes[r][c]
            if overlay:
                ax.imshow(gray, cmap="gray", vmin=0, vmax=1)
            ax.imshow(a, cmap=cmap or ("bwr" if signed else "magma"), vmin=-lim if signed else 0, vmax=lim,
                      alpha=alpha if overlay else 1.0)
    for c, t in enumerate(["image"] + titles):
        axes[0][c].set_title(t, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


@dataclass
class DragResult:
    """Output of :func:`explanation_drag`.

    Attributes:
        share: method -> share of successfully attacked images whose attacked
            map correlates more with the clean target-class map than with the
            clean true-class map (NaN if no attack succeeded).
        success_rate: share of the clean-correct images the attack moved to
            their target class (over all N images: ``success.float().mean()``
            is also available from ``success``).
        success: bool (N,): clean prediction == y and attacked prediction == target.
        flags: method -> bool (N,): corr(attacked map, clean target map) >
            corr(attacked map, clean true map) (computed for every image).
        corr_target, corr_true: method -> (N,) the two Pearson correlations.
        x, x_adv, y, targets, clean_pred, adv_pred: the images and classes.
        maps: method -> {"clean_true", "clean_target", "attacked"} map tensors.
        attack, eps: the attack used ("rmse": per-image RMSE budget; "linf").
    """

    share: dict
    success_rate: float
    success: torch.Tensor
    flags: dict
    corr_target: dict
    corr_true: dict
    x: torch.Tensor
    x_adv: torch.Tensor
    y: torch.Tensor
    targets: torch.Tensor
    clean_pred: torch.Tensor
    adv_pred: torch.Tensor
    maps: dict = field(repr=False)
    attack: str = "rmse"
    eps: float = 0.0


def explanation_drag(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, method="saliency", eps: float,
                     targets: torch.Tensor | None = None, attack: str = "rmse", steps: int | None = None,
                     overshoot: float = 5.0, step_size: float | None = None, **options) -> DragResult:
    r"""How often a small targeted attack drags the explanation to the attacked class.

    Attack each image toward ``targets`` (default: the clean runner-up class,
    the easiest wrong class), then for each method compare the attacked
    image's map for its attacked class, I_t(x'), with the clean maps I_t(x)
    and I_y(x) by Pearson correlation over all map entries. The explanation
    "points to the attacked class" when corr(I_t(x'), I_t(x)) >
    corr(I_t(x'), I_y(x)). Reported share = flagged / successful, over the
    images the attack succeeded on (clean prediction correct and attacked
    prediction == target).

    Args:
        method: a method name or a list of them (see :func:`attribute`).
            Default "saliency".
        eps: the attack budget: per-image RMSE for ``attack="rmse"`` (e.g.
            0.05), l-inf for ``attack="linf"`` (e.g. 0.1).
        targets: (N,) attacked classes; must differ from ``y``.
        attack: "rmse" (default): Woods' Algorithm 1 in explanation mode
            (:func:`~advexp_lib.attacks.rmse_search`, mode "explain",
            descending the target's CE within RMSE eps, overshoot 5, 35 steps,
            clipped to [0, 1]); "linf": targeted
            :func:`~advexp_lib.attacks.pgd` (default 40 steps of eps / 10).
        steps, overshoot, step_size: attack settings (defaults above).
        options: passed to :func:`attribute` (e.g. ``n_steps``).
    Returns:
        :class:`DragResult`.
    """
    from .attacks import pgd, rmse_search  # attacks may import this module: import lazily

    check_images(x, "x")
    check_positive(eps, "eps")
    check_choice(attack, "attack", ("rmse", "linf"))
    methods = [method] if isinstance(method, str) else list(method)
    for m in methods:
        check_choice(m, "method", METHODS)
    n = x.shape[0]
    with eval_mode(model), torch.no_grad():
        logits = check_logits(model(x), n)
    check_labels(y, n, logits.shape[1], "y")
    clean_pred = logits.argmax(1)
    if targets is None:
        targets = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).argmax(1)
    check_labels(targets, n, logits.shape[1], "targets")
    if (targets == y).any():
        raise InputError("targets: every target must differ from the true class y")
    if attack == "rmse":
        x_adv = rmse_search(model, x, targets, mode="explain", eps=eps, steps=steps or 35,
                            overshoot=overshoot, clip=True).x_adv
    else:
        x_adv = pgd(model, x, eps=eps, steps=steps or 40, step_size=step_size or eps / 10, targets=targets)
    x_adv = x_adv.clamp(0, 1)  # rmse_search adds the clipped delta back to x: remove round-off outside [0, 1]
    with eval_mode(model), torch.no_grad():
        adv_pred = model(x_adv).argmax(1)
    success = (clean_pred == y) & (adv_pred == targets)
    share, flags, c_t, c_y, maps = {}, {}, {}, {}, {}
    for m in methods:
        opts = {k: v for k, v in options.items() if k in _OPTIONS[m]}
        attacked = attribute(model, x_adv, targets, method=m, **opts)
        clean_t = attribute(model, x, targets, method=m, **opts)
        clean_y = attribute(model, x, y, method=m, **opts)
        c_t[m], c_y[m] = _pearson(attacked, clean_t), _pearson(attacked, clean_y)
        flags[m] = c_t[m] > c_y[m]
        share[m] = flags[m][success].float().mean().item() if success.any() else float("nan")
        maps[m] = {"clean_true": clean_y, "clean_target": clean_t, "attacked": attacked}
    correct = clean_pred == y
    rate = success[correct].float().mean().item() if correct.any() else float("nan")
    return DragResult(share, rate, success, flags, c_t, c_y, x.detach(), x_adv.detach(), y, targets,
                      clean_pred, adv_pred, maps, attack, float(eps))


def plot_drag(result: DragResult, *, method: str | None = None, index=None, classes=None, max_rows: int = 4):
    """Figure of :func:`explanation_drag`: clean image, attacked image, both maps, both predictions.

    One row per shown image: clean image (true class, clean prediction), its
    map for the true class, the attacked image (attacked prediction) and its
    map for the attacked class. ``index``: images to show (default: the first
    ``max_rows`` successful ones, else the first ones). ``method``: default
    the first method of the result.
    """
    method = method or next(iter(result.maps))
    check_choice(method, "method", list(result.maps))
    if index is None:
        ok = torch.nonzero(result.success).flatten()
        index = (ok if ok.numel() else torch.arange(result.x.shape[0]))[:max_rows]
    index = torch.as_tensor(index).flatten().tolist()
    if not index:
        raise InputError("index: expected at least one image index")
    name = (lambda c: classes[int(c)]) if classes else (lambda c: str(int(c)))  # noqa: E731
    m = result.maps[method]
    import matplotlib.pyplot as plt

    from .plotting import to_display

    fig, axes = plt.subplots(len(index), 4, figsize=(7.2, 1.9 * len(index) + 0.3), squeeze=False)
    for r, i in enumerate(index):
        panels = [
            (to_display(result.x[i]), f"clean: y={name(result.y[i])}, pred {name(result.clean_pred[i])}", None),
            (m["clean_true"][i].sum(0).cpu().numpy(), f"{method} for {name(result.y[i])}", "map"),
            (to_display(result.x_adv[i]), f"attacked: pred {name(result.adv_pred[i])}", None),
            (m["attacked"][i].sum(0).cpu().numpy(), f"{method} for {name(result.targets[i])}"
             + (" (dragged)" if bool(result.flags[method][i]) else ""), "map"),
        ]
        for c, (img, title, kind) in enumerate(panels):
            ax = axes[r][c]
            if kind is None:
                ax.imshow(img, cmap="gray", vmin=0, vmax=1)
            else:
                signed = (img < 0).any()
                lim = float(abs(img).max()) or 1.0
                ax.imshow(img, cmap="bwr" if signed else "magma", vmin=-lim if signed else 0, vmax=lim)
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{result.attack} attack, eps {result.eps:g}: {method} follows the attacked class in "
                 f"{result.share[method]:.0%} of successful attacks", fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- helpers


def _targets(target, n, num_classes, device) -> torch.Tensor:
    if isinstance(target, bool):
        raise InputError(f"target: expected a class index or a tensor of them, got {target!r}")
    if isinstance(target, int):
        if not 0 <= target < num_classes:
            raise InputError(f"target: class index must lie in [0, {num_classes - 1}], got {target}")
        return torch.full((n,), target, dtype=torch.long, device=device)
    check_labels(target, n, num_classes, "target")
    return target.to(device)


def _saliency(model, x, target, differentiable, abs=True):
    if differentiable:
        x = x if x.requires_grad else x.detach().requires_grad_(True)
        with torch.enable_grad():
            out = model(x).gather(1, target[:, None]).sum()
            (g,) = torch.autograd.grad(out, x, create_graph=True)
        return g.abs() if abs else g
    from captum.attr import Saliency

    return Saliency(model).attribute(x, target=target, abs=abs)


def _integrated_gradients(model, x, target, differentiable, n_steps=50, ig_method="gausslegendre",
                          internal_batch_size=None):
    check_positive(n_steps, "n_steps", integer=True)
    if not differentiable:
        from captum.attr import IntegratedGradients

        return IntegratedGradients(model).attribute(x, baselines=torch.zeros_like(x), target=target,
                                                    n_steps=n_steps, method=ig_method,
                                                    internal_batch_size=internal_batch_size)

    def fn(z):
        return model(z).gather(1, target[:, None]).squeeze(1)

    return integrated_gradients_of(fn, x, torch.zeros_like(x), n_steps=n_steps, ig_method=ig_method)


def integrated_gradients_of(fn, x: torch.Tensor, baseline: torch.Tensor, *, n_steps: int = 50,
                            ig_method: str = "gausslegendre") -> torch.Tensor:
    r"""Differentiable IG of a per-example scalar function ``fn`` from ``baseline`` to ``x``.

        IG(x) = (x - b) * sum_k w_k  d fn(b + a_k (x - b)) / dx

    with Captum's quadrature nodes a_k and weights w_k for ``ig_method``
    (so it matches ``captum.attr.IntegratedGradients``), computed with
    ``create_graph=True``: gradients flow to ``x``, ``baseline`` and weights.
    Used by attribute(..., differentiable=True), the top-k attribution attack
    and IG-NORM training. ``fn(z) -> (N,)``.
    """
    from captum.attr._utils.approximation_methods import approximation_parameters

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


def _smoothgrad(model, x, target, differentiable, nt_samples=25, stdevs=0.15, abs=True,
                nt_samples_batch_size=None):
    from captum.attr import NoiseTunnel, Saliency

    check_positive(nt_samples, "nt_samples", integer=True)
    check_positive(stdevs, "stdevs")
    return NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=nt_samples,
                                                  stdevs=stdevs, nt_samples_batch_size=nt_samples_batch_size,
                                                  target=target, abs=abs)


def _grad_cam(model, x, target, differentiable, relu=True, interpolate_mode="bilinear"):
    from captum.attr import LayerGradCam

    x = x if (not differentiable or x.requires_grad) else x.detach().requires_grad_(True)
    kwargs = {"grad_kwargs": {"create_graph": True}} if differentiable else {}
    with torch.enable_grad():
        maps = LayerGradCam(model, last_conv_layer(model)).attribute(x, target=target, relu_attributions=relu,
                                                                     **kwargs)
    return _upsample(maps, x.shape[-2:], interpolate_mode)


def _guided_grad_cam(model, x, target, differentiable, interpolate_mode="nearest"):
    import warnings

    from captum.attr import GuidedGradCam

    with warnings.catch_warnings():  # Captum announces its (temporary) ReLU backward hooks on every call
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        return GuidedGradCam(model, last_conv_layer(model)).attribute(x, target=target,
                                                                      interpolate_mode=interpolate_mode)


def _cam(model, x, target, differentiable, interpolate_mode="bilinear", upsample=True):
    with torch.set_grad_enabled(differentiable):
        feats, weight = _cam_parts(model, x)
        # only the requested class: A weighted by W_t, (N, K, h, w) x (N, K) -> (N, 1, h, w)
        maps = torch.einsum("nk,nkhw->nhw", weight[target], feats)[:, None]
        if upsample and maps.shape[-2:] != x.shape[-2:]:
            maps = _upsample(maps, x.shape[-2:], interpolate_mode)
    return maps


def _cam_parts(model, x):
    from .models import CamCNN, PreActResNet

    if isinstance(model, CamCNN):
        return model.features(model.normalize(x)), model.classifier.weight
    if isinstance(model, PreActResNet):  # its features() normalizes itself; 1x1 conv classifier
        return model.features(x), model.classifier.weight.flatten(1)
    raise InputError(f"model: CAM needs a conv -> global-average-pool -> linear network (CamCNN or "
                     f"PreActResNet), got {type(model).__name__}; use method='grad_cam' instead")


def _upsample(maps, size, mode):
    from captum.attr import LayerAttribution

    check_choice(mode, "interpolate_mode", ("nearest", "bilinear", "bicubic", "area"))
    return LayerAttribution.interpolate(maps, tuple(size), interpolate_mode=mode)


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-example Pearson correlation over all map entries (0 where a map is constant)."""
    a = a.flatten(1).double()
    b = b.flatten(1).double()
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    den = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(den > 0, (a * b).sum(1) / den.clamp_min(1e-300), torch.zeros_like(den))


_DISPATCH = {"saliency": _saliency, "integrated_gradients": _integrated_gradients, "smoothgrad": _smoothgrad,
             "grad_cam": _grad_cam, "guided_grad_cam": _guided_grad_cam, "cam": _cam}



# ------------------------------------------------------------------------------------------------------
# Adversarial explanations (Woods et al. 2019), hand-written on the RMSE search of advexp_lib.attacks.
def adversarial_explanation(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, *, rho: float = 0.1,
                            steps: int = 35, overshoot: float = 5.0, momentum: float = 0.0,
                            clip: bool = False) -> torch.Tensor:
    r"""Adversarial explanation: x' = x + delta, delta descending CE(model(x + delta), target).

    The explanation mode of Algorithm 1 (:func:`advexp_lib.attacks.rmse_search`):
    a path of length rho * overshoot in ``steps`` linearly shrinking steps,
    descending the target's cross-entropy while RMSE(delta) < rho and shrinking
    back toward x otherwise. On a robust network the result shows what the
    network needs to see to call the image ``target``.

    Args:
        targets: (N,) class per image. rho: RMSE budget (default 0.1, the paper's).
        steps, overshoot, momentum: defaults 35, 5, 0 (the paper's).
        clip: keep x' in [0, 1]. Default False (the reference does not clip).
    Returns:
        x' (N, C, H, W), detached.
    """
    from .attacks import rmse_search  # attacks may import this module: import lazily

    check_positive(rho, "rho")  # checked here too so messages name rho and targets, not eps and labels
    check_images(x, "x")
    with eval_mode(model), torch.no_grad():
        num_classes = check_logits(model(x[:1]), 1).shape[1]
    check_labels(targets, x.shape[0], num_classes, "targets")
    return rmse_search(model, x, targets, mode="explain", eps=rho, steps=steps, overshoot=overshoot,
                       momentum=momentum, clip=clip).x_adv


def adversarial_explanation_panel(model: nn.Module, x: torch.Tensor, y: int, classes=None, *,
                                  rho: float = 0.1, steps: int = 35, overshoot: float = 5.0,
                                  every_class: bool = True):
    """Figure: the input, its AE toward the true class, the runner-up and (optionally) every class.

    ``x`` is one image (1, C, H, W) or (C, H, W); each column is titled with the
    class and the model's original confidence in it, p(class | x).
    """
    x = x[None] if x.dim() == 3 else x
    check_images(x, "x")
    with torch.no_grad():
        probs = model.eval()(x).softmax(1)[0]
    num_classes = probs.shape[0]
    y = int(y)
    if not 0 <= y < num_classes:
        raise InputError(f"y: expected a class in [0, {num_classes - 1}], got {y}")
    runner_up = int(probs.masked_fill(torch.arange(num_classes, device=probs.device) == y, -1).argmax())
    targets = [y, runner_up] + (list(range(num_classes)) if every_class else [])
    names = [str(c) for c in (classes or range(num_classes))]
    aes = adversarial_explanation(model, x.expand(len(targets), *x.shape[1:]),
                                  torch.tensor(targets, device=x.device), rho=rho, steps=steps,
                                  overshoot=overshoot)
    kinds = ["true", "runner-up"] + [""] * (len(targets) - 2)
    titles = [f"{k + ': ' if k else ''}{names[t]}\np={probs[t]:.2f}" for k, t in zip(kinds, targets)]
    from .plotting import explanation_panel

    return explanation_panel(x[0], aes, titles)
