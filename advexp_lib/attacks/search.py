"""Algorithm 1 of Woods et al. (2019), the RMSE search, with its settings and criteria as objects.

Hand-written (no library has it), set by a :class:`SearchConfig` (:data:`ARA_PAPER`, :data:`AE_PAPER`) and a
:class:`Criterion` (:data:`BUDGET`, :data:`ATTACK`, :data:`BTR`, :data:`EXPLAIN`). Distances: per-image RMSE.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import InputError, check_choice, check_images, check_labels, check_logits, check_model_input
from ..models import eval_mode, training_mode
from ..protocols import AE_PAPER, AE_REFERENCE, ARA_PAPER, SearchConfig  # noqa: F401 (re-exported: the search's settings)
from ..results import Result
from ..speedups import nhwc_copy, prefers_nhwc

__all__ = [
    "SearchConfig",
    "ARA_PAPER",
    "AE_PAPER",
    "AE_REFERENCE",
    "Criterion",
    "BUDGET",
    "ATTACK",
    "BTR",
    "EXPLAIN",
    "CRITERIA",
    "as_criterion",
    "MODEL_MODES",
    "SearchResult",
    "LateCriterionWarning",
    "rmse",
    "step_sizes",
    "rmse_search",
    "criterion_met",
]

MODEL_MODES = ("eval", "train")


class Criterion:
    r"""When the RMSE search pushes (:meth:`keep_pushing`, else steps back by -delta_t), and what it returns.

    Attributes:
        name: "budget", "attack", "btr" or "explain"; classes: the search's classes, "y" or "targets".
        descend: descend the classes' cross-entropy (explanations) instead of ascending it (attacks).
        minimal: return per example the smallest-RMSE delta_t that met the criterion (ARA), not the last.
        reports_late: meeting it after T/2 steps, or never, makes the result unreliable.

    Examples:
        >>> ATTACK.minimal, EXPLAIN.descend, BUDGET.reports_late
        (True, True, False)
    """

    name = ""
    descend = False
    minimal = False
    reports_late = True
    classes = "y"

    def keep_pushing(
        self, logits: torch.Tensor, classes: torch.Tensor, mse: torch.Tensor, eps: float
    ) -> torch.Tensor:
        """bool (N,): keep stepping along the gradient at this delta."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name.upper()


class _WithinBudget(Criterion):
    r"""Push while RMSE(delta) < eps:  {delta : sqrt(mean(delta^2)) < eps}."""

    def keep_pushing(self, logits, classes, mse, eps):
        return mse < eps**2


class _Budget(_WithinBudget):
    """The reference's "l2" mode: ascend CE(y) while RMSE(delta) < eps; return the last delta."""

    name, reports_late = "budget", False


class _Explain(_WithinBudget):
    """Explanations: *descend* CE(targets) while RMSE(delta) < eps; return the last delta."""

    name, descend, classes = "explain", True, "targets"


class _Attack(Criterion):
    """ARA's "attack" ("l2min" in the reference): push while argmax f = y; keep the smallest flip."""

    name, minimal = "attack", True

    def keep_pushing(self, logits, classes, mse, eps):
        return logits.argmax(1) == classes


class _BetterThanRandom(Criterion):
    r"""ARA's "btr": push while p_y = softmax(f)_y > 1/C; keep the smallest delta that brings it to 1/C."""

    name, minimal = "btr", True

    def keep_pushing(self, logits, classes, mse, eps):
        probs = logits.softmax(1).gather(1, classes[:, None]).squeeze(1)
        return probs > 1.0 / logits.shape[1]


BUDGET, EXPLAIN, ATTACK, BTR = _Budget(), _Explain(), _Attack(), _BetterThanRandom()
CRITERIA = {c.name: c for c in (BUDGET, ATTACK, BTR, EXPLAIN)}
"""Criterion name -> criterion."""


def as_criterion(criterion, allowed=None, *, name: str = "criterion") -> Criterion:
    """A :class:`Criterion` from itself or its name; ``allowed`` (names) restricts it; errors name ``name``.

    Examples:
        >>> as_criterion("btr") is BTR
        True
    """
    names = list(allowed or CRITERIA)
    if isinstance(criterion, Criterion) and criterion.name in names:
        return criterion
    return CRITERIA[check_choice(getattr(criterion, "name", criterion), name, names)]


class LateCriterionWarning(UserWarning):
    """Some examples met the search criterion only after T/2 steps, or never (unreliable result).

    Examples:
        >>> import warnings
        >>> tiny = SearchConfig(steps=2, eps=1e-4)  # too small a budget to break any image
        >>> with warnings.catch_warnings(record=True) as w:
        ...     _ = rmse_search(model, x, y, criterion=ATTACK, config=tiny, on_late="warn")
        >>> issubclass(w[-1].category, LateCriterionWarning)
        True
    """


@dataclass
class SearchResult(Result):
    """Output of :func:`rmse_search` (and of the other minimal-perturbation attacks).

    Attributes:
        x_adv: x + delta: the last delta; ``minimal``: the smallest-RMSE delta that met the criterion, else 0.
        distances: RMSE of that delta; ``minimal``: inf where never met, 0 where met at 0 or masked out.
        first_met: first step meeting the criterion (-1: never); unreliable: met after step T // 2 or never.

    Examples:
        >>> res = rmse_search(model, x, y, criterion=BUDGET, config=SearchConfig(steps=5, eps=0.1))
        >>> isinstance(res, SearchResult), res.x_adv.shape == x.shape
        (True, True)
    """

    x_adv: torch.Tensor
    distances: torch.Tensor
    first_met: torch.Tensor
    unreliable: torch.Tensor


def rmse(delta: torch.Tensor) -> torch.Tensor:
    """Per-example RMSE sqrt(mean(delta^2)) over all pixels and channels.

    Examples:
        >>> rmse(torch.full((2, 1, 2, 2), 0.5))
        tensor([0.5000, 0.5000])
    """
    return _mse(delta).sqrt()


def step_sizes(eps: float, steps: int, overshoot: float = 1.0) -> torch.Tensor:
    """Linearly decreasing ramp: step t has size eps * o * (T - t) / (T (T + 1) / 2); sums to eps * o.

    Examples:
        >>> step_sizes(1.0, 3).tolist()
        [0.5, 0.3333333333333333, 0.16666666666666666]
    """
    t = torch.arange(steps, dtype=torch.float64)
    return eps * overshoot * (steps - t) / (steps * (steps + 1) / 2)


def rmse_search(
    model: nn.Module,
    x: torch.Tensor,
    classes: torch.Tensor,
    *,
    criterion,
    config: SearchConfig,
    mask: torch.Tensor | None = None,
    model_mode: str = "eval",
    on_late: str = "flag",
    progress=None,
) -> SearchResult:
    r"""Algorithm 1 of Woods et al. (2019), the RMSE search (training, ARA, AEs): a :class:`SearchResult`.

    As the reference (wwoods/adversarial-explanations-cifar): from delta_0 = 0, T steps of size s_t
    (:func:`step_sizes`); g: the CE gradient at x + delta_t (negated if ``descend``); f: ``keep_pushing``:

        d_t = f g + (1 - f) (-delta_t),        d_t <- d_t / (floor + RMSE(d_t)),
        v_t = m v_{t-1} + (1 - m) d_t          (momentum m > 0; else v_t = d_t),
        delta_{t+1} = delta_t + s_t v_t        (masked examples stay at 0).

    The reference's floor 1e-8 makes steps shrink where the gradient vanishes (saturated confidence), so
    the search may not move there (``never_met="retry"`` in ARA).

    Args:
        x: images (N, C, H, W) in [0, 1]; classes: (N,) y, or the classes to explain (:data:`EXPLAIN`).
        criterion: :class:`Criterion` or its name; config: :class:`SearchConfig` (e.g. :data:`ARA_PAPER`).
        mask: bool (N,): perturb only these (half-and-half training); progress: tqdm bar, N per step.
        model_mode: "eval" (default) or "train": whole batch in training mode, as the reference's adversarial
            training: BatchNorm uses the perturbed batch's statistics and updates its running averages
            (T or T + 1 times); the caller's mode is restored after.
        on_late: "flag" (default), "warn" or "raise" when an example meets its criterion late or never.

    Examples:
        >>> res = rmse_search(model, x, y, criterion=ATTACK, config=replace(ARA_PAPER, steps=40))
        >>> bool((res.distances >= 0).all())
        True
    """
    criterion = as_criterion(criterion)
    if not isinstance(config, SearchConfig):
        raise InputError(f"config: expected a SearchConfig (e.g. ARA_PAPER), got {type(config).__name__}")
    check_images(x, "x")
    check_model_input(model, x)
    n = x.shape[0]
    check_choice(on_late, "on_late", ("flag", "warn", "raise"))
    check_choice(model_mode, "model_mode", MODEL_MODES)
    check_labels(classes, n, None, criterion.classes)
    if mask is not None and (not isinstance(mask, torch.Tensor) or tuple(mask.shape) != (n,)):
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise InputError(f"mask: expected a bool tensor of shape ({n},), one flag per image, got {got}")
    active = torch.ones(n, dtype=torch.bool, device=x.device) if mask is None else mask.to(x.device).bool()
    state = _State(
        delta=torch.zeros_like(x),
        velocity=torch.zeros_like(x),
        best=torch.zeros_like(x),
        best_mse=torch.full((n,), math.inf, dtype=x.dtype, device=x.device),
        first=torch.full((n,), -1, dtype=torch.long, device=x.device),
    )
    search = _Search(criterion, config, mask is not None, prefers_nhwc(model, x), progress, n)
    steps, extra = config.steps, int(criterion.minimal)
    with training_mode(model, model_mode == "train"):
        if model_mode == "train":  # BatchNorm couples the batch: every example is searched to the end
            search.run(model, x, classes, active, state, range(steps + extra))
        else:  # independent examples: after step 0, search only those whose result is still open
            search.run(model, x, classes, active, state, range(1))
            rest = range(1, steps + extra)
            rows = torch.nonzero(active & (state.first != 0)).flatten()
            if len(rows) == n or 0 < len(rows) < _MIN_COMPACTED:
                search.run(model, x, classes, active, state, rest)
            elif len(rows):
                sub = state.take(rows)
                search.run(model, x[rows], classes[rows], active[rows], sub, rest)
                state.put(rows, sub)
            elif progress is not None:  # every result known at delta = 0
                progress.update(n * (steps - 1))
    if criterion.reports_late:
        unreliable = active & ((state.first < 0) | (state.first > steps // 2))
        _report_late(unreliable, on_late, criterion.name, config)
    else:
        unreliable = torch.zeros(n, dtype=torch.bool, device=x.device)
    if criterion.minimal:
        x_adv = x + state.best
        distances = torch.where(active, state.best_mse.sqrt(), torch.zeros_like(state.best_mse))
    else:
        x_adv = _apply(x, state.delta, config.clip)
        distances = rmse(state.delta)
    return SearchResult(x_adv.detach(), distances.detach(), state.first, unreliable)


def criterion_met(model: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion=None) -> torch.Tensor:
    """bool (N,): ``model`` (eval) errs on ``x``: :data:`ATTACK` (default) pred != y, :data:`BTR` p_y <= 1/C.

    Examples:
        >>> criterion_met(model, x, y).shape
        torch.Size([4])
    """
    criterion = as_criterion(ATTACK if criterion is None else criterion, ("attack", "btr"))
    with eval_mode(model), torch.no_grad():
        return ~criterion.keep_pushing(model(x), y, None, None)


# CPU convolution libraries pick other kernels for small batches, and those round differently: an
# image's gradient in a batch of a few can differ (~1e-8) from the same image's in a full batch. So
# the search drops settled examples only when at least this many remain, and each image's numbers
# stay those of the full batch (what the reference computes).
_MIN_COMPACTED = 16


@dataclass
class _State:
    """Per-example tensors of the search: delta_t, momentum v, best delta met, its MSE, first step met."""

    delta: torch.Tensor
    velocity: torch.Tensor
    best: torch.Tensor
    best_mse: torch.Tensor
    first: torch.Tensor

    def take(self, rows):
        return _State(*(getattr(self, f.name)[rows] for f in fields(self)))

    def put(self, rows, sub):
        for f in fields(self):
            getattr(self, f.name)[rows] = getattr(sub, f.name)


@dataclass(frozen=True)
class _Search:
    """One :func:`rmse_search` (criterion, config, flags); ``run`` takes some of its steps."""

    criterion: Criterion
    config: SearchConfig
    masked: bool
    nhwc: bool
    progress: object
    per_step: int
    sizes: list = field(init=False)

    def __post_init__(self):
        c = self.config
        object.__setattr__(self, "sizes", step_sizes(c.eps, c.steps, c.overshoot).tolist())

    def run(self, model, x, classes, active, state, ts):
        """Steps ``ts`` on (x, classes), updating ``state``; t = steps only scores delta_T."""
        n, c, crit = x.shape[0], self.config, self.criterion
        for t in ts:
            d = state.delta.detach().requires_grad_(t < c.steps)
            # no clamp here: with clip, _step already keeps x + delta in [0, 1], and clamp's gradient is 0
            # at the bounds, which would freeze every saturated pixel (a digit's black background)
            xd = x + d
            logits = model(nhwc_copy(xd) if self.nhwc else xd)
            if t == 0:
                check_logits(logits, n)
                check_labels(classes, n, logits.shape[1], crit.classes)
            mse = _mse(d.detach())
            push = crit.keep_pushing(logits.detach(), classes, mse, c.eps)
            met = ~push & active
            state.first = torch.where(met & (state.first < 0), torch.full_like(state.first, t), state.first)
            if crit.minimal:
                better = met & (mse < state.best_mse)
                state.best_mse = torch.where(better, mse, state.best_mse)
                state.best = torch.where(better[:, None, None, None], d.detach(), state.best)
            if t == c.steps:
                break
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(F.cross_entropy(logits, classes, reduction="sum"), d)
            state.delta = self._step(state, grad, push, active, x, t)
            if self.progress is not None:
                self.progress.update(self.per_step)

    def _step(self, state, grad, push, active, x, t):
        """delta_{t+1} from delta_t, the gradient and the push flags (the update of :func:`rmse_search`)."""
        c, delta = self.config, state.delta
        ascent = -grad if self.criterion.descend else grad
        direction = torch.where(push[:, None, None, None], ascent, -delta)
        norm = rmse(direction)
        if c.grad_floor == 0:  # a zero direction (delta = 0 with the criterion met) stays zero
            norm = torch.where(norm > 0, norm, torch.ones_like(norm))
        direction = direction / (c.grad_floor + norm)[:, None, None, None]
        if c.momentum > 0:
            state.velocity = c.momentum * state.velocity + (1 - c.momentum) * direction
            direction = state.velocity
        if self.masked:  # (x * 1 is x: without a mask the multiply changes nothing)
            direction = direction * active[:, None, None, None].to(x.dtype)
        delta = torch.add(delta, direction, alpha=self.sizes[t])
        return _apply(x, delta, True) - x if c.clip else delta


def _mse(delta):
    return delta.pow(2).mean(dim=tuple(range(1, delta.dim())))  # any memory layout, no copy


def _apply(x, delta, clip):
    return (x + delta).clamp(0, 1) if clip else x + delta


def _report_late(unreliable, on_late, name, config):
    k = int(unreliable.sum())
    if not k or on_late == "flag":
        return
    msg = (
        f"{k} example(s) met the {name!r} criterion only after T/2 = {config.steps // 2} steps or never: "
        f"their minimal distance is unreliable; raise eps (now {config.eps}) or steps (now {config.steps})"
    )
    if on_late == "raise":
        raise InputError(msg)
    warnings.warn(msg, LateCriterionWarning, stacklevel=3)
