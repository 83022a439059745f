"""Attacks on explanations: the ISA (Boopathy et al.) and the top-k attribution attack."""

import pytest
import torch

from advexp_lib import InputError
from advexp_lib.attacks import sneaking
from advexp_lib.attacks.sneaking import interpretability_sneaking_attack, sneaking_attack
from advexp_lib.attacks.topk import topk_attribution_attack
from advexp_lib.attributions import Cam, IntegratedGradients
from advexp_lib.metrics import map_discrepancy, top_k_intersection
from advexp_lib.models import CamCNN


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
    small = Cam(upsample=False)
    cam = {"y": small.attribute(net, x, y), "t": small.attribute(net, x, t)}
    for h in r.hidden.values():
        for k, p in enumerate(r.multiples):
            xa = h["x_adv"][k]
            assert (
                ((xa - x).flatten(1).abs().amax(1) <= (p * r.eps).clamp(max=0.5) + 1e-6).all()
                and xa.min() >= 0
                and xa.max() <= 1
            )
            with torch.no_grad():
                assert torch.equal(h["success"][k], net(xa).argmax(1) == t)
            d1 = map_discrepancy(cam["y"], small.attribute(net, xa, y))
            d1t = map_discrepancy(cam["t"], small.attribute(net, xa, t))
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

    monkeypatch.setattr(sneaking, "sneaking_attack", fake)
    r = interpretability_sneaking_attack(net, x, y, t, multiples=(1.0,), measures=("one",))
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
        plain, ok0 = sneaking_attack(net, x, y, t, eps=eps, gamma=torch.zeros(24), measure=measure)
        hiding, ok1 = sneaking_attack(net, x, y, t, eps=eps, gamma=torch.full((24,), 0.02), measure=measure)
        both = ok0 & ok1
        assert both.sum() >= 4

        def d(z, c):
            small = Cam(upsample=False)
            return map_discrepancy(small.attribute(net, x, c), small.attribute(net, z, c))

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
    with pytest.raises(InputError, match="explainer: the ISA descends the map"):
        interpretability_sneaking_attack(net, x, y, (y + 1) % 3, explainer="smoothgrad")
    with pytest.raises(InputError, match="method"):
        interpretability_sneaking_attack(net, x, y, (y + 1) % 3, explainer="lime")
    with pytest.raises(InputError, match="multiples"):
        interpretability_sneaking_attack(net, x, y, (y + 1) % 3, multiples=(0.5,))


def test_topk_attack_never_changes_the_prediction(net, batch):
    x, y, _ = batch
    ig = IntegratedGradients(n_steps=4)
    r = topk_attribution_attack(net, x, eps=0.3, k=10, steps=12, step_size=0.1, explainer=ig)
    with torch.no_grad():
        assert torch.equal(net(r.x_adv).argmax(1), y)
    assert torch.equal(r.labels, y)
    assert ((r.x_adv - x).abs().amax() <= 0.3 + 1e-6) and r.x_adv.min() >= 0 and r.x_adv.max() <= 1
    assert torch.allclose(r.intersection, top_k_intersection(r.maps, r.maps_adv, 10))
    assert (r.intersection < 1).any()  # it does move the top-k mass
    fresh = ig.attribute(net, r.x_adv, y)
    assert torch.allclose(fresh, r.maps_adv, atol=1e-5)


def test_topk_attack_rejects_label_changing_steps():
    # a 2-pixel linear net on the decision boundary's edge: any real step flips the label
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2, 2))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[1.0, 2.0], [0.0, 0.0]]))
        net[1].bias.copy_(torch.tensor([-1.5 + 1e-4, 0.0]))
    x = torch.tensor([[[[0.5, 0.5]]]])  # logit_0 = 1e-4 > 0 = logit_1
    r = topk_attribution_attack(net, x, eps=0.2, k=1, steps=5, explainer=IntegratedGradients(n_steps=4))
    assert torch.equal(r.x_adv, x) and r.accepted.item() == 0
    with pytest.raises(InputError, match="k"):
        topk_attribution_attack(net, x, eps=0.2, k=3)
    with pytest.raises(InputError, match="explainer: the attack descends the map"):
        topk_attribution_attack(net, x, eps=0.2, k=1, explainer="smoothgrad")


def test_isa_normalized_slope_takes_the_monotone_envelope_as_the_reference_does():
    from advexp_lib.attacks.sneaking import IsaResult

    x = torch.zeros(2, 1, 1, 2)

    def at(*sizes):  # images whose l-inf distance from x is each size
        return torch.tensor(sizes, dtype=torch.float32).reshape(-1, 1, 1, 1).expand(-1, 1, 1, 2).clone()

    hidden_one = {
        "x_adv": torch.stack([at(0.1, 0.1), at(0.2, 0.2), at(0.3, 0.3)]),
        "success": torch.tensor([[True, True], [True, True], [True, False]]),
        "one": torch.tensor([[0.8, 0.5], [0.9, 0.6], [0.4, 0.1]]),  # 0.9 is above the envelope's 0.8
        "two": torch.zeros(3, 2),
        "gamma": torch.zeros(3, 2),
    }
    r = IsaResult(
        torch.tensor([0.1, 0.1]),
        torch.tensor([True, True]),
        at(0.1, 0.1),
        {"one": torch.tensor([1.0, 1.0]), "two": torch.ones(2)},
        (1.0, 2.0, 3.0),
        {"one": hidden_one},
    )
    s = r.normalized_slope("one", x)
    # image 0: envelope 1, 0.8, 0.8, 0.4 up to eps 0.3: ((1 - 0.4) / (0.3 - 0.1)) / (1 / 0.1) = 0.3
    # image 1: its 3x attack failed, so its last point is (0.2, min(1, 0.5, 0.6)): (0.5 / 0.1) / 10 = 0.5
    torch.testing.assert_close(s, torch.tensor([0.3, 0.5], dtype=torch.float64))
    hidden_one["one"] = torch.ones(3, 2)  # no drop at all: undefined, as the reference skips it
    assert r.normalized_slope("one", x).isnan().all()


class _Quadratic(torch.nn.Module):
    """logits_c = sum_j w_cj x_j^2: saliency 2 |w_cj x_j| follows the input."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x):
        return x.flatten(1).pow(2) @ self.w.T


def test_attribution_stability_is_perfect_only_where_no_input_can_move_the_map():
    from advexp_book.experiments import attribution_stability
    from advexp_lib.attributions import Saliency

    torch.manual_seed(0)
    w = torch.randn(3, 16)
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3, bias=False))
    with torch.no_grad():
        linear[1].weight.copy_(w)
    x = torch.rand(8, 1, 4, 4) * 0.6 + 0.2
    s = attribution_stability(
        {"linear": linear, "quadratic": _Quadratic(w)}, x, eps=0.2, k=4, steps=20, explainer=Saliency()
    )
    # saliency of a linear model is |W_c| at every input: no attack can move it (the measure says "stable")
    assert torch.equal(s["linear"]["intersection"], torch.ones(8))
    assert torch.allclose(s["linear"]["kendall_tau"], torch.ones(8, dtype=s["linear"]["kendall_tau"].dtype))
    # a map that follows the input: the attack must move its top-k set somewhere (the measure can say no)
    assert (s["quadratic"]["intersection"] < 1).any()
    assert s["quadratic"]["kendall_tau"].mean() < 1


def test_isa_control_is_the_attack_alone_at_each_isa_budget(isa_net, isa_batch):
    """The equal-budget control: gamma = 0 at p x eps; at p = 1 it is the attack alone itself, so both
    baselines agree there, and at a larger p it is measured against its own budget, not the minimal one."""
    x, y, t = isa_batch
    r = interpretability_sneaking_attack(isa_net, x, y, t, multiples=(1.0, 2.0), search_steps=3, eps_max=0.5)
    assert r.alone["x_adv"].shape[:2] == (2, x.shape[0])
    torch.testing.assert_close(r.alone["x_adv"][0], r.x_attack)
    torch.testing.assert_close(r.alone["one"][0], r.baseline["one"])
    size = (r.alone["x_adv"][1] - x).flatten(1).abs().amax(1)
    assert (size <= (2 * r.eps).clamp(max=0.5) + 1e-6).all()
    with torch.no_grad():
        assert torch.equal(r.alone["success"][1], isa_net(r.alone["x_adv"][1]).argmax(1) == t)
    for m in ("one", "two"):
        a, ok_a = r.reduction(m, 0, against="minimal")
        b, ok_b = r.reduction(m, 0, against="equal")
        assert torch.equal(ok_a, ok_b) and torch.allclose(a[ok_a], b[ok_b])
        eq, ok = r.reduction(m, 1, against="equal")
        expected = 1 - r.hidden[m][m][1] / r.alone[m][1].clamp(min=1e-12)
        torch.testing.assert_close(eq[ok], expected[ok])
    with pytest.raises(InputError, match="against"):
        r.reduction("one", 0, against="same")
