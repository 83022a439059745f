"""Property-based tests (hypothesis): ARA, the RMSE search, PGD, ISA, clipping, Gini, discrepancy.

Small shapes, tiny models, ``deadline=None`` and modest ``max_examples`` keep
each test within seconds on 2 CPU cores. Images are drawn from a seed (not
element by element), so hypothesis explores shapes, budgets and step counts.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

from advexp_lib import attacks, metrics
from advexp_lib.attacks import sneaking
from advexp_lib.models import build_model

FAST = settings(deadline=None, max_examples=100)

seeds = st.integers(0, 2**31 - 1)
shapes = st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(2, 5), st.integers(2, 5))  # N, C, H, W


def _images(seed, shape):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _linear(seed, shape, classes=3):
    torch.manual_seed(seed)
    n, c, h, w = shape
    return nn.Sequential(
        nn.Flatten(), nn.Linear(c * h * w, classes), nn.Tanh(), nn.Linear(classes, classes)
    ).eval()


def _labels(seed, n, classes=3):
    return torch.randint(classes, (n,), generator=torch.Generator().manual_seed(seed + 1))


# ------------------------------------------------------------------------------------------------- ARA

distance_lists = st.lists(
    st.floats(0.0, 10.0, allow_nan=False, allow_infinity=False), min_size=1, max_size=40
)


@settings(deadline=None, max_examples=300)
@given(d=distance_lists, num_classes=st.integers(1, 20))
def test_ara_is_nonnegative_and_below_the_integral_bound(d, num_classes):
    ara = metrics.ara_from_distances(torch.tensor(d, dtype=torch.float64), num_classes)
    assert ara >= 0.0
    assert ara <= (1 - 1 / num_classes) * max(d) * (1 + 1e-12) + 1e-15


@settings(deadline=None, max_examples=300)
@given(
    d=distance_lists,
    grow=st.lists(st.floats(0.0, 5.0), min_size=40, max_size=40),
    num_classes=st.integers(2, 20),
)
def test_ara_is_monotone_when_distances_grow(d, grow, num_classes):
    before = torch.tensor(d, dtype=torch.float64)
    after = before + torch.tensor(grow[: len(d)], dtype=torch.float64)
    assert (
        metrics.ara_from_distances(after, num_classes)
        >= metrics.ara_from_distances(before, num_classes) - 1e-12
    )


# ------------------------------------------------------------------------------------------- RMSE search


def _l2_search(seed, shape, eps, steps, overshoot, momentum=0.0, **kw):
    """The "budget" search on the seeded linear model: x, the result, RMSE(x_adv - x) and the first step."""
    x = _images(seed, shape)
    res = attacks.rmse_search(
        _linear(seed, shape),
        x,
        _labels(seed, shape[0]),
        criterion="budget",
        config=attacks.SearchConfig(steps=steps, eps=eps, momentum=momentum, overshoot=overshoot),
        **kw,
    )
    return x, res, attacks.rmse(res.x_adv - x), attacks.step_sizes(eps, steps, overshoot)[0].item()


@FAST
@given(
    seed=seeds,
    shape=shapes,
    eps=st.floats(0.01, 2.0),
    steps=st.integers(1, 8),
    overshoot=st.floats(0.5, 5.0),
    half=st.booleans(),
)
def test_rmse_search_l2_never_leaves_its_budget_by_more_than_the_first_step(
    seed, shape, eps, steps, overshoot, half
):
    mask = (torch.arange(shape[0]) % 2 == 0) if half else None
    x, res, r, first = _l2_search(seed, shape, eps, steps, overshoot, mask=mask)
    assert (r <= (eps + first) * (1 + 1e-5)).all(), (r.max().item(), eps, first)
    assert torch.allclose(res.distances, r, atol=1e-6)
    if mask is not None:
        assert torch.equal(res.x_adv[~mask], x[~mask])  # unmasked images never move


@settings(deadline=None, max_examples=100, derandomize=True)
@given(
    seed=seeds,
    shape=shapes,
    eps=st.floats(0.01, 2.0),
    steps=st.integers(1, 8),
    overshoot=st.floats(0.5, 5.0),
    momentum=st.floats(0.1, 0.95),
)
def test_rmse_search_l2_with_momentum_also_keeps_the_first_step_bound(
    seed, shape, eps, steps, overshoot, momentum
):
    """Without momentum the first-step bound follows by induction (outside the budget each step walks straight
    back along -delta). With momentum it is not proven, since the velocity may still point outward when the
    flag says shrink; it held on 1,500 random cases, so it is checked on a fixed (derandomized) sample, with
    the bound that always holds: RMSE <= the total path length eps * overshoot."""
    _, _, r, first = _l2_search(seed, shape, eps, steps, overshoot, momentum=momentum)
    assert (r <= eps * overshoot * (1 + 1e-5)).all()
    assert (r <= (eps + first) * (1 + 1e-5)).all()


@FAST
@given(
    seed=seeds,
    shape=shapes,
    eps=st.floats(0.05, 3.0),
    steps=st.integers(1, 6),
    mode=st.sampled_from(tuple(attacks.CRITERIA)),
    momentum=st.sampled_from([0.0, 0.9]),
)
def test_rmse_search_clip_keeps_pixels_in_range(seed, shape, eps, steps, mode, momentum):
    x = _images(seed, shape)
    classes = _labels(seed, shape[0])  # y, or the targets of "explain"
    res = attacks.rmse_search(
        _linear(seed, shape),
        x,
        classes,
        criterion=mode,
        config=attacks.SearchConfig(steps=steps, eps=eps, momentum=momentum, clip=True),
    )
    assert res.x_adv.min() >= 0.0 and res.x_adv.max() <= 1.0


# ------------------------------------------------------------------------------------------------- PGD


@FAST
@given(
    seed=seeds,
    shape=shapes,
    eps=st.floats(0.0, 0.5),
    steps=st.integers(0, 6),
    step_size=st.floats(1e-3, 0.5),
    random_start=st.booleans(),
    clip=st.booleans(),
    targeted=st.booleans(),
)
def test_pgd_linf_never_exceeds_eps(seed, shape, eps, steps, step_size, random_start, clip, targeted):
    x = _images(seed, shape)
    lab = _labels(seed, shape[0])
    kw = {"targets": lab} if targeted else {"y": lab}
    xa = attacks.pgd(
        _linear(seed, shape),
        x,
        eps=eps,
        steps=steps,
        step_size=step_size,
        norm="linf",
        random_start=random_start,
        clip=clip,
        **kw,
    )
    assert (xa - x).abs().max() <= eps + 1e-6
    if clip:
        assert xa.min() >= 0.0 and xa.max() <= 1.0


@FAST
@given(
    seed=seeds,
    shape=shapes,
    eps=st.floats(0.0, 3.0),
    steps=st.integers(0, 6),
    step_size=st.floats(1e-3, 2.0),
    random_start=st.booleans(),
    clip=st.booleans(),
)
def test_pgd_l2_never_exceeds_eps(seed, shape, eps, steps, step_size, random_start, clip):
    x = _images(seed, shape)
    xa = attacks.pgd(
        _linear(seed, shape),
        x,
        _labels(seed, shape[0]),
        eps=eps,
        steps=steps,
        step_size=step_size,
        norm="l2",
        random_start=random_start,
        clip=clip,
    )
    assert ((xa - x).flatten(1).norm(dim=1) <= eps * (1 + 1e-5) + 1e-6).all()
    if clip:
        assert xa.min() >= 0.0 and xa.max() <= 1.0


# ------------------------------------------------------------------------------------------------- ISA


@pytest.fixture(scope="module")
def cam_model():
    torch.manual_seed(0)
    return build_model("cam_cnn", num_classes=3).eval()


@settings(deadline=None, max_examples=8)
@given(
    seed=seeds,
    n=st.integers(1, 2),
    eps_max=st.floats(0.02, 0.4),
    multiple=st.floats(1.0, 3.0),
    measure=st.sampled_from(["one", "two"]),
)
# found by hypothesis: the budget search started at eps_start 0.05, above eps_max
@example(seed=1, n=1, eps_max=0.03125, multiple=1.0, measure="one")
@example(seed=1, n=1, eps_max=0.0216, multiple=1.0, measure="two")
@example(seed=0, n=2, eps_max=0.0216, multiple=3.0, measure="two")
def test_isa_never_exceeds_its_eps(cam_model, seed, n, eps_max, multiple, measure):
    x = _images(seed, (n, 1, 8, 8))
    y = _labels(seed, n)
    targets = (y + 1) % 3
    res = sneaking.interpretability_sneaking_attack(
        cam_model,
        x,
        y,
        targets,
        measures=(measure,),
        multiples=(multiple,),
        eps_max=eps_max,
        steps=3,
        search_steps=2,
    )
    assert (res.eps <= eps_max).all()
    hidden_budget = (multiple * res.eps).clamp(max=eps_max)
    for z, budget in ((res.x_attack, res.eps), (res.hidden[measure]["x_adv"][0], hidden_budget)):
        linf = (z - x).flatten(1).abs().max(1).values
        assert (linf <= budget + 1e-6).all() and z.min() >= 0.0 and z.max() <= 1.0


# ------------------------------------------------------------------------------------ Gini, discrepancy

maps = st.tuples(seeds, st.integers(1, 3), st.integers(1, 60), st.floats(-3.0, 3.0), st.floats(0.0, 0.9))


def _map(seed, n, k, shift, zeros):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, k, generator=g) + shift
    m[torch.rand(n, k, generator=g) < zeros] = 0.0  # sparse maps too
    m[:, 0] = m[:, 0].where(m[:, 0] != 0, torch.ones(n))  # never all zero (Gini undefined there)
    return m


@settings(deadline=None, max_examples=200)
@given(spec=maps)
def test_gini_lies_in_zero_one(spec):
    g = metrics.gini(_map(*spec))
    assert (g >= 0).all() and (g < 1).all()


@settings(deadline=None, max_examples=200)
@given(spec=maps, norm=st.sampled_from(metrics.DISCREPANCY_NORMS))
def test_identical_maps_have_zero_discrepancy(spec, norm):
    m = _map(*spec)
    assert (metrics.map_discrepancy(m, m.clone(), norm=norm) == 0).all()
    k = max(1, m.shape[1] // 2)
    assert (metrics.top_k_intersection(m, m.clone(), k) == 1).all()
    tau = metrics.kendall_tau(m, m.clone())
    varying = m.amax(1) > m.amin(1)
    assert torch.allclose(tau[varying], torch.ones_like(tau[varying]))


@settings(deadline=None, max_examples=10)
@given(seed=seeds, n=st.integers(1, 3), measure=st.sampled_from(metrics.DISCREPANCY_MEASURES))
def test_discrepancy_of_an_image_with_itself_is_zero(cam_model, seed, n, measure):
    x = _images(seed, (n, 1, 8, 8))
    y = _labels(seed, n)
    d = metrics.discrepancy(cam_model, x, x.clone(), y, measure=measure, targets=(y + 1) % 3)
    assert d.shape == (n,) and (d == 0).all() and not math.isnan(d.sum().item())
