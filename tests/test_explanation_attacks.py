"""Attacks on explanations: ISA, the top-k attribution attack, and the drag experiment."""

import matplotlib
import pytest
import torch
from torch import nn

from advexp_lib import InputError, explanation_attacks
from advexp_lib.attributions import attribute
from advexp_lib.explanation_attacks import (
    explanation_shift,
    interpretability_sneaking_attack,
    topk_attribution_attack,
)
from advexp_lib.metrics import map_discrepancy, top_k_intersection
from advexp_lib.models import CamCNN, build_model
from advexp_lib.plotting import plot_attributions, plot_shift, plot_shift_distribution

from tiny_models import linear_net


@pytest.fixture
def net():
    torch.manual_seed(0)
    return CamCNN(num_classes=3, width=64)  # a small random net the targeted attacks can move within eps 0.3


@pytest.fixture
def isa_net():
    """The small random net with logits scaled up: the reference's step clip(1000 g, -1, 1) needs a gradient
    of a trained network's size to move at all."""
    torch.manual_seed(0)
    net = CamCNN(num_classes=3, width=64)
    with torch.no_grad():
        net.classifier.weight.mul_(200)
    return net


@pytest.fixture
def isa_batch(isa_net):
    x = torch.rand(24, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = isa_net(x)
    return x, logits.argmax(1), logits.argmin(1)


@pytest.fixture
def batch(net):
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = net(x)
    y = logits.argmax(1)
    t = logits.argmin(1)  # the least likely class: a real targeted attack
    return x, y, t


def test_isa_stays_within_its_budgets_and_reports_its_own_images(isa_net, isa_batch):
    net = isa_net
    x, y, t = isa_batch
    r = interpretability_sneaking_attack(net, x, y, t, multiples=(1.0, 1.5), search_steps=3, eps_max=0.5)
    assert (r.eps <= 0.5).all() and r.success.any()  # a 3-class random net is easy to move within 0.5
    assert ((r.x_attack - x).flatten(1).abs().amax(1) <= r.eps + 1e-7).all()
    cam = {
        "y": attribute(net, x, y, method="cam", upsample=False),
        "t": attribute(net, x, t, method="cam", upsample=False),
    }
    for h in r.hidden.values():
        for k, p in enumerate(r.multiples):
            xa = h["x_adv"][k]
            assert (
                ((xa - x).flatten(1).abs().amax(1) <= p * r.eps + 1e-6).all()
                and xa.min() >= 0
                and xa.max() <= 1
            )
            with torch.no_grad():
                assert torch.equal(h["success"][k], net(xa).argmax(1) == t)
            d1 = map_discrepancy(cam["y"], attribute(net, xa, y, method="cam", upsample=False))
            d1t = map_discrepancy(cam["t"], attribute(net, xa, t, method="cam", upsample=False))
            assert torch.allclose(h["one"][k], d1, rtol=1e-5) and torch.allclose(
                h["two"][k], (d1 + d1t) / 2, rtol=1e-5
            )
            assert (h["gamma"][k] >= 0).all() and (h["gamma"][k] <= 1).all()


def _reference_eps(e_star, rounds=10):
    """funcs.py's minimal-eps search, one image, success iff eps >= e_star: returns eps_max, the result."""
    eps, lo, hi = 0.05, 0.0, 1.0
    for _ in range(rounds):
        if eps >= e_star:
            hi, eps = eps, (lo + eps) / 2
        else:
            lo, eps = eps, min(2 * eps, (eps + hi) / 2)
    return hi


def _reference_gamma(g_star, rounds=10):
    """funcs.py's penalty search, one image, success iff gamma <= g_star: returns gamma_min, the result."""
    gamma, lo, hi = 5e-5, 0.0, 1.0
    for _ in range(rounds):
        if gamma <= g_star:
            lo, gamma = gamma, min(2 * gamma, (gamma + hi) / 2)
        else:
            hi, gamma = gamma, (lo + gamma) / 2
    return lo


def test_isa_searches_eps_and_gamma_as_the_reference(net, batch, monkeypatch):
    """A stand-in attack that succeeds iff eps >= e_i and gamma <= g_i: both searches end where the
    reference's (transcribed above, one scalar at a time) end, including its caps (gamma <= 5e-5 2^9)."""
    x, y, t = batch
    e_star = torch.tensor([0.013, 0.051, 0.2, 0.37, 0.6, 2.0], dtype=torch.float64)  # 2.0: beyond eps_max 1
    g_star = torch.tensor([1.3e-4, 3.1e-3, 0.02, 0.3, 0.9, 0.5], dtype=torch.float64)  # none on the grids
    seen = []

    def fake(model, x, y, targets, *, eps, gamma, measure="two", **kw):
        seen.append(measure)
        ok = (eps.double() >= e_star) & (gamma.double() <= g_star)
        return x + 0 * eps[:, None, None, None], ok

    monkeypatch.setattr(explanation_attacks, "sneaking_attack", fake)
    r = explanation_attacks.interpretability_sneaking_attack(
        net, x, y, t, multiples=(1.0,), measures=("one",)
    )
    expected_eps = torch.tensor([_reference_eps(e) for e in e_star.tolist()])
    assert torch.allclose(r.eps.double(), expected_eps.double(), rtol=1e-6)
    assert torch.equal(r.success, e_star <= 1.0)
    expected_gamma = torch.tensor([_reference_gamma(g) if e <= 1 else 0.0 for e, g in zip(e_star, g_star)])
    assert torch.allclose(r.hidden["one"]["gamma"][0].double(), expected_gamma.double(), rtol=1e-6)
    assert set(seen) == {"two", "one"}  # "two" with gamma = 0 is the attack alone


def test_gamma_lowers_the_discrepancy_the_attack_hides_from(isa_net, isa_batch):
    net = isa_net
    x, y, t = isa_batch
    eps = torch.full((x.shape[0],), 0.4)
    for measure, key in (("one", 0), ("two", 1)):
        plain, ok0 = explanation_attacks.sneaking_attack(
            net, x, y, t, eps=eps, gamma=torch.zeros(24), measure=measure
        )
        hiding, ok1 = explanation_attacks.sneaking_attack(
            net, x, y, t, eps=eps, gamma=torch.full((24,), 0.02), measure=measure
        )
        both = ok0 & ok1
        assert both.sum() >= 4

        def d(z, c):
            return map_discrepancy(
                attribute(net, x, c, method="cam", upsample=False),
                attribute(net, z, c, method="cam", upsample=False),
            )

        d_plain = [d(plain, y), (d(plain, y) + d(plain, t)) / 2][key]
        d_hiding = [d(hiding, y), (d(hiding, y) + d(hiding, t)) / 2][key]
        # a 10-step heuristic attack need not win on every image; on average it hides (with gamma ignored the
        # two runs would be identical); from the one-class measure clearly, from the two-class one less
        factor = 0.8 if measure == "one" else 1.0
        assert d_hiding[both].mean() < factor * d_plain[both].mean(), (measure, d_hiding[both], d_plain[both])


def test_isa_bad_arguments(net, batch):
    x, y, _ = batch
    with pytest.raises(InputError, match="targets"):
        interpretability_sneaking_attack(net, x, y, y)
    with pytest.raises(InputError, match="measures"):
        interpretability_sneaking_attack(net, x, y, (y + 1) % 3, measures=("three",))
    with pytest.raises(InputError, match="method"):
        interpretability_sneaking_attack(net, x, y, (y + 1) % 3, method="smoothgrad")
    with pytest.raises(InputError, match="multiples"):
        interpretability_sneaking_attack(net, x, y, (y + 1) % 3, multiples=(0.5,))


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


class ScaledLinear(nn.Module):
    """logits_c = a_c (w . x) + b_c: every class's saliency, at every input, is |w| up to the scale a_c."""

    def __init__(self, a, b, w):
        super().__init__()
        self.a, self.b, self.w = torch.tensor(a), torch.tensor(b), w

    def forward(self, x):
        return (x.flatten(1) @ self.w.flatten())[:, None] * self.a + self.b


def _images(n, shape=(1, 4, 4), seed=0):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed)) * 0.6 + 0.2


def test_shift_says_no_when_no_map_a_user_sees_changes():
    """Saliency equal for every class and input, up to scale: attacks flip the class, the share must be 0."""
    w = torch.randn(1, 4, 4, generator=torch.Generator().manual_seed(1))
    model = ScaledLinear([1.0, 2.0, 4.0], [0.0, -0.05, -0.15], w)  # powers of two: maps equal bit for bit
    x = _images(40)
    y = model(x).argmax(1)  # classes 0 (w.x < 0.05) and 2 (w.x > 0.05)
    r = explanation_shift(model, x, y, targets=2 - y, eps=0.5, attack="linf", steps=30)
    assert r.success.sum() >= 10  # the attack did flip many predictions
    assert (r.shift["saliency"][r.success] == 0).all()
    assert r.share["saliency"].value == 0.0 and r.share["saliency"].hi < 0.35
    assert torch.equal(
        r.rank["saliency"][r.success], torch.ones(int(r.success.sum()), dtype=r.rank["saliency"].dtype)
    )


def test_shift_says_yes_when_each_class_has_its_own_pixels():
    """Class c looks only at its own block of pixels: after a flip the user sees another block, the noise
    control sees the same one, so every successful attack exceeds the control: share 1."""
    w = torch.zeros(3, 16)
    for c in range(3):
        w[c, 5 * c : 5 * c + 5] = torch.linspace(0.5, 1.5, 5)
    model = linear_net(w, [0.0, 0.0, 0.0])
    x = _images(30)
    y = model(x).argmax(1)
    r = explanation_shift(model, x, y, eps=0.3, attack="linf", steps=40)
    ok = r.success
    assert ok.sum() >= 10 and r.share["saliency"].value == 1.0 and r.share["saliency"].lo > 0.7
    # D by hand: clean map |w_y| / max, new map |w_t| / max on disjoint pixels, range 1: D = sum of both
    a = w.abs() / w.abs().amax(1, keepdim=True)
    expected = a[r.y[ok]].sum(1) + a[r.adv_pred[ok]].sum(1)
    assert torch.allclose(r.shift["saliency"][ok], expected, rtol=1e-5)
    assert (r.control_shift["saliency"] == 0).all() and r.threshold["saliency"] == 0.0


def test_shift_control_has_the_attacks_rmse_and_the_figures(cam_net):
    x = _images(6, (1, 8, 8), seed=2)
    y = cam_net(x).argmax(1)
    r = explanation_shift(cam_net, x, y, method=["saliency", "cam"], eps=0.1, attack="rmse")
    assert r.x_adv.min() >= 0 and r.x_adv.max() <= 1 and r.x_control.min() >= 0 and r.x_control.max() <= 1
    attack_rmse = (r.x_adv - x).pow(2).mean((1, 2, 3)).sqrt()
    control_rmse = (r.x_control - x).pow(2).mean((1, 2, 3)).sqrt()
    assert (control_rmse <= attack_rmse + 1e-6).all() and (
        control_rmse >= 0.7 * attack_rmse
    ).all()  # clip only
    assert set(r.maps) == {"saliency", "cam"} and r.maps["cam"]["clean"].shape == (6, 8, 8)
    assert isinstance(plot_shift(r, method="cam"), matplotlib.figure.Figure)
    assert isinstance(plot_shift_distribution({"net": r}, method="saliency"), matplotlib.figure.Figure)
    with pytest.raises(InputError, match="targets"):
        explanation_shift(cam_net, x, y, eps=0.1, targets=y)


def test_plot_attributions_checks_titles(cam_net):
    x = _images(2, (1, 8, 8))
    maps = attribute(cam_net, x, 0, method="cam")
    assert isinstance(plot_attributions(x, [maps], ["cam"]), matplotlib.figure.Figure)
    with pytest.raises(InputError, match="titles"):
        plot_attributions(x, [maps], ["a", "b"])
