"""Speed views: the same function as a frozen network, in a form that CPU attacks differentiate faster.

Each view pays on a benchmark, run as ratios within one run:

- :func:`attack_view` folds :class:`~advexp_lib.models.SmallGap`'s affine tail
  into one float64 map (``benchmarks/bench_attack_view.py``: PGD 5.4x faster on
  ``smallgap_adv``) and feeds max-pooling or BatchNorm networks NHWC copies
  (1.3x on ``cam_standard``);
- :func:`prefers_nhwc` / :func:`nhwc_copy`: the RMSE search's channels-last
  input on CPU (``benchmarks/bench_published_ara.py``: 1.26x on the published
  ResNet-44s);
- :func:`cam_view` folds SmallGap's head into its last convolution, so the
  interpretability sneaking attack differentiates C instead of 100 channels
  (``benchmarks/bench_attack_view.py --cam``).

Every view computes the model's function up to float32 rounding (tests/test_speedups.py
against float64 forwards); callers score the attack's result on the model itself.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .checks import InputError, check_images
from .models import SmallGap, TFSameConv2d

__all__ = ["attack_view", "cam_view", "prefers_nhwc", "nhwc_copy"]


def prefers_nhwc(model: nn.Module, x: torch.Tensor) -> bool:
    """Feed ``model`` NHWC copies (:func:`nhwc_copy`)? On CPU, for networks with max-pooling or BatchNorm.

    oneDNN's max-pooling and its convolutions in the pre-activation ResNets
    run faster on CPU in channels-last (``benchmarks/bench_woods.py``,
    ``benchmarks/bench_published_ara.py``: about 1.2x per search step on the
    published ResNet-44s). NHWC convolutions sum in another order than NCHW
    ones, so distances move by float32 rounding (the benchmark prints the
    largest change).

    Examples:
        >>> prefers_nhwc(nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2)), torch.rand(1, 1, 8, 8))
        True
    """
    if x.device.type != "cpu":
        return False
    return any(isinstance(m, (nn.MaxPool2d, nn.BatchNorm2d)) for m in model.modules())


def nhwc_copy(x: torch.Tensor) -> torch.Tensor:
    """A differentiable copy of x in channels-last (NHWC) strides on CPU, values unchanged.

    oneDNN max-pooling (and convolutions) on CPU run faster in NHWC, and a
    layer's output follows its input's layout. For C = 1 the two layouts hold
    the same bytes and ``contiguous(channels_last)`` (like ``x + d``) keeps
    NCHW strides, so an explicit copy sets the stride of C to 1: the first
    convolution then sees NHWC and the layers after it stay NHWC.

    Examples:
        >>> z = nhwc_copy(torch.rand(2, 1, 4, 4))
        >>> z.stride(1), z.is_contiguous(memory_format=torch.channels_last)
        (1, True)
    """
    if x.device.type != "cpu" or x.dim() != 4 or x.stride(1) == 1:
        return x
    return torch.empty_like(x, memory_format=torch.channels_last).copy_(x)


def attack_view(model: nn.Module, x: torch.Tensor) -> nn.Module:
    r"""The function of the eval-mode ``model``, in a form many-step input-gradient attacks run faster.

    For evaluation of a *frozen* network (the model must not change while the
    view is used: it copies or wraps the current weights):

    - :class:`SmallGap`: its tail z = W mean_hw(conv3(h)) + 0 is affine in
      h = relu(conv2(relu(conv1(x)))) (no activation after conv3), so it is
      folded into one map z = M vec(h) + b with M = dz/dh and b = z(0),
      computed once by autograd in float64 and applied in float64 (exact for
      an affine map up to rounding; on MNIST about 7x fewer multiply-adds
      than conv3, benchmarks/bench_attack_view.py);
    - a network with max-pooling or BatchNorm on CPU (:func:`prefers_nhwc`): fed NHWC copies of its input
      (:func:`prefers_nhwc`, as the RMSE search does);
    - any other network: ``model`` itself.

    Outputs match ``model``'s up to float32 rounding (tests/test_models.py
    checks the fold against a float64 forward); attacks that take sign steps
    can still diverge after many steps where a gradient entry is within
    rounding of 0. Callers should score the attack's result on ``model``.

    Args:
        model: an ``nn.Module`` (N, C, H, W) -> (N, classes).
        x: an example batch (its device and spatial size; a fold holds for one size).

    Examples:
        >>> from advexp_lib.models import build_model
        >>> net = build_model("smallgap").eval()
        >>> view = attack_view(net, torch.rand(2, 1, 28, 28))
        >>> bool(torch.allclose(view(torch.zeros(1, 1, 28, 28)), net(torch.zeros(1, 1, 28, 28)), atol=1e-5))
        True
    """
    if isinstance(model, SmallGap):
        return _FoldedSmallGap(model, x)
    if prefers_nhwc(model, x):
        return _FedNhwc(model)
    return model


def cam_view(model: nn.Module) -> nn.Module:
    r"""The eval-mode ``model`` with the same logits and the same CAM, cheaper to differentiate.

    For a :class:`SmallGap`, a copy whose last convolution has the head folded
    in: conv3' = W o conv3, with C output channels (kernel_c = sum_k W_ck
    kernel_k, bias_c = sum_k W_ck b_k, computed in float64 and stored in the
    model's dtype) and an identity head, so A'_c = sum_k W_ck A_k is CAM_c
    itself and logits = mean_hw(A'). Exact for the linear composition up to
    rounding; conv3 does C instead of 100 output channels (10x fewer
    multiply-adds on MNIST). A snapshot: later training of ``model`` does not
    reach it. Any other model is returned as is. The interpretability
    sneaking attack runs on it (CAM is read from ``features``, so
    :class:`~advexp_lib.attributions.Cam` gives the same maps).

    Examples:
        >>> from advexp_lib.models import build_model
        >>> net = build_model("smallgap").eval()
        >>> view, x = cam_view(net), torch.rand(2, 1, 28, 28)
        >>> bool(torch.allclose(view(x), net(x), atol=1e-5))
        True
    """
    if not isinstance(model, SmallGap):
        return model
    conv3, head = model.features[4], model.classifier
    w = head.weight.detach().double()
    folded = TFSameConv2d(conv3.in_channels, head.out_features, conv3.kernel_size[0], stride=conv3.stride[0])
    identity = nn.Linear(head.out_features, head.out_features, bias=False)
    with torch.no_grad():
        folded.weight.copy_(torch.einsum("ck,kiab->ciab", w, conv3.weight.detach().double()))
        folded.bias.copy_(w @ conv3.bias.detach().double())
        identity.weight.copy_(torch.eye(head.out_features))
    view = copy.deepcopy(model)
    view.features[4], view.classifier = folded, identity
    p = conv3.weight
    return view.to(device=p.device, dtype=p.dtype).requires_grad_(False).eval()


class _FoldedSmallGap(nn.Module):
    """SmallGap's conv1-relu-conv2-relu, then its affine tail as one float64 map (see :func:`attack_view`)."""

    def __init__(self, model: SmallGap, x: torch.Tensor):
        super().__init__()
        check_images(x, "x")
        self.head = copy.deepcopy(model.features[:4]).requires_grad_(False).eval()
        with torch.no_grad():
            h = self.head(x[:1])
        tail = nn.Sequential(model.features[4:], model.pool, nn.Flatten(), model.classifier)
        tail = copy.deepcopy(tail).double().requires_grad_(False).eval()
        with torch.enable_grad():
            shape = (model.classifier.out_features, *h.shape[1:])
            h0 = torch.zeros(shape, dtype=torch.float64, device=h.device, requires_grad=True)
            z0 = tail(h0)  # row c of dz/dh: the gradient of z_c, one zero input per class
            (m,) = torch.autograd.grad(z0.diagonal().sum(), h0)
        self.shape = tuple(h.shape[1:])
        self.register_buffer("weight", m.flatten(1).detach())
        self.register_buffer("bias", z0[0].detach())
        self.eval()

    def forward(self, x):
        h = self.head(x)
        if tuple(h.shape[1:]) != self.shape:
            raise InputError(f"x: the fold was built for features {self.shape}, got {tuple(h.shape[1:])}")
        return F.linear(h.flatten(1).double(), self.weight, self.bias).to(h.dtype)


class _FedNhwc(nn.Module):
    """``model`` fed :func:`nhwc_copy` of its input."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.training = model.training  # eval_mode(view) then restores the model's own mode

    def forward(self, x):
        return self.model(nhwc_copy(x))
