"""Adversarial training as input transforms: Woods et al.'s RMSE search and Madry's PGD."""

import pytest
import torch
from torch import nn

from advexp_lib import InputError
from advexp_lib.adversarial_training import PgdAdversarialTraining, RmseAdversarialTraining
from advexp_lib.attacks import pgd
from advexp_lib.models import CamCNN


@pytest.fixture
def net():
    torch.manual_seed(0)
    return CamCNN(num_classes=3, width=64)


@pytest.fixture
def batch(net):
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = net(x)
    return x, logits.argmax(1), logits.argmin(1)


def test_half_and_half_adversarial_training_perturbs_about_half():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x, y = torch.rand(200, 1, 4, 4), torch.randint(3, (200,))
    out = RmseAdversarialTraining(eps=0.05, steps=3, half=True)(model, x, y)
    changed = (out != x).flatten(1).any(1).float().mean().item()
    assert 0.35 < changed < 0.65
    assert model.training  # mode restored after the search


def test_pgd_adversarial_training_warmup(net, batch):
    x, y, _ = batch
    t = PgdAdversarialTraining(eps=0.3, steps=3, step_size=0.1, warmup_epochs=3)
    got = []
    for e in range(5):
        t.start_epoch(e, 5)
        got.append(t.current_eps)
    assert got == pytest.approx([0.1, 0.2, 0.3, 0.3, 0.3])
    torch.manual_seed(0)
    xa = t(net, x, y)
    assert (xa - x).abs().max() <= 0.3 + 1e-6
    torch.manual_seed(0)
    assert torch.equal(xa, pgd(net, x, y, eps=0.3, steps=3, step_size=0.1, random_start=True))
    with pytest.raises(InputError, match="norm"):
        PgdAdversarialTraining(norm="l1")


def test_boopathy_per_step_ramp_matches_their_schedule(net, batch):
    """The reference's eps_val(step): 0 up to s0, linear to eps at s1, then eps; no attack while 0."""
    x, y, _ = batch
    t = PgdAdversarialTraining(eps=0.3, steps=2, step_size=0.1, ramp_steps=(2, 6))
    got = []
    for s in range(9):
        t.start_epoch(s // 3, 3)  # epochs leave a per-step ramp alone
        t.start_step(s)
        got.append(t.current_eps)
    assert got == pytest.approx([0, 0, 0, 0.075, 0.15, 0.225, 0.3, 0.3, 0.3])
    t.start_step(1)
    assert torch.equal(t(net, x, y), x)  # eps 0: x' = x, as the reference skips the attack
    t.start_step(4)
    assert 0 < (t(net, x, y) - x).abs().max() <= 0.15 + 1e-6
    for bad in ((5, 5), (-1, 3), (2,), (1.5, 3)):
        with pytest.raises(InputError, match="ramp_steps"):
            PgdAdversarialTraining(ramp_steps=bad)
    with pytest.raises(InputError, match="not both"):
        PgdAdversarialTraining(ramp_steps=(1, 2), warmup_epochs=2)
