import math

import pytest
import scipy.stats
import torch

from advexp_lib import InputError, metrics
from advexp_lib.attributions import Cam
from advexp_lib.metrics import (
    discrepancy,
    gini,
    kendall_tau,
    map_discrepancy,
    robust_accuracy_curve,
    top_k_intersection,
)
from advexp_lib.models import build_model

from tiny_models import linear_net


def test_gini_hand_computed_and_limits():
    # |a| sorted = [0, 0, 1, 3], n = 4: sum (2i - 5) a_i = 1*1 + 3*3 = 10; G = 10 / (4 * 4) = 0.625
    a = torch.tensor([[[[0.0, 3.0], [0.0, 1.0]]], [[[-3.0, 0.0], [1.0, 0.0]]]])
    assert torch.allclose(gini(a), torch.tensor([0.625, 0.625]))
    n = 50
    uniform = torch.full((1, 2, 5, 5), 0.7)
    one_hot = torch.zeros(1, 2, 5, 5)
    one_hot[0, 1, 2, 3] = -4.0
    assert gini(uniform).item() == pytest.approx(0.0, abs=1e-12)
    assert gini(one_hot).item() == pytest.approx((n - 1) / n)
    assert math.isnan(gini(torch.zeros(1, 4)).item())
    with pytest.raises(InputError, match="attributions"):
        gini(torch.tensor([1.0, 2.0]))


def test_gini_is_scale_invariant_and_higher_for_sparser_maps():
    a = torch.rand(3, 1, 6, 6)
    assert torch.allclose(gini(a), gini(5 * a))
    sparse = a * (a > 0.8)
    assert (gini(sparse) > gini(a)).all()


def test_kendall_tau_matches_scipy_including_ties():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(4, 1, 5, 5, generator=g)
    b = a + 0.3 * torch.rand(4, 1, 5, 5, generator=g)
    a[1] = (a[1] * 4).round()  # many ties in a
    b[2] = (b[2] * 3).round()  # many ties in b
    b[3] = -a[3]
    tau = kendall_tau(a, b)
    for i in range(4):
        ref = scipy.stats.kendalltau(a[i].flatten().numpy(), b[i].flatten().numpy()).statistic
        assert tau[i].item() == pytest.approx(ref, abs=1e-6)
    assert tau[3].item() == pytest.approx(-1.0)
    assert math.isnan(kendall_tau(torch.ones(1, 4), torch.rand(1, 4)).item())


def test_map_discrepancy_normalization_by_hand():
    a = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])  # range 4
    b = a + torch.tensor([[[[1.0, 0.0], [0.0, -1.0]]]])
    assert map_discrepancy(a, b).item() == pytest.approx(2 / 4)  # l1 = 2
    assert map_discrepancy(a, b, norm="l2").item() == pytest.approx(math.sqrt(2) / 4)
    # the range is the reference map's, not the perturbed one's
    assert map_discrepancy(b, a).item() == pytest.approx(2 / (3 - 1))
    with pytest.raises(InputError, match="norm"):
        map_discrepancy(a, b, norm="l3")
    with pytest.raises(InputError, match="maps_adv"):
        map_discrepancy(a, b[..., :1])


def test_one_two_all_class_discrepancy():
    torch.manual_seed(0)
    m = build_model("cam_cnn", num_classes=3)
    x = torch.rand(2, 1, 8, 8)
    xa = (x + 0.1 * torch.rand_like(x)).clamp(0, 1)
    y, t = torch.tensor([0, 1]), torch.tensor([2, 0])

    def d(c, upsample=False):  # by default at the feature-map resolution (2 x 2 here), as the paper
        cam = Cam(upsample=upsample)
        return map_discrepancy(cam.attribute(m, x, c), cam.attribute(m, xa, c))

    assert Cam(upsample=False).attribute(m, x, y).shape == (2, 1, 2, 2)
    assert torch.allclose(discrepancy(m, x, xa, y, measure="one"), d(y))
    assert torch.allclose(discrepancy(m, x, xa, y, measure="one", explainer=Cam()), d(y, True))
    assert not torch.allclose(d(y), d(y, True))  # the resolution does set the scale
    assert torch.allclose(discrepancy(m, x, xa, y, measure="two", targets=t), (d(y) + d(t)) / 2)
    assert torch.allclose(discrepancy(m, x, xa, y, measure="all"), (d(0) + d(1) + d(2)) / 3)
    assert torch.equal(discrepancy(m, x, x, y), torch.zeros(2))
    with pytest.raises(InputError, match="targets"):
        discrepancy(m, x, xa, y, measure="two")


def test_top_k_intersection_by_hand():
    a = torch.tensor([[5.0, -4.0, 3.0, 0.0, 1.0]])
    b = torch.tensor([[0.0, 4.0, 9.0, 8.0, 0.5]])
    assert top_k_intersection(a, b, 2).item() == 0.0  # by |value|: {0, 1} vs {2, 3}
    assert top_k_intersection(a, b, 3).item() == pytest.approx(2 / 3)  # {0,1,2} vs {1,2,3}
    assert top_k_intersection(a, b, 2, absolute=False).item() == pytest.approx(0.5)  # {0,2} vs {2,3}
    assert top_k_intersection(a, a, 5).item() == 1.0
    with pytest.raises(InputError, match="k"):
        top_k_intersection(a, b, 6)


def two_pixel_model():
    return linear_net([[1.0, 1.0], [-1.0, -1.0]], [0.0, 0.0])


def test_cumulative_robust_accuracy_is_non_increasing_and_starts_at_clean_accuracy():
    torch.manual_seed(0)
    m = two_pixel_model()
    with torch.no_grad():
        m[1].bias.copy_(torch.tensor([-1.0, 1.0]))  # class 0 iff x1 + x2 > 1
    x = torch.rand(40, 1, 1, 2)
    y = (x.flatten(1).sum(1) <= 1).long()
    y[:5] = 1 - y[:5]  # a few start misclassified
    eps, acc = robust_accuracy_curve(
        m, x, y, [0.3, 0.0, 0.1, 0.2, 0.05], steps=30, step_size=0.02, cumulative=True
    )
    assert eps.tolist() == [0.0, 0.05, 0.1, 0.2, 0.3]
    assert acc[0].item() == pytest.approx(metrics.accuracy(m, x, y))
    assert (acc[1:] <= acc[:-1]).all()
    assert acc[-1] < acc[0]  # the attack does work


def test_robust_accuracy_curve_attacks_each_budget_afresh_or_cumulatively(monkeypatch):
    # an attack that only "succeeds" at eps 0.1: independently, the images stand again at 0.2 (the reference
    # protocol); cumulatively, images broken at 0.1 stay broken at 0.2
    m = two_pixel_model()
    x = torch.full((4, 1, 1, 2), 0.9)
    y = torch.zeros(4, dtype=torch.long)

    def fake_pgd(model, xb, yb, *, eps, **kw):
        return torch.zeros_like(xb) if abs(eps - 0.1) < 1e-9 else xb

    monkeypatch.setattr(metrics, "pgd", fake_pgd)
    with torch.no_grad():
        m[1].bias.copy_(torch.tensor([0.0, 0.1]))  # at x = 0 class 1 wins: the fake attack succeeds
    eps, acc = robust_accuracy_curve(m, x, y, [0.0, 0.1, 0.2], cumulative=True)
    assert acc.tolist() == [1.0, 0.0, 0.0]  # not back to 1.0 at 0.2
    eps, acc = robust_accuracy_curve(m, x, y, [0.0, 0.1, 0.2])
    assert acc.tolist() == [1.0, 0.0, 1.0]  # every budget attacked from the clean images
    with pytest.raises(InputError, match="eps_grid"):
        robust_accuracy_curve(m, x, y, [0.1, -0.1])


def test_gini_over_a_mask_counts_only_its_entries_and_refuses_a_misshaped_one():
    from advexp_lib.metrics import gini

    a = torch.tensor([[0.0, 0.0, 1.0, 3.0], [5.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[False, False, True, True], [False, True, True, False]])
    # row 0 over (1, 3): (-1 * 1 + 1 * 3) / (2 * 4) = 0.25; row 1 over two zeros: undefined
    g = gini(a, mask=mask)
    assert g[0].item() == pytest.approx(0.25) and g[1].isnan()
    with pytest.raises(InputError, match="mask"):
        gini(a, mask=mask[:, :2])


def test_integrated_gradients_of_logistic_regression_is_x_times_its_weights():
    from advexp_lib.attributions import IntegratedGradients
    from advexp_lib.models import build_model

    model = build_model("linear", image_size=4).double()
    x = torch.rand(3, 1, 4, 4, dtype=torch.float64)
    y = torch.tensor([0, 3, 9])
    w = model.classifier.weight.detach()[y].reshape(3, 1, 4, 4) / 0.25  # the model's std
    torch.testing.assert_close(IntegratedGradients(n_steps=3).attribute(model, x, y), x * w)
