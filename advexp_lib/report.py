"""Tables the book's notebooks share: ARA tables, literature values, every recipe on every metric.

Every table is a ``pandas.DataFrame`` built from measured results (or, for
:func:`published_ara_table`, from published values, labelled as such), so
notebooks never type a number. Figures live in :mod:`advexp_lib.plotting`.
"""

from __future__ import annotations

import pandas as pd
import torch

from .attributions import attribute
from .checks import InputError
from .metrics import accuracy_robustness_area, gini, robust_accuracy_curve
from .recipes import recipe

__all__ = [
    "WOODS_PUBLISHED_CIFAR10",
    "WOODS_PAPER_IMAGENET_ARA",
    "published_ara_table",
    "recipe_table",
    "ara_table",
    "drag_table",
    "reproduction_table",
    "evaluate_all",
]

# The statistics that the README of Woods et al.'s reference repository
# (wwoods/adversarial-explanations-cifar) gives for its four published CIFAR-10
# ResNet-44 files, keyed by our recipe names: test accuracy, Attack ARA, BTR ARA.
# The README says these networks "correspond with, but are not the same as" the
# paper's N1-N4, so they are the published networks' figures, not the paper's table.
WOODS_PUBLISHED_CIFAR10 = {
    "standard": {"file": "resnet44-standard.pt", "accuracy": 0.938, "attack_ara": 0.0013, "btr_ara": 0.0015},
    "adv": {"file": "resnet44-adv-train.pt", "accuracy": 0.864, "attack_ara": 0.0100, "btr_ara": 0.0157},
    "robust": {"file": "resnet44-robust.pt", "accuracy": 0.676, "attack_ara": 0.0142, "btr_ara": 0.0395},
    "all": {"file": "resnet44-all.pt", "accuracy": 0.679, "attack_ara": 0.0188, "btr_ara": 0.0414},
}
# The paper's own figure (Woods et al. 2019, abstract): ImageNet Attack ARA 0.0053, 2.4x the previous best.
WOODS_PAPER_IMAGENET_ARA = {"attack_ara": 0.0053, "gain_over_previous_best": 2.4}


def published_ara_table():
    """The reference repository's README statistics of its published CIFAR-10 networks (not measured here).

    A DataFrame indexed by our recipe names with ``file``, ``accuracy``,
    ``attack_ara``, ``btr_ara`` and a ``source`` column saying where the
    values come from (:data:`WOODS_PUBLISHED_CIFAR10`).
    """
    df = pd.DataFrame.from_dict(WOODS_PUBLISHED_CIFAR10, orient="index")
    df.index.name = "recipe"
    df["source"] = "wwoods/adversarial-explanations-cifar README, published networks"
    return df


def recipe_table(dataset: str, names):
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


def ara_table(
    models: dict,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int = 450,
    eps: float = 20.0,
    momentum: float = 0.9,
    kinds=("attack", "btr"),
    progress: bool = False,
):
    """Attack and BTR ARA of several models on the same images.

    Runs :func:`advexp_lib.metrics.accuracy_robustness_area` (Woods et al.
    Algorithm 1; RMSE distances, no clipping, as the reference) for every
    model and every ``kind``.

    Args:
        models: {label: model}; x, y: images in [0, 1] and labels.
        steps, eps, momentum: the search; defaults are the paper's (450, 20, 0.9).
        kinds: which ARA kinds to measure. Default both ("attack", "btr").
    Returns:
        (DataFrame indexed by label with ``accuracy``, ``<kind>_ara``,
        ``<kind>_median_rmse``, ``<kind>_unreliable`` columns,
        {kind: {label: AraResult}} for :func:`advexp_lib.plotting.plot_ara_curves`).
    """
    if not models:
        raise InputError("models: expected at least one {label: model}")
    results = {k: {} for k in kinds}
    rows = {}
    for label, model in models.items():
        row = {}
        for kind in kinds:
            res = accuracy_robustness_area(
                model,
                x,
                y,
                kind=kind,
                steps=steps,
                eps=eps,
                momentum=momentum,
                progress=progress,
                on_late="flag",
            )
            results[kind][label] = res
            row["accuracy"] = res.accuracy
            row[f"{kind}_ara"] = res.ara
            row[f"{kind}_median_rmse"] = float(res.distances.median())
            row[f"{kind}_unreliable"] = int(res.unreliable.sum())
        rows[label] = row
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "recipe"
    return df, results


def drag_table(results: dict):
    """DataFrame of :class:`advexp_lib.explanation_attacks.DragResult` objects, one row per {label: result}.

    Columns: attack success rate, number of successful attacks, and per
    method the share of successful attacks whose map follows the attacked class.
    """
    rows = {}
    for label, res in results.items():
        row = {"success_rate": res.success_rate, "n_success": int(res.success.sum())}
        row.update({f"dragged_{m}": s for m, s in res.share.items()})
        rows[label] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def reproduction_table(records: dict, targets: list[dict]):
    """Measured headline figures beside the papers' numbers.

    Args:
        records: :func:`advexp_lib.reproduce.load_records` output {notebook: {figure: value}}.
        targets: rows dict(claim, record, key, paper) naming where each measured
            value lives (``records[record][key]``, dotted keys descend into dicts)
            and the paper's value (a number or text).
    Returns:
        DataFrame with columns claim, measured, paper, source; "missing" when
        a record was not produced (its notebook did not run).
    """
    rows = []
    for t in targets:
        value = records.get(t["record"], None)
        for part in t["key"].split("."):
            value = value.get(part) if isinstance(value, dict) else None
        rows.append(
            {
                "claim": t["claim"],
                "measured": "missing" if value is None else value,
                "paper": t.get("paper", ""),
                "source": f"{t['record']}: {t['key']}",
            }
        )
    return pd.DataFrame(rows)


def evaluate_all(
    models: dict,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    ara_steps: int = 450,
    ara_eps: float = 20.0,
    linf_eps=(0.1, 0.2),
    pgd_steps: int = 40,
    pgd_step_size: float = 0.01,
    ig_steps: int = 50,
    progress: bool = False,
):
    """Every model on every headline metric of the three papers, one row per model.

    Columns:
        ``accuracy``; ``attack_ara`` and ``btr_ara`` (Woods et al.; RMSE search with
        ``ara_steps`` steps, budget ``ara_eps``, momentum 0.9); ``robust_acc@<eps>``
        (Boopathy et al.; l-inf PGD, ``pgd_steps`` x ``pgd_step_size``, through
        :func:`advexp_lib.metrics.robust_accuracy_curve`); ``ig_gini`` (Chalasani
        et al.; mean Gini index of integrated gradients of the true class, zero
        baseline, ``ig_steps`` nodes).

    Args:
        models: {label: model}; x, y: evaluation images in [0, 1] and labels.
    Returns:
        DataFrame indexed by label.
    """

    table, _ = ara_table(models, x, y, steps=ara_steps, eps=ara_eps, progress=progress)
    table = table[["accuracy", "attack_ara", "btr_ara"]].copy()
    for label, model in models.items():
        eps, acc = robust_accuracy_curve(
            model, x, y, list(linf_eps), steps=pgd_steps, step_size=pgd_step_size
        )
        for e, a in zip(eps.tolist(), acc.tolist()):
            table.loc[label, f"robust_acc@{e:g}"] = a
        ig = attribute(model, x, y, method="integrated_gradients", n_steps=ig_steps)
        table.loc[label, "ig_gini"] = float(gini(ig).nanmean())
    return table
