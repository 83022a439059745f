"""Explanation methods: Captum wrappers, CAM, the differentiable IG and the AE, on models with known maps."""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from advexp_lib import InputError, InputTypeError
from advexp_lib.attacks import AE_PAPER, EXPLAIN, rmse_search
from advexp_lib.attributions import (
    EXPLAINERS,
    METHODS,
    AdversarialExplanation,
    Cam,
    GradCam,
    IntegratedGradients,
    Saliency,
    as_explainer,
    attribute,
    class_activation_maps,
    explainer,
    gradcam_layer,
    integrated_gradients_of,
)
from advexp_lib.models import build_model

from tiny_models import linear_net


def linear_model():
    """f(x) = W flatten(x) + b on 1 x 2 x 2 images, 3 classes, fixed weights."""
    torch.manual_seed(0)
    return linear_net(
        [[1.0, -2.0, 0.5, 0.0], [0.0, 3.0, -1.0, 2.0], [-0.5, 0.25, 1.5, -4.0]], [0.1, -0.2, 0.3]
    )


@pytest.fixture
def cam_net():
    torch.manual_seed(0)
    return build_model("cam_cnn", num_classes=3)


@pytest.fixture
def images():
    return torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def test_saliency_is_abs_logit_gradient_on_linear_model():
    m = linear_model()
    x = torch.rand(2, 1, 2, 2)
    t = torch.tensor([1, 2])
    expected = m[1].weight[t].abs().view(2, 1, 2, 2)  # d f_t / dx = W_t
    assert torch.equal(Saliency().attribute(m, x, t), expected)
    assert torch.equal(Saliency().attribute(m, x, t, differentiable=True).detach(), expected)
    signed = Saliency(abs=False).attribute(m, x, t)
    assert torch.equal(signed, m[1].weight[t].view(2, 1, 2, 2))
    assert torch.equal(attribute(m, x, t, method="saliency", abs=False), signed)  # the one-line form


def test_integrated_gradients_on_linear_model_is_x_times_weight():
    m = linear_model()
    x = torch.rand(2, 1, 2, 2)
    expected = x * m[1].weight[0].view(1, 1, 2, 2)  # zero baseline, constant gradient
    for diff in (False, True):
        ig = IntegratedGradients(n_steps=7).attribute(m, x, 0, differentiable=diff)
        assert torch.allclose(ig.detach(), expected, atol=1e-6)


def test_differentiable_ig_matches_captum(cam_net, images):
    ig = IntegratedGradients(n_steps=16)
    a, b = ig.attribute(cam_net, images, 1), ig.attribute(cam_net, images, 1, differentiable=True)
    assert torch.allclose(a, b.detach(), atol=1e-6, rtol=1e-4)


def test_integrated_gradients_of_is_complete():
    # completeness: sum IG = fn(x) - fn(baseline) for a smooth function, with a fine quadrature
    x, b = torch.rand(3, 1, 2, 2), torch.rand(3, 1, 2, 2)

    def fn(z):
        return (z.flatten(1) ** 3).sum(1)

    ig = integrated_gradients_of(fn, x, b, n_steps=20)
    assert torch.allclose(ig.flatten(1).sum(1), fn(x) - fn(b), atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_shapes(cam_net, images, method):
    e = explainer(method)
    out = e.attribute(cam_net, images, torch.tensor([0, 2]))
    expected = images.shape if e.shaped_like_x else (2, 1, 8, 8)
    assert out.shape == expected
    assert not out.requires_grad and torch.isfinite(out).all()


def test_the_registry_builds_the_classes_with_their_options():
    assert set(METHODS) == {
        "saliency",
        "integrated_gradients",
        "smoothgrad",
        "grad_cam",
        "guided_grad_cam",
        "cam",
        "ae",
    }
    assert explainer("integrated_gradients", n_steps=64) == IntegratedGradients(n_steps=64)
    assert explainer("integrated_gradients") != IntegratedGradients(n_steps=64)
    assert as_explainer(Cam(upsample=False)) == Cam(upsample=False)
    assert IntegratedGradients(n_steps=8).options() == {
        "n_steps": 8,
        "ig_method": "gausslegendre",
        "internal_batch_size": None,
    }
    assert {n for n, c in EXPLAINERS.items() if c.differentiable} == {
        "saliency",
        "integrated_gradients",
        "grad_cam",
        "cam",
    }
    with pytest.raises(InputError, match="options.*given with an explainer object"):
        as_explainer(Saliency(), abs=False)
    with pytest.raises(InputError, match="n_steps"):
        IntegratedGradients(n_steps=0)


def test_adversarial_explanation_map_is_the_search_change(cam_net, images):
    """The "ae" map is x' - x of the explanation-mode search with the explainer's config."""
    t = torch.tensor([1, 2])
    config = replace(AE_PAPER, steps=6, clip=True)
    found = rmse_search(cam_net, images, t, criterion=EXPLAIN, config=config).x_adv
    assert torch.equal(AdversarialExplanation(config).attribute(cam_net, images, t), found - images)
    assert not AdversarialExplanation.differentiable and AdversarialExplanation.shaped_like_x


def test_cam_equals_hand_computation(cam_net, images):
    t = torch.tensor([2, 1])
    feats = cam_net.features(cam_net.normalize(images))  # (2, 64, 2, 2)
    w = cam_net.classifier.weight
    hand = torch.stack([(w[t[i]][:, None, None] * feats[i]).sum(0) for i in range(2)])[:, None]
    small = Cam(upsample=False).attribute(cam_net, images, t)
    assert torch.allclose(small, hand, atol=1e-6)
    # the logit is the spatial mean of the CAM plus the bias
    all_maps = class_activation_maps(cam_net, images, upsample=False)
    assert torch.allclose(all_maps.mean(dim=(2, 3)) + cam_net.classifier.bias, cam_net(images), atol=1e-5)
    up = Cam().attribute(cam_net, images, t)
    assert torch.allclose(up, F.interpolate(hand, size=(8, 8), mode="bilinear"), atol=1e-6)


def test_grad_cam_uses_last_conv(cam_net):
    assert gradcam_layer(cam_net) is cam_net.features[-2]
    with pytest.raises(InputError, match="model"):
        gradcam_layer(linear_model())


@pytest.mark.parametrize("e", [Saliency(), IntegratedGradients(n_steps=4), GradCam(), Cam()], ids=repr)
def test_differentiable_maps_pass_gradients_to_weights(cam_net, images, e):
    assert e.differentiable
    a = e.attribute(cam_net, images, torch.tensor([0, 1]), differentiable=True)
    assert a.requires_grad
    (g,) = torch.autograd.grad(a.pow(2).sum(), cam_net.features[0].weight)
    assert g.abs().sum() > 0


@pytest.mark.parametrize("method", ["smoothgrad", "guided_grad_cam", "ae"])
def test_non_differentiable_methods_refuse(cam_net, images, method):
    with pytest.raises(InputError, match="differentiable"):
        explainer(method).attribute(cam_net, images, 0, differentiable=True)


def test_bad_inputs_name_the_argument(cam_net, images):
    with pytest.raises(InputError, match="x: pixels"):
        attribute(cam_net, images * 2, 0, method="saliency")
    with pytest.raises(InputTypeError, match="x"):
        attribute(cam_net, images.double().long(), 0, method="saliency")
    with pytest.raises(InputError, match="target"):
        attribute(cam_net, images, 3, method="saliency")
    with pytest.raises(InputError, match="target"):
        attribute(cam_net, images, torch.tensor([0, 5]), method="saliency")
    with pytest.raises(InputError, match="method.*valid: saliency, integrated_gradients"):
        attribute(cam_net, images, 0, method="lime")
    with pytest.raises(InputError, match="options"):
        attribute(cam_net, images, 0, method="saliency", n_steps=3)
    with pytest.raises(InputError, match="model: CAM"):
        attribute(build_model("small_cnn", num_classes=3, image_size=8), images, 0, method="cam")


def test_model_mode_restored(cam_net, images):
    cam_net.train()
    attribute(cam_net, images, 0, method="grad_cam")
    assert cam_net.training
    cam_net.eval()
    attribute(cam_net, images, 0, method="saliency")
    assert not cam_net.training


def test_grad_cam_of_a_resnet_weighs_its_last_feature_map_by_hand():
    """The pre-activation ResNet's last Conv2d is its 1 x 1 classifier after pooling: Grad-CAM must use the
    head's 8 x 8 feature map instead, sum_k mean_hw(d f_t / d A_k) A_k, then ReLU."""
    torch.manual_seed(0)
    model = build_model("resnet8", in_channels=3, image_size=32).double().eval()
    for p in model.parameters():  # the residual branches start at zero: give them weights
        p.data.normal_(0, 0.2)
    assert gradcam_layer(model) is model.head
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    t = torch.tensor([1, 4])
    feats = model.features(x)
    a = feats.detach().requires_grad_(True)
    logits = model.classifier(a.mean(dim=(2, 3), keepdim=True)).flatten(1)
    grads = torch.autograd.grad(logits.gather(1, t[:, None]).sum(), a)[0]
    hand = (grads.mean(dim=(2, 3), keepdim=True) * feats).sum(1, keepdim=True).clamp(min=0)
    maps = GradCam(upsample=False).attribute(model, x, t)
    assert hand.shape[-1] == 8 and hand.abs().max() > 0
    assert torch.allclose(maps, hand, atol=1e-10)


@pytest.mark.parametrize(
    "method", ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"]
)
def test_differentiable_ig_matches_captums_for_every_quadrature(method):
    """quadrature() rebuilds Captum's private nodes and weights: IG of a nonlinear net matches Captum's."""
    from captum.attr import IntegratedGradients as CaptumIG

    from advexp_lib.attributions import integrated_gradients_of

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)
    )
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    net = net.double()
    y = torch.tensor([0, 2])
    ours = integrated_gradients_of(
        lambda z: net(z).gather(1, y[:, None])[:, 0], x, torch.zeros_like(x), n_steps=7, ig_method=method
    )
    theirs = CaptumIG(net).attribute(x, target=y, n_steps=7, method=method)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-9)  # Captum builds some nodes in float32
