"""report: tables built from measured results, literature values labelled as such."""

import pytest
import torch
from torch import nn

from advexp_lib import report
from advexp_lib.checks import InputError

from tiny_models import Linear2


def _linear2():
    """Two pixels, two classes: logit_1 - logit_0 = 2 (x_1 - x_0)."""
    return Linear2(w=((1.0, -1.0), (-1.0, 1.0)), b=(0.0, 0.0), dtype=torch.float32)


def test_published_table_is_labelled_as_the_reference_readme():
    df = report.published_ara_table()
    assert list(df.index) == ["standard", "adv", "robust", "all"]
    assert df.loc["all", "btr_ara"] == 0.0414 and df.loc["standard", "accuracy"] == 0.938
    assert df.loc["adv", "file"] == "resnet44-adv-train.pt"
    assert (df["source"].str.contains("README")).all() and not df["source"].str.contains("paper").any()


def test_ara_table_matches_metrics():
    from advexp_lib.metrics import accuracy_robustness_area

    x = torch.tensor([[0.8, 0.2], [0.3, 0.7], [0.6, 0.5]]).view(3, 1, 1, 2)
    y = torch.tensor([0, 1, 0])
    model = _linear2()
    df, results = report.ara_table({"lin": model}, x, y, steps=60, eps=1.0)
    ref = accuracy_robustness_area(
        model, x, y, kind="attack", steps=60, eps=1.0, progress=False, on_late="flag"
    )
    assert df.loc["lin", "attack_ara"] == pytest.approx(ref.ara)
    assert df.loc["lin", "accuracy"] == 1.0
    assert set(results) == {"attack", "btr"} and results["btr"]["lin"].kind == "btr"
    # minimal RMSE to the boundary x_0 = x_1 is |x_0 - x_1| / 2 per image: 0.3, 0.2, 0.05
    assert results["attack"]["lin"].distances.tolist() == pytest.approx([0.3, 0.2, 0.05], rel=0.03)
    with pytest.raises(InputError, match="models"):
        report.ara_table({}, x, y)


def test_reproduction_table_reads_records_and_marks_missing():
    records = {"03_ara": {"ara": {"standard": 0.03}}}
    df = report.reproduction_table(
        records,
        [
            dict(claim="standard ARA", record="03_ara", key="ara.standard", paper=0.0013),
            dict(claim="gini", record="07_concise", key="gini.pgd", paper="higher"),
        ],
    )
    assert df["measured"].tolist() == [0.03, "missing"]
    assert df["paper"].tolist() == [0.0013, "higher"]


def test_evaluate_all_has_every_metric():
    torch.manual_seed(0)
    x = torch.rand(6, 1, 6, 6)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(72, 3)).eval()
    df = report.evaluate_all(
        {"m": model}, x, y, ara_steps=30, ara_eps=5.0, linf_eps=(0.05,), pgd_steps=3, ig_steps=4
    )
    assert list(df.columns) == ["accuracy", "attack_ara", "btr_ara", "robust_acc@0.05", "ig_gini"]
    assert df.loc["m", "robust_acc@0.05"] <= df.loc["m", "accuracy"]
    assert 0 <= df.loc["m", "ig_gini"] < 1


def test_shift_table_uses_successes_medians_and_defined_taus():
    from types import SimpleNamespace

    from advexp_lib.report import shift_table
    from advexp_lib.stats import wilson

    ok = torch.tensor([True, True, True, False])
    shift = torch.tensor([1.0, 100.0, 2.0, 1e6])  # the failure's huge D must not count
    res = SimpleNamespace(
        success=ok,
        success_rate=wilson(3, 4),
        shift={"saliency": shift},
        control_shift={"saliency": torch.tensor([0.5, 0.5, 0.7, 9.0])},
        rank={"saliency": torch.tensor([0.2, float("nan"), 0.4, 0.9])},
        control_rank={"saliency": torch.full((4,), float("nan"))},
        share={"saliency": wilson(1, 3)},
    )
    row = shift_table({"m": res}).loc[("m", "saliency")]
    assert row["n success"] == 3
    assert row["median shift D"].startswith("2 ")  # median of 1, 100, 2
    assert row["tau attack"].startswith("0.3 ")  # mean of 0.2 and 0.4; NaN left out
    assert row["tau control"] == "undefined"
