import copy
import json

import pytest
import torch
from torch import nn

from advexp_lib import InputError, regularizers
from advexp_lib.attributions import class_activation_maps, integrated_gradients_of
from advexp_lib.data import TensorImageDataset
from advexp_lib.hooks import warmup_eps
from advexp_lib.models import build_model
from advexp_lib.regularizers import (
    IGNormRegularizer,
    InterpretabilityRegularizer,
    L1Penalty,
    cam_discrepancy,
)
from advexp_lib.training import TrainConfig, train


@pytest.fixture
def net():
    torch.manual_seed(0)
    return build_model("cam_cnn", num_classes=3)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(3)
    return torch.rand(4, 1, 8, 8, generator=g), torch.tensor([0, 1, 2, 1])


def test_l1_penalty_counts_every_parameter_by_hand():
    m = nn.Sequential(nn.Flatten(), nn.Linear(2, 2))
    with torch.no_grad():
        m[1].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.0]]))
        m[1].bias.copy_(torch.tensor([10.0, -10.0]))  # biases count too, as in the reference
    loss, stats = L1Penalty(lambda_=0.1)(m, None, None, None)
    assert stats["l1"] == pytest.approx(1 + 2 + 0.5 + 0 + 10 + 10) and loss.item() == pytest.approx(2.35)
    gw, gb = torch.autograd.grad(loss, [m[1].weight, m[1].bias])
    assert torch.equal(gw, 0.1 * torch.tensor([[1.0, -1.0], [1.0, 0.0]])) and torch.equal(
        gb, torch.tensor([0.1, -0.1])
    )
    assert L1Penalty().lambda_ == pytest.approx(0.01 / 50)  # the reference's 0.01 on sums over batches of 50


def test_cam_discrepancy_matches_its_formula(net, batch):
    x, y = batch
    xa = (x + 0.2 * torch.rand_like(x)).clamp(0, 1)
    with torch.no_grad():
        d = cam_discrepancy(net, class_activation_maps(net, x, upsample=False), xa, y)
        c, ca = class_activation_maps(net, x, upsample=False), class_activation_maps(net, xa, upsample=False)
        logits = net(xa)
    for i in range(4):
        others = [j for j in range(3) if j != y[i]]
        p = logits[i, others].softmax(0)
        l1 = [(ca[i, j] - c[i, j]).abs().sum() for j in range(3)]
        expected = l1[y[i]] + sum(p[k] * l1[j] for k, j in enumerate(others))
        assert d[i].item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.allclose(cam_discrepancy(net, c, x, y), torch.zeros(4), atol=1e-6)


@pytest.mark.parametrize("variant", ["int", "int2"])
def test_interpretability_regularizer_is_lambda_times_the_hand_computed_d_tilde(
    net, batch, variant, monkeypatch
):
    """With x' fixed (PGD replaced by a recorder), the loss is 0.01 mean D~ computed from the CAMs by hand."""
    x, y = batch
    xa = (x + 0.2 * torch.rand(x.shape, generator=torch.Generator().manual_seed(9))).clamp(0, 1)
    calls = []

    def fixed_pgd(model, xx, yy=None, **kw):
        calls.append((yy is None, kw.get("objective") is not None, kw["eps"], kw["random_start"]))
        return xa

    monkeypatch.setattr(regularizers, "pgd", fixed_pgd)
    reg = InterpretabilityRegularizer(
        lambda_=0.01, eps=0.3, steps=3, step_size=0.1, variant=variant, warmup_epochs=2
    )
    reg.start_epoch(0, 4)
    loss, stats = reg(net, x, y, net(x))
    # Int ascends D~ itself (an objective, no labels); Int2 ascends CE(y); both from a random start at eps / 2
    assert calls == [(variant == "int", variant == "int", pytest.approx(0.15), True)]
    with torch.no_grad():
        c, ca = class_activation_maps(net, x, upsample=False), class_activation_maps(net, xa, upsample=False)
        logits = net(xa)
    expected = []
    for i in range(4):
        others = [j for j in range(3) if j != y[i]]
        p = logits[i, others].softmax(0)
        l1 = [(ca[i, j] - c[i, j]).abs().sum() for j in range(3)]
        expected.append(l1[y[i]] + sum(p[k] * l1[j] for k, j in enumerate(others)))
    assert loss.item() == pytest.approx(0.01 * torch.stack(expected).mean().item(), rel=1e-5)
    (g,) = torch.autograd.grad(loss, net.features[0].weight)
    assert g.abs().sum() > 0
    with pytest.raises(InputError, match="variant"):
        InterpretabilityRegularizer(variant="int3")


@pytest.mark.parametrize("x_adv", ["ce", "ig"])
def test_ig_norm_is_lambda_times_a_float64_riemann_sum(net, batch, x_adv, monkeypatch):
    """With x' fixed, the loss is lambda mean ||IG||_1, the IG summed by hand in float64 (right Riemann)."""
    x, y = batch
    xa = (x + 0.1 * torch.rand(x.shape, generator=torch.Generator().manual_seed(4))).clamp(0, 1)
    seen = []

    def fixed_pgd(model, xx, yy=None, **kw):
        objective = kw.get("objective")
        seen.append(None if objective is None else objective(xa).detach())
        return xa

    monkeypatch.setattr(regularizers, "pgd", fixed_pgd)
    reg = IGNormRegularizer(
        lambda_=2.0,
        eps=0.2,
        steps=2,
        step_size=0.1,
        n_steps=5,
        ig_method="riemann_right",
        x_adv=x_adv,
        attack_nodes=3,
    )
    loss, stats = reg(net, x, y, net(x))
    net64 = copy.deepcopy(net).double()

    def hand_ig(nodes):
        total = torch.zeros_like(x, dtype=torch.float64)
        for k in range(1, nodes + 1):  # right Riemann sum: alpha = k / nodes, weight 1 / nodes
            z = (x.double() + k / nodes * (xa.double() - x.double())).requires_grad_(True)
            (g,) = torch.autograd.grad(nn.functional.cross_entropy(net64(z), y, reduction="sum"), z)
            total += g / nodes
        return ((xa.double() - x.double()) * total).abs().flatten(1).sum(1)

    assert loss.item() == pytest.approx(2.0 * hand_ig(5).mean().item(), rel=1e-4)
    if x_adv == "ig":  # PGD ascended ||IG|| itself, with the attack's 3 nodes
        assert torch.allclose(seen[0].double(), hand_ig(3), rtol=1e-4)
    else:
        assert seen == [None]  # plain PGD on CE(y)
    with pytest.raises(InputError, match="n_steps"):
        IGNormRegularizer(n_steps=1)
    with pytest.raises(InputError, match="x_adv"):
        IGNormRegularizer(x_adv="pgd")


def test_ig_of_the_loss_is_complete(net, batch):
    # sum_i IG_i(x, x') = l(x') - l(x): the bound IG-NORM's choice of x' relies on
    x, y = batch
    xa = (x + 0.05 * torch.rand_like(x)).clamp(0, 1)

    def loss(z):
        return nn.functional.cross_entropy(net(z), y, reduction="none")

    ig = integrated_gradients_of(loss, xa, x, n_steps=64, ig_method="riemann_trapezoid")
    assert torch.allclose(ig.flatten(1).sum(1), (loss(xa) - loss(x)).detach(), atol=2e-3, rtol=1e-2)


def test_warmup_eps():
    assert [warmup_eps(0.3, e, 3) for e in range(4)] == pytest.approx([0.1, 0.2, 0.3, 0.3])
    assert warmup_eps(0.3, 0, 0) == 0.3


def test_companion_recipes_are_in_the_table_and_run_one_epoch(isolated_data):
    from advexp_lib import recipes

    for name in ("pgd_linf", "int", "int2", "l1", "ig_norm", "cam_standard"):
        assert name in recipes.RECIPES
        r = recipes.recipe("mnist5k", name)
        assert r.arch == "cam_cnn"
        json.dumps(r.describe())  # hook kwargs are JSON (hashed into the cache key)
        loss_term, transform = (
            make() if make else None for make in (r.make_loss_term, r.make_input_transform)
        )
        torch.manual_seed(0)
        m = build_model("cam_cnn", num_classes=3)
        g = torch.Generator().manual_seed(0)
        data = TensorImageDataset(torch.rand(16, 1, 8, 8, generator=g), torch.randint(3, (16,), generator=g))
        hist = train(
            m,
            data,
            TrainConfig(num_epochs=1, batch_size=8),
            loss_term=loss_term,
            input_transform=transform,
            progress=False,
        )
        assert len(hist) == 1 and torch.isfinite(torch.tensor(hist[0]["loss"]))
    assert {"pgd_linf", "interpretability", "l1", "ig_norm"} <= set(recipes.HOOKS)
    assert recipes.recipe("cifar10", "pgd_linf").input_transform[1]["eps"] == pytest.approx(8 / 255)
