"""Metrics: Accuracy-Robustness Area (Woods et al. 2019; no library has it), robust accuracy, map measures."""

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
    """ARA of one model; per-image tensors are (N,).

    Attributes:
        ara: the area. distances: minimal RMSE d_i (0: failed at the start). accuracy: clean top-1 accuracy.
        kind: "attack" or "btr". num_classes: C. unreliable: bool, criterion met after T/2 steps or never.
        retried: bool, searched again with unit-RMSE steps. correct: bool, right unperturbed (None: unknown).
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
        """The result on the images ``index`` selects (slice, indices or bool mask), as if searched alone
        (up to float32 rounding in batched kernels).

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

    With d sorted ascending (d_0 = 0): ARA = sum_k (d_{k+1} - d_k) max(0, (N - k) / N - 1/C).
    Deviation on purpose: the reference sums 1,000 histogram bins, which is at most max_i d_i / 1000 lower.

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
    """ARA(distances) / ARA(reference_distances), same (N,) images, with a 95% paired bootstrap interval.

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
    """:func:`ara_ratio` of every other entry of ``distances`` to ``distances[reference]``: {label: Estimate}.

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
    r"""Seed-level mean_s ARA(label, s) / mean_s ARA(reference, s), 95% hierarchical percentile interval.

    ``distances``: {label: [(N,) distances per seed]}, same images; resamples draw the images once for all
    labels (paired), each label's seeds with replacement (:func:`~advexp_lib.stats.hierarchical_resamples`).
    Returns {label: Estimate (n = images)} but the reference, and "per_seed": {label: [ARA per seed]}.

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
    r"""Accuracy-Robustness Area of ``model`` on ``(x, y)`` (Woods et al. 2019), as an :class:`AraResult`.

    d_i: smallest RMSE ([0, 1] pixel units) breaking the criterion, by :func:`advexp_lib.attacks.rmse_search`
    (eval mode; 0 if broken unperturbed); A(r): share of d_i > r; ARA = \int_0^\infty max(0, A(r) - 1/C) dr.
    Exact. Under ``torchrun`` each process searches a contiguous share and returns every image's result.

    Args:
        kind: "attack" (top-1 wrong; default), "btr" (true-class probability <= 1/C), or ``ATTACK`` / ``BTR``.
        config: the search. Default :data:`ARA_PAPER` (the reference's; no clipping to [0, 1]).
        batch_size: images per search batch (default None: all); d_i change only by float32 rounding,
            which the search can amplify on a ReLU network.
        on_late: criterion met after T/2 steps: "warn" (default), "raise", "flag" (``AraResult.unreliable``).
        never_met: if never met: "raise" (default; unknown is not 0), "zero" (the reference's 0) or "retry"
            (unit-RMSE steps, ``grad_floor=0``; see ``AraResult.retried``; raises if still unmet).
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
    """Output of :func:`ensemble_ara`; per-attack fields are {attack: value}.

    Attributes:
        ara: ARA of each image's smallest distance over the attacks. distances: (N,) those RMSE distances.
        accuracy, kind, num_classes: as :class:`AraResult`. failures: number of images failed on.
        per_attack: ARA (inf if failed on some image). per_attack_distances: (N,) verified (inf: failed).
        wins: share of attacked images (correct at first) where it found the smallest (ties: all tied win).
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

    Per image, the smallest verified RMSE over ``attacks``: "rmse" (:func:`accuracy_robustness_area` with
    ``config``, ``never_met``, ``kind``, or its ``rmse_result`` here) and foolbox's minimal-norm l2 "ddn",
    "fmn", gradient-free "boundary" (:func:`~advexp_lib.attacks.independent_attack`, ``config.steps`` steps).
    Failures count as inf; the ARA is at most each per-attack one. Returns :class:`EnsembleAraResult`.

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
# Map measures (discrepancy, Kendall tau, top-k intersection, Gini) and robust accuracy, all hand-written:
# no library has the normalized discrepancy or the per-example batched forms.

DISCREPANCY_MEASURES = ("one", "two", "all")
DISCREPANCY_NORMS = ("l1", "l2")


def map_discrepancy(maps: torch.Tensor, maps_adv: torch.Tensor, *, norm: str = "l1") -> torch.Tensor:
    r"""Normalized discrepancy between two maps of the same class, per example (Boopathy et al. 2020).

    D(I, I') = ||I - I'||_p / (max I - min I), p = 1 ("l1", default) or 2 ("l2"), over each example's entries;
    I = ``maps`` (the reference, e.g. clean), I' = ``maps_adv``; a range of 0 counts as 1e-12. Differentiable.

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
    r"""One-, two- or all-class interpretation discrepancy of x and x' (Boopathy et al. 2020); (N,), detached.

    ``measure``: "one" D(I_y(x), I_y(x')), y: true class; "two" (D(I_y(x), I_y(x')) + D(I_t(x), I_t(x'))) / 2,
    t = ``targets``; "all" mean_c D(I_c(x), I_c(x')). D: :func:`map_discrepancy`; I_c: class c's map.

    Args:
        x, x_adv: clean, perturbed N x C x H x W in [0, 1]. y: (N,) true classes. norm: "l1" (default), "l2".
        explainer: an :class:`~advexp_lib.attributions.Explainer` or name. Default ``Cam(upsample=False)``,
            the paper's maps at the last conv layer's resolution (sets D's scale).
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
    r"""Kendall rank correlation tau-b between two maps, per example (``scipy.stats.kendalltau``, O(n log n)).

    Over each example's n entries, tau_b = S / sqrt(P_a P_b) with S = sum_{i<j} sgn(a_i - a_j) sgn(b_i - b_j)
    and P_a = #{i<j : a_i != a_j}. Ties as scipy's default tau-b; NaN where a map is constant.

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
    """Share of the top-k entries of ``maps`` also top-k in ``maps_adv``, per example, in [0, 1] (1: same).

    Ranks |value| (``absolute``, default True) or value; ties by ``torch.topk``.
    Ghorbani et al. 2019; Chen et al. 2019.

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
    r"""Gini index of |attributions| per example: sparsity (Chalasani et al. 2020); (N,) in the input's dtype.

    G = sum_i (2 i - n - 1) a_i / (n sum_i a_i), a_1 <= ... <= a_n the sorted absolute entries: 0 if uniform,
    (n - 1) / n for one nonzero entry, NaN if all zero. ``mask`` (bool, same shape): True entries only.

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
    r"""(eps, accuracy[, robust]), float64, eps ascending: accuracy under untargeted PGD at each budget.

    Each eps > 0 attacks the clean images afresh (:func:`~advexp_lib.attacks.pgd`, CE ascent from x, on
    :func:`~advexp_lib.speedups.attack_view`), as Boopathy et al.'s code does, so the curve need not fall.

    Args:
        eps_grid: budgets >= 0 (0: clean; l-inf, or per-image l2 if ``norm="l2"``), sorted and deduplicated.
        steps, step_size: PGD's; default 200 of 0.01 (:data:`advexp_lib.protocols.PGD_EVAL`, Boopathy et al.).
        norm: "linf" (default) or "l2". random_start: default False. batch_size: default None (all at once).
        cumulative: robust at eps_j only if robust at every eps_i <= eps_j (non-increasing; images that fell
            are not attacked again). Default False.
        per_image: also return robust, bool (E, N) (default False). progress: a bar (default on).
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
