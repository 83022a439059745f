"""report: tables built from measured results, literature values labelled as such."""

import dataclasses
from dataclasses import replace

import pytest
import torch
from torch import nn

from advexp_book import experiments, records, report
from advexp_book.claims import CLAIMS, Claim
from advexp_lib.attacks import ARA_PAPER, SearchConfig
from advexp_lib.checks import InputError
from advexp_lib.stats import Estimate

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
    config = replace(ARA_PAPER, steps=60, eps=1.0)
    results = experiments.ara_results({"lin": model}, x, y, config=config)
    df = report.ara_table(results)
    ref = accuracy_robustness_area(model, x, y, kind="attack", config=config, progress=False, on_late="flag")
    assert df.loc["lin", "attack_ara"] == pytest.approx(ref.ara)
    assert df.loc["lin", "accuracy"] == 1.0
    assert set(results) == {"attack", "btr"} and results["btr"]["lin"].kind == "btr"
    # minimal RMSE to the boundary x_0 = x_1 is |x_0 - x_1| / 2 per image: 0.3, 0.2, 0.05
    assert results["attack"]["lin"].distances.tolist() == pytest.approx([0.3, 0.2, 0.05], rel=0.03)
    with pytest.raises(InputError, match="models"):
        experiments.ara_results({}, x, y)
    with pytest.raises(InputError, match="results"):
        report.ara_table({})


def _ara_record(**fields):
    """An AraEvaluation record with only ``fields`` set (the rest None)."""
    names = [f.name for f in dataclasses.fields(records.AraEvaluation)]
    return records.AraEvaluation(**{n: fields.get(n) for n in names})


def test_claims_table_judges_each_claim_by_its_rule_and_marks_missing():
    ara = "03_ara_evaluation"
    claims = (
        Claim("a", "P", "it grows", "abstract", ara, lambda r: r.ara.ratio_over_seeds["all"], "> 1", "ratio"),
        Claim(
            "a2", "P", "it grows", "abstract", ara, lambda r: r.ara.ratio_over_seeds["all"], "> 1.5", "again"
        ),
        Claim("b", "P", "it shrinks", "abstract", ara, lambda r: r.ara.ratio_over_seeds["all"], "< 1"),
        Claim("c", "P", "it moves", "abstract", ara, lambda r: r.ara.ratio_to_standard["diff"], "> 0"),
        Claim("d", "P", "absent", "abstract", "07_concise_explanations", lambda r: r.concise.gini, "> 0"),
        Claim("e", "P", "renamed", "abstract", ara, lambda r: r.ara.ratio_to_standard["gone"], "> 0"),
    )
    chapters = records.Records.from_dicts(
        {
            ara: dataclasses.asdict(
                _ara_record(
                    ratio_over_seeds={"all": {"value": 1.8, "lo": 1.2, "hi": 2.5, "n": 100}},
                    ratio_to_standard={"diff": {"value": 0.01, "lo": -0.02, "hi": 0.04, "n": 40}},
                )
            )
        }
    )
    df = report.claims_table(chapters, claims)
    assert df["verdict"].tolist() == [
        "reproduced",
        "not shown",
        "not reproduced",
        "not shown",
        "missing",
        "missing",
    ]
    assert df["measured"].tolist()[1:4] == [
        "1.8 [1.2, 2.5] (n=100)",
        "1.8 [1.2, 2.5] (n=100)",
        "0.01 [-0.02, 0.04] (n=40)",
    ]
    # a chapter that has not run is "missing"; one that ran without the measurement says what is missing
    assert df["measured"].tolist()[4:] == ["missing", "missing: KeyError 'gone'"]
    assert df["source"].tolist()[0] == ara and df["claim"].tolist()[0] == "it grows"
    counts = report.verdict_counts(df)
    assert counts["missing"] == 2 and counts["reproduced"] == 1 and counts["not shown"] == 2
    text = str(report.claims_markdown(df).data)
    assert text.count("it grows") == 1 and "**reproduced**" in text and "| `> 1` |" in text
    for kind in ("paper", "check"):  # one kind's rows only: each quote of the other kind is left out
        shown = str(report.claims_markdown(df, kind=kind).data)
        assert all((claim in shown) == (k == kind) for claim, k in zip(df["claim"], df["kind"]))
    with pytest.raises(InputError, match="kind: unknown value 'papers'"):
        report.claims_markdown(df, kind="papers")
    full = report.claims_table(records.Records())  # the book's own table, with no notebook run: all missing
    assert len(full) == len(CLAIMS) and (full["verdict"] == "missing").all()


def test_a_record_file_with_other_fields_than_its_chapter_is_refused():
    good = dataclasses.asdict(_ara_record())
    with pytest.raises(records.RecordError, match="unknown \\['ratio'\\], missing \\['ratio_over_seeds'\\]"):
        records.AraEvaluation.from_dict(
            {**{k: v for k, v in good.items() if k != "ratio_over_seeds"}, "ratio": 1}
        )
    with pytest.raises(TypeError):  # a chapter building its record with a misspelt field fails as it runs
        records.AraEvaluation(**{**good, "ratio": 1})


def test_a_comparison_with_both_arms_at_the_floor_is_not_judged():
    zero = Estimate(0.0, 0.0, 0.0, 200)
    at = {"a-b": zero, "c-d": zero, "e-f": Estimate(0.1, 0.05, 0.15, 200)}
    arms = {"a-b": [0.0, 0.0], "c-d": [0.4, 0.4], "e-f": [0.1, 0.0]}
    chapters = records.Records(ara=_ara_record(ratio_to_standard=at, ratio_over_seeds=arms))
    claims = tuple(
        Claim(
            pair,
            "P",
            "a beats b",
            "abstract",
            "03_ara_evaluation",
            lambda r, pair=pair: r.ara.ratio_to_standard[pair],
            "> 0",
            "difference",
            arms=lambda r, pair=pair: r.ara.ratio_over_seeds[pair],
        )
        for pair in ("a-b", "c-d", "e-f")
    )
    df = report.claims_table(chapters, claims)
    # both at 0: says nothing; equal and off the floor: a real "no difference"; off the floor: judged
    assert df["verdict"].tolist() == [
        "not judged: both arms at 0 or both at 1",
        "not reproduced",
        "reproduced",
    ]


def test_evaluate_all_has_every_metric():
    torch.manual_seed(0)
    x = torch.rand(6, 1, 6, 6)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(72, 3)).eval()
    rows = experiments.evaluate_all(
        {"m": model},
        x,
        y,
        config=SearchConfig(steps=30, eps=5.0, momentum=0.9),
        linf_eps=(0.05,),
        pgd_steps=3,
        ig_steps=4,
    )
    df = report.evaluation_table(rows)
    assert list(df.columns) == [
        "n",
        "accuracy",
        "accuracy_95",
        "attack_ara",
        "attack_ara_95",
        "btr_ara",
        "btr_ara_95",
        "robust_acc@0.05",
        "robust_acc@0.05_95",
        "ig_gini",
        "ig_gini_95",
    ]
    lo, hi = (float(v) for v in df.loc["m", "robust_acc@0.05_95"].strip("[]").split(","))
    assert lo <= df.loc["m", "robust_acc@0.05"] <= hi and hi - lo > 0.1  # six images: a wide interval
    assert df.loc["m", "robust_acc@0.05"] <= df.loc["m", "accuracy"]
    assert 0 <= df.loc["m", "ig_gini"] < 1


def test_shift_table_uses_successes_medians_and_defined_taus():
    from types import SimpleNamespace

    from advexp_book.report import shift_table
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


def test_ensemble_table_reports_attacks_and_paired_ratios():
    from advexp_lib.metrics import EnsembleAraResult, ara_from_distances

    def ens(rmse, ddn):
        best = torch.minimum(rmse, ddn)
        return EnsembleAraResult(
            ara=ara_from_distances(best, 10),
            distances=best,
            accuracy=1.0,
            kind="attack",
            num_classes=10,
            per_attack={"rmse": ara_from_distances(rmse, 10), "ddn": ara_from_distances(ddn, 10)},
            per_attack_distances={"rmse": rmse, "ddn": ddn},
            wins={"rmse": float((rmse <= ddn).double().mean()), "ddn": float((ddn <= rmse).double().mean())},
            failures={"rmse": 0, "ddn": 0},
        )

    d = torch.linspace(0.1, 1.0, 30, dtype=torch.float64)
    table = report.ensemble_table(
        {"standard": ens(d, d + 0.1), "robust": ens(3 * d, 2 * d)}, reference="standard"
    )
    assert table.loc["robust", "RMSE ARA / standard"].startswith("3 ")  # 3x every distance
    assert table.loc["robust", "ensemble ARA / standard"].startswith("2 ")  # ddn wins: 2x
    assert table.loc["robust", "ddn wins"] == 1.0 and table.loc["standard", "rmse wins"] == 1.0
    with pytest.raises(InputError, match="reference"):
        report.ensemble_table({"a": ens(d, d)}, reference="b")


def test_agreement_and_fidelity_tables_carry_intervals():
    from advexp_lib.stats import bootstrap_mean, wilson

    agree = {
        "m": {
            "self": {
                "share_t": wilson(3, 4),
                "p_t": bootstrap_mean([0.5, 0.7]),
                "p_t_clean": bootstrap_mean([0.1]),
            }
        }
    }
    row = report.agreement_table(agree).loc[("m", "self")]
    assert row["n"] == 4 and row["share classified t"] == str(wilson(3, 4))
    fid = {"m": {"ae": {"faithfulness": torch.tensor([0.2, float("nan"), 0.4])}}}
    cell = report.fidelity_table(fid).loc[("m", "ae"), "faithfulness"]
    assert cell.startswith("0.3 ") and cell.endswith("(n=2)")  # the undefined image is left out


def test_isa_table_counts_successes_and_ratios_of_the_hidden_measure():
    from advexp_lib.attacks.sneaking import IsaResult

    base = {"one": torch.tensor([2.0, 4.0, 1.0]), "two": torch.tensor([3.0, 3.0, 3.0])}
    hidden = {
        "one": {
            "success": torch.tensor([[True, True, False]]),
            "gamma": torch.zeros(1, 3),
            "x_adv": torch.zeros(1, 3, 1),
            "one": torch.tensor([[1.0, 1.0, 0.0]]),  # halves image 0, quarters image 1
            "two": torch.tensor([[3.0, 3.0, 3.0]]),
        }
    }
    res = IsaResult(
        eps=torch.ones(3),
        success=torch.tensor([True, True, False]),
        x_attack=torch.zeros(3, 1),
        baseline=base,
        multiples=(2.0,),
        hidden=hidden,
    )
    table = report.isa_table(res)
    assert table.loc[("attack alone", "minimal"), "n"] == 2
    assert table.loc[("attack alone", "minimal"), "D1"].startswith("3 ")  # mean of 2 and 4
    row = table.loc[("hiding from D1", "2 x minimal")]
    assert row["n"] == 2 and row["D_hidden / D_alone"].startswith("0.375 ")  # mean of 1/2 and 1/4


def test_robust_accuracy_table_gives_wilson_intervals():
    from advexp_lib.stats import wilson

    table = report.robust_accuracy_table({"m": (torch.tensor([0.0, 0.1]), torch.tensor([0.9, 0.5]))}, 10)
    w = wilson(5, 10)
    assert table.loc["m", "eps 0.1"] == f"0.500 [{w.lo:.4g}, {w.hi:.4g}]"
    with pytest.raises(InputError, match="n"):
        report.robust_accuracy_table({}, 0)


def test_reference_difference_by_hand():
    x = torch.zeros(1, 1, 1, 3)
    reference = torch.tensor([[[[10.0, 20.0, 0.0]]]]) / 255
    ours = torch.tensor([[[[10.4, 23.0, 0.0]]]]) / 255  # 10.4 quantizes to 10, as a PNG would store it
    row = experiments.reference_difference(ours, reference, x).iloc[0]
    assert row["max_diff_255"] == 3.0 and row["mean_diff_255"] == pytest.approx(1.0)
    expected = torch.corrcoef(torch.tensor([[10.0, 23.0, 0.0], [10.0, 20.0, 0.0]], dtype=torch.float64))[0, 1]
    assert row["change_corr"] == pytest.approx(float(expected))
    with pytest.raises(InputError, match="reference"):
        experiments.reference_difference(ours, reference[..., :2], x)


def test_one_verdict_per_quote_rests_on_the_authors_networks_first():
    import pandas as pd

    from advexp_book.claims import AUTHORS, OURS

    rows = [
        ("q1", AUTHORS, "reproduced"),
        ("q1", AUTHORS, "not shown"),
        ("q1", OURS, "reproduced"),
        ("q2", OURS, "reproduced"),
        ("q2", OURS, "reproduced"),
        ("q3", AUTHORS, "reproduced"),
        ("q3", OURS, "not reproduced"),
    ]
    table = pd.DataFrame(
        [{"kind": "paper", "paper": "P", "claim": q, "evidence": e, "verdict": v} for q, e, v in rows]
        + [{"kind": "check", "paper": "P", "claim": "q4", "evidence": OURS, "verdict": "reproduced"}]
    )
    out = report.quote_verdicts(table).set_index("claim")
    assert list(out.index) == ["q1", "q2", "q3"]  # checks are no quotes
    assert out.loc["q1", "verdict"] == "not shown" and out.loc["q1", AUTHORS].startswith("not shown (1 of 2")
    assert out.loc["q2", "verdict"] == "reproduced" and out.loc["q2", AUTHORS] == ""
    assert out.loc["q3", "verdict"] == "reproduced" and out.loc["q3", OURS].startswith("not reproduced")
