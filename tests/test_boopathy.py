"""Boopathy et al.'s published MNIST networks: TF SAME padding, the safe importer, the shipped conversions,
the real MNIST test set, and their protocol's statistics."""

import gzip
import math
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F

from advexp_book import companion_eval, report
from advexp_lib import CheckpointError, InputError, attributions, published, zoo
from advexp_lib.boopathy_import import BOOPATHY_LAYOUT, import_boopathy_network, read_boopathy_pickle
from advexp_lib.data import load_dataset, load_tensors
from advexp_lib.models import SmallGap, TFSameConv2d
from advexp_lib.stats import mcnemar

SHARED = Path(__file__).resolve().parents[2] / "shared"
ORIGINALS = Path(os.environ.get("ADVEXP_BOOPATHY_DIR", SHARED / "boopathy_prebuilt"))
MNIST_TEST = SHARED / "datasets"
# Accuracies on the 10,000 MNIST test digits, measured by an independent import of the same files.
INDEPENDENT_ACCURACY = {
    "normal": 0.984,
    "adv": 0.966,
    "trades": 0.969,
    "int": 0.933,
    "int2": 0.939,
    "intone": 0.950,
}


def _need(path: Path):
    """Skip when the published files are absent, except in CI, where their absence is a failure."""
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs {path}")
        pytest.skip(f"{path} is not here")


def _tf_same_reference(x, weight_hwio, bias, stride):
    """TensorFlow's conv2d(padding='SAME') written out in float64: pad (total // 2, rest) per axis."""
    x, w = x.double(), torch.as_tensor(weight_hwio).double().permute(3, 2, 0, 1)
    k = w.shape[-1]
    pads = []
    for n in (x.shape[-1], x.shape[-2]):
        out = -(-n // stride)
        total = max((out - 1) * stride + k - n, 0)
        pads += [total // 2, total - total // 2]
    b = None if bias is None else torch.as_tensor(bias).double()
    return F.conv2d(F.pad(x, pads), w, b, stride=stride)


def _smallgap_reference(params, x):
    """The reference's load_model.predict for smallgap, in float64 from the file's TF arrays."""
    (w1, b1), (w2, b2), (w3, b3), (w,) = params
    h = _tf_same_reference(x, w1, b1, 2)
    h = _tf_same_reference(F.relu(h), w2, b2, 2)
    h = _tf_same_reference(F.relu(h), w3, b3, 1)  # no activation after the last conv
    return h.mean(dim=(2, 3)) @ torch.as_tensor(w[0, 0]).double()


@pytest.mark.parametrize("n,k,s", [(5, 2, 2), (28, 4, 2), (7, 7, 1), (9, 4, 3), (6, 3, 2)])
def test_tf_same_conv_pads_as_tensorflow_including_the_odd_asymmetric_case(n, k, s):
    conv = TFSameConv2d(2, 3, k, stride=s).double()
    x = torch.randn(2, 2, n, n, dtype=torch.float64)
    got = conv(x)
    assert got.shape[-2:] == (-(-n // s), -(-n // s))
    want = _tf_same_reference(x, conv.weight.permute(2, 3, 1, 0), conv.bias, s)
    torch.testing.assert_close(got, want)


def test_tf_same_padding_differs_from_symmetric_padding_when_the_total_is_odd():
    conv = TFSameConv2d(1, 1, 2, stride=2, bias=False).double()
    x = torch.randn(1, 1, 5, 5, dtype=torch.float64)
    symmetric = F.conv2d(F.pad(x, [1, 1, 1, 1]), conv.weight, stride=2)[..., :3, :3]
    assert not torch.allclose(conv(x), symmetric)  # the check above can fail


def _fake_params(seed=0):  # pickled with protocol 4 below: 2 would write bytes through _codecs.encode
    g = np.random.default_rng(seed)
    arrays = [g.normal(size=shape).astype(np.float32) * 0.1 for _, shape in BOOPATHY_LAYOUT]
    return [(arrays[0], arrays[1]), (arrays[2], arrays[3]), (arrays[4], arrays[5]), (arrays[6],)]


def test_imported_network_computes_the_reference_forward_in_float64(tmp_path):
    params = _fake_params()
    path = tmp_path / "net.pkl"
    path.write_bytes(pickle.dumps(params, protocol=4))
    model = import_boopathy_network(path)
    x = torch.rand(3, 1, 28, 28)
    want = _smallgap_reference(params, x)
    torch.testing.assert_close(model.double()(x.double()), want)


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch should_not_exist",))


def test_the_importer_refuses_any_global_beyond_numpy_arrays_without_running_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps([(np.zeros(2, np.float32), _Payload())], protocol=4))
    with pytest.raises(CheckpointError, match=r"names (posix|nt)\.system.*refused"):
        read_boopathy_pickle(path)
    assert not (tmp_path / "should_not_exist").exists()


def test_the_importer_refuses_foreign_and_truncated_files(tmp_path):
    wrong = tmp_path / "wrong.pkl"
    wrong.write_bytes(pickle.dumps([(np.zeros((3, 3), np.float32),)], protocol=4))
    with pytest.raises(CheckpointError, match="not a Boopathy et al. Small GAP network"):
        read_boopathy_pickle(wrong)
    good = pickle.dumps(_fake_params(), protocol=4)
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_boopathy_pickle(cut)
    with pytest.raises(CheckpointError, match="no file"):
        read_boopathy_pickle(tmp_path / "absent.pkl")


@pytest.mark.parametrize("dataset", list(published.BOOPATHY_FILES))
@pytest.mark.parametrize("name", published.BOOPATHY_NETWORKS)
def test_shipped_conversion_computes_exactly_what_the_original_does(name, dataset, monkeypatch):
    file = ORIGINALS / published.boopathy_file_name(name, dataset)
    _need(file)
    monkeypatch.delenv("ADVEXP_BOOPATHY_DIR", raising=False)
    shipped = published.boopathy_model(name, dataset)  # from data/boopathy2020, no original, no network
    original = import_boopathy_network(file)
    x = torch.rand(16, 1, 28, 28) if dataset == "mnist" else torch.rand(16, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(shipped(x), original(x))
    torch.testing.assert_close(
        shipped.double()(x.double()), _smallgap_reference(read_boopathy_pickle(file), x)
    )


def test_a_shipped_file_not_made_from_the_published_original_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("ADVEXP_BOOPATHY_DIR", raising=False)
    (tmp_path / "mnist").mkdir()
    shutil.copy(published.BOOPATHY_SHIPPED_DIR / "mnist" / "adv.pt", tmp_path / "mnist" / "normal.pt")
    monkeypatch.setattr(published, "BOOPATHY_SHIPPED_DIR", tmp_path)
    with pytest.raises(
        CheckpointError, match="not converted from the published mnist_smallgap_normal_100.pkl"
    ):
        published.boopathy_model("normal")


def test_an_original_with_another_sha256_is_refused(tmp_path, monkeypatch):
    (tmp_path / "mnist_smallgap_adv_100.pkl").write_bytes(pickle.dumps(_fake_params(), protocol=4))
    monkeypatch.setenv("ADVEXP_BOOPATHY_DIR", str(tmp_path))
    with pytest.raises(CheckpointError, match="SHA-256 .* is not that of the published"):
        published.boopathy_model("adv")


def test_offline_and_nowhere_the_error_names_the_url_and_the_variable(tmp_path, monkeypatch, isolated_data):
    monkeypatch.delenv("ADVEXP_BOOPATHY_DIR", raising=False)
    monkeypatch.setattr(published, "BOOPATHY_SHIPPED_DIR", tmp_path / "none")
    with pytest.raises(published.PublishedFileNotFound, match="ADVEXP_BOOPATHY_DIR.*|.*raw/master/networks"):
        published.boopathy_model("int", download=False)


def test_zoo_source_boopathy2020_is_their_mnist_and_cifar10_networks_only():
    assert isinstance(zoo.get_model("mnist", "intone", source="boopathy2020"), SmallGap)
    cifar = zoo.get_model("cifar10", "igsum", source="boopathy2020")
    assert cifar.features[0].in_channels == 3 and cifar(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(
        InputError, match="source: 'boopathy2020' has the published networks .* for mnist and"
    ):
        zoo.get_model("mnist5k", "int", source="boopathy2020")
    with pytest.raises(InputError, match="name"):
        zoo.get_model("mnist", "pgd_linf", source="boopathy2020")


def test_mnist_test_split_loads_from_the_two_gzipped_t10k_files_alone(tmp_path, monkeypatch, isolated_data):
    _need(MNIST_TEST / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz")
    monkeypatch.setenv("ADVEXP_DATA_PATH", str(MNIST_TEST))
    ds = load_dataset("mnist", "test", download=False)
    assert len(ds) == 10000
    x, y = load_tensors("mnist", "test", n=5, seed=1, download=False)
    assert x.shape == (5, 1, 28, 28) and x.min() >= 0 and x.max() <= 1 and y.dtype == torch.int64
    # the same digits from decompressed files in a folder given as root
    raw = tmp_path / "plain" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(MNIST_TEST / "MNIST" / "raw" / f"{stem}.gz") as src, open(raw / stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    x2, y2 = load_tensors("mnist", "test", n=5, seed=1, root=tmp_path / "plain", download=False)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    with pytest.raises(Exception, match="not found"):
        load_dataset("mnist", "train", download=False)  # the training split still needs its files


def test_published_accuracies_on_the_real_test_set_match_an_independent_import(monkeypatch, isolated_data):
    _need(MNIST_TEST / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz")
    monkeypatch.setenv("ADVEXP_DATA_PATH", str(MNIST_TEST))
    x, y = load_tensors("mnist", "test", download=False)
    for name, want in INDEPENDENT_ACCURACY.items():
        with torch.no_grad():
            acc = (
                (zoo.get_model("mnist", name, source="boopathy2020")(x).argmax(1) == y).double().mean().item()
            )
        assert abs(acc - want) < 6e-4, (name, acc, want)


def test_reference_test_indices_are_numpys_legacy_permutation():
    want = np.random.RandomState(99).permutation(10000)[:200]
    assert companion_eval.reference_test_indices().tolist() == want.tolist()
    with pytest.raises(InputError, match="n: asked for 20 of 10"):
        companion_eval.reference_test_indices(10, 20)


def test_reference_mnist_test_falls_back_to_mnist5k_and_says_why(monkeypatch, isolated_data, tmp_path):
    monkeypatch.delenv("ADVEXP_DATA_PATH", raising=False)
    monkeypatch.setattr("advexp_lib.data.TESTSETS_DIR", tmp_path / "no-shipped-test-sets")
    x, y, source = companion_eval.reference_mnist_test(n=7, download=False)
    assert x.shape == (7, 1, 28, 28) and "mnist5k" in source and "training digits" in source


def test_mcnemar_matches_the_exact_binomial_by_hand():
    # 6 discordant pairs all favouring a: p = 2 * 0.5**6
    t = mcnemar([1] * 6 + [0, 1], [0] * 6 + [0, 1])
    assert (t.a_only, t.b_only) == (6, 0) and t.p_value == pytest.approx(2 * 0.5**6)
    assert t.difference.value == pytest.approx(0.75)
    # 3 vs 1: p = 2 * P(X <= 1 | n 4) = 2 * 5 / 16
    t = mcnemar([1, 1, 1, 0, 1], [0, 0, 0, 1, 1])
    assert t.p_value == pytest.approx(10 / 16)
    assert mcnemar([1, 0], [1, 0]).p_value == 1.0
    # the interval is the exact one given the discordant images: 5 vs 0 of 200 is not significant
    # (p = 2 * 0.5**5 = 0.0625) and its interval holds 0; 6 vs 0 is (p = 0.031) and it does not
    five = mcnemar([1] * 5 + [0] * 195, [0] * 200)
    assert five.p_value == pytest.approx(0.0625) and five.difference.lo < 0 < five.difference.hi
    six = mcnemar([1] * 6 + [0] * 194, [0] * 200)
    assert six.p_value < 0.05 and six.difference.lo > 0 and six.difference.hi == pytest.approx(0.03)
    lo = scipy.stats.binomtest(6, 6).proportion_ci(method="exact").low
    assert six.difference.lo == pytest.approx((2 * lo - 1) * 6 / 200)
    with pytest.raises(InputError, match="b: expected one outcome per outcome of a"):
        mcnemar([1, 0], [1])


class _Saturated(torch.nn.Module):
    """A linear classifier whose logits are scaled so far that the float32 cross-entropy has no gradient."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(16, 2)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0] * 16, [-1.0] * 16]) / 16)
            self.fc.bias.zero_()

    def forward(self, x):
        return 1e4 * self.fc(x.flatten(1) - 0.5)


def test_the_audit_catches_what_a_saturated_cross_entropy_hides():
    model = _Saturated()
    x = torch.full((8, 1, 4, 4), 0.6)  # class 0 by a margin of 1e4 * 0.1 * 2
    y = torch.zeros(8, dtype=torch.long)
    res = companion_eval.pgd_robustness(
        {"m": model}, x, y, [0.0, 0.2], steps=30, audit_eps=[0.2], progress=False
    )
    assert res["m"]["accuracy"].tolist() == [1.0, 1.0]  # the reference's CE PGD sees no gradient
    assert not res["m"]["audit"][0.2].any()  # the margin loss crosses the boundary at eps 0.2 > 0.1
    tests = companion_eval.paired_tests({"a": res["m"], "b": res["m"]}, [("a", "b")], 0.2, audit=True)
    assert tests["a-b"].p_value == 1.0


class _DeadZone(torch.nn.Module):
    """Class 1 wins once pixels leave a 0.01-wide dead zone around 0.6, where every gradient is exactly 0."""

    def forward(self, x):
        away = torch.relu((x - 0.6).abs() - 0.01).flatten(1).sum(1)
        return torch.stack([torch.zeros_like(away), 100 * away - 1], dim=1)


def test_the_audit_random_start_leaves_a_point_where_the_gradient_vanishes():
    model, x, y = _DeadZone(), torch.full((6, 1, 4, 4), 0.6), torch.zeros(6, dtype=torch.long)
    res = companion_eval.pgd_robustness(
        {"m": model}, x, y, [0.0, 0.2], steps=20, audit_eps=[0.2], progress=False
    )
    attacks = res["m"]["audit_attacks"][0.2]
    assert res["m"]["accuracy"].tolist() == [1.0, 1.0]  # PGD from x never moves
    assert attacks["margin"].all()  # neither does the margin loss from x
    assert not attacks["random start 0"].any() and not attacks["random start 1"].any()
    assert not res["m"]["audit"][0.2].any()
    table = report.pgd_audit_table(res)
    assert table.loc[("m", "0.2"), "their PGD"].startswith("1.000") and table.loc[
        ("m", "0.2"), "audit (all)"
    ].startswith("0.000")


def test_paired_tests_table_and_figures_carry_each_comparison():
    flags = {"eps": torch.tensor([0.0, 0.3], dtype=torch.float64), "accuracy": torch.tensor([1.0, 0.5])}
    a = {
        **flags,
        "robust": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]).bool(),
        "audit": {0.3: torch.tensor([1, 1, 0, 0]).bool()},
    }
    b = {
        **flags,
        "robust": torch.tensor([[1, 1, 1, 1], [0, 0, 0, 0]]).bool(),
        "audit": {0.3: torch.zeros(4).bool()},
    }
    results = {"a": a, "b": b}
    tests = {
        "audit": {"0.3": companion_eval.paired_tests(results, [("a", "b")], 0.3, audit=True)},
        "their PGD": {"0.3": companion_eval.paired_tests(results, [("a", "b")], 0.3)},
    }
    table = report.paired_tests_table(tests["their PGD"])
    row = table.loc[("0.3", "a-b")]
    assert (row["only a right"], row["only b right"], row["difference"]) == (3, 0, 0.75)
    assert row["95% interval"].startswith("[-")  # 3 vs 0 of 4: p = 0.25, the interval holds 0
    assert row["McNemar p"] == pytest.approx(0.25)  # 2 * 0.5**3
    rec = companion_eval.pgd_record(results, tests)
    assert rec["difference"]["audit"]["0.3"]["a-b"].value == pytest.approx(0.5)
    assert rec["difference"]["their PGD"]["0.3"]["a-b"].value == pytest.approx(0.75)
    assert rec["n"] == 4 and rec["mcnemar_p"]["audit"]["0.3"]["a-b"] == pytest.approx(0.5)
    assert rec["arms"]["audit"]["0.3"]["a-b"] == [0.5, 0.0] and rec["arms"]["their PGD"]["0.3"]["a-b"] == [
        0.75,
        0.0,
    ]
    assert rec["audit"] == {"a": {"0.3": 0.5}, "b": {"0.3": 0.0}}
    with pytest.raises(InputError, match="pairs: no results for 'c'"):
        companion_eval.paired_tests(results, [("a", "c")], 0.3)


def test_the_interpretation_attack_pushes_the_clean_top_cells_down_and_scores_by_kendall_tau():
    torch.manual_seed(0)
    net = SmallGap().eval()
    x, y = torch.rand(12, 1, 28, 28), torch.randint(0, 10, (12,))
    tiny = companion_eval.interpretation_robustness(net, x, y, 1e-7, k=8, steps=5)
    kept = tiny["kept"]
    assert kept.all()  # a change far below any pixel's precision moves nothing ...
    assert torch.allclose(tiny["tau"], torch.ones(12), atol=1e-6) and (tiny["intersection"] == 1).all()
    big = companion_eval.interpretation_robustness(net, x, y, 0.3, k=8, steps=20)
    # ... a real budget breaks the map's ranking: the measure can say "not robust"
    assert big["tau"][big["kept"]].mean() < 0.9
    cam = attributions.Cam(upsample=False)
    clean = cam.attribute(net, x, y).flatten(1)
    top = clean.topk(8, dim=1).indices
    with torch.random.fork_rng():
        torch.manual_seed(0)  # the attack's own random start, without its steps
        start = (x + (torch.rand_like(x) * 2 - 1) * 0.3).clamp(0, 1)

    def top_mass(images):
        return cam.attribute(net, images, y).flatten(1).gather(1, top).sum(1)

    assert (top_mass(big["x_adv"]) < top_mass(start)).all()  # the steps push the clean top cells down
    with pytest.raises(InputError, match="k: expected at most the 49 cells"):
        companion_eval.interpretation_robustness(net, x, y, 0.1, k=50, steps=1)


def test_interpretation_tests_pair_only_the_images_both_networks_kept():
    nan = float("nan")
    results = {
        "a": {"tau": torch.tensor([0.9, 0.8, nan, 0.7]), "kept": torch.tensor([1, 1, 0, 1]).bool()},
        "b": {"tau": torch.tensor([0.5, nan, 0.6, 0.3]), "kept": torch.tensor([1, 0, 1, 1]).bool()},
    }
    est = companion_eval.interpretation_tests(results, [("a", "b")])["a-b"]
    assert est.n == 2 and est.value == pytest.approx(0.4)  # images 0 and 3: (0.4 + 0.4) / 2
    none = companion_eval.interpretation_tests({**results, "c": {"tau": torch.full((4,), nan)}}, [("a", "c")])
    assert none["a-c"].n == 0 and math.isnan(none["a-c"].value)  # no pair left: undefined, not missing
    with pytest.raises(InputError, match="n: asked for 20000 test images but"):
        companion_eval.reference_cifar10_test(20000, download=False)
    summary = companion_eval.interpretation_summary(
        {"a": {**results["a"], "intersection": results["a"]["tau"]}}
    )
    assert summary["a"]["kept"].value == pytest.approx(0.75) and summary["a"]["tau"].value == pytest.approx(
        0.8
    )
