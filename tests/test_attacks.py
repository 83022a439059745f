"""Algorithm 1 (RMSE search) and PGD on tiny models with known answers."""

import math

import pytest
import torch
from torch import nn

from advexp_lib import InputError
from advexp_lib.attacks import LateCriterionWarning, SearchConfig, pgd, rmse, rmse_search, step_sizes

from tiny_models import Linear2


@pytest.fixture
def lin():
    return Linear2([[1.0, 2.0], [-1.0, 0.5]], [0.3, -0.2])


@pytest.fixture
def x2():
    return torch.tensor([[0.6, 0.4], [0.2, 0.9]], dtype=torch.float64).reshape(2, 1, 1, 2)


def analytic_rmse(model, x):
    """Distance to the boundary of a 2-class linear model, as RMSE: |f| / ||w0 - w1|| / sqrt(n)."""
    dw, db = model.w[0] - model.w[1], model.b[0] - model.b[1]
    return (x.flatten(1) @ dw + db).abs() / dw.norm() / math.sqrt(x[0].numel())


def test_step_ramp_sums_to_eps_times_overshoot():
    s = step_sizes(0.1, 35, 5.0)
    assert s.sum().item() == pytest.approx(0.5, rel=1e-12)
    assert torch.allclose(s[:-1] - s[1:], torch.full((34,), s[-1].item(), dtype=s.dtype))  # linear ramp
    assert s[-1].item() == pytest.approx(0.5 / (35 * 36 / 2))


def test_minimal_rmse_on_linear_classifier_within_2_percent(lin, x2):
    y = lin(x2).argmax(1)
    res = rmse_search(lin, x2, y, criterion="attack", config=SearchConfig(steps=450, eps=20.0, momentum=0.9))
    assert torch.allclose(res.distances, analytic_rmse(lin, x2), rtol=0.02)
    assert (lin(res.x_adv).argmax(1) != y).all()
    assert not res.unreliable.any()


def scalar_path(c0_boundary, sizes, push):
    """Reference: on a linear model delta stays on one line, c = RMSE along +gradient."""
    c, path = 0.0, [0.0]
    for s in sizes:
        c = c + s if push(c) else c - s  # direction = gradient if pushing, else -delta (back toward 0)
        path.append(c)
    return path


def test_direction_switches_on_budget_in_l2_mode(lin, x2):
    eps, steps, o = 0.05, 12, 5.0
    y = lin(x2).argmax(1)
    res = rmse_search(lin, x2, y, criterion="budget", config=SearchConfig(steps=steps, eps=eps, overshoot=o))
    path = scalar_path(None, step_sizes(eps, steps, o).tolist(), lambda c: c < eps)
    assert torch.allclose(rmse(res.x_adv - x2), torch.full((2,), abs(path[-1]), dtype=torch.float64))


def test_best_delta_is_smallest_that_met_the_criterion(lin, x2):
    eps, steps, o = 1.0, 20, 1.0
    y = lin(x2).argmax(1)
    res = rmse_search(lin, x2, y, criterion="attack", config=SearchConfig(steps=steps, eps=eps, overshoot=o))
    for i, b in enumerate(analytic_rmse(lin, x2).tolist()):
        path = scalar_path(None, step_sizes(eps, steps, o).tolist(), lambda c, b=b: c < b)
        met = [c for c in path if c >= b]
        # rel 1e-6: the reference's 1e-8 in d / (1e-8 + RMSE(d)) shortens each step by a relative
        # 1e-8 / RMSE(d), which this scalar path leaves out (tests/test_woods_reference.py checks it exactly)
        assert res.distances[i].item() == pytest.approx(min(met), rel=1e-6)
        assert rmse(res.x_adv[i : i + 1] - x2[i : i + 1]).item() == pytest.approx(min(met), rel=1e-6)


def test_btr_criterion_uses_chance_probability():
    # 3 classes, true-class probability starts at exactly chance in example 1
    m = Linear2([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], [0.0, 0.0, 0.0])
    x = torch.tensor([[0.9, 0.1], [0.0, 0.0]], dtype=torch.float64).reshape(2, 1, 1, 2)
    y = torch.tensor([0, 0])
    res = rmse_search(m, x, y, criterion="btr", config=SearchConfig(steps=200, eps=5.0))
    assert res.distances[1] == 0.0 and res.distances[0] > 0  # prob 1/3 is not above chance
    assert torch.softmax(m(res.x_adv), 1)[0, 0] <= 1 / 3 + 1e-9


def test_explain_mode_descends_toward_target_within_budget(lin, x2):
    targets = torch.tensor([1, 1])
    before = torch.softmax(lin(x2), 1)[:, 1]
    res = rmse_search(
        lin, x2, targets, criterion="explain", config=SearchConfig(steps=35, eps=0.1, overshoot=5.0)
    )
    assert (torch.softmax(lin(res.x_adv), 1)[:, 1] > before).all()
    assert (rmse(res.x_adv - x2) <= 0.1 + step_sizes(0.1, 35, 5.0)[0] + 1e-12).all()


def test_mask_leaves_other_examples_untouched_and_clip_keeps_range(lin, x2):
    y = lin(x2).argmax(1)
    res = rmse_search(
        lin,
        x2,
        y,
        criterion="budget",
        config=SearchConfig(steps=5, eps=0.5, clip=True),
        mask=torch.tensor([True, False]),
    )
    assert torch.equal(res.x_adv[1], x2[1]) and not torch.equal(res.x_adv[0], x2[0])
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1


def test_late_criterion_is_flagged_warned_or_raised(lin, x2):
    y = lin(x2).argmax(1)
    tiny = SearchConfig(steps=10, eps=0.01)  # far too small to flip
    res = rmse_search(lin, x2, y, criterion="attack", config=tiny)
    assert res.unreliable.all() and torch.isinf(res.distances).all()
    with pytest.warns(LateCriterionWarning, match="raise eps"):
        rmse_search(lin, x2, y, criterion="attack", config=tiny, on_late="warn")
    with pytest.raises(InputError, match="raise eps"):
        rmse_search(lin, x2, y, criterion="attack", config=tiny, on_late="raise")


def test_search_is_batched_not_per_example(lin, x2):
    y = lin(x2).argmax(1)
    calls = []
    lin.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    rmse_search(lin, x2, y, criterion="attack", config=SearchConfig(steps=10, eps=2.0))
    assert calls == [2] * 11  # one batched forward per step, plus the final scoring pass


def test_search_rejects_bad_arguments(lin, x2):
    y = torch.tensor([0, 0])
    cfg = SearchConfig(steps=2, eps=1.0)
    with pytest.raises(InputError, match="criterion: unknown value 'l3'"):
        rmse_search(lin, x2, y, criterion="l3", config=cfg)
    with pytest.raises(InputError, match="eps"):
        SearchConfig(steps=2, eps=0.0)
    with pytest.raises(InputError, match=r"y: labels must lie in \[0, 1\]"):
        rmse_search(lin, x2, torch.tensor([0, 5]), criterion="budget", config=cfg)
    with pytest.raises(InputError, match="x: pixels"):
        rmse_search(lin, x2 + 2, y, criterion="budget", config=cfg)


def test_pgd_linf_one_step_by_hand(lin, x2):
    y = torch.tensor([0, 0])
    out = pgd(lin, x2, y, eps=0.05, steps=1, step_size=0.03)
    # CE ascent for class 0 moves along sign(w1 - w0) = sign([-2, -1.5])
    assert torch.allclose(out - x2, torch.full_like(x2, -0.03))
    out = pgd(lin, x2, y, eps=0.05, steps=10, step_size=0.03)
    assert torch.allclose(out - x2, torch.full_like(x2, -0.05))  # projected onto the ball


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_stays_in_ball_and_pixel_range(norm):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.rand(8, 1, 4, 4)
    y = torch.randint(3, (8,))
    out = pgd(model, x, y, eps=0.3, steps=20, step_size=0.1, norm=norm, random_start=True)
    d = (out - x).flatten(1)
    size = d.abs().amax(1) if norm == "linf" else d.norm(dim=1)
    assert (size <= 0.3 + 1e-6).all() and out.min() >= 0 and out.max() <= 1
    assert nn.functional.cross_entropy(model(out), y) > nn.functional.cross_entropy(model(x), y)


def test_pgd_targeted_and_argument_checks(lin, x2):
    t = torch.tensor([1, 1])
    out = pgd(lin, x2, targets=t, eps=0.3, steps=20, step_size=0.05)
    assert (torch.softmax(lin(out), 1)[:, 1] > torch.softmax(lin(x2), 1)[:, 1]).all()
    with pytest.raises(InputError, match="exactly one"):
        pgd(lin, x2, eps=0.1)
    with pytest.raises(InputError, match="norm: unknown value 'l1'"):
        pgd(lin, x2, t, eps=0.1, norm="l1")


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("nhwc_in", [False, True])
def test_search_runs_nhwc_inside_and_returns_the_callers_layout(channels, nhwc_in):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(channels, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 3),
    )
    x = torch.rand(5, channels, 8, 8)
    if nhwc_in:
        x = x.contiguous(memory_format=torch.channels_last)
    seen = []
    model[0].register_forward_hook(lambda m, i, o: seen.append(i[0].stride(1)))
    y = model(x).argmax(1)
    seen.clear()
    res = rmse_search(model, x, y, criterion="attack", config=SearchConfig(steps=6, eps=5.0))
    assert set(seen) == {1}  # the model saw NHWC inputs at every step
    assert res.x_adv.stride() == x.stride()
    # the same search on a float64 copy (own rounding) agrees: the layout changes speed, not the result
    ref = rmse_search(
        model.double(), x.double(), y, criterion="attack", config=SearchConfig(steps=6, eps=5.0)
    )
    torch.testing.assert_close(res.distances.double(), ref.distances, rtol=1e-4, atol=1e-6)


class _OnePixelLogits(torch.nn.Module):
    """Two classes, decided by pixel (3, 3) alone: logits (5 - 10 x33, 10 x33 - 5)."""

    def forward(self, x):
        z = 10 * x[:, 0, 3, 3]
        return torch.stack([5 - z, z - 5], 1)


@pytest.mark.parametrize("start", [0.0, 1.0])
def test_clipped_search_moves_saturated_pixels(start):
    """A pixel at exactly 0 (or 1) must move: clamp's gradient is 0 at its bounds, so a search that
    differentiated through it could never leave a black background (or a white stroke)."""
    x = torch.zeros(2, 1, 8, 8)
    x[:, 0, 3, 3] = start
    target = torch.full((2,), 1 if start == 0.0 else 0)
    config = SearchConfig(steps=20, eps=0.5, overshoot=5.0, clip=True)
    r = rmse_search(_OnePixelLogits(), x, target, criterion="explain", config=config)
    moved = (r.x_adv - x)[:, 0, 3, 3]
    assert (moved.abs() > 0.5).all() and r.x_adv.min() >= 0 and r.x_adv.max() <= 1
    assert (_OnePixelLogits()(r.x_adv).argmax(1) == target).all()
