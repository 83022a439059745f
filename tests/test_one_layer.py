"""Chalasani et al.'s one-layer setting: the shipped UCI data, the logistic model, its two training
hooks, the reference's IG, and a short training run (``advexp_lib.data.load_uci``, ``advexp_book.one_layer``).

Exact checks on tiny hand-built models in float64; the data tests read the shipped files (offline).
"""

import hashlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from advexp_book import one_layer
from advexp_book.one_layer import KernelL1, Logistic, LogisticWorstCase, integrated_gradients
from advexp_lib import data
from advexp_lib.checks import InputError, InputTypeError

REPO = Path(__file__).resolve().parents[1]


def _logistic(w, b, **kwargs) -> Logistic:
    model = Logistic(len(w), **kwargs).double()
    with torch.no_grad():
        model.linear.weight.copy_(torch.tensor([w], dtype=torch.float64))
        model.linear.bias.fill_(b)
    return model


def test_the_shipped_files_match_their_checksums():
    base = REPO / "data" / "uci"
    lines = (base / "SHA256SUMS").read_text().splitlines()
    assert {line.split()[1] for line in lines} == {
        "mushroom/all.csv",
        "spambase/train.csv",
        "spambase/test.csv",
    }
    for line in lines:
        digest, name = line.split()
        assert hashlib.sha256((base / name).read_bytes()).hexdigest() == digest, name


def test_mushroom_is_one_hot_and_split_64_20():
    d = data.load_uci("mushroom")
    assert d.x_train.shape == (5199, 117) and d.x_test.shape == (1625, 117)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert len(d.features) == 117 and d.features[0] == "cap-shape=0" and "veil-type=0" in d.features
    for x in (d.x_train, d.x_test):
        assert set(x.unique().tolist()) == {0.0, 1.0}
        assert (x.sum(1) == 22).all()  # one indicator per categorical column
    assert set(d.y_train.unique().tolist()) == {0, 1}
    again, other = data.load_uci("mushroom", seed=0), data.load_uci("mushroom", seed=1)
    assert torch.equal(again.x_test, d.x_test) and torch.equal(again.y_train, d.y_train)
    assert not torch.equal(other.x_test, d.x_test)


def test_spambase_is_the_shipped_split_as_is():
    d = data.load_uci("spambase", seed=5)  # the seed plays no part
    assert d.x_train.shape == (3450, 57) and d.x_test.shape == (1151, 57) and len(d.features) == 57
    assert d.y_test.shape == (1151,)
    # standardized on the training split, and not re-scaled here
    assert d.x_train.mean(0).abs().max() < 1e-4
    assert torch.allclose(d.x_train.std(0, unbiased=False), torch.ones(57), atol=1e-4)
    assert d.x_test.mean(0).abs().max() > 1e-2


def test_an_unknown_or_missing_data_set_is_refused(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="name: unknown value 'iris'"):
        data.load_uci("iris")
    monkeypatch.setattr(data, "UCI_DIR", tmp_path)
    with pytest.raises(data.DatasetNotFoundError, match="spambase"):
        data.load_uci("spambase")


def test_two_logit_cross_entropy_is_the_binary_cross_entropy_of_the_sigmoid():
    model = _logistic([0.7, -1.3, 0.2], 0.4)
    x = torch.randn(8, 3, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1])
    z = x @ torch.tensor([0.7, -1.3, 0.2], dtype=torch.float64) + 0.4
    ce = F.cross_entropy(model(x), y)
    bce = F.binary_cross_entropy(torch.sigmoid(z), y.double())
    assert torch.allclose(ce, bce, rtol=0, atol=1e-12)
    assert torch.equal(model(x).argmax(1), (torch.sigmoid(z) > 0.5).long())


def test_the_input_map_leaves_the_function_unchanged():
    offset = torch.tensor([-2.0, 0.0, -0.5])
    scale = torch.tensor([4.0, 1.0, 3.0])
    model = _logistic([0.7, -1.3, 0.2], 0.4, offset=offset, scale=scale)
    x = torch.rand(5, 3, dtype=torch.float64) * scale.double() + offset.double()
    u = model.to_input(x)
    assert u.shape == (5, 3, 1, 1) and 0 <= u.min() and u.max() <= 1
    assert torch.allclose(model(u)[:, 1], model.logit(x), atol=1e-12)


def test_the_worst_case_is_the_closed_form_after_the_clean_epochs():
    w = [0.5, -2.0, 0.0, 1.0]
    model = _logistic(w, 0.3)
    x = torch.rand(6, 4, dtype=torch.float64)
    y = torch.tensor([1, 0, 1, 1, 0, 0])
    attack = LogisticWorstCase(0.1)
    for epoch in (0, 1):  # the loop counts from 0: epochs 0 and 1 are clean
        attack.start_epoch(epoch, 30)
        assert torch.equal(attack(model, x, y), x)
    attack.start_epoch(2, 30)
    expected = x - 0.1 * (2 * y - 1).double()[:, None] * torch.sign(torch.tensor(w, dtype=torch.float64))
    assert torch.allclose(attack(model, x, y), expected, rtol=0, atol=1e-15)
    # it lowers every margin (2y - 1) z by exactly eps * ||w||_1
    margin = lambda v: (2 * y - 1) * model.logit(v)  # noqa: E731
    assert torch.allclose(margin(x) - margin(expected), torch.full((6,), 0.1 * 3.5, dtype=torch.float64))


def test_the_worst_case_is_taken_in_feature_units_through_the_input_map():
    offset, scale = torch.tensor([-1.0, 0.0]), torch.tensor([4.0, 2.0])
    model = _logistic([1.0, -1.0], 0.0, offset=offset, scale=scale)
    x = torch.tensor([[0.5, 1.0], [2.0, 0.5]], dtype=torch.float64)
    y = torch.tensor([1, 0])
    u_adv = LogisticWorstCase(0.1, clean_epochs=0)(model, model.to_input(x), y)
    features = offset.double() + scale.double() * u_adv.flatten(1)
    assert torch.allclose(features, torch.tensor([[0.4, 1.1], [2.1, 0.4]], dtype=torch.float64))


def test_kernel_l1_leaves_the_bias_out():
    model = _logistic([1.0, -2.0, 0.5], 7.0)
    penalty, stats = KernelL1(0.01)(model, None, None, None)
    assert penalty.item() == pytest.approx(0.035) and stats["l1"] == pytest.approx(0.035)
    penalty.backward()
    assert model.linear.bias.grad is None
    assert torch.equal(model.linear.weight.grad, 0.01 * torch.tensor([[1.0, -1.0, 1.0]], dtype=torch.float64))


def test_the_hooks_refuse_another_model():
    with pytest.raises(InputTypeError, match="model: KernelL1 needs"):
        KernelL1(0.01)(torch.nn.Linear(2, 2), None, None, None)
    with pytest.raises(InputError, match="eps"):
        LogisticWorstCase(0.0)


def test_ig_is_the_closed_form_left_riemann_sum():
    w = torch.tensor([0.8, -1.5, 0.3, 2.0], dtype=torch.float64)
    b = -0.25
    model = _logistic(w.tolist(), b)
    x = torch.randn(5, 4, dtype=torch.float64)
    alphas = torch.arange(20, dtype=torch.float64) / 20  # k / 20, k = 0 .. 19
    s = torch.sigmoid(alphas[None, :] * (x @ w)[:, None] + b)
    expected = x * w * (s * (1 - s)).mean(1, keepdim=True)
    # Captum draws its nodes k / 20 in float32 (torch.linspace's default dtype): agreement to ~3e-8
    assert torch.allclose(integrated_gradients(model, x), expected, rtol=1e-6, atol=1e-12)
    # a left sum, not the exact integral: completeness holds only approximately
    gap = integrated_gradients(model, x).sum(1) - (torch.sigmoid(x @ w + b) - torch.sigmoid(torch.tensor(b)))
    assert gap.abs().max() > 1e-6


def test_a_short_training_learns_mushroom():
    r = one_layer.run("mushroom", "adversarial", num_epochs=3)  # 2 clean epochs, then one at eps 0.1
    assert r["accuracy"] > 0.9
    assert r["correct"].shape == (1625,) and r["per_example_gini"].shape == (1000,)
    assert 0 < r["gini"] < 1 and r["history"][-1]["epoch"] == 3
    with pytest.raises(InputError, match="training: unknown value 'robust'"):
        one_layer.run("mushroom", "robust")
