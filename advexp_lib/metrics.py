"""Metrics: the Accuracy-Robustness Area (Woods et al. 2019), robust accuracy, and measures of maps.

ARA is hand-written (no library has it); it is measured with the RMSE search
of :mod:`advexp_lib.attacks.search` under the :data:`ARA_PAPER` protocol, so
distances are per-image RMSE in [0, 1] pixel units. Robust accuracy uses
l-inf PGD. The map measures (discrepancy, Kendall's tau through
``scipy.stats.kendalltau``, top-k intersection, Gini) compare attribution maps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import scipy.stats
import torch
from torch import nn
from tqdm.auto import tqdm

from . import distributed
from .attacks import (
    ARA_PAPER,
    INDEPENDENT_ATTACKS,
    SearchConfig,
    as_criterion,
    independent_attack,
    pgd,
    rmse_search,
)
from .attributions import Cam, as_explainer
from .checks import (
    InputError,
    InputTypeError,
    as_labels,
    check_choice,
    check_images,
    check_labels,
    check_logits,
    check_model_input,
    check_positive,
    progress_enabled,
)
from .models import eval_mode
from .protocols import ARA_N_IMAGES, ARA_SEED, PGD_EVAL  # noqa: F401 (re-exported: the ARA protocol's images)
from .results import Result
from .speedups import attack_view
from .stats import Estimate, bootstrap, hierarchical_resamples

__all__ = [
    "ARA_PAPER",
    "ARA_N_IMAGES",
    "ARA_SEED",
    "AraResult",
    "EnsembleAraResult",
    "ensemble_ara",
    "ara_from_distances",
    "ara_interval",
    "ara_ratio",
    "ara_ratios",
    "ara_ratio_over_seeds",
    "accuracy_robustness_area",
    "accuracy",
    "predict",
    "DISCREPANCY_MEASURES",
    "DISCREPANCY_NORMS",
    "map_discrepancy",
    "discrepancy",
    "kendall_tau",
    "top_k_intersection",
    "gini",
    "robust_accuracy_curve",
]


@dataclass
class AraResult(Result):
    """ARA of one model.

    Attributes:
        ara: the area. distances: per-image minimal RMSE d_i (0 if failed at the start).
        accuracy: clean top-1 accuracy. kind: "attack" or "btr". num_classes: C.
        unreliable: bool per image, criterion first met after T/2 steps or never.
        retried: bool per image, searched again with unit-RMSE steps (``never_met="retry"``).
        correct: bool per image, classified right unperturbed (None where not recorded).

    Examples:
        >>> quick = replace(ARA_PAPER, steps=30)
        >>> r = accuracy_robustness_area(model, x, y, config=quick, progress=False, on_late="flag")
        >>> r.curve()[0].shape, str(r.interval()).endswith("(n=4)")
        (torch.Size([5]), True)
    """

    ara: float
    distances: torch.Tensor
    accuracy: float
    kind: str
    num_classes: int
    unreliable: torch.Tensor
    retried: torch.Tensor | None = None
    correct: torch.Tensor | None = None

    def interval(self, *, seed: int = 0) -> Estimate:
        """The ARA with a 95% bootstrap interval over the images."""
        return ara_interval(self.distances, self.num_classes, seed=seed)

    def take(self, index) -> AraResult:
        """The result on the images ``index`` selects (a slice, indices or a bool mask): ARA and accuracy
        recomputed from their distances and ``correct`` flags. Each image is searched on its own, so
        this is the result of searching those images alone, up to float32 rounding in batched kernels.

        Examples:
            >>> r = accuracy_robustness_area(model, x, y, config=replace(ARA_PAPER, steps=20), progress=False)
            >>> r.take(slice(0, 2)).distances.shape
            torch.Size([2])
        """
        if self.correct is None:
            raise InputError("self: this result does not record which images were correct; search again")
        rows = torch.arange(self.distances.shape[0])[index].reshape(-1)  # an int, a slice, indices, a mask
        if rows.numel() == 0:
            raise InputError("index: selects no image")
        distances, correct = self.distances[rows], self.correct[rows]
        return AraResult(
            ara_from_distances(distances, self.num_classes),
            distances,
            correct.double().mean().item(),
            self.kind,
            self.num_classes,
            self.unreliable[rows],
            None if self.retried is None else self.retried[rows],
            correct,
        )

    def curve(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Accuracy-robustness curve as step points (r, A(r)), A(r) = share of d_i > r."""
        d = torch.sort(self.distances.double().cpu()).values
        n = d.numel()
        r = torch.cat([torch.zeros(1, dtype=d.dtype), d])
        a = torch.cat([(d > 0).double().mean()[None], 1.0 - torch.arange(1, n + 1, dtype=d.dtype) / n])
        return r, a


def ara_from_distances(distances: torch.Tensor, num_classes: int) -> float:
    r"""ARA = \int_0^\infty max(0, A(r) - 1/C) dr with A(r) = share of d_i > r (exact, step function).

    With d sorted ascending (d_0 = 0), A = (N - k) / N on [d_k, d_{k+1}), so
    ARA = sum_k (d_{k+1} - d_k) max(0, (N - k) / N - 1/C).

    Examples:
        >>> round(ara_from_distances(torch.tensor([0.0, 0.1, 0.2, 0.3]), 10), 6)  # (0.65 + 0.4 + 0.15) * 0.1
        0.12
    """
    d = _checked_distances(distances, "distances", num_classes)
    return float(_ara_rows(d, num_classes))


def ara_interval(distances: torch.Tensor, num_classes: int, *, seed: int = 0) -> Estimate:
    """ARA with a 95% bootstrap interval over the images (:func:`advexp_lib.stats.bootstrap`).

    Examples:
        >>> str(ara_interval(torch.linspace(0, 0.5, 50), 10))
        '0.202 [0.164, 0.241] (n=50)'
    """
    d = _checked_distances(distances, "distances", num_classes)
    return bootstrap(d, lambda v, axis: _ara_rows(v, num_classes, axis), seed=seed)


def ara_ratio(
    distances: torch.Tensor, reference_distances: torch.Tensor, num_classes: int, *, seed: int = 0
) -> Estimate:
    """ARA(distances) / ARA(reference_distances) on the same images, with a 95% paired bootstrap interval.

    Both (N,) tensors hold the distances of the same N images (e.g. a robust
    and the standard network); each bootstrap resample draws images, not
    distances, so the pairing is kept (:func:`advexp_lib.stats.bootstrap`).

    Examples:
        >>> d = torch.linspace(0, 0.5, 50)
        >>> ara_ratio(2 * d, d, 10).value
        2.0
    """
    d = _checked_distances(distances, "distances", num_classes)
    ref = _checked_distances(reference_distances, "reference_distances", num_classes)
    if d.shape != ref.shape:
        raise InputError(
            f"reference_distances: expected the shape of distances {tuple(d.shape)}, got {tuple(ref.shape)}"
        )

    def ratio(v, w, axis):
        return _ara_rows(v, num_classes, axis) / _ara_rows(w, num_classes, axis)

    return bootstrap(d, ratio, paired_with=ref, seed=seed)


def ara_ratios(distances: dict, reference: str, num_classes: int, *, seed: int = 0) -> dict:
    """:func:`ara_ratio` of every entry of {label: distances} to ``distances[reference]`` (same images).

    Returns {label: Estimate} for every label but the reference.

    Examples:
        >>> d = torch.linspace(0, 0.5, 50)
        >>> round(ara_ratios({"standard": d, "robust": 3 * d}, "standard", 10)["robust"].value, 6)
        3.0
    """
    check_choice(reference, "reference", list(distances))
    ref = distances[reference]
    return {k: ara_ratio(d, ref, num_classes, seed=seed) for k, d in distances.items() if k != reference}


def ara_ratio_over_seeds(
    distances: dict, reference: str, num_classes: int, *, n_resamples: int = 4000, seed: int = 0
) -> dict:
    r"""Seed-level ARA ratios: mean_s ARA(label, s) / mean_s ARA(reference, s), hierarchical 95% interval.

    ``distances`` = {label: [(N,) distances of training seed s, ...]}, every tensor
    on the same N images. The interval resamples both sources of variation,
    as a two-level (hierarchical) bootstrap (:func:`advexp_lib.stats.hierarchical_resamples`):
    per resample the N images are drawn once (the same draw for every network:
    the pairing is kept), and each label's seeds are drawn with replacement;
    the percentile interval of the resampled ratios.

    Returns:
        {label: Estimate (n = images; seeds per label in ``seeds``)} for every label
        but the reference, and "per_seed": {label: [ARA of each seed]}.

    Examples:
        >>> d = torch.linspace(0, 0.5, 50)
        >>> r = ara_ratio_over_seeds({"standard": [d, d], "robust": [2 * d, 3 * d]}, "standard", 10)
        >>> round(r["robust"].value, 6), str(r["robust"])
        (2.5, '2.5 [2, 3] (n=50)')
    """
    check_choice(reference, "reference", list(distances))
    check_positive(n_resamples, "n_resamples", integer=True)
    arrays = {}
    for label, runs in distances.items():
        if not isinstance(runs, (list, tuple)) or not runs:
            raise InputError(f"distances[{label!r}]: expected a non-empty list of per-seed tensors")
        arrays[label] = np.stack([_checked_distances(d, f"distances[{label!r}]", num_classes) for d in runs])
    n = {a.shape[1] for a in arrays.values()}
    if len(n) != 1:
        raise InputError(f"distances: every tensor must hold the same images, got sizes {sorted(n)}")
    n = n.pop()
    draws = hierarchical_resamples(
        list(arrays.values()), lambda v: _ara_rows(v, num_classes), resamples=n_resamples, seed=seed
    )
    boot = dict(zip(arrays, draws))
    point = {label: float(_ara_rows(a, num_classes).mean()) for label, a in arrays.items()}
    out = {}
    for label in arrays:
        if label == reference:
            continue
        ratios = boot[label] / boot[reference]
        lo, hi = np.percentile(ratios, [2.5, 97.5])
        out[label] = Estimate(point[label] / point[reference], float(lo), float(hi), n)
    out["per_seed"] = {label: [float(v) for v in _ara_rows(a, num_classes)] for label, a in arrays.items()}
    return out


def _ara_rows(d: np.ndarray, num_classes: int, axis: int = -1) -> np.ndarray:
    """ARA of the distances along ``axis`` (float64 numpy), as :func:`ara_from_distances`."""
    d = np.sort(np.moveaxis(np.asarray(d, dtype=np.float64), axis, -1), axis=-1)
    n = d.shape[-1]
    widths = np.diff(d, axis=-1, prepend=0.0)
    share = (n - np.arange(n, dtype=np.float64)) / n
    return (widths * np.clip(share - 1.0 / num_classes, 0.0, None)).sum(-1)


def _checked_distances(distances, name: str, num_classes: int) -> np.ndarray:
    check_positive(num_classes, "num_classes", integer=True)
    if not isinstance(distances, torch.Tensor):
        raise InputTypeError(f"{name}: expected a torch.Tensor, got {type(distances).__name__}")
    d = distances.detach().double().flatten().cpu()
    if d.numel() == 0 or not torch.isfinite(d).all() or (d < 0).any():
        raise InputError(
            f"{name}: expected a non-empty tensor of finite values >= 0, got {d.numel()} "
            f"value(s) in [{d.min().item() if d.numel() else 'none'}, "
            f"{d.max().item() if d.numel() else 'none'}]"
        )
    return d.numpy()


def accuracy_robustness_area(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    kind="attack",
    config: SearchConfig = ARA_PAPER,
    batch_size: int | None = None,
    progress=None,
    on_late: str = "warn",
    never_met: str = "raise",
) -> AraResult:
    r"""Accuracy-Robustness Area of ``model`` on ``(x, y)`` (Woods et al. 2019).

    For each image the RMSE search (:func:`advexp_lib.attacks.rmse_search`,
    model in eval mode) finds the smallest perturbation d_i that breaks the
    criterion (d_i = 0 for an image that fails it unperturbed); with A(r) the
    share of images with d_i > r,

        ARA = \int_0^\infty max(0, A(r) - 1/C) dr,

    integrated exactly over the step function A (the reference sums 1,000
    histogram bins, which comes out at most one bin width, max_i d_i / 1000,
    lower). Under ``torchrun`` (a torch.distributed process group is up) each
    process searches a contiguous share of the images and every process
    returns the result for all of them (:mod:`advexp_lib.distributed`).

    Args:
        kind: "attack" (top-1 no longer correct) or "btr" (true-class
            probability no longer above chance, 1/C), or the criteria
            ``ATTACK`` / ``BTR``. Default: "attack".
        config: the search. Default: :data:`ARA_PAPER` (the reference's
            protocol; no clipping to [0, 1]).
        batch_size: images per search batch; default None = all at once.
            Chunks bound the memory. Each image is searched on its own, so
            the distances depend on the chunking only through float32
            rounding in the batched convolutions, which the search can
            amplify on a ReLU network.
        on_late: what to do when an image meets the criterion after T/2 steps
            ("warn" default, "raise", "flag"); see ``AraResult.unreliable``.
        never_met: an image that never meets the criterion has no distance.
            "raise" (default): an InputError, since an unknown distance is not 0.
            "zero": distance 0, what the reference returns (its best buffer
            starts at zero; its late check would refuse such a run).
            "retry": search those images again with unit-RMSE steps
            (``grad_floor=0``), which keep moving where the reference's steps
            shrink to nothing on a saturated network; they are marked in
            ``AraResult.retried`` and raise if they still never meet it.
    Returns:
        AraResult with ``ara``, per-image ``distances``, ``accuracy``, ``interval()``, ``curve()``.

    Examples:
        >>> r = accuracy_robustness_area(model, x, y, config=replace(ARA_PAPER, steps=40), progress=False)
        >>> r.kind, r.distances.shape
        ('attack', torch.Size([4]))
    """
    criterion = as_criterion(kind, ("attack", "btr"), name="kind")
    check_choice(never_met, "never_met", ("raise", "zero", "retry"))
    if not isinstance(config, SearchConfig):
        raise InputError(f"config: expected a SearchConfig (e.g. ARA_PAPER), got {type(config).__name__}")
    y, num_classes = _checked_ara_input(model, x, y)
    n = x.shape[0]
    batch_size = n if batch_size is None else check_positive(batch_size, "batch_size", integer=True)
    rows = distributed.split_for_rank(n)  # under torchrun: this rank's contiguous share; else all
    x, y = x[rows], y[rows]
    search = dict(criterion=criterion, config=config, on_late=on_late)
    distances, unreliable, correct = _searched_distances(model, x, y, batch_size, search, progress)
    retried = ~torch.isfinite(distances) & (never_met == "retry")
    if retried.any():  # unit-RMSE steps keep moving where the reference's shrink to nothing
        idx = torch.nonzero(retried).flatten().to(x.device)
        search["config"] = replace(config, grad_floor=0.0)
        distances[idx.cpu()] = rmse_search(model, x[idx], y[idx], **search).distances.cpu()
    if distributed.world_size() > 1:  # every rank gets every image's result, in order
        parts = [t.to(x.device, x.dtype) for t in (distances, unreliable, retried, correct)]
        distances, unreliable, retried, correct = (distributed.gather_cat(t).cpu() for t in parts)
        unreliable, retried, correct = unreliable.bool(), retried.bool(), correct.bool()
    never = ~torch.isfinite(distances)
    if never.any() and never_met == "zero":
        distances = torch.where(never, torch.zeros_like(distances), distances)
    elif never.any():  # no finite d_i: the integral is undefined, not large
        raise InputError(
            f"eps/steps: {int(never.sum())} of {n} image(s) never met the {criterion.name!r} criterion "
            f"within eps {config.eps} and {config.steps} steps, so their distance (and the ARA) is unknown; "
            f"raise eps or steps, or pass never_met='retry' (unit-RMSE steps where the gradient vanishes) "
            f"or 'zero' (the reference's 0)"
        )
    ara = ara_from_distances(distances, num_classes)
    accuracy = correct.double().mean().item()
    return AraResult(ara, distances, accuracy, criterion.name, num_classes, unreliable, retried, correct)


def _checked_ara_input(model, x, y) -> tuple[torch.Tensor, int]:
    """(labels on x's device, number of classes), after every check that can fail before the search."""
    check_images(x, "x")
    n = x.shape[0]
    check_model_input(model, x)
    y = as_labels(y, n, None, "y").to(x.device)  # length now: batches slice y, so a longer y would pass
    with eval_mode(model), torch.no_grad():  # wrong channels / output shape / labels: fail before the bar too
        num_classes = check_logits(model(x[:1]), 1).shape[1]
    check_labels(y, n, num_classes, "y")
    return y, num_classes


def _searched_distances(model, x, y, batch_size: int, search: dict, progress) -> tuple:
    """(distances, unreliable, correct) of the RMSE search over ``x`` in batches, with one progress bar."""
    bar = None
    if progress_enabled(progress) and distributed.is_main_process():
        bar = tqdm(
            total=x.shape[0] * search["config"].steps,
            desc=f"ARA ({search['criterion'].name})",
            unit="img-step",
            unit_scale=True,
            leave=False,
        )
    dists, late = [torch.zeros(0, dtype=x.dtype)], [torch.zeros(0, dtype=torch.bool)]
    correct = [torch.zeros(0, dtype=torch.bool)]
    for i in range(0, x.shape[0], batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        res = rmse_search(model, xb, yb, **search, progress=bar)
        dists.append(res.distances.cpu())
        late.append(res.unreliable.cpu())
        with eval_mode(model), torch.no_grad():
            correct.append((model(xb).argmax(1) == yb).cpu())
    if bar is not None:
        bar.close()
    return torch.cat(dists), torch.cat(late), torch.cat(correct)


@dataclass
class EnsembleAraResult(Result):
    """Output of :func:`ensemble_ara`.

    Attributes:
        ara: ARA of each image's smallest distance over all attacks.
        distances: (N,) those smallest distances (RMSE). accuracy, kind, num_classes: as AraResult.
        per_attack: attack -> its own ARA (inf where it failed on some image).
        per_attack_distances: attack -> (N,) its verified distances (inf: failed).
        wins: attack -> share of the attacked images (correct at first) on which
            it found the smallest distance (ties count for every attack tied, so
            shares can sum to more than 1).
        failures: attack -> number of images it failed on.

    Examples:
        >>> quick = replace(ARA_PAPER, steps=20)
        >>> e = ensemble_ara(model, x, y, attacks=("rmse", "ddn"), config=quick, progress=False)
        >>> sorted(e.per_attack), e.distances.shape
        (['ddn', 'rmse'], torch.Size([4]))
    """

    ara: float
    distances: torch.Tensor
    accuracy: float
    kind: str
    num_classes: int
    per_attack: dict
    per_attack_distances: dict
    wins: dict
    failures: dict

    def interval(self, *, seed: int = 0) -> Estimate:
        """The ensemble ARA with a 95% bootstrap interval over the images."""
        return ara_interval(self.distances, self.num_classes, seed=seed)


def ensemble_ara(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    kind="attack",
    attacks=("rmse", "ddn", "fmn"),
    config: SearchConfig = ARA_PAPER,
    never_met: str = "retry",
    progress=None,
    rmse_result: AraResult | None = None,
) -> EnsembleAraResult:
    r"""ARA from the strongest of several minimal-perturbation attacks (Carlini et al. 2019's advice).

    Each image's distance is the smallest verified RMSE over the attacks:
    "rmse" is Woods et al.'s search (:func:`accuracy_robustness_area` with
    ``config`` and ``never_met``); the others are independent minimal-norm l2
    attacks from foolbox (:func:`advexp_lib.attacks.independent_attack`:
    "ddn", "fmn", and the gradient-free "boundary"), given ``config.steps``
    steps. Every distance of every attack is checked to meet the criterion;
    a failure counts as infinite, not 0. Since every attack's distance is an
    upper bound on the true minimal one, the ensemble ARA is at most every
    per-attack ARA, and closer to the true area. ``kind`` as
    :func:`accuracy_robustness_area`; ``rmse_result``: that function's result
    on the same images and kind, to reuse instead of searching again.

    Returns:
        :class:`EnsembleAraResult`.

    Examples:
        >>> e = ensemble_ara(model, x, y, config=replace(ARA_PAPER, steps=30), progress=False)
        >>> e.ara <= min(e.per_attack.values())
        True
    """
    kind = as_criterion(kind, ("attack", "btr"), name="kind").name
    attacks = tuple(attacks)
    if not attacks:
        raise InputError("attacks: expected at least one attack name")
    for a in attacks:
        check_choice(a, "attacks", ("rmse", *INDEPENDENT_ATTACKS))
    per, accuracy, num_classes = {}, None, None
    for a in tqdm(
        attacks, desc="ensemble ARA", unit="attack", leave=False, disable=not progress_enabled(progress)
    ):
        if a == "rmse":
            res = rmse_result or accuracy_robustness_area(
                model, x, y, kind=kind, config=config, progress=progress, on_late="flag", never_met=never_met
            )
            if res.kind != kind or res.distances.shape[0] != x.shape[0]:
                raise InputError(f"rmse_result: expected a {kind!r} ARA of these {x.shape[0]} images")
            per[a], accuracy, num_classes = res.distances.double(), res.accuracy, res.num_classes
        else:
            per[a] = (
                independent_attack(model, x, y, attack=a, criterion=kind, steps=config.steps)
                .distances.double()
                .cpu()
            )
    if num_classes is None:
        with eval_mode(model), torch.no_grad():
            logits = predict(model, x)
        num_classes, accuracy = (
            logits.shape[1],
            (logits.argmax(1) == y.to(logits.device)).double().mean().item(),
        )
    return _ensemble_result(per, kind, num_classes, accuracy)


def _ensemble_result(per: dict, kind: str, num_classes: int, accuracy: float) -> EnsembleAraResult:
    """The :class:`EnsembleAraResult` of {attack: (N,) distances}: each image's smallest, and who won."""
    attacks = list(per)
    best = torch.stack([per[a] for a in attacks]).min(0).values
    if not torch.isfinite(best).all():
        raise InputError(
            f"attacks: {int((~torch.isfinite(best)).sum())} image(s) broken by no attack: ARA unknown"
        )
    attacked = best > 0
    n_attacked = max(int(attacked.sum()), 1)
    return EnsembleAraResult(
        ara=ara_from_distances(best, num_classes),
        distances=best,
        accuracy=accuracy,
        kind=kind,
        num_classes=num_classes,
        per_attack={
            a: ara_from_distances(d, num_classes) if torch.isfinite(d).all() else math.inf
            for a, d in per.items()
        },
        per_attack_distances=per,
        wins={a: ((per[a] == best) & attacked).sum().item() / n_attacked for a in attacks},
        failures={a: int((~torch.isfinite(d)).sum()) for a, d in per.items()},
    )


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """Logits of ``model`` (in its current mode) on ``x``, batched (device and dtype checked).

    Examples:
        >>> predict(model, x).shape
        torch.Size([4, 3])
    """
    check_images(x, "x")
    check_model_input(model, x)
    out = torch.cat([model(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    return check_logits(out, x.shape[0])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` on (x, y).

    Examples:
        >>> 0.0 <= accuracy(model, x, y) <= 1.0
        True
    """
    logits = predict(model, x)
    check_labels(y, x.shape[0], logits.shape[1], "y")
    return (logits.argmax(1) == y.to(logits.device)).double().mean().item()


# ---------------------------------------------------------------------------------------------------------
# Interpretability metrics: map discrepancy (Boopathy et al. 2020), Kendall tau and top-k intersection
# (Ghorbani et al. 2019, Chen et al. 2019), Gini sparsity (Chalasani et al. 2020), and robust accuracy
# under l-inf PGD over an eps grid. Maps come from advexp_lib.attributions.attribute; all are hand-written
# (no library has the normalized discrepancy or the per-example batched forms).

DISCREPANCY_MEASURES = ("one", "two", "all")
DISCREPANCY_NORMS = ("l1", "l2")


def map_discrepancy(maps: torch.Tensor, maps_adv: torch.Tensor, *, norm: str = "l1") -> torch.Tensor:
    r"""Normalized discrepancy between two maps of the same class, per example (Boopathy et al. 2020).

        D(I, I') = ||I - I'||_p / (max I - min I),    p = 1 ("l1") or 2 ("l2"),

    norms and the range over all entries of each example's map; the range
    is that of the *reference* ``maps`` (the clean image's). A constant
    reference map (range 0) divides by 1e-12 instead, so a nonzero
    difference shows up as huge rather than as NaN. Differentiable (the ISA
    attack descends it).

    Args:
        maps: reference maps I (N x ...), e.g. of the clean images.
        maps_adv: maps I' of the perturbed images, same shape.
        norm: "l1" (default) or "l2".
    Returns:
        (N,) tensor of discrepancies.

    Examples:
        >>> a = torch.tensor([[0.0, 1.0, 2.0]])
        >>> map_discrepancy(a, a + 0.5)  # |0.5| * 3 / (2 - 0)
        tensor([0.7500])
    """
    check_choice(norm, "norm", DISCREPANCY_NORMS)
    _check_map_pair(maps, maps_adv)
    a, b = maps.flatten(1), maps_adv.flatten(1)
    diff = (a - b).abs().sum(1) if norm == "l1" else (a - b).pow(2).sum(1).sqrt()
    spread = (a.amax(1) - a.amin(1)).detach()  # a normalizer, not something to optimize
    return diff / spread.clamp_min(1e-12)


def discrepancy(
    model: nn.Module,
    x: torch.Tensor,
    x_adv: torch.Tensor,
    y: torch.Tensor,
    *,
    measure: str = "one",
    targets: torch.Tensor | None = None,
    explainer=None,
    norm: str = "l1",
) -> torch.Tensor:
    r"""One-, two- or all-class interpretation discrepancy between x and x' (Boopathy et al. 2020).

    With D the normalized :func:`map_discrepancy` and I_c the map of class c
    (``explainer.attribute``):

    - "one":  D1 = D(I_y(x), I_y(x'))                                  (true class y)
    - "two":  D2 = (D(I_y(x), I_y(x')) + D(I_t(x), I_t(x'))) / 2       (t = ``targets``)
    - "all":  mean over every class c of D(I_c(x), I_c(x'))

    Args:
        x, x_adv: clean and perturbed images, N x C x H x W in [0, 1].
        y: true classes (N,); targets: the attack's target classes (measure "two").
        explainer: an :class:`~advexp_lib.attributions.Explainer` or a method
            name. Default: ``Cam(upsample=False)``, the paper's and its
            reference code's maps at the last conv layer's resolution, which
            sets D's scale.
        norm: "l1" (default) or "l2".
    Returns:
        (N,) tensor, detached.

    Examples:
        >>> d = discrepancy(cam_model, x, x.clone(), y, measure="two", targets=(y + 1) % 3)
        >>> bool((d == 0).all())
        True
    """
    check_choice(measure, "measure", DISCREPANCY_MEASURES)
    explainer = Cam(upsample=False) if explainer is None else as_explainer(explainer)
    check_images(x, "x")
    check_images(x_adv, "x_adv")
    if x.shape != x_adv.shape:
        raise InputError(f"x_adv: expected the shape of x {tuple(x.shape)}, got {tuple(x_adv.shape)}")
    num_classes = predict(model, x[:1]).shape[1]
    check_labels(y, x.shape[0], num_classes, "y")
    if measure == "two":
        if targets is None:
            raise InputError("targets: measure='two' needs the attack's target classes")
        check_labels(targets, x.shape[0], num_classes, "targets")

    def d(cls):
        a, b = explainer.attribute(model, x, cls), explainer.attribute(model, x_adv, cls)
        return map_discrepancy(a, b, norm=norm)

    if measure == "one":
        return d(y)
    if measure == "two":
        return (d(y) + d(targets)) / 2
    return torch.stack([d(c) for c in range(num_classes)]).mean(0)


def kendall_tau(maps: torch.Tensor, maps_adv: torch.Tensor) -> torch.Tensor:
    r"""Kendall rank correlation tau-b between two maps, per example (``scipy.stats.kendalltau``).

    Over the n entries of each example (all channels), with sgn the sign function,

        S = sum_{i<j} sgn(a_i - a_j) sgn(b_i - b_j),
        tau_b = S / sqrt(P_a P_b),   P_a = #{i<j : a_i != a_j} (pairs not tied in a).

    Ties count as in scipy's default tau-b; NaN where a map is constant.
    O(n log n) per example (scipy's algorithm).

    Examples:
        >>> kendall_tau(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[1.0, 3.0, 2.0]]))
        tensor([0.3333])
    """
    _check_map_pair(maps, maps_adv)
    a_all, b_all = (
        maps.detach().flatten(1).double().cpu().numpy(),
        maps_adv.detach().flatten(1).double().cpu(),
    )
    taus = [_tau_b(a, b) for a, b in zip(a_all, b_all.numpy())]
    return torch.tensor(taus, dtype=maps.dtype, device=maps.device)


def _tau_b(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:  # a constant map ranks nothing (scipy would warn, then NaN)
        return math.nan
    return float(scipy.stats.kendalltau(a, b).statistic)


def top_k_intersection(
    maps: torch.Tensor, maps_adv: torch.Tensor, k: int, *, absolute: bool = True
) -> torch.Tensor:
    """Share of the top-k entries of ``maps`` that are also top-k in ``maps_adv``, per example.

    Entries are ranked over all pixels and channels by |value| (``absolute``,
    default True, as for attribution magnitude) or by signed value. Result in
    [0, 1]; 1 = same top-k set (Ghorbani et al. 2019; Chen et al. 2019).
    Ties are broken by ``torch.topk``.

    Examples:
        >>> top_k_intersection(torch.tensor([[3.0, 2.0, 1.0, 0.0]]), torch.tensor([[3.0, 0.0, 1.0, 2.0]]), 2)
        tensor([0.5000])
    """
    _check_map_pair(maps, maps_adv)
    n = maps[0].numel()
    check_positive(k, "k", integer=True)
    if k > n:
        raise InputError(f"k: expected at most the {n} entries of a map, got {k}")
    a, b = maps.detach().flatten(1), maps_adv.detach().flatten(1)
    if absolute:
        a, b = a.abs(), b.abs()
    ia, ib = a.topk(k, dim=1).indices, b.topk(k, dim=1).indices
    in_a = torch.zeros_like(a, dtype=torch.bool).scatter_(1, ia, True)
    in_b = torch.zeros_like(b, dtype=torch.bool).scatter_(1, ib, True)
    return (in_a & in_b).sum(1).to(maps.dtype) / k


def gini(attributions: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""Gini index of |attributions| per example: sparsity (Chalasani et al. 2020).

    With a_1 <= ... <= a_n the absolute values of an example's n entries (all
    channels) sorted ascending,

        G = sum_i (2 i - n - 1) a_i / (n sum_i a_i),

    0 for a uniform map, (n - 1) / n for a single nonzero entry; higher =
    sparser = more concise. NaN for an all-zero map (undefined).

    Args:
        attributions: N x ... tensor (e.g. IG maps, same shape as x).
        mask: optional bool tensor of the same shape: each example's Gini over
            its True entries only (n = their count), e.g. ``x > 0``, the
            digit's pixels, where a black-baseline IG can be nonzero at all.
            Default None: every entry.
    Returns:
        (N,) tensor in the input's dtype.

    Examples:
        >>> gini(torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 4.0]]))
        tensor([0.0000, 0.7500])
        >>> gini(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), mask=torch.tensor([[False, False, True, True]]))
        tensor([0.])
    """
    if not isinstance(attributions, torch.Tensor) or attributions.dim() < 2 or attributions.shape[0] == 0:
        got = (
            tuple(attributions.shape)
            if isinstance(attributions, torch.Tensor)
            else type(attributions).__name__
        )
        raise InputError(f"attributions: expected an N x ... tensor with N >= 1, got {got}")
    if not torch.isfinite(attributions).all():
        raise InputError("attributions: contains NaN or inf")
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.shape != attributions.shape:
            raise InputError(
                f"mask: expected a bool tensor shaped like attributions {tuple(attributions.shape)}"
            )
        flat, keep = attributions.detach().flatten(1), mask.flatten(1).bool()
        out = [
            gini(flat[i][keep[i]][None]) if keep[i].any() else flat.new_full((1,), float("nan"))
            for i in range(flat.shape[0])
        ]
        return torch.cat(out).to(attributions.dtype)
    a = torch.sort(attributions.detach().flatten(1).abs().double(), dim=1).values
    n = a.shape[1]
    i = torch.arange(1, n + 1, dtype=a.dtype, device=a.device)
    total = a.sum(1)
    g = ((2 * i - n - 1) * a).sum(1) / (n * total)
    return torch.where(total > 0, g, torch.full_like(g, float("nan"))).to(attributions.dtype)


def robust_accuracy_curve(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps_grid,
    *,
    steps: int = PGD_EVAL.steps,
    step_size: float = PGD_EVAL.step_size,
    norm: str = "linf",
    random_start: bool = False,
    cumulative: bool = False,
    batch_size: int | None = None,
    per_image: bool = False,
    progress=None,
):
    r"""Accuracy under untargeted PGD at each budget of a grid (the companion papers' protocol).

    Each budget eps > 0 attacks the clean images afresh
    (:func:`advexp_lib.attacks.projected_gradient.pgd`, CE ascent from x, no random start by
    default), as Boopathy et al.'s reference code does; eps = 0 gives the
    clean accuracy. A fixed-step attack can find at a small budget what it
    misses at a larger one, so this curve need not fall monotonically. With
    ``cumulative`` an image counts as robust at eps_j only if it survived
    every budget eps_i <= eps_j (a non-increasing curve; images that fell are
    not attacked again). PGD differentiates :func:`advexp_lib.speedups.attack_view`
    of the model (the same function up to rounding, faster); the model itself
    classifies its result.

    Args:
        eps_grid: budgets >= 0 (l-inf, or per-image l2 with ``norm="l2"``), any order; sorted,
            duplicates dropped.
        steps, step_size: PGD settings; default 200 steps of 0.01, Boopathy et al.'s evaluation
            (:data:`advexp_lib.protocols.PGD_EVAL`).
        norm: "linf" (default) or "l2"; random_start: PGD random start (default False).
        cumulative: see above. Default False.
        batch_size: images per PGD batch (default None: all at once).
        per_image: also return which images are robust at each budget. Default False.
        progress: a progress bar over the budgets (default: on, see
            :func:`advexp_lib.checks.progress_enabled`).
    Returns:
        (eps, accuracy): float64 tensors of equal length, eps ascending; with
        ``per_image``, (eps, accuracy, robust) with robust a bool (E, N) tensor
        (paired comparisons of two models on the same images need it).

    Examples:
        >>> eps, acc = robust_accuracy_curve(model, x, y, [0.0, 0.1], steps=5)
        >>> acc.shape
        torch.Size([2])
    """
    check_images(x, "x")
    check_choice(norm, "norm", ("linf", "l2"))
    eps = torch.as_tensor(eps_grid, dtype=torch.float64).flatten()
    if eps.numel() == 0 or not torch.isfinite(eps).all() or (eps < 0).any():
        raise InputError(f"eps_grid: expected a non-empty list of finite budgets >= 0, got {eps_grid!r}")
    eps = torch.unique(eps)  # sorted ascending
    n = x.shape[0]
    batch_size = n if batch_size is None else check_positive(batch_size, "batch_size", integer=True)
    with eval_mode(model):
        logits = predict(model, x)
    check_labels(y, n, logits.shape[1], "y")
    y = y.to(logits.device)
    correct = logits.argmax(1) == y
    robust = correct.clone()
    view = attack_view(model, x)  # the same function, differentiated faster; decisions stay model's
    acc, flags = [], []
    bar = tqdm(
        eps.tolist(), desc="robust accuracy", unit="eps", leave=False, disable=not progress_enabled(progress)
    )
    for e in bar:
        if not cumulative:
            robust = correct.clone()
        idx = torch.nonzero(robust).flatten()
        if e > 0 and idx.numel():
            for i in range(0, idx.numel(), batch_size):
                j = idx[i : i + batch_size]
                x_adv = pgd(
                    view,
                    x[j],
                    y[j],
                    eps=e,
                    steps=steps,
                    step_size=step_size,
                    norm=norm,
                    random_start=random_start,
                    progress=False,
                )
                with eval_mode(model):
                    robust[j] = predict(model, x_adv).argmax(1) == y[j]
        acc.append(robust.double().mean().item())
        flags.append(robust.cpu().clone())
    acc = torch.tensor(acc, dtype=torch.float64)
    return (eps, acc, torch.stack(flags)) if per_image else (eps, acc)


def _check_map_pair(maps, maps_adv) -> None:
    for name, m in (("maps", maps), ("maps_adv", maps_adv)):
        if not isinstance(m, torch.Tensor) or m.dim() < 2 or m.shape[0] == 0:
            got = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
            raise InputError(f"{name}: expected an N x ... tensor of maps with N >= 1, got {got}")
    if maps.shape != maps_adv.shape:
        raise InputError(
            f"maps_adv: expected the shape of maps {tuple(maps.shape)}, got {tuple(maps_adv.shape)}"
        )
