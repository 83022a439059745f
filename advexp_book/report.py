"""Tables: measured results (from :mod:`advexp_book.experiments` and friends) as ``pandas.DataFrame``\\ s.

Formatting only: every function here takes results already computed and lays
them out, with each figure's 95% interval beside it, so notebooks never type
a number. Literature values come only from :mod:`advexp_book.claims` and
:mod:`advexp_lib.published`, labelled as such. Figures live in
:mod:`advexp_lib.plotting` and :mod:`advexp_book.figures`.
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from advexp_lib.checks import InputError, check_choice, check_positive
from advexp_lib.metrics import ara_interval, ara_ratio
from advexp_lib.published import WOODS_PUBLISHED_CIFAR10
from advexp_lib.recipes import recipe
from advexp_lib.stats import Estimate, bootstrap_mean, bootstrap_median, verdict, wilson

from .claims import AUTHORS, CLAIMS, OURS, arm_rates, combine, for_record, measurement
from .companion_eval import eps_index
from .records import Record, Records

__all__ = [
    "LABELS",
    "published_ara_table",
    "recipe_table",
    "training_table",
    "ara_table",
    "ratio_table",
    "seed_ratio_table",
    "shift_table",
    "audit_table",
    "ensemble_table",
    "agreement_table",
    "counterfactual_table",
    "fidelity_table",
    "estimates_table",
    "isa_table",
    "robust_accuracy_table",
    "seed_robustness_table",
    "evaluation_table",
    "claims_table",
    "chapter_claims",
    "claims_markdown",
    "quote_verdicts",
    "verdict_counts",
    "published_comparison",
    "ara_record_comparison",
    "reproduction_summary",
    "published_ara_beside",
]


def published_ara_table() -> pd.DataFrame:
    """The reference repository's README statistics of its published CIFAR-10 networks (not measured here).

    A DataFrame indexed by our recipe names with ``file``, ``accuracy``,
    ``attack_ara``, ``btr_ara`` and a ``source`` column saying where the
    values come from (:data:`advexp_lib.published.WOODS_PUBLISHED_CIFAR10`).
    """
    df = pd.DataFrame.from_dict(WOODS_PUBLISHED_CIFAR10, orient="index")
    df.index.name = "recipe"
    df["source"] = "wwoods/adversarial-explanations-cifar README, published networks"
    return df


def recipe_table(dataset: str, names) -> pd.DataFrame:
    """What differs between recipes: one row per recipe name, from :func:`advexp_lib.recipes.recipe`.

    Columns: arch, activation, epochs, optimizer, loss term (hook name), and the
    adversarial training in the paper's terms ("l2" or "l2min" for the RMSE
    search, "pgd" for Madry's, with its budget, and "half" where only a random
    half of each batch is perturbed).
    """
    rows = {}
    for name in names:
        r = recipe(dataset, name)
        adv = "-"
        if r.input_transform is not None:
            hook, kw = r.input_transform
            kind = ("l2min" if kw.get("minimal") else "l2") if hook == "rmse_adv" else hook
            adv = f"{kind} eps {kw['eps']:g}, {kw['steps']} steps" + (", half" if kw.get("half") else "")
        rows[name] = {
            "arch": r.arch,
            "activation": r.activation,
            "epochs": r.train.num_epochs,
            "optimizer": f"{r.train.optimizer} {r.train.lr:g}",
            "loss term": r.loss_term[0] if r.loss_term else "-",
            "adversarial training": adv,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def training_table(histories: dict, n_test: int) -> pd.DataFrame:
    """One row per recipe of its training history (:func:`advexp_lib.zoo.get_history`): the last epoch's
    test accuracy on ``n_test`` images with its 95% Wilson interval, the final psi (NaN without the
    adaptive penalty) and the seconds the training loop took."""
    check_positive(n_test, "n_test", integer=True)
    rows = {}
    for name, h in histories.items():
        acc = h[-1]["test_accuracy"]
        rows[name] = {
            "test accuracy": acc,
            "95% interval": _interval(wilson(round(acc * n_test), n_test)),
            "final psi": h[-1].get("psi", math.nan),
            "train seconds": sum(r["seconds"] for r in h),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def ara_table(results: dict) -> pd.DataFrame:
    """One row per model of :func:`advexp_book.experiments.ara_results` output {kind: {label: AraResult}}.

    Columns: ``accuracy``; per kind ``<kind>_ara`` with its 95% bootstrap
    interval ``<kind>_ara_95``, ``<kind>_median_rmse``, ``<kind>_unreliable``
    (met the criterion after T/2 steps, or never) and ``<kind>_retried``.
    """
    if not results or not any(results.values()):
        raise InputError("results: expected {kind: {label: AraResult}} with at least one model")
    rows = {}
    for kind, by_label in results.items():
        for label, res in by_label.items():
            row = rows.setdefault(label, {"accuracy": res.accuracy})
            row[f"{kind}_ara"] = res.ara
            row[f"{kind}_ara_95"] = _interval(res.interval())
            row[f"{kind}_median_rmse"] = float(res.distances.median())
            row[f"{kind}_unreliable"] = int(res.unreliable.sum())
            row[f"{kind}_retried"] = int(res.retried.sum()) if res.retried is not None else 0
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "recipe"
    return df


def ratio_table(ratios: dict, reference: str) -> pd.DataFrame:
    """{column: {label: Estimate}} (e.g. :func:`advexp_lib.metrics.ara_ratios` per ARA kind) as a table.

    One row per label, one column per entry, "value [lo, hi] (n=...)"; the
    column names say what each label is divided by (``reference``).
    """
    return pd.DataFrame(
        {f"{col} / {reference}": {label: str(e) for label, e in by.items()} for col, by in ratios.items()}
    )


def seed_ratio_table(ratios: dict, reference: str) -> pd.DataFrame:
    """{kind: :func:`advexp_lib.metrics.ara_ratio_over_seeds` result} as one row per recipe.

    Columns per kind: the seed-level ratio to ``reference`` with its hierarchical
    95% interval, and each seed's ARA (the reference's row has the ARAs only).

    Examples:
        >>> from advexp_lib.metrics import ara_ratio_over_seeds
        >>> d = torch.linspace(0, 0.5, 20)
        >>> r = ara_ratio_over_seeds({"standard": [d, d], "robust": [2 * d, 2 * d]}, "standard", 10)
        >>> list(seed_ratio_table({"attack": r}, "standard").columns)
        ['attack / standard', 'attack ARA per seed']
    """
    rows = {}
    for kind, r in ratios.items():
        for label, aras in r["per_seed"].items():
            row = rows.setdefault(label, {})
            row[f"{kind} / {reference}"] = str(r[label]) if label in r else ""
            row[f"{kind} ARA per seed"] = ", ".join(f"{a:.4f}" for a in aras)
    return pd.DataFrame(rows).T


def shift_table(results: dict) -> pd.DataFrame:
    """One row per (label, method) of :func:`advexp_book.experiments.explanation_shift` results.

    Columns: images attacked successfully (n), the success rate and the share
    of successful attacks whose map shift exceeds the noise control's 95th
    percentile, each with a 95% Wilson interval; the median shift and median
    control shift with 95% bootstrap intervals (medians: a map whose clean
    version is blank has a huge D); Kendall's tau of the maps before and
    after the attack, and before and after the noise (over the images where
    tau is defined: a constant map has none).
    """
    rows = []
    for label, res in results.items():
        ok = res.success
        for m in res.shift:
            rows.append(
                {
                    "model": label,
                    "method": m,
                    "n success": int(ok.sum()),
                    "success rate": str(res.success_rate),
                    "share above control": str(res.share[m]),
                    "median shift D": _defined(bootstrap_median, res.shift[m][ok]),
                    "median control D": _defined(bootstrap_median, res.control_shift[m][ok]),
                    "tau attack": _defined(bootstrap_mean, res.rank[m][ok]),
                    "tau control": _defined(bootstrap_mean, res.control_rank[m][ok]),
                }
            )
    return pd.DataFrame(rows).set_index(["model", "method"])


def comparison_table(results: dict) -> pd.DataFrame:
    """The unconfounded comparisons of :func:`advexp_book.experiments.explanation_shift` results.

    One row per (label, method): the successful attacks (n), then the share of
    them beyond noise (95% Wilson interval) for the confounded before/after
    comparison D(I_y(x), I_t(x')), for (a) the same class D(I_y(x), I_y(x')),
    (b) the class change alone D(I_y(x), I_t(x)), and (c) the new class,
    D(I_t(x), I_t(x')): ``share_beyond_class_swap``; then (c) against the
    structured null instead of noise (``share_beyond_structured_null``) and
    the share of the null's edits that keep the true class.
    """
    rows = {}
    for label, res in results.items():
        for m in res.shift:
            c = res.comparison_share[m]
            rows[(label, m)] = {
                "n success": int(res.success.sum()),
                "I_y(x) vs I_t(x') (confounded)": str(res.share[m]),
                "(a) I_y(x) vs I_y(x')": str(c["same_class"]),
                "(b) class swap alone": str(c["class_swap"]),
                "(c) I_t(x) vs I_t(x'): beyond class swap": str(c["new_class"]),
                "(c) vs the structured null": str(c["new_class_vs_structured"]),
                "null keeps y": str(res.structured_keeps_class),
            }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["model", "method"])


def audit_table(audit) -> pd.DataFrame:
    """One row per model of :func:`advexp_book.experiments.robustness_audit` (an ``AuditResult``).

    The check names carry their settings (the number of restarts, the
    reference model, the boundary attack's images); ``ok`` says whether the
    first four checks passed.
    """
    names = {
        "broken": "unbounded: broken",
        "rmse_ara": "RMSE ARA",
        "longer_change": "2x steps: change",
        "restarts_change": f"{audit.restarts} restarts: change",
        "transfer_beats": f"transfer from {audit.reference}: beats white box",
        "transfer_ara": "transfer ARA",
        "boundary_beats": f"boundary (n={audit.n_boundary}): beats RMSE",
        "ensemble_ara": "ensemble ARA",
        "ensemble_over_rmse": "ensemble / RMSE",
    }
    return pd.DataFrame.from_dict(audit.rows, orient="index").rename(columns=names)


def ensemble_table(ensembles: dict, reference: str | None = None) -> pd.DataFrame:
    """One row per model of :func:`advexp_lib.metrics.ensemble_ara` results.

    Columns: n, the ARA of each attack alone, the ensemble ARA with its 95%
    bootstrap interval, the share of images each attack won (ties count for
    each), the images each attack failed on; and, when ``reference`` names a
    row, each model's ratio to it for the RMSE search and for the ensemble,
    with 95% paired bootstrap intervals (:func:`advexp_lib.metrics.ara_ratio`).
    """
    if not ensembles:
        raise InputError("ensembles: expected at least one {label: EnsembleAraResult}")
    if reference is not None:
        check_choice(reference, "reference", list(ensembles))
    rows = {}
    for label, ens in ensembles.items():
        row = {"n": int(ens.distances.numel())}
        row.update({f"{a} ARA": v for a, v in ens.per_attack.items()})
        row["ensemble ARA"] = str(ara_interval(ens.distances, ens.num_classes))
        row.update({f"{a} wins": v for a, v in ens.wins.items()})
        row.update({f"{a} failed": v for a, v in ens.failures.items()})
        if reference is not None:
            ref = ensembles[reference]
            for name, d, r in (
                ("RMSE", ens.per_attack_distances["rmse"], ref.per_attack_distances["rmse"]),
                ("ensemble", ens.distances, ref.distances),
            ):
                row[f"{name} ARA / {reference}"] = str(ara_ratio(d, r, ens.num_classes))
        rows[label] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def agreement_table(results: dict) -> pd.DataFrame:
    """One row per (explained model, judge) of :func:`advexp_book.experiments.ae_agreement` results.

    Columns: n, the share of AEs the judge classifies as their target class
    (Wilson interval), the judge's mean probability of that class on the AEs and
    on the clean images (bootstrap intervals).
    """
    rows = []
    for label, by_judge in results.items():
        for name, r in by_judge.items():
            rows.append(
                {
                    "explained model": label,
                    "judge": name,
                    "n": r["share_t"].n,
                    "share classified t": str(r["share_t"]),
                    "p(t) on AE": str(r["p_t"]),
                    "p(t) on clean": str(r["p_t_clean"]),
                }
            )
    return pd.DataFrame(rows).set_index(["explained model", "judge"])


def counterfactual_table(results: dict, budgets: dict | None = None) -> pd.DataFrame:
    """One row per (model, method) of :func:`advexp_book.experiments.counterfactual_fidelity` results.

    Columns: rho (from ``budgets``: {model: explanation_budget(...)}, if given), n,
    mean Delta log p(t) (bootstrap interval), the share of edits the model calls t
    and the share that reached the budget rho (Wilson intervals).

    Examples:
        >>> from advexp_book.experiments import counterfactual_fidelity
        >>> r = {"m": counterfactual_fidelity(model, x, (y + 1) % 3, rho=0.1, explainers=[])}
        >>> list(counterfactual_table(r).index.get_level_values("method"))
        ['ae', 'random']
    """
    rows = []
    for label, by_method in results.items():
        for method, r in by_method.items():
            n = int(r["delta_log_p"].numel())
            rows.append(
                {
                    "model": label,
                    "method": method,
                    **({"rho": round(budgets[label]["rho"], 4)} if budgets else {}),
                    "n": n,
                    "delta log p(t)": str(bootstrap_mean(r["delta_log_p"].double())),
                    "share classified t": str(wilson(int(r["hit"].sum()), n)),
                    "share at rho": str(wilson(int(r["reached"].sum()), n)),
                }
            )
    return pd.DataFrame(rows).set_index(["model", "method"])


LABELS = {
    "outside_k10": "energy outside top 10%",
    "minus_chance_k10": "outside top 10%, minus chance",
    "outside_k20": "energy outside top 20%",
    "minus_chance_k20": "outside top 20%, minus chance",
    "intersection": "top-k intersection",
    "kendall_tau": "Kendall tau",
    "ce_recipe_steps": "recipe: CE-PGD",
    "ig_recipe_steps": "reference objective, recipe's steps",
    "ig_reference_steps": "reference objective, 40 x 0.01",
    "mean_ig_norm": "mean ||IG||_1",
    "share_of_reference": "share of the reference's norm",
}
"""Data keys of the experiments' results -> the labels their tables show (:func:`estimates_table`)."""


def estimates_table(rows: dict) -> pd.DataFrame:
    """{row: {column: Estimate}} as a table of "value [lo, hi] (n=...)" strings; row and column keys
    found in :data:`LABELS` are shown by their labels."""
    table = pd.DataFrame({r: {k: str(v) for k, v in cols.items()} for r, cols in rows.items()}).T
    return table.rename(index=LABELS, columns=LABELS)


def fidelity_table(results: dict) -> pd.DataFrame:
    """One row per (model, method) of :func:`advexp_book.experiments.explanation_fidelity` results.

    Each metric's mean over the images where it is defined, with a 95%
    bootstrap interval; ``n`` counts the images.
    """
    rows = []
    for label, by_method in results.items():
        for method, metrics_ in by_method.items():
            row = {"model": label, "method": method, "n": int(next(iter(metrics_.values())).numel())}
            row.update({k: _defined(bootstrap_mean, v.double()) for k, v in metrics_.items()})
            rows.append(row)
    return pd.DataFrame(rows).set_index(["model", "method"])


def isa_table(result) -> pd.DataFrame:
    """The ISA table of Boopathy et al. from an :class:`~advexp_lib.attacks.sneaking.IsaResult`.

    Rows: the attack alone at the minimal eps and at each multiple p of it (the
    equal-budget control), then one per (measure hidden from, p): the share of
    the images whose attack alone succeeded at the minimal eps that the run
    moves to the target (Wilson interval), and the mean normalized D1 and D2
    (bootstrap intervals) over the images where it did. For the ISA rows,
    "D_hidden / D_alone" is the mean, over those images, of the hidden measure's
    ratio to the attack alone's at the minimal eps (< 1: the ISA hid), and
    "... at equal eps" its ratio to the attack alone's at the same p x eps.
    """
    base_ok = result.success
    n = int(base_ok.sum())
    if n == 0:
        raise InputError("result: the attack alone reached the target on no image; nothing to tabulate")

    def row(run, eps, ok, d1, d2, ratios=("", "")):
        k = int(ok.sum())
        out = {"run": run, "eps": eps, "n": k, "success": str(wilson(k, n))}
        out.update(D1=_defined(bootstrap_mean, d1[ok]), D2=_defined(bootstrap_mean, d2[ok]))
        out.update(zip(("D_hidden / D_alone", "D_hidden / D_alone at equal eps"), ratios, strict=True))
        return out

    rows = [row("attack alone", "minimal", base_ok, result.baseline["one"], result.baseline["two"])]
    for i, p in enumerate(result.multiples):
        if result.alone:
            a = result.alone
            rows.append(
                row("attack alone", f"{p:g} x minimal", a["success"][i] & base_ok, a["one"][i], a["two"][i])
            )
    for measure, h in result.hidden.items():
        for i, p in enumerate(result.multiples):
            ok = h["success"][i] & base_ok
            ratios = [
                _defined(bootstrap_mean, (h[measure][i] / result.baseline[measure].clamp(min=1e-12))[ok])
            ]
            if result.alone:
                both = ok & result.alone["success"][i]
                equal = h[measure][i] / result.alone[measure][i].clamp(min=1e-12)
                ratios.append(_defined(bootstrap_mean, equal[both]))
            else:
                ratios.append("")
            rows.append(
                row(
                    f"hiding from D{1 if measure == 'one' else 2}",
                    f"{p:g} x minimal",
                    ok,
                    h["one"][i],
                    h["two"][i],
                    ratios,
                )
            )
    return pd.DataFrame(rows).set_index(["run", "eps"])


def robust_accuracy_table(curves: dict, n: int) -> pd.DataFrame:
    """Robust accuracies of :func:`advexp_lib.metrics.robust_accuracy_curve` as "share [lo, hi]" strings.

    ``curves``: {label: (eps, accuracy)} on the same ``n`` images; one row per
    label, one column per budget, each with its 95% Wilson interval.
    """
    check_positive(n, "n", integer=True)
    return pd.DataFrame(
        {
            label: {
                f"eps {e:g}": f"{a:.3f} {_interval(wilson(round(a * n), n))}"
                for e, a in zip(eps.tolist(), acc.tolist())
            }
            for label, (eps, acc) in curves.items()
        }
    ).T


def pgd_audit_table(results: dict) -> pd.DataFrame:
    """Robust accuracy under the reference's PGD, under each attack of the audit, and under all of them.

    ``results`` as :func:`advexp_book.companion_eval.pgd_robustness` returns;
    one row per (network, audited eps), each cell a share with its 95% Wilson
    interval. Each audit attack runs on the images the reference's PGD left
    standing, so every column is at most "their PGD"; a large drop says that
    attack was too weak for the network.
    """
    rows = {}
    for label, r in results.items():
        for e, audited in r["audit"].items():
            flags = {
                "their PGD": r["robust"][eps_index(r["eps"], e)],
                **r["audit_attacks"][e],
                "audit (all)": audited,
            }
            rows[(label, f"{e:g}")] = {
                name: f"{f.double().mean():.3f} {_interval(wilson(int(f.sum()), f.numel()))}"
                for name, f in flags.items()
            }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["network", "eps"])


def seed_robustness_table(by_seed: dict, eps) -> pd.DataFrame:
    """Each training seed's robust accuracy, under the reference's PGD and under the audit, at each ``eps``.

    ``by_seed`` = {seed: {network: :func:`advexp_book.companion_eval.pgd_robustness` row}};
    one row per (network, seed), the ``smallgap_`` prefix of a recipe name dropped.
    """
    rows = {}
    for s, by_net in by_seed.items():
        for net, r in by_net.items():
            row = {f"their PGD {e:g}": r["accuracy"][eps_index(r["eps"], e)].item() for e in eps}
            row.update({f"audit {e:g}": r["audit"][float(e)].double().mean().item() for e in eps})
            rows[(f"ours {net.removeprefix('smallgap_')}", s)] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["network", "seed"])


def paired_tests_table(tests: dict) -> pd.DataFrame:
    """{budget: {"a-b": :class:`~advexp_lib.stats.PairedTest`}} as one row per (budget, comparison).

    Columns: the accuracy difference a - b, its 95% paired bootstrap interval,
    the discordant images (only a right, only b right) and McNemar's exact p.
    """
    rows = {
        (budget, pair): {
            "difference": round(t.difference.value, 4),
            "95% interval": _interval(t.difference),
            "only a right": t.a_only,
            "only b right": t.b_only,
            "McNemar p": float(f"{t.p_value:.2g}"),
        }
        for budget, by_pair in tests.items()
        for pair, t in by_pair.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["budget", "a-b"])


def evaluation_table(rows: dict) -> pd.DataFrame:
    """:func:`advexp_book.experiments.evaluate_all` output as a table: each metric and its 95% interval.

    One row per model; for each metric a column with its value and a
    ``<metric>_95`` column with the interval.
    """
    table = {}
    for label, metrics_ in rows.items():
        row = {"n": next(iter(metrics_.values())).n}
        for name, est in metrics_.items():
            row[name] = est.value
            row[f"{name}_95"] = _interval(est) if est.n else "undefined"
        table[label] = row
    return pd.DataFrame.from_dict(table, orient="index")


def claims_table(records: Records, claims=CLAIMS) -> pd.DataFrame:
    """The reproduction report: one row per claim of :data:`~advexp_book.claims.CLAIMS`, judged from records.

    Each claim reads its measurement from the typed records (its ``estimate``
    function) and has its rule (e.g. "> 1"); the verdict is
    :func:`advexp_lib.stats.verdict` of that measurement and rule, the same call
    the chapter makes. Columns: id, kind ("paper" or "check"), paper, claim
    (quoted), where (in the paper), evidence (the authors' networks or our
    re-training), measure (what is measured), measured (value, 95% interval, n),
    rule, verdict, source (the chapter's record); "missing" where the chapter has
    not recorded, and "missing: <what>" where it recorded without the measurement
    (a run on other settings, e.g. ``-p recipes ...``), so a gap is never silent.
    """
    rows = []
    for c in claims:
        try:
            est, arms, why = measurement(records, c), arm_rates(records, c), "missing"
        except (KeyError, IndexError) as err:
            est, arms, why = None, None, f"missing: {type(err).__name__} {err}"
        rows.append(
            {
                "id": c.id,
                "kind": c.kind,
                "paper": c.paper,
                "claim": c.quote,
                "where": c.where,
                "evidence": c.evidence,
                "measure": c.measure,
                "measured": why if est is None else str(est),
                "rule": c.rule,
                "verdict": "missing" if est is None else str(verdict(est, c.rule, arms=arms)),
                "source": c.record,
            }
        )
    return pd.DataFrame(rows)


def published_comparison(table: pd.DataFrame, published: pd.DataFrame | None = None) -> pd.DataFrame:
    """Our Attack and BTR ARA (an :func:`ara_table`) beside the published networks' README figures.

    Left: the values; right: each column divided by its ``standard`` row, so
    the two settings (digits here, CIFAR-10 there) compare by ratio.
    """
    published = published_ara_table() if published is None else published
    both = pd.DataFrame(
        {
            "ours: attack ARA": table["attack_ara"],
            "ours: BTR ARA": table["btr_ara"],
            "published: attack ARA": published["attack_ara"],
            "published: BTR ARA": published["btr_ara"],
        }
    )
    ratios = both / both.loc["standard"]
    ratios.columns = [c.replace("ARA", "ARA / standard") for c in both.columns]
    return pd.concat([both, ratios], axis=1)


def ara_record_comparison(records: Records, record: str = "03_ara_evaluation") -> pd.DataFrame:
    """:func:`published_comparison` from a chapter's record (its ``attack_ara`` and ``btr_ara`` Estimates).

    An empty table when the record is missing.
    """
    figures = records.chapter(record)
    if figures is None or not figures.attack_ara:
        return pd.DataFrame()
    table = pd.DataFrame(
        {
            f"{kind}_ara": {r: e.value for r, e in getattr(figures, f"{kind}_ara").items()}
            for kind in ("attack", "btr")
        }
    )
    return published_comparison(table)


def reproduction_summary(result: dict) -> pd.DataFrame:
    """:func:`advexp_book.experiments.reference_explanations` in one row per model: for our AEs against the
    reference's, and for our own search against itself (input moved, float64), the mean pixel difference
    (of 255) and the smallest correlation of the two edits over the images."""
    rows = {}
    for name in result["ours"]:
        row = {}
        for label in ("vs reference", "input moved 1e-6", "float64"):
            t = result[label][name]
            row[f"{label}: mean diff"] = t["mean_diff_255"].mean()
            row[f"{label}: min corr"] = t["change_corr"].min()
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def published_ara_beside(results: dict, accuracy: dict | None = None) -> pd.DataFrame:
    """The published networks measured here beside the reference README's figures.

    ``results``: {kind: {recipe: AraResult}} (:func:`advexp_book.experiments.ara_results`);
    ``accuracy``: {recipe: Estimate} on more images, e.g.
    :func:`advexp_book.experiments.accuracies` (default: the ARA images' accuracy).
    One row per recipe; for accuracy, Attack ARA and BTR ARA, the value
    measured here with its 95% interval and n, then the README's value.
    """
    readme = published_ara_table()
    rows = {}
    for net, attack in results["attack"].items():
        if accuracy:
            acc = str(accuracy[net])
        else:
            acc = (
                str(wilson(int(attack.correct.sum()), attack.correct.numel()))
                if attack.correct is not None
                else ""
            )
        known = net in readme.index  # a network the README gives no figures for gets none
        row = {"accuracy: here": acc, "accuracy: README": readme.loc[net, "accuracy"] if known else None}
        for kind in ("attack", "btr"):
            if kind in results:
                row[f"{kind} ARA: here"] = str(results[kind][net].interval())
                row[f"{kind} ARA: README"] = readme.loc[net, f"{kind}_ara"] if known else None
        rows[net] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("network")


def chapter_claims(record: Record):
    """The claims a chapter measures, judged from its typed record, as Markdown.

    :func:`claims_markdown` of ``claims_table(Records.of(record), for_record(record.NAME))``:
    what a chapter shows at its end, the same verdicts the reproduction report
    then reads from the record.
    """
    return claims_markdown(claims_table(Records.of(record), for_record(record.NAME)))


def claims_markdown(table: pd.DataFrame, *, kind: str | None = None, source: bool = False):
    """A :func:`claims_table` for reading: each claim quoted once, then its measurements and verdicts.

    Returns an ``IPython.display.Markdown`` (a plain string where IPython is
    absent): per claim, the paper, where it stands and the quote; below it a
    table of the networks each row rests on (the authors' or our re-training),
    what was measured, the value with its 95% interval and n, the rule, the
    verdict in bold, and with ``source`` the record it was read from. ``kind``:
    only the rows of that kind ("paper" or "check"; default: every row).
    """
    if kind is not None:
        table = table[table["kind"] == check_choice(kind, "kind", ("paper", "check"))]
    parts = []
    for (paper, quote, where), rows in table.groupby(["paper", "claim", "where"], sort=False):
        head = ["networks", "measured", "value [95% interval] (n)", "rule", "verdict"]
        head += ["record"] if source else []
        lines = [f"**{paper}** ({where}): *\u201c{quote}\u201d*", "", "| " + " | ".join(head) + " |"]
        lines.append("|" + "---|" * len(head))
        for _, r in rows.iterrows():
            cells = [r["evidence"], r["measure"], r["measured"], f"`{r['rule']}`", f"**{r['verdict']}**"]
            lines.append("| " + " | ".join(cells + ([r["source"]] if source else [])) + " |")
        parts.append("\n".join(lines))
    text = "\n\n".join(parts)
    try:
        from IPython.display import Markdown  # shown as Markdown in a notebook
    except ImportError:
        return text
    return Markdown(text)


def quote_verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """One verdict per quoted claim of the papers (``kind`` "paper" rows of a :func:`claims_table`).

    Per quote: the rows on the authors' networks and on our re-training, each
    combined by :func:`advexp_book.claims.combine` ("verdict (k of n rows
    reproduced)", empty where there are none), and the quote's verdict: the
    authors' networks' where there are rows on them, else ours
    (:data:`advexp_book.claims.COMBINE`).
    """
    rows = []
    papers = table[table["kind"] == "paper"]
    for (paper, quote), group in papers.groupby(["paper", "claim"], sort=False):
        row = {"paper": paper, "claim": quote}
        for evidence in (AUTHORS, OURS):
            v = group.loc[group["evidence"] == evidence, "verdict"].tolist()
            k = sum(x == "reproduced" for x in v)
            row[evidence] = f"{combine(v)} ({k} of {len(v)} rows reproduced)" if v else ""
        primary = AUTHORS if row[AUTHORS] else OURS
        row["verdict"] = combine(group.loc[group["evidence"] == primary, "verdict"])
        rows.append(row)
    return pd.DataFrame(rows)


def verdict_counts(table: pd.DataFrame) -> pd.Series:
    """How many claims of :func:`claims_table` got each verdict (missing ones included)."""
    return table["verdict"].value_counts()


def _defined(estimator, values: torch.Tensor) -> str:
    """``estimator`` over the non-NaN entries, or "undefined" when there are none."""
    v = values[~values.isnan()]
    return str(estimator(v)) if v.numel() else "undefined"


def _interval(e: Estimate) -> str:
    if math.isnan(e.lo):
        return "undefined"
    return f"[{e.lo:.4g}, {e.hi:.4g}]"
