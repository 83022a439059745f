"""Experiments: the explanation shift (can a measure say no?), and its figures."""

import math

import matplotlib
import pytest
import torch
from torch import nn

from advexp_book.companion_eval import prose_rates
from advexp_book.experiments import explanation_shift
from advexp_book.figures import plot_attributions, plot_shift, plot_shift_distribution
from advexp_lib import InputError
from advexp_lib.attributions import Cam, Saliency
from advexp_lib.models import build_model

from tiny_models import linear_net


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
    r = explanation_shift(model, x, y, targets=2 - y, eps=0.5, attack="linf", linf_steps=30)
    assert r.success.sum() >= 10  # the attack did flip many predictions
    assert (r.shift["saliency"][r.success] == 0).all()
    assert r.share["saliency"].value == 0.0 and r.share["saliency"].hi < 0.35
    assert torch.equal(
        r.rank["saliency"][r.success], torch.ones(int(r.success.sum()), dtype=r.rank["saliency"].dtype)
    )
    # the structured null says no as well: no map moves, so nothing lies beyond it
    assert r.share_beyond_structured_null["saliency"].value == 0.0
    assert r.structured_keeps_class.value == 1.0


def test_shift_says_yes_when_each_class_has_its_own_pixels():
    """Class c looks only at its own block of pixels: after a flip the user sees another block, the noise
    control sees the same one, so every successful attack exceeds the control: share 1."""
    w = torch.zeros(3, 16)
    for c in range(3):
        w[c, 5 * c : 5 * c + 5] = torch.linspace(0.5, 1.5, 5)
    model = linear_net(w, [0.0, 0.0, 0.0])
    x = _images(30)
    y = model(x).argmax(1)
    r = explanation_shift(model, x, y, eps=0.3, attack="linf", linf_steps=40)
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
    r = explanation_shift(cam_net, x, y, [Saliency(), Cam()], eps=0.1, attack="rmse")
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
    maps = Cam().attribute(cam_net, x, 0)
    assert isinstance(plot_attributions(x, [maps], ["cam"]), matplotlib.figure.Figure)
    with pytest.raises(InputError, match="titles"):
        plot_attributions(x, [maps], ["a", "b"])


def test_share_beyond_class_swap_is_0_where_only_the_class_changes_the_map():
    """Linear softmax: saliency of class c is |W_c| for every input, so no attack invalidates anything.
    The old measure, comparing I_y(x) with I_t(x'), reads 1; the class-swap control explains all of it."""
    w = torch.zeros(3, 16)
    for c in range(3):
        w[c, 5 * c : 5 * c + 5] = torch.linspace(0.5, 1.5, 5)
    model = linear_net(w, [0.0, 0.0, 0.0])
    x = _images(30)
    r = explanation_shift(model, x, model(x).argmax(1), eps=0.3, attack="linf", linf_steps=40)
    assert r.success.sum() >= 10
    assert r.share["saliency"].value == 1.0  # the confounded measure says "invalidated"
    assert (
        r.share_beyond_class_swap["saliency"].value == 0.0 and r.share_beyond_class_swap["saliency"].hi < 0.35
    )
    shares = r.comparison_share["saliency"]
    assert shares["same_class"].value == 0.0 and shares["class_swap"].value == 1.0
    assert (r.comparisons["saliency"]["new_class"][r.success] == 0).all()


class _Gates(torch.nn.Module):
    """Class 1 = sum_i softplus(100 (x_i - 0.5)) / 100, class 0 a constant: class 1's saliency,
    sigmoid(100 (x_i - 0.5)), switches pixel by pixel as the input crosses 0.5: it follows the input."""

    def forward(self, x):
        f1 = torch.nn.functional.softplus(100 * (x.flatten(1) - 0.5)).sum(1) / 100
        return torch.stack([torch.full_like(f1, 2.2), f1], 1)


def test_share_beyond_class_swap_is_high_where_the_attack_moves_the_new_class_map():
    g = torch.Generator().manual_seed(0)
    near = torch.rand(40, 16, generator=g).argsort(1) < 8  # half the pixels just below the gate
    x = (torch.where(near, 0.45, 0.7) + (torch.rand(40, 16, generator=g) - 0.5) * 0.02).reshape(40, 1, 4, 4)
    model = _Gates()
    y = model(x).argmax(1)
    assert (y == 0).all()
    r = explanation_shift(model, x, y, eps=0.1, attack="linf", linf_steps=20)
    assert r.success.all()
    assert r.share_beyond_class_swap["saliency"].lo > 0.85  # the sign steps open every gate; noise, few


def test_energy_outside_salient_by_hand_and_where_it_must_say_no():
    from advexp_book.experiments import energy_outside_salient

    x = torch.zeros(2, 1, 2, 2)
    maps = torch.tensor([[[4.0, 3.0], [2.0, 1.0]], [[4.0, 3.0], [2.0, 1.0]]])
    x_adv = x.clone()
    x_adv[0, 0] = torch.tensor([[0.0, 0.0], [0.3, 0.4]])  # all of it outside the top half: share 1
    x_adv[1, 0] = torch.tensor([[0.3, 0.4], [0.0, 0.0]])  # all of it inside the top half: share 0
    torch.testing.assert_close(
        energy_outside_salient(x, x_adv, maps, 0.5), torch.tensor([1.0, 0.0], dtype=torch.float64)
    )
    # top quarter is the pixel of map value 4: image 1 keeps 0.3^2 of 0.25 inside
    torch.testing.assert_close(
        energy_outside_salient(x, x_adv, maps, 0.25),
        torch.tensor([1.0, 1 - 0.09 / 0.25], dtype=torch.float64),
    )
    assert energy_outside_salient(x, x, maps, 0.5).isnan().all()
    with pytest.raises(InputError, match="fraction"):
        energy_outside_salient(x, x_adv, maps, 1.0)


class _AntiSaliency(Saliency):
    """The signed gradient, negated: a map that points the wrong way."""

    name = "anti"

    def __init__(self):
        super().__init__(abs=False)

    def _attribute(self, model, x, targets, differentiable):
        return -super()._attribute(model, x, targets, differentiable)


def test_counterfactual_fidelity_on_a_linear_model_by_hand_and_where_it_must_say_no():
    """Two classes, logits (-w.x, w.x): the edit c sign(w) on the 4 largest |w| (c = rho sqrt(16/4))
    is computed by hand; it beats k random pixels, and the negated map must lower log p(t)."""
    from advexp_book.experiments import counterfactual_fidelity

    w = torch.randn(16, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    model = linear_net(torch.stack([-w, w]).float())
    x = _images(12)
    t = torch.ones(12, dtype=torch.long)
    rho = 0.05
    r = counterfactual_fidelity(
        model, x, t, rho=rho, fraction=0.25, explainers=[Saliency(abs=False), _AntiSaliency()]
    )
    assert sorted(r) == ["ae", "anti", "random", "saliency"]
    for name, v in r.items():
        assert torch.allclose(v["rmse"].double(), torch.full((12,), rho, dtype=torch.float64), atol=1e-5), (
            name
        )
        assert v["reached"].all()
    top = w.abs().topk(4).indices
    delta = torch.zeros(16, dtype=torch.float64)
    delta[top] = rho * 2.0 * w[top].sign()  # RMSE = c sqrt(4 / 16) = rho
    x64 = x.double().flatten(1)
    logit = lambda z: torch.stack([-(z @ w), z @ w], 1)  # noqa: E731
    expected = logit(x64 + delta).log_softmax(1)[:, 1] - logit(x64).log_softmax(1)[:, 1]
    assert torch.allclose(r["saliency"]["delta_log_p"].double(), expected, atol=1e-5)
    assert (r["saliency"]["delta_log_p"] >= r["random"]["delta_log_p"] - 1e-6).all()
    assert (r["saliency"]["delta_log_p"] > 0).all() and (r["anti"]["delta_log_p"] < 0).all()
    assert (r["ae"]["delta_log_p"] > 0).all()
    with pytest.raises(InputError, match="fraction"):
        counterfactual_fidelity(model, x, t, rho=rho, fraction=0.0)
    with pytest.raises(InputError, match="rho"):
        counterfactual_fidelity(model, x, t, rho=-1.0)


def test_counterfactual_edit_that_clipping_cuts_short_says_so():
    """Black image, a map asking to darken it: no edit is possible, rmse 0 and reached False."""
    from advexp_book.experiments import counterfactual_fidelity

    w = torch.ones(16)
    model = linear_net(torch.stack([w, -w]))  # class 1 wants every pixel darker
    x = torch.zeros(3, 1, 4, 4)
    r = counterfactual_fidelity(
        model, x, torch.ones(3, dtype=torch.long), rho=0.1, explainers=[Saliency(abs=False)]
    )
    assert (r["saliency"]["rmse"] == 0).all() and not r["saliency"]["reached"].any()


def test_explanation_budget_scales_the_median_minimal_rmse():
    from advexp_book.experiments import explanation_budget

    w = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    model = linear_net(w, [0.0, 0.0, 0.0])
    x = _images(20)
    y = model(x).argmax(1)
    b = explanation_budget(model, x, y, multiple=2.0)
    assert b["n"] == 20 and b["rho"] == pytest.approx(2.0 * b["median"]) and b["median"] > 0
    with pytest.raises(InputError, match="multiple"):
        explanation_budget(model, x, y, multiple=0)
    given = torch.linspace(0.0, 1.0, 20)  # distances already computed: reused, not searched again
    reused = explanation_budget(model, x, y, multiple=2.0, distances=given)
    assert reused["n"] == 19 and reused["median"] == pytest.approx(given[1:].median().item())
    with pytest.raises(InputError, match="distances: expected one per image"):
        explanation_budget(model, x, y, distances=given[:5])


def test_accuracies_by_hand_and_the_paired_ae_differences():
    from advexp_book.experiments import accuracies, counterfactual_differences

    w = torch.eye(3, 16)
    model = linear_net(w, [0.0, 0.0, 0.0])
    x = _images(8)
    y = model(x).argmax(1)
    y[:2] = (y[:2] + 1) % 3  # two wrong labels: 6 of 8 right
    acc = accuracies({"m": model}, x, y)["m"]
    assert acc.value == pytest.approx(0.75) and acc.n == 8 and acc.lo < 0.75 < acc.hi
    yes = torch.ones(3, dtype=torch.bool)
    r = {
        "ae": {"delta_log_p": torch.tensor([1.0, 2.0, 3.0]), "reached": yes},
        "saliency": {"delta_log_p": torch.ones(3), "reached": yes},
    }
    d = counterfactual_differences({"net": r})["net"]
    assert list(d) == ["saliency"] and d["saliency"].value == pytest.approx(1.0) and d["saliency"].n == 3
    r["saliency"]["reached"] = torch.tensor([True, True, False])  # an edit short of rho is not compared
    d = counterfactual_differences({"net": r})["net"]
    assert d["saliency"].n == 2 and d["saliency"].value == pytest.approx(0.5)


def test_robustness_audit_reuses_given_ara_results_exactly_and_refuses_mismatched_ones():
    from dataclasses import replace

    from advexp_book.experiments import ara_results, robustness_audit
    from advexp_lib.attacks import ARA_PAPER

    torch.manual_seed(0)
    models = {"a": build_model("small_cnn").eval(), "b": build_model("small_cnn").eval()}
    x, y = torch.rand(6, 1, 28, 28), torch.arange(6)
    quick = dict(config=replace(ARA_PAPER, steps=12), boundary_steps=10, n_boundary=2)
    searched = robustness_audit(models, x, y, **quick)
    given = ara_results(models, x, y, config=quick["config"], kinds=("attack",))["attack"]
    reused = robustness_audit(models, x, y, base=given, **quick)
    for label in models:  # the search is deterministic: reusing its result changes no row
        a, b = searched.rows[label], reused.rows[label]
        assert a.keys() == b.keys()
        assert all(a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]) for k in a), label  # NaN == NaN
    quicker = robustness_audit(models, x, y, base=given, double_steps=False, **quick)
    for label in models:  # the check left out reads NaN; every other row is the same
        row = quicker.rows[label]
        assert (
            math.isnan(row["longer_change"]) and row["ensemble_ara"] == searched.rows[label]["ensemble_ara"]
        )
    with pytest.raises(InputError, match="base: expected a 'attack' ARA of these 6 images for 'b'"):
        robustness_audit(models, x, y, base={"a": given["a"]}, **quick)
    btr = ara_results(models, x, y, config=quick["config"], kinds=("btr",))["btr"]
    with pytest.raises(InputError, match="base: expected a 'attack' ARA"):
        robustness_audit(models, x, y, base=btr, **quick)


class _OnePixel(nn.Module):
    """Two classes; the evidence for class 0 is pixel (3, 3) alone: logits (10 x33 - 5, 5 - 10 x33)."""

    def forward(self, x):
        z = 10 * x[:, 0, 3, 3]
        return torch.stack([z - 5, 5 - z], 1)


def test_blurred_deletion_costs_most_where_the_evidence_is():
    from dataclasses import replace

    from advexp_book.experiments import deletion_fidelity, fidelity_interaction, true_class_edit
    from advexp_lib.attacks import AE_PAPER

    x = torch.zeros(4, 1, 8, 8)
    x[:, 0, 3, 3] = 0.6
    y = torch.zeros(4, dtype=torch.long)
    model = _OnePixel()
    r = explanation_shift(model, x, y, [Saliency()], eps=0.05, config=replace(AE_PAPER, steps=20))
    d = deletion_fidelity(model, r, fraction=1 / 64, sigma=1.0)
    # one pixel deleted: saliency and the attack both name (3, 3), a random pixel almost never does
    assert (d["saliency"] > 0.1).all() and (d["ae"] > 0.1).all()  # blur leaves 16% of the pixel
    assert d["random"].abs().max() < d["saliency"].min()
    same = fidelity_interaction(d, d)["saliency"]
    assert same.value == 0.0  # a network against itself: no interaction
    # the structured null raises log p_y, so it keeps the true class
    xs = true_class_edit(model, x, y, torch.full((4,), 0.05))
    assert (xs[:, 0, 3, 3] >= x[:, 0, 3, 3] - 1e-6).all() and (model(xs).argmax(1) == y).all()
    with pytest.raises(InputError, match="fraction"):
        deletion_fidelity(model, r, fraction=1.0)


def test_prose_rates_reads_each_budget_where_the_chapter_recorded_it():
    grid = torch.tensor([0.0, 8 / 255, 9 / 255], dtype=torch.float64)
    audit = {e / 255: torch.tensor([True, True, False, False]) for e in (8, 9)}
    results = {"int": {"eps": grid, "accuracy": torch.tensor([1.0, 0.75, 0.5]), "audit": audit}}
    got = prose_rates(results, ["int", "adv"], [9], divisor=255, prefix="cifar")
    assert got == {"cifar_int_pgd_9": 0.5, "cifar_int_audit_9": 0.5}  # "adv" absent: left out
    with pytest.raises(InputError, match="eps: 0.1 is not on the grid"):
        prose_rates(results, ["int"], [0.1], prefix="mnist")
