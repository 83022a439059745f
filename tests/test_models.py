import pytest
import torch
from torch import nn

from advexp_lib import InputError
from advexp_lib.models import (
    CamCNN,
    HalfHuberReLU,
    PoolFirst,
    PreActResNet,
    SmallGap,
    build_model,
)


def test_half_huber_values_by_hand():
    f = HalfHuberReLU(0.5)
    x = torch.tensor([-1.0, 0.0, 0.25, 0.5, 2.0])
    # 0; 0; 0.25^2 / (2 * 0.5) = 0.0625; 0.5^2 / 1 = 0.25; 2 - 0.25 = 1.75
    assert torch.allclose(f(x), torch.tensor([0.0, 0.0, 0.0625, 0.25, 1.75]))


@pytest.mark.parametrize("delta", [0.05, 0.5, 1.0, 3.0])
def test_half_huber_derivative_is_clamp_over_delta(delta):
    x = torch.linspace(-2, 5, 301, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(HalfHuberReLU(delta)(x).sum(), x)
    assert torch.allclose(g, x.detach().clamp(0, delta) / delta)


@pytest.mark.parametrize("delta", [0.1, 0.5, 2.0])
def test_half_huber_gradcheck_and_gradgradcheck(delta):
    f = HalfHuberReLU(delta).double()
    # points away from the kinks at 0 and delta (finite differences straddle a kink otherwise)
    x = torch.tensor(
        [-1.3, -0.2, 0.3 * delta, 0.7 * delta, 1.5 * delta + 0.1, 4.0],
        dtype=torch.float64,
        requires_grad=True,
    )
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


@pytest.mark.parametrize("delta", [0.0, -1.0, float("nan")])
def test_half_huber_rejects_bad_delta(delta):
    with pytest.raises(InputError, match="delta"):
        HalfHuberReLU(delta)


@pytest.mark.parametrize(
    "arch, shape, channels",
    [
        ("small_cnn", (28, 28), 1),
        ("cam_cnn", (28, 28), 1),
        ("resnet8", (32, 32), 3),
        ("small_cnn", (32, 32), 3),
    ],
)
@pytest.mark.parametrize("activation", ["relu", "half_huber"])
def test_build_model_shapes(arch, shape, channels, activation):
    m = build_model(arch, num_classes=7, in_channels=channels, activation=activation, image_size=shape[0])
    assert m(torch.rand(2, channels, *shape)).shape == (2, 7)
    assert any(isinstance(mod, HalfHuberReLU) for mod in m.modules()) == (activation == "half_huber")


def test_resnet44_layout_and_zero_init_residuals():
    m = PreActResNet(44)
    assert [len(s) for s in m.stages] == [7, 7, 7]
    block = m.stages[0][1]
    assert block.shortcut is None and torch.count_nonzero(block.main[-1].weight) == 0
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(block(x), x)  # residual branch starts at zero: block = identity
    with pytest.raises(InputError, match="depth"):
        PreActResNet(45)


def test_model_normalizes_inputs_itself():
    m = build_model("small_cnn", mean=(0.1307,), std=(0.3081,))
    assert torch.allclose(m.normalize(torch.full((1, 1, 1, 1), 0.1307)), torch.zeros(1))


def test_cam_logit_is_spatial_mean_of_cam():
    m = CamCNN()
    x = torch.rand(3, 1, 28, 28)
    a = m.features(m.normalize(x))
    cam = torch.einsum("ck,nkhw->nchw", m.classifier.weight, a)
    assert torch.allclose(cam.mean(dim=(2, 3)) + m.classifier.bias, m(x), atol=1e-5)


@pytest.mark.parametrize(
    "name, delta", [("half_huber", 0.5), ("half_huber(1.5)", 1.5), ("half_huber(2)", 2.0)]
)
def test_activation_names_set_the_half_huber_width(name, delta):
    acts = [m for m in build_model("small_cnn", activation=name).modules() if isinstance(m, HalfHuberReLU)]
    assert len(acts) == 3 and all(a.delta.item() == delta and a._d == delta for a in acts)


def test_half_huber_width_travels_with_the_state_dict():
    a, b = (
        build_model("small_cnn", activation="half_huber(1.5)"),
        build_model("small_cnn", activation="half_huber"),
    )
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(a(x), b(x)) and all(m._d == 1.5 for m in b.modules() if isinstance(m, HalfHuberReLU))


def test_third_derivative_of_half_huber_raises_instead_of_being_wrong():
    x = torch.tensor([0.2, 0.7], dtype=torch.float64, requires_grad=True)
    f = HalfHuberReLU(0.5)
    (g,) = torch.autograd.grad(f(x).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x, create_graph=True)
    assert torch.equal(h.detach(), torch.tensor([2.0, 0.0], dtype=torch.float64))  # f'' = 1/d on (0, d)
    with pytest.raises(RuntimeError, match="once_differentiable|does not require grad"):
        torch.autograd.grad(h.sum(), x)


def test_build_model_rejects_unknown_names():
    with pytest.raises(InputError, match="arch: unknown value 'vgg'.*small_cnn"):
        build_model("vgg")
    with pytest.raises(InputError, match="activation: unknown value 'gelu'.*half_huber"):
        build_model("small_cnn", activation="gelu")


def test_state_dict_with_a_bad_half_huber_width_is_refused():
    from advexp_lib import CheckpointError

    m = build_model("small_cnn", activation="half_huber")
    sd = m.state_dict()
    sd["features.1.delta"] = torch.tensor(0.0)
    with pytest.raises(CheckpointError, match=r"features\.1\.delta: expected a finite half-Huber width > 0"):
        m.load_state_dict(sd)


@pytest.mark.parametrize("arch", ["small_cnn", "cam_cnn"])
@pytest.mark.parametrize("activation", ["relu", "half_huber(1.5)"])
def test_pool_first_is_the_stored_order_in_float64(arch, activation):
    """PoolFirst (act after pool) = the modules run in stored order (pool after act): outputs, input
    gradients and the double-backprop weight gradients of an L_adv-style penalty, in float64."""
    torch.manual_seed(0)
    m = build_model(arch, activation=activation).double()
    assert isinstance(m.features, PoolFirst)
    plain = nn.Sequential(*m.features)  # the same modules, evaluated in stored order

    def penalty_and_grads(features):
        x = torch.rand(4, 1, 28, 28, dtype=torch.float64, requires_grad=True)
        torch.manual_seed(1)
        h = features(m.normalize(x))
        logits = m.classifier(h) if arch == "small_cnn" else m.classifier(h.mean(dim=(2, 3)))
        (g,) = torch.autograd.grad(logits[:, 3].sum(), x, create_graph=True)
        w = torch.autograd.grad(g.pow(2).mean(), list(m.parameters()), materialize_grads=True)
        return logits, g, w

    torch.manual_seed(2)
    a = penalty_and_grads(m.features)
    torch.manual_seed(2)
    b = penalty_and_grads(plain)
    assert torch.equal(a[0], b[0]) and torch.allclose(a[1], b[1], rtol=0, atol=1e-12)
    assert all(torch.allclose(u, v, rtol=1e-10, atol=1e-12) for u, v in zip(a[2], b[2]))


def test_resnet_is_initialized_as_the_reference():
    """kaiming_uniform_ (a = 0) on every conv, zero conv biases, BN 1 / 0, last conv of each branch zero."""
    torch.manual_seed(0)
    net = PreActResNet(20, num_classes=10, activation="relu")
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    zeroed = {id(b.main[-1]) for s in net.stages for b in s}
    for conv in convs:
        if id(conv) in zeroed:
            assert torch.count_nonzero(conv.weight) == 0
            continue
        fan_in = conv.weight[0].numel()
        bound = (6 / fan_in) ** 0.5
        w = conv.weight.detach()
        assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound  # U(-bound, bound), not torch's default
        assert conv.bias is None or torch.count_nonzero(conv.bias) == 0
    assert len(zeroed) == 9 and net.classifier.bias is not None
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        assert torch.equal(bn.weight, torch.ones_like(bn.weight)) and torch.equal(
            bn.bias, torch.zeros_like(bn.bias)
        )


def test_smallgap_starts_as_boopathy_train_py():
    """N(0, 1 / fan_in) weights, zero biases (their train.py); the arch is buildable by name."""
    torch.manual_seed(0)
    m = build_model("smallgap")
    assert isinstance(m, SmallGap)
    convs = [m.features[0], m.features[2], m.features[4]]
    for layer, fan_in in zip((*convs, m.classifier), (16, 256, 1568, 100)):
        std = layer.weight.std().item() * fan_in**0.5
        assert 0.9 < std < 1.1, (layer, std)
        assert abs(layer.weight.mean().item()) < 0.2 * fan_in**-0.5
    assert all(c.bias.abs().max() == 0 for c in convs)
    assert m(torch.rand(2, 1, 28, 28)).shape == (2, 10)
