"""Attacks in pixel space: the RMSE search of Woods et al. (Algorithm 1) and PGD.

Hand-written: Algorithm 1 exists in no library. PGD is written here too (not
``captum.robust.PGD``) because every caller needs per-example objectives,
targeted and custom losses, and a guaranteed projection onto the eps-ball
intersected with [0, 1]; tests check it against its definition.

Distances: the RMSE search measures perturbations by per-image RMSE,
sqrt(mean((x' - x)^2)) over all pixels and channels; PGD uses l-inf
(max |x' - x|) or per-image l2 (sqrt(sum (x' - x)^2)).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from .checks import InputError, check_choice, check_images, check_labels, check_logits, check_positive
from .models import eval_mode, training_mode

__all__ = [
    "SEARCH_MODES",
    "MODEL_MODES",
    "SearchResult",
    "LateCriterionWarning",
    "rmse",
    "step_sizes",
    "rmse_search",
    "pgd",
    "INDEPENDENT_ATTACKS",
    "independent_attack",
    "line_search",
    "criterion_met",
]

SEARCH_MODES = ("budget", "attack", "btr", "explain")
MODEL_MODES = ("eval", "train")


class LateCriterionWarning(UserWarning):
    """Some examples met the search criterion only after T/2 steps, or never (unreliable result)."""


@dataclass
class SearchResult:
    """Output of :func:`rmse_search`.

    Attributes:
        x_adv: x + delta. "budget" and "explain": the delta after the last
            step. "attack" and "btr": the smallest-RMSE delta at which the
            criterion was met, and delta = 0 (x itself) where it never was.
        distances: "attack"/"btr": per-example RMSE of that delta, inf where
            the criterion was never met, 0 where it held at delta = 0 or the
            example was masked out. Other modes: RMSE of the final delta.
        first_met: first step t (0 .. T) whose delta met the criterion; -1: never.
        unreliable: met after step T // 2, or never ("attack", "btr", "explain";
            always False in "budget" mode).
    """

    x_adv: torch.Tensor
    distances: torch.Tensor
    first_met: torch.Tensor
    unreliable: torch.Tensor


def rmse(delta: torch.Tensor) -> torch.Tensor:
    """Per-example RMSE sqrt(mean(delta^2)) over all pixels and channels."""
    return _mse(delta).sqrt()


def step_sizes(eps: float, steps: int, overshoot: float = 1.0) -> torch.Tensor:
    """Linearly decreasing ramp: step t has size eps * o * (T - t) / (T (T + 1) / 2); sums to eps * o."""
    t = torch.arange(steps, dtype=torch.float64)
    return eps * overshoot * (steps - t) / (steps * (steps + 1) / 2)


def rmse_search(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    targets: torch.Tensor | None = None,
    mode: str,
    eps: float,
    steps: int,
    overshoot: float = 1.0,
    momentum: float = 0.0,
    clip: bool = False,
    mask: torch.Tensor | None = None,
    model_mode: str = "eval",
    grad_floor: float = 1e-8,
    on_late: str = "flag",
    progress=None,
) -> SearchResult:
    r"""Algorithm 1 of Woods et al. (2019): the RMSE search behind adversarial training, ARA and AEs.

    Computes what the reference implementation (wwoods/adversarial-explanations-cifar)
    computes. Start at delta_0 = 0 and walk a path of total length eps * o in
    T steps of linearly decreasing size s_t (:func:`step_sizes`). At step t,
    one forward pass at x + delta_t gives the per-example cross-entropy
    gradient g and a flag f ("keep pushing"), both at delta_t:

    - "budget" (the reference's "l2" mode): f = RMSE(delta_t) < eps; ascend CE(y);
    - "attack" (ARA's criterion; the reference's "l2min" mode): f = the
      prediction is still y; ascend CE(y);
    - "btr" (better than random): f = p_y(x + delta_t) > 1/C; ascend CE(y);
    - "explain": f = RMSE(delta_t) < eps; *descend* CE(targets).

    Then, per example, with RMSE over all pixels and channels:

        d_t = f g + (1 - f) (-delta_t),        d_t <- d_t / (floor + RMSE(d_t)),
        v_t = m v_{t-1} + (1 - m) d_t          (momentum m > 0; else v_t = d_t),
        delta_{t+1} = delta_t + s_t v_t        (masked examples stay at 0).

    The step follows v_t itself: with momentum it can be shorter than s_t. The
    reference's floor 1e-8 makes steps shrink where the gradient vanishes (an
    image a network classifies with saturated confidence), so the search may
    not move there at all.
    "attack" and "btr" also evaluate delta_T and return, per example, the
    smallest-RMSE delta_t (t = 0 .. T) that met the criterion (f = 0), or
    delta = 0 where none did: the reference's best buffer starts at zero, so
    "attack" adversarial training trains on the clean image there. An example
    that first meets its criterion after step T // 2, or never, is
    ``unreliable`` (the reference raises for explanations and ARA).

    Work the reference does but whose result cannot change is skipped: in
    "eval" mode, an example that meets its criterion at delta_0 = 0 (so d_t = 0
    for ever) leaves the batch after step 0, once at least 16 examples stay.
    The search then matches the reference loop to rounding (tests compare the
    two; benchmarks/bench_ara_speed.py times them).

    Args:
        y: true classes (N,) for "budget", "attack" and "btr".
        targets: classes (N,) to explain, for "explain".
        eps: RMSE budget (> 0); steps: T (>= 1); overshoot: o (default 1).
        momentum: m in [0, 1). Default 0.
        clip: evaluate and keep x + delta inside [0, 1]. Default False, as in
            the reference (deltas may leave the pixel range).
        mask: bool (N,): perturb only these examples (half-and-half training).
        model_mode: "eval" (default: attacks, ARA, explanations) or "train":
            the search runs the model in training mode over the whole batch,
            as the reference's adversarial training does, so BatchNorm uses
            the perturbed batch's statistics and updates its running
            averages (T or T + 1 times). The caller's mode is restored after.
        grad_floor: the floor added to RMSE(d_t) before dividing; default 1e-8,
            the reference's. 0 scales every direction to unit RMSE, so steps
            keep their ramp length however small the gradient (our choice for
            images the reference search cannot move; see
            :func:`advexp_lib.metrics.accuracy_robustness_area`).
        on_late: "flag" (default; see ``unreliable``), "warn" or "raise" when
            an example meets its criterion late or never (raise eps or steps).
        progress: optional tqdm bar, advanced by N per step.
    Returns:
        :class:`SearchResult`.
    """
    check_choice(mode, "mode", SEARCH_MODES)
    check_images(x, "x")
    n = x.shape[0]
    check_positive(eps, "eps")
    check_positive(steps, "steps", integer=True)
    check_positive(overshoot, "overshoot")
    check_choice(on_late, "on_late", ("flag", "warn", "raise"))
    check_choice(model_mode, "model_mode", MODEL_MODES)
    check_positive(grad_floor, "grad_floor", allow_zero=True)
    if not 0.0 <= momentum < 1.0:
        raise InputError(f"momentum: expected a value in [0, 1), got {momentum!r}")
    if mode == "explain" and (targets is None or y is not None):
        raise InputError("targets: mode 'explain' takes targets, the classes to explain (and no y)")
    if mode != "explain" and (y is None or targets is not None):
        raise InputError(f"y: mode {mode!r} takes y, the true classes (and no targets)")
    classes, name = (targets, "targets") if mode == "explain" else (y, "y")
    minimal = mode in ("attack", "btr")
    sizes = step_sizes(eps, steps, overshoot).tolist()
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
    masked, nhwc = mask is not None, _nhwc_pays(model, x)
    search = _Search(mode, eps, steps, sizes, momentum, clip, grad_floor, masked, nhwc, name, progress, n)
    with training_mode(model, model_mode == "train"):
        if model_mode == "train":  # BatchNorm couples the batch: every example is searched to the end
            search.run(model, x, classes, active, state, range(steps + minimal))
        else:  # independent examples: after step 0, search only those whose result is still open
            search.run(model, x, classes, active, state, range(1))
            rest = range(1, steps + minimal)
            rows = torch.nonzero(active & (state.first != 0)).flatten()
            if len(rows) == n or 0 < len(rows) < _MIN_COMPACTED:
                search.run(model, x, classes, active, state, rest)
            elif len(rows):
                sub = state.take(rows)
                search.run(model, x[rows], classes[rows], active[rows], sub, rest)
                state.put(rows, sub)
            elif progress is not None:  # every result known at delta = 0
                progress.update(n * (steps - 1))
    delta, best, best_mse, first = state.delta, state.best, state.best_mse, state.first
    if mode == "budget":
        unreliable = torch.zeros(n, dtype=torch.bool, device=x.device)
    else:
        unreliable = active & ((first < 0) | (first > steps // 2))
        _report_late(unreliable, on_late, mode, eps, steps)
    if minimal:
        x_adv = x + best
        distances = torch.where(active, best_mse.sqrt(), torch.zeros_like(best_mse))
    else:
        x_adv = _apply(x, delta, clip)
        distances = rmse(delta)
    return SearchResult(x_adv.detach(), distances.detach(), first, unreliable)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    eps: float,
    steps: int = 40,
    step_size: float = 0.01,
    norm: str = "linf",
    random_start: bool = False,
    targets: torch.Tensor | None = None,
    objective=None,
    clip: bool = True,
) -> torch.Tensor:
    r"""Projected gradient ascent in the eps-ball (Madry et al. 2018); returns x' (detached).

    Each step: g = grad of the per-example objective summed over the batch;
    "linf": delta <- clamp(delta + step_size * sign(g), -eps, eps);
    "l2": delta <- Proj_{||.||_2 <= eps}(delta + step_size * g / ||g||_2)
    (per-image l2 norm); with ``clip`` (default True) x + delta is then kept
    in [0, 1]. The objective is CE(model(x'), y) (untargeted), or
    -CE(model(x'), targets) with ``targets``, or ``objective(x') -> (N,)``.

    Args:
        random_start: start uniformly in the l-inf ball, or at a random
            direction with radius U(0, eps) for l2. Default False.
    """
    check_images(x, "x")
    check_positive(eps, "eps", allow_zero=True)
    check_positive(steps, "steps", integer=True, allow_zero=True)
    check_positive(step_size, "step_size")
    check_choice(norm, "norm", ("linf", "l2"))
    n = x.shape[0]
    if objective is None:
        if (y is None) == (targets is None):
            raise InputError("y/targets: pass exactly one of y (untargeted) or targets (targeted)")
        labels, sgn = (y, 1.0) if targets is None else (targets, -1.0)

        def objective(xa):
            logits = model(xa)
            check_labels(labels, n, logits.shape[1], "targets" if sgn < 0 else "y")
            return sgn * F.cross_entropy(logits, labels, reduction="none")

    delta = torch.zeros_like(x)
    if random_start and eps > 0:
        if norm == "linf":
            delta = (torch.rand_like(x) * 2 - 1) * eps
        else:
            u = torch.randn_like(x)
            delta = u / _l2(u)[:, None, None, None] * eps * torch.rand(n, 1, 1, 1, device=x.device)
        delta = _project(x, delta, eps, norm, clip)
    with eval_mode(model):
        for _ in range(steps):
            d = delta.detach().requires_grad_(True)
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(objective(x + d).sum(), d)
            if norm == "linf":
                step = step_size * grad.sign()
            else:
                step = step_size * grad / _l2(grad).clamp_min(1e-12)[:, None, None, None]
            delta = _project(x, delta + step, eps, norm, clip)
    return (x + delta).detach()


def criterion_met(model: nn.Module, x: torch.Tensor, y: torch.Tensor, kind: str = "attack") -> torch.Tensor:
    """bool (N,): does ``model`` (in eval mode) fail on ``x`` by ``kind``'s criterion?

    "attack": the prediction is not y; "btr": p_y(x) <= 1/C (the flags of :func:`rmse_search`).
    """
    check_choice(kind, "kind", ("attack", "btr"))
    with eval_mode(model), torch.no_grad():
        return ~_push(kind, model(x), y, None, None)


INDEPENDENT_ATTACKS = {
    "ddn": "foolbox DDNAttack: decoupled direction and norm (Rony et al. 2019)",
    "fmn": "foolbox L2FMNAttack: fast minimum-norm (Pintor et al. 2021)",
    "boundary": "foolbox BoundaryAttack: gradient-free, decision-based (Brendel et al. 2018)",
}


def independent_attack(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, attack: str, kind: str = "attack", steps: int = 450
) -> SearchResult:
    r"""A minimal-norm l2 attack from an independent library (foolbox), scored as the RMSE search is.

    The attacks (:data:`INDEPENDENT_ATTACKS`) minimize the l2 norm of the
    perturbation that breaks the criterion; ours measure it as RMSE = l2 /
    sqrt(C H W). Every returned image is checked here, with the model in eval
    mode: its distance is RMSE(x' - x) if it meets the criterion, inf if it
    does not (a failure is not a distance of 0), and 0 where x itself already
    meets it. Criteria as in :func:`rmse_search`: "attack" (prediction no
    longer y) or "btr" (p_y(x') <= 1/C), the latter by attacking a two-logit
    wrapper, [log p_y(x) + log C, 0], whose prediction changes exactly when
    p_y falls below 1/C. foolbox 3.3.4's L2FMNAttack never shrinks the
    perturbation (its projection divides the norm by itself); it is used
    here with that projection written as the paper's, min(1, eps / ||d||).

    Args:
        attack: "ddn", "fmn" or "boundary". kind: "attack" (default) or "btr".
        steps: iterations (default 450, the RMSE search's budget; the boundary
            attack needs thousands, each one forward pass and no gradient).
    Returns:
        :class:`SearchResult` (``first_met`` -1, ``unreliable`` False).
    """
    check_choice(attack, "attack", INDEPENDENT_ATTACKS)
    check_choice(kind, "kind", ("attack", "btr"))
    check_images(x, "x")
    check_positive(steps, "steps", integer=True)
    n = x.shape[0]
    with eval_mode(model), torch.no_grad():
        logits = check_logits(model(x), n)
    check_labels(y, n, logits.shape[1], "y")
    num_classes = logits.shape[1]
    met = criterion_met(model, x, y, kind)
    x_adv = x.clone()
    todo = torch.nonzero(~met).flatten()
    if todo.numel():
        with eval_mode(model):
            x_adv[todo] = _foolbox_run(model, x[todo], y[todo], attack, kind, steps, num_classes)
    ok = criterion_met(model, x_adv, y, kind)
    distances = torch.where(ok, rmse(x_adv - x), torch.full((n,), math.inf, device=x.device, dtype=x.dtype))
    distances = torch.where(met, torch.zeros_like(distances), distances)
    x_adv = torch.where(met[:, None, None, None], x, x_adv)
    none = torch.zeros(n, dtype=torch.bool, device=x.device)
    return SearchResult(x_adv.detach(), distances.detach(), torch.full((n,), -1, device=x.device), none)


def line_search(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    directions: torch.Tensor,
    *,
    kind: str = "attack",
    max_rmse: float = 1.0,
    rounds: int = 30,
) -> SearchResult:
    r"""The smallest s along fixed directions u_i with x_i + s u_i breaking the criterion (a transfer attack).

    u_i = directions_i / RMSE(directions_i); s starts at 1/64 of ``max_rmse``,
    doubles until the criterion ("attack" or "btr", as :func:`rmse_search`)
    is met or s passes ``max_rmse``, then ``rounds`` bisections close in on
    the boundary. Typical use: the minimal adversarial perturbations of one
    model, tried on another. Distance = RMSE(s u_i) = s (inf where
    ``max_rmse`` did not suffice; 0 where x already meets the criterion).
    No clipping to [0, 1], as the RMSE search.
    """
    check_choice(kind, "kind", ("attack", "btr"))
    check_images(x, "x")
    check_positive(max_rmse, "max_rmse")
    check_positive(rounds, "rounds", integer=True)
    if not isinstance(directions, torch.Tensor) or directions.shape != x.shape:
        raise InputError(f"directions: expected a tensor of the images' shape {tuple(x.shape)}")
    n = x.shape[0]
    norm = rmse(directions)
    u = directions / torch.where(norm > 0, norm, torch.ones_like(norm))[:, None, None, None]

    def met(s):
        return criterion_met(model, x + s[:, None, None, None] * u, y, kind)

    zero = met(torch.zeros(n, dtype=x.dtype, device=x.device))
    lo = torch.zeros(n, dtype=x.dtype, device=x.device)
    hi = torch.full_like(lo, max_rmse / 64)
    found = zero.clone()
    while not bool(found.all()) and float(hi.max()) <= max_rmse:
        ok = met(hi) & ~found
        found = found | ok
        lo = torch.where(found, lo, hi)
        hi = torch.where(found, hi, 2 * hi)
    usable = found & ~zero & (norm > 0)
    for _ in range(rounds):
        mid = (lo + hi) / 2
        ok = met(mid)
        hi, lo = torch.where(usable & ok, mid, hi), torch.where(usable & ~ok, mid, lo)
    inf = torch.full_like(lo, math.inf)
    distances = torch.where(zero, torch.zeros_like(lo), torch.where(usable, hi, inf))
    x_adv = x + torch.where(usable, hi, torch.zeros_like(hi))[:, None, None, None] * u
    none = torch.zeros(n, dtype=torch.bool, device=x.device)
    return SearchResult(x_adv.detach(), distances, torch.full((n,), -1, device=x.device), none)


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
    """One :func:`rmse_search`'s settings; ``run`` takes some of its steps.

    masked: some examples are masked out; nhwc: feed the model NHWC copies;
    name: the classes' argument name (for errors); progress: bar advanced by
    ``per_step`` (the caller's batch size) per step.
    """

    mode: str
    eps: float
    steps: int
    sizes: list
    momentum: float
    clip: bool
    grad_floor: float
    masked: bool
    nhwc: bool
    name: str
    progress: object
    per_step: int

    def run(self, model, x, classes, active, state, ts):
        """Steps ``ts`` on (x, classes), updating ``state``; t = steps (the extra evaluation of
        "attack" and "btr") only scores delta_T. The model's mode is set by the caller."""
        n = x.shape[0]
        minimal = self.mode in ("attack", "btr")
        for t in ts:
            d = state.delta.detach().requires_grad_(t < self.steps)
            xd = _apply(x, d, self.clip)
            logits = model(_nhwc(xd) if self.nhwc else xd)
            if t == 0:
                check_logits(logits, n)
                check_labels(classes, n, logits.shape[1], self.name)
            mse = _mse(d.detach())
            push = _push(self.mode, logits.detach(), classes, mse, self.eps)
            met = ~push & active
            state.first = torch.where(met & (state.first < 0), torch.full_like(state.first, t), state.first)
            if minimal:
                better = met & (mse < state.best_mse)
                state.best_mse = torch.where(better, mse, state.best_mse)
                state.best = torch.where(better[:, None, None, None], d.detach(), state.best)
            if t == self.steps:
                break
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(F.cross_entropy(logits, classes, reduction="sum"), d)
            delta = state.delta
            ascent = -grad if self.mode == "explain" else grad
            direction = torch.where(push[:, None, None, None], ascent, -delta)
            norm = rmse(direction)
            if self.grad_floor == 0:  # a zero direction (delta = 0 with the criterion met) stays zero
                norm = torch.where(norm > 0, norm, torch.ones_like(norm))
            direction = direction / (self.grad_floor + norm)[:, None, None, None]
            if self.momentum > 0:
                state.velocity = self.momentum * state.velocity + (1 - self.momentum) * direction
                direction = state.velocity
            if self.masked:  # (x * 1 is x: without a mask the multiply changes nothing)
                direction = direction * active[:, None, None, None].to(x.dtype)
            delta = torch.add(delta, direction, alpha=self.sizes[t])
            if self.clip:
                delta = _apply(x, delta, True) - x
            state.delta = delta
            if self.progress is not None:
                self.progress.update(self.per_step)


def _push(mode, logits, classes, mse, eps):
    """The reference's "keep pushing" flag at the current delta (its MSE given)."""
    if mode in ("budget", "explain"):
        return mse < eps**2
    if mode == "attack":
        return logits.argmax(1) == classes
    probs = logits.softmax(1).gather(1, classes[:, None]).squeeze(1)  # btr
    return probs > 1.0 / logits.shape[1]


def _mse(delta):
    return delta.pow(2).mean(dim=tuple(range(1, delta.dim())))  # any memory layout, no copy


def _apply(x, delta, clip):
    return (x + delta).clamp(0, 1) if clip else x + delta


def _nhwc_pays(model, x):
    """Feed ``model`` NHWC copies (:func:`_nhwc`)? On CPU, for networks with max-pooling.

    Max-pooling is where channels-last pays on CPU (benchmarks/bench_woods.py).
    Other networks, such as the ResNets, are fed NCHW, as the reference feeds
    them: NHWC convolutions sum in another order, and that rounding would move
    the search's distances on the published ResNet-44s away from the
    reference loop's (benchmarks/bench_ara_speed.py prints the difference).
    """
    return x.device.type == "cpu" and any(isinstance(m, nn.MaxPool2d) for m in model.modules())


def _nhwc(x):
    """A differentiable copy of x in channels-last (NHWC) strides on CPU, values unchanged.

    The search spends its time in the model's forward and input-gradient passes;
    oneDNN max-pooling (and convolutions) on CPU run faster in NHWC, and a layer's
    output follows its input's layout. For C = 1 the two layouts hold the same
    bytes and ``contiguous(channels_last)`` (like ``x + d``) keeps NCHW strides,
    so an explicit copy sets the stride of C to 1: the first convolution then
    sees NHWC and the layers after it stay NHWC. Other devices keep x as is.
    """
    if x.device.type != "cpu" or x.dim() != 4 or x.stride(1) == 1:
        return x
    return torch.empty_like(x, memory_format=torch.channels_last).copy_(x)


def _l2(v):
    return v.flatten(1).norm(dim=1)


def _project(x, delta, eps, norm, clip):
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        scale = (eps / _l2(delta).clamp_min(1e-12)).clamp(max=1.0)
        delta = delta * scale[:, None, None, None]
    return ((x + delta).clamp(0, 1) - x) if clip else delta


def _report_late(unreliable, on_late, mode, eps, steps):
    k = int(unreliable.sum())
    if not k or on_late == "flag":
        return
    msg = (
        f"{k} example(s) met the {mode!r} criterion only after T/2 = {steps // 2} steps or never: "
        f"their minimal distance is unreliable; raise eps (now {eps}) or steps (now {steps})"
    )
    if on_late == "raise":
        raise InputError(msg)
    warnings.warn(msg, LateCriterionWarning, stacklevel=3)


class _ChanceMargin(nn.Module):
    """Two logits [log p_y(x) + log C, 0] of ``model``: the prediction is class 0 while p_y > 1/C.

    Holds the batch's labels, so it must see the whole batch, in order (as foolbox's attacks call it).
    """

    def __init__(self, model: nn.Module, y: torch.Tensor, num_classes: int):
        super().__init__()
        self.model, self.y, self.log_c = model, y, math.log(num_classes)

    def forward(self, z):
        if z.shape[0] != self.y.shape[0]:
            raise InputError(
                f"x: the btr wrapper holds {self.y.shape[0]} labels, got a batch of {z.shape[0]}"
            )
        logp = self.model(z).log_softmax(1).gather(1, self.y[:, None]) + self.log_c
        return torch.cat([logp, torch.zeros_like(logp)], 1)


def _foolbox_run(model, x, y, attack, kind, steps, num_classes):
    """foolbox's attack on (x, y) for the criterion ``kind``; the images it returns (unverified)."""
    import eagerpy as ep  # foolbox's tensor layer; imported with foolbox, on first use
    import foolbox as fb
    from foolbox.devutils import atleast_kd, flatten

    class L2FMN(fb.attacks.L2FMNAttack):
        def project(self, x, x0, epsilon):  # the paper's projection onto the l2 ball of radius epsilon
            d = x - x0
            norms = ep.maximum(flatten(d).norms.l2(axis=-1), 1e-12)
            return x0 + d * atleast_kd(ep.minimum(1, epsilon / norms), x.ndim)

    net = model if kind == "attack" else _ChanceMargin(model, y, num_classes).eval()
    labels = y if kind == "attack" else torch.zeros_like(y)
    fmodel = fb.PyTorchModel(net, bounds=(0, 1), preprocessing=None, device=x.device)
    make = {
        "ddn": lambda: fb.attacks.DDNAttack(steps=steps),
        "fmn": lambda: L2FMN(steps=steps),
        "boundary": lambda: fb.attacks.BoundaryAttack(steps=steps),
    }[attack]
    _, clipped, _ = make()(fmodel, x, fb.criteria.Misclassification(labels), epsilons=None)
    return clipped.detach()
