"""Attacks on explanations: ISA, the top-k attribution attack, and the drag experiment."""

import matplotlib
import pytest
import torch

from advexp_lib import InputError
from advexp_lib.attributions import attribute
from advexp_lib.explanation_attacks import (
    explanation_drag,
    interpretability_sneaking_attack,
    topk_attribution_attack,
)
from advexp_lib.metrics import map_discrepancy, top_k_intersection
from advexp_lib.models import CamCNN, build_model
from advexp_lib.plotting import plot_attributions, plot_drag


@pytest.fixture
def net():
    torch.manual_seed(0)
    return CamCNN(num_classes=3, width=64)  # a small random net the targeted attacks can move within eps 0.3


@pytest.fixture
def batch(net):
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = net(x)
    y = logits.argmax(1)
    t = logits.argmin(1)  # the least likely class: a real targeted attack
    return x, y, t


@pytest.mark.parametrize("measure", ["one", "two"])
def test_isa_stays_within_its_eps(net, batch, measure):
    x, y, t = batch
    r = interpretability_sneaking_attack(
        net, x, y, t, measure=measure, eps_max=0.3, steps=15, eps_search_steps=3, gamma_search_steps=3
    )
    linf = (r.x_adv - x).flatten(1).abs().amax(1)
    assert (linf <= r.eps + 1e-7).all() and (r.eps <= 0.3).all()
    assert r.x_adv.min() >= 0 and r.x_adv.max() <= 1
    with torch.no_grad():
        pred = net(r.x_adv).argmax(1)
    assert torch.equal(r.success, pred == t)
    assert r.success.any()  # eps_max 0.3 is plenty on an untrained 3-class net
    assert (r.gamma[~r.success] == 0).all() and (r.gamma >= 0).all()
    # reported discrepancies are those of the returned images
    d1 = map_discrepancy(attribute(net, x, y, method="cam"), attribute(net, r.x_adv, y, method="cam"))
    d1t = map_discrepancy(attribute(net, x, t, method="cam"), attribute(net, r.x_adv, t, method="cam"))
    assert torch.allclose(r.one_class, d1, rtol=1e-5)
    assert torch.allclose(r.two_class, (d1 + d1t) / 2, rtol=1e-5)


def test_isa_eps_bisection(net, batch):
    # 4 halvings of (0, 0.3]: every found eps lies on the grid 0.3 k / 16, k = 1 .. 16
    x, y, t = batch
    r = interpretability_sneaking_attack(
        net, x, y, t, eps_max=0.3, steps=15, eps_search_steps=4, gamma_search_steps=0
    )
    assert (r.gamma == 0).all()
    assert torch.equal(r.one_class, r.baseline_one)
    k = r.eps / (0.3 / 16)
    assert torch.allclose(k, k.round(), atol=1e-4) and (k.round() >= 1).all()
    assert (r.eps[r.success] < 0.3).any()  # the search did shrink the budget


def test_isa_bad_targets(net, batch):
    x, y, _ = batch
    with pytest.raises(InputError, match="targets"):
        interpretability_sneaking_attack(net, x, y, y)
    with pytest.raises(InputError, match="measure"):
        interpretability_sneaking_attack(net, x, y, (y + 1) % 3, measure="three")
    with pytest.raises(InputError, match="method"):
        interpretability_sneaking_attack(net, x, y, (y + 1) % 3, method="smoothgrad")


def test_topk_attack_never_changes_the_prediction(net, batch):
    x, y, _ = batch
    r = topk_attribution_attack(net, x, eps=0.3, k=10, steps=12, step_size=0.1, n_steps=4)
    with torch.no_grad():
        assert torch.equal(net(r.x_adv).argmax(1), y)
    assert torch.equal(r.labels, y)
    assert ((r.x_adv - x).abs().amax() <= 0.3 + 1e-6) and r.x_adv.min() >= 0 and r.x_adv.max() <= 1
    assert torch.allclose(r.intersection, top_k_intersection(r.maps, r.maps_adv, 10))
    assert (r.intersection < 1).any()  # it does move the top-k mass
    fresh = attribute(net, r.x_adv, y, method="integrated_gradients", n_steps=4)
    assert torch.allclose(fresh, r.maps_adv, atol=1e-5)


def test_topk_attack_rejects_label_changing_steps():
    # a 2-pixel linear net on the decision boundary's edge: any real step flips the label
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2, 2))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[1.0, 2.0], [0.0, 0.0]]))
        net[1].bias.copy_(torch.tensor([-1.5 + 1e-4, 0.0]))
    x = torch.tensor([[[[0.5, 0.5]]]])  # logit_0 = 1e-4 > 0 = logit_1
    r = topk_attribution_attack(net, x, eps=0.2, k=1, steps=5, n_steps=4)
    assert torch.equal(r.x_adv, x) and r.accepted.item() == 0
    with pytest.raises(InputError, match="k"):
        topk_attribution_attack(net, x, eps=0.2, k=3)


@pytest.fixture
def cam_net():
    torch.manual_seed(0)
    return build_model("cam_cnn", num_classes=3)


def test_explanation_drag_and_figures(cam_net):
    torch.manual_seed(0)
    x = torch.rand(6, 1, 8, 8)
    y = cam_net(x).argmax(1)  # treat predictions as labels: every image starts correct
    r = explanation_drag(cam_net, x, y, method=["saliency", "cam"], eps=0.2, attack="linf", steps=20)
    assert r.x_adv.shape == x.shape and (r.x_adv - x).abs().max() <= 0.2 + 1e-6
    assert r.success.dtype == torch.bool and set(r.flags) == {"saliency", "cam"}
    assert torch.equal(r.success, (r.adv_pred == r.targets) & (r.clean_pred == y))
    for m in ("saliency", "cam"):
        assert torch.equal(r.flags[m], r.corr_target[m] > r.corr_true[m])
        if r.success.any():
            assert r.share[m] == pytest.approx(r.flags[m][r.success].float().mean().item())
    rr = explanation_drag(cam_net, x, y, method="saliency", eps=0.1, attack="rmse")
    assert rr.x_adv.min() >= 0 and rr.x_adv.max() <= 1
    assert isinstance(plot_drag(r, method="cam"), matplotlib.figure.Figure)
    fig = plot_attributions(
        x[:2], [r.maps["saliency"]["attacked"][:2], r.maps["cam"]["attacked"][:2]], ["saliency", "cam"]
    )
    assert isinstance(fig, matplotlib.figure.Figure)
    with pytest.raises(InputError, match="targets"):
        explanation_drag(cam_net, x, y, eps=0.1, targets=y)
    with pytest.raises(InputError, match="titles"):
        plot_attributions(x[:2], [r.maps["cam"]["attacked"][:2]], ["a", "b"])
