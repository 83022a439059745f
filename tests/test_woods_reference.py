"""The RMSE search computes what Woods et al.'s reference loop computes (tests/woods_reference.py).

On a small nonlinear float64 network with BatchNorm, so that the momentum
rule, the unit-RMSE scaling, the best buffer, the half-and-half mask and the
model mode during training all show in the numbers (a linear model cannot
tell the momentum rules apart), every mode of :func:`rmse_search` and the
adversarial-training transform is compared with the transcription: the
returned images, the distances, and the BatchNorm running averages the
training-mode search leaves behind.
"""

import copy
from dataclasses import replace

import pytest
import torch
from torch import nn
from woods_reference import ImproperMinimization, reference_ara, reference_search

from advexp_lib.adversarial_training import RmseAdversarialTraining
from advexp_lib.attacks import ARA_PAPER, SearchConfig, rmse, rmse_search
from advexp_lib.metrics import accuracy_robustness_area, ara_from_distances
from advexp_lib.models import HalfHuberReLU


def bn_net(seed=0):
    """conv-BN-halfHuber-conv-BN-ReLU-linear, 3 x 8 x 8 inputs, 4 classes, float64."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        HalfHuberReLU(0.5),
        nn.Conv2d(6, 8, 3, padding=1, stride=2),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 4),
    ).double()
    with torch.no_grad():
        net[-1].weight.mul_(4)  # logits that move with the input
        net(torch.rand(32, 3, 8, 8, dtype=torch.float64) * 0.8 + 0.1)  # running statistics unlike any batch's
    return net.eval()


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(8, 3, 8, 8, generator=g, dtype=torch.float64)
    y = bn_net()(x).argmax(1)  # correctly classified to start with: distances are not all 0
    y[0] = (y[0] + 1) % 4  # one misclassified from the start: distance 0
    return x, y


def close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("use_l2min,mode", [(True, "attack"), ("btr", "btr")])
def test_ara_modes_with_momentum_match_the_reference(batch, use_l2min, mode):
    x, y = batch
    net = bn_net()
    ref = reference_search(
        net, x, y, eps=3.0, steps=60, momentum=0.9, use_l2min=use_l2min, ensure_proper_minimization=False
    )
    ours = rmse_search(net, x, y, criterion=mode, config=SearchConfig(steps=60, eps=3.0, momentum=0.9))
    close(ours.x_adv, ref)
    close(ours.distances, rmse(ref - x))
    assert ours.distances[0] == 0  # misclassified (or at chance) from the start
    assert (ours.distances[1:] > 0).all()


class _Sizes(nn.Module):
    """Wraps a network and records the batch size of every forward pass."""

    def __init__(self, net):
        super().__init__()
        self.net, self.sizes = net, []

    def forward(self, x):
        self.sizes.append(x.shape[0])
        return self.net(x)


@pytest.mark.parametrize("use_l2min,mode", [(True, "attack"), ("btr", "btr")])
def test_settled_examples_leave_the_batch_without_changing_any_number(use_l2min, mode):
    # 24 images, 4 misclassified from the start: after step 0 the search runs on the other 20
    # (a wrong row bookkeeping would put some image's search on another's result)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(24, 3, 8, 8, generator=g, dtype=torch.float64)
    net = bn_net()
    y = net(x).argmax(1)
    y[[0, 7, 13, 22]] = (y[[0, 7, 13, 22]] + 1) % 4
    ref = reference_search(
        net, x, y, eps=3.0, steps=40, momentum=0.9, use_l2min=use_l2min, ensure_proper_minimization=False
    )
    counted = _Sizes(net).eval()
    ours = rmse_search(counted, x, y, criterion=mode, config=SearchConfig(steps=40, eps=3.0, momentum=0.9))
    assert counted.sizes[0] == 24 and set(counted.sizes[1:]) == {20}
    close(ours.x_adv, ref)
    close(ours.distances, rmse(ref - x))
    assert (ours.distances[[0, 7, 13, 22]] == 0).all()


def test_explanations_match_the_reference_and_its_late_check(batch):
    x, _ = batch
    net = bn_net()
    targets = (net(x).argmax(1) + 2) % 4
    ref = reference_search(net, x, targets, eps=0.1, steps=35, eps_overshoot=5.0, encourage_labels=True)
    ours = rmse_search(
        net,
        x,
        targets,
        criterion="explain",
        config=SearchConfig(steps=35, eps=0.1, overshoot=5.0),
        on_late="raise",
    )
    close(ours.x_adv, ref)
    assert not ours.unreliable.any()
    # a budget the path cannot reach by step T // 2: the reference refuses, and so do we
    with pytest.raises(ImproperMinimization):
        reference_search(net, x, targets, eps=0.1, steps=35, eps_overshoot=0.3, encourage_labels=True)
    late = rmse_search(
        net, x, targets, criterion="explain", config=SearchConfig(steps=35, eps=0.1, overshoot=0.3)
    )
    assert late.unreliable.all()


@pytest.mark.parametrize("minimal", [False, True])
def test_adversarial_training_searches_in_train_mode_like_the_reference(batch, minimal):
    """Half-and-half, train-mode BatchNorm over the whole batch, masked delta; same running averages after."""
    x, y = batch
    ref_net, our_net = bn_net(), bn_net()
    ref_net.train()
    our_net.train()
    torch.manual_seed(5)
    mask = torch.rand(x.shape[0]) < 0.5
    ref = reference_search(
        ref_net,
        x,
        y,
        eps=0.3 if minimal else 0.05,
        steps=7,
        use_l2min=minimal,
        affected=mask.double()[:, None, None, None],
        ensure_proper_minimization=False,
    )
    torch.manual_seed(5)  # the transform draws the same mask from the same RNG state
    ours = RmseAdversarialTraining(minimal=minimal, eps=0.3 if minimal else 0.05, steps=7, half=True)(
        our_net, x, y
    )
    close(ours, ref)
    assert torch.equal(ours[~mask], x[~mask])  # the other half stays clean
    for a, b in zip(our_net.modules(), ref_net.modules()):
        if isinstance(a, nn.BatchNorm2d):  # 7 (or 8) train-mode passes updated the averages alike
            close(a.running_mean, b.running_mean)
            close(a.running_var, b.running_var)
            assert a.num_batches_tracked == b.num_batches_tracked == 1 + 7 + minimal
    assert our_net.training


def test_l2min_trains_on_the_clean_image_where_no_flip_was_found(batch):
    x, y = batch
    net = bn_net()
    # far too small to flip most
    res = rmse_search(net, x, y, criterion="attack", config=SearchConfig(steps=7, eps=0.02))
    never = torch.isinf(res.distances)
    assert never.any()
    assert torch.equal(res.x_adv[never], x[never])  # delta = 0, as the reference's zero-initialized buffer


def test_eval_mode_search_leaves_batchnorm_untouched(batch):
    x, y = batch
    net = bn_net()
    before = copy.deepcopy(net.state_dict())
    rmse_search(net, x, y, criterion="attack", config=SearchConfig(steps=10, eps=1.0))
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_ara_against_the_reference_area(batch):
    """Our ARA integrates the step function exactly; the reference sums 1,000 histogram bins.

    On the same distances the two agree to within one bin of the largest
    distance (the reference's right-endpoint sum is at most one bin width
    short), and the distances themselves are the reference search's.
    """
    x, y = batch
    net = bn_net()
    res = accuracy_robustness_area(
        net, x, y, config=replace(ARA_PAPER, steps=80, eps=3.0), progress=False, on_late="flag"
    )
    ref = reference_search(
        net, x, y, eps=3.0, steps=80, momentum=0.9, use_l2min=True, ensure_proper_minimization=False
    )
    close(res.distances.double(), rmse(ref - x))
    ours, theirs = ara_from_distances(res.distances, 4), reference_ara(rmse(ref - x), 4)
    width = res.distances.max().item() / 1000
    assert theirs <= ours + 1e-12 and ours - theirs <= width
