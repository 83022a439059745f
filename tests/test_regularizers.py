import math

import pytest
import torch
from torch import nn

from advexp_lib import InputError
from advexp_lib.checkpoints import load_checkpoint
from advexp_lib.data import TensorImageDataset
from advexp_lib.models import build_model, tandem_margin
from advexp_lib.regularizers import AdaptivePsi, WoodsRegularizer
from advexp_lib.training import TrainConfig, train

from tiny_models import linear_net


def test_adaptive_psi_integrator_by_hand():
    p = AdaptivePsi(target=1.5, k_psi0=220.0, k_psi=0.02, eps_better=1.0, eps_worse=0.01)
    assert p.psi == 220.0
    p.update(0.5)  # -ln(0.5 / 1.5) = 1.0986 -> clipped to +1
    assert p.integral == pytest.approx(1.0) and p.psi == pytest.approx(220 * math.exp(0.02))
    p.update(3.0)  # -ln 2 = -0.693 -> clipped to -0.01
    assert p.integral == pytest.approx(0.99)
    p.update(1.5 * math.exp(-0.25))  # inside the clip: +0.25
    assert p.integral == pytest.approx(1.24)
    for _ in range(500):
        p.update(10.0)
    assert p.integral == 0.0 and p.psi == 220.0  # I never goes below 0
    with pytest.raises(InputError, match="ce"):
        p.update(float("nan"))


def test_tandem_margin():
    logits = torch.tensor([[3.0, 1.0, 2.5], [0.0, 4.0, -1.0]])
    assert torch.allclose(tandem_margin(logits, torch.tensor([0, 2])), torch.tensor([0.5, -5.0]))


def linear_model(w):
    return linear_net(w, None, torch.float64)


def test_penalty_equals_hand_computed_gradient_norm_float64():
    w = torch.tensor(
        [[1.0, -2.0, 0.5, 0.0], [0.3, 0.1, -1.0, 2.0], [0.0, 1.0, 1.0, 1.0]], dtype=torch.float64
    )
    m = linear_model(w)
    x = torch.rand(5, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 0, 1])
    logits = m(x)
    reg = WoodsRegularizer(zeta=1.0, psi=3.0)  # always the tandem output
    loss, stats = reg(m, x, y, logits)
    runner_up = logits.detach().masked_fill(nn.functional.one_hot(y, 3).bool(), -1e9).argmax(1)
    grads = w[y] - w[runner_up]  # d(g_y - g_j*)/dx for a linear model
    assert stats["grad_penalty"] == pytest.approx(grads.pow(2).mean().item(), rel=1e-12)
    assert loss.item() == pytest.approx(3.0 * grads.pow(2).mean().item(), rel=1e-12)


def test_random_output_choice_and_z():
    w = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)  # every row |w_k|^3 = 2
    m = linear_model(w)
    x = torch.rand(64, 1, 1, 2, dtype=torch.float64, requires_grad=True)
    _, stats = WoodsRegularizer(zeta=0.0, z=3.0, psi=1.0)(m, x, torch.zeros(64, dtype=torch.long), m(x))
    assert stats["grad_penalty"] == pytest.approx(1.0, rel=1e-12)  # mean |G|^3 = 2 / 2 pixels


@pytest.mark.parametrize("activation", ["half_huber", "relu"])
def test_double_backprop_reaches_weights(activation):
    torch.manual_seed(0)
    m = build_model("small_cnn", num_classes=3, image_size=8, activation=activation)
    x = torch.rand(4, 1, 8, 8, requires_grad=True)
    loss, _ = WoodsRegularizer(psi=1.0)(m, x, torch.tensor([0, 1, 2, 0]), m(x))
    loss.backward()
    first_conv = m.features[0].weight.grad
    assert first_conv is not None and first_conv.abs().sum() > 0


def test_penalty_weight_gradient_matches_finite_differences():
    """gradcheck of d penalty / d weights through double backprop (half-Huber, float64)."""
    torch.manual_seed(0)
    x = torch.rand(3, 4, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2])
    from advexp_lib.models import HalfHuberReLU

    act = HalfHuberReLU(0.5)

    def penalty(w1, w2):
        logits = act(x @ w1.T + 0.2) @ w2.T
        s = tandem_margin(logits, y)
        (g,) = torch.autograd.grad(s.sum(), x, create_graph=True)
        return g.pow(2).mean()

    w1 = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(penalty, (w1, w2))


def test_psi_goes_into_history_checkpoint_and_resume(tmp_path):
    torch.manual_seed(0)
    x = torch.rand(64, 1, 8, 8)
    data = TensorImageDataset(x, (x.mean(dim=(1, 2, 3)) > 0.5).long(), ("a", "b"))
    cfg = TrainConfig(num_epochs=2, batch_size=16)

    def run(path, epochs_cfg):
        torch.manual_seed(0)
        m = build_model("small_cnn", num_classes=2, image_size=8, activation="half_huber")
        reg = WoodsRegularizer(psi=AdaptivePsi(target=1.0, k_psi0=1.0))
        return train(m, data, epochs_cfg, loss_term=reg, checkpoint=path, progress=False), reg

    h, reg = run(tmp_path / "a.pt", cfg)
    assert all({"psi", "psi_integral", "grad_penalty"} <= set(r) for r in h)
    assert reg.psi.integral > 0  # CE < target from the start: psi rose
    assert load_checkpoint(tmp_path / "a.pt")["hooks"]["loss_term"]["psi_integral"] == reg.psi.integral
    h2, reg2 = run(tmp_path / "a.pt", cfg)  # resumes a finished run: restores I, trains nothing
    assert reg2.psi.integral == reg.psi.integral and h2 == h


def test_psi_is_updated_with_the_batchs_own_ce_before_its_penalty():
    """As the reference's _model_train_batch: I += clip(-ln(CE / L_target)), then L = CE + psi mean|G|^2."""
    torch.manual_seed(0)
    x = torch.rand(16, 1, 8, 8)
    y = torch.arange(16) % 2
    model = build_model("small_cnn", num_classes=2, image_size=8, activation="half_huber")
    with torch.no_grad():
        ce = nn.functional.cross_entropy(model(x), y).item()  # the first batch's CE, before any step
    target = 2.0 * ce  # CE below target: -ln(0.5) = 0.693, inside the clip
    reg = WoodsRegularizer(psi=AdaptivePsi(target=target, k_psi0=3.0, k_psi=0.5))
    history = train(
        model,
        TensorImageDataset(x, y, ("a", "b")),
        TrainConfig(num_epochs=1, batch_size=16),
        loss_term=reg,
        progress=False,
    )
    expected_psi = 3.0 * math.exp(0.5 * math.log(2.0))  # updated before use: not k_psi0 = 3
    assert history[0]["psi"] == pytest.approx(expected_psi, rel=1e-6)
    assert history[0]["loss"] == pytest.approx(ce + expected_psi * history[0]["grad_penalty"], rel=1e-5)
