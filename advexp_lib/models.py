"""Architectures; every model takes raw [0, 1] pixels and normalizes them in its first layer.

- :class:`HalfHuberReLU`: the smooth-at-zero ReLU of Woods et al. (2019).
- ``linear``: logistic regression (Chalasani et al.'s one-layer setting); ``small_cnn``: a fast
  CNN for 28 x 28 digits; ``cam_cnn``: conv -> global average pooling -> linear (Boopathy et al.).
- ``resnet<6n+2>`` (e.g. ``resnet44``): Woods et al.'s pre-activation ResNet.
- :class:`SmallGap`: Boopathy et al.'s "MNIST-Small" GAP CNN, TensorFlow SAME padding.

Faster equivalents of a frozen network for attacks are :mod:`advexp_lib.speedups`.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from .checks import CheckpointError, InputError, check_positive

__all__ = [
    "ARCHS",
    "ACTIVATIONS",
    "HalfHuberReLU",
    "Normalize",
    "PoolFirst",
    "LinearClassifier",
    "SmallCNN",
    "CamCNN",
    "PreActResNet",
    "TFSameConv2d",
    "SmallGap",
    "build_model",
    "WithNormalization",
    "with_normalization",
    "make_activation",
    "eval_mode",
    "training_mode",
    "tandem_margin",
    "runner_up",
]

ARCHS = ("linear", "small_cnn", "cam_cnn", "smallgap", "resnet<6n+2> (e.g. resnet20, resnet44)")
ACTIVATIONS = ("relu", "half_huber", "half_huber(d)")
_HH_PATTERN = r"half_huber(?:\((\d+(?:\.\d*)?(?:e-?\d+)?)\))?"


class HalfHuberReLU(nn.Module):
    r"""Half-Huber ReLU (Woods et al. 2019), smooth first derivative at 0.

        f(x) = 0             for x <= 0
               x^2 / (2 d)   for 0 < x <= d
               x - d / 2     for x > d,          f'(x) = clamp(x, 0, d) / d.

    Hand-written autograd Functions (no library has it), fused for double backprop;
    third derivatives raise (``once_differentiable``).

    Args:
        delta: the quadratic zone's width d > 0. Default: 0.5 (the paper's). A buffer: checkpoints carry it.
    """

    def __init__(self, delta: float = 0.5):
        super().__init__()
        check_positive(delta, "delta")
        self.register_buffer("delta", torch.tensor(float(delta)))
        self._d = float(delta)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        d = float(self.delta)
        if not d > 0 or d == float("inf"):
            raise CheckpointError(f"{prefix}delta: expected a finite half-Huber width > 0, got {d!r}")
        self._d = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _HalfHuber.apply(x, self._d)

    def extra_repr(self) -> str:
        return f"delta={self._d:g}"


class _HalfHuber(torch.autograd.Function):
    """f(x) = s (x - c/2) with c = clamp(x, 0, d), s = c / d; saves x and s = f'(x)."""

    @staticmethod
    def forward(ctx, x, d: float):
        c = x.clamp(0, d)
        s = c * (1.0 / d)
        ctx.save_for_backward(x, s)
        ctx.d = d
        return torch.add(x, c, alpha=-0.5).mul_(s)

    @staticmethod
    def backward(ctx, grad):
        x, s = ctx.saved_tensors
        return _HalfHuberGrad.apply(grad, x, s, ctx.d), None


class _HalfHuberGrad(torch.autograd.Function):
    """(g, x) -> g * f'(x), f'(x) = s given; backward: (gg * s, gg * g * f''(x)), f'' = 1/d on (0, d)."""

    @staticmethod
    def forward(ctx, grad, x, s, d: float):
        ctx.save_for_backward(grad, s)
        ctx.d = d
        return grad * s

    @staticmethod
    @once_differentiable
    def backward(ctx, gg):
        grad, s = ctx.saved_tensors
        d_grad = gg * s if ctx.needs_input_grad[0] else None
        d_x = None
        if ctx.needs_input_grad[1]:
            # f'' d = 1 where 0 < s < 1, else 0: sign(s - s^2) in float arithmetic, which avoids a bool
            # mask (where, masked_fill) and its extra kernels
            d_x = torch.addcmul(s, s, s, value=-1).sign_().mul_(gg).mul_(grad).mul_(1.0 / ctx.d)
        return d_grad, d_x, None, None


class Normalize(nn.Module):
    """(x - mean) / std per channel; the first layer of every model (x in [0, 1])."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.mean.shape[1]
        if x.dim() != 4 or x.shape[1] != c:  # a wrong dataset's images: say so, not a conv shape error
            raise InputError(
                f"x: the model expects N x {c} x H x W images ({c} channel(s)), got shape {tuple(x.shape)}"
            )
        return (x - self.mean) / self.std


class WithNormalization(nn.Module):
    """``net(normalize(x))``: a network trained on normalized inputs, taking raw [0, 1] pixels."""

    def __init__(self, net: nn.Module, mean, std):
        super().__init__()
        if not isinstance(net, nn.Module):
            raise InputError(f"net: expected an nn.Module, got {type(net).__name__}")
        mean, std = _per_channel(mean, "mean"), _per_channel(std, "std")
        if len(mean) != len(std):
            raise InputError(f"std: expected one value per channel, as mean ({len(mean)}), got {len(std)}")
        if any(not s > 0 for s in std):
            raise InputError(f"std: expected values > 0, got {std}")
        self.normalize = Normalize(mean, std)
        self.net = net

    def forward(self, x):
        return self.net(self.normalize(x))


def with_normalization(net: nn.Module, mean, std) -> WithNormalization:
    """Wrap ``net``, trained on inputs (x - mean) / std, so that it takes raw [0, 1] pixels.

    ``mean``, ``std``: one number per channel, or one for every channel. The weights are
    shared, not copied (attribute ``net``).

    Examples:
        >>> wrapped = with_normalization(torch.nn.Conv2d(3, 2, 3), [0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
        >>> wrapped(torch.zeros(1, 3, 4, 4)).shape
        torch.Size([1, 2, 2, 2])
    """
    return WithNormalization(net, mean, std)


def _per_channel(values, name: str) -> list[float]:
    values = [values] if isinstance(values, (int, float)) else list(values)
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise InputError(f"{name}: expected a number per channel, got {values!r}")
    return [float(v) for v in values]


def make_activation(name: str) -> nn.Module:
    """``relu`` -> nn.ReLU; ``half_huber`` -> HalfHuberReLU(0.5); ``half_huber(d)`` -> HalfHuberReLU(d)."""
    d = check_activation(name)
    return nn.ReLU() if d is None else HalfHuberReLU(d)


def check_activation(name) -> float | None:
    """Validate an activation name (relu, half_huber or half_huber(d), d > 0); return d, or None for relu."""
    m = re.fullmatch(_HH_PATTERN, name) if isinstance(name, str) else None
    if name != "relu" and m is None:
        raise InputError(f"activation: unknown value {name!r}; valid: {', '.join(ACTIVATIONS)}")
    if m is None:
        return None
    d = float(m.group(1)) if m.group(1) else 0.5
    if not 0 < d < float("inf"):
        raise InputError(f"activation: the half-Huber width d in {name!r} must be a finite number > 0")
    return d


class PoolFirst(nn.Sequential):
    """nn.Sequential that evaluates every ``activation, MaxPool2d`` pair as ``MaxPool2d, activation``.

    Same outputs and derivatives for monotone activations (f(max x) = max f(x)), on a quarter of the
    elements; state-dict keys are those of the plain ``nn.Sequential``.
    """

    def forward(self, x):
        mods, i = list(self), 0
        while i < len(mods):
            if (
                i + 1 < len(mods)
                and isinstance(mods[i], (nn.ReLU, HalfHuberReLU))
                and isinstance(mods[i + 1], nn.MaxPool2d)
            ):
                x, i = mods[i](mods[i + 1](x)), i + 2
            else:
                x, i = mods[i](x), i + 1
        return x


def _conv_pool_stages(in_channels: int, activation: str) -> list[nn.Module]:
    """conv3x3(16)-act-maxpool2-conv3x3(32)-act-maxpool2: the front of SmallCNN and CamCNN."""
    return [
        nn.Conv2d(in_channels, 16, 3, padding=1),
        make_activation(activation),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        make_activation(activation),
        nn.MaxPool2d(2),
    ]


class LinearClassifier(nn.Module):
    """Logistic regression: logits = W ((x - mean) / std) + b (Chalasani et al. 2020's one-layer network)."""

    def __init__(
        self, *, num_classes=10, in_channels=1, mean=(0.5,), std=(0.25,), size=28, activation="relu"
    ):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.classifier = nn.Linear(in_channels * size * size, num_classes)

    def forward(self, x):
        return self.classifier(self.normalize(x).flatten(1))


class SmallCNN(nn.Module):
    """conv3x3(16)-act-pool-conv3x3(32)-act-pool-fc(128)-act-fc: ~1.2 M MACs per 28 x 28 image."""

    def __init__(
        self, *, num_classes=10, in_channels=1, activation="relu", mean=(0.5,), std=(0.25,), size=28
    ):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.features = PoolFirst(*_conv_pool_stages(in_channels, activation))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * (size // 4) ** 2, 128),
            make_activation(activation),
            nn.Linear(128, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(self.normalize(x)))


class CamCNN(nn.Module):
    """Conv features -> global average pooling -> linear (CAM-ready).

    ``features(x)`` gives A (N, K, h, w), K = ``width`` (default 128); ``classifier`` is
    nn.Linear(K, C), so CAM_c = sum_k W_ck A_k. Grad-CAM layer: ``features[-2]``.
    """

    def __init__(
        self, *, num_classes=10, in_channels=1, activation="relu", mean=(0.5,), std=(0.25,), width=128
    ):
        super().__init__()
        check_positive(width, "width", integer=True)
        self.normalize = Normalize(mean, std)
        self.features = PoolFirst(
            *_conv_pool_stages(in_channels, activation),
            nn.Conv2d(32, width, 3, padding=1),
            make_activation(activation),
        )
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.classifier(self.features(self.normalize(x)).mean(dim=(2, 3)))


class TFSameConv2d(nn.Conv2d):
    """nn.Conv2d with TensorFlow's ``padding="SAME"``: output size ceil(n / stride) along each axis.

    Total zero padding max((ceil(n / s) - 1) s + k - n, 0): floor(total / 2) before, the rest after.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)

    def forward(self, x):
        pads = []  # F.pad order: last axis (width) first
        for axis in (-1, -2):
            n, k, s = x.shape[axis], self.kernel_size[axis], self.stride[axis]
            total = max((-(-n // s) - 1) * s + k - n, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


class SmallGap(nn.Module):
    """Boopathy et al. (2020)'s "MNIST-Small" CNN with global average pooling (their ``smallgap``).

    logits = W mean_hw(A), A = conv3(relu(conv2(relu(conv1(x))))): conv1 4x4 stride 2 (16), conv2
    4x4 stride 2 (32), conv3 7x7 stride 1 (100), all :class:`TFSameConv2d` with bias; W 100 -> 10
    without bias. Unnormalized [0, 1] inputs; Grad-CAM layer conv3. Init as their ``train.py``:
    weights N(0, 1 / fan_in), biases 0.
    """

    def __init__(self, *, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        check_positive(num_classes, "num_classes", integer=True)
        check_positive(in_channels, "in_channels", integer=True)
        self.features = nn.Sequential(
            TFSameConv2d(in_channels, 16, 4, stride=2),
            nn.ReLU(),
            TFSameConv2d(16, 32, 4, stride=2),
            nn.ReLU(),
            TFSameConv2d(32, 100, 7, stride=1),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(100, num_classes, bias=False)
        with torch.no_grad():
            for layer in (*self.features[::2], self.classifier):
                w = layer.weight
                w.normal_(0.0, (w[0].numel()) ** -0.5)  # w[0]: one output's k * k * c_in inputs
                if layer.bias is not None:
                    layer.bias.zero_()

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


class PreActBlock(nn.Module):
    """Pre-activation residual block: main(pre(x)) + shortcut, Woods et al.'s layout.

    pre = BN-act; main = conv3x3(stride)-BN-act-conv3x3; shortcut = x, or conv3x3(stride) on pre(x)
    where the shape changes.
    """

    def __init__(self, cin, cout, stride, activation):
        super().__init__()
        self.pre = nn.Sequential(nn.BatchNorm2d(cin), make_activation(activation))
        self.main = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            make_activation(activation),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
        )
        self.shortcut = nn.Conv2d(cin, cout, 3, stride, 1, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x):
        p = self.pre(x)
        return self.main(p) + (x if self.shortcut is None else self.shortcut(p))


class PreActResNet(nn.Module):
    """Pre-activation ResNet of depth 6n + 2 (ResNet-44: n = 7, widths 16/32/64).

    stem conv3x3 -> 3 stages of n PreActBlocks (stride 1, 2, 2) -> BN-act -> global average pool ->
    1x1 conv. Init as Woods et al.: convs ``kaiming_uniform_`` (a = 0), biases 0, BatchNorm (1, 0),
    last conv of each residual branch zeroed (Goyal et al. 2017; He et al. 2019, arXiv:1812.01187).
    """

    def __init__(
        self,
        depth=44,
        *,
        num_classes=10,
        in_channels=3,
        activation="relu",
        widths=(16, 32, 64),
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
    ):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise InputError(f"depth: expected 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56 ...), got {depth}")
        n = (depth - 2) // 6
        self.normalize = Normalize(mean, std)
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        stages, cin = [], widths[0]
        for i, w in enumerate(widths):
            blocks = [
                PreActBlock(cin if b == 0 else w, w, 2 if (b == 0 and i > 0) else 1, activation)
                for b in range(n)
            ]
            stages.append(nn.Sequential(*blocks))
            cin = w
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.BatchNorm2d(cin), make_activation(activation))
        self.classifier = nn.Conv2d(cin, num_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=0)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for block in self.stages.modules():
            if isinstance(block, PreActBlock):
                nn.init.zeros_(block.main[-1].weight)  # residual branch starts at zero

    @property
    def gradcam_layer(self) -> nn.Module:
        """The last spatial feature map (the head's BN-act output): Grad-CAM's layer."""
        return self.head

    def features(self, x):
        return self.head(self.stages(self.stem(self.normalize(x))))

    def forward(self, x):
        a = self.features(x).mean(dim=(2, 3), keepdim=True)
        return self.classifier(a).flatten(1)


def build_model(
    arch: str = "small_cnn",
    *,
    num_classes: int = 10,
    in_channels: int = 1,
    activation: str = "relu",
    mean=None,
    std=None,
    image_size: int = 28,
) -> nn.Module:
    """Build ``arch`` ("linear", "small_cnn", "cam_cnn", "smallgap", "resnet<6n+2>") for raw [0, 1] inputs.

    Args:
        num_classes, in_channels: output classes and input channels.
        activation: "relu" (default), "half_huber" (delta 0.5) or "half_huber(d)"; not for ``linear``.
        mean, std: per-channel normalization in the first layer; default 0.5 / 0.25 per channel.
        image_size: input height = width for ``linear`` and ``small_cnn``. Default 28.
            ``smallgap`` ignores ``activation``, ``mean`` and ``std`` (ReLU, unnormalized).
    """
    check_positive(num_classes, "num_classes", integer=True)
    check_positive(in_channels, "in_channels", integer=True)
    check_activation(activation)
    mean = tuple(mean) if mean is not None else (0.5,) * in_channels
    std = tuple(std) if std is not None else (0.25,) * in_channels
    if len(mean) != in_channels or len(std) != in_channels:
        raise InputError(f"mean/std: expected {in_channels} value(s) each, got {mean} / {std}")
    kw = dict(num_classes=num_classes, in_channels=in_channels, activation=activation, mean=mean, std=std)
    if arch in ("linear", "small_cnn"):
        check_positive(image_size, "image_size", integer=True)
        return (LinearClassifier if arch == "linear" else SmallCNN)(size=image_size, **kw)
    if arch == "cam_cnn":
        return CamCNN(**kw)
    if arch == "smallgap":
        return SmallGap(num_classes=num_classes, in_channels=in_channels)
    m = re.fullmatch(r"resnet(\d+)", arch) if isinstance(arch, str) else None
    if m:
        return PreActResNet(int(m.group(1)), **kw)
    raise InputError(f"arch: unknown value {arch!r}; valid: {', '.join(ARCHS)}")


@contextmanager
def training_mode(model: nn.Module, training: bool):
    """Run ``model`` in training (True) or eval (False) mode inside the block; restore its mode after."""
    was = model.training
    model.train(training)
    try:
        yield model
    finally:
        model.train(was)


def eval_mode(model: nn.Module):
    """Run ``model`` in eval mode (BatchNorm frozen) inside the block; restore its mode after."""
    return training_mode(model, False)


def tandem_margin(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """g_c - max_{j != c} g_j per example, c = ``classes`` (N,): positive iff class c wins."""
    true = logits.gather(1, classes[:, None]).squeeze(1)
    return true - _others(logits, classes).amax(1)


def runner_up(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """argmax_{j != c} g_j per row of logits or probabilities: the best class other than ``classes`` (N,)."""
    return _others(logits, classes).argmax(1)


def _others(logits, classes):
    """``logits`` with the entry of ``classes`` set to -inf in every row."""
    return logits.masked_fill(F.one_hot(classes, logits.shape[1]).bool(), float("-inf"))
