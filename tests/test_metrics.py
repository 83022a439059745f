import pytest
import torch

from advexp_lib import InputError
from advexp_lib.metrics import AraResult, accuracy, accuracy_robustness_area, ara_from_distances

from tiny_models import Linear2


def test_ara_of_hand_made_distances_equals_closed_form():
    # A(r) = 3/4 on [0, 1), 1/2 on [1, 2), 1/4 on [2, 3); with C = 2 only the first interval counts
    assert ara_from_distances(torch.tensor([0.0, 1.0, 2.0, 3.0]), 2) == pytest.approx(0.25)
    # C = 10: sum of (A - 0.1) over unit intervals = 0.65 + 0.4 + 0.15
    assert ara_from_distances(torch.tensor([0.0, 1.0, 2.0, 3.0]), 10) == pytest.approx(1.2)
    # all images equally robust: (1 - 1/C) * d
    assert ara_from_distances(torch.full((7,), 0.2), 4) == pytest.approx(0.15)
    assert ara_from_distances(torch.zeros(5), 10) == 0.0


def test_ara_rejects_bad_distances():
    with pytest.raises(ValueError, match="distances"):
        ara_from_distances(torch.tensor([0.1, float("inf")]), 10)


def test_curve_is_the_share_above_r():
    res = AraResult(
        0.0, torch.tensor([0.0, 0.3, 0.1, 0.2]), 0.75, "attack", 10, torch.zeros(4, dtype=torch.bool)
    )
    r, a = res.curve()
    assert r.tolist() == pytest.approx([0.0, 0.0, 0.1, 0.2, 0.3])
    assert a.tolist() == pytest.approx([0.75, 0.75, 0.5, 0.25, 0.0])


def test_ara_on_linear_model_matches_analytic_distances():
    m = Linear2()
    x = torch.tensor([[0.6, 0.4], [0.2, 0.9], [0.0, 0.0]], dtype=torch.float64).reshape(3, 1, 1, 2)
    y = torch.tensor([0, 0, 1])  # the last one is misclassified from the start: d = 0
    res = accuracy_robustness_area(m, x, y, progress=False)
    dw, db = m.w[0] - m.w[1], m.b[0] - m.b[1]
    exact = (x.flatten(1) @ dw + db).abs() / dw.norm() / 2**0.5
    exact[2] = 0.0
    assert torch.allclose(res.distances.double(), exact, rtol=0.02)
    assert res.accuracy == pytest.approx(2 / 3)
    assert res.ara == pytest.approx(ara_from_distances(exact, 2), rel=0.02)
    assert accuracy(m, x, y) == pytest.approx(2 / 3)


def test_a_result_taken_on_some_images_is_the_search_of_those_images():
    m = Linear2()
    x = torch.tensor([[0.6, 0.4], [0.2, 0.9], [0.0, 0.0]], dtype=torch.float64).reshape(3, 1, 1, 2)
    y = torch.tensor([0, 0, 1])
    full = accuracy_robustness_area(m, x, y, progress=False)
    part = full.take(slice(1, 3))
    alone = accuracy_robustness_area(m, x[1:], y[1:], progress=False)
    torch.testing.assert_close(part.distances, alone.distances)
    assert part.ara == pytest.approx(alone.ara) and part.accuracy == pytest.approx(0.5) == alone.accuracy
    assert part.correct.tolist() == [True, False] and part.unreliable.shape == (2,)
    picked = full.take(torch.tensor([True, False, True]))
    assert picked.distances.tolist() == [full.distances[0].item(), 0.0]


def test_ara_rejects_unknown_kind():
    with pytest.raises(InputError, match="kind: unknown value 'worst'.*btr"):
        accuracy_robustness_area(Linear2(), torch.zeros(1, 1, 1, 2), torch.tensor([0]), kind="worst")


def test_ara_interval_resamples_images_and_matches_the_point_value():
    from advexp_lib.metrics import ara_interval

    d = torch.linspace(0.0, 2.0, 41, dtype=torch.float64)
    est = ara_interval(d, 10)
    assert est.value == pytest.approx(ara_from_distances(d, 10)) and est.n == 41
    assert est.lo < est.value < est.hi
    # every resample is a multiset of d: the interval is the 2.5% and 97.5% quantiles of the ARA of resampled
    # multisets, here drawn independently (another generator, many more draws): equal within Monte Carlo error
    g = torch.Generator().manual_seed(7)
    idx = torch.randint(41, (20000, 41), generator=g)
    direct = torch.tensor([ara_from_distances(d[i], 10) for i in idx], dtype=torch.float64)
    lo, hi = torch.quantile(direct.double(), torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    assert est.lo == pytest.approx(lo, abs=0.05 * (hi - lo)) and est.hi == pytest.approx(
        hi, abs=0.05 * (hi - lo)
    )
    assert ara_interval(torch.full((5,), 0.3), 10).hi == pytest.approx(0.3 * 0.9)


def test_ara_ratio_pairs_images_and_rejects_mismatched_inputs():
    from advexp_lib.metrics import ara_ratio

    g = torch.Generator().manual_seed(1)
    ref = torch.rand(60, generator=g, dtype=torch.float64)
    # exactly twice as far on every image: every paired resample has ratio 2, an unpaired one would not
    est = ara_ratio(2 * ref, ref, 10)
    assert est.value == pytest.approx(2.0) and est.lo == pytest.approx(2.0) and est.hi == pytest.approx(2.0)
    noisy = ara_ratio(ref.flip(0) * 2, ref, 10)
    assert noisy.hi - noisy.lo > 0.05  # pairs broken by the flip: the interval opens
    with pytest.raises(InputError, match="reference_distances"):
        ara_ratio(ref, ref[:5], 10)
    with pytest.raises(InputError, match="reference_distances"):
        ara_ratio(ref, torch.full((60,), float("inf")), 10)


def test_seed_level_ara_ratio_widens_with_the_spread_between_seeds():
    """One network per seed: a recipe whose seeds disagree (ARA x0.5 and x2) has a mean ratio of 1.25,
    but its hierarchical interval must reach below 1, where each seed's own paired interval does not."""
    from advexp_lib.metrics import ara_ratio, ara_ratio_over_seeds

    d = torch.rand(80, generator=torch.Generator().manual_seed(0)) * 0.4
    r = ara_ratio_over_seeds({"standard": [d, d], "robust": [0.5 * d, 2 * d]}, "standard", 10)
    assert r["robust"].value == pytest.approx(1.25)
    assert r["robust"].lo < 1 < r["robust"].hi and r["robust"].n == 80
    assert r["per_seed"]["robust"] == pytest.approx(
        [0.5 * r["per_seed"]["standard"][0], 2 * r["per_seed"]["standard"][1]]
    )
    assert ara_ratio(2 * d, d, 10).lo > 1  # one seed alone would look decisive
    same = ara_ratio_over_seeds({"standard": [d, d, d], "robust": [3 * d, 3 * d, 3 * d]}, "standard", 10)
    assert same["robust"].lo == pytest.approx(3) and same["robust"].hi == pytest.approx(3)
    with pytest.raises(InputError, match="same images"):
        ara_ratio_over_seeds({"standard": [d], "robust": [d[:10]]}, "standard", 10)
    with pytest.raises(InputError, match="list"):
        ara_ratio_over_seeds({"standard": d, "robust": [d]}, "standard", 10)


def test_taking_one_image_keeps_a_batch_and_taking_none_is_refused():
    m = Linear2()
    x = torch.tensor([[0.6, 0.4], [0.2, 0.9]], dtype=torch.float64).reshape(2, 1, 1, 2)
    res = accuracy_robustness_area(m, x, torch.tensor([0, 0]), progress=False)
    one = res.take(0)
    assert one.distances.shape == (1,) and one.interval().n == 1
    with pytest.raises(InputError, match="index: selects no image"):
        res.take(slice(0, 0))
