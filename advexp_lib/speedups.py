"""Speed views: the same function as a frozen network, in a form that CPU attacks differentiate faster.

Exact up to float32 rounding (sign-step attacks may diverge after many steps): score the attack's
result on the model. Each view's benchmark in ``benchmarks/`` (ratio within one run):

- :func:`attack_view`: ``bench_attack_view.py``, PGD 5.4x on ``smallgap_adv``, 1.3x on ``cam_standard``;
- :func:`prefers_nhwc` / :func:`nhwc_copy`: ``bench_published_ara.py``, 1.26x on the published ResNet-44s;
- :func:`cam_view`: ``bench_attack_view.py --cam``, C instead of 100 channels in conv3.
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

    Examples:
        >>> prefers_nhwc(nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2)), torch.rand(1, 1, 8, 8))
        True
    """
    if x.device.type != "cpu":
        return False
    return any(isinstance(m, (nn.MaxPool2d, nn.BatchNorm2d)) for m in model.modules())


def nhwc_copy(x: torch.Tensor) -> torch.Tensor:
    """A differentiable copy of x in channels-last (NHWC) strides on CPU, values unchanged.

    Unlike ``contiguous(channels_last)``, sets C's stride to 1 also for C = 1, so later layers run NHWC.

    Examples:
        >>> z = nhwc_copy(torch.rand(2, 1, 4, 4))
        >>> z.stride(1), z.is_contiguous(memory_format=torch.channels_last)
        (1, True)
    """
    if x.device.type != "cpu" or x.dim() != 4 or x.stride(1) == 1:
        return x
    return torch.empty_like(x, memory_format=torch.channels_last).copy_(x)


def attack_view(model: nn.Module, x: torch.Tensor) -> nn.Module:
    r"""The eval-mode, frozen ``model`` (weights copied or wrapped), in a form many-step attacks run faster.

    - :class:`SmallGap`: its affine tail z = W mean_hw(conv3(h)), h = relu(conv2(relu(conv1(x)))), folded
      into z = M vec(h) + b, M = dz/dh and b = z(0) computed by autograd and applied in float64;
    - max-pooling or BatchNorm on CPU (:func:`prefers_nhwc`): fed NHWC copies;
    - any other network: ``model`` itself.

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

    For a :class:`SmallGap`, a snapshot copy with the head folded into conv3: conv3' = W o conv3, C output
    channels (kernel_c = sum_k W_ck kernel_k, bias_c = sum_k W_ck b_k, in float64) and an identity head, so
    A'_c = CAM_c and logits = mean_hw(A'). Any other model is returned as is.

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
    """SmallGap's conv1-relu-conv2-relu, then its affine tail as one float64 map (:func:`attack_view`)."""

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
