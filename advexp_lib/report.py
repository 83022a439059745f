"""Tables the book's notebooks share: ARA tables, literature values, every recipe on every metric.

Every table is a ``pandas.DataFrame`` built from measured results (or, for
:func:`published_ara_table`, from published values, labelled as such), so
notebooks never type a number. Figures live in :mod:`advexp_lib.plotting`.
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from .attacks import criterion_met, independent_attack, line_search, rmse, rmse_search
from .attributions import attribute
from .checks import InputError, check_choice, check_positive
from .data import DatasetNotFoundError, load_tensors
from .metrics import (
    accuracy_robustness_area,
    ara_from_distances,
    ara_interval,
    ara_ratio,
    ensemble_ara,
    gini,
    robust_accuracy_curve,
)
from .published import WOODS_RECIPE_FILES, PublishedFileNotFound, published_model
from .recipes import recipe
from .stats import bootstrap_mean, bootstrap_median, wilson

__all__ = [
    "WOODS_PUBLISHED_CIFAR10",
    "WOODS_PAPER_IMAGENET_ARA",
    "published_ara_table",
    "published_ara_measured",
    "recipe_table",
    "ara_table",
    "shift_table",
    "robustness_audit",
    "ensemble_table",
    "agreement_table",
    "fidelity_table",
    "isa_table",
    "reference_difference",
    "robust_accuracy_table",
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
    model and every ``kind``, retrying with unit steps the images the
    reference search cannot move (``never_met="retry"``; counted in
    ``<kind>_retried``).

    Args:
        models: {label: model}; x, y: images in [0, 1] and labels.
        steps, eps, momentum: the search; defaults are the paper's (450, 20, 0.9).
        kinds: which ARA kinds to measure. Default both ("attack", "btr").
    Returns:
        (DataFrame indexed by label with ``accuracy``, ``<kind>_ara``, its 95%
        bootstrap interval ``<kind>_ara_95``, ``<kind>_median_rmse``,
        ``<kind>_unreliable`` and ``<kind>_retried`` columns,
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
                never_met="retry",
            )
            results[kind][label] = res
            interval = res.interval()
            row["accuracy"] = res.accuracy
            row[f"{kind}_ara"] = res.ara
            row[f"{kind}_ara_95"] = _interval(interval)
            row[f"{kind}_median_rmse"] = float(res.distances.median())
            row[f"{kind}_unreliable"] = int(res.unreliable.sum())
            row[f"{kind}_retried"] = int(res.retried.sum())
        rows[label] = row
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "recipe"
    return df, results


def published_ara_measured(
    n: int,
    *,
    steps: int = 450,
    eps: float = 20.0,
    momentum: float = 0.9,
    seed: int = 1776,
    device="cpu",
    progress: bool = False,
):
    """ARA of Woods et al.'s four published CIFAR-10 networks, measured here (needs their files and CIFAR-10).

    The first ``n`` test images of the seed-``seed`` permutation (the paper's
    protocol: 1,000 images, seed 1776), :func:`ara_table` settings.

    Returns:
        (DataFrame, results) as :func:`ara_table`, or (None, reason) where the
        published files (:func:`advexp_lib.published.woods_file`) or CIFAR-10
        (:func:`advexp_lib.data.load_dataset`) are absent, the reason saying what to get.
    """
    try:
        x, y = load_tensors("cifar10", "test", n=n, seed=seed, download=False)
        models = {r: published_model(r, device=device, download=False) for r in WOODS_RECIPE_FILES}
    except (DatasetNotFoundError, PublishedFileNotFound) as err:
        return None, str(err)
    return ara_table(
        models, x.to(device), y.to(device), steps=steps, eps=eps, momentum=momentum, progress=progress
    )


def shift_table(results: dict):
    """One row per (label, method) of :func:`advexp_lib.explanation_attacks.explanation_shift` results.

    Columns: images attacked successfully (n), the success rate and the share
    of successful attacks whose map shift exceeds the noise control's 95th
    percentile, each with a 95% Wilson interval; the median shift and median
    control shift with 95% bootstrap intervals (medians: a map whose clean
    version is blank has a huge D); Kendall's tau of the maps
    before and after the attack, and before and after the noise (over the
    images where tau is defined: a constant map has none).
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


def _defined(estimator, values: torch.Tensor) -> str:
    """``estimator`` over the non-NaN entries, or "undefined" when there are none."""
    v = values[~values.isnan()]
    return str(estimator(v)) if v.numel() else "undefined"


def robustness_audit(
    models: dict,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    kind: str = "attack",
    reference: str | None = None,
    steps: int = 450,
    eps: float = 20.0,
    restarts: int = 2,
    boundary_steps: int = 2000,
    n_boundary: int | None = 20,
    tolerance: float = 0.05,
    seed: int = 0,
    progress: bool = False,
):
    """The standard checklist for a robustness claim (Carlini et al. 2019), one row per model.

    On the same images, for each model:

    - **unbounded**: the share of images some attack breaks with budget
      ``eps`` (it must be 1: an unbounded attack always succeeds);
    - **2x steps**: relative change of the RMSE search's ARA with twice the steps;
    - **restarts**: relative change of its ARA when each image's distance is
      the smallest over ``restarts`` extra searches from x + U(-1/255, 1/255)
      (distances measured from x);
    - **transfer**: the ``reference`` model's minimal perturbations, scaled
      along their direction until they break this model
      (:func:`advexp_lib.attacks.line_search`): the share of images where
      transfer beats the white-box ensemble by more than 2% (should be small;
      the RMSE search records points of its path, a line search lands on the
      boundary, hence the margin), and the transfer ARA (not for the
      reference itself);
    - **boundary**: the gradient-free decision-based attack on the first
      ``n_boundary`` images: the share where it beats the RMSE search;
    - **ensemble**: the ARA from the best of the RMSE search, DDN and FMN
      (:func:`advexp_lib.metrics.ensemble_ara`), and its ratio to the RMSE
      search's ARA.

    ``ok`` says whether the first four checks pass: all broken, both changes
    within ``tolerance``, and no more than ``tolerance`` of the images broken
    more cheaply by transfer or by the boundary attack.

    Returns:
        (DataFrame indexed by model, {model: EnsembleAraResult}).
    """
    if not models:
        raise InputError("models: expected at least one {label: model}")
    reference = reference or next(iter(models))
    check_choice(reference, "reference", list(models))
    settings = dict(kind=kind, steps=steps, eps=eps, progress=progress, on_late="flag", never_met="retry")
    base = {label: accuracy_robustness_area(m, x, y, **settings) for label, m in models.items()}
    ref_found = rmse_search(models[reference], x, y, mode=kind, eps=eps, steps=steps, momentum=0.9)
    directions = ref_found.x_adv - x
    g = torch.Generator().manual_seed(seed)
    nb = x.shape[0] if n_boundary is None else min(n_boundary, x.shape[0])
    rows, ensembles = {}, {}
    for label, model in models.items():
        ara = base[label].ara
        longer = accuracy_robustness_area(model, x, y, **{**settings, "steps": 2 * steps})
        best = base[label].distances.double()
        for _ in range(restarts):
            start = (x + (torch.rand(x.shape, generator=g) * 2 - 1).to(x) / 255).clamp(0, 1)
            found = rmse_search(model, start, y, mode=kind, eps=eps, steps=steps, momentum=0.9).x_adv
            met = criterion_met(model, found, y, kind)
            best = torch.minimum(
                best, torch.where(met, rmse(found - x), torch.full_like(best, math.inf)).double()
            )
        transfer = line_search(model, x, y, directions, kind=kind).distances.double()
        own = label == reference
        ens = ensemble_ara(
            model, x, y, kind=kind, steps=steps, eps=eps, progress=progress, rmse_result=base[label]
        )
        ensembles[label] = ens
        boundary = independent_attack(
            model, x[:nb], y[:nb], attack="boundary", kind=kind, steps=boundary_steps
        )
        white = ens.distances
        attacked = white > 0
        rows[label] = {
            "n": x.shape[0],
            "unbounded: broken": float(torch.isfinite(white).double().mean()),
            "RMSE ARA": ara,
            "2x steps: change": longer.ara / ara - 1,
            f"{restarts} restarts: change": ara_from_distances(best, base[label].num_classes) / ara - 1,
            f"transfer from {reference}: beats white box": math.nan
            if own
            else _share(transfer < 0.98 * white, attacked),
            "transfer ARA": math.nan if own else _ara_or_inf(transfer, base[label].num_classes),
            f"boundary (n={nb}): beats RMSE": _share(
                boundary.distances.double() < base[label].distances[:nb].double() - 1e-12, attacked[:nb]
            ),
            "ensemble ARA": ens.ara,
            "ensemble / RMSE": ens.ara / ara,
        }
        r = rows[label]
        r["ok"] = bool(
            r["unbounded: broken"] == 1.0
            and abs(r["2x steps: change"]) <= tolerance
            and abs(r[f"{restarts} restarts: change"]) <= tolerance
            and not r[f"transfer from {reference}: beats white box"] > tolerance
            and r[f"boundary (n={nb}): beats RMSE"] <= tolerance
        )
    return pd.DataFrame.from_dict(rows, orient="index"), ensembles


def ensemble_table(ensembles: dict, reference: str | None = None):
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


def agreement_table(results: dict):
    """One row per (explained model, judge) of :func:`advexp_lib.explanation_attacks.ae_agreement` results.

    Columns: n, the share of AEs the judge classifies as their target class
    (Wilson interval), the judge's mean probability of that class on the AEs and
    on the clean images (bootstrap intervals).
    """
    rows = []
    for label, by_judge in results.items():
        for judge, r in by_judge.items():
            rows.append(
                {
                    "explained model": label,
                    "judge": judge,
                    "n": r["share_t"].n,
                    "share classified t": str(r["share_t"]),
                    "p(t) on AE": str(r["p_t"]),
                    "p(t) on clean": str(r["p_t_clean"]),
                }
            )
    return pd.DataFrame(rows).set_index(["explained model", "judge"])


def fidelity_table(results: dict):
    """One row per (model, method) of :func:`advexp_lib.explanation_attacks.explanation_fidelity` results.

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


def isa_table(result):
    """The ISA table of Boopathy et al. from an :class:`~advexp_lib.explanation_attacks.IsaResult`.

    One row for the attack alone at the minimal eps, then one per (measure
    hidden from, multiple p of the minimal eps): the share of the images whose
    attack alone succeeded that the ISA still moves to the target (Wilson
    interval), and the mean normalized D1 and D2 (bootstrap intervals) over the
    images where it did; D_hidden / D_alone is the mean, over those images, of
    the hidden measure's ratio to the attack alone's (< 1: the ISA hid).
    """
    base_ok = result.success
    n = int(base_ok.sum())
    if n == 0:
        raise InputError("result: the attack alone reached the target on no image; nothing to tabulate")
    rows = [
        {
            "run": "attack alone",
            "eps": "minimal",
            "n": n,
            "success": str(wilson(n, n)),
            "D1": str(bootstrap_mean(result.baseline["one"][base_ok])),
            "D2": str(bootstrap_mean(result.baseline["two"][base_ok])),
            "D_hidden / D_alone": "",
        }
    ]
    for measure, h in result.hidden.items():
        for i, p in enumerate(result.multiples):
            ok = h["success"][i] & base_ok
            k = int(ok.sum())
            alone = result.baseline[measure][ok]
            ratio = h[measure][i][ok] / alone.clamp(min=1e-12)
            rows.append(
                {
                    "run": f"hiding from D{1 if measure == 'one' else 2}",
                    "eps": f"{p:g} x minimal",
                    "n": k,
                    "success": str(wilson(k, n)),
                    "D1": str(bootstrap_mean(h["one"][i][ok])) if k else "undefined",
                    "D2": str(bootstrap_mean(h["two"][i][ok])) if k else "undefined",
                    "D_hidden / D_alone": str(bootstrap_mean(ratio)) if k else "undefined",
                }
            )
    return pd.DataFrame(rows).set_index(["run", "eps"])


def robust_accuracy_table(curves: dict, n: int):
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


def reference_difference(ours: torch.Tensor, reference: torch.Tensor, x: torch.Tensor):
    """How far our images are from a reference implementation's saved 8-bit images, per image.

    ``ours`` is quantized as a PNG stores it (round(255 v), clamped to 0..255);
    ``reference`` and ``x`` are (N, C, H, W) in [0, 1] read from 8-bit files.
    Columns: the largest and the mean absolute pixel difference, in 8-bit
    levels (of 255), and the Pearson correlation between the two changes from
    the image, ours - x and reference - x (1: the same edit up to scale).
    """
    for name, t in (("ours", ours), ("reference", reference)):
        if t.shape != x.shape:
            raise InputError(f"{name}: expected the shape of x {tuple(x.shape)}, got {tuple(t.shape)}")
    levels = [t.detach().double().cpu().mul(255) for t in (ours, reference, x)]
    mine, ref, base = levels[0].add(0.5).floor().clamp(0, 255), levels[1].round(), levels[2].round()
    diff = (mine - ref).abs().flatten(1)
    changes = torch.stack([(mine - base).flatten(1), (ref - base).flatten(1)], 1)
    corr = [float(torch.corrcoef(c)[0, 1]) for c in changes]
    return pd.DataFrame(
        {
            "max diff (of 255)": diff.max(1).values.tolist(),
            "mean diff (of 255)": diff.mean(1).tolist(),
            "corr of changes": corr,
        }
    )


def _ara_or_inf(distances: torch.Tensor, num_classes: int) -> float:
    return ara_from_distances(distances, num_classes) if torch.isfinite(distances).all() else math.inf


def _share(flags: torch.Tensor, among: torch.Tensor) -> float:
    return float(flags[among].double().mean()) if among.any() else math.nan


def reproduction_table(records: dict, targets: list[dict]):
    """Measured headline figures beside the papers' numbers, with the verdicts the chapters computed.

    Args:
        records: :func:`advexp_lib.reproduce.load_records` output {notebook: {figure: value}}.
        targets: rows dict(claim, record, key, paper, verdict) naming where each
            measured value lives (``records[record][key]``, dotted keys descend
            into dicts), the paper's value (a number or text) and, optionally,
            where the chapter's verdict lives (a dotted key of the same record).
    Returns:
        DataFrame with columns claim, measured, paper, verdict, source; an
        :class:`~advexp_lib.stats.Estimate` recorded as a dict (value, lo, hi, n)
        shows as "value [lo, hi] (n=...)"; "missing" when a record or figure was
        not produced (its notebook did not run, or ran on other settings).
    """
    rows = []
    for t in targets:
        record = records.get(t["record"])
        value, verdict = _lookup(record, t["key"]), _lookup(record, t["verdict"]) if "verdict" in t else ""
        rows.append(
            {
                "claim": t["claim"],
                "measured": "missing" if value is None else _shown(value),
                "paper": t.get("paper", ""),
                "verdict": "missing" if verdict is None else verdict,
                "source": f"{t['record']}: {t['key']}",
            }
        )
    return pd.DataFrame(rows)


def _lookup(record, key: str):
    value = record
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _shown(value):
    if isinstance(value, dict) and set(value) == {"value", "lo", "hi", "n"}:
        return f"{value['value']:.3g} [{value['lo']:.3g}, {value['hi']:.3g}] (n={value['n']})"
    return value


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
        ``n`` (images); ``accuracy``; ``attack_ara`` and ``btr_ara`` (Woods et al.; RMSE search with
        ``ara_steps`` steps, budget ``ara_eps``, momentum 0.9); ``robust_acc@<eps>``
        (Boopathy et al.; l-inf PGD, ``pgd_steps`` x ``pgd_step_size``, through
        :func:`advexp_lib.metrics.robust_accuracy_curve`); ``ig_gini`` (Chalasani
        et al.; mean Gini index of integrated gradients of the true class, zero
        baseline, ``ig_steps`` nodes). Each figure but the accuracy is followed by
        its 95% interval in a ``<column>_95`` column: bootstrap over the images for
        the ARAs and the Gini index, Wilson for the robust accuracies.

    Args:
        models: {label: model}; x, y: evaluation images in [0, 1] and labels.
    Returns:
        DataFrame indexed by label.
    """

    table, _ = ara_table(models, x, y, steps=ara_steps, eps=ara_eps, progress=progress)
    table = table[["accuracy", "attack_ara", "attack_ara_95", "btr_ara", "btr_ara_95"]].copy()
    table.insert(0, "n", x.shape[0])
    for label, model in models.items():
        eps, acc = robust_accuracy_curve(
            model, x, y, list(linf_eps), steps=pgd_steps, step_size=pgd_step_size
        )
        for e, a in zip(eps.tolist(), acc.tolist()):
            table.loc[label, f"robust_acc@{e:g}"] = a
            table.loc[label, f"robust_acc@{e:g}_95"] = _interval(wilson(round(a * x.shape[0]), x.shape[0]))
        ig = attribute(model, x, y, method="integrated_gradients", n_steps=ig_steps)
        g = gini(ig)
        table.loc[label, "ig_gini"] = float(g.nanmean())
        defined = g[~g.isnan()]  # a blank map has no Gini index
        table.loc[label, "ig_gini_95"] = (
            _interval(bootstrap_mean(defined)) if defined.numel() else "undefined"
        )
    return table


def _interval(e) -> str:
    return f"[{e.lo:.4g}, {e.hi:.4g}]"
